import type { StreamllEvent } from "../events/event-schema";

/**
 * An event after encoding: the wire JSON plus the few fields sinks need for keys, routing and headers, so no
 * sink has to parse JSON it just produced.
 */
export interface EncodedEvent {
  /** The event as encoded (data already sanitised, capped and redacted). Read it; do not mutate it. */
  readonly event: StreamllEvent;
  /** The wire JSON, identical for every sink. */
  readonly json: string;
  /** UTF-8 byte length of `json`. */
  readonly bytes: number;
}

/** Passed to every `send` call. */
export interface SendContext {
  /** Aborted when the pipeline's send timeout elapses or on forced shutdown. Sinks should stop waiting then. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt of this batch, 2 for its first retry, and so on. */
  readonly attempt: number;
}

/** One event of a batch that a sink could not deliver while the rest of the batch went through. */
export interface EventFailure {
  /** Index into the batch passed to `send`. */
  readonly index: number;
  readonly error: unknown;
  /** `false` drops the event (counted as `rejected`); `true` retries it. */
  readonly retriable: boolean;
}

/** What `send` reports when some events of a batch failed individually. */
export interface SendResult {
  readonly failures: readonly EventFailure[];
}

/**
 * A destination for events. The delivery pipeline calls `send` with one batch at a time (by default), so a
 * sink needs no queue, timer or retry logic of its own.
 *
 * - Resolve (with nothing, or with per-event `failures`) once the destination acknowledged the batch.
 * - Throw (reject) when the whole batch failed; a `SinkError` with `retriable: false` drops the batch,
 *   anything else is retried with backoff and counts toward the circuit breaker.
 */
export interface Sink {
  /** Shown in metrics and diagnostics, e.g. `redis`, `kafka:events`. */
  readonly name: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: sinks written as `async send(): Promise<void>` must fit.
  send(batch: readonly EncodedEvent[], context: SendContext): Promise<SendResult | undefined | void>;
  /** Release connections and file handles. Called once, after the pipeline drained. */
  close(): Promise<void>;
}

/**
 * Rebuilds an encoded event from its wire JSON (the disk spill stores only the JSON). The JSON was produced by
 * the encoder, so it is parsed as it is, not validated again.
 * @param bytes UTF-8 byte length of `json`, when the caller knows it.
 */
export function encodedEventFromJson(json: string, bytes = Buffer.byteLength(json)): EncodedEvent {
  return { event: JSON.parse(json) as StreamllEvent, json, bytes };
}
