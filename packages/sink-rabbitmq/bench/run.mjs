// Throughput of RabbitMQSink through the real DeliveryPipeline against raw amqplib on a confirm channel,
// publishing the same messages (same routing keys, properties and bodies) to the same broker in the same run:
//   raw-batched   publish a batch of 512, then wait for its confirms (the sink's strategy, without streamll)
//   sink          DeliveryPipeline + RabbitMQSink, batches of 512, one in flight (the defaults)
//   raw-per-msg   publish one message, wait for its confirm, then the next
// Each mode runs ROUNDS times, interleaved (the order of raw and sink alternates, so broker warm-up and disk
// flushes hit both alike); medians are reported, and the sink/raw ratio is the median of the per-round ratios. Needs a broker (RABBITMQ_URL, default
// amqp://guest:guest@127.0.0.1:5672/) and a built package (`pnpm build`).
import { randomBytes } from "node:crypto";
import { cpus, totalmem } from "node:os";
import { DeliveryPipeline, encodeEvent } from "@streamll/core";
import amqp from "amqplib";
import { RabbitMQSink } from "../dist/index.js";

const url = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
const EVENTS = Number(process.env.BENCH_EVENTS ?? 5_000);
const PER_MESSAGE_EVENTS = Number(process.env.BENCH_PER_MESSAGE_EVENTS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
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
  const pipeline = new DeliveryPipeline(sink, {
    maxBatchSize: BATCH,
    maxQueueSize: encoded.length,
    flushIntervalMs: 5,
  });
  const started = performance.now();
  for (const event of encoded) pipeline.enqueue(event);
  const flushed = await pipeline.flush(120_000);
  const elapsed = performance.now() - started;
  const metrics = pipeline.getMetrics();
  await pipeline.shutdown(10_000);
  if (!flushed || metrics.delivered !== encoded.length || metrics.dropped !== 0) {
    throw new Error(`sink run incomplete: ${JSON.stringify(metrics)}`);
  }
  return elapsed;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const rate = (count, ms) => Math.round((count / ms) * 1000);

const connection = await amqp.connect(url);
const admin = await connection.createChannel();
await admin.assertExchange(exchange, "topic", { durable: true });
await admin.assertQueue(queue, { durable: true });
await admin.bindQueue(queue, exchange, "streamll.#");
const version = connection.connection.serverProperties.version;

try {
  const events = makeEvents(EVENTS);
  const perMessageEvents = events.slice(0, PER_MESSAGE_EVENTS);
  const averageBytes = Math.round(events.reduce((sum, e) => sum + e.bytes, 0) / events.length);
  // Warm-up: JIT, connection and channel setup, broker queue process.
  await rawBatched(connection, events);
  await sinkPipeline(events);
  await admin.purgeQueue(queue);

  const results = { raw: [], sink: [], perMessage: [], ratio: [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    const runRaw = async () => {
      results.raw.push(rate(EVENTS, await rawBatched(connection, events)));
      await admin.purgeQueue(queue);
    };
    const runSink = async () => {
      results.sink.push(rate(EVENTS, await sinkPipeline(events)));
      await admin.purgeQueue(queue);
    };
    if (round % 2 === 0) {
      await runRaw();
      await runSink();
    } else {
      await runSink();
      await runRaw();
    }
    results.ratio.push(results.sink[round] / results.raw[round]);
    results.perMessage.push(rate(PER_MESSAGE_EVENTS, await rawPerMessage(connection, perMessageEvents)));
    await admin.purgeQueue(queue);
  }

  const raw = median(results.raw);
  const sink = median(results.sink);
  const perMessage = median(results.perMessage);
  const ratio = median(results.ratio);
  const cpu = cpus();
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, RabbitMQ ${version} (same host)`,
  );
  console.log(
    `events: ${EVENTS} (${averageBytes} B average JSON) per round, ${PERSISTENT ? "persistent" : "transient"}, durable classic queue, ${ROUNDS} rounds, median`,
  );
  console.log(
    `raw amqplib, batches of ${BATCH} + waitForConfirms : ${raw} events/s  (rounds: ${results.raw.join(", ")})`,
  );
  console.log(
    `RabbitMQSink via DeliveryPipeline (512/batch)     : ${sink} events/s  (rounds: ${results.sink.join(", ")})`,
  );
  console.log(
    `raw amqplib, confirm awaited per message          : ${perMessage} events/s  (rounds: ${results.perMessage.join(", ")})`,
  );
  console.log(
    `sink / raw batched      : ${(ratio * 100).toFixed(1)}% median of per-round ratios (${results.ratio.map((r) => `${Math.round(r * 100)}%`).join(", ")}; target >= 90%)`,
  );
  console.log(
    `batched / per-message   : ${(raw / perMessage).toFixed(1)}x (raw), ${(sink / perMessage).toFixed(1)}x (sink)`,
  );
} finally {
  await admin.deleteQueue(queue).catch(() => {});
  await admin.deleteExchange(exchange).catch(() => {});
  await connection.close();
}
