import type { DeliveryOptions, StreamllEvent } from "@streamll/core";
import { DeliveryPipeline } from "@streamll/core";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createVhost,
  currentMemoryWatermark,
  deleteVhost,
  rabbitmqctl,
  raiseMemoryAlarm,
  restoreMemoryWatermark,
  skipWithoutBroker,
  socketsOpenedBy,
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

/** Alarm tests wait for the broker several times; the budget covers every inner wait. */
const ALARM_TEST_TIMEOUT_MS = 60_000;

describe.skipIf(skipWithoutBroker)("faults mid-stream against a real broker", () => {
  let vhost: string;
  let url: string;
  /** Read once, before any test raised an alarm. */
  let original: string[] | undefined;

  beforeAll(async () => {
    original = await currentMemoryWatermark();
    vhost = await createVhost("streamll_faults");
    url = vhostUrl(vhost);
  });

  afterAll(async () => {
    // Safety net besides each test's `finally`: a test that timed out may not have reached its own restore.
    try {
      if (original) await restoreMemoryWatermark(original);
    } finally {
      if (vhost) await deleteVhost(vhost);
    }
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
  }, 120_000); // rabbitmqctl starts an Erlang VM, which alone takes many seconds on a loaded machine

  it(
    "respects a memory alarm without blocking the caller or losing events",
    async () => {
      const restore = original ?? (await currentMemoryWatermark());
      const queue = `q_${testId()}`;
      const sink = new RabbitMQSink({ url, logger: quiet, queue: { name: queue } });
      const pipeline = new DeliveryPipeline(sink, delivery, { logger: quiet });
      try {
        const before = Array.from({ length: 10 }, () => makeEvent());
        for (const event of before) pipeline.enqueue(encoded(event));
        expect(await pipeline.flush(5_000)).toBe(true);

        await raiseMemoryAlarm();
        const during = Array.from({ length: 200 }, () => makeEvent());
        for (const event of during) pipeline.enqueue(encoded(event));
        // The broker blocks the connection once it publishes during the alarm; the batch in flight times out
        // (sendTimeoutMs) and every later send fails fast with the flow-control error.
        await waitUntil(() => sink.getStats().blocked !== null, 10_000, "connection.blocked");
        await waitUntil(() => pipeline.getMetrics().batchesFailed >= 2, 10_000, "failed sends while blocked");
        const blocked = pipeline.getMetrics();
        expect(blocked.lastError?.message).toMatch(/blocked publishing/);
        expect(blocked.delivered).toBe(10);
        expect(blocked.pending).toBe(200);
        expect(blocked.dropped).toBe(0);
        // More events while blocked: still accepted synchronously, still pending.
        const more = Array.from({ length: 50 }, () => makeEvent());
        for (const event of more) pipeline.enqueue(encoded(event));
        expect(pipeline.getMetrics().pending).toBe(250);

        await restoreMemoryWatermark(restore);
        await waitUntil(() => sink.getStats().blocked === null, 10_000, "connection.unblocked");
        expect(await pipeline.flush(15_000)).toBe(true);
        expect(pipeline.getMetrics()).toMatchObject({ emitted: 260, delivered: 260, dropped: 0, pending: 0 });
        const ids = await drainIds(url, queue, 260);
        expect(new Set(ids)).toEqual(new Set([...before, ...during, ...more].map((e) => e.event_id)));
      } finally {
        await restoreMemoryWatermark(restore);
        await pipeline.shutdown(5_000);
      }
    },
    ALARM_TEST_TIMEOUT_MS,
  );

  it(
    "with whenBlocked: wait, a send waits for connection.unblocked instead of failing; an abort ends the wait",
    async () => {
      const restore = original ?? (await currentMemoryWatermark());
      const queue = `q_${testId()}`;
      const sink = new RabbitMQSink({ url, logger: quiet, queue: { name: queue }, whenBlocked: "wait" });
      const context = () => ({ signal: new AbortController().signal, attempt: 1 });
      try {
        await sink.connect();
        await raiseMemoryAlarm();
        // The first publish during the alarm makes the broker block the connection; its confirms wait.
        const first = [makeEvent(), makeEvent()];
        const firstSend = sink.send(first.map(encoded), context());
        await waitUntil(() => sink.getStats().blocked !== null, 10_000, "connection.blocked");

        // Blocked now: with "fail" this send would reject at once; with "wait" it neither fails nor publishes.
        const second = [makeEvent()];
        let secondSettled = false;
        const secondSend = sink.send(second.map(encoded), context()).finally(() => {
          secondSettled = true;
        });
        const aborter = new AbortController();
        const abandoned = sink
          .send([encoded(makeEvent())], { signal: aborter.signal, attempt: 1 })
          .catch((error: unknown) => error);
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(secondSettled).toBe(false);
        expect(sink.getStats().published).toBe(2);
        // The pipeline's send timeout aborts the signal: the wait ends with a retriable timeout error.
        aborter.abort();
        expect(await abandoned).toMatchObject({ code: "SEND_TIMEOUT", retriable: true });

        await restoreMemoryWatermark(restore);
        expect(await firstSend).toBeUndefined();
        expect(await secondSend).toBeUndefined();
        expect(sink.getStats()).toMatchObject({ published: 3, confirmed: 3, blocked: null });
        expect(await drainIds(url, queue, 3)).toEqual([...first, ...second].map((e) => e.event_id));
      } finally {
        await restoreMemoryWatermark(restore);
        await sink.close();
      }
    },
    ALARM_TEST_TIMEOUT_MS,
  );

  it(
    "with whenBlocked: wait through the pipeline, a blocked batch completes after the alarm: no failed send, no duplicate",
    async () => {
      const restore = original ?? (await currentMemoryWatermark());
      const queue = `q_${testId()}`;
      const sink = new RabbitMQSink({ url, logger: quiet, queue: { name: queue }, whenBlocked: "wait" });
      const pipeline = new DeliveryPipeline(sink, { ...delivery, sendTimeoutMs: 20_000 }, { logger: quiet });
      try {
        await sink.connect();
        await raiseMemoryAlarm();
        const events = Array.from({ length: 300 }, () => makeEvent());
        for (const event of events) pipeline.enqueue(encoded(event));
        await waitUntil(() => sink.getStats().blocked !== null, 10_000, "connection.blocked");
        const more = Array.from({ length: 50 }, () => makeEvent());
        for (const event of more) pipeline.enqueue(encoded(event));
        expect(pipeline.getMetrics()).toMatchObject({ delivered: 0, pending: 350, batchesFailed: 0 });

        await restoreMemoryWatermark(restore);
        expect(await pipeline.flush(15_000)).toBe(true);
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
        await restoreMemoryWatermark(restore);
        await pipeline.shutdown(5_000);
      }
    },
    ALARM_TEST_TIMEOUT_MS,
  );

  it(
    "close() while the broker blocks the connection returns and releases the socket; the unconfirmed batch fails retriably",
    async () => {
      const restore = original ?? (await currentMemoryWatermark());
      const queue = `q_${testId()}`;
      const sink = new RabbitMQSink({ url, logger: quiet, queue: { name: queue } });
      try {
        const sockets = await socketsOpenedBy(() => sink.connect());
        expect(sockets).toHaveLength(1);
        await raiseMemoryAlarm();
        const inFlight = sink.send([encoded(makeEvent())], {
          signal: new AbortController().signal,
          attempt: 1,
        });
        await waitUntil(() => sink.getStats().blocked !== null, 10_000, "connection.blocked");
        const started = Date.now();
        await sink.close();
        const closeMs = Date.now() - started;
        const result = await inFlight;
        expect(result?.failures.map((f) => [f.index, f.retriable])).toEqual([[0, true]]);
        expect(sink.getStats()).toMatchObject({ connected: false, confirmed: 0, unconfirmed: 1 });
        // The broker does not read from a blocked connection, so no close-ok comes: the socket must be destroyed.
        await waitUntil(() => sockets[0]?.destroyed === true, 2_000, "the socket to be released");
        console.info(`close() while blocked took ${closeMs} ms`);
      } finally {
        await restoreMemoryWatermark(restore);
        await sink.close();
      }
    },
    ALARM_TEST_TIMEOUT_MS,
  );

  it("a logger that throws cannot crash the host: the sink still reconnects and delivers", async () => {
    const queue = `q_${testId()}`;
    let warnings = 0;
    const sink = new RabbitMQSink({
      url,
      queue: { name: queue },
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      logger: {
        warn: () => {
          warnings += 1;
          throw new Error("logger down");
        },
      },
    });
    const pipeline = new DeliveryPipeline(sink, delivery, { logger: quiet });
    try {
      await sink.connect();
      // The "connection closed" and "reconnected" log lines run inside amqplib's event emitters, which rethrow.
      await rabbitmqctl("close_all_connections", "-p", vhost, "streamll throwing logger test");
      await waitUntil(() => sink.getStats().reconnects >= 1, 10_000, "reconnect");
      const events = Array.from({ length: 20 }, () => makeEvent());
      for (const event of events) pipeline.enqueue(encoded(event));
      expect(await pipeline.flush(10_000)).toBe(true);
      expect(pipeline.getMetrics()).toMatchObject({ emitted: 20, delivered: 20, dropped: 0 });
      expect(warnings).toBeGreaterThanOrEqual(2);
      expect(await drainIds(url, queue, 20)).toEqual(events.map((e) => e.event_id));
    } finally {
      await pipeline.shutdown(5_000);
    }
  });
});
