import { isIP } from "node:net";
import { createSecureContext, type ConnectionOptions as TlsConnectionOptions } from "node:tls";
import type { CredentialProvider, Credentials } from "@streamll/core";
import { ConfigurationError } from "@streamll/core";
import {
  redactSecrets,
  tlsConnectionOptionsSchema,
  urlSchemeForMessage,
  v,
  validateOptions,
} from "@streamll/core/internal";
import type { Options, SocketOptions } from "amqplib";

/** Backoff between reconnection attempts after the connection (or the first attempt) failed. */
export interface RabbitMQReconnectOptions {
  /** Delay before the first reconnection attempt. Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound for the delay. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Growth factor per failed attempt. Default 2. */
  multiplier?: number;
  /** Fraction of the delay randomised (0 to 1) so many clients do not reconnect in lockstep. Default 0.5. */
  jitter?: number;
}

/**
 * Where and how to connect. Give either `url` or the separate fields (`hostname`, `port`, `vhost`, ...);
 * explicit fields override what the URL says.
 */
export interface RabbitMQConnectionOptions {
  /**
   * `amqp://USER:PASS@HOST:5672/VHOST` or `amqps://USER:PASS@HOST:5671/VHOST`. Percent-encode reserved
   * characters in the user name, password and vhost (the vhost `/` is written `%2F`; an empty path means `/`).
   * Query parameters `heartbeat`, `frame_max` (or `frameMax`) and `channel_max` (or `channelMax`) are honoured.
   * The URL is never logged or put into error messages.
   */
  url?: string;
  /** Broker host name or IP address. Default `localhost` when no URL is given. */
  hostname?: string;
  /** Broker port. Default 5672, or 5671 with TLS. */
  port?: number;
  /** Virtual host. Default `/`. */
  vhost?: string;
  /** User name. Default `guest` when neither a URL user, this field nor a credential provider gives one. */
  username?: string;
  /** Password. Never logged. Cannot be combined with `credentials`, which replace it. */
  password?: string;
  /**
   * TLS (`amqps`). `true` uses Node's defaults, which verify the server certificate against the system CAs
   * and the host name; an object adds options such as `ca`, `cert`, `key` or `servername` (any key of Node's
   * `tls.ConnectionOptions`; a misspelled one is rejected, the values are checked by Node). An `amqps://` URL
   * turns TLS on by itself. Verification is switched off only by an explicit `rejectUnauthorized: false`.
   */
  tls?: boolean | TlsConnectionOptions;
  /**
   * Fetches the user name and password (or token) for each new connection, e.g. an OAuth 2.0 / IAM token.
   * It is wrapped in the core's refresh-ahead cache; when the cache refreshes a credential, live connections
   * receive it through AMQP `connection.update-secret`, so token expiry does not drop them.
   */
  credentials?: CredentialProvider;
  /** AMQP heartbeat in seconds; a dead peer is noticed after about two missed beats. Default 30. 0 disables. */
  heartbeatSeconds?: number;
  /**
   * Largest frame the client proposes, in bytes. Default 131 072, RabbitMQ's own default. RabbitMQ 4.1+ refuses
   * connections that negotiate less than 8 192 (amqplib before 0.10.6 proposed 4 096), so smaller values are
   * rejected here.
   */
  frameMax?: number;
  /** Give up a connection attempt (TCP, TLS and AMQP handshake) after this long. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Shown as the connection's name in the RabbitMQ management UI and `rabbitmqctl list_connections`. */
  connectionName?: string;
  /** Reconnection backoff. */
  reconnect?: RabbitMQReconnectOptions;
}

/** The arguments for `amqplib.connect` plus what is needed to keep secrets out of messages. */
export interface ResolvedConnection {
  readonly target: Options.Connect;
  readonly socketOptions: SocketOptions;
  /** Strings that must never appear in a message (the password and its encoded form). */
  readonly secrets: readonly string[];
  /** `amqps://host:5671/vhost`, without user or password: safe to show. */
  readonly description: string;
}

const DEFAULT_FRAME_MAX = 131_072;
const DEFAULT_HEARTBEAT_SECONDS = 30;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

interface ParsedUrl {
  tls: boolean;
  hostname?: string;
  port?: number;
  username?: string;
  password?: string;
  vhost?: string;
  heartbeat?: number;
  frameMax?: number;
  channelMax?: number;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    // No `cause`: the failing text may be the password.
    throw new ConfigurationError(`RabbitMQ URL: the ${what} is not valid percent-encoding`, [
      { path: "url", message: `invalid percent-encoding in the ${what}` },
    ]);
  }
}

function integerParam(params: URLSearchParams, names: readonly string[]): number | undefined {
  for (const name of names) {
    const raw = params.get(name);
    if (raw === null) continue;
    if (!/^\d+$/.test(raw)) {
      throw new ConfigurationError(`RabbitMQ URL: query parameter ${name} must be a non-negative integer`, [
        { path: "url", message: `${name} must be a non-negative integer` },
      ]);
    }
    return Number(raw);
  }
  return undefined;
}

function parseUrl(url: string): ParsedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The URL may hold a password: the message must not echo it.
    throw new ConfigurationError("RabbitMQ URL is not a valid URL (expected amqp://… or amqps://…)", [
      { path: "url", message: "not a valid URL" },
    ]);
  }
  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    throw new ConfigurationError(
      `RabbitMQ URL must start with amqp:// or amqps:// (got ${urlSchemeForMessage(parsed.protocol)})`,
      [{ path: "url", message: "protocol must be amqp or amqps" }],
    );
  }
  const result: ParsedUrl = { tls: parsed.protocol === "amqps:" };
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  if (host !== "") result.hostname = host;
  if (parsed.port !== "") result.port = Number(parsed.port);
  if (parsed.username !== "" || parsed.password !== "") {
    result.username = decode(parsed.username, "user name");
    result.password = decode(parsed.password, "password");
  }
  if (parsed.pathname !== "" && parsed.pathname !== "/") {
    result.vhost = decode(parsed.pathname.slice(1), "vhost");
  }
  const heartbeat = integerParam(parsed.searchParams, ["heartbeat"]);
  if (heartbeat !== undefined) result.heartbeat = heartbeat;
  const frameMax = integerParam(parsed.searchParams, ["frame_max", "frameMax"]);
  if (frameMax !== undefined) result.frameMax = frameMax;
  const channelMax = integerParam(parsed.searchParams, ["channel_max", "channelMax"]);
  if (channelMax !== undefined) result.channelMax = channelMax;
  return result;
}

/** A RabbitMQ name (exchange, queue): 1 to 255 bytes of UTF-8. */
export const amqpNameSchema = v.string({ min: 1 }).refine((value, report) => {
  if (Buffer.byteLength(value, "utf8") > 255) report("must be at most 255 bytes");
});

/** `RabbitMQConnectionOptions`; the sink's and the reader's schemas extend it. */
export const rabbitMQConnectionOptionsSchema = v
  .object<RabbitMQConnectionOptions>({
    // Checked in full (scheme, percent-encoding, query) by validateConnectionUrl, without repeating it.
    url: v.string({ min: 1, expected: "an amqp:// or amqps:// URL" }).optional(),
    hostname: v.string({ min: 1 }).optional(),
    port: v.integer({ min: 1, max: 65_535 }).optional(),
    vhost: v.string({ min: 1 }).optional(),
    username: v.string().optional(),
    password: v.string().optional(),
    tls: v.union(v.boolean(), tlsConnectionOptionsSchema).optional(),
    credentials: v.fn<CredentialProvider>("a credential provider function").optional(),
    heartbeatSeconds: v.integer({ min: 0 }).optional(),
    frameMax: v.integer({ min: 8192 }).optional(),
    connectTimeoutMs: v.integer({ min: 1 }).optional(),
    connectionName: v.string({ min: 1 }).optional(),
    reconnect: v
      .object<RabbitMQReconnectOptions>({
        initialDelayMs: v.integer({ min: 0 }).optional(),
        maxDelayMs: v.integer({ min: 0 }).optional(),
        multiplier: v.number({ min: 1 }).optional(),
        jitter: v.number({ min: 0, max: 1 }).optional(),
      })
      .optional(),
  })
  .refine((options, report) => {
    if (/^amqp:\/\//i.test(options.url ?? "") && options.tls !== undefined && options.tls !== false) {
      report("is set but the URL uses amqp://; use amqps:// for TLS", "tls");
    }
    // A credential provider replaces the password; giving both would silently ignore one.
    if (options.credentials !== undefined && options.password !== undefined) {
      report("cannot be combined with credentials, which replace it", "password");
    }
  });

/** Checks the URL's parts (scheme, percent-encoding, query parameters); the options passed their schema. */
export function validateConnectionUrl(options: RabbitMQConnectionOptions): void {
  if (options.url !== undefined) parseUrl(options.url);
}

/** Checks connection options on their own (the CLI builds them); throws `ConfigurationError`. */
export function validateConnectionOptions(options: RabbitMQConnectionOptions): void {
  validateOptions("RabbitMQ connection", rabbitMQConnectionOptionsSchema, options);
  validateConnectionUrl(options);
}

/**
 * Turns the user's options (and, with a credential provider, the current credential) into amqplib's connect
 * arguments. Always produces the object form so a rotated password never has to be spliced into a URL.
 */
export function resolveConnection(
  options: RabbitMQConnectionOptions,
  credential?: Credentials,
): ResolvedConnection {
  const parsed: ParsedUrl = options.url === undefined ? { tls: false } : parseUrl(options.url);
  const tlsEnabled = parsed.tls || (options.tls !== undefined && options.tls !== false);
  const hostname = options.hostname ?? parsed.hostname ?? "localhost";
  const port = options.port ?? parsed.port ?? (tlsEnabled ? 5671 : 5672);
  const vhost = options.vhost ?? parsed.vhost ?? "/";

  let username: string;
  let password: string;
  if (credential) {
    username = credential.username ?? options.username ?? parsed.username ?? "";
    password = credential.password;
  } else if (options.username !== undefined || options.password !== undefined) {
    username = options.username ?? parsed.username ?? "";
    password = options.password ?? parsed.password ?? "";
  } else if (parsed.username !== undefined || parsed.password !== undefined) {
    username = parsed.username ?? "";
    password = parsed.password ?? "";
  } else {
    // amqplib's own default, kept so `new RabbitMQSink()` works against a local development broker.
    username = "guest";
    password = "guest";
  }

  const target: Options.Connect = {
    protocol: tlsEnabled ? "amqps" : "amqp",
    hostname,
    port,
    vhost,
    username,
    password,
    frameMax: options.frameMax ?? parsed.frameMax ?? DEFAULT_FRAME_MAX,
    heartbeat: options.heartbeatSeconds ?? parsed.heartbeat ?? DEFAULT_HEARTBEAT_SECONDS,
  };
  if (parsed.channelMax !== undefined) target.channelMax = parsed.channelMax;

  const tlsOptions: TlsConnectionOptions = typeof options.tls === "object" ? { ...options.tls } : {};
  const socketOptions: SocketOptions = {
    ...(tlsEnabled ? tlsOptions : {}),
    noDelay: true,
    keepAlive: true,
    timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    clientProperties: {
      connection_name: options.connectionName ?? "streamll",
    },
  };
  // SNI must not carry an IP address (Node rejects it); amqplib only sets servername for host names.
  if (tlsEnabled && socketOptions.servername === undefined && isIP(hostname) === 0) {
    socketOptions.servername = hostname;
  }

  const secrets = password === "" ? [] : [password, encodeURIComponent(password)];
  const shownVhost = vhost === "/" ? "" : encodeURIComponent(vhost);
  const shownHost = isIP(hostname) === 6 ? `[${hostname}]` : hostname;
  return {
    target,
    socketOptions,
    secrets: [...new Set(secrets)],
    description: `${tlsEnabled ? "amqps" : "amqp"}://${shownHost}:${port}/${shownVhost}`,
  };
}

/** Every passphrase in TLS options: the top-level one and those of `{ pem, passphrase }` / `{ buf, passphrase }` items. */
function tlsPassphrases(tls: TlsConnectionOptions): string[] {
  const found: string[] = [];
  if (typeof tls.passphrase === "string") found.push(tls.passphrase);
  for (const list of [tls.key, tls.pfx]) {
    for (const item of Array.isArray(list) ? list : [list]) {
      if (typeof item === "object" && item !== null && !Buffer.isBuffer(item) && "passphrase" in item) {
        if (typeof item.passphrase === "string") found.push(item.passphrase);
      }
    }
  }
  return found;
}

/**
 * Builds the TLS secure context from the `tls` option as `tls.connect` does for every connection attempt, and
 * returns a `ConfigurationError` (path `tls`) if Node refuses it: a key the passphrase does not decrypt, a key or
 * certificate that is not PEM, a PKCS#12 file that is damaged or whose passphrase is wrong. Whatever the error's
 * code, every attempt would fail alike, so it must not be retried as if the broker were unreachable. The message
 * names Node's reason but never a passphrase or the key material.
 */
export function tlsOptionsError(options: RabbitMQConnectionOptions): ConfigurationError | undefined {
  const tls = options.tls;
  // `true` (or an amqps:// URL alone) uses Node's defaults; a caller's own secureContext is used as it is by
  // tls.connect, which then ignores the key and certificate options.
  if (typeof tls !== "object" || tls.secureContext !== undefined) return undefined;
  try {
    createSecureContext(tls);
    return undefined;
  } catch (error) {
    const code = errorCodeOf(error);
    const raw = error instanceof Error ? error.message : String(error);
    // Node's argument errors end by echoing the value ("Received type number (5)"), which may be a passphrase
    // or a key: cut that part, and any passphrase OpenSSL might quote.
    const firstLine = raw.split("\n")[0] ?? "";
    const detail = redactSecrets(firstLine.replace(/\.?\s*Received\b.*$/s, ""), tlsPassphrases(tls));
    const reason = code === undefined ? detail : `${code}: ${detail}`;
    // No `cause`: Node's error object carries OpenSSL's error stack and, for argument errors, the value.
    return new ConfigurationError(
      `RabbitMQ tls option refused by Node when building the TLS secure context (${reason})`,
      [{ path: "tls", message: `refused by Node (${code ?? detail})` }],
      {
        fix:
          "in the tls option, passphrase must be the one the key (or pfx) was encrypted with, and key, cert and " +
          "ca PEM text or Buffers (pfx a PKCS#12 file); check them with openssl (openssl pkey -in KEY, " +
          "openssl pkcs12 -info -in PFX)",
      },
    );
  }
}

function errorCodeOf(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Removes the given secrets and any URL user-info from a message (shared with the other sinks' tools). */
export { redactSecrets };
