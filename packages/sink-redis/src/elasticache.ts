/**
 * ElastiCache IAM authentication. The AWS packages it needs are optional peer dependencies, loaded on first
 * use: importing this module works without them, and using it without them fails with one
 * `ConfigurationError` naming every package to install.
 * @module
 */
import type { Credentials } from "@streamll/core";
import { CredentialError } from "@streamll/core";
import { awsCredentialsSchema, loadOptionalPackages, v, validateOptions } from "@streamll/core/internal";
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

const credentialValuesSchema = awsCredentialsSchema<AwsCredentialsLike>();

const tokenParamsSchema = v.object<ElastiCacheIamTokenParams>({
  userId: v.string({ min: 1, pattern: /\S/, expected: "a non-empty user id" }),
  cacheName: v.string({ min: 1, pattern: /\S/, expected: "a non-empty cache name" }),
  region: v.string({ pattern: /^[a-z]{2}(-[a-z]+)+-\d+$/, expected: "an AWS region such as us-east-1" }),
  serverless: v.boolean().optional(),
  credentials: credentialValuesSchema,
  signingDate: v.instance(Date, "a Date").optional(),
  expiresInSeconds: v.integer({ min: 1, max: ELASTICACHE_TOKEN_TTL_SECONDS }).optional(),
});

const authOptionsSchema = v.object<ElastiCacheIamAuthOptions>({
  userId: tokenParamsSchema.shape.userId,
  cacheName: tokenParamsSchema.shape.cacheName,
  region: tokenParamsSchema.shape.region,
  serverless: v.boolean().optional(),
  credentials: v

    .union(credentialValuesSchema, v.fn<() => Promise<AwsCredentialsLike>>("a credentials provider function"))
    .optional(),
  refreshAheadMs: v.number({ min: 1 }).optional(),
  clock: v.fn<() => number>().optional(),
});

const FEATURE = "ElastiCache IAM authentication";

function loadSigner() {
  return loadOptionalPackages(FEATURE, [
    ["@smithy/signature-v4", () => import("@smithy/signature-v4")],
    ["@aws-crypto/sha256-js", () => import("@aws-crypto/sha256-js")],
  ]);
}

/**
 * Creates an ElastiCache IAM authentication token: a SigV4-presigned `GET` for service `elasticache` on host
 * `<cacheName>` with `Action=connect&User=<userId>` (plus `ResourceType=ServerlessCache` for serverless),
 * written without the `http://` prefix. Use it as the password, with the user id as user name.
 */
export async function createElastiCacheIamToken(params: ElastiCacheIamTokenParams): Promise<string> {
  validateOptions("createElastiCacheIamToken()", tokenParamsSchema, params);
  const [{ SignatureV4 }, { Sha256 }] = await loadSigner();
  const userId = params.userId.trim();
  const cacheName = params.cacheName.trim().toLowerCase();
  const region = params.region;
  const expiresIn = params.expiresInSeconds ?? ELASTICACHE_TOKEN_TTL_SECONDS;
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

/**
 * Credentials for ElastiCache (Redis OSS 7+ / Valkey 7.2+) IAM authentication. Each refresh signs a new
 * 15-minute token; the sink re-sends it with `AUTH` on live connections (ElastiCache closes IAM connections
 * after 12 hours without re-authentication) and uses it for every reconnect.
 *
 * Needs the optional peer dependencies `@smithy/signature-v4` and `@aws-crypto/sha256-js`, plus
 * `@aws-sdk/credential-providers` when `credentials` is not given.
 */
export function elastiCacheIamAuth(options: ElastiCacheIamAuthOptions): RedisCredentials {
  validateOptions("elastiCacheIamAuth()", authOptionsSchema, options);
  const userId = options.userId.trim();
  const cacheName = options.cacheName.trim();
  const region = options.region;
  const clock = options.clock ?? Date.now;
  const credentialsSource = options.credentials;
  let defaultChain: Promise<() => Promise<AwsCredentialsLike>> | undefined;
  const resolveAws = async (): Promise<AwsCredentialsLike> => {
    if (typeof credentialsSource === "function") return credentialsSource();
    if (credentialsSource !== undefined) return credentialsSource;
    defaultChain ??= loadOptionalPackages(FEATURE, [
      ["@aws-sdk/credential-providers", () => import("@aws-sdk/credential-providers")],
    ]).then(([providers]) => providers.fromNodeProviderChain());
    defaultChain.catch(() => {
      defaultChain = undefined;
    });
    return (await defaultChain)();
  };
  return {
    refreshAheadMs: options.refreshAheadMs ?? ELASTICACHE_REFRESH_AHEAD_MS,
    provider: async (): Promise<Credentials> => {
      // Every package this needs is named at once, before any is used.
      if (credentialsSource === undefined) {
        await loadOptionalPackages(FEATURE, [
          ["@smithy/signature-v4", () => import("@smithy/signature-v4")],
          ["@aws-crypto/sha256-js", () => import("@aws-crypto/sha256-js")],
          ["@aws-sdk/credential-providers", () => import("@aws-sdk/credential-providers")],
        ]);
      }
      let aws: AwsCredentialsLike;
      try {
        aws = await resolveAws();
      } catch (error) {
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
