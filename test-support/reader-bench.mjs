// The scale-out and overhead measurements shared by the sink packages' reader benchmarks (bench/readers.mjs).
//
// Scale-out: N reader processes (ReaderGroup) in one group with a handler that does `handlerDelayMs` of async
// work; the events are produced once every process is in the group; the rate is the events divided by the
// time from the first event handled (in any process) to the last one. Reader counts are interleaved over the
// rounds so that a busy moment of a shared machine hits every count alike; the median round is reported.
//
// Overhead: one reader in this process with a no-op handler against the raw client doing the same protocol
// work (same read, same per-event acknowledgement or commit pattern, JSON.parse of each event), over the same
// number of pre-written events; wall time and CPU time per event from the first event handled to the last.

import { randomBytes } from "node:crypto";
import { ReaderGroup } from "./reader-group.mjs";

/** The settings every reader bench shares: BENCH_EVENTS, BENCH_ROUNDS, BENCH_OVERHEAD_EVENTS. */
export const BENCH = Object.freeze({
  /** Events per scale-out run. */
  events: Number(process.env.BENCH_EVENTS ?? 4_000),
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  /** Events per overhead run. */
  overheadEvents: Number(process.env.BENCH_OVERHEAD_EVENTS ?? 20_000),
  /** The scale-out handler's async work per event (a timer). */
  handlerDelayMs: 1,
});

export const log = (line) => console.log(`  ${line}`);

const benchId = () => randomBytes(9).toString("base64url");

/**
 * `count` encoded events of ~300 bytes, 20 per execution (so keyed partitioning has executions to spread),
 * encoded with the given `encodeEvent` (the bench's own @streamll/core).
 */
export function benchEvents(count, encodeEvent) {
  let executionId = benchId();
  return Array.from({ length: count }, (_, seq) => {
    if (seq % 20 === 0) executionId = benchId();
    return encodeEvent({
      schema_version: "1.0",
      event_id: benchId(),
      execution_id: executionId,
      span_id: benchId(),
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: "RetrieveThenAnswer",
      method_name: "forward",
      event_type: seq % 10 === 0 ? "start" : "token",
      operation: null,
      data: { seq, token: "lorem ipsum dolor sit amet ", field: "answer", index: seq },
      tags: { service: "bench" },
      module_version: null,
      code_signature: null,
      git_commit: null,
    });
  });
}

/**
 * Sends `events` through a streamll sink in batches of 2,000 and closes it. A batch that fails for a transient
 * reason (a busy machine's timeout) is sent again, up to 5 attempts, as the delivery pipeline would; a batch
 * sent twice only means more events than counted reach the readers.
 */
export async function sendAll(sink, events) {
  for (let i = 0; i < events.length; i += 2_000) {
    const batch = events.slice(i, i + 2_000);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await sink.send(batch, { signal: AbortSignal.timeout(60_000), attempt });
        if (result?.failures.length) throw new Error(`${result.failures.length} bench events were rejected`);
        break;
      } catch (error) {
        if (attempt === 5 || error?.retriable !== true) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  }
  await sink.close();
}

export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round1 = (n) => Math.round(n * 10) / 10;

/**
 * Runs the scale-out rounds. `prepare(readers)` makes a fresh topic/stream/queue and returns `{ config,
 * ready(group), produce(), cleanup() }`: the worker config, a check that all `readers` processes are in the group,
 * and the production of `events` events.
 */
export async function scaleOut({ worker, readerCounts, events, rounds, handlerDelayMs, prepare, log }) {
  const runs = new Map(readerCounts.map((count) => [count, []]));
  for (let round = 0; round < rounds; round++) {
    for (const count of readerCounts) {
      const setup = await prepare(count);
      const group = new ReaderGroup({ worker, config: { ...setup.config, handlerDelayMs }, log: false });
      try {
        group.start(count);
        await group.waitFor(() => setup.ready(group), `${count} readers in the group`, 120_000);
        await setup.produce();
        await group.waitForHandled(events, 600_000);
        await group.stopAll();
        const firstAt = Math.min(...group.readers.map((r) => r.final?.firstAt ?? Number.POSITIVE_INFINITY));
        const lastAt = Math.max(...group.readers.map((r) => r.final?.lastAt ?? 0));
        const handled = group.readers.reduce((sum, r) => sum + (r.final?.handled ?? 0), 0);
        const handlerMs = group.readers.reduce((sum, r) => sum + (r.final?.handlerMs ?? 0), 0);
        const run = {
          eventsPerSecond: Math.round((handled / (lastAt - firstAt)) * 1000),
          perReader: group.readers.map((r) => r.final?.handled ?? 0),
          meanHandlerMs: Math.round((handlerMs / handled) * 1000) / 1000,
        };
        runs.get(count).push(run);
        log?.(`round ${round + 1}, ${count} reader(s): ${run.eventsPerSecond} events/s (${run.perReader})`);
      } finally {
        await group.close();
        await setup.cleanup();
      }
    }
  }
  const base = median(runs.get(readerCounts[0]).map((run) => run.eventsPerSecond));
  return readerCounts.map((count) => {
    const rates = runs.get(count).map((run) => run.eventsPerSecond);
    const rate = median(rates);
    const meanHandlerMs = median(runs.get(count).map((run) => run.meanHandlerMs));
    return {
      readers: count,
      events_per_s: rate,
      rounds_events_per_s: rates,
      speedup: Math.round((rate / base) * 100) / 100,
      mean_handler_ms: meanHandlerMs,
      // What `count` readers could do if only the handler took time (one event at a time per reader).
      handler_bound_events_per_s: Math.round((count * 1000) / meanHandlerMs),
    };
  });
}

/**
 * Alternates `raw()` and `reader()` for `rounds` rounds; each resolves `{ firstAt, lastAt, cpuMicros, events }`
 * over the events it handled. Reports medians per event and the difference.
 */
export async function overhead({ rounds, raw, reader, log }) {
  const sides = { raw: [], reader: [] };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always profits from a warmer broker.
    const order = round % 2 === 0 ? ["raw", "reader"] : ["reader", "raw"];
    for (const side of order) {
      const run = await (side === "raw" ? raw() : reader());
      const wallMicros = ((run.lastAt - run.firstAt) * 1000) / run.events;
      sides[side].push({ wallMicros, cpuMicros: run.cpuMicros / run.events });
      log?.(
        `round ${round + 1}, ${side}: ${round1(wallMicros)} µs/event wall, ${round1(run.cpuMicros / run.events)} µs CPU`,
      );
    }
  }
  const summary = (runs) => ({
    wall_us: round1(median(runs.map((r) => r.wallMicros))),
    cpu_us: round1(median(runs.map((r) => r.cpuMicros))),
  });
  const rawSummary = summary(sides.raw);
  const readerSummary = summary(sides.reader);
  return {
    raw: rawSummary,
    reader: readerSummary,
    added_wall_us: round1(readerSummary.wall_us - rawSummary.wall_us),
    added_cpu_us: round1(readerSummary.cpu_us - rawSummary.cpu_us),
  };
}

/** Measures `consume(onEvent)` from its first event to its last: wall clock and this process's CPU time. */
export async function timed(events, consume) {
  let handled = 0;
  let firstAt;
  let lastAt;
  let cpuStart;
  let cpuEnd;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const onEvent = () => {
    if (handled === 0) {
      firstAt = performance.now();
      cpuStart = process.cpuUsage();
    }
    handled += 1;
    if (handled === events) {
      lastAt = performance.now();
      cpuEnd = process.cpuUsage(cpuStart);
      finish();
    }
  };
  await consume(onEvent, done);
  await done;
  // The first event opens the window: the events counted are the ones after it.
  return { firstAt, lastAt, cpuMicros: cpuEnd.user + cpuEnd.system, events: events - 1 };
}

/** Times a streamll reader with a no-op handler: `run()` until `events` were handled, then `stop()`. */
export function timedReader(events, reader, stop = () => reader.stop()) {
  return timed(events, async (onEvent, done) => {
    const running = reader.run(onEvent);
    await done;
    await stop();
    await running;
  });
}

/**
 * Stores (through `bench`, from startBench() in bench-results.mjs) and prints one reader bench: `scale` from
 * scaleOut(), `cost` from overhead(), `client` the raw client's name. `broker` and `settings` are small objects
 * of numbers and short strings.
 */
export function report(bench, { broker, settings, scale, cost, client }) {
  const scaleResults = {};
  for (const row of scale) {
    const { readers, ...values } = row;
    scaleResults[`readers_${readers}`] = values;
  }
  bench.merge("", { broker, settings, scale_out: scaleResults, overhead: cost });
  console.log("\n| reader processes | events/s (median) | speed-up | handler-bound events/s |");
  console.log("|---:|---:|---:|---:|");
  for (const row of scale) {
    console.log(
      `| ${row.readers} | ${row.events_per_s} | ${row.speedup}× | ${row.handler_bound_events_per_s} |`,
    );
  }
  console.log(
    `\nreader vs raw ${client}: ${cost.reader.wall_us} vs ${cost.raw.wall_us} µs/event wall ` +
      `(+${cost.added_wall_us}), ${cost.reader.cpu_us} vs ${cost.raw.cpu_us} µs CPU (+${cost.added_cpu_us})`,
  );
  bench.write();
}
