import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import type { Credentials } from "@streamll/core";
import { DeliveryPipeline } from "@streamll/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisEventReader } from "./redis-event-reader";
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
      // Applied: the next reconnect uses it (the live connection is re-authenticated in the same step).
      await waitUntil(
        () => (sink.client as Redis).options.password === rotated.password,
        "the rotated token to be applied",
      );
      await admin.call("ACL", "SETUSER", second.user, `<${second.password}`);
      for (const connection of await connections(admin, name)) {
        await admin.call("CLIENT", "KILL", "ID", connection.id);
      }
      // Only the rotated password can log in as this user now (a failed AUTH would leave the connection
      // on the default user, so the user name is what proves it).
      await waitUntil(
        async () => (await connections(admin, name)).some((c) => c.user === rotated.user),
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

  // A provider whose credential the server keeps refusing is covered by redis-auth-rejection.test.ts (on a
  // private server): after one fresh fetch it fails the sink for good with a ConfigurationError.

  it("works with the least-privilege ACL users the production guide documents", async () => {
    const stream = uniqueName("acl");
    streams.push(stream, `${stream}:dead-letter`);
    const suffix = randomBytes(4).toString("hex");
    const writer = `streamll_writer_${suffix}`;
    const readerUser = `streamll_reader_${suffix}`;
    users.push(writer, readerUser);
    // Reserved URL characters in the password: the URL form must percent-encode them.
    const password = `pw@/:${randomBytes(12).toString("hex")}`;
    // Exactly the rules in docs/production/redis.md ("Self-hosted Redis").
    const sinkRules = ["~streamll*", "~{streamll}*", "+xadd", "+ping", "+info", "+client|setname"];
    const readerRules = [
      "+xgroup",
      "+xreadgroup",
      "+xack",
      "+xautoclaim",
      "+xpending",
      "+xclaim",
      "+xinfo|consumers",
    ];
    await admin.call("ACL", "SETUSER", writer, "on", `>${password}`, ...sinkRules);
    await admin.call("ACL", "SETUSER", readerUser, "on", `>${password}`, ...sinkRules, ...readerRules);

    const errors: string[] = [];
    const url = new URL(REDIS_URL);
    url.username = writer;
    url.password = encodeURIComponent(password);
    const sink = new RedisSink({ url: url.toString(), stream });
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 5 },
      { logger: { warn: () => undefined } },
    );
    for (const event of sequence(20)) pipeline.enqueue(event);
    expect(await pipeline.flush(10_000)).toBe(true);
    expect(pipeline.getMetrics()).toMatchObject({ emitted: 20, delivered: 20, dropped: 0 });
    await pipeline.shutdown(5_000);
    // A malformed entry exercises the reader's dead-letter write under the same rules.
    await admin.xadd(stream, "*", "event", "{not json");

    const reader = new RedisEventReader({
      url: REDIS_URL,
      stream,
      username: readerUser,
      password,
      group: "acl-readers",
      startFrom: "beginning",
      blockMs: 100,
      onError: (error) => errors.push(String(error)),
    });
    const seen: number[] = [];
    const running = reader.run((event) => {
      seen.push((event.data as { seq: number }).seq);
    });
    await waitUntil(() => seen.length === 20 && reader.getStats().deadLettered === 1, "all entries");
    await reader.stop();
    await running;
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(reader.getStats()).toMatchObject({ acknowledged: 20, malformed: 1, deadLettered: 1, errors: 0 });
    expect(errors).toEqual([]);
    expect(await admin.xlen(`${stream}:dead-letter`)).toBe(1);
  });
});
