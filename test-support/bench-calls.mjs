// Sustained-load measurement shared by the core and sink benchmarks: what instrumentation adds to an async
// call when a busy service makes calls back to back, with a real sink delivering in the background.
//
// A round is `calls` sequential awaited calls (20,000 by default) that yield to the event loop every 250 calls,
// as a service handling requests would, so the pipeline's batching and its sends run inside the round. The
// round is timed as a whole: the reported number is the MEAN per call over every recorded round, with the
// scavenges, the sends and the slow stretches included (no medians of short chunks, which would drop exactly
// the chunks where GC or a send lands). The bare function is measured in the same rounds, interleaved with the
// instrumented rounds (the order flips every round), so a busy moment of a shared machine hits both alike; a
// bare round's time beyond the median bare round is charged to the instrumented side (chargeBaselineExcess).
// Every round starts with an empty young generation (collectYoungGarbage), never after a forced full collection.
// Each variant runs as a service would: configured once, one sink with default delivery settings for all its
// rounds; its drops are counted and reported.
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
const gc = runInNewContext("gc");

/** A full garbage collection (available without --expose-gc on the command line), for heap measurements. */
export const collectGarbage = () => gc();

/**
 * Empties V8's young generation before a timed round, so every scavenge inside the round is caused by the
 * round's own allocations. Deliberately not a full collection: forcing one between rounds cleared objects of
 * earlier rounds that optimised code embedded, and V8 deoptimised that code ("embedded weak objects cleared":
 * four to six times the deoptimisations of a run without it, in the core and Ax benches) and ran the following
 * rounds slower, bare and instrumented alike and the instrumented side most: a state a running service is
 * never in. The major collections the rounds themselves cause still happen inside the rounds.
 */
export const collectYoungGarbage = () => gc({ type: "minor" });

/**
 * Rounds of every variant run before the recorded ones (BENCH_WARMUP_ROUNDS). Six, because a fresh process
 * grows V8's young generation to the allocation rate only after a few hundred thousand calls, and the round in
 * which it does runs at half speed: a service that has been up for a minute is past that.
 */
export const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 6);

export const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

/**
 * WARMUP_ROUNDS unrecorded rounds, then `rounds` recorded ones. A round runs every side once, in the given
 * order on even rounds and reversed on odd ones, so a busy moment of a shared machine hits every side alike.
 * `beforeRecording()` runs once before the first recorded round; `run(side, recorded)` runs one side.
 */
export async function alternatingRounds(sides, rounds, run, beforeRecording) {
  const reversed = [...sides].reverse();
  for (let r = -WARMUP_ROUNDS; r < rounds; r++) {
    if (r === 0) await beforeRecording?.();
    for (const side of r % 2 === 0 ? sides : reversed) await run(side, r >= 0);
  }
}

/**
 * Splits the time of alternating rounds between an instrumented side and its bare baseline (arrays of round
 * times, one per recorded round each). Each bare round counts for the baseline up to the median bare round;
 * what a bare round took beyond that (a major collection of the instrumented side's garbage that happened to
 * run in it, a busy moment of the machine) is charged to the instrumented side, so the added cost is never
 * understated. Returns the totals `{ variant, bare, charged }` in the rounds' unit.
 */
export function chargeBaselineExcess(variantRounds, bareRounds) {
  const sorted = [...bareRounds].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const sum = (values) => values.reduce((total, v) => total + v, 0);
  const charged = sum(bareRounds.map((ms) => Math.max(0, ms - median)));
  return { variant: sum(variantRounds) + charged, bare: sum(bareRounds) - charged, charged };
}

/** Heap in use after two full collections. */
export function heapAfterGc() {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/**
 * A sink that reads every event's JSON (as any real sink must) and keeps nothing. It reads a character, not
 * just the length: the runtime hands sinks the JSON as V8 concatenated it, and only reading its text makes V8
 * flatten it into one string, as every real sink's encoder or socket write does.
 */
export function readingSink() {
  let chars = 0;
  /** XOR of every event's last character code: a result the reads feed, so they cannot be optimised away. */
  let lastChars = 0;
  return {
    name: "reader",
    send(batch) {
      for (const event of batch) {
        const json = event.json;
        chars += json.length;
        lastChars ^= json.charCodeAt(json.length - 1);
      }
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    get chars() {
      return chars;
    },
    get lastChars() {
      return lastChars;
    },
  };
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Round times in ms as µs per call with `digits` decimals, for the log. */
export const perCall = (roundsMs, calls, digits = 2) =>
  roundsMs.map((ms) => ((ms * 1000) / calls).toFixed(digits)).join(", ");

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
 * Measures `variants` (`{ key, sink: () => Sink }`) against the bare function and returns
 * `{ bare: { mean_us }, [key]: { mean_us, bare_us, added_us, ratio, emitted, delivered, dropped, flush_ms,
 * charged_ms } }` (`charged_ms`: bare-round time per round charged to the instrumented side).
 * `core` is the @streamll/core module under test. Leaves streamll shut down.
 *
 * One variant at a time, as a service runs: `configure()` once with one sink, then its rounds alternate with
 * rounds of the bare function (the order flips every round); `added_us` is against the bare rounds of the same
 * block. Reconfiguring between rounds would measure something no service does: V8 drops the optimised code
 * that referred to the replaced sink and pipeline once they are collected, and recompiles it mid-round.
 * Emitted, delivered and dropped count the recorded rounds only.
 */
export async function sustainedCalls(core, variants, options = {}) {
  const { calls, rounds, yieldEvery } = { ...SUSTAINED, ...options };
  const log = options.log ?? (() => {});
  const bare = async (x) => x + 1;
  const instrumented = core.instrument(async function answer(x) {
    return x + 1;
  });
  const out = { bare: { mean_us: 0 } };
  const allBare = [];
  for (const variant of variants) {
    core.configure({ sinks: [await variant.sink()], logger: quiet });
    const totals = { bare: [], variant: [], flushMs: 0 };
    let before;
    // Unrecorded rounds first: the JIT, the file, the sink's first connection, and V8 growing its young
    // generation to the allocation rate (the first rounds after start-up scavenge far more often than a
    // service that has been running does).
    await alternatingRounds(
      ["variant", "bare"],
      rounds,
      async (side, recorded) => {
        collectYoungGarbage();
        await yieldToLoop();
        const ms = await round(side === "bare" ? bare : instrumented, calls, yieldEvery);
        let flushMs = 0;
        if (side === "variant") {
          const flushStart = performance.now();
          await core.flush(120_000);
          flushMs = performance.now() - flushStart;
        }
        if (recorded) {
          totals[side].push(ms);
          totals.flushMs += flushMs;
        }
      },
      async () => {
        await core.flush(120_000);
        before = core.getMetrics()[0];
      },
    );
    const [after] = core.getMetrics();
    await core.shutdown(10_000);
    const split = chargeBaselineExcess(totals.variant, totals.bare);
    const bareUs = (split.bare * 1000) / (calls * rounds);
    const meanUs = (split.variant * 1000) / (calls * rounds);
    allBare.push(bareUs);
    out[variant.key] = {
      mean_us: meanUs,
      bare_us: bareUs,
      added_us: meanUs - bareUs,
      ratio: meanUs / bareUs,
      emitted: after.emitted - before.emitted,
      delivered: after.delivered - before.delivered,
      dropped: after.dropped - before.dropped,
      flush_ms: totals.flushMs / rounds,
      charged_ms: split.charged / rounds,
    };
    const v = out[variant.key];
    log(
      `${variant.key}: ${meanUs.toFixed(3)} µs/call against bare ${bareUs.toFixed(3)}, +${v.added_us.toFixed(3)} µs ` +
        `(rounds ${perCall(totals.variant, calls)}; bare ${perCall(totals.bare, calls)}; ` +
        `${split.charged.toFixed(1)} ms of bare rounds charged to the instrumented side); ` +
        `${v.delivered}/${v.emitted} delivered, ${v.dropped} dropped`,
    );
  }
  out.bare.mean_us = allBare.reduce((sum, us) => sum + us, 0) / allBare.length;
  return out;
}
