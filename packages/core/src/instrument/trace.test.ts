import { afterEach, describe, expect, it } from "vitest";
import { type StreamllEvent, streamllEventSchema } from "../events/event-schema";
import { MemorySink } from "../sinks/memory-sink";
import type { StreamllLogger, StreamllOptions } from "./configure";
import { getCurrentSpan } from "./context";
import { instrument } from "./instrument";
import { configure, flush, shutdown } from "./runtime";
import { emit, trace } from "./trace";

const logger: StreamllLogger = { warn: () => undefined, error: () => undefined };

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

afterEach(async () => {
  await shutdown(2_000);
});

describe("trace", () => {
  it("runs a sync block in a child span and returns its value synchronously", async () => {
    const sink = setup();
    const value = trace("parse", () => {
      emit("parsed", { fields: 3 });
      return 7;
    });
    expect(value).toBe(7);
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "parsed", "end"]);
    for (const event of events) {
      expect(event.operation).toBe("parse");
      expect(event.module_name).toBe("parse");
      expect(event.method_name).toBe("forward");
      expect(event.span_id).toBe(events[0]?.span_id);
    }
    expect(events[1]?.data).toEqual({ fields: 3 });
    expect(typeof events[2]?.data.duration_ms).toBe("number");
    expect(events[2]?.data.outputs).toBeUndefined();
  });

  it("belongs to the enclosing instrumented module", async () => {
    const sink = setup();
    class Rag {
      async forward(question: string) {
        const passages = await trace("retrieval", async () => {
          await new Promise((r) => setTimeout(r, 1));
          emit("retrieved", { count: 2 });
          return ["a", "b"];
        });
        return `${question}:${passages.join("")}`;
      }
    }
    const rag = instrument(new Rag());
    expect(await rag.forward("q")).toBe("q:ab");
    const events = await collect(sink);
    const moduleStart = events[0];
    const traceStart = events.find((e) => e.operation === "retrieval" && e.event_type === "start");
    expect(traceStart?.module_name).toBe("Rag");
    expect(traceStart?.method_name).toBe("forward");
    expect(traceStart?.parent_span_id).toBe(moduleStart?.span_id);
    expect(traceStart?.execution_id).toBe(moduleStart?.execution_id);
    const retrieved = events.find((e) => e.event_type === "retrieved");
    expect(retrieved?.span_id).toBe(traceStart?.span_id);
    expect(retrieved?.operation).toBe("retrieval");
    expect(events.map((e) => `${e.operation}:${e.event_type}`)).toEqual([
      "null:start",
      "retrieval:start",
      "retrieval:retrieved",
      "retrieval:end",
      "null:end",
    ]);
  });

  it("nests traces and keeps context across awaits, timers and Promise.all", async () => {
    const sink = setup();
    await trace("outer", async () => {
      const outer = getCurrentSpan();
      await Promise.all([
        trace("a", async () => {
          await new Promise((r) => setTimeout(r, 2));
          expect(getCurrentSpan()?.parentSpanId).toBe(outer?.spanId);
        }),
        trace("b", () => new Promise<void>((resolve) => setImmediate(resolve))),
      ]);
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          emit("from-timer");
          resolve();
        }, 1),
      );
    });
    const events = await collect(sink);
    const outer = events.find((e) => e.operation === "outer" && e.event_type === "start");
    for (const op of ["a", "b"]) {
      const start = events.find((e) => e.operation === op && e.event_type === "start");
      expect(start?.parent_span_id).toBe(outer?.span_id);
      expect(start?.module_name).toBe("outer");
    }
    expect(events.find((e) => e.event_type === "from-timer")?.span_id).toBe(outer?.span_id);
  });

  it("records and rethrows errors, sync and async", async () => {
    const sink = setup();
    const syncError = new Error("sync fail");
    expect(() =>
      trace("s", () => {
        throw syncError;
      }),
    ).toThrow(syncError);
    const asyncError = new Error("async fail");
    await expect(
      trace("a", async () => {
        throw asyncError;
      }),
    ).rejects.toBe(asyncError);
    const events = await collect(sink);
    expect(events.map((e) => `${e.operation}:${e.event_type}`)).toEqual([
      "s:start",
      "s:error",
      "a:start",
      "a:error",
    ]);
    expect(events[3]?.data.error_message).toBe("async fail");
  });

  it("records what an error without a message says in its own toString() (Ax's AxFunctionError)", async () => {
    class FieldsError extends Error {
      constructor(readonly fields: string[]) {
        super();
        this.name = "FieldsError";
      }
      override toString(): string {
        return [`${this.name}: validation failed`, ...this.fields.map((f) => `  - ${f}`)].join("\n");
      }
    }
    class Unreadable extends Error {
      override toString(): string {
        throw new Error("no");
      }
    }
    const sink = setup();
    expect(() =>
      trace("fields", () => {
        throw new FieldsError(["city: unknown"]);
      }),
    ).toThrow(FieldsError);
    expect(() =>
      trace("unreadable", () => {
        throw new Unreadable();
      }),
    ).toThrow(Unreadable);
    const errors = (await collect(sink)).filter((e) => e.event_type === "error").map((e) => e.data);
    expect(errors[0]).toMatchObject({
      error_type: "FieldsError",
      error_message: "validation failed\n  - city: unknown",
    });
    expect(errors[1]).toMatchObject({ error_type: "Error", error_message: "" });
    expect(typeof errors[1]?.stack).toBe("string");
  });

  it("takes moduleName, tags, start data and outputs from options", async () => {
    const sink = setup({ tags: { env: "test" } });
    const result = trace("embed", () => [1, 2], {
      moduleName: "embedder",
      tags: { model: "e5" },
      data: { texts: 2 },
      includeOutputs: true,
    });
    expect(result).toEqual([1, 2]);
    const events = await collect(sink);
    expect(events[0]?.module_name).toBe("embedder");
    expect(events[0]?.tags).toEqual({ env: "test", model: "e5" });
    expect(events[0]?.data).toEqual({ texts: 2 });
    expect(events[1]?.data.outputs).toEqual([1, 2]);
  });

  it("runs the block without a span when disabled", async () => {
    const sink = setup({ enabled: false });
    expect(trace("x", () => getCurrentSpan())).toBeUndefined();
    expect(await collect(sink)).toHaveLength(0);
  });

  it("keeps the span open over a stream the block returns, and runs the stream's steps inside it", async () => {
    const sink = setup();
    const lookup = instrument(async function lookup(q: string) {
      return q.toUpperCase();
    });
    const stream = trace("generate", () =>
      (async function* generate() {
        yield "a";
        emit("midway");
        yield await lookup("b");
      })(),
    );
    // Nothing has run yet: the block returned a generator object, which is still unread.
    const read: string[] = [];
    for await (const chunk of stream) {
      read.push(chunk);
      emit("consumer-side"); // outside any span: its own execution
    }
    expect(read).toEqual(["a", "B"]);
    const events = await collect(sink);
    const traced = events.filter((e) => e.operation === "generate");
    expect(traced.map((e) => e.event_type)).toEqual(["start", "midway", "end"]);
    const [start, , end] = traced;
    expect(end?.data).toMatchObject({ token_count: 2, cancelled: false });
    expect(end?.data.outputs).toBeUndefined();
    const child = events.find((e) => e.module_name === "lookup" && e.event_type === "start");
    expect(child?.parent_span_id).toBe(start?.span_id);
    expect(child?.execution_id).toBe(start?.execution_id);
    const outside = events.filter((e) => e.event_type === "consumer-side");
    expect(outside).toHaveLength(2);
    for (const e of outside) expect(e.execution_id).not.toBe(start?.execution_id);
  });

  it("with includeOutputs records a traced stream's tokens; an async block resolving to a stream works too", async () => {
    const sink = setup();
    const stream = await trace(
      "answer",
      async () =>
        (async function* answer() {
          yield "Hel";
          yield "lo";
        })(),
      { includeOutputs: true },
    );
    let text = "";
    for await (const chunk of stream) text += chunk;
    expect(text).toBe("Hello");
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "token", "token", "end"]);
    expect(events.at(-1)?.data).toMatchObject({ token_count: 2, outputs: { output: "Hello" } });
  });

  it("names an empty operation 'trace'", async () => {
    const sink = setup();
    trace("", () => undefined);
    const events = await collect(sink);
    expect(events[0]?.operation).toBe("trace");
  });
});

describe("emit", () => {
  it("outside any span starts its own execution under module 'app'", async () => {
    const sink = setup();
    emit("boot", { version: 1 });
    emit("boot");
    const events = await collect(sink);
    expect(events).toHaveLength(2);
    expect(events[0]?.module_name).toBe("app");
    expect(events[0]?.parent_span_id).toBeNull();
    expect(events[0]?.operation).toBeNull();
    expect(events[0]?.method_name).toBe("forward");
    expect(events[0]?.execution_id).not.toBe(events[1]?.execution_id);
    expect(events[1]?.data).toEqual({});
  });

  it("uses the configured service name outside spans", async () => {
    const sink = setup({ serviceName: "billing" });
    emit("tick");
    const [event] = await collect(sink);
    expect(event?.module_name).toBe("billing");
    expect(event?.tags.service).toBe("billing");
  });

  it("is lenient with event types and data", async () => {
    const sink = setup();
    emit("", { a: 1 });
    emit(42 as unknown as string);
    emit("x".repeat(300));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    emit("weird", { circular, big: 10n, when: new Date(0), fn: () => 1 });
    const events = await collect(sink);
    expect(events.map((e) => e.event_type.length)).toEqual([6, 6, 128, 5]);
    expect(events[0]?.event_type).toBe("custom");
    expect(events[3]?.data.when).toBe("1970-01-01T00:00:00.000Z");
  });

  it("never throws, even with hostile data", () => {
    setup();
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("trap");
        },
      },
    );
    expect(() => emit("hostile", hostile)).not.toThrow();
  });

  it("does nothing when streamll is not configured", () => {
    expect(() => emit("nothing")).not.toThrow();
  });
});
