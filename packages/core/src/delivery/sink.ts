/**
 * The few fields of an event that sinks route on (message keys, stream keys, routing keys, headers), held as
 * plain strings beside the JSON so no sink has to parse JSON it just produced. Field names and values are the
 * event's own (`StreamllEvent` has all of them), so a function written for an event accepts a route too.
 *
 * The strings are shared with the span and module that emitted the event, so holding a route costs a few
 * pointers plus the event id and timestamp, not a copy of the event.
 */
export interface EventRoute {
  /** Wire format version, e.g. `1.0` (a Kafka/AMQP header). */
  readonly schema_version: string;
  /** Unique id of the event (AMQP message id; dead-letter and failure reports name it). */
  readonly event_id: string;
  /** Id shared by every event of one top-level call (the Kafka message key). */
  readonly execution_id: string;
  /** Id of the module call or `trace()` block that emitted the event. */
  readonly span_id: string;
  /** ISO-8601 UTC creation time, exactly as in the JSON (message timestamps). */
  readonly timestamp: string;
  /** Instrumented module or class name (headers, stream and routing keys). */
  readonly module_name: string;
  /** Instrumented method, `forward` when the span is not a method call. */
  readonly method_name: string;
  /** `start`, `end`, `error`, `token`, `version` or a custom type. */
  readonly event_type: string;
  /** Name of the `trace()` block or the `operation` option of `instrument()`; `null` when none. */
  readonly operation: string | null;
  /** The event's tags (configure() and instrument() tags merged), as encoded. Read them; do not mutate them. */
  readonly tags: Readonly<Record<string, string>>;
}

/**
 * An event after encoding, as every sink receives it: the wire JSON, its byte length and the routing fields
 * ({@link EventRoute}), and nothing else. The full event is not kept beside its JSON: a queued event costs
 * about its JSON string plus a few pointers. A sink that needs more than the routing fields (a terminal
 * renderer, an in-memory store) parses `json`, which is valid JSON of a `StreamllEvent`.
 *
 * Every field equals the same field of `JSON.parse(json)`; fields the encoder had to cut are cut in both.
 */
export interface EncodedEvent extends EventRoute {
  /** The wire JSON (data already sanitised, capped and redacted), identical for every sink. */
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
 * @internal The one constructor of encoded events, so every one has the same shape (one hidden class for the
 * queue and the sinks) and holds only the routing fields beside its JSON.
 */
export function encodedEvent(
  schemaVersion: string,
  eventId: string,
  executionId: string,
  spanId: string,
  timestamp: string,
  moduleName: string,
  methodName: string,
  eventType: string,
  operation: string | null,
  tags: Readonly<Record<string, string>>,
  json: string,
  bytes: number,
): EncodedEvent {
  return {
    schema_version: schemaVersion,
    event_id: eventId,
    execution_id: executionId,
    span_id: spanId,
    timestamp,
    module_name: moduleName,
    method_name: methodName,
    event_type: eventType,
    operation,
    tags,
    json,
    bytes,
  };
}

/** A routing field as the JSON holds it; `""` only for JSON whose field is missing or not a string. */
function routeText(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/**
 * @internal The encoded event of an event object or of parsed wire JSON: its routing fields picked out beside
 * the JSON it was encoded to. The object itself is not kept.
 */
export function encodedEventOf(
  event: Readonly<Record<string, unknown>>,
  json: string,
  bytes: number,
): EncodedEvent {
  const tags = event.tags;
  const operation = event.operation;
  return encodedEvent(
    routeText(event.schema_version),
    routeText(event.event_id),
    routeText(event.execution_id),
    routeText(event.span_id),
    routeText(event.timestamp),
    routeText(event.module_name),
    routeText(event.method_name),
    routeText(event.event_type),
    typeof operation === "string" ? operation : null,
    typeof tags === "object" && tags !== null ? (tags as Record<string, string>) : {},
    json,
    bytes,
  );
}

/**
 * Rebuilds an encoded event from its wire JSON (the disk spill stores only the JSON). The JSON was produced by
 * the encoder, so it is parsed as it is, not validated again; only the routing fields are kept from the parse.
 * @param bytes UTF-8 byte length of `json`, when the caller knows it.
 */
export function encodedEventFromJson(json: string, bytes = Buffer.byteLength(json)): EncodedEvent {
  const parsed: unknown = JSON.parse(json);
  const event = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  return encodedEventOf(event, json, bytes);
}
