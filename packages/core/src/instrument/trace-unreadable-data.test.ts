import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { shutdown } from "./runtime";
import { collect, setup, warnings } from "./runtime-test-support";
import { emit, trace } from "./trace";

// trace() must never stop the host's code over a data problem: unreadable `data` is recorded as a marker.

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
});

function revokedProxy(): Record<string, unknown> {
  const { proxy, revoke } = Proxy.revocable<Record<string, unknown>>({}, {});
  revoke();
  return proxy;
}

describe("trace() with unreadable data", () => {
  it("runs the block and records a revoked Proxy as data the way emit() does", async () => {
    const sink = setup();
    let ran = false;
    const value = trace(
      "step",
      () => {
        ran = true;
        return 1;
      },
      { data: revokedProxy() },
    );
    expect(ran).toBe(true);
    expect(value).toBe(1);
    emit("x", revokedProxy());
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "end", "x"]);
    expect(events[0]?.data).toEqual({ $value: "[Unreadable]" });
    expect(events[0]?.data).toEqual(events[2]?.data);
  });

  it("still rejects data that is not an object", () => {
    setup();
    expect(() => trace("step", () => 1, { data: [1] as unknown as Record<string, unknown> })).toThrow(
      ConfigurationError,
    );
  });
});
