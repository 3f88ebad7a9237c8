import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { Credentials } from "@streamll/core";
import { abortable, ConfigurationError, createRefreshingCredentials, SinkError } from "@streamll/core";
import { isConfigurationError } from "@streamll/core/internal";
import type { ChannelModel } from "amqplib";
import { connect } from "amqplib";
import {
  type RabbitMQConnectionOptions,
  redactSecrets,
  resolveConnection,
  tlsOptionsError,
} from "./connection-options";

/** Where connection state changes are reported. Messages never contain secrets. */
export interface RabbitMQLogger {
  warn(message: string): void;
}

/** Writes to `console.warn` with a `[streamll]` prefix. */
export const consoleLogger: RabbitMQLogger = {
  warn: (message) => console.warn(`[streamll] ${message}`),
};

/**
 * Wraps a user's logger so that a throwing `warn` is ignored. Log calls run inside amqplib's event emitters,
 * which rethrow listener errors: an unguarded logger could crash the host process.
 */
export function safeLogger(logger: RabbitMQLogger): RabbitMQLogger {
  return {
    warn(message) {
      try {
        logger.warn(message);
      } catch {
        // A broken logger must not break (or crash) delivery.
      }
    },
  };
}

type RefreshingCredentials = ReturnType<typeof createRefreshingCredentials>;

export interface ConnectionManagerConfig {
  /**
   * `true` keeps the process alive while connected or while a reconnection is scheduled (readers). `false`
   * (sinks): neither the connection (its socket, amqplib's heartbeat timers) nor a scheduled reconnection holds
   * the event loop, so a program that ends without `shutdown()` exits once core's `beforeExit` flush is done.
   */
  readonly keepProcessAlive: boolean;
  /** Prefix for log lines and error messages, e.g. `RabbitMQ sink`. */
  readonly label: string;
  readonly logger: RabbitMQLogger;
  /** Injected for tests of the backoff; defaults to `Math.random`. */
  readonly random?: () => number;
}

type Listener<T> = (value: T) => void;

const UPDATE_SECRET_TIMEOUT_MS = 10_000;
/** How long a close handshake may take before the socket is destroyed instead. */
export const CLOSE_TIMEOUT_MS = 5_000;
const REMEMBERED_SECRETS = 8;

/**
 * Waits for `promise` (errors ignored) at most `ms`. Used for close handshakes, which a broker under a resource
 * alarm never answers because it stops reading from publishing connections.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<"settled" | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(
        () => "settled" as const,
        () => "settled" as const,
      ),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Rejects with a retriable `SinkError` (code `SEND_TIMEOUT`) when `signal` aborts first. */
export function abortableSend<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  return abortable(
    promise,
    signal,
    () => new SinkError(`${what} aborted`, { retriable: true, code: "SEND_TIMEOUT" }),
  );
}

/** amqplib's message for a login the broker refused: `Handshake terminated by server: 403 (ACCESS-REFUSED) ...`. */
const LOGIN_REFUSED = /ACCESS[-_]REFUSED/;

function errorCode(error: unknown): string | number | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string" || typeof code === "number") return code;
  }
  return undefined;
}

/**
 * Owns one AMQP connection: connects on demand, reconnects with backoff after a loss, tracks broker flow
 * control (`connection.blocked`), fetches fresh credentials for every new connection and pushes refreshed ones
 * to the live connection with `update-secret`. Used by the sink and the reader alike.
 */
export class ConnectionManager {
  readonly #options: RabbitMQConnectionOptions;
  readonly #config: ConnectionManagerConfig;
  readonly #refreshing: RefreshingCredentials | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  readonly #secrets: string[] = [];
  readonly #connectedListeners = new Set<Listener<ChannelModel>>();
  readonly #disconnectedListeners = new Set<Listener<Error | undefined>>();
  readonly #blockedListeners = new Set<Listener<string | null>>();

  #model: ChannelModel | null = null;
  #modelUsername: string | undefined;
  #connecting: Promise<ChannelModel> | null = null;
  /** Aborts the socket of the connection attempt in progress (see `close()`). */
  #abortAttempt: AbortController | null = null;
  #timer: NodeJS.Timeout | null = null;
  #nextAttemptAt = 0;
  #failures = 0;
  #lastError: Error | null = null;
  /**
   * Set when connecting can never succeed as configured (the provider threw a `ConfigurationError`, or the broker
   * refused the login before any connection succeeded, see `#connect`): every later attempt rejects with it.
   */
  #permanentError: Error | null = null;
  #blockedReason: string | null = null;
  #closed = false;
  #everConnected = false;
  #reconnects = 0;
  #secretUpdates = 0;
  #forceRefresh = false;
  /** The TLS options were turned into a secure context once (see `#connect`); they cannot change afterwards. */
  #tlsChecked = false;
  readonly #description: string;

  constructor(options: RabbitMQConnectionOptions, config: ConnectionManagerConfig) {
    this.#options = options;
    this.#config = { ...config, logger: safeLogger(config.logger) };
    this.#description = resolveConnection(options).description;
    if (options.credentials) {
      this.#refreshing = createRefreshingCredentials(options.credentials, { logger: this.#config.logger });
      this.#unsubscribe = this.#refreshing.subscribe((credential) => {
        this.#onCredentialRefreshed(credential);
      });
    }
  }

  /** `amqps://host:5671/vhost`, safe to show. */
  get description(): string {
    return this.#description;
  }

  /** The live connection, if any. */
  get connection(): ChannelModel | null {
    return this.#model;
  }

  /** The broker's reason while it blocks publishing (resource alarm), else `null`. */
  get blockedReason(): string | null {
    return this.#blockedReason;
  }

  /** Connections re-established after a loss. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Refreshed credentials accepted by the broker on a live connection (`update-secret-ok`). */
  get secretUpdates(): number {
    return this.#secretUpdates;
  }

  /** The last connection error, secrets removed. */
  get lastError(): Error | null {
    return this.#lastError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  onConnected(listener: Listener<ChannelModel>): () => void {
    this.#connectedListeners.add(listener);
    return () => this.#connectedListeners.delete(listener);
  }

  onDisconnected(listener: Listener<Error | undefined>): () => void {
    this.#disconnectedListeners.add(listener);
    return () => this.#disconnectedListeners.delete(listener);
  }

  /** Called with the reason when the broker blocks the connection and with `null` when it unblocks it. */
  onBlockedChange(listener: Listener<string | null>): () => void {
    this.#blockedListeners.add(listener);
    return () => this.#blockedListeners.delete(listener);
  }

  /** Removes secrets this manager has seen (current and recent passwords) from a message. */
  redact(text: string): string {
    return redactSecrets(text, this.#secrets);
  }

  /** Wraps any error as a `SinkError` whose message and cause carry no secret. */
  sanitize(error: unknown, prefix: string, retriable = true): SinkError {
    if (error instanceof SinkError && !prefix) return error;
    const raw = error instanceof Error ? error.message : String(error);
    const message = this.redact(raw);
    const cause = new Error(message);
    cause.name = error instanceof Error ? error.name : "Error";
    const code = errorCode(error);
    if (code !== undefined) Object.assign(cause, { code });
    return new SinkError(prefix ? `${prefix}: ${message}` : message, { retriable, cause });
  }

  /**
   * The live connection, or the result of the connection attempt in progress (started now if none is
   * scheduled). While a reconnection is scheduled it fails fast with a retriable error instead of waiting, so a
   * sink's `send` returns at once and the events stay in the pipeline's queue.
   */
  acquire(signal?: AbortSignal): Promise<ChannelModel> {
    if (this.#closed) {
      return Promise.reject(
        new SinkError(`${this.#config.label} is closed`, { retriable: false, code: "SINK_CLOSED" }),
      );
    }
    // Passed on as it is (not wrapped as a retriable SinkError) so that the delivery pipeline marks the sink
    // failed and reports the fix once, and a reader's run() rejects with it.
    if (this.#permanentError) return Promise.reject(this.#permanentError);
    if (this.#model) return Promise.resolve(this.#model);
    if (this.#connecting)
      return abortableSend(this.#connecting, signal, `connecting to ${this.#description}`);
    if (this.#timer) {
      const inMs = Math.max(0, this.#nextAttemptAt - Date.now());
      const last = this.#lastError ? `; last error: ${this.#lastError.message}` : "";
      return Promise.reject(
        new SinkError(`not connected to ${this.#description} (next attempt in ${inMs} ms${last})`, {
          retriable: true,
          cause: this.#lastError ?? undefined,
        }),
      );
    }
    return abortableSend(this.#startAttempt(), signal, `connecting to ${this.#description}`);
  }

  /**
   * Waits across attempts until a connection is up (readers); rejects only on close, abort, or an error no
   * attempt can get past (a `ConfigurationError`, thrown as it is).
   */
  async waitForConnection(signal?: AbortSignal): Promise<ChannelModel> {
    for (;;) {
      if (this.#closed)
        throw new SinkError(`${this.#config.label} is closed`, { retriable: false, code: "SINK_CLOSED" });
      if (signal?.aborted) throw new SinkError("waiting for a connection aborted", { retriable: true });
      if (this.#permanentError) throw this.#permanentError;
      if (this.#model) return this.#model;
      if (this.#connecting || !this.#timer) {
        try {
          return await this.acquire(signal);
        } catch (error) {
          if (this.#closed || signal?.aborted) throw error;
          continue;
        }
      }
      await this.#nextEvent(signal);
    }
  }

  /**
   * Destroys the socket of the connection attempt in progress, if any (it fails, as a refused connection
   * would). For closing: an attempt to a peer that accepted TCP and never answers runs its whole connect
   * timeout otherwise, keeping the host process alive after shutdown.
   */
  abortAttempt(): void {
    this.#abortAttempt?.abort();
  }

  /** Closes the connection and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#refreshing?.close();
    this.abortAttempt();
    if (this.#connecting) await this.#connecting.catch(() => {});
    const model = this.#model;
    this.#model = null;
    if (model) await closeQuietly(model);
  }

  /** Forces the current connection closed; the manager reconnects (used when a secret cannot be updated). */
  async dropConnection(): Promise<void> {
    const model = this.#model;
    if (model) await closeQuietly(model);
  }

  #remember(secrets: readonly string[]): void {
    for (const secret of secrets) {
      if (!this.#secrets.includes(secret)) this.#secrets.push(secret);
    }
    while (this.#secrets.length > REMEMBERED_SECRETS) this.#secrets.shift();
  }

  #nextEvent(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        offConnected();
        clearInterval(poll);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const offConnected = this.onConnected(done);
      // The timer may fire and fail again without a `connected` event; re-check periodically.
      const poll = setInterval(() => {
        if (this.#closed || this.#connecting || !this.#timer) done();
      }, 50);
      if (!this.#config.keepProcessAlive) poll.unref();
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #startAttempt(): Promise<ChannelModel> {
    const attempt = this.#connect();
    this.#connecting = attempt;
    attempt.then(
      () => {
        this.#connecting = null;
      },
      () => {
        this.#connecting = null;
        this.#scheduleReconnect();
      },
    );
    return attempt;
  }

  async #connect(): Promise<ChannelModel> {
    if (!this.#tlsChecked) {
      // tls.connect would build the same secure context on every attempt and fail the same way each time (a wrong
      // passphrase, a key that is not PEM): found once here, before the credential provider is asked, it is a
      // permanent error. Nothing is logged here: the owner reports it once.
      const refused = tlsOptionsError(this.#options);
      if (refused) {
        this.#failures += 1;
        this.#permanentError = refused;
        this.#lastError = refused;
        throw refused;
      }
      this.#tlsChecked = true;
    }
    let credential: Credentials | undefined;
    /** The credential was fetched from the provider just now because the one before it was refused. */
    let fetchedAfterRefusal = false;
    try {
      if (this.#refreshing) {
        // After ACCESS_REFUSED the cached secret is likely stale (rotated): fetch a new one first.
        fetchedAfterRefusal = this.#forceRefresh;
        credential = this.#forceRefresh ? await this.#refreshing.refresh() : await this.#refreshing.get();
        this.#forceRefresh = false;
      }
    } catch (error) {
      this.#failures += 1;
      if (isConfigurationError(error)) {
        // The credential cache passes a provider's ConfigurationError on untouched (it keeps `fix`, e.g. the
        // install command of a missing SDK). Nothing is logged here: the owner reports it once.
        this.#permanentError = error;
        this.#lastError = error;
        throw error;
      }
      this.#lastError = this.sanitize(error, `credentials for ${this.#description}`);
      throw this.#lastError;
    }
    const resolved = resolveConnection(this.#options, credential);
    this.#remember(resolved.secrets);
    let model: ChannelModel;
    const abort = new AbortController();
    this.#abortAttempt = abort;
    try {
      if (this.#closed)
        throw new SinkError(`${this.#config.label} is closed`, { retriable: false, code: "SINK_CLOSED" });
      // amqplib hands its socket options to net.connect / tls.connect, whose sockets honour `signal`.
      const socketOptions: typeof resolved.socketOptions & { signal: AbortSignal } = {
        ...resolved.socketOptions,
        signal: abort.signal,
      };
      model = await (this.#config.keepProcessAlive
        ? connect(resolved.target, socketOptions)
        : withUnrefSockets(() => connect(resolved.target, socketOptions)));
    } catch (error) {
      if (this.#closed || abort.signal.aborted) {
        throw new SinkError(`${this.#config.label} is closed`, { retriable: false, code: "SINK_CLOSED" });
      }
      this.#failures += 1;
      const refusal = this.sanitize(error, `cannot connect to ${this.#description}`);
      this.#lastError = refusal;
      if (LOGIN_REFUSED.test(refusal.message)) {
        // Refused before any connection succeeded, with credentials that cannot get fresher (fixed ones, or the
        // provider's answer fetched after a first refusal): every attempt would be refused alike. Nothing is
        // logged here: the owner reports it once (the pipeline marks the sink failed, a reader's run() rejects).
        if (!this.#everConnected && (this.#refreshing === undefined || fetchedAfterRefusal)) {
          const permanent = this.#loginRefused(refusal, resolved.target.username ?? "");
          this.#permanentError = permanent;
          this.#lastError = permanent;
          throw permanent;
        }
        this.#forceRefresh = true;
      }
      if (this.#failures === 1) this.#config.logger.warn(`${this.#config.label}: ${this.#lastError.message}`);
      throw this.#lastError;
    } finally {
      if (this.#abortAttempt === abort) this.#abortAttempt = null;
    }
    if (this.#closed) {
      await closeQuietly(model);
      throw new SinkError(`${this.#config.label} is closed`, { retriable: false, code: "SINK_CLOSED" });
    }
    this.#bind(model);
    // Applied to every new connection, so reconnects are released too.
    if (!this.#config.keepProcessAlive) releaseEventLoop(model);
    this.#model = model;
    this.#modelUsername = resolved.target.username;
    const wasReconnect = this.#everConnected;
    this.#everConnected = true;
    if (wasReconnect) {
      this.#reconnects += 1;
      this.#config.logger.warn(`${this.#config.label}: reconnected to ${this.#description}`);
    }
    this.#failures = 0;
    for (const listener of this.#connectedListeners) listener(model);
    return model;
  }

  /**
   * The `ConfigurationError` for a login the broker refuses for good: the sanitised refusal, the user it was
   * refused for (not a secret; the guest-from-another-host case shows in it) and what to check.
   */
  #loginRefused(refusal: SinkError, username: string): ConfigurationError {
    const provider = this.#refreshing !== undefined;
    const notes = [
      ...(username === "" ? [] : [`user "${this.redact(username)}"`]),
      ...(provider ? ["a credential fetched fresh from the credentials provider was refused too"] : []),
    ];
    const message = notes.length === 0 ? refusal.message : `${refusal.message} (${notes.join("; ")})`;
    const fix = provider
      ? "check what the credentials provider returns (user name and password, or for OAuth 2.0 a token whose " +
        "audience and scopes the broker accepts) and the broker log"
      : "check the user name and password (percent-encoded in a URL) and that the user exists " +
        "(rabbitmqctl list_users); RabbitMQ's guest user may only connect from localhost; the broker log says " +
        "why it refused the login";
    const path = provider
      ? "credentials"
      : this.#options.username !== undefined || this.#options.password !== undefined
        ? "password"
        : this.#options.url !== undefined
          ? "url"
          : "username";
    return new ConfigurationError(
      message,
      [{ path, message: "login refused by the broker (ACCESS_REFUSED)" }],
      {
        cause: refusal,
        fix,
      },
    );
  }

  #bind(model: ChannelModel): void {
    // Without an `error` listener an emitted connection error would crash the host process.
    model.on("error", (error: Error) => {
      this.#lastError = this.sanitize(error, `connection to ${this.#description}`);
    });
    model.on("close", (error?: Error) => {
      if (this.#model !== model) return;
      this.#model = null;
      if (this.#blockedReason !== null) {
        this.#blockedReason = null;
        for (const listener of this.#blockedListeners) listener(null);
      }
      const safe = error ? this.sanitize(error, `connection to ${this.#description} lost`) : undefined;
      if (safe) this.#lastError = safe;
      for (const listener of this.#disconnectedListeners) listener(safe);
      if (this.#closed) return;
      this.#config.logger.warn(
        `${this.#config.label}: connection to ${this.#description} closed${safe ? ` (${safe.message})` : ""}; reconnecting`,
      );
      this.#scheduleReconnect();
    });
    model.on("blocked", (reason: string) => {
      this.#blockedReason = reason || "blocked";
      this.#config.logger.warn(`${this.#config.label}: broker blocked publishing (${this.#blockedReason})`);
      for (const listener of this.#blockedListeners) listener(this.#blockedReason);
    });
    model.on("unblocked", () => {
      this.#blockedReason = null;
      this.#config.logger.warn(`${this.#config.label}: broker unblocked publishing`);
      for (const listener of this.#blockedListeners) listener(null);
    });
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#permanentError || this.#timer || this.#connecting || this.#model) return;
    const delay = this.#backoffDelay(Math.max(1, this.#failures));
    this.#nextAttemptAt = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#closed || this.#model || this.#connecting) return;
      this.#startAttempt().catch(() => {});
    }, delay);
    if (!this.#config.keepProcessAlive) this.#timer.unref();
  }

  #backoffDelay(attempt: number): number {
    const reconnect = this.#options.reconnect ?? {};
    const initial = reconnect.initialDelayMs ?? 250;
    const max = reconnect.maxDelayMs ?? 30_000;
    const multiplier = reconnect.multiplier ?? 2;
    const jitter = reconnect.jitter ?? 0.5;
    const base = Math.min(max, initial * multiplier ** (attempt - 1));
    const random = this.#config.random ?? Math.random;
    return Math.round(base * (1 - jitter * random()));
  }

  #onCredentialRefreshed(credential: Credentials): void {
    const model = this.#model;
    if (!model || this.#closed) return;
    const resolved = resolveConnection(this.#options, credential);
    this.#remember(resolved.secrets);
    if (resolved.target.username !== this.#modelUsername) {
      // update-secret cannot change the user: reconnect so the new identity takes effect.
      void this.dropConnection();
      return;
    }
    const update = model.updateSecret(
      Buffer.from(credential.password, "utf8"),
      "streamll credential refresh",
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("no update-secret-ok from the broker")),
        UPDATE_SECRET_TIMEOUT_MS,
      );
      timer.unref();
    });
    Promise.race([update, timeout]).then(
      () => {
        clearTimeout(timer);
        this.#secretUpdates += 1;
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (this.#model !== model) return;
        const safe = this.sanitize(error, "update-secret failed");
        this.#config.logger.warn(
          `${this.#config.label}: ${safe.message}; reconnecting with the new credential`,
        );
        void closeQuietly(model);
      },
    );
  }
}

/**
 * Calls `open` with every client socket it creates unref'd: amqplib opens its socket synchronously inside
 * `connect()` and does not hand it out until the handshake is done, so a connection attempt to a broker that
 * accepts and never answers would otherwise hold an ended program until `connectTimeoutMs`. Node publishes each
 * new client socket (TCP or TLS) on the `net.client.socket` diagnostics channel as it is created.
 */
function withUnrefSockets<T>(open: () => T): T {
  const onSocket = (message: unknown): void => {
    (message as { socket?: { unref?: () => void } } | null)?.socket?.unref?.();
  };
  subscribe("net.client.socket", onSocket);
  try {
    return open();
  } finally {
    unsubscribe("net.client.socket", onSocket);
  }
}

/** What {@link releaseEventLoop} reaches of amqplib's connection; none of it is part of the typed API. */
interface UnrefableConnection {
  /** The socket (a `net.Socket` or `tls.TLSSocket`). */
  readonly stream?: { unref?: () => void };
  /** amqplib's `Heart`: two `setInterval`s, set while the connection opens, none with a heartbeat of 0. */
  readonly heartbeater?: {
    readonly sendTimer?: { unref?: () => void };
    readonly recvTimer?: { unref?: () => void };
  } | null;
}

/**
 * Lets an open connection sit idle without keeping the host process alive: unrefs its socket and the
 * heartbeat timers amqplib armed while opening it. Pending publishes are still waited for: core's exit flush
 * holds the process with its own deadline timer while it delivers.
 */
function releaseEventLoop(model: ChannelModel): void {
  const connection = model.connection as unknown as UnrefableConnection;
  connection.stream?.unref?.();
  connection.heartbeater?.sendTimer?.unref?.();
  connection.heartbeater?.recvTimer?.unref?.();
}

async function closeQuietly(model: ChannelModel): Promise<void> {
  await settleWithin(model.close(), CLOSE_TIMEOUT_MS);
  // Always release the socket afterwards. A broker under a resource alarm stops reading from publishing
  // connections: the close handshake may never finish, and even when amqplib considers the connection closed
  // the socket can stay open (observed on RabbitMQ 3.10.8), keeping the host process alive.
  destroySocket(model);
}

function destroySocket(model: ChannelModel): void {
  // amqplib keeps the socket on the connection's `stream`; it is not part of the typed API.
  const stream = (model.connection as unknown as { stream?: { destroy?: () => void } }).stream;
  try {
    stream?.destroy?.();
  } catch {
    // Nothing left to release.
  }
}
