import { describe, expect, it } from "vitest";
import type { StreamllEvent } from "./event-schema";
import { createKeyRedactor, REDACTED } from "./redact";

const event = (data: StreamllEvent["data"]): StreamllEvent => ({
  schema_version: "1.0",
  event_id: "event-id-0001",
  execution_id: "execution-01",
  span_id: "span-id-0001",
  parent_span_id: null,
  timestamp: "2026-01-01T00:00:00.000Z",
  module_name: "m",
  method_name: "forward",
  event_type: "start",
  operation: null,
  data,
  tags: { password: "tags are not data" },
  module_version: null,
  code_signature: null,
  git_commit: null,
});

describe("createKeyRedactor", () => {
  it("replaces matching keys at any depth, inside arrays too, case-insensitively", () => {
    const redact = createKeyRedactor(["password", "apiKey"]);
    const input = event({
      inputs: [{ user: "ada", PassWord: "hunter2" }, { nested: { deeper: { APIKEY: { even: "objects" } } } }],
      outputs: "password",
    });
    const out = redact(input);
    expect(out.data).toEqual({
      inputs: [{ user: "ada", PassWord: REDACTED }, { nested: { deeper: { APIKEY: REDACTED } } }],
      outputs: "password",
    });
    expect(out.tags).toEqual({ password: "tags are not data" });
  });

  it("matches whole keys only", () => {
    const redact = createKeyRedactor(["password"]);
    const input = event({ db_password: "x", passwords: ["y"] });
    expect(redact(input)).toBe(input);
  });

  it("does not copy or mutate events without matches", () => {
    const redact = createKeyRedactor(["secret"]);
    const data = { a: { b: [1, 2, { c: "d" }] } };
    const input = event(data);
    expect(redact(input)).toBe(input);
    const withSecret = event({ keep: { same: 1 }, x: { secret: "s" } });
    const out = redact(withSecret);
    expect(out).not.toBe(withSecret);
    expect(withSecret.data.x).toEqual({ secret: "s" });
    expect(out.data.keep).toBe(withSecret.data.keep);
  });

  it("keeps a __proto__ key a plain property", () => {
    const redact = createKeyRedactor(["__proto__"]);
    const data = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    const out = redact(event(data));
    expect(Object.getOwnPropertyDescriptor(out.data, "__proto__")?.value).toBe(REDACTED);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("does nothing with an empty key list", () => {
    const input = event({ password: "x" });
    expect(createKeyRedactor([])(input)).toBe(input);
  });
});
