export {
  createRefreshingCredentials,
  DEFAULT_CREDENTIAL_RETRY,
  type RedactedCredentials,
  type RefreshingCredentials,
  type RefreshingCredentialsOptions,
  redactCredentials,
} from "./auth/credential-cache";
export type { CredentialProvider, Credentials } from "./auth/credential-types";
export { abortable } from "./delivery/abortable";
export { backoffDelay, DEFAULT_RETRY_OPTIONS, type ResolvedRetryOptions } from "./delivery/backoff";
export {
  CircuitBreaker,
  type CircuitBreakerHooks,
  type CircuitTransition,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  type ResolvedCircuitBreakerOptions,
} from "./delivery/circuit-breaker";
export {
  DEFAULT_DELIVERY_OPTIONS,
  DeliveryPipeline,
  type DeliveryPipelineHooks,
  type ResolvedDeliveryOptions,
  resolveDeliveryOptions,
} from "./delivery/delivery-pipeline";
export {
  type CircuitBreakerOptions,
  type CircuitState,
  type Clock,
  type DeliveryLogger,
  type DeliveryOptions,
  DROP_REASONS,
  type DropReason,
  type OverflowPolicy,
  type RetryOptions,
  type SinkDeliveryOptions,
  type SinkMetrics,
  type StateChange,
} from "./delivery/delivery-types";
export { formatSinkMetrics } from "./delivery/format-metrics";
export {
  type EncodedEvent,
  type EventFailure,
  type EventRoute,
  encodedEventFromJson,
  type SendContext,
  type SendResult,
  type Sink,
} from "./delivery/sink";
export {
  DEFAULT_SPILL_OPTIONS,
  type ResolvedSpillOptions,
  type SpillFsyncPolicy,
  type SpillOptions,
} from "./delivery/spill/spill-options";
export type { SpillMetrics } from "./delivery/spill/spill-store";
export { DIAGNOSTICS_CHANNEL, type StreamllDiagnostic } from "./diagnostics";
export {
  ConfigurationError,
  CredentialError,
  isRetriableError,
  SinkError,
  StreamllError,
  type StreamllErrorCode,
} from "./errors";
export {
  DEFAULT_DECODE_MAX_BYTES,
  type DecodeIssue,
  type DecodeOptions,
  type DecodeResult,
  decodeEvent,
  EventDecodeError,
} from "./events/decode-event";
export { DEFAULT_ENCODE_LIMITS, type EncodeLimits, encodeEvent, sanitizeJson } from "./events/encode-event";
export {
  EventDeduplicator,
  type EventDeduplicatorOptions,
  type EventDeduplicatorStats,
} from "./events/event-deduplicator";
export { createEventJsonSchema, EVENT_JSON_SCHEMA_ID } from "./events/event-json-schema";
export {
  BUILTIN_EVENT_TYPES,
  type BuiltinEventType,
  DEFAULT_METHOD_NAME,
  type JsonObject,
  type JsonValue,
  SCHEMA_VERSION,
  type StreamllEvent,
  streamllEventSchema,
} from "./events/event-schema";
export { createId } from "./events/ids";
export { REDACTED, type RedactFunction, type Redactor } from "./events/redact";
export {
  DEFAULT_EXIT_FLUSH_TIMEOUT_MS,
  DEFAULT_JSONL_PATH,
  DEFAULT_REDACT_KEYS,
  type EnvConfig,
  type EnvSinkKind,
  type EventFilter,
  type EventFilterOptions,
  loadEnvConfig,
  type SinkEntry,
  type StreamllLogger,
  type StreamllOptions,
} from "./instrument/configure";
export { getCurrentSpan, type Span } from "./instrument/context";
export {
  type InstrumentDecorator,
  type InstrumentOptions,
  instrument,
  isInstrumented,
  type StreamFieldExtractor,
} from "./instrument/instrument";
export {
  configure,
  type EventStats,
  flush,
  getEventStats,
  getMetrics,
  onStateChange,
  shutdown,
} from "./instrument/runtime";
export { emit, type TraceOptions, trace } from "./instrument/trace";
export { JsonlFileSink, type JsonlFileSinkOptions, type JsonlRotateOptions } from "./sinks/jsonl-file-sink";
export { MemorySink, type MemorySinkOptions, WaitForTimeoutError } from "./sinks/memory-sink";
export { type TerminalOutput, TerminalSink, type TerminalSinkOptions } from "./sinks/terminal-sink";
export {
  type CodeSignatureDetails,
  type CodeSignatureOptions,
  computeCodeSignature,
  computeCodeSignatureDetails,
  type MethodHash,
  type SignatureUnavailableReason,
} from "./version/code-signature";
export {
  COMPARE_REPORT_FORMAT_VERSION,
  type CompareOptions,
  type CompareReport,
  type CompareVerdict,
  compareEventFiles,
  compareEvents,
  type DurationComparison,
  type ErrorRateComparison,
  EventFileError,
  type VersionComparison,
} from "./version/compare/compare-versions";
export { formatCompareReport } from "./version/compare/format-report";
export type { VersionSummary } from "./version/compare/version-aggregator";
export { detectGitCommit, GIT_COMMIT_ENV_VARS, type GitCommitOptions } from "./version/git-commit";
export type {
  CodeSignatureContext,
  CodeSignatureFunction,
  CodeSignatureStrategy,
  CodeSignatureStrategyName,
  ResolvedVersionTrackingOptions,
  VersionTrackingOptions,
} from "./version/options";
export {
  type ProcessVersionInfo,
  type RuntimeInfo,
  type VersionedSpan,
  type VersionRecord,
  VersionTracker,
  type VersionTrackerEnvironment,
} from "./version/version-tracker";
