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

/**
 * The configuration cannot work: an option is unknown, missing, of the wrong type or out of range, an optional
 * package it needs is not installed, or the broker refused it for good (credentials rejected even when fresh,
 * a topic that does not exist). Retrying cannot help; the message names the option or the cause, and `fix`
 * says what to do.
 */
export class ConfigurationError extends StreamllError {
  /** Dotted path of each offending option, e.g. `delivery.maxBatchSize`. */
  readonly issues: readonly { path: string; message: string }[];
  /** What to do about it, when known: the install command, the setting to change. */
  readonly fix: string | undefined;

  constructor(
    message: string,
    issues: readonly { path: string; message: string }[] = [],
    options?: { cause?: unknown; fix?: string },
  ) {
    super(
      "CONFIGURATION_INVALID",
      message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ConfigurationError";
    this.issues = issues;
    this.fix = options?.fix;
  }
}

/**
 * @internal A `ConfigurationError` from this copy of core or another one (a sink package may bring its own):
 * a missing optional SDK, a provider configured wrongly. Every retry would fail the same way, so it ends what
 * it reaches (a sink is marked failed, a reader stops) and is reported once.
 */
export function isConfigurationError(error: unknown): error is Error {
  if (error instanceof ConfigurationError) return true;
  try {
    return error instanceof Error && (error as { code?: unknown }).code === "CONFIGURATION_INVALID";
  } catch {
    return false;
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

/**
 * A credential provider failed (after its retries). The message never includes the credential itself; an
 * error the provider threw is passed on by its type and code (`providerError`) with its message scrubbed of
 * anything secret-shaped, never as `cause`.
 */
export class CredentialError extends StreamllError {
  /** The `name` and `code` of the error the provider threw, when it threw one. */
  readonly providerError: { readonly name: string; readonly code?: string } | undefined;

  constructor(
    message: string,
    options?: { cause?: unknown; providerError?: { readonly name: string; readonly code?: string } },
  ) {
    super(
      "CREDENTIALS_UNAVAILABLE",
      message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "CredentialError";
    this.providerError = options?.providerError;
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
