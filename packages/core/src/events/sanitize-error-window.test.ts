import { afterEach, describe, expect, it, vi } from "vitest";
import { KeyRedaction } from "./redact";
import { DEFAULT_ENCODE_LIMITS, JsonSanitizer, resolveLimits, SCRUB_WINDOW } from "./sanitize-json";

const scrubbed: number[] = [];
vi.mock("../delivery/backoff", async (importOriginal) => {
  const original = await importOriginal<typeof import("../delivery/backoff")>();
  return {
    ...original,
    scrubErrorText: (text: string) => {
      scrubbed.push(text.length);
      return original.scrubErrorText(text);
    },
  };
});

afterEach(() => {
  scrubbed.length = 0;
});

describe("an Error's text in data", () => {
  it("is scrubbed only as far as its cut could reach, however long the message, stack, code or cause", () => {
    const huge = `${"x".repeat(5_000_000)} password=hunter2`;
    const error = Object.assign(new Error(huge), { code: huge, cause: huge });
    error.stack = huge;
    const limits = resolveLimits(undefined);
    const sanitizer = new JsonSanitizer(
      limits,
      Number.POSITIVE_INFINITY,
      false,
      false,
      new KeyRedaction(["password"]),
    );
    const out = sanitizer.sanitize({ error }) as { error: { $error: Record<string, string> } };
    const window = SCRUB_WINDOW * DEFAULT_ENCODE_LIMITS.maxStringLength;
    expect(scrubbed.length).toBe(4);
    for (const length of scrubbed) expect(length).toBeLessThanOrEqual(window);
    expect(out.error.$error.message?.length).toBeLessThan(DEFAULT_ENCODE_LIMITS.maxStringLength + 64);
    expect(out.error.$error.message).toMatch(/…\[truncated \d+ chars\]$/);
  });
});
