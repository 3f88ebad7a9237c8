import type { CompareReport } from "@streamll/core";
import uPlot from "uplot";
import { h, replace } from "../dom";
import { formatCount, formatDuration, formatP, formatPercent, shortSignature } from "../format";
import { type Execution, rootSpans } from "../model";

const COLORS = ["#3b82f6", "#f97316", "#10b981", "#e11d48", "#8b5cf6", "#eab308", "#06b6d4", "#64748b"];

/** `Qa.forward`, or `Qa.forward › retrieve` for a step's row: `compareEvents` counts them apart. */
function rowName(row: { module: string; method: string | null; operation: string | null }): string {
  const name = row.method === null ? row.module : `${row.module}.${row.method}`;
  return row.operation === null ? name : `${name} › ${row.operation}`;
}

function verdictBadge(verdict: string): HTMLElement {
  return h("span", { class: `verdict verdict-${verdict}` }, verdict);
}

/**
 * The version comparison: per module, method (each `trace()` step apart) and `code_signature`, calls, error rate and p50/p95 latency, then each
 * comparison with the significance result `streamll compare` computes (the server runs core's `compareEvents`
 * over the executions held), and a chart of call durations over time, one series per version.
 */
export class VersionsView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly chartHost: HTMLElement;
  private chart: uPlot | null = null;
  private lastKey = "";

  constructor() {
    this.body = h("div", { class: "versions-body" }, h("p", { class: "muted" }, "Loading the comparison…"));
    this.chartHost = h("div", { class: "chart" });
    this.element = h(
      "section",
      { class: "versions" },
      h("h2", null, "Versions"),
      h(
        "p",
        { class: "muted" },
        "Per module, method (trace() steps apart) and code_signature, over the executions held: the same numbers and tests as `streamll compare` (Mann-Whitney U on durations, z-test or Fisher exact on error rates, Holm-corrected).",
      ),
      this.body,
      h("h3", null, "Root call durations over time, per version"),
      this.chartHost,
    );
  }

  renderReport(report: CompareReport | null, error: string | null): void {
    const key = JSON.stringify([report, error]);
    if (key === this.lastKey) return;
    this.lastKey = key;
    if (error !== null) {
      replace(this.body, h("p", { class: "warning" }, `The comparison could not be loaded: ${error}`));
      return;
    }
    if (report === null) return;
    if (report.versions.length === 0) {
      replace(this.body, h("p", { class: "muted" }, "No module calls yet."));
      return;
    }
    const versionRows = report.versions.map((v) =>
      h(
        "tr",
        null,
        h("td", null, rowName(v)),
        h("td", { title: v.code_signature ?? "no code_signature" }, shortSignature(v.code_signature)),
        h("td", null, v.strategy ?? "—"),
        h("td", null, v.module_version ?? "—"),
        h("td", null, v.git_commit ?? "—"),
        h("td", { class: "num" }, formatCount(v.calls)),
        h("td", { class: "num" }, formatPercent(v.error_rate)),
        h("td", { class: "num" }, formatDuration(v.duration_ms?.p50 ?? null)),
        h("td", { class: "num" }, formatDuration(v.duration_ms?.p95 ?? null)),
        h("td", { class: "num" }, formatDuration(v.duration_ms?.p99 ?? null)),
      ),
    );
    const comparisonRows = report.comparisons.map((c) =>
      h(
        "tr",
        null,
        h("td", null, rowName(c)),
        h(
          "td",
          { title: `${c.baseline ?? "none"} → ${c.candidate ?? "none"}` },
          `${shortSignature(c.baseline)} → ${shortSignature(c.candidate)}`,
        ),
        h(
          "td",
          { class: "num" },
          `${formatDuration(c.duration.p50_baseline)} → ${formatDuration(c.duration.p50_candidate)}`,
        ),
        h(
          "td",
          { class: "num" },
          `${formatDuration(c.duration.p95_baseline)} → ${formatDuration(c.duration.p95_candidate)}`,
        ),
        h(
          "td",
          { class: "num" },
          c.duration.relative_change === null
            ? "—"
            : `${c.duration.relative_change >= 0 ? "+" : ""}${formatPercent(c.duration.relative_change)}`,
        ),
        h("td", { class: "num" }, formatP(c.duration.p_adjusted)),
        h("td", null, verdictBadge(c.duration.verdict)),
        h(
          "td",
          { class: "num" },
          `${formatPercent(c.error_rate.rate_baseline)} → ${formatPercent(c.error_rate.rate_candidate)}`,
        ),
        h("td", { class: "num" }, formatP(c.error_rate.p_adjusted)),
        h(
          "td",
          null,
          verdictBadge(c.error_rate.verdict),
          c.note === null ? null : h("div", { class: "muted" }, c.note),
        ),
      ),
    );
    const head = (...names: string[]) =>
      h("thead", null, h("tr", null, ...names.map((name) => h("th", null, name))));
    replace(
      this.body,
      h(
        "table",
        { class: "versions-table" },
        head(
          "module.method › step",
          "code_signature",
          "strategy",
          "module_version",
          "git_commit",
          "calls",
          "error rate",
          "p50",
          "p95",
          "p99",
        ),
        h("tbody", null, ...versionRows),
      ),
      h("h3", null, "Comparisons"),
      report.comparisons.length === 0
        ? h("p", { class: "muted" }, "Only one version per module so far: nothing to compare.")
        : h(
            "table",
            { class: "comparisons-table" },
            head(
              "module.method › step",
              "baseline → candidate",
              "p50",
              "p95",
              "p50 change",
              "p (Holm)",
              "latency",
              "error rate",
              "p (Holm)",
              "errors",
            ),
            h("tbody", null, ...comparisonRows),
          ),
      h(
        "p",
        { class: "muted" },
        `alpha ${report.alpha}, smallest flagged change ${formatPercent(report.min_effect)}, at least ${report.min_samples} calls per version; ${report.tests} tests over ${formatCount(report.events)} events.`,
      ),
    );
  }

  /** The chart: x = when a root call ended, y = its duration, one series per code_signature. */
  renderChart(executions: Iterable<Execution>, module: string, dark: boolean): void {
    const bySignature = new Map<string, Map<number, number>>();
    for (const execution of executions) {
      const root = rootSpans(execution)[0];
      if (root === undefined || root.status !== "ok" || root.durationMs === null || root.endMs === null)
        continue;
      if (module !== "" && root.module !== module) continue;
      const key = `${root.module} ${shortSignature(root.codeSignature)}`;
      let points = bySignature.get(key);
      if (points === undefined) {
        points = new Map();
        bySignature.set(key, points);
      }
      points.set(root.endMs / 1000, root.durationMs);
    }
    const keys = [...bySignature.keys()].slice(0, COLORS.length);
    const xs = [...new Set(keys.flatMap((key) => [...bySignature.get(key)!.keys()]))].sort((a, b) => a - b);
    const data: uPlot.AlignedData = [
      xs,
      ...keys.map((key) => {
        const points = bySignature.get(key)!;
        return xs.map((x) => points.get(x) ?? null);
      }),
    ];
    this.chart?.destroy();
    this.chart = null;
    replace(this.chartHost);
    if (xs.length === 0) {
      this.chartHost.append(h("p", { class: "muted" }, "No finished root calls yet."));
      return;
    }
    const axisColor = dark ? "#cbd5e1" : "#334155";
    const gridColor = dark ? "#334155" : "#e2e8f0";
    const width = Math.max(320, this.chartHost.clientWidth || 720);
    this.chart = new uPlot(
      {
        width,
        height: 260,
        scales: { x: { time: true }, y: { auto: true } },
        axes: [
          { stroke: axisColor, grid: { stroke: gridColor } },
          {
            stroke: axisColor,
            grid: { stroke: gridColor },
            size: 80,
            values: (_u, values) => values.map((v) => formatDuration(v)),
          },
        ],
        series: [
          {},
          ...keys.map((key, i) => ({
            label: key,
            stroke: COLORS[i],
            width: 0,
            paths: () => null,
            points: { show: true, size: 6, fill: COLORS[i] },
            value: (_u: uPlot, v: number | null) => formatDuration(v),
          })),
        ],
      },
      data,
      this.chartHost,
    );
  }
}
