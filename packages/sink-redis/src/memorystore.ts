import type { Credentials } from "@streamll/core";
import { CredentialError } from "@streamll/core";
import { loadOptionalPackages, safeErrorMessage, v, validateOptions } from "@streamll/core/internal";
import type { RedisCredentials } from "./redis-connection";

/**
 * How long the adapter uses one access token before asking `google-auth-library` again: 4 minutes.
 * google-auth-library hands out its cached token until about 5 minutes before the token's 1-hour expiry and
 * renews it then, so a token the adapter holds always has minutes of validity left for new connections.
 */
export const MEMORYSTORE_TOKEN_REUSE_MS = 4 * 60_000;

/** Default renewal lead relative to the reuse window: ask for a token every 3 minutes. */
export const MEMORYSTORE_REFRESH_AHEAD_MS = 60_000;

/**
 * The part of `google-auth-library` the adapter uses: a `GoogleAuth` instance or an auth client
 * (`OAuth2Client`, `Compute`, `JWT`, `Impersonated`, …). `getAccessToken()` returns the token as a string
 * (`GoogleAuth`) or as `{ token }` (auth clients).
 */
export interface GoogleAccessTokenSource {
  getAccessToken(): Promise<string | null | undefined | { token?: string | null | undefined }>;
}

/** Options of {@link memorystoreIamAuth}. */
export interface MemorystoreIamAuthOptions {
  /**
   * Token source, e.g. an `Impersonated` client. Default: `new GoogleAuth({ scopes:
   * "https://www.googleapis.com/auth/cloud-platform" })` from `google-auth-library` (an optional peer
   * dependency, loaded on first use): Application Default Credentials.
   */
  auth?: GoogleAccessTokenSource;
  /** How long one token is used before asking again. Default {@link MEMORYSTORE_TOKEN_REUSE_MS}; at most 30 min. */
  tokenReuseMs?: number;
  /** Clock (epoch ms). Default `Date.now`. */
  clock?: () => number;
}

const MAX_REUSE_MS = 30 * 60_000;

/** The scope the default `GoogleAuth` asks for. */
const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

const memorystoreIamAuthOptionsSchema = v.object<MemorystoreIamAuthOptions>({
  auth: v
    .custom<GoogleAccessTokenSource>(
      "a GoogleAuth instance or auth client (an object with getAccessToken)",
      (value) => typeof (value as { getAccessToken?: unknown } | null)?.getAccessToken === "function",
    )
    .optional(),
  tokenReuseMs: v.number({ min: MEMORYSTORE_REFRESH_AHEAD_MS + 1, max: MAX_REUSE_MS }).optional(),
  clock: v.fn<() => number>().optional(),
});

/**
 * Credentials for Memorystore for Redis Cluster and Memorystore for Valkey with IAM authentication: the OAuth2
 * access token of the application's identity (`roles/redis.dbConnectionUser` for Redis Cluster,
 * `roles/memorystore.dbConnectionUser` for Valkey) is sent as the `AUTH`
 * password. Authenticated connections survive the token's expiry; new connections always get a current token.
 * Works with `google-auth-library` (optional peer).
 */
export function memorystoreIamAuth(options: MemorystoreIamAuthOptions = {}): RedisCredentials {
  validateOptions("memorystoreIamAuth()", memorystoreIamAuthOptionsSchema, options);
  const reuseMs = options.tokenReuseMs ?? MEMORYSTORE_TOKEN_REUSE_MS;
  const clock = options.clock ?? Date.now;
  let auth: Promise<GoogleAccessTokenSource> | undefined =
    options.auth === undefined ? undefined : Promise.resolve(options.auth);
  return {
    refreshAheadMs: MEMORYSTORE_REFRESH_AHEAD_MS,
    provider: async (): Promise<Credentials> => {
      auth ??= loadOptionalPackages("Memorystore IAM authentication", [
        ["google-auth-library", () => import("google-auth-library")],
      ]).then(([google]) => new google.GoogleAuth({ scopes: CLOUD_PLATFORM_SCOPE }));
      auth.catch(() => {
        auth = undefined;
      });
      const source = await auth;
      let result: Awaited<ReturnType<GoogleAccessTokenSource["getAccessToken"]>>;
      try {
        result = await source.getAccessToken();
      } catch (error) {
        const reason =
          error instanceof Error ? `${error.name}: ${safeErrorMessage(error, 300)}` : "unknown error";
        throw new CredentialError(`Could not get a Google access token for Memorystore (${reason})`);
      }
      const token = typeof result === "string" ? result : (result?.token ?? undefined);
      if (typeof token !== "string" || token === "") {
        throw new CredentialError("google-auth-library returned no access token for Memorystore");
      }
      return { password: token, expiresAt: clock() + reuseMs };
    },
  };
}
