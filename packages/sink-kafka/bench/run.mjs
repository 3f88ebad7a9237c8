// Benchmarks of the Kafka sink against the harness broker (scripts/kafka/kafka.sh start), on the built package
// (`pnpm build` first), with default delivery settings; results in bench/results/sink.json
// (test-support/bench-results.mjs). Three parts, all in one run:
//   1. throughput: a producer that enqueues 512 events per event-loop turn into KafkaSink through the real
//      DeliveryPipeline vs raw kafkajs `producer.sendBatch` of the same encoded events, with the same client
//      and producer settings (acks -1, no compression, batches of 512, one request in flight,
//      DefaultPartitioner, same key/value/headers). Rounds alternate the order; rates over all rounds.
//   2. overhead: sustained rounds of instrumented async calls delivering to KafkaSink against the bare call in
//      the same rounds (test-support/bench-calls.mjs), with drops.
//   3. memory held per queued event while the broker is unreachable (the pipeline's buffer);
//   4. event loop: 10,000 events/s for 10 s into KafkaSink, the event-loop delay p99 and max against the same
//      timer without streamll (test-support/bench-loop.mjs).
// Settings: BENCH_EVENTS (default 20000), BENCH_ROUNDS (5), BENCH_CALLS, BENCH_CALL_ROUNDS, BENCH_LOAD_S, KAFKA_BROKERS
// (default 127.0.0.1 on the harness port, STREAMLL_KAFKA_PLAINTEXT_PORT or 39092).
import { randomBytes } from "node:crypto";
import * as core from "@streamll/core";
import { DeliveryPipeline, encodeEvent } from "@streamll/core";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { heapAfterGc, SUSTAINED, sustainedCalls, yieldToLoop } from "../../../test-support/bench-calls.mjs";
import { LOAD, loopDelayUnderLoad } from "../../../test-support/bench-loop.mjs";
import { startBench } from "../../../test-support/bench-results.mjs";
import { KafkaSink, toKafkaMessage } from "../dist/index.js";

const brokers = (
  process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.STREAMLL_KAFKA_PLAINTEXT_PORT || 39092}`
).split(",");
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const bench = startBench(
  new URL("..", import.meta.url),
  "sink",
  "KafkaSink: throughput against raw kafkajs, per-call overhead, and memory per queued event",
);
const BATCH = 512;
const quiet = { warn: () => {}, error: () => {} };

const id = () => randomBytes(9).toString("base64url");
const topic = `streamll-bench-${id().replace(/[^A-Za-z0-9]/g, "x")}`;

function makeEvents(count) {
  const executions = Array.from({ length: 64 }, id);
  const spans = Array.from({ length: 64 }, id);
  return Array.from({ length: count }, (_, i) =>
    encodeEvent({
      schema_version: "1.0",
      event_id: id(),
      execution_id: executions[i % 64],
      span_id: spans[i % 64],
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: i % 2 ? "RAG" : "Summarizer",
      method_name: "forward",
      event_type: "token",
      operation: null,
      data: { field: "answer", token: ` token-${i}`, token_index: i, model: "gpt-4o-mini" },
      tags: { env: "bench", service: "qa-api" },
      module_version: "a1b2c3d4",
      code_signature: null,
      git_commit: null,
    }),
  );
}

// The sink's defaults, spelled out for the raw client.
const clientConfig = {
  clientId: "streamll",
  brokers,
  connectionTimeout: 3_000,
  authenticationTimeout: 10_000,
  requestTimeout: 30_000,
  retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
  logLevel: logLevel.NOTHING,
};

async function rawSendBatch(producer, encoded) {
  const started = performance.now();
  for (let offset = 0; offset < encoded.length; offset += BATCH) {
    await producer.sendBatch({
      topicMessages: [{ topic, messages: encoded.slice(offset, offset + BATCH).map(toKafkaMessage) }],
      acks: -1,
      timeout: 30_000,
      compression: 0,
    });
  }
  return performance.now() - started;
}

/** A busy producer: one batch's worth of events per event-loop turn; returns the time and the drops. */
async function sinkPipeline(pipeline, encoded) {
  const before = pipeline.getMetrics();
  const started = performance.now();
  for (let offset = 0; offset < encoded.length; offset += BATCH) {
    for (const event of encoded.slice(offset, offset + BATCH)) pipeline.enqueue(event);
    await yieldToLoop();
  }
  const flushed = await pipeline.flush(120_000);
  const elapsed = performance.now() - started;
  const metrics = pipeline.getMetrics();
  if (!flushed) throw new Error(`sink run did not drain: ${JSON.stringify(metrics)}`);
  return {
    ms: elapsed,
    delivered: metrics.delivered - before.delivered,
    dropped: metrics.dropped - before.dropped,
  };
}

const kafka = new Kafka(clientConfig);
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({
  waitForLeaders: true,
  topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
});
console.log("streamll sink-kafka bench — Kafka harness broker on the same host, topic with 3 partitions");

const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner,
  metadataMaxAge: 180_000,
  retry: clientConfig.retry,
});
await producer.connect();
const sink = new KafkaSink({ brokers, topic, logger: quiet });
const pipeline = new DeliveryPipeline(sink, {}, { logger: quiet });

try {
  // 1. Throughput.
  const events = makeEvents(EVENTS);
  const averageBytes = events.reduce((sum, e) => sum + e.bytes, 0) / events.length;
  await rawSendBatch(producer, events); // warm-up: JIT, connections, metadata
  await sinkPipeline(pipeline, events);
  const total = { raw: 0, sink: 0, delivered: 0, dropped: 0 };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const side of round % 2 === 0 ? ["raw", "sink"] : ["sink", "raw"]) {
      if (side === "raw") total.raw += await rawSendBatch(producer, events);
      else {
        const run = await sinkPipeline(pipeline, events);
        total.sink += run.ms;
        total.delivered += run.delivered;
        total.dropped += run.dropped;
      }
    }
  }
  const rawRate = (EVENTS * ROUNDS * 1000) / total.raw;
  const sinkRate = (total.delivered * 1000) / total.sink;
  bench.merge("throughput", {
    event: { json_bytes: averageBytes },
    raw_send_batch: { events_per_s: rawRate },
    sink: { events_per_s: sinkRate, vs_raw_pct: (sinkRate / rawRate) * 100, dropped: total.dropped },
  });
  console.log(
    `throughput: ${EVENTS} events (${averageBytes.toFixed(0)} B average JSON) per round, acks -1, no compression, ${ROUNDS} rounds`,
  );
  console.log(`  raw kafkajs sendBatch x${BATCH}      : ${Math.round(rawRate)} events/s`);
  console.log(
    `  KafkaSink + DeliveryPipeline   : ${Math.round(sinkRate)} events/s (${((sinkRate / rawRate) * 100).toFixed(1)}% of raw; target >= 90%), ${total.dropped} dropped`,
  );
  await pipeline.shutdown(10_000);
  await producer.disconnect();

  // 2. Overhead per instrumented call, sustained.
  console.log(
    `overhead: ${SUSTAINED.rounds} rounds of ${SUSTAINED.calls} instrumented calls against the bare call`,
  );
  const overhead = await sustainedCalls(
    core,
    [
      {
        key: "kafka",
        // Connected before the round (one event sent), as the other sinks are: the round measures calls.
        sink: async () => {
          const connected = new KafkaSink({ brokers, topic, logger: quiet });
          await connected.send(makeEvents(1), { signal: AbortSignal.timeout(30_000), attempt: 1 });
          return connected;
        },
      },
    ],
    { log: (line) => console.log(`  ${line}`) },
  );
  bench.merge("call", overhead);

  // 3. Memory per queued event while the broker is unreachable.
  const unreachable = new KafkaSink({
    brokers: ["127.0.0.1:1"],
    topic,
    connectionTimeoutMs: 200,
    logger: quiet,
  });
  const sizes = [1_000, 10_000];
  for (const size of sizes) {
    const buffer = new DeliveryPipeline(
      unreachable,
      { maxQueueSize: size, flushIntervalMs: 60_000, maxBatchSize: size },
      { logger: quiet },
    );
    const before = heapAfterGc();
    // The events exist only in the queue from here on, as they would in a running app.
    for (const event of makeEvents(size)) buffer.enqueue(event);
    const after = heapAfterGc();
    const bytesPerEvent = (after - before) / size;
    bench.merge("memory", {
      [`queued_${size}`]: { held_bytes: bytesPerEvent, held_mib: (bytesPerEvent * size) / 2 ** 20 },
    });
    console.log(
      `memory held by the buffer while Kafka is down: ${size} events of ${averageBytes.toFixed(0)} B JSON -> ${bytesPerEvent.toFixed(0)} B/event`,
    );
    await buffer.shutdown(0);
  }
  await unreachable.close();

  // 4. The event loop while 10,000 events/s go to Kafka.
  console.log(
    `\nevent loop: ${LOAD.rate} events/s for ${LOAD.seconds} s into KafkaSink, delay sampled every 1 ms`,
  );
  const loop = await loopDelayUnderLoad({
    core,
    sink: new KafkaSink({ brokers, topic, logger: quiet }),
    logger: quiet,
    log: (line) => console.log(`  ${line}`),
  });
  // The same with batches of 64: kafkajs encodes a request on the event loop, and a batch is one request.
  console.log(`event loop, maxBatchSize 64:`);
  const small = await loopDelayUnderLoad({
    core,
    sink: new KafkaSink({ brokers, topic, logger: quiet }),
    delivery: { maxBatchSize: 64 },
    logger: quiet,
    log: (line) => console.log(`  ${line}`),
  });
  bench.merge("loop_delay", {
    baseline: loop.baseline,
    kafka_10k_per_s: loop.loaded,
    kafka_10k_per_s_batch_64: { ...small.loaded, baseline_p99_ms: small.baseline.p99_ms },
  });
  bench.merge("settings", {
    throughput: { events: EVENTS, rounds: ROUNDS, batch: BATCH },
    calls: { per_round: SUSTAINED.calls, rounds: SUSTAINED.rounds },
    load: { events_per_s: LOAD.rate, seconds: LOAD.seconds },
  });
  bench.write();
} finally {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
}
