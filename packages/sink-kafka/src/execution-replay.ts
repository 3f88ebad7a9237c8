import type { JsonValue, StreamllEvent } from "@streamll/core";

/** How a span ended, as far as its events tell. */
export type ReplayedSpanStatus = "ok" | "error" | "running";

/** The error an `error` event recorded. */
export interface ReplayedError {
  /** `data.error_type`, e.g. `TypeError`. */
  readonly type: string;
  /** `data.error_message`. */
  readonly message: string;
  /** `data.error_code`, when the error had one. */
  readonly code?: string | number;
  /** `data.stack` (truncated by the encoder), when there was one. */
  readonly stack?: string;
}

/** One module call or `trace()` block of a replayed execution. */
export interface ReplayedSpan {
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly moduleName: string;
  /** `method_name`: the method called, `forward` for a plain function, block or event outside any module. */
  readonly methodName: string;
  readonly operation: string | null;
  readonly moduleVersion: string | null;
  /** Timestamp of the `start` event (or of the first event when `start` was not read). */
  readonly startedAt: string;
  /** Timestamp of the `end` or `error` event; `null` while running. */
  readonly endedAt: string | null;
  /** `data.duration_ms` of the `end`/`error` event, else the difference of the timestamps; `null` while running. */
  readonly durationMs: number | null;
  readonly status: ReplayedSpanStatus;
  readonly error: ReplayedError | null;
  /** `data.inputs` of the `start` event, when recorded. */
  readonly inputs?: JsonValue;
  /** `data.outputs` of the `end` event, when recorded. */
  readonly outputs?: JsonValue;
  /**
   * Streamed text per output field, re-assembled from the span's `token` events in `token_index` order. A
   * `retry` event (an LLM stream that restarted) clears what was streamed before it, as the consumer saw it.
   */
  readonly streamedText: Readonly<Record<string, string>>;
  /** Token events that contributed to `streamedText`. */
  readonly tokenCount: number;
  /** Events other than start/end/error/token (`emit()` calls, `version`, `retry`), in order. */
  readonly customEvents: readonly StreamllEvent[];
  /** Child spans, ordered by start time. */
  readonly children: readonly ReplayedSpan[];
}

/** An execution reconstructed from its events. */
export interface ExecutionReplay {
  readonly executionId: string;
  /** The events, de-duplicated by `event_id` and ordered by timestamp (then as read). */
  readonly events: readonly StreamllEvent[];
  /** Spans without a (known) parent: normally exactly one, the top-level call. */
  readonly roots: readonly ReplayedSpan[];
  /** Every span by `span_id`. */
  readonly spans: ReadonlyMap<string, ReplayedSpan>;
  /** True when any span ended with an error. */
  readonly failed: boolean;
  /** Every span that ended with an error, innermost first as they were emitted. */
  readonly errors: readonly { readonly span: ReplayedSpan; readonly error: ReplayedError }[];
  /** Timestamp of the first event; `null` for an empty replay. */
  readonly startedAt: string | null;
  /** Timestamp of the last event; `null` for an empty replay. */
  readonly endedAt: string | null;
  /** Duration of the root span when it ended, else the time between first and last event. */
  readonly durationMs: number | null;
}

interface MutableSpan {
  spanId: string;
  parentSpanId: string | null;
  moduleName: string;
  methodName: string;
  operation: string | null;
  moduleVersion: string | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  status: ReplayedSpanStatus;
  error: ReplayedError | null;
  inputs?: JsonValue;
  outputs?: JsonValue;
  streamedText: Record<string, string>;
  tokenCount: number;
  customEvents: StreamllEvent[];
  children: MutableSpan[];
}

type TokenList = { index: number; order: number; text: string }[];

function numberOrNull(value: JsonValue | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function newSpan(event: StreamllEvent): MutableSpan {
  return {
    spanId: event.span_id,
    parentSpanId: event.parent_span_id,
    moduleName: event.module_name,
    methodName: event.method_name,
    operation: event.operation,
    moduleVersion: event.module_version,
    startedAt: event.timestamp,
    endedAt: null,
    durationMs: null,
    status: "running",
    error: null,
    streamedText: {},
    tokenCount: 0,
    customEvents: [],
    children: [],
  };
}

function toError(data: StreamllEvent["data"]): ReplayedError {
  const code = data.error_code;
  const stack = data.stack;
  return {
    type: typeof data.error_type === "string" ? data.error_type : "Error",
    message: typeof data.error_message === "string" ? data.error_message : "",
    ...(typeof code === "string" || typeof code === "number" ? { code } : {}),
    ...(typeof stack === "string" ? { stack } : {}),
  };
}

function finish(span: MutableSpan, event: StreamllEvent): void {
  span.endedAt = event.timestamp;
  const duration = numberOrNull(event.data.duration_ms);
  span.durationMs = duration ?? Math.max(0, Date.parse(event.timestamp) - Date.parse(span.startedAt));
}

/**
 * Rebuilds the flow of one execution from its events, in any order and with duplicates (Kafka delivery is
 * at-least-once): the span tree by `parent_span_id`, each span's status, duration and error, its custom
 * events, and the text of each streamed field from the `token` events.
 */
export function reconstructExecution(executionId: string, input: Iterable<StreamllEvent>): ExecutionReplay {
  const seen = new Set<string>();
  const events: StreamllEvent[] = [];
  for (const event of input) {
    if (event.execution_id !== executionId || seen.has(event.event_id)) continue;
    seen.add(event.event_id);
    events.push(event);
  }
  // Stable sort: events with equal timestamps keep the order they were read in (partition order).
  const ordered = events
    .map((event, order) => ({ event, order, time: Date.parse(event.timestamp) }))
    .sort((a, b) => a.time - b.time || a.order - b.order)
    .map((item) => item.event);

  const spans = new Map<string, MutableSpan>();
  const tokensBySpan = new Map<MutableSpan, Map<string, TokenList>>();
  let order = 0;
  for (const event of ordered) {
    let span = spans.get(event.span_id);
    if (span === undefined) {
      span = newSpan(event);
      spans.set(event.span_id, span);
      tokensBySpan.set(span, new Map());
    }
    const tokens = tokensBySpan.get(span)!;
    const data = event.data;
    switch (event.event_type) {
      case "start":
        span.startedAt = event.timestamp;
        if (data.inputs !== undefined) span.inputs = data.inputs;
        break;
      case "end":
        finish(span, event);
        span.status = "ok";
        if (data.outputs !== undefined) span.outputs = data.outputs;
        break;
      case "error":
        finish(span, event);
        span.status = "error";
        span.error = toError(data);
        break;
      case "token": {
        const field = typeof data.field === "string" ? data.field : "output";
        const text = typeof data.token === "string" ? data.token : "";
        const index = numberOrNull(data.token_index) ?? Number.MAX_SAFE_INTEGER;
        let list = tokens.get(field);
        if (list === undefined) {
          list = [];
          tokens.set(field, list);
        }
        list.push({ index, order: order++, text });
        break;
      }
      case "retry":
        // The stream started over: what it produced so far was discarded by the program too.
        tokens.clear();
        span.customEvents.push(event);
        break;
      default:
        span.customEvents.push(event);
    }
  }

  const roots: MutableSpan[] = [];
  const errors: { span: ReplayedSpan; error: ReplayedError }[] = [];
  for (const span of spans.values()) {
    let count = 0;
    for (const [field, list] of tokensBySpan.get(span)!) {
      list.sort((a, b) => a.index - b.index || a.order - b.order);
      span.streamedText[field] = list.map((token) => token.text).join("");
      count += list.length;
    }
    span.tokenCount = count;
    const parent = span.parentSpanId === null ? undefined : spans.get(span.parentSpanId);
    if (parent === undefined || parent === span) roots.push(span);
    else parent.children.push(span);
  }
  const byStart = (a: MutableSpan, b: MutableSpan): number =>
    Date.parse(a.startedAt) - Date.parse(b.startedAt);
  roots.sort(byStart);
  for (const span of spans.values()) span.children.sort(byStart);
  for (const event of ordered) {
    if (event.event_type !== "error") continue;
    const span = spans.get(event.span_id);
    if (span !== undefined && span.error !== null && !errors.some((e) => e.span === span)) {
      errors.push({ span, error: span.error });
    }
  }

  const first = ordered[0];
  const last = ordered[ordered.length - 1];
  const root = roots[0];
  let durationMs: number | null = null;
  if (root !== undefined && root.durationMs !== null && roots.length === 1) durationMs = root.durationMs;
  else if (first !== undefined && last !== undefined) {
    durationMs = Math.max(0, Date.parse(last.timestamp) - Date.parse(first.timestamp));
  }
  return {
    executionId,
    events: ordered,
    roots,
    spans: new Map<string, ReplayedSpan>(spans),
    failed: errors.length > 0,
    errors,
    startedAt: first?.timestamp ?? null,
    endedAt: last?.timestamp ?? null,
    durationMs,
  };
}
