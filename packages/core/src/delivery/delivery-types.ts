import type { SpillOptions } from "./spill/spill-options";
import type { SpillMetrics } from "./spill/spill-store";

/** Why an event was dropped. Every drop is counted under exactly one reason. */
export type DropReason =
  /** The bounded queue was full (by count or bytes) and the overflow policy discarded this event. */
  | "queue-full"
  /** The sink reported the event as non-retriable (e.g. too large, forbidden). */
  | "rejected"
  /** The single encoded event is larger than the queue's byte limit or the sink's batch byte limit. */
  | "too-large"
  /** `retry.maxAttempts` was reached for the batch holding the event. */
  | "retries-exhausted"
  /** `shutdown()` gave up waiting (timeout) while the event was still pending. */
  | "shutdown"
  /**
   * The sink failed permanently (`failed` in the metrics): its configuration cannot work, e.g. a missing
   * optional package, credentials the broker refused even fresh, a topic that does not exist.
   */
  | "sink-failed"
  /** The disk spill's budget (`spill.maxBytes`) was exhausted, or the disk itself was full. */
  | "spill-full"
  /**
   * The disk spill lost the event: writing it failed (an I/O error other than a full disk), or its record was
   * damaged when read back (the damage is also counted in `spill.corrupted`).
   */
  | "spill-failed";

export const DROP_REASONS: readonly DropReason[] = [
  "queue-full",
  "rejected",
  "too-large",
  "retries-exhausted",
  "shutdown",
  "sink-failed",
  "spill-full",
  "spill-failed",
];

export type OverflowPolicy = "drop-oldest" | "drop-newest";

export type CircuitState = "closed" | "open" | "half-open";

/** Retry behaviour for failed batches. */
export interface RetryOptions {
  /**
   * Attempts per batch before its events are dropped as `retries-exhausted`. Default `Infinity`: a batch that
   * fails retriably stays at the head of the queue (the circuit breaker paces the attempts) until it is
   * delivered, so nothing is lost within the queue's limits.
   */
  maxAttempts?: number;
  /** Delay before the first retry. Default 100 ms. */
  initialDelayMs?: number;
  /** Upper bound for the backoff delay. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Growth factor per attempt. Default 2. */
  multiplier?: number;
  /** Fraction of the delay randomised ("equal jitter" when 0.5). 0 disables jitter. Default 0.5. */
  jitter?: number;
}

/** Circuit breaker settings. */
export interface CircuitBreakerOptions {
  /** Consecutive failed sends that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Time the circuit stays open before one trial batch is allowed (half-open). Default 10 000 ms. */
  resetTimeoutMs?: number;
}

/** Delivery settings for one sink. Every field is optional; defaults suit a low-latency developer setup. */
export interface DeliveryOptions {
  /**
   * Maximum events waiting (queued plus in flight). Default 100 000: high enough that the byte bound
   * (`maxQueueBytes`) is what limits ordinary events, so a burst of 20 000 events of ~0.5 KB is held.
   */
  maxQueueSize?: number;
  /**
   * Maximum UTF-8 bytes of JSON waiting (queued plus in flight). Default 32 MiB, the queue's first bound. A
   * queued event holds its JSON (two bytes a character when it holds text beyond Latin-1) plus a few hundred
   * bytes of routing fields and queue entry, for each of at most `maxQueueSize` events.
   */
  maxQueueBytes?: number;
  /** What to discard when the queue is full. Default `drop-oldest` (keep the freshest events). */
  overflowPolicy?: OverflowPolicy;
  /** Events per batch. Default 512. */
  maxBatchSize?: number;
  /** Bytes per batch; an event larger than this alone is dropped as `too-large`. Default 4 MiB. */
  maxBatchBytes?: number;
  /** A partial batch is sent after this long. Default 200 ms. */
  flushIntervalMs?: number;
  /** Batches in flight at once. Default 1 (keeps order). */
  maxConcurrentBatches?: number;
  /** A `send` call that takes longer is aborted and counted as a retriable failure. Default 30 000 ms. */
  sendTimeoutMs?: number;
  retry?: RetryOptions;
  circuitBreaker?: CircuitBreakerOptions;
  /**
   * Disk spill (opt-in): events that do not fit the queue, or arrive while the circuit is open, are written
   * to segment files and replayed when the sink delivers again, also after a restart. `false` turns off a
   * spill set in the defaults. See {@link SpillOptions}.
   */
  spill?: SpillOptions | false;
}

/**
 * One sink's own delivery settings (`{ sink, delivery }` in `configure()`): merged over
 * `StreamllOptions.delivery`, the nested `retry`, `circuitBreaker` and `spill` objects key by key.
 */
export interface SinkDeliveryOptions extends Omit<DeliveryOptions, "spill"> {
  /**
   * This sink's disk spill, merged over the default one: it may leave out `directory` when the defaults set one
   * (`{ name: "orders" }` gives the sink its own subdirectory of the default directory). `false` turns off a
   * spill set in the defaults for this sink.
   */
  spill?: Partial<SpillOptions> | false;
}

/** A snapshot of one sink's delivery state. */
export interface SinkMetrics {
  readonly sink: string;
  /** Events handed to this sink's pipeline. */
  readonly emitted: number;
  /** Events the sink acknowledged. */
  readonly delivered: number;
  /** Dropped events, total and by reason. */
  readonly dropped: number;
  readonly droppedByReason: Readonly<Record<DropReason, number>>;
  /**
   * Events waiting: in the queue, in flight, or in the disk spill (`spill.pending` of them).
   * `emitted + recovered === delivered + dropped + pending` always holds (`recovered` is 0 without a spill).
   */
  readonly pending: number;
  /** UTF-8 bytes of the pending events held in memory (the spill's disk usage is `spill.bytes`). */
  readonly pendingBytes: number;
  /** Events currently being sent (a subset of `pending`). */
  readonly inFlight: number;
  /** Event sends that were retried (an event retried twice counts twice). */
  readonly retried: number;
  /** `send` calls the sink acknowledged (resolved), including those that reported per-event failures. */
  readonly batchesSent: number;
  /** `send` calls that failed as a whole: threw, rejected or timed out. */
  readonly batchesFailed: number;
  readonly breakerState: CircuitState;
  /** Events written to the disk spill (0 without one). An event spilled, replayed and spilled again counts twice. */
  readonly spilled: number;
  /** Events read back from the disk spill into the queue for delivery. */
  readonly replayed: number;
  /**
   * Events found in spill segments left by an earlier process (a crash, a deploy during an outage) and taken
   * into this pipeline's accounting: they were emitted there, so here they count beside `emitted`.
   */
  readonly recovered: number;
  /** The disk spill's state, or `null` without one. */
  readonly spill: SpillMetrics | null;
  /** The most recent failure (message only, truncated, never the error object); ISO-8601 `at`. */
  readonly lastError: { readonly message: string; readonly code?: string; readonly at: string } | null;
  /** ISO-8601 time of the last acknowledged batch. */
  readonly lastDeliveryAt: string | null;
  /**
   * Set when the sink failed permanently (a `ConfigurationError` from `send`): it is not retried, its pending
   * and new events are dropped as `sink-failed`. `fix` says what to do, when known.
   */
  readonly failed: {
    readonly code: string;
    readonly message: string;
    readonly fix?: string;
    readonly at: string;
  } | null;
}

/** Published when a sink's circuit changes state. */
export interface StateChange {
  readonly sink: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly at: string;
  /** The error that opened the circuit, without secrets. */
  readonly reason?: string;
}

/**
 * The time source of the delivery pipeline, the circuit breaker and the credential cache. Tests inject a fake;
 * the default uses `Date.now` and the global timers. Handles returned by `setTimeout` are `unref()`'d when they
 * support it, so streamll timers never keep a process alive.
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Where streamll reports its own trouble (drops, failing credential refreshes). Never receives secrets. */
export interface DeliveryLogger {
  warn(message: string, context?: object): void;
  /** Permanent failures; `warn` is used when missing. */
  error?(message: string, context?: object): void;
}
