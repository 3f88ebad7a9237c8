import { h, replace } from "../dom";
import { formatCost, formatCount, formatDuration, formatOffset, formatTime, formatTokens } from "../format";
import {
  type Execution,
  type ExecutionSummary,
  inTimeOrder,
  type Span,
  spanExtent,
  spanTree,
  streamText,
  type WireEvent,
} from "../model";
import { dataView } from "./json-view";

/** Events listed per span at most (the newest are kept); the rest are counted. */
const MAX_EVENTS_LISTED = 500;

function spanName(span: Span): string {
  const call = span.method === null ? span.module : `${span.module}.${span.method}`;
  return span.operation === null ? call : `${span.operation} (${call})`;
}

/**
 * One execution: its numbers, the span tree as a waterfall, and the selected span's streamed text, error,
 * and events. Rebuilt when the execution changes; which span is selected and which fields are open survive.
 */
export class ExecutionDetail {
  readonly element: HTMLElement;
  private selectedSpan: string | null = null;
  /** Open collapsed fields, by path: kept across live re-renders. */
  private readonly open = new Set<string>();
  private executionId: string | null = null;

  constructor() {
    this.element = h(
      "section",
      { class: "detail" },
      h("p", { class: "muted empty" }, "Select an execution."),
    );
  }

  render(
    execution: Execution | undefined,
    summary: ExecutionSummary | undefined,
    eventType: string,
    dropped: number,
    now: number,
  ): void {
    if (execution === undefined || summary === undefined) {
      this.executionId = null;
      replace(this.element, h("p", { class: "muted empty" }, "Select an execution."));
      return;
    }
    if (execution.id !== this.executionId) {
      this.executionId = execution.id;
      this.selectedSpan = null;
      this.open.clear();
    }
    const tree = spanTree(execution);
    const selected = tree.find(({ span }) => span.id === this.selectedSpan)?.span ?? tree[0]?.span;
    const scroll = this.element.scrollTop;
    replace(
      this.element,
      this.header(execution, summary, dropped),
      this.waterfall(execution, tree, selected, summary, now),
      selected === undefined ? null : this.spanPanel(execution, selected, eventType),
    );
    this.element.scrollTop = scroll;
  }

  private header(execution: Execution, summary: ExecutionSummary, dropped: number): HTMLElement {
    const fact = (label: string, value: string, title?: string) =>
      h(
        "div",
        { class: "fact", ...(title === undefined ? {} : { title }) },
        h("dt", null, label),
        h("dd", null, value),
      );
    return h(
      "header",
      { class: "detail-header" },
      h(
        "h2",
        null,
        summary.method === null ? summary.module : `${summary.module}.${summary.method}`,
        " ",
        h("span", { class: `status status-${summary.status}` }, summary.status),
      ),
      h(
        "dl",
        { class: "facts" },
        fact("execution", execution.id),
        fact("started", formatTime(summary.startMs)),
        fact("duration", formatDuration(summary.durationMs)),
        fact("spans", formatCount(summary.spans)),
        fact("events", formatCount(execution.events.length)),
        fact("tokens", formatTokens(summary)),
        fact("cost", formatCost(summary.cost)),
        fact("code_signature", summary.codeSignature ?? "—"),
        fact("module_version", summary.moduleVersion ?? "—"),
        fact("errors", formatCount(summary.errors)),
      ),
      dropped > 0
        ? h(
            "p",
            { class: "warning" },
            `${formatCount(dropped)} events of this execution were not kept (maxEventsPerExecution).`,
          )
        : null,
    );
  }

  private waterfall(
    execution: Execution,
    tree: { span: Span; depth: number }[],
    selected: Span | undefined,
    summary: ExecutionSummary,
    now: number,
  ): HTMLElement {
    const origin = summary.startMs;
    let total = 0;
    for (const { span } of tree) total = Math.max(total, spanExtent(span, origin, now).to);
    total = Math.max(total, 0.001);
    const axis = h("div", { class: "axis" });
    for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
      const tick = h("span", { class: "tick" }, formatDuration(total * fraction));
      tick.style.left = `${fraction * 100}%`;
      axis.append(tick);
    }
    const rows = tree.map(({ span, depth }) => {
      const { from, to } = spanExtent(span, origin, now);
      const bar = h("div", { class: `bar bar-${span.status}` });
      bar.style.left = `${(from / total) * 100}%`;
      bar.style.width = `${Math.max(0.3, ((to - from) / total) * 100)}%`;
      const label = h(
        "div",
        { class: "span-label" },
        h("span", { class: `dot dot-${span.status}` }),
        spanName(span),
      );
      label.style.paddingLeft = `${depth * 14 + 4}px`;
      const duration =
        span.status === "running"
          ? `${formatDuration(to - from)} …`
          : formatDuration(span.durationMs ?? to - from);
      return h(
        "div",
        {
          class: `span-row${span === selected ? " selected" : ""}`,
          data: { span: span.id },
          attrs: { tabindex: "0", role: "button" },
          on: {
            click: () => this.selectSpan(execution, span.id),
            keydown: (event) => {
              if (event.key === "Enter" || event.key === " ") {
                event.preventDefault();
                this.selectSpan(execution, span.id);
              }
            },
          },
        },
        label,
        h("div", { class: "track" }, bar),
        h("div", { class: "span-duration" }, duration),
      );
    });
    return h(
      "section",
      { class: "waterfall" },
      h("h3", null, "Timeline"),
      h(
        "div",
        { class: "span-row axis-row" },
        h("div", { class: "span-label muted" }, "span"),
        axis,
        h("div", { class: "span-duration muted" }, "duration"),
      ),
      ...rows,
    );
  }

  private selectSpan(execution: Execution, spanId: string): void {
    this.selectedSpan = spanId;
    this.element.dispatchEvent(new CustomEvent("rerender", { bubbles: true, detail: execution.id }));
  }

  private spanPanel(execution: Execution, span: Span, eventType: string): HTMLElement {
    const parts: (HTMLElement | null)[] = [];
    parts.push(
      h(
        "h3",
        null,
        spanName(span),
        " ",
        h("span", { class: `status status-${span.status}` }, span.status),
        " ",
        h("span", { class: "muted" }, formatDuration(span.durationMs)),
      ),
    );
    if (span.error !== null) {
      parts.push(
        h(
          "div",
          { class: "error-box" },
          h("strong", null, span.error.type),
          span.error.code === null ? null : h("span", { class: "muted" }, ` [${span.error.code}]`),
          ": ",
          span.error.message,
          span.error.stack === null ? null : h("pre", { class: "stack" }, span.error.stack),
        ),
      );
    }
    // The selected span's streams and those of the calls inside it: selecting the root shows every answer.
    for (const { span: part } of spanTree(execution, span)) {
      for (const stream of part.streams.values()) {
        const owner = part === span ? "" : ` — ${spanName(part)}`;
        parts.push(
          h(
            "div",
            { class: "stream" },
            h(
              "h4",
              null,
              `streamed ${stream.field}${owner} `,
              h("span", { class: "muted" }, `(${formatCount(stream.count)} tokens)`),
            ),
            h(
              "pre",
              {
                class: `stream-text${part.status === "running" ? " streaming" : ""}`,
                data: { field: stream.field },
              },
              streamText(stream),
            ),
          ),
        );
      }
    }
    const indexes = inTimeOrder(
      execution.events,
      span.events.filter((index) => eventType === "" || execution.events[index]?.event_type === eventType),
    );
    const listed = indexes.slice(-MAX_EVENTS_LISTED);
    const origin = span.startMs ?? 0;
    const items = listed.map((index) => this.eventItem(execution.events[index]!, origin, index));
    parts.push(
      h(
        "div",
        { class: "events" },
        h(
          "h4",
          null,
          `events${eventType === "" ? "" : ` of type ${eventType}`} `,
          h(
            "span",
            { class: "muted" },
            indexes.length > listed.length
              ? `(newest ${listed.length} of ${formatCount(indexes.length)})`
              : `(${indexes.length})`,
          ),
        ),
        ...items,
      ),
    );
    return h("section", { class: "span-panel" }, ...parts);
  }

  private eventItem(event: WireEvent, origin: number, index: number): HTMLElement {
    const offset = Date.parse(event.timestamp) - origin;
    return h(
      "div",
      {
        class: `event event-${event.event_type === "error" ? "error" : "plain"}`,
        data: { eventType: event.event_type },
      },
      h(
        "div",
        { class: "event-head" },
        h("span", { class: "event-type" }, event.event_type),
        h("span", { class: "muted" }, formatOffset(offset)),
        h("span", { class: "muted" }, event.event_id),
      ),
      dataView(event.data, `e${index}`, this.open),
    );
  }
}
