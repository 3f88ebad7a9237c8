import type { PriceTable } from "../protocol";

/**
 * The page's model of what the server pushed: executions, their span trees, streamed tokens and errors. Plain
 * data and arithmetic, no DOM, so it is tested in Node and costs little per event.
 */

/** An event as it arrives on the wire (fields the page reads; everything else is kept for display). */
export interface WireEvent {
  readonly event_id: string;
  readonly execution_id: string;
  readonly span_id: string;
  readonly parent_span_id: string | null;
  readonly timestamp: string;
  readonly module_name: string;
  readonly method_name: string | null;
  readonly event_type: string;
  readonly operation: string | null;
  readonly data: Record<string, unknown>;
  readonly tags: Record<string, string>;
  readonly module_version: string | null;
  readonly code_signature: string | null;
  readonly git_commit: string | null;
}

export type SpanStatus = "running" | "ok" | "error";

/** A streamed output field of a span: the token texts in order. */
export interface TokenStream {
  readonly field: string;
  /** Token texts by `token_index` (arrival order when the index is missing). */
  readonly parts: string[];
  count: number;
}

export interface SpanError {
  readonly type: string;
  readonly message: string;
  readonly stack: string | null;
  readonly code: string | null;
}

export interface Span {
  readonly id: string;
  readonly parentId: string | null;
  module: string;
  method: string | null;
  operation: string | null;
  /** Epoch ms of the `start` event, else derived from the end and the duration. */
  startMs: number | null;
  endMs: number | null;
  /** `data.duration_ms` of the end or error event (more precise than the timestamps). */
  durationMs: number | null;
  status: SpanStatus;
  codeSignature: string | null;
  moduleVersion: string | null;
  error: SpanError | null;
  /** `data.usage` of the span's end event, when present. */
  usage: Record<string, unknown> | null;
  /** `data.token_count` of the end event of a stream. */
  tokenCount: number | null;
  readonly streams: Map<string, TokenStream>;
  /** Indexes into the execution's events. */
  readonly events: number[];
}

/**
 * `indexes` (into `events`) ordered by timestamp: events may arrive out of order (an `end` before its `start`),
 * and a span's list reads in the order things happened. Ties, and timestamps that do not parse, keep arrival
 * order.
 */
export function inTimeOrder(events: readonly WireEvent[], indexes: readonly number[]): number[] {
  const at = (index: number) => {
    const ms = Date.parse(events[index]?.timestamp ?? "");
    return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
  };
  return indexes
    .map((index) => ({ index, ms: at(index) }))
    .sort((a, b) => (a.ms === b.ms ? a.index - b.index : a.ms < b.ms ? -1 : 1))
    .map((entry) => entry.index);
}

export interface Execution {
  readonly id: string;
  /** Order of arrival (the first event), for "newest first". */
  readonly seq: number;
  readonly events: WireEvent[];
  readonly spans: Map<string, Span>;
  readonly eventTypes: Set<string>;
  readonly modules: Set<string>;
  readonly signatures: Set<string>;
  firstMs: number;
  lastMs: number;
  errorEvents: number;
  tokenEvents: number;
  /** Bumped on every change; views re-render an execution only when it moved. */
  revision: number;
  /** Lowercased JSON of every event, built on the first text search and extended as events arrive. */
  searchText: string | null;
}

/** What the execution list shows per execution. */
export interface ExecutionSummary {
  readonly id: string;
  readonly module: string;
  readonly method: string | null;
  readonly status: SpanStatus;
  /** The root span's duration; for a running execution, the time since it started (by the page's clock). */
  readonly durationMs: number | null;
  readonly startMs: number;
  /** Total tokens from `data.usage`, else streamed tokens; null when there are none. */
  readonly tokens: number | null;
  /**
   * Whether `tokens` comes from usage (model-reported) or from streams: the `token_count` of a stream's end
   * event where it has one, else its token events counted.
   */
  readonly tokensFrom: "usage" | "stream" | null;
  /** Token events kept when fewer than the streams' `token_count` (the per-execution limit dropped some); else null. */
  readonly tokensKept: number | null;
  /** US dollars, when usage carries a cost or a price is known for its model. */
  readonly cost: number | null;
  readonly codeSignature: string | null;
  readonly moduleVersion: string | null;
  readonly errors: number;
  readonly spans: number;
}

function parseTime(timestamp: string): number {
  const ms = Date.parse(timestamp);
  return Number.isFinite(ms) ? ms : 0;
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function text(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/** Total tokens of a usage record: `total_tokens`, else prompt + completion (or input + output). */
export function usageTokens(usage: Record<string, unknown>): number | null {
  const total = finite(usage.total_tokens);
  if (total !== null) return total;
  const input = finite(usage.prompt_tokens) ?? finite(usage.input_tokens);
  const output = finite(usage.completion_tokens) ?? finite(usage.output_tokens);
  if (input === null && output === null) return null;
  return (input ?? 0) + (output ?? 0);
}

/** Cost of a usage record: its own `cost_usd`/`cost`/`total_cost`, else priced from the model's tokens. */
export function usageCost(usage: Record<string, unknown>, prices: PriceTable): number | null {
  const own = finite(usage.cost_usd) ?? finite(usage.cost) ?? finite(usage.total_cost);
  if (own !== null) return own;
  const model = text(usage.model);
  // Own properties only: a model named `constructor` or `__proto__` must not find Object's members.
  const price = model !== null && Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (price === undefined) return null;
  const input = finite(usage.prompt_tokens) ?? finite(usage.input_tokens) ?? 0;
  const output = finite(usage.completion_tokens) ?? finite(usage.output_tokens) ?? 0;
  return (input * price.inputPerMillion + output * price.outputPerMillion) / 1_000_000;
}

/**
 * The execution list's order: newest start time first. Executions may arrive out of time order (several Kafka
 * partitions, a file read after a live stream); ties keep the newest arrival first. `summaries` are in arrival
 * order; sorted in place and returned.
 */
export function newestFirst(summaries: ExecutionSummary[]): ExecutionSummary[] {
  // Reversed first, then sorted with the stable sort: equal start times stay newest arrival first.
  return summaries.reverse().sort((a, b) => b.startMs - a.startMs);
}

/** The executions the page holds, bounded like the server's store. */
export class ViewerModel {
  readonly executions = new Map<string, Execution>();
  private seq = 0;
  /** How many executions hold each module, event type and code_signature: the filters' choices. */
  readonly choices = {
    modules: new Map<string, number>(),
    eventTypes: new Map<string, number>(),
    signatures: new Map<string, number>(),
  };
  /** Bumped when a filter choice appears or disappears. */
  shapeRevision = 0;

  constructor(public maxExecutions = 1_000) {}

  /** Applies a batch of events; returns the ids of the executions that changed. */
  apply(events: readonly WireEvent[]): Set<string> {
    const changed = new Set<string>();
    for (const event of events) {
      if (typeof event !== "object" || event === null || typeof event.execution_id !== "string") continue;
      this.add(event);
      changed.add(event.execution_id);
    }
    // The server evicts as well and says so; this is the page's own guard.
    while (this.executions.size > this.maxExecutions) {
      const oldest = this.executions.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
      changed.delete(oldest);
    }
    return changed;
  }

  evict(ids: readonly string[]): void {
    for (const id of ids) this.remove(id);
  }

  clear(): void {
    this.executions.clear();
    for (const counts of Object.values(this.choices)) counts.clear();
    this.shapeRevision += 1;
  }

  private remove(id: string): void {
    const execution = this.executions.get(id);
    if (execution === undefined) return;
    this.executions.delete(id);
    this.uncount(this.choices.modules, execution.modules);
    this.uncount(this.choices.eventTypes, execution.eventTypes);
    this.uncount(this.choices.signatures, execution.signatures);
  }

  private count(counts: Map<string, number>, key: string): void {
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    if (n === 0) this.shapeRevision += 1;
  }

  private uncount(counts: Map<string, number>, keys: Iterable<string>): void {
    for (const key of keys) {
      const n = (counts.get(key) ?? 1) - 1;
      if (n > 0) counts.set(key, n);
      else {
        counts.delete(key);
        this.shapeRevision += 1;
      }
    }
  }

  private add(event: WireEvent): void {
    let execution = this.executions.get(event.execution_id);
    const ms = parseTime(event.timestamp);
    if (execution === undefined) {
      execution = {
        id: event.execution_id,
        seq: this.seq++,
        events: [],
        spans: new Map(),
        eventTypes: new Set(),
        modules: new Set(),
        signatures: new Set(),
        firstMs: ms,
        lastMs: ms,
        errorEvents: 0,
        tokenEvents: 0,
        revision: 0,
        searchText: null,
      };
      this.executions.set(event.execution_id, execution);
    }
    const index = execution.events.length;
    execution.events.push(event);
    execution.revision += 1;
    if (ms < execution.firstMs) execution.firstMs = ms;
    if (ms > execution.lastMs) execution.lastMs = ms;
    if (!execution.eventTypes.has(event.event_type)) {
      execution.eventTypes.add(event.event_type);
      this.count(this.choices.eventTypes, event.event_type);
    }
    if (!execution.modules.has(event.module_name)) {
      execution.modules.add(event.module_name);
      this.count(this.choices.modules, event.module_name);
    }
    if (event.code_signature !== null && !execution.signatures.has(event.code_signature)) {
      execution.signatures.add(event.code_signature);
      this.count(this.choices.signatures, event.code_signature);
    }
    if (execution.searchText !== null) execution.searchText += `\n${JSON.stringify(event).toLowerCase()}`;

    const span = this.span(execution, event);
    span.events.push(index);
    const data = record(event.data) ?? {};
    switch (event.event_type) {
      case "start":
        span.startMs = ms;
        break;
      case "end":
      case "error": {
        span.endMs = ms;
        span.durationMs = finite(data.duration_ms);
        if (span.startMs === null) span.startMs = ms - (span.durationMs ?? 0);
        if (event.event_type === "error") {
          execution.errorEvents += 1;
          span.status = "error";
          span.error = {
            type: text(data.error_type) ?? "Error",
            message: text(data.error_message) ?? text(data.message) ?? "",
            stack: text(data.stack),
            code: text(data.error_code),
          };
        } else {
          span.status = "ok";
          span.usage = record(data.usage);
          span.tokenCount = finite(data.token_count);
        }
        break;
      }
      case "token": {
        execution.tokenEvents += 1;
        const field = text(data.field) ?? "output";
        let stream = span.streams.get(field);
        if (stream === undefined) {
          stream = { field, parts: [], count: 0 };
          span.streams.set(field, stream);
        }
        const token = text(data.token) ?? (data.token === undefined ? "" : JSON.stringify(data.token));
        const tokenIndex = finite(data.token_index);
        // Indexed tokens land in their place (a late token does not garble the text); a bounded index keeps a
        // bogus one from allocating a huge array.
        if (
          tokenIndex !== null &&
          tokenIndex >= 0 &&
          Number.isInteger(tokenIndex) &&
          tokenIndex < 1_000_000
        ) {
          stream.parts[tokenIndex] = token;
        } else {
          stream.parts.push(token);
        }
        stream.count += 1;
        break;
      }
      default:
        break;
    }
  }

  private span(execution: Execution, event: WireEvent): Span {
    let span = execution.spans.get(event.span_id);
    if (span === undefined) {
      span = {
        id: event.span_id,
        parentId: event.parent_span_id,
        module: event.module_name,
        method: event.method_name,
        operation: event.operation,
        startMs: null,
        endMs: null,
        durationMs: null,
        status: "running",
        codeSignature: event.code_signature,
        moduleVersion: event.module_version,
        error: null,
        usage: null,
        tokenCount: null,
        streams: new Map(),
        events: [],
      };
      execution.spans.set(event.span_id, span);
    }
    if (span.codeSignature === null && event.code_signature !== null)
      span.codeSignature = event.code_signature;
    if (span.moduleVersion === null && event.module_version !== null)
      span.moduleVersion = event.module_version;
    return span;
  }
}

/** The spans without a parent in this execution (normally one), earliest first. */
export function rootSpans(execution: Execution): Span[] {
  const roots: Span[] = [];
  for (const span of execution.spans.values()) {
    if (span.parentId === null || !execution.spans.has(span.parentId)) roots.push(span);
  }
  return roots.sort((a, b) => (a.startMs ?? 0) - (b.startMs ?? 0));
}

/** Children of every span, earliest first. */
export function childrenOf(execution: Execution): Map<string, Span[]> {
  const children = new Map<string, Span[]>();
  for (const span of execution.spans.values()) {
    if (span.parentId === null || !execution.spans.has(span.parentId)) continue;
    const list = children.get(span.parentId);
    if (list === undefined) children.set(span.parentId, [span]);
    else list.push(span);
  }
  for (const list of children.values()) list.sort((a, b) => (a.startMs ?? 0) - (b.startMs ?? 0));
  return children;
}

/**
 * Spans and their depth in tree order (parents before children, siblings by start): the whole execution, or
 * `from` and every span inside it.
 */
export function spanTree(execution: Execution, from?: Span): { span: Span; depth: number }[] {
  const children = childrenOf(execution);
  const out: { span: Span; depth: number }[] = [];
  const visit = (span: Span, depth: number) => {
    out.push({ span, depth });
    for (const child of children.get(span.id) ?? []) visit(child, depth + 1);
  };
  for (const root of from === undefined ? rootSpans(execution) : [from]) visit(root, 0);
  return out;
}

/** A stream's text so far. */
export function streamText(stream: TokenStream): string {
  let out = "";
  for (const part of stream.parts) if (part !== undefined) out += part;
  return out;
}

/**
 * Usage summed over the outermost spans that report it: a parent whose `end` already sums its children's
 * model calls is not counted twice.
 */
function outermostUsage(execution: Execution): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const children = childrenOf(execution);
  const visit = (span: Span) => {
    if (span.usage !== null) {
      out.push(span.usage);
      return;
    }
    for (const child of children.get(span.id) ?? []) visit(child);
  };
  for (const root of rootSpans(execution)) visit(root);
  return out;
}

/** The list's numbers for one execution. `now` is the page's clock, for running executions. */
export function summarize(execution: Execution, prices: PriceTable, now: number): ExecutionSummary {
  const roots = rootSpans(execution);
  const root = roots[0];
  let status: SpanStatus = root?.status ?? "running";
  // Several roots (events of a span whose parent never arrived): the execution is as bad as its worst part.
  for (const other of roots) {
    if (other.status === "error") status = "error";
    else if (other.status === "running" && status === "ok") status = "running";
  }
  const startMs = root?.startMs ?? execution.firstMs;
  const durationMs =
    root === undefined
      ? null
      : root.status === "running"
        ? Math.max(0, now - startMs)
        : (root.durationMs ?? (root.endMs !== null ? root.endMs - startMs : null));
  let tokens: number | null = null;
  let tokensFrom: ExecutionSummary["tokensFrom"] = null;
  let cost: number | null = null;
  for (const usage of outermostUsage(execution)) {
    const n = usageTokens(usage);
    if (n !== null) {
      tokens = (tokens ?? 0) + n;
      tokensFrom = "usage";
    }
    const c = usageCost(usage, prices);
    if (c !== null) cost = (cost ?? 0) + c;
  }
  let tokensKept: number | null = null;
  if (tokens === null) {
    let streamed = 0;
    for (const span of execution.spans.values()) {
      let counted = 0;
      for (const stream of span.streams.values()) counted += stream.count;
      streamed += span.tokenCount !== null && span.tokenCount > 0 ? span.tokenCount : counted;
    }
    if (streamed > 0) {
      tokens = streamed;
      tokensFrom = "stream";
      if (execution.tokenEvents < streamed) tokensKept = execution.tokenEvents;
    }
  }
  return {
    id: execution.id,
    module: root?.module ?? execution.events[0]?.module_name ?? "?",
    method: root?.method ?? null,
    status,
    durationMs,
    startMs,
    tokens,
    tokensFrom,
    tokensKept,
    cost,
    codeSignature: root?.codeSignature ?? null,
    moduleVersion: root?.moduleVersion ?? null,
    errors: execution.errorEvents,
    spans: execution.spans.size,
  };
}

/** What the list can be filtered by. Empty strings mean "any". */
export interface Filters {
  module: string;
  eventType: string;
  status: string;
  version: string;
  search: string;
}

export function matches(execution: Execution, summary: ExecutionSummary, filters: Filters): boolean {
  if (filters.module !== "" && !execution.modules.has(filters.module)) return false;
  if (filters.eventType !== "" && !execution.eventTypes.has(filters.eventType)) return false;
  if (filters.status !== "" && summary.status !== filters.status) return false;
  if (filters.version !== "" && !execution.signatures.has(filters.version)) return false;
  const search = filters.search.trim().toLowerCase();
  if (search !== "") {
    if (execution.searchText === null) {
      execution.searchText = execution.events.map((event) => JSON.stringify(event).toLowerCase()).join("\n");
    }
    if (!execution.searchText.includes(search)) return false;
  }
  return true;
}

/**
 * Where a span starts and ends on its execution's time axis (ms from `origin`). A span's `start` event is
 * stamped before its call is timed, so on a first call (the JIT warming up) `duration_ms` can be milliseconds
 * shorter than end minus start, and a child would be drawn past its parent's end: the end timestamp bounds the
 * bar too.
 */
export function spanExtent(span: Span, origin: number, now: number): { from: number; to: number } {
  const from = (span.startMs ?? origin) - origin;
  if (span.status === "running") return { from, to: Math.max(from, now - origin) };
  const duration =
    span.durationMs ?? (span.endMs !== null && span.startMs !== null ? span.endMs - span.startMs : 0);
  const to = from + Math.max(0, duration);
  return { from, to: span.endMs === null ? to : Math.max(to, span.endMs - origin) };
}
