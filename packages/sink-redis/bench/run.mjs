// RedisSink throughput through the real DeliveryPipeline, compared in the same run with
//   1. raw ioredis: the same encoded events, pipelined XADD per batch of 512 (the ceiling for any sink), and
//   2. one awaited XADD per event (what a naive per-event writer does), on a 3,000-event sample per round.
// Usage: pnpm --filter @streamll/sink-redis bench   (REDIS_URL, BENCH_EVENTS to override). Needs `pnpm build`.
import { randomBytes } from "node:crypto";
import { cpus, totalmem } from "node:os";
import { DeliveryPipeline, encodeEvent, SCHEMA_VERSION } from "@streamll/core";
import { Redis } from "ioredis";
import { DEFAULT_MAX_LEN, RedisSink } from "../dist/index.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const PER_EVENT_SAMPLE = Math.min(EVENTS, 3_000);
const BATCH = 512; // the pipeline's default maxBatchSize
// The machine is shared (2 vCPU, Redis on the same host): alternate many rounds and compare per-round ratios,
// so a busy moment slows both sides of the same round.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);

const id = () => randomBytes(9).toString("base64url");

function makeEvents(count) {
  const executionId = id();
  return Array.from({ length: count }, (_, seq) =>
    encodeEvent({
      schema_version: SCHEMA_VERSION,
      event_id: id(),
      execution_id: executionId,
      span_id: id(),
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: "RetrieveThenAnswer",
      method_name: "forward",
      event_type: seq % 10 === 0 ? "start" : "token",
      operation: null,
      data: { seq, token: "lorem ipsum dolor sit amet ".repeat(6), field: "answer", index: seq },
      tags: { service: "bench", env: "local" },
      module_version: null,
      code_signature: null,
      git_commit: null,
    }),
  );
}

const streamName = (mode) => `streamll-bench:${mode}:${id()}`;

async function rawPipelined(client, events) {
  const stream = streamName("raw");
  const started = performance.now();
  for (let offset = 0; offset < events.length; offset += BATCH) {
    const pipeline = client.pipeline();
    for (const event of events.slice(offset, offset + BATCH)) {
      pipeline.xadd(stream, "MAXLEN", "~", String(DEFAULT_MAX_LEN), "*", "event", event.json);
    }
    const replies = await pipeline.exec();
    if (replies?.some(([error]) => error)) throw new Error("raw XADD failed");
  }
  const ms = performance.now() - started;
  await client.del(stream);
  return ms;
}

async function throughSink(client, events) {
  const stream = streamName("sink");
  const sink = new RedisSink({ url: REDIS_URL, stream });
  const pipeline = new DeliveryPipeline(sink, {
    maxQueueSize: events.length,
    maxQueueBytes: 512 * 1024 * 1024,
    maxBatchSize: BATCH,
  });
  // Connect outside the timed region, as the raw client is connected too.
  await sink.client.connect();
  const started = performance.now();
  for (const event of events) pipeline.enqueue(event);
  const done = await pipeline.flush(120_000);
  const ms = performance.now() - started;
  const metrics = pipeline.getMetrics();
  if (!done || metrics.delivered !== events.length) throw new Error(`sink delivered ${metrics.delivered}`);
  await pipeline.shutdown(10_000);
  const length = await client.xlen(stream);
  await client.del(stream);
  if (length !== events.length) throw new Error(`stream holds ${length}`);
  return ms;
}

async function perEvent(client, events) {
  const stream = streamName("per-event");
  const started = performance.now();
  for (const event of events) {
    await client.xadd(stream, "MAXLEN", "~", String(DEFAULT_MAX_LEN), "*", "event", event.json);
  }
  const ms = performance.now() - started;
  await client.del(stream);
  return ms;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const rate = (count, ms) => Math.round((count / ms) * 1000);
const fmt = (n) => n.toLocaleString("en-US");

const client = new Redis(REDIS_URL);
const info = await client.info("server");
const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
const events = makeEvents(EVENTS);
const avgBytes = Math.round(events.reduce((sum, e) => sum + e.bytes, 0) / events.length);

console.log(`streamll sink-redis bench — ${fmt(EVENTS)} events of ~${avgBytes} B, batches of ${BATCH}`);
console.log(
  `machine: ${cpus().length} vCPU (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `Node ${process.version}, Redis ${redisVersion} on ${REDIS_URL}`,
);

// Warm-up: JIT, connection, stream creation paths.
const warm = events.slice(0, 2_000);
await rawPipelined(client, warm);
await throughSink(client, warm);

const raw = [];
const sink = [];
const singles = [];
for (let round = 0; round < ROUNDS; round++) {
  // Alternate so no mode profits from a quieter moment on a shared machine.
  raw.push(await rawPipelined(client, events));
  sink.push(await throughSink(client, events));
  singles.push(await perEvent(client, events.slice(0, PER_EVENT_SAMPLE)));
}
const single = median(singles);

const rawRate = rate(EVENTS, median(raw));
const sinkRate = rate(EVENTS, median(sink));
const singleRate = rate(PER_EVENT_SAMPLE, single);
const ratios = raw.map((rawMs, i) => (rawMs / sink[i]) * 100);
const ratio = median(ratios);

console.log("");
console.log(`| mode | events/s (median of ${ROUNDS} rounds) |`);
console.log("|---|---:|");
console.log(`| raw ioredis, pipelined XADD per ${BATCH} events | ${fmt(rawRate)} |`);
console.log(`| RedisSink through DeliveryPipeline | ${fmt(sinkRate)} |`);
console.log(
  `| one awaited XADD per event (${fmt(PER_EVENT_SAMPLE)} events per round) | ${fmt(singleRate)} |`,
);
console.log("");
console.log(
  `RedisSink / raw pipelined: ${ratio.toFixed(1)}% (median of per-round ratios; rounds ranged ` +
    `${Math.min(...ratios).toFixed(1)}%..${Math.max(...ratios).toFixed(1)}%; target >= 90%) ` +
    `${ratio >= 90 ? "OK" : "BELOW TARGET"}`,
);
console.log(`RedisSink / one XADD per event: ${(sinkRate / singleRate).toFixed(1)}x`);
console.log(`raw pipelined / one XADD per event: ${(rawRate / singleRate).toFixed(1)}x`);

client.disconnect();
