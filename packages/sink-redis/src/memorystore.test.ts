import { ConfigurationError, CredentialError, createRefreshingCredentials } from "@streamll/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MEMORYSTORE_TOKEN_REUSE_MS, memorystoreIamAuth } from "./memorystore";

const NOW = Date.parse("2026-05-01T08:00:00.000Z");

describe("memorystoreIamAuth", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends the access token as the AUTH password, without a user name", async () => {
    const auth = memorystoreIamAuth({
      auth: { getAccessToken: async () => "ya29.token-one" },
      clock: () => NOW,
    });
    const credentials = await auth.provider();
    expect(credentials).toEqual({ password: "ya29.token-one", expiresAt: NOW + MEMORYSTORE_TOKEN_REUSE_MS });
    expect(credentials.username).toBeUndefined();

    // Auth clients (OAuth2Client, Compute, JWT) answer { token, res }.
    const client = memorystoreIamAuth({
      auth: { getAccessToken: async () => ({ token: "ya29.two", res: null }) },
    });
    expect((await client.provider()).password).toBe("ya29.two");
  });

  it("asks google-auth-library again every 3 minutes", async () => {
    vi.useFakeTimers({ now: NOW });
    let calls = 0;
    const auth = memorystoreIamAuth({ auth: { getAccessToken: async () => `ya29.token-${++calls}` } });
    const cache = createRefreshingCredentials(auth.provider, { refreshAheadMs: auth.refreshAheadMs ?? 0 });
    const seen: string[] = [];
    cache.subscribe((c) => seen.push(c.password));
    expect((await cache.get()).password).toBe("ya29.token-1");
    await vi.advanceTimersByTimeAsync(3 * 60_000 - 1);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(["ya29.token-2"]);
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    expect(seen).toEqual(["ya29.token-2", "ya29.token-3"]);
    cache.close();
  });

  it("fails with CredentialError when no token comes back, and validates options", async () => {
    const empty = memorystoreIamAuth({ auth: { getAccessToken: async () => null } });
    await expect(empty.provider()).rejects.toBeInstanceOf(CredentialError);
    const failing = memorystoreIamAuth({
      auth: {
        getAccessToken: async () => {
          throw new Error("Could not load the default credentials");
        },
      },
    });
    await expect(failing.provider()).rejects.toThrow(/Could not load the default credentials/);
    const quoting = memorystoreIamAuth({
      auth: {
        getAccessToken: async () => {
          throw new Error("invalid_grant for Bearer ya29.PLANTEDaccesstoken1234567890");
        },
      },
    });
    const quoted = await quoting.provider().catch((e: unknown) => e);
    expect((quoted as Error).message).toContain("Bearer [redacted]");
    expect(String(quoted)).not.toContain("PLANTED");
    expect(() =>
      memorystoreIamAuth({ auth: { getAccessToken: async () => "t" }, tokenReuseMs: 1_000 }),
    ).toThrow(ConfigurationError);
  });
});
