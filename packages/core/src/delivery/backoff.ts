import { redactCredentialText } from "../events/redact";
import { v } from "../options/schema";
import type { Clock, DeliveryLogger, RetryOptions } from "./delivery-types";

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

/** `RetryOptions` as checked by `configure()`, the delivery pipeline and the credential cache. */
export const retryOptionsSchema = v
  .object<RetryOptions>({
    maxAttempts: v.integer({ min: 1, allowInfinity: true }).optional(),
    initialDelayMs: v.number({ min: 0 }).optional(),
    maxDelayMs: v.number({ min: 0 }).optional(),
    multiplier: v.number({ min: 1 }).optional(),
    jitter: v.number({ min: 0, max: 1 }).optional(),
  })
  .refine((retry, report) => {
    if (retry.initialDelayMs !== undefined && retry.maxDelayMs !== undefined) {
      if (retry.maxDelayMs < retry.initialDelayMs) {
        report(`must be >= initialDelayMs (${retry.initialDelayMs}), got ${retry.maxDelayMs}`, "maxDelayMs");
      }
    }
  });

/** Fills in `defaults` for options that passed {@link retryOptionsSchema}. */
export function resolveRetryOptions(
  options: RetryOptions | undefined,
  defaults: ResolvedRetryOptions = DEFAULT_RETRY_OPTIONS,
): ResolvedRetryOptions {
  if (options === undefined) return defaults;
  const resolved = {
    maxAttempts: options.maxAttempts ?? defaults.maxAttempts,
    initialDelayMs: options.initialDelayMs ?? defaults.initialDelayMs,
    maxDelayMs: options.maxDelayMs ?? defaults.maxDelayMs,
    multiplier: options.multiplier ?? defaults.multiplier,
    jitter: options.jitter ?? defaults.jitter,
  };
  // One bound given alone may cross the other's default; the larger bound wins so backoff stays ordered.
  if (resolved.maxDelayMs < resolved.initialDelayMs) {
    if (options.maxDelayMs === undefined) resolved.maxDelayMs = resolved.initialDelayMs;
    else resolved.initialDelayMs = resolved.maxDelayMs;
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

/** A {@link Clock} as the delivery pipeline's and the credential cache's options check it. */
export const clockSchema = v.custom<Clock>(
  "an object with now(), setTimeout() and clearTimeout()",
  (value) =>
    typeof value === "object" &&
    value !== null &&
    ["now", "setTimeout", "clearTimeout"].every(
      (name) => typeof (value as Record<string, unknown>)[name] === "function",
    ),
);

/** A {@link DeliveryLogger} as the delivery pipeline's and the credential cache's options check it. */
export const deliveryLoggerSchema = v.custom<DeliveryLogger>(
  "an object with warn()",
  (value) => typeof (value as { warn?: unknown } | null)?.warn === "function",
);

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

/**
 * `scheme://user:secret@host`: the password part of a connection URL, as drivers often echo it in errors. `?`
 * and `#` end the host part, so `http://host:8000?user=bob@example.com` holds no password.
 */
const URL_CREDENTIALS = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):(?!\[redacted\]@)[^\s/?#]+@/gi;

/**
 * Replaces the password of every `scheme://user:password@host` URL in `text` with `[redacted]`. Broker
 * clients put connection URLs into error messages; those messages end up in metrics, logs and error events.
 */
export function scrubUrlCredentials(text: string): string {
  return text.includes("://") ? text.replace(URL_CREDENTIALS, "$1:[redacted]@") : text;
}

/**
 * A credential written as a named value in text: `password=…`, `"apiKey": "…"`, `?access_token=…`, connection
 * strings' `Password=…;` and `SharedAccessKey=…`, signed URLs' `X-Amz-Signature=…`. The name (and what joins
 * it to the value) is kept; the value goes, unless it is already `[redacted]` in any case.
 */
const CREDENTIAL_PAIRS: readonly RegExp[] = [
  /(SharedAccessKey=)(?!\[redacted\])[^;\s"']+/gi,
  /(SharedAccessSignature\s+)(?!\[redacted\])[^\s"']+/gi,
  /(X-Amz-(?:Signature|Security-Token|Credential)=)(?!\[redacted\])[^&\s"']+/gi,
  /((?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|api[_-]?secret|access[_-]?key|account[_-]?key|client[_-]?secret|signature)["']?\s*[:=]\s*["']?)(?!\[redacted\])[^\s"',;&]+/gi,
  // Lower case and a whole word only: SDKs name their classes `…Credential` and start messages with them
  // ("ManagedIdentityCredential: no managed identity endpoint found"), which is an explanation, not a secret.
  /(\bcredentials?["']?\s*[:=]\s*["']?)(?!\[(?:redacted|REDACTED)\])[^\s"',;&]+/g,
];

/**
 * Text that looks like a credential whatever its origin: URL user info, the named values above, AWS access key
 * ids, JWTs, `Bearer` and `Basic` values, and long key-like strings. In this order: a `Bearer` value is cut
 * before a `token:` in front of it could take only the word `Bearer`.
 */
const SECRET_PATTERNS: readonly RegExp[] = [
  /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]+(?=@)/gi,
  ...CREDENTIAL_PAIRS.slice(0, 3),
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
  ...CREDENTIAL_PAIRS.slice(3),
  /(?<![A-Za-z0-9+_-])(?=[A-Za-z0-9+_=-]*\d)(?=[A-Za-z0-9+_=-]*[A-Za-z])[A-Za-z0-9+_=-]{40,}/g,
];

function replaceAll(text: string, patterns: readonly RegExp[]): string {
  let out = text;
  for (const pattern of patterns) {
    out = out.replace(pattern, (match: string, prefix: unknown) =>
      typeof prefix === "string" && prefix !== match ? `${prefix}[redacted]` : "[redacted]",
    );
  }
  return out;
}

/**
 * The text of an error as an event carries it (`error_message`, `stack`, `$error`): connection URLs keep
 * their user (`redis://default:[redacted]@host`), credentials the event scan knows go as it writes them
 * (`Bearer [REDACTED]`), and credentials written as named values lose their value (`Password=[redacted];`).
 * Errors quote what failed; unlike other event text, that is often a connection string or a request.
 */
export function scrubErrorText(text: string): string {
  return replaceAll(redactCredentialText(scrubUrlCredentials(text)), CREDENTIAL_PAIRS);
}

/**
 * Replaces everything secret-shaped in `text` with `[redacted]` (see the patterns above), and the credentials
 * event redaction knows (`sk-…` API keys, GitHub/Slack tokens, Google API keys …) as events show them: for
 * messages of errors from code streamll does not control (credential providers, client libraries, an API that
 * repeats the key it refused) before they reach `lastError`, state-change reasons, loggers or dead letters.
 */
export function scrubSecrets(text: string): string {
  return redactCredentialText(replaceAll(text, SECRET_PATTERNS));
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
  message = scrubSecrets(message.length > max + 256 ? message.slice(0, max + 256) : message);
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
