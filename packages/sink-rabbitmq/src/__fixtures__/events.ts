import { randomBytes } from "node:crypto";
import type { EncodedEvent, StreamllEvent } from "@streamll/core";

export function testId(): string {
  return randomBytes(9).toString("base64url");
}

/** A valid event with unique ids; override any field. */
export function makeEvent(overrides: Partial<StreamllEvent> = {}): StreamllEvent {
  return {
    schema_version: "1.0",
    event_id: testId(),
    execution_id: testId(),
    span_id: testId(),
    parent_span_id: null,
    timestamp: new Date().toISOString(),
    module_name: "QA",
    method_name: "forward",
    event_type: "start",
    operation: null,
    data: {},
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
    ...overrides,
  };
}

/** Encodes without the core encoder so fixtures do not depend on its limits. */
export function encoded(event: StreamllEvent): EncodedEvent {
  const json = JSON.stringify(event);
  const { schema_version, event_id, execution_id, span_id, timestamp, module_name, method_name } = event;
  const { event_type, operation, tags } = event;
  const route = { schema_version, event_id, execution_id, span_id, timestamp, module_name, method_name };
  return { ...route, event_type, operation, tags, json, bytes: Buffer.byteLength(json, "utf8") };
}
