import type { Credentials } from "@streamll/core";
import { CredentialError } from "@streamll/core";
import { loadOptionalPackages, safeErrorMessage, v, validateOptions } from "@streamll/core/internal";
import type { RedisCredentials } from "./redis-connection";

/** The Microsoft Entra scope for Azure Cache for Redis and Azure Managed Redis. */
export const AZURE_REDIS_SCOPE = "https://redis.azure.com/.default";

/**
 * Default renewal lead: 5 minutes. Azure asks clients to send a fresh token with `AUTH` at least 3 minutes
 * before the current one expires, or the service closes the connection.
 */
export const AZURE_REFRESH_AHEAD_MS = 5 * 60_000;

const MIN_REFRESH_AHEAD_MS = 3 * 60_000;

/** An access token as `@azure/identity` returns it. */
export interface EntraAccessToken {
  readonly token: string;
  /** Expiry, epoch ms. */
  readonly expiresOnTimestamp: number;
}

/**
 * The part of `@azure/identity`'s `TokenCredential` the adapter uses: `DefaultAzureCredential`,
 * `ManagedIdentityCredential`, `ClientSecretCredential`, `WorkloadIdentityCredential`, … all fit.
 */
export interface EntraTokenCredential {
  getToken(scopes: string | string[]): Promise<EntraAccessToken | null>;
}

/** Options of {@link azureEntraAuth}. */
export interface AzureEntraAuthOptions {
  /**
   * Where tokens come from, e.g. `new ManagedIdentityCredential()`. Default: a `DefaultAzureCredential` from
   * `@azure/identity` (an optional peer dependency, loaded on first use), created once.
   */
  credential?: EntraTokenCredential;
  /** Token scope. Default {@link AZURE_REDIS_SCOPE}. */
  scope?: string;
  /**
   * Redis user name. Default: the token's `oid` claim (the object id of the managed identity or service
   * principal), which is what Azure expects.
   */
  username?: string;
  /** Renew this long before the token expires; at least 3 minutes. Default {@link AZURE_REFRESH_AHEAD_MS}. */
  refreshAheadMs?: number;
}

const azureEntraAuthOptionsSchema = v.object<AzureEntraAuthOptions>({
  credential: v
    .custom<EntraTokenCredential>(
      "a TokenCredential from @azure/identity (an object with getToken)",
      (value) => typeof (value as { getToken?: unknown } | null)?.getToken === "function",
    )
    .optional(),
  scope: v.string({ min: 1 }).optional(),
  username: v.string({ min: 1 }).optional(),
  refreshAheadMs: v
    .number({
      min: MIN_REFRESH_AHEAD_MS,
      expected: "at least 180000 ms (Azure requires re-authentication 3 minutes before expiry)",
    })
    .optional(),
});

/**
 * Reads the `oid` (object id) claim of an Entra access token. Throws {@link CredentialError} when the token is
 * not a JWT or has no `oid`; the message never contains the token.
 */
export function entraObjectId(token: string): string {
  const payload = token.split(".")[1];
  if (payload === undefined || payload === "") {
    throw new CredentialError("Entra access token is not a JWT; cannot read its oid claim");
  }
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    throw new CredentialError("Entra access token payload is not valid JSON; cannot read its oid claim");
  }
  const oid = typeof claims === "object" && claims !== null ? (claims as { oid?: unknown }).oid : undefined;
  if (typeof oid !== "string" || oid === "") {
    throw new CredentialError(
      "Entra access token has no oid claim; pass `username` (the identity's object id)",
    );
  }
  return oid;
}

/**
 * Credentials for Azure Cache for Redis / Azure Managed Redis with Microsoft Entra ID: user name = the token's
 * `oid`, password = the access token. The sink re-sends a fresh token with `AUTH` on live connections before the
 * old one expires and uses it for reconnects. Works with any `@azure/identity` credential (optional peer);
 * without one, a `DefaultAzureCredential` is used.
 */
export function azureEntraAuth(options: AzureEntraAuthOptions = {}): RedisCredentials {
  validateOptions("azureEntraAuth()", azureEntraAuthOptionsSchema, options);
  const refreshAheadMs = options.refreshAheadMs ?? AZURE_REFRESH_AHEAD_MS;
  const scope = options.scope ?? AZURE_REDIS_SCOPE;
  let credential: Promise<EntraTokenCredential> | undefined =
    options.credential === undefined ? undefined : Promise.resolve(options.credential);
  return {
    refreshAheadMs,
    provider: async (): Promise<Credentials> => {
      credential ??= loadOptionalPackages("Azure Entra ID authentication", [
        ["@azure/identity", () => import("@azure/identity")],
      ]).then(([identity]) => new identity.DefaultAzureCredential());
      credential.catch(() => {
        credential = undefined;
      });
      const source = await credential;
      let accessToken: EntraAccessToken | null;
      try {
        accessToken = await source.getToken(scope);
      } catch (error) {
        // @azure/identity messages explain the missing setup (no managed identity, no az login) and hold no token.
        const reason =
          error instanceof Error ? `${error.name}: ${safeErrorMessage(error, 300)}` : "unknown error";
        throw new CredentialError(`Could not get a Microsoft Entra token for ${scope} (${reason})`);
      }
      if (accessToken === null || typeof accessToken.token !== "string" || accessToken.token === "") {
        throw new CredentialError(`Microsoft Entra returned no token for ${scope}`);
      }
      const username = options.username ?? entraObjectId(accessToken.token);
      return { username, password: accessToken.token, expiresAt: accessToken.expiresOnTimestamp };
    },
  };
}
