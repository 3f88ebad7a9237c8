import { inspect } from "node:util";
import { ConfigurationError, CredentialError, createRefreshingCredentials } from "@streamll/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AZURE_REDIS_SCOPE, azureEntraAuth, type EntraTokenCredential, entraObjectId } from "./azure";

const NOW = Date.parse("2026-03-01T12:00:00.000Z");
const OID = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab";

function jwt(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "RS256", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}

function fakeCredential(
  lifetimeMs = 60 * 60_000,
): EntraTokenCredential & { scopes: unknown[]; calls: number } {
  const fake = {
    scopes: [] as unknown[],
    calls: 0,
    async getToken(scopes: string | string[]) {
      fake.scopes.push(scopes);
      fake.calls += 1;
      return { token: jwt({ oid: OID, n: fake.calls }), expiresOnTimestamp: Date.now() + lifetimeMs };
    },
  };
  return fake;
}

describe("azureEntraAuth", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("asks for the Redis scope and uses the token's oid as user name", async () => {
    vi.useFakeTimers({ now: NOW });
    const credential = fakeCredential();
    const auth = azureEntraAuth({ credential });
    const credentials = await auth.provider();
    expect(credential.scopes).toEqual([AZURE_REDIS_SCOPE]);
    expect(AZURE_REDIS_SCOPE).toBe("https://redis.azure.com/.default");
    expect(credentials.username).toBe(OID);
    expect(credentials.password).toBe(jwt({ oid: OID, n: 1 }));
    expect(credentials.expiresAt).toBe(NOW + 60 * 60_000);
  });

  it("re-authenticates 5 minutes before expiry (Azure requires at least 3)", async () => {
    vi.useFakeTimers({ now: NOW });
    const credential = fakeCredential();
    const auth = azureEntraAuth({ credential });
    expect(auth.refreshAheadMs).toBe(5 * 60_000);
    const cache = createRefreshingCredentials(auth.provider, { refreshAheadMs: auth.refreshAheadMs ?? 0 });
    const renewed: number[] = [];
    cache.subscribe(() => renewed.push(Date.now() - NOW));
    await cache.get();
    await vi.advanceTimersByTimeAsync(55 * 60_000 - 1);
    expect(credential.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(credential.calls).toBe(2);
    expect(renewed).toEqual([55 * 60_000]);
    cache.close();

    expect(() => azureEntraAuth({ credential, refreshAheadMs: 60_000 })).toThrow(ConfigurationError);
  });

  it("accepts an explicit user name and fails clearly without an oid", async () => {
    const noOid: EntraTokenCredential = {
      getToken: async () => ({ token: jwt({ sub: "x" }), expiresOnTimestamp: Date.now() + 3_600_000 }),
    };
    await expect(azureEntraAuth({ credential: noOid }).provider()).rejects.toBeInstanceOf(CredentialError);
    const named = await azureEntraAuth({ credential: noOid, username: "my-app" }).provider();
    expect(named.username).toBe("my-app");
    expect(() => entraObjectId("not-a-jwt")).toThrow(CredentialError);
  });

  it("never puts the token into errors", async () => {
    // A real token without an oid claim: the error explains what is missing but never repeats the token.
    const token = jwt({ sub: "service-principal", secret_marker: "do-not-log-me" });
    const withoutOid = await azureEntraAuth({
      credential: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) },
    })
      .provider()
      .catch((e: unknown) => e);
    expect(withoutOid).toBeInstanceOf(CredentialError);
    expect((withoutOid as Error).message).toMatch(/no oid claim/);
    expect(inspect(withoutOid, { depth: 10 })).not.toContain(token);
    expect(inspect(withoutOid, { depth: 10 })).not.toContain("do-not-log-me");

    const failing: EntraTokenCredential = {
      getToken: async () => {
        throw new Error("ManagedIdentityCredential: no managed identity endpoint found");
      },
    };
    const error = await azureEntraAuth({ credential: failing })
      .provider()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain("no managed identity endpoint");
    // An SDK message that quotes a secret is scrubbed before it reaches the error.
    const quoting: EntraTokenCredential = {
      getToken: async () => {
        throw new Error("ClientSecretCredential: client_secret=PLANTED-s3cr3t-value rejected");
      },
    };
    const quoted = await azureEntraAuth({ credential: quoting })
      .provider()
      .catch((e: unknown) => e);
    expect((quoted as Error).message).toContain("client_secret=[redacted]");
    expect(inspect(quoted, { depth: 10 })).not.toContain("PLANTED");
    const nullToken: EntraTokenCredential = { getToken: async () => null };
    await expect(azureEntraAuth({ credential: nullToken }).provider()).rejects.toThrow(/no token/);
    const bad: EntraTokenCredential = {
      getToken: async () => ({ token: "abc.%%%.def", expiresOnTimestamp: 1 }),
    };
    const decodeError = await azureEntraAuth({ credential: bad })
      .provider()
      .catch((e: unknown) => e);
    expect(decodeError).toBeInstanceOf(CredentialError);
    expect(inspect(decodeError, { depth: 10 })).not.toContain("abc.%%%.def");
  });
});
