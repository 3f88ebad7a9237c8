import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DeliveryPipeline } from "../delivery/delivery-pipeline";
import type { EncodedEvent } from "../delivery/sink";
import { ConfigurationError, SinkError } from "../errors";
import { encodeEvent } from "../events/encode-event";
import type { StreamllEvent } from "../events/event-schema";
import { MemorySink, WaitForTimeoutError } from "./memory-sink";

let seq = 0;

function makeEvent(overrides: Partial<StreamllEvent> = {}): StreamllEvent {
  seq += 1;
  return {
    schema_version: "1.0",
    event_id: `event${String(seq).padStart(6, "0")}`,
    execution_id: "exec000001",
    span_id: "span000001",
    parent_span_id: null,
    timestamp: "2026-01-01T00:00:00.000Z",
    module_name: "Module",
    method_name: "forward",
    event_type: "custom",
    operation: null,
    data: { n: seq },
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
    ...overrides,
  };
}

function encode(event: StreamllEvent): EncodedEvent {
  return encodeEvent(event);
}

function batchOf(count: number, overrides: Partial<StreamllEvent> = {}): EncodedEvent[] {
  return Array.from({ length: count }, () => encode(makeEvent(overrides)));
}

afterEach(() => {
  vi.useRealTimers();
});

describe("MemorySink", () => {
  it("exposes events parsed from the wire JSON, not the encoder's objects", async () => {
    const sink = new MemorySink();
    const event = makeEvent({ data: { secret: "hunter2" } });
    // What a broker receives is the JSON; the in-memory object must not leak through.
    const json = JSON.stringify({ ...event, data: { secret: "[REDACTED]" } });
    await sink.send([{ ...encode(event), json, bytes: Buffer.byteLength(json) }]);
    expect(sink.events).toHaveLength(1);
    expect(sink.events[0]?.data).toEqual({ secret: "[REDACTED]" });
    expect(sink.encoded[0]?.json).toBe(json);
    expect(sink.events[0]).not.toBe(event);
  });

  it("keeps events in arrival order across batches", async () => {
    const sink = new MemorySink();
    const first = batchOf(3);
    const second = batchOf(2);
    await sink.send(first);
    await sink.send(second);
    expect(sink.events.map((e) => e.event_id)).toEqual([...first, ...second].map((e) => e.event_id));
    expect(sink.size).toBe(5);
    expect(sink.received).toBe(5);
  });

  it("keeps 10 000 events by default, dropping the oldest beyond that", async () => {
    const sink = new MemorySink();
    expect(sink.maxEvents).toBe(10_000);
    const batch = batchOf(10_001);
    await sink.send(batch);
    expect(sink.size).toBe(10_000);
    expect(sink.overflowed).toBe(1);
    expect(sink.events[0]?.event_id).toBe(batch[1]?.event_id);
  });

  it("holds the wire JSON and parses on every read, so a reader cannot change what is held", async () => {
    const sink = new MemorySink();
    const [encoded] = batchOf(1);
    await sink.send([encoded!]);
    expect(sink.encoded[0]).toBe(encoded);
    const first = sink.events[0]!;
    first.event_type = "tampered";
    (first.data as Record<string, unknown>).added = true;
    const again = sink.events[0]!;
    expect(again).not.toBe(first);
    expect(again).toEqual(JSON.parse(encoded!.json));
    await expect(sink.waitFor((event) => event.event_type === "tampered", 50)).rejects.toThrow(/timed out/);
  });

  it("drops the oldest events beyond maxEvents and counts them", async () => {
    const sink = new MemorySink({ maxEvents: 3, name: "mem" });
    const batch = batchOf(5);
    await sink.send(batch);
    expect(sink.name).toBe("mem");
    expect(sink.events.map((e) => e.event_id)).toEqual(batch.slice(2).map((e) => e.event_id));
    expect(sink.overflowed).toBe(2);
    expect(sink.received).toBe(5);
  });

  it("lets go of the events it dropped (nothing beyond what it holds stays reachable)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const sink = new MemorySink({ maxEvents: 10 });
    const dropped = await (async () => {
      const first = batchOf(10);
      await sink.send(first);
      // Fewer than the sink's compaction threshold: before the fix the dropped slots stayed filled.
      await sink.send(batchOf(5));
      return first.slice(0, 5).map((event) => new WeakRef(event));
    })();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(dropped.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    expect(sink.size).toBe(10);
  });

  it("stays correct through many small batches past capacity", async () => {
    const sink = new MemorySink({ maxEvents: 10 });
    const all: EncodedEvent[] = [];
    for (let i = 0; i < 600; i++) {
      const batch = batchOf(5);
      all.push(...batch);
      await sink.send(batch);
    }
    expect(sink.size).toBe(10);
    expect(sink.overflowed).toBe(2990);
    expect(sink.events.map((e) => e.event_id)).toEqual(all.slice(-10).map((e) => e.event_id));
    expect(sink.encoded.map((e) => e.json)).toEqual(all.slice(-10).map((e) => e.json));
  });

  it("clear() removes events and resets counters", async () => {
    const sink = new MemorySink({ maxEvents: 2 });
    await sink.send(batchOf(3));
    sink.clear();
    expect(sink.events).toEqual([]);
    expect(sink.size).toBe(0);
    expect(sink.received).toBe(0);
    expect(sink.overflowed).toBe(0);
    await sink.send(batchOf(1));
    expect(sink.size).toBe(1);
  });

  it("rejects invalid maxEvents with a ConfigurationError naming the option", () => {
    for (const maxEvents of [0, -1, 1.5, Number.NaN]) {
      try {
        new MemorySink({ maxEvents });
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigurationError);
        expect((error as ConfigurationError).issues[0]?.path).toBe("maxEvents");
      }
    }
  });

  it("refuses batches after close() but keeps events readable", async () => {
    const sink = new MemorySink();
    await sink.send(batchOf(2));
    await sink.close();
    expect(sink.isClosed).toBe(true);
    const error = await sink.send(batchOf(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as SinkError).retriable).toBe(false);
    expect((error as SinkError).code).toBe("SINK_CLOSED");
    expect(sink.size).toBe(2);
  });

  describe("waitFor", () => {
    it("resolves immediately when enough events already arrived", async () => {
      const sink = new MemorySink();
      await sink.send(batchOf(3));
      await expect(sink.waitFor(2)).resolves.toHaveLength(3);
    });

    it("resolves with the events once the count is reached", async () => {
      const sink = new MemorySink();
      const waiting = sink.waitFor(4);
      await sink.send(batchOf(2));
      await sink.send(batchOf(2));
      const events = await waiting;
      expect(events).toHaveLength(4);
    });

    it("counts received events, so a count larger than maxEvents still resolves", async () => {
      const sink = new MemorySink({ maxEvents: 2 });
      const waiting = sink.waitFor(5);
      await sink.send(batchOf(5));
      await expect(waiting).resolves.toHaveLength(2);
    });

    it("resolves with the first matching event, held or new", async () => {
      const sink = new MemorySink();
      await sink.send(batchOf(2, { event_type: "start" }));
      const held = await sink.waitFor((e) => e.event_type === "start");
      expect(held.event_id).toBe(sink.events[0]?.event_id);

      const waiting = sink.waitFor((e) => e.event_type === "end");
      await sink.send(batchOf(1, { event_type: "token" }));
      const ends = batchOf(2, { event_type: "end" });
      await sink.send(ends);
      await expect(waiting).resolves.toMatchObject({ event_id: ends[0]?.event_id });
    });

    it("tests each event once and finds matches arriving after overflow", async () => {
      const sink = new MemorySink({ maxEvents: 2 });
      const seen: string[] = [];
      const waiting = sink.waitFor((e) => {
        seen.push(e.event_id);
        return e.event_type === "end";
      });
      await sink.send(batchOf(3));
      await sink.send(batchOf(1));
      const end = batchOf(1, { event_type: "end" });
      await sink.send(end);
      await expect(waiting).resolves.toMatchObject({ event_id: end[0]?.event_id });
      expect(new Set(seen).size).toBe(seen.length);
    });

    it("after clear() looks only at events received afterwards", async () => {
      const sink = new MemorySink();
      await sink.send(batchOf(3));
      const waiting = sink.waitFor((e) => e.event_type === "end");
      sink.clear();
      const end = batchOf(1, { event_type: "end" });
      await sink.send(end);
      await expect(waiting).resolves.toMatchObject({ event_id: end[0]?.event_id });
    });

    it("rejects with WaitForTimeoutError when nothing matches in time", async () => {
      vi.useFakeTimers();
      const sink = new MemorySink();
      const waiting = sink.waitFor(1, 1_000);
      const assertion = expect(waiting).rejects.toBeInstanceOf(WaitForTimeoutError);
      await vi.advanceTimersByTimeAsync(1_000);
      await assertion;
      // A late event does not resurrect the finished waiter.
      await sink.send(batchOf(1));
    });

    it.each([
      ["NaN", Number.NaN],
      ["a string", "2"],
      ["a negative count", -1],
      ["a fraction", 1.5],
      ["null", null],
    ])("rejects %s as its condition at once, naming the argument", async (_, condition) => {
      const sink = new MemorySink();
      const error = await sink.waitFor(condition as never, 60_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).message).toMatch(
        /MemorySink\.waitFor\(\).*condition: expected an integer >= 0/,
      );
    });

    it("rejects when the predicate throws", async () => {
      const sink = new MemorySink();
      const waiting = sink.waitFor(() => {
        throw new Error("bad predicate");
      });
      await sink.send(batchOf(1));
      await expect(waiting).rejects.toThrow("bad predicate");
    });
  });

  it("receives what the delivery pipeline delivers, as the encoder wrote it", async () => {
    const sink = new MemorySink();
    const pipeline = new DeliveryPipeline(sink, { maxBatchSize: 2 });
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const inputs = [makeEvent(), makeEvent({ data: { cyclic } as never }), makeEvent()];
    for (const event of inputs) pipeline.enqueue(encodeEvent(event));
    expect(await pipeline.flush()).toBe(true);
    await pipeline.shutdown();
    expect(sink.events.map((e) => e.event_id)).toEqual(inputs.map((e) => e.event_id));
    // The sanitised form, never the live object graph.
    expect(sink.events[1]?.data).toEqual({ cyclic: { name: "loop", self: "[Circular]" } });
    expect(sink.isClosed).toBe(true);
    expect(pipeline.getMetrics().delivered).toBe(3);
  });
});
