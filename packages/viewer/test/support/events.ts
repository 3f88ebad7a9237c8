import { createId, SCHEMA_VERSION, type StreamllEvent } from "@streamll/core";

/** One span of a generated execution. */
export interface SpanSpec {
  module?: string;
  method?: string;
  operation?: string | null;
  /** ms after the execution's start. */
  offsetMs?: number;
  durationMs?: number;
  /** Streamed tokens (one `token` event each) for field `answer`. */
  tokens?: string[];
  /** Fails the span with this message (an `error` event with a stack). */
  error?: string;
  /** Extra `data` on the start event. */
  inputs?: Record<string, unknown>;
  usage?: Record<string, unknown>;
  /** Leave the span running (no end event). */
  running?: boolean;
  children?: SpanSpec[];
}

/** Options of {@link execution}. */
export interface ExecutionSpec extends SpanSpec {
  startMs?: number;
  codeSignature?: string | null;
  moduleVersion?: string | null;
}

/**
 * The events of one execution (start, token, custom, end/error per span), valid against the event schema, in
 * the order an instrumented program emits them.
 */
export function execution(spec: ExecutionSpec = {}): StreamllEvent[] {
  const executionId = createId();
  const start = spec.startMs ?? Date.now();
  const out: { at: number; order: number; event: StreamllEvent }[] = [];
  let order = 0;
  const visit = (span: SpanSpec, parent: string | null, parentOffset: number) => {
    const spanId = createId();
    const begin = parentOffset + (span.offsetMs ?? 0);
    const duration = span.durationMs ?? 10;
    const base = {
      schema_version: SCHEMA_VERSION,
      execution_id: executionId,
      span_id: spanId,
      parent_span_id: parent,
      module_name: span.module ?? "QaModule",
      method_name: span.method ?? "forward",
      operation: span.operation ?? null,
      tags: { service: "viewer-test" },
      module_version: spec.moduleVersion ?? null,
      code_signature: spec.codeSignature ?? null,
      git_commit: null,
    };
    const push = (at: number, event_type: string, data: Record<string, unknown>) => {
      out.push({
        at,
        order: order++,
        event: {
          ...base,
          event_id: createId(),
          timestamp: new Date(start + at).toISOString(),
          event_type,
          data: data as StreamllEvent["data"],
        },
      });
    };
    push(begin, "start", { inputs: span.inputs ?? { question: "what is streamll?" } });
    (span.tokens ?? []).forEach((token, index) => {
      push(begin + ((index + 1) * duration) / ((span.tokens?.length ?? 0) + 2), "token", {
        field: "answer",
        token,
        token_index: index,
      });
    });
    for (const child of span.children ?? []) visit(child, spanId, begin);
    if (span.running) return;
    if (span.error !== undefined) {
      push(begin + duration, "error", {
        error_type: "TestError",
        error_message: span.error,
        duration_ms: duration,
        stack: `TestError: ${span.error}\n    at QaModule.forward (file:///app/qa.js:10:5)\n    at main (file:///app/main.js:3:1)`,
      });
    } else {
      push(begin + duration, "end", {
        duration_ms: duration,
        ...(span.tokens === undefined ? {} : { token_count: span.tokens.length }),
        ...(span.usage === undefined ? {} : { usage: span.usage }),
        outputs: { answer: (span.tokens ?? ["ok"]).join("") },
      });
    }
  };
  visit(spec, null, 0);
  return out.sort((a, b) => a.at - b.at || a.order - b.order).map((entry) => entry.event);
}

/** JSON Lines text of `events`. */
export function jsonl(events: readonly object[]): string {
  return events.map((event) => `${JSON.stringify(event)}\n`).join("");
}

/** A RAG-like execution: retrieval, a streamed model call with usage, and a root that ends after them. */
export function ragExecution(options: { error?: boolean; codeSignature?: string; durationMs?: number } = {}) {
  const duration = options.durationMs ?? 120;
  return execution({
    module: "RAGPipeline",
    durationMs: duration,
    codeSignature: options.codeSignature ?? "sig-v1-aaaaaaaa",
    moduleVersion: "qa-service@1.2.0",
    ...(options.error ? { error: "the model refused" } : {}),
    children: [
      { module: "RAGPipeline", operation: "retrieval", offsetMs: 2, durationMs: 15, inputs: { k: 3 } },
      {
        module: "LanguageModel",
        method: "generate",
        offsetMs: 20,
        durationMs: duration - 30,
        tokens: ["Events ", "travel ", "through ", "a ", "bounded ", "queue."],
        usage: { model: "gpt-4o-mini", prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 },
      },
    ],
  });
}

/**
 * `count` events of a busy service: executions of 20 events (a root call, a retrieval step, a streamed model
 * call of 14 tokens with usage), every tenth failing, two versions of the pipeline.
 */
export function loadEvents(count: number): StreamllEvent[] {
  const out: StreamllEvent[] = [];
  for (let i = 0; out.length < count; i++) {
    const events = execution({
      module: "RAGPipeline",
      startMs: Date.now() - 60_000 + i * 10,
      durationMs: 80 + (i % 40),
      codeSignature: i % 2 === 0 ? "sig-v1-aaaaaaaa" : "sig-v2-bbbbbbbb",
      ...(i % 10 === 9 ? { error: "the model refused" } : {}),
      children: [
        { module: "RAGPipeline", operation: "retrieval", offsetMs: 1, durationMs: 10, inputs: { k: 3 } },
        {
          module: "LanguageModel",
          method: "generate",
          offsetMs: 12,
          durationMs: 60,
          tokens: Array.from({ length: 14 }, (_, t) => `token${t} `),
          usage: { model: "gpt-4o-mini", prompt_tokens: 900, completion_tokens: 14, total_tokens: 914 },
        },
      ],
    });
    out.push(...events.slice(0, count - out.length));
  }
  return out;
}
