import { type EncodedEvent, encodedEvent, encodedEventOf } from "../delivery/sink";
import {
  DEFAULT_METHOD_NAME,
  type JsonObject,
  type JsonValue,
  SCHEMA_VERSION,
  type StreamllEvent,
  streamllEventSchema,
} from "./event-schema";
import type { KeyRedaction } from "./redact";
import {
  DEFAULT_ENCODE_LIMITS,
  type EncodeLimits,
  isBudgetAbort,
  isWellFormed,
  JsonSanitizer,
  type ResolvedLimits,
  resolveLimits,
  sanitizeJson,
  truncateString,
} from "./sanitize-json";

export { DEFAULT_ENCODE_LIMITS, type EncodeLimits, sanitizeJson };

/** Longest tag key and tag value kept; longer ones are cut and end with `…`. */
const MAX_TAG_KEY_LENGTH = 128;
const MAX_TAG_VALUE_LENGTH = 1024;
/** Text fields are cut to this length by the last-resort fallback, which must fit in the smallest event cap. */
const FALLBACK_TEXT_LENGTH = 32;
/** Events up to this multiple of `maxEventBytes` are serialised in full once, so `original_bytes` is exact. */
const MEASURE_FACTOR = 16;
const SHRINK_STEPS = 4;

/** Schema fields in schema order: the order `encodeEvent` writes them in. */
const FIELD_ORDER = [
  "schema_version",
  "event_id",
  "execution_id",
  "span_id",
  "parent_span_id",
  "timestamp",
  "module_name",
  "method_name",
  "event_type",
  "operation",
  "data",
  "tags",
  "module_version",
  "code_signature",
  "git_commit",
] as const;
const KNOWN_FIELDS: ReadonlySet<string> = new Set(FIELD_ORDER);

type Mutable = Record<string, unknown>;

/** A value shown in place of a field of the wrong type, so the mistake stays visible on the wire. */
function looseText(value: unknown): string {
  const sanitized = sanitizeJson(value, {
    maxStringLength: 256,
    maxDepth: 4,
    maxArrayLength: 16,
    maxObjectKeys: 16,
  });
  return typeof sanitized === "string" ? sanitized : JSON.stringify(sanitized);
}

/**
 * A schema string field, capped to the schema's maximum length. With `strict`, lone surrogates are replaced
 * too (the non-strict first pass leaves that to a single check of the final JSON).
 */
function text(value: unknown, max: number, strict: boolean): string | undefined {
  if (typeof value === "string") {
    return value.length <= max && (!strict || isWellFormed(value))
      ? value
      : truncateString(value, max, false);
  }
  if (value === undefined || value === null) return undefined;
  return truncateString(looseText(value), max, false);
}

/** Like {@link text}, for the fields the schema declares nullable: a missing value becomes `null`. */
function nullableText(value: unknown, max: number, strict: boolean): string | null {
  return text(value, max, strict) ?? null;
}

function tags(value: unknown, strict: boolean): Record<string, string> {
  try {
    return tagsChecked(value, strict);
  } catch {
    // A throwing getter or proxy trap in the tags: drop the tags, keep the event.
    return {};
  }
}

function tagsChecked(value: unknown, strict: boolean): Record<string, string> {
  if (typeof value !== "object" || value === null) return {};
  const src = value as Mutable;
  const keys = Object.keys(src);
  let out: Record<string, string> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = src[k];
    const sk =
      k.length <= MAX_TAG_KEY_LENGTH && (!strict || isWellFormed(k))
        ? k
        : truncateString(k, MAX_TAG_KEY_LENGTH, false);
    const sv =
      typeof v === "string"
        ? v.length <= MAX_TAG_VALUE_LENGTH && (!strict || isWellFormed(v))
          ? v
          : truncateString(v, MAX_TAG_VALUE_LENGTH, false)
        : truncateString(looseText(v), MAX_TAG_VALUE_LENGTH, false);
    if (out === undefined) {
      if (sk === k && sv === v) continue;
      out = {};
      for (let j = 0; j < i; j++) {
        const kj = keys[j] as string;
        defineKey(out, kj, src[kj]);
      }
    }
    defineKey(out, sk, sv);
  }
  return out ?? (src as Record<string, string>);
}

function defineKey(target: Mutable, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** The event's fields in schema order (so every sink writes the same JSON), `data` filled in later. */
function header(src: Mutable, strict: boolean): Mutable {
  return {
    schema_version: text(src.schema_version, 32, strict) ?? SCHEMA_VERSION,
    event_id: text(src.event_id, 64, strict),
    execution_id: text(src.execution_id, 64, strict),
    span_id: text(src.span_id, 64, strict),
    parent_span_id: nullableText(src.parent_span_id, 64, strict),
    timestamp: text(src.timestamp, 64, strict),
    module_name: text(src.module_name, 512, strict),
    method_name: text(src.method_name, 512, strict) ?? DEFAULT_METHOD_NAME,
    event_type: text(src.event_type, 128, strict),
    operation: nullableText(src.operation, 512, strict),
    data: null,
    tags: tags(src.tags, strict),
    module_version: nullableText(src.module_version, 512, strict),
    code_signature: nullableText(src.code_signature, 128, strict),
    git_commit: nullableText(src.git_commit, 128, strict),
  };
}

/** The fields the encoder writes as they are, once capped: every one but `data`, which it sanitises. */
const headerSchema = streamllEventSchema.omit({ data: true });

/**
 * @internal True when {@link encodeEvent} writes `event` as an event the schema accepts: its fields other than
 * `data` are valid as the encoder writes them (capped; a missing `method_name` or `schema_version` filled in).
 * False for an event without its ids, with a field of the wrong type, and for anything not an object (a
 * Promise an async redact function returned).
 */
export function encodesValidEvent(event: unknown): boolean {
  if (typeof event !== "object" || event === null || Array.isArray(event)) return false;
  try {
    return headerSchema.safeParse(header(event as Mutable, false)).success;
  } catch {
    // A Proxy whose traps throw.
    return false;
  }
}

/** Top-level fields beyond the schema (added by a later minor version); kept, sanitised like `data`. */
function extraKeys(src: Mutable): string[] | undefined {
  const keys = Object.keys(src);
  // Events built by the runtime have exactly the schema fields in schema order: checking that is cheap.
  if (keys.length <= FIELD_ORDER.length) {
    let i = 0;
    while (i < keys.length && keys[i] === FIELD_ORDER[i]) i++;
    if (i === keys.length) return undefined;
  }
  const extras = keys.filter((k) => !KNOWN_FIELDS.has(k));
  return extras.length > 0 ? extras : undefined;
}

/**
 * JSON.stringify escapes lone surrogates as `\udXXX` (well-formed JSON.stringify), so one scan of the
 * output finds them all; `\\ud…` (an escaped backslash) is a harmless false positive.
 */
function hasEscapedSurrogate(json: string): boolean {
  return json.includes("\\ud");
}

/**
 * The UTF-8 size of JSON text JSON.stringify wrote, or -1 when the text holds an escaped lone surrogate
 * ({@link hasEscapedSurrogate}). Node counts UTF-8 in one native scan, faster than a regex test for non-ASCII
 * that would let ASCII text skip the count (alone in a loop: ~35 against ~65 ns for an ordinary event's data,
 * ~90 against ~350 ns for 400 characters). Both encoders use it: the envelope encoder on the data's JSON, the
 * general one on the whole event's.
 */
function jsonTextBytes(json: string): number {
  return hasEscapedSurrogate(json) ? -1 : Buffer.byteLength(json, "utf8");
}

/** The key that wraps `data` that is not an object; the `$` tells it apart from a user's `value` key. */
const DATA_VALUE_KEY = "$value";

function asDataObject(value: unknown): unknown {
  // The schema requires an object; anything else is wrapped rather than dropped.
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  return { [DATA_VALUE_KEY]: value };
}

/**
 * @internal Sanitised JSON as an event's `data`: an object as it is, anything else (an array, a string from a
 * `Date` …) wrapped as `{ "$value": … }`, the wrapping {@link encodeEvent} applies, so every path writes the same.
 */
export function toDataObject(json: JsonValue): JsonObject {
  return asDataObject(json) as JsonObject;
}

function fill(out: Mutable, src: Mutable, extras: string[] | undefined, sanitizer: JsonSanitizer): void {
  const data = src.data;
  out.data = data === undefined || data === null ? {} : asDataObject(sanitizer.sanitize(data, "data"));
  if (extras !== undefined) {
    for (const k of extras) defineKey(out, k, sanitizer.sanitize(src[k], k));
  }
}

/** One encoding attempt; `undefined` when the result is already known to exceed `budget`. */
function attempt(
  out: Mutable,
  src: Mutable,
  extras: string[] | undefined,
  limits: ResolvedLimits,
  budget: number,
  strict: boolean,
  redactKeys: KeyRedaction | undefined,
): { json: string; est: number } | { json: undefined; est: number } {
  let sanitizer = new JsonSanitizer(limits, budget, false, strict, redactKeys);
  try {
    fill(out, src, extras, sanitizer);
  } catch (error) {
    if (isBudgetAbort(error)) return { json: undefined, est: sanitizer.est };
    throw error;
  }
  try {
    return { json: JSON.stringify(out), est: sanitizer.est };
  } catch {
    // A getter or proxy answered differently when JSON.stringify read it again: copy everything this time,
    // so JSON.stringify only sees values the sanitiser produced.
    sanitizer = new JsonSanitizer(limits, budget, true, strict, redactKeys);
    try {
      fill(out, src, extras, sanitizer);
    } catch (error) {
      if (isBudgetAbort(error)) return { json: undefined, est: sanitizer.est };
      throw error;
    }
    return { json: JSON.stringify(out), est: sanitizer.est };
  }
}

function shrunk(limits: ResolvedLimits, step: number): ResolvedLimits {
  const f = 4 ** step;
  return {
    maxEventBytes: limits.maxEventBytes,
    maxStringLength: Math.max(32, Math.floor(limits.maxStringLength / f)),
    maxArrayLength: Math.max(1, Math.floor(limits.maxArrayLength / f)),
    maxObjectKeys: Math.max(1, Math.floor(limits.maxObjectKeys / f)),
    maxDepth: Math.max(1, Math.floor(limits.maxDepth / 2 ** step)),
  };
}

/** The encoded event for `out`, the event object whose JSON `json` is; `out` itself is not kept. */
function encoded(out: Mutable, json: string, bytes: number): EncodedEvent {
  return encodedEventOf(out, json, bytes);
}

function encodeChecked(
  event: unknown,
  limits: ResolvedLimits,
  redactKeys: KeyRedaction | undefined,
): EncodedEvent {
  const src = (typeof event === "object" && event !== null ? event : {}) as Mutable;
  const extras = extraKeys(src);
  let strict = false;
  let out = header(src, strict);
  const cap = limits.maxEventBytes;

  let first = attempt(out, src, extras, limits, cap * MEASURE_FACTOR, strict, redactKeys);
  let firstBytes = first.json === undefined ? 0 : jsonTextBytes(first.json);
  if (firstBytes < 0) {
    strict = true;
    out = header(src, strict);
    first = attempt(out, src, extras, limits, cap * MEASURE_FACTOR, strict, redactKeys);
    firstBytes = first.json === undefined ? 0 : Buffer.byteLength(first.json, "utf8");
  }
  let originalBytes: number;
  if (first.json !== undefined) {
    if (firstBytes <= cap) return encoded(out, first.json, firstBytes);
    originalBytes = firstBytes;
  } else {
    originalBytes = first.est;
  }

  for (let step = 1; step <= SHRINK_STEPS; step++) {
    // Shrinking always runs strictly: these passes are rare, and must not need yet another re-run.
    if (!strict) {
      strict = true;
      out = header(src, strict);
    }
    const { json } = attempt(out, src, extras, shrunk(limits, step), cap, strict, redactKeys);
    if (json !== undefined) {
      const bytes = Buffer.byteLength(json, "utf8");
      if (bytes <= cap) return encoded(out, json, bytes);
    }
  }

  out.data = { $truncated: true, original_bytes: originalBytes };
  if (extras !== undefined) for (const k of extras) delete out[k];
  let json = JSON.stringify(out);
  let bytes = Buffer.byteLength(json, "utf8");
  if (bytes <= cap) return encoded(out, json, bytes);

  out.tags = {};
  json = JSON.stringify(out);
  bytes = Buffer.byteLength(json, "utf8");
  if (bytes <= cap) return encoded(out, json, bytes);
  return fallback(event, originalBytes);
}

function readField(event: unknown, key: string): unknown {
  try {
    return typeof event === "object" && event !== null ? (event as Mutable)[key] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The last resort: only the identifying fields, each cut short, so the event fits even the smallest cap
 * (4096 bytes) whatever the input. Reads every field on its own so one hostile getter cannot stop it.
 */
function fallback(event: unknown, originalBytes: number | undefined): EncodedEvent {
  try {
    const id = (key: string): string | undefined => {
      const v = readField(event, key);
      return typeof v === "string" ? truncateString(v, 64, false) : undefined;
    };
    const short = (key: string): string | undefined => {
      const v = readField(event, key);
      return typeof v === "string" ? truncateString(v, FALLBACK_TEXT_LENGTH, false) : undefined;
    };
    const version = readField(event, "schema_version");
    const parent = id("parent_span_id");
    const out: Mutable = {
      schema_version: typeof version === "string" && version.length <= 32 ? version : SCHEMA_VERSION,
      event_id: id("event_id"),
      execution_id: id("execution_id"),
      span_id: id("span_id"),
      parent_span_id: parent ?? null,
      timestamp: id("timestamp"),
      module_name: short("module_name"),
      method_name: short("method_name") ?? DEFAULT_METHOD_NAME,
      event_type: short("event_type"),
      operation: short("operation") ?? null,
      data:
        originalBytes === undefined
          ? { $truncated: true }
          : { $truncated: true, original_bytes: originalBytes },
      tags: {},
      module_version: short("module_version") ?? null,
      code_signature: short("code_signature") ?? null,
      git_commit: short("git_commit") ?? null,
    };
    const json = JSON.stringify(out);
    return encoded(out, json, Buffer.byteLength(json, "utf8"));
  } catch {
    const out: Mutable = { schema_version: SCHEMA_VERSION, data: { $truncated: true }, tags: {} };
    const json = JSON.stringify(out);
    return encoded(out, json, json.length);
  }
}

/**
 * Encodes an event for the wire, once for every sink. Never throws, whatever `event` holds.
 *
 * - `data` (and any top-level field a later schema minor adds) is sanitised with {@link sanitizeJson}: values
 *   JSON cannot carry become visible markers, strings/arrays/objects/nesting are capped by `limits`.
 * - Schema string fields are cut to the schema's maximum lengths, tags to 128-character keys and
 *   1024-character values; lone surrogates become U+FFFD everywhere so the JSON is valid UTF-8.
 * - The whole event is kept within `maxEventBytes` (UTF-8): an oversized event is re-encoded with ever smaller
 *   caps, and if that is not enough its `data` becomes `{ "$truncated": true, "original_bytes": n }`.
 *
 * `json` parses to an event `streamllEventSchema` accepts whenever the input's fields other than `data` are
 * valid. The encoded event keeps the JSON and the routing fields only; `tags` may be the input's own object.
 */
export function encodeEvent(event: StreamllEvent, limits?: EncodeLimits): EncodedEvent {
  return encodeRedacting(event, limits, undefined);
}

/**
 * @internal {@link encodeEvent}, with `data` (and top-level extras) redacted by `redactKeys` in the same walk
 * that sanitises it, as a key redactor would redact the sanitised data. `data` is read as given on every pass,
 * so when the event is shrunk to fit, each marker counts what the original held (`[… 4750 more items]`), not
 * what a first pass kept. The header's names and tags must be redacted already (`redactHeader`).
 */
export function encodeRedacting(
  event: StreamllEvent,
  limits: EncodeLimits | undefined,
  redactKeys: KeyRedaction | undefined,
): EncodedEvent {
  const resolved = resolveLimits(limits);
  try {
    return encodeChecked(event, resolved, redactKeys);
  } catch {
    return fallback(event, undefined);
  }
}

/**
 * @internal The fields every event of one module shares, as the runtime passes them: everything but the ids,
 * `event_id`, `timestamp`, `event_type` and `data`.
 */
export interface EnvelopeSource {
  readonly module_name: string;
  readonly method_name: string;
  readonly operation: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly module_version: string | null;
  readonly code_signature: string | null;
  readonly git_commit: string | null;
}

/**
 * @internal A module's shared fields, capped and made well formed exactly as {@link encodeEvent} does, and
 * their JSON cut into the pieces that sit between the fields that change per event. Built once per module and
 * configuration, so each event serialises only its `data`.
 */
export interface Envelope {
  /** The sanitised shared fields, reused by every event object of the module. */
  readonly fields: Readonly<Mutable>;
  /** `","module_name":…,"method_name":…,"event_type":` */
  readonly names: string;
  /** `,"operation":…,"data":` */
  readonly operation: string;
  /** `,"tags":…,"git_commit":…}` */
  readonly tail: string;
  /** UTF-8 bytes of `names`, `operation` and `tail` together. */
  readonly bytes: number;
}

/**
 * @internal Sanitises and serialises a module's shared fields once. `undefined` when they need the general
 * encoder (never for fields built by the runtime).
 */
export function createEnvelope(source: EnvelopeSource): Envelope | undefined {
  try {
    const h = header(source as unknown as Mutable, true);
    if (h.module_name === undefined) return undefined;
    const j = JSON.stringify;
    const names = `","module_name":${j(h.module_name)},"method_name":${j(h.method_name)},"event_type":`;
    const operation = `,"operation":${j(h.operation)},"data":`;
    const tail = `,"tags":${j(h.tags)},"module_version":${j(h.module_version)},"code_signature":${j(h.code_signature)},"git_commit":${j(h.git_commit)}}`;
    const bytes =
      Buffer.byteLength(names, "utf8") +
      Buffer.byteLength(operation, "utf8") +
      Buffer.byteLength(tail, "utf8");
    return { fields: h, names, operation, tail, bytes };
  } catch {
    return undefined;
  }
}

/** A character `createId()` never makes. */
const NOT_ID_CHAR = /[^\w-]/;

/**
 * True for what `createId()` makes (1 to 64 of `A-Z a-z 0-9 _ -`): such ids are written as they are, with no
 * escaping and no cap to apply.
 */
function isPlainId(id: string): boolean {
  return id.length > 0 && id.length <= 64 && !NOT_ID_CHAR.test(id);
}

/**
 * @internal A span's ids and their fragment of an event's JSON. Every span `createSpan` makes is one: its ids
 * are `createId()` ids, so the fragment is built once per span, unchecked.
 */
export interface SpanIds {
  readonly executionId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  /** `","execution_id":…,"parent_span_id":…,"timestamp":"` */
  readonly idsJson: string;
}

/**
 * @internal The ids fragment of a span's events. The ids must be what `createId()` makes (1 to 64 of
 * `A-Z a-z 0-9 _ -`, written as they are, nothing to escape or cap); {@link createSpanIds} checks that.
 */
export function spanIdsJson(executionId: string, spanId: string, parentSpanId: string | null): string {
  const parent = parentSpanId === null ? "null" : `"${parentSpanId}"`;
  return `","execution_id":"${executionId}","span_id":"${spanId}","parent_span_id":${parent},"timestamp":"`;
}

/** @internal The ids of a span made elsewhere; `undefined` unless every id is a plain `createId()` id. */
export function createSpanIds(
  executionId: string,
  spanId: string,
  parentSpanId: string | null,
): SpanIds | undefined {
  if (!isPlainId(executionId) || !isPlainId(spanId)) return undefined;
  if (parentSpanId !== null && !isPlainId(parentSpanId)) return undefined;
  return { executionId, spanId, parentSpanId, idsJson: spanIdsJson(executionId, spanId, parentSpanId) };
}

const HEAD = `{"schema_version":${JSON.stringify(SCHEMA_VERSION)},"event_id":"`;

/**
 * One sanitiser kept for the next event (the walk of an event's data is short; allocating the walker was a
 * noticeable part of it). Taken while in use, so data whose getter emits another event gets its own.
 */
let spareSanitizer: JsonSanitizer | undefined;

function takeSanitizer(limits: ResolvedLimits, redactKeys: KeyRedaction | undefined): JsonSanitizer {
  const spare = spareSanitizer;
  if (spare?.isFor(limits, redactKeys)) {
    spareSanitizer = undefined;
    spare.reset();
    return spare;
  }
  return new JsonSanitizer(limits, limits.maxEventBytes * MEASURE_FACTOR, false, false, redactKeys);
}

/**
 * Serialised event types, so the few distinct types of a program are capped and quoted once each: as given,
 * and with credential-shaped text scrubbed (as a key redactor writes them).
 */
const eventTypeJson = new Map<string, { text: string; json: string; bytes: number }>();
const scrubbedEventTypeJson = new Map<string, { text: string; json: string; bytes: number }>();
const EVENT_TYPE_CACHE_SIZE = 512;

function eventTypeEntry(
  eventType: string,
  redactKeys: KeyRedaction | undefined,
): { text: string; json: string; bytes: number } {
  const scrub = redactKeys !== undefined && redactKeys.size > 0;
  const cache = scrub ? scrubbedEventTypeJson : eventTypeJson;
  let entry = cache.get(eventType);
  if (entry === undefined) {
    const capped = text(scrub ? redactKeys.scrub(eventType) : eventType, 128, true) as string;
    const json = JSON.stringify(capped);
    entry = { text: capped, json, bytes: Buffer.byteLength(json, "utf8") };
    // Types come from code, so few are distinct; a program minting them from data only loses the cache.
    if (cache.size >= EVENT_TYPE_CACHE_SIZE) cache.clear();
    cache.set(eventType, entry);
  }
  return entry;
}

/**
 * @internal Encodes one event from its module's envelope and its span's ids; the result is identical to
 * {@link encodeEvent} of the same event (schema order, caps, markers, exact `bytes`). Returns `undefined`
 * when the event needs the general encoder: data with lone surrogates, over the byte cap, or unreadable.
 *
 * `eventId` and `timestamp` must be ASCII, need no escaping and be at most 64 characters (as `createId()`
 * and `Date#toISOString()` are), and `eventType` must be a string. `data` may be any value: it is sanitised
 * here, and with `redactKeys` redacted in the same walk (as a key redactor would redact the sanitised data).
 *
 * `json` is left as V8 concatenated it: counting bytes per piece keeps `bytes` exact without copying the text
 * on the caller's thread; the first sink that reads it flattens it once.
 */
export function encodeWithEnvelope(
  envelope: Envelope,
  ids: SpanIds,
  eventId: string,
  timestamp: string,
  eventType: string,
  data: unknown,
  limits?: EncodeLimits,
  redactKeys?: KeyRedaction,
): EncodedEvent | undefined {
  const resolved = resolveLimits(limits);
  const cap = resolved.maxEventBytes;
  try {
    const type = eventTypeEntry(eventType, redactKeys);
    let sanitized: unknown = {};
    if (data !== undefined && data !== null) {
      const sanitizer = takeSanitizer(resolved, redactKeys);
      sanitized = asDataObject(sanitizer.sanitize(data, "data"));
      spareSanitizer = sanitizer;
    }
    const dataJson = JSON.stringify(sanitized);
    const dataBytes = jsonTextBytes(dataJson);
    if (dataBytes < 0) return undefined;
    const bytes =
      HEAD.length +
      eventId.length +
      ids.idsJson.length +
      timestamp.length +
      envelope.bytes +
      type.bytes +
      dataBytes;
    if (bytes > cap) return undefined;
    const json =
      HEAD +
      eventId +
      ids.idsJson +
      timestamp +
      envelope.names +
      type.json +
      envelope.operation +
      dataJson +
      envelope.tail;
    const f = envelope.fields;
    return encodedEvent(
      SCHEMA_VERSION,
      eventId,
      ids.executionId,
      ids.spanId,
      timestamp,
      f.module_name as string,
      f.method_name as string,
      type.text,
      f.operation as string | null,
      f.tags as Record<string, string>,
      json,
      bytes,
    );
  } catch {
    // Budget abort, a hostile getter or toJSON: the general encoder knows how to recover from each.
    return undefined;
  }
}
