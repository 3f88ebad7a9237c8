import { describe, expect, it } from "vitest";
import { DEFAULT_REDACT_KEYS } from "../instrument/configure";
import {
  createEnvelope,
  createSpanIds,
  type EncodeLimits,
  encodeEvent,
  encodeWithEnvelope,
} from "./encode-event";
import type { JsonObject, StreamllEvent } from "./event-schema";
import { createKeyRedactor, KeyRedaction, REDACTED, scrubKeyNames } from "./redact";
import { testEvent } from "./test-event";

// Unique, so finding any part of it anywhere names the leak.
const KEY = "sk-proj-PLANTEDkey1234567890abcdef";
const OTHER_KEY = "sk-ant-PLANTEDother0987654321zyxw";
const GH = "ghp_PLANTEDgithub0123456789abcdef";

const event = (data: unknown): StreamllEvent =>
  testEvent({ event_id: "event-id-0001", data: data as JsonObject });

/** The data as the runtime's fast path writes it: sanitised, redacted and encoded in one walk. */
function fastData(
  data: unknown,
  names: readonly string[] = DEFAULT_REDACT_KEYS,
  limits?: EncodeLimits,
): unknown {
  const envelope = createEnvelope({
    module_name: "m",
    method_name: "forward",
    operation: null,
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
  });
  const ids = createSpanIds("execution-01", "span-id-0001", null);
  if (envelope === undefined || ids === undefined) throw new Error("no envelope");
  const encoded = encodeWithEnvelope(
    envelope,
    ids,
    "event-id-0001",
    "2026-01-01T00:00:00.000Z",
    "start",
    data,
    limits,
    new KeyRedaction(names),
  );
  if (encoded === undefined) throw new Error("fast path refused the data");
  return (JSON.parse(encoded.json) as StreamllEvent).data;
}

/** The data as the key redactor followed by the reference encoder writes it. */
function referenceData(data: JsonObject, names: readonly string[] = DEFAULT_REDACT_KEYS): unknown {
  const redacted = createKeyRedactor(names)(event(data));
  return (JSON.parse(encodeEvent(redacted).json) as StreamllEvent).data;
}

describe("credentials used as object keys", () => {
  const data = {
    byKey: { [KEY]: "client-1" },
    list: [{ [`Bearer ${KEY}`]: 1 }, { deep: { [GH]: { ok: true } } }],
    asMap: new Map([[KEY, "client-1"]]),
    error: new Error("x", { cause: { [KEY]: "in a cause" } }),
  };

  it("are scrubbed by the fast path at any depth, in arrays, Maps and error causes", () => {
    const out = fastData(data);
    expect(JSON.stringify(out)).not.toContain("PLANTED");
    expect(out).toMatchObject({
      byKey: { "sk-[REDACTED]": "client-1" },
      list: [{ [`Bearer ${REDACTED}`]: 1 }, { deep: { "ghp_[REDACTED]": { ok: true } } }],
      asMap: { $map: [["sk-[REDACTED]", "client-1"]] },
      error: { $error: { cause: { "sk-[REDACTED]": "in a cause" } } },
    });
  });

  it("are scrubbed by the key redactor, with the same result as the fast path", () => {
    const plain: JsonObject = {
      byKey: { [KEY]: "v" },
      list: [{ [`Bearer ${KEY}`]: 1 }, { deep: { [GH]: { ok: 1 } } }],
    };
    const out = referenceData(plain);
    expect(JSON.stringify(out)).not.toContain("PLANTED");
    expect(out).toEqual({
      byKey: { "sk-[REDACTED]": "v" },
      list: [{ [`Bearer ${REDACTED}`]: 1 }, { deep: { "ghp_[REDACTED]": { ok: 1 } } }],
    });
    expect(fastData(plain)).toEqual(out);
  });

  it("keep their value redacted when the name as given matches a redact name", () => {
    const secretKey = "sk-proj-PLANTEDSECRET1234567890abcdef";
    expect(fastData({ m: { [secretKey]: "v" } })).toEqual({ m: { "sk-[REDACTED]": REDACTED } });
    expect(referenceData({ m: { [secretKey]: "v" } })).toEqual({ m: { "sk-[REDACTED]": REDACTED } });
  });

  it("never lose a value when two keys scrub to the same text: later ones get (2), (3) …", () => {
    const clash = { [KEY]: 1, "sk-[REDACTED]": 2, [OTHER_KEY]: 3, "sk-[REDACTED] (2)": 4, after: 5 };
    const want = {
      "sk-[REDACTED] (3)": 1,
      "sk-[REDACTED]": 2,
      "sk-[REDACTED] (4)": 3,
      "sk-[REDACTED] (2)": 4,
      after: 5,
    };
    const fast = fastData({ clash });
    const reference = referenceData({ clash } as JsonObject);
    expect(fast).toEqual({ clash: want });
    expect(reference).toEqual({ clash: want });
    // Same key order on the wire, not only the same entries.
    expect(JSON.stringify(fast)).toBe(JSON.stringify(reference));
  });

  it("stay as they are with an empty redact list, and plain keys cost no copy", () => {
    expect(fastData({ m: { [KEY]: 1 } }, [])).toEqual({ m: { [KEY]: 1 } });
    const keys = new KeyRedaction(DEFAULT_REDACT_KEYS);
    const names = ["question", "answer", "duration_ms"];
    expect(scrubKeyNames(names, keys)).toBe(names);
    const plain = event({ nested: { a: 1 } });
    expect(createKeyRedactor(DEFAULT_REDACT_KEYS)(plain)).toBe(plain);
  });

  it("are scrubbed before a long key is cut, so no part of a secret is kept", () => {
    // The key is longer than maxStringLength: it is scrubbed whole, then cut.
    const long = `${KEY} ${"y".repeat(40)}`;
    const out = fastData({ [long]: 1 }, DEFAULT_REDACT_KEYS, { maxStringLength: 32 });
    expect(JSON.stringify(out)).not.toContain("PLANTED");
    expect(Object.keys(out as object)).toEqual([`sk-[REDACTED] ${"y".repeat(18)}…[truncated 22 chars]`]);
  });

  it("reads a huge key only as far as its cut could reach, as a string value: a 10 MB key is not scanned whole", () => {
    // `Bearer ` and then a long run of key-like characters: every pattern of the scan has work on all of it.
    const huge = `Bearer ${"A1".repeat(5_000_000)}`;
    const out = fastData({ [huge]: "kept", other: 1 }, DEFAULT_REDACT_KEYS, {
      maxStringLength: 32,
    }) as Record<string, unknown>;
    const [key, other] = Object.keys(out);
    expect(key).toBe("Bearer [REDACTED]");
    expect(out[key as string]).toBe("kept");
    expect(other).toBe("other");
  });
});
