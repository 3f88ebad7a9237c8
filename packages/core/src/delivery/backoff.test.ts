import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  DEFAULT_RETRY_OPTIONS,
  type OptionIssue,
  resolveRetryOptions,
  safeErrorMessage,
  scheduleUnref,
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
    const issues: OptionIssue[] = [];
    expect(resolveRetryOptions({}, "delivery.retry", issues)).toEqual({
      maxAttempts: Number.POSITIVE_INFINITY,
      initialDelayMs: 100,
      maxDelayMs: 30_000,
      multiplier: 2,
      jitter: 0.5,
    });
    expect(issues).toEqual([]);
  });

  it("reports every invalid option by its dotted path", () => {
    const issues: OptionIssue[] = [];
    resolveRetryOptions(
      { maxAttempts: 0, initialDelayMs: -1, multiplier: 0.5, jitter: 2, maxDelayMs: Number.NaN },
      "delivery.retry",
      issues,
    );
    const messages = issues.map((issue) => issue.message);
    expect(messages).toContain("delivery.retry.maxAttempts must be an integer >= 1 or Infinity, got 0");
    expect(messages).toContain("delivery.retry.initialDelayMs must be a finite number >= 0, got -1");
    expect(messages).toContain("delivery.retry.multiplier must be a finite number >= 1, got 0.5");
    expect(messages).toContain("delivery.retry.jitter must be a finite number between 0 and 1, got 2");
    expect(messages).toContain("delivery.retry.maxDelayMs must be a finite number >= 0, got NaN");
  });

  it("rejects unknown keys and maxDelayMs below initialDelayMs", () => {
    const issues: OptionIssue[] = [];
    resolveRetryOptions({ initialDelayMs: 500, maxDelayMs: 100, maxAttempt: 3 } as object, "r", issues);
    expect(issues.map((issue) => issue.path)).toEqual(["r.maxAttempt", "r.maxDelayMs"]);
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
      "connect to redis://default:[redacted]@cache.internal:6380 failed; amqps://guest:[redacted]@mq/vhost down",
    );
    expect(safeErrorMessage(new Error("redis://:only-password@host"))).toBe("redis://:[redacted]@host");
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
