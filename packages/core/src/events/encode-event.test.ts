import { describe, expect, it } from "vitest";
import { decodeEvent } from "./decode-event";
import { encodeEvent } from "./encode-event";
import { type StreamllEvent, streamllEventSchema } from "./event-schema";
import { testEvent } from "./test-event";

function baseEvent(overrides: Partial<StreamllEvent> = {}): StreamllEvent {
  return testEvent({
    module_name: "RAGPipeline",
    operation: "retrieval",
    tags: { env: "prod" },
    ...overrides,
  });
}

/** Every encoding must parse, fit its cap, match `bytes`, and pass the schema. */
function expectValid(encoded: ReturnType<typeof encodeEvent>, cap = 65_536): StreamllEvent {
  expect(encoded.bytes).toBe(Buffer.byteLength(encoded.json, "utf8"));
  expect(encoded.bytes).toBeLessThanOrEqual(cap);
  const parsed: unknown = JSON.parse(encoded.json);
  const result = streamllEventSchema.safeParse(parsed);
  expect(result.success).toBe(true);
  const decoded = decodeEvent(encoded.json);
  expect(decoded.ok).toBe(true);
  return parsed as StreamllEvent;
}

const WIRE_EXAMPLE =
  '{"schema_version":"1.0","event_id":"V1StGXR8_Z5j","execution_id":"kq3x9Zt0aB1c","span_id":"Jx81bQ0aLm2p",' +
  '"parent_span_id":null,"timestamp":"2026-11-27T10:15:30.123Z","module_name":"RAGPipeline","method_name":"forward",' +
  '"event_type":"start","operation":"retrieval","data":{},"tags":{"env":"prod"},"module_version":null,' +
  '"code_signature":null,"git_commit":null}';

describe("encodeEvent", () => {
  it("produces the documented wire format, fields in schema order", () => {
    const encoded = encodeEvent(baseEvent());
    expect(encoded.json).toBe(WIRE_EXAMPLE);
    expect(encoded.bytes).toBe(WIRE_EXAMPLE.length);
    expect(JSON.parse(encoded.json)).toEqual(baseEvent());
  });

  it("writes fields in schema order whatever order the input has", () => {
    const { data, ...rest } = baseEvent();
    const reordered = { data, ...Object.fromEntries(Object.entries(rest).reverse()) } as StreamllEvent;
    expect(encodeEvent(reordered).json).toBe(WIRE_EXAMPLE);
  });

  it("holds the JSON and the routing fields only, not the event", () => {
    const data = { question: "q", nested: { k: [1, 2] } };
    const tags = Object.freeze({ env: "prod" });
    const encoded = encodeEvent(baseEvent({ data, tags }));
    expect(Object.keys(encoded).sort()).toEqual(
      [
        "schema_version",
        "event_id",
        "execution_id",
        "span_id",
        "timestamp",
        "module_name",
        "method_name",
        "event_type",
        "operation",
        "tags",
        "json",
        "bytes",
      ].sort(),
    );
    const wire = JSON.parse(encoded.json) as StreamllEvent;
    for (const key of ["schema_version", "event_id", "execution_id", "span_id", "timestamp"] as const)
      expect(encoded[key]).toBe(wire[key]);
    for (const key of ["module_name", "method_name", "event_type", "operation"] as const)
      expect(encoded[key]).toBe(wire[key]);
    expect(encoded.tags).toEqual(wire.tags);
    // Unchanged tags are shared with the input rather than copied.
    expect(encoded.tags).toBe(tags);
  });

  it("sanitises data with markers and keeps the input untouched", () => {
    const data: Record<string, unknown> = { n: Number.NaN, big: 10n, when: new Date(0), u: undefined };
    data.self = data;
    const encoded = encodeEvent(baseEvent({ data: data as never }));
    const parsed = expectValid(encoded);
    expect(parsed.data).toEqual({
      n: "[NaN]",
      big: "10n",
      when: "1970-01-01T00:00:00.000Z",
      u: "[undefined]",
      self: "[Circular]",
    });
    expect(data.n).toBeNaN();
  });

  it("replaces lone surrogates everywhere, so the JSON is valid UTF-8 without escapes", () => {
    const encoded = encodeEvent(
      baseEvent({
        module_name: "Mod\uD800",
        tags: { "k\uDC00": "v\uD800" },
        data: { "x\uD800": "y\uDC00" },
      }),
    );
    const parsed = expectValid(encoded);
    expect(encoded.json).not.toMatch(/\\ud[89a-f]/i);
    expect(parsed.module_name).toBe("Mod\uFFFD");
    expect(parsed.tags).toEqual({ "k\uFFFD": "v\uFFFD" });
    expect(parsed.data).toEqual({ "x\uFFFD": "y\uFFFD" });
    expect(Buffer.from(encoded.json, "utf8").toString("utf8")).toBe(encoded.json);
  });

  it("caps schema string fields and tags to their maximum lengths", () => {
    const encoded = encodeEvent(
      baseEvent({
        module_name: "m".repeat(2000),
        event_type: "e".repeat(500),
        code_signature: "c".repeat(500),
        tags: { ["k".repeat(500)]: "v".repeat(5000) },
      }),
    );
    const parsed = expectValid(encoded);
    expect(parsed.module_name).toHaveLength(512);
    expect(parsed.module_name.endsWith("…")).toBe(true);
    expect(parsed.event_type).toHaveLength(128);
    expect(parsed.code_signature).toHaveLength(128);
    const [[key, value]] = Object.entries(parsed.tags) as [[string, string]];
    expect(key).toHaveLength(128);
    expect(value).toHaveLength(1024);
  });

  it("fills missing nullable fields with null, method_name with forward, schema_version with the current version", () => {
    const { schema_version, method_name, operation, ...rest } = baseEvent();
    const parsed = expectValid(encodeEvent(rest as StreamllEvent));
    expect(parsed.schema_version).toBe("1.0");
    expect(parsed.method_name).toBe("forward");
    expect(parsed.operation).toBeNull();
  });

  it("never writes method_name as null, even when a redact function or a caller set it to null", () => {
    const parsed = expectValid(encodeEvent(baseEvent({ method_name: null as never })));
    expect(parsed.method_name).toBe("forward");
  });

  it("keeps top-level fields of later minor versions, sanitised, after the schema fields", () => {
    const event = { ...baseEvent(), sequence: 7n, extra: { when: new Date(0) } } as unknown as StreamllEvent;
    const encoded = encodeEvent(event);
    const parsed = expectValid(encoded) as unknown as Record<string, unknown>;
    expect(parsed.sequence).toBe("7n");
    expect(parsed.extra).toEqual({ when: "1970-01-01T00:00:00.000Z" });
    expect(Object.keys(parsed).slice(-2)).toEqual(["sequence", "extra"]);
  });

  it("wraps non-object data so the event stays valid", () => {
    expect(expectValid(encodeEvent(baseEvent({ data: [1, 2] as never }))).data).toEqual({ $value: [1, 2] });
    expect(expectValid(encodeEvent(baseEvent({ data: "text" as never }))).data).toEqual({ $value: "text" });
    expect(expectValid(encodeEvent(baseEvent({ data: undefined as never }))).data).toEqual({});
  });

  it("shrinks an oversized event step by step and keeps what fits", () => {
    const data = { answer: "a".repeat(100_000), small: 1 };
    const encoded = encodeEvent(baseEvent({ data }));
    const parsed = expectValid(encoded);
    expect(parsed.data.small).toBe(1);
    expect(parsed.data.answer).toMatch(/^a+…\[truncated \d+ chars\]$/);
    expect(encoded.bytes).toBeLessThanOrEqual(65_536);
  });

  /** 10 × 10 × 10 nested objects: shrinking keeps 3 × 3 × 3 of them, which still takes some 2.5 KB. */
  function cube(leaf: string): StreamllEvent["data"] {
    const level = (depth: number): StreamllEvent["data"] =>
      Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [`key${i}`, depth === 2 ? leaf : level(depth + 1)]),
      );
    return level(0);
  }
  /** Tags of about `bytes` bytes: they stay, so the room left for data is small. */
  function bulkyTags(count: number): Record<string, string> {
    return Object.fromEntries(Array.from({ length: count }, (_, i) => [`t${i}`, "v".repeat(940)]));
  }

  it("replaces data with a $truncated marker when shrinking is not enough", () => {
    const data = cube("x".repeat(100));
    const encoded = encodeEvent(baseEvent({ data, tags: bulkyTags(8) }), { maxEventBytes: 8192 });
    const parsed = expectValid(encoded, 8192);
    expect(parsed.data.$truncated).toBe(true);
    expect(Object.keys(parsed.tags)).toHaveLength(8);
    expect(parsed.data.original_bytes).toBe(
      Buffer.byteLength(JSON.stringify(baseEvent({ data, tags: bulkyTags(8) })), "utf8"),
    );
  });

  it("reports a lower bound of the original size for events too large to measure", () => {
    const data = cube("x".repeat(16_000));
    const encoded = encodeEvent(baseEvent({ data, tags: bulkyTags(3) }), { maxEventBytes: 4096 });
    const parsed = expectValid(encoded, 4096);
    expect(parsed.data.$truncated).toBe(true);
    expect(parsed.data.original_bytes as number).toBeGreaterThan(16 * 4096);
  });

  it("drops tags and cuts text fields when even the bare event is too large", () => {
    const tags = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`tag${i}`, "v".repeat(100)]));
    const encoded = encodeEvent(baseEvent({ tags, module_name: "\u0001".repeat(512) }), {
      maxEventBytes: 4096,
    });
    const parsed = expectValid(encoded, 4096);
    expect(parsed.tags).toEqual({});
    expect(parsed.event_id).toBe("V1StGXR8_Z5j");
  });

  it("fits the smallest cap whatever the header holds", () => {
    const huge = "\u0001".repeat(100_000);
    const event = {
      schema_version: huge,
      event_id: huge,
      execution_id: huge,
      span_id: huge,
      parent_span_id: huge,
      timestamp: huge,
      module_name: huge,
      method_name: huge,
      event_type: huge,
      operation: huge,
      data: { huge },
      tags: { huge },
      module_version: huge,
      code_signature: huge,
      git_commit: huge,
    };
    const encoded = encodeEvent(event, { maxEventBytes: 4096 });
    expect(encoded.bytes).toBeLessThanOrEqual(4096);
    expect(() => JSON.parse(encoded.json)).not.toThrow();
  });

  it("never throws for hostile events", () => {
    const throwingEvent = new Proxy(baseEvent(), {
      get() {
        throw new Error("trap");
      },
      ownKeys() {
        throw new Error("trap");
      },
    });
    const hostileData = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("trap");
        },
      },
    );
    let reads = 0;
    const flaky = {
      // Answers JSON-safe data on the first read, and a BigInt afterwards (when JSON.stringify reads it).
      get value(): unknown {
        reads++;
        return reads === 1 ? 1 : 2n;
      },
    };
    for (const event of [
      throwingEvent,
      null,
      undefined,
      42,
      "event",
      baseEvent({ data: hostileData as never }),
      baseEvent({ data: flaky as never }),
      baseEvent({ tags: { n: 1, o: { a: 1 }, u: undefined } as never }),
      baseEvent({ module_name: 42 as never, method_name: { a: 1 } as never }),
    ]) {
      const encoded = encodeEvent(event as never);
      expect(() => JSON.parse(encoded.json)).not.toThrow();
      expect(encoded.bytes).toBe(Buffer.byteLength(encoded.json, "utf8"));
    }
    expect(expectValid(encodeEvent(baseEvent({ data: flaky as never }))).data).toEqual({ value: "2n" });
    expect(expectValid(encodeEvent(baseEvent({ data: hostileData as never }))).data).toEqual({
      $value: "[Unreadable]",
    });
    const tagged = expectValid(
      encodeEvent(baseEvent({ tags: { n: 1, o: { a: 1 }, u: undefined } as never })),
    );
    expect(tagged.tags).toEqual({ n: "1", o: '{"a":1}', u: "[undefined]" });
  });

  it("drops tags it cannot read but keeps the rest of the event", () => {
    const hostileTags = {
      get env(): string {
        throw new Error("getter");
      },
    };
    const parsed = expectValid(encodeEvent(baseEvent({ data: { kept: true }, tags: hostileTags })));
    expect(parsed.tags).toEqual({});
    expect(parsed.data).toEqual({ kept: true });
  });

  it("rejects limits outside their documented range with a ConfigurationError", () => {
    expect(() => encodeEvent(baseEvent(), { maxEventBytes: 10 })).toThrow(
      "invalid encode limits options: maxEventBytes: expected an integer >= 4096, got 10",
    );
    expect(() => encodeEvent(baseEvent(), { maxEventByte: 5000 } as never)).toThrow(
      "maxEventByte: unknown option; did you mean `maxEventBytes`?",
    );
    expectValid(encodeEvent(baseEvent({ data: { s: "x".repeat(10_000) } }), { maxEventBytes: 4096 }), 4096);
  });
});
