// What a sink costs the host's event loop under steady load, shared by the sink benchmarks: the event-loop delay
// (perf_hooks.monitorEventLoopDelay, sampled every 1 ms) while streamll emits LOAD.rate events/s for
// LOAD.seconds into the sink, against the same timer without streamll measured just before. The delay of a 1 ms
// timer is how long the task in front of it held the loop, so the p99 and the max are the long stretches a
// sink's sends (and the garbage they make) cause. The GC pauses of the window are recorded beside them.
import { monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";

/** BENCH_LOAD_S (10 s) at 10,000 events/s. */
export const LOAD = Object.freeze({ rate: 10_000, seconds: Number(process.env.BENCH_LOAD_S ?? 10) });

/** Runs `tick(dueEvents)` every 10 ms for `seconds`, at `rate` events/s overall, and returns the loop delay. */
export async function loadWindow(seconds, tick, rate = LOAD.rate) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const start = performance.now();
  let sent = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.min(rate * seconds, Math.floor((elapsed * rate) / 1000)) - sent;
      sent += due;
      tick(due);
      if (elapsed >= seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  histogram.disable();
  return { p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6, sent };
}

/** Emits `due` events of about 0.3 KB inside a span, as a busy service would. */
export function emitLoad(core, state, due) {
  core.trace("tick", () => {
    for (let i = 0; i < due; i++)
      core.emit("load", { seq: state.seq++, text: "a short payload of event data" });
  });
}

/**
 * The baseline window, then `configure({ sinks: [{ sink, delivery }] })` (default delivery settings unless
 * `delivery` is given) and the loaded window; flushes and shuts streamll down. Returns `{ baseline: { p99_ms, max_ms }, loaded: { p99_ms, added_p99_ms, max_ms, gc_pauses,
 * gc_pause_max_ms, emitted, delivered, dropped } }`.
 */
export async function loopDelayUnderLoad({ core, sink, delivery, logger, log = () => {} }) {
  const baseline = await loadWindow(LOAD.seconds, () => {});
  log(
    `baseline (same timer, no streamll): p99 ${baseline.p99.toFixed(2)} ms, max ${baseline.max.toFixed(2)} ms`,
  );
  const pauses = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push(entry.duration);
  });
  observer.observe({ entryTypes: ["gc"] });
  core.configure({ sinks: [delivery === undefined ? sink : { sink, delivery }], logger });
  const state = { seq: 0 };
  const loaded = await loadWindow(LOAD.seconds, (due) => emitLoad(core, state, due));
  await core.flush(60_000);
  const [metrics] = core.getMetrics();
  await core.shutdown(10_000);
  observer.disconnect();
  const result = {
    baseline: { p99_ms: baseline.p99, max_ms: baseline.max },
    loaded: {
      p99_ms: loaded.p99,
      added_p99_ms: loaded.p99 - baseline.p99,
      max_ms: loaded.max,
      gc_pauses: pauses.length,
      gc_pause_max_ms: Math.max(0, ...pauses),
      emitted: metrics.emitted,
      delivered: metrics.delivered,
      dropped: metrics.dropped,
    },
  };
  log(
    `loaded: p99 ${loaded.p99.toFixed(2)} ms (+${(loaded.p99 - baseline.p99).toFixed(2)}), max ${loaded.max.toFixed(2)} ms; ` +
      `${pauses.length} GC pauses, longest ${result.loaded.gc_pause_max_ms.toFixed(2)} ms; ` +
      `${metrics.delivered}/${metrics.emitted} delivered, ${metrics.dropped} dropped`,
  );
  return result;
}
