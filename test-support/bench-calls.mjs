// Sustained-load measurement shared by the core and sink benchmarks: what instrumentation adds to an async
// call when a busy service makes calls back to back, with a real sink delivering in the background.
//
// A round is `calls` sequential awaited calls (20,000 by default) that yield to the event loop every 250 calls,
// as a service handling requests would, so the pipeline's batching and its sends run inside the round. The
// round is timed as a whole: the reported number is the MEAN per call over every recorded round, with the
// scavenges, the sends and the slow stretches included (no medians of short chunks, which would drop exactly
// the chunks where GC or a send lands). The bare function is measured in the same rounds, interleaved with the
// instrumented variants (the order rotates every round), so a busy moment of a shared machine hits all alike.
// Each variant gets a fresh sink with default delivery settings per round; its drops are counted and reported.
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** The settings every sustained bench shares: BENCH_CALLS (calls per round), BENCH_CALL_ROUNDS. */
export const SUSTAINED = Object.freeze({
  calls: Number(process.env.BENCH_CALLS ?? 20_000),
  rounds: Number(process.env.BENCH_CALL_ROUNDS ?? 5),
  /** Calls between yields to the event loop. */
  yieldEvery: 250,
});

setFlagsFromString("--expose-gc");
/** A full garbage collection (available without --expose-gc on the command line). */
export const collectGarbage = runInNewContext("gc");

/** Rounds of every variant run before the recorded ones. */
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 3);

export const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

/** Heap in use after two full collections. */
export function heapAfterGc() {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/** A sink that reads every event's JSON (as any real sink must) and keeps nothing. */
export function readingSink() {
  let chars = 0;
  return {
    name: "reader",
    send(batch) {
      for (const event of batch) chars += event.json.length;
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    get chars() {
      return chars;
    },
  };
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function round(fn, calls, yieldEvery) {
  const start = performance.now();
  for (let i = 0; i < calls; i++) {
    await fn(i);
    if (i % yieldEvery === yieldEvery - 1) await yieldToLoop();
  }
  await yieldToLoop();
  return performance.now() - start;
}

/**
 * Measures `variants` (`{ key, sink: () => Sink }`) against the bare function in interleaved rounds and returns
 * `{ bare: { mean_us }, [key]: { mean_us, added_us, ratio, emitted, delivered, dropped, flush_ms } }`.
 * `core` is the @streamll/core module under test. Leaves streamll shut down.
 */
export async function sustainedCalls(core, variants, options = {}) {
  const { calls, rounds, yieldEvery } = { ...SUSTAINED, ...options };
  const log = options.log ?? (() => {});
  const bare = async (x) => x + 1;
  const instrumented = core.instrument(async function answer(x) {
    return x + 1;
  });
  const sides = [{ key: "bare" }, ...variants];
  const totals = new Map(
    sides.map((side) => [
      side.key,
      { ms: 0, calls: 0, emitted: 0, delivered: 0, dropped: 0, flushMs: 0, rounds: [] },
    ]),
  );
  // Unrecorded rounds first: the JIT, the file, the sink's first connection, and V8 growing its young
  // generation to the allocation rate (the first rounds after start-up scavenge far more often than a service
  // that has been running does).
  for (let r = -WARMUP_ROUNDS; r < rounds; r++) {
    for (let s = 0; s < sides.length; s++) {
      const side = sides[(s + Math.max(r, 0)) % sides.length];
      const total = totals.get(side.key);
      if (side.sink !== undefined) core.configure({ sinks: [await side.sink()], logger: quiet });
      collectGarbage();
      await yieldToLoop();
      const ms = await round(side.sink === undefined ? bare : instrumented, calls, yieldEvery);
      if (side.sink !== undefined) {
        const flushStart = performance.now();
        await core.flush(120_000);
        const flushMs = performance.now() - flushStart;
        const [metrics] = core.getMetrics();
        await core.shutdown(10_000);
        if (r >= 0) {
          total.emitted += metrics.emitted;
          total.delivered += metrics.delivered;
          total.dropped += metrics.dropped;
          total.flushMs += flushMs;
        }
      }
      if (r >= 0) {
        total.ms += ms;
        total.calls += calls;
        total.rounds.push(((ms * 1000) / calls).toFixed(2));
      }
    }
  }
  const bareUs = (totals.get("bare").ms * 1000) / totals.get("bare").calls;
  const out = { bare: { mean_us: bareUs } };
  log(`bare: ${bareUs.toFixed(3)} µs/call (rounds ${totals.get("bare").rounds.join(", ")})`);
  for (const { key } of variants) {
    const t = totals.get(key);
    const meanUs = (t.ms * 1000) / t.calls;
    out[key] = {
      mean_us: meanUs,
      added_us: meanUs - bareUs,
      ratio: meanUs / bareUs,
      emitted: t.emitted,
      delivered: t.delivered,
      dropped: t.dropped,
      flush_ms: t.flushMs / rounds,
    };
    log(
      `${key}: ${meanUs.toFixed(3)} µs/call, +${(meanUs - bareUs).toFixed(3)} µs (rounds ${t.rounds.join(", ")}); ` +
        `${t.delivered}/${t.emitted} delivered, ${t.dropped} dropped`,
    );
  }
  return out;
}
