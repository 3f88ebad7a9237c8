import type { CredentialProvider, Credentials } from "@streamll/core";
import { ConfigurationError, CredentialError } from "@streamll/core";
import { loadOptionalPackages, safeErrorMessage, v, validateOptions } from "@streamll/core/internal";

/**
 * The part of an AWS SDK v3 `STSClient` this uses. Declared here rather than imported so this module's types
 * do not need `@aws-sdk/client-sts`, an optional peer only `amazonMqIamCredentials` loads.
 */
export interface StsClientLike {
  send(command: object): Promise<unknown>;
}

/**
 * Options of `amazonMqIamCredentials`. The token is a JWT from AWS STS `GetWebIdentityToken` (IAM outbound
 * identity federation), which Amazon MQ for RabbitMQ 3.13 and 4.2+ accept as an OAuth 2.0 token when IAM
 * authentication is enabled on the broker.
 */
export interface AmazonMqIamCredentialsOptions {
  /**
   * The token's `aud` claim: the broker's OAuth 2.0 resource server id, as configured when IAM authentication
   * was enabled on the broker.
   */
  audience: string | readonly string[];
  /** AWS region of the STS endpoint (GetWebIdentityToken is regional only). Default: the SDK's region resolution. */
  region?: string;
  /** Token lifetime, 60 to 3600 seconds. Default 900. The sink refreshes it about a minute before it expires. */
  durationSeconds?: number;
  /** `RS256` (default) or `ES384`. */
  signingAlgorithm?: "RS256" | "ES384";
  /** User name sent with the token. RabbitMQ's OAuth 2.0 backend identifies the user from the token. Default `""`. */
  username?: string;
  /** An STS client to use (custom credentials, endpoint or middleware). Default: a new `STSClient`. */
  client?: StsClientLike;
  /**
   * Configuration for the `STSClient` created when `client` is not given (an `STSClientConfig`: `credentials`,
   * `endpoint`, …), passed to the SDK unchecked.
   */
  clientConfig?: Readonly<Record<string, unknown>>;
}

function loadSts() {
  return loadOptionalPackages("amazonMqIamCredentials", [
    ["@aws-sdk/client-sts", () => import("@aws-sdk/client-sts")],
  ]);
}

const amazonMqIamCredentialsOptionsSchema = v.object<AmazonMqIamCredentialsOptions>({
  audience: v.union(v.string({ min: 1 }), v.array(v.string({ min: 1 }), { min: 1 })),
  region: v
    .string({ pattern: /^[a-z]{2}(-[a-z]+)+-\d+$/, expected: "an AWS region such as us-east-1" })
    .optional(),
  durationSeconds: v.integer({ min: 60, max: 3600 }).optional(),
  signingAlgorithm: v.oneOf(["RS256", "ES384"]).optional(),
  username: v.string().optional(),
  client: v
    .custom<StsClientLike>(
      "an STS client (an object with send())",
      (value) => typeof (value as { send?: unknown } | null)?.send === "function",
    )
    .optional(),
  clientConfig: v
    .passthrough<Readonly<Record<string, unknown>>>("STSClientConfig, passed to the AWS SDK unchecked")
    .optional(),
});

const oauth2ClientCredentialsOptionsSchema = v.object<OAuth2ClientCredentialsOptions>({
  tokenUrl: v.string({ pattern: /^https?:\/\/\S+$/i, expected: "an absolute http(s) URL" }),
  clientId: v.string({ min: 1 }),
  clientSecret: v.string({ min: 1 }),
  scope: v.string({ min: 1 }).optional(),
  audience: v.string({ min: 1 }).optional(),
  username: v.string().optional(),
  timeoutMs: v.integer({ min: 1 }).optional(),
  fetch: v.fn<typeof fetch>("a fetch function").optional(),
});

function describe(error: unknown): string {
  // The SDK's message is quoted for its explanation (no role, expired web identity); scrubbed and cut, since
  // this error reaches logs and the sink's lastError.
  if (error instanceof Error) return `${error.name}: ${safeErrorMessage(error, 300)}`;
  return safeErrorMessage(error, 300);
}

/**
 * A credential provider for Amazon MQ for RabbitMQ with IAM authentication: each call fetches a fresh JWT from
 * STS `GetWebIdentityToken` and returns it as the password, with its expiry so the sink refreshes it ahead of
 * time (live connections get the new token through `update-secret`). Pass it as the sink's or reader's
 * `credentials` option. Errors never contain the token.
 */
export function amazonMqIamCredentials(options: AmazonMqIamCredentialsOptions): CredentialProvider {
  validateOptions("amazonMqIamCredentials()", amazonMqIamCredentialsOptionsSchema, options);
  const audience = typeof options.audience === "string" ? [options.audience] : [...options.audience];
  const durationSeconds = options.durationSeconds ?? 900;
  const signingAlgorithm = options.signingAlgorithm ?? "RS256";
  let client: StsClientLike | undefined = options.client;

  return async (): Promise<Credentials> => {
    const [sts] = await loadSts();
    client ??= new sts.STSClient({
      ...options.clientConfig,
      ...(options.region ? { region: options.region } : {}),
    });
    let response: { WebIdentityToken?: unknown; Expiration?: unknown };
    try {
      response = (await client.send(
        new sts.GetWebIdentityTokenCommand({
          Audience: audience,
          DurationSeconds: durationSeconds,
          SigningAlgorithm: signingAlgorithm,
        }),
      )) as typeof response;
    } catch (error) {
      throw new CredentialError(`STS GetWebIdentityToken failed: ${describe(error)}`);
    }
    const token = response.WebIdentityToken;
    if (typeof token !== "string" || token.length === 0) {
      throw new CredentialError("STS GetWebIdentityToken returned no token");
    }
    const expiresAt =
      response.Expiration instanceof Date
        ? response.Expiration.getTime()
        : Date.now() + durationSeconds * 1000;
    return { username: options.username ?? "", password: token, expiresAt };
  };
}

/** Options of `oauth2ClientCredentials`. */
export interface OAuth2ClientCredentialsOptions {
  /** The identity provider's token endpoint, e.g. `https://login.example.com/oauth2/token`. */
  tokenUrl: string;
  clientId: string;
  /** Never logged or put into errors. */
  clientSecret: string;
  /** Space-separated scopes, e.g. `rabbitmq.write:*\/streamll_events`. */
  scope?: string;
  /** Sent as the `audience` form field (some providers require it; it must match the broker's resource server id). */
  audience?: string;
  /** User name sent with the token. Default `""`. */
  username?: string;
  /** Give up a token request after this long. Default 10 000 ms. */
  timeoutMs?: number;
  /** The fetch implementation. Default the global `fetch`. */
  fetch?: typeof fetch;
}

/**
 * A credential provider for an OAuth 2.0 identity provider (Amazon MQ OAuth 2.0, CloudAMQP dedicated plans,
 * self-hosted RabbitMQ with `rabbitmq_auth_backend_oauth2`): the client-credentials grant, with the access
 * token as the password and `expires_in` as its expiry. Errors name the HTTP status, never the secret or token.
 */
export function oauth2ClientCredentials(options: OAuth2ClientCredentialsOptions): CredentialProvider {
  validateOptions("oauth2ClientCredentials()", oauth2ClientCredentialsOptionsSchema, options);
  let url: URL;
  try {
    url = new URL(options.tokenUrl);
  } catch {
    throw new ConfigurationError("tokenUrl must be an absolute URL", [
      { path: "tokenUrl", message: "not a URL" },
    ]);
  }
  if (url.protocol !== "https:" && url.hostname !== "localhost" && url.hostname !== "127.0.0.1") {
    throw new ConfigurationError("tokenUrl must use https (plain http is accepted only for localhost)", [
      { path: "tokenUrl", message: "must use https" },
    ]);
  }
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;

  return async (): Promise<Credentials> => {
    const body = new URLSearchParams({ grant_type: "client_credentials" });
    if (options.scope) body.set("scope", options.scope);
    if (options.audience) body.set("audience", options.audience);
    const basic = Buffer.from(
      `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`,
      "utf8",
    ).toString("base64");
    let response: Response;
    try {
      response = await doFetch(url, {
        method: "POST",
        headers: {
          authorization: `Basic ${basic}`,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new CredentialError(
        `OAuth 2.0 token request to ${url.origin} failed: ${error instanceof Error ? error.name : "error"}`,
      );
    }
    if (!response.ok) {
      throw new CredentialError(
        `OAuth 2.0 token request to ${url.origin} failed with HTTP ${response.status}`,
      );
    }
    let payload: unknown;
    try {
      payload = await response.json();
    } catch {
      throw new CredentialError(`OAuth 2.0 token response from ${url.origin} is not JSON`);
    }
    const record = (typeof payload === "object" && payload !== null ? payload : {}) as Record<
      string,
      unknown
    >;
    const token = record.access_token;
    if (typeof token !== "string" || token.length === 0) {
      throw new CredentialError(`OAuth 2.0 token response from ${url.origin} has no access_token`);
    }
    const expiresIn = Number(record.expires_in);
    const credentials: Credentials = { username: options.username ?? "", password: token };
    if (Number.isFinite(expiresIn) && expiresIn > 0) credentials.expiresAt = Date.now() + expiresIn * 1000;
    return credentials;
  };
}
