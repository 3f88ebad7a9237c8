import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import type { Credentials } from "@streamll/core";
import { DeliveryPipeline } from "@streamll/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisSink } from "./redis-sink";
import { sequence } from "./test-support/events";
import { REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const available = await redisAvailable();

interface ClientInfo {
  id: string;
  user: string;
}

/** The connections named `name`, with the ACL user each is authenticated as. */
async function connections(admin: Redis, name: string): Promise<ClientInfo[]> {
  const list = String(await admin.call("CLIENT", "LIST"));
  return list
    .split("\n")
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => ({ id: /\bid=(\d+)/.exec(line)?.[1] ?? "", user: /\buser=(\S+)/.exec(line)?.[1] ?? "" }));
}

describe.skipIf(!available)("rotating credentials with Redis ACL users", () => {
  let admin: Redis;
  const users: string[] = [];
  const streams: string[] = [];

  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    for (const user of users) await admin.call("ACL", "DELUSER", user);
    if (streams.length > 0) await admin.del(...streams);
    admin.disconnect();
  });

  async function createUser(stream: string, password: string): Promise<string> {
    const user = uniqueName("user").replace(/[^A-Za-z0-9_-]/g, "_");
    users.push(user);
    await admin.call("ACL", "SETUSER", user, "on", `>${password}`, `~${stream}`, "+@all");
    return user;
  }

  it("re-authenticates live connections and reconnects with the newest credential while events flow", async () => {
    const stream = uniqueName("auth-rotation");
    streams.push(stream);
    const name = uniqueName("auth").replace(/[^A-Za-z0-9_-]/g, "_");
    const secret = () => `tok-${randomBytes(16).toString("hex")}`;
    const first = { user: await createUser(stream, "unused"), password: secret() };
    await admin.call("ACL", "SETUSER", first.user, "resetpass", `>${first.password}`);
    let current = first;
    const issued: string[] = [];
    const provider = async (): Promise<Credentials> => {
      issued.push(current.password);
      // Short-lived tokens: the cache renews them about every 750 ms, like a 15-minute IAM token scaled down.
      return { username: current.user, password: current.password, expiresAt: Date.now() + 1_500 };
    };
    const authErrors: string[] = [];
    const sink = new RedisSink({
      url: REDIS_URL,
      stream,
      credentials: { provider, refreshAheadMs: 1_000 },
      redisOptions: { connectionName: name },
      onError: (error) => authErrors.push(error.message),
    });
    const pipeline = new DeliveryPipeline(sink, {
      flushIntervalMs: 5,
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      circuitBreaker: { failureThreshold: 50, resetTimeoutMs: 100 },
    });
    const events = sequence(6_000);
    let next = 0;
    const producer = setInterval(() => {
      for (let i = 0; i < 40 && next < events.length; i++) {
        const event = events[next++];
        if (event !== undefined) pipeline.enqueue(event);
      }
    }, 5);

    try {
      await waitUntil(
        async () => (await connections(admin, name)).some((c) => c.user === first.user),
        "first login",
      );
      const [original] = await connections(admin, name);

      // 1. A new identity: the live connection switches user without reconnecting.
      const second = { user: await createUser(stream, "unused"), password: secret() };
      await admin.call("ACL", "SETUSER", second.user, "resetpass", `>${second.password}`);
      current = second;
      await waitUntil(
        async () =>
          (await connections(admin, name)).some((c) => c.id === original?.id && c.user === second.user),
        "live re-AUTH as the second user",
      );
      // The first identity is gone for good; any connection still using it would be dropped now.
      await admin.call("ACL", "DELUSER", first.user);

      // 2. A reconnect uses the newest credential.
      await admin.call("CLIENT", "KILL", "ID", original?.id ?? "");
      await waitUntil(
        async () =>
          (await connections(admin, name)).some((c) => c.id !== original?.id && c.user === second.user),
        "reconnect as the second user",
      );

      // 3. Same user, rotated password: old one revoked after the switch, then a reconnect.
      const rotated = { user: second.user, password: secret() };
      await admin.call("ACL", "SETUSER", second.user, `>${rotated.password}`);
      current = rotated;
      await waitUntil(() => issued.includes(rotated.password), "the rotated token to be issued");
      await new Promise((resolve) => setTimeout(resolve, 100));
      await admin.call("ACL", "SETUSER", second.user, `<${second.password}`);
      for (const connection of await connections(admin, name)) {
        await admin.call("CLIENT", "KILL", "ID", connection.id);
      }
      await waitUntil(
        async () => (await connections(admin, name)).length > 0,
        "reconnect with the rotated password",
      );

      await waitUntil(() => next === events.length, "all events enqueued", 20_000);
    } finally {
      clearInterval(producer);
    }
    expect(await pipeline.flush(20_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 6_000, delivered: 6_000, dropped: 0, pending: 0 });
    const stored = (await admin.xrange(stream, "-", "+")) as [string, string[]][];
    const seqs = new Set(
      stored.map(([, f]) => (JSON.parse(f[1] ?? "") as { data: { seq: number } }).data.seq),
    );
    expect(seqs.size).toBe(6_000);

    // No secret leaks into errors, metrics or the sink's inspection.
    const surfaces = [authErrors.join("\n"), JSON.stringify(metrics), inspect(sink, { depth: 5 })].join("\n");
    for (const token of issued) expect(surfaces).not.toContain(token);
    await pipeline.shutdown(5_000);
  });

  it("fails retriably (never rejecting events) while the credential is refused", async () => {
    const stream = uniqueName("auth-refused");
    streams.push(stream);
    const user = await createUser(stream, "right-password-123");
    const sink = new RedisSink({
      url: REDIS_URL,
      stream,
      connectTimeoutMs: 300,
      credentials: async () => ({ username: user, password: "wrong-password-456" }),
    });
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 5, retry: { initialDelayMs: 20, maxDelayMs: 100 } },
      { logger: { warn: () => undefined } },
    );
    for (const event of sequence(10)) pipeline.enqueue(event);
    await waitUntil(() => pipeline.getMetrics().batchesFailed >= 2, "failed sends");
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 10, delivered: 0, dropped: 0, pending: 10 });
    expect(metrics.lastError?.message).toMatch(/WRONGPASS|not ready/);
    expect(JSON.stringify(metrics)).not.toContain("wrong-password-456");
    await pipeline.shutdown(100);
  });
});
