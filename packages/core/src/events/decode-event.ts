import { StreamllError } from "../errors";
import { v, validateOptions } from "../options/schema";
import { type StreamllEvent, streamllEventSchema } from "./event-schema";

/** One reason an input is not a valid streamll event. */
export interface DecodeIssue {
  /**
   * Dotted path of the offending field, e.g. `timestamp`; keys the input chose (tag names) show as `*`, e.g.
   * `tags.*`, since they may be anything; empty for the input as a whole.
   */
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

/** `DecodeOptions` as `decodeEvent()` checks them. */
export const decodeOptionsSchema = v.object<DecodeOptions>({
  maxBytes: v.integer({ min: 1 }).optional(),
});

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

/**
 * A failed decode. Never with the parser's error as `cause`: JSON.parse and friends quote the rejected text,
 * and decode errors travel to CLI output, Redis dead-letter entries and Kafka dead-letter headers.
 */
function failure(path: string, message: string): DecodeResult {
  return { ok: false, error: new EventDecodeError([{ path, message }]) };
}

/** Where JSON.parse stopped, from its message, without the quoted input the message may also carry. */
function jsonErrorPosition(error: unknown): string {
  const match = error instanceof Error ? /\bat position (\d+)/.exec(error.message) : null;
  return match === null ? "" : ` (at position ${match[1]})`;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The event's own field names: the only keys of the input a path may show. */
const FIELD_NAMES: ReadonlySet<string> = new Set(Object.keys(streamllEventSchema.shape));

/**
 * The path of an issue, without the input's own keys: below a field, the keys are the input's (a tag name, a
 * data key) and may be anything, a secret included, so each is shown as `*` (array indexes stay).
 */
function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((segment, depth) => {
      if (typeof segment === "number") return String(segment);
      if (depth === 0 && typeof segment === "string" && FIELD_NAMES.has(segment)) return segment;
      return "*";
    })
    .join(".");
}

/**
 * Parses and validates one event from the wire (a Redis field, a Kafka or RabbitMQ message body, a JSONL line).
 * Never throws for any input: every failure comes back as `{ ok: false, error }` with an
 * {@link EventDecodeError} whose message and issues never quote the input. Options that are not valid throw a
 * `ConfigurationError`.
 *
 * Accepts any `1.x` `schema_version` and keeps fields it does not know (added by later minor versions);
 * rejects other major versions. A UTF-8 byte order mark is ignored.
 */
export function decodeEvent(input: string | Uint8Array, options?: DecodeOptions): DecodeResult {
  if (options !== undefined) validateOptions("decodeEvent()", decodeOptionsSchema, options);
  try {
    const maxBytes = options?.maxBytes ?? DEFAULT_DECODE_MAX_BYTES;
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
      } catch {
        return failure("", "input is not valid UTF-8");
      }
    } else {
      return failure("", "input must be a string or a Uint8Array");
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return failure("", `input is not valid JSON${jsonErrorPosition(error)}`);
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
  } catch {
    return failure("", "input could not be decoded");
  }
}
