import { StreamllError } from "../errors";
import { type StreamllEvent, streamllEventSchema } from "./event-schema";

/** One reason an input is not a valid streamll event. */
export interface DecodeIssue {
  /** Dotted path of the offending field, e.g. `timestamp` or `tags.env`; empty for the input as a whole. */
  readonly path: string;
  readonly message: string;
}

/**
 * An input could not be decoded into a streamll event: invalid UTF-8, invalid JSON, not a JSON object, too
 * large, an unsupported major `schema_version`, or a field that does not match the schema. The message names
 * the first offending field (`timestamp: must be an ISO-8601 UTC timestamp ending in Z`); `issues` lists all.
 * Neither carries the input itself, which may be large or sensitive.
 */
export class EventDecodeError extends StreamllError {
  readonly issues: readonly DecodeIssue[];

  constructor(issues: readonly DecodeIssue[], options?: { cause?: unknown }) {
    super("EVENT_DECODE_FAILED", describeIssues(issues), options);
    this.name = "EventDecodeError";
    this.issues = issues;
  }
}

/** What {@link decodeEvent} returns: it reports failures as values and never throws. */
export type DecodeResult = { ok: true; event: StreamllEvent } | { ok: false; error: EventDecodeError };

/** Options for {@link decodeEvent}. */
export interface DecodeOptions {
  /** Inputs larger than this many UTF-8 bytes are rejected without parsing (default 1 MiB). */
  maxBytes?: number;
}

/** The default `maxBytes` of {@link decodeEvent}: 1 MiB. */
export const DEFAULT_DECODE_MAX_BYTES = 1_048_576;

/** The major `schema_version` this decoder reads; minor versions only add fields, so any `1.x` is accepted. */
const SUPPORTED_MAJOR = "1";

function describeIssues(issues: readonly DecodeIssue[]): string {
  const first = issues[0];
  if (first === undefined) return "invalid streamll event";
  const head = first.path === "" ? first.message : `${first.path}: ${first.message}`;
  const rest = issues.length - 1;
  return rest > 0 ? `${head} (and ${rest} more issue${rest === 1 ? "" : "s"})` : head;
}

function failure(path: string, message: string, cause?: unknown): DecodeResult {
  return {
    ok: false,
    error: new EventDecodeError([{ path, message }], cause === undefined ? undefined : { cause }),
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    const s = typeof segment === "symbol" ? segment.toString() : String(segment);
    out = out === "" ? s : `${out}.${s}`;
  }
  return out;
}

/**
 * Parses and validates one event from the wire (a Redis field, a Kafka or RabbitMQ message body, a JSONL line).
 * Never throws: every failure comes back as `{ ok: false, error }` with an {@link EventDecodeError}.
 *
 * Accepts any `1.x` `schema_version` and keeps fields it does not know (added by later minor versions);
 * rejects other major versions. A UTF-8 byte order mark is ignored.
 */
export function decodeEvent(input: string | Uint8Array, options?: DecodeOptions): DecodeResult {
  try {
    const maxBytes = resolveMaxBytes(options);
    let text: string;
    if (typeof input === "string") {
      // Each UTF-16 code unit is at least one UTF-8 byte, so only long strings need an exact count.
      if (
        input.length > maxBytes ||
        (input.length * 3 > maxBytes && Buffer.byteLength(input, "utf8") > maxBytes)
      ) {
        return failure("", `input is larger than maxBytes (${maxBytes} bytes)`);
      }
      text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
    } else if (input instanceof Uint8Array) {
      if (input.byteLength > maxBytes) {
        return failure("", `input is ${input.byteLength} bytes, larger than maxBytes (${maxBytes} bytes)`);
      }
      try {
        text = utf8.decode(input);
      } catch (error) {
        return failure("", "input is not valid UTF-8", error);
      }
    } else {
      return failure("", "input must be a string or a Uint8Array");
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return failure("", `input is not valid JSON (${detail})`, error);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      const kind = parsed === null ? "null" : Array.isArray(parsed) ? "an array" : `a ${typeof parsed}`;
      return failure("", `must be a JSON object, got ${kind}`);
    }

    const version = (parsed as { schema_version?: unknown }).schema_version;
    if (
      typeof version === "string" &&
      /^\d+\.\d+$/.test(version) &&
      version.split(".")[0] !== SUPPORTED_MAJOR
    ) {
      return failure(
        "schema_version",
        `unsupported major version ${version} (this decoder reads ${SUPPORTED_MAJOR}.x)`,
      );
    }

    const result = streamllEventSchema.safeParse(parsed);
    if (result.success) return { ok: true, event: result.data };
    const issues = result.error.issues.map((issue) => ({
      path: formatPath(issue.path),
      message: issue.message,
    }));
    return { ok: false, error: new EventDecodeError(issues) };
  } catch (error) {
    return failure("", "input could not be decoded", error);
  }
}

function resolveMaxBytes(options: DecodeOptions | undefined): number {
  const value = options?.maxBytes;
  return typeof value === "number" && value > 0 ? value : DEFAULT_DECODE_MAX_BYTES;
}
