import type {
  CompareReport,
  CompareVerdict,
  DurationComparison,
  ErrorRateComparison,
} from "./compare-versions";
import type { VersionSummary } from "./version-aggregator";

/** The human-readable report `streamll compare` prints (without `--json`). */
export function formatCompareReport(report: CompareReport): string {
  const lines: string[] = [];
  const sources = report.files.length === 1 ? "1 file" : `${report.files.length} files`;
  const skipped: string[] = [];
  if (report.duplicate_events > 0) {
    skipped.push(`${report.duplicate_events} duplicate event${report.duplicate_events === 1 ? "" : "s"}`);
  }
  if (report.invalid_lines > 0) skipped.push(`${report.invalid_lines} unreadable lines`);
  lines.push(
    `streamll compare: ${sources}, ${report.events} events` +
      (skipped.length > 0 ? ` (${skipped.join(", ")} skipped)` : ""),
  );
  if (report.versions.length === 0) {
    lines.push("", "no instrumented calls found");
    return `${lines.join("\n")}\n`;
  }
  let heading: string | null = null;
  let rows: string[][] = [];
  const flush = () => {
    if (heading === null) return;
    lines.push("", heading, ...table(VERSION_HEADER, rows).map((line) => `  ${line}`));
    rows = [];
  };
  for (const version of report.versions) {
    const next = rowHeading(version);
    if (next !== heading) {
      flush();
      heading = next;
    }
    rows.push(versionRow(version));
  }
  flush();

  lines.push("");
  if (report.comparisons.length === 0) {
    const rows = new Set(report.versions.map(rowHeading));
    lines.push(
      rows.size === report.versions.length
        ? "comparisons: none (every module, method and operation has a single version)"
        : "comparisons: none (no other version shares a module, method and operation with the selected one)",
    );
    return `${lines.join("\n")}\n`;
  }
  lines.push(
    `comparisons: ${report.comparisons.length}, ${report.tests} tests, alpha ${report.alpha} ` +
      `with Holm correction across all tests; duration changes under ${formatPercent(report.min_effect, 0)} ` +
      `of the median are never flagged; fewer than ${report.min_samples} calls per version are not tested`,
  );
  for (const comparison of report.comparisons) {
    lines.push(
      "",
      `  ${rowName(comparison)}: ${label(comparison.baseline)} -> ${label(comparison.candidate)}`,
    );
    if (comparison.note !== null) {
      lines.push(`    not compared: ${comparison.note}`);
      continue;
    }
    lines.push(`    duration    ${describeDuration(comparison.duration)}`);
    lines.push(`    error rate  ${describeErrors(comparison.error_rate)}`);
  }
  return `${lines.join("\n")}\n`;
}

type Row = Pick<VersionSummary, "module" | "method" | "operation">;

/** `module Qa, method forward`, then `, operation retrieval` for a `trace()` step's row. */
function rowHeading(row: Row): string {
  let text = `module ${row.module}`;
  if (row.method !== null) text += `, method ${row.method}`;
  if (row.operation !== null) text += `, operation ${row.operation}`;
  return text;
}

/** `Qa.forward`, or `Qa.forward (operation retrieval)`. */
function rowName(row: Row): string {
  const name = row.method === null ? row.module : `${row.module}.${row.method}`;
  return row.operation === null ? name : `${name} (operation ${row.operation})`;
}

const VERSION_HEADER = [
  "code_signature",
  "strategy",
  "module_version",
  "git_commit",
  "calls",
  "errors",
  "error %",
  "p50 ms",
  "p95 ms",
  "p99 ms",
  "tokens",
];

function versionRow(version: VersionSummary): string[] {
  const duration = version.duration_ms;
  return [
    label(version.code_signature),
    version.strategy ?? "-",
    labels(version.module_version, version.module_versions),
    labels(version.git_commit, version.git_commits),
    String(version.calls),
    String(version.errors),
    formatPercent(version.error_rate, 1),
    duration ? formatMs(duration.p50) : "-",
    duration ? formatMs(duration.p95) : "-",
    duration ? formatMs(duration.p99) : "-",
    modelTokens(version.usage),
  ];
}

/** The first value, plus how many others the same signature ran under: `qa@1.0.0 +1 more`. */
function labels(first: string | null, all: readonly string[]): string {
  if (first === null) return "-";
  return all.length > 1 ? `${first} +${all.length - 1} more` : first;
}

/**
 * Language-model tokens of the version's calls, from `usage` on their `end` events: `total_tokens`, else
 * `prompt_tokens + completion_tokens`; `-` when no call reported usage. (Streamed chunks are a different
 * count: `token_events` and `token_count` of the JSON report.)
 */
function modelTokens(usage: Readonly<Record<string, number>>): string {
  if (usage.total_tokens !== undefined) return String(usage.total_tokens);
  if (usage.prompt_tokens === undefined && usage.completion_tokens === undefined) return "-";
  return String((usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0));
}

function table(header: readonly string[], rows: readonly string[][]): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const numeric = (column: number) => column >= 4;
  const render = (row: readonly string[]) =>
    row
      .map((cell, column) =>
        numeric(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!),
      )
      .join("  ")
      .trimEnd();
  return [render(header), ...rows.map(render)];
}

function label(signature: string | null): string {
  return signature ?? "(no signature)";
}

function describeDuration(duration: DurationComparison): string {
  const samples = `n = ${duration.n_baseline} vs ${duration.n_candidate}`;
  if (duration.p50_baseline === null || duration.p50_candidate === null) {
    return `${samples}; ${verdictText(duration.verdict)}`;
  }
  const change =
    duration.relative_change === null ? "" : ` (${formatSignedPercent(duration.relative_change)})`;
  const medians = `p50 ${formatMs(duration.p50_baseline)} -> ${formatMs(duration.p50_candidate)} ms${change}`;
  if (duration.p_value === null) return `${medians}, ${samples}; ${verdictText(duration.verdict)}`;
  return (
    `${medians}, ${samples}, Mann-Whitney U = ${formatNumber(duration.u)}, z = ${formatNumber(duration.z, 2)}, ` +
    `P(slower) = ${formatNumber(duration.probability_slower, 2)}, p ${formatP(duration.p_value)}, ` +
    `adjusted p ${formatP(duration.p_adjusted)}; ${verdictText(duration.verdict)}`
  );
}

function describeErrors(errors: ErrorRateComparison): string {
  const rates =
    `${formatPercent(errors.rate_baseline, 1)} -> ${formatPercent(errors.rate_candidate, 1)} ` +
    `(${errors.errors_baseline}/${errors.calls_baseline} vs ${errors.errors_candidate}/${errors.calls_candidate})`;
  if (errors.test === null) return `${rates}; ${verdictText(errors.verdict)}`;
  const test =
    errors.test === "fisher-exact"
      ? "Fisher exact test"
      : `two-proportion z-test, z = ${formatNumber(errors.z, 2)}`;
  return `${rates}, ${test}, p ${formatP(errors.p_value)}, adjusted p ${formatP(errors.p_adjusted)}; ${verdictText(errors.verdict)}`;
}

function verdictText(verdict: CompareVerdict): string {
  switch (verdict) {
    case "regression":
      return "REGRESSION";
    case "improvement":
      return "improvement";
    case "no-significant-change":
      return "no significant change";
    case "insufficient-data":
      return "not tested (too few calls)";
    default:
      return "not comparable";
  }
}

function formatMs(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatPercent(value: number, digits: number): string {
  return `${(value * 100).toFixed(digits)}%`;
}

function formatSignedPercent(value: number): string {
  const text = (value * 100).toFixed(1);
  // A change that rounds to zero reads "+0.0%", never "-0.0%".
  return text.startsWith("-") && Number(text) !== 0 ? `${text}%` : `+${text.replace("-", "")}%`;
}

function formatNumber(value: number | null, digits = 0): string {
  return value === null ? "-" : value.toFixed(digits);
}

function formatP(value: number | null): string {
  if (value === null) return "= -";
  if (value < 0.0001) return "< 0.0001";
  return `= ${value.toFixed(4)}`;
}
