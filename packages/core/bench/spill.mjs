// Disk spill benchmark: `node --expose-gc bench/spill.mjs` (after `pnpm --filter @streamll/core build`).
// 1. Caller-side cost of `enqueue()` with the spill active (circuit open: every event is handed to the disk
//    writer) against the same pipeline without a spill (circuit open: every event waits in, or is evicted from,
//    the memory queue), and with a spill configured but idle (sink up). Interleaved chunks of 1,000 events
//    with a turn of the event loop between them, so the writer's batches run between the timed chunks, as
//    they do between the bursts of a real program. Target: active no more than +0.3 µs per event.
// 2. Throughput: live delivery (queue to an in-memory sink) against replay (written to segment files while
//    the sink is down, then read back and delivered with `replayRate` unlimited): what the disk path costs
//    when a backlog drains as fast as the machine allows.
// Results: bench/results/spill.json (the shared writer, test-support/bench-results.mjs).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startBench } from "../../../test-support/bench-results.mjs";
import { collectGarbage, formatNs, median, yieldToLoop } from "./harness.mjs";

const core = await import("../dist/index.js");
const bench = startBench(
  new URL("..", import.meta.url),
  "spill",
  "disk spill: caller-side cost and replay throughput",
);
const quiet = { logger: { warn() {} } };
const pad = "x".repeat(220);

function event(i) {
  return core.encodeEvent({
    schema_version: core.SCHEMA_VERSION,
    event_id: core.createId(),
    execution_id: "exec-bench",
    span_id: "span-bench",
    parent_span_id: null,
    timestamp: new Date().toISOString(),
    module_name: "BenchModule",
    method_name: "forward",
    event_type: "tick",
    operation: null,
    module_version: null,
    code_signature: null,
    git_commit: null,
    data: { seq: i, pad },
    tags: {},
  });
}

const down = {
  name: "down",
  send: async () => {
    throw new core.SinkError("down", { retriable: true });
  },
  close: async () => {},
};
const up = { name: "up", send: async () => {}, close: async () => {} };
const openCircuit = {
  circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 3_600_000 },
  flushIntervalMs: 1,
};

async function openBreaker(pipeline) {
  pipeline.enqueue(event(-1));
  while (pipeline.getMetrics().breakerState !== "open") await new Promise((r) => setTimeout(r, 5));
}

const dirs = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "streamll-spill-bench-"));
  dirs.push(dir);
  return dir;
};

// 1. Caller-side cost.
const CHUNK = 1_000;
const events = Array.from({ length: CHUNK }, (_, i) => event(i));
const inactive = new core.DeliveryPipeline(down, openCircuit, quiet);
const active = new core.DeliveryPipeline(
  down,
  { ...openCircuit, spill: { directory: tempDir(), maxBytes: 64 * 1024 ** 3 } },
  quiet,
);
const idle = new core.DeliveryPipeline(up, { spill: { directory: tempDir() } }, quiet);
const plain = new core.DeliveryPipeline(up, {}, quiet);
await openBreaker(inactive);
await openBreaker(active);

async function chunkCost(pipeline) {
  await yieldToLoop();
  const start = performance.now();
  for (let i = 0; i < CHUNK; i++) pipeline.enqueue(events[i]);
  return ((performance.now() - start) * 1e6) / CHUNK;
}

const variants = { inactive, active, plain, idle };
const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < 400; round++) {
  if (round % 50 === 0) collectGarbage();
  for (const [name, pipeline] of Object.entries(variants)) {
    const ns = await chunkCost(pipeline);
    if (round >= 50) samples[name].push(ns);
  }
  // Untimed: the disk writer catches up, as it does between a real program's bursts, so every timed chunk
  // hands its events to the writer (none is refused because the writer's buffer is full).
  while (active.getMetrics().spill.buffered > 0) await new Promise((r) => setTimeout(r, 1));
}
const cost = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const extraUs = (cost.active - cost.inactive) / 1_000;
bench.set("caller.spill_off_circuit_open.enqueue_ns", cost.inactive);
bench.set("caller.spill_active_circuit_open.enqueue_ns", cost.active);
bench.set("caller.spill_off_sink_up.enqueue_ns", cost.plain);
bench.set("caller.spill_idle_sink_up.enqueue_ns", cost.idle);
bench.set("caller.spill_active_vs_off.extra_us", extraUs);
bench.set("caller.spill_active_vs_off.target_us", 0.3);
const activeMetrics = active.getMetrics();
bench.set("caller.spill_active_circuit_open.spilled", activeMetrics.spilled);
console.log(
  `enqueue, circuit open: spill off ${formatNs(cost.inactive)}, spill active ${formatNs(cost.active)} (${extraUs >= 0 ? "+" : ""}${extraUs.toFixed(3)} µs/event, target ≤ +0.3 µs)`,
);
console.log(`enqueue, sink up: spill off ${formatNs(cost.plain)}, spill configured ${formatNs(cost.idle)}`);
bench.set("caller.spill_active_circuit_open.dropped", activeMetrics.dropped);
console.log(`spill active wrote ${activeMetrics.spilled} events, dropped ${activeMetrics.dropped}`);
await Promise.all([inactive, active, idle, plain].map((p) => p.shutdown(1_000)));

// 2. Throughput.
const N = 200_000;
const many = Array.from({ length: N }, (_, i) => event(i));

async function liveThroughput() {
  const sink = {
    name: "mem",
    delivered: 0,
    async send(batch) {
      this.delivered += batch.length;
    },
    async close() {},
  };
  const pipeline = new core.DeliveryPipeline(sink, { maxQueueSize: N + 1, maxQueueBytes: 1024 ** 3 }, quiet);
  collectGarbage();
  const start = performance.now();
  for (let i = 0; i < N; i += CHUNK) {
    for (let j = i; j < i + CHUNK; j++) pipeline.enqueue(many[j]);
    await yieldToLoop();
  }
  await pipeline.flush(600_000);
  const seconds = (performance.now() - start) / 1_000;
  await pipeline.shutdown(1_000);
  return N / seconds;
}

async function replayThroughput() {
  const sink = {
    name: "mem",
    up: false,
    delivered: 0,
    async send(batch) {
      if (!this.up) throw new core.SinkError("down", { retriable: true });
      this.delivered += batch.length;
    },
    async close() {},
  };
  const pipeline = new core.DeliveryPipeline(
    sink,
    {
      ...openCircuit,
      circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 50 },
      spill: { directory: tempDir(), replayRate: 1e9, maxBytes: 8 * 1024 ** 3 },
    },
    quiet,
  );
  await openBreaker(pipeline);
  const writeStart = performance.now();
  for (let i = 0; i < N; i += CHUNK) {
    for (let j = i; j < i + CHUNK; j++) pipeline.enqueue(many[j]);
    // At most 4 chunks ahead of the writer: what is measured is the writer, not its buffer's overflow.
    while (pipeline.getMetrics().spill.buffered > 4 * CHUNK) await new Promise((r) => setTimeout(r, 1));
    await yieldToLoop();
  }
  while (pipeline.getMetrics().spill.buffered > 0) await new Promise((r) => setTimeout(r, 1));
  const writeSeconds = (performance.now() - writeStart) / 1_000;
  const writeDone = pipeline.getMetrics();
  collectGarbage();
  sink.up = true;
  const start = performance.now();
  await pipeline.flush(600_000);
  const seconds = (performance.now() - start) / 1_000;
  const m = pipeline.getMetrics();
  await pipeline.shutdown(1_000);
  return {
    perSecond: m.delivered / seconds,
    writePerSecond: writeDone.spilled / writeSeconds,
    dropped: m.dropped,
    reasons: JSON.stringify(m.droppedByReason),
  };
}

const live = [];
const replay = [];
const write = [];
for (let i = 0; i < 3; i++) {
  live.push(await liveThroughput());
  const r = await replayThroughput();
  replay.push(r.perSecond);
  write.push(r.writePerSecond);
  if (r.dropped > 0) throw new Error(`the replay run dropped ${r.dropped} events: ${r.reasons}`);
}
bench.set("throughput.spill_write.events_per_s", median(write));
console.log(`spill writes ${Math.round(median(write))} events/s`);
const liveRate = median(live);
const replayRate = median(replay);
bench.set("throughput.live.events_per_s", liveRate);
bench.set("throughput.replay_unlimited.events_per_s", replayRate);
bench.set("throughput.replay_vs_live.ratio", replayRate / liveRate);
bench.set("throughput.replay_default_rate.events_per_s", core.DEFAULT_SPILL_OPTIONS.replayRate);
bench.set("throughput.events", N);
bench.set("throughput.event_bytes", many[0].bytes);
console.log(
  `live delivery ${Math.round(liveRate)} events/s, replay from disk ${Math.round(replayRate)} events/s (${(replayRate / liveRate).toFixed(2)}×), ${many[0].bytes} B events`,
);
console.log(`results: ${bench.write()}`);
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
