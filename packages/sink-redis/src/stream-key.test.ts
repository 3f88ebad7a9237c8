import { ConfigurationError } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { RedisSink } from "./redis-sink";
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

describe("misspelled placeholders", () => {
  // [template, the part rejected, the placeholder suggested]
  const typos: readonly [string, string, string][] = [
    ["streamll:{modul_name}", "{modul_name}", "{module_name}"],
    ["streamll:{module_nme}", "{module_nme}", "{module_name}"],
    ["streamll:{moduleName}", "{moduleName}", "{module_name}"],
    ["streamll:{Module-Name}", "{Module-Name}", "{module_name}"],
    ["streamll:{modulenme}", "{modulenme}", "{module_name}"],
    ["streamll:{ module_name }", "{ module_name }", "{module_name}"],
    ["{streamll}:{EVENT_TYPE}", "{EVENT_TYPE}", "{event_type}"],
    ["streamll:{evnt_type}", "{evnt_type}", "{event_type}"],
    ["streamll:{methodName}", "{methodName}", "{method_name}"],
    ["streamll:{metod_name}", "{metod_name}", "{method_name}"],
    ["streamll:{executionid}", "{executionid}", "{execution_id}"],
    ["streamll:{exectionId}", "{exectionId}", "{execution_id}"],
    ["streamll:{Operation}", "{Operation}", "{operation}"],
    ["streamll:{operaton}", "{operaton}", "{operation}"],
    ["streamll:{oparation}", "{oparation}", "{operation}"],
    ["app:{tag.env}", "{tag.env}", "{tags.env}"],
    ["app:{tag:env}", "{tag:env}", "{tags.env}"],
    ["app:{tags:env}", "{tags:env}", "{tags.env}"],
    ["app:{Tags.env}", "{Tags.env}", "{tags.env}"],
    ["app:{tags.}", "{tags.}", "{tags.NAME}"],
  ];

  function errorOf(template: string, path: string): ConfigurationError {
    try {
      compileStreamKey(template, path);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigurationError);
      return error as ConfigurationError;
    }
    throw new Error(`${template} was accepted`);
  }

  it.each(typos)("rejects %s, suggesting the placeholder meant", (template, part, meant) => {
    const { message, issues } = errorOf(template, "stream");
    expect(message).toContain("RedisSink stream:");
    expect(message).toContain(`"${part}" is not a placeholder; did you mean "${meant}"?`);
    expect(issues).toEqual([{ path: "stream", message: expect.stringContaining(meant) }]);
  });

  it("names every misspelled part, under the path it was given", () => {
    expect(errorOf("{modul_name}:{evnt_type}", "sinks[0].stream").issues).toEqual([
      { path: "sinks[0].stream", message: expect.stringContaining('"{module_name}"') },
      { path: "sinks[0].stream", message: expect.stringContaining('"{event_type}"') },
    ]);
  });

  // Hash tags are ordinary words; none of these may be mistaken for a typo.
  const accepted: readonly [string, string][] = [
    ["{streamll}:{module_name}", "{streamll}:qa"],
    ["{app}:events", "{app}:events"],
    ["{events}", "{events}"],
    ["{orders}:{tags.env}", "{orders}:prod"],
    ["{operations}", "{operations}"],
    ["{executions}:{execution_id}", "{executions}:run-1"],
    ["{execution}:{operation}", "{execution}:predict"],
    ["{modules}:{methods}", "{modules}:{methods}"],
    ["{user123}:{tenant-a}", "{user123}:{tenant-a}"],
    ["{tags}:{event}:{type}", "{tags}:{event}:{type}"],
    ["s:{}:{method_name}", "s:{}:forward"],
    [DEFAULT_CLUSTER_STREAM, DEFAULT_CLUSTER_STREAM],
  ];

  it.each(accepted)("accepts %s", (template, key) => {
    const event = testEvent({
      module_name: "qa",
      method_name: "forward",
      operation: "predict",
      execution_id: "run-1",
      tags: { env: "prod" },
    });
    expect(compileStreamKey(template).keyFor(event)).toBe(key);
  });

  it("fails at RedisSink construction, before anything connects", () => {
    expect(() => new RedisSink({ url: "redis://127.0.0.1:1", stream: "streamll:{modul_name}" })).toThrow(
      /RedisSink stream: "\{modul_name\}" is not a placeholder; did you mean "\{module_name\}"\?/,
    );
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
