import type { Credentials } from "@streamll/core";
import { DeliveryPipeline } from "@streamll/core";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RedisEventReader } from "./redis-event-reader";
import { PIPELINE_CHUNK_SIZE, RedisSink } from "./redis-sink";
import { clusterKeySlot, DEFAULT_CLUSTER_STREAM } from "./stream-key";
import { sendContext, sequence } from "./test-support/events";
import { PrivateRedis, redisServerInstalled } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const installed = redisServerInstalled();

const seqOf = (json: string | undefined) => (JSON.parse(json ?? "") as { data: { seq: number } }).data.seq;

describe.skipIf(!installed)("Redis Cluster (one-node cluster owning every slot)", () => {
  let server: PrivateRedis;
  let admin: Redis;

  beforeAll(async () => {
    server = await PrivateRedis.start({ cluster: true });
    admin = server.admin();
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it("computes the same hash slots as the server", async () => {
    for (const key of [
      "foo",
      DEFAULT_CLUSTER_STREAM,
      "{streamll}:qa",
      "streamll:qa",
      "a{b}c",
      "x{}y",
      "ünï",
    ]) {
      expect(clusterKeySlot(key), key).toBe(Number(await admin.call("CLUSTER", "KEYSLOT", key)));
    }
  });

  it("writes to the hash-tagged default stream and reads it back with a consumer group", async () => {
    const sink = new RedisSink({ url: server.url, cluster: true });
    expect(sink.name).toBe(`redis:${DEFAULT_CLUSTER_STREAM}`);
    await sink.send(sequence(50), sendContext());
    const stored = (await admin.xrange(DEFAULT_CLUSTER_STREAM, "-", "+")) as [string, string[]][];
    expect(stored.map(([, f]) => seqOf(f[1]))).toEqual(Array.from({ length: 50 }, (_, i) => i));

    const reader = new RedisEventReader({
      url: server.url,
      cluster: true,
      group: "g",
      startFrom: "beginning",
      blockMs: 100,
    });
    expect(reader.deadLetterStream).toBe(`${DEFAULT_CLUSTER_STREAM}:dead-letter`);
    const seen: number[] = [];
    const running = reader.run((event) => {
      seen.push((event.data as { seq: number }).seq);
    });
    await waitUntil(() => seen.length === 50, "events from the cluster");
    await reader.stop();
    await running;
    await sink.close();
  });

  it("splits a templated batch into one pipeline per slot, keeping each stream in order", async () => {
    const sink = new RedisSink({ url: server.url, cluster: true, stream: "cl:{module_name}" });
    const modules = ["alpha", "beta", "gamma", "delta"];
    expect(new Set(modules.map((m) => clusterKeySlot(`cl:${m}`))).size).toBe(4);
    const pipelines = vi.spyOn(sink.client, "pipeline");
    const pipeline = new DeliveryPipeline(sink, { flushIntervalMs: 5, maxBatchSize: 100 });
    const events = modules.flatMap((module_name) => sequence(250, { module_name }));
    // Interleave modules so every batch spans several slots.
    for (let i = 0; i < 250; i++) {
      for (let m = 0; m < modules.length; m++) {
        const event = events[m * 250 + i];
        if (event !== undefined) pipeline.enqueue(event);
      }
    }
    expect(await pipeline.flush(10_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 1_000, delivered: 1_000, dropped: 0 });
    // Every batch of 100 interleaved events spans all four slots, 25 events each: per batch, each slot's
    // events go out as their own pipelines of at most PIPELINE_CHUNK_SIZE.
    expect(pipelines).toHaveBeenCalledTimes(4 * Math.ceil(25 / PIPELINE_CHUNK_SIZE) * metrics.batchesSent);
    pipelines.mockRestore();
    for (const module of modules) {
      const stored = (await admin.xrange(`cl:${module}`, "-", "+")) as [string, string[]][];
      expect(stored.map(([, f]) => seqOf(f[1]))).toEqual(Array.from({ length: 250 }, (_, i) => i));
    }
    await pipeline.shutdown(5_000);
  });

  it("re-authenticates cluster node connections and reconnects with the newest credential", async () => {
    const users = ["cluster-user-a", "cluster-user-b"];
    for (const user of users)
      await admin.call("ACL", "SETUSER", user, "on", `>${user}-secret-1`, "~*", "+@all");
    let current = users[0] ?? "";
    const provider = async (): Promise<Credentials> => ({
      username: current,
      password: `${current}-secret-1`,
      expiresAt: Date.now() + 1_000,
    });
    const sink = new RedisSink({
      url: server.url,
      cluster: true,
      stream: "{streamll}:auth",
      credentials: { provider, refreshAheadMs: 800 },
      redisOptions: { connectionName: "cluster-auth" },
    });
    const users_ = async () =>
      String(await admin.call("CLIENT", "LIST"))
        .split("\n")
        .filter((line) => line.includes(" name=cluster-auth "))
        .map((line) => /\buser=(\S+)/.exec(line)?.[1]);
    await sink.send(sequence(10), sendContext());
    expect(await users_()).toContain("cluster-user-a");

    current = users[1] ?? "";
    await waitUntil(async () => {
      const now = await users_();
      return now.length > 0 && now.every((u) => u === "cluster-user-b");
    }, "live re-AUTH of the node connection");
    await admin.call("ACL", "DELUSER", "cluster-user-a");
    await admin.call("CLIENT", "KILL", "USER", "cluster-user-b");
    await waitUntil(async () => {
      try {
        await sink.send(sequence(10), sendContext());
        return true;
      } catch {
        return false;
      }
    }, "a send after the reconnect");
    expect(await users_()).toContain("cluster-user-b");
    expect(await admin.xlen("{streamll}:auth")).toBeGreaterThanOrEqual(20);
    await sink.close();
    await admin.call("ACL", "DELUSER", "cluster-user-b");
  });
});
