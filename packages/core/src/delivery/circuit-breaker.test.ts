import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { CircuitBreaker, type CircuitTransition } from "./circuit-breaker";

function setup(options = { failureThreshold: 3, resetTimeoutMs: 1000 }) {
  const clock = { t: 0, now: () => clock.t };
  const breaker = new CircuitBreaker(options, { clock });
  const transitions: CircuitTransition[] = [];
  breaker.onStateChange((change) => transitions.push(change));
  return { clock, breaker, transitions };
}

describe("CircuitBreaker", () => {
  it("stays closed below the threshold; a success resets the consecutive count", () => {
    const { breaker } = setup();
    breaker.recordFailure("a");
    breaker.recordFailure("b");
    breaker.recordSuccess();
    breaker.recordFailure("c");
    breaker.recordFailure("d");
    expect(breaker.state).toBe("closed");
    expect(breaker.tryAcquire()).toBe(true);
  });

  it("opens after failureThreshold consecutive failures and refuses until resetTimeoutMs", () => {
    const { breaker, clock, transitions } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure(`boom ${i}`);
    expect(breaker.state).toBe("open");
    expect(transitions).toEqual([{ from: "closed", to: "open", at: 0, reason: "boom 2" }]);
    expect(breaker.tryAcquire()).toBe(false);
    clock.t = 999;
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.msUntilTrial()).toBe(1);
  });

  it("allows exactly one trial in half-open, however many callers ask", () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure("down");
    clock.t = 1000;
    const grants = Array.from({ length: 50 }, () => breaker.tryAcquire());
    expect(grants.filter(Boolean)).toHaveLength(1);
    expect(grants[0]).toBe(true);
    expect(breaker.state).toBe("half-open");
    expect(breaker.msUntilTrial()).toBeUndefined();
    clock.t = 50_000; // time alone never grants a second trial
    expect(breaker.tryAcquire()).toBe(false);
  });

  it("closes when the trial succeeds", () => {
    const { breaker, clock, transitions } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure("down");
    clock.t = 1000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.state).toBe("closed");
    expect(transitions.map((t) => `${t.from}>${t.to}`)).toEqual([
      "closed>open",
      "open>half-open",
      "half-open>closed",
    ]);
    expect([breaker.tryAcquire(), breaker.tryAcquire()]).toEqual([true, true]);
  });

  it("re-opens for a fresh reset timeout when the trial fails", () => {
    const { breaker, clock, transitions } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure("down");
    clock.t = 1500;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordFailure("still down");
    expect(breaker.state).toBe("open");
    expect(transitions.at(-1)).toEqual({ from: "half-open", to: "open", at: 1500, reason: "still down" });
    clock.t = 2499;
    expect(breaker.tryAcquire()).toBe(false);
    clock.t = 2500;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it("ignores late failures while open (they do not extend the timeout)", () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure("down");
    clock.t = 900;
    breaker.recordFailure("late");
    clock.t = 1000;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it("swallows listener errors and supports unsubscribe", () => {
    const { breaker } = setup({ failureThreshold: 1, resetTimeoutMs: 10 });
    const seen: string[] = [];
    breaker.onStateChange(() => {
      throw new Error("listener bug");
    });
    const off = breaker.onStateChange((t) => seen.push(t.to));
    expect(() => breaker.recordFailure("x")).not.toThrow();
    off();
    breaker.recordSuccess();
    expect(seen).toEqual(["open"]);
  });

  it("validates options with messages naming the option", () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(ConfigurationError);
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(
      "failureThreshold: expected an integer >= 1, got 0",
    );
    expect(() => new CircuitBreaker({ resetTimeoutMs: -5 })).toThrow(
      "resetTimeoutMs: expected a number >= 0, got -5",
    );
  });

  it("uses the documented defaults", () => {
    expect(new CircuitBreaker().options).toEqual({ failureThreshold: 5, resetTimeoutMs: 10_000 });
  });
});
