import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import type { Sink } from "../delivery/sink";
import { ConfigurationError } from "../errors";
import { type StreamllEvent, streamllEventSchema } from "../events/event-schema";
import { MemorySink } from "../sinks/memory-sink";
import type { StreamllLogger, StreamllOptions } from "./configure";
import { getCurrentSpan } from "./context";
import { type InstrumentDecorator, instrument, isInstrumented } from "./instrument";
import { configure, flush, shutdown } from "./runtime";
import { emit, trace } from "./trace";

const warnings: string[] = [];
const logger: StreamllLogger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

function setup(options: Omit<StreamllOptions, "sinks"> = {}): MemorySink {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger, ...options });
  return sink;
}

async function collect(sink: MemorySink): Promise<StreamllEvent[]> {
  await flush(2_000);
  const events = sink.events;
  for (const event of events) streamllEventSchema.parse(event);
  return events;
}

const types = (events: StreamllEvent[]) => events.map((e) => e.event_type);

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
});

describe("instrument(function)", () => {
  it("keeps a sync function sync and records start and end", async () => {
    const sink = setup();
    const add = instrument(function add(a: number, b: number) {
      return a + b;
    });
    const result = add(2, 3);
    expect(result).toBe(5);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    const [start, end] = events as [StreamllEvent, StreamllEvent];
    expect(start.module_name).toBe("add");
    // A plain function is a module with one entry point: forward, as Python streamll's model defaults it.
    expect(start.method_name).toBe("forward");
    expect(start.data.inputs).toEqual([2, 3]);
    expect(end.data.outputs).toBe(5);
    expect(typeof end.data.duration_ms).toBe("number");
    expect(end.span_id).toBe(start.span_id);
    expect(start.parent_span_id).toBeNull();
    expect(start.module_version).toBeNull();
    expect(start.code_signature).toBeNull();
    expect(start.git_commit).toBeNull();
  });

  it("records a single argument as itself, not as an array", async () => {
    const sink = setup();
    const greet = instrument((who: { name: string }) => `hi ${who.name}`, { name: "greeter" });
    greet({ name: "ada" });
    const [start] = await collect(sink);
    expect(start?.data.inputs).toEqual({ name: "ada" });
    expect(start?.module_name).toBe("greeter");
  });

  it("preserves name, length and this", async () => {
    setup();
    const target = {
      factor: 3,
      scale(this: { factor: number }, x: number, _unused?: number) {
        return x * this.factor;
      },
    };
    const scale = instrument(target.scale);
    expect(scale.name).toBe("scale");
    expect(scale.length).toBe(target.scale.length);
    expect(scale.call({ factor: 10 }, 2)).toBe(20);
  });

  it("resolves async functions and records the resolved value", async () => {
    const sink = setup();
    const fetchAnswer = instrument(async (q: string) => {
      await new Promise((r) => setTimeout(r, 5));
      return { answer: q.toUpperCase() };
    });
    const pending = fetchAnswer("why");
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).resolves.toEqual({ answer: "WHY" });
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    expect(events[1]?.data.outputs).toEqual({ answer: "WHY" });
    expect(events[1]?.data.duration_ms as number).toBeGreaterThan(0);
  });

  it("stamps events with a test's fake clock (vi.useFakeTimers, vi.spyOn on Date.now or performance.now)", async () => {
    const sink = setup();
    const add = instrument(function add(a: number, b: number) {
      return a + b;
    });
    add(1, 2); // the event clock is anchored to the real time now
    vi.useFakeTimers();
    try {
      vi.setSystemTime(new Date("2030-01-01T00:00:00.000Z"));
      add(3, 4);
    } finally {
      vi.useRealTimers();
    }
    const spy = vi.spyOn(Date, "now").mockReturnValue(Date.parse("2031-06-01T12:00:00.000Z"));
    try {
      add(5, 6);
    } finally {
      spy.mockRestore();
    }
    add(9, 10); // anchored to the real time again
    // A faked monotonic clock (here a day behind): the wall clock stamps the events.
    const frozen = vi.spyOn(performance, "now").mockReturnValue(-86_400_000);
    try {
      add(7, 8);
    } finally {
      frozen.mockRestore();
    }
    const events = await collect(sink);
    expect(events.map((event) => event.timestamp.slice(0, 10))).toEqual([
      new Date().toISOString().slice(0, 10),
      new Date().toISOString().slice(0, 10),
      "2030-01-01",
      "2030-01-01",
      "2031-06-01",
      "2031-06-01",
      ...Array(4).fill(new Date().toISOString().slice(0, 10)),
    ]);
  });

  it("stamps start and end from the clock that times the call: their distance is its duration", async () => {
    const sink = setup();
    const slow = instrument(async function slow() {
      await new Promise((r) => setTimeout(r, 25));
    });
    const block = () => trace("block", () => new Promise((r) => setTimeout(r, 15)));
    // Measured on the second round: a first start event may take milliseconds to build (cold code), and
    // `duration_ms` starts after it.
    for (let round = 0; round < 2; round++) {
      await slow();
      await block();
    }
    const events = (await collect(sink)).slice(4);
    expect(types(events)).toEqual(["start", "end", "start", "end"]);
    for (const [start, end] of [events.slice(0, 2), events.slice(2, 4)] as [StreamllEvent, StreamllEvent][]) {
      const apart = Date.parse(end.timestamp) - Date.parse(start.timestamp);
      // Timestamps count whole milliseconds; the duration is kept to the microsecond.
      expect(Math.abs(apart - (end.data.duration_ms as number))).toBeLessThanOrEqual(2);
    }
  });

  it("rethrows the original sync error unchanged and records it", async () => {
    const sink = setup();
    const original = new TypeError("bad input");
    (original as { code?: string }).code = "E_BAD";
    const fail = instrument(() => {
      throw original;
    });
    let caught: unknown;
    try {
      fail();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(original);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "error"]);
    const data = events[1]?.data ?? {};
    expect(data.error_type).toBe("TypeError");
    expect(data.error_message).toBe("bad input");
    expect(data.error_code).toBe("E_BAD");
    expect(typeof data.stack).toBe("string");
    expect(typeof data.duration_ms).toBe("number");
  });

  it("keeps passwords of connection URLs out of error events, and the thrown error untouched", async () => {
    const sink = setup();
    const message = "connect to redis://default:hunter2-secret@cache:6379 refused";
    const original = new Error(message);
    const fail = instrument(async function connect() {
      throw original;
    });
    await expect(fail()).rejects.toBe(original);
    expect(original.message).toBe(message);
    const [, errorEvent] = await collect(sink);
    expect(errorEvent?.data.error_message).toBe("connect to redis://default:[redacted]@cache:6379 refused");
    expect(JSON.stringify(errorEvent)).not.toContain("hunter2");
  });

  it("truncates long stacks to about 2 KB", async () => {
    const sink = setup();
    const error = new Error("deep");
    error.stack = `Error: deep\n${"    at frame (file.ts:1:1)\n".repeat(500)}`;
    const fail = instrument(() => {
      throw error;
    });
    expect(() => fail()).toThrow(error);
    const [, errorEvent] = await collect(sink);
    expect(String(errorEvent?.data.stack).length).toBeLessThanOrEqual(2_049);
  });

  it("rejects with the original async error and records non-Error throws", async () => {
    const sink = setup();
    const original = new RangeError("nope");
    const failAsync = instrument(async () => {
      await Promise.resolve();
      throw original;
    });
    await expect(failAsync()).rejects.toBe(original);
    const throwString = instrument(() => {
      throw "plain string";
    });
    expect(() => throwString()).toThrow("plain string");
    const events = await collect(sink);
    const errors = events.filter((e) => e.event_type === "error");
    expect(errors.map((e) => e.data.error_type)).toEqual(["RangeError", "string"]);
    expect(errors[1]?.data.error_message).toBe("plain string");
  });

  it("returns custom thenables untouched and ends the call when it returns", async () => {
    const sink = setup();
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: a minimal thenable is the point of this test
      then(resolve: (value: number) => void) {
        setTimeout(() => resolve(42), 1);
      },
    };
    const lazy = instrument(() => thenable);
    const returned = lazy();
    expect(returned).toBe(thenable);
    await expect(Promise.resolve(returned)).resolves.toBe(42);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    // Its `then` is never called by streamll: the output is the thenable as the sanitiser describes it.
    // biome-ignore lint/suspicious/noThenProperty: the recorded output of a thenable has its then key
    expect(events[1]?.data.outputs).toEqual({ then: "[Function then]" });
  });

  it("does not double-wrap", async () => {
    const sink = setup();
    const once = instrument(() => 1);
    const twice = instrument(once);
    expect(twice).toBe(once);
    expect(isInstrumented(once)).toBe(true);
    twice();
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });

  it("passes constructor calls through", () => {
    setup();
    function Point(this: { x: number }, x: number) {
      this.x = x;
    }
    const Wrapped = instrument(Point) as unknown as new (x: number) => { x: number };
    const p = new Wrapped(4);
    expect(p.x).toBe(4);
    expect(p).toBeInstanceOf(Wrapped);
  });

  it("merges global and instrument tags", async () => {
    const sink = setup({ tags: { service: "svc", team: "a" } });
    const f = instrument(() => 0, { tags: { team: "b", model: "m1" } });
    f();
    const [start] = await collect(sink);
    expect(start?.tags).toEqual({ service: "svc", team: "b", model: "m1" });
  });

  it("sets the operation when given", async () => {
    const sink = setup();
    instrument(() => 0, { operation: "classify" })();
    const [start] = await collect(sink);
    expect(start?.operation).toBe("classify");
  });

  it("validates options", () => {
    expect(() => instrument(() => 0, { name: "" })).toThrow(ConfigurationError);
    expect(() => instrument(() => 0, { methods: [1 as unknown as string] })).toThrow(
      /methods\[0\]: expected a method name/,
    );
    expect(() => instrument(() => 0, { bogus: true } as never)).toThrow(/bogus: unknown option/);
    expect(() => instrument(42 as never)).toThrow(ConfigurationError);
  });
});

describe("inputs and outputs", () => {
  it("leaves inputs and outputs out when disabled globally", async () => {
    const sink = setup({ includeInputs: false, includeOutputs: false });
    instrument((x: number) => x * 2)(4);
    const events = await collect(sink);
    expect(events[0]?.data).toEqual({});
    expect(Object.keys(events[1]?.data ?? {})).toEqual(["duration_ms"]);
  });

  it("lets instrument options override the global setting", async () => {
    const sink = setup({ includeInputs: false });
    instrument((x: number) => x * 2, { includeInputs: true, includeOutputs: false })(4);
    const events = await collect(sink);
    expect(events[0]?.data.inputs).toBe(4);
    expect(events[1]?.data.outputs).toBeUndefined();
  });

  it("sanitises circular and exotic inputs without breaking the call", async () => {
    const sink = setup();
    const circular: Record<string, unknown> = { name: "loop" };
    circular.self = circular;
    const f = instrument((value: unknown, big: bigint) => (typeof value === "object" ? big + 1n : 0n));
    expect(f(circular, 1n)).toBe(2n);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    const inputs = events[0]?.data.inputs as unknown[];
    expect((inputs[0] as Record<string, unknown>).name).toBe("loop");
  });

  it("survives arguments whose getters throw", async () => {
    const sink = setup();
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error("trap");
        },
        ownKeys() {
          throw new Error("trap");
        },
      },
    );
    const f = instrument((_x: unknown) => "ok");
    expect(f(hostile)).toBe("ok");
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });

  it("redacts credentials in inputs by default", async () => {
    const sink = setup();
    instrument((_config: unknown) => 1)({ apiKey: "sk-secret", model: "m" });
    const [start] = await collect(sink);
    expect(start?.data.inputs).toEqual({ apiKey: "[REDACTED]", model: "m" });
    expect(JSON.stringify(sink.events)).not.toContain("sk-secret");
  });
});

describe("context and nesting", () => {
  it("nests calls: children carry the caller's span as parent and share its execution", async () => {
    const sink = setup();
    const inner = instrument(async function inner(x: number) {
      await new Promise((r) => setTimeout(r, 1));
      return x + 1;
    });
    const outer = instrument(async function outer(x: number) {
      const [a, b] = await Promise.all([inner(x), inner(x + 10)]);
      return a + b;
    });
    await outer(1);
    await outer(2);
    const events = await collect(sink);
    const starts = events.filter((e) => e.event_type === "start");
    expect(starts).toHaveLength(6);
    const outers = starts.filter((e) => e.module_name === "outer");
    const inners = starts.filter((e) => e.module_name === "inner");
    expect(outers[0]?.execution_id).not.toBe(outers[1]?.execution_id);
    for (const child of inners) {
      const parent = outers.find((o) => o.span_id === child.parent_span_id);
      expect(parent).toBeDefined();
      expect(child.execution_id).toBe(parent?.execution_id);
    }
  });

  it("exposes the current span inside the call and nothing outside", () => {
    setup();
    expect(getCurrentSpan()).toBeUndefined();
    const seen = instrument(function probe() {
      return getCurrentSpan();
    })();
    expect(seen?.moduleName).toBe("probe");
    expect(seen?.depth).toBe(0);
    expect(getCurrentSpan()).toBeUndefined();
  });

  it("keeps the parent across timers", async () => {
    const sink = setup();
    const child = instrument(function child() {
      return 1;
    });
    const parent = instrument(function parent() {
      return new Promise<number>((resolve) => setTimeout(() => resolve(child()), 2));
    });
    await parent();
    const events = await collect(sink);
    const parentStart = events.find((e) => e.module_name === "parent" && e.event_type === "start");
    const childStart = events.find((e) => e.module_name === "child" && e.event_type === "start");
    expect(childStart?.parent_span_id).toBe(parentStart?.span_id);
  });
});

describe("instrument(class)", () => {
  it("patches forward and streamingForward on the prototype and returns the class", async () => {
    const sink = setup();
    class Summarizer {
      prefix = "sum:";
      async forward(text: string) {
        return `${this.prefix}${text}`;
      }
      async *streamingForward(text: string) {
        yield this.prefix;
        yield text;
      }
      helper() {
        return "untouched";
      }
    }
    const Returned = instrument(Summarizer);
    expect(Returned).toBe(Summarizer);
    const s = new Summarizer();
    expect(await s.forward("x")).toBe("sum:x");
    const chunks: string[] = [];
    for await (const chunk of s.streamingForward("y")) chunks.push(chunk);
    expect(chunks).toEqual(["sum:", "y"]);
    expect(s.helper()).toBe("untouched");
    const events = await collect(sink);
    expect(events.every((e) => e.module_name === "Summarizer")).toBe(true);
    expect(events.map((e) => `${e.method_name}:${e.event_type}`)).toEqual([
      "forward:start",
      "forward:end",
      "streamingForward:start",
      "streamingForward:token",
      "streamingForward:token",
      "streamingForward:end",
    ]);
    expect(s.forward.name).toBe("forward");
  });

  it("reports the subclass name and leaves the base class alone", async () => {
    const sink = setup();
    class Base {
      forward() {
        return "base";
      }
    }
    class Derived extends Base {}
    instrument(Derived);
    new Derived().forward();
    new Base().forward();
    const events = await collect(sink);
    expect(events.map((e) => e.module_name)).toEqual(["Derived", "Derived"]);
  });

  it("instruments the listed methods and names the module", async () => {
    const sink = setup();
    class Agent {
      run(x: number) {
        return x;
      }
      plan() {
        return "p";
      }
    }
    instrument(Agent, { methods: ["run", "plan"], name: "planner" });
    const agent = new Agent();
    agent.run(1);
    agent.plan();
    const events = await collect(sink);
    expect(events.map((e) => `${e.module_name}.${e.method_name}`)).toEqual([
      "planner.run",
      "planner.run",
      "planner.plan",
      "planner.plan",
    ]);
  });

  it("rejects classes without the methods to instrument", () => {
    class Empty {
      other() {}
    }
    expect(() => instrument(Empty)).toThrow(/nothing to instrument/);
    expect(() => instrument(Empty, { methods: ["missing"] })).toThrow(
      /methods\[0\] is not a method of Empty/,
    );
  });

  it("names a missing method by its index, never by its value (it may be a secret), and suggests the nearest", () => {
    const secret = "sk-proj-PLANTEDSECRET1234567890abcdef";
    let error: unknown;
    try {
      instrument({ forward() {}, summarize() {} }, { methods: ["forward", secret, "sumarize"] });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    const { message, issues } = error as ConfigurationError;
    expect(message).not.toContain("PLANTEDSECRET");
    expect(JSON.stringify(issues)).not.toContain("PLANTEDSECRET");
    expect(message).toContain(
      "methods[1], methods[2] (did you mean `summarize`?) are not methods of an object",
    );
    expect(issues).toEqual([
      { path: "methods[1]", message: "not a method of an object" },
      { path: "methods[2]", message: "not a method of an object (did you mean `summarize`?)" },
    ]);
  });

  it("reads a plain object without methods as decorator options, so a misspelled option is named", () => {
    expect(() => instrument({ nme: "qa" } as never)).toThrow(/nme: unknown option; did you mean `name`\?/);
    // An object with a method is still a target.
    expect(() => instrument({ nme: "qa", forward: () => 1 })).not.toThrow();
  });

  it("does not double-wrap a class instrumented twice", async () => {
    const sink = setup();
    class Twice {
      forward() {
        return 1;
      }
    }
    instrument(Twice);
    instrument(Twice);
    new Twice().forward();
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });
});

describe("instrument(instance or object)", () => {
  it("patches an instance in place, keeping identity and private fields", async () => {
    const sink = setup();
    class Counter {
      #count = 0;
      forward() {
        this.#count += 1;
        return this.#count;
      }
    }
    const counter = new Counter();
    const same = instrument(counter);
    expect(same).toBe(counter);
    expect(counter.forward()).toBe(1);
    expect(counter.forward()).toBe(2);
    expect(new Counter().forward()).toBe(1);
    const events = await collect(sink);
    expect(events).toHaveLength(4);
    expect(events[0]?.module_name).toBe("Counter");
    expect(Object.keys(counter)).toEqual([]);
  });

  it("returns a proxy for a plain object and leaves the original uninstrumented", async () => {
    const sink = setup();
    const original = {
      calls: 0,
      forward(x: number) {
        this.calls += 1;
        return x * 2;
      },
    };
    const proxied = instrument(original, { name: "doubler" });
    expect(proxied).not.toBe(original);
    expect(proxied.forward(2)).toBe(4);
    expect(original.calls).toBe(1);
    original.forward(3);
    expect(instrument(proxied)).toBe(proxied);
    expect(instrument(original)).toBe(proxied);
    const events = await collect(sink);
    expect(events.map((e) => `${e.module_name}.${e.method_name}:${e.event_type}`)).toEqual([
      "doubler.forward:start",
      "doubler.forward:end",
    ]);
  });

  it("copies frozen objects", async () => {
    const sink = setup();
    const frozen = Object.freeze({
      forward() {
        return "ok";
      },
    });
    const wrapped = instrument(frozen);
    expect(wrapped.forward()).toBe("ok");
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });

  it("types: returns the target type, and a decorator for options only", () => {
    class Named {
      name = "n";
      forward() {
        return 1;
      }
    }
    expectTypeOf(instrument(new Named())).toEqualTypeOf<Named>();
    expectTypeOf(instrument(Named)).toEqualTypeOf<typeof Named>();
    const fn = (a: string) => a.length;
    expectTypeOf(instrument(fn)).toEqualTypeOf<typeof fn>();
    expectTypeOf(instrument({ name: "x" })).toEqualTypeOf<InstrumentDecorator>();
    expectTypeOf(instrument()).toEqualTypeOf<InstrumentDecorator>();
  });
});

describe("async generators", () => {
  it("starts at the first next(), emits a token per yield and ends when done", async () => {
    const sink = setup();
    const stream = instrument(async function* generate(prompt: string) {
      yield "Hel";
      yield "lo";
      yield { delta: " world" };
      return prompt.length;
    });
    const generator = stream("hi");
    await flush(2_000);
    // Langfuse ends the span when the generator object is returned; nothing may be recorded before iterating.
    expect(sink.events).toHaveLength(0);
    const chunks: unknown[] = [];
    for await (const chunk of generator) chunks.push(chunk);
    expect(chunks).toHaveLength(3);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "token", "token", "token", "end"]);
    expect(events[0]?.data.inputs).toBe("hi");
    expect(events.slice(1, 4).map((e) => e.data)).toEqual([
      { field: "output", token: "Hel", token_index: 0 },
      { field: "output", token: "lo", token_index: 1 },
      { field: "output", token: " world", token_index: 2 },
    ]);
    const end = events[4]?.data ?? {};
    expect(end.token_count).toBe(3);
    expect(end.cancelled).toBe(false);
    expect(end.outputs).toEqual({ output: "Hello world", return_value: 2 });
  });

  it("does not end the span while the consumer is still reading; a token goes out once its word is complete", async () => {
    const sink = setup();
    const stream = instrument(async function* slow() {
      yield "a ";
      yield "b";
    });
    const generator = stream();
    await generator.next();
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "token"]);
    await generator.next();
    // "b" may be the start of a credential still streaming: it waits for whitespace or the stream's end.
    expect(types(await collect(sink))).toEqual(["start", "token"]);
    await generator.next();
    expect(types(await collect(sink))).toEqual(["start", "token", "token", "end"]);
  });

  it("marks an early return() by the consumer as cancelled", async () => {
    const sink = setup();
    let cleanedUp = false;
    const stream = instrument(async function* endless() {
      try {
        for (let i = 0; ; i++) yield `t${i}`;
      } finally {
        cleanedUp = true;
      }
    });
    for await (const chunk of stream()) {
      if (chunk === "t2") break;
    }
    expect(cleanedUp).toBe(true);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "token", "token", "token", "end"]);
    expect(events[4]?.data.cancelled).toBe(true);
    expect(events[4]?.data.token_count).toBe(3);
  });

  it("records nothing for a generator stopped before it started", async () => {
    const sink = setup();
    const stream = instrument(async function* never() {
      yield 1;
    });
    const generator = stream();
    await generator.return(undefined);
    expect(await collect(sink)).toHaveLength(0);
  });

  it("records an error thrown inside the generator and rethrows it", async () => {
    const sink = setup();
    const boom = new Error("stream broke");
    const stream = instrument(async function* broken() {
      yield "partial";
      throw boom;
    });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream()) seen.push(chunk);
      })(),
    ).rejects.toBe(boom);
    expect(seen).toEqual(["partial"]);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "token", "error"]);
    expect(events[2]?.data.error_message).toBe("stream broke");
  });

  it("runs each step inside the generator's span so children get it as parent", async () => {
    const sink = setup();
    const lookup = instrument(async function lookup(q: string) {
      await new Promise((r) => setTimeout(r, 1));
      return q;
    });
    const stream = instrument(async function* rag(question: string) {
      const context = await trace("retrieve", async () => lookup(question));
      yield context;
      await new Promise((r) => setTimeout(r, 1));
      yield await lookup("second");
    });
    const caller = instrument(async function caller() {
      const parts: string[] = [];
      // The consumer runs in its own span; the generator's children must still point at the generator.
      for await (const part of stream("q")) parts.push(part);
      return parts;
    });
    expect(await caller()).toEqual(["q", "second"]);
    const events = await collect(sink);
    const span = (name: string, op: string | null = null) =>
      events.find((e) => e.event_type === "start" && e.module_name === name && e.operation === op);
    const callerStart = span("caller");
    const ragStart = span("rag");
    const retrieve = span("rag", "retrieve");
    const lookups = events.filter((e) => e.event_type === "start" && e.module_name === "lookup");
    expect(ragStart?.parent_span_id).toBe(callerStart?.span_id);
    expect(retrieve?.parent_span_id).toBe(ragStart?.span_id);
    expect(lookups[0]?.parent_span_id).toBe(retrieve?.span_id);
    expect(lookups[1]?.parent_span_id).toBe(ragStart?.span_id);
    const ids = new Set(events.map((e) => e.execution_id));
    expect(ids.size).toBe(1);
  });

  it("handles Ax chunks: one token per delta field and a retry marker when the version changes", async () => {
    const sink = setup();
    const stream = instrument(async function* streamingForward() {
      yield { version: 0, index: 0, delta: { answer: "Par" } };
      yield { version: 0, index: 0, delta: { answer: "is" } };
      // Retry: the model output is discarded and streamed again under a new version.
      yield { version: 1, index: 0, delta: { reasoning: "Capital", answer: "Pa" } };
      yield { version: 1, index: 0, delta: { answer: "ris" } };
    });
    for await (const _ of stream()) {
      // drain
    }
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "token", "token", "retry", "token", "token", "token", "end"]);
    const retry = events[3]?.data;
    expect(retry).toEqual({ previous_version: 0, version: 1, discarded_tokens: 2 });
    const afterRetry = events.slice(4, 7).map((e) => [e.data.field, e.data.token, e.data.token_index]);
    expect(afterRetry).toEqual([
      ["reasoning", "Capital", 0],
      ["answer", "Pa", 1],
      ["answer", "ris", 2],
    ]);
    expect(events[4]?.data.sample_index).toBe(0);
    const end = events[7]?.data ?? {};
    expect(end.retries).toBe(1);
    expect(end.token_count).toBe(3);
    expect(end.outputs).toEqual({ reasoning: "Capital", answer: "Paris" });
  });

  it("uses streamField as the field name, or a function per chunk", async () => {
    const sink = setup();
    const named = instrument(
      async function* named() {
        yield "a";
        yield { version: 0, index: 0, delta: { answer: "x", other: "y" } };
      },
      { streamField: "answer" },
    );
    const custom = instrument(
      async function* custom() {
        yield { kind: "text", value: "hi" };
        yield { kind: "ping" };
      },
      {
        streamField: (chunk) => {
          const c = chunk as { kind: string; value?: string };
          return c.kind === "text" && c.value !== undefined ? { field: "reply", token: c.value } : null;
        },
      },
    );
    for await (const _ of named()) {
      // drain
    }
    for await (const _ of custom()) {
      // drain
    }
    const tokens = (await collect(sink))
      .filter((e) => e.event_type === "token")
      .map((e) => [e.data.field, e.data.token]);
    expect(tokens).toEqual([
      ["answer", "a"],
      ["answer", "x"],
      ["reply", "hi"],
    ]);
  });

  it("falls back to JSON for other chunks and leaves them out of the joined outputs", async () => {
    const sink = setup();
    const stream = instrument(async function* numbers() {
      yield 1;
      yield { n: 2 };
    });
    for await (const _ of stream()) {
      // drain
    }
    const events = await collect(sink);
    expect(events.filter((e) => e.event_type === "token").map((e) => e.data.token)).toEqual(["1", '{"n":2}']);
    expect(events.at(-1)?.data.outputs).toEqual({});
  });

  it("emits no token events when outputs are excluded but still counts tokens", async () => {
    const sink = setup({ includeOutputs: false });
    const stream = instrument(async function* quiet() {
      yield "a";
      yield "b";
    });
    for await (const _ of stream()) {
      // drain
    }
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    expect(events[1]?.data.token_count).toBe(2);
    expect(events[1]?.data.outputs).toBeUndefined();
  });

  it("wraps async generators returned by plain functions", async () => {
    const sink = setup();
    async function* source() {
      yield "x";
    }
    const open = instrument(function open() {
      return source();
    });
    for await (const _ of open()) {
      // drain
    }
    expect(types(await collect(sink))).toEqual(["start", "token", "end"]);
  });
});

describe("decorators", () => {
  function standardMethodContext(name: string) {
    return {
      kind: "method",
      name,
      static: false,
      private: false,
      access: { has: () => true, get: () => undefined },
      addInitializer: () => undefined,
      metadata: {},
    } as unknown as ClassMethodDecoratorContext<unknown, (this: unknown, ...args: unknown[]) => unknown>;
  }

  it("decorates a method with the standard (TC39) convention", async () => {
    const sink = setup();
    class Module {
      forward(x: number) {
        return x + 1;
      }
    }
    const decorate = instrument({ operation: "predict" });
    const replacement = decorate(
      Module.prototype.forward as (this: unknown, ...args: unknown[]) => unknown,
      standardMethodContext("forward"),
    );
    Object.defineProperty(Module.prototype, "forward", { value: replacement });
    expect(new Module().forward(1)).toBe(2);
    const events = await collect(sink);
    expect(events.map((e) => `${e.module_name}.${e.method_name}:${e.operation}`)).toEqual([
      "Module.forward:predict",
      "Module.forward:predict",
    ]);
  });

  it("decorates a class with the standard (TC39) convention", async () => {
    const sink = setup();
    class Pipeline {
      forward() {
        return "done";
      }
    }
    const decorate = instrument();
    const result = decorate(Pipeline, {
      kind: "class",
      name: "Pipeline",
      addInitializer: () => undefined,
      metadata: {},
    } as unknown as ClassDecoratorContext<typeof Pipeline>);
    expect(result).toBe(Pipeline);
    new Pipeline().forward();
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });

  it("decorates a method with the legacy (experimentalDecorators) convention", async () => {
    const sink = setup();
    class Legacy {
      forward(x: string) {
        return x.repeat(2);
      }
    }
    const descriptor = Object.getOwnPropertyDescriptor(
      Legacy.prototype,
      "forward",
    ) as TypedPropertyDescriptor<(x: string) => string>;
    const decorate = instrument({ name: "legacy-module" });
    const out = decorate(Legacy.prototype, "forward", descriptor);
    Object.defineProperty(Legacy.prototype, "forward", out);
    expect(new Legacy().forward("ab")).toBe("abab");
    const events = await collect(sink);
    expect(events.map((e) => `${e.module_name}.${e.method_name}`)).toEqual([
      "legacy-module.forward",
      "legacy-module.forward",
    ]);
  });

  it("decorates a class with the legacy convention", async () => {
    const sink = setup();
    class Old {
      forward() {
        return 1;
      }
    }
    const decorate = instrument();
    expect(decorate(Old)).toBe(Old);
    new Old().forward();
    const events = await collect(sink);
    expect(events[0]?.module_name).toBe("Old");
  });

  it("rejects fields, accessors and legacy properties", () => {
    const decorate = instrument() as unknown as (...args: unknown[]) => unknown;
    expect(() => decorate(undefined, { kind: "field", name: "x" })).toThrow(/not a field/);
    expect(() => decorate({}, "prop", undefined)).toThrow(ConfigurationError);
    expect(() => decorate({}, "prop", { get: () => 1 })).toThrow(ConfigurationError);
  });

  it("a method decorated and then its class decorated is wrapped once", async () => {
    const sink = setup();
    class Both {
      forward() {
        return 1;
      }
    }
    const decorate = instrument();
    const replaced = decorate(
      Both.prototype.forward as (this: unknown, ...args: unknown[]) => unknown,
      standardMethodContext("forward"),
    );
    Object.defineProperty(Both.prototype, "forward", { value: replaced });
    decorate(Both);
    new Both().forward();
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });
});

describe("never hurting the host", () => {
  it("calls straight through when disabled", async () => {
    const sink = setup({ enabled: false });
    let called = 0;
    const f = instrument(() => {
      called += 1;
      return getCurrentSpan();
    });
    expect(f()).toBeUndefined();
    expect(called).toBe(1);
    expect(await collect(sink)).toHaveLength(0);
  });

  it("calls straight through when nothing is configured", () => {
    const f = instrument((x: number) => x + 1);
    expect(f(1)).toBe(2);
  });

  it("keeps working when the sink fails", async () => {
    const failing: Sink = {
      name: "broken",
      send: async () => {
        throw new Error("down");
      },
      close: async () => undefined,
    };
    configure({
      sinks: [{ sink: failing, delivery: { flushIntervalMs: 1, retry: { maxAttempts: 1 } } }],
      logger,
    });
    const f = instrument(async (x: number) => x * 3);
    await expect(f(3)).resolves.toBe(9);
    emit("still-fine");
    await flush(500);
  });

  it("keeps the result and error unchanged when the redact function throws", async () => {
    const sink = setup({
      redact: () => {
        throw new Error("redactor bug");
      },
    });
    const ok = instrument(() => "value");
    const bad = instrument(() => {
      throw new SyntaxError("user error");
    });
    expect(ok()).toBe("value");
    expect(() => bad()).toThrow(SyntaxError);
    expect(await collect(sink)).toHaveLength(0);
    expect(warnings.some((w) => w.includes("redact function threw"))).toBe(true);
  });

  it("keeps working when a stream extractor throws", async () => {
    const sink = setup();
    const stream = instrument(
      async function* s() {
        yield "a";
      },
      {
        streamField: () => {
          throw new Error("extractor bug");
        },
      },
    );
    const out: string[] = [];
    for await (const chunk of stream()) out.push(chunk);
    expect(out).toEqual(["a"]);
    expect(types(await collect(sink))).toEqual(["start", "end"]);
  });
});
