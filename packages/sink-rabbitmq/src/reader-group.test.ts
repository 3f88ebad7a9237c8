// Several RabbitMQEventReader processes consuming one queue (competing consumers), against the real broker:
// sharing, crash hand-over (the broker redelivers a dead consumer's unacknowledged messages), graceful
// leave/join, and stop() semantics. The reader processes run the built package (test/reader-process.mjs).
import { fileURLToPath } from "node:url";
import type { StreamllEvent } from "@streamll/core";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReaderGroup, summarize } from "../../../test-support/reader-group.mjs";
import { createVhost, deleteVhost, skipWithoutBroker, vhostUrl, waitUntil } from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { RabbitMQEventReader } from "./rabbitmq-event-reader";
import { RabbitMQSink } from "./rabbitmq-sink";

const WORKER = fileURLToPath(new URL("../test/reader-process.mjs", import.meta.url));
const PREFETCH = 32;
const quiet = { warn: () => {} };

/** `count` events over `count / 20` executions (20 events each, like small module calls). */
function makeEvents(count: number): StreamllEvent[] {
  let executionId = "";
  return Array.from({ length: count }, (_, seq) => {
    if (seq % 20 === 0) executionId = testId();
    return makeEvent({ execution_id: executionId, data: { seq } });
  });
}

describe.skipIf(skipWithoutBroker)("RabbitMQEventReader competing consumers across processes", () => {
  let vhost: string;
  let url: string;
  let admin: ChannelModel;
  let channel: Channel;

  beforeAll(async () => {
    vhost = await createVhost();
    url = vhostUrl(vhost);
    admin = await amqp.connect(url);
    channel = await admin.createChannel();
  });

  afterAll(async () => {
    await admin?.close().catch(() => {});
    if (vhost) await deleteVhost(vhost);
  });

  async function publish(events: readonly StreamllEvent[]): Promise<void> {
    const sink = new RabbitMQSink({ url, logger: quiet });
    try {
      for (let i = 0; i < events.length; i += 2_000) {
        const batch = events.slice(i, i + 2_000).map(encoded);
        const result = await sink.send(batch, { signal: new AbortController().signal, attempt: 1 });
        expect(result).toBeUndefined();
      }
    } finally {
      await sink.close();
    }
  }

  /** Starts `count` reader processes on a fresh queue and waits until all of them consume it. */
  async function startGroup(
    count: number,
    handlerDelayMs = 0,
  ): Promise<{ readers: ReaderGroup; queue: string }> {
    const queue = `group_${testId()}`;
    const readers = new ReaderGroup({
      worker: WORKER,
      config: { reader: { url, queue, prefetch: PREFETCH }, handlerDelayMs },
    });
    readers.start(count);
    await consumersOn(queue, count, readers);
    return { readers, queue };
  }

  async function consumersOn(queue: string, count: number, readers: ReaderGroup): Promise<void> {
    await readers.waitFor(
      async () => {
        const probe = await admin.createChannel();
        probe.on("error", () => {});
        try {
          return (await probe.checkQueue(queue)).consumerCount === count;
        } catch {
          return false; // not declared yet: checkQueue closes the probe channel
        } finally {
          await probe.close().catch(() => {});
        }
      },
      `${count} consumers on ${queue}`,
      60_000,
    );
  }

  it("3 reader processes share 100,000 events; one SIGKILLed at 30%: every id handled, duplicates explained", async () => {
    const { readers, queue } = await startGroup(3);
    try {
      const events = makeEvents(100_000);
      const ids = events.map((event) => event.event_id);
      const publishing = publish(events);
      await readers.waitForHandled(30_000);
      const victim = readers.readers[0]!;
      await victim.kill();
      await publishing;
      await readers.waitForIds(ids, 360_000);
      await readers.stopAll();
      const analysis = readers.analyze(ids);
      console.info(`rabbitmq, 3 readers, SIGKILL at 30%: ${summarize(analysis)}`);
      expect(analysis.missing).toEqual([]);
      expect(analysis.unexpected).toEqual([]);
      for (const count of analysis.perReader) expect(count).toBeGreaterThan(0);
      // A duplicate is a message the dead reader handled (and logged) whose ack had not reached the broker:
      // the broker redelivered it to a survivor. Unacknowledged messages per consumer are capped by the prefetch.
      expect(analysis.extraDeliveries).toBeLessThanOrEqual(PREFETCH);
      for (const duplicate of analysis.duplicates) {
        expect(duplicate.readers).toHaveLength(2);
        expect(duplicate.readers).toContain(victim.index);
      }
      // Acknowledgements leave in order, so the ones lost with the process are the last it sent: the duplicates
      // are exactly the tail of the victim's log.
      const victimIds = victim.ids();
      const victimTail = victimIds.slice(victimIds.length - analysis.duplicates.length);
      expect(new Set(analysis.duplicates.map((duplicate) => duplicate.id))).toEqual(new Set(victimTail));
      // The survivors' acknowledgements reached the broker before they left.
      expect(await channel.checkQueue(queue)).toMatchObject({ messageCount: 0, consumerCount: 0 });
    } finally {
      await readers.close();
    }
  }, 420_000);

  it("a reader leaving (SIGTERM) and one joining hand over without loss and without duplicates", async () => {
    // 1 ms of work per event keeps the run long enough for the leave and the join to happen mid-stream.
    const { readers, queue } = await startGroup(3, 1);
    try {
      const total = 20_000;
      const events = makeEvents(total);
      const ids = events.map((event) => event.event_id);
      const publishing = publish(events);
      await readers.waitForHandled(total * 0.3);
      const leaving = readers.readers[0]!;
      expect(await leaving.terminate()).toEqual({ code: 0, signal: null });
      expect(leaving.final?.stats.acked).toBe(leaving.final?.handled);
      await readers.waitForHandled(total * 0.6);
      readers.add();
      await publishing;
      await readers.waitForIds(ids, 360_000);
      await readers.stopAll();
      const analysis = readers.analyze(ids);
      console.info(`rabbitmq, leave at 30% and join at 60%: ${summarize(analysis)}`);
      expect(analysis.missing).toEqual([]);
      expect(analysis.duplicates).toEqual([]);
      expect(analysis.perReader[3]).toBeGreaterThan(0);
      expect(await channel.checkQueue(queue)).toMatchObject({ messageCount: 0, consumerCount: 0 });
    } finally {
      await readers.close();
    }
  }, 420_000);

  it("stop() finishes the handler in flight, acknowledges it, returns the prefetched messages and leaves", async () => {
    const queue = `stop_${testId()}`;
    const first = new RabbitMQEventReader({ url, queue, prefetch: 10, logger: quiet });
    let finished = false;
    let stopping: Promise<void> | undefined;
    const running = first.run(async () => {
      stopping ??= first.stop();
      await new Promise((resolve) => setTimeout(resolve, 300));
      finished = true;
    });
    await first.ready();
    await publish(makeEvents(10));
    await waitUntil(() => stopping !== undefined, 10_000, "the first handler call");
    await stopping;
    await running;
    expect(finished).toBe(true);
    expect(first.getStats()).toMatchObject({ acked: 1 });
    // The other nine went back to the queue, and this consumer is gone.
    expect(await channel.checkQueue(queue)).toMatchObject({ messageCount: 9, consumerCount: 0 });

    const second = new RabbitMQEventReader({ url, queue, logger: quiet });
    const redelivered: boolean[] = [];
    await second.run((received) => {
      redelivered.push(received.redelivered);
      if (redelivered.length === 9) void second.stop();
    });
    // The broker marks them redelivered: they had been sent to a consumer before (never handled there).
    expect(redelivered).toHaveLength(9);
    expect(await channel.checkQueue(queue)).toMatchObject({ messageCount: 0 });
  });
});
