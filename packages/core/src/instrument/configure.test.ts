import { describe, expect, it } from "vitest";
import type { Sink } from "../delivery/sink";
import { ConfigurationError } from "../errors";
import type { StreamllEvent } from "../events/event-schema";
import { MemorySink } from "../sinks/memory-sink";
import {
  DEFAULT_JSONL_PATH,
  DEFAULT_REDACT_KEYS,
  type EventFilterOptions,
  loadEnvConfig,
  parseOptions,
  resolveConfig,
  type StreamllOptions,
} from "./configure";

function issuesOf(options: unknown): { path: string; message: string }[] {
  try {
    parseOptions(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return [...(error as ConfigurationError).issues];
  }
  throw new Error("expected a ConfigurationError");
}

function messageOf(options: unknown): string {
  try {
    parseOptions(options);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected a ConfigurationError");
}

const event = (overrides: Partial<StreamllEvent> = {}): StreamllEvent => ({
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
  data: {},
  tags: {},
  module_version: null,
  code_signature: null,
  git_commit: null,
  ...overrides,
});

describe("parseOptions", () => {
  it("accepts sinks and { sink, delivery } entries and keeps them by reference", () => {
    const a = new MemorySink();
    const b = new MemorySink({ name: "b" });
    const parsed = parseOptions({ sinks: [a, { sink: b, delivery: { maxBatchSize: 5 } }], tags: { k: "v" } });
    expect(parsed.sinks[0]?.sink).toBe(a);
    expect(parsed.sinks[1]?.sink).toBe(b);
    expect(parsed.sinks[1]?.delivery).toEqual({ maxBatchSize: 5 });
    expect(parsed.tags).toEqual({ k: "v" });
  });

  it("accepts an empty or missing options object", () => {
    expect(parseOptions(undefined).sinks).toEqual([]);
    expect(parseOptions({}).sinks).toEqual([]);
  });

  it("names the bad sink and what is allowed", () => {
    const message = messageOf({ sinks: [new MemorySink(), 42] });
    expect(message).toContain(
      "sinks[1]: expected a Sink (an object with name, send() and close()) or { sink, delivery }, got a number",
    );
    expect(issuesOf({ sinks: [{ name: "x", send: () => undefined }] })[0]).toEqual({
      path: "sinks[0]",
      message: "expected a Sink (an object with name, send() and close()), got an object",
    });
    expect(issuesOf({ sinks: [{ sink: new MemorySink(), deliver: {} }] })[0]).toEqual({
      path: "sinks[0].deliver",
      message: "unknown option; did you mean `delivery`? (allowed: sink, delivery)",
    });
    expect(issuesOf({ sinks: [{ sink: new MemorySink(), delivery: { maxBatchsize: 1 } }] })[0]).toEqual({
      path: "sinks[0].delivery.maxBatchsize",
      message: expect.stringContaining("did you mean `maxBatchSize`? (allowed: maxQueueSize,"),
    });
    expect(issuesOf({ sinks: "memory" })[0]?.message).toMatch(/expected an array of a Sink/);
  });

  it("rejects the same sink listed twice", () => {
    const sink = new MemorySink();
    expect(messageOf({ sinks: [sink, { sink }] })).toContain(
      "sinks[1]: the same sink instance is already sinks[0]",
    );
  });

  it("reports every bad option with its path", () => {
    const issues = issuesOf({
      tags: { team: 1 },
      includeInputs: "yes",
      redact: [1],
      eventFilter: { eventTypes: "start" },
      encode: { maxEventBytes: -1 },
      logger: { warn: () => undefined },
      serviceName: "",
      exitFlushTimeoutMs: -5,
      colour: "blue",
    });
    const paths = issues.map((issue) => issue.path).sort();
    expect(paths).toEqual(
      [
        "colour",
        "encode.maxEventBytes",
        "eventFilter.eventTypes",
        "exitFlushTimeoutMs",
        "includeInputs",
        "logger",
        "redact[0]",
        "serviceName",
        "tags.team",
      ].sort(),
    );
    const byPath = Object.fromEntries(issues.map((issue) => [issue.path, issue.message]));
    expect(byPath.colour).toMatch(/unknown option \(allowed: sinks, delivery, tags/);
    expect(byPath.includeInputs).toBe("expected true or false, got a string");
    expect(byPath.logger).toBe("expected an object with warn() and error() methods, got an object");
  });

  it("lists the allowed keys of the nested object a misspelled key is in", () => {
    expect(messageOf({ versionTracking: { stratgy: "ast" } })).toBe(
      "invalid streamll options: versionTracking.stratgy: unknown option; did you mean `strategy`? (allowed: strategy, moduleVersion, gitCommit, dependencies)",
    );
    expect(messageOf({ delivery: { retry: { maxAttempt: 3 } } })).toContain(
      "delivery.retry.maxAttempt: unknown option; did you mean `maxAttempts`? (allowed: maxAttempts, initialDelayMs, maxDelayMs, multiplier, jitter)",
    );
    expect(messageOf({ eventFilter: { eventType: ["start"] } })).toContain(
      "eventFilter.eventType: unknown option; did you mean `eventTypes`? (allowed: eventTypes, excludeEventTypes, operations)",
    );
  });

  it("rejects encode limits outside their documented ranges instead of clamping them", () => {
    expect(messageOf({ encode: { maxEventBytes: 100, maxDepth: 1000 } })).toBe(
      "invalid streamll options: encode.maxEventBytes: expected an integer >= 4096, got 100; encode.maxDepth: expected an integer between 1 and 256, got 1000",
    );
  });

  it("rejects a non-object", () => {
    expect(messageOf(42)).toContain("expected an options object, got a number");
  });
});

describe("loadEnvConfig", () => {
  it("reads every variable", () => {
    const env = loadEnvConfig({
      STREAMLL_DISABLED: "true",
      STREAMLL_TAGS: "team=search, region = eu ,",
      STREAMLL_SERVICE: "bot",
      STREAMLL_ENV: "prod",
      STREAMLL_INCLUDE_INPUTS: "0",
      STREAMLL_INCLUDE_OUTPUTS: "yes",
      STREAMLL_SINK: "JSONL",
      STREAMLL_JSONL_PATH: "/tmp/x.jsonl",
    });
    expect(env).toEqual({
      disabled: true,
      tags: { team: "search", region: "eu", service: "bot", env: "prod" },
      serviceName: "bot",
      environment: "prod",
      includeInputs: false,
      includeOutputs: true,
      sink: "jsonl",
      jsonlPath: "/tmp/x.jsonl",
      warnings: [],
    });
  });

  it("keeps a tag named __proto__ as a tag, from options (parsed JSON) and from STREAMLL_TAGS", () => {
    const config = resolveConfig(
      parseOptions({ tags: JSON.parse('{"__proto__":"blue","b":"y"}') as Record<string, string> }),
      loadEnvConfig({ STREAMLL_TAGS: "__proto__=green,a=x" }),
    );
    expect(Object.keys(config.tags)).toEqual(["__proto__", "a", "b"]);
    expect(Object.getOwnPropertyDescriptor(config.tags, "__proto__")?.value).toBe("blue");
    expect(Object.getPrototypeOf(config.tags)).toBe(Object.prototype);
  });

  it("defaults to nothing and the default JSONL path", () => {
    expect(loadEnvConfig({})).toEqual({ tags: {}, jsonlPath: DEFAULT_JSONL_PATH, warnings: [] });
  });

  it("ignores bad values with one warning each", () => {
    const env = loadEnvConfig({
      STREAMLL_DISABLED: "maybe",
      STREAMLL_TAGS: "ok=1,broken,=novalue",
      STREAMLL_SINK: "kafka",
      STREAMLL_INCLUDE_OUTPUTS: "2",
    });
    expect(env.disabled).toBeUndefined();
    expect(env.sink).toBeUndefined();
    expect(env.includeOutputs).toBeUndefined();
    expect(env.tags).toEqual({ ok: "1" });
    expect(env.warnings).toHaveLength(4);
    expect(env.warnings).toEqual([
      "STREAMLL_DISABLED ignored: expected one of 1, true, yes, on, 0, false, no, off",
      "STREAMLL_INCLUDE_OUTPUTS ignored: expected one of 1, true, yes, on, 0, false, no, off",
      "STREAMLL_TAGS entries 2, 3 (counting from 1) ignored: expected key=value pairs separated by commas, key and value at most 256 characters",
      "STREAMLL_SINK ignored: expected one of terminal, jsonl, memory, none",
    ]);
  });

  it("never repeats a variable's value in a warning (it may be a secret), and suggests the nearest sink", () => {
    const secret = "sk-proj-PLANTEDSECRET1234567890abcdef";
    const env = loadEnvConfig({
      STREAMLL_DISABLED: secret,
      STREAMLL_TAGS: `team=a,${secret}`,
      STREAMLL_SINK: secret,
      STREAMLL_ENV: "x".repeat(300) + secret,
    });
    expect(env.warnings).toHaveLength(4);
    for (const warning of env.warnings) expect(warning).not.toContain("PLANTEDSECRET");
    expect(loadEnvConfig({ STREAMLL_SINK: "jsnol" }).warnings).toEqual([
      "STREAMLL_SINK ignored: expected one of terminal, jsonl, memory, none; did you mean jsonl?",
    ]);
  });

  it("reports a variable a close miss of one it reads, and leaves other STREAMLL_ variables alone", () => {
    const env = loadEnvConfig({
      STREAMLL_SINKS: "jsonl",
      streamll_disabled: "1",
      STREAMLL_INCLUDE_INPUT: "0",
      STREAMLL_KAFKA_TOPIC: "events",
      STREAMLL_EVENTS_FILE: "/tmp/x",
      MY_STREAMLL_SINKS: "x",
    });
    expect(env.sink).toBeUndefined();
    expect(env.disabled).toBeUndefined();
    expect(env.warnings).toEqual([
      "STREAMLL_SINKS ignored: not a streamll variable; did you mean STREAMLL_SINK?",
      "streamll_disabled ignored: not a streamll variable; did you mean STREAMLL_DISABLED?",
      "STREAMLL_INCLUDE_INPUT ignored: not a streamll variable; did you mean STREAMLL_INCLUDE_INPUTS?",
    ]);
  });

  it("never throws, even for an env object that does", () => {
    const hostile = new Proxy({} as Record<string, string>, {
      get() {
        throw new Error("no env for you");
      },
    });
    const env = loadEnvConfig(hostile);
    expect(env.warnings[0]).toMatch(/environment could not be read/);
  });
});

describe("resolveConfig", () => {
  it("applies defaults", () => {
    const config = resolveConfig({}, loadEnvConfig({}));
    expect(config.enabled).toBe(true);
    expect(config.includeInputs).toBe(true);
    expect(config.includeOutputs).toBe(true);
    expect(config.tags).toEqual({});
    expect(config.defaultModuleName).toBe("app");
    expect(config.filter).toBeUndefined();
    expect(config.exitFlushTimeoutMs).toBe(5_000);
    // Default redaction of credential keys.
    const redacted = config.redact?.(event({ data: { inputs: { password: "p", API_KEY: "k", keep: 1 } } }));
    expect(redacted?.data).toEqual({ inputs: { password: "[REDACTED]", API_KEY: "[REDACTED]", keep: 1 } });
    expect(DEFAULT_REDACT_KEYS).toContain("authorization");
  });

  it("lets explicit options win over the environment", () => {
    const env = loadEnvConfig({
      STREAMLL_DISABLED: "1",
      STREAMLL_TAGS: "team=env,region=eu",
      STREAMLL_SERVICE: "env-service",
      STREAMLL_ENV: "env-env",
      STREAMLL_INCLUDE_INPUTS: "false",
    });
    const config = resolveConfig(
      { enabled: true, tags: { team: "code" }, serviceName: "code-service", includeInputs: true },
      env,
    );
    expect(config.enabled).toBe(true);
    expect(config.includeInputs).toBe(true);
    expect(config.tags).toEqual({ team: "code", region: "eu", service: "code-service", env: "env-env" });
    expect(config.defaultModuleName).toBe("code-service");
  });

  it("disables through STREAMLL_DISABLED when enabled is not given", () => {
    expect(resolveConfig({}, loadEnvConfig({ STREAMLL_DISABLED: "1" })).enabled).toBe(false);
    expect(resolveConfig({}, loadEnvConfig({ STREAMLL_DISABLED: "0" })).enabled).toBe(true);
  });

  it("keeps explicit tags.service and tags.env over serviceName and environment", () => {
    const config = resolveConfig(
      { serviceName: "a", environment: "b", tags: { service: "x", env: "y" } },
      loadEnvConfig({}),
    );
    expect(config.tags).toEqual({ service: "x", env: "y" });
  });

  it("turns filter lists into a check of the event type and operation", () => {
    const select = (eventFilter: EventFilterOptions) =>
      resolveConfig({ eventFilter }, loadEnvConfig({})).select;
    const only = select({ eventTypes: ["start", "end"] });
    expect(only?.("start", null)).toBe(true);
    expect(only?.("token", null)).toBe(false);
    const exclude = select({ excludeEventTypes: ["token"] });
    expect(exclude?.("token", null)).toBe(false);
    expect(exclude?.("end", null)).toBe(true);
    const ops = select({ operations: ["retrieval"] });
    expect(ops?.("start", "retrieval")).toBe(true);
    expect(ops?.("start", null)).toBe(false);
    expect(select({})).toBeUndefined();
    expect(
      resolveConfig({ eventFilter: { eventTypes: ["start"] } }, loadEnvConfig({})).filter,
    ).toBeUndefined();
    const fn = (e: StreamllEvent) => e.event_type !== "x";
    const resolved = resolveConfig({ eventFilter: fn }, loadEnvConfig({}));
    expect(resolved.filter).toBe(fn);
    expect(resolved.select).toBeUndefined();
  });

  it("turns off redaction with an empty list and uses a function as given", () => {
    expect(resolveConfig({ redact: [] }, loadEnvConfig({})).redact).toBeUndefined();
    const fn = (e: StreamllEvent) => {
      e.tags.seen = "yes";
      return e;
    };
    const shared = event();
    const out = resolveConfig({ redact: fn }, loadEnvConfig({})).redact?.(shared);
    expect(out?.tags).toEqual({ seen: "yes" });
    // The function got a copy: the tags object shared with other events is untouched.
    expect(shared.tags).toEqual({});
  });

  it("types: options accept sinks of any implementation", () => {
    const custom: Sink = { name: "c", send: async () => undefined, close: async () => undefined };
    const options: StreamllOptions = { sinks: [custom, { sink: custom, delivery: { maxBatchSize: 1 } }] };
    expect(options.sinks).toHaveLength(2);
  });
});
