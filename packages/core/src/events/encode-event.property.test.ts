import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeEvent } from "./decode-event";
import { encodeEvent } from "./encode-event";
import type { StreamllEvent } from "./event-schema";
import { testEvent } from "./test-event";

function event(data: unknown): StreamllEvent {
  return testEvent({
    module_name: "RAGPipeline",
    data: data as StreamllEvent["data"],
    tags: { env: "prod" },
  });
}

/** Strings made of arbitrary UTF-16 code units, lone surrogates included. */
const anyString = fc.string({ unit: "binary", maxLength: 40 });
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => `a${String.fromCharCode(c)}b`);

const oddValues = fc.oneof(
  fc.bigInt(),
  fc.date({ noInvalidDate: false }),
  loneSurrogate,
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, undefined),
  anyString.map((m) => new Error(m)),
  anyString.map((m) => new TypeError(m, { cause: new Error("cause") })),
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.float64Array({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 16 }).map((a) => a.buffer),
  anyString.map((s) => Symbol(s)),
  anyString.map((name) => Object.defineProperty(() => 1, "name", { value: name })),
  fc.constant(/re+gex/gi),
  fc.constant(new URL("https://example.com/path")),
  anyString.map((s) => ({ toJSON: () => ({ fromToJSON: s, big: 1n }) })),
  // Hostile values describe themselves through fc.toStringMethod: fast-check prints values it generates,
  // and would otherwise trip over the very traps under test.
  fc.constant({
    toJSON() {
      throw new Error("toJSON throws");
    },
    [fc.toStringMethod]: () => "throwingToJSON",
  }),
  fc.constant(
    Object.defineProperty({ [fc.toStringMethod]: () => "throwingGetter" }, "boom", {
      enumerable: true,
      get() {
        throw new Error("getter throws");
      },
    }),
  ),
  fc.constant(
    new Proxy(
      { [fc.toStringMethod]: () => "throwingProxy" },
      {
        ownKeys() {
          throw new Error("trap throws");
        },
        getOwnPropertyDescriptor() {
          throw new Error("trap throws");
        },
      },
    ),
  ),
);

/** Arbitrary values with every odd kind fast-check offers, plus ours as leaves. */
const weird = fc.anything({
  maxDepth: 4,
  maxKeys: 6,
  key: fc.oneof(anyString, fc.constantFrom("__proto__", "toJSON", "constructor", "$map")),
  values: [fc.boolean(), fc.integer(), fc.double(), anyString, fc.constant(null), oddValues],
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

/** Values with cycles: an object or array that (indirectly) contains itself. */
const circular = fc.tuple(weird, fc.boolean(), fc.boolean()).map(([inner, asArray, viaMap]) => {
  const holder: Record<string, unknown> = { inner };
  const list: unknown[] = [inner];
  const root: Record<string, unknown> | unknown[] = asArray ? list : holder;
  const back = viaMap ? new Map([["back", root]]) : { back: root };
  if (asArray) list.push(back);
  else holder.back = back;
  return root;
});

/** True when no string or key anywhere in the parsed JSON holds a lone surrogate. */
function allWellFormed(value: unknown): boolean {
  if (typeof value === "string") return (value as unknown as { isWellFormed(): boolean }).isWellFormed();
  if (Array.isArray(value)) return value.every(allWellFormed);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).every(([k, v]) => allWellFormed(k) && allWellFormed(v));
  }
  return true;
}

function check(data: unknown, maxEventBytes?: number): void {
  const cap = maxEventBytes ?? 65_536;
  const encoded = encodeEvent(event(data), maxEventBytes === undefined ? undefined : { maxEventBytes });
  expect(encoded.bytes).toBeLessThanOrEqual(cap);
  expect(encoded.bytes).toBe(Buffer.byteLength(encoded.json, "utf8"));
  expect(allWellFormed(JSON.parse(encoded.json))).toBe(true);
  const decoded = decodeEvent(encoded.json);
  if (!decoded.ok) throw decoded.error;
  expect(decoded.event.event_id).toBe("V1StGXR8_Z5j");
}

describe("encodeEvent properties", () => {
  it("any value as data encodes to schema-valid JSON within the cap", () => {
    fc.assert(
      fc.property(fc.oneof(weird, oddValues, circular), (data) => check(data)),
      { numRuns: 1000 },
    );
  });

  it("any object of values as data, under a small cap", () => {
    fc.assert(
      fc.property(fc.dictionary(anyString, fc.oneof(weird, circular), { maxKeys: 8 }), (data) =>
        check(data, 4096),
      ),
      { numRuns: 400 },
    );
  });

  it("large strings and arrays are cut to fit", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "binary", minLength: 0, maxLength: 3000 }), { maxLength: 40 }),
        fc.integer({ min: 4096, max: 20_000 }),
        (list, cap) => check({ list, copy: list.join("") }, cap),
      ),
      { numRuns: 100 },
    );
  });
});
