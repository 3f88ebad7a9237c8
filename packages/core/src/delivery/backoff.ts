import { ConfigurationError } from "../errors";
import type { Clock, RetryOptions } from "./delivery-types";

/** `RetryOptions` with every default filled in. */
export type ResolvedRetryOptions = Readonly<Required<RetryOptions>>;

/** Defaults for failed batches, as documented on `RetryOptions`. */
export const DEFAULT_RETRY_OPTIONS: ResolvedRetryOptions = Object.freeze({
  maxAttempts: Number.POSITIVE_INFINITY,
  initialDelayMs: 100,
  maxDelayMs: 30_000,
  multiplier: 2,
  jitter: 0.5,
});

/** One invalid option: the dotted path and what is wrong with it. */
export interface OptionIssue {
  path: string;
  message: string;
}

/** Formats a value for an error message without ever dumping a large object. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) {
    return String(value);
  }
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

/** Pushes an issue unless `value` is an integer (or `Infinity` when allowed) at least `min`. */
export function checkInteger(
  issues: OptionIssue[],
  path: string,
  value: unknown,
  min: number,
  allowInfinity = false,
): void {
  const ok =
    typeof value === "number" &&
    value >= min &&
    (Number.isInteger(value) || (allowInfinity && value === Number.POSITIVE_INFINITY));
  if (!ok) {
    const what = allowInfinity ? `an integer >= ${min} or Infinity` : `an integer >= ${min}`;
    issues.push({ path, message: `${path} must be ${what}, got ${describeValue(value)}` });
  }
}

/** Pushes an issue unless `value` is a finite number within `[min, max]`. */
export function checkNumber(
  issues: OptionIssue[],
  path: string,
  value: unknown,
  min: number,
  max = Number.POSITIVE_INFINITY,
): void {
  const ok = typeof value === "number" && Number.isFinite(value) && value >= min && value <= max;
  if (!ok) {
    const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `between ${min} and ${max}`;
    issues.push({ path, message: `${path} must be a finite number ${range}, got ${describeValue(value)}` });
  }
}

/** Pushes an issue for every key of `value` that is not in `known` (catches typos such as `maxBatchsize`). */
export function checkKnownKeys(
  issues: OptionIssue[],
  path: string,
  value: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      issues.push({ path: `${path}.${key}`, message: `${path}.${key} is not a known option` });
    }
  }
}

/** Throws one `ConfigurationError` listing every issue, or returns when there is none. */
export function throwIfIssues(issues: readonly OptionIssue[]): void {
  if (issues.length > 0) {
    throw new ConfigurationError(issues.map((issue) => issue.message).join("; "), issues);
  }
}

const RETRY_KEYS = ["maxAttempts", "initialDelayMs", "maxDelayMs", "multiplier", "jitter"] as const;

/**
 * Validates retry options and fills in `defaults`. Issues are appended to `issues` (not thrown) so a caller
 * validating a larger object reports every problem at once.
 */
export function resolveRetryOptions(
  options: RetryOptions | undefined,
  path: string,
  issues: OptionIssue[],
  defaults: ResolvedRetryOptions = DEFAULT_RETRY_OPTIONS,
): ResolvedRetryOptions {
  if (options === undefined) return defaults;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    issues.push({ path, message: `${path} must be an object, got ${describeValue(options)}` });
    return defaults;
  }
  checkKnownKeys(issues, path, options, RETRY_KEYS);
  const resolved = {
    maxAttempts: options.maxAttempts ?? defaults.maxAttempts,
    initialDelayMs: options.initialDelayMs ?? defaults.initialDelayMs,
    maxDelayMs: options.maxDelayMs ?? defaults.maxDelayMs,
    multiplier: options.multiplier ?? defaults.multiplier,
    jitter: options.jitter ?? defaults.jitter,
  };
  checkInteger(issues, `${path}.maxAttempts`, resolved.maxAttempts, 1, true);
  checkNumber(issues, `${path}.initialDelayMs`, resolved.initialDelayMs, 0);
  checkNumber(issues, `${path}.maxDelayMs`, resolved.maxDelayMs, 0);
  checkNumber(issues, `${path}.multiplier`, resolved.multiplier, 1);
  checkNumber(issues, `${path}.jitter`, resolved.jitter, 0, 1);
  if (
    typeof resolved.initialDelayMs === "number" &&
    typeof resolved.maxDelayMs === "number" &&
    resolved.maxDelayMs < resolved.initialDelayMs
  ) {
    issues.push({
      path: `${path}.maxDelayMs`,
      message: `${path}.maxDelayMs must be >= ${path}.initialDelayMs (${resolved.initialDelayMs}), got ${resolved.maxDelayMs}`,
    });
  }
  return Object.freeze(resolved);
}

/**
 * Delay before retry number `retry` (1 = first retry): `initialDelayMs * multiplier^(retry-1)`, capped at
 * `maxDelayMs`, of which the `jitter` fraction is randomised. With jitter 0.5 the delay lies in
 * `[base/2, base]` ("equal jitter"): retries of many clients spread out, yet never come sooner than half the
 * nominal delay.
 */
export function backoffDelay(retry: number, options: ResolvedRetryOptions, random: () => number): number {
  const exponent = Math.max(0, retry - 1);
  const nominal = options.initialDelayMs * options.multiplier ** exponent;
  const base = Math.min(options.maxDelayMs, Number.isFinite(nominal) ? nominal : options.maxDelayMs);
  let r = random();
  if (!(r >= 0 && r <= 1)) r = 0.5; // a broken random source must not produce NaN delays
  const delay = base * (1 - options.jitter) + base * options.jitter * r;
  return Math.min(options.maxDelayMs, Math.max(0, delay));
}

/** Calls `unref()` on a timer handle when it has one, so the timer never keeps the process alive. */
function unrefTimer(handle: unknown): void {
  if (typeof handle === "object" && handle !== null && "unref" in handle) {
    const unref = (handle as { unref: unknown }).unref;
    if (typeof unref === "function") unref.call(handle);
  }
}

/**
 * The real clock. It looks the globals up on every call (rather than capturing them once) so test fake
 * timers installed later are honoured.
 */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, ms: number): unknown => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle: unknown): void => {
    globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]);
  },
});

/** Largest delay `setTimeout` honours; Node fires longer ones immediately (with a warning). */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * Clamps a delay into what timers accept. A clamped timer fires early; every caller re-checks its condition
 * on wake-up, so that only costs a spurious wake-up every ~24.8 days.
 */
export function timerDelay(ms: number): number {
  return Number.isNaN(ms) ? 0 : Math.min(MAX_TIMER_DELAY_MS, Math.max(0, ms));
}

/** Schedules `callback` on `clock` and unrefs the timer. */
export function scheduleUnref(clock: Clock, callback: () => void, ms: number): unknown {
  const handle = clock.setTimeout(callback, timerDelay(ms));
  unrefTimer(handle);
  return handle;
}

/**
 * Reduces any thrown value to a short message that is safe to log: only `error.message` (never the object,
 * whose fields may hold connection options with passwords), truncated to `max` characters.
 */
export function safeErrorMessage(error: unknown, max = 500): string {
  try {
    return extractMessage(error, max);
  } catch {
    // A hostile error (throwing getter or Proxy) must not break the failure path that reports it.
    return "unreadable error";
  }
}

/** `scheme://user:secret@host`: the password part of a connection URL, as drivers often echo it in errors. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s/@]+@/gi;

/**
 * Replaces the password of every `scheme://user:password@host` URL in `text` with `[redacted]`. Broker
 * clients put connection URLs into error messages; those messages end up in metrics, logs and error events.
 */
export function scrubUrlCredentials(text: string): string {
  return text.includes("://") ? text.replace(URL_CREDENTIALS, "$1:[redacted]@") : text;
}

function extractMessage(error: unknown, max: number): string {
  let message: string;
  if (error instanceof Error) message = typeof error.message === "string" ? error.message : "";
  else if (typeof error === "string") message = error;
  else if (typeof error === "object" && error !== null && "message" in error) {
    const m = (error as { message: unknown }).message;
    message = typeof m === "string" ? m : `non-Error value thrown (${typeof error})`;
  } else message = `non-Error value thrown (${typeof error})`;
  if (message.length === 0) message = error instanceof Error ? error.name || "Error" : "unknown error";
  // Scrubbed with some margin past the cut, so a URL straddling it cannot leave half a password behind.
  message = scrubUrlCredentials(message.length > max + 256 ? message.slice(0, max + 256) : message);
  return message.length > max ? `${message.slice(0, max)}…` : message;
}

/** The string `code` of an error, if it has one. */
export function errorCode(error: unknown): string | undefined {
  try {
    if (typeof error === "object" && error !== null && "code" in error) {
      const code = (error as { code: unknown }).code;
      if (typeof code === "string") return code.slice(0, 100);
    }
  } catch {
    // see safeErrorMessage
  }
  return undefined;
}
