import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { Sink } from "../delivery/sink";
import { MemorySink } from "../sinks/memory-sink";
import { configure, getMetrics, shutdown } from "./runtime";
import { emit } from "./trace";

const quiet = { warn() {}, error() {} };

function downBroker(name: string): Sink {
  return {
    name,
    send: async () => {
      throw new Error("ECONNREFUSED");
    },
    close: async () => {},
  };
}

afterEach(async () => {
  await shutdown(100);
});

describe("shutdown() called twice", () => {
  it("returns the same promise, resolving to the metrics of the sinks it shut down", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink], logger: quiet });
    emit("important");
    const first = shutdown(1_000);
    const second = shutdown(1_000);
    expect(second).toBe(first);
    const metrics = await second;
    expect(metrics.map((m) => [m.sink, m.delivered])).toEqual([["memory", 1]]);
    // Until sinks are configured again, a later call still answers with that shutdown.
    expect(shutdown()).toBe(first);
  });

  it("still rejects an invalid timeout", async () => {
    configure({ sinks: [new MemorySink()], logger: quiet });
    const first = shutdown(1_000);
    await expect(shutdown(-1)).rejects.toThrow(/shutdown\(\)/);
    await first;
  });
});

describe("configure() called again, in a child process", () => {
  // Runs the built package (`pnpm build` first), as the other child-process tests of the runtime do.
  it("a replaced sink that cannot deliver does not keep an ended program alive past the exit flush", () => {
    const dir = mkdtempSync(join(tmpdir(), "streamll-reconfigure-"));
    const dist = fileURLToPath(new URL("../../dist/index.js", import.meta.url));
    const script = join(dir, "child.mjs");
    writeFileSync(
      script,
      `import { configure, emit, MemorySink } from ${JSON.stringify(dist)};
const warnings = [];
const logger = { warn(message) { warnings.push(message); }, error() {} };
const down = { name: "down", send: async () => { throw new Error("ECONNREFUSED"); }, close: async () => {} };
configure({ sinks: [down], logger });
emit("e", {});
configure({ sinks: [new MemorySink()], logger, exitFlushTimeoutMs: 300 });
process.on("exit", () => { console.log(JSON.stringify(warnings.filter((w) => w.includes("exit flush")))); });
`,
    );
    // The replaced pipeline used to drain for a fixed 30 s holding the process: the 15 s timeout would kill it.
    const result = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 15_000 });
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    // Its undelivered event is reported by the exit flush, as a current sink's would be.
    expect(JSON.parse(result.stdout.trim())).toEqual([
      'streamll: the exit flush timed out after 300 ms; events not delivered: 1 for sink "down" (call shutdown() before the program ends to choose how long to wait)',
    ]);
  });
});

// Last: the replaced sink it leaves draining would make later shutdowns wait their whole timeout.
describe("configure() called again", () => {
  it("keeps the replaced sink in getMetrics() while it drains, with its pending events", async () => {
    configure({ sinks: [downBroker("down-broker")], logger: quiet });
    for (let i = 0; i < 100; i++) emit("e", { i });
    configure({ sinks: [new MemorySink()], logger: quiet });
    const metrics = getMetrics();
    expect(metrics.map((m) => m.sink)).toEqual(["memory", "down-broker"]);
    const down = metrics[1]!;
    expect(down).toMatchObject({ emitted: 100, delivered: 0 });
    expect(down.emitted).toBe(down.delivered + down.dropped + down.pending);
    expect(down.pending).toBe(100);
  });
});

describe("shutdown() with a replaced sink still draining", () => {
  it("ends its drain at its own deadline: the send in flight is aborted and its metrics are returned", async () => {
    let signal: AbortSignal | undefined;
    const stuck: Sink = {
      name: "stuck",
      // Answers only when aborted, as a client waiting on a broker that stopped answering.
      send: (_batch, context) =>
        new Promise<void>((_resolve, reject) => {
          signal = context?.signal;
          signal?.addEventListener("abort", () => reject(signal?.reason));
        }),
      close: async () => {},
    };
    configure({ sinks: [stuck], logger: quiet, delivery: { flushIntervalMs: 0 } });
    emit("in-flight");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(signal?.aborted).toBe(false);
    configure({ sinks: [new MemorySink()], logger: quiet });
    const metrics = await shutdown(200);
    expect(signal?.aborted).toBe(true);
    expect(metrics.map((m) => m.sink)).toEqual(["memory", "stuck"]);
    expect(metrics[1]).toMatchObject({ emitted: 1, delivered: 0, dropped: 1, pending: 0, inFlight: 0 });
    expect(metrics[1]?.droppedByReason.shutdown).toBe(1);
  });
});
