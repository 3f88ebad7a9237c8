// Reads the stored benchmark results (packages/*/bench/results/*.json, written by `bash scripts/bench.sh` with
// the machine they ran on) for the benchmarks page. Numbers on the site come only from these files.
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

function rowsOf(value: unknown): BenchRow[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (row): row is BenchRow =>
      typeof row === "object" &&
      row !== null &&
      typeof (row as BenchRow).case === "string" &&
      typeof (row as BenchRow).value === "number" &&
      typeof (row as BenchRow).unit === "string",
  );
}

export function loadBenchResults(): BenchFile[] {
  const files: BenchFile[] = [];
  for (const pkg of packages) {
    const dir = join(pkg.path, "bench", "results");
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)
      .filter((file) => file.endsWith(".json"))
      .sort()) {
      const json = JSON.parse(readFileSync(join(dir, name), "utf8")) as Record<string, unknown>;
      const rows = rowsOf(json.results).map((row) => ({ ...row, metric: row.metric ?? "" }));
      if (rows.length === 0)
        throw new Error(`${pkg.dir}/bench/results/${name}: no results the site can render`);
      files.push({
        package: pkg.manifest.name,
        file: `packages/${pkg.dir}/bench/results/${name}`,
        title: typeof json.title === "string" ? json.title : name.replace(/\.json$/, ""),
        date: typeof json.date === "string" ? json.date : undefined,
        machine: (json.machine ?? {}) as Record<string, string | number>,
        rows,
      });
    }
  }
  return files;
}
