import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BoundedQueue } from "./bounded-queue";
import type { EncodedEvent } from "./sink";

function ev(id: number, bytes = 10): EncodedEvent {
  const route = {
    schema_version: "1.0",
    event_id: `event-${id}`,
    execution_id: "exec0001",
    span_id: "span0001",
  };
  return {
    ...route,
    timestamp: "2026-01-01T00:00:00.000Z",
    module_name: "M",
    method_name: "forward",
    event_type: "note",
    operation: null,
    tags: {},
    json: `{"id":${id}}`,
    bytes,
  };
}

const ids = (events: readonly EncodedEvent[]): string[] => events.map((e) => e.event_id);

function drain(queue: BoundedQueue): string[] {
  const out: EncodedEvent[] = [];
  for (let e = queue.shift(); e !== undefined; e = queue.shift()) out.push(e);
  return ids(out);
}

describe("BoundedQueue", () => {
  it("is FIFO across ring growth and wrap-around", () => {
    const queue = new BoundedQueue({ maxCount: 1000, maxBytes: 1_000_000 });
    const expected: string[] = [];
    const got: string[] = [];
    for (let i = 0; i < 300; i++) {
      queue.push(ev(i));
      expected.push(`event-${i}`);
      if (i % 3 === 0) got.push(queue.shift()!.event_id);
    }
    got.push(...drain(queue));
    expect(got).toEqual(expected);
    expect(queue.size).toBe(0);
    expect(queue.bytes).toBe(0);
  });

  it("drop-oldest evicts the oldest queued events to make room, by count", () => {
    const queue = new BoundedQueue({ maxCount: 3, maxBytes: 1000 });
    for (let i = 0; i < 3; i++) expect(queue.push(ev(i))).toMatchObject({ accepted: true, evicted: [] });
    const result = queue.push(ev(3));
    expect(result.accepted).toBe(true);
    if (result.accepted) expect(ids(result.evicted)).toEqual(["event-0"]);
    expect(drain(queue)).toEqual(["event-1", "event-2", "event-3"]);
  });

  it("drop-oldest evicts as many events as the bytes bound needs", () => {
    const queue = new BoundedQueue({ maxCount: 100, maxBytes: 100 });
    for (let i = 0; i < 5; i++) queue.push(ev(i, 20));
    const result = queue.push(ev(5, 50));
    expect(result.accepted).toBe(true);
    if (result.accepted) expect(ids(result.evicted)).toEqual(["event-0", "event-1", "event-2"]);
    expect(queue.bytes).toBe(90);
  });

  it("drop-newest refuses the incoming event and keeps the queue intact", () => {
    const queue = new BoundedQueue({ maxCount: 2, maxBytes: 1000, overflowPolicy: "drop-newest" });
    queue.push(ev(0));
    queue.push(ev(1));
    expect(queue.push(ev(2))).toEqual({ accepted: false, reason: "queue-full" });
    expect(drain(queue)).toEqual(["event-0", "event-1"]);
  });

  it("drops an event larger than maxBytes alone as too-large, without evicting anything", () => {
    const queue = new BoundedQueue({ maxCount: 10, maxBytes: 100 });
    queue.push(ev(0, 60));
    expect(queue.push(ev(1, 101))).toEqual({ accepted: false, reason: "too-large" });
    expect(queue.size).toBe(1);
  });

  it("counts reserved events against the bounds and never evicts them", () => {
    const queue = new BoundedQueue({ maxCount: 3, maxBytes: 1000 });
    for (let i = 0; i < 3; i++) queue.push(ev(i));
    const taken = queue.take(3, 1000);
    expect(ids(taken.events)).toEqual(["event-0", "event-1", "event-2"]);
    expect(queue.size).toBe(3);
    expect(queue.reservedCount).toBe(3);
    // Everything held is in flight: the newcomer has to go even under drop-oldest.
    expect(queue.push(ev(3))).toEqual({ accepted: false, reason: "queue-full" });
    queue.release(1, 10);
    expect(queue.push(ev(4)).accepted).toBe(true);
    expect(queue.size).toBe(3);
  });

  it("take respects count and byte limits but always takes at least one event", () => {
    const queue = new BoundedQueue({ maxCount: 10, maxBytes: 1000 });
    for (let i = 0; i < 5; i++) queue.push(ev(i, 40));
    expect(queue.take(10, 100).events).toHaveLength(2);
    expect(queue.take(1, 100).events).toHaveLength(1);
    expect(queue.take(10, 10).events).toHaveLength(1);
    expect(queue.queuedCount).toBe(1);
  });

  it("requeue puts events back at the head with their attempts, keeping sequence order", () => {
    const queue = new BoundedQueue({ maxCount: 10, maxBytes: 1000 });
    for (let i = 0; i < 6; i++) queue.push(ev(i), i + 1);
    const first = queue.take(2, 1000);
    const second = queue.take(2, 1000);
    // The later batch fails first, then the earlier one: order must still be restored.
    queue.requeue(second.events, [1, 1], second.seqs);
    queue.requeue(first.events, [2, 2], first.seqs);
    expect(queue.reservedCount).toBe(0);
    const again = queue.take(10, 1000);
    expect(ids(again.events)).toEqual(["event-0", "event-1", "event-2", "event-3", "event-4", "event-5"]);
    expect(again.attempts).toEqual([2, 2, 1, 1, 0, 0]);
    expect(again.seqs).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("never exceeds its bounds and keeps exact byte totals (property)", () => {
    fc.assert(
      fc.property(
        fc.record({
          maxCount: fc.integer({ min: 1, max: 20 }),
          maxBytes: fc.integer({ min: 1, max: 400 }),
          policy: fc.constantFrom("drop-oldest" as const, "drop-newest" as const),
        }),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("push" as const), bytes: fc.integer({ min: 0, max: 120 }) }),
            fc.record({ op: fc.constant("shift" as const) }),
            fc.record({ op: fc.constant("take" as const), n: fc.integer({ min: 1, max: 5 }) }),
            fc.record({ op: fc.constant("settle" as const), requeue: fc.boolean() }),
          ),
          { maxLength: 80 },
        ),
        (limits, ops) => {
          const queue = new BoundedQueue({
            maxCount: limits.maxCount,
            maxBytes: limits.maxBytes,
            overflowPolicy: limits.policy,
          });
          const held = new Map<EncodedEvent, number>();
          const batches: ReturnType<BoundedQueue["take"]>[] = [];
          let seq = 0;
          for (const step of ops) {
            if (step.op === "push") {
              const event = ev(seq, step.bytes);
              const result = queue.push(event, ++seq);
              if (result.accepted) {
                held.set(event, step.bytes);
                for (const evicted of result.evicted) held.delete(evicted);
              } else {
                expect(result.reason).toBe(step.bytes > limits.maxBytes ? "too-large" : "queue-full");
              }
            } else if (step.op === "shift") {
              const event = queue.shift();
              if (event) held.delete(event);
            } else if (step.op === "take") {
              const batch = queue.take(step.n, 1000);
              if (batch.events.length > 0) batches.push(batch);
            } else {
              const batch = batches.shift();
              if (batch && step.requeue) queue.requeue(batch.events, batch.attempts, batch.seqs);
              else if (batch) {
                queue.release(batch.events.length, batch.bytes);
                for (const event of batch.events) held.delete(event);
              }
            }
            expect(queue.size).toBeLessThanOrEqual(limits.maxCount);
            expect(queue.bytes).toBeLessThanOrEqual(limits.maxBytes);
            expect(queue.size).toBe(held.size);
            expect(queue.bytes).toBe([...held.values()].reduce((a, b) => a + b, 0));
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
