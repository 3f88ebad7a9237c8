// RabbitMQEventReader at scale, against the real broker, on the built package (`pnpm build` first):
//   1. scale-out: events/s handled by 1, 2 and 4 reader processes consuming one queue (competing consumers,
//      prefetch 32 each), with a handler that does 1 ms of async work (a timer);
//   2. per-event overhead of one reader (no-op handler) against raw amqplib doing the same protocol work:
//      consume with prefetch 32, JSON.parse, one ack per message after its handler.
// Writes bench/results/readers.json. Settings: RABBITMQ_URL, BENCH_EVENTS (scale-out, default 4000),
// BENCH_ROUNDS (3), BENCH_OVERHEAD_EVENTS (20000).
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { encodeEvent } from "@streamll/core";
import amqp from "amqplib";
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
import { RabbitMQEventReader, RabbitMQSink } from "../dist/index.js";

const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
const {
  events: EVENTS,
  rounds: ROUNDS,
  overheadEvents: OVERHEAD_EVENTS,
  handlerDelayMs: HANDLER_DELAY_MS,
} = BENCH;
const PREFETCH = 32; // the reader's default
const WORKER = fileURLToPath(new URL("../test/reader-process.mjs", import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const quiet = { warn: () => {} };

const id = () =>
  randomBytes(9)
    .toString("base64url")
    .replace(/[^A-Za-z0-9]/g, "x");
const bench = startBench(
  PACKAGE_DIR,
  "readers",
  "RabbitMQEventReader: scale-out over reader processes, and per-event cost against raw amqplib",
);
// An exchange of its own: nothing else published on the broker reaches the bench queues.
const exchange = `streamll-bench-readers-${id()}`;

const makeEvents = (count) => benchEvents(count, encodeEvent);

const connection = await amqp.connect(RABBITMQ_URL);
const admin = await connection.createChannel();

function publish(events) {
  return sendAll(new RabbitMQSink({ url: RABBITMQ_URL, exchange, logger: quiet }), events);
}

const readerOptions = (queue) => ({ url: RABBITMQ_URL, queue, exchange, prefetch: PREFETCH });

async function dropQueue(queue) {
  await admin.deleteQueue(queue);
  await admin.deleteQueue(`${queue}.dead`);
  await admin.deleteExchange(`${queue}.dlx`);
}

console.log(`streamll sink-rabbitmq readers bench — ${EVENTS} events per scale-out run, ${ROUNDS} rounds`);
const scale = await scaleOut({
  worker: WORKER,
  readerCounts: [1, 2, 4],
  events: EVENTS,
  rounds: ROUNDS,
  handlerDelayMs: HANDLER_DELAY_MS,
  log,
  prepare: async () => {
    const queue = `streamll-bench-readers-${id()}`;
    const events = makeEvents(EVENTS);
    return {
      config: { reader: readerOptions(queue) },
      ready: (group) => group.readers.every((reader) => reader.ready),
      produce: () => publish(events),
      cleanup: () => dropQueue(queue),
    };
  },
});

console.log(`\nper-event overhead: ${OVERHEAD_EVENTS} events, no-op handler`);
/** A queue declared by the reader (same arguments for both sides), filled with the events. */
async function filledQueue() {
  const queue = `streamll-bench-readers-${id()}`;
  const declaring = new RabbitMQEventReader({ ...readerOptions(queue), logger: quiet });
  const running = declaring.run(() => {
    throw new Error("no message expected yet");
  });
  await declaring.ready();
  await declaring.stop();
  await running;
  await publish(makeEvents(OVERHEAD_EVENTS));
  return queue;
}
const cost = await overhead({
  rounds: ROUNDS,
  log,
  raw: async () => {
    const queue = await filledQueue();
    const channel = await connection.createChannel();
    await channel.prefetch(PREFETCH);
    const result = await timed(OVERHEAD_EVENTS, async (onEvent, done) => {
      const { consumerTag } = await channel.consume(queue, async (message) => {
        JSON.parse(message.content.toString("utf8"));
        await onEvent();
        channel.ack(message);
      });
      await done;
      await channel.cancel(consumerTag);
    });
    await channel.close();
    await dropQueue(queue);
    return result;
  },
  reader: async () => {
    const queue = await filledQueue();
    const reader = new RabbitMQEventReader({ ...readerOptions(queue), logger: quiet });
    const result = await timedReader(OVERHEAD_EVENTS, reader);
    await dropQueue(queue);
    return result;
  },
});
await admin.deleteExchange(exchange);
const version = String(connection.connection.serverProperties?.version ?? "unknown");
await connection.close();

report(bench, {
  broker: { name: "rabbitmq", version, url: RABBITMQ_URL.replace(/\/\/[^@]*@/, "//") },
  settings: {
    events: EVENTS,
    rounds: ROUNDS,
    handler_delay_ms: HANDLER_DELAY_MS,
    prefetch: PREFETCH,
    overhead_events: OVERHEAD_EVENTS,
  },
  scale,
  cost,
  client: "amqplib",
});
process.exit(0);
