// What instrumentAx adds to a `forward` of an Ax program: the same program (a real `ax(...)` on Ax's
// AxMockAIService, answering with token usage) called bare and instrumented, with streamll delivering to a
// sink with default settings that reads every event (readingSink). streamll is configured once, as a service
// does (with version tracking on); every round gets a fresh program and a fresh AxMockAIService on both sides,
// because the mock keeps per-request metrics that slow every later call down (five-fold after ~10,000 calls),
// which would swamp what is measured. Rounds of BENCH_CALLS sequential awaited calls (yielding to the event
// loop every 250 calls, as a service would) are timed as a whole and alternate between the sides, the order
// flipping every round, after warm-up rounds; the reported numbers are MEANS per call with GC and the sink's
// sends included, and a busy moment of a shared machine hits both sides alike. Each round starts with an empty
// young generation, not after a forced full collection (see collectYoungGarbage), and a bare round's time beyond
// the median bare round is charged to the instrumented side (chargeBaselineExcess).
// Also recorded: this process's CPU time per call, which a machine busy with other work disturbs less.
// Target: added time <= 5 % of the bare call or <= 10 µs, whichever is larger.
// Usage: pnpm --filter @streamll/ax bench (BENCH_CALLS, BENCH_CALL_ROUNDS to override). Needs `pnpm build`.
// Writes bench/results/ax.json (test-support/bench-results.mjs).
import { performance } from "node:perf_hooks";
import { AxMockAIService, ax } from "@ax-llm/ax";
import * as core from "@streamll/core";
import {
  alternatingRounds,
  chargeBaselineExcess,
  collectYoungGarbage,
  perCall,
  readingSink,
  yieldToLoop,
} from "../../../test-support/bench-calls.mjs";
import { startBench } from "../../../test-support/bench-results.mjs";
import { instrumentAx } from "../dist/index.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_CALL_ROUNDS ?? 5);
const YIELD_EVERY = 250;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const bench = startBench(
  new URL("..", import.meta.url),
  "ax",
  "instrumentAx: added time per forward() of an Ax program on AxMockAIService, against the bare program",
);

const mockService = () =>
  new AxMockAIService({
    name: "mock-ai",
    modelInfo: { name: "mock-model" },
    chatResponse: {
      results: [{ index: 0, content: "Answer: Paris is the capital of France.", finishReason: "stop" }],
      modelUsage: {
        ai: "mock-ai",
        model: "mock-model",
        tokens: { promptTokens: 42, completionTokens: 9, totalTokens: 51 },
      },
    },
  });
const program = () => ax('"Answers geography questions" question:string -> answer:string');
const values = { question: "What is the capital of France?" };

/** Wall time and this process's CPU time (user + system) of one round, in milliseconds. */
async function round(target, service) {
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) {
    await target.forward(service, values);
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToLoop();
  }
  await yieldToLoop();
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000 };
}

const totals = {
  bare: { ms: [], cpuMs: [] },
  instrumented: { ms: [], cpuMs: [], emitted: 0, delivered: 0, dropped: 0 },
};
core.configure({ sinks: [readingSink()], logger: quiet, versionTracking: true });
let before;
await alternatingRounds(
  ["instrumented", "bare"],
  ROUNDS,
  async (side, recorded) => {
    const target = side === "instrumented" ? instrumentAx(program()) : program();
    const service = mockService();
    collectYoungGarbage();
    await yieldToLoop();
    const { ms, cpuMs } = await round(target, service);
    if (side === "instrumented") await core.flush(120_000);
    if (recorded) {
      totals[side].ms.push(ms);
      totals[side].cpuMs.push(cpuMs);
    }
  },
  async () => {
    await core.flush(120_000);
    before = core.getMetrics()[0];
  },
);
const [after] = core.getMetrics();
await core.shutdown(10_000);
totals.instrumented.emitted = after.emitted - before.emitted;
totals.instrumented.delivered = after.delivered - before.delivered;
totals.instrumented.dropped = after.dropped - before.dropped;

const calls = CALLS * ROUNDS;
// A bare round's time beyond the median bare round (a major collection of the instrumented side's garbage
// that ran in it) is charged to the instrumented side; the same for CPU time.
const wall = chargeBaselineExcess(totals.instrumented.ms, totals.bare.ms);
const cpu = chargeBaselineExcess(totals.instrumented.cpuMs, totals.bare.cpuMs);
const bareUs = (wall.bare * 1000) / calls;
const instrumentedUs = (wall.variant * 1000) / calls;
const addedUs = instrumentedUs - bareUs;
const budgetUs = Math.max(0.05 * bareUs, 10);
// CPU time spent by this process per call: on a machine shared with other work it moves less than wall time.
const bareCpuUs = (cpu.bare * 1000) / calls;
const instrumentedCpuUs = (cpu.variant * 1000) / calls;
console.log(
  `cpu: bare ${bareCpuUs.toFixed(1)} µs/forward, instrumented ${instrumentedCpuUs.toFixed(1)} µs/forward, +${(instrumentedCpuUs - bareCpuUs).toFixed(1)} µs`,
);
console.log(
  `bare: ${bareUs.toFixed(1)} µs/forward (rounds ${perCall(totals.bare.ms, CALLS, 1)}; ${wall.charged.toFixed(1)} ms charged to the instrumented side)`,
);
console.log(
  `instrumented: ${instrumentedUs.toFixed(1)} µs/forward, +${addedUs.toFixed(1)} µs (${((addedUs / bareUs) * 100).toFixed(1)} %; budget ${budgetUs.toFixed(1)} µs) (rounds ${perCall(totals.instrumented.ms, CALLS, 1)})`,
);
console.log(
  `events: ${totals.instrumented.emitted} emitted, ${totals.instrumented.delivered} delivered, ${totals.instrumented.dropped} dropped`,
);
bench.merge("forward", {
  bare: { mean_us: bareUs, cpu_us: bareCpuUs },
  instrumented: {
    mean_us: instrumentedUs,
    cpu_us: instrumentedCpuUs,
    added_cpu_us: instrumentedCpuUs - bareCpuUs,
    added_us: addedUs,
    added_pct: (addedUs / bareUs) * 100,
    budget_us: budgetUs,
    events_per_call: totals.instrumented.emitted / calls,
    delivered: totals.instrumented.delivered,
    dropped: totals.instrumented.dropped,
  },
});
bench.set("forward.settings.calls_per_round", CALLS);
bench.set("forward.settings.rounds", ROUNDS);
bench.write();
