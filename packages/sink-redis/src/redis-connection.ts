import type { Socket } from "node:net";
import type { TLSSocket, ConnectionOptions as TlsConnectionOptions } from "node:tls";
import type { CredentialProvider, Credentials } from "@streamll/core";
import { ConfigurationError, createRefreshingCredentials } from "@streamll/core";
import {
  isConfigurationError,
  tlsConnectionOptionsSchema,
  urlSchemeForMessage,
  v,
} from "@streamll/core/internal";
import type { ClusterNode, ClusterOptions, DNSLookupFunction, RedisOptions } from "ioredis";
import { Cluster, Redis } from "ioredis";
import {
  isAuthRejection,
  RedisSinkError,
  redisErrorCode,
  safeRedisMessage,
  toRedisSinkError,
} from "./redis-errors";
import { isSecureContextError, type SocketErrorGuardConnector, trackingConnector } from "./socket-connector";

/**
 * A rotating credential for Redis: the cloud adapters (`@streamll/sink-redis/elasticache`, `/azure`,
 * `/memorystore`) return one, and any `CredentialProvider` can be wrapped in one.
 */
export interface RedisCredentials {
  /** Fetches a fresh credential. Called at start-up and again `refreshAheadMs` before each one expires. */
  readonly provider: CredentialProvider;
  /**
   * How long before `expiresAt` a credential is renewed; live connections are then re-authenticated with
   * `AUTH` and reconnects use the new one. Default 5 minutes.
   */
  readonly refreshAheadMs?: number;
}

/** Redis Cluster settings. */
export interface RedisClusterConfig {
  /**
   * Startup nodes (e.g. the ElastiCache configuration endpoint). Default: the host and port of `url` (or
   * `host`/`port`).
   */
  nodes?: readonly ClusterNode[];
  /**
   * ioredis cluster options, applied over streamll's defaults, passed to ioredis unchecked. `redisOptions` in
   * here is merged with the connection settings (TLS, credentials, timeouts) streamll derives from the other
   * options.
   */
  options?: ClusterOptions;
}

/** How to reach Redis. Shared by {@link RedisSink} and {@link RedisEventReader}. */
export interface RedisConnectionOptions {
  /**
   * `redis://[[user][:password]@]host[:port][/db]` or `rediss://…` for TLS (verification on). Credentials in the
   * URL are used unless `credentials` is set. Default `redis://127.0.0.1:6379`.
   */
  url?: string;
  /** Host name or IP; overrides the URL's host. */
  host?: string;
  /** Port; overrides the URL's port. */
  port?: number;
  /** ACL user name (Redis 6+); overrides the URL's user. */
  username?: string;
  /** Password or AUTH token; overrides the URL's password. Never logged. */
  password?: string;
  /** Database index; overrides the URL's path. Redis Cluster has only database 0, so `cluster` accepts only 0. */
  db?: number;
  /**
   * TLS. `true` uses the system's trusted CAs with hostname verification; an object is passed to
   * `tls.connect` (e.g. `{ ca: serverCaPem }` for a private CA): its keys must be keys of Node's
   * `tls.ConnectionOptions` (a misspelled one is rejected), their values are checked by Node. A `rediss://` URL
   * implies `true`. Verification is only off when you pass `{ rejectUnauthorized: false }` yourself.
   */
  tls?: boolean | TlsConnectionOptions;
  /**
   * Rotating credentials (IAM tokens, Entra tokens, …). Replaces `username`/`password` (giving both is a
   * `ConfigurationError`) and the credentials of the URL.
   */
  credentials?: CredentialProvider | RedisCredentials;
  /** Use `Redis.Cluster`. `true` starts from `url`/`host`/`port`. */
  cluster?: boolean | RedisClusterConfig;
  /** Time allowed to open a connection (TCP + TLS + AUTH) before a send fails and is retried. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Time Redis may stay silent while replies are outstanding. After that the connection is treated as dead:
   * it is closed and reopened, and the batch fails (retriably). Default 5000 ms.
   */
  commandTimeoutMs?: number;
  /**
   * Extra ioredis options (standalone) or `redisOptions` (cluster nodes), applied over streamll's defaults.
   * Use it for `connectionName`, `family`, `keepAlive` and the like. Passed to ioredis unchecked: ioredis
   * defines and checks these.
   */
  redisOptions?: RedisOptions;
}

const credentialProviderSchema = v.fn<CredentialProvider>("a credential provider function");

/** `RedisConnectionOptions`; the sink's and the reader's schemas extend it. */
export const redisConnectionOptionsSchema = v
  .object<RedisConnectionOptions>({
    url: v.string({ pattern: /^rediss?:\/\//i, expected: "a redis:// or rediss:// URL" }).optional(),
    host: v.string({ min: 1 }).optional(),
    port: v.integer({ min: 1, max: 65_535 }).optional(),
    username: v.string({ min: 1 }).optional(),
    password: v.string().optional(),
    db: v.integer({ min: 0 }).optional(),
    tls: v.union(v.boolean(), tlsConnectionOptionsSchema).optional(),
    credentials: v
      .union(
        credentialProviderSchema,
        v.object<RedisCredentials>({
          provider: credentialProviderSchema,
          refreshAheadMs: v.number({ min: 1 }).optional(),
        }),
      )
      .optional(),
    cluster: v
      .union(
        v.boolean(),
        v.object<RedisClusterConfig>({
          // Each node as ioredis takes it: "host:port", a port, or { host, port } (checked, so that a
          // misspelled `hots` is not a node at 127.0.0.1).
          nodes: v
            .array(
              v.union(
                v.string({ min: 1 }),
                v.integer({ min: 1, max: 65_535 }),
                v.object<{ host?: string; port?: number }>({
                  host: v.string({ min: 1 }).optional(),
                  port: v.integer({ min: 1, max: 65_535 }).optional(),
                }),
              ),
              { min: 1 },
            )
            .optional(),
          options: v
            .passthrough<ClusterOptions>("ioredis ClusterOptions, passed to ioredis unchecked")
            .optional(),
        }),
      )
      .optional(),
    connectTimeoutMs: v.number({ min: 1 }).optional(),
    commandTimeoutMs: v.number({ min: 1 }).optional(),
    redisOptions: v.passthrough<RedisOptions>("ioredis RedisOptions, passed to ioredis unchecked").optional(),
  })
  .refine((options, report) => {
    if (
      options.cluster !== undefined &&
      options.cluster !== false &&
      options.db !== undefined &&
      options.db !== 0
    ) {
      report(`must be 0 with cluster: Redis Cluster has only database 0 (got ${options.db})`, "db");
    }
    // Credentials from a provider replace these; giving both would silently ignore one.
    if (options.credentials !== undefined) {
      for (const key of ["username", "password"] as const) {
        if (options[key] !== undefined) report("cannot be combined with credentials, which replace it", key);
      }
    }
  });

/** Default of {@link RedisConnectionOptions.connectTimeoutMs}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default of {@link RedisConnectionOptions.commandTimeoutMs}. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** Default of {@link RedisCredentials.refreshAheadMs} for a plain credential provider. */
export const DEFAULT_REFRESH_AHEAD_MS = 5 * 60_000;

/** The parts of a Redis URL. */
export interface ParsedRedisUrl {
  /** Host name or IP (IPv6 without brackets); `127.0.0.1` when the URL has none. */
  host: string;
  /** Port; 6379 when the URL has none. */
  port: number;
  /** ACL user name, percent-decoded. */
  username: string | undefined;
  /** Password, percent-decoded. A secret: never log it. */
  password: string | undefined;
  /** Database index from the path (`/2`). */
  db: number | undefined;
  /** True for `rediss://`. */
  tls: boolean;
}

function configError(path: string, message: string): ConfigurationError {
  return new ConfigurationError(`Redis ${path} ${message}`, [{ path, message }]);
}

/** Parses a `redis://` or `rediss://` URL. Errors never repeat the URL, which may hold a password. */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw configError("url", "is not a valid URL (expected redis://host:port or rediss://host:port)");
  }
  const scheme = parsed.protocol;
  if (scheme !== "redis:" && scheme !== "rediss:") {
    throw configError("url", `must use redis:// or rediss://, got ${urlSchemeForMessage(scheme)}`);
  }
  let db: number | undefined;
  const path = parsed.pathname.replace(/^\//, "");
  if (path !== "") {
    db = Number(path);
    if (!Number.isInteger(db) || db < 0)
      throw configError("url", "has a database path that is not an integer");
  }
  const port = parsed.port === "" ? 6379 : Number(parsed.port);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port,
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    db,
    tls: scheme === "rediss:",
  };
}

function normaliseCredentials(
  credentials: CredentialProvider | RedisCredentials | undefined,
): RedisCredentials | undefined {
  if (credentials === undefined) return undefined;
  return typeof credentials === "function" ? { provider: credentials } : credentials;
}

// Reconnect quickly at first, then every 2 s at most: the delivery pipeline paces retries and the breaker, so
// a long ioredis back-off would only delay recovery after the server is back.
function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2_000) + Math.floor(Math.random() * 100);
}

type AnyClient = Redis | Cluster;

/** A lazily connected ioredis client plus the credential rotation that keeps it authenticated. */
export class RedisConnection {
  /** The ioredis client (standalone or cluster), created with `lazyConnect`. */
  readonly client: AnyClient;
  /** True when `client` is a `Redis.Cluster`. */
  readonly isCluster: boolean;
  /** Resolved {@link RedisConnectionOptions.connectTimeoutMs}. */
  readonly connectTimeoutMs: number;
  /** Resolved {@link RedisConnectionOptions.commandTimeoutMs}. */
  readonly commandTimeoutMs: number;
  #credentials: ReturnType<typeof createRefreshingCredentials> | undefined;
  #unsubscribe: (() => void) | undefined;
  #current: Credentials | undefined;
  #staticSecret: string | undefined;
  /**
   * The static user name (URL or options), for messages. Undefined when it may be a secret: a URL with a user
   * but no password (`redis://TOKEN@host`, a slip for `redis://:TOKEN@host`) or a user equal to the password.
   */
  #staticUser: string | undefined;
  /** A user name that may be a secret (see {@link #staticUser}): never shown, scrubbed from messages. */
  #hiddenUser: string | undefined;
  #lastError: string | undefined;
  /** A configuration error no retry can fix (rejected login, TLS options Node refuses): every ready() throws it. */
  #permanent: ConfigurationError | undefined;
  readonly #permanentListeners = new Set<(error: ConfigurationError) => void>();
  /**
   * With a credential provider: the login (user + password) fetched fresh after the server rejected one, until a
   * connection is ready again. A rejection of exactly this login is permanent.
   */
  #freshLogin: string | undefined;
  /** The fresh fetch started by a rejected login, while it runs (one at a time). */
  #refetching: Promise<void> | undefined;
  #closed = false;
  /** A failing credential fetch was reported; reset by the next successful one, so a streak is reported once. */
  #providerFailureReported = false;
  readonly #reportProviderFailures: boolean;
  #tlsEnabled: boolean;
  /** Every socket this connection's clients have open (see `trackingConnector`). */
  readonly #sockets = new Set<Socket | TLSSocket>();
  #onError: ((error: RedisSinkError) => void) | undefined;

  constructor(
    options: RedisConnectionOptions,
    role: {
      connectionName: string;
      extraCommandTimeoutMs?: number;
      onError?: (error: RedisSinkError) => void;
      /**
       * `false` (sinks): the connection's sockets and reconnect timers never keep the host process alive by
       * themselves, so a program that ends without `shutdown()` exits once core's `beforeExit` flush is done.
       * Default `true` (readers, the CLI): a consumer holds the process while it runs.
       */
      keepProcessAlive?: boolean;
      /**
       * `true` (sinks): a credential fetch that fails while connecting is reported to `onError` (`console.warn`
       * without one), once per streak of failures, as the failed send is retried quietly. Default `false`:
       * readers and the CLI report what `ready()` throws themselves.
       */
      reportProviderFailures?: boolean;
    },
  ) {
    const parsed: ParsedRedisUrl = options.url
      ? parseRedisUrl(options.url)
      : {
          host: "127.0.0.1",
          port: 6379,
          username: undefined,
          password: undefined,
          db: undefined,
          tls: false,
        };
    const db = options.db ?? parsed.db;
    if (options.cluster && db !== undefined && db !== 0) {
      throw configError("url", `has database ${db}, but Redis Cluster has only database 0`);
    }
    this.connectTimeoutMs = Math.floor(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.commandTimeoutMs = Math.floor(options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.#onError = role.onError;
    this.#reportProviderFailures = role.reportProviderFailures ?? false;
    const keepProcessAlive = role.keepProcessAlive ?? true;
    const credentials = normaliseCredentials(options.credentials);
    if (credentials !== undefined) {
      const refreshAheadMs = credentials.refreshAheadMs ?? DEFAULT_REFRESH_AHEAD_MS;
      const onError = role.onError;
      this.#credentials = createRefreshingCredentials(credentials.provider, {
        refreshAheadMs,
        // Refresh failures (already scrubbed of secrets by the cache) go where connection errors go.
        ...(onError === undefined
          ? {}
          : {
              logger: {
                warn: (message: string, context?: object) => {
                  const detail = (context as { error?: unknown } | undefined)?.error;
                  const text = typeof detail === "string" ? `${message}: ${detail}` : message;
                  this.#report(
                    new RedisSinkError(safeRedisMessage(text, this.secrets()), { retriable: true }),
                  );
                },
              },
            }),
      });
    }

    const host = options.host ?? parsed.host;
    const port = options.port ?? parsed.port;
    const username = credentials ? undefined : (options.username ?? parsed.username);
    const password = credentials ? undefined : (options.password ?? parsed.password);
    this.#staticSecret = password;
    // A user name written in a URL without a password is often the token itself in the wrong slot.
    const userMayBeSecret =
      username !== undefined &&
      (username === password ||
        (options.username === undefined && parsed.username !== undefined && parsed.password === undefined));
    this.#staticUser = userMayBeSecret ? undefined : username;
    this.#hiddenUser = userMayBeSecret ? username : undefined;
    const tlsOption = options.tls ?? parsed.tls;
    this.#tlsEnabled = tlsOption !== false;
    const tls: TlsConnectionOptions | undefined =
      tlsOption === true ? {} : tlsOption === false ? undefined : { ...tlsOption };

    const common: RedisOptions = {
      lazyConnect: true,
      // ioredis' own connector lets a socket's second error (a failed or interrupted TLS handshake can produce
      // two) escape as an uncaught exception that would end the host process; this one keeps the socket guarded.
      Connector: markingSetupErrors(trackingConnector(this.#sockets, { keepProcessAlive })),
      connectTimeout: this.connectTimeoutMs,
      // One timer per socket read instead of ioredis' per-command timers (a 512-event batch would arm 512):
      // when replies are outstanding and nothing arrives for this long, the socket is destroyed, the commands
      // fail (retriable) and the client reconnects.
      socketTimeout: this.commandTimeoutMs + (role.extraCommandTimeoutMs ?? 0),
      // A command whose connection drops fails at once; the delivery pipeline decides whether to retry, so
      // ioredis must not replay it a second time behind our back.
      maxRetriesPerRequest: 0,
      connectionName: role.connectionName,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...(tls === undefined ? {} : { tls }),
      ...options.redisOptions,
    };

    if (options.cluster) {
      this.isCluster = true;
      const config: RedisClusterConfig = options.cluster === true ? {} : options.cluster;
      const nodes = config.nodes ?? [{ host, port }];
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        // Without an offline queue a send while the cluster is down fails at once instead of piling up inside
        // ioredis; the delivery pipeline owns buffering.
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: this.connectTimeoutMs,
        // TLS certificates name the host, not its IP: keep host names as given (ElastiCache, Memorystore,
        // Azure all need this with TLS).
        ...(tls === undefined ? {} : { dnsLookup: keepHostName }),
        ...config.options,
        redisOptions: { ...omitNodeOnly(common), ...config.options?.redisOptions },
      };
      this.client = new Cluster([...nodes], clusterOptions);
      this.client.on("+node", (node: Redis) => {
        this.#prepareNode(node);
        // Node connections reconnect by themselves only with a user's `clusterNodeRetryStrategy`.
        if (!keepProcessAlive) unrefReconnectTimers(node);
      });
    } else {
      this.isCluster = false;
      this.client = new Redis({
        host,
        port,
        ...(db === undefined ? {} : { db }),
        enableOfflineQueue: false,
        retryStrategy: reconnectDelay,
        ...common,
      });
    }
    if (!keepProcessAlive) unrefReconnectTimers(this.client);
    // ioredis prints unhandled error events (with command arguments) to stderr; keep a safe copy instead.
    this.client.on("error", (error: unknown) => {
      this.#recordError(error);
      this.#classify(error);
    });
    this.client.on("node error", (error: unknown) => this.#recordError(error));
    // A login that worked ends the episode: a later rejection (a rotation gone wrong) gets its own fresh fetch.
    this.client.on("ready", () => {
      this.#freshLogin = undefined;
    });
  }

  /** The last connection error, without secrets. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Secrets that must never appear in messages: used to scrub errors. */
  secrets(): string[] {
    const out: string[] = [];
    if (this.#current?.password) out.push(this.#current.password);
    if (this.#staticSecret) out.push(this.#staticSecret);
    if (this.#hiddenUser) out.push(this.#hiddenUser);
    return out;
  }

  #recordError(error: unknown): void {
    let wrapped = toRedisSinkError(error, "Redis connection error", this.secrets());
    // Cluster errors such as "Failed to refresh slots cache." hide the cause (often TLS or AUTH) in lastNodeError.
    const nodeError = (error as { lastNodeError?: unknown } | null)?.lastNodeError;
    if (nodeError !== undefined) {
      const detail = safeRedisMessage(nodeError, this.secrets());
      wrapped = new RedisSinkError(`${wrapped.message} (last node error: ${detail})`, {
        retriable: wrapped.retriable,
        redisCode: wrapped.redisCode,
      });
    }
    this.#lastError = wrapped.message;
    this.#report(wrapped);
  }

  /**
   * Decides whether an error ioredis emitted for a connection attempt is permanent. Only two kinds are: options
   * Node refuses when the socket is created (e.g. `tls: { checkServerIdentity: 5 }`, a cert that is not PEM, a
   * key or PKCS#12 whose passphrase is wrong), and
   * a login the server rejects, which is permanent at once for static credentials and, with a provider, after
   * one fresh fetch was rejected too. Socket, timeout, TLS handshake and busy/loading errors stay transient.
   */
  #classify(error: unknown): void {
    if (this.#permanent !== undefined || this.#closed) return;
    // A cluster reports a failed topology refresh with the node's own error inside.
    const nodeError = (error as { lastNodeError?: unknown } | null)?.lastNodeError;
    const cause = nodeError ?? error;
    if (isSetupError(cause)) {
      this.#failPermanently(this.#setupError(cause));
      return;
    }
    if (!isAuthRejection(cause)) return;
    // The login this attempt sent (standalone). A cluster's topology connections are not reachable: their login
    // is the configured one.
    const sent =
      this.client instanceof Redis
        ? this.client.condition?.auth
        : this.#current === undefined
          ? undefined
          : loginOf(this.#current.username, this.#current.password);
    this.#onAuthRejected(
      cause,
      typeof sent === "string" ? loginOf(undefined, sent) : sent && loginOf(...sent),
    );
  }

  #onAuthRejected(error: unknown, login: string | undefined): void {
    const reply = safeRedisMessage(error, this.secrets());
    const credentials = this.#credentials;
    if (credentials === undefined) {
      this.#failPermanently(this.#staticAuthError(reply, redisErrorCode(error)));
      return;
    }
    if (this.#freshLogin !== undefined) {
      // A rejection of the fresh login is final; one of an attempt that began before it arrived is not.
      if (login === this.#freshLogin) this.#failPermanently(this.#providerAuthError(reply));
      return;
    }
    if (this.#refetching !== undefined) return;
    // The credential may have been revoked or rotated since it was fetched: ask the provider once more. The
    // cache passes the new one to the subscriber set up in ready(), which makes reconnects use it.
    this.#refetching = credentials
      .refresh()
      .then(
        (fresh) => {
          if (this.#current === undefined || this.#current !== fresh) void this.applyCredentials(fresh);
          this.#freshLogin = loginOf(fresh.username, fresh.password);
        },
        (refreshError: unknown) => {
          if (isConfigurationError(refreshError)) {
            this.#failPermanently(refreshError as ConfigurationError);
          }
          // Otherwise the cache reported it; the next rejection asks again.
        },
      )
      .finally(() => {
        this.#refetching = undefined;
      });
  }

  #staticAuthError(reply: string, code: string | undefined): ConfigurationError {
    const user =
      this.#staticUser !== undefined
        ? ` for user ${JSON.stringify(this.#staticUser)}`
        : this.#hiddenUser !== undefined
          ? " for the user name in the URL (not shown: a URL without a password may hold a secret there)"
          : "";
    if (this.#staticSecret === undefined && code === "NOAUTH") {
      return new ConfigurationError(
        `Redis rejected the connection: the server requires a password and none was given (${reply})`,
        [{ path: "password", message: "required by the server, not given" }],
        {
          fix: "give the server's password in the URL (redis://:PASSWORD@host:port, or redis://USER:PASSWORD@host:port for an ACL user) or in the password option (with username for an ACL user)",
        },
      );
    }
    return new ConfigurationError(
      `Redis rejected the password${user} given in the URL or the password option (${reply})`,
      [{ path: "password", message: "rejected by the server" }],
      {
        fix: `check the user name and password in the Redis URL (percent-encode reserved characters) or the username/password options: the password must match the server's requirepass or the ACL user's password, and the user must exist and be enabled${this.#hiddenUser === undefined ? "" : "; a URL with only a user name (redis://NAME@host) sends NAME as the user name with no password: for a password alone write redis://:PASSWORD@host"}`,
      },
    );
  }

  #providerAuthError(reply: string): ConfigurationError {
    const user = this.#current?.username;
    const forUser = user === undefined ? "" : ` for user ${JSON.stringify(user)}`;
    return new ConfigurationError(
      `Redis rejected the credential${forUser} from the credentials provider, also after it was fetched fresh (${reply})`,
      [{ path: "credentials", message: "rejected by the server after a fresh fetch" }],
      {
        fix: "check that the credentials provider issues credentials this server accepts: ElastiCache IAM needs user id = user name, an IAM-enabled user in the cache's user group and elasticache:Connect allowed on the cache and the user; Azure Entra needs an access policy assignment for the identity and its object id as user name; Memorystore IAM needs the connecting principal to have the database connection role",
      },
    );
  }

  #setupError(error: unknown): ConfigurationError {
    const rawCode = (error as { code?: unknown }).code;
    // Node's PKCS#12 and key errors ("mac verify failure", "not enough data") carry no code.
    const code = typeof rawCode === "string" ? ` (${rawCode})` : "";
    // Node's argument errors echo the value ("Received type string ('…')"), which may be a key: cut that part.
    // Node never puts a passphrase in its messages; the configured secrets are scrubbed all the same.
    const detail = safeRedisMessage(error, this.secrets()).replace(/\.?\s*Received\b.*$/s, "");
    if (isSecureContextError(error)) {
      return new ConfigurationError(
        `Redis tls options were refused by Node when building the TLS context${code}: ${detail}`,
        [{ path: "tls", message: `refused by Node${code}` }],
        {
          fix: "fix the tls option: key and cert must be PEM (or pfx a PKCS#12 file) that Node can read, and passphrase must be the one the key or pfx was encrypted with",
        },
      );
    }
    const option = this.#tlsEnabled ? "tls" : "redisOptions";
    return new ConfigurationError(
      `Redis connection options were refused by Node when opening the socket${code}: ${detail}`,
      [{ path: option, message: `refused by Node${code}` }],
      {
        fix: "fix the tls option (or redisOptions): each value must be one Node's tls.connect / net.connect accepts, e.g. ca, cert and key as PEM text or a Buffer, ciphers naming a cipher this Node supports, checkServerIdentity a function",
      },
    );
  }

  /** Marks the connection failed for good: waiting ready() calls reject, later ones throw, reconnects stop. */
  #failPermanently(error: ConfigurationError): void {
    if (this.#permanent !== undefined) return;
    this.#permanent = error;
    this.#lastError = error.message;
    for (const listener of [...this.#permanentListeners]) listener(error);
    // Every further attempt would be refused the same way.
    this.client.disconnect();
  }

  // Called from ioredis' event handlers: a throwing callback would become an uncaught exception there.
  #report(error: RedisSinkError): void {
    try {
      this.#onError?.(error);
    } catch {
      // The application's error callback failed; the connection keeps working regardless.
    }
  }

  #prepareNode(node: Redis): void {
    // New cluster node connections copy the options the cluster was built with; give them today's secret.
    if (this.#current !== undefined) {
      node.options.password = this.#current.password;
      node.options.username = this.#current.username;
    }
  }

  /** True when the client is connected and (with rotating credentials) uses the cache's current credential. */
  isReady(): boolean {
    if (this.#closed || this.#permanent !== undefined || this.client.status !== "ready") return false;
    if (this.#credentials === undefined) return true;
    const cached = this.#credentials.peek();
    return cached !== undefined && cached === this.#current;
  }

  /**
   * Makes sure the client is connected and authenticated with the current credential, waiting at most
   * `connectTimeoutMs`. Throws a retriable {@link RedisSinkError} when Redis is not reachable in time, and a
   * `ConfigurationError` when it never will be as configured: the server rejected the static password (or, with
   * a credential provider, a credential fetched fresh after a first rejection), or Node refused the TLS options.
   */
  async ready(signal?: AbortSignal): Promise<void> {
    if (this.#closed)
      throw new RedisSinkError("Redis connection is closed", { retriable: false, code: "SINK_CLOSED" });
    if (this.#permanent !== undefined) throw this.#permanent;
    if (this.#credentials !== undefined) {
      let credentials: Credentials;
      try {
        credentials = await this.#credentials.get();
      } catch (error) {
        this.#onProviderFailed(error);
        throw error;
      }
      this.#providerFailureReported = false;
      if (this.#current === undefined) {
        this.#current = credentials;
        this.#setPassword(credentials);
        this.#unsubscribe = this.#credentials.subscribe((next) => {
          void this.applyCredentials(next);
        });
      } else if (
        credentials.password !== this.#current.password ||
        credentials.username !== this.#current.username
      ) {
        await this.applyCredentials(credentials);
      }
    }
    if (this.#permanent !== undefined) throw this.#permanent;
    if (this.client.status === "ready") return;
    if (this.client.status === "wait" || this.client.status === "end") {
      // Connection failures arrive as `error` events and are retried by the reconnect strategy.
      this.client.connect().catch(() => undefined);
    }
    await this.#waitForReady(signal);
  }

  /**
   * A fetch the connection waits for failed (the cache already retried it): without this report the only trace
   * is `lastError` in the metrics, since the pipeline retries the send quietly. Reported once per streak of
   * failures (the next successful fetch ends it), as the provider is asked again for every retried send.
   * A `ConfigurationError` is not reported here: the send rejects with it, and the pipeline reports it once.
   */
  #onProviderFailed(error: unknown): void {
    if (this.#closed || isConfigurationError(error)) return;
    // The cache scrubbed the provider's message of known and secret-shaped values; scrub ours on top.
    const message = `Redis credentials provider failed: ${safeRedisMessage(error, this.secrets())}`;
    this.#lastError = message;
    if (!this.#reportProviderFailures || this.#providerFailureReported) return;
    this.#providerFailureReported = true;
    if (this.#onError === undefined) {
      // Where the credential cache writes its refresh failures when there is no onError.
      console.warn(`streamll: ${message}`);
      return;
    }
    this.#report(new RedisSinkError(message, { retriable: true }));
  }

  #waitForReady(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.client.status === "ready") {
        resolve();
        return;
      }
      const client = this.client;
      const cleanup = () => {
        clearTimeout(timer);
        client.off("ready", onReady);
        this.#permanentListeners.delete(onPermanent);
        signal?.removeEventListener("abort", onAbort);
      };
      const onPermanent = (error: ConfigurationError) => {
        cleanup();
        reject(error);
      };
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(
          new RedisSinkError("Redis send aborted while connecting", {
            retriable: true,
            code: "SEND_TIMEOUT",
          }),
        );
      };
      const timer = setTimeout(() => {
        cleanup();
        const detail = this.#lastError ? ` (${this.#lastError})` : "";
        reject(
          new RedisSinkError(
            `Redis not ready within ${this.connectTimeoutMs} ms, status ${client.status}${detail}`,
            { retriable: true },
          ),
        );
      }, this.connectTimeoutMs);
      timer.unref?.();
      client.once("ready", onReady);
      this.#permanentListeners.add(onPermanent);
      if (this.#permanent !== undefined) onPermanent(this.#permanent);
      else if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #setPassword(credentials: Credentials): void {
    if (this.client instanceof Cluster) {
      const redisOptions = this.client.options.redisOptions ?? {};
      redisOptions.password = credentials.password;
      redisOptions.username = credentials.username;
      this.client.options.redisOptions = redisOptions;
      for (const node of this.client.nodes()) this.#prepareNode(node);
    } else {
      this.client.options.password = credentials.password;
      this.client.options.username = credentials.username;
    }
  }

  /**
   * Uses a new credential: reconnects use it, and every live connection is re-authenticated with `AUTH` so it
   * survives the old credential's expiry (ElastiCache drops connections after 12 h without it, Azure when the
   * token expires). A failed `AUTH` leaves the connection authenticated as before and is reported.
   */
  async applyCredentials(credentials: Credentials): Promise<void> {
    if (this.#closed) return;
    this.#current = credentials;
    this.#setPassword(credentials);
    const targets: Redis[] = this.client instanceof Cluster ? this.client.nodes() : [this.client];
    await Promise.all(
      targets
        .filter((node) => node.status === "ready")
        .map(async (node) => {
          try {
            if (credentials.username) await node.auth(credentials.username, credentials.password);
            else await node.auth(credentials.password);
          } catch (error) {
            this.#recordError(error);
          }
        }),
    );
  }

  /** Closes the client (QUIT when connected, so replies in flight arrive first) and stops credential refresh. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#credentials?.close();
    const status = this.client.status;
    if (status === "ready") {
      try {
        await withTimeout(this.client.quit(), this.commandTimeoutMs);
      } catch {
        // QUIT failing means the connection is already gone.
      }
    }
    this.client.disconnect();
    // What ioredis' disconnect() does not reach (a cluster's slot refresh connection) must not keep the host
    // process alive: nothing more is sent on a closed connection.
    for (const socket of this.#sockets) socket.destroy();
  }

  /** A safe message for an error from this connection. */
  describe(error: unknown): string {
    return safeRedisMessage(error, this.secrets());
  }
}

/**
 * Unrefs the timer ioredis arms before each reconnect, so a sink whose server is down does not keep the host
 * process alive between attempts (the attempt's socket is unref'd by the connector). ioredis sets the timer
 * (`reconnectTimeout`, not part of its typed API) right after scheduling the `reconnecting` event for the next
 * tick, so the timer exists when the event arrives.
 */
function unrefReconnectTimers(client: AnyClient): void {
  client.on("reconnecting", () => {
    const timer = (client as unknown as { reconnectTimeout?: { unref?: () => void } | null })
      .reconnectTimeout;
    timer?.unref?.();
  });
}

/** Errors Node threw while creating a socket (bad options), marked by {@link markingSetupErrors}. */
const setupErrors = new WeakSet<object>();

/** True for an error Node threw synchronously from `net.connect`/`tls.connect`: the options cannot work. */
function isSetupError(error: unknown): boolean {
  return typeof error === "object" && error !== null && setupErrors.has(error);
}

/**
 * Wraps a connector so that an error thrown while the socket is created (Node validates `tls.connect` options
 * there: `ERR_INVALID_ARG_TYPE`, `ERR_OSSL_*` for a key or cert that is not PEM, `ERR_SSL_NO_CIPHER_MATCH`, …)
 * is recognisable later. Node's own `ERR_*` codes count, and any error building the TLS secure context from the
 * `tls` options, whatever its code (a wrong PKCS#12 passphrase is a codeless "mac verify failure"); the
 * connector's "Connection is closed." (closed before the socket was made) and any system error stay transient.
 */
function markingSetupErrors(Base: typeof SocketErrorGuardConnector): typeof SocketErrorGuardConnector {
  return class SetupErrorMarkingConnector extends Base {
    override async connect(): Promise<Socket | TLSSocket> {
      try {
        return await super.connect();
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (
          error instanceof Error &&
          (isSecureContextError(error) || (typeof code === "string" && code.startsWith("ERR_")))
        )
          setupErrors.add(error);
        throw error;
      }
    }
  };
}

/** One string for a login (user and password), to compare what was sent with what was fetched. Never logged. */
function loginOf(username: string | undefined, password: string | undefined): string {
  return `${username ?? ""}\u0000${password ?? ""}`;
}

const keepHostName: DNSLookupFunction = (address, callback) => callback(null, address);

function omitNodeOnly(options: RedisOptions): NonNullable<ClusterOptions["redisOptions"]> {
  const {
    port: _port,
    host: _host,
    path: _path,
    sentinels: _sentinels,
    retryStrategy: _retry,
    ...rest
  } = options;
  const { enableOfflineQueue: _offline, readOnly: _readOnly, himportFieldsets: _himport, ...clean } = rest;
  return clean;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), ms);
        timer.unref?.();
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
