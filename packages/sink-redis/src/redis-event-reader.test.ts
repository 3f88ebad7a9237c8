import type { StreamllEvent } from "@streamll/core";
import { ConfigurationError } from "@streamll/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { settles } from "../../../test-support/settles.mjs";
import { type RedisEventMessage, RedisEventReader, type RedisEventReaderOptions } from "./redis-event-reader";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import { freePort, REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const available = await redisAvailable();

const seqOf = (event: StreamllEvent) => (event.data as { seq: number }).seq;

describe.skipIf(!available)("RedisEventReader against Redis", () => {
  let admin: Redis;
  const keys: string[] = [];

  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  function streamName(prefix: string): string {
    const stream = uniqueName(prefix);
    keys.push(stream, `${stream}:dead-letter`);
    return stream;
  }

  async function write(stream: string, count: number, from = 0): Promise<void> {
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const events = sequence(count + from).slice(from);
    await sink.send(events, sendContext());
    await sink.close();
  }

  function reader(stream: string, options: Partial<RedisEventReaderOptions> = {}): RedisEventReader {
    return new RedisEventReader({
      url: REDIS_URL,
      stream,
      group: "dashboard",
      startFrom: "beginning",
      blockMs: 100,
      ...options,
    });
  }

  async function pendingCount(stream: string, group = "dashboard"): Promise<number> {
    const summary = (await admin.xpending(stream, group)) as [number, ...unknown[]];
    return Number(summary[0]);
  }

  it("hands every event to the handler and acknowledges only after the handler resolved", async () => {
    const stream = streamName("reader-ack");
    await write(stream, 20);
    const r = reader(stream);
    const seen: number[] = [];
    const pendingDuringHandler: number[] = [];
    const running = r.run(async (event, message) => {
      pendingDuringHandler.push(await pendingCount(stream));
      expect(message.deliveryCount).toBe(1);
      seen.push(seqOf(event));
    });
    await waitUntil(() => seen.length === 20, "20 events");
    await r.stop();
    await running;
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // While the handler ran, its own entry (at least) was still pending.
    expect(pendingDuringHandler.every((n) => n >= 1)).toBe(true);
    expect(await pendingCount(stream)).toBe(0);
    expect(r.getStats()).toMatchObject({
      received: 20,
      acknowledged: 20,
      handlerFailures: 0,
      deadLettered: 0,
    });
  });

  it("redelivers an entry whose handler failed, with a higher delivery count", async () => {
    const stream = streamName("reader-retry");
    await write(stream, 3);
    const errors: unknown[] = [];
    const r = reader(stream, { claimIdleMs: 100, claimIntervalMs: 50, onError: (e) => errors.push(e) });
    const deliveries: [number, number][] = [];
    const running = r.run((event, message) => {
      deliveries.push([seqOf(event), message.deliveryCount]);
      if (seqOf(event) === 1 && message.deliveryCount === 1) throw new Error("transient handler failure");
    });
    await waitUntil(() => deliveries.length === 4, "the retry");
    await r.stop();
    await running;
    expect(deliveries).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
      [1, 2],
    ]);
    expect(errors.map((e) => (e as Error).message)).toEqual(["transient handler failure"]);
    expect(r.getStats()).toMatchObject({ acknowledged: 3, handlerFailures: 1, claimed: 1 });
    expect(await pendingCount(stream)).toBe(0);
  });

  it("dead-letters an entry that keeps failing after maxDeliveries, without blocking the others", async () => {
    const stream = streamName("reader-poison");
    await write(stream, 5);
    const r = reader(stream, {
      claimIdleMs: 60,
      claimIntervalMs: 30,
      maxDeliveries: 2,
      onError: () => undefined,
    });
    const handled: number[] = [];
    let poisonAttempts = 0;
    const running = r.run((event) => {
      if (seqOf(event) === 2) {
        poisonAttempts += 1;
        throw new Error("poison");
      }
      handled.push(seqOf(event));
    });
    await waitUntil(() => r.getStats().deadLettered === 1, "the dead letter");
    await write(stream, 2, 5);
    await waitUntil(() => handled.length === 6, "later events");
    await r.stop();
    await running;
    expect(handled).toEqual([0, 1, 3, 4, 5, 6]);
    expect(poisonAttempts).toBe(2);
    const dead = await admin.xrange(`${stream}:dead-letter`, "-", "+");
    expect(dead).toHaveLength(1);
    const fields = Object.fromEntries(
      (dead[0]?.[1] ?? []).flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1]]] : [])),
    ) as Record<string, string>;
    expect(fields).toMatchObject({
      reason: "max-deliveries",
      source_stream: stream,
      group: "dashboard",
      deliveries: "3",
    });
    expect(JSON.parse(fields.event ?? "")).toMatchObject({ data: { seq: 2 } });
    expect(await pendingCount(stream)).toBe(0);
  });

  it("dead-letters malformed entries (no event field, bad JSON, schema violations) and keeps reading", async () => {
    const stream = streamName("reader-malformed");
    await write(stream, 1);
    await admin.xadd(stream, "*", "other", "field");
    await admin.xadd(stream, "*", "event", "{not json");
    await admin.xadd(stream, "*", "event", JSON.stringify({ schema_version: "1.0", event_id: "short" }));
    await write(stream, 2, 1);
    const r = reader(stream);
    const handled: number[] = [];
    const running = r.run((event) => {
      handled.push(seqOf(event));
    });
    await waitUntil(() => handled.length === 3 && r.getStats().deadLettered === 3, "all entries");
    await r.stop();
    await running;
    expect(handled).toEqual([0, 1, 2]);
    expect(r.getStats()).toMatchObject({ malformed: 3, deadLettered: 3, acknowledged: 3 });
    const dead = await admin.xrange(`${stream}:dead-letter`, "-", "+");
    expect(dead.map(([, f]) => f[f.indexOf("reason") + 1])).toEqual(["malformed", "malformed", "malformed"]);
    expect(dead[1]?.[1][1]).toBe("{not json");
    expect(await pendingCount(stream)).toBe(0);
  });

  it("dead-letters a malformed entry with an error that does not quote it (planted secret)", async () => {
    const stream = streamName("reader-planted");
    const secret = "sk-live PLANTED/7f3a9c1e5b";
    const planted = { schema_version: "1.0", event_id: secret, tags: { [secret]: 1 }, api_key: secret };
    await admin.xadd(stream, "*", "event", JSON.stringify(planted));
    await admin.xadd(stream, "*", "event", `{"api_key":"${secret}"`);
    const r = reader(stream);
    const running = r.run(() => undefined);
    await waitUntil(() => r.getStats().deadLettered === 2, "both entries");
    await r.stop();
    await running;
    const dead = await admin.xrange(`${stream}:dead-letter`, "-", "+");
    for (const [, fields] of dead) {
      const error = fields[fields.indexOf("error") + 1] ?? "";
      expect(error).not.toBe("");
      expect(error).not.toContain("PLANTED");
      // Only the copy of the entry itself carries it, which is what a dead letter is for.
      const others = fields.filter((_, i) => fields[i - 1] !== "event" && fields[i] !== "event");
      expect(others.join(" ")).not.toContain("PLANTED");
    }
  });

  it("keeps reading when the dead-letter write fails, and dead-letters the entry once it can", async () => {
    const stream = streamName("reader-dlq-down");
    // The dead-letter key holds a string, so XADD to it fails with WRONGTYPE.
    await admin.set(`${stream}:dead-letter`, "not a stream");
    await write(stream, 1);
    await admin.xadd(stream, "*", "event", "{not json");
    await write(stream, 2, 1);
    const errors: string[] = [];
    const r = reader(stream, {
      claimIdleMs: 50,
      claimIntervalMs: 20,
      onError: (error) => errors.push((error as Error).message),
    });
    const handled: number[] = [];
    const running = r.run((event) => {
      handled.push(seqOf(event));
    });
    await waitUntil(
      () => handled.length === 3 && r.getStats().errors >= 2,
      "valid events and failed retries",
    );
    // Not acknowledged (nothing lost), not counted as dead-lettered, and it did not hold up the others.
    expect(r.getStats()).toMatchObject({ acknowledged: 3, deadLettered: 0, malformed: 0 });
    expect(await pendingCount(stream)).toBe(1);
    expect(errors.every((message) => message.includes("WRONGTYPE"))).toBe(true);

    await admin.del(`${stream}:dead-letter`);
    await waitUntil(() => r.getStats().deadLettered === 1, "the dead letter once the stream is writable");
    await r.stop();
    await running;
    expect(handled).toEqual([0, 1, 2]);
    expect(r.getStats()).toMatchObject({ acknowledged: 3, deadLettered: 1, malformed: 1 });
    expect(await pendingCount(stream)).toBe(0);
    expect(await admin.xlen(`${stream}:dead-letter`)).toBe(1);
  });

  it("claims entries a dead consumer left pending", async () => {
    const stream = streamName("reader-claim");
    await write(stream, 4);
    await admin.xgroup("CREATE", stream, "dashboard", "0", "MKSTREAM");
    // A consumer that read everything and died before acknowledging.
    await admin.xreadgroup("GROUP", "dashboard", "crashed", "COUNT", 10, "STREAMS", stream, ">");
    expect(await pendingCount(stream)).toBe(4);
    const r = reader(stream, { consumer: "survivor", claimIdleMs: 50, claimIntervalMs: 20 });
    const seen: [number, number][] = [];
    const running = r.run((event, message) => {
      seen.push([seqOf(event), message.deliveryCount]);
    });
    await waitUntil(() => seen.length === 4, "claimed entries");
    await r.stop();
    await running;
    expect(seen).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    expect(await pendingCount(stream)).toBe(0);
    expect(r.getStats().claimed).toBe(4);
  });

  it("a restarted consumer handles its own pending entries first, with their delivery counts", async () => {
    const stream = streamName("reader-restart");
    await write(stream, 5);
    await admin.xgroup("CREATE", stream, "dashboard", "0", "MKSTREAM");
    // The previous process named "stable" read everything and was killed before acknowledging.
    await admin.xreadgroup("GROUP", "dashboard", "stable", "COUNT", 10, "STREAMS", stream, ">");
    const ids = (await admin.xrange(stream, "-", "+")).map(([id]) => id);
    // Entry 0 had already been delivered twice: its next delivery is one too many (maxDeliveries 2).
    await admin.xclaim(stream, "dashboard", "stable", 0, ids[0] ?? "", "RETRYCOUNT", 2, "JUSTID");
    await write(stream, 2, 5);
    // claimIdleMs is far longer than the test: only reading its own pending entries finds them in time.
    const r = reader(stream, {
      consumer: "stable",
      count: 2, // pages through the pending list
      claimIdleMs: 600_000,
      maxDeliveries: 2,
      onError: () => undefined,
    });
    const seen: [number, number][] = [];
    const running = r.run((event, message) => {
      seen.push([seqOf(event), message.deliveryCount]);
    });
    await waitUntil(() => seen.length === 6, "the pending entries and the new ones", 20_000);
    await r.stop();
    await running;
    expect(seen).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
      [4, 2],
      [5, 1],
      [6, 1],
    ]);
    expect(r.getStats()).toMatchObject({ received: 7, acknowledged: 6, deadLettered: 1, claimed: 0 });
    const dead = await admin.xrange(`${stream}:dead-letter`, "-", "+");
    expect(dead[0]?.[1]).toEqual(expect.arrayContaining(["reason", "max-deliveries", "source_id", ids[0]]));
    expect(await pendingCount(stream)).toBe(0);
  });

  it("keeps fetched entries fresh while they wait: a healthy slow reader's batch is not taken over", async () => {
    const stream = streamName("reader-slow-batch");
    const total = 300;
    await write(stream, total);
    // A batch of 100 entries at 20 ms each takes 2 s, four times claimIdleMs: without keeping the waiting
    // entries fresh, the fast reader's claim scans take them while the slow one still goes through them.
    const options = { claimIdleMs: 500, claimIntervalMs: 50, onError: () => undefined };
    const slow = reader(stream, { ...options, consumer: "slow" });
    const fast = reader(stream, { ...options, consumer: "fast" });
    const handled = new Map<number, string[]>();
    const record = (who: string, event: StreamllEvent) => {
      handled.set(seqOf(event), [...(handled.get(seqOf(event)) ?? []), who]);
    };
    const slowRun = slow.run(async (event) => {
      record("slow", event);
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    await slow.ready();
    await waitUntil(() => handled.size > 0, "the slow reader's first entry");
    const fastRun = fast.run(async (event) => {
      record("fast", event);
      await new Promise((resolve) => setTimeout(resolve, 1));
    });
    await waitUntil(() => handled.size === total, "every entry", 60_000);
    // Longer than claimIdleMs + claimIntervalMs: a late second handling would show up.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await Promise.all([slow.stop(), fast.stop()]);
    await Promise.all([slowRun, fastRun]);
    const twice = [...handled].filter(([, readers]) => readers.length > 1);
    expect(twice).toEqual([]);
    expect([...handled.values()].flat().filter((who) => who === "slow").length).toBeGreaterThanOrEqual(100);
    const stats = [slow.getStats(), fast.getStats()];
    expect(stats.reduce((sum, s) => sum + s.acknowledged, 0)).toBe(total);
    expect(await pendingCount(stream)).toBe(0);
  }, 90_000);

  it("never handles a fetched entry that another consumer took over while it waited", async () => {
    const stream = streamName("reader-taken-over");
    await write(stream, 10);
    const r = reader(stream, { consumer: "slow", count: 10, claimIdleMs: 300, claimIntervalMs: 600_000 });
    const seen: number[] = [];
    const running = r.run(async (event) => {
      seen.push(seqOf(event));
      if (seen.length > 1) return;
      // The first handler runs longer than claimIdleMs: another consumer's claim scan takes the whole batch
      // (this entry too; its handling goes on and is acknowledged, the documented slow-handler case).
      await waitUntil(async () => {
        const reply = (await admin.xautoclaim(stream, "dashboard", "other", 300, "0-0", "COUNT", 100)) as [
          string,
          unknown[],
        ];
        return reply[1].length > 0;
      }, "the entries to go idle and be claimed");
    });
    await waitUntil(() => {
      const stats = r.getStats();
      return stats.acknowledged + stats.released === 10;
    }, "every entry to be handled here or left to its new owner");
    await r.stop();
    await running;
    expect(seen).toEqual([0]);
    expect(r.getStats()).toMatchObject({ received: 10, acknowledged: 1, released: 9 });
    const pending = (await admin.xpending(stream, "dashboard", "-", "+", 20)) as [string, string][];
    expect(pending).toHaveLength(9);
    expect(pending.every(([, consumer]) => consumer === "other")).toBe(true);
  });

  it("starts a new group at the end, the beginning, or after a given id", async () => {
    const stream = streamName("reader-start");
    await write(stream, 3);
    const ids = (await admin.xrange(stream, "-", "+")).map(([id]) => id);

    const collect = async (r: RedisEventReader, expected: number, after?: () => Promise<void>) => {
      const seen: number[] = [];
      const running = r.run((event) => {
        seen.push(seqOf(event));
      });
      await after?.();
      await waitUntil(() => seen.length >= expected, "events");
      await r.stop();
      await running;
      return seen;
    };
    expect(await collect(reader(stream, { group: "g-begin", startFrom: "beginning" }), 3)).toEqual([0, 1, 2]);
    expect(await collect(reader(stream, { group: "g-id", startFrom: { id: ids[0] ?? "0" } }), 2)).toEqual([
      1, 2,
    ]);
    const fresh = reader(stream, { group: "g-new", startFrom: "new" });
    expect(
      await collect(fresh, 4, async () => {
        await waitUntil(
          async () => ((await admin.xinfo("GROUPS", stream)) as unknown[]).length === 3,
          "group creation",
        );
        // Events 3..6, written after the group was created at the end of the stream: exactly these arrive.
        await write(stream, 4, 3);
      }),
    ).toEqual([3, 4, 5, 6]);
    expect(() => reader(stream, { startFrom: { id: "yesterday" } })).toThrow(ConfigurationError);
  });

  it("iterates with for await, acknowledging a message when the loop moves on", async () => {
    const stream = streamName("reader-iterate");
    await write(stream, 5);
    const r = reader(stream);
    const seen: RedisEventMessage[] = [];
    for await (const message of r) {
      seen.push(message);
      if (seen.length === 3) break;
    }
    expect(seen.map((m) => seqOf(m.event))).toEqual([0, 1, 2]);
    // The first two were acknowledged when the loop asked for more; the third stays pending (break).
    const pending = (await admin.xpending(stream, "dashboard", "-", "+", 10)) as [string, ...unknown[]][];
    expect(pending.map(([id]) => id)).toContain(seen[2]?.id);
    expect(pending.map(([id]) => id)).not.toContain(seen[0]?.id);
    expect(pending.map(([id]) => id)).not.toContain(seen[1]?.id);
    await expect(r.run(() => undefined)).rejects.toThrow(/stopped/);

    // stop() from inside the loop body ends the loop at its next step, acknowledging the current message.
    const stopping = reader(stream, { group: "stopper" });
    const handled: number[] = [];
    for await (const message of stopping) {
      handled.push(seqOf(message.event));
      if (handled.length === 2) await stopping.stop();
    }
    expect(handled).toEqual([0, 1]);
    expect(await pendingCount(stream, "stopper")).toBe(3);
  });

  it("stop() awaited inside a run() handler only requests the stop: the handler's entry is acknowledged, run() resolves", async () => {
    const stream = streamName("reader-stop-inside");
    await write(stream, 10);
    const r = reader(stream);
    const handled: number[] = [];
    let stopReturned = false;
    const running = r.run(async (event) => {
      handled.push(seqOf(event));
      if (handled.length === 3) {
        await r.stop();
        stopReturned = true;
      }
    });
    expect(await settles(running)).toBe("settled");
    await running;
    expect(stopReturned).toBe(true);
    expect(handled).toEqual([0, 1, 2]);
    // The three handled entries are acknowledged; the seven fetched after them were handed back (still pending).
    expect(r.getStats()).toMatchObject({ acknowledged: 3, released: 7, handlerFailures: 0, errors: 0 });
    const pending = (await admin.xpending(stream, "dashboard", "-", "+", 20)) as [string, ...unknown[]][];
    expect(pending).toHaveLength(7);
    // stop() from outside afterwards resolves too.
    expect(await settles(r.stop())).toBe("settled");
  });

  it("run() resolves when stop(timeoutMs) gives up on a handler that never returns; its entry stays pending", async () => {
    const stream = streamName("reader-stop-timeout");
    await write(stream, 3);
    const r = reader(stream);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stuck: string[] = [];
    const running = r.run(async (_event, message) => {
      stuck.push(message.id);
      await gate;
    });
    let runSettled = false;
    void running.then(() => {
      runSettled = true;
    });
    await waitUntil(() => stuck.length === 1, "the handler to start");
    expect(await settles(r.stop(50))).toBe("settled");
    // run() has resolved by the time stop() resolves.
    expect(runSettled).toBe(true);
    await running;
    const pendingIds = async () =>
      ((await admin.xpending(stream, "dashboard", "-", "+", 10)) as [string, ...unknown[]][]).map(
        ([id]) => id,
      );
    // Nothing acknowledged: the stuck entry is pending (for another consumer to claim), the other two released.
    expect(r.getStats()).toMatchObject({ acknowledged: 0, released: 2 });
    expect(await pendingIds()).toContain(stuck[0]);
    // The handler returning late acknowledges nothing on the closed connection and reports no error.
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(r.getStats()).toMatchObject({ acknowledged: 0, errors: 0 });
    expect(await pendingIds()).toContain(stuck[0]);
  });

  it("without onError, writes its own errors (not the handler's) to console.warn with a [streamll] prefix, no secret", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const secret = "PLANTED-reader-secret-7f3a";
      const r = new RedisEventReader({
        url: `redis://nobody-${Date.now()}:${secret}@127.0.0.1:6379`,
        group: "g",
        stream: streamName("reader-default-log"),
        connectTimeoutMs: 200,
      });
      // A rejected static login is permanent: run() rejects with it instead of retrying.
      const outcome = await r.run(() => undefined).catch((error: unknown) => error);
      expect(outcome).toBeInstanceOf(ConfigurationError);
      const lines = warn.mock.calls.map((args) => args.map(String).join(" "));
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines.filter((line) => line.includes("Fix:"))).toHaveLength(1);
      // Each distinct message once: repeats of the same failure are not written again.
      expect(new Set(lines).size).toBe(lines.length);
      for (const line of lines) {
        expect(line).toMatch(/^\[streamll\] Redis reader /);
        expect(line).not.toContain(secret);
      }
      expect(lines.some((line) => line.includes("WRONGPASS"))).toBe(true);

      // Handler errors are the application's: counted, not logged.
      warn.mockClear();
      const stream = streamName("reader-default-log-handler");
      await write(stream, 2);
      const failing = reader(stream);
      const failingRun = failing.run(() => {
        throw new Error("the application's own failure");
      });
      await waitUntil(() => failing.getStats().handlerFailures === 2, "two handler failures");
      await failing.stop();
      await failingRun;
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it("stops gracefully while blocked in a read, and keeps running (reporting errors) when Redis is unreachable", async () => {
    const stream = streamName("reader-stop");
    const connectionName = uniqueName("reader-conn").replace(/[^A-Za-z0-9_-]/g, "_");
    const r = reader(stream, { blockMs: 200, redisOptions: { connectionName } });
    const running = r.run(() => undefined);
    const readerConnections = async () =>
      String(await admin.call("CLIENT", "LIST"))
        .split("\n")
        .filter((line) => line.includes(` name=${connectionName} `));
    // Blocked in XREADGROUP when stop() is called.
    await waitUntil(
      async () => (await readerConnections()).some((line) => line.includes("cmd=xreadgroup")),
      "a blocking read",
    );
    await r.stop();
    await running;
    // stop() resolves only once the connection is closed: nothing left to keep the process alive.
    await waitUntil(async () => (await readerConnections()).length === 0, "the reader's connection to close");
    await expect(r.run(() => undefined)).rejects.toThrow(/stopped/);

    const errors: unknown[] = [];
    const offline = new RedisEventReader({
      url: `redis://127.0.0.1:${await freePort()}`,
      group: "g",
      connectTimeoutMs: 100,
      onError: (error) => errors.push(error),
    });
    const offlineRun = offline.run(() => undefined);
    await waitUntil(() => errors.length >= 2, "reported connection errors");
    await offline.stop();
    await offlineRun;
    expect(offline.getStats().errors).toBeGreaterThanOrEqual(2);
    expect(String((errors[0] as Error).message)).toMatch(/not ready/);
  });
});

// Issue 13: a provider throwing core's ConfigurationError is what elastiCacheIamAuth() does without its AWS SDKs
// (through the optional-package loader). Retrying cannot fix it: the reader reports it once and ends. No Redis
// is needed: the provider fails before any connection is made.
describe("RedisEventReader with a credential provider that throws a ConfigurationError", () => {
  const FIX = "npm install @smithy/signature-v4 @aws-crypto/sha256-js @aws-sdk/credential-providers";

  function missingSdkReader(errors: unknown[]): { reader: RedisEventReader; calls: () => number } {
    let calls = 0;
    const reader = new RedisEventReader({
      url: REDIS_URL,
      group: "g",
      stream: uniqueName("reader-no-sdk"),
      credentials: async () => {
        calls += 1;
        throw new ConfigurationError(
          `ElastiCache IAM authentication needs the optional packages @smithy/signature-v4, not installed: ${FIX}`,
          [],
          { fix: FIX },
        );
      },
      onError: (error) => errors.push(error),
    });
    return { reader, calls: () => calls };
  }

  it("rejects run() with it, reported to onError once, instead of retrying", async () => {
    const errors: unknown[] = [];
    const { reader, calls } = missingSdkReader(errors);
    const ready = reader.ready();
    const error = await reader.run(() => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).fix).toBe(FIX);
    await expect(ready).rejects.toBe(error);
    // Time for retries (about one a second before), had any been scheduled.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(errors).toEqual([error]);
    expect(calls()).toBe(1);
    expect(reader.getStats().errors).toBe(1);
  });

  it("ends iteration with it", async () => {
    const errors: unknown[] = [];
    const { reader } = missingSdkReader(errors);
    const iterate = async () => {
      for await (const _ of reader) {
        // No event can arrive.
      }
    };
    await expect(iterate()).rejects.toBeInstanceOf(ConfigurationError);
    expect(errors).toHaveLength(1);
  });
});
