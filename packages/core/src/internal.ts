/**
 * Helpers shared by streamll's own packages: the options validator every public constructor and factory uses
 * (see the "Declaring options" section of the core README), and the command front of the command-line tools.
 * Not part of the public API: no semver guarantee, may change in any release.
 *
 * @packageDocumentation
 */
export {
  type CommandSpec,
  parseCommandArgs,
  passwordFromEnv,
  plural,
  redactSecrets,
  runCommand,
  shownNumber,
  UsageError,
  wholeNumber,
} from "./cli/cli-command";
export { type CliIo, createProcessIo, OUTPUT_CLOSED, recordingIo } from "./cli/cli-io";
export { retryOptionsSchema, safeErrorMessage, scrubSecrets } from "./delivery/backoff";
export { deliveryOptionsSchema } from "./delivery/delivery-pipeline";
export { ProcessHold } from "./delivery/process-hold";
export { isConfigurationError } from "./errors";
// Spans and events for integrations (@streamll/ax) that open spans of their own.
export { createSpan, runInSpan, withSpan } from "./instrument/context";
export { HeldTokens } from "./instrument/held-tokens";
export {
  clockNow,
  durationMs,
  emitSpanEvent,
  emitSpanEventRaw,
  errorEventData,
  getRuntime,
  reportInternalError,
  toJson,
} from "./instrument/runtime";
export { awsCredentialsSchema } from "./options/aws-credentials";
export {
  exportsWithoutCases,
  type MisspellingCase,
  misspelledOptionProblems,
} from "./options/misspelling-check";
export { editDistance, nearestName } from "./options/nearest-name";
export { loadOptionalPackages, type OptionalPackage } from "./options/optional-packages";
export {
  acceptedOptionKeys,
  documentedOptionKeys,
  type OptionsTableCase,
  optionsTableProblems,
} from "./options/options-table-check";
export {
  type AnySchema,
  configurationError,
  describeKind,
  type Infer,
  ObjectSchema,
  type ObjectSchemaOptions,
  type OptionIssue,
  optionIssues,
  PassthroughSchema,
  type ReportIssue,
  Schema,
  type Shape,
  timeoutArgument,
  urlSchemeForMessage,
  v,
  validateOptions,
} from "./options/schema";
export { tlsConnectionOptionsSchema } from "./options/tls-options";
export { rotatedJsonlPath } from "./sinks/jsonl-file-sink";
