/**
 * Every error streamll raises on purpose is a `StreamllError` with a stable `code`, so callers can branch on
 * `error.code` instead of parsing messages. Messages never contain secrets.
 */
export type StreamllErrorCode =
  | "CONFIGURATION_INVALID"
  | "EVENT_DECODE_FAILED"
  | "SINK_SEND_FAILED"
  | "SINK_EVENT_REJECTED"
  | "SINK_CLOSED"
  | "SEND_TIMEOUT"
  | "CREDENTIALS_UNAVAILABLE";

export class StreamllError<Code extends string = StreamllErrorCode> extends Error {
  /** Stable, machine-readable reason. Sink packages extend the set with their own codes. */
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StreamllError";
    this.code = code;
  }
}

/** A configuration option is missing, has the wrong type, or is out of range. The message names the option. */
export class ConfigurationError extends StreamllError {
  /** Dotted path of each offending option, e.g. `delivery.maxBatchSize`. */
  readonly issues: readonly { path: string; message: string }[];

  constructor(
    message: string,
    issues: readonly { path: string; message: string }[] = [],
    options?: { cause?: unknown },
  ) {
    super("CONFIGURATION_INVALID", message, options);
    this.name = "ConfigurationError";
    this.issues = issues;
  }
}

/**
 * A sink failed to deliver. `retriable: false` means retrying cannot help (the broker rejected the event as
 * too large, malformed, or forbidden): the pipeline drops and counts it instead of retrying.
 */
export class SinkError extends StreamllError {
  readonly retriable: boolean;

  constructor(
    message: string,
    options: {
      retriable: boolean;
      code?: "SINK_SEND_FAILED" | "SINK_EVENT_REJECTED" | "SINK_CLOSED" | "SEND_TIMEOUT";
      cause?: unknown;
    },
  ) {
    super(options.code ?? (options.retriable ? "SINK_SEND_FAILED" : "SINK_EVENT_REJECTED"), message, {
      cause: options.cause,
    });
    this.name = "SinkError";
    this.retriable = options.retriable;
  }
}

/** A credential provider failed (after its retries). The message never includes the credential itself. */
export class CredentialError extends StreamllError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CREDENTIALS_UNAVAILABLE", message, options);
    this.name = "CredentialError";
  }
}

/**
 * True unless the error says otherwise: network failures, timeouts and unknown errors are worth retrying;
 * only an explicit `SinkError` with `retriable: false` is not.
 */
export function isRetriableError(error: unknown): boolean {
  if (error instanceof SinkError) return error.retriable;
  if (typeof error === "object" && error !== null && "retriable" in error) {
    return (error as { retriable: unknown }).retriable !== false;
  }
  return true;
}
