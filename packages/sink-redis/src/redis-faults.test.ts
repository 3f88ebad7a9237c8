import type { DeliveryOptions, SinkMetrics, StateChange } from "@streamll/core";
import { configure, DeliveryPipeline, emit, getMetrics, shutdown } from "@streamll/core";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisSink } from "./redis-sink";
import { sequence } from "./test-support/events";
import {
  freePort,
  PrivateRedis,
  redisServerInstalled,
  startBlackhole,
  uniqueName,
} from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const installed = redisServerInstalled();

// Fast enough for a test, same mechanics as production: retries with backoff, breaker opens after 3 failed
// sends and lets one trial batch through after 200 ms.
const DELIVERY: DeliveryOptions = {
  maxQueueSize: 50_000,
  maxBatchSize: 200,
  flushIntervalMs: 5,
  sendTimeoutMs: 3_000,
  retry: { initialDelayMs: 20, maxDelayMs: 200 },
  circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 200 },
};
const quiet = { logger: { warn: () => undefined } };

function expectExactAccounting(metrics: SinkMetrics): void {
  expect(metrics.emitted).toBe(metrics.delivered + metrics.dropped + metrics.pending);
}

async function storedSeqs(admin: Redis, stream: string): Promise<number[]> {
  const entries = (await admin.xrange(stream, "-", "+")) as [string, string[]][];
  return entries.map(([, fields]) => (JSON.parse(fields[1] ?? "") as { data: { seq: number } }).data.seq);
}

/** Every seq 0..count-1 present; duplicates only from at-least-once retries, first occurrences in order. */
function expectAllInOrder(seqs: number[], count: number): void {
  const firstSeen: number[] = [];
  const seen = new Set<number>();
  for (const seq of seqs) {
    if (!seen.has(seq)) {
      seen.add(seq);
      firstSeen.push(seq);
    }
  }
  expect(firstSeen).toEqual(Array.from({ length: count }, (_, i) => i));
}

describe.skipIf(!installed)("RedisSink under faults (private redis-server)", () => {
  let server: PrivateRedis;
  let admin: Redis;

  beforeAll(async () => {
    // appendfsync always: an acknowledged XADD survives SIGKILL, so the stream can prove nothing was lost.
    server = await PrivateRedis.start({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
    admin = server.admin();
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it("survives the server being killed and restarted mid-stream: nothing lost, breaker opens and closes", async () => {
    const stream = uniqueName("kill");
    const sink = new RedisSink({ url: server.url, stream, connectTimeoutMs: 300, commandTimeoutMs: 1_000 });
    const pipeline = new DeliveryPipeline(sink, DELIVERY, quiet);
    const changes: StateChange[] = [];
    pipeline.onStateChange((change) => changes.push(change));
    const events = sequence(3_000);

    for (const event of events.slice(0, 1_000)) pipeline.enqueue(event);
    expect(await pipeline.flush(10_000)).toBe(true);

    await server.kill();
    for (const event of events.slice(1_000, 2_000)) pipeline.enqueue(event);
    await waitUntil(() => pipeline.getMetrics().breakerState === "open", "the breaker to open");
    expect(pipeline.getMetrics().delivered).toBe(1_000);
    expectExactAccounting(pipeline.getMetrics());

    await server.start();
    for (const event of events.slice(2_000)) pipeline.enqueue(event);
    expect(await pipeline.flush(20_000)).toBe(true);

    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({
      emitted: 3_000,
      delivered: 3_000,
      dropped: 0,
      pending: 0,
      breakerState: "closed",
    });
    expectExactAccounting(metrics);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toContain("closed->open");
    expect(changes.at(-1)?.to).toBe("closed");
    expect(changes.find((c) => c.to === "open")?.reason).toBeTruthy();
    expectAllInOrder(await storedSeqs(admin, stream), 3_000);
    await pipeline.shutdown(5_000);
    await admin.del(stream);
  });

  it("recovers when its connection is killed with CLIENT KILL mid-stream", async () => {
    const stream = uniqueName("client-kill");
    const connectionName = uniqueName("conn").replace(/[^A-Za-z0-9_-]/g, "_");
    const sink = new RedisSink({ url: server.url, stream, redisOptions: { connectionName } });
    const pipeline = new DeliveryPipeline(sink, DELIVERY, quiet);
    const events = sequence(4_000);
    let killed = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      if (event !== undefined) pipeline.enqueue(event);
      if (i % 1_000 === 500) {
        // Once the sink is (re)connected and busy, cut its connection.
        let ids: string[] = [];
        await waitUntil(async () => {
          const list = String(await admin.call("CLIENT", "LIST"));
          ids = [...list.matchAll(/id=(\d+) [^\n]* name=(\S+)/g)]
            .filter((match) => match[2] === connectionName)
            .map((match) => match[1] ?? "");
          return ids.length > 0;
        }, "the sink's connection");
        for (const id of ids) {
          await admin.call("CLIENT", "KILL", "ID", id);
          killed += 1;
        }
      }
    }
    expect(await pipeline.flush(20_000)).toBe(true);
    expect(killed).toBeGreaterThanOrEqual(3);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 4_000, delivered: 4_000, dropped: 0, pending: 0 });
    expectExactAccounting(metrics);
    expectAllInOrder(await storedSeqs(admin, stream), 4_000);
    await pipeline.shutdown(5_000);
    await admin.del(stream);
  });

  it("drops a connection that stops answering after commandTimeoutMs, then delivers once Redis answers again", async () => {
    const stream = uniqueName("stall");
    const errors: string[] = [];
    const sink = new RedisSink({
      url: server.url,
      stream,
      connectTimeoutMs: 1_000,
      commandTimeoutMs: 300,
      onError: (error) => errors.push(error.message),
    });
    // sendTimeoutMs (3 s) is longer than the stall: only the sink's own socket timeout ends the wait early.
    const pipeline = new DeliveryPipeline(sink, DELIVERY, quiet);
    const events = sequence(600);
    for (const event of events.slice(0, 200)) pipeline.enqueue(event);
    expect(await pipeline.flush(10_000)).toBe(true);

    // The server stays connected but holds every write command unanswered for 2.5 s.
    await admin.call("CLIENT", "PAUSE", "2500", "WRITE");
    for (const event of events.slice(200)) pipeline.enqueue(event);
    await waitUntil(
      () => errors.some((message) => message.includes("Socket timeout")),
      "the stalled connection to be dropped",
    );
    // The batch fails once every chunk of it has settled, a few ticks after the socket error is reported.
    await waitUntil(() => pipeline.getMetrics().batchesFailed >= 1, "the stalled batch to fail");

    expect(await pipeline.flush(20_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 600, delivered: 600, dropped: 0, pending: 0 });
    expectAllInOrder(await storedSeqs(admin, stream), 600);
    await pipeline.shutdown(5_000);
    await admin.del(stream);
  });

  it("drops and counts events a full server refuses (OOM) without opening the breaker", async () => {
    const full = await PrivateRedis.start({
      args: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"],
    });
    try {
      const sink = new RedisSink({ url: full.url, stream: uniqueName("oom"), maxLen: 1_000_000 });
      const pipeline = new DeliveryPipeline(sink, { ...DELIVERY, maxQueueSize: 20_000 }, quiet);
      for (const event of sequence(10_000)) pipeline.enqueue(event);
      expect(await pipeline.flush(20_000)).toBe(true);
      const metrics = pipeline.getMetrics();
      expect(metrics.droppedByReason.rejected).toBeGreaterThan(0);
      expect(metrics.delivered).toBeGreaterThan(0);
      expect(metrics).toMatchObject({ emitted: 10_000, pending: 0, breakerState: "closed" });
      expect(metrics.delivered + metrics.droppedByReason.rejected).toBe(10_000);
      expect(metrics.lastError?.message).toContain("OOM");
      await pipeline.shutdown(5_000);
    } finally {
      await full.stop();
    }
  });

  it("keeps the app running when Redis is unreachable at start-up, then delivers the buffered events", async () => {
    const port = await freePort();
    const stream = uniqueName("late-start");
    const sink = new RedisSink({ url: `redis://127.0.0.1:${port}`, stream, connectTimeoutMs: 200 });
    const pipeline = new DeliveryPipeline(sink, DELIVERY, quiet);
    const events = sequence(1_500);
    for (const event of events.slice(0, 1_000)) pipeline.enqueue(event);
    await waitUntil(() => pipeline.getMetrics().breakerState === "open", "the breaker to open");
    expect(pipeline.getMetrics()).toMatchObject({ emitted: 1_000, delivered: 0, dropped: 0, pending: 1_000 });

    const late = await PrivateRedis.start({ port });
    try {
      for (const event of events.slice(1_000)) pipeline.enqueue(event);
      expect(await pipeline.flush(20_000)).toBe(true);
      expect(pipeline.getMetrics()).toMatchObject({
        emitted: 1_500,
        delivered: 1_500,
        dropped: 0,
        pending: 0,
      });
      const lateAdmin = late.admin();
      expectAllInOrder(await storedSeqs(lateAdmin, stream), 1_500);
      lateAdmin.disconnect();
      await pipeline.shutdown(5_000);
    } finally {
      await late.stop();
    }
  });

  it("never stalls the caller while the server accepts connections but never answers", async () => {
    const blackhole = await startBlackhole();
    try {
      const sink = new RedisSink({
        url: `redis://127.0.0.1:${blackhole.port}`,
        connectTimeoutMs: 200,
        commandTimeoutMs: 200,
      });
      const pipeline = new DeliveryPipeline(sink, { ...DELIVERY, maxQueueSize: 1_000 }, quiet);
      const events = sequence(1_500);
      let timerRan = false;
      setTimeout(() => {
        timerRan = true;
      }, 0);
      // enqueue is synchronous: every call has returned before any timer or I/O callback can run.
      for (const event of events) expect(pipeline.enqueue(event)).toBeUndefined();
      expect(timerRan).toBe(false);
      await waitUntil(() => timerRan, "the event loop to stay responsive");

      await waitUntil(() => pipeline.getMetrics().breakerState === "open", "the breaker to open");
      const metrics = pipeline.getMetrics();
      // The queue bound held: the 500 oldest were dropped and counted, the rest wait for the server.
      expect(metrics).toMatchObject({ emitted: 1_500, delivered: 0, pending: 1_000 });
      expect(metrics.droppedByReason["queue-full"]).toBe(500);
      expect(metrics.lastError?.message).toMatch(/not ready within 200 ms/);
      expect(await pipeline.flush(300)).toBe(false);

      await pipeline.shutdown(300);
      const final = pipeline.getMetrics();
      expect(final).toMatchObject({ emitted: 1_500, delivered: 0, pending: 0 });
      expect(final.droppedByReason.shutdown).toBe(1_000);
      expectExactAccounting(final);
    } finally {
      await blackhole.close();
    }
  });

  it("keeps emit() synchronous through the public API while Redis hangs", async () => {
    const blackhole = await startBlackhole();
    try {
      const sink = new RedisSink({ url: `redis://127.0.0.1:${blackhole.port}`, connectTimeoutMs: 200 });
      const warnings: string[] = [];
      configure({
        sinks: [{ sink, delivery: { ...DELIVERY, maxQueueSize: 2_000 } }],
        logger: { warn: (message) => warnings.push(message), error: (message) => warnings.push(message) },
      });
      let timerRan = false;
      setTimeout(() => {
        timerRan = true;
      }, 0);
      for (let i = 0; i < 500; i++) emit("step.done", { i, note: "while redis hangs" });
      expect(timerRan).toBe(false);
      expect(getMetrics()[0]).toMatchObject({ emitted: 500, delivered: 0 });
      await waitUntil(() => getMetrics()[0]?.breakerState === "open", "the breaker to open");
      await shutdown(300);
      const final = getMetrics()[0];
      if (final !== undefined) expectExactAccounting(final);
    } finally {
      await blackhole.close();
    }
  });
});
