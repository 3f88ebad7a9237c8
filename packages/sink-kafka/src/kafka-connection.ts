import { isIP, connect as netConnect, Socket } from "node:net";
import { type ConnectionOptions, connect as tlsConnect } from "node:tls";
import {
  type CredentialProvider,
  createRefreshingCredentials,
  type RefreshingCredentials,
} from "@streamll/core";
import { isConfigurationError, v } from "@streamll/core/internal";
import { type ISocketFactory, Kafka, type KafkaConfig, type Mechanism } from "kafkajs";
import {
  consoleKafkaLogger,
  createKafkaLogCreator,
  type KafkaLogger,
  type KafkaLogLevel,
  SecretScrubber,
  toKafkaJsLogLevel,
} from "./kafka-logger";
import {
  type OAuthBearerTokens,
  oauthBearerMechanism,
  passwordMechanism,
  permanentTokenRejection,
  quietAuthenticationLogs,
  retryTokenRejection,
} from "./kafka-sasl";
import { patchKafkaJsRequestQueue } from "./kafkajs-request-queue";

/** TLS settings. Certificate verification is on unless `rejectUnauthorized` is explicitly `false`. */
export interface KafkaTlsOptions {
  /** Trusted CA certificates (PEM). Default: Node's bundled public CAs. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Client certificate chain (PEM) for mutual TLS. */
  cert?: string | Buffer;
  /** Private key of `cert` (PEM). */
  key?: string | Buffer;
  /** Passphrase of an encrypted `key`. Never logged. */
  passphrase?: string;
  /** Server name for SNI and certificate checks. Default: the broker's host name (not set for IP addresses). */
  servername?: string;
  /**
   * Verify the broker's certificate chain and host name. Default `true`. Setting `false` accepts any
   * certificate (a man in the middle included); meant only for throwaway local brokers.
   */
  rejectUnauthorized?: boolean;
  /** Oldest TLS version accepted. Default `TLSv1.2`. */
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

/** A bearer token for SASL/OAUTHBEARER, as a token provider returns it. */
export interface KafkaOAuthToken {
  /** The token (a JWT, an MSK IAM signed URL, ...). Never logged. */
  token: string;
  /** When the token stops working (Date or epoch ms). Omit for tokens without expiry. */
  expiresAt?: Date | number;
}

/** Fetches a new bearer token. Called only when the cached token is missing or about to expire. */
export type KafkaOAuthTokenProvider = () => Promise<KafkaOAuthToken>;

/** SASL with a user name and password: PLAIN (only over TLS in production) or SCRAM. */
export interface KafkaPasswordSasl {
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  username: string;
  /** Never logged, never in error messages. */
  password: string;
}

/** SASL/OAUTHBEARER with tokens from a provider, cached and refreshed ahead of expiry. */
export interface KafkaOAuthSasl {
  mechanism: "oauthbearer";
  /** Called on first connect and again shortly before the cached token expires; never once per handshake. */
  tokenProvider: KafkaOAuthTokenProvider;
  /**
   * Refresh this long before the token expires. Default 60 000 ms (never more than half the lifetime). Must be
   * at least `reauthenticationThresholdMs`, so a re-authentication always gets the new token.
   */
  refreshAheadMs?: number;
}

/** SASL settings. */
export type KafkaSaslOptions = KafkaPasswordSasl | KafkaOAuthSasl;

/** kafkajs's own retries of one request (metadata, connect, produce), inside one `send` of the sink. */
export interface KafkaClientRetryOptions {
  /** Retries after the first try. Default 2: the delivery pipeline retries batches, so this stays short. */
  retries?: number;
  /** First delay. Default 100 ms. */
  initialRetryTimeMs?: number;
  /** Longest delay. Default 1 000 ms. */
  maxRetryTimeMs?: number;
}

/** How to reach and authenticate to a Kafka cluster; shared by `KafkaSink` and `KafkaEventReader`. */
export interface KafkaConnectionOptions {
  /**
   * Bootstrap brokers as `host:port`, or an async function returning them (called on every (re)connect,
   * e.g. MSK broker discovery).
   */
  brokers: readonly string[] | (() => Promise<readonly string[]>);
  /** Client id the brokers see in logs and quotas. Default `streamll`. */
  clientId?: string;
  /** `true` for TLS with the default trust store, or TLS settings. Default: no TLS. */
  tls?: boolean | KafkaTlsOptions;
  /** SASL authentication. Default: none. */
  sasl?: KafkaSaslOptions;
  /** TCP (and TLS) connect timeout. Default 3 000 ms. */
  connectionTimeoutMs?: number;
  /** SASL handshake timeout. Default 10 000 ms. */
  authenticationTimeoutMs?: number;
  /**
   * Re-authenticate this long before the broker's session lifetime ends (`connections.max.reauth.ms`, token
   * expiry). Default 10 000 ms.
   */
  reauthenticationThresholdMs?: number;
  /** Timeout of one request to a broker. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /**
   * TCP keep-alive probe delay on idle connections. Default 60 000 ms, well below the 240 s after which
   * Azure (Event Hubs, load balancers) drops idle connections.
   */
  keepAliveDelayMs?: number;
  /**
   * Metadata (partition leaders) is refreshed after this long even without errors. Default 180 000 ms, so a
   * connection is used at least every 3 minutes and survives services that close idle ones after 240 s.
   */
  metadataMaxAgeMs?: number;
  /**
   * Largest record batch (and request) the sink sends, in bytes. An event larger than this alone is dropped
   * as `rejected` without being sent; a pipeline batch larger than this is split into several requests.
   * Default 1 000 000: below the broker default `message.max.bytes` (1 048 588) and the Event Hubs request
   * limit (1 046 528). Raise it only together with the topic's `max.message.bytes`.
   */
  maxMessageBytes?: number;
  /** kafkajs's request retries. See {@link KafkaClientRetryOptions}. */
  retry?: KafkaClientRetryOptions;
  /** Receives connection trouble and kafkajs's log lines, secrets scrubbed. Default: stderr. */
  logger?: KafkaLogger;
  /** Which kafkajs log lines reach `logger`. Default `error`. */
  logLevel?: KafkaLogLevel;
}

/** Defaults of the connection options, shaped as the options are (`retry` nested), so they can be spread into them. */
export const DEFAULT_KAFKA_CONNECTION = Object.freeze({
  clientId: "streamll",
  connectionTimeoutMs: 3_000,
  authenticationTimeoutMs: 10_000,
  reauthenticationThresholdMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveDelayMs: 60_000,
  metadataMaxAgeMs: 180_000,
  maxMessageBytes: 1_000_000,
  retry: Object.freeze({ retries: 2, initialRetryTimeMs: 100, maxRetryTimeMs: 1_000 }),
});

/** Slack for a token's `exp` being rounded down to whole seconds and for the handshake's own latency. */
const REAUTH_MARGIN_MS = 1_000;

/** A kafkajs client built from {@link KafkaConnectionOptions}, plus what must be released with it. */
export interface KafkaClientHandle {
  readonly kafka: Kafka;
  readonly logger: KafkaLogger;
  readonly scrubber: SecretScrubber;
  readonly metadataMaxAgeMs: number;
  readonly maxMessageBytes: number;
  /** The OAUTHBEARER token cache, when that mechanism is used. */
  readonly tokens: RefreshingCredentials | undefined;
  /**
   * Ends the client for good: stops token refresh timers, silences kafkajs's logging, destroys every socket
   * it still has open and refuses new ones. kafkajs's own `disconnect()` waits for requests in flight, which
   * against a broker that accepted the connection and never answers is its whole `requestTimeout` (30 s),
   * keeping the host process alive long after shutdown; call this after giving `disconnect()` its chance.
   */
  close(): void;
  /**
   * Destroys every socket open now, so the requests waiting on them fail at once; the client stays usable
   * (kafkajs connects again when asked). For abandoning a connection attempt to a broker that never answers.
   */
  dropConnections(): void;
  /**
   * Resolves once every socket open now has closed (at most `timeoutMs`), so a connection the broker ended
   * (after refusing a handshake) is gone before connecting again.
   */
  settled(timeoutMs: number): Promise<void>;
  /**
   * The `ConfigurationError` the `brokers` function last threw (a missing optional SDK of
   * `mskBrokersFromArn`, a bad ARN), if it did. kafkajs wraps what that function throws in a new
   * `KafkaJSConnectionError` of the message alone, so the permanent error would otherwise read as an outage.
   */
  brokersFailure(): Error | undefined;
}

const BROKER_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/;

const pem = v.union(
  v.string({ min: 1, expected: "PEM text" }),
  v.custom<Buffer>("a Buffer", (value) => Buffer.isBuffer(value)),
);

/** `KafkaTlsOptions` as the sink, the reader and the cloud helpers check them. */
export const kafkaTlsOptionsSchema = v
  .object<KafkaTlsOptions>({
    ca: v.union(pem, v.array(pem, { min: 1 })).optional(),
    cert: pem.optional(),
    key: pem.optional(),
    passphrase: v.string().optional(),
    servername: v.string({ min: 1 }).optional(),
    rejectUnauthorized: v.boolean().optional(),
    minVersion: v.oneOf(["TLSv1.2", "TLSv1.3"]).optional(),
  })
  .refine((tls, report) => {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      report("cert and key must be given together", tls.cert === undefined ? "cert" : "key");
    }
  });

const passwordSaslSchema = v.object<KafkaPasswordSasl>({
  mechanism: v.oneOf(["plain", "scram-sha-256", "scram-sha-512"]),
  username: v.string({ min: 1 }),
  password: v.string({ min: 1 }),
});

const oauthSaslSchema = v.object<KafkaOAuthSasl>({
  mechanism: v.oneOf(["oauthbearer"]),
  tokenProvider: v.fn<KafkaOAuthTokenProvider>("a function () => Promise<{ token, expiresAt? }>"),
  refreshAheadMs: v.number({ min: 0 }).optional(),
});

/** `KafkaConnectionOptions`; the sink's and the reader's schemas extend it. */
export const kafkaConnectionOptionsSchema = v
  .object<KafkaConnectionOptions>({
    brokers: v.union(
      v.array(v.string({ pattern: BROKER_PATTERN, expected: "host:port" }), { min: 1 }),
      v.fn<() => Promise<readonly string[]>>("an async function returning host:port strings"),
    ),
    clientId: v.string({ min: 1 }).optional(),
    tls: v.union(v.boolean(), kafkaTlsOptionsSchema).optional(),
    sasl: v
      .variant("mechanism", {
        plain: passwordSaslSchema,
        "scram-sha-256": passwordSaslSchema,
        "scram-sha-512": passwordSaslSchema,
        oauthbearer: oauthSaslSchema,
      })
      .optional(),
    connectionTimeoutMs: v.number({ min: 1 }).optional(),
    authenticationTimeoutMs: v.number({ min: 1 }).optional(),
    reauthenticationThresholdMs: v.number({ min: 0 }).optional(),
    requestTimeoutMs: v.number({ min: 1 }).optional(),
    keepAliveDelayMs: v.number({ min: 1 }).optional(),
    metadataMaxAgeMs: v.number({ min: 1 }).optional(),
    maxMessageBytes: v.integer({ min: 1_024 }).optional(),
    retry: v
      .object<KafkaClientRetryOptions>({
        retries: v.integer({ min: 0 }).optional(),
        initialRetryTimeMs: v.number({ min: 1 }).optional(),
        maxRetryTimeMs: v.number({ min: 1 }).optional(),
      })
      .optional(),
    logger: v
      .custom<KafkaLogger>(
        "an object with a warn() method",
        (value) => typeof (value as { warn?: unknown } | null)?.warn === "function",
      )
      .optional(),
    logLevel: v.oneOf(["nothing", "error", "warn", "info"]).optional(),
  })
  .refine((options, report) => {
    // kafkajs re-authenticates `reauthenticationThresholdMs` before the session (token) ends and asks the
    // cache for a token then; a cache refreshing later than that would hand it the expiring token again.
    if (options.sasl?.mechanism !== "oauthbearer") return;
    const refreshAhead = options.sasl.refreshAheadMs ?? 60_000;
    const threshold =
      options.reauthenticationThresholdMs ?? DEFAULT_KAFKA_CONNECTION.reauthenticationThresholdMs;
    if (refreshAhead < threshold) {
      report(
        `must be >= reauthenticationThresholdMs (${threshold}), got ${refreshAhead}`,
        "sasl.refreshAheadMs",
      );
    }
  });

/** kafkajs `ssl` settings for `tls` options: verification on unless explicitly off, TLS 1.2 or newer. */
export function toTlsOptions(tls: true | KafkaTlsOptions): ConnectionOptions {
  const source: KafkaTlsOptions = tls === true ? {} : tls;
  const out: ConnectionOptions = {
    // Verification stays on unless the caller turned it off in so many words.
    rejectUnauthorized: source.rejectUnauthorized !== false,
    minVersion: source.minVersion ?? "TLSv1.2",
  };
  if (source.ca !== undefined) out.ca = Array.isArray(source.ca) ? [...source.ca] : (source.ca as string);
  if (source.cert !== undefined) out.cert = source.cert;
  if (source.key !== undefined) out.key = source.key;
  if (source.passphrase !== undefined) out.passphrase = source.passphrase;
  if (source.servername !== undefined) out.servername = source.servername;
  return out;
}

/** String values of a log context scrubbed of secrets (a token provider's error text may quote one). */
function scrubContext(scrubber: SecretScrubber, context: object | undefined): object | undefined {
  if (context === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) {
    out[key] = typeof value === "string" ? scrubber.scrub(value) : value;
  }
  return out;
}

/** The sockets of one client, so closing the client can end them all (see {@link KafkaClientHandle.close}). */
class SocketTracker {
  readonly #open = new Set<Socket>();
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Like kafkajs's default socket factory, with a configurable keep-alive delay; none once closed.
   * `keepProcessAlive: false` unrefs every socket it opens (each reconnect and each broker's connection goes
   * through here), so open connections alone never hold the host process; see {@link KafkaClientRole}.
   */
  factory(keepAliveDelayMs: number, keepProcessAlive: boolean): ISocketFactory {
    return ({ host, port, ssl, onConnect }) => {
      if (this.#closed) {
        // kafkajs retrying a connection after close: an unconnected socket it sees fail at once.
        const socket = new Socket();
        process.nextTick(() => socket.destroy(new Error("the Kafka client is closed")));
        return socket;
      }
      const socket = ssl
        ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...ssl }, onConnect)
        : netConnect({ host, port }, onConnect);
      socket.setKeepAlive(true, keepAliveDelayMs);
      // A TLS socket forwards unref to the TCP socket under it.
      if (!keepProcessAlive) socket.unref();
      this.#open.add(socket);
      socket.once("close", () => this.#open.delete(socket));
      return socket;
    };
  }

  /**
   * Destroys every open socket with an error, so kafkajs rejects the requests waiting on it (and its pending
   * `disconnect()` completes) instead of waiting out their timeouts.
   */
  close(): void {
    this.#closed = true;
    this.dropAll("the Kafka client is closed");
  }

  /**
   * Resolves once every socket open now has closed, or after `timeoutMs`. kafkajs reuses its connection
   * objects: a socket the broker closes after refusing a handshake must be gone before connecting again, or
   * kafkajs's late handling of that close ends the new socket ("write after end").
   */
  async settled(timeoutMs: number): Promise<void> {
    const open = [...this.#open].filter((socket) => !socket.closed);
    if (open.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(open.map((socket) => new Promise((resolve) => socket.once("close", resolve)))),
        new Promise((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    // kafkajs's own close handlers run on the events above; let them finish.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Destroys every open socket, as `close()` does, but lets new ones open. */
  dropAll(reason: string): void {
    for (const socket of this.#open) socket.destroy(new Error(reason));
    this.#open.clear();
  }
}

/** What a client is for, as far as the host process's lifetime is concerned. */
export interface KafkaClientRole {
  /**
   * `false` (sinks): the client's sockets never keep the host process alive by themselves, so a program that
   * ends without `shutdown()` exits once core's `beforeExit` flush is done (its deadline timer holds the
   * process while pending events are delivered). Default `true` (readers, the CLI): a consumer's connections
   * hold the process while it runs.
   */
  readonly keepProcessAlive?: boolean;
}

/**
 * The OAUTHBEARER token for each handshake, from one refresh-ahead cache for the client's whole life: kafkajs
 * asks on every handshake (each broker connection, each re-authentication), the token source is asked only
 * when the token is about to expire, or once after the broker refused the cached token. A refusal of a token
 * fetched fresh after a refusal is permanent (`ConfigurationError`); any other refusal makes the next
 * handshake fetch a fresh token (see `retryTokenRejection`).
 */
function oauthBearerTokens(cache: RefreshingCredentials, threshold: number): OAuthBearerTokens {
  let forcedFor: string | undefined;
  /** The last token the broker refused that was not fetched fresh; the next handshake replaces it. */
  let refused: string | undefined;
  /** The token fetched because the broker refused the one before; its refusal is permanent. */
  let fresh: string | undefined;
  return {
    async token() {
      const credentials = await cache.get();
      if (refused !== undefined && credentials.password === refused) {
        // `refresh()` joins a fetch already under way, so concurrent handshakes share one new token.
        const token = (await cache.refresh()).password;
        refused = undefined;
        fresh = token;
        return token;
      }
      // kafkajs re-authenticates `threshold` before the broker session ends, and the session ends no later
      // than the token (whose `exp` may be up to a second before the `expiresAt` the provider reported).
      // Handing it a token that expires within that window makes the broker refuse the re-authentication and
      // drop the connection, so a fresh token is fetched first, once per token: a provider that only hands
      // out tokens this short cannot turn every handshake into a fetch.
      const expiresAt = credentials.expiresAt;
      const remaining =
        expiresAt === undefined
          ? Number.POSITIVE_INFINITY
          : (expiresAt instanceof Date ? expiresAt.getTime() : expiresAt) - Date.now();
      if (remaining < threshold + REAUTH_MARGIN_MS && forcedFor !== credentials.password) {
        forcedFor = credentials.password;
        return (await cache.refresh()).password;
      }
      return credentials.password;
    },
    accepted(token) {
      if (token === fresh) fresh = undefined;
    },
    rejected(token, reason) {
      if (token === fresh) return permanentTokenRejection(reason);
      refused = token;
      return retryTokenRejection(reason);
    },
  };
}

/**
 * Builds the kafkajs client for validated options. The OAUTHBEARER provider handed to kafkajs reads from one
 * refresh-ahead token cache for the client's whole life: kafkajs asks on every handshake (each broker
 * connection, each re-authentication), the token source is asked only when the token is about to expire.
 */
export function createKafkaClient(
  options: KafkaConnectionOptions,
  role: KafkaClientRole = {},
): KafkaClientHandle {
  patchKafkaJsRequestQueue();
  const d = DEFAULT_KAFKA_CONNECTION;
  const logger = options.logger ?? consoleKafkaLogger;
  const scrubber = new SecretScrubber();
  const sockets = new SocketTracker();
  let tokens: RefreshingCredentials | undefined;
  let sasl: Mechanism | undefined;
  const { sasl: saslOptions } = options;
  if (saslOptions?.mechanism === "oauthbearer") {
    const fetchToken = saslOptions.tokenProvider;
    const provider: CredentialProvider = async () => {
      const result = await fetchToken();
      if (typeof result !== "object" || result === null || typeof result.token !== "string") {
        throw new Error("tokenProvider must resolve to { token: string, expiresAt? }");
      }
      scrubber.add(result.token);
      return result.expiresAt === undefined
        ? { password: result.token }
        : { password: result.token, expiresAt: result.expiresAt };
    };
    const cache = createRefreshingCredentials(provider, {
      refreshAheadMs: saslOptions.refreshAheadMs ?? 60_000,
      logger: {
        warn: (message, context) => logger.warn(scrubber.scrub(message), scrubContext(scrubber, context)),
      },
    });
    tokens = cache;
    sasl = oauthBearerMechanism(
      oauthBearerTokens(cache, options.reauthenticationThresholdMs ?? d.reauthenticationThresholdMs),
      scrubber,
    );
  } else if (saslOptions !== undefined) {
    scrubber.add(saslOptions.password);
    sasl = passwordMechanism(saslOptions, scrubber);
  }
  if (typeof options.tls === "object") scrubber.add(options.tls.passphrase);

  const brokers = options.brokers;
  let brokersFailure: Error | undefined;
  const resolveBrokers = async (resolve: () => Promise<readonly string[]>): Promise<string[]> => {
    try {
      const list = [...(await resolve())];
      brokersFailure = undefined;
      return list;
    } catch (error) {
      if (isConfigurationError(error)) brokersFailure = error;
      throw error;
    }
  };
  const config: KafkaConfig = {
    clientId: options.clientId ?? d.clientId,
    brokers: typeof brokers === "function" ? () => resolveBrokers(brokers) : [...brokers],
    connectionTimeout: options.connectionTimeoutMs ?? d.connectionTimeoutMs,
    authenticationTimeout: options.authenticationTimeoutMs ?? d.authenticationTimeoutMs,
    reauthenticationThreshold: options.reauthenticationThresholdMs ?? d.reauthenticationThresholdMs,
    requestTimeout: options.requestTimeoutMs ?? d.requestTimeoutMs,
    enforceRequestTimeout: true,
    retry: {
      retries: options.retry?.retries ?? d.retry.retries,
      initialRetryTime: options.retry?.initialRetryTimeMs ?? d.retry.initialRetryTimeMs,
      maxRetryTime: options.retry?.maxRetryTimeMs ?? d.retry.maxRetryTimeMs,
    },
    socketFactory: sockets.factory(
      options.keepAliveDelayMs ?? d.keepAliveDelayMs,
      role.keepProcessAlive ?? true,
    ),
    logLevel: toKafkaJsLogLevel(options.logLevel ?? "error"),
    // Once closed, kafkajs's complaints about the sockets closing ended them are noise.
    // Refused credentials reach the caller as an error (a permanent refusal is reported once by the
    // pipeline), not as kafkajs log lines repeated on every attempt.
    logCreator: createKafkaLogCreator(
      quietAuthenticationLogs(logger),
      scrubber,
      Date.now,
      () => sockets.closed,
    ),
  };
  if (options.tls !== undefined && options.tls !== false) config.ssl = toTlsOptions(options.tls);
  if (sasl !== undefined) config.sasl = sasl;
  return {
    kafka: new Kafka(config),
    logger,
    scrubber,
    metadataMaxAgeMs: options.metadataMaxAgeMs ?? d.metadataMaxAgeMs,
    maxMessageBytes: options.maxMessageBytes ?? d.maxMessageBytes,
    tokens,
    close() {
      tokens?.close();
      sockets.close();
    },
    dropConnections() {
      sockets.dropAll("the connection attempt was abandoned");
    },
    settled(timeoutMs) {
      return sockets.settled(timeoutMs);
    },
    brokersFailure() {
      return brokersFailure;
    },
  };
}
