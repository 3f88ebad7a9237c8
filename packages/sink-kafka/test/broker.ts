/**
 * Connection settings for the harness broker started by `scripts/kafka/kafka.sh` (Apache Kafka 4.x, KRaft,
 * single node on 127.0.0.1), shared by every Kafka integration suite.
 *
 * Each listener reproduces one real authentication shape:
 * - PLAINTEXT (self-managed clusters without auth),
 * - SASL_SSL with PLAIN or SCRAM (Confluent Cloud API keys, Event Hubs `$ConnectionString`, MSK SCRAM),
 * - SASL_PLAINTEXT with OAUTHBEARER validated by Kafka's unsecured-JWS validator (MSK IAM / Entra token
 *   providers), with sessions capped so clients re-authenticate during a test,
 * - SSL with a required client certificate (mTLS, Aiven style).
 *
 * Every value can be overridden through the environment (the same `STREAMLL_KAFKA_*` variables the script
 * reads), so the suites can also run against a broker started elsewhere.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KafkaConfig, OauthbearerProviderResponse, SASLOptions } from "kafkajs";

const env = process.env;

function envPort(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`${name} must be a TCP port number, got "${raw}"`);
  }
  return port;
}

function envBrokers(name: string, fallbackPort: number): string[] {
  const raw = env[name];
  if (raw !== undefined && raw.trim() !== "") {
    return raw
      .split(",")
      .map((broker) => broker.trim())
      .filter((broker) => broker !== "");
  }
  return [`${KAFKA_HOST}:${fallbackPort}`];
}

/** Repository root, found from this file so the helpers work from any working directory. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../../", import.meta.url));

/** The harness control script: `start`, `stop`, `status`, `logs`, `reset`. */
export const KAFKA_SCRIPT: string = join(REPO_ROOT, "scripts", "kafka", "kafka.sh");

/** Harness state directory (data, logs, certificates); `STREAMLL_KAFKA_HOME` overrides `<repo>/.kafka`. */
export const KAFKA_STATE_DIR: string = env.STREAMLL_KAFKA_HOME || join(REPO_ROOT, ".kafka");

/** Host every listener is bound to and advertised on (`STREAMLL_KAFKA_HOST`, default `127.0.0.1`). */
export const KAFKA_HOST: string = env.STREAMLL_KAFKA_HOST || "127.0.0.1";

/** Listener ports, read from the same variables as `kafka.sh` so both sides agree. */
export const KAFKA_PORTS: Readonly<{ plaintext: number; saslSsl: number; oauth: number; ssl: number }> =
  Object.freeze({
    plaintext: envPort("STREAMLL_KAFKA_PLAINTEXT_PORT", 39_092),
    saslSsl: envPort("STREAMLL_KAFKA_SASL_SSL_PORT", 39_093),
    oauth: envPort("STREAMLL_KAFKA_OAUTH_PORT", 39_094),
    ssl: envPort("STREAMLL_KAFKA_SSL_PORT", 39_096),
  });

/** PLAINTEXT bootstrap brokers (`STREAMLL_KAFKA_BROKERS`, comma-separated, overrides). */
export const KAFKA_PLAINTEXT_BROKERS: readonly string[] = Object.freeze(
  envBrokers("STREAMLL_KAFKA_BROKERS", KAFKA_PORTS.plaintext),
);

/** SASL_SSL bootstrap brokers (`STREAMLL_KAFKA_SASL_SSL_BROKERS` overrides). */
export const KAFKA_SASL_SSL_BROKERS: readonly string[] = Object.freeze(
  envBrokers("STREAMLL_KAFKA_SASL_SSL_BROKERS", KAFKA_PORTS.saslSsl),
);

/** SASL_PLAINTEXT + OAUTHBEARER bootstrap brokers (`STREAMLL_KAFKA_OAUTH_BROKERS` overrides). */
export const KAFKA_OAUTH_BROKERS: readonly string[] = Object.freeze(
  envBrokers("STREAMLL_KAFKA_OAUTH_BROKERS", KAFKA_PORTS.oauth),
);

/** SSL (mutual TLS) bootstrap brokers (`STREAMLL_KAFKA_SSL_BROKERS` overrides). */
export const KAFKA_SSL_BROKERS: readonly string[] = Object.freeze(
  envBrokers("STREAMLL_KAFKA_SSL_BROKERS", KAFKA_PORTS.ssl),
);

/** PEM file of the CA that signed the broker certificate (`STREAMLL_KAFKA_CA_FILE` overrides). */
export const KAFKA_CA_FILE: string = env.STREAMLL_KAFKA_CA_FILE || join(KAFKA_STATE_DIR, "certs", "ca.pem");

/** Client certificate and key accepted by the SSL listener (signed by {@link KAFKA_CA_FILE}'s CA). */
export const KAFKA_CLIENT_CERT_FILE: string =
  env.STREAMLL_KAFKA_CLIENT_CERT_FILE || join(KAFKA_STATE_DIR, "certs", "client.pem");

/** Private key of {@link KAFKA_CLIENT_CERT_FILE}. */
export const KAFKA_CLIENT_KEY_FILE: string =
  env.STREAMLL_KAFKA_CLIENT_KEY_FILE || join(KAFKA_STATE_DIR, "certs", "client.key");

/** SASL user on the SASL_SSL listener, for PLAIN and SCRAM-SHA-256/512 alike. Test-only credentials. */
export const KAFKA_SASL_USERNAME: string = env.STREAMLL_KAFKA_SASL_USERNAME || "streamll";

/** Password of {@link KAFKA_SASL_USERNAME}. */
export const KAFKA_SASL_PASSWORD: string = env.STREAMLL_KAFKA_SASL_PASSWORD || "streamll-secret";

/** Azure Event Hubs' fixed PLAIN user name for shared-access-key auth. */
export const EVENT_HUBS_USERNAME = "$ConnectionString";

/** The `$ConnectionString` user's password on the harness: an Event Hubs style connection string. */
export const EVENT_HUBS_CONNECTION_STRING =
  "Endpoint=sb://local.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=dGVzdA==";

/** Scope every OAUTHBEARER token must carry (`STREAMLL_KAFKA_OAUTH_SCOPE`, default `kafka`). */
export const KAFKA_OAUTH_SCOPE: string = env.STREAMLL_KAFKA_OAUTH_SCOPE || "kafka";

/**
 * Longest OAUTHBEARER session the broker grants (`connections.max.reauth.ms` on that listener,
 * `STREAMLL_KAFKA_OAUTH_REAUTH_MS`, default 10 s): a client that does not re-authenticate within it is
 * disconnected, so re-authentication is exercised by any test that runs longer.
 */
export const KAFKA_OAUTH_REAUTH_MS: number = envPort("STREAMLL_KAFKA_OAUTH_REAUTH_MS", 10_000);

/** Connection settings a test hands to `new Kafka(...)` or to the sink's options. */
export type KafkaTestConnection = Pick<KafkaConfig, "ssl" | "sasl" | "reauthenticationThreshold"> & {
  /** Bootstrap brokers as `host:port`. */
  brokers: string[];
};

/** Reads the harness CA; throws a message that says how to create it when the broker was never started. */
export function readKafkaCa(): Buffer {
  try {
    return readFileSync(KAFKA_CA_FILE);
  } catch (error) {
    throw new KafkaBrokerUnavailableError(
      `Kafka harness CA not found at ${KAFKA_CA_FILE}: start the broker with \`${KAFKA_SCRIPT} start\``,
      { cause: error },
    );
  }
}

/** PLAINTEXT settings: no TLS, no SASL. */
export function kafkaPlaintextConfig(): KafkaTestConnection {
  return { brokers: [...KAFKA_PLAINTEXT_BROKERS] };
}

/** Options of {@link kafkaSaslSslConfig}. */
export interface KafkaSaslSslOptions {
  /** SASL mechanism; the broker enables all three on the SASL_SSL listener. Default `plain`. */
  mechanism?: "plain" | "scram-sha-256" | "scram-sha-512";
  /** Default {@link KAFKA_SASL_USERNAME}. */
  username?: string;
  /** Default {@link KAFKA_SASL_PASSWORD}. */
  password?: string;
}

/**
 * SASL_SSL settings with certificate verification on (the harness CA is the only trusted root), the shape
 * Confluent Cloud uses with an API key and secret.
 */
export function kafkaSaslSslConfig(options: KafkaSaslSslOptions = {}): KafkaTestConnection {
  const username = options.username ?? KAFKA_SASL_USERNAME;
  const password = options.password ?? KAFKA_SASL_PASSWORD;
  const mechanism = options.mechanism ?? "plain";
  return {
    brokers: [...KAFKA_SASL_SSL_BROKERS],
    ssl: { ca: [readKafkaCa()], rejectUnauthorized: true },
    sasl: passwordSasl(mechanism, username, password),
  };
}

// kafkajs types SASL options as a union keyed by the mechanism literal, so each literal is spelled out.
function passwordSasl(
  mechanism: NonNullable<KafkaSaslSslOptions["mechanism"]>,
  username: string,
  password: string,
): SASLOptions {
  switch (mechanism) {
    case "plain":
      return { mechanism: "plain", username, password };
    case "scram-sha-256":
      return { mechanism: "scram-sha-256", username, password };
    case "scram-sha-512":
      return { mechanism: "scram-sha-512", username, password };
  }
}

/** SASL_SSL PLAIN as Azure Event Hubs expects it: user `$ConnectionString`, password the connection string. */
export function kafkaEventHubsConfig(): KafkaTestConnection {
  return kafkaSaslSslConfig({
    mechanism: "plain",
    username: EVENT_HUBS_USERNAME,
    password: EVENT_HUBS_CONNECTION_STRING,
  });
}

/** SSL listener settings with the harness client certificate (mutual TLS; the broker requires it). */
export function kafkaMtlsConfig(): KafkaTestConnection {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(KAFKA_CLIENT_CERT_FILE);
    key = readFileSync(KAFKA_CLIENT_KEY_FILE);
  } catch (error) {
    throw new KafkaBrokerUnavailableError(
      `Kafka harness client certificate not found in ${KAFKA_STATE_DIR}/certs: start the broker with \`${KAFKA_SCRIPT} start\``,
      { cause: error },
    );
  }
  return {
    brokers: [...KAFKA_SSL_BROKERS],
    ssl: { ca: [readKafkaCa()], cert, key, rejectUnauthorized: true },
  };
}

/** Options of {@link makeUnsecuredJwt}. */
export interface UnsecuredJwtOptions {
  /** Principal (`sub` claim). Default `streamll`. */
  sub?: string;
  /** Token lifetime from `now`; negative values make an already expired token. Default 60 s. */
  lifetimeMs?: number;
  /**
   * `scope` claim. The broker's validator compares whole values: pass several scopes as an array, not a
   * space-separated string. Default {@link KAFKA_OAUTH_SCOPE}.
   */
  scope?: string | readonly string[];
  /** Issue time in epoch ms; injectable so token tests do not depend on the wall clock. Default `Date.now()`. */
  now?: number;
  /** Further claims (e.g. `aud`, `oid`) copied into the payload; they cannot replace sub/iat/exp/scope. */
  claims?: Readonly<Record<string, string | number | boolean | readonly string[]>>;
}

/**
 * An unsecured JWS (`{"alg":"none"}`, empty signature) that the harness broker's OAUTHBEARER validator
 * accepts while it is unexpired and carries {@link KAFKA_OAUTH_SCOPE}. `iat`/`exp` are whole seconds.
 */
export function makeUnsecuredJwt(options: UnsecuredJwtOptions = {}): string {
  const now = options.now ?? Date.now();
  const iat = Math.floor(now / 1000);
  const exp = Math.floor((now + (options.lifetimeMs ?? 60_000)) / 1000);
  const scope = options.scope ?? KAFKA_OAUTH_SCOPE;
  const payload = {
    ...options.claims,
    sub: options.sub ?? "streamll",
    iat,
    exp,
    scope: typeof scope === "string" ? scope : [...scope],
  };
  const encode = (value: object): string => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
  return `${encode({ alg: "none" })}.${encode(payload)}.`;
}

/** Options of {@link kafkaOauthConfig}. */
export interface KafkaOauthOptions {
  /** Token source; default: a fresh {@link makeUnsecuredJwt} (default claims) on every handshake. */
  oauthBearerProvider?: () => Promise<OauthbearerProviderResponse>;
  /**
   * How long before the broker's session ends kafkajs re-authenticates. kafkajs's default (10 s) equals the
   * harness session length and would re-authenticate before every request; default here 3 s.
   */
  reauthenticationThreshold?: number;
}

/** SASL_PLAINTEXT OAUTHBEARER settings against the unsecured-JWS validator listener. */
export function kafkaOauthConfig(options: KafkaOauthOptions = {}): KafkaTestConnection {
  const oauthBearerProvider = options.oauthBearerProvider ?? (async () => ({ value: makeUnsecuredJwt() }));
  return {
    brokers: [...KAFKA_OAUTH_BROKERS],
    sasl: { mechanism: "oauthbearer", oauthBearerProvider },
    reauthenticationThreshold: options.reauthenticationThreshold ?? 3_000,
  };
}

/** A topic name no other test uses, so suites never read each other's events. */
export function uniqueTopic(prefix = "streamll-test"): string {
  const suffix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return `${prefix}-${suffix}`.replace(/[^a-zA-Z0-9._-]/g, "_");
}

/** The broker (or one of its listeners) cannot be reached; tests fail with this rather than skip. */
export class KafkaBrokerUnavailableError extends Error {
  /** Stable code for assertions and logs. */
  readonly code = "KAFKA_BROKER_UNAVAILABLE";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KafkaBrokerUnavailableError";
  }
}

/** Harness listeners by name, as accepted by {@link requireBroker}. */
export type KafkaListener = "plaintext" | "sasl_ssl" | "oauth" | "ssl";

const LISTENER_BROKERS: Readonly<Record<KafkaListener, readonly string[]>> = {
  plaintext: KAFKA_PLAINTEXT_BROKERS,
  sasl_ssl: KAFKA_SASL_SSL_BROKERS,
  oauth: KAFKA_OAUTH_BROKERS,
  ssl: KAFKA_SSL_BROKERS,
};

function splitHostPort(broker: string): { host: string; port: number } {
  const index = broker.lastIndexOf(":");
  const host = broker.slice(0, index).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(broker.slice(index + 1)) };
}

function canConnect(broker: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = splitHostPort(broker);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

/** True when the first bootstrap broker of every given listener accepts a TCP connection. */
export async function isBrokerReachable(
  listeners: readonly KafkaListener[] = ["plaintext"],
  timeoutMs = 2_000,
): Promise<boolean> {
  const results = await Promise.all(
    listeners.map((listener) => {
      const broker = LISTENER_BROKERS[listener][0];
      return broker === undefined ? Promise.resolve(false) : canConnect(broker, timeoutMs);
    }),
  );
  return results.every(Boolean);
}

/**
 * Fails fast, with the command that fixes it, when the harness broker is not reachable on the given
 * listeners (default: all four). Call it in `beforeAll` of every Kafka suite: the suite then fails — never
 * skips — when the broker is missing, which is what CI (`CI=true`) requires. Certificate files are checked
 * for the TLS listeners too.
 */
export async function requireBroker(
  listeners: readonly KafkaListener[] = ["plaintext", "sasl_ssl", "oauth", "ssl"],
): Promise<void> {
  const unreachable: string[] = [];
  for (const listener of listeners) {
    const broker = LISTENER_BROKERS[listener][0];
    if (broker === undefined || !(await canConnect(broker, 2_000))) {
      unreachable.push(`${listener} (${broker ?? "no broker configured"})`);
    }
  }
  if (unreachable.length > 0) {
    const ci = env.CI === "true" ? " CI=true: Kafka integration tests fail when the broker is missing." : "";
    throw new KafkaBrokerUnavailableError(
      `Kafka test broker not reachable on ${unreachable.join(", ")}. Start it with \`${KAFKA_SCRIPT} start\`` +
        ` (logs: \`${KAFKA_SCRIPT} logs\`).${ci}`,
    );
  }
  if (listeners.includes("sasl_ssl") || listeners.includes("ssl")) readKafkaCa();
  if (listeners.includes("ssl")) kafkaMtlsConfig();
}

/**
 * Runs the harness script, e.g. `kafkaHarness("stop")` then `kafkaHarness("start")` to take the broker
 * away in the middle of a fault test. Resolves with the script's stderr log lines; rejects if it fails.
 */
export function kafkaHarness(command: "start" | "stop" | "status", timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [KAFKA_SCRIPT, command], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`kafka.sh ${command} failed: ${stderr.trim() || error.message}`, { cause: error }));
        return;
      }
      resolve(`${stdout}${stderr}`.trim());
    });
  });
}

/**
 * Inodes of this process's established TCP connections to `port` (Linux `/proc`). A client that
 * re-authenticates keeps its sockets when a broker session ends; one that is cut off opens new ones, so
 * comparing snapshots tells re-authentication from reconnection.
 */
export function brokerSockets(port: number): Set<string> {
  const mine = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match?.[1] !== undefined) mine.add(match[1]);
    } catch {
      // The descriptor closed while listing.
    }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const sockets = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let table: string;
    try {
      table = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of table.split("\n").slice(1)) {
      const [, , remote, state, , , , , , inode] = line.trim().split(/\s+/);
      if (remote?.endsWith(`:${hexPort}`) && state === "01" && inode !== undefined && mine.has(inode)) {
        sockets.add(inode);
      }
    }
  }
  return sockets;
}
