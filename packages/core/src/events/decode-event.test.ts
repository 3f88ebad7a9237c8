import { describe, expect, it } from "vitest";
import { StreamllError } from "../errors";
import { type DecodeResult, decodeEvent, EventDecodeError } from "./decode-event";
import { testEvent } from "./test-event";

const WIRE = testEvent({ module_name: "RAGPipeline", operation: "retrieval", tags: { env: "prod" } });

function failed(result: DecodeResult): EventDecodeError {
  if (result.ok) throw new Error("expected a decode failure");
  expect(result.error).toBeInstanceOf(EventDecodeError);
  expect(result.error).toBeInstanceOf(StreamllError);
  expect(result.error.code).toBe("EVENT_DECODE_FAILED");
  return result.error;
}

describe("decodeEvent", () => {
  it("decodes the wire example from a string and from bytes", () => {
    const json = JSON.stringify(WIRE);
    for (const input of [json, new TextEncoder().encode(json), Buffer.from(json)]) {
      const result = decodeEvent(input);
      expect(result).toEqual({ ok: true, event: WIRE });
    }
  });

  it("ignores a UTF-8 byte order mark", () => {
    const json = JSON.stringify(WIRE);
    expect(decodeEvent(`\uFEFF${json}`).ok).toBe(true);
    expect(decodeEvent(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)])).ok).toBe(true);
  });

  it("names the first wrong field in the message and lists every issue", () => {
    const error = failed(
      decodeEvent(JSON.stringify({ ...WIRE, timestamp: "2026-11-27 10:15", event_id: "short" })),
    );
    expect(error.message).toBe(
      "event_id: Too small: expected string to have >=8 characters (and 1 more issue)",
    );
    expect(error.issues).toEqual([
      { path: "event_id", message: "Too small: expected string to have >=8 characters" },
      { path: "timestamp", message: "must be an ISO-8601 UTC timestamp ending in Z" },
    ]);
    const single = failed(decodeEvent(JSON.stringify({ ...WIRE, timestamp: "2026-11-27T10:15:30+02:00" })));
    expect(single.message).toBe("timestamp: must be an ISO-8601 UTC timestamp ending in Z");
  });

  it("reports nested paths with dots, the input's own keys as *", () => {
    const error = failed(decodeEvent(JSON.stringify({ ...WIRE, tags: { env: 1 } })));
    expect(error.issues[0]?.path).toBe("tags.*");
  });

  it("rejects missing fields", () => {
    const { module_name, ...rest } = WIRE;
    const error = failed(decodeEvent(JSON.stringify(rest)));
    expect(error.issues[0]?.path).toBe("module_name");
  });

  it("accepts later minor versions and keeps unknown fields", () => {
    const result = decodeEvent(JSON.stringify({ ...WIRE, schema_version: "1.7", new_field: { a: 1 } }));
    expect(result.ok).toBe(true);
    if (result.ok) expect((result.event as Record<string, unknown>).new_field).toEqual({ a: 1 });
  });

  it("rejects other major versions", () => {
    const error = failed(decodeEvent(JSON.stringify({ ...WIRE, schema_version: "2.0" })));
    expect(error.message).toBe("schema_version: unsupported major version 2.0 (this decoder reads 1.x)");
  });

  it("rejects invalid UTF-8, invalid JSON and non-object JSON without throwing", () => {
    expect(failed(decodeEvent(new Uint8Array([0x7b, 0xff, 0x7d]))).message).toBe("input is not valid UTF-8");
    expect(failed(decodeEvent("{not json")).message).toMatch(/^input is not valid JSON/);
    expect(failed(decodeEvent("")).message).toMatch(/^input is not valid JSON/);
    expect(failed(decodeEvent("[1,2]")).message).toBe("must be a JSON object, got an array");
    expect(failed(decodeEvent("null")).message).toBe("must be a JSON object, got null");
    expect(failed(decodeEvent("42")).message).toBe("must be a JSON object, got a number");
    expect(failed(decodeEvent(42 as never)).message).toBe("input must be a string or a Uint8Array");
  });

  it("rejects oversize input before parsing it", () => {
    const big = JSON.stringify({ ...WIRE, data: { s: "x".repeat(2000) } });
    expect(failed(decodeEvent(big, { maxBytes: 1000 })).message).toBe(
      "input is larger than maxBytes (1000 bytes)",
    );
    expect(failed(decodeEvent(Buffer.from(big), { maxBytes: 1000 })).message).toMatch(/larger than maxBytes/);
    // Multi-byte characters count in bytes, not characters.
    const wide = JSON.stringify({ ...WIRE, data: { s: "é".repeat(600) } });
    expect(wide.length).toBeLessThan(1000);
    expect(failed(decodeEvent(wide, { maxBytes: 1000 })).message).toMatch(/larger than maxBytes/);
    expect(decodeEvent(big).ok).toBe(true);
  });

  it("does not put the input into the error", () => {
    const secret = "s3cr3t-token-value";
    const error = failed(decodeEvent(JSON.stringify({ ...WIRE, timestamp: secret })));
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error.issues)).not.toContain(secret);
  });

  it("never quotes a planted secret, wherever in the input it is", () => {
    const secret = "sk-live PLANTED/51a7e3c9d2b04f6e";
    const inputs: (string | Uint8Array)[] = [
      `{"api_key":"${secret}"`,
      `"${secret}"`,
      `[1, "${secret}"]`,
      `${secret}`,
      `{"schema_version":"1.0","x":"${secret}"`,
      JSON.stringify({ ...WIRE, schema_version: secret }),
      JSON.stringify({ ...WIRE, schema_version: `9.${secret.length}`, note: secret }),
      JSON.stringify({ ...WIRE, event_id: secret }),
      JSON.stringify({ ...WIRE, timestamp: secret }),
      JSON.stringify({ ...WIRE, module_name: secret.repeat(40) }),
      JSON.stringify({ ...WIRE, event_type: 42, data: { [secret]: secret } }),
      JSON.stringify({ ...WIRE, tags: { [secret]: 1 } }),
      JSON.stringify({ ...WIRE, tags: { env: { [secret]: secret } } }),
      JSON.stringify({ ...WIRE, tags: [secret] }),
      JSON.stringify({ ...WIRE, data: secret }),
      JSON.stringify({ ...WIRE, [secret]: 1, span_id: null }),
      Buffer.concat([Buffer.from(`{"k":"${secret}`), Buffer.from([0xff, 0xfe])]),
      Buffer.from(`{"k":"${secret}"}`.repeat(100)),
    ];
    for (const input of inputs) {
      const result = decodeEvent(input, { maxBytes: 2_000 });
      expect(result.ok, String(input).slice(0, 200)).toBe(false);
      const error = failed(result);
      const everything = `${error.message} ${JSON.stringify(error.issues)} ${String(error.stack)} ${JSON.stringify(error)}`;
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain("PLANTED");
    }
    // A tag of the wrong type is still located, by field, without its name.
    expect(failed(decodeEvent(JSON.stringify({ ...WIRE, tags: { [secret]: 1 } }))).message).toBe(
      "tags.*: Invalid input: expected string, received number",
    );
  });
});
