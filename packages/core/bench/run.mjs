// Core benchmark: `pnpm --filter @streamll/core bench` (node --expose-gc bench/run.mjs).
// Runs against the built package (../dist/index.js), so build first. Each file in bench/cases/ is a case
// module loaded in file-name order; it exports `title` and `run(context)` and adds rows with `context.row()`.
// Benchmarks print; they never fail the process on a missed target (tests assert behaviour, not speed).
import { readdir } from "node:fs/promises";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as harness from "./harness.mjs";

const casesDir = fileURLToPath(new URL("./cases/", import.meta.url));
const only = process.argv.slice(2);

const core = await import("../dist/index.js").catch((error) => {
  console.error("bench: cannot load ../dist/index.js — run `pnpm --filter @streamll/core build` first.");
  console.error(error);
  process.exit(1);
});

const cpus = os.cpus();
console.log("streamll core benchmark");
console.log(
  `machine: ${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
);
console.log(`node ${process.version} on ${os.platform()} ${os.release()} (${os.arch()})`);
if (typeof globalThis.gc !== "function") console.log("note: run with --expose-gc for steadier numbers");
console.log("");

/** @type {{ case: string; metric: string; value: string; target: string; verdict: string }[]} */
const rows = [];
const files = (await readdir(casesDir)).filter((f) => f.endsWith(".mjs")).sort();
const started = performance.now();

for (const file of files) {
  const mod = await import(pathToFileURL(`${casesDir}${file}`).href);
  const title = typeof mod.title === "string" ? mod.title : file;
  if (only.length > 0 && !only.some((o) => file.includes(o) || title.includes(o))) continue;
  const caseStart = performance.now();
  process.stdout.write(`running ${title} …\n`);
  const context = {
    core,
    harness,
    /** Adds a result row. `target` and `pass` are optional; a row without them is informational. */
    row({ metric, value, target = "", pass }) {
      const verdict = pass === undefined ? "" : pass ? "PASS" : "MISS";
      rows.push({ case: title, metric, value, target, verdict });
    },
    log(message) {
      process.stdout.write(`  ${message}\n`);
    },
  };
  try {
    await mod.run(context);
  } catch (error) {
    rows.push({
      case: title,
      metric: "error",
      value: String(error?.message ?? error),
      target: "",
      verdict: "ERROR",
    });
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
