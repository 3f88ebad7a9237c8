import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigurationError, SinkError } from "../errors";
import { DEFAULT_DELIVERY_OPTIONS, DeliveryPipeline, resolveDeliveryOptions } from "./delivery-pipeline";
import type { DeliveryOptions, SinkMetrics, StateChange } from "./delivery-types";
import type { EncodedEvent, SendContext, SendResult, Sink } from "./sink";

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

const idOf = (event: EncodedEvent): number => Number(event.event_id.slice("event-".length));

type Outcome = SendResult | undefined;

interface Call {
  ids: number[];
  attempt: number;
  signal: AbortSignal;
  resolve: (value?: Outcome) => void;
  reject: (error: unknown) => void;
}

/**
 * A sink whose every `send` is decided by `mode` (or held for the test to settle by hand). `acked` lists the
 * ids the sink acknowledged, in acknowledgement order.
 */
class TestSink implements Sink {
  readonly name = "test";
  mode: "ok" | "fail" | "reject" | "hold" | ((batch: readonly EncodedEvent[], ctx: SendContext) => Outcome) =
    "ok";
  readonly calls: Call[] = [];
  readonly acked: number[] = [];
  closeCalls = 0;
  closeError: unknown;

  send(batch: readonly EncodedEvent[], ctx: SendContext): Promise<Outcome> {
    const ids = batch.map(idOf);
    return new Promise<Outcome>((resolve, reject) => {
      const call: Call = {
        ids,
        attempt: ctx.attempt,
        signal: ctx.signal,
        resolve: (value?: Outcome) => {
          const failed = new Set((value?.failures ?? []).map((f) => f.index));
          ids.forEach((id, i) => {
            if (!failed.has(i)) this.acked.push(id);
          });
          resolve(value);
        },
        reject,
      };
      this.calls.push(call);
      const mode = this.mode;
      if (mode === "ok") call.resolve();
      else if (mode === "fail") reject(new Error("broker unavailable"));
      else if (mode === "reject") reject(new SinkError("message too large for broker", { retriable: false }));
      else if (typeof mode === "function") {
        try {
          call.resolve(mode(batch, ctx));
        } catch (error) {
          reject(error);
        }
      }
    });
  }

  async close(): Promise<void> {
    this.closeCalls++;
    if (this.closeError !== undefined) throw this.closeError;
  }
}

function checkInvariant(m: SinkMetrics): void {
  expect(m.emitted).toBe(m.delivered + m.dropped + m.pending);
  expect(m.dropped).toBe(Object.values(m.droppedByReason).reduce((a, b) => a + b, 0));
  expect(m.inFlight).toBeLessThanOrEqual(m.pending);
}

/** Every pipeline `setup` built in the current test: `afterEach` checks the accounting of each one. */
const pipelinesOfTest: DeliveryPipeline[] = [];

function setup(options: DeliveryOptions = {}, sink = new TestSink()) {
  const warnings: { message: string; context?: object }[] = [];
  const pipeline = new DeliveryPipeline(sink, options, {
    random: () => 1, // no jitter: delays are exactly initialDelayMs * multiplier^n
    logger: { warn: (message, context) => warnings.push({ message, context }) },
  });
  pipelinesOfTest.push(pipeline);
  const changes: StateChange[] = [];
  pipeline.onStateChange((change) => changes.push(change));
  return { sink, pipeline, warnings, changes, metrics: () => pipeline.getMetrics() };
}

const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

/** Flushes while advancing fake time, since the drain may wait on backoff and breaker timers. */
async function flushWithTime(pipeline: DeliveryPipeline, ms: number): Promise<boolean> {
  const flushed = pipeline.flush(ms);
  await tick(ms);
  return flushed;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  // Exact accounting in every test, whatever the test itself asserted.
  for (const pipeline of pipelinesOfTest.splice(0)) checkInvariant(pipeline.getMetrics());
});

describe("DeliveryPipeline batching", () => {
  it("sends a full batch at once and a partial batch only after flushIntervalMs", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 3, flushIntervalMs: 200 });
    for (let i = 0; i < 4; i++) pipeline.enqueue(ev(i));
    await tick();
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1, 2]]);
    await tick(199);
    expect(sink.calls).toHaveLength(1);
    await tick(1);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1, 2], [3]]);
    expect(metrics()).toMatchObject({ emitted: 4, delivered: 4, pending: 0, batchesSent: 2 });
  });

  it("starts a send when maxBatchBytes is reached and splits batches on bytes", async () => {
    const { sink, pipeline } = setup({ maxBatchSize: 100, maxBatchBytes: 100 });
    for (let i = 0; i < 4; i++) pipeline.enqueue(ev(i, 40));
    await tick();
    // The third event made 120 bytes queued: [0, 1] fits in 100 bytes and goes at once.
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1]]);
    await tick(200);
    expect(sink.calls.map((c) => c.ids)).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it("keeps one batch in flight by default; events in flight count as pending", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 2 });
    sink.mode = "hold";
    for (let i = 0; i < 6; i++) pipeline.enqueue(ev(i));
    await tick(1000);
    expect(sink.calls).toHaveLength(1);
    expect(metrics()).toMatchObject({ pending: 6, inFlight: 2, pendingBytes: 60 });
    sink.mode = "ok";
    sink.calls[0]!.resolve();
    // Each next send starts after a turn of the event loop (a 0 ms timer), not on the settling microtask.
    await tick(10);
    expect(sink.calls.map((c) => c.ids)).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(metrics()).toMatchObject({ delivered: 6, pending: 0, inFlight: 0 });
  });

  it("runs up to maxConcurrentBatches sends at once", async () => {
    const { sink, pipeline } = setup({ maxBatchSize: 1, maxConcurrentBatches: 3 });
    sink.mode = "hold";
    for (let i = 0; i < 5; i++) pipeline.enqueue(ev(i));
    await tick();
    expect(sink.calls.map((c) => c.ids)).toEqual([[0], [1], [2]]);
  });

  it("hands the sink a copy of the batch, so a sink mutating it cannot corrupt retries", async () => {
    const { sink, pipeline } = setup({ maxBatchSize: 2 });
    let first = true;
    sink.mode = (batch) => {
      if (first) {
        first = false;
        (batch as EncodedEvent[]).length = 0;
        throw new Error("transient");
      }
    };
    pipeline.enqueue(ev(0));
    pipeline.enqueue(ev(1));
    await tick(1000);
    expect(sink.acked).toEqual([0, 1]);
  });
});

describe("DeliveryPipeline failures and retries", () => {
  it("handles per-event failures: delivered, rejected and retried events in one batch", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 4 });
    let call = 0;
    sink.mode = () => {
      call++;
      if (call === 1) {
        return {
          failures: [
            { index: 1, error: new Error("unserialisable"), retriable: false },
            { index: 2, error: new Error("partition leader moved"), retriable: true },
          ],
        };
      }
    };
    for (let i = 0; i < 4; i++) pipeline.enqueue(ev(i));
    await tick();
    expect(metrics()).toMatchObject({ delivered: 2, dropped: 1, pending: 1, retried: 1 });
    expect(metrics().droppedByReason.rejected).toBe(1);
    expect(metrics().lastError?.message).toBe("unserialisable");
    await tick(100);
    expect(sink.calls[1]!.ids).toEqual([2]);
    expect(sink.calls[1]!.attempt).toBe(2);
    expect(sink.acked).toEqual([0, 3, 2]);
    expect(metrics()).toMatchObject({
      emitted: 4,
      delivered: 3,
      dropped: 1,
      pending: 0,
      breakerState: "closed",
    });
  });

  it("one event that always fails non-retriably never poisons the batch or the events after it", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 10 });
    sink.mode = (batch) => ({
      failures: batch.flatMap((e, index) =>
        idOf(e) === 3
          ? [{ index, error: new SinkError("too large", { retriable: false }), retriable: false }]
          : [],
      ),
    });
    for (let i = 0; i < 25; i++) pipeline.enqueue(ev(i));
    await pipeline.flush(1000);
    expect(sink.acked).toEqual([...Array(25).keys()].filter((i) => i !== 3));
    expect(metrics().droppedByReason.rejected).toBe(1);
  });

  it("drops the whole batch as rejected on SinkError{retriable:false} without opening the breaker", async () => {
    const { sink, pipeline, metrics, changes } = setup({
      maxBatchSize: 2,
      circuitBreaker: { failureThreshold: 1 },
    });
    sink.mode = "reject";
    for (let i = 0; i < 4; i++) pipeline.enqueue(ev(i));
    await tick();
    expect(metrics()).toMatchObject({ dropped: 4, pending: 0, batchesFailed: 2, breakerState: "closed" });
    expect(metrics().droppedByReason.rejected).toBe(4);
    expect(metrics().lastError).toMatchObject({
      message: "message too large for broker",
      code: "SINK_EVENT_REJECTED",
    });
    expect(changes).toEqual([]);
  });

  it("retries a failed batch with exponential backoff, passing the attempt number", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 1, circuitBreaker: { failureThreshold: 100 } });
    sink.mode = "fail";
    pipeline.enqueue(ev(0));
    await tick();
    const times: number[] = [];
    const start = Date.now();
    for (let i = 0; i < 5; i++) {
      const before = sink.calls.length;
      while (sink.calls.length === before) await tick(1);
      times.push(Date.now() - start);
    }
    // jitter disabled (random = 1): 100, 200, 400, 800, 1600 ms apart
    expect(times).toEqual([100, 300, 700, 1500, 3100]);
    expect(sink.calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(metrics()).toMatchObject({ retried: 6, batchesFailed: 6, pending: 1 });
  });

  it("drops events as retries-exhausted after retry.maxAttempts", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 2, retry: { maxAttempts: 3 } });
    sink.mode = "fail";
    pipeline.enqueue(ev(0));
    pipeline.enqueue(ev(1));
    await tick(10_000);
    expect(sink.calls).toHaveLength(3);
    expect(metrics()).toMatchObject({ emitted: 2, dropped: 2, pending: 0, retried: 4 });
    expect(metrics().droppedByReason["retries-exhausted"]).toBe(2);
  });

  it("counts retriable per-event failures toward maxAttempts too", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 2, retry: { maxAttempts: 2 } });
    sink.mode = () => ({ failures: [{ index: 0, error: new Error("busy"), retriable: true }] });
    pipeline.enqueue(ev(0));
    pipeline.enqueue(ev(1));
    await tick(1000);
    expect(metrics()).toMatchObject({ delivered: 1, dropped: 1, pending: 0 });
    expect(metrics().droppedByReason["retries-exhausted"]).toBe(1);
  });

  it("aborts a send that exceeds sendTimeoutMs, retries it, and ignores the late resolution", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 2, sendTimeoutMs: 1000 });
    sink.mode = "hold";
    pipeline.enqueue(ev(0));
    pipeline.enqueue(ev(1));
    await tick(999);
    expect(sink.calls[0]!.signal.aborted).toBe(false);
    sink.mode = "ok";
    await tick(1);
    const first = sink.calls[0]!;
    expect(first.signal.aborted).toBe(true);
    expect(first.signal.reason).toBeInstanceOf(SinkError);
    expect((first.signal.reason as SinkError).code).toBe("SEND_TIMEOUT");
    expect(metrics()).toMatchObject({ batchesFailed: 1, retried: 2, pending: 2 });
    expect(metrics().lastError?.code).toBe("SEND_TIMEOUT");
    await tick(100);
    expect(metrics()).toMatchObject({ delivered: 2, pending: 0 });
    first.resolve(); // the slow broker finally answers: must not count the events twice
    await tick();
    expect(metrics()).toMatchObject({ emitted: 2, delivered: 2, dropped: 0, pending: 0, batchesSent: 1 });
  });

  it("records only a truncated error.message as lastError, never other fields of the error", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 1 });
    const error = Object.assign(new Error(`auth failed ${"x".repeat(1000)}`), {
      options: { password: "s3cr3t-pass" },
    });
    sink.mode = () => {
      throw error;
    };
    pipeline.enqueue(ev(0));
    await tick();
    const lastError = metrics().lastError!;
    expect(lastError.message.length).toBeLessThanOrEqual(501);
    expect(lastError.message.startsWith("auth failed")).toBe(true);
    expect(JSON.stringify(metrics())).not.toContain("s3cr3t-pass");
    expect(inspect(metrics(), { depth: 10 })).not.toContain("s3cr3t-pass");
  });

  it("scrubs a credential the sink's error repeats from lastError, the state-change reason and warnings", async () => {
    const key = "sk-proj-PLANTEDSECRET1234567890abcdef";
    const { sink, pipeline, metrics, changes, warnings } = setup({
      maxBatchSize: 1,
      circuitBreaker: { failureThreshold: 1 },
    });
    sink.mode = () => {
      throw new Error(`401 Incorrect API key provided: ${key}`);
    };
    pipeline.enqueue(ev(0));
    await tick();
    expect(metrics().lastError?.message).toBe("401 Incorrect API key provided: sk-[REDACTED]");
    expect(changes.map((change) => change.reason)).toEqual(["401 Incorrect API key provided: sk-[REDACTED]"]);
    expect(JSON.stringify({ metrics: metrics(), changes, warnings })).not.toContain("PLANTEDSECRET");
  });

  it("scrubs a credential from the permanent failure a ConfigurationError reports", async () => {
    const { sink, pipeline, metrics, warnings } = setup({ maxBatchSize: 1 });
    sink.mode = () => {
      throw new ConfigurationError("the key sk-proj-PLANTEDSECRET1234567890abcdef is not valid here", [
        { path: "key", message: "invalid" },
      ]);
    };
    pipeline.enqueue(ev(0));
    await tick();
    expect(metrics().failed?.message).toContain("sk-[REDACTED]");
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify({ metrics: metrics(), warnings })).not.toContain("PLANTEDSECRET");
  });

  it("scrubs a key that straddles the length limit of a recorded error message", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 1 });
    sink.mode = () => {
      throw new Error(`${"x".repeat(490)} sk-PLANTEDSECRET1234567890`);
    };
    pipeline.enqueue(ev(0));
    await tick();
    expect(metrics().lastError?.message).not.toContain("PLANT");
  });
});

describe("DeliveryPipeline circuit breaker", () => {
  const breakerOptions: DeliveryOptions = {
    maxBatchSize: 2,
    retry: { initialDelayMs: 10, maxDelayMs: 10 },
    circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 5000 },
  };

  it("opens after failureThreshold failures, keeps events queued, sends nothing while open", async () => {
    const { sink, pipeline, metrics, changes } = setup(breakerOptions);
    sink.mode = "fail";
    for (let i = 0; i < 4; i++) pipeline.enqueue(ev(i));
    await tick(100);
    expect(sink.calls).toHaveLength(3);
    expect(metrics().breakerState).toBe("open");
    expect(changes).toEqual([
      { sink: "test", from: "closed", to: "open", at: expect.any(String), reason: "broker unavailable" },
    ]);
    for (let i = 4; i < 10; i++) pipeline.enqueue(ev(i));
    await tick(4800);
    expect(sink.calls).toHaveLength(3);
    expect(metrics()).toMatchObject({ pending: 10, dropped: 0 });
    // No busy loop: while open, the pipeline sleeps on one wake-up timer (plus the flush interval timer at most).
    expect(vi.getTimerCount()).toBeLessThanOrEqual(2);
  });

  it("sends exactly one trial batch in half-open even with concurrency, then drains in order on success", async () => {
    const { sink, pipeline, metrics, changes } = setup({ ...breakerOptions, maxConcurrentBatches: 4 });
    sink.mode = "fail";
    for (let i = 0; i < 8; i++) pipeline.enqueue(ev(i));
    await tick(100);
    expect(metrics().breakerState).toBe("open");
    const before = sink.calls.length;
    sink.mode = "hold";
    await tick(5000);
    expect(sink.calls.length - before).toBe(1);
    expect(metrics().breakerState).toBe("half-open");
    // The trial is the oldest batch, and nothing else goes out while it is pending: not on timers, not when
    // new events complete more full batches, not on flush().
    expect(sink.calls.at(-1)!.ids).toEqual([0, 1]);
    for (let i = 8; i < 14; i++) pipeline.enqueue(ev(i));
    void pipeline.flush(60_000);
    await tick(1000);
    expect(sink.calls.length - before).toBe(1);
    expect(metrics()).toMatchObject({ breakerState: "half-open", inFlight: 2, pending: 14 });
    sink.mode = "ok";
    sink.calls.at(-1)!.resolve();
    await tick(1000);
    expect(metrics().breakerState).toBe("closed");
    expect(changes.map((c) => `${c.from}>${c.to}`)).toEqual([
      "closed>open",
      "open>half-open",
      "half-open>closed",
    ]);
    // After recovery the queue is sent in emission order, each event once.
    expect(sink.calls.slice(before).flatMap((call) => call.ids)).toEqual([...Array(14).keys()]);
    expect([...sink.acked].sort((a, b) => a - b)).toEqual([...Array(14).keys()]);
    expect(metrics()).toMatchObject({ delivered: 14, pending: 0, dropped: 0 });
  });

  it("a late failure of a batch sent before the circuit opened cannot free a second half-open trial", async () => {
    const { sink, pipeline, metrics } = setup({
      maxBatchSize: 1,
      maxConcurrentBatches: 3,
      sendTimeoutMs: 600_000,
      retry: { initialDelayMs: 10, maxDelayMs: 10 },
      circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 1000 },
    });
    sink.mode = "hold";
    pipeline.enqueue(ev(0));
    pipeline.enqueue(ev(1));
    await tick();
    expect(sink.calls.map((c) => c.ids)).toEqual([[0], [1]]);
    sink.calls[0]!.reject(new Error("broker down"));
    await tick();
    expect(metrics().breakerState).toBe("open");
    await tick(1000);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0], [1], [0]]); // the trial: the head of the queue
    expect(metrics().breakerState).toBe("half-open");
    sink.calls[1]!.reject(new Error("late failure of a pre-outage batch"));
    await tick(5000);
    expect(sink.calls).toHaveLength(3);
    expect(metrics().breakerState).toBe("half-open");
    sink.mode = "ok";
    sink.calls[2]!.resolve();
    await tick(100);
    expect(metrics()).toMatchObject({ breakerState: "closed", delivered: 2, pending: 0, dropped: 0 });
    expect(sink.acked).toEqual([0, 1]);
  });

  it("re-opens when the trial fails and waits a fresh resetTimeoutMs", async () => {
    const { sink, pipeline, metrics } = setup(breakerOptions);
    sink.mode = "fail";
    pipeline.enqueue(ev(0));
    // flush interval 200 ms, then two 10 ms backoffs: the third failure opens the circuit at t = 220
    await tick(220);
    expect(sink.calls).toHaveLength(3);
    expect(metrics().breakerState).toBe("open");
    await tick(4999);
    expect(sink.calls).toHaveLength(3);
    await tick(1); // t = 5220: half-open, one trial, which fails
    expect(sink.calls).toHaveLength(4);
    expect(metrics().breakerState).toBe("open");
    await tick(4999);
    expect(sink.calls).toHaveLength(4);
    await tick(1); // t = 10220: the fresh reset timeout ran out
    expect(sink.calls).toHaveLength(5);
  });

  it("delivers events 0..N exactly once and in order after an outage (ordering after recovery)", async () => {
    const { sink, pipeline, metrics } = setup({ ...breakerOptions, maxBatchSize: 7, flushIntervalMs: 50 });
    for (let i = 0; i < 20; i++) pipeline.enqueue(ev(i));
    await tick(60);
    sink.mode = "fail";
    for (let i = 20; i < 150; i++) {
      pipeline.enqueue(ev(i));
      if (i % 10 === 0) await tick(300);
    }
    expect(metrics().breakerState).toBe("open");
    sink.mode = "ok";
    for (let i = 150; i < 200; i++) pipeline.enqueue(ev(i));
    expect(await flushWithTime(pipeline, 60_000)).toBe(true);
    expect(sink.acked).toEqual([...Array(200).keys()]);
    expect(metrics()).toMatchObject({ emitted: 200, delivered: 200, dropped: 0, pending: 0 });
  });
});

describe("DeliveryPipeline bounded memory and overflow", () => {
  it("never exceeds maxQueueSize/maxQueueBytes under a dead sink and counts every drop (drop-oldest)", async () => {
    const { sink, pipeline, metrics } = setup({ maxQueueSize: 50, maxQueueBytes: 400, maxBatchSize: 10 });
    sink.mode = "fail";
    for (let i = 0; i < 2000; i++) {
      pipeline.enqueue(ev(i, 1 + (i % 7)));
      const m = metrics();
      expect(m.pending).toBeLessThanOrEqual(50);
      expect(m.pendingBytes).toBeLessThanOrEqual(400);
      if (i % 100 === 0) await tick(1000);
    }
    const m = metrics();
    checkInvariant(m);
    expect(m.droppedByReason["queue-full"]).toBe(m.dropped);
    expect(m.dropped).toBeGreaterThan(1900);
    // drop-oldest keeps the freshest events
    sink.mode = "ok";
    await flushWithTime(pipeline, 120_000);
    expect(sink.acked.at(-1)).toBe(1999);
  });

  it("holds a burst of 20 000 ordinary (~0.5 KB) events with the default options, and bounds by bytes first", async () => {
    const { sink, pipeline, metrics } = setup();
    sink.mode = "hold";
    for (let i = 0; i < 20_000; i++) pipeline.enqueue(ev(i, 512));
    expect(metrics()).toMatchObject({ emitted: 20_000, dropped: 0, pending: 20_000 });
    // 32 MiB of 512-byte events is 65 536 events: the byte bound binds before the 100 000-event count cap.
    expect(DEFAULT_DELIVERY_OPTIONS.maxQueueBytes / 512).toBeLessThan(DEFAULT_DELIVERY_OPTIONS.maxQueueSize);
    for (let i = 20_000; i < 70_000; i++) pipeline.enqueue(ev(i, 512));
    expect(metrics().pendingBytes).toBeLessThanOrEqual(DEFAULT_DELIVERY_OPTIONS.maxQueueBytes);
    expect(metrics().droppedByReason["queue-full"]).toBe(70_000 - 65_536);
    sink.mode = "ok";
    for (const call of sink.calls.splice(0)) call.resolve();
    expect(await flushWithTime(pipeline, 60_000)).toBe(true);
    expect(metrics()).toMatchObject({ delivered: 65_536, pending: 0 });
  });

  it("drop-newest keeps the oldest events and refuses newcomers", async () => {
    const { sink, pipeline, metrics } = setup({
      maxQueueSize: 5,
      overflowPolicy: "drop-newest",
      maxBatchSize: 100,
    });
    for (let i = 0; i < 8; i++) pipeline.enqueue(ev(i));
    expect(metrics().droppedByReason["queue-full"]).toBe(3);
    await pipeline.flush(1000);
    expect(sink.acked).toEqual([0, 1, 2, 3, 4]);
  });

  it("drop-oldest keeps the newest events", async () => {
    const { sink, pipeline } = setup({ maxQueueSize: 5, maxBatchSize: 100 });
    for (let i = 0; i < 8; i++) pipeline.enqueue(ev(i));
    await pipeline.flush(1000);
    expect(sink.acked).toEqual([3, 4, 5, 6, 7]);
  });

  it("never evicts events in flight; they are delivered even when the queue overflows meanwhile", async () => {
    const { sink, pipeline, metrics } = setup({ maxQueueSize: 4, maxBatchSize: 2 });
    sink.mode = "hold";
    for (let i = 0; i < 2; i++) pipeline.enqueue(ev(i));
    await tick();
    for (let i = 2; i < 10; i++) pipeline.enqueue(ev(i));
    checkInvariant(metrics());
    sink.mode = "ok";
    sink.calls[0]!.resolve();
    await pipeline.flush(1000);
    expect(sink.acked).toEqual([0, 1, 8, 9]);
    expect(metrics()).toMatchObject({ delivered: 4, dropped: 6, pending: 0 });
  });

  it("drops an event larger than maxBatchBytes or maxQueueBytes as too-large", () => {
    const { pipeline, metrics } = setup({ maxBatchBytes: 100, maxQueueBytes: 1000 });
    pipeline.enqueue(ev(0, 101));
    pipeline.enqueue(ev(1, 100));
    expect(metrics()).toMatchObject({ emitted: 2, dropped: 1, pending: 1 });
    expect(metrics().droppedByReason["too-large"]).toBe(1);
    const small = setup({ maxBatchBytes: 1000, maxQueueBytes: 50 });
    small.pipeline.enqueue(ev(0, 51));
    expect(small.metrics().droppedByReason["too-large"]).toBe(1);
  });
});

describe("DeliveryPipeline robustness", () => {
  it("enqueue never throws when the sink throws synchronously, returns garbage, or is not a sink", async () => {
    const garbage: unknown[] = [
      42,
      "ok",
      { failures: "nope" },
      { failures: [null, { index: 99 }, { index: -1 }, { index: 0.5 }, { index: "0" }] },
      {
        get failures() {
          throw new Error("getter");
        },
      },
      {
        // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is exactly what this test needs
        then() {
          throw new Error("hostile thenable");
        },
      },
    ];
    for (const value of garbage) {
      const sink: Sink = {
        name: "garbage",
        send: () => value as Promise<void>,
        close: async () => undefined,
      };
      const { pipeline, metrics } = setup({ maxBatchSize: 1 }, sink as TestSink);
      expect(() => pipeline.enqueue(ev(0))).not.toThrow();
      await tick(10);
      checkInvariant(metrics());
      expect(metrics().pending + metrics().delivered).toBe(1);
    }
    const throwing: Sink = {
      name: "sync-thrower",
      send: () => {
        throw new TypeError("sync bug in sink");
      },
      close: async () => undefined,
    };
    const t = setup({ maxBatchSize: 1 }, throwing as TestSink);
    expect(() => t.pipeline.enqueue(ev(0))).not.toThrow();
    await tick();
    expect(t.metrics()).toMatchObject({ batchesFailed: 1, pending: 1 });
    expect(t.metrics().lastError?.message).toBe("sync bug in sink");
    const notASink = setup({ maxBatchSize: 1 }, { name: 5 } as unknown as TestSink);
    expect(() => notASink.pipeline.enqueue(ev(0))).not.toThrow();
    checkInvariant(notASink.metrics());
  });

  it("never runs sink code inside enqueue: a completed batch is sent once the caller's code is done", async () => {
    const { sink, pipeline } = setup({ maxBatchSize: 2 });
    let inEnqueue = false;
    const calledDuringEnqueue: boolean[] = [];
    sink.mode = () => {
      calledDuringEnqueue.push(inEnqueue);
      return undefined;
    };
    for (let i = 0; i < 6; i++) {
      inEnqueue = true;
      pipeline.enqueue(ev(i));
      inEnqueue = false;
    }
    expect(sink.calls).toHaveLength(0);
    await Promise.resolve();
    // One batch in flight at a time, started from the microtask; the others follow as each send settles, each
    // after a turn of the event loop.
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1]]);
    await tick(10);
    expect(sink.calls.map((c) => c.ids)).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(calledDuringEnqueue).toEqual([false, false, false]);
  });

  it("counts malformed events as rejected instead of throwing", () => {
    const { pipeline, metrics } = setup();
    for (const bad of [null, undefined, 5, {}, { json: "{}", bytes: Number.NaN }]) {
      expect(() => pipeline.enqueue(bad as unknown as EncodedEvent)).not.toThrow();
    }
    expect(metrics()).toMatchObject({ emitted: 5, dropped: 5, pending: 0 });
    expect(metrics().droppedByReason.rejected).toBe(5);
  });

  it("survives a throwing logger and throwing state listeners", async () => {
    const sink = new TestSink();
    sink.mode = "fail";
    const pipeline = new DeliveryPipeline(
      sink,
      { maxQueueSize: 1, maxBatchSize: 1, circuitBreaker: { failureThreshold: 1 } },
      {
        logger: {
          warn() {
            throw new Error("logger down");
          },
        },
      },
    );
    pipeline.onStateChange(() => {
      throw new Error("listener bug");
    });
    for (let i = 0; i < 5; i++) expect(() => pipeline.enqueue(ev(i))).not.toThrow();
    await tick(100);
    expect(pipeline.getMetrics().breakerState).toBe("open");
    checkInvariant(pipeline.getMetrics());
  });

  it("warns once when drops start, then at most one summary per 60 s", async () => {
    const { pipeline, warnings } = setup({
      maxQueueSize: 1,
      overflowPolicy: "drop-newest",
      flushIntervalMs: 60_000,
    });
    const sink = pipeline.sink as TestSink;
    sink.mode = "hold";
    pipeline.enqueue(ev(0));
    for (let i = 1; i <= 500; i++) pipeline.enqueue(ev(i));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('sink "test" is dropping events (queue-full)');
    await tick(59_999);
    expect(warnings).toHaveLength(1);
    await tick(1);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]!.context).toMatchObject({ droppedByReason: { "queue-full": 499 }, droppedTotal: 500 });
    for (let i = 0; i < 100; i++) {
      pipeline.enqueue(ev(1000 + i));
      await tick(100);
    }
    expect(warnings).toHaveLength(2);
    await tick(60_000);
    expect(warnings).toHaveLength(3);
  });

  it("validates options with messages naming the option", () => {
    const sink = new TestSink();
    expect(() => new DeliveryPipeline(sink, { maxBatchSize: 0 })).toThrow(
      "invalid delivery options: delivery.maxBatchSize: expected an integer >= 1, got 0",
    );
    expect(() => new DeliveryPipeline(sink, { maxBatchSize: 0 })).toThrow(ConfigurationError);
    const bad = {
      maxQueueSize: 1.5,
      overflowPolicy: "drop-random",
      sendTimeoutMs: 0,
      flushIntervalMs: -1,
      retry: { jitter: 3 },
      circuitBreaker: { failureThreshold: "5" },
      maxBatchsize: 3,
    } as unknown as DeliveryOptions;
    try {
      resolveDeliveryOptions(bad, "sinks[0].delivery");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).issues.map((i) => i.path).sort()).toEqual([
        "sinks[0].delivery.circuitBreaker.failureThreshold",
        "sinks[0].delivery.flushIntervalMs",
        "sinks[0].delivery.maxBatchsize",
        "sinks[0].delivery.maxQueueSize",
        "sinks[0].delivery.overflowPolicy",
        "sinks[0].delivery.retry.jitter",
        "sinks[0].delivery.sendTimeoutMs",
      ]);
      expect((error as Error).message).toContain(
        'sinks[0].delivery.overflowPolicy: expected "drop-oldest" or "drop-newest", got a string',
      );
    }
  });

  it("uses the defaults documented on DeliveryOptions", () => {
    expect(resolveDeliveryOptions()).toEqual({
      maxQueueSize: 100_000,
      maxQueueBytes: 32 * 1024 * 1024,
      overflowPolicy: "drop-oldest",
      maxBatchSize: 512,
      maxBatchBytes: 4 * 1024 * 1024,
      flushIntervalMs: 200,
      maxConcurrentBatches: 1,
      sendTimeoutMs: 30_000,
      retry: {
        maxAttempts: Number.POSITIVE_INFINITY,
        initialDelayMs: 100,
        maxDelayMs: 30_000,
        multiplier: 2,
        jitter: 0.5,
      },
      circuitBreaker: { failureThreshold: 5, resetTimeoutMs: 10_000 },
    });
  });
});

describe("DeliveryPipeline flush and shutdown", () => {
  it("flush sends a partial batch immediately and resolves true once drained", async () => {
    const { sink, pipeline } = setup({ maxBatchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++) pipeline.enqueue(ev(i));
    const flushed = pipeline.flush();
    await tick();
    expect(await flushed).toBe(true);
    expect(sink.acked).toEqual([0, 1, 2]);
    expect(await pipeline.flush()).toBe(true);
  });

  it("flush resolves false on timeout and leaves events pending (breaker still respected)", async () => {
    const { sink, pipeline, metrics } = setup({
      circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 60_000 },
    });
    sink.mode = "fail";
    pipeline.enqueue(ev(0));
    const flushed = pipeline.flush(5000);
    await tick(5000);
    expect(await flushed).toBe(false);
    expect(sink.calls).toHaveLength(1);
    expect(metrics()).toMatchObject({ pending: 1, breakerState: "open" });
  });

  it("flush waits only for events enqueued before it, not for later ones", async () => {
    const { sink, pipeline } = setup({ maxBatchSize: 1 });
    sink.mode = "hold";
    pipeline.enqueue(ev(0));
    const flushed = pipeline.flush(10_000);
    pipeline.enqueue(ev(1));
    let done: boolean | undefined;
    void flushed.then((value) => {
      done = value;
    });
    await tick();
    expect(done).toBeUndefined();
    sink.calls[0]!.resolve();
    await tick();
    expect(done).toBe(true);
    expect(pipeline.getMetrics().pending).toBe(1);
  });

  it("shutdown drains, closes the sink once, is idempotent, and counts later events as shutdown drops", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) pipeline.enqueue(ev(i));
    const first = pipeline.shutdown();
    const second = pipeline.shutdown();
    expect(second).toBe(first);
    await tick();
    await first;
    expect(sink.acked).toEqual([0, 1, 2, 3, 4]);
    expect(sink.closeCalls).toBe(1);
    pipeline.enqueue(ev(5));
    await pipeline.shutdown();
    expect(sink.closeCalls).toBe(1);
    expect(metrics()).toMatchObject({ emitted: 6, delivered: 5, dropped: 1, pending: 0 });
    expect(metrics().droppedByReason.shutdown).toBe(1);
  });

  it("shutdown drops what is left as shutdown after its timeout, aborting the send in flight", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 2 });
    sink.mode = "hold";
    for (let i = 0; i < 5; i++) pipeline.enqueue(ev(i));
    await tick();
    const done = pipeline.shutdown(2000);
    await tick(2000);
    await done;
    expect(sink.calls[0]!.signal.aborted).toBe(true);
    expect(metrics()).toMatchObject({ emitted: 5, delivered: 0, dropped: 5, pending: 0, inFlight: 0 });
    expect(metrics().droppedByReason.shutdown).toBe(5);
    sink.calls[0]!.resolve(); // a late acknowledgement must not be counted
    await tick();
    expect(metrics()).toMatchObject({ delivered: 0, dropped: 5 });
    expect(sink.closeCalls).toBe(1);
  });

  it("shutdown(t) is done by its deadline, closing included: a slow close is left to finish on its own", async () => {
    const { sink, pipeline, metrics } = setup({ maxBatchSize: 2 });
    let closed = false;
    sink.close = () =>
      new Promise<void>((resolve) => {
        sink.closeCalls++;
        setTimeout(() => {
          closed = true;
          resolve();
        }, 5_000);
      });
    sink.mode = "hold";
    pipeline.enqueue(ev(0));
    await tick();
    let done = false;
    void pipeline.shutdown(2000).then(() => {
      done = true;
    });
    await tick(1999);
    expect(done).toBe(false);
    // The drain gives up at 2000 ms; closing gets the 0 ms left, which Node's timers make 1 ms.
    await tick(2);
    // The drain used the whole budget; close was called and not waited for past the deadline.
    expect(done).toBe(true);
    expect(sink.closeCalls).toBe(1);
    expect(closed).toBe(false);
    expect(metrics().lastError?.message).toBe("sink.close() did not finish within the shutdown timeout");
    await tick(5_000);
    expect(closed).toBe(true);
  });

  it("shutdown gives closing what draining left of the timeout", async () => {
    const { sink, pipeline, metrics } = setup();
    sink.close = () => {
      sink.closeCalls++;
      return new Promise<void>((resolve) => setTimeout(resolve, 1_500));
    };
    pipeline.enqueue(ev(0));
    let done = false;
    void pipeline.shutdown(2000).then(() => {
      done = true;
    });
    await tick(1_500);
    expect(done).toBe(true);
    expect(metrics()).toMatchObject({ delivered: 1, lastError: null });
  });

  it("swallows and records a failing sink.close()", async () => {
    const { sink, pipeline, metrics } = setup();
    sink.closeError = new Error("close failed");
    const done = pipeline.shutdown(100);
    await tick(100);
    await expect(done).resolves.toBeUndefined();
    expect(metrics().lastError?.message).toBe("close failed");
  });
});

describe("DeliveryPipeline accounting (property)", () => {
  type Step =
    | { kind: "enqueue"; count: number; bytes: number }
    | { kind: "advance"; ms: number }
    | { kind: "mode"; mode: "ok" | "fail" | "reject" | "hold" | "partial" }
    | { kind: "settleHeld"; ok: boolean }
    | { kind: "flush" };

  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant("enqueue" as const),
      count: fc.integer({ min: 1, max: 15 }),
      bytes: fc.integer({ min: 1, max: 60 }),
    }),
    fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 3000 }) }),
    fc.record({
      kind: fc.constant("mode" as const),
      mode: fc.constantFrom(
        "ok" as const,
        "fail" as const,
        "reject" as const,
        "hold" as const,
        "partial" as const,
      ),
    }),
    fc.record({ kind: fc.constant("settleHeld" as const), ok: fc.boolean() }),
    fc.record({ kind: fc.constant("flush" as const) }),
  );

  it("keeps emitted === delivered + dropped + pending and the bounds at every step", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxQueueSize: fc.integer({ min: 1, max: 30 }),
          maxQueueBytes: fc.integer({ min: 60, max: 600 }),
          maxBatchSize: fc.integer({ min: 1, max: 8 }),
          maxConcurrentBatches: fc.integer({ min: 1, max: 3 }),
          maxAttempts: fc.constantFrom(2, 4, Number.POSITIVE_INFINITY),
          overflowPolicy: fc.constantFrom("drop-oldest" as const, "drop-newest" as const),
        }),
        fc.array(step, { minLength: 1, maxLength: 30 }),
        async (config, steps) => {
          const sink = new TestSink();
          const { pipeline, metrics } = setup(
            {
              maxQueueSize: config.maxQueueSize,
              maxQueueBytes: config.maxQueueBytes,
              maxBatchSize: config.maxBatchSize,
              maxBatchBytes: 200,
              maxConcurrentBatches: config.maxConcurrentBatches,
              overflowPolicy: config.overflowPolicy,
              sendTimeoutMs: 2000,
              retry: { maxAttempts: config.maxAttempts, initialDelayMs: 50, maxDelayMs: 400 },
              circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 700 },
            },
            sink,
          );
          let nextId = 0;
          // Also observe mid-pipeline moments: breaker transitions fire inside send completions.
          const violations: string[] = [];
          pipeline.onStateChange(() => {
            const m = metrics();
            if (m.emitted !== m.delivered + m.dropped + m.pending) violations.push(JSON.stringify(m));
          });
          const check = () => {
            expect(violations).toEqual([]);
            const m = metrics();
            checkInvariant(m);
            expect(m.pending).toBeLessThanOrEqual(config.maxQueueSize);
            expect(m.pendingBytes).toBeLessThanOrEqual(config.maxQueueBytes);
            expect(m.delivered).toBeLessThanOrEqual(new Set(sink.acked).size);
          };
          for (const s of steps) {
            if (s.kind === "enqueue") {
              for (let i = 0; i < s.count; i++) pipeline.enqueue(ev(nextId++, s.bytes));
            } else if (s.kind === "advance") {
              await tick(s.ms);
            } else if (s.kind === "mode") {
              sink.mode =
                s.mode === "partial"
                  ? (batch) => ({
                      failures: batch.map((_, index) => ({
                        index,
                        error: new Error("odd"),
                        retriable: index % 2 === 0,
                      })),
                    })
                  : s.mode;
            } else if (s.kind === "settleHeld") {
              for (const call of sink.calls) {
                if (s.ok) call.resolve();
                else call.reject(new Error("late failure"));
              }
            } else {
              void pipeline.flush(1000);
            }
            check();
          }
          // Shut down in whatever state the sink is in: a dead or hanging sink forces shutdown drops.
          const shut = pipeline.shutdown(10_000);
          await tick(12_000);
          await shut;
          const m = metrics();
          check();
          expect(m.pending).toBe(0);
          expect(m.emitted).toBe(nextId);
          expect(m.emitted).toBe(m.delivered + m.dropped);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("DeliveryPipeline timers", () => {
  it("never keeps the process alive: a child that enqueues into idle, hanging and broken sinks exits at once", () => {
    vi.useRealTimers();
    const dir = mkdtempSync(join(tmpdir(), "streamll-unref-"));
    const hook = join(dir, "resolve-ts.mjs");
    writeFileSync(
      hook,
      `import { registerHooks } from "node:module";
registerHooks({
  resolve(specifier, context, next) {
    try { return next(specifier, context); } catch (error) {
      if (specifier.startsWith(".") && !/\\.[cm]?[jt]s$/.test(specifier)) return next(specifier + ".ts", context);
      throw error;
    }
  },
});
`,
    );
    const pipelinePath = fileURLToPath(new URL("./delivery-pipeline.ts", import.meta.url));
    const script = join(dir, "child.ts");
    writeFileSync(
      script,
      `import { DeliveryPipeline } from ${JSON.stringify(pipelinePath)};
const quiet = { logger: { warn() {} } };
const close = async () => {};
const ev = (i: number) => ({ json: "{}", bytes: 2 + i * 0 }) as never;
// idle: a partial batch waiting for a long flush interval
const idle = new DeliveryPipeline({ name: "idle", send: async () => {}, close }, { flushIntervalMs: 600_000 }, quiet);
idle.enqueue(ev(0));
// hanging: a send in flight with a long send timeout
const hanging = new DeliveryPipeline({ name: "hang", send: () => new Promise(() => {}), close }, { maxBatchSize: 1, sendTimeoutMs: 600_000 }, quiet);
hanging.enqueue(ev(1));
// broken: breaker open with a long reset timeout, plus backoff
const broken = new DeliveryPipeline({ name: "dead", send: async () => { throw new Error("down"); }, close },
  { maxBatchSize: 1, retry: { initialDelayMs: 600_000, maxDelayMs: 600_000 }, circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 600_000 } }, quiet);
for (let i = 0; i < 10; i++) broken.enqueue(ev(i));
setTimeout(() => { console.log(JSON.stringify([idle.getMetrics().pending, hanging.getMetrics().inFlight, broken.getMetrics().breakerState])); }, 20);
`,
    );
    const result = spawnSync(process.execPath, ["--import", hook, script], {
      encoding: "utf8",
      timeout: 15_000,
    });
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.signal).toBeNull(); // killed by the timeout would mean a timer held the process
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe('[1,1,"open"]');
  });
});

describe("DeliveryPipeline permanent failures", () => {
  it("keeps the fix of a ConfigurationError thrown by another copy of core (ESM and CJS both loaded)", async () => {
    const sink = new TestSink();
    sink.mode = () => {
      // What a sink built against the other copy throws: not an instance of this copy's class.
      throw Object.assign(new Error("login refused for user app"), {
        name: "ConfigurationError",
        code: "CONFIGURATION_INVALID",
        fix: "check the password",
      });
    };
    vi.useRealTimers();
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 1 },
      { logger: { warn() {}, error() {} } },
    );
    try {
      pipeline.enqueue(ev(0));
      expect(await pipeline.flush(5_000)).toBe(true);
      expect(pipeline.getMetrics().failed).toMatchObject({
        code: "CONFIGURATION_INVALID",
        fix: "check the password",
      });
    } finally {
      await pipeline.shutdown(1_000);
    }
  });

  it("stops retrying a sink whose send throws a ConfigurationError, reports it once and drops its events", async () => {
    const { subscribe, unsubscribe } = await import("node:diagnostics_channel");
    const published: unknown[] = [];
    const onMessage = (message: unknown) => published.push(message);
    subscribe("streamll:diagnostics", onMessage);
    const lines: string[] = [];
    const sink = new TestSink();
    sink.mode = () => {
      throw new ConfigurationError(
        "ElastiCache IAM authentication needs the optional package @smithy/signature-v4, not installed",
        [],
        { fix: "npm install @smithy/signature-v4" },
      );
    };
    vi.useRealTimers();
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 1, retry: { initialDelayMs: 1 } },
      { logger: { warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) } },
    );
    try {
      for (let i = 0; i < 5; i++) pipeline.enqueue(ev(i));
      expect(await pipeline.flush(5_000)).toBe(true);
      for (let i = 5; i < 8; i++) pipeline.enqueue(ev(i));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const metrics = pipeline.getMetrics();
      expect(sink.calls).toHaveLength(1);
      expect(metrics.failed).toMatchObject({
        code: "CONFIGURATION_INVALID",
        fix: "npm install @smithy/signature-v4",
      });
      expect(metrics.droppedByReason["sink-failed"]).toBe(8);
      expect(metrics.emitted).toBe(metrics.delivered + metrics.dropped + metrics.pending);
      expect(metrics.retried).toBe(0);
      expect(metrics.breakerState).toBe("closed");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^error streamll: sink test failed permanently and is not retried: ElastiCache/,
      );
      expect(lines[0]).toContain("Fix: npm install @smithy/signature-v4.");
      expect(published).toEqual([expect.objectContaining({ type: "sink-failed", sink: "test" })]);
    } finally {
      unsubscribe("streamll:diagnostics", onMessage);
      await pipeline.shutdown(1_000);
    }
  });
});
