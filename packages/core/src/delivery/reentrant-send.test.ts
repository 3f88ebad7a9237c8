import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DeliveryPipeline } from "./delivery-pipeline";
import type { DeliveryOptions } from "./delivery-types";
import type { Sink } from "./sink";
import { ev } from "./spill/spill-test-support";

// A sink whose `send` emits events of its own (its own metric, or a call to an instrumented client) feeds the
// pipeline it is called from. That must not turn into a send loop: a partial batch still waits for the flush
// interval, and full batches never chain on microtasks without letting the event loop (timers) run.

/** Stops feeding the pipeline after this many sends, so a regression fails the counts instead of hanging. */
const MAX_SENDS = 20_000;

function reentrant(mode: "sync" | "async", perSend: number, options: DeliveryOptions = {}) {
  let sends = 0;
  let next = 0;
  const holder: { pipeline?: DeliveryPipeline } = {};
  const sink: Sink = {
    name: "emits-from-send",
    send(batch) {
      sends++;
      if (sends < MAX_SENDS) for (let i = 0; i < perSend; i++) holder.pipeline?.enqueue(ev(next++));
      void batch;
      // "sync": resolves without I/O; "async": a send that does real I/O (a turn of the event loop).
      return mode === "sync" ? Promise.resolve() : new Promise<void>((resolve) => setImmediate(resolve));
    },
    close: async () => {},
  };
  const pipeline = new DeliveryPipeline(sink, options, { logger: { warn() {} } });
  holder.pipeline = pipeline;
  return { pipeline, sends: () => sends };
}

function checkInvariant(pipeline: DeliveryPipeline): void {
  const m = pipeline.getMetrics();
  expect(m.emitted).toBe(m.delivered + m.dropped + m.pending);
}

describe("a sink that emits from send()", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const mode of ["sync", "async"] as const) {
    it(`sends a partial batch once per flushIntervalMs (${mode} send), and shuts down`, async () => {
      const { pipeline, sends } = reentrant(mode, 1, { flushIntervalMs: 200 });
      let timerRan = false;
      setTimeout(() => {
        timerRan = true;
      }, 500);
      pipeline.enqueue(ev(-1));
      await vi.advanceTimersByTimeAsync(1_000);
      expect(timerRan).toBe(true);
      // One send per 200 ms interval: 5 in 1 s, give or take one at each end.
      expect(sends()).toBeGreaterThanOrEqual(4);
      expect(sends()).toBeLessThanOrEqual(1_000 / 200 + 2);
      const done = pipeline.shutdown(1_000);
      await vi.advanceTimersByTimeAsync(1_000);
      await done;
      const m = pipeline.getMetrics();
      expect(m.pending).toBe(0);
      // Events the sink emits during shutdown are refused and counted, not sent.
      expect(m.droppedByReason.shutdown).toBeLessThanOrEqual(sends());
      checkInvariant(pipeline);
    });

    it(`lets timers run between full batches (${mode} send)`, async () => {
      const { pipeline, sends } = reentrant(mode, 4, { maxBatchSize: 4, flushIntervalMs: 200 });
      let sendsWhenTimerRan = -1;
      setTimeout(() => {
        sendsWhenTimerRan = sends();
      }, 10);
      for (let i = 0; i < 4; i++) pipeline.enqueue(ev(-1 - i));
      await vi.advanceTimersByTimeAsync(10);
      // At most one send per turn of the event loop; before, every send followed on a microtask and the timer
      // only ran once the sink stopped emitting.
      expect(sendsWhenTimerRan).toBeGreaterThan(0);
      expect(sendsWhenTimerRan).toBeLessThanOrEqual(20);
      const done = pipeline.shutdown(1_000);
      await vi.advanceTimersByTimeAsync(1_000);
      await done;
      checkInvariant(pipeline);
    });
  }
});

describe("a sink that emits from send(), with real timers", () => {
  it("never starves the event loop: a timer scheduled meanwhile runs, and sends stay few", async () => {
    const { pipeline, sends } = reentrant("sync", 1, { flushIntervalMs: 20 });
    pipeline.enqueue(ev(-1));
    await new Promise<void>((resolve) => setTimeout(resolve, 100));
    // ~5 sends at one per 20 ms; the bound is loose for slow machines but far below a send loop.
    expect(sends()).toBeLessThanOrEqual(50);
    await pipeline.shutdown(1_000);
    checkInvariant(pipeline);
  });
});
