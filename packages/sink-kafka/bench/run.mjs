// Benchmarks of the Kafka sink against the harness broker (scripts/kafka/kafka.sh start), on the built package
// (`pnpm build` first). Three parts, all in one run:
//   1. throughput: KafkaSink through the real DeliveryPipeline vs raw kafkajs `producer.sendBatch` of the same
//      encoded events, with the same client and producer settings (acks -1, no compression, batches of 512,
//      one request in flight, DefaultPartitioner, same key/value/headers). Rounds alternate the order; medians.
//   2. overhead added to an instrumented async call with the Kafka sink attached (events delivered in the
//      background), against the same function uninstrumented and with streaming disabled.
//   3. memory held per queued event while the broker is unreachable (the pipeline's buffer).
// Settings: BENCH_EVENTS (default 20000), BENCH_ROUNDS (7), BENCH_CALLS (20000), KAFKA_BROKERS
// (default 127.0.0.1:39092).
import { randomBytes } from "node:crypto";
import { cpus, totalmem } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  configure,
  DeliveryPipeline,
  encodeEvent,
  flush,
  getMetrics,
  instrument,
  shutdown,
} from "@streamll/core";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { KafkaSink, toKafkaMessage } from "../dist/index.js";

const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:39092").split(",");
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CALLS = Number(process.env.BENCH_CALLS ?? 20_000);
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

async function sinkPipeline(pipeline, encoded) {
  const before = pipeline.getMetrics().delivered;
  const started = performance.now();
  for (const event of encoded) pipeline.enqueue(event);
  const flushed = await pipeline.flush(120_000);
  const elapsed = performance.now() - started;
  const metrics = pipeline.getMetrics();
  if (!flushed || metrics.delivered - before !== encoded.length || metrics.dropped !== 0) {
    throw new Error(`sink run incomplete: ${JSON.stringify(metrics)}`);
  }
  return elapsed;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const rate = (count, ms) => Math.round((count / ms) * 1000);

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
function heapAfterGc() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const kafka = new Kafka(clientConfig);
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({
  waitForLeaders: true,
  topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
});
const cpu = cpus();
console.log(
  `machine: ${cpu.length} x ${cpu[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Kafka harness broker on the same host, topic with 3 partitions`,
);

const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner,
  metadataMaxAge: 180_000,
  retry: clientConfig.retry,
});
await producer.connect();
const sink = new KafkaSink({ brokers, topic, logger: quiet });
const pipeline = new DeliveryPipeline(
  sink,
  { maxBatchSize: BATCH, maxQueueSize: EVENTS, flushIntervalMs: 5 },
  { logger: quiet },
);

try {
  // 1. Throughput.
  const events = makeEvents(EVENTS);
  const averageBytes = Math.round(events.reduce((sum, e) => sum + e.bytes, 0) / events.length);
  await rawSendBatch(producer, events); // warm-up: JIT, connections, metadata
  await sinkPipeline(pipeline, events);
  const results = { raw: [], sink: [], ratio: [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    const runRaw = async () => results.raw.push(rate(EVENTS, await rawSendBatch(producer, events)));
    const runSink = async () => results.sink.push(rate(EVENTS, await sinkPipeline(pipeline, events)));
    if (round % 2 === 0) {
      await runRaw();
      await runSink();
    } else {
      await runSink();
      await runRaw();
    }
    results.ratio.push(results.sink[round] / results.raw[round]);
  }
  console.log(
    `throughput: ${EVENTS} events (${averageBytes} B average JSON) per round, acks -1, no compression, ${ROUNDS} rounds, median`,
  );
  console.log(
    `  raw kafkajs sendBatch x${BATCH}      : ${median(results.raw)} events/s  (rounds: ${results.raw.join(", ")})`,
  );
  console.log(
    `  KafkaSink + DeliveryPipeline   : ${median(results.sink)} events/s  (rounds: ${results.sink.join(", ")})`,
  );
  console.log(
    `  sink / raw                     : ${(median(results.ratio) * 100).toFixed(1)}% (median of per-round ratios; target >= 90%)`,
  );
  await pipeline.shutdown(10_000);
  await producer.disconnect();

  // 2. Overhead per instrumented call.
  async function answer(question) {
    return `answer to ${question}`;
  }
  const timeCalls = async (fn) => {
    for (let i = 0; i < 2_000; i += 1) await fn(`warm-up ${i}`);
    const started = performance.now();
    for (let i = 0; i < CALLS; i += 1) await fn(`question ${i}`);
    return ((performance.now() - started) * 1_000) / CALLS;
  };
  const plainUs = median([await timeCalls(answer), await timeCalls(answer), await timeCalls(answer)]);
  configure({ enabled: false, logger: quiet });
  const disabled = instrument(answer, { name: "QA" });
  const disabledUs = median([
    await timeCalls(disabled),
    await timeCalls(disabled),
    await timeCalls(disabled),
  ]);
  const kafkaSink = new KafkaSink({ brokers, topic, logger: quiet });
  configure({ sinks: [{ sink: kafkaSink, delivery: { maxQueueSize: 2 * (CALLS + 2_000) } }], logger: quiet });
  const instrumented = instrument(answer, { name: "QA" });
  const instrumentedRuns = [];
  let drained = true;
  for (let run = 0; run < 3; run += 1) {
    instrumentedRuns.push(await timeCalls(instrumented));
    // Drain between runs so every run starts with an empty buffer and nothing is dropped.
    drained = (await flush(60_000)) && drained;
  }
  const instrumentedUs = median(instrumentedRuns);
  const [metrics] = getMetrics();
  await shutdown(10_000);
  console.log(`overhead per call (${CALLS} sequential awaited calls of an async function, median of 3):`);
  console.log(`  uninstrumented                  : ${plainUs.toFixed(2)} us/call`);
  console.log(
    `  instrumented, streaming disabled: ${disabledUs.toFixed(2)} us/call (+${(disabledUs - plainUs).toFixed(2)} us)`,
  );
  console.log(
    `  instrumented, Kafka sink        : ${instrumentedUs.toFixed(2)} us/call (+${(instrumentedUs - plainUs).toFixed(2)} us); ${metrics.delivered}/${metrics.emitted} events delivered, ${metrics.dropped} dropped${drained ? "" : " (flush timed out)"}`,
  );

  // 3. Memory per queued event while the broker is unreachable.
  const unreachable = new KafkaSink({
    brokers: ["127.0.0.1:1"],
    topic,
    connectionTimeoutMs: 200,
    logger: quiet,
  });
  const sizes = [1_000, 10_000];
  const memory = [];
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
    memory.push({ size, bytesPerEvent: Math.round((after - before) / size) });
    await buffer.shutdown(0);
  }
  await unreachable.close();
  console.log(
    `memory held by the buffer while Kafka is down (events of ${averageBytes} B JSON): ${memory
      .map(
        (m) =>
          `${m.size} events -> ${((m.bytesPerEvent * m.size) / 2 ** 20).toFixed(1)} MiB (${m.bytesPerEvent} B/event)`,
      )
      .join("; ")}`,
  );
} finally {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
}
