import { describe, expect, it } from "vitest";
import { decodeEvent } from "../../events/decode-event";
import { decodeEventLine } from "./event-line";

const VALID = {
  schema_version: "1.0",
  event_id: "M1Q2TfS7RH8L",
  execution_id: "g0Rshs9kjX8E",
  span_id: "Tqv-TP7eM1aK",
  parent_span_id: null,
  timestamp: "2026-12-07T09:01:22.648Z",
  module_name: "Qa",
  method_name: "forward",
  event_type: "end",
  operation: null,
  data: { duration_ms: 5.7, outputs: { answer: "ok", list: [1, "a", null, true, { x: [] }] } },
  tags: { env: "prod" },
  module_version: "app@1.0.0",
  code_signature: "682d646667cf",
  git_commit: null,
};

/** Values each field is set to (or removed, `undefined`): valid, invalid and borderline ones. */
const FIELD_VALUES: readonly unknown[] = [
  undefined,
  null,
  "",
  "x",
  "short",
  "abcdefgh",
  "a".repeat(64),
  "a".repeat(65),
  "a".repeat(128),
  "a".repeat(129),
  "a".repeat(512),
  "a".repeat(513),
  "has space1",
  "1.0",
  "1.12",
  "01.0",
  "9.0",
  "2.0",
  "1",
  "2026-02-29T00:00:00Z",
  "2024-02-29T00:00:00Z",
  "2026-04-31T00:00:00Z",
  "2026-12-07T09:01:22.123456789Z",
  "2026-12-07T09:01:22.1234567890Z",
  "2026-12-07T24:00:00Z",
  "2026-12-07T09:01:22+00:00",
  "1970-01-01 (bad)",
  0,
  1.5,
  true,
  [],
  {},
  { a: "b" },
  { a: 1 },
  { a: { b: [1, 2, { c: null }] } },
];

/** Lines that only JSON text can express (numbers a double cannot hold, `__proto__` keys, bad JSON). */
const RAW_LINES: readonly string[] = [
  JSON.stringify(VALID).replace('"duration_ms":5.7', '"duration_ms":1e999'),
  JSON.stringify(VALID).replace('"duration_ms":5.7', '"duration_ms":-1e999'),
  JSON.stringify(VALID).replace('"duration_ms":5.7', '"__proto__":{"a":1}'),
  JSON.stringify(VALID).replace('"env":"prod"', '"__proto__":"x"'),
  JSON.stringify(VALID).replace('"duration_ms":5.7', `"deep":${"[".repeat(100)}${"]".repeat(100)}`),
  JSON.stringify(VALID).slice(0, -1),
  "[]",
  "null",
  '"text"',
  `\uFEFF${JSON.stringify(VALID)}`,
  JSON.stringify({ ...VALID, data: { big: "x".repeat(400_000) } }),
  JSON.stringify({ ...VALID, data: { big: "x".repeat(1_100_000) } }),
];

function lines(): string[] {
  const out = [JSON.stringify(VALID), ...RAW_LINES];
  for (const field of Object.keys(VALID)) {
    for (const value of FIELD_VALUES) {
      const event: Record<string, unknown> = { ...VALID };
      if (value === undefined) delete event[field];
      else event[field] = value;
      out.push(JSON.stringify(event));
    }
  }
  return out;
}

describe("decodeEventLine", () => {
  it("accepts exactly the lines decodeEvent accepts", () => {
    const all = lines();
    let accepted = 0;
    for (const line of all) {
      const expected = decodeEvent(line);
      const event = decodeEventLine(line);
      expect({ line: line.slice(0, 300), ok: event !== null }).toEqual({
        line: line.slice(0, 300),
        ok: expected.ok,
      });
      if (expected.ok) {
        accepted++;
        expect(event).toEqual(expected.event);
      }
    }
    // Both kinds are well represented.
    expect(accepted).toBeGreaterThan(100);
    expect(all.length - accepted).toBeGreaterThan(100);
  });
});
