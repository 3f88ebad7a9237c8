import type { JsonObject } from "../events/event-schema";
import { CREDENTIAL_VALUE_PATTERNS, type KeyRedaction } from "../events/redact";
import { clockNow, getRuntime } from "./runtime";

/**
 * Held text of one field past which its earlier tokens go out without waiting for the word to end (see
 * `overCapCut`): bounds what text without whitespace can hold, and is longer than the credentials the scan
 * knows (JWTs of usual size included).
 */
export const MAX_HELD_CHARS = 4096;
/**
 * Held text kept back when a field's hold passes {@link MAX_HELD_CHARS}: a credential that has begun near its end
 * but is not whole yet (a JWT before its last `.`) stays held, to be scanned with the pieces still to come.
 */
const KEPT_CHARS = 1024;

/** A token event waiting for the word it ends in to be complete. */
interface HeldToken {
  readonly data: JsonObject & { token: string };
  readonly at: number;
  /** Arrival order across fields, so a flush sends tokens in the order they came. */
  readonly seq: number;
}

interface FieldHold {
  /** The held tokens' text, joined. */
  text: string;
  readonly tokens: HeldToken[];
}

/** `Bearer`/`Basic` (and whitespace after it) ending a text: the credential scan reads on past the gap. */
const AUTH_SCHEME_AT_END = /(?<![A-Za-z0-9_])(?:[Bb]earer|BEARER|[Bb]asic|BASIC)\s*$/;
/** How far back an auth scheme and the whitespace after it are looked for. */
const AUTH_SCHEME_WINDOW = 64;
const WHITESPACE = /\s/;

/** Whitespace as the credential patterns' `\s` reads it. */
function isWhitespace(code: number): boolean {
  if (code < 128) return code === 32 || (code >= 9 && code <= 13);
  return WHITESPACE.test(String.fromCharCode(code));
}

/**
 * True when no credential the scan knows can hold both the character before `at` and the one after it (or
 * text still to come, when `at` is the end of `text`): text before `at` then scans the same whatever follows.
 * A credential holds no whitespace except the gap after `Bearer`/`Basic`, and no character outside printable
 * ASCII except in a URL's `user:password@` (after its `://`).
 */
export function isWordBreak(text: string, at: number): boolean {
  if (at <= 0) return true;
  const before = text.charCodeAt(at - 1);
  const after = at < text.length ? text.charCodeAt(at) : -1;
  if (isWhitespace(before) || (after !== -1 && isWhitespace(after)))
    return !AUTH_SCHEME_AT_END.test(text.slice(Math.max(0, at - AUTH_SCHEME_WINDOW), at));
  if (before > 126 || after > 126) {
    let wordStart = at;
    while (wordStart > 0 && !isWhitespace(text.charCodeAt(wordStart - 1))) wordStart--;
    return !text.slice(wordStart, at).includes("://");
  }
  return false;
}

/**
 * How many of the held tokens to release (and their length) when the hold has passed {@link MAX_HELD_CHARS}
 * within one word. Releasing all of it would cut a credential still streaming in: its start is scanned in the
 * released text, and the rest, held anew, no longer looks like one (`"k":"sk-proj-PL` is redacted, `ANTED012…`
 * is not). So the cut is the token boundary nearest {@link KEPT_CHARS} before the end (at or before that point
 * when one qualifies, after it otherwise) that no credential found in the held text spans and that leaves at
 * most {@link MAX_HELD_CHARS} held. When none qualifies (one token or one credential about as long as the
 * cap), everything is released, so that memory stays bounded.
 */
function overCapCut(hold: FieldHold, redaction: KeyRedaction): [count: number, length: number] {
  const { text, tokens } = hold;
  // Where the scan finds credentials in the held text. The precheck (a scan that changes nothing found none)
  // spares most text the patterns, some of which are slow on long words.
  const spans: [start: number, end: number][] = [];
  if (redaction.scrub(text) !== text) {
    for (const [pattern] of CREDENTIAL_VALUE_PATTERNS) {
      // A copy of the pattern: its own `lastIndex`, from 0.
      for (const match of text.matchAll(new RegExp(pattern)))
        spans.push([match.index, match.index + match[0].length]);
    }
  }
  const target = text.length - KEPT_CHARS;
  let count = tokens.length;
  let length = text.length;
  for (let i = 0, end = 0; i + 1 < tokens.length; i++) {
    end += (tokens[i] as HeldToken).data.token.length;
    // Past the target with a cut found: it is the last one at or before the target, or the first one after it.
    if (length < text.length && end > target) break;
    // A cut at a credential's very end counts as inside it: a URL's password is known by the `@` after it.
    if (text.length - end <= MAX_HELD_CHARS && !spans.some(([start, stop]) => start < end && end <= stop)) {
      count = i + 1;
      length = end;
    }
  }
  return [count, length];
}

/**
 * A stream's token events, each held back until the word it ends in is complete, so that a credential a model
 * streams in pieces (`sk-`, `proj-abc`, `123…`) is scanned whole before any piece leaves the process. A token
 * is released once whitespace (or the end of the stream) follows its word; released text holding a credential
 * goes out redacted in the first of its tokens, the others carrying `""`, so token counts and indexes stay as
 * they were. Each event keeps the time its token arrived. Holding happens only while `redact` is a list of
 * names (the default); with a `redact` function or `redact: []` tokens go out as they come.
 */
export class HeldTokens {
  readonly #emit: (data: JsonObject, at: number | undefined) => void;
  readonly #fields = new Map<string, FieldHold>();
  #seq = 0;

  /** `emit` sends one token event, stamped with a {@link clockNow} reading or, without one, now. */
  constructor(emit: (data: JsonObject, at: number | undefined) => void) {
    this.#emit = emit;
  }

  /** One streamed token of the field (and sample) `key`, with its event's data (`data.token` its text). */
  add(key: string, data: JsonObject & { token: string }): void {
    const redaction = getRuntime().redactKeys;
    if (redaction === undefined || redaction === null || redaction.size === 0) {
      this.flush();
      this.#emit(data, undefined);
      return;
    }
    let hold = this.#fields.get(key);
    if ((hold === undefined || hold.tokens.length === 0) && isWordBreak(data.token, data.token.length)) {
      // Nothing held before it and its word is complete: it is scanned alone, as every string of an event is.
      this.#emit(data, undefined);
      return;
    }
    const at = clockNow();
    if (hold === undefined) {
      hold = { text: "", tokens: [] };
      this.#fields.set(key, hold);
    }
    hold.tokens.push({ data, at, seq: this.#seq++ });
    const previousEnd = hold.text.length;
    hold.text += data.token;
    // Breaks between earlier tokens were checked when they were made: only the two ends can have become one.
    if (isWordBreak(hold.text, hold.text.length)) {
      this.#release(hold, hold.tokens.length, hold.text.length, redaction);
    } else if (hold.text.length > MAX_HELD_CHARS) {
      const [count, length] = overCapCut(hold, redaction);
      this.#release(hold, count, length, redaction);
    } else if (hold.tokens.length > 1 && isWordBreak(hold.text, previousEnd)) {
      this.#release(hold, hold.tokens.length - 1, previousEnd, redaction);
    }
  }

  /** Sends every held token: the stream ended, failed or restarted. */
  flush(): void {
    if (this.#fields.size === 0) return;
    const redaction = getRuntime().redactKeys ?? undefined;
    const released: HeldToken[] = [];
    for (const hold of this.#fields.values())
      released.push(...this.#scrubbed(hold, hold.tokens.length, hold.text.length, redaction));
    this.#fields.clear();
    released.sort((a, b) => a.seq - b.seq);
    for (const token of released) this.#emit(token.data, token.at);
  }

  #release(hold: FieldHold, count: number, length: number, redaction: KeyRedaction): void {
    for (const token of this.#scrubbed(hold, count, length, redaction)) this.#emit(token.data, token.at);
  }

  /** Takes the first `count` tokens (`length` characters) of `hold`, their text scanned as one. */
  #scrubbed(
    hold: FieldHold,
    count: number,
    length: number,
    redaction: KeyRedaction | undefined,
  ): HeldToken[] {
    const released = hold.tokens.splice(0, count);
    const text = hold.text.slice(0, length);
    hold.text = hold.text.slice(length);
    const scrubbed = redaction === undefined ? text : redaction.scrub(text);
    if (scrubbed !== text) {
      // Which token held which part of the secret does not matter: the released text is the same, redacted.
      for (let i = 0; i < released.length; i++)
        (released[i] as HeldToken).data.token = i === 0 ? scrubbed : "";
    }
    return released;
  }
}
