import { describe, expect, it } from "vitest";
import * as core from "./index";
import { exportsWithoutCases, type MisspellingCase, misspelledOptionProblems } from "./internal";

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
  method_name: "forward",
  event_type: "start",
  operation: null,
  module_version: null,
  code_signature: null,
  git_commit: null,
  data: {},
  tags: {},
} satisfies core.StreamllEvent;

const cases: readonly MisspellingCase[] = [
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
    name: "DeliveryPipeline (spill)",
    call: (options) => new core.DeliveryPipeline(sink, options),
    top: ["spil", "spill"],
    nested: [
      { spill: { directory: "/nonexistent-streamll-spill", maxByte: 4096 } },
      "delivery.spill.maxByte",
      "maxBytes",
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
    name: "EventDeduplicator",
    call: (options) => new core.EventDeduplicator(options as core.EventDeduplicatorOptions),
    top: ["maxId", "maxIds"],
  },
  {
    name: "CircuitBreaker",
    call: (options) => new core.CircuitBreaker(options),
    top: ["resetTimeout", "resetTimeoutMs"],
  },
];

describe("every public options object rejects a misspelled key", () => {
  it("names the path, the meant key and the allowed keys, at the top level and nested", async () => {
    expect(await misspelledOptionProblems(cases)).toEqual([]);
  });

  it("covers every exported function and class that takes an options object", () => {
    // Exports without an options object (positional arguments only, or none).
    const withoutOptions = [
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
      "EventFileError",
      "WaitForTimeoutError",
      "formatSinkMetrics",
      "encodedEventFromJson",
    ];
    expect(exportsWithoutCases([core], cases, withoutOptions)).toEqual([]);
  });
});
