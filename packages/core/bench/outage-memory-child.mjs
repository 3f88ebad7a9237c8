// One run of outage-memory.mjs: emits `tick` events of about 500 B at a steady rate for a while through
// `emit()`, then prints one JSON line with memory at the start, at the end, and after two full GCs.
// argv: <mode: outage | outage-spill | healthy> <seconds> <rate>. Needs --expose-gc.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";

const core = await import("../dist/index.js");
const [mode = "outage", secondsArg = "40", rateArg = "5000"] = process.argv.slice(2);
const seconds = Number(secondsArg);
const rate = Number(rateArg);
const spillDir = mode === "outage-spill" ? mkdtempSync(join(tmpdir(), "streamll-outage-memory-")) : undefined;
const sink =
  mode === "healthy"
    ? { name: "up", async send() {}, async close() {} }
    : {
        name: "down",
        async send() {
          throw new core.SinkError("broker unavailable", { retriable: true });
        },
        async close() {},
      };
core.configure({
  sinks: [
    {
      sink,
      delivery: {
        // The queue the outage was first measured with (10,000 events, about 6 MB of these events).
        maxQueueSize: 10_000,
        circuitBreaker: { resetTimeoutMs: 1_000 },
        ...(spillDir ? { spill: { directory: spillDir } } : {}),
      },
    },
  ],
  logger: { warn() {}, error() {} },
});
const pad = "x".repeat(220);
const memory = () => {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  return {
    rss: m.rss,
    heap_used: m.heapUsed,
    heap_total: m.heapTotal,
    external: m.external + m.arrayBuffers,
    new_space: spaces.new_space,
    old_space: spaces.old_space,
  };
};
await new Promise((resolve) => setTimeout(resolve, 500));
globalThis.gc();
const start = memory();
const began = performance.now();
let seq = 0;
let peakRss = 0;
while (performance.now() - began < seconds * 1_000) {
  const due = Math.floor(((performance.now() - began) / 1_000) * rate);
  while (seq < due) core.emit("tick", { seq: seq++, pad });
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const end = memory();
const metrics = core.getMetrics()[0];
globalThis.gc();
await new Promise((resolve) => setTimeout(resolve, 100));
globalThis.gc();
const afterGc = memory();
console.log(
  JSON.stringify({
    start,
    end,
    after_gc: afterGc,
    peak_rss: peakRss,
    queue_bytes: metrics.pendingBytes,
    pending: metrics.pending,
    emitted: metrics.emitted,
    dropped: metrics.dropped,
    spilled: metrics.spilled,
  }),
);
if (spillDir) rmSync(spillDir, { recursive: true, force: true });
process.exit(0);
