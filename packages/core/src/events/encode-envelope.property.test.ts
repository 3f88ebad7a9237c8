import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_REDACT_KEYS } from "../instrument/configure";
import {
  createEnvelope,
  createSpanIds,
  DEFAULT_ENCODE_LIMITS,
  type EncodeLimits,
  type EnvelopeSource,
  encodeEvent,
  encodeWithEnvelope,
  sanitizeJson,
} from "./encode-event";
import type { JsonObject, StreamllEvent } from "./event-schema";
import { createId } from "./ids";
import { KeyRedaction, redactCredentialText, redactDataKeys } from "./redact";
import { SCRUB_WINDOW } from "./sanitize-json";

/** Strings made of arbitrary UTF-16 code units, lone surrogates included. */
const anyString = fc.string({ unit: "binary", maxLength: 40 });
/** Strings that are valid Unicode (surrogates only in pairs): the fast path must take all of these. */
const goodString = fc.string({ unit: "grapheme", maxLength: 40 });
const longString = fc.string({ unit: "grapheme-ascii", minLength: 0, maxLength: 300 });

const plainId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);

const envelopeSource = (text: fc.Arbitrary<string>): fc.Arbitrary<EnvelopeSource> =>
  fc.record({
    module_name: fc.oneof(text, fc.string({ minLength: 500, maxLength: 600 })),
    method_name: text,
    operation: fc.option(fc.oneof(text, fc.string({ minLength: 500, maxLength: 600 }))),
    tags: fc.dictionary(
      fc.oneof(text, fc.string({ minLength: 120, maxLength: 140 })),
      fc.oneof(text, longString),
      {
        maxKeys: 5,
      },
    ),
    module_version: fc.option(text),
    code_signature: fc.option(fc.oneof(text, fc.string({ minLength: 120, maxLength: 140 }))),
    git_commit: fc.option(text),
  });

const eventType = (text: fc.Arbitrary<string>) =>
  fc.oneof(
    fc.constantFrom("start", "end", "error", "token", "retry"),
    text,
    fc.string({ minLength: 120, maxLength: 140 }),
  );

const timestamp = fc
  .date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true })
  .map((d) => d.toISOString());

const limits: fc.Arbitrary<EncodeLimits | undefined> = fc.option(
  fc.record({
    maxEventBytes: fc.constantFrom(4096, 8192, 65_536),
    maxStringLength: fc.constantFrom(32, 64, 16_384),
    maxDepth: fc.constantFrom(1, 2, 3, 32),
    maxArrayLength: fc.constantFrom(1, 3, 1000),
    maxObjectKeys: fc.constantFrom(1, 3, 1000),
  }),
);

/**
 * Keys that hold credentials, and keys that are what those become once scrubbed: a redacting walk renames the
 * first and must keep every value when they clash with the second.
 */
const credentialKeys = fc.constantFrom(
  "sk-proj-abcdefgh12345678",
  "sk-ant-zyxwvuts87654321",
  "sk-[REDACTED]",
  "sk-[REDACTED] (2)",
  "Bearer abc123DEF456ghi",
  "ghp_abcdefgh12345678",
  "https://ada:pa55word@db.example.com",
);

/** Arbitrary values with every odd kind fast-check offers (BigInt, Map, typed arrays, sparse arrays …). */
const odd = fc.anything({
  maxDepth: 4,
  maxKeys: 6,
  key: fc.oneof(
    anyString,
    fc.constantFrom("__proto__", "toJSON", "constructor", "$map", "password", "Token"),
    credentialKeys,
  ),
  values: [
    fc.boolean(),
    fc.integer(),
    fc.double(),
    anyString,
    longString,
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt(),
    fc.constant(new Error("boom", { cause: new TypeError("inner") })),
    fc.constant(new Map([["k", 1n]])),
  ],
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  stringUnit: "binary",
});

/** Plain JSON with valid strings, within the default caps: exactly the data the fast path exists for. */
const niceJson = fc.jsonValue({ maxDepth: 4, stringUnit: "grapheme" });

function fullEvent(
  source: EnvelopeSource,
  ids: { executionId: string; spanId: string; parentSpanId: string | null },
  eventId: string,
  time: string,
  type: string,
  data: unknown,
): StreamllEvent {
  return {
    schema_version: "1.0",
    event_id: eventId,
    execution_id: ids.executionId,
    span_id: ids.spanId,
    parent_span_id: ids.parentSpanId,
    timestamp: time,
    module_name: source.module_name,
    method_name: source.method_name,
    event_type: type,
    operation: source.operation,
    data: data as JsonObject,
    tags: source.tags,
    module_version: source.module_version,
    code_signature: source.code_signature,
    git_commit: source.git_commit,
  };
}

interface Case {
  source: EnvelopeSource;
  executionId: string;
  spanId: string;
  parentSpanId: string | null;
  eventId: string;
  time: string;
  type: string;
  limits: EncodeLimits | undefined;
}

/** A case with a plain module envelope and fresh ids, for the tests that pick their data by hand. */
const fixedCase = (type: string, limits: EncodeLimits | undefined): Case => ({
  source: {
    module_name: "m",
    method_name: "forward",
    operation: null,
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
  },
  executionId: createId(),
  spanId: createId(),
  parentSpanId: createId(),
  eventId: createId(),
  time: new Date(0).toISOString(),
  type,
  limits,
});

const caseOf = (text: fc.Arbitrary<string>): fc.Arbitrary<Case> =>
  fc.record({
    source: envelopeSource(text),
    executionId: plainId,
    spanId: plainId,
    parentSpanId: fc.option(plainId),
    eventId: fc.oneof(plainId, fc.constant(createId())),
    time: timestamp,
    type: eventType(text),
    limits,
  });

/** Encodes through the envelope; `undefined` when it hands the event to the general encoder. */
function fast(c: Case, data: unknown, keys?: KeyRedaction) {
  const envelope = createEnvelope(c.source);
  const ids = createSpanIds(c.executionId, c.spanId, c.parentSpanId);
  expect(envelope).toBeDefined();
  expect(ids).toBeDefined();
  if (envelope === undefined || ids === undefined) return undefined;
  return encodeWithEnvelope(envelope, ids, c.eventId, c.time, c.type, data, c.limits, keys);
}

function reference(c: Case, data: unknown) {
  return encodeEvent(fullEvent(c.source, c, c.eventId, c.time, c.type, data), c.limits);
}

function expectSame(c: Case, data: unknown, referenceData: unknown, keys?: KeyRedaction): boolean {
  const got = fast(c, data, keys);
  if (got === undefined) return false;
  const want = reference(c, referenceData);
  expect(got.json).toBe(want.json);
  expect(got.bytes).toBe(want.bytes);
  expect(got.bytes).toBe(Buffer.byteLength(got.json, "utf8"));
  expect(got).toEqual(want);
  return true;
}

describe("encodeWithEnvelope ≡ encodeEvent", () => {
  it("writes byte-identical JSON and an equal event for any span fields and any data it accepts", () => {
    fc.assert(
      fc.property(
        caseOf(anyString),
        fc.oneof(odd, fc.dictionary(anyString, odd, { maxKeys: 6 })),
        (c, data) => {
          expectSame(c, data, data);
        },
      ),
      { numRuns: 600 },
    );
  });

  it("takes the fast path for valid plain JSON within the caps", () => {
    fc.assert(
      fc.property(caseOf(goodString), fc.dictionary(goodString, niceJson, { maxKeys: 6 }), (c, data) => {
        const withDefaults = { ...c, limits: undefined };
        expect(expectSame(withDefaults, data, data)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("redacts keys in the same walk exactly as the key redactor does on sanitised data", () => {
    const keyPool = [
      "password",
      "apiKey",
      "Token",
      "accessToken",
      "max_tokens",
      "$map",
      "$error",
      "message",
      "length",
      "$bytes",
      "cause",
    ];
    // Strings with credential-shaped parts, which both ways scrub from values.
    const credentials = fc.constantFrom(
      "Bearer abc123DEF456ghi",
      "see https://ada:pa55word@db.example.com/x",
      "key sk-proj-abcdefgh12345678",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    );
    fc.assert(
      fc.property(
        caseOf(goodString),
        fc.dictionary(
          fc.oneof(goodString, fc.constantFrom(...keyPool), credentialKeys),
          fc.oneof(odd, credentials),
          { maxKeys: 6 },
        ),
        fc.subarray(keyPool),
        (c, raw, chosen) => {
          // The runtime hands the fast path sanitised data whenever it was sanitised before (inputs captured
          // for a stream, `trace` data that is not a plain object): the key redactor then runs on that.
          const data = sanitizeJson(raw, c.limits) as JsonObject;
          const keys = new KeyRedaction(chosen);
          expectSame(c, data, redactDataKeys(data, keys), keys);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("redacts [name, value] pairs and { name, value } entries as the key redactor does, whatever the cuts", () => {
    const names = fc.constantFrom("Authorization", "x-api-key", "password", "accept", "region", 7);
    const entry = fc.oneof(
      fc.tuple(names, fc.oneof(odd, fc.constant("Pl4nted"))),
      fc.record({ name: names, value: fc.oneof(odd, fc.constant("Pl4nted")) }),
      fc.record({ Key: names, Value: odd, comment: fc.string({ maxLength: 3 }) }),
      fc.record({ key: names, value: odd, a: odd, b: odd, c: odd }),
      fc.record({ value: odd, name: names }, { requiredKeys: ["value"] }),
    );
    fc.assert(
      fc.property(
        caseOf(goodString),
        fc.dictionary(goodString, fc.oneof(entry, fc.array(entry, { maxLength: 4 })), { maxKeys: 4 }),
        (c, raw) => {
          // As above: both ways are given the same sanitised data (cuts applied once).
          const data = sanitizeJson(raw, c.limits) as JsonObject;
          const keys = new KeyRedaction(DEFAULT_REDACT_KEYS);
          expectSame(c, data, redactDataKeys(data, keys), keys);
        },
      ),
      { numRuns: 600 },
    );
  });

  it("scrubs credential-shaped text anywhere in any string value, before any cut, as scrubbing each string first would", () => {
    // Every string is scrubbed before it is cut, so a secret that straddles the cut is never half kept: the
    // result must be what scrubbing every string first and then applying the caps gives, at any depth.
    const credential = fc.constantFrom(
      "Bearer abc123DEF456ghi",
      "https://ada:pa55word@db.example.com/x",
      "sk-proj-abcdefgh12345678",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
      "ghp_abcdefgh12345678",
      "AKIAABCDEFGHIJKLMNOP",
    );
    // Near misses too: text that holds a credential's prefix and no credential, or needs escaping.
    const piece = fc.oneof(
      goodString,
      credential,
      fc.constantFrom(" ", "\n", '"', "basic", "://", "sk-", "é"),
    );
    const text = fc.array(piece, { maxLength: 6 }).map((pieces) => pieces.join(""));
    const names = fc.constantFrom("a", "b", "text", "items", "note");
    const { node } = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small" },
        text,
        fc.integer(),
        fc.array(tie("node"), { maxLength: 4 }),
        fc.dictionary(names, tie("node"), { maxKeys: 4 }),
      ),
    }));
    // Each string as the sanitiser scrubs it before a cut: only as far as the cut could reach.
    const scrubEveryString = (value: unknown, max: number): unknown =>
      typeof value === "string"
        ? redactCredentialText(value.length > SCRUB_WINDOW * max ? value.slice(0, SCRUB_WINDOW * max) : value)
        : Array.isArray(value)
          ? value.map((item) => scrubEveryString(item, max))
          : typeof value === "object" && value !== null
            ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubEveryString(v, max)]))
            : value;
    const keys = new KeyRedaction(["password"]);
    fc.assert(
      fc.property(caseOf(goodString), fc.dictionary(names, node, { maxKeys: 4 }), (c, data) => {
        const got = fast(c, data, keys);
        const max = c.limits?.maxStringLength ?? DEFAULT_ENCODE_LIMITS.maxStringLength;
        const want = fast(c, scrubEveryString(data, max));
        expect(got === undefined).toBe(want === undefined);
        if (got === undefined || want === undefined) return;
        expect(got.json).toBe(want.json);
        expect(got.bytes).toBe(want.bytes);
      }),
      { numRuns: 600 },
    );
  });

  it("scrubs credentials in keys in the same walk, keeping clashing keys apart, as the key redactor does", () => {
    const c = fixedCase("start", undefined);
    const keys = new KeyRedaction(["password"]);
    const data = {
      "sk-proj-abcdefgh12345678": 1,
      "sk-[REDACTED]": 2,
      nested: [{ "Bearer abc123DEF456ghi": { ghp_abcdefgh12345678: 3 } }],
    };
    expect(expectSame(c, data, redactDataKeys(data, keys), keys)).toBe(true);
    const json = fast(c, data, keys)?.json ?? "";
    expect(json).not.toMatch(/abcdefgh|abc123DEF/);
    expect(json).toContain('"sk-[REDACTED] (2)":1,"sk-[REDACTED]":2');
  });

  it("hands lone surrogates in data to the general encoder", () => {
    const c = fixedCase("start", undefined);
    expect(fast(c, { text: "a\ud800b" })).toBeUndefined();
    expect(fast(c, { "\udc00": 1 })).toBeUndefined();
    expect(fast(c, { text: "a\ud83d\ude00b" })?.json).toBe(reference(c, { text: "a\ud83d\ude00b" }).json);
  });

  it("counts the bytes of ASCII data, of escapes and of non-ASCII text alike", () => {
    const c = fixedCase("end", undefined);
    // Plain ASCII, a control character (written `\u0001`), a literal backslash-u, Latin-1, CJK, an emoji.
    for (const text of ["plain", "a\u0001b", "C:\\users\\unix", "café", "日本語", "a\ud83d\ude00b"]) {
      const got = fast(c, { text });
      expect(got?.json).toBe(reference(c, { text }).json);
      expect(got?.bytes).toBe(Buffer.byteLength(got?.json ?? "", "utf8"));
    }
  });

  it("hands events over the byte cap to the general encoder", () => {
    const c = fixedCase("end", { maxEventBytes: 4096 });
    expect(fast(c, { text: "x".repeat(4000) })).toBeUndefined();
    expect(fast(c, { text: "é".repeat(2000) })).toBeUndefined();
    expect(fast(c, { text: "é".repeat(1500) })?.bytes).toBe(reference(c, { text: "é".repeat(1500) }).bytes);
  });

  it("refuses ids that would need escaping", () => {
    expect(createSpanIds('a"b', createId(), null)).toBeUndefined();
    expect(createSpanIds(createId(), "x".repeat(65), null)).toBeUndefined();
    expect(createSpanIds(createId(), createId(), "")).toBeUndefined();
    expect(createSpanIds(createId(), createId(), createId())).toBeDefined();
  });
});
