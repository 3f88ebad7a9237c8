/**
 * Helpers shared by streamll's own packages (the sink packages' command-line tools). Not part of the public
 * API: no semver guarantee, may change in any release.
 *
 * @packageDocumentation
 */
export {
  type CommandSpec,
  passwordFromEnv,
  plural,
  redactSecrets,
  runCommand,
  UsageError,
  wholeNumber,
} from "./cli/cli-command";
export { type CliIo, createProcessIo, OUTPUT_CLOSED, recordingIo } from "./cli/cli-io";
export { rotatedJsonlPath } from "./sinks/jsonl-file-sink";
