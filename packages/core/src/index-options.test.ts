import { describe, expect, it } from "vitest";
import * as core from "./index";

/**
 * Every public constructor and factory of @streamll/core given a misspelled option, at the top level and one
 * level down: the error must name the path, the key the user meant and the keys allowed at that level.
 */
const sink = new core.MemorySink();
const event = {
  schema_version: "1.0",
  event_id: "evt_0000001",
  execution_id: "exe_0000001",
  span_id: "spn_0000001",
  parent_span_id: null,
  timestamp: "2026-01-01T00:00:00.000Z",
  module_name: "m",
  method_name: null,
  event_type: "start",
  operation: null,
  module_version: null,
  code_signature: null,
  git_commit: null,
  data: {},
  tags: {},
} satisfies core.StreamllEvent;

interface Case {
  /** The export under test. */
  readonly name: string;
  /** Calls it with the given options object. */
  readonly call: (options: object) => unknown;
  /** A misspelled top-level key, and the key it should suggest. */
  readonly top: readonly [typo: string, meant: string];
  /** Valid options with one nested key misspelled, the error path, and the key it should suggest. */
  readonly nested?: readonly [options: object, path: string, meant: string];
}

const cases: readonly Case[] = [
  {
    name: "configure",
    call: (options) => core.configure(options as core.StreamllOptions),
    top: ["sink", "sinks"],
    nested: [{ versionTracking: { stratgy: "ast" } }, "versionTracking.stratgy", "strategy"],
  },
  {
    name: "configure (per-sink delivery)",
    call: (options) => core.configure({ sinks: [{ sink, ...options }] } as core.StreamllOptions),
    top: ["deliver", "delivery"],
    nested: [{ delivery: { retry: { maxAttempt: 2 } } }, "sinks[0].delivery.retry.maxAttempt", "maxAttempts"],
  },
  {
    name: "instrument",
    call: (options) => core.instrument(() => 1, options as core.InstrumentOptions),
    top: ["nmae", "name"],
  },
  {
    name: "trace",
    call: (options) => core.trace("step", () => 1, options as core.TraceOptions),
    top: ["modulename", "moduleName"],
  },
  {
    name: "decodeEvent",
    call: (options) => core.decodeEvent("{}", options as core.DecodeOptions),
    top: ["maxByte", "maxBytes"],
  },
  {
    name: "encodeEvent",
    call: (options) => core.encodeEvent(event, options as core.EncodeLimits),
    top: ["maxEventByte", "maxEventBytes"],
  },
  {
    name: "sanitizeJson",
    call: (options) => core.sanitizeJson({}, options as core.EncodeLimits),
    top: ["maxDept", "maxDepth"],
  },
  {
    name: "TerminalSink",
    call: (options) => new core.TerminalSink(options as core.TerminalSinkOptions),
    top: ["colours", "colors"],
  },
  {
    name: "MemorySink",
    call: (options) => new core.MemorySink(options as core.MemorySinkOptions),
    top: ["maxevents", "maxEvents"],
  },
  {
    name: "JsonlFileSink",
    call: (options) =>
      new core.JsonlFileSink({ path: "/tmp/x.jsonl", ...options } as core.JsonlFileSinkOptions),
    top: ["rotation", "rotate"],
    nested: [{ rotate: { maxBytes: 10, maxFile: 2 } }, "rotate.maxFile", "maxFiles"],
  },
  {
    name: "computeCodeSignature",
    call: (options) => core.computeCodeSignature(() => 1, options as core.CodeSignatureOptions),
    top: ["strategie", "strategy"],
  },
  {
    name: "computeCodeSignatureDetails",
    call: (options) => core.computeCodeSignatureDetails(() => 1, options as core.CodeSignatureOptions),
    top: ["methd", "method"],
  },
  {
    name: "compareEvents",
    call: (options) => core.compareEvents([], options as core.CompareOptions),
    top: ["modul", "module"],
  },
  {
    name: "compareEventFiles",
    call: (options) => core.compareEventFiles([], options as core.CompareOptions),
    top: ["minSample", "minSamples"],
  },
  {
    name: "detectGitCommit",
    call: (options) => core.detectGitCommit(options as core.GitCommitOptions),
    top: ["dirtycheck", "dirtyCheck"],
  },
  {
    name: "VersionTracker",
    call: (options) => new core.VersionTracker(options as core.VersionTrackingOptions),
    top: ["gitcommit", "gitCommit"],
  },
  {
    name: "VersionTracker (environment)",
    call: (options) => new core.VersionTracker(true, options as core.VersionTrackerEnvironment),
    top: ["entrydir", "entryDir"],
  },
  {
    name: "createRefreshingCredentials",
    call: (options) => core.createRefreshingCredentials(async () => ({ password: "x" }), options),
    top: ["refreshAhead", "refreshAheadMs"],
    nested: [{ retry: { jiter: 0 } }, "retry.jiter", "jitter"],
  },
  {
    name: "DeliveryPipeline",
    call: (options) => new core.DeliveryPipeline(sink, options),
    top: ["maxBatchsize", "maxBatchSize"],
    nested: [
      { circuitBreaker: { failureTreshold: 2 } },
      "delivery.circuitBreaker.failureTreshold",
      "failureThreshold",
    ],
  },
  {
    name: "DeliveryPipeline (hooks)",
    call: (options) => new core.DeliveryPipeline(sink, {}, options),
    top: ["clok", "clock"],
  },
  {
    name: "resolveDeliveryOptions",
    call: (options) => core.resolveDeliveryOptions(options),
    top: ["flushInterval", "flushIntervalMs"],
    nested: [{ retry: { multiplyer: 2 } }, "delivery.retry.multiplyer", "multiplier"],
  },
  {
    name: "CircuitBreaker",
    call: (options) => new core.CircuitBreaker(options),
    top: ["resetTimeout", "resetTimeoutMs"],
  },
];

async function errorOf(call: () => unknown): Promise<core.ConfigurationError> {
  try {
    await call();
  } catch (error) {
    expect(error).toBeInstanceOf(core.ConfigurationError);
    return error as core.ConfigurationError;
  }
  throw new Error("no ConfigurationError");
}

describe("every public options object rejects a misspelled key", () => {
  it.each(cases)("$name: top level", async ({ call, top: [typo, meant] }) => {
    const error = await errorOf(() => call({ [typo]: 1 }));
    expect(error.message).toContain(`${typo}: unknown option; did you mean \`${meant}\`? (allowed: `);
    expect(error.issues.some((issue) => issue.path.endsWith(typo))).toBe(true);
  });

  it.each(cases.filter((c) => c.nested !== undefined))("$name: nested", async ({ call, nested }) => {
    const [options, path, meant] = nested!;
    const error = await errorOf(() => call(options));
    const issue = error.issues.find((found) => found.path === path);
    expect(issue?.message).toMatch(new RegExp(`^unknown option; did you mean \`${meant}\`\\? \\(allowed: `));
    // The allowed keys are those of the nested object, which include the suggestion.
    expect(issue?.message).toContain(meant);
  });

  it("covers every exported function and class that takes an options object", () => {
    const covered = new Set(cases.map((c) => c.name.split(" ")[0]));
    // Exports without an options object (positional arguments only, or none).
    const withoutOptions = new Set([
      "emit",
      "flush",
      "shutdown",
      "getMetrics",
      "getEventStats",
      "onStateChange",
      "getCurrentSpan",
      "isInstrumented",
      "loadEnvConfig",
      "createId",
      "createEventJsonSchema",
      "formatCompareReport",
      "isRetriableError",
      "abortable",
      "backoffDelay",
      "redactCredentials",
      "ConfigurationError",
      "CredentialError",
      "SinkError",
      "StreamllError",
      "EventDecodeError",
      "WaitForTimeoutError",
    ]);
    const uncovered = Object.entries(core)
      .filter(
        ([name, value]) => typeof value === "function" && !covered.has(name) && !withoutOptions.has(name),
      )
      .map(([name]) => name);
    expect(uncovered).toEqual([]);
  });
});
