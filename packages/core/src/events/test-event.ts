import type { JsonObject, StreamllEvent } from "./event-schema";

/**
 * @internal For tests: a valid event (fixed ids and time, empty data and tags) with `fields` in place of the
 * defaults. Not exported from the package.
 */
export function testEvent(fields: Partial<StreamllEvent> = {}): StreamllEvent {
  return {
    schema_version: "1.0",
    event_id: "V1StGXR8_Z5j",
    execution_id: "kq3x9Zt0aB1c",
    span_id: "Jx81bQ0aLm2p",
    parent_span_id: null,
    timestamp: "2026-11-27T10:15:30.123Z",
    module_name: "M",
    method_name: "forward",
    event_type: "start",
    operation: null,
    data: {} as JsonObject,
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
    ...fields,
  };
}
