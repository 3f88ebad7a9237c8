// Reads the stored benchmark results (packages/*/bench/results/*.json, written by `bash scripts/bench.sh` through
// test-support/bench-results.mjs, with the machine they ran on) for the benchmarks page. Numbers on the site come only from these files.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packages } from "./site";

/** One measured case: a value in a unit, optionally against a baseline measured in the same run. */
export interface BenchRow {
  case: string;
  metric: string;
  unit: string;
  value: number;
  baseline?: number;
  ratio?: number;
}

export interface BenchFile {
  package: string;
  file: string;
  title: string;
  date?: string;
  machine: Record<string, string | number>;
  rows: BenchRow[];
}

/**
 * The rows of a results file. `results` is a flat object of dotted keys, `group.case.metric` (e.g.
 * `scale_out.readers_2.events_per_s`), as the benches store it; numbers become rows, other values (settings
 * that are text, broker names) stay out of the tables.
 */
function rowsOf(results: unknown): BenchRow[] {
  if (results === null || typeof results !== "object") return [];
  const rows: BenchRow[] = [];
  for (const [key, value] of Object.entries(results as Record<string, unknown>)) {
    if (typeof value !== "number") continue;
    const parts = key.split(".");
    const metric = parts.pop() ?? key;
    const group = parts.length > 1 ? (parts.shift() ?? "") : "";
    rows.push({
      case: parts.join(".") || metric,
      metric: group ? `${group}: ${metric}` : metric,
      unit: unitOf(metric),
      value,
    });
  }
  return rows;
}

/** The unit a metric name ends in (`events_per_s`, `wall_us`, `mean_handler_ms`). */
function unitOf(metric: string): string {
  if (/per_s$/.test(metric)) return "events/s";
  if (/_ns$/.test(metric)) return "ns";
  if (/_us$/.test(metric)) return "µs";
  if (/_ms$/.test(metric)) return "ms";
  if (/_s$/.test(metric)) return "s";
  if (/_bytes$/.test(metric)) return "bytes";
  if (/_pct$/.test(metric)) return "%";
  if (/speedup|ratio/.test(metric)) return "×";
  return "";
}

const text = (value: unknown) => (Array.isArray(value) ? value.join(" / ") : String(value));

export function loadBenchResults(): BenchFile[] {
  const files: BenchFile[] = [];
  for (const pkg of packages) {
    const dir = join(pkg.path, "bench", "results");
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)
      .filter((file) => file.endsWith(".json"))
      .sort()) {
      const json = JSON.parse(readFileSync(join(dir, name), "utf8")) as Record<string, unknown>;
      const rows = rowsOf(json.results);
      if (rows.length === 0)
        throw new Error(`${pkg.dir}/bench/results/${name}: no results the site can render`);
      files.push({
        package: pkg.manifest.name,
        file: `packages/${pkg.dir}/bench/results/${name}`,
        title:
          typeof json.title === "string"
            ? json.title
            : typeof json.bench === "string"
              ? json.bench
              : name.replace(/\.json$/, ""),
        date: typeof json.started_at === "string" ? json.started_at.slice(0, 10) : undefined,
        machine: Object.fromEntries(
          Object.entries((json.machine ?? {}) as Record<string, unknown>).map(([key, value]) => [
            key,
            text(value),
          ]),
        ),
        rows,
      });
    }
  }
  return files;
}
