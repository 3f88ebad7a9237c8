import { randomBytes } from "node:crypto";
import type { EncodedEvent, JsonObject, SendContext, StreamllEvent } from "@streamll/core";
import { encodeEvent, SCHEMA_VERSION } from "@streamll/core";

function id(): string {
  return randomBytes(9).toString("base64url");
}

/** A valid event; `data` may hold anything (the encoder sanitises it, as in production). */
export function testEvent(
  overrides: Partial<Omit<StreamllEvent, "data">> & { data?: unknown } = {},
): StreamllEvent {
  const { data, ...rest } = overrides;
  return {
    schema_version: SCHEMA_VERSION,
    event_id: id(),
    execution_id: id(),
    span_id: id(),
    parent_span_id: null,
    timestamp: new Date().toISOString(),
    module_name: "qa",
    method_name: "forward",
    event_type: "start",
    operation: null,
    data: (data ?? {}) as JsonObject,
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
    ...rest,
  };
}

/** Encodes `count` events whose `data.seq` is 0..count-1. */
export function sequence(count: number, overrides: Partial<StreamllEvent> = {}): EncodedEvent[] {
  return Array.from({ length: count }, (_, seq) => encodeEvent(testEvent({ ...overrides, data: { seq } })));
}

/** A send context that never aborts. */
export function sendContext(attempt = 1): SendContext {
  return { signal: new AbortController().signal, attempt };
}
