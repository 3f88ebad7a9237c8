import { describe, expect, it } from "vitest";
import { optionIssues } from "../options/schema";
import {
  backoffDelay,
  DEFAULT_RETRY_OPTIONS,
  resolveRetryOptions,
  retryOptionsSchema,
  safeErrorMessage,
  scheduleUnref,
  scrubSecrets,
  scrubUrlCredentials,
  systemClock,
} from "./backoff";

describe("backoffDelay", () => {
  const noJitter = { ...DEFAULT_RETRY_OPTIONS, jitter: 0 };

  it("grows exponentially from initialDelayMs and caps at maxDelayMs", () => {
    const delays = [1, 2, 3, 4, 5, 12, 20].map((retry) => backoffDelay(retry, noJitter, () => 0.3));
    expect(delays).toEqual([100, 200, 400, 800, 1600, 30_000, 30_000]);
  });

  it("applies equal jitter: with jitter 0.5 the delay lies in [base/2, base]", () => {
    expect(backoffDelay(3, DEFAULT_RETRY_OPTIONS, () => 0)).toBe(200);
    expect(backoffDelay(3, DEFAULT_RETRY_OPTIONS, () => 1)).toBe(400);
    expect(backoffDelay(3, DEFAULT_RETRY_OPTIONS, () => 0.5)).toBe(300);
  });

  it("never returns NaN or a negative delay, even with a broken random source or a huge attempt number", () => {
    for (const random of [() => Number.NaN, () => -5, () => 7]) {
      const delay = backoffDelay(4, DEFAULT_RETRY_OPTIONS, random);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(800);
    }
    expect(backoffDelay(100_000, DEFAULT_RETRY_OPTIONS, () => 1)).toBe(30_000);
  });
});

describe("resolveRetryOptions", () => {
  it("fills in the documented defaults", () => {
    expect(resolveRetryOptions({})).toEqual({
      maxAttempts: Number.POSITIVE_INFINITY,
      initialDelayMs: 100,
      maxDelayMs: 30_000,
      multiplier: 2,
      jitter: 0.5,
    });
  });

  it("keeps the bounds ordered when one is given alone", () => {
    expect(resolveRetryOptions({ initialDelayMs: 60_000 }).maxDelayMs).toBe(60_000);
    expect(resolveRetryOptions({ maxDelayMs: 50 }).initialDelayMs).toBe(50);
  });
});

describe("retryOptionsSchema", () => {
  it("reports every invalid option by its dotted path", () => {
    const issues = optionIssues(
      retryOptionsSchema,
      { maxAttempts: 0, initialDelayMs: -1, multiplier: 0.5, jitter: 2, maxDelayMs: Number.NaN },
      "delivery.retry",
    );
    expect(issues).toEqual([
      { path: "delivery.retry.maxAttempts", message: "expected an integer >= 1 or Infinity, got 0" },
      { path: "delivery.retry.initialDelayMs", message: "expected a number >= 0, got -1" },
      { path: "delivery.retry.maxDelayMs", message: "expected a number >= 0, got NaN" },
      { path: "delivery.retry.multiplier", message: "expected a number >= 1, got 0.5" },
      { path: "delivery.retry.jitter", message: "expected a number between 0 and 1, got 2" },
    ]);
  });

  it("rejects unknown keys and maxDelayMs below initialDelayMs", () => {
    expect(optionIssues(retryOptionsSchema, { maxAttempt: 3 }, "r").map((issue) => issue.message)).toEqual([
      "unknown option; did you mean `maxAttempts`? (allowed: maxAttempts, initialDelayMs, maxDelayMs, multiplier, jitter)",
    ]);
    expect(optionIssues(retryOptionsSchema, { initialDelayMs: 500, maxDelayMs: 100 }, "r")).toEqual([
      { path: "r.maxDelayMs", message: "must be >= initialDelayMs (500), got 100" },
    ]);
  });
});

describe("safeErrorMessage", () => {
  it("uses only the message, never other fields of the error", () => {
    const error = Object.assign(new Error("connect ECONNREFUSED"), {
      options: { password: "hunter2-secret" },
    });
    expect(safeErrorMessage(error)).toBe("connect ECONNREFUSED");
  });

  it("removes passwords of connection URLs quoted in the message", () => {
    const error = new Error(
      "connect to redis://default:hunter2-secret@cache.internal:6380 failed; amqps://guest:pa%24s@mq/vhost down",
    );
    const message = safeErrorMessage(error);
    expect(message).toBe(
      "connect to redis://[redacted]@cache.internal:6380 failed; amqps://[redacted]@mq/vhost down",
    );
    expect(safeErrorMessage(new Error("redis://:only-password@host"))).toBe("redis://[redacted]@host");
    // A URL cut by the truncation still loses its password.
    const long = `${"x".repeat(480)} kafka://user:supersecretpassword@broker:9092`;
    expect(safeErrorMessage(new Error(long))).not.toContain("supersecret");
    expect(scrubUrlCredentials("http://example.com/a@b and user@host")).toBe(
      "http://example.com/a@b and user@host",
    );
  });

  it("truncates long messages and survives hostile values", () => {
    expect(safeErrorMessage(new Error("x".repeat(2000)))).toHaveLength(501);
    const hostile = new Proxy(
      {},
      {
        has() {
          throw new Error("trap");
        },
      },
    );
    expect(safeErrorMessage(hostile)).toBe("unreadable error");
    expect(safeErrorMessage(42)).toBe("non-Error value thrown (number)");
    expect(safeErrorMessage("plain string")).toBe("plain string");
  });
});

describe("scheduleUnref", () => {
  it("unrefs real timers so they never hold the process", () => {
    const handle = scheduleUnref(systemClock, () => undefined, 10_000) as NodeJS.Timeout;
    expect(handle.hasRef()).toBe(false);
    systemClock.clearTimeout(handle);
  });
});

describe("scrubSecrets", () => {
  it.each([
    ["connect to redis://alice:hunter2@cache:6379 failed", "connect to redis://[redacted]@cache:6379 failed"],
    [
      "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=abc123==;",
      "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=[redacted];",
    ],
    ["token=abcdef123 rest", "token=[redacted] rest"],
    ["Authorization: Bearer abc.def.ghi-jklmn", "Authorization: Bearer [redacted]"],
    ["AKIAIOSFODNN7EXAMPLE used", "[redacted] used"],
    ["jwt eyJhbGciOi.eyJzdWIiOiIx.sig here", "jwt [redacted] here"],
    ["key aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9 end", "key [redacted] end"],
    [
      "X-Amz-Signature=deadbeef&X-Amz-Security-Token=FQoG",
      "X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]",
    ],
    // The credentials event redaction knows, too: an API that refuses a key may repeat it in its error.
    [
      "401 Incorrect API key provided: sk-proj-PLANTED1234567890abcdef",
      "401 Incorrect API key provided: sk-[REDACTED]",
    ],
    ["slack xoxb-1234567890-abcdefghij rejected", "slack xoxb-[REDACTED] rejected"],
  ])("%s", (input, expected) => {
    expect(scrubSecrets(input)).toBe(expected);
  });

  it("keeps an SDK's credential class names and their explanations", () => {
    const text = "ManagedIdentityCredential: no managed identity endpoint found";
    expect(scrubSecrets(text)).toBe(text);
    expect(scrubSecrets("credential: abc123xyz")).toBe("credential: [redacted]");
  });

  it("keeps ordinary text, paths and ids", () => {
    const text =
      "EACCES: permission denied, open '/var/log/streamll/events.jsonl' (event evt_0001, 3 retries)";
    expect(scrubSecrets(text)).toBe(text);
  });
});
