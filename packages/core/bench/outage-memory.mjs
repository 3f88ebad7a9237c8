// Memory during a long outage, the delivery pipeline alone (a sink that fails every send; the Kafka client's
// share is in packages/sink-kafka/bench/outage-memory.mjs): `node bench/outage-memory.mjs [seconds] [rate]`
// after `pnpm --filter @streamll/core build`. Each variant runs in a fresh process (outage-memory-child.mjs)
// emitting ~500 B events at a steady rate, and reports RSS, the V8 heap (total, used, young and old
// generation) and external memory at the start, at the end, and after two full GCs (what is really retained).
// Variants: the outage with default V8 flags; the same with the young generation capped
// (--max-semi-space-size=8); the outage with the disk spill; a healthy sink at the same rate.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startBench } from "../../../test-support/bench-results.mjs";

const seconds = Number(process.argv[2] ?? 40);
const rate = Number(process.argv[3] ?? 5_000);
const child = fileURLToPath(new URL("./outage-memory-child.mjs", import.meta.url));
const MiB = 1024 * 1024;
const bench = startBench(
  new URL("..", import.meta.url),
  "outage-memory",
  `memory during a ${seconds} s outage at ${rate} events/s of ~500 B, pipeline alone`,
);

const variants = [
  ["outage", "outage", []],
  ["outage_semi_space_8", "outage", ["--max-semi-space-size=8"]],
  ["outage_spill", "outage-spill", []],
  ["healthy", "healthy", []],
];
for (const [name, mode, flags] of variants) {
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", ...flags, child, mode, String(seconds), String(rate)],
    { encoding: "utf8", timeout: (seconds + 120) * 1_000 },
  );
  const r = JSON.parse(out.trim().split("\n").pop());
  const result = {
    rss_growth_bytes: r.end.rss - r.start.rss,
    peak_rss_growth_bytes: r.peak_rss - r.start.rss,
    heap_total_growth_bytes: r.end.heap_total - r.start.heap_total,
    young_generation_bytes: r.end.new_space,
    old_generation_bytes: r.end.old_space,
    retained_after_gc_bytes: r.after_gc.heap_used - r.start.heap_used,
    external_growth_bytes: r.end.external - r.start.external,
    queue_bytes: r.queue_bytes,
    pending: r.pending,
    dropped: r.dropped,
    spilled: r.spilled,
  };
  bench.merge(`memory.${name}`, result);
  console.log(
    name,
    Object.fromEntries(
      Object.entries(result).map(([k, v]) => [k, k.endsWith("_bytes") ? `${(v / MiB).toFixed(1)} MiB` : v]),
    ),
  );
}
console.log(`results: ${bench.write()}`);
