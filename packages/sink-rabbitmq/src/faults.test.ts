import type { DeliveryOptions, StreamllEvent } from "@streamll/core";
import { DeliveryPipeline } from "@streamll/core";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createVhost,
  currentMemoryWatermark,
  deleteVhost,
  rabbitmqctl,
  skipWithoutBroker,
  vhostUrl,
  waitUntil,
} from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { RabbitMQSink } from "./rabbitmq-sink";

const quiet = { warn: () => {} };

/** Quick retries so a test does not wait out production backoffs. */
const delivery: DeliveryOptions = {
  maxBatchSize: 100,
  flushIntervalMs: 10,
  sendTimeoutMs: 1_000,
  retry: { initialDelayMs: 20, maxDelayMs: 200 },
  circuitBreaker: { failureThreshold: 5, resetTimeoutMs: 100 },
};

/** Every message id in the queue (consumed), in order. */
async function drainIds(url: string, queue: string, expected: number, timeoutMs = 10_000): Promise<string[]> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const ids: string[] = [];
    const deadline = Date.now() + timeoutMs;
    while (ids.length < expected && Date.now() < deadline) {
      const message = await channel.get(queue, { noAck: true });
      if (message) ids.push(message.properties.messageId as string);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Anything beyond `expected` is a duplicate from a republished, unconfirmed batch.
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (!message) break;
      ids.push(message.properties.messageId as string);
    }
    return ids;
  } finally {
    await connection.close();
  }
}

describe.skipIf(skipWithoutBroker)("faults mid-stream against a real broker", () => {
  let vhost: string;
  let url: string;

  beforeAll(async () => {
    vhost = await createVhost("streamll_faults");
    url = vhostUrl(vhost);
  });

  afterAll(async () => {
    if (vhost) await deleteVhost(vhost);
  });

  it("loses nothing when the broker closes every connection while events flow", async () => {
    const queue = `q_${testId()}`;
    const sink = new RabbitMQSink({
      url,
      logger: quiet,
      queue: { name: queue },
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const pipeline = new DeliveryPipeline(sink, delivery, { logger: quiet });
    await sink.connect();
    const events: StreamllEvent[] = [];
    let enqueuedWhileDisconnected = 0;
    const emit = (count: number): void => {
      for (let i = 0; i < count; i += 1) {
        const event = makeEvent({ event_type: "token", data: { i: events.length } });
        events.push(event);
        // enqueue is synchronous: it returns before anything touches the network.
        expect(pipeline.enqueue(encoded(event))).toBeUndefined();
        if (!sink.getStats().connected) enqueuedWhileDisconnected += 1;
      }
    };
    emit(1_000);
    let closed = false;
    const closing = rabbitmqctl("close_all_connections", "-p", vhost, "streamll fault test").then(() => {
      closed = true;
    });
    // Keep the stream flowing through the close and the reconnection.
    while ((!closed || sink.getStats().reconnects < 1) && events.length < 50_000) {
      emit(50);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    emit(500);
    await closing;
    const total = events.length;
    expect(await pipeline.flush(20_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: total, delivered: total, dropped: 0, pending: 0 });
    expect(sink.getStats().reconnects).toBeGreaterThanOrEqual(1);
    const ids = await drainIds(url, queue, total);
    expect(new Set(ids).size).toBe(total);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.event_id)));
    console.info(
      `close_all_connections: ${total} events, ${ids.length - total} duplicates (republished unconfirmed), ` +
        `${enqueuedWhileDisconnected} enqueued while disconnected, ${metrics.retried} retried sends`,
    );
    await pipeline.shutdown(5_000);
  });

  it("respects a memory alarm without blocking the caller or losing events", async () => {
    const original = await currentMemoryWatermark();
    const queue = `q_${testId()}`;
    const sink = new RabbitMQSink({ url, logger: quiet, queue: { name: queue } });
    const pipeline = new DeliveryPipeline(sink, delivery, { logger: quiet });
    try {
      const before = Array.from({ length: 10 }, () => makeEvent());
      for (const event of before) pipeline.enqueue(encoded(event));
      expect(await pipeline.flush(5_000)).toBe(true);

      await rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
      const during = Array.from({ length: 200 }, () => makeEvent());
      for (const event of during) pipeline.enqueue(encoded(event));
      // The broker blocks the connection once it publishes during the alarm; sends then fail fast.
      await waitUntil(() => sink.getStats().blocked !== null, 15_000, "connection.blocked");
      await waitUntil(() => pipeline.getMetrics().batchesFailed >= 2, 15_000, "failed sends while blocked");
      const blocked = pipeline.getMetrics();
      expect(blocked.delivered).toBe(10);
      expect(blocked.pending).toBe(200);
      expect(blocked.dropped).toBe(0);
      // More events while blocked: still accepted synchronously, still pending.
      const more = Array.from({ length: 50 }, () => makeEvent());
      for (const event of more) pipeline.enqueue(encoded(event));
      expect(pipeline.getMetrics().pending).toBe(250);

      await rabbitmqctl("set_vm_memory_high_watermark", ...original);
      await waitUntil(() => sink.getStats().blocked === null, 15_000, "connection.unblocked");
      expect(await pipeline.flush(20_000)).toBe(true);
      expect(pipeline.getMetrics()).toMatchObject({ emitted: 260, delivered: 260, dropped: 0, pending: 0 });
      const ids = await drainIds(url, queue, 260);
      expect(new Set(ids)).toEqual(new Set([...before, ...during, ...more].map((e) => e.event_id)));
    } finally {
      await rabbitmqctl("set_vm_memory_high_watermark", ...original);
      await pipeline.shutdown(5_000);
    }
  });

  it("with whenBlocked: wait, holds sends until the broker unblocks: no failed send, no duplicate", async () => {
    const original = await currentMemoryWatermark();
    const queue = `q_${testId()}`;
    const sink = new RabbitMQSink({ url, logger: quiet, queue: { name: queue }, whenBlocked: "wait" });
    const pipeline = new DeliveryPipeline(sink, { ...delivery, sendTimeoutMs: 20_000 }, { logger: quiet });
    try {
      await sink.connect();
      await rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
      const events = Array.from({ length: 300 }, () => makeEvent());
      for (const event of events) pipeline.enqueue(encoded(event));
      await waitUntil(() => sink.getStats().blocked !== null, 15_000, "connection.blocked");
      const more = Array.from({ length: 50 }, () => makeEvent());
      for (const event of more) pipeline.enqueue(encoded(event));
      expect(pipeline.getMetrics()).toMatchObject({ delivered: 0, pending: 350, batchesFailed: 0 });

      await rabbitmqctl("set_vm_memory_high_watermark", ...original);
      expect(await pipeline.flush(20_000)).toBe(true);
      expect(pipeline.getMetrics()).toMatchObject({
        emitted: 350,
        delivered: 350,
        dropped: 0,
        batchesFailed: 0,
        retried: 0,
      });
      const ids = await drainIds(url, queue, 350);
      expect(ids).toHaveLength(350);
      expect(new Set(ids)).toEqual(new Set([...events, ...more].map((e) => e.event_id)));
    } finally {
      await rabbitmqctl("set_vm_memory_high_watermark", ...original);
      await pipeline.shutdown(5_000);
    }
  });
});
