import {
  backoffDelay,
  clockSchema,
  deliveryLoggerSchema,
  type ResolvedRetryOptions,
  resolveRetryOptions,
  retryOptionsSchema,
  safeErrorMessage,
  scheduleUnref,
  scrubSecrets,
  systemClock,
} from "../delivery/backoff";
import type { Clock, DeliveryLogger, RetryOptions } from "../delivery/delivery-types";
import { ConfigurationError, CredentialError } from "../errors";
import { describeKind, v, validateOptions } from "../options/schema";
import type { CredentialProvider, Credentials } from "./credential-types";

/** Options of `createRefreshingCredentials`. */
export interface RefreshingCredentialsOptions {
  /**
   * Refresh this long before `expiresAt`, so live connections can re-authenticate before the old credential
   * stops working. Never more than half the credential's lifetime. Default 60 000 ms.
   */
  refreshAheadMs?: number;
  /**
   * Retries of one fetch round. Defaults: 3 attempts, 200 ms initial delay, 5 000 ms max, x2, jitter 0.5.
   * When a proactive refresh round fails, further rounds follow with backoff until the current credential
   * expires.
   */
  retry?: RetryOptions;
  /**
   * Shortest remaining lifetime a fetched credential may have; a shorter one counts as a failed fetch and is
   * retried, so a provider handing out (nearly) expired credentials cannot drive a refresh loop.
   * Default 1 000 ms.
   */
  minTtlMs?: number;
  /** Time source and timers (timers are `unref()`'d). Default: `Date.now` and the global timers. */
  clock?: Clock;
  /** Receives refresh failures, never a secret. Default `console.warn`. */
  logger?: DeliveryLogger;
  /** Uniform random numbers in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/** A cached, proactively refreshed credential. Create it with `createRefreshingCredentials`. */
export interface RefreshingCredentials {
  /**
   * The current credential, fetched on first use. Concurrent calls share one fetch. Rejects with
   * `CredentialError` only when no unexpired credential is available and fetching failed.
   */
  get(): Promise<Credentials>;
  /** The cached credential if it has not expired, without fetching. */
  peek(): Credentials | undefined;
  /**
   * Called with the new credential whenever it replaces an earlier one (proactive refresh, `refresh()`, or
   * a fetch after expiry), so a sink can re-authenticate live connections. Listener errors are swallowed.
   * @returns a function that unsubscribes.
   */
  subscribe(listener: (credentials: Credentials) => void): () => void;
  /** Fetches a new credential now (joining a fetch already in progress). */
  refresh(): Promise<Credentials>;
  /** Stops the refresh timer and forgets subscribers; later `get()`/`refresh()` calls reject. */
  close(): void;
}

/** A logging-safe view of a credential: the secret replaced, the expiry as an ISO string. */
export interface RedactedCredentials {
  readonly username?: string;
  readonly password: "[redacted]";
  readonly expiresAt?: string;
}

/** Defaults of `RefreshingCredentialsOptions.retry`: quick, since a connection is usually waiting. */
export const DEFAULT_CREDENTIAL_RETRY: ResolvedRetryOptions = Object.freeze({
  maxAttempts: 3,
  initialDelayMs: 200,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: 0.5,
});

const REDACTED = "[redacted]" as const;
const INSPECT = Symbol.for("nodejs.util.inspect.custom");
/** `RefreshingCredentialsOptions` as `createRefreshingCredentials` checks them. */
export const refreshingCredentialsOptionsSchema = v.object<RefreshingCredentialsOptions>({
  refreshAheadMs: v.number({ min: 0 }).optional(),
  retry: retryOptionsSchema.optional(),
  minTtlMs: v.number({ min: 0 }).optional(),
  clock: clockSchema.optional(),
  logger: deliveryLoggerSchema.optional(),
  random: v.fn<() => number>().optional(),
});

function expiryMs(expiresAt: Date | number | undefined): number {
  if (expiresAt === undefined || expiresAt === null) return Number.POSITIVE_INFINITY;
  if (expiresAt instanceof Date) return expiresAt.getTime();
  return typeof expiresAt === "number" ? expiresAt : Number.NaN;
}

/**
 * A copy of `credentials` that is safe to log: `password` becomes `"[redacted]"` and `expiresAt` an ISO
 * string (or `"invalid"`).
 */
export function redactCredentials(credentials: Credentials): RedactedCredentials {
  const out: { username?: string; password: "[redacted]"; expiresAt?: string } = { password: REDACTED };
  if (typeof credentials?.username === "string") out.username = credentials.username;
  if (credentials?.expiresAt !== undefined) {
    const ms = expiryMs(credentials.expiresAt);
    out.expiresAt = Number.isFinite(ms) ? new Date(ms).toISOString() : "invalid";
  }
  return out;
}

/**
 * A frozen credential whose password is readable (`credentials.password`) but non-enumerable, and which
 * presents itself redacted to `JSON.stringify`, `util.inspect`, `console.log` and `String()`. Spreading it
 * (`{ ...credentials }`) leaves the password out, so copies made for logging are safe too.
 */
function protect(source: Credentials, expiresAtMs: number): Credentials {
  const safe: { username?: string; expiresAt?: Date | number } = {};
  if (source.username !== undefined) safe.username = source.username;
  if (Number.isFinite(expiresAtMs))
    safe.expiresAt = source.expiresAt instanceof Date ? new Date(expiresAtMs) : expiresAtMs;
  const label = source.username === undefined ? "" : ` for ${source.username}`;
  Object.defineProperties(safe, {
    password: { value: source.password, enumerable: false },
    toJSON: { value: () => redactCredentials(safe as Credentials), enumerable: false },
    toString: { value: () => `[Credentials${label}, password ${REDACTED}]`, enumerable: false },
    [INSPECT]: { value: () => redactCredentials(safe as Credentials), enumerable: false },
  });
  return Object.freeze(safe) as Credentials;
}

interface CachedCredential {
  readonly credentials: Credentials;
  readonly expiresAtMs: number;
}

const defaultLogger: DeliveryLogger = {
  warn(message, context) {
    if (context === undefined) console.warn(message);
    else console.warn(message, context);
  },
};

const credentialProviderSchema = v.fn<CredentialProvider>("a credential provider function");

function isConfigurationError(error: unknown): boolean {
  return (
    error instanceof ConfigurationError ||
    (error as { code?: unknown } | null)?.code === "CONFIGURATION_INVALID"
  );
}

/** The type and code of a thrown error, short and free of secrets (they are identifiers, not messages). */
function describeProviderError(error: unknown): { name: string; code?: string } | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { name, code } = error as { name?: unknown; code?: unknown };
  const safeName = typeof name === "string" && /^[\w.$-]{1,80}$/.test(name) ? name : "Error";
  const safeCode =
    typeof code === "string" || typeof code === "number" ? String(code).slice(0, 80) : undefined;
  return safeCode === undefined ? { name: safeName } : { name: safeName, code: safeCode };
}

/**
 * Wraps a `CredentialProvider` in a cache that fetches once, shares concurrent fetches, and refreshes
 * `refreshAheadMs` before `expiresAt` on an `unref()`'d timer, notifying subscribers so they can
 * re-authenticate. A failing refresh is retried with backoff while the old credential keeps being served until
 * it actually expires; after that `get()` rejects with a `CredentialError`. Credentials without `expiresAt` are
 * cached for good. Secrets never appear in errors, warnings, `util.inspect` or `JSON.stringify` output.
 * @throws ConfigurationError when an option is out of range.
 */
export function createRefreshingCredentials(
  provider: CredentialProvider,
  options: RefreshingCredentialsOptions = {},
): RefreshingCredentials {
  validateOptions("createRefreshingCredentials()", credentialProviderSchema, provider, "provider");
  validateOptions("createRefreshingCredentials()", refreshingCredentialsOptionsSchema, options);
  const refreshAheadMs = options.refreshAheadMs ?? 60_000;
  const minTtlMs = options.minTtlMs ?? 1_000;
  const retry = resolveRetryOptions(options.retry, DEFAULT_CREDENTIAL_RETRY);

  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? defaultLogger;
  const random = options.random ?? Math.random;
  const listeners = new Set<(credentials: Credentials) => void>();
  // Secrets seen so far (current and previous), scrubbed from any provider message we repeat.
  const secrets: string[] = [];
  let current: CachedCredential | undefined;
  let inflight: Promise<Credentials> | undefined;
  let timer: unknown;
  let failedRounds = 0;
  let closed = false;

  // Known secrets (the current and previous credential) and anything secret-shaped.
  const scrub = (text: string): string => {
    let out = text;
    for (const secret of secrets) {
      if (secret.length >= 4) out = out.split(secret).join(REDACTED);
    }
    return scrubSecrets(out);
  };

  const warn = (message: string, context?: object): void => {
    try {
      logger.warn(message, context);
    } catch {
      // A broken logger must not break authentication.
    }
  };

  const clearTimer = (): void => {
    if (timer !== undefined) {
      clock.clearTimeout(timer);
      timer = undefined;
    }
  };

  const schedule = (delayMs: number): void => {
    clearTimer();
    if (closed) return;
    const due = clock.now() + delayMs;
    timer = scheduleUnref(
      clock,
      () => {
        timer = undefined;
        // Timers cap out at ~24.8 days; a credential living longer is refreshed only when really due.
        if (clock.now() < due) schedule(due - clock.now());
        else void backgroundRefresh();
      },
      delayMs,
    );
  };

  const validate = (raw: unknown): { credentials: Credentials; expiresAtMs: number } => {
    if (typeof raw !== "object" || raw === null) {
      throw new CredentialError(`credential provider returned ${describeKind(raw)} instead of credentials`);
    }
    const candidate = raw as { username?: unknown; password?: unknown; expiresAt?: unknown };
    if (typeof candidate.password !== "string") {
      throw new CredentialError("credential provider returned no password string");
    }
    if (candidate.username !== undefined && typeof candidate.username !== "string") {
      throw new CredentialError("credential provider returned a non-string username");
    }
    const expiresAtMs = expiryMs(candidate.expiresAt as Date | number | undefined);
    if (Number.isNaN(expiresAtMs)) {
      throw new CredentialError("credential provider returned an invalid expiresAt (use a Date or epoch ms)");
    }
    const ttl = expiresAtMs - clock.now();
    if (ttl < minTtlMs) {
      throw new CredentialError(
        `credential provider returned a credential that expires in ${Math.round(ttl)} ms (minTtlMs is ${minTtlMs})`,
      );
    }
    return { credentials: candidate as Credentials, expiresAtMs };
  };

  const install = (credentials: Credentials, expiresAtMs: number): Credentials => {
    const now = clock.now();
    const previous = current;
    const safe = protect(credentials, expiresAtMs);
    current = { credentials: safe, expiresAtMs };
    failedRounds = 0;
    if (!secrets.includes(credentials.password)) {
      secrets.push(credentials.password);
      if (secrets.length > 2) secrets.shift();
    }
    clearTimer();
    if (Number.isFinite(expiresAtMs)) {
      const lifetime = expiresAtMs - now;
      const ahead = Math.min(refreshAheadMs, lifetime / 2);
      schedule(lifetime - ahead);
    }
    if (previous !== undefined) {
      for (const listener of [...listeners]) {
        try {
          const result: unknown = listener(safe);
          if (result instanceof Promise) result.catch(() => undefined);
        } catch {
          // A subscriber's failure is its own; others still get the credential.
        }
      }
    }
    return safe;
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      scheduleUnref(clock, resolve, ms);
    });

  /** One fetch round: up to `retry.maxAttempts` provider calls with backoff. Single flight. */
  const fetchRound = (): Promise<Credentials> => {
    if (inflight !== undefined) return inflight;
    const round = (async (): Promise<Credentials> => {
      let lastError: unknown;
      let attempt = 0;
      while (attempt < retry.maxAttempts) {
        attempt++;
        if (closed) throw new CredentialError("credential cache is closed");
        try {
          const { credentials, expiresAtMs } = validate(await provider());
          if (closed) throw new CredentialError("credential cache is closed");
          return install(credentials, expiresAtMs);
        } catch (error) {
          if (closed) throw new CredentialError("credential cache is closed");
          // A provider that cannot work (a missing optional package) fails the same way every time.
          if (isConfigurationError(error)) throw error;
          lastError = error;
        }
        if (attempt < retry.maxAttempts) await sleep(backoffDelay(attempt, retry, random));
      }
      // The provider's error is passed on by type and code with its message scrubbed, never as `cause`: its
      // fields (a request, a config, a response body) may hold what the message leaves out.
      if (lastError instanceof CredentialError) {
        throw new CredentialError(scrub(lastError.message), {
          ...(lastError.providerError === undefined ? {} : { providerError: lastError.providerError }),
        });
      }
      const providerError = describeProviderError(lastError);
      const label =
        providerError === undefined
          ? ""
          : `${providerError.name}${providerError.code ? ` (${providerError.code})` : ""}: `;
      throw new CredentialError(
        `credential provider failed after ${attempt} attempt(s): ${label}${scrub(safeErrorMessage(lastError))}`,
        providerError === undefined ? undefined : { providerError },
      );
    })();
    inflight = round;
    round.then(
      () => {
        inflight = undefined;
      },
      () => {
        inflight = undefined;
      },
    );
    return round;
  };

  const isValid = (cached: CachedCredential | undefined): cached is CachedCredential =>
    cached !== undefined && clock.now() < cached.expiresAtMs;

  const backgroundRefresh = async (): Promise<void> => {
    if (closed) return;
    try {
      await fetchRound();
    } catch (error) {
      if (closed) return;
      failedRounds++;
      const message = error instanceof Error ? error.message : "credential refresh failed";
      if (isValid(current)) {
        const remaining = current.expiresAtMs - clock.now();
        warn(`streamll: credential refresh failed; serving the current credential until it expires`, {
          error: message,
          expiresInMs: remaining,
        });
        schedule(Math.min(remaining, backoffDelay(failedRounds, retry, random)));
      } else {
        warn("streamll: credential refresh failed and the credential has expired; get() will retry", {
          error: message,
        });
      }
    }
  };

  return {
    get(): Promise<Credentials> {
      if (closed) return Promise.reject(new CredentialError("credential cache is closed"));
      if (isValid(current)) return Promise.resolve(current.credentials);
      return fetchRound();
    },
    peek(): Credentials | undefined {
      return !closed && isValid(current) ? current.credentials : undefined;
    },
    subscribe(listener: (credentials: Credentials) => void): () => void {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    refresh(): Promise<Credentials> {
      if (closed) return Promise.reject(new CredentialError("credential cache is closed"));
      return fetchRound();
    },
    close(): void {
      closed = true;
      clearTimer();
      listeners.clear();
    },
  };
}
