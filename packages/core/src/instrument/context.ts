import { AsyncLocalStorage } from "node:async_hooks";
import { type SpanIds, spanIdsJson } from "../events/encode-event";
import { createId } from "../events/ids";

/**
 * One unit of work: an instrumented call or a `trace()` block. Spans nest through AsyncLocalStorage, so a call
 * made anywhere below another span (across awaits, timers, `Promise.all`, streamed generators) becomes its child.
 */
export interface Span {
  /** Shared by every span of one top-level call. */
  readonly executionId: string;
  readonly spanId: string;
  /** The enclosing span, `null` for a top-level call. */
  readonly parentSpanId: string | null;
  readonly moduleName: string;
  /** The method called, or `forward` when the span is not a method call (`DEFAULT_METHOD_NAME`). */
  readonly methodName: string;
  readonly operation: string | null;
  /** 0 for a top-level span, parent depth + 1 below it. */
  readonly depth: number;
  /** Tags this span adds to the configured global tags (instrument or trace options). */
  readonly tags: Readonly<Record<string, string>> | undefined;
  /**
   * Version of the module this span runs, copied to every event's `module_version`. `null` unless a version
   * tracker filled it in when the span was created.
   */
  moduleVersion: string | null;
  /** Hash of the module's code, copied to `code_signature`. `null` unless filled in by a version tracker. */
  codeSignature: string | null;
  /** Commit the module's code comes from, copied to `git_commit`. `null` unless filled in by a version tracker. */
  gitCommit: string | null;
}

const storage = new AsyncLocalStorage<Span>();

/** The span the caller runs in, or `undefined` outside any instrumented call or `trace()` block. */
export function getCurrentSpan(): Span | undefined {
  return storage.getStore();
}

/**
 * Creates a span below `parent` (or the root of a new execution when there is none). Does not activate it.
 * Positional parameters keep the instrumented hot path free of an options object per call.
 */
export function createSpan(
  parent: Span | undefined,
  moduleName: string,
  methodName: string,
  operation: string | null,
  tags: Readonly<Record<string, string>> | undefined,
): Span {
  const executionId = parent === undefined ? createId() : parent.executionId;
  const spanId = createId();
  const parentSpanId = parent === undefined ? null : parent.spanId;
  const span: Span & SpanIds = {
    executionId,
    spanId,
    parentSpanId,
    moduleName,
    methodName,
    operation,
    depth: parent === undefined ? 0 : parent.depth + 1,
    tags,
    moduleVersion: null,
    codeSignature: null,
    gitCommit: null,
    // Every event of the span writes its ids: their JSON is made once, here (see `spanIdsOf`).
    idsJson: spanIdsJson(executionId, spanId, parentSpanId),
  };
  return span;
}

/** @internal The ids fragment a span made by {@link createSpan} carries; `undefined` for a span made elsewhere. */
export function spanIdsOf(span: Span): SpanIds | undefined {
  return typeof (span as Partial<SpanIds>).idsJson === "string" ? (span as Span & SpanIds) : undefined;
}

/**
 * Calls `fn` with `thisArg` and `args` while `span` is the current span. Passing the function and its
 * arguments through (instead of a closure) keeps the instrumented hot path free of per-call allocations.
 */
export function runInSpan<R>(
  span: Span,
  fn: (...args: never[]) => R,
  thisArg: unknown,
  args: readonly unknown[],
): R {
  return storage.run(span, Reflect.apply, fn, thisArg, args) as R;
}

/** Calls `fn()` while `span` is the current span. */
export function withSpan<R>(span: Span, fn: () => R): R {
  return storage.run(span, fn);
}
