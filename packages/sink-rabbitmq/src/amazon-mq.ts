import type { GetWebIdentityTokenCommandOutput, STSClient, STSClientConfig } from "@aws-sdk/client-sts";
import type { CredentialProvider, Credentials } from "@streamll/core";
import { ConfigurationError, CredentialError } from "@streamll/core";

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
  client?: Pick<STSClient, "send">;
  /** Configuration for the `STSClient` created when `client` is not given (e.g. `credentials`, `endpoint`). */
  clientConfig?: STSClientConfig;
}

type StsModule = typeof import("@aws-sdk/client-sts");

let stsModule: Promise<StsModule> | undefined;

function loadSts(): Promise<StsModule> {
  stsModule ??= import("@aws-sdk/client-sts").catch((error: unknown) => {
    stsModule = undefined;
    throw new ConfigurationError(
      "amazonMqIamCredentials needs the optional peer dependency @aws-sdk/client-sts (npm install @aws-sdk/client-sts)",
      [{ path: "credentials", message: "@aws-sdk/client-sts is not installed" }],
      { cause: error },
    );
  });
  return stsModule;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * A credential provider for Amazon MQ for RabbitMQ with IAM authentication: each call fetches a fresh JWT from
 * STS `GetWebIdentityToken` and returns it as the password, with its expiry so the sink refreshes it ahead of
 * time (live connections get the new token through `update-secret`). Pass it as the sink's or reader's
 * `credentials` option. Errors never contain the token.
 */
export function amazonMqIamCredentials(options: AmazonMqIamCredentialsOptions): CredentialProvider {
  const audience = typeof options.audience === "string" ? [options.audience] : [...(options.audience ?? [])];
  if (audience.length === 0 || audience.some((value) => typeof value !== "string" || value.length === 0)) {
    throw new ConfigurationError("audience must be a non-empty string or list of strings", [
      { path: "audience", message: "required" },
    ]);
  }
  const durationSeconds = options.durationSeconds ?? 900;
  if (!Number.isInteger(durationSeconds) || durationSeconds < 60 || durationSeconds > 3600) {
    throw new ConfigurationError("durationSeconds must be an integer between 60 and 3600", [
      { path: "durationSeconds", message: "must be an integer between 60 and 3600" },
    ]);
  }
  const signingAlgorithm = options.signingAlgorithm ?? "RS256";
  if (signingAlgorithm !== "RS256" && signingAlgorithm !== "ES384") {
    throw new ConfigurationError('signingAlgorithm must be "RS256" or "ES384"', [
      { path: "signingAlgorithm", message: 'must be "RS256" or "ES384"' },
    ]);
  }
  let client: Pick<STSClient, "send"> | undefined = options.client;

  return async (): Promise<Credentials> => {
    const sts = await loadSts();
    client ??= new sts.STSClient({
      ...options.clientConfig,
      ...(options.region ? { region: options.region } : {}),
    });
    let response: GetWebIdentityTokenCommandOutput;
    try {
      response = await client.send(
        new sts.GetWebIdentityTokenCommand({
          Audience: audience,
          DurationSeconds: durationSeconds,
          SigningAlgorithm: signingAlgorithm,
        }),
      );
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
  if (!options.clientId || !options.clientSecret) {
    throw new ConfigurationError("clientId and clientSecret are required", [
      { path: options.clientId ? "clientSecret" : "clientId", message: "required" },
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
