import { channel } from "node:diagnostics_channel";

/**
 * The `node:diagnostics_channel` name streamll publishes its own permanent failures on, so a tool (an APM
 * agent, a health check) can subscribe: `subscribe("streamll:diagnostics", (message) => …)`. Each message is a
 * {@link StreamllDiagnostic}. The same failure is also reported once through the configured logger (stderr by
 * default).
 */
export const DIAGNOSTICS_CHANNEL = "streamll:diagnostics";

/** A permanent failure streamll stopped retrying: what, why, and what to do about it. */
export interface StreamllDiagnostic {
  /** `sink-failed`: a sink's configuration cannot work; its events are dropped as `sink-failed`. */
  readonly type: "sink-failed";
  /** The sink's name, as in `getMetrics()`. */
  readonly sink: string;
  /** The error's code, e.g. `CONFIGURATION_INVALID`. */
  readonly code: string;
  /** What went wrong, without secrets. */
  readonly message: string;
  /** What to do: the install command, the setting to change. */
  readonly fix?: string;
  /** ISO-8601 time. */
  readonly at: string;
}

const diagnostics = channel(DIAGNOSTICS_CHANNEL);

/** Publishes `diagnostic` to the subscribers of {@link DIAGNOSTICS_CHANNEL}; a throwing subscriber is ignored. */
export function publishDiagnostic(diagnostic: StreamllDiagnostic): void {
  if (!diagnostics.hasSubscribers) return;
  try {
    diagnostics.publish(diagnostic);
  } catch {
    // A subscriber's failure must not reach the pipeline.
  }
}

/** The line a logger gets for `diagnostic`. */
export function describeDiagnostic(diagnostic: StreamllDiagnostic): string {
  // A message that already ends with its fix (a missing package's install command) is not told it twice.
  const fix =
    diagnostic.fix === undefined || diagnostic.message.includes(diagnostic.fix)
      ? ""
      : ` Fix: ${diagnostic.fix}.`;
  return `sink ${diagnostic.sink} failed permanently and is not retried: ${diagnostic.message}.${fix} Its events are dropped (counted as sink-failed) until streamll is configured again.`;
}
