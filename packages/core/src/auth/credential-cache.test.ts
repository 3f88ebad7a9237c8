import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigurationError, CredentialError } from "../errors";
import { createRefreshingCredentials, redactCredentials } from "./credential-cache";
import type { Credentials } from "./credential-types";

const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
const MIN = 60_000;
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

/** A provider handing out numbered secrets; `failing` makes it throw (with the previous secret in the message). */
function makeProvider(lifetimeMs: number | undefined) {
  const state = { calls: 0, failing: false, lastSecret: "" };
  const provider = vi.fn(async (): Promise<Credentials> => {
    state.calls++;
    if (state.failing) throw new Error(`token service unavailable (old token ${state.lastSecret})`);
    state.lastSecret = `s3cret-token-${state.calls}`;
    return {
      username: "svc-user",
      password: state.lastSecret,
      ...(lifetimeMs === undefined ? {} : { expiresAt: Date.now() + lifetimeMs }),
    };
  });
  return { provider, state };
}

function quietLogger() {
  const lines: string[] = [];
  return {
    lines,
    logger: { warn: (message: string, context?: object) => lines.push(`${message} ${inspect(context)}`) },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe("createRefreshingCredentials", () => {
  it("fetches on first get(), then serves the cache", async () => {
    const { provider } = makeProvider(15 * MIN);
    const creds = createRefreshingCredentials(provider, { logger: quietLogger().logger });
    expect(creds.peek()).toBeUndefined();
    expect(provider).not.toHaveBeenCalled();
    const first = await creds.get();
    expect(first.password).toBe("s3cret-token-1");
    expect(first.username).toBe("svc-user");
    expect(await creds.get()).toBe(first);
    expect(creds.peek()).toBe(first);
    expect(provider).toHaveBeenCalledTimes(1);
    creds.close();
  });

  it("shares one in-flight fetch between concurrent get() calls (single flight)", async () => {
    let release: (c: Credentials) => void = () => undefined;
    const provider = vi.fn(() => new Promise<Credentials>((resolve) => (release = resolve)));
    const creds = createRefreshingCredentials(provider);
    const pending = Array.from({ length: 20 }, () => creds.get());
    expect(provider).toHaveBeenCalledTimes(1);
    release({ password: "pw-one" });
    const all = await Promise.all(pending);
    expect(new Set(all).size).toBe(1);
    expect(all[0]!.password).toBe("pw-one");
    creds.close();
  });

  it("refreshes refreshAheadMs before expiresAt and notifies subscribers", async () => {
    const { provider } = makeProvider(15 * MIN);
    const creds = createRefreshingCredentials(provider, { refreshAheadMs: MIN });
    const seen: string[] = [];
    creds.subscribe((c) => seen.push(c.password));
    await creds.get();
    await tick(14 * MIN - 1);
    expect(provider).toHaveBeenCalledTimes(1);
    await tick(1);
    expect(provider).toHaveBeenCalledTimes(2);
    expect(seen).toEqual(["s3cret-token-2"]);
    expect((await creds.get()).password).toBe("s3cret-token-2");
    // the next refresh is scheduled from the new credential
    await tick(14 * MIN);
    expect(seen).toEqual(["s3cret-token-2", "s3cret-token-3"]);
    creds.close();
  });

  it("never refreshes earlier than half the credential's lifetime", async () => {
    const { provider } = makeProvider(60_000);
    const creds = createRefreshingCredentials(provider, { refreshAheadMs: 10 * MIN });
    await creds.get();
    await tick(29_999);
    expect(provider).toHaveBeenCalledTimes(1);
    await tick(1);
    expect(provider).toHaveBeenCalledTimes(2);
    creds.close();
  });

  it("handles lifetimes beyond the timer limit without refreshing early", async () => {
    const { provider } = makeProvider(60 * 24 * 60 * MIN); // 60 days
    const creds = createRefreshingCredentials(provider);
    await creds.get();
    await tick(59 * 24 * 60 * MIN);
    expect(provider).toHaveBeenCalledTimes(1);
    await tick(24 * 60 * MIN);
    expect(provider).toHaveBeenCalledTimes(2);
    creds.close();
  });

  it("caches non-expiring credentials forever without a timer", async () => {
    const { provider } = makeProvider(undefined);
    const creds = createRefreshingCredentials(provider);
    await creds.get();
    expect(vi.getTimerCount()).toBe(0);
    await tick(365 * 24 * 60 * MIN);
    expect((await creds.get()).password).toBe("s3cret-token-1");
    expect(provider).toHaveBeenCalledTimes(1);
  });

  it("keeps serving the old credential while refreshes fail, then rejects once it expires", async () => {
    const { provider, state } = makeProvider(10 * MIN);
    const { lines, logger } = quietLogger();
    const creds = createRefreshingCredentials(provider, {
      logger,
      random: () => 1,
      retry: { maxAttempts: 2, initialDelayMs: 1000, maxDelayMs: 4000 },
    });
    const first = await creds.get();
    state.failing = true;
    await tick(9 * MIN); // refresh starts at 9 min
    expect(provider).toHaveBeenCalledTimes(2);
    await tick(1000); // retry within the round
    expect(provider).toHaveBeenCalledTimes(3);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("credential refresh failed; serving the current credential until it expires");
    // further rounds with backoff while the old credential is valid
    await tick(30_000);
    expect(provider.mock.calls.length).toBeGreaterThan(5);
    expect(await creds.get()).toBe(first);
    expect(creds.peek()).toBe(first);
    await tick(MIN); // now past expiresAt
    expect(creds.peek()).toBeUndefined();
    const rejected = creds.get();
    const assertion = expect(rejected).rejects.toBeInstanceOf(CredentialError);
    await tick(5000);
    await assertion;
    const error = (await rejected.catch((e: unknown) => e)) as CredentialError;
    expect(error.code).toBe("CREDENTIALS_UNAVAILABLE");
    expect(error.message).toMatch(
      /^credential provider failed after 2 attempt\(s\): Error: token service unavailable/,
    );
    for (const text of [error.message, inspect(error, { depth: 10 }), ...lines]) {
      expect(text).not.toContain("s3cret-token-1");
    }
    creds.close();
  });

  it("recovers when the provider comes back, and notifies subscribers of the new credential", async () => {
    const { provider, state } = makeProvider(2 * MIN);
    const creds = createRefreshingCredentials(provider, { logger: quietLogger().logger, random: () => 1 });
    const seen: string[] = [];
    creds.subscribe((c) => seen.push(c.password));
    await creds.get();
    state.failing = true;
    await tick(3 * MIN); // refresh at 1 min fails until expiry at 2 min
    await expect(
      (async () => {
        const p = creds.get();
        await tick(10_000);
        return p;
      })(),
    ).rejects.toBeInstanceOf(CredentialError);
    state.failing = false;
    const fresh = await creds.get();
    expect(fresh.password).toMatch(/^s3cret-token-/);
    expect(seen).toEqual([fresh.password]);
    creds.close();
  });

  it("rejects get() with CredentialError after retry.maxAttempts failed first fetches, and tries again later", async () => {
    const { provider, state } = makeProvider(15 * MIN);
    state.failing = true;
    const creds = createRefreshingCredentials(provider, { random: () => 0, retry: { maxAttempts: 3 } });
    const result = creds.get().catch((e: unknown) => e);
    await tick(10_000);
    expect(await result).toBeInstanceOf(CredentialError);
    expect(provider).toHaveBeenCalledTimes(3);
    state.failing = false;
    expect((await creds.get()).password).toMatch(/^s3cret-token-/);
    creds.close();
  });

  it("treats malformed or already-expired credentials from the provider as failures", async () => {
    const provider = vi.fn(
      async () => ({ password: "pw-expiring", expiresAt: Date.now() + 10 }) as Credentials,
    );
    const creds = createRefreshingCredentials(provider, { retry: { maxAttempts: 1 } });
    await expect(creds.get()).rejects.toThrow("expires in 10 ms (minTtlMs is 1000)");
    const garbage = createRefreshingCredentials(async () => ({ user: "x" }) as unknown as Credentials, {
      retry: { maxAttempts: 1 },
    });
    await expect(garbage.get()).rejects.toThrow("no password string");
    const badDate = createRefreshingCredentials(
      async () => ({ password: "p", expiresAt: new Date("nope") }),
      {
        retry: { maxAttempts: 1 },
      },
    );
    await expect(badDate.get()).rejects.toThrow("invalid expiresAt");
  });

  it("refresh() fetches now, shares a fetch in progress, and notifies subscribers", async () => {
    const { provider } = makeProvider(15 * MIN);
    const creds = createRefreshingCredentials(provider);
    const seen: string[] = [];
    creds.subscribe((c) => seen.push(c.password));
    await creds.get();
    const [a, b] = await Promise.all([creds.refresh(), creds.refresh()]);
    expect(a).toBe(b);
    expect(provider).toHaveBeenCalledTimes(2);
    expect(seen).toEqual(["s3cret-token-2"]);
    creds.close();
  });

  it("swallows subscriber errors and supports unsubscribe", async () => {
    const { provider } = makeProvider(15 * MIN);
    const creds = createRefreshingCredentials(provider);
    const seen: string[] = [];
    creds.subscribe(() => {
      throw new Error("subscriber bug");
    });
    const off = creds.subscribe((c) => seen.push(c.password));
    await creds.get();
    await creds.refresh();
    off();
    await creds.refresh();
    expect(seen).toEqual(["s3cret-token-2"]);
    creds.close();
  });

  it("close() stops the refresh timer and makes get() reject", async () => {
    const { provider } = makeProvider(15 * MIN);
    const creds = createRefreshingCredentials(provider);
    await creds.get();
    expect(vi.getTimerCount()).toBe(1);
    creds.close();
    expect(vi.getTimerCount()).toBe(0);
    await expect(creds.get()).rejects.toBeInstanceOf(CredentialError);
    await tick(60 * MIN);
    expect(provider).toHaveBeenCalledTimes(1);
  });

  it("unrefs its refresh and retry timers, so it never keeps the process alive", async () => {
    vi.useRealTimers();
    const handles: NodeJS.Timeout[] = [];
    const clock = {
      now: () => Date.now(),
      setTimeout: (callback: () => void, ms: number) => {
        const handle = setTimeout(callback, ms);
        handles.push(handle);
        return handle;
      },
      clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
    };
    let calls = 0;
    const creds = createRefreshingCredentials(
      async () => {
        calls += 1;
        // The first fetch fails (a retry timer), the second succeeds (a refresh timer).
        if (calls === 1) throw new Error("token service unavailable");
        return { password: "p", expiresAt: Date.now() + 15 * MIN };
      },
      { clock, retry: { initialDelayMs: 1, maxDelayMs: 1 }, logger: { warn: () => undefined } },
    );
    expect((await creds.get()).password).toBe("p");
    expect(handles.length).toBeGreaterThanOrEqual(2);
    for (const handle of handles) expect(handle.hasRef()).toBe(false);
    creds.close();
  });

  it("never shows the secret in inspect, JSON, String() or logs, yet keeps it readable", async () => {
    const provider = async (): Promise<Credentials> => ({
      username: "svc",
      password: "hunter2-very-secret",
      expiresAt: new Date(Date.now() + 15 * MIN),
    });
    const creds = createRefreshingCredentials(provider);
    const c = await creds.get();
    expect(c.password).toBe("hunter2-very-secret");
    const renderings = [
      inspect(c),
      inspect(c, { showHidden: true, depth: 10 }),
      inspect({ nested: { c } }),
      JSON.stringify(c),
      JSON.stringify({ c }),
      String(c),
      `${c}`,
      inspect({ ...c }),
    ];
    for (const text of renderings) expect(text).not.toContain("hunter2-very-secret");
    expect(JSON.parse(JSON.stringify(c))).toEqual({
      username: "svc",
      password: "[redacted]",
      expiresAt: new Date(T0 + 15 * MIN).toISOString(),
    });
    expect(Object.isFrozen(c)).toBe(true);
    creds.close();
  });

  it("scrubs known secrets from provider errors repeated in CredentialError messages and warnings", async () => {
    const { provider, state } = makeProvider(10 * MIN);
    const { lines, logger } = quietLogger();
    const creds = createRefreshingCredentials(provider, { logger, retry: { maxAttempts: 1 } });
    await creds.get();
    state.failing = true; // its message now includes the current secret
    const error = (await creds.refresh().catch((e: unknown) => e)) as CredentialError;
    expect(error.message).toContain("old token [redacted]");
    expect(error.cause).toBeUndefined();
    await tick(9 * MIN);
    const everything = [error.message, inspect(error, { depth: 10 }), ...lines].join("\n");
    expect(everything).not.toContain("s3cret-token-1");
    creds.close();
  });

  it("validates its options", () => {
    const provider = async () => ({ password: "x" });
    expect(() => createRefreshingCredentials(provider, { refreshAheadMs: -1 })).toThrow(ConfigurationError);
    expect(() => createRefreshingCredentials(provider, { refreshAheadMs: -1 })).toThrow(
      "refreshAheadMs: expected a number >= 0, got -1",
    );
    expect(() => createRefreshingCredentials(provider, { retry: { maxAttempts: 0 } })).toThrow(
      "retry.maxAttempts: expected an integer >= 1 or Infinity, got 0",
    );
    expect(() => createRefreshingCredentials(provider, { refreshAhead: 1 } as never)).toThrow(
      "refreshAhead: unknown option; did you mean `refreshAheadMs`?",
    );
    expect(() => createRefreshingCredentials(undefined as never)).toThrow(
      "provider: expected a credential provider function, got undefined",
    );
  });
});

describe("redactCredentials", () => {
  it("returns a logging-safe copy", () => {
    expect(redactCredentials({ username: "u", password: "p@ss", expiresAt: T0 })).toEqual({
      username: "u",
      password: "[redacted]",
      expiresAt: new Date(T0).toISOString(),
    });
    expect(redactCredentials({ password: "p@ss" })).toEqual({ password: "[redacted]" });
  });
});
