import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEventClock } from "../instrument/event-clock";
import { decodeEvent } from "./decode-event";
import { createEventJsonSchema } from "./event-json-schema";
import { streamllEventSchema } from "./event-schema";
import { testEvent } from "./test-event";

const WIRE = testEvent();

const jsonSchemaPattern = new RegExp(
  (
    (createEventJsonSchema().properties as Record<string, { pattern: string }>).timestamp as {
      pattern: string;
    }
  ).pattern,
  "u",
);

/** Whether decodeEvent, the zod schema and the JSON Schema's pattern accept `timestamp`. */
function verdicts(timestamp: string): { decode: boolean; zod: boolean; jsonSchema: boolean } {
  return {
    decode: decodeEvent(JSON.stringify({ ...WIRE, timestamp })).ok,
    zod: streamllEventSchema.safeParse({ ...WIRE, timestamp }).success,
    jsonSchema: jsonSchemaPattern.test(timestamp),
  };
}

describe("event timestamps", () => {
  it.each([
    "2026-13-45T99:99:99.000Z",
    "2026-00-10T10:00:00.000Z",
    "2026-12-00T10:00:00.000Z",
    "2026-12-32T10:00:00.000Z",
    "2026-12-31T24:00:00.000Z",
    "2026-12-31T23:60:00.000Z",
    "2026-12-31T23:59:60.000Z",
    "2026-12-31T23:59:59.000+00:00",
  ])("rejects %s everywhere: a field out of range", (timestamp) => {
    expect(verdicts(timestamp)).toEqual({ decode: false, zod: false, jsonSchema: false });
  });

  it("names the field and the rule in decodeEvent's message", () => {
    const result = decodeEvent(JSON.stringify({ ...WIRE, timestamp: "2026-13-45T99:99:99.000Z" }));
    expect(result.ok ? undefined : result.error.message).toBe(
      "timestamp: must be an ISO-8601 UTC timestamp ending in Z",
    );
  });

  it("rejects days past the end of their month in zod and decodeEvent (a pattern cannot tell leap years)", () => {
    for (const timestamp of [
      "2026-02-29T00:00:00.000Z",
      "2026-02-30T00:00:00.000Z",
      "2026-04-31T00:00:00Z",
    ]) {
      expect(verdicts(timestamp), timestamp).toEqual({ decode: false, zod: false, jsonSchema: true });
    }
    const result = decodeEvent(JSON.stringify({ ...WIRE, timestamp: "1900-02-29T00:00:00.000Z" }));
    expect(result.ok ? undefined : result.error.message).toBe(
      "timestamp: must be a date that exists (no February 30)",
    );
  });

  it("accepts leap days and the whole range of digits the format allows", () => {
    for (const timestamp of [
      "2024-02-29T00:00:00.000Z",
      "2000-02-29T23:59:59.999Z",
      "0000-02-29T12:00:00Z",
      "2026-11-27T10:15:30.123456789Z",
      "2026-04-30T00:00:00Z",
    ]) {
      expect(verdicts(timestamp), timestamp).toEqual({ decode: true, zod: true, jsonSchema: true });
    }
  });

  it("accepts every timestamp streamll writes, the clamped years 0000 and 9999 included", () => {
    const stamp = (wall: number) => createEventClock({ wall: () => wall, monotonic: () => 0 }).timestampAt(0);
    const first = stamp(-1e16);
    const last = stamp(1e16);
    expect([first, last]).toEqual(["0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]);
    for (const timestamp of [first, last]) {
      expect(verdicts(timestamp), timestamp).toEqual({ decode: true, zod: true, jsonSchema: true });
    }
    fc.assert(
      fc.property(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), (ms) => {
        const timestamp = stamp(ms);
        expect(verdicts(timestamp)).toEqual({ decode: true, zod: true, jsonSchema: true });
      }),
      { numRuns: 500 },
    );
  });
});
