// Outage survival with the disk spill on the harness broker: stopped for 30 s in the middle of a steady stream
// (this suite always leaves it running). The producer is a child process, so it can be killed with SIGKILL.
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectLeftoversDelivered,
  expectOutageSurvived,
  outageDelivery,
  ProducerProcess,
  runOutage,
  seqAndId,
  spillAllThenKill,
  summarizeDelivery,
} from "../../../test-support/spill-producer.mjs";
import {
  isBrokerReachable,
  kafkaHarness,
  kafkaPlaintextConfig,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import { createTopic, type ReadMessage, readTopic } from "./test-support/kafka-test-support";

const WORKER = fileURLToPath(new URL("../test/spill-producer.mjs", import.meta.url));
const connection = kafkaPlaintextConfig();

function sinkOptions(topic: string, brokers: readonly string[] = connection.brokers) {
  return { brokers: [...brokers], topic, connectionTimeoutMs: 1_000, requestTimeoutMs: 5_000 };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Every record of the topic once `count` distinct seqs arrived, as `{ seq, id }`. */
async function records(topic: string, count: number): Promise<{ seq: number; id: string }[]> {
  const seen = new Set<number>();
  let scanned = 0;
  const read = await readTopic(
    connection,
    topic,
    (messages: readonly ReadMessage[]) => {
      for (; scanned < messages.length; scanned++) seen.add(seqAndId(messages[scanned]!.value).seq);
      return seen.size >= count;
    },
    120_000,
  );
  return read.map((message) => seqAndId(message.value));
}

beforeAll(async () => {
  await requireBroker(["plaintext"]);
});

afterAll(async () => {
  // Whatever happened, later files need the broker.
  await kafkaHarness("start", 300_000);
  expect(await isBrokerReachable(["plaintext"])).toBe(true);
}, 310_000);

describe("Kafka outage with the disk spill (child producer, harness broker stopped and started)", () => {
  it("100k events at a steady rate, the broker stopped for 30 s in the middle: every event id arrives, none dropped", async () => {
    const topic = uniqueTopic("spill-outage");
    await createTopic(connection, topic, 3);
    const dir = mkdtempSync(join(tmpdir(), "streamll-spill-kafka-"));
    const count = 100_000;
    const { final } = await runOutage({
      worker: WORKER,
      config: {
        sink: sinkOptions(topic),
        delivery: outageDelivery(dir),
        count,
        // 40 s of emission: 5 s before the outage, 30 s during, the rest while the broker starts again.
        rate: 2_500,
      },
      outageAfter: 12_500,
      outageMs: 30_000,
      down: async () => {
        await kafkaHarness("stop");
      },
      up: async () => {
        await kafkaHarness("start", 300_000);
      },
    });
    await expectOutageSurvived(expect, { name: "kafka", final, count, records: () => records(topic, count) });
  }, 420_000);

  it("without the spill, the events missing from the topic are exactly the drops the metrics count", async () => {
    const topic = uniqueTopic("spill-off");
    await createTopic(connection, topic, 3);
    const count = 20_000;
    const closed = await freePort();
    // The first half goes to a closed port (Kafka down), with a queue too small to hold it.
    const first = new ProducerProcess(WORKER, {
      sink: sinkOptions(topic, [`127.0.0.1:${closed}`]),
      delivery: { ...outageDelivery(), maxQueueSize: 2_000 },
      count: count / 2,
      rate: 5_000,
      flushTimeoutMs: 1_000,
      shutdownTimeoutMs: 1_000,
    });
    await first.waitFor((p) => p.emitted, 60_000, "the first half");
    const down = await first.finish();
    expect(down.metrics.dropped).toBeGreaterThan(0);
    expect(down.metrics.delivered).toBe(0);
    const second = new ProducerProcess(WORKER, {
      sink: sinkOptions(topic),
      delivery: { ...outageDelivery(), maxQueueSize: 2_000 },
      count: count / 2,
      from: count / 2,
      rate: 5_000,
      autoFinish: true,
    });
    const up = await second.finish();
    const dropped = down.metrics.dropped + up.metrics.dropped;
    expect(down.metrics).toMatchObject({ emitted: count / 2, delivered: 0, pending: 0 });
    expect(down.metrics.dropped).toBe(
      down.metrics.droppedByReason.shutdown + down.metrics.droppedByReason["queue-full"],
    );
    const all = await records(topic, count - dropped);
    const summary = summarizeDelivery(all, count);
    expect(summary.missing).toBe(dropped);
    expect(summary.distinct).toBe(up.metrics.delivered);
  }, 180_000);

  it("a producer killed with SIGKILL mid-outage leaves segments that the next process delivers", async () => {
    const topic = uniqueTopic("spill-kill");
    await createTopic(connection, topic, 3);
    const dir = mkdtempSync(join(tmpdir(), "streamll-spill-kafka-kill-"));
    const count = 5_000;
    const closed = await freePort();
    await spillAllThenKill(WORKER, {
      sink: sinkOptions(topic, [`127.0.0.1:${closed}`]),
      delivery: outageDelivery(dir),
      count,
      rate: 5_000,
    });
    await expectLeftoversDelivered(expect, {
      worker: WORKER,
      sink: sinkOptions(topic),
      delivery: outageDelivery(dir),
      count,
      records: () => records(topic, count),
    });
  }, 120_000);
});
