import { inspect } from "node:util";
import { ConfigurationError, DeliveryPipeline, decodeEvent, encodeEvent } from "@streamll/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RedisSinkError } from "./redis-errors";
import { DEFAULT_MAX_LEN, PIPELINE_CHUNK_SIZE, RedisSink } from "./redis-sink";
import { sendContext, sequence, testEvent } from "./test-support/events";
import { freePort, REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const available = await redisAvailable();

describe.skipIf(!available)("RedisSink against Redis", () => {
  let admin: Redis;
  const keys: string[] = [];
  const key = (prefix: string) => {
    const name = uniqueName(prefix);
    keys.push(name);
    return name;
  };

  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  async function entries(stream: string): Promise<[string, string[]][]> {
    return (await admin.xrange(stream, "-", "+")) as [string, string[]][];
  }

  it("writes each event as one `event` field holding the wire JSON, for every event type and unsafe input", async () => {
    const stream = key("roundtrip");
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const circular: Record<string, unknown> = { name: "loop" };
    circular.self = circular;
    const unsafe = {
      circular,
      big: 2n ** 70n,
      error: new TypeError("bad input"),
      date: new Date("2026-01-01T00:00:00Z"),
      map: new Map([["k", 1]]),
      set: new Set([1, 2]),
      bytes: new Uint8Array([1, 2, 3]),
      fn: () => 1,
      sym: Symbol("s"),
      missing: undefined,
      surrogate: "a\ud800b",
      emoji: "🧪 ünïcödé",
      long: "x".repeat(200_000),
      nested: { deep: [1, [2, [3, { four: 4 }]]] },
    };
    const types = ["start", "end", "error", "token", "version", "retrieval.hit"];
    const batch = types.map((event_type) => encodeEvent(testEvent({ event_type, data: unsafe })));
    expect(await sink.send(batch, sendContext())).toBeUndefined();

    const stored = await entries(stream);
    expect(stored).toHaveLength(types.length);
    stored.forEach(([, fields], index) => {
      expect(fields).toEqual(["event", batch[index]?.json]);
      const decoded = decodeEvent(fields[1] ?? "");
      expect(decoded.ok).toBe(true);
      if (decoded.ok) {
        expect(decoded.event.event_type).toBe(types[index]);
        expect(decoded.event).toEqual(JSON.parse(batch[index]?.json ?? ""));
      }
    });
    await sink.close();
  });

  it("delivers in order through the delivery pipeline, one pipelined write per chunk of PIPELINE_CHUNK_SIZE XADDs", async () => {
    const stream = key("order");
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const client = sink.client as Redis;
    await client.connect();
    // Every byte the sink sends goes through this socket: one write per chunk of a batch, no write per event.
    const writes = vi.spyOn(client.stream, "write");
    const sizes: number[] = [];
    const send = sink.send.bind(sink);
    vi.spyOn(sink, "send").mockImplementation((batch, context) => {
      sizes.push(batch.length);
      return send(batch, context);
    });
    const pipeline = new DeliveryPipeline(sink, { maxBatchSize: 97, flushIntervalMs: 5 });
    const events = sequence(2_000);
    for (const event of events) pipeline.enqueue(event);
    expect(await pipeline.flush(20_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 2_000, delivered: 2_000, dropped: 0, pending: 0 });
    expect(metrics.batchesSent).toBeGreaterThanOrEqual(Math.ceil(2_000 / 97));
    expect(writes).toHaveBeenCalledTimes(
      sizes.reduce((sum, size) => sum + Math.ceil(size / PIPELINE_CHUNK_SIZE), 0),
    );
    writes.mockRestore();
    const stored = await entries(stream);
    expect(
      stored.map(([, fields]) => (JSON.parse(fields[1] ?? "") as { data: { seq: number } }).data.seq),
    ).toEqual(events.map((_, seq) => seq));
    await pipeline.shutdown(5_000);
  });

  it("splits a large batch into pipelines of PIPELINE_CHUNK_SIZE XADDs, one event-loop turn apart, delivered in order", async () => {
    const stream = key("chunks");
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const client = sink.client as Redis;
    await client.connect();
    const pipelines = vi.spyOn(client, "pipeline");
    // A ticker that runs once per event-loop turn records how many pipelines had been built by then.
    const seen: number[] = [];
    let ticking = true;
    const tick = () => {
      seen.push(pipelines.mock.calls.length);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    expect(await sink.send(sequence(200), sendContext())).toBeUndefined();
    ticking = false;
    expect(pipelines).toHaveBeenCalledTimes(Math.ceil(200 / PIPELINE_CHUNK_SIZE));
    // Each loop turn saw at most one more pipeline: the other work of the process ran between the chunks.
    for (let i = 1; i < seen.length; i++) expect((seen[i] ?? 0) - (seen[i - 1] ?? 0)).toBeLessThanOrEqual(1);
    expect(seen).toEqual(expect.arrayContaining([1, 2, 3]));
    pipelines.mockRestore();
    const stored = await entries(stream);
    expect(
      stored.map(([, fields]) => (JSON.parse(fields[1] ?? "") as { data: { seq: number } }).data.seq),
    ).toEqual(Array.from({ length: 200 }, (_, seq) => seq));
    await sink.close();
  });

  it("fails only the events of a chunk whose pipeline failed, retriably; the pipeline delivers each event once", async () => {
    const stream = key("chunk-failure");
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const client = sink.client as Redis;
    await client.connect();
    // The second pipeline built fails as a whole before it is written (a fake for our own accounting logic only).
    const real = client.pipeline.bind(client);
    let built = 0;
    let failNext = 2;
    const pipelines = vi.spyOn(client, "pipeline").mockImplementation((...args) => {
      const pipeline = real(...args);
      built += 1;
      if (built === failNext) pipeline.exec = () => Promise.reject(new Error("Connection is closed."));
      return pipeline;
    });
    const direct = await sink.send(sequence(200), sendContext());
    expect(direct?.failures.map((failure) => failure.index)).toEqual(
      Array.from({ length: PIPELINE_CHUNK_SIZE }, (_, i) => PIPELINE_CHUNK_SIZE + i),
    );
    expect(direct?.failures.every((failure) => failure.retriable)).toBe(true);
    expect(direct?.failures[0]?.error).toBeInstanceOf(RedisSinkError);
    await admin.del(stream);

    // Through the delivery pipeline: the failed chunk is retried alone; every event is delivered exactly once.
    built = 0;
    failNext = 2;
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 5, retry: { initialDelayMs: 1, maxDelayMs: 5 } },
      { logger: { warn: () => undefined } },
    );
    const events = sequence(300);
    for (const event of events) pipeline.enqueue(event);
    expect(await pipeline.flush(10_000)).toBe(true);
    expect(pipeline.getMetrics()).toMatchObject({
      emitted: 300,
      delivered: 300,
      dropped: 0,
      retried: PIPELINE_CHUNK_SIZE,
    });
    pipelines.mockRestore();
    const seqs = (await entries(stream)).map(
      ([, fields]) => (JSON.parse(fields[1] ?? "") as { data: { seq: number } }).data.seq,
    );
    expect([...seqs].sort((a, b) => a - b)).toEqual(events.map((_, seq) => seq));
    await pipeline.shutdown(5_000);
  });

  it("bounds the stream: exactly with `=`, approximately (never far above) with `~`", async () => {
    const exact = key("trim-exact");
    const exactSink = new RedisSink({ url: REDIS_URL, stream: exact, maxLen: 100, approximateTrim: false });
    await exactSink.send(sequence(350), sendContext());
    expect(await admin.xlen(exact)).toBe(100);
    const last = await admin.xrevrange(exact, "+", "-", "COUNT", 1);
    expect(JSON.parse(last[0]?.[1][1] ?? "")).toMatchObject({ data: { seq: 349 } });
    await exactSink.close();

    const approx = key("trim-approx");
    const approxSink = new RedisSink({ url: REDIS_URL, stream: approx, maxLen: 100 });
    for (let i = 0; i < 5; i++) await approxSink.send(sequence(200), sendContext());
    const length = await admin.xlen(approx);
    expect(length).toBeGreaterThanOrEqual(100);
    // `~` trims whole radix-tree nodes (stream-node-max-entries, 100 by default).
    expect(length).toBeLessThanOrEqual(100 + 100);
    await approxSink.close();
    expect(new RedisSink({ url: REDIS_URL }).maxLen).toBe(DEFAULT_MAX_LEN);
  });

  it("drops only the events Redis rejects (WRONGTYPE) and counts them; the rest of the batch is delivered", async () => {
    const prefix = uniqueName("template");
    const good = `${prefix}:good`;
    const blocked = `${prefix}:blocked`;
    keys.push(good, blocked);
    await admin.set(blocked, "a string, not a stream");
    const sink = new RedisSink({ url: REDIS_URL, stream: `${prefix}:{module_name}` });
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 5 },
      { logger: { warn: () => undefined } },
    );
    const batch = [
      ...sequence(3, { module_name: "good" }),
      ...sequence(2, { module_name: "blocked" }),
      ...sequence(3, { module_name: "good" }),
    ];
    for (const event of batch) pipeline.enqueue(event);
    expect(await pipeline.flush(10_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 8, delivered: 6, dropped: 2, pending: 0 });
    expect(metrics.droppedByReason.rejected).toBe(2);
    expect(metrics.lastError?.message).toContain("WRONGTYPE");
    expect(await admin.xlen(good)).toBe(6);

    const direct = await sink.send(sequence(1, { module_name: "blocked" }), sendContext());
    expect(direct?.failures).toHaveLength(1);
    const failure = direct?.failures[0];
    expect(failure?.retriable).toBe(false);
    expect(failure?.error).toBeInstanceOf(RedisSinkError);
    expect(failure?.error).toMatchObject({ redisCode: "WRONGTYPE" });
    await pipeline.shutdown(5_000);
  });

  it("fails a batch fast and retriably when Redis is unreachable, without secrets in the error", async () => {
    const port = await freePort();
    const password = "never-log-this-password";
    const sink = new RedisSink({ url: `redis://app:${password}@127.0.0.1:${port}`, connectTimeoutMs: 300 });
    // The send gives up on its own connect deadline (ioredis has no offline queue to wait in).
    const error = await sink.send(sequence(3), sendContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisSinkError);
    expect((error as RedisSinkError).retriable).toBe(true);
    expect((error as Error).message).toMatch(/not ready within 300 ms/);
    expect(inspect(error, { depth: 10 })).not.toContain(password);
    expect(inspect(sink, { depth: 10 })).not.toContain(password);
    expect(JSON.stringify(sink)).not.toContain(password);
    await sink.close();
    await expect(sink.send(sequence(1), sendContext())).rejects.toMatchObject({
      code: "SINK_CLOSED",
      retriable: false,
    });
  });

  it("survives an onError callback that throws (it runs inside ioredis' event handlers)", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    let calls = 0;
    const sink = new RedisSink({
      url: `redis://127.0.0.1:${await freePort()}`,
      connectTimeoutMs: 300,
      onError: () => {
        calls += 1;
        throw new Error("the application's logger is broken");
      },
    });
    try {
      await expect(sink.send(sequence(1), sendContext())).rejects.toMatchObject({ retriable: true });
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(uncaught).toEqual([]);
    } finally {
      process.off("uncaughtException", onUncaught);
      await sink.close();
    }
  });

  it("names the cause of a cluster topology failure (cluster: true against a standalone server)", async () => {
    const errors: string[] = [];
    const sink = new RedisSink({
      url: REDIS_URL,
      cluster: true,
      connectTimeoutMs: 500,
      onError: (error) => errors.push(error.message),
    });
    try {
      await expect(sink.send(sequence(1), sendContext())).rejects.toMatchObject({ retriable: true });
      await waitUntil(
        () =>
          errors.some((m) =>
            /Failed to refresh slots cache.*last node error: .*cluster support disabled/.test(m),
          ),
        "the slots-cache error with its cause",
      );
    } finally {
      await sink.close();
    }
  });

  it("writes to the database named in the URL path", async () => {
    const stream = uniqueName("db");
    const base = new URL(REDIS_URL);
    base.pathname = "/3";
    const sink = new RedisSink({ url: base.toString(), stream });
    await sink.send(sequence(2), sendContext());
    const db3 = new Redis(base.toString());
    try {
      expect(await db3.xlen(stream)).toBe(2);
      expect(await admin.exists(stream)).toBe(0);
      await db3.del(stream);
    } finally {
      db3.disconnect();
      await sink.close();
    }
  });

  it("validates its options", () => {
    expect(() => new RedisSink({ maxLen: 0 })).toThrow(ConfigurationError);
    expect(() => new RedisSink({ maxLen: Number.POSITIVE_INFINITY })).toThrow(ConfigurationError);
    expect(() => new RedisSink({ url: "http://example.com" })).toThrow(ConfigurationError);
    expect(() => new RedisSink({ url: "redis://u:pw@host:6379/x" })).toThrow(/database path/);
    expect(new RedisSink({ stream: "s" }).name).toBe("redis:s");
    expect(new RedisSink({ stream: "s:{module_name}" }).name).toBe("redis");
  });
});
