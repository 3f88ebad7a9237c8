// Outage survival with the disk spill, on the shared RabbitMQ behind a TCP proxy the test opens and closes (the
// shared broker itself is never stopped). The producer is a child process, so it can be killed with SIGKILL.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectLeftoversDelivered,
  expectOutageSurvived,
  outageDelivery,
  runOutage,
  seqAndId,
  spillAllThenKill,
  summarizeDelivery,
} from "../../../test-support/spill-producer.mjs";
import { startTcpProxy, type TcpProxy } from "../../../test-support/tcp-proxy.mjs";
import { BROKER_HOST, BROKER_PORT, brokerReachable } from "./__fixtures__/broker";
import { testId } from "./__fixtures__/events";

const WORKER = fileURLToPath(new URL("../test/spill-producer.mjs", import.meta.url));
const DIRECT_URL = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}`;

/** Consumes every message the queue holds; returns `{ seq, id }` of each (duplicates included). */
async function consumeAll(queue: string, timeoutMs = 90_000): Promise<{ seq: number; id: string }[]> {
  const connection = await amqp.connect(DIRECT_URL);
  try {
    const channel = await connection.createChannel();
    const depth = (await channel.checkQueue(queue)).messageCount;
    const records: { seq: number; id: string }[] = [];
    await channel.consume(
      queue,
      (message) => {
        if (message !== null) records.push(seqAndId(message.content.toString("utf8")));
      },
      { noAck: true },
    );
    const deadline = Date.now() + timeoutMs;
    while (records.length < depth && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    return records;
  } finally {
    await connection.close();
  }
}

describe("RabbitMQ outage with the disk spill (child producer, TCP proxy)", () => {
  let proxy: TcpProxy;
  const created: { exchange: string; queue: string }[] = [];

  function names(prefix: string) {
    const id = testId().replace(/[^A-Za-z0-9]/g, "_");
    const pair = { exchange: `${prefix}_x_${id}`, queue: `${prefix}_q_${id}` };
    created.push(pair);
    return pair;
  }

  beforeAll(async () => {
    if (!(await brokerReachable()) && process.env.CI === "true") {
      throw new Error(`RabbitMQ is not reachable at ${BROKER_HOST}:${BROKER_PORT}`);
    }
    proxy = await startTcpProxy({ port: BROKER_PORT });
  });

  afterAll(async () => {
    await proxy.close();
    const connection = await amqp.connect(DIRECT_URL);
    const channel = await connection.createChannel();
    for (const { exchange, queue } of created) {
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.deleteExchange(exchange).catch(() => undefined);
    }
    await connection.close().catch(() => undefined);
  });

  it("100k events at a steady rate, RabbitMQ unreachable for 30 s in the middle: every event id arrives, none dropped", async () => {
    const { exchange, queue } = names("spill_outage");
    const dir = mkdtempSync(join(tmpdir(), "streamll-spill-rabbitmq-"));
    const count = 100_000;
    const { final } = await runOutage({
      worker: WORKER,
      config: {
        sink: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange, queue: { name: queue } },
        delivery: outageDelivery(dir),
        count,
        // 40 s of emission: 5 s before the outage, 30 s during, 5 s after.
        rate: 2_500,
      },
      outageAfter: 12_500,
      outageMs: 30_000,
      down: () => proxy.close(),
      up: () => proxy.open(),
    });
    await expectOutageSurvived(expect, { name: "rabbitmq", final, count, records: () => consumeAll(queue) });
  }, 240_000);

  it("without the spill, the events missing from the queue are the drops the metrics count (less the batch cut before its confirm)", async () => {
    const { exchange, queue } = names("spill_off");
    const count = 20_000;
    const { final } = await runOutage({
      worker: WORKER,
      config: {
        sink: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange, queue: { name: queue } },
        delivery: { ...outageDelivery(), maxQueueSize: 2_000 },
        count,
        rate: 2_000,
      },
      outageAfter: 4_000,
      outageMs: 5_000,
      down: () => proxy.close(),
      up: () => proxy.open(),
    });
    const m = final.metrics;
    expect(m.dropped).toBeGreaterThan(0);
    expect(m).toMatchObject({ emitted: count, pending: 0, spilled: 0, spill: null });
    expect(m.dropped).toBe(m.droppedByReason["queue-full"]);
    const summary = summarizeDelivery(await consumeAll(queue), count);
    // Every event missing from the broker was counted as dropped. A batch the broker took just as the
    // connection was cut is retried (unconfirmed) and may then be evicted: dropped by the metrics, present in
    // the broker. At most the one batch in flight at the cut.
    expect(summary.missing).toBeLessThanOrEqual(m.dropped);
    expect(m.dropped - summary.missing).toBeLessThanOrEqual(512);
    expect(summary.distinct).toBe(m.delivered + (m.dropped - summary.missing));
  }, 120_000);

  it("a producer killed with SIGKILL mid-outage leaves segments that the next process delivers", async () => {
    const { exchange, queue } = names("spill_kill");
    const dir = mkdtempSync(join(tmpdir(), "streamll-spill-rabbitmq-kill-"));
    const count = 5_000;
    // The declared queue must exist before the first event is published by the second process.
    const setup = await amqp.connect(DIRECT_URL);
    const channel = await setup.createChannel();
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, "#");
    await setup.close();
    // Nothing listens on the closed proxy: RabbitMQ is down for the whole life of the first process.
    await proxy.close();
    try {
      await spillAllThenKill(WORKER, {
        sink: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange, queue: { name: queue } },
        delivery: outageDelivery(dir),
        count,
        rate: 5_000,
      });
    } finally {
      await proxy.open();
    }

    await expectLeftoversDelivered(expect, {
      worker: WORKER,
      sink: { url: DIRECT_URL, exchange, queue: { name: queue } },
      delivery: outageDelivery(dir),
      count,
      records: () => consumeAll(queue),
    });
  }, 120_000);
});
