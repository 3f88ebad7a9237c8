import { ConfigurationError } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { clusterKeySlot, compileStreamKey, DEFAULT_CLUSTER_STREAM, hashTagOf } from "./stream-key";
import { testEvent } from "./test-support/events";

describe("compileStreamKey", () => {
  it("keeps a fixed key fixed", () => {
    const resolver = compileStreamKey("streamll_events");
    expect(resolver.fixed).toBe("streamll_events");
    expect(resolver.keyFor(testEvent())).toBe("streamll_events");
  });

  it("fills placeholders from the event and keeps other braces (hash tags) as written", () => {
    const resolver = compileStreamKey("{streamll}:{module_name}:{event_type}:{tags.tenant}");
    expect(resolver.fixed).toBeUndefined();
    const event = testEvent({ module_name: "qa", event_type: "token", tags: { tenant: "acme" } });
    expect(resolver.keyFor(event)).toBe("{streamll}:qa:token:acme");
  });

  it("replaces missing values, braces and whitespace so a value can never move the hash tag", () => {
    const resolver = compileStreamKey("streamll:{module_name}:{method_name}:{tags.missing}");
    const event = testEvent({ module_name: "my {evil} module", method_name: null });
    expect(resolver.keyFor(event)).toBe("streamll:my__evil__module:unknown:unknown");
  });

  it("caps long values", () => {
    const resolver = compileStreamKey("s:{module_name}");
    expect(resolver.keyFor(testEvent({ module_name: "m".repeat(500) }))).toHaveLength(2 + 128);
  });

  it("accepts a function and falls back to a module key when it throws or returns nothing", () => {
    const good = compileStreamKey((event) => `tenant:${event.tags.tenant ?? "none"}`);
    expect(good.keyFor(testEvent({ tags: { tenant: "t1" } }))).toBe("tenant:t1");
    const bad = compileStreamKey(() => {
      throw new Error("boom");
    });
    expect(bad.keyFor(testEvent({ module_name: "qa" }))).toBe("streamll:qa");
  });

  it("rejects an empty key", () => {
    expect(() => compileStreamKey("")).toThrow(ConfigurationError);
  });
});

describe("cluster slots", () => {
  it("hashes only a non-empty hash tag", () => {
    expect(hashTagOf("{user1000}.following")).toBe("user1000");
    expect(hashTagOf("foo{}{bar}")).toBe("foo{}{bar}");
    expect(hashTagOf("foo{{bar}}zap")).toBe("{bar");
    expect(hashTagOf("foo{bar}{zap}")).toBe("bar");
    expect(hashTagOf("plain")).toBe("plain");
  });

  it("matches the slots of the Redis Cluster specification", () => {
    // Values from the spec and from `CLUSTER KEYSLOT` (checked against a real cluster in redis-cluster.test.ts).
    expect(clusterKeySlot("foo")).toBe(12182);
    expect(clusterKeySlot("bar")).toBe(5061);
    expect(clusterKeySlot("hello")).toBe(866);
    expect(clusterKeySlot("123456789")).toBe(0x31c3 % 16384);
  });

  it("puts every {streamll} key in one slot", () => {
    const slot = clusterKeySlot(DEFAULT_CLUSTER_STREAM);
    expect(clusterKeySlot("{streamll}:qa")).toBe(slot);
    expect(clusterKeySlot("{streamll}:events:dead-letter")).toBe(slot);
    expect(clusterKeySlot("streamll")).toBe(slot);
  });
});
