// KafkaEventReader at scale, against the harness broker (scripts/kafka/kafka.sh start), on the built package
// (`pnpm build` first):
//   1. scale-out: events/s handled by 1, 2 and 4 reader processes in one consumer group over a topic of 8
//      partitions, with a handler that does 1 ms of async work (a timer);
//   2. per-event overhead of one reader (no-op handler) against raw kafkajs doing the same protocol work:
//      eachBatch, JSON.parse, heartbeat per message, one offset commit per fetched batch.
// Writes bench/results/readers.json. Settings: KAFKA_BROKERS (default 127.0.0.1 on the harness port,
// STREAMLL_KAFKA_PLAINTEXT_PORT or 39092), BENCH_EVENTS (scale-out, default 4000), BENCH_ROUNDS (3),
// BENCH_OVERHEAD_EVENTS (20000).
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { encodeEvent } from "@streamll/core";
import { Kafka, logLevel } from "kafkajs";
import { startBench } from "../../../test-support/bench-results.mjs";
import {
  BENCH,
  benchEvents,
  log,
  overhead,
  report,
  scaleOut,
  sendAll,
  timed,
  timedReader,
} from "../../../test-support/reader-bench.mjs";
import { KafkaEventReader, KafkaSink } from "../dist/index.js";

const brokers = (
  process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.STREAMLL_KAFKA_PLAINTEXT_PORT || 39092}`
).split(",");
const {
  events: EVENTS,
  rounds: ROUNDS,
  overheadEvents: OVERHEAD_EVENTS,
  handlerDelayMs: HANDLER_DELAY_MS,
} = BENCH;
// With 4 readers each owns 2 partitions: keyed partitioning is never perfectly even, and 2 per reader evens
// out the slowest reader's share.
const PARTITIONS = 8;
const WORKER = fileURLToPath(new URL("../test/reader-process.mjs", import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const quiet = { warn: () => {}, error: () => {} };

const id = () =>
  randomBytes(9)
    .toString("base64url")
    .replace(/[^A-Za-z0-9]/g, "x");
const bench = startBench(
  PACKAGE_DIR,
  "readers",
  "KafkaEventReader: scale-out over reader processes, and per-event cost against raw kafkajs",
);

const makeEvents = (count) => benchEvents(count, encodeEvent);

const kafka = new Kafka({ clientId: "streamll-bench", brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();

async function newTopic() {
  const topic = `streamll-bench-readers-${id()}`;
  // waitForLeaders can give up on a busy broker (UNKNOWN_TOPIC_OR_PARTITION): wait for the leaders here.
  await admin.createTopics({
    waitForLeaders: false,
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
  });
  for (let attempt = 0; ; attempt++) {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
    const partitions = metadata?.topics[0]?.partitions ?? [];
    if (partitions.length === PARTITIONS && partitions.every((p) => p.leader >= 0)) return topic;
    if (attempt > 300) throw new Error(`topic ${topic} has no leaders after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function produce(topic, events) {
  return sendAll(new KafkaSink({ brokers, topic, logger: quiet }), events);
}

async function groupStable(groupId, members) {
  const { groups } = await admin.describeGroups([groupId]);
  return groups[0]?.state === "Stable" && groups[0].members.length === members;
}

console.log(`streamll sink-kafka readers bench — ${EVENTS} events per scale-out run, ${ROUNDS} rounds`);
const scale = await scaleOut({
  worker: WORKER,
  readerCounts: [1, 2, 4],
  events: EVENTS,
  rounds: ROUNDS,
  handlerDelayMs: HANDLER_DELAY_MS,
  log,
  prepare: async (count) => {
    const topic = await newTopic();
    const groupId = `bench-${id()}`;
    const events = makeEvents(EVENTS);
    return {
      config: { reader: { brokers, topic, groupId, fromBeginning: true } },
      ready: () => groupStable(groupId, count),
      produce: () => produce(topic, events),
      cleanup: async () => {
        await admin.deleteGroups([groupId]).catch(() => undefined);
        await admin.deleteTopics({ topics: [topic] });
      },
    };
  },
});

console.log(`\nper-event overhead: ${OVERHEAD_EVENTS} events, no-op handler`);
async function filledTopic() {
  const topic = await newTopic();
  await produce(topic, makeEvents(OVERHEAD_EVENTS));
  return topic;
}
const cost = await overhead({
  rounds: ROUNDS,
  log,
  raw: async () => {
    const topic = await filledTopic();
    const consumer = kafka.consumer({ groupId: `bench-raw-${id()}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const result = await timed(OVERHEAD_EVENTS, async (onEvent, done) => {
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
          let next;
          for (const message of batch.messages) {
            JSON.parse(message.value.toString("utf8"));
            await onEvent();
            resolveOffset(message.offset);
            next = (BigInt(message.offset) + 1n).toString();
            await heartbeat();
          }
          if (next !== undefined) {
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
          }
        },
      });
      await done;
    });
    await consumer.disconnect();
    await admin.deleteTopics({ topics: [topic] });
    return result;
  },
  reader: async () => {
    const topic = await filledTopic();
    const reader = new KafkaEventReader({
      brokers,
      topic,
      groupId: `bench-reader-${id()}`,
      fromBeginning: true,
      logger: quiet,
    });
    const result = await timedReader(OVERHEAD_EVENTS, reader, () => reader.close());
    await admin.deleteTopics({ topics: [topic] });
    return result;
  },
});
await admin.disconnect();

report(bench, {
  broker: { name: "kafka", version: "4.4.0 (scripts/kafka)", brokers: brokers.join(",") },
  settings: {
    events: EVENTS,
    rounds: ROUNDS,
    handler_delay_ms: HANDLER_DELAY_MS,
    partitions: PARTITIONS,
    overhead_events: OVERHEAD_EVENTS,
  },
  scale,
  cost,
  client: "kafkajs",
});
process.exit(0);
