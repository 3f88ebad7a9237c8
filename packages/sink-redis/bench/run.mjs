// RedisSink against the real Redis, on the built package (`pnpm build` first), all with default delivery
// settings and every drop printed and stored (bench/results/sink.json, test-support/bench-results.mjs):
//   1. throughput: a producer that enqueues 512 events per event-loop turn into RedisSink through the
//      DeliveryPipeline, against raw ioredis pipelining the same events' XADDs in batches of 512 (the ceiling
//      for any sink) and one awaited XADD per event (a naive writer, on a 3,000-event sample); rounds
//      interleaved, rates over all rounds (events / total time);
//   2. overhead: sustained rounds of instrumented async calls delivering to RedisSink, against the bare call
//      in the same rounds (test-support/bench-calls.mjs);
//   3. event loop: 10,000 events/s emitted for 10 s into RedisSink, event-loop delay p99 and max
//      (perf_hooks.monitorEventLoopDelay) against the same timer without streamll, and the longest stretch one
//      send held the loop (its synchronous part, and each pipeline's build and write), beside two controls
//      without streamll: raw ioredis writing the same rate in the same pipelines (its own window), and a fixed
//      0.1 ms of the same kind of work run in the baseline and the loaded windows.
// Settings: REDIS_URL, BENCH_EVENTS (20000), BENCH_ROUNDS (5), BENCH_CALLS, BENCH_CALL_ROUNDS, BENCH_LOAD_S (10).
import { randomBytes } from "node:crypto";
import { PerformanceObserver, performance } from "node:perf_hooks";
import * as core from "@streamll/core";
import { DeliveryPipeline, encodeEvent, SCHEMA_VERSION } from "@streamll/core";
import { Redis } from "ioredis";
import { SUSTAINED, sustainedCalls, yieldToLoop } from "../../../test-support/bench-calls.mjs";
import { emitLoad, LOAD, loadWindow } from "../../../test-support/bench-loop.mjs";
import { startBench } from "../../../test-support/bench-results.mjs";
import { DEFAULT_MAX_LEN, RedisSink } from "../dist/index.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_EVENT_SAMPLE = Math.min(EVENTS, 3_000);
const BATCH = 512; // the pipeline's default maxBatchSize

const bench = startBench(
  new URL("..", import.meta.url),
  "sink",
  "RedisSink: throughput against raw ioredis, per-call overhead, and event-loop delay at 10,000 events/s",
);
const id = () => randomBytes(9).toString("base64url");
const log = (line) => console.log(`  ${line}`);
const fmt = (n) => Math.round(n).toLocaleString("en-US");
// Drops are counted and reported by the bench; the pipeline's own warnings would only repeat them.
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

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

const streams = [];
const streamName = (mode) => {
  const name = `streamll-bench:${mode}:${id()}`;
  streams.push(name);
  return name;
};

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
  const pipeline = new DeliveryPipeline(sink, {}, { logger: quiet });
  // Connect outside the timed region, as the raw client is connected too.
  await sink.client.connect();
  const started = performance.now();
  // A busy producer: one batch's worth of events per event-loop turn.
  for (let offset = 0; offset < events.length; offset += BATCH) {
    for (const event of events.slice(offset, offset + BATCH)) pipeline.enqueue(event);
    await yieldToLoop();
  }
  const done = await pipeline.flush(120_000);
  const ms = performance.now() - started;
  const metrics = pipeline.getMetrics();
  if (!done) throw new Error(`sink did not drain: ${JSON.stringify(metrics)}`);
  await pipeline.shutdown(10_000);
  await client.del(stream);
  return { ms, delivered: metrics.delivered, dropped: metrics.dropped };
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

async function throughput(client) {
  const events = makeEvents(EVENTS);
  const avgBytes = events.reduce((sum, e) => sum + e.bytes, 0) / events.length;
  // Warm-up: JIT, connection, stream creation paths.
  await rawPipelined(client, events.slice(0, 2_000));
  await throughSink(client, events.slice(0, 2_000));
  const total = { raw: 0, sink: 0, single: 0, delivered: 0, dropped: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const sides = round % 2 === 0 ? ["raw", "sink"] : ["sink", "raw"];
    for (const side of sides) {
      if (side === "raw") total.raw += await rawPipelined(client, events);
      else {
        const run = await throughSink(client, events);
        total.sink += run.ms;
        total.delivered += run.delivered;
        total.dropped += run.dropped;
      }
    }
    total.single += await perEvent(client, events.slice(0, PER_EVENT_SAMPLE));
  }
  const raw = (EVENTS * ROUNDS * 1000) / total.raw;
  const sink = (total.delivered * 1000) / total.sink;
  const single = (PER_EVENT_SAMPLE * ROUNDS * 1000) / total.single;
  bench.set("throughput.event.json_bytes", avgBytes);
  bench.set("throughput.raw_pipelined.events_per_s", raw);
  bench.set("throughput.sink.events_per_s", sink);
  bench.set("throughput.sink.vs_raw_pct", (sink / raw) * 100);
  bench.set("throughput.sink.dropped", total.dropped);
  bench.set("throughput.per_event_xadd.events_per_s", single);
  bench.set("throughput.sink.vs_per_event_ratio", sink / single);
  console.log(`\nthroughput: ${fmt(EVENTS)} events of ~${avgBytes.toFixed(0)} B per round, ${ROUNDS} rounds`);
  log(`raw ioredis, pipelined XADD per ${BATCH}: ${fmt(raw)} events/s`);
  log(
    `RedisSink through DeliveryPipeline:    ${fmt(sink)} events/s (${((sink / raw) * 100).toFixed(1)}% of raw; target >= 90%); ${total.dropped} dropped`,
  );
  log(`one awaited XADD per event:            ${fmt(single)} events/s (sink ${(sink / single).toFixed(1)}×)`);
}

async function overhead() {
  console.log(
    `\noverhead: ${SUSTAINED.rounds} rounds of ${SUSTAINED.calls} instrumented calls against the bare call`,
  );
  let n = 0;
  const r = await sustainedCalls(
    core,
    [
      {
        key: "redis",
        sink: async () => {
          const sink = new RedisSink({ url: REDIS_URL, stream: streamName(`calls-${n++}`) });
          await sink.client.connect();
          return sink;
        },
      },
    ],
    { log },
  );
  bench.merge("call", r);
}

/** XADDs per pipeline chunk: PIPELINE_CHUNK_SIZE in src/redis-sink.ts (internal, not exported). */
const PIPELINE_CHUNK_SIZE = 16;
/** Stretches of this length are what one pipeline chunk is built to take (src/redis-sink.ts). */
const CONTROL_STRETCH_MS = 0.1;

/**
 * A control for the send stretches: the same kind of work (RESP-encoding a chunk of XADDs of an ordinary event
 * into one Buffer, as a pipeline's write does) repeated to take CONTROL_STRETCH_MS, run by code that is not
 * streamll. Its tail in a window is how far this machine stretches a fixed 0.1 ms of work there (a core taken
 * by another process, V8's compiler and GC threads): the part of a send stretch's tail that is not the send's.
 */
function controlStretch() {
  const key = streamName("control");
  const json = makeEvents(1)[0].json;
  const bulk = (text) => `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
  const encodeChunk = () => {
    let resp = "";
    for (let i = 0; i < PIPELINE_CHUNK_SIZE; i++) {
      resp += `*9\r\n${bulk("XADD")}${bulk(key)}${bulk("MAXLEN")}${bulk("~")}${bulk(String(DEFAULT_MAX_LEN))}`;
      resp += `${bulk("*")}${bulk("event")}${bulk(`${json} ${i}`)}`;
    }
    return Buffer.from(resp).length;
  };
  const timeReps = (reps) => {
    const started = performance.now();
    let bytes = 0;
    for (let r = 0; r < reps; r++) bytes += encodeChunk();
    return { ms: performance.now() - started, bytes };
  };
  for (let i = 0; i < 500; i++) timeReps(1); // warm-up: calibrate the optimised code
  const once = [];
  for (let i = 0; i < 500; i++) once.push(timeReps(1).ms);
  once.sort((a, b) => a - b);
  const reps = Math.max(1, Math.round(CONTROL_STRETCH_MS / (once[once.length >> 1] || CONTROL_STRETCH_MS)));
  return {
    reps,
    /** Runs one control stretch, recording its time in `samples`. */
    run(samples) {
      samples.push(timeReps(reps).ms);
    },
  };
}

/** p50, p99 and max of `samples` (ms), and how many exceed 1 ms. */
function tail(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
  return {
    count: sorted.length,
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    max_ms: sorted.at(-1) ?? 0,
    over_1ms: sorted.filter((ms) => ms > 1).length,
  };
}

/**
 * The same load without streamll: raw ioredis writing as many ordinary events per second, each timer tick's
 * events as pipelines of PIPELINE_CHUNK_SIZE XADDs one event-loop turn apart, as the sink writes a batch. Its
 * pipeline stretches (build and exec(), timed as the sink's are) are what writing through ioredis to this
 * Redis on this machine costs any code, the floor for the sink's.
 */
async function rawLoadWindow(client) {
  const stream = streamName("raw-load");
  const events = makeEvents(1_000).map((event) => event.json);
  const stretches = [];
  const pending = [];
  let next = 0;
  const writeChunks = async (due) => {
    for (let start = 0; start < due; start += PIPELINE_CHUNK_SIZE) {
      if (start > 0) await yieldToLoop();
      const started = performance.now();
      const pipeline = client.pipeline();
      const end = Math.min(due, start + PIPELINE_CHUNK_SIZE);
      for (let i = start; i < end; i++) {
        const json = events[next++ % events.length];
        pipeline.xadd(stream, "MAXLEN", "~", String(DEFAULT_MAX_LEN), "*", "event", json);
      }
      pending.push(pipeline.exec());
      stretches.push(performance.now() - started);
    }
  };
  const window = await loadWindow(LOAD.seconds, (due) => {
    pending.push(writeChunks(due));
  });
  await Promise.all(pending);
  return { window, stretches };
}

async function eventLoop(client) {
  console.log(`\nevent loop: ${fmt(LOAD.rate)} events/s for ${LOAD.seconds} s, delay sampled every 1 ms`);
  const control = controlStretch();
  const controlSamples = { baseline: [], loaded: [] };
  // The timer of both windows runs one control stretch per tick (every 10 ms), after its own work.
  const baseline = await loadWindow(LOAD.seconds, () => control.run(controlSamples.baseline));
  log(
    `baseline (same timer, no streamll): p99 ${baseline.p99.toFixed(2)} ms, max ${baseline.max.toFixed(2)} ms`,
  );
  const raw = await rawLoadWindow(client);
  log(
    `raw ioredis at the same rate, no streamll: p99 ${raw.window.p99.toFixed(2)} ms, max ${raw.window.max.toFixed(2)} ms`,
  );

  const sink = new RedisSink({ url: REDIS_URL, stream: streamName("load") });
  await sink.client.connect();
  // The longest stretch a send holds the loop: its synchronous part, and each pipeline's build and write.
  // Wall time, and the process's CPU time over the same stretch: on a busy machine the wall time includes
  // waiting for a core, the CPU time does not.
  const blocking = { send: 0, pipeline: 0, pipelineCpu: 0, sends: 0, pipelines: 0 };
  // Every pipeline's stretch as [start, end], for its p99 next to the max (one GC pause landing in a stretch
  // makes the max), and the GC pauses of the window, so each stretch is also reported without them.
  const stretches = [];
  // Each stretch in its two phases: building the chunk's XADD commands, and exec() writing them to the socket.
  const phases = { build: [], write: [] };
  const gcPauses = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauses.push([entry.startTime, entry.startTime + entry.duration]);
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  const cpuMs = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const send = sink.send.bind(sink);
  sink.send = (batch, context) => {
    const started = performance.now();
    const result = send(batch, context);
    blocking.send = Math.max(blocking.send, performance.now() - started);
    blocking.sends += 1;
    return result;
  };
  const realPipeline = sink.client.pipeline.bind(sink.client);
  sink.client.pipeline = (...args) => {
    const started = performance.now();
    const cpuStarted = cpuMs();
    const pipeline = realPipeline(...args);
    const exec = pipeline.exec.bind(pipeline);
    pipeline.exec = (...execArgs) => {
      const execStarted = performance.now();
      const result = exec(...execArgs);
      phases.build.push(execStarted - started);
      phases.write.push(performance.now() - execStarted);
      const ended = performance.now();
      const stretch = ended - started;
      stretches.push([started, ended]);
      blocking.pipeline = Math.max(blocking.pipeline, stretch);
      blocking.pipelineCpu = Math.max(blocking.pipelineCpu, cpuMs() - cpuStarted);
      blocking.pipelines += 1;
      return result;
    };
    return pipeline;
  };
  core.configure({ sinks: [sink], logger: quiet });
  const state = { seq: 0 };
  const loaded = await loadWindow(LOAD.seconds, (due) => {
    emitLoad(core, state, due);
    control.run(controlSamples.loaded);
  });
  await core.flush(60_000);
  const [metrics] = core.getMetrics();
  await core.shutdown(10_000);
  await yieldToLoop();
  gcObserver.disconnect();
  const longest = Math.max(blocking.send, blocking.pipeline);
  const gcIn = ([start, end]) =>
    gcPauses.reduce((ms, [from, to]) => ms + Math.max(0, Math.min(end, to) - Math.max(start, from)), 0);
  const withGc = tail(stretches.map(([start, end]) => end - start));
  const withoutGc = tail(stretches.map((s) => s[1] - s[0] - gcIn(s)));
  const rawStretches = tail(raw.stretches);
  const controls = { baseline: tail(controlSamples.baseline), loaded: tail(controlSamples.loaded) };
  const build = tail(phases.build);
  const write = tail(phases.write);
  const gcPauseMax = Math.max(0, ...gcPauses.map(([from, to]) => to - from));
  bench.merge("loop_delay", {
    baseline: { p99_ms: baseline.p99, max_ms: baseline.max },
    raw_ioredis_10k_per_s: { p99_ms: raw.window.p99, max_ms: raw.window.max, pipeline: rawStretches },
    redis_10k_per_s: {
      p99_ms: loaded.p99,
      added_p99_ms: loaded.p99 - baseline.p99,
      max_ms: loaded.max,
      longest_send_block_ms: longest,
      send_sync_max_ms: blocking.send,
      pipeline_build_max_ms: blocking.pipeline,
      pipeline_build_max_cpu_ms: blocking.pipelineCpu,
      pipeline_build_p99_ms: withGc.p99_ms,
      pipeline_build_max_without_gc_ms: withoutGc.max_ms,
      pipeline_build_p99_without_gc_ms: withoutGc.p99_ms,
      pipeline_build_p50_ms: withGc.p50_ms,
      pipeline_build_over_1ms: withGc.over_1ms,
      pipeline_phase: { build, write },
      gc_pauses: gcPauses.length,
      gc_pause_max_ms: gcPauseMax,
      sends: blocking.sends,
      pipelines: blocking.pipelines,
      emitted: metrics.emitted,
      delivered: metrics.delivered,
      dropped: metrics.dropped,
    },
    control: { reps: control.reps, ...controls },
  });
  const describe = (t) =>
    `p50 ${t.p50_ms.toFixed(3)} ms, p99 ${t.p99_ms.toFixed(2)} ms, max ${t.max_ms.toFixed(2)} ms, ` +
    `${t.over_1ms} of ${fmt(t.count)} over 1 ms`;
  log(
    `RedisSink: p99 ${loaded.p99.toFixed(2)} ms (+${(loaded.p99 - baseline.p99).toFixed(2)}; target <= 2), max ${loaded.max.toFixed(2)} ms`,
  );
  log(
    `longest stretch one send held the loop: ${longest.toFixed(2)} ms (target <= 1; sync part ${blocking.send.toFixed(2)}, ` +
      `pipeline build+write ${blocking.pipeline.toFixed(2)}, of it CPU ${blocking.pipelineCpu.toFixed(2)}; ` +
      `${blocking.sends} sends, ${blocking.pipelines} pipelines)`,
  );
  log(`pipeline stretches: ${describe(withGc)}`);
  log(
    `  without the GC pauses inside them: max ${withoutGc.max_ms.toFixed(2)} ms, p99 ${withoutGc.p99_ms.toFixed(2)} ms ` +
      `(${gcPauses.length} GC pauses in the window, longest ${gcPauseMax.toFixed(2)} ms)`,
  );
  log(`  of them building the XADDs: ${describe(build)}`);
  log(`  of them exec() writing to the socket: ${describe(write)}`);
  log(`raw ioredis pipeline stretches, no streamll: ${describe(rawStretches)}`);
  log(`control stretch without streamll, baseline window: ${describe(controls.baseline)}`);
  log(`control stretch without streamll, loaded window:   ${describe(controls.loaded)}`);
  log(`${metrics.delivered}/${metrics.emitted} delivered, ${metrics.dropped} dropped`);
}

const client = new Redis(REDIS_URL);
const info = await client.info("server");
const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
console.log(`streamll sink-redis bench — Redis ${redisVersion} on ${REDIS_URL}, default delivery settings`);
bench.merge("broker", { redis: { version: redisVersion } });
bench.merge("settings", {
  throughput: { events: EVENTS, rounds: ROUNDS, batch: BATCH },
  calls: { per_round: SUSTAINED.calls, rounds: SUSTAINED.rounds },
  load: { events_per_s: LOAD.rate, seconds: LOAD.seconds },
});
try {
  const only = process.argv.slice(2);
  if (only.length === 0 || only.includes("throughput")) await throughput(client);
  if (only.length === 0 || only.includes("overhead")) await overhead();
  if (only.length === 0 || only.includes("loop")) await eventLoop(client);
} finally {
  if (streams.length > 0) await client.del(...streams);
  client.disconnect();
}
bench.write();
