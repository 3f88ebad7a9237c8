// Core benchmark: `pnpm --filter @streamll/core bench` (node --expose-gc bench/run.mjs [case ...]).
// Runs against the built package (../dist/index.js), so build first. Each file in bench/cases/ is a case
// module loaded in file-name order; it exports `title` and `run(context)` and records its numbers with
// `context.result(key, value, label)`, which prints them and stores them in bench/results/<case>.json
// (test-support/bench-results.mjs). Benchmarks print; they never fail the process on a missed target (tests
// assert behaviour, not speed).
import { readdir } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startBench } from "../../../test-support/bench-results.mjs";
import * as harness from "./harness.mjs";

const casesDir = fileURLToPath(new URL("./cases/", import.meta.url));
const only = process.argv.slice(2);

const core = await import("../dist/index.js").catch((error) => {
  console.error("bench: cannot load ../dist/index.js — run `pnpm --filter @streamll/core build` first.");
  console.error(error);
  process.exit(1);
});

console.log("streamll core benchmark");
if (typeof globalThis.gc !== "function") console.log("note: run with --expose-gc for steadier numbers");

/** @type {{ case: string; metric: string; value: string; target: string; verdict: string }[]} */
const rows = [];
const files = (await readdir(casesDir)).filter((f) => f.endsWith(".mjs")).sort();
const started = performance.now();
let failed = false;

for (const file of files) {
  const mod = await import(pathToFileURL(`${casesDir}${file}`).href);
  const name = file.replace(/\.mjs$/, "");
  const title = typeof mod.title === "string" ? mod.title : name;
  if (only.length > 0 && !only.some((o) => file.includes(o) || title.includes(o))) continue;
  const caseStart = performance.now();
  process.stdout.write(`\nrunning ${name}: ${title}\n`);
  const bench = startBench(new URL("..", import.meta.url), name, title);
  const context = {
    core,
    harness,
    bench,
    /**
     * Stores `value` under `key` (`group.case.metric`, the metric ending in its unit) and prints it as a row;
     * `target` is a number in the same unit that the value should not exceed.
     */
    result(key, value, label, target) {
      bench.set(key, value);
      if (target !== undefined)
        bench.set(`${key.replace(/\.[^.]+$/, "")}.target_${key.split("_").pop()}`, target);
      rows.push({
        case: name,
        metric: label ?? key,
        value: harness.formatValue(key, value),
        target: target === undefined ? "" : `≤ ${harness.formatValue(key, target)}`,
        verdict: target === undefined ? "" : value <= target ? "PASS" : "MISS",
      });
    },
    log(message) {
      process.stdout.write(`  ${message}\n`);
    },
  };
  try {
    await mod.run(context);
    bench.write();
  } catch (error) {
    failed = true;
    rows.push({
      case: name,
      metric: "error",
      value: String(error?.message ?? error),
      target: "",
      verdict: "ERROR",
    });
    console.error(error);
  }
  process.stdout.write(`  done in ${((performance.now() - caseStart) / 1000).toFixed(1)} s\n`);
}

const headers = { case: "case", metric: "metric", value: "value", target: "target", verdict: "result" };
const columns = Object.keys(headers);
const widths = columns.map((c) => Math.max(headers[c].length, ...rows.map((r) => String(r[c]).length)));
const line = (r) =>
  columns
    .map((c, i) => String(r[c]).padEnd(widths[i]))
    .join("  ")
    .trimEnd();
console.log("");
console.log(line(headers));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log("");
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
// A case that threw stored nothing: say so in the exit code, so `scripts/bench.sh` does not pass it silently.
if (failed) process.exitCode = 1;
