// The one results writer every benchmark uses. A bench run is stored as
// `packages/<package>/bench/results/<name>.json`:
//
//   { bench, title, started_at, finished_at, duration_s,
//     machine: { cpu, cores, memory_gib, node, platform, load_average_start, load_average_end },
//     results: { "group.case.metric": number | string, ... } }
//
// `results` is flat, so a doc cites one value by its key (scripts/docs-check/check-bench-numbers.mjs) and the
// docs site renders every number (apps/docs/.vitepress/bench.ts). Metric names end in their unit: `_ns`,
// `_us`, `_ms`, `_s`, `_bytes`, `_per_s` (events per second), `_ratio` (×), `_pct`; a bare name is a count.
// The load average at the start and the end says how quiet the machine was: on a shared machine a run with a
// load above its core count is provisional, and the numbers say so only through these two fields.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

const load = () => loadavg().map((n) => Math.round(n * 100) / 100);

/** The machine a run is measured on, with its load average now. */
export function machine() {
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} (${process.arch})`,
    load_average_start: load(),
  };
}

/** Rounds to 4 significant digits (and integers above 1,000 to integers): enough for any doc, short to read. */
export function tidy(value) {
  if (!Number.isFinite(value) || Number.isInteger(value)) return value;
  if (Math.abs(value) >= 1_000) return Math.round(value);
  return Number(value.toPrecision(4));
}

const KEY = /^[a-z0-9_]+(\.[a-z0-9_]+)+$/;

/**
 * Starts a bench run: `packageDir` is the package's directory (a path or a `file:` URL, e.g.
 * `new URL("..", import.meta.url)` from `bench/run.mjs`), `name` the results file's name, `title` one line
 * that says what is measured. Record with `set(key, value)` or `merge(prefix, nested)`, then `write()`.
 */
export function startBench(packageDir, name, title) {
  const dir = typeof packageDir === "string" ? packageDir : fileURLToPath(packageDir);
  const startedAt = new Date();
  const startMachine = machine();
  const results = {};
  return {
    /** Stores one value under a `group.case.metric` key (lower-case, digits and underscores). */
    set(key, value) {
      if (!KEY.test(key)) throw new Error(`bench result key ${JSON.stringify(key)} is not group.case.metric`);
      if (typeof value === "number" && !Number.isFinite(value))
        throw new Error(`bench result ${key} is ${value}`);
      if (typeof value !== "number" && typeof value !== "string")
        throw new Error(`bench result ${key} must be a number or a short string`);
      results[key] = typeof value === "number" ? tidy(value) : value;
      return value;
    },
    /** Stores a nested object of numbers and short strings under `prefix`; arrays are joined into a string. */
    merge(prefix, nested) {
      for (const [key, value] of Object.entries(nested)) {
        const path = prefix ? `${prefix}.${key}` : key;
        if (Array.isArray(value)) this.set(path, value.map(tidy).join(" "));
        else if (typeof value === "object" && value !== null) this.merge(path, value);
        else this.set(path, value);
      }
    },
    /** The values recorded so far (flat). */
    get results() {
      return { ...results };
    },
    /** Writes `<packageDir>/bench/results/<name>.json` and returns its path. */
    write() {
      const resultsDir = join(dir, "bench", "results");
      mkdirSync(resultsDir, { recursive: true });
      const file = join(resultsDir, `${name}.json`);
      const finishedAt = new Date();
      const record = {
        bench: `${basename(dir.replace(/\/$/, ""))}/${name}`,
        title,
        started_at: startedAt.toISOString(),
        finished_at: finishedAt.toISOString(),
        duration_s: Math.round((finishedAt - startedAt) / 100) / 10,
        machine: { ...startMachine, load_average_end: load() },
        results,
      };
      writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
      console.log(
        `results: ${file} (load average ${record.machine.load_average_start.join(" ")} → ${record.machine.load_average_end.join(" ")})`,
      );
      return file;
    },
  };
}
