// Throughput of RabbitMQSink through the real DeliveryPipeline against raw amqplib on a confirm channel,
// publishing the same messages (same routing keys, properties and bodies) to the same broker in the same run:
//   raw-batched   publish a batch of 512, then wait for its confirms (the sink's strategy, without streamll)
//   sink          DeliveryPipeline + RabbitMQSink with default delivery settings (batches of 512, one in
//                 flight), fed by a producer that enqueues 512 events per event-loop turn
//   raw-per-msg   publish one message, wait for its confirm, then the next
// Each mode runs ROUNDS times, interleaved (the order of raw and sink alternates, so broker warm-up and disk
// flushes hit both alike); rates are over all rounds (events / total time), drops are counted. Then sustained
// rounds of instrumented async calls delivering to RabbitMQSink against the bare call in the same rounds
// (test-support/bench-calls.mjs), and the event-loop delay while 10,000 events/s go to RabbitMQSink for 10 s
// against the same timer without streamll (test-support/bench-loop.mjs). Results in bench/results/sink.json.
// Needs a broker (RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672/) and a built package (`pnpm build`).
import { randomBytes } from "node:crypto";
import * as core from "@streamll/core";
import { DeliveryPipeline, encodeEvent } from "@streamll/core";
import amqp from "amqplib";
import { SUSTAINED, sustainedCalls, yieldToLoop } from "../../../test-support/bench-calls.mjs";
import { LOAD, loopDelayUnderLoad } from "../../../test-support/bench-loop.mjs";
import { startBench } from "../../../test-support/bench-results.mjs";
import { RabbitMQSink } from "../dist/index.js";

const url = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
const EVENTS = Number(process.env.BENCH_EVENTS ?? 5_000);
const PER_MESSAGE_EVENTS = Number(process.env.BENCH_PER_MESSAGE_EVENTS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const bench = startBench(
  new URL("..", import.meta.url),
  "sink",
  "RabbitMQSink: throughput against raw amqplib on a confirm channel, and per-call overhead",
);
// BENCH_PERSISTENT=0 publishes transient messages (no disk writes on the broker) in every mode.
const PERSISTENT = process.env.BENCH_PERSISTENT !== "0";
const BATCH = 512;

const id = () => randomBytes(9).toString("base64url");
const suffix = id().replace(/[^A-Za-z0-9]/g, "x");
const exchange = `streamll_bench_${suffix}`;
const queue = `streamll_bench_${suffix}`;

function makeEvents(count) {
  const execution = id();
  const span = id();
  return Array.from({ length: count }, (_, i) =>
    encodeEvent({
      schema_version: "1.0",
      event_id: id(),
      execution_id: execution,
      span_id: span,
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: i % 2 ? "RAG" : "Summarizer",
      method_name: "forward",
      event_type: "token",
      operation: null,
      data: { field: "answer", token: ` token-${i}`, index: i, model: "gpt-4o-mini" },
      tags: { env: "bench", service: "qa-api" },
      module_version: "a1b2c3d4",
      code_signature: null,
      git_commit: null,
    }),
  );
}

const routingKey = (event) =>
  `streamll.${event.module_name.replace(/[.*#\s]/g, "_")}.${event.event_type.replace(/[.*#\s]/g, "_")}`;

function properties(event) {
  return {
    persistent: PERSISTENT,
    mandatory: true,
    contentType: "application/json",
    messageId: event.event_id,
    type: event.event_type,
    appId: "streamll",
    timestamp: Math.floor(Date.parse(event.timestamp) / 1000),
    headers: {
      schema_version: event.schema_version,
      event_type: event.event_type,
      module_name: event.module_name,
    },
  };
}

async function rawBatched(connection, encoded) {
  const channel = await connection.createConfirmChannel();
  const started = performance.now();
  for (let offset = 0; offset < encoded.length; offset += BATCH) {
    // An encoded event carries the routing fields itself.
    for (const event of encoded.slice(offset, offset + BATCH)) {
      channel.publish(exchange, routingKey(event), Buffer.from(event.json, "utf8"), properties(event));
    }
    await channel.waitForConfirms();
  }
  const elapsed = performance.now() - started;
  await channel.close();
  return elapsed;
}

async function rawPerMessage(connection, encoded) {
  const channel = await connection.createConfirmChannel();
  const started = performance.now();
  for (const event of encoded) {
    await new Promise((resolve, reject) => {
      channel.publish(
        exchange,
        routingKey(event),
        Buffer.from(event.json, "utf8"),
        properties(event),
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }
  const elapsed = performance.now() - started;
  await channel.close();
  return elapsed;
}

async function sinkPipeline(encoded) {
  const sink = new RabbitMQSink({
    url,
    exchange,
    declareExchange: false,
    persistent: PERSISTENT,
    logger: { warn: () => {} },
  });
  await sink.connect();
  const pipeline = new DeliveryPipeline(sink, {}, { logger: { warn: () => {} } });
  const started = performance.now();
  for (let offset = 0; offset < encoded.length; offset += BATCH) {
    for (const event of encoded.slice(offset, offset + BATCH)) pipeline.enqueue(event);
    await yieldToLoop();
  }
  const flushed = await pipeline.flush(120_000);
  const elapsed = performance.now() - started;
  const metrics = pipeline.getMetrics();
  await pipeline.shutdown(10_000);
  if (!flushed) throw new Error(`sink run did not drain: ${JSON.stringify(metrics)}`);
  return { ms: elapsed, delivered: metrics.delivered, dropped: metrics.dropped };
}

const connection = await amqp.connect(url);
const admin = await connection.createChannel();
await admin.assertExchange(exchange, "topic", { durable: true });
await admin.assertQueue(queue, { durable: true });
await admin.bindQueue(queue, exchange, "streamll.#");
const version = connection.connection.serverProperties.version;

try {
  const events = makeEvents(EVENTS);
  const perMessageEvents = events.slice(0, PER_MESSAGE_EVENTS);
  const averageBytes = events.reduce((sum, e) => sum + e.bytes, 0) / events.length;
  // Warm-up: JIT, connection and channel setup, broker queue process.
  await rawBatched(connection, events);
  await sinkPipeline(events);
  await admin.purgeQueue(queue);

  const total = { raw: 0, sink: 0, perMessage: 0, delivered: 0, dropped: 0 };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const side of round % 2 === 0 ? ["raw", "sink"] : ["sink", "raw"]) {
      if (side === "raw") total.raw += await rawBatched(connection, events);
      else {
        const run = await sinkPipeline(events);
        total.sink += run.ms;
        total.delivered += run.delivered;
        total.dropped += run.dropped;
      }
      await admin.purgeQueue(queue);
    }
    total.perMessage += await rawPerMessage(connection, perMessageEvents);
    await admin.purgeQueue(queue);
  }
  const raw = (EVENTS * ROUNDS * 1000) / total.raw;
  const sink = (total.delivered * 1000) / total.sink;
  const perMessage = (PER_MESSAGE_EVENTS * ROUNDS * 1000) / total.perMessage;
  bench.merge("broker", { rabbitmq: { version: String(version) } });
  bench.merge("throughput", {
    event: { json_bytes: averageBytes },
    raw_batched: { events_per_s: raw },
    sink: { events_per_s: sink, vs_raw_pct: (sink / raw) * 100, dropped: total.dropped },
    raw_per_message: { events_per_s: perMessage },
    batched_vs_per_message: { raw_ratio: raw / perMessage, sink_ratio: sink / perMessage },
  });
  console.log(
    `RabbitMQ ${version} (same host); ${EVENTS} events (${averageBytes.toFixed(0)} B average JSON) per round, ${PERSISTENT ? "persistent" : "transient"}, durable classic queue, ${ROUNDS} rounds`,
  );
  console.log(`raw amqplib, batches of ${BATCH} + waitForConfirms : ${Math.round(raw)} events/s`);
  console.log(
    `RabbitMQSink via DeliveryPipeline (defaults)      : ${Math.round(sink)} events/s (${((sink / raw) * 100).toFixed(1)}% of raw; target >= 90%), ${total.dropped} dropped`,
  );
  console.log(`raw amqplib, confirm awaited per message          : ${Math.round(perMessage)} events/s`);

  console.log(
    `overhead: ${SUSTAINED.rounds} rounds of ${SUSTAINED.calls} instrumented calls against the bare call`,
  );
  const overhead = await sustainedCalls(
    core,
    [
      {
        key: "rabbitmq",
        sink: async () => {
          const sink = new RabbitMQSink({
            url,
            exchange,
            declareExchange: false,
            logger: { warn: () => {} },
          });
          await sink.connect();
          return sink;
        },
      },
    ],
    { log: (line) => console.log(`  ${line}`) },
  );
  await admin.purgeQueue(queue);
  bench.merge("call", overhead);

  console.log(
    `\nevent loop: ${LOAD.rate} events/s for ${LOAD.seconds} s into RabbitMQSink, delay sampled every 1 ms`,
  );
  const loop = await loopDelayUnderLoad({
    core,
    sink: new RabbitMQSink({ url, exchange, declareExchange: false, logger: { warn: () => {} } }),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    log: (line) => console.log(`  ${line}`),
  });
  await admin.purgeQueue(queue);
  bench.merge("loop_delay", { baseline: loop.baseline, rabbitmq_10k_per_s: loop.loaded });
  bench.merge("settings", {
    throughput: { events: EVENTS, rounds: ROUNDS, batch: BATCH, per_message_events: PER_MESSAGE_EVENTS },
    calls: { per_round: SUSTAINED.calls, rounds: SUSTAINED.rounds },
    load: { events_per_s: LOAD.rate, seconds: LOAD.seconds },
  });
  bench.write();
} finally {
  await admin.deleteQueue(queue).catch(() => {});
  await admin.deleteExchange(exchange).catch(() => {});
  await connection.close();
}
