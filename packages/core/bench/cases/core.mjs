// Core overhead under sustained load (issue 12): what instrumentation adds to an async call with (a) a sink that
// reads every event's JSON and keeps nothing, (b) JsonlFileSink, (c) MemorySink, each with default delivery
// settings, against the bare function measured in the same rounds; emit() inside a span against the same loop
// without it, and pino logging the same data (without and with redaction) as a baseline from outside streamll;
// token events per streamed chunk; event-loop delay under a steady 10,000 events/s into a JSONL file. All means
// over whole rounds, a baseline round's time beyond the median baseline round charged to the instrumented side
// (test-support/bench-calls.mjs). Targets: ≤ 2 µs added per call with the reading sink, ≤ 3 µs with
// JsonlFileSink, ≤ 0.7 µs per emit().
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { pino } from "pino";

export const title =
  "instrumented calls, emit() and tokens under sustained load, against the bare code in the same run";

/** Sampling interval of the event-loop delay histogram; reported delays include it. */
const LOOP_RESOLUTION_MS = 1;

async function measureCalls({ core, harness, result, log }, dir) {
  let file = 0;
  const r = await harness.sustainedCalls(
    core,
    [
      { key: "reading_sink", sink: () => harness.readingSink() },
      { key: "jsonl", sink: () => new core.JsonlFileSink({ path: join(dir, `calls-${file++}.jsonl`) }) },
      { key: "memory", sink: () => new core.MemorySink() },
    ],
    { log },
  );
  result("call.bare.mean_us", r.bare.mean_us, "async call, bare (mean)");
  const targets = { reading_sink: 2, jsonl: 3, memory: undefined };
  for (const key of ["reading_sink", "jsonl", "memory"]) {
    const v = r[key];
    result(`call.${key}.mean_us`, v.mean_us, `instrumented, ${key} (mean)`);
    result(`call.${key}.added_us`, v.added_us, `added per call, ${key}`, targets[key]);
    result(`call.${key}.ratio`, v.ratio, `instrumented / bare, ${key}`);
    result(`call.${key}.dropped`, v.dropped, `dropped of ${v.emitted} events, ${key}`);
  }
  result("call.settings.calls_per_round", harness.SUSTAINED.calls, "calls per round");
  result("call.settings.rounds", harness.SUSTAINED.rounds, "recorded rounds per variant");
}

/**
 * pino, a widely used fast JSON logger for Node, as an outside baseline for emit(): a child logger bound to the
 * ids a span's events carry, logging the same data to a destination that reads every line as the reading sink
 * does. It does less than emit() (no event id, epoch-ms time, no size caps, no credential scan, no
 * queue), so it shows what writing such a line as JSON costs here. With `redactPaths` it also redacts the
 * default redact names, at the one level under `data` its paths can name (streamll matches them at any depth).
 */
function pinoLogger(redactPaths) {
  /** Sum of every line's last character code (the newline): a result the reads feed, as the reading sink's. */
  let lastChars = 0;
  const destination = {
    write(line) {
      lastChars = (lastChars + line.charCodeAt(line.length - 1)) | 0;
    },
  };
  const options = redactPaths === undefined ? { base: undefined } : { base: undefined, redact: redactPaths };
  const logger = pino(options, destination).child({
    execution_id: "bench-exec-00",
    span_id: "bench-span-00",
    module_name: "bench-emit",
  });
  return { logger, checksum: () => lastChars };
}

async function measureEmit({ core, harness, result, log }) {
  // Rounds of `events` emit() calls inside one span, yielding every 250 as the calls above do, against the same
  // loop without the emit() (interleaved); the difference per event is what emit() costs the caller,
  // including the batching, the sends and the GC its events cause. pino logging the same data runs in the
  // same rounds, without and with redaction, as a baseline from outside streamll.
  const { calls: events, rounds, yieldEvery } = harness.SUSTAINED;
  const sink = harness.readingSink();
  core.configure({ sinks: [sink] });
  const plain = pinoLogger(undefined);
  const redacting = pinoLogger(core.DEFAULT_REDACT_KEYS.map((name) => `data.${name}`));
  const sides = ["emit", "loop", "pino", "pino_redact"];
  const totals = Object.fromEntries(sides.map((side) => [side, []]));
  const data = { step: "retrieve", k: 3, text: "a short payload of event data" };
  let kept = 0;
  try {
    await core.trace("bench-emit", async () => {
      await harness.alternatingRounds(sides, rounds, async (side, recorded) => {
        harness.collectYoungGarbage();
        await harness.yieldToLoop();
        const start = performance.now();
        for (let i = 0; i < events; i++) {
          if (side === "emit") core.emit("tick", data);
          else if (side === "pino") plain.logger.info({ data }, "tick");
          else if (side === "pino_redact") redacting.logger.info({ data }, "tick");
          else kept += i & 1;
          if (i % yieldEvery === yieldEvery - 1) await harness.yieldToLoop();
        }
        await harness.yieldToLoop();
        if (recorded) totals[side].push(performance.now() - start);
      });
    });
    await core.flush(60_000);
    const [metrics] = core.getMetrics();
    const perEventUs = (side) => {
      const split = harness.chargeBaselineExcess(totals[side], totals.loop);
      return ((split.variant - split.bare) * 1000) / (events * rounds);
    };
    const emitUs = perEventUs("emit");
    const pinoUs = perEventUs("pino");
    const pinoRedactUs = perEventUs("pino_redact");
    result("emit.in_span.mean_us", emitUs, "emit() inside a span (mean)", 0.7);
    result("emit.in_span.dropped", metrics.dropped, `dropped of ${metrics.emitted} events`);
    result("emit.pino.mean_us", pinoUs, "pino child logger, same data, no redaction (mean)");
    result("emit.pino_redact.mean_us", pinoRedactUs, "pino, redacting the default names under data (mean)");
    result("emit.in_span.pino_ratio", emitUs / pinoUs, "emit() / pino without redaction");
    result("emit.in_span.pino_redact_ratio", emitUs / pinoRedactUs, "emit() / pino with redaction");
    log(
      `emit: ${emitUs.toFixed(3)} µs/event, pino ${pinoUs.toFixed(3)}, pino redacting ${pinoRedactUs.toFixed(3)} ` +
        `over ${rounds} rounds of ${events} (checksums ${kept}, ${plain.checksum()}, ${redacting.checksum()})`,
    );
  } finally {
    await core.shutdown(10_000);
  }
}

async function measureTokens({ core, harness, result, log }) {
  const tokens = 200;
  const streams = 100; // 20,000 chunks per round
  async function* bare(n) {
    for (let i = 0; i < n; i++) yield "tok ";
  }
  const instrumented = core.instrument(
    async function* stream(n) {
      for (let i = 0; i < n; i++) yield "tok ";
    },
    { streamField: "answer" },
  );
  const consume = async (gen) => {
    const start = performance.now();
    for (let s = 0; s < streams; s++) {
      for await (const _ of gen(tokens));
      await harness.yieldToLoop();
    }
    return performance.now() - start;
  };
  core.configure({ sinks: [harness.readingSink()] });
  const totals = { bare: [], instrumented: [] };
  try {
    await harness.alternatingRounds(
      ["bare", "instrumented"],
      harness.SUSTAINED.rounds,
      async (side, recorded) => {
        harness.collectYoungGarbage();
        const ms = await consume(side === "bare" ? bare : instrumented);
        if (recorded) totals[side].push(ms);
      },
    );
    await core.flush(60_000);
    const [metrics] = core.getMetrics();
    const chunks = tokens * streams * harness.SUSTAINED.rounds;
    const split = harness.chargeBaselineExcess(totals.instrumented, totals.bare);
    result("tokens.bare.mean_us", (split.bare * 1000) / chunks, "stream chunk, bare generator (mean)");
    result(
      "tokens.instrumented.added_us",
      ((split.variant - split.bare) * 1000) / chunks,
      "token event added per chunk (mean)",
    );
    result("tokens.instrumented.dropped", metrics.dropped, `dropped of ${metrics.emitted} events`);
    log(`tokens: ${chunks} chunks per side`);
  } finally {
    await core.shutdown(10_000);
  }
}

async function loopDelay(harness, durationMs, tick) {
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  histogram.enable();
  const start = performance.now();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      tick();
      if (performance.now() - start >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  histogram.disable();
  await harness.yieldToLoop();
  return { p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 };
}

async function measureLoopDelay({ core, harness, result, log }, dir) {
  const sink = new core.JsonlFileSink({ path: join(dir, "load.jsonl") });
  core.configure({ sinks: [sink] });
  const perTick = 100; // every 10 ms → 10,000 events/s
  const baseline = await loopDelay(harness, 3_000, () => {});
  let n = 0;
  const loaded = await loopDelay(harness, 3_000, () => {
    core.trace("tick", () => {
      for (let i = 0; i < perTick; i++) core.emit("load", { n: n++, text: "a short payload of event data" });
    });
  });
  await core.flush(60_000);
  const [metrics] = core.getMetrics();
  await core.shutdown(10_000);
  result("loop_delay.baseline.p99_ms", baseline.p99, "event-loop delay p99, no events");
  result("loop_delay.jsonl_10k_per_s.p99_ms", loaded.p99, "event-loop delay p99, 10k events/s → JSONL");
  result("loop_delay.jsonl_10k_per_s.added_p99_ms", loaded.p99 - baseline.p99, "p99 added by the events");
  result("loop_delay.jsonl_10k_per_s.dropped", metrics.dropped, `dropped of ${metrics.emitted} events`);
  log(
    `loop delay p99 (${LOOP_RESOLUTION_MS} ms sampling): ${baseline.p99.toFixed(2)} → ${loaded.p99.toFixed(2)} ms`,
  );
}

export async function run(context) {
  const dir = await mkdtemp(join(tmpdir(), "streamll-bench-"));
  try {
    await measureCalls(context, dir);
    await measureEmit(context);
    await measureTokens(context);
    await measureLoopDelay(context, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
