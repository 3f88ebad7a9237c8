import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Credentials } from "@streamll/core";
import { ConfigurationError, CredentialError } from "@streamll/core";
import type { RedisCredentials } from "./redis-connection";

/** How long an ElastiCache IAM token can be used to open a connection: 15 minutes, fixed by AWS. */
export const ELASTICACHE_TOKEN_TTL_SECONDS = 900;

/** Default renewal lead: a token is replaced (and live connections re-authenticated) 5 minutes before expiry. */
export const ELASTICACHE_REFRESH_AHEAD_MS = 5 * 60_000;

/** AWS credentials as the AWS SDK v3 providers return them. */
export interface AwsCredentialsLike {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** When temporary credentials expire; a token never outlives the credentials that signed it. */
  readonly expiration?: Date;
}

/** Fixed AWS credentials or a provider such as `fromNodeProviderChain()` from `@aws-sdk/credential-providers`. */
export type AwsCredentialsSource = AwsCredentialsLike | (() => Promise<AwsCredentialsLike>);

/** Input of {@link createElastiCacheIamToken}. */
export interface ElastiCacheIamTokenParams {
  /** The ElastiCache user id; for IAM-enabled users it equals the user name. */
  userId: string;
  /** Replication group id (node-based cache) or serverless cache name. Lower-cased as AWS requires. */
  cacheName: string;
  /** AWS region of the cache, e.g. `eu-west-1`. */
  region: string;
  /** `true` for ElastiCache Serverless (adds `ResourceType=ServerlessCache`). */
  serverless?: boolean;
  credentials: AwsCredentialsLike;
  /** Signing time. Default now. */
  signingDate?: Date;
  /** Token validity in seconds, at most 900. Default 900. */
  expiresInSeconds?: number;
}

/** Options of {@link elastiCacheIamAuth}. */
export interface ElastiCacheIamAuthOptions {
  /** The ElastiCache user id; for IAM-enabled users it equals the user name. */
  userId: string;
  /** Replication group id (node-based cache) or serverless cache name. */
  cacheName: string;
  /** AWS region of the cache, e.g. `eu-west-1`. */
  region: string;
  /** `true` for ElastiCache Serverless. Default `false`. */
  serverless?: boolean;
  /**
   * AWS credentials used to sign. Default: the Node.js default provider chain (`fromNodeProviderChain()` from
   * `@aws-sdk/credential-providers`: environment, SSO, web identity, ECS/EC2 roles, …).
   */
  credentials?: AwsCredentialsSource;
  /** Renew this long before the token expires. Default {@link ELASTICACHE_REFRESH_AHEAD_MS}. */
  refreshAheadMs?: number;
  /** Clock used for signing and expiry (epoch ms). Default `Date.now`. */
  clock?: () => number;
}

// Query strings in SigV4 use RFC 3986 encoding: encodeURIComponent leaves !'()* alone, AWS does not.
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function required(value: unknown, path: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    const message = "must be a non-empty string";
    throw new ConfigurationError(`ElastiCache IAM ${path} ${message}`, [{ path, message }]);
  }
  return value.trim();
}

/**
 * Creates an ElastiCache IAM authentication token: a SigV4-presigned `GET` for service `elasticache` on host
 * `<cacheName>` with `Action=connect&User=<userId>` (plus `ResourceType=ServerlessCache` for serverless),
 * written without the `http://` prefix. Use it as the password, with the user id as user name.
 */
export async function createElastiCacheIamToken(params: ElastiCacheIamTokenParams): Promise<string> {
  const userId = required(params.userId, "userId");
  const cacheName = required(params.cacheName, "cacheName").toLowerCase();
  const region = required(params.region, "region");
  const expiresIn = params.expiresInSeconds ?? ELASTICACHE_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > ELASTICACHE_TOKEN_TTL_SECONDS) {
    const message = `must be an integer between 1 and ${ELASTICACHE_TOKEN_TTL_SECONDS}`;
    throw new ConfigurationError(`ElastiCache IAM expiresInSeconds ${message}`, [
      { path: "expiresInSeconds", message },
    ]);
  }
  const query: Record<string, string> = { Action: "connect", User: userId };
  if (params.serverless) query.ResourceType = "ServerlessCache";
  const signer = new SignatureV4({
    service: "elasticache",
    region,
    credentials: params.credentials,
    sha256: Sha256,
  });
  const signed = await signer.presign(
    { method: "GET", protocol: "http:", hostname: cacheName, path: "/", query, headers: { host: cacheName } },
    { expiresIn, signingDate: params.signingDate ?? new Date() },
  );
  const parts: string[] = [];
  for (const [key, value] of Object.entries(signed.query ?? {})) {
    if (value === null || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) parts.push(`${rfc3986(key)}=${rfc3986(item)}`);
  }
  return `${cacheName}/?${parts.join("&")}`;
}

async function loadDefaultAwsCredentials(): Promise<() => Promise<AwsCredentialsLike>> {
  try {
    const { fromNodeProviderChain } = await import("@aws-sdk/credential-providers");
    return fromNodeProviderChain();
  } catch (error) {
    throw new CredentialError(
      "ElastiCache IAM auth needs AWS credentials: pass `credentials` or install @aws-sdk/credential-providers",
      { cause: error instanceof Error ? new Error(error.message) : undefined },
    );
  }
}

/**
 * Credentials for ElastiCache (Redis OSS 7+ / Valkey 7.2+) IAM authentication. Each refresh signs a new
 * 15-minute token; the sink re-sends it with `AUTH` on live connections (ElastiCache closes IAM connections
 * after 12 hours without re-authentication) and uses it for every reconnect.
 *
 * Needs the optional peer dependencies `@smithy/signature-v4` and `@aws-crypto/sha256-js`, plus
 * `@aws-sdk/credential-providers` when `credentials` is not given.
 */
export function elastiCacheIamAuth(options: ElastiCacheIamAuthOptions): RedisCredentials {
  const userId = required(options.userId, "userId");
  const cacheName = required(options.cacheName, "cacheName");
  const region = required(options.region, "region");
  const clock = options.clock ?? Date.now;
  let source: Promise<() => Promise<AwsCredentialsLike>> | undefined;
  const credentialsSource = options.credentials;
  const resolveAws = async (): Promise<AwsCredentialsLike> => {
    if (typeof credentialsSource === "function") return credentialsSource();
    if (credentialsSource !== undefined) return credentialsSource;
    source ??= loadDefaultAwsCredentials();
    return (await source)();
  };
  return {
    refreshAheadMs: options.refreshAheadMs ?? ELASTICACHE_REFRESH_AHEAD_MS,
    provider: async (): Promise<Credentials> => {
      let aws: AwsCredentialsLike;
      try {
        aws = await resolveAws();
      } catch (error) {
        if (error instanceof CredentialError) throw error;
        throw new CredentialError("Could not load AWS credentials for ElastiCache IAM auth", {
          cause: error instanceof Error ? new Error(error.message) : undefined,
        });
      }
      const now = clock();
      const password = await createElastiCacheIamToken({
        userId,
        cacheName,
        region,
        serverless: options.serverless ?? false,
        credentials: aws,
        signingDate: new Date(now),
      });
      let expiresAt = now + ELASTICACHE_TOKEN_TTL_SECONDS * 1_000;
      if (aws.expiration !== undefined) expiresAt = Math.min(expiresAt, aws.expiration.getTime());
      return { username: userId, password, expiresAt };
    },
  };
}
