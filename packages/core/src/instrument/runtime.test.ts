import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { StateChange } from "../delivery/delivery-types";
import type { Sink } from "../delivery/sink";
import { ConfigurationError } from "../errors";
import { type StreamllEvent, streamllEventSchema } from "../events/event-schema";
import { MemorySink } from "../sinks/memory-sink";
import { type StreamllLogger, type StreamllOptions, stderrLogger } from "./configure";
import { instrument } from "./instrument";
import { configure, flush, getMetrics, onStateChange, shutdown } from "./runtime";
import { emit, trace } from "./trace";

const warnings: string[] = [];
const logger: StreamllLogger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

function setup(options: Omit<StreamllOptions, "sinks"> = {}, sink = new MemorySink()): MemorySink {
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger, ...options });
  return sink;
}

async function collect(sink: MemorySink): Promise<StreamllEvent[]> {
  await flush(2_000);
  const events = sink.events;
  for (const event of events) streamllEventSchema.parse(event);
  return events;
}

function failingSink(name = "down"): Sink {
  return {
    name,
    send: async () => {
      throw new Error("connection refused");
    },
    close: async () => undefined,
  };
}

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
  vi.restoreAllMocks();
});

describe("configure", () => {
  it("replaces sinks: the old pipeline drains in the background and its sink is closed", async () => {
    const first = new MemorySink({ name: "first" });
    configure({ sinks: [{ sink: first, delivery: { flushIntervalMs: 600_000 } }], logger });
    emit("before");
    const second = setup();
    emit("after");
    await flush(2_000);
    expect(first.events.map((e) => e.event_type)).toEqual(["before"]);
    expect(first.isClosed).toBe(true);
    expect(second.events.map((e) => e.event_type)).toEqual(["after"]);
    expect(getMetrics().map((m) => m.sink)).toEqual(["memory"]);
  });

  it("keeps a sink that stays configured open across configure() calls", async () => {
    const sink = new MemorySink();
    setup({}, sink);
    emit("one");
    setup({ tags: { round: "2" } }, sink);
    emit("two");
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["one", "two"]);
    expect(events[1]?.tags).toEqual({ round: "2" });
    expect(sink.isClosed).toBe(false);
    await shutdown();
    expect(sink.isClosed).toBe(true);
  });

  it("validates delivery options with their full path and changes nothing on error", async () => {
    const sink = setup();
    expect(() => configure({ sinks: [new MemorySink()], delivery: { maxBatchSize: 0 } })).toThrow(
      "invalid streamll options: delivery.maxBatchSize: expected an integer >= 1, got 0",
    );
    let error: unknown;
    try {
      configure({
        sinks: [new MemorySink(), { sink: new MemorySink(), delivery: { retry: { maxAttempts: 0 } } }],
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).issues.map((i) => i.path)).toEqual([
      "sinks[1].delivery.retry.maxAttempts",
    ]);
    expect(() => configure({ sinks: [1 as never] })).toThrow(ConfigurationError);
    emit("still-old-config");
    expect((await collect(sink)).map((e) => e.event_type)).toEqual(["still-old-config"]);
  });

  it("merges per-sink delivery over the defaults", async () => {
    const sink = new MemorySink();
    configure({
      sinks: [{ sink, delivery: { maxBatchSize: 2 } }],
      delivery: { flushIntervalMs: 600_000, maxBatchSize: 100 },
      logger,
    });
    emit("a");
    await new Promise((r) => setTimeout(r, 20));
    expect(sink.events).toHaveLength(0);
    emit("b");
    await vi.waitFor(() => expect(sink.events).toHaveLength(2));
  });

  it("with no sinks (and no STREAMLL_SINK) sends nothing and calls straight through", () => {
    configure({ logger });
    expect(getMetrics()).toEqual([]);
    expect(instrument((x: number) => x * 2)(4)).toBe(8);
  });

  it("applies encode limits", async () => {
    const sink = setup({ encode: { maxStringLength: 32 } });
    emit("long", { text: "x".repeat(1_000) });
    const [event] = await collect(sink);
    expect(String(event?.data.text).length).toBeLessThan(100);
  });
});

describe("redact and filter", () => {
  it("lets a redact function rewrite or drop events", async () => {
    const sink = setup({
      redact: (event) => {
        if (event.event_type === "private") return null;
        event.tags.redacted = "yes";
        return { ...event, data: { ...event.data, note: "seen" } };
      },
    });
    emit("public", { a: 1 });
    emit("private", { b: 2 });
    const events = await collect(sink);
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toEqual({ a: 1, note: "seen" });
    expect(events[0]?.tags).toEqual({ redacted: "yes" });
  });

  it("drops events a redact function returns nothing for, with one warning", async () => {
    const sink = setup({ redact: (() => undefined) as never });
    emit("x");
    emit("y");
    expect(await collect(sink)).toHaveLength(0);
    expect(warnings.filter((w) => w.includes("redact function returned"))).toHaveLength(1);
  });

  it("redacts a key list in nested data", async () => {
    const sink = setup({ redact: ["ssn"] });
    emit("user", { profile: { SSN: "123", name: "ada" }, password: "kept: default list replaced" });
    const [event] = await collect(sink);
    expect(event?.data).toEqual({
      profile: { SSN: "[REDACTED]", name: "ada" },
      password: "kept: default list replaced",
    });
  });

  it("filters with a predicate and with lists", async () => {
    const sink = setup({ eventFilter: (event) => event.event_type !== "noise" });
    emit("noise");
    emit("signal");
    expect((await collect(sink)).map((e) => e.event_type)).toEqual(["signal"]);

    const listed = setup({ eventFilter: { excludeEventTypes: ["token"], operations: ["keep"] } });
    trace("keep", () => emit("inside"));
    trace("drop", () => emit("inside"));
    const events = await collect(listed);
    expect(events.map((e) => `${e.operation}:${e.event_type}`)).toEqual([
      "keep:start",
      "keep:inside",
      "keep:end",
    ]);
  });

  it("keeps events when the filter throws, and warns once", async () => {
    const sink = setup({
      eventFilter: () => {
        throw new Error("filter bug");
      },
    });
    emit("a");
    emit("b");
    expect(await collect(sink)).toHaveLength(2);
    expect(warnings.filter((w) => w.includes("eventFilter threw"))).toHaveLength(1);
  });

  it("logs a throwing filter's error type, never its message (it may quote the event)", async () => {
    const sink = setup({
      eventFilter: () => {
        throw new Error("lookup with sk-proj-PLANTEDSECRET1234567890abcdef failed");
      },
    });
    emit("a");
    expect(await collect(sink)).toHaveLength(1);
    const line = warnings.find((w) => w.includes("eventFilter threw"));
    expect(line).toBe(
      "eventFilter threw; event kept: Error (its message is not shown: it may quote event data)",
    );
    expect(warnings.join("\n")).not.toContain("PLANTED");
  });

  it("logs a throwing redact function's error type, never its message: JSON.parse quotes the text it refused", async () => {
    const secret = "Pl4nted-Passw0rd-XYZ";
    const sink = setup({
      redact: (event) => {
        JSON.parse(String(event.data.password));
        return event;
      },
    });
    emit("a", { password: secret });
    expect(await collect(sink)).toHaveLength(0);
    const line = warnings.find((w) => w.includes("redact function threw"));
    expect(line).toBe(
      "redact function threw; event dropped: SyntaxError (its message is not shown: it may quote event data)",
    );
    expect(warnings.join("\n")).not.toContain(secret);
  });
});

describe("flush, shutdown, metrics, state changes", () => {
  it("rejects a timeout that is not a number >= 0 at once, instead of waiting for the default", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink], logger });
    for (const bad of ["2000", -1, Number.NaN, null, {}]) {
      await expect(flush(bad as never)).rejects.toThrow(/^invalid flush\(\) argument: timeoutMs: expected/);
      await expect(shutdown(bad as never)).rejects.toBeInstanceOf(ConfigurationError);
      await expect(sink.waitFor(1, bad as never)).rejects.toThrow(/MemorySink\.waitFor\(\) argument/);
    }
    // Nothing was shut down by the rejected calls.
    expect(sink.isClosed).toBe(false);
    await expect(flush(Number.POSITIVE_INFINITY)).resolves.toBe(true);
    await shutdown(0);
    expect(sink.isClosed).toBe(true);
  });

  it("shutdown drains pending events, closes the sink and resets streamll", async () => {
    const sink = new MemorySink();
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 600_000 } }], logger });
    for (let i = 0; i < 3; i++) emit("pending", { i });
    expect(sink.events).toHaveLength(0);
    await shutdown();
    expect(sink.events.map((e) => e.data.i)).toEqual([0, 1, 2]);
    expect(sink.isClosed).toBe(true);
    expect(getMetrics()).toEqual([]);
    emit("after-shutdown");
    const again = setup();
    emit("configured-again");
    expect((await collect(again)).map((e) => e.event_type)).toEqual(["configured-again"]);
  });

  it("flush resolves true when everything is delivered, also with nothing configured", async () => {
    await expect(flush()).resolves.toBe(true);
    setup();
    emit("x");
    await expect(flush(2_000)).resolves.toBe(true);
  });

  it("reports metrics per sink in configuration order", async () => {
    const a = new MemorySink({ name: "a" });
    const b = new MemorySink({ name: "b" });
    configure({ sinks: [a, b], delivery: { flushIntervalMs: 1 }, logger });
    emit("x");
    emit("y");
    await flush(2_000);
    const metrics = getMetrics();
    expect(metrics.map((m) => [m.sink, m.emitted, m.delivered, m.dropped, m.pending])).toEqual([
      ["a", 2, 2, 0, 0],
      ["b", 2, 2, 0, 0],
    ]);
  });

  it("publishes circuit breaker changes of every sink to onStateChange listeners", async () => {
    const changes: StateChange[] = [];
    const unsubscribe = onStateChange((change) => changes.push(change));
    onStateChange(() => {
      throw new Error("listener bug");
    });
    configure({
      sinks: [
        {
          sink: failingSink(),
          delivery: {
            flushIntervalMs: 1,
            circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 60_000 },
            retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
          },
        },
      ],
      logger,
    });
    emit("x");
    await vi.waitFor(() => expect(changes).toHaveLength(1));
    expect(changes[0]).toMatchObject({ sink: "down", from: "closed", to: "open" });
    expect(getMetrics()[0]?.breakerState).toBe("open");
    unsubscribe();
    // The sink never recovers: give up on the pending event instead of waiting out the default drain time.
    await shutdown(10);
  });

  it("the default logger writes one prefixed line to stderr", () => {
    const write = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    stderrLogger.warn("first line\nsecond line", { sink: "redis" });
    stderrLogger.error("broken");
    stderrLogger.warn('streamll: sink "x" is dropping events');
    expect(write.mock.calls.map((call) => call[0])).toEqual([
      '[streamll] first line second line {"sink":"redis"}\n',
      "[streamll] error: broken\n",
      '[streamll] sink "x" is dropping events\n',
    ]);
  });
});

describe("process integration (child processes)", () => {
  const dir = mkdtempSync(join(tmpdir(), "streamll-runtime-"));
  // The children run the built package (`pnpm build` first, as the CLI tests do): plain Node loads it on every
  // supported major, where loading this TypeScript source needed a flag Node 26 no longer has.
  const imports = `import { configure, emit, flush, instrument, JsonlFileSink, shutdown, trace } from ${JSON.stringify(
    fileURLToPath(new URL("../../dist/index.js", import.meta.url)),
  )};
`;
  let counter = 0;

  function run(body: string, env: Record<string, string> = {}) {
    counter += 1;
    const script = join(dir, `child-${counter}.mjs`);
    writeFileSync(script, `${imports}\n${body}\n`);
    const baseEnv: Record<string, string | undefined> = { ...process.env };
    for (const key of Object.keys(baseEnv)) if (key.startsWith("STREAMLL_")) delete baseEnv[key];
    return spawnSync(process.execPath, [script], {
      encoding: "utf8",
      timeout: 20_000,
      env: { ...baseEnv, ...env },
    });
  }

  const readEvents = (path: string): StreamllEvent[] =>
    readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => streamllEventSchema.parse(JSON.parse(line)) as StreamllEvent);

  it("flushes pending events on beforeExit without shutdown()", () => {
    const path = join(dir, "exit-flush.jsonl");
    const result = run(`
configure({ sinks: [{ sink: new JsonlFileSink({ path: ${JSON.stringify(path)} }), delivery: { flushIntervalMs: 600000 } }] });
const answer = instrument(async function answer(q) { return q.length; });
console.log(await answer("hello"));
`);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe("5");
    expect(readEvents(path).map((e) => e.event_type)).toEqual(["start", "end"]);
  });

  it("exits when the sink never answers: the exit flush runs once and gives up", () => {
    const result = run(`
let beforeExit = 0;
process.on("beforeExit", () => { beforeExit += 1; });
process.on("exit", () => { console.log(JSON.stringify({ beforeExit })); });
const hanging = { name: "hang", send: () => new Promise(() => {}), close: async () => {} };
configure({
  sinks: [{ sink: hanging, delivery: { flushIntervalMs: 600000, sendTimeoutMs: 50, retry: { initialDelayMs: 10, maxDelayMs: 10 } } }],
  exitFlushTimeoutMs: 300,
  logger: { warn() {}, error() {} },
});
emit("lost");
`);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    const { beforeExit } = JSON.parse(result.stdout.trim()) as { beforeExit: number };
    expect(beforeExit).toBeGreaterThanOrEqual(1);
    expect(beforeExit).toBeLessThanOrEqual(3);
  });

  it("past the exit flush deadline, gives up on a send that holds the process (a silent broker)", () => {
    // Like the broker sinks: a send in flight holds the process (a ref'd timer) until it settles or its signal
    // aborts. Its own timeout (60 s) is far past the 20 s this child may run, so only the exit flush's deadline
    // (300 ms) can end it.
    const result = run(`
const held = {
  name: "held",
  send: (_batch, { signal }) => new Promise((_resolve, reject) => {
    const hold = setInterval(() => {}, 1000);
    signal.addEventListener("abort", () => { clearInterval(hold); reject(signal.reason); }, { once: true });
  }),
  close: async () => {},
};
const warnings = [];
configure({
  sinks: [{ sink: held, delivery: { sendTimeoutMs: 60000 } }],
  exitFlushTimeoutMs: 300,
  logger: { warn(message) { warnings.push(message); }, error() {} },
});
emit("lost");
process.on("exit", () => { console.log(JSON.stringify(warnings.filter((w) => w.includes("exit flush")))); });
`);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    // The lost event is reported, not dropped silently.
    expect(JSON.parse(result.stdout.trim())).toEqual([
      'streamll: the exit flush timed out after 300 ms; events not delivered: 1 for sink "held" (call shutdown() before the program ends to choose how long to wait)',
    ]);
  });

  it("configures itself from STREAMLL_* variables when configure() is never called", () => {
    const path = join(dir, "from-env.jsonl");
    const result = run(
      `
const step = instrument(function step(x) { return trace("inner", () => x + 1); });
console.log(step(1));
emit("ready", { ok: true });
`,
      {
        STREAMLL_SINK: "jsonl",
        STREAMLL_JSONL_PATH: path,
        STREAMLL_TAGS: "team=search",
        STREAMLL_SERVICE: "bot",
        STREAMLL_ENV: "test",
        STREAMLL_INCLUDE_INPUTS: "false",
      },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("2");
    const events = readEvents(path);
    expect(events.map((e) => `${e.module_name}:${e.operation}:${e.event_type}`)).toEqual([
      "step:null:start",
      "step:inner:start",
      "step:inner:end",
      "step:null:end",
      "bot:null:ready",
    ]);
    for (const event of events) expect(event.tags).toEqual({ team: "search", service: "bot", env: "test" });
    expect(events[0]?.data.inputs).toBeUndefined();
    expect(events[3]?.data.outputs).toBe(2);
  });

  it("STREAMLL_DISABLED=1 turns everything off while instrumented code still runs", () => {
    const path = join(dir, "disabled.jsonl");
    const result = run(
      `
configure({ sinks: [new JsonlFileSink({ path: ${JSON.stringify(path)} })] });
const f = instrument(function f(x) { return x * 2; });
console.log(f(21));
emit("nothing");
`,
      { STREAMLL_DISABLED: "1" },
    );
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe("42");
    expect(existsSync(path)).toBe(false);
  });

  it("warns once about a bad variable and carries on", () => {
    const result = run(`console.log(instrument((x) => x + 1)(1));`, { STREAMLL_SINK: "carrier-pigeon" });
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe("2");
    expect(result.stderr).toBe(
      "[streamll] STREAMLL_SINK ignored: expected one of terminal, jsonl, memory, none\n",
    );
  });
});
