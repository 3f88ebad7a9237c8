// Fault injection on the real broker. The only Kafka suite that stops and restarts the shared harness broker;
// it always leaves it running (afterAll starts it again whatever happened).

import type { AddressInfo } from "node:net";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import {
  configure,
  DeliveryPipeline,
  encodeEvent,
  flush,
  getMetrics,
  instrument,
  onStateChange,
  type StateChange,
  shutdown,
} from "@streamll/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isBrokerReachable,
  KAFKA_PLAINTEXT_BROKERS,
  kafkaHarness,
  kafkaPlaintextConfig,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import { KafkaSink } from "./kafka-sink";
import {
  createTopic,
  makeEvent,
  readTopic,
  recordingLogger,
  waitUntil,
} from "./test-support/kafka-test-support";

const connection = kafkaPlaintextConfig();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP forwarder to the broker's PLAINTEXT listener, started late to play a broker that comes up late. */
function startProxy(port: number): Promise<{ close(): Promise<void> }> {
  const [host, target] = KAFKA_PLAINTEXT_BROKERS[0]!.split(":") as [string, string];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = netConnect({ host, port: Number(target) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(port, "127.0.0.1", () =>
      resolve({
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      }),
    ),
  );
}

beforeAll(async () => {
  await requireBroker(["plaintext"]);
});

afterAll(async () => {
  // Unconditional: `start` is idempotent and waits on the script's lock, so a `stop` still in flight from a
  // test that timed out finishes first and the broker is started again after it. Later files need it.
  await kafkaHarness("start", 170_000);
  expect(await isBrokerReachable(["plaintext", "sasl_ssl", "oauth", "ssl"])).toBe(true);
}, 180_000);

describe("faults on the real broker", () => {
  it("broker down at start-up: the app runs unaffected and the events are delivered once it is up", async () => {
    const topic = uniqueTopic("fault-startup");
    await createTopic(connection, topic, 2);
    const port = await freePort();
    const sink = new KafkaSink({
      brokers: [`127.0.0.1:${port}`],
      topic,
      connectionTimeoutMs: 500,
      logger: recordingLogger(),
    });
    const changes: StateChange[] = [];
    configure({
      sinks: [
        {
          sink,
          delivery: {
            flushIntervalMs: 20,
            sendTimeoutMs: 2_000,
            retry: { initialDelayMs: 50, maxDelayMs: 300 },
            circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 300 },
          },
        },
      ],
      logger: { warn: () => undefined, error: () => undefined },
    });
    const unsubscribe = onStateChange((change) => changes.push(change));
    try {
      const double = instrument(async function double(n: number) {
        return n * 2;
      });
      const results: number[] = [];
      for (let i = 0; i < 50; i++) results.push(await double(i));
      expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
      // Nothing reachable: the events wait, the breaker opens, the calls above never waited for Kafka.
      await waitUntil(() => changes.some((c) => c.to === "open"), 15_000, "the breaker to open");
      const down = getMetrics()[0]!;
      expect(down).toMatchObject({ emitted: 100, delivered: 0, dropped: 0, pending: 100 });

      const proxy = await startProxy(port);
      try {
        expect(await flush(30_000)).toBe(true);
      } finally {
        await proxy.close();
      }
      const up = getMetrics()[0]!;
      expect(up).toMatchObject({
        emitted: 100,
        delivered: 100,
        dropped: 0,
        pending: 0,
        breakerState: "closed",
      });
      expect(changes.map((c) => `${c.from}>${c.to}`)).toContain("half-open>closed");
      // At-least-once: count distinct events, a retried send may have been written twice.
      const idOf = (value: string): string => (JSON.parse(value) as { event_id: string }).event_id;
      const read = await readTopic(
        connection,
        topic,
        (messages) => new Set(messages.map((m) => idOf(m.value))).size >= 100,
      );
      expect(new Set(read.map((m) => idOf(m.value))).size).toBe(100);
    } finally {
      unsubscribe();
      await shutdown(5_000);
    }
  }, 60_000);

  it("broker stopped and restarted mid-stream: nothing lost within the buffer, breaker opens and closes", async () => {
    const topic = uniqueTopic("fault-restart");
    await createTopic(connection, topic, 3);
    const sink = new KafkaSink({
      brokers: connection.brokers,
      topic,
      connectionTimeoutMs: 1_000,
      requestTimeoutMs: 5_000,
      logger: recordingLogger(),
    });
    const pipeline = new DeliveryPipeline(
      sink,
      {
        maxQueueSize: 10_000,
        flushIntervalMs: 20,
        sendTimeoutMs: 4_000,
        retry: { initialDelayMs: 100, maxDelayMs: 1_000 },
        circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 1_000 },
      },
      { logger: recordingLogger() },
    );
    const changes: string[] = [];
    pipeline.onStateChange((change) => changes.push(`${change.from}>${change.to}`));
    let seq = 0;
    let emitting = true;
    const emitter = (async () => {
      while (emitting) {
        pipeline.enqueue(encodeEvent(makeEvent({ event_type: "tick", data: { seq: seq++ } })));
        await sleep(10);
      }
    })();
    try {
      await waitUntil(() => pipeline.getMetrics().delivered >= 100, 15_000, "100 events before the outage");
      await kafkaHarness("stop");
      const atStop = seq;
      await waitUntil(() => pipeline.getMetrics().breakerState === "open", 30_000, "the breaker to open");
      await sleep(500);
      expect(seq - atStop).toBeGreaterThan(20);
      await kafkaHarness("start");
      await waitUntil(
        () => pipeline.getMetrics().breakerState === "closed",
        60_000,
        "the breaker to close again",
      );
      await sleep(300);
    } finally {
      emitting = false;
      await emitter;
    }
    expect(await pipeline.flush(60_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: seq, delivered: seq, dropped: 0, pending: 0, inFlight: 0 });
    expect(metrics.batchesFailed).toBeGreaterThanOrEqual(3);
    expect(changes).toContain("closed>open");
    expect(changes).toContain("open>half-open");
    expect(changes.at(-1)).toBe("half-open>closed");
    await pipeline.shutdown(5_000);

    // Every event is in the topic (a send cut off by the outage may have been written twice: at-least-once).
    const seqOf = (value: string): number => (JSON.parse(value) as { data: { seq: number } }).data.seq;
    const seqs = new Set<number>();
    const read = await readTopic(
      connection,
      topic,
      (messages) => {
        for (const message of messages.slice(seqs.size === 0 ? 0 : -1)) seqs.add(seqOf(message.value));
        return seqs.size >= seq;
      },
      30_000,
    );
    expect(new Set(read.map((m) => seqOf(m.value)))).toEqual(
      new Set(Array.from({ length: seq }, (_, i) => i)),
    );
  }, 170_000);
});
