import { h, setText } from "../dom";
import {
  formatCost,
  formatCount,
  formatCountOf,
  formatDuration,
  formatTime,
  formatTokens,
  shortSignature,
} from "../format";
import type { ExecutionSummary } from "../model";

/** Rows rendered at most; the rest are counted ("refine the filters"). */
export const MAX_ROWS = 300;

interface Row {
  readonly element: HTMLTableRowElement;
  /** The summary shown: a summary is a new object whenever it changed, so an equal one needs no update. */
  shown: ExecutionSummary | null;
  readonly cells: {
    time: HTMLTableCellElement;
    module: HTMLTableCellElement;
    status: HTMLSpanElement;
    duration: HTMLTableCellElement;
    tokens: HTMLTableCellElement;
    cost: HTMLTableCellElement;
    version: HTMLTableCellElement;
  };
}

/**
 * The live list of executions, newest first. Rows are kept per execution and only their changed texts are
 * updated, so a busy stream costs little DOM work.
 */
export class ExecutionList {
  readonly element: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly footer: HTMLElement;
  private readonly rows = new Map<string, Row>();
  private selected: string | null = null;

  constructor(private readonly onSelect: (id: string) => void) {
    this.body = h("tbody");
    this.footer = h("p", { class: "list-footer muted" });
    this.element = h(
      "section",
      { class: "executions" },
      h(
        "table",
        { class: "execution-table" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", null, "started"),
            h("th", null, "module"),
            h("th", null, "status"),
            h("th", { class: "num" }, "duration"),
            h("th", { class: "num" }, "tokens"),
            h("th", { class: "num" }, "cost"),
            h("th", null, "version"),
          ),
        ),
        this.body,
      ),
      this.footer,
    );
  }

  /** Shows `summaries` (already filtered and sorted); `total` is the number before the row cap. */
  render(summaries: readonly ExecutionSummary[], total: number, held: number): void {
    const shown = summaries.slice(0, MAX_ROWS);
    const ids = shown.map((summary) => summary.id);
    for (const summary of shown) this.update(summary);
    const keep = new Set(ids);
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.element.remove();
        this.rows.delete(id);
      }
    }
    // Move only what moved: new executions go in at the top, the rest stay where they are.
    let cursor = this.body.firstChild;
    for (const id of ids) {
      const element = this.rows.get(id)?.element;
      if (element === undefined) continue;
      if (element === cursor) cursor = cursor.nextSibling;
      else this.body.insertBefore(element, cursor);
    }
    const hidden = total - shown.length;
    setText(
      this.footer,
      total === 0
        ? held === 0
          ? "Waiting for events…"
          : "No execution matches the filters."
        : `${formatCount(total)} of ${formatCountOf(held, "execution")}${hidden > 0 ? ` (newest ${MAX_ROWS} shown: refine the filters for the rest)` : ""}`,
    );
  }

  select(id: string | null): void {
    if (this.selected !== null) this.rows.get(this.selected)?.element.classList.remove("selected");
    this.selected = id;
    if (id !== null) this.rows.get(id)?.element.classList.add("selected");
  }

  private update(summary: ExecutionSummary): void {
    let row = this.rows.get(summary.id);
    if (row === undefined) {
      const status = h("span", { class: "status" });
      const cells = {
        time: h("td", { class: "time" }),
        module: h("td", { class: "module" }),
        status,
        duration: h("td", { class: "num" }),
        tokens: h("td", { class: "num" }),
        cost: h("td", { class: "num" }),
        version: h("td", { class: "version" }),
      };
      const element = h(
        "tr",
        {
          data: { execution: summary.id },
          attrs: { tabindex: "0" },
          on: {
            click: () => this.onSelect(summary.id),
            keydown: (event) => {
              if (event.key === "Enter" || event.key === " ") {
                event.preventDefault();
                this.onSelect(summary.id);
              }
            },
          },
        },
        cells.time,
        cells.module,
        h("td", null, status),
        cells.duration,
        cells.tokens,
        cells.cost,
        cells.version,
      );
      if (summary.id === this.selected) element.classList.add("selected");
      row = { element, cells, shown: null };
      this.rows.set(summary.id, row);
    }
    if (row.shown === summary) return;
    row.shown = summary;
    const { cells } = row;
    setText(cells.time, formatTime(summary.startMs));
    setText(cells.module, summary.method === null ? summary.module : `${summary.module}.${summary.method}`);
    const statusText =
      summary.errors > 0 && summary.status !== "error"
        ? `${summary.status} (${summary.errors} err)`
        : summary.status;
    setText(cells.status, statusText);
    cells.status.className = `status status-${summary.status}`;
    setText(cells.duration, formatDuration(summary.durationMs));
    setText(cells.tokens, formatTokens(summary));
    setText(cells.cost, formatCost(summary.cost));
    const version =
      summary.moduleVersion === null
        ? shortSignature(summary.codeSignature)
        : `${shortSignature(summary.codeSignature)} · ${summary.moduleVersion}`;
    setText(cells.version, version);
    cells.version.title = summary.codeSignature ?? "no code_signature";
  }
}
