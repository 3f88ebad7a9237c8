import { SinkError } from "@streamll/core";
import type { SecretScrubber } from "./kafka-logger";

/**
 * Broker error types that mean "this record can never be accepted as it is": retrying the same bytes cannot
 * help, so the events are dropped (counted as `rejected`) instead of retried forever.
 */
export const REJECTED_RECORD_ERROR_TYPES: readonly string[] = Object.freeze([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
]);

interface ErrorLike {
  name?: unknown;
  type?: unknown;
  message?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

/** The error and its causes (kafkajs wraps the broker's error in `cause` / `originalError`), at most 8 deep. */
function chain(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let current: unknown = error;
  const seen = new Set<unknown>();
  while (typeof current === "object" && current !== null && !seen.has(current) && out.length < 8) {
    seen.add(current);
    const item = current as ErrorLike;
    out.push(item);
    current = item.cause ?? item.originalError;
  }
  return out;
}

/**
 * A `ConfigurationError` somewhere in the chain (a token provider whose optional SDK is missing throws one
 * inside kafkajs's handshake): the sink cannot work, and the pipeline must see that error, not a retriable one.
 */
export function configurationErrorIn(error: unknown): Error | undefined {
  for (const item of chain(error)) {
    if ((item as { code?: unknown }).code === "CONFIGURATION_INVALID" && item instanceof Error) return item;
  }
  return undefined;
}

/**
 * True when the broker refused a provider's credential that was not fetched fresh for the attempt (see
 * `KafkaCredentialsRejectedError`): connecting once more fetches a fresh one, whose refusal is permanent.
 */
export function isRetryWithFreshCredentials(error: unknown): boolean {
  return chain(error).some(
    (item) => (item as { credentialsRejected?: unknown }).credentialsRejected === "retry-fresh",
  );
}

/** The kafkajs protocol error type (`MESSAGE_TOO_LARGE`, ...) found in the error chain, if any. */
export function kafkaErrorType(error: unknown): string | undefined {
  for (const item of chain(error)) {
    if (typeof item.type === "string") return item.type;
  }
  return undefined;
}

/** True when the broker rejected the record itself (too large, invalid): see {@link REJECTED_RECORD_ERROR_TYPES}. */
export function isRejectedRecordError(error: unknown): boolean {
  const type = kafkaErrorType(error);
  return type !== undefined && REJECTED_RECORD_ERROR_TYPES.includes(type);
}

/**
 * Wraps a kafkajs failure in a `SinkError`: non-retriable for rejected records, retriable for everything
 * else (connection loss, leader changes, timeouts, authorisation failures, which an operator can fix while
 * events wait in the pipeline's queue). Credentials the broker refused for good are not wrapped here: the
 * handshake fails with a `ConfigurationError` (see `configurationErrorIn`). The message is scrubbed of secrets; the
 * original error is kept as `cause` only when its message contained none.
 */
export function toSinkError(error: unknown, scrubber: SecretScrubber, context: string): SinkError {
  if (error instanceof SinkError) return error;
  const items = chain(error);
  const first = items[0];
  const name = typeof first?.name === "string" ? first.name : "Error";
  const raw = typeof first?.message === "string" ? first.message : String(error);
  const message = scrubber.scrub(raw);
  const type = kafkaErrorType(error);
  const rejected = type !== undefined && REJECTED_RECORD_ERROR_TYPES.includes(type);
  let detail = type !== undefined && !message.includes(type) ? `${type}: ${message}` : message;
  // kafkajs aggregates per-resource failures (CreateTopics, DeleteGroups) in `errors`; name the first few.
  const nested = (first as { errors?: unknown } | undefined)?.errors;
  if (Array.isArray(nested) && nested.length > 0) {
    const reasons = nested.slice(0, 3).map((item: unknown) => {
      const { type: nestedType, message: nestedMessage } = (item ?? {}) as ErrorLike;
      const text = typeof nestedMessage === "string" ? scrubber.scrub(nestedMessage) : "unknown error";
      return typeof nestedType === "string" ? `${nestedType}: ${text}` : text;
    });
    detail += ` (${reasons.join("; ")}${nested.length > 3 ? `; and ${nested.length - 3} more` : ""})`;
  }
  return new SinkError(`${context}: ${name}: ${detail}`, {
    retriable: !rejected,
    ...(message === raw ? { cause: error } : {}),
  });
}
