import { describeDiagnostic, publishDiagnostic, type StreamllDiagnostic } from "../diagnostics";
import { isConfigurationError, isRetriableError, SinkError } from "../errors";
import { timeoutArgument, v, validateOptions } from "../options/schema";
import {
  backoffDelay,
  clockSchema,
  deliveryLoggerSchema,
  errorCode,
  type ResolvedRetryOptions,
  resolveRetryOptions,
  retryOptionsSchema,
  safeErrorMessage,
  scheduleUnref,
  systemClock,
  timerDelay,
} from "./backoff";
import { BoundedQueue, type TakenEvents } from "./bounded-queue";
import {
  CircuitBreaker,
  circuitBreakerOptionsSchema,
  type ResolvedCircuitBreakerOptions,
  resolveCircuitBreakerOptions,
} from "./circuit-breaker";
import {
  type Clock,
  type DeliveryLogger,
  type DeliveryOptions,
  DROP_REASONS,
  type DropReason,
  type OverflowPolicy,
  type SinkDeliveryOptions,
  type SinkMetrics,
  type StateChange,
} from "./delivery-types";
import { sendingForPipeline } from "./process-hold";
import type { EncodedEvent, Sink } from "./sink";
import {
  type ResolvedSpillOptions,
  resolveSpillOptions,
  type SpillOptions,
  spillOptionsSchema,
} from "./spill/spill-options";
import { type SpillDropReason, SpillStore } from "./spill/spill-store";

/** `DeliveryOptions` with every default filled in and validated. */
export interface ResolvedDeliveryOptions {
  readonly maxQueueSize: number;
  readonly maxQueueBytes: number;
  readonly overflowPolicy: OverflowPolicy;
  readonly maxBatchSize: number;
  readonly maxBatchBytes: number;
  readonly flushIntervalMs: number;
  readonly maxConcurrentBatches: number;
  readonly sendTimeoutMs: number;
  readonly retry: ResolvedRetryOptions;
  readonly circuitBreaker: ResolvedCircuitBreakerOptions;
  /** The disk spill, or `undefined` when it is off. */
  readonly spill: ResolvedSpillOptions | undefined;
}

/** Injectable collaborators of a `DeliveryPipeline`, for tests and embedding. */
export interface DeliveryPipelineHooks {
  /** Time source and timers. Default: `Date.now` and the global timers (every timer is `unref()`'d). */
  clock?: Clock;
  /** Uniform random numbers in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
  /** Receives the pipeline's warnings (drops, internal errors). Default `console.warn`. */
  logger?: DeliveryLogger;
}

const MiB = 1024 * 1024;

/** What `flush()` and `shutdown()` wait by default (ms). */
const DEFAULT_WAIT_MS = 30_000;

/** The defaults documented on `DeliveryOptions`. */
export const DEFAULT_DELIVERY_OPTIONS: Readonly<
  Omit<ResolvedDeliveryOptions, "retry" | "circuitBreaker" | "spill">
> = Object.freeze({
  // Bytes bound the queue first: 32 MiB of JSON is 65 000 ordinary (~0.5 KB) events, so a burst of tens of
  // thousands is held. The count cap only binds for events under ~335 bytes and bounds the per-event overhead
  // (the routing fields, ~150 bytes each) at ~15 MB.
  maxQueueSize: 100_000,
  maxQueueBytes: 32 * MiB,
  overflowPolicy: "drop-oldest",
  maxBatchSize: 512,
  maxBatchBytes: 4 * MiB,
  flushIntervalMs: 200,
  maxConcurrentBatches: 1,
  sendTimeoutMs: 30_000,
});

/** `DeliveryOptions` as `configure()` and the pipeline check them. */
export const deliveryOptionsSchema = v.object<DeliveryOptions>({
  maxQueueSize: v.integer({ min: 1 }).optional(),
  maxQueueBytes: v.integer({ min: 1 }).optional(),
  overflowPolicy: v.oneOf(["drop-oldest", "drop-newest"]).optional(),
  maxBatchSize: v.integer({ min: 1 }).optional(),
  maxBatchBytes: v.integer({ min: 1 }).optional(),
  flushIntervalMs: v.number({ min: 0 }).optional(),
  maxConcurrentBatches: v.integer({ min: 1 }).optional(),
  sendTimeoutMs: v.number({ min: 1 }).optional(),
  retry: retryOptionsSchema.optional(),
  circuitBreaker: circuitBreakerOptionsSchema.optional(),
  spill: v.union(v.oneOf([false]), spillOptionsSchema).optional(),
});

/** A sink entry's `delivery`: its `spill` may leave out what the default spill sets (see `SinkDeliveryOptions`). */
export const sinkDeliveryOptionsSchema = v.object<SinkDeliveryOptions>({
  ...deliveryOptionsSchema.shape,
  spill: v
    .union(
      v.oneOf([false]),
      v.object<Partial<SpillOptions>>({
        ...spillOptionsSchema.shape,
        directory: v.string({ min: 1 }).optional(),
      }),
    )
    .optional(),
});

const pipelineHooksSchema = v.object<DeliveryPipelineHooks>({
  clock: clockSchema.optional(),
  random: v.fn<() => number>().optional(),
  logger: deliveryLoggerSchema.optional(),
});

/**
 * Validates delivery options and fills in defaults.
 * @param path dotted prefix for error messages, e.g. `sinks[0].delivery`. Default `delivery`.
 * @throws ConfigurationError naming every invalid option, e.g.
 *   `invalid delivery options: delivery.maxBatchSize: expected an integer >= 1, got 0`.
 */
export function resolveDeliveryOptions(
  options: DeliveryOptions | undefined = {},
  path = "delivery",
): ResolvedDeliveryOptions {
  const source = validateOptions("delivery", deliveryOptionsSchema, options, path);
  const d = DEFAULT_DELIVERY_OPTIONS;
  const resolved: ResolvedDeliveryOptions = {
    maxQueueSize: source.maxQueueSize ?? d.maxQueueSize,
    maxQueueBytes: source.maxQueueBytes ?? d.maxQueueBytes,
    overflowPolicy: source.overflowPolicy ?? d.overflowPolicy,
    maxBatchSize: source.maxBatchSize ?? d.maxBatchSize,
    maxBatchBytes: source.maxBatchBytes ?? d.maxBatchBytes,
    flushIntervalMs: source.flushIntervalMs ?? d.flushIntervalMs,
    maxConcurrentBatches: source.maxConcurrentBatches ?? d.maxConcurrentBatches,
    sendTimeoutMs: source.sendTimeoutMs ?? d.sendTimeoutMs,
    retry: resolveRetryOptions(source.retry),
    circuitBreaker: resolveCircuitBreakerOptions(source.circuitBreaker),
    spill:
      source.spill === undefined || source.spill === false ? undefined : resolveSpillOptions(source.spill),
  };
  return Object.freeze(resolved);
}

/** One `send` call in progress. */
interface InFlightBatch extends TakenEvents {
  /** 1 + the most failed attempts of any event in the batch; passed to the sink as `SendContext.attempt`. */
  readonly attempt: number;
  readonly controller: AbortController;
  /** Sent as the circuit breaker's half-open trial. */
  readonly trial: boolean;
  timer: unknown;
  /** Set once the outcome was counted; a late resolution after a timeout or forced shutdown is ignored. */
  settled: boolean;
}

interface FlushWaiter {
  /** Every event with a sequence number up to this one must be settled. */
  readonly target: number;
  /** The disk spill must be empty too (a `flush()`; shutdown waits for the memory queue only). */
  readonly withSpill: boolean;
  readonly resolve: (drained: boolean) => void;
  timer: unknown;
}

interface ParsedFailure {
  readonly retriable: boolean;
  readonly error: unknown;
}

const WARNING_INTERVAL_MS = 60_000;
const NO_FAILURES: ReadonlyMap<number, ParsedFailure> = new Map();

const defaultLogger: DeliveryLogger = {
  warn(message, context) {
    if (context === undefined) console.warn(message);
    else console.warn(message, context);
  },
};

function zeroByReason(): Record<DropReason, number> {
  const counts = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) counts[reason] = 0;
  return counts;
}

function toIso(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? new Date().toISOString() : date.toISOString();
}

function isEncodedEvent(value: unknown): value is EncodedEvent {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as { json?: unknown; bytes?: unknown };
  return (
    typeof candidate.json === "string" &&
    typeof candidate.bytes === "number" &&
    Number.isFinite(candidate.bytes) &&
    candidate.bytes >= 0
  );
}

/**
 * Delivers encoded events to one sink: a bounded queue, batches by size, bytes or time, one batch in flight
 * by default, retries with exponential backoff and jitter, a circuit breaker, a send timeout, and a count
 * for every event that does not make it.
 *
 * Every event handed to `enqueue` ends up in exactly one of `delivered`, `dropped` (by reason) or `pending`,
 * so `emitted === delivered + dropped + pending` holds whenever the metrics are read.
 *
 * Timers are `unref()`'d: an idle or blocked pipeline never keeps the process alive. The one exception is
 * the deadline of a `flush()`/`shutdown()` you are awaiting, which holds the process for at most its timeout
 * so the drain you asked for gets its chance.
 */
export class DeliveryPipeline {
  readonly sink: Sink;
  readonly options: ResolvedDeliveryOptions;

  private readonly sinkName: string;
  private readonly queue: BoundedQueue;
  private readonly breaker: CircuitBreaker;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: DeliveryLogger;
  /** The disk spill, when configured. */
  private readonly spill: SpillStore | undefined;
  /** Mirrors `breaker.state === "open"` (kept by a listener), so `enqueue` does not read the clock. */
  private breakerOpen = false;
  /** Replay tokens (events) and when they were last refilled: the `spill.replayRate` limit. */
  private replayTokens = 0;
  private replayRefilledAt = 0;

  private emitted = 0;
  private delivered = 0;
  private droppedTotal = 0;
  private readonly droppedByReason = zeroByReason();
  private retried = 0;
  private batchesSent = 0;
  private batchesFailed = 0;
  private lastError: SinkMetrics["lastError"] = null;
  private lastDeliveryAt: string | null = null;

  private lastSeq = 0;
  private readonly inFlight = new Set<InFlightBatch>();
  private readonly waiters = new Set<FlushWaiter>();
  private readonly stateListeners = new Set<(change: StateChange) => void>();
  /** A partial batch may go out: the flush interval elapsed, or events came back for a retry. */
  private flushDue = false;
  private flushTimer: unknown;
  /** No send before this time (backoff after a failure). */
  private retryAt = 0;
  private wakeTimer: unknown;
  private wakeAt = 0;
  private accepting = true;
  private shutdownPromise: Promise<void> | undefined;
  private pumping = false;
  private pumpAgain = false;
  private pumpScheduled = false;
  /** The pump deferred to the next turn of the event loop after a send settled (see `afterSettle`). */
  private yieldTimer: unknown;
  /**
   * Whether the deadlines of `flush()`/`shutdown()` hold the process. `false` for a pipeline `configure()`
   * replaced: nobody awaits its drain, so it must not keep a program that has ended alive.
   */
  private deadlinesHoldProcess = true;

  private warnedAboutDrops = false;
  private lastWarnAt = 0;
  private unreportedDrops = zeroByReason();
  private summaryTimer: unknown;
  private internalErrorLogged = false;
  private failure: SinkMetrics["failed"] = null;

  /**
   * @param sink where batches go; its `send` is never called concurrently unless `maxConcurrentBatches > 1`.
   * @throws ConfigurationError when an option is invalid (the message names it).
   */
  constructor(sink: Sink, options?: DeliveryOptions, hooks?: DeliveryPipelineHooks, optionPath = "delivery") {
    this.sink = sink;
    this.sinkName = typeof sink?.name === "string" ? sink.name : "unnamed-sink";
    this.options = resolveDeliveryOptions(options, optionPath);
    validateOptions("DeliveryPipeline hooks", pipelineHooksSchema.optional(), hooks);
    this.clock = hooks?.clock ?? systemClock;
    this.random = hooks?.random ?? Math.random;
    this.logger = hooks?.logger ?? defaultLogger;
    this.queue = new BoundedQueue({
      maxCount: this.options.maxQueueSize,
      maxBytes: this.options.maxQueueBytes,
      overflowPolicy: this.options.overflowPolicy,
    });
    this.breaker = new CircuitBreaker(this.options.circuitBreaker, { clock: this.clock });
    this.breaker.onStateChange((transition) => {
      this.breakerOpen = transition.to === "open";
      if (this.breakerOpen) this.moveQueuedToSpill();
      const change: StateChange = {
        sink: this.sinkName,
        from: transition.from,
        to: transition.to,
        at: toIso(transition.at),
        ...(transition.reason === undefined ? {} : { reason: transition.reason }),
      };
      for (const listener of [...this.stateListeners]) {
        try {
          listener(change);
        } catch {
          // A listener's failure must not disturb delivery.
        }
      }
    });
    this.spill =
      this.options.spill === undefined
        ? undefined
        : new SpillStore(
            this.options.spill,
            this.sinkName,
            // The hand-over to the disk writer is bounded like the queue, with room for the bursts that arrive
            // between two writes even when the queue is configured small.
            {
              maxCount: Math.max(this.options.maxQueueSize, 10_000),
              maxBytes: Math.max(this.options.maxQueueBytes, 8 * MiB),
            },
            {
              onDrop: (reason: SpillDropReason, count: number) => {
                this.drop(reason, count);
                this.checkWaiters();
              },
              onReadable: () => this.pump(),
              onError: (error: unknown) => this.recordError(error),
              onEmpty: () => this.checkWaiters(),
            },
            `${optionPath}.spill.directory`,
          );
    this.replayTokens = Math.min(this.options.maxBatchSize, this.options.spill?.replayRate ?? 0);
    this.replayRefilledAt = this.clock.now();
  }

  /**
   * Hands one event to the pipeline. Synchronous, O(1) amortised, never throws: a full queue, a closed pipeline or an
   * internal fault turns into a counted drop, never an exception in the caller. The sink is never called from
   * inside `enqueue`: a completed batch is sent from a microtask.
   */
  enqueue(event: EncodedEvent): void {
    try {
      this.emitted++;
      if (!this.accepting) {
        this.drop("shutdown", 1);
        return;
      }
      if (this.failure !== null) {
        this.drop("sink-failed", 1);
        return;
      }
      if (!isEncodedEvent(event)) {
        this.drop("rejected", 1);
        return;
      }
      if (event.bytes > this.options.maxBatchBytes) {
        this.drop("too-large", 1);
        return;
      }
      const spill = this.spill;
      if (spill !== undefined && (this.breakerOpen || !this.queue.hasRoom(event.bytes))) {
        // O(1): the spill's writer appends it to a segment later, off this call. It takes a sequence number
        // like a queued event, so an event in memory that goes to disk later finds its place among it.
        if (event.bytes > this.queue.maxBytes) this.drop("too-large", 1);
        else if (spill.push(event, this.lastSeq + 1)) this.lastSeq++;
        else this.drop("queue-full", 1);
        return;
      }
      const seq = this.lastSeq + 1;
      const result = this.queue.push(event, seq);
      if (!result.accepted) {
        this.drop(result.reason, 1);
        return;
      }
      this.lastSeq = seq;
      if (result.evicted.length > 0) {
        this.drop("queue-full", result.evicted.length);
        this.checkWaiters();
      }
      if (this.queue.hasFullBatch(this.options.maxBatchSize, this.options.maxBatchBytes)) this.schedulePump();
      else this.armFlushTimer();
    } catch (error) {
      this.internalError(error);
    }
  }

  /**
   * Sends everything pending now without waiting for the flush interval (the circuit breaker and backoff still
   * apply). Rejects only for an invalid `timeoutMs` (`ConfigurationError`).
   * @param timeoutMs how long to wait: a number >= 0 or `Infinity`. Default 30 000.
   * @returns `true` once every event enqueued before the call is delivered or dropped, `false` on timeout.
   */
  async flush(timeoutMs?: number): Promise<boolean> {
    return this.waitUntilSettled(timeoutArgument("flush()", timeoutMs, DEFAULT_WAIT_MS), true);
  }

  private waitUntilSettled(timeoutMs: number, withSpill: boolean): Promise<boolean> {
    try {
      const target = this.lastSeq;
      if (this.isSettled(target, withSpill)) return Promise.resolve(true);
      if (withSpill) this.spill?.requestReplay();
      return new Promise<boolean>((resolve) => {
        const waiter: FlushWaiter = { target, withSpill, resolve, timer: undefined };
        // Not unref'd unless retiring: the caller awaits this deadline, so the process should wait for it.
        waiter.timer = this.setDeadline(() => {
          this.waiters.delete(waiter);
          resolve(false);
        }, timeoutMs);
        this.waiters.add(waiter);
        this.pump();
        this.checkWaiters();
      });
    } catch (error) {
      this.internalError(error);
      return Promise.resolve(false);
    }
  }

  /**
   * Stops accepting events (later `enqueue` calls count as dropped `shutdown`), drains what is pending, drops
   * whatever is still pending at the deadline as `shutdown` (aborting sends in flight), then calls
   * `sink.close()` once. Resolves by the deadline: a `close` still running then is left to finish on its own
   * (recorded as `lastError`, as a failing one is). Idempotent; rejects only for an invalid `timeoutMs`
   * (`ConfigurationError`, before anything stops).
   * @param timeoutMs time the whole shutdown may take, draining and closing: a number >= 0 or `Infinity`.
   *   Default 30 000.
   */
  shutdown(timeoutMs?: number): Promise<void> {
    let timeout: number;
    try {
      timeout = timeoutArgument("shutdown()", timeoutMs, DEFAULT_WAIT_MS);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.shutdownPromise === undefined) {
      this.accepting = false;
      this.shutdownPromise = this.runShutdown(timeout);
    }
    return this.shutdownPromise;
  }

  /**
   * @internal For a pipeline a later `configure()` replaced: `shutdown(timeoutMs)`, but its deadlines are
   * `unref()`'d, so the drain goes on while the program runs and never keeps an ended program alive (the exit
   * flush gives it its own bounded chance).
   */
  retire(timeoutMs: number): Promise<void> {
    if (this.shutdownPromise === undefined) this.deadlinesHoldProcess = false;
    return this.shutdown(timeoutMs);
  }

  /** A timer for a deadline someone awaits: it holds the process unless this pipeline is retiring. */
  private setDeadline(callback: () => void, ms: number): unknown {
    return this.deadlinesHoldProcess
      ? this.clock.setTimeout(callback, timerDelay(ms))
      : scheduleUnref(this.clock, callback, ms);
  }

  /**
   * @internal For a `configure()` that failed after building this pipeline: stops it without closing the
   * sink and releases its spill slot. Nothing was enqueued.
   */
  abandon(): void {
    this.accepting = false;
    void this.spill?.close();
  }

  /** A consistent snapshot of this sink's counters. */
  getMetrics(): SinkMetrics {
    let breakerState: SinkMetrics["breakerState"];
    try {
      breakerState = this.breaker.state;
    } catch {
      breakerState = "closed";
    }
    return {
      sink: this.sinkName,
      emitted: this.emitted,
      delivered: this.delivered,
      dropped: this.droppedTotal,
      droppedByReason: { ...this.droppedByReason },
      pending: this.queue.size + (this.spill?.pending ?? 0),
      pendingBytes: this.queue.bytes,
      inFlight: this.queue.reservedCount,
      retried: this.retried,
      batchesSent: this.batchesSent,
      batchesFailed: this.batchesFailed,
      breakerState,
      spilled: this.spill?.spilled ?? 0,
      replayed: this.spill?.replayed ?? 0,
      recovered: this.spill?.recovered ?? 0,
      spill: this.spill?.metrics() ?? null,
      lastError: this.lastError,
      lastDeliveryAt: this.lastDeliveryAt,
      failed: this.failure,
    };
  }

  /**
   * Calls `listener` on every circuit breaker transition of this sink. Listener errors are swallowed.
   * @returns a function that unsubscribes.
   */
  onStateChange(listener: (change: StateChange) => void): () => void {
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
    };
  }

  private async runShutdown(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    const spill = this.spill;
    try {
      this.clearTimer("flushTimer");
      this.flushDue = true;
      if (spill === undefined) {
        const drained = await this.flush(timeoutMs);
        if (!drained) this.dropEverythingPending();
      } else {
        // The memory queue gets half the budget to drain (none while the circuit is open), then whatever is
        // still in memory, in flight included, goes to disk for the next process. What is on disk stays there:
        // it is not replayed during shutdown.
        if (!this.breakerOpen && this.failure === null) await this.waitUntilSettled(timeoutMs / 2, false);
        this.moveMemoryToSpill(spill);
      }
    } catch (error) {
      this.internalError(error);
      if (spill === undefined) this.dropEverythingPending();
    }
    this.clearTimer("flushTimer");
    this.clearTimer("wakeTimer");
    this.clearTimer("yieldTimer");
    if (spill !== undefined && !(await this.withinDeadline(spill.close(), deadline))) {
      this.recordError(
        new SinkError("the disk spill did not finish writing before the shutdown timeout", {
          retriable: false,
        }),
      );
    }
    try {
      // Within the caller's deadline: a SIGTERM handler's `shutdown(5_000)` must be done in 5 s. Closing after
      // a full drain gets only what is left; a sink that needs longer closes in the background.
      await this.closeSink(Math.max(0, deadline - this.clock.now()));
    } catch (error) {
      this.recordError(error);
    }
    this.clearTimer("summaryTimer");
    this.emitDropSummary();
  }

  /**
   * The sink is down: what waits in the queue goes to disk too, so a crash during the outage loses no more
   * than the writer's last moments. Replay brings it back (a replayed batch is the half-open trial).
   * Not when the disk budget has no room for it all: the queue holds the oldest events (the spill only takes
   * what does not fit the queue), and at the budget the oldest are the ones kept, so they stay in memory.
   * Each goes in its place among what is on disk, by emission order (the queue fills before the circuit
   * opens, so its events are older than the overflow written meanwhile).
   */
  private moveQueuedToSpill(): void {
    const spill = this.spill;
    if (spill === undefined || this.queue.queuedCount === 0) return;
    if (!spill.hasRoomFor(this.queue.queuedCount, this.queue.queuedBytes)) return;
    try {
      const events: EncodedEvent[] = [];
      const seqs: number[] = [];
      this.drainQueuedInto(events, seqs);
      this.drop("shutdown", spill.takeBack(events, seqs));
    } catch (error) {
      this.internalError(error);
    }
  }

  /**
   * In-flight and queued events go to the spill (a late acknowledgement of an aborted send makes a duplicate):
   * batches in flight first, in the order they were sent, as they are older than the queue. Each goes in its
   * place among what is on disk, by emission order. Replayed events are written again, so their old segments
   * can go.
   */
  private moveMemoryToSpill(spill: SpillStore): void {
    const events: EncodedEvent[] = [];
    const seqs: number[] = [];
    for (const batch of [...this.inFlight]) {
      batch.settled = true;
      this.clock.clearTimeout(batch.timer);
      this.inFlight.delete(batch);
      this.queue.release(batch.events.length, batch.bytes);
      events.push(...batch.events);
      seqs.push(...batch.seqs);
      try {
        batch.controller.abort(
          new SinkError("delivery pipeline shut down", { retriable: false, code: "SINK_CLOSED" }),
        );
      } catch {
        // An abort listener in the sink threw; the batch is already accounted for.
      }
    }
    this.drainQueuedInto(events, seqs);
    this.drop("shutdown", spill.takeBack(events, seqs));
    this.checkWaiters();
  }

  /** Empties the queue (not what is in flight) into `events`, oldest first, with their sequence numbers. */
  private drainQueuedInto(events: EncodedEvent[], seqs: number[]): void {
    for (let seq = this.queue.headSeq; seq !== undefined; seq = this.queue.headSeq) {
      const event = this.queue.shift();
      if (event === undefined) break;
      events.push(event);
      seqs.push(seq);
    }
  }

  private async withinDeadline(work: Promise<void>, deadline: number): Promise<boolean> {
    let timer: unknown;
    const timedOut = new Promise<false>((resolve) => {
      timer = this.setDeadline(() => resolve(false), Math.max(0, deadline - this.clock.now()));
    });
    try {
      return await Promise.race([work.then(() => true), timedOut]);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private async closeSink(timeoutMs: number): Promise<void> {
    let timer: unknown;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = this.setDeadline(() => resolve("timeout"), timeoutMs);
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(() => this.sink.close()), timedOut]);
      if (outcome === "timeout") {
        this.recordError(
          new SinkError(`sink.close() did not finish within the shutdown timeout`, { retriable: false }),
        );
      }
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  /** Forced end of shutdown: queued and in-flight events become `shutdown` drops; sends are aborted. */
  private dropEverythingPending(): void {
    const cleared = this.queue.clearQueued();
    this.drop("shutdown", cleared.count);
    for (const batch of [...this.inFlight]) {
      batch.settled = true;
      this.clock.clearTimeout(batch.timer);
      this.inFlight.delete(batch);
      this.queue.release(batch.events.length, batch.bytes);
      this.drop("shutdown", batch.events.length);
      try {
        batch.controller.abort(
          new SinkError("delivery pipeline shut down", { retriable: false, code: "SINK_CLOSED" }),
        );
      } catch {
        // An abort listener in the sink threw; the batch is already accounted for.
      }
    }
    this.checkWaiters();
  }

  /**
   * @internal Ends a shutdown in progress now, as its deadline would: what is pending is dropped as
   * `shutdown` (sends in flight aborted through their signal), or with a disk spill moved to disk; then the
   * sink is closed. For a pipeline a `configure()` replaced whose drain outlives the runtime's `shutdown()`:
   * its in-flight send must not keep the program alive past that deadline. No effect before `shutdown()`.
   */
  cutShutdownShort(): void {
    if (this.shutdownPromise === undefined) return;
    try {
      if (this.spill === undefined) this.dropEverythingPending();
      else {
        // The drain stops waiting; `runShutdown` then moves what is in memory to disk.
        for (const waiter of [...this.waiters]) {
          this.clock.clearTimeout(waiter.timer);
          this.waiters.delete(waiter);
          waiter.resolve(false);
        }
      }
    } catch (error) {
      this.internalError(error);
    }
  }

  /**
   * @internal Stops waiting for the sends in flight now, as their `sendTimeoutMs` would: a retriable failure
   * each, their events pending again and the sink's signal aborted. For core's exit flush: once its deadline has
   * passed, a program that has ended should exit, not wait out a send to a broker that stopped answering.
   */
  abandonSendsInFlight(): void {
    try {
      const error = new SinkError("send abandoned: the exit flush deadline passed", {
        retriable: true,
        code: "SEND_TIMEOUT",
      });
      for (const batch of [...this.inFlight]) this.giveUpOnSend(batch, error);
    } catch (caught) {
      this.internalError(caught);
    }
  }

  /**
   * Pumps on a microtask: the enqueue that completes a batch returns at once, and taking the batch and the
   * sink's own synchronous work in `send` (rendering, framing, serialising a request) run after the caller's
   * synchronous code, not inside its `emit()`. Many enqueues before the microtask share one pump.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(this.runScheduledPump);
  }

  private readonly runScheduledPump = (): void => {
    this.pumpScheduled = false;
    this.pump();
  };

  /** Starts as many sends as allowed. Re-entrant calls (a sink enqueueing from `send`) are folded into one. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain);
    } catch (error) {
      this.internalError(error);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    if (this.failure !== null) return;
    if (this.spill !== undefined) this.feedReplay(this.spill);
    const o = this.options;
    while (this.inFlight.size < o.maxConcurrentBatches && this.queue.queuedCount > 0) {
      const partialAllowed = this.flushDue || this.waiters.size > 0 || !this.accepting;
      if (!partialAllowed && !this.queue.hasFullBatch(o.maxBatchSize, o.maxBatchBytes)) {
        this.armFlushTimer();
        return;
      }
      const now = this.clock.now();
      if (now < this.retryAt) {
        this.armWake(this.retryAt - now);
        return;
      }
      const trial = this.breaker.state === "half-open";
      if (!this.breaker.tryAcquire()) {
        // Open: sleep until the half-open moment. Half-open with a trial out: its result will pump again.
        const wait = this.breaker.msUntilTrial();
        if (wait !== undefined) this.armWake(wait);
        return;
      }
      const taken = this.queue.take(o.maxBatchSize, o.maxBatchBytes);
      // What the flush interval covered is on its way. Checked before `send` runs: events the sink emits from
      // `send` are new and wait for their own interval (or a full batch), not go out on this one's expiry.
      if (this.queue.queuedCount === 0) {
        this.flushDue = false;
        this.clearTimer("flushTimer");
      }
      this.startSend(taken, trial);
    }
    if (this.queue.queuedCount === 0) {
      this.flushDue = false;
      this.clearTimer("flushTimer");
    }
  }

  /**
   * Moves spilled events back into the queue, oldest first, while the sink delivers: at most
   * `spill.replayRate` per second, and only while less than one batch is queued, so live events share every
   * batch and never wait behind the backlog. With the circuit open nothing is replayed (a wake is armed for
   * the trial); half-open, a replayed batch serves as the trial when no live event is waiting.
   */
  private feedReplay(spill: SpillStore): void {
    if (!this.accepting || !spill.hasBacklog) return;
    const o = this.options;
    const state = this.breaker.state;
    if (state === "open") {
      const wait = this.breaker.msUntilTrial();
      if (wait !== undefined) this.armWake(wait);
      return;
    }
    if (state === "half-open" && this.queue.size > 0) return;
    const now = this.clock.now();
    if (now < this.retryAt) {
      this.armWake(this.retryAt - now);
      return;
    }
    const rate = o.spill?.replayRate ?? 1;
    const burst = Math.max(o.maxBatchSize, rate / 10);
    this.replayTokens = Math.min(burst, this.replayTokens + ((now - this.replayRefilledAt) * rate) / 1000);
    this.replayRefilledAt = now;
    const room = Math.min(
      Math.floor(this.replayTokens),
      o.maxBatchSize - this.queue.queuedCount,
      this.queue.maxCount - this.queue.size,
    );
    if (room <= 0) {
      if (this.replayTokens < 1) this.armWake(Math.ceil(((1 - this.replayTokens) * 1000) / rate));
      return;
    }
    const events = spill.takeReplay(room);
    if (events.length === 0) return;
    this.replayTokens -= events.length;
    let noRoom: EncodedEvent[] | undefined;
    for (const event of events) {
      if (noRoom === undefined && this.queue.hasRoom(event.bytes)) {
        this.lastSeq++;
        this.queue.push(event, this.lastSeq);
      } else {
        // No room by bytes: this and the rest go back to disk, in front of what is left of the segment they
        // came from, and their old segment may go.
        noRoom ??= [];
        noRoom.push(event);
      }
    }
    if (noRoom !== undefined) {
      // Replayed events go back where they came from whatever their number.
      this.drop("queue-full", spill.takeBack(noRoom, new Array<number>(noRoom.length).fill(0)));
    }
    this.flushDue = true;
  }

  private startSend(taken: TakenEvents, trial: boolean): void {
    let attempt = 1;
    for (const failed of taken.attempts) if (failed + 1 > attempt) attempt = failed + 1;
    const batch: InFlightBatch = {
      ...taken,
      attempt,
      controller: new AbortController(),
      trial,
      timer: undefined,
      settled: false,
    };
    this.inFlight.add(batch);
    const timeoutMs = this.options.sendTimeoutMs;
    batch.timer = scheduleUnref(this.clock, () => this.onSendTimeout(batch, timeoutMs), timeoutMs);
    let outcome: unknown;
    try {
      // A copy, so a sink that mutates its argument cannot corrupt what the pipeline retries.
      const events = batch.events.slice();
      const context = { signal: batch.controller.signal, attempt };
      outcome = sendingForPipeline(() => this.sink.send(events, context));
    } catch (error) {
      this.onSendFailed(batch, error);
      return;
    }
    Promise.resolve(outcome).then(
      (value) => this.onSendResolved(batch, value),
      (error: unknown) => this.onSendFailed(batch, error),
    );
  }

  private onSendTimeout(batch: InFlightBatch, timeoutMs: number): void {
    this.giveUpOnSend(
      batch,
      new SinkError(`send timed out after ${timeoutMs} ms`, { retriable: true, code: "SEND_TIMEOUT" }),
    );
  }

  /** Ends the wait for a send as its timeout does: a retriable failure, and the sink's signal aborted. */
  private giveUpOnSend(batch: InFlightBatch, error: SinkError): void {
    if (batch.settled) return;
    this.onSendFailed(batch, error);
    try {
      batch.controller.abort(error);
    } catch {
      // An abort listener in the sink threw; the timeout is already accounted for.
    }
  }

  private onSendResolved(batch: InFlightBatch, value: unknown): void {
    if (batch.settled) return;
    batch.settled = true;
    try {
      this.clock.clearTimeout(batch.timer);
      this.inFlight.delete(batch);
      this.batchesSent++;
      this.lastDeliveryAt = toIso(this.clock.now());
      const failures = this.parseFailures(value, batch.events.length);
      if (failures.size === 0) {
        this.delivered += batch.events.length;
        this.queue.release(batch.events.length, batch.bytes);
        this.spill?.settle(batch.events);
        this.retryAt = 0;
        this.breaker.recordSuccess();
        return;
      }
      let deliveredCount = 0;
      let rejected = 0;
      let exhausted = 0;
      let settledBytes = 0;
      const retryEvents: EncodedEvent[] = [];
      const retryAttempts: number[] = [];
      const retrySeqs: number[] = [];
      let retryMaxAttempt = 0;
      let firstError: unknown;
      for (let i = 0; i < batch.events.length; i++) {
        const event = batch.events[i]!;
        const failure = failures.get(i);
        if (failure === undefined) {
          deliveredCount++;
          settledBytes += event.bytes;
          continue;
        }
        if (firstError === undefined) firstError = failure.error;
        const attempts = batch.attempts[i]! + 1;
        if (!failure.retriable) {
          rejected++;
          settledBytes += event.bytes;
        } else if (attempts >= this.options.retry.maxAttempts) {
          exhausted++;
          settledBytes += event.bytes;
        } else {
          retryEvents.push(event);
          retryAttempts.push(attempts);
          retrySeqs.push(batch.seqs[i]!);
          if (attempts > retryMaxAttempt) retryMaxAttempt = attempts;
        }
      }
      this.recordError(firstError);
      this.delivered += deliveredCount;
      this.queue.release(deliveredCount + rejected + exhausted, settledBytes);
      this.drop("rejected", rejected);
      this.drop("retries-exhausted", exhausted);
      this.requeue(retryEvents, retryAttempts, retrySeqs, retryMaxAttempt);
      this.settleSpilled(batch.events, retryEvents);
      // The sink answered, so it is up, unless it failed every event retriably (then treat it as down).
      if (retryEvents.length + exhausted === batch.events.length) {
        this.recordBreakerFailure(batch);
      } else {
        this.breaker.recordSuccess();
      }
      if (retryEvents.length === 0) this.retryAt = 0;
    } catch (error) {
      this.internalError(error);
    } finally {
      this.afterSettle();
    }
  }

  private onSendFailed(batch: InFlightBatch, error: unknown): void {
    if (batch.settled) return;
    batch.settled = true;
    try {
      this.clock.clearTimeout(batch.timer);
      this.inFlight.delete(batch);
      this.batchesFailed++;
      this.recordError(error);
      const n = batch.events.length;
      if (isConfigurationError(error) || this.failure !== null) {
        this.queue.release(n, batch.bytes);
        this.drop("sink-failed", n);
        this.spill?.settle(batch.events);
        this.failPermanently(error);
        return;
      }
      if (!isRetriableError(error)) {
        this.queue.release(n, batch.bytes);
        this.drop("rejected", n);
        this.spill?.settle(batch.events);
        // The sink answered definitively, so it is reachable.
        this.breaker.recordSuccess();
        return;
      }
      const retryEvents: EncodedEvent[] = [];
      const retryAttempts: number[] = [];
      const retrySeqs: number[] = [];
      let exhausted = 0;
      let exhaustedBytes = 0;
      for (let i = 0; i < n; i++) {
        const event = batch.events[i]!;
        const attempts = batch.attempts[i]! + 1;
        if (attempts >= this.options.retry.maxAttempts) {
          exhausted++;
          exhaustedBytes += event.bytes;
        } else {
          retryEvents.push(event);
          retryAttempts.push(attempts);
          retrySeqs.push(batch.seqs[i]!);
        }
      }
      this.queue.release(exhausted, exhaustedBytes);
      this.drop("retries-exhausted", exhausted);
      this.requeue(retryEvents, retryAttempts, retrySeqs, batch.attempt);
      if (exhausted > 0) this.settleSpilled(batch.events, retryEvents);
      this.recordBreakerFailure(batch);
    } catch (internal) {
      this.internalError(internal);
    } finally {
      this.afterSettle();
    }
  }

  /**
   * The sink's configuration cannot work: retrying would only hide that behind an open breaker. Everything
   * pending is dropped as `sink-failed`, new events are too, and the failure is reported once.
   */
  private failPermanently(error: unknown): void {
    if (this.failure !== null) return;
    // Read by shape, as isConfigurationError decides: a sink built against another copy of core (ESM and CJS
    // both loaded, two installs) throws a ConfigurationError that is not an instance of this one.
    const fix = fixOf(error);
    const at = toIso(this.clock.now());
    this.failure = Object.freeze({
      code: errorCode(error) ?? "CONFIGURATION_INVALID",
      message: safeErrorMessage(error),
      ...(fix === undefined ? {} : { fix: safeErrorMessage(fix) }),
      at,
    });
    this.clearTimer("flushTimer");
    this.clearTimer("wakeTimer");
    const cleared = this.queue.clearQueued();
    this.drop("sink-failed", cleared.count);
    const diagnostic: StreamllDiagnostic = { type: "sink-failed", sink: this.sinkName, ...this.failure };
    publishDiagnostic(diagnostic);
    try {
      const report = this.logger.error ?? this.logger.warn;
      report.call(this.logger, `streamll: ${describeDiagnostic(diagnostic)}`);
    } catch {
      // Logging must never throw into the pipeline.
    }
  }

  /**
   * While half-open, only the trial's failure decides: a late failure of a batch sent before the circuit
   * opened (with `maxConcurrentBatches > 1`) must not re-open it and free a second trial while the first is
   * still out.
   */
  private recordBreakerFailure(batch: InFlightBatch): void {
    if (!batch.trial && this.breaker.state === "half-open") return;
    this.breaker.recordFailure(this.lastError?.message);
  }

  /** Puts retriable events back at the head and holds further sends for the backoff delay of `attempt`. */
  private requeue(events: EncodedEvent[], attempts: number[], seqs: number[], attempt: number): void {
    if (events.length === 0) return;
    this.queue.requeue(events, attempts, seqs);
    this.retried += events.length;
    this.flushDue = true;
    this.retryAt = this.clock.now() + backoffDelay(attempt, this.options.retry, this.random);
  }

  /** Tells the spill which replayed events of a batch left memory: all but those requeued for a retry. */
  private settleSpilled(events: readonly EncodedEvent[], requeued: readonly EncodedEvent[]): void {
    const spill = this.spill;
    if (spill === undefined || spill.outstanding === 0) return;
    if (requeued.length === 0) {
      spill.settle(events);
      return;
    }
    const kept = new Set(requeued);
    spill.settle(events.filter((event) => !kept.has(event)));
  }

  /**
   * A settled send frees a slot. A sink whose `send` resolves at once (or emits events itself, e.g. it calls an
   * instrumented client) would otherwise chain send after send on microtasks and starve the event loop, timers
   * included: unless a `flush()`/`shutdown()` is waiting (it wants the drain now, and it ends), the next send
   * starts on an `unref()`'d 0 ms timer, after the loop has had its turn.
   */
  private afterSettle(): void {
    this.checkWaiters();
    if (this.waiters.size > 0 || !this.accepting) {
      this.pump();
      return;
    }
    if (this.yieldTimer !== undefined) return;
    if (this.queue.queuedCount === 0 && this.spill?.hasBacklog !== true) return;
    this.yieldTimer = scheduleUnref(
      this.clock,
      () => {
        this.yieldTimer = undefined;
        this.pump();
      },
      0,
    );
  }

  /** Valid, de-duplicated per-event failures of a resolved `send`; anything malformed is ignored. */
  private parseFailures(value: unknown, batchSize: number): ReadonlyMap<number, ParsedFailure> {
    if (typeof value !== "object" || value === null) return NO_FAILURES;
    let list: unknown;
    try {
      list = (value as { failures?: unknown }).failures;
    } catch {
      return NO_FAILURES;
    }
    if (!Array.isArray(list) || list.length === 0) return NO_FAILURES;
    const failures = new Map<number, ParsedFailure>();
    for (const item of list) {
      if (typeof item !== "object" || item === null) continue;
      const { index, retriable, error } = item as { index?: unknown; retriable?: unknown; error?: unknown };
      if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= batchSize) continue;
      if (failures.has(index)) continue;
      failures.set(index, {
        retriable: typeof retriable === "boolean" ? retriable : isRetriableError(error),
        error,
      });
    }
    return failures;
  }

  /**
   * True when no pending event has a sequence number <= `target` and, `withSpill`, the disk spill is empty,
   * leftovers of an earlier process included (unless the sink failed for good: then what is on disk waits for
   * the next process).
   */
  private isSettled(target: number, withSpill: boolean): boolean {
    if (!this.isSettledUpTo(target)) return false;
    const spill = this.spill;
    if (!withSpill || spill === undefined || this.failure !== null) return true;
    return !spill.hasBacklog && spill.outstanding === 0;
  }

  /** True when no pending event has a sequence number <= `target`. */
  private isSettledUpTo(target: number): boolean {
    const head = this.queue.headSeq;
    if (head !== undefined && head <= target) return false;
    for (const batch of this.inFlight) {
      const first = batch.seqs[0];
      if (first !== undefined && first <= target) return false;
    }
    return true;
  }

  private checkWaiters(): void {
    if (this.waiters.size === 0) return;
    for (const waiter of [...this.waiters]) {
      if (this.isSettled(waiter.target, waiter.withSpill)) {
        this.waiters.delete(waiter);
        this.clock.clearTimeout(waiter.timer);
        waiter.resolve(true);
      }
    }
  }

  private armFlushTimer(): void {
    if (this.flushTimer !== undefined || this.flushDue) return;
    this.flushTimer = scheduleUnref(
      this.clock,
      () => {
        this.flushTimer = undefined;
        this.flushDue = true;
        this.pump();
      },
      this.options.flushIntervalMs,
    );
  }

  /** Wakes the pipeline in `ms`; one timer at most, kept if it already fires sooner. */
  private armWake(ms: number): void {
    const at = this.clock.now() + ms;
    if (this.wakeTimer !== undefined) {
      if (this.wakeAt <= at) return;
      this.clearTimer("wakeTimer");
    }
    this.wakeAt = at;
    this.wakeTimer = scheduleUnref(
      this.clock,
      () => {
        this.wakeTimer = undefined;
        this.pump();
      },
      ms,
    );
  }

  private clearTimer(name: "flushTimer" | "wakeTimer" | "summaryTimer" | "yieldTimer"): void {
    const handle = this[name];
    if (handle !== undefined) {
      this[name] = undefined;
      this.clock.clearTimeout(handle);
    }
  }

  private recordError(error: unknown): void {
    if (error === undefined) return;
    const code = errorCode(error);
    const message = safeErrorMessage(error);
    const at = toIso(this.clock.now());
    this.lastError = Object.freeze(code === undefined ? { message, at } : { message, code, at });
  }

  private drop(reason: DropReason, count: number): void {
    if (count <= 0) return;
    this.droppedByReason[reason] += count;
    this.droppedTotal += count;
    this.noteDropsForWarning(reason, count);
  }

  /** One warning when drops start, then at most one summary per minute: never a log line per event. */
  private noteDropsForWarning(reason: DropReason, count: number): void {
    // A failed sink's drops were announced with the failure; the metrics count them.
    if (reason === "sink-failed") return;
    try {
      if (!this.warnedAboutDrops) {
        this.warnedAboutDrops = true;
        this.lastWarnAt = this.clock.now();
        this.warn(
          `streamll: sink "${this.sinkName}" is dropping events (${reason}); further drops are summarised at most once a minute, see getMetrics()`,
          { sink: this.sinkName, reason, count },
        );
        return;
      }
      this.unreportedDrops[reason] += count;
      if (this.summaryTimer === undefined && this.shutdownPromise === undefined) {
        const wait = Math.max(0, this.lastWarnAt + WARNING_INTERVAL_MS - this.clock.now());
        this.summaryTimer = scheduleUnref(
          this.clock,
          () => {
            this.summaryTimer = undefined;
            this.emitDropSummary();
          },
          wait,
        );
      }
    } catch {
      // Warning about drops must never cause one.
    }
  }

  private emitDropSummary(): void {
    let total = 0;
    const byReason: Partial<Record<DropReason, number>> = {};
    for (const reason of DROP_REASONS) {
      const n = this.unreportedDrops[reason];
      if (n > 0) {
        byReason[reason] = n;
        total += n;
      }
    }
    if (total === 0) return;
    this.unreportedDrops = zeroByReason();
    this.lastWarnAt = this.clock.now();
    this.warn(`streamll: sink "${this.sinkName}" dropped ${total} more event(s)`, {
      sink: this.sinkName,
      droppedByReason: byReason,
      droppedTotal: this.droppedTotal,
    });
  }

  private warn(message: string, context: object): void {
    try {
      this.logger.warn(message, context);
    } catch {
      // A broken logger must not break delivery.
    }
  }

  private internalError(error: unknown): void {
    if (this.internalErrorLogged) return;
    this.internalErrorLogged = true;
    this.warn(`streamll: internal error in the delivery pipeline of sink "${this.sinkName}"`, {
      sink: this.sinkName,
      error: safeErrorMessage(error),
    });
  }
}

/** The `fix` of a ConfigurationError (of any copy of core), if it carries one. */
function fixOf(error: unknown): string | undefined {
  try {
    const fix = (error as { fix?: unknown } | null)?.fix;
    return typeof fix === "string" && fix !== "" ? fix : undefined;
  } catch {
    return undefined;
  }
}
