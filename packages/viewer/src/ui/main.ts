import type { CompareReport } from "@streamll/core";
import type { HelloMessage, PriceTable, StatusMessage } from "../protocol";
import { h, replace, setText } from "./dom";
import { formatBytes, formatCountOf, formatSource } from "./format";
import {
  type ExecutionSummary,
  type Filters,
  matches,
  newestFirst,
  summarize,
  ViewerModel,
  type WireEvent,
} from "./model";
import { ExecutionDetail } from "./views/execution-detail";
import { ExecutionList } from "./views/execution-list";
import { VersionsView } from "./views/versions-view";

/** One render and the batches applied since the previous one: the page's own speed, shown and measurable. */
export interface ApplyRecord {
  readonly events: number;
  readonly applyMs: number;
  readonly renderMs: number;
}

type Theme = "auto" | "dark" | "light";
type Tab = "executions" | "versions";

const token = new URLSearchParams(location.search).get("token") ?? "";
const withToken = (path: string, params: Record<string, string> = {}) =>
  `${path}?${new URLSearchParams({ ...params, token }).toString()}`;

const model = new ViewerModel();
let prices: PriceTable = {};
let status: StatusMessage | null = null;
let connection: "connecting" | "live" | "reconnecting" = "connecting";
let selected: string | null = null;
let tab: Tab = "executions";
const filters: Filters = { module: "", eventType: "", status: "", version: "", search: "" };
const records: ApplyRecord[] = [];
let pendingEvents = 0;
let pendingApplyMs = 0;
let renderScheduled = false;
let filterShape = -1;
const summaries = new Map<string, { revision: number; summary: ExecutionSummary }>();

// ---- layout -------------------------------------------------------------------------------------------------

const connectionBadge = h("span", { class: "badge", data: { role: "connection" } }, "connecting");
const sourceLabel = h("span", { class: "source", data: { role: "source" } });
const counters = h("span", { class: "muted counters", data: { role: "counters" } });
const speed = h("span", { class: "muted speed", data: { role: "speed" } });
const themeButton = h("button", {
  class: "theme",
  attrs: { type: "button" },
  on: { click: () => cycleTheme() },
});
const tabButtons = {
  executions: h(
    "button",
    { class: "tab", attrs: { type: "button" }, on: { click: () => showTab("executions") } },
    "Executions",
  ),
  versions: h(
    "button",
    { class: "tab", attrs: { type: "button" }, on: { click: () => showTab("versions") } },
    "Versions",
  ),
};

function select(name: keyof Filters, label: string): HTMLSelectElement {
  const element = h("select", { attrs: { "aria-label": label, name } });
  element.addEventListener("change", () => {
    filters[name] = element.value;
    scheduleRender();
  });
  return element;
}
const filterControls = {
  module: select("module", "module"),
  eventType: select("eventType", "event type"),
  status: select("status", "status"),
  version: select("version", "version"),
  search: h("input", {
    attrs: { type: "search", placeholder: "search text in events", "aria-label": "search", name: "search" },
  }),
};
filterControls.search.addEventListener("input", () => {
  filters.search = filterControls.search.value;
  scheduleRender();
});
setOptions(filterControls.status, "any status", ["running", "ok", "error"]);

const list = new ExecutionList((id) => {
  selected = id;
  list.select(id);
  scheduleRender(true);
});
const detail = new ExecutionDetail();
detail.element.addEventListener("rerender", () => scheduleRender(true));
const versions = new VersionsView();
const executionsPane = h("main", { class: "panes" }, list.element, detail.element);
const versionsPane = h("main", { class: "versions-pane", attrs: { hidden: "" } }, versions.element);

document.body.append(
  h(
    "header",
    { class: "topbar" },
    h("strong", { class: "brand" }, "streamll"),
    h("nav", { class: "tabs" }, tabButtons.executions, tabButtons.versions),
    sourceLabel,
    connectionBadge,
    counters,
    speed,
    themeButton,
  ),
  h(
    "div",
    { class: "filters" },
    filterControls.module,
    filterControls.eventType,
    filterControls.status,
    filterControls.version,
    filterControls.search,
  ),
  executionsPane,
  versionsPane,
);

// ---- theme --------------------------------------------------------------------------------------------------

function storedTheme(): Theme {
  const value = localStorage.getItem("streamll-viewer-theme");
  return value === "dark" || value === "light" ? value : "auto";
}

function applyTheme(theme: Theme): void {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  setText(themeButton, `theme: ${theme}`);
}

function isDark(): boolean {
  const theme = document.documentElement.dataset.theme;
  if (theme === "dark") return true;
  if (theme === "light") return false;
  return matchMedia("(prefers-color-scheme: dark)").matches;
}

function cycleTheme(): void {
  const next: Theme = { auto: "dark", dark: "light", light: "auto" }[storedTheme()] as Theme;
  localStorage.setItem("streamll-viewer-theme", next);
  applyTheme(next);
  if (tab === "versions") refreshVersions(true);
}
applyTheme(storedTheme());

// ---- tabs ---------------------------------------------------------------------------------------------------

function showTab(next: Tab): void {
  tab = next;
  executionsPane.hidden = next !== "executions";
  versionsPane.hidden = next !== "versions";
  tabButtons.executions.classList.toggle("active", next === "executions");
  tabButtons.versions.classList.toggle("active", next === "versions");
  if (next === "versions") refreshVersions(true);
  else scheduleRender(true);
}
showTab("executions");

// ---- rendering ----------------------------------------------------------------------------------------------

function setOptions(element: HTMLSelectElement, anyLabel: string, values: readonly string[]): void {
  const current = element.value;
  replace(
    element,
    h("option", { attrs: { value: "" } }, anyLabel),
    ...values.map((value) => h("option", { attrs: { value } }, value)),
  );
  element.value = values.includes(current) ? current : "";
}

function refreshFilterChoices(): void {
  if (filterShape === model.shapeRevision) return;
  filterShape = model.shapeRevision;
  const sorted = (counts: Map<string, number>) => [...counts.keys()].sort();
  setOptions(filterControls.module, "any module", sorted(model.choices.modules));
  setOptions(filterControls.eventType, "any event type", sorted(model.choices.eventTypes));
  setOptions(filterControls.version, "any version", sorted(model.choices.signatures));
  for (const [name, element] of Object.entries(filterControls)) {
    if (name !== "search") filters[name as keyof Filters] = element.value;
  }
}

function summaryOf(id: string, now: number): ExecutionSummary | undefined {
  const execution = model.executions.get(id);
  if (execution === undefined) return undefined;
  const cached = summaries.get(id);
  // Running executions change with the clock; finished ones only with new events.
  if (cached !== undefined && cached.revision === execution.revision && cached.summary.status !== "running") {
    return cached.summary;
  }
  const summary = summarize(execution, prices, now);
  summaries.set(id, { revision: execution.revision, summary });
  return summary;
}

let lastDetail = "";

function render(): void {
  renderScheduled = false;
  const started = performance.now();
  const now = Date.now();
  for (const id of summaries.keys()) if (!model.executions.has(id)) summaries.delete(id);
  refreshFilterChoices();
  const matching: ExecutionSummary[] = [];
  for (const execution of model.executions.values()) {
    const summary = summaryOf(execution.id, now);
    if (summary !== undefined && matches(execution, summary, filters)) matching.push(summary);
  }
  newestFirst(matching);
  if (tab === "executions") {
    list.render(matching, matching.length, model.executions.size);
    const execution = selected === null ? undefined : model.executions.get(selected);
    const summary = selected === null ? undefined : summaryOf(selected, now);
    const key = `${selected}:${execution?.revision}:${filters.eventType}:${summary?.status === "running" ? now : ""}`;
    if (forcedDetail || key !== lastDetail) {
      lastDetail = key;
      detail.render(
        execution,
        summary,
        filters.eventType,
        // Own properties only: an execution id such as `constructor` must not find Object's members.
        selected !== null && status !== null && Object.hasOwn(status.droppedByExecution, selected)
          ? (status.droppedByExecution[selected] ?? 0)
          : 0,
        now,
      );
    }
    forcedDetail = false;
  }
  renderCounters();
  const renderMs = performance.now() - started;
  if (pendingEvents > 0) {
    records.push({ events: pendingEvents, applyMs: pendingApplyMs, renderMs });
    if (records.length > 500) records.splice(0, records.length - 500);
    setText(
      speed,
      `last update: ${formatCountOf(pendingEvents, "event")} in ${(pendingApplyMs + renderMs).toFixed(1)} ms`,
    );
    pendingEvents = 0;
    pendingApplyMs = 0;
  }
}

let forcedDetail = false;

function scheduleRender(forceDetail = false): void {
  if (forceDetail) forcedDetail = true;
  if (renderScheduled) return;
  renderScheduled = true;
  // A frame when the page is visible; the timer covers a hidden tab, where frames do not come.
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    render();
  };
  requestAnimationFrame(run);
  setTimeout(run, 250);
}

function renderCounters(): void {
  setText(connectionBadge, connection);
  connectionBadge.className = `badge badge-${connection}`;
  if (status === null) return;
  const { source, stats } = status;
  setText(sourceLabel, formatSource(source));
  const parts = [
    formatCountOf(stats.executions, "execution"),
    `${formatCountOf(stats.events, "event")} (${formatBytes(stats.bytes)})`,
  ];
  if (stats.invalid > 0) parts.push(`${formatCountOf(stats.invalid, "invalid line")} skipped`);
  if (stats.evictedExecutions > 0)
    parts.push(`${formatCountOf(stats.evictedExecutions, "old execution")} dropped`);
  if (stats.droppedEvents > 0)
    parts.push(`${formatCountOf(stats.droppedEvents, "event")} over the per-execution limit`);
  setText(counters, parts.join(" · "));
}

// ---- versions -----------------------------------------------------------------------------------------------

let versionsTimer: ReturnType<typeof setTimeout> | undefined;

function refreshVersions(now = false): void {
  clearTimeout(versionsTimer);
  if (tab !== "versions") return;
  const load = async () => {
    try {
      const params: Record<string, string> = {};
      if (filters.module !== "") params.module = filters.module;
      const response = await fetch(withToken("api/compare", params));
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      versions.renderReport((await response.json()) as CompareReport, null);
    } catch (error) {
      versions.renderReport(null, error instanceof Error ? error.message : String(error));
    }
    versions.renderChart(model.executions.values(), filters.module, isDark());
    versionsTimer = setTimeout(() => refreshVersions(), 2_000);
  };
  if (now) void load();
  else versionsTimer = setTimeout(() => void load(), 0);
}

// ---- event stream -------------------------------------------------------------------------------------------

const source = new EventSource(withToken("events"));
source.addEventListener("hello", (message) => {
  const hello = JSON.parse((message as MessageEvent<string>).data) as HelloMessage;
  // Every connection starts with everything the server holds: start from scratch.
  model.clear();
  summaries.clear();
  model.maxExecutions = hello.limits.maxExecutions;
  prices = hello.prices;
  connection = "live";
  scheduleRender(true);
});
source.addEventListener("events", (message) => {
  const started = performance.now();
  const events = JSON.parse((message as MessageEvent<string>).data) as WireEvent[];
  model.apply(events);
  pendingApplyMs += performance.now() - started;
  pendingEvents += events.length;
  scheduleRender();
});
source.addEventListener("evict", (message) => {
  model.evict(JSON.parse((message as MessageEvent<string>).data) as string[]);
  if (selected !== null && !model.executions.has(selected)) selected = null;
  scheduleRender(true);
});
source.addEventListener("status", (message) => {
  status = JSON.parse((message as MessageEvent<string>).data) as StatusMessage;
  scheduleRender();
});
source.addEventListener("error", () => {
  // EventSource retries by itself (the server asks for 1 s); each reconnection starts with a fresh copy.
  connection = "reconnecting";
  scheduleRender();
});
source.addEventListener("open", () => {
  connection = "live";
  scheduleRender();
});

// Running executions' durations and bars grow with the clock.
setInterval(() => {
  for (const execution of model.executions.values()) {
    if (summaries.get(execution.id)?.summary.status === "running") {
      scheduleRender();
      return;
    }
  }
}, 500);

/** For tests and curious users: the page's own numbers. */
Object.defineProperty(window, "streamllViewer", {
  value: Object.freeze({
    records: () => records.slice(),
    executions: () => model.executions.size,
    events: () => {
      let n = 0;
      for (const execution of model.executions.values()) n += execution.events.length;
      return n;
    },
  }),
});
