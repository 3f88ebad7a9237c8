import { createRequire } from "node:module";
import { ConfigurationError } from "@streamll/core";
import type {
  AuthenticationProviderArgs,
  Authenticator,
  KafkaJSSASLAuthenticationError as KafkaJSSASLAuthenticationErrorType,
  Mechanism,
} from "kafkajs";
import type { KafkaLogger, SecretScrubber } from "./kafka-logger";

// Both builds resolve from this file (tsup's shims give the CommonJS build an `import.meta.url`). kafkajs
// exports its error classes by spreading an object, which Node's named ESM imports of CommonJS cannot see.
const load = createRequire(import.meta.url);
const { KafkaJSSASLAuthenticationError } = load("kafkajs") as {
  KafkaJSSASLAuthenticationError: typeof KafkaJSSASLAuthenticationErrorType;
};

/**
 * How every error the sink raises for credentials the broker refused begins. kafkajs logs the errors its
 * connect fails with; lines carrying this text are not forwarded (see {@link quietAuthenticationLogs}): the
 * pipeline reports a permanent rejection once, and a repeated attempt must not print it again each time.
 */
export const REJECTED_PREFIX = "the Kafka broker rejected the SASL";

/**
 * The broker refused the credential of a provider (an OAUTHBEARER token) that was not fetched fresh for
 * this attempt: the next handshake fetches a fresh one, and only a rejection of that one is permanent.
 * Non-retriable for kafkajs (its own retries would offer the same token again); the sink and the reader try
 * once more themselves. Never carries a `cause`, so kafkajs's wrappers keep pointing at it.
 */
export class KafkaCredentialsRejectedError extends KafkaJSSASLAuthenticationError {
  /** Always `"retry-fresh"`: the next handshake uses a freshly fetched credential. */
  readonly credentialsRejected = "retry-fresh";

  constructor(message: string) {
    // kafkajs's error classes take the message (and name themselves); its typings omit the parameter.
    super(...([message] as unknown as []));
  }
}

/** A broker's `SASL_AUTHENTICATION_FAILED` (error code 58) answer to a SaslAuthenticate request. */
function isSaslAuthenticationFailed(error: unknown): error is Error {
  const item = error as { type?: unknown; code?: unknown } | null;
  return error instanceof Error && (item?.type === "SASL_AUTHENTICATION_FAILED" || item?.code === 58);
}

/**
 * At most 300 characters of the broker's own explanation, scrubbed. The messages around it avoid
 * `credentials:` / `token:` shapes, which core's scrubbing would take for a secret and redact.
 */
function brokerReason(text: string, scrubber: SecretScrubber): string {
  const clean = scrubber.scrub(text).replace(/\s+/g, " ").trim();
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
}

/**
 * The `ConfigurationError` for credentials the broker refused for good. kafkajs must not retry it (it would
 * offer the same credentials again), hence `retriable: false`, which kafkajs's retrier reads; it carries no
 * `cause`, so kafkajs's wrappers keep it as theirs and the sink finds it in the error chain.
 */
function permanentRejection(message: string, path: string, fix: string): ConfigurationError {
  const error = new ConfigurationError(message, [{ path, message: "rejected by the broker" }], { fix });
  Object.defineProperty(error, "retriable", { value: false, enumerable: false });
  return error;
}

type AuthenticatorFactory = (sasl: {
  username: string;
  password: string;
}) => (args: AuthenticationProviderArgs) => Authenticator;

const BUILT_IN: Readonly<Record<"plain" | "scram-sha-256" | "scram-sha-512", string>> = {
  plain: "kafkajs/src/broker/saslAuthenticator/plain.js",
  "scram-sha-256": "kafkajs/src/broker/saslAuthenticator/scram256.js",
  "scram-sha-512": "kafkajs/src/broker/saslAuthenticator/scram512.js",
};

/**
 * kafkajs's own PLAIN / SCRAM authenticator (kafkajs is pinned to 2.2.4), watched: when the broker answers
 * the exchange with `SASL_AUTHENTICATION_FAILED`, the configured user name and password are wrong, and no
 * retry can fix that, so the handshake fails with a `ConfigurationError` instead of kafkajs's retriable-looking
 * error. Timeouts and lost connections during the handshake are passed on unchanged (transient).
 */
export function passwordMechanism(
  options: { mechanism: "plain" | "scram-sha-256" | "scram-sha-512"; username: string; password: string },
  scrubber: SecretScrubber,
): Mechanism {
  const factory = load(BUILT_IN[options.mechanism]) as AuthenticatorFactory;
  const create = factory({ username: options.username, password: options.password });
  const name = options.mechanism.toUpperCase();
  return {
    mechanism: options.mechanism,
    authenticationProvider: (args) => {
      let rejection: Error | undefined;
      const inner = create({
        host: args.host,
        port: args.port,
        // The built-in logs every failure at error level; a rejection is reported through the error instead.
        logger: {
          ...args.logger,
          error: (message: string, extra?: object) => {
            if (rejection === undefined) args.logger.error(message, extra);
            else args.logger.debug(message, extra);
          },
        },
        saslAuthenticate: async (request) => {
          try {
            return await args.saslAuthenticate(request);
          } catch (error) {
            if (isSaslAuthenticationFailed(error)) rejection = error;
            throw error;
          }
        },
      });
      return {
        authenticate: async () => {
          try {
            await inner.authenticate();
          } catch (error) {
            if (rejection === undefined) throw error;
            throw permanentRejection(
              `${REJECTED_PREFIX} ${name} user name and password (${brokerReason(rejection.message, scrubber)})`,
              "sasl.password",
              `check sasl.username and sasl.password (mechanism ${name}) against the users the cluster knows: ` +
                "Confluent Cloud wants a cluster API key and its secret, Event Hubs the user $ConnectionString " +
                "and the whole connection string, MSK SCRAM a secret associated with the cluster. Static " +
                "credentials the broker rejected are not retried; fix them and restart.",
            );
          }
        },
      };
    },
  };
}

/** Where the OAUTHBEARER authenticator gets its token and reports what the broker thought of it. */
export interface OAuthBearerTokens {
  /** The token for this handshake (a fresh one when the broker refused the previous one). */
  token(): Promise<string>;
  /** The broker accepted `token`. */
  accepted(token: string): void;
  /** The broker refused `token`: the error to fail the handshake with (retry with a fresh one, or permanent). */
  rejected(token: string, reason: string): Error;
}

const SOH = "\u0001";

/** A SASL auth-bytes message: length-prefixed bytes, as kafkajs's own requests encode them. */
function saslBytes(text: string): { encode: () => Promise<Buffer> } {
  return {
    encode: async () => {
      const body = Buffer.from(text, "utf8");
      const out = Buffer.alloc(4 + body.length);
      out.writeInt32BE(body.length, 0);
      body.copy(out, 4);
      return out;
    },
  };
}

/** Reads the server's auth bytes (length-prefixed by kafkajs) as they are. */
const serverBytes = {
  decode: async (raw: Buffer): Promise<Buffer> => {
    if (!Buffer.isBuffer(raw) || raw.length < 4) return Buffer.alloc(0);
    const length = raw.readInt32BE(0);
    return length <= 0 ? Buffer.alloc(0) : raw.subarray(4, 4 + length);
  },
  parse: async (data: Buffer): Promise<Buffer> => data,
};

/**
 * The `status` of an RFC 7628 error challenge (`{"status":"invalid_token",...}`), which is how a broker
 * refuses an OAUTHBEARER token: the SaslAuthenticate response itself carries no error code. Undefined for an
 * empty (success) answer or anything that is not such a challenge.
 */
function errorChallengeStatus(bytes: Buffer | undefined): string | undefined {
  if (bytes === undefined || bytes.length === 0) return undefined;
  try {
    const parsed = JSON.parse(bytes.toString("utf8")) as { status?: unknown };
    if (typeof parsed?.status !== "string") return undefined;
    return parsed.status.replace(/[^\w.-]/g, "").slice(0, 64) || "unknown";
  } catch {
    return undefined;
  }
}

/**
 * SASL/OAUTHBEARER (RFC 7628) that notices a refused token. kafkajs 2.2.4's built-in ignores the broker's
 * answer: a refused token looks like a successful handshake, and the next request fails with
 * `ILLEGAL_SASL_STATE` on a connection the broker then closes, so a bad token was retried forever under a
 * misleading error. Here the broker's error challenge is answered as the RFC asks (a lone `%x01`, after which
 * the broker fails the exchange and closes the connection) and the handshake fails naming the refused token.
 */
export function oauthBearerMechanism(tokens: OAuthBearerTokens, scrubber: SecretScrubber): Mechanism {
  return {
    mechanism: "oauthbearer",
    authenticationProvider: ({ saslAuthenticate }) => ({
      authenticate: async () => {
        const token = await tokens.token();
        let answer: Buffer | undefined;
        try {
          answer =
            (await saslAuthenticate({
              request: saslBytes(`n,,${SOH}auth=Bearer ${token}${SOH}${SOH}`),
              response: serverBytes,
            })) ?? undefined;
        } catch (error) {
          if (!isSaslAuthenticationFailed(error)) throw error;
          throw tokens.rejected(token, brokerReason(error.message, scrubber));
        }
        if (errorChallengeStatus(answer) === undefined) {
          tokens.accepted(token);
          return;
        }
        const challenge = brokerReason(answer?.toString("utf8") ?? "", scrubber);
        let reason = `the broker answered ${challenge}`;
        try {
          await saslAuthenticate({ request: saslBytes(SOH) });
        } catch (error) {
          // Kafka repeats the challenge as the error message; other brokers may explain more.
          const message = isSaslAuthenticationFailed(error) ? brokerReason(error.message, scrubber) : "";
          if (message !== "" && message !== challenge) reason += ` (${message})`;
        }
        throw tokens.rejected(token, reason);
      },
    }),
  };
}

/** The error for a rejection of a token fetched fresh after an earlier rejection: permanent. */
export function permanentTokenRejection(reason: string): ConfigurationError {
  return permanentRejection(
    `${REJECTED_PREFIX} OAUTHBEARER token from sasl.tokenProvider, also a freshly fetched one (${reason})`,
    "sasl.tokenProvider",
    "check what the token provider returns and what the broker accepts: the token's audience or scope, " +
      "issuer, signature and expiry (Kafka's OAUTHBEARER validator settings), the IAM policy and region " +
      "(MSK IAM: kafka-cluster:Connect on the cluster), the role assignment on the namespace (Event Hubs: " +
      "Azure Event Hubs Data Sender). A token the broker rejected after a fresh fetch is not retried; fix the " +
      "configuration and restart.",
  );
}

/** The error for a rejected token that was not fetched fresh: the next handshake fetches a new one. */
export function retryTokenRejection(reason: string): KafkaCredentialsRejectedError {
  return new KafkaCredentialsRejectedError(
    `${REJECTED_PREFIX} OAUTHBEARER token from sasl.tokenProvider (${reason}); fetching a fresh one`,
  );
}

/**
 * kafkajs's log lines about refused credentials, left out: the connection's `Response SaslAuthenticate` error
 * and every line quoting one of the errors above. The failure itself reaches the caller as an error (a
 * permanent one is reported once by the delivery pipeline); repeated attempts must not print it each time.
 */
export function quietAuthenticationLogs(logger: KafkaLogger): KafkaLogger {
  const drop = (message: string): boolean =>
    message.includes(REJECTED_PREFIX) || message.startsWith("kafkajs Connection: Response SaslAuthenticate");
  return {
    warn(message, context) {
      if (!drop(message)) logger.warn(message, context);
    },
    error(message, context) {
      if (drop(message)) return;
      if (logger.error === undefined) logger.warn(message, context);
      else logger.error(message, context);
    },
  };
}
