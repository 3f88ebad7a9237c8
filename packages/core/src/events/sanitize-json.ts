import { types } from "node:util";
import { scrubErrorText } from "../delivery/backoff";
import { v, validateOptions } from "../options/schema";
import type { JsonValue } from "./event-schema";
import {
  BINARY_VALUE,
  binaryHoldsCredential,
  bytesHoldCredential,
  type KeyRedaction,
  namedValueKey,
  REDACT_VALUE,
  REDACTED,
  redactedPair,
  redactPairValues,
  SCRUB_KEY,
  scrubKeyNames,
} from "./redact";

/**
 * Module-local copies of the bits `plain` tests for every key: a read of an imported binding is a property read
 * under some module loaders (vitest's transform), which cost the emit path ~15 ns per key in its tests.
 */
const VALUE_BIT = REDACT_VALUE;
const KEY_BIT = SCRUB_KEY;
const BYTES_BIT = BINARY_VALUE;
/** The key of the object a Map becomes. */
const MAP_KEY = "$map";

/**
 * Size limits applied while encoding an event. Every limit is optional and takes its default from
 * {@link DEFAULT_ENCODE_LIMITS} when missing; a limit outside its documented range, a non-integer or an
 * unknown key is a `ConfigurationError` (from `configure()`, `encodeEvent()` and `sanitizeJson()` alike).
 */
export interface EncodeLimits {
  /**
   * Maximum UTF-8 size of the whole encoded event in bytes (default 65536, minimum 4096). Larger events are
   * shrunk step by step and, as a last resort, their `data` is replaced by `{ "$truncated": true, ... }`.
   */
  maxEventBytes?: number;
  /**
   * Maximum length of any string inside `data`, in UTF-16 code units (default 16384, minimum 32). Longer strings
   * keep their head and end with `…[truncated N chars]`. Also caps object keys and the base64 of binary data.
   */
  maxStringLength?: number;
  /** Maximum nesting of objects and arrays below `data` (default 32, from 1 to 256). Deeper ones become `"[MaxDepth]"`. */
  maxDepth?: number;
  /** Maximum items kept per array, Map or Set (default 1000, minimum 1); the rest become `"[… N more items]"`. */
  maxArrayLength?: number;
  /** Maximum keys kept per object (default 1000, minimum 1); the rest are counted in a `"$more_keys"` entry. */
  maxObjectKeys?: number;
}

/** The limits `encodeEvent` and `sanitizeJson` use when none are given. */
export const DEFAULT_ENCODE_LIMITS: Readonly<Required<EncodeLimits>> = Object.freeze({
  maxEventBytes: 65_536,
  maxStringLength: 16_384,
  maxDepth: 32,
  maxArrayLength: 1000,
  maxObjectKeys: 1000,
});

/** @internal Limits after defaults and clamping. */
export interface ResolvedLimits {
  readonly maxEventBytes: number;
  readonly maxStringLength: number;
  readonly maxDepth: number;
  readonly maxArrayLength: number;
  readonly maxObjectKeys: number;
}

/** @internal The smallest allowed `maxEventBytes`: the fallback event is guaranteed to fit in it. */
const MIN_EVENT_BYTES = 4096;
const MIN_STRING_LENGTH = 32;
const MAX_DEPTH_LIMIT = 256;
/** @internal Strings longer than this many `maxStringLength`s are cut to it before the credential scan. */
export const SCRUB_WINDOW = 4;
/** Stacks are capped on top of `maxStringLength`: past a few KiB a stack trace adds size, not insight. */
const MAX_STACK_LENGTH = 4096;

/** Marker strings and keys, exported for tests and documentation. */
export const MARKERS = Object.freeze({
  circular: "[Circular]",
  maxDepth: "[MaxDepth]",
  undefined: "[undefined]",
  nan: "[NaN]",
  infinity: "[Infinity]",
  negativeInfinity: "[-Infinity]",
  invalidDate: "[Invalid Date]",
  unreadable: "[Unreadable]",
  moreKeys: "$more_keys",
});

/** `EncodeLimits` within the ranges documented on each limit. */
export const encodeLimitsSchema = v.object<EncodeLimits>({
  maxEventBytes: v.integer({ min: MIN_EVENT_BYTES }).optional(),
  maxStringLength: v.integer({ min: MIN_STRING_LENGTH, max: 2 ** 30 }).optional(),
  maxDepth: v.integer({ min: 1, max: MAX_DEPTH_LIMIT }).optional(),
  maxArrayLength: v.integer({ min: 1, max: 2 ** 32 }).optional(),
  maxObjectKeys: v.integer({ min: 1, max: 2 ** 32 }).optional(),
});

let lastLimitsInput: EncodeLimits | undefined;
let lastLimitsResolved: ResolvedLimits | undefined;

const DEFAULT_RESOLVED: ResolvedLimits = { ...DEFAULT_ENCODE_LIMITS };

/**
 * @internal Checks limits and applies defaults.
 * @throws ConfigurationError for limits out of range or unknown keys.
 */
export function resolveLimits(limits: EncodeLimits | undefined): ResolvedLimits {
  if (limits === undefined || limits === null) return DEFAULT_RESOLVED;
  // The runtime passes the same frozen limits object for every event; it is checked once.
  if (limits === lastLimitsInput && lastLimitsResolved !== undefined) return lastLimitsResolved;
  validateOptions("encode limits", encodeLimitsSchema, limits);
  const d = DEFAULT_ENCODE_LIMITS;
  const resolved: ResolvedLimits = {
    maxEventBytes: limits.maxEventBytes ?? d.maxEventBytes,
    maxStringLength: limits.maxStringLength ?? d.maxStringLength,
    maxDepth: limits.maxDepth ?? d.maxDepth,
    maxArrayLength: limits.maxArrayLength ?? d.maxArrayLength,
    maxObjectKeys: limits.maxObjectKeys ?? d.maxObjectKeys,
  };
  // Only frozen inputs are cached: a mutable object could change between calls.
  if (Object.isFrozen(limits)) {
    lastLimitsInput = limits;
    lastLimitsResolved = resolved;
  }
  return resolved;
}

interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** @internal Replaces lone surrogates with U+FFFD so the string encodes to valid UTF-8. */
function toWellFormed(s: string): string {
  const w = s as unknown as WellFormedString;
  return w.isWellFormed() ? s : w.toWellFormed();
}

/** @internal True when `s` has no lone surrogates. */
export function isWellFormed(s: string): boolean {
  return (s as unknown as WellFormedString).isWellFormed();
}

/**
 * @internal Cuts `s` to at most `max` code units without splitting a surrogate pair, and makes it well formed.
 * With `suffix`, the cut string ends with `…[truncated N chars]` (which may exceed `max`).
 */
export function truncateString(s: string, max: number, suffix: boolean): string {
  if (s.length <= max) return toWellFormed(s);
  let cut = suffix ? max : max - 1;
  if (cut > 0) {
    const c = s.charCodeAt(cut - 1);
    if (c >= 0xd800 && c <= 0xdbff) cut--;
  }
  const head = toWellFormed(s.slice(0, cut));
  return suffix ? `${head}…[truncated ${s.length - cut} chars]` : `${head}…`;
}

/** Thrown internally (never escapes) when the output is already known to exceed the byte budget. */
const ABORT: unique symbol = Symbol("streamll.encode.abort");

/** @internal Thrown by {@link JsonSanitizer.sanitize} when the budget is exceeded. */
export function isBudgetAbort(error: unknown): boolean {
  return error === ABORT;
}

function setProp(target: Record<string, unknown>, key: string, value: unknown): void {
  // A plain assignment of "__proto__" would replace the prototype instead of creating a key.
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

function moreItems(n: number): string {
  return `[… ${n} more items]`;
}

type ToJSON = (this: unknown, key: string) => unknown;

/**
 * @internal One sanitising pass. Walks the value, returning the input itself for every subtree that is
 * already JSON-safe (so plain data is not copied) and fresh objects only where something had to change.
 *
 * `est` is a lower bound of the length of the JSON text of everything sanitised so far (each UTF-16 code unit
 * is at least one UTF-8 byte), so once it exceeds `budget` the pass aborts: the result cannot fit anyway, and
 * the work stays proportional to the budget rather than to the input.
 */
export class JsonSanitizer {
  est = 0;
  private readonly stack: object[] = [];

  constructor(
    private readonly limits: ResolvedLimits,
    private readonly budget: number,
    /** Copy every container, so the result shares nothing with the input (used when the input misbehaves). */
    private readonly copyAll: boolean,
    /**
     * Check every string and key for lone surrogates. `encodeEvent` skips the per-string check and instead
     * looks for escaped surrogates in the final JSON once, re-running strictly only when it finds one.
     */
    private readonly strict: boolean,
    /**
     * Keys whose values become `"[REDACTED]"` (unread) in every object of the output, and credential-shaped
     * text scrubbed from every string and every object key: the same result as sanitising first and redacting
     * the sanitised JSON after, in one walk.
     */
    private readonly redactKeys?: KeyRedaction,
  ) {}

  /** True when this sanitiser was made for these settings, so it may serve another value after {@link reset}. */
  isFor(limits: ResolvedLimits, redactKeys: KeyRedaction | undefined): boolean {
    return this.limits === limits && this.redactKeys === redactKeys && !this.copyAll && !this.strict;
  }

  /** Forgets the previous value's byte estimate and stack (after a pass that may have been aborted). */
  reset(): void {
    this.est = 0;
    // Balanced after a completed pass; only an aborted one leaves entries (and truncating costs a runtime call).
    if (this.stack.length !== 0) this.stack.length = 0;
  }

  /** Sanitises one value; throws only the internal abort signal when over budget. */
  sanitize(value: unknown, key: string | number = ""): JsonValue {
    return this.walk(value, 0, key) as JsonValue;
  }

  private add(n: number): void {
    this.est += n;
    if (this.est > this.budget) throw ABORT;
  }

  /**
   * `s` as written: credential-shaped text scrubbed (and first `scrubText`, for error text), then cut to `max`
   * with `…[truncated N chars]`. Credentials are scrubbed before the cut, so a secret cannot be half kept; a
   * huge string is scanned only as far as the cut could reach (scanning 10 MB whole took the caller seconds),
   * and text past that window is never shown: N counts what was cut of the scanned part.
   */
  private str(s: string, scrubText?: (text: string) => string, max = this.limits.maxStringLength): string {
    let text = s;
    if (this.redactKeys !== undefined || scrubText !== undefined) {
      const window = SCRUB_WINDOW * max;
      if (s.length > window) text = s.slice(0, window);
      if (scrubText !== undefined) text = scrubText(text);
      if (this.redactKeys !== undefined) text = this.redactKeys.scrub(text);
    }
    const out =
      text.length > max
        ? truncateString(text, max, true)
        : !this.strict || isWellFormed(text)
          ? text
          : toWellFormed(text);
    this.add(out.length + 2);
    return out;
  }

  private walk(value: unknown, depth: number, key: string | number): unknown {
    switch (typeof value) {
      case "string":
        return this.str(value);
      case "number":
        if (Number.isFinite(value)) {
          this.add(1);
          return value;
        }
        return this.str(
          Number.isNaN(value) ? MARKERS.nan : value > 0 ? MARKERS.infinity : MARKERS.negativeInfinity,
        );
      case "boolean":
        this.add(4);
        return value;
      case "bigint":
        return this.str(`${value}n`);
      case "undefined":
        return this.str(MARKERS.undefined);
      case "symbol":
        return this.str(symbolMarker(value));
      case "function":
        return this.str(functionMarker(value));
      default:
        if (value === null) {
          this.add(4);
          return null;
        }
        return this.object(value as object, depth, key);
    }
  }

  private onStack(value: object): boolean {
    const stack = this.stack;
    for (let i = stack.length - 1; i >= 0; i--) if (stack[i] === value) return true;
    return false;
  }

  private object(value: object, depth: number, key: string | number): unknown {
    if (depth > this.limits.maxDepth) return this.str(MARKERS.maxDepth);
    if (this.onStack(value)) return this.str(MARKERS.circular);
    const mark = this.est;
    this.stack.push(value);
    try {
      return this.classify(value, depth, key, false);
    } catch (error) {
      if (error === ABORT) throw error;
      // A trap, getter or toJSON threw (or the input is too deep for the stack): keep the rest of the event.
      this.est = mark;
      return this.str(MARKERS.unreadable);
    } finally {
      this.stack.pop();
    }
  }

  private classify(value: object, depth: number, key: string | number, fromToJSON: boolean): unknown {
    if (Array.isArray(value)) {
      if (!fromToJSON) {
        const toJSON: unknown = (value as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === "function") return this.viaToJSON(value, toJSON as ToJSON, depth, key);
      }
      return this.array(value, depth, fromToJSON || this.copyAll);
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      if (!fromToJSON) {
        const toJSON: unknown = (value as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === "function") return this.viaToJSON(value, toJSON as ToJSON, depth, key);
      }
      return this.plain(value as Record<string, unknown>, depth, fromToJSON || this.copyAll);
    }
    return this.special(value, depth, key, fromToJSON);
  }

  private special(value: object, depth: number, key: string | number, fromToJSON: boolean): unknown {
    if (types.isDate(value)) {
      const time = Date.prototype.getTime.call(value);
      return this.str(Number.isNaN(time) ? MARKERS.invalidDate : new Date(time).toISOString());
    }
    if (types.isNativeError(value) || value instanceof Error) return this.error(value as Error, depth);
    if (types.isMap(value)) return this.map(value as Map<unknown, unknown>, depth);
    if (types.isSet(value)) return this.set(value as Set<unknown>, depth);
    if (types.isArrayBufferView(value)) {
      const view = value as ArrayBufferView;
      return this.bytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
    if (types.isAnyArrayBuffer(value)) return this.bytes(new Uint8Array(value as ArrayBuffer));
    if (types.isBoxedPrimitive(value)) return this.walk(unbox(value), depth, key);
    if (types.isRegExp(value)) return this.str(RegExp.prototype.toString.call(value));
    if (!fromToJSON) {
      const toJSON: unknown = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") return this.viaToJSON(value, toJSON as ToJSON, depth, key);
    }
    // A client, a service, a connection: an object with behaviour often holds credentials (an AI provider's
    // API key, a pool's password) and is never what a reader wants in an event. Only its type is recorded.
    const type = serviceTypeOf(value);
    if (type !== undefined) {
      this.add(type.length + 12);
      return { $type: type };
    }
    // Instances of data-only classes and exotic objects: their own enumerable properties, as JSON.stringify
    // would see them.
    return this.plain(value as Record<string, unknown>, depth, true);
  }

  private viaToJSON(value: object, toJSON: ToJSON, depth: number, key: string | number): unknown {
    // Array indices are passed around as numbers so the common path allocates no index strings.
    const result = toJSON.call(value, String(key));
    if (typeof result !== "object" || result === null) return this.walk(result, depth, key);
    // Like JSON.stringify, the result's own toJSON is not called again; copying it drops the method.
    if (result === value) return this.classify(value, depth, key, true);
    if (this.onStack(result)) return this.str(MARKERS.circular);
    this.stack.push(result);
    try {
      return this.classify(result, depth, key, true);
    } finally {
      this.stack.pop();
    }
  }

  private plain(obj: Record<string, unknown>, depth: number, copy: boolean): unknown {
    const keys = Object.keys(obj);
    const n = keys.length;
    const maxKeys = this.limits.maxObjectKeys;
    const limit = Math.min(n, maxKeys);
    let out: Record<string, unknown> | undefined = copy || limit < n ? {} : undefined;
    const redact = this.redactKeys;
    /** The kept keys as written, once one of them turned out to hold a credential (see `scrubKeyNames`). */
    let written: readonly string[] | undefined;
    // `{ name: "Authorization", value: "…" }`: the value is redacted as the property it names would be.
    // With keys cut, the sanitised object holds the kept keys and the marker; the entry is looked for in those.
    const named =
      redact === undefined
        ? undefined
        : namedValueOf(obj, limit < n ? [...keys.slice(0, limit), MARKERS.moreKeys] : keys, redact);
    this.add(2);
    // A key is read as far as its cut could reach, as a string value is: matching and scrubbing a 10 MB key
    // whole took seconds. The part past the window is never written.
    const window = SCRUB_WINDOW * this.limits.maxStringLength;
    for (let i = 0; i < limit; i++) {
      const k = keys[i] as string;
      const seen = k.length > window ? k.slice(0, window) : k;
      // One cached lookup per key; 0 (nothing to do) for almost every key.
      const actions = redact === undefined ? 0 : redact.actionsOf(seen) | (k === named ? VALUE_BIT : 0);
      let name = seen;
      if ((actions & KEY_BIT) !== 0 && redact !== undefined) {
        // Every kept key is needed to keep scrubbed keys apart from the others; rare, so done only here.
        written ??= scrubKeyNames(
          keys.slice(0, limit).map((key) => (key.length > window ? key.slice(0, window) : key)),
          redact,
        );
        name = written[i] as string;
      }
      // Credentials are scrubbed before the cut, as in strings, so a secret cannot be half kept.
      const sk =
        name.length > this.limits.maxStringLength || (this.strict && !isWellFormed(name))
          ? this.keyOf(name)
          : name;
      this.add(sk.length + (i > 0 ? 4 : 3));
      let v: unknown;
      let sv: unknown;
      try {
        if ((actions & VALUE_BIT) !== 0) {
          v = ABORT;
          sv = this.str(REDACTED);
        } else {
          v = obj[k];
          // A Map sanitised earlier (`{"$map": [[key, value], …]}`): values under redacted names, as in an object.
          const walked =
            n === 1 && k === MAP_KEY && redact !== undefined
              ? redactPairValues(v, redact, this.limits.maxArrayLength)
              : v;
          sv = this.walk(walked, depth + 1, k);
          // Binary data written as base64 earlier: redacted whole when its bytes hold a credential.
          if ((actions & BYTES_BIT) !== 0 && typeof sv === "string" && binaryHoldsCredential(sv, redact!)) {
            sv = REDACTED;
          }
        }
      } catch (error) {
        if (error === ABORT) throw error;
        v = ABORT;
        sv = this.str(MARKERS.unreadable);
      }
      if (out === undefined) {
        if (sv === v && sk === k) continue;
        out = {};
        for (let j = 0; j < i; j++) {
          const kj = keys[j] as string;
          setProp(out, kj, obj[kj]);
        }
      }
      setProp(out, sk, sv);
    }
    if (out === undefined) return obj;
    if (limit < n) {
      this.add(MARKERS.moreKeys.length + 8);
      setProp(out, MARKERS.moreKeys, n - limit);
      this.redactMade(out, MARKERS.moreKeys);
    }
    return out;
  }

  /**
   * Redacts in an object the sanitiser made itself (markers such as `$error` or `$bytes`), as redacting the
   * sanitised JSON afterwards would. `only` names the one key to check when the object has no other.
   */
  private redactMade(out: Record<string, unknown>, only: string | undefined): Record<string, unknown> {
    const keys = this.redactKeys;
    if (keys === undefined || keys.size === 0) return out;
    if (only !== undefined) {
      if (keys.has(only)) setProp(out, only, REDACTED);
      return out;
    }
    for (const k of Object.keys(out)) if (keys.has(k)) setProp(out, k, REDACTED);
    return out;
  }

  private keyOf(k: string): string {
    return truncateString(k, this.limits.maxStringLength, true);
  }

  private array(arr: readonly unknown[], depth: number, copy: boolean): unknown {
    const n = arr.length;
    const maxItems = this.limits.maxArrayLength;
    const limit = Math.min(n, maxItems);
    let out: unknown[] | undefined = copy || limit < n ? [] : undefined;
    this.add(2);
    for (let i = 0; i < limit; i++) {
      if (i > 0) this.add(1);
      let v: unknown;
      let sv: unknown;
      try {
        v = arr[i];
        // A `[name, value]` pair (headers as entries, `Object.entries` output): redacted as a property is.
        sv = this.walk(this.redactKeys === undefined ? v : redactedPair(v, this.redactKeys), depth + 1, i);
      } catch (error) {
        if (error === ABORT) throw error;
        v = ABORT;
        sv = this.str(MARKERS.unreadable);
      }
      if (out === undefined) {
        if (sv === v) continue;
        out = [];
        for (let j = 0; j < i; j++) out.push(arr[j]);
      }
      out.push(sv);
    }
    if (out === undefined) return arr;
    if (limit < n) {
      this.add(1);
      out.push(this.str(moreItems(n - limit)));
    }
    return out;
  }

  private map(m: Map<unknown, unknown>, depth: number): unknown {
    const size = m.size;
    const limit = this.limits.maxArrayLength;
    const entries: unknown[] = [];
    this.add(11);
    let i = 0;
    for (const entry of Map.prototype.entries.call(m)) {
      if (i >= limit) break;
      this.add(i > 0 ? 4 : 3);
      const key = entry[0];
      // A value under a redacted name is redacted (unread), as an object's property would be.
      const window = SCRUB_WINDOW * this.limits.maxStringLength;
      const hidden =
        typeof key === "string" &&
        this.redactKeys !== undefined &&
        this.redactKeys.has(key.length > window ? key.slice(0, window) : key);
      entries.push([
        this.walk(key, depth + 1, 0),
        hidden ? this.str(REDACTED) : this.walk(entry[1], depth + 1, 1),
      ]);
      i++;
    }
    if (size > i) entries.push(this.str(moreItems(size - i)));
    return this.redactMade({ [MAP_KEY]: entries }, MAP_KEY);
  }

  private set(s: Set<unknown>, depth: number): unknown {
    const size = s.size;
    const limit = this.limits.maxArrayLength;
    const items: unknown[] = [];
    this.add(11);
    let i = 0;
    for (const item of Set.prototype.values.call(s)) {
      if (i >= limit) break;
      if (i > 0) this.add(1);
      items.push(this.walk(item, depth + 1, i));
      i++;
    }
    if (size > i) items.push(this.str(moreItems(size - i)));
    return this.redactMade({ $set: items }, "$set");
  }

  private bytes(u8: Uint8Array): unknown {
    const length = u8.byteLength;
    // Base64 turns 3 bytes into 4 characters: keep as many bytes as fit in the string cap.
    const maxBytes = Math.floor(this.limits.maxStringLength / 4) * 3;
    const kept = length > maxBytes ? u8.subarray(0, maxBytes) : u8;
    const bytes = Buffer.from(kept.buffer, kept.byteOffset, kept.byteLength);
    // Bytes that read as text holding a credential (a captured request, a file) are not written at all.
    const base64 =
      this.redactKeys !== undefined && bytesHoldCredential(bytes, this.redactKeys)
        ? REDACTED
        : bytes.toString("base64");
    this.add(base64.length + 24);
    const out: Record<string, unknown> =
      length > maxBytes ? { $bytes: base64, length, truncated: true } : { $bytes: base64, length };
    return this.redactMade(out, undefined);
  }

  private error(err: Error, depth: number): unknown {
    const out: Record<string, unknown> = {};
    const name = readSafely(err, "name");
    out.name = this.str(typeof name === "string" ? name : "Error");
    const message = readSafely(err, "message");
    // Error text quotes what failed: connection URLs and strings (`Password=…;`), `?api_key=…` requests. It is
    // scrubbed as streamll's own logs are, besides the credential scan every string gets; only as far as the
    // cut could reach, as every string is (scrubbing a 10 MB message whole blocked the caller for ~0.4 s).
    out.message = this.str(
      typeof message === "string" ? message : message === undefined ? "" : safeString(message),
      scrubErrorText,
    );
    const stack = readSafely(err, "stack");
    if (typeof stack === "string") {
      out.stack = this.str(stack, scrubErrorText, Math.min(MAX_STACK_LENGTH, this.limits.maxStringLength));
    }
    const code = readSafely(err, "code");
    if (typeof code === "string") out.code = this.str(code, scrubErrorText);
    else if (typeof code === "number" && Number.isFinite(code)) out.code = code;
    let hasCause = false;
    try {
      hasCause = "cause" in err;
    } catch {
      hasCause = false;
    }
    if (hasCause) {
      const cause = readSafely(err, "cause");
      out.cause =
        typeof cause === "string" ? this.str(cause, scrubErrorText) : this.walk(cause, depth + 1, "cause");
    }
    // `{"$error":{"name":,"message":}}` around the strings counted above.
    this.add(31);
    this.redactMade(out, undefined);
    return this.redactMade({ $error: out }, "$error");
  }
}

/** Per prototype: the type name when its chain defines behaviour, `null` for a data-only class. */
const serviceTypes = new WeakMap<object, string | null>();

/**
 * The class name of an object whose prototype chain (below `Object.prototype`) defines methods besides
 * `constructor`: such an object is recorded as `{ "$type": name }`, never walked. `undefined` for instances of
 * data-only classes (fields and getters, no methods), which are walked like plain objects.
 */
function serviceTypeOf(value: object): string | undefined {
  let proto: unknown;
  try {
    proto = Object.getPrototypeOf(value);
  } catch {
    return "Object";
  }
  if (typeof proto !== "object" || proto === null) return undefined;
  let type = serviceTypes.get(proto);
  if (type === undefined) {
    type = classifyPrototype(proto);
    serviceTypes.set(proto, type);
  }
  return type ?? undefined;
}

function classifyPrototype(proto: object): string | null {
  try {
    let hasBehaviour = false;
    for (let p: object | null = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      for (const name of Object.getOwnPropertyNames(p)) {
        if (name === "constructor") continue;
        // Accessors alone (a computed `length`) make a value class, not a service.
        if (typeof Object.getOwnPropertyDescriptor(p, name)?.value === "function") {
          hasBehaviour = true;
          break;
        }
      }
      if (hasBehaviour) break;
    }
    if (!hasBehaviour) return null;
    const ctor = Object.getOwnPropertyDescriptor(proto, "constructor")?.value as
      | { name?: unknown }
      | undefined;
    const name = typeof ctor === "function" ? ctor.name : undefined;
    return typeof name === "string" && name !== "" ? truncateString(name, 128, false) : "anonymous";
  } catch {
    // A proxy in the chain: what it is cannot be told safely, so it is not walked either.
    return "Object";
  }
}

function readSafely(obj: object, key: string): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch {
    return MARKERS.unreadable;
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return MARKERS.unreadable;
  }
}

function unbox(value: object): unknown {
  if (types.isNumberObject(value)) return Number.prototype.valueOf.call(value);
  if (types.isStringObject(value)) return String.prototype.valueOf.call(value);
  if (types.isBooleanObject(value)) return Boolean.prototype.valueOf.call(value);
  if (types.isBigIntObject(value)) return BigInt.prototype.valueOf.call(value);
  if (types.isSymbolObject(value)) return Symbol.prototype.valueOf.call(value);
  return MARKERS.unreadable;
}

function symbolMarker(value: symbol): string {
  try {
    const description = value.description;
    return description === undefined ? "[Symbol]" : `[Symbol ${description}]`;
  } catch {
    return "[Symbol]";
  }
}

function functionMarker(value: Function): string {
  try {
    const name: unknown = value.name;
    return typeof name === "string" && name !== "" ? `[Function ${name}]` : "[Function anonymous]";
  } catch {
    return "[Function anonymous]";
  }
}

/**
 * Turns any value into JSON-safe data that `JSON.stringify` serialises without throwing and that survives a
 * round trip through any JSON parser. Never throws.
 *
 * Values JSON cannot represent become visible markers instead of disappearing: see the table in
 * `docs/concepts/events.md` (`"[Circular]"`, `"123n"`, `{ "$error": … }`, `{ "$map": … }`, `"[undefined]"` …).
 * Strings, arrays, objects and nesting are capped by `limits`; `maxEventBytes` does not apply here.
 *
 * Already JSON-safe subtrees are returned as they are (not copied): treat the result as read-only.
 */
export function sanitizeJson(value: unknown, limits?: EncodeLimits): JsonValue {
  const resolved = resolveLimits(limits);
  try {
    return new JsonSanitizer(resolved, Number.POSITIVE_INFINITY, false, true).sanitize(value);
  } catch {
    try {
      return new JsonSanitizer(resolved, Number.POSITIVE_INFINITY, true, true).sanitize(value);
    } catch {
      return MARKERS.unreadable;
    }
  }
}

/** {@link namedValueKey} for data not yet sanitised: a getter that throws names nothing. */
function namedValueOf(
  obj: Record<string, unknown>,
  keys: readonly string[],
  redact: KeyRedaction,
): string | undefined {
  try {
    return namedValueKey(obj, keys, redact);
  } catch {
    return undefined;
  }
}
