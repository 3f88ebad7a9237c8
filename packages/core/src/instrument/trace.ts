import { toDataObject } from "../events/encode-event";
import { DEFAULT_METHOD_NAME, type JsonObject } from "../events/event-schema";
import { v, validateOptions } from "../options/schema";
import { createSpan, getCurrentSpan, type Span, withSpan } from "./context";
import { isAsyncGeneratorObject, traceStream } from "./instrument";
import {
  adopt,
  clockNow,
  durationMs,
  emitSpanEvent,
  emitSpanEventRaw,
  errorEventData,
  getRuntime,
  isPlainData,
  isThenable,
  reportInternalError,
  toJson,
} from "./runtime";

/** Options of {@link trace}. */
export interface TraceOptions {
  /**
   * `module_name` of the block's events. Default: the enclosing span's module (so a step inside an
   * instrumented module belongs to it), or the operation name outside any span.
   */
  moduleName?: string;
  /** Tags for this block's events, over the enclosing span's tags and the global tags. */
  tags?: Record<string, string>;
  /** Extra data for the start event (sanitised like any event data), e.g. `{ k: 5 }` for a retrieval. */
  data?: Record<string, unknown>;
  /**
   * Record the block's return value as `data.outputs` on its end event. Default `false`: a block's result is
   * often an intermediate value; the configured `includeOutputs: false` still wins.
   */
  includeOutputs?: boolean;
}

/** `TraceOptions` as `trace()` checks them. */
export const traceOptionsSchema = v.object<TraceOptions>({
  moduleName: v.string({ min: 1 }).optional(),
  tags: v.record(v.string()).optional(),
  data: v
    .custom<Record<string, unknown>>("an object of event data", (value) => {
      if (typeof value !== "object" || value === null) return false;
      try {
        return !Array.isArray(value);
      } catch {
        // A revoked Proxy cannot even be asked whether it is an array. It is data, not a misconfiguration: it
        // is recorded as "[Unreadable]", as it would be anywhere inside `data`, and the block still runs.
        return true;
      }
    })
    .optional(),
  includeOutputs: v.boolean().optional(),
});

const MAX_NAME_LENGTH = 512;
const MAX_EVENT_TYPE_LENGTH = 128;

function clampName(name: string): string {
  return name.length > MAX_NAME_LENGTH ? name.slice(0, MAX_NAME_LENGTH) : name;
}

function toData(value: Record<string, unknown> | undefined): JsonObject {
  if (value === undefined) return {};
  return toDataObject(toJson(value, getRuntime().config.encode));
}

/**
 * Runs `fn` as a named step in a child span of the current one, emitting `start`, then `end` (with
 * `duration_ms`) or `error` (and rethrowing the original error unchanged). Works for sync and async `fn` and
 * returns exactly what `fn` returns, except that an async generator `fn` returns (directly or through a
 * promise) comes back wrapped: the span then stays open until the stream ends, each of its steps runs inside
 * the span, and `end` carries `token_count` and `cancelled`. Inside the block, `emit()` and instrumented
 * calls become its children.
 *
 * @throws ConfigurationError before running `fn` when `options` are not valid (a misspelled key, a non-string tag).
 * @example
 * const passages = await trace("retrieval", async () => search(question));
 */
export function trace<R>(operation: string, fn: () => R, options?: TraceOptions): R {
  if (options !== undefined) validateOptions("trace()", traceOptionsSchema, options);
  const runtime = getRuntime();
  if (!runtime.active) return fn();
  let span: Span;
  let startedAt: number;
  try {
    const parent = getCurrentSpan();
    const op = clampName(typeof operation === "string" && operation !== "" ? operation : "trace");
    const moduleName =
      typeof options?.moduleName === "string" && options.moduleName !== ""
        ? clampName(options.moduleName)
        : (parent?.moduleName ?? op);
    const tags =
      options?.tags === undefined ? parent?.tags : Object.freeze({ ...parent?.tags, ...options.tags });
    span = createSpan(parent, moduleName, parent?.methodName ?? DEFAULT_METHOD_NAME, op, tags);
    if (parent !== undefined) {
      // A step of a module runs that module's code version.
      span.moduleVersion = parent.moduleVersion;
      span.codeSignature = parent.codeSignature;
      span.gitCommit = parent.gitCommit;
    }
    emitData(span, "start", options?.data);
    startedAt = clockNow();
  } catch (error) {
    reportInternalError("trace failed; block not recorded", error);
    return fn();
  }
  let result: R;
  try {
    result = withSpan(span, fn);
  } catch (error) {
    emitSpanEvent(span, "error", errorEventData(error, startedAt));
    throw error;
  }
  const recordOutputs = options?.includeOutputs === true;
  try {
    // A block that returns a stream is not done until the stream is: the span stays open while it is read.
    if (isAsyncGeneratorObject(result)) return traceStream(result, span, startedAt, recordOutputs) as R;
    if (isThenable(result)) {
      return adopt(result).then(
        (value) => {
          if (isAsyncGeneratorObject(value)) return traceStream(value, span, startedAt, recordOutputs);
          end(span, startedAt, value, recordOutputs);
          return value;
        },
        (error: unknown) => {
          emitSpanEvent(span, "error", errorEventData(error, startedAt));
          throw error;
        },
      ) as R;
    }
  } catch (error) {
    reportInternalError("could not observe a returned thenable", error);
    return result;
  }
  end(span, startedAt, result, recordOutputs);
  return result;
}

function end(span: Span, startedAt: number, value: unknown, recordOutputs: boolean): void {
  try {
    const endedAt = clockNow();
    const data: Record<string, unknown> = { duration_ms: durationMs(startedAt, endedAt) };
    if (recordOutputs && getRuntime().config.includeOutputs) data.outputs = value;
    emitSpanEventRaw(span, "end", data, endedAt);
  } catch (error) {
    reportInternalError("recording a trace result failed", error);
  }
}

/**
 * Emits a custom event. Synchronous and never throws. Inside a span (an instrumented call or `trace()` block)
 * the event belongs to that span; outside any span it starts its own execution with `module_name` set to the
 * configured `serviceName` (default `app`).
 *
 * @param eventType a short name such as `retrieved` or `cache_hit`; an empty or non-string name becomes
 *   `custom`, longer than 128 characters is cut.
 * @param data anything JSON-like; circular references, BigInts, Errors and the like are sanitised.
 */
export function emit(eventType: string, data?: Record<string, unknown>): void {
  try {
    const runtime = getRuntime();
    if (!runtime.active) return;
    const trimmed = typeof eventType === "string" ? eventType.trim() : "";
    const type =
      trimmed === ""
        ? "custom"
        : trimmed.length > MAX_EVENT_TYPE_LENGTH
          ? trimmed.slice(0, MAX_EVENT_TYPE_LENGTH)
          : trimmed;
    const span =
      getCurrentSpan() ??
      createSpan(
        undefined,
        clampName(runtime.config.defaultModuleName),
        DEFAULT_METHOD_NAME,
        null,
        undefined,
      );
    emitData(span, type, data);
  } catch (error) {
    reportInternalError("emit failed", error);
  }
}

/** Plain objects are sanitised once, while encoding; anything else is turned into an object first. */
function emitData(span: Span, eventType: string, data: Record<string, unknown> | undefined): void {
  if (isPlainData(data)) emitSpanEventRaw(span, eventType, data);
  else emitSpanEvent(span, eventType, toData(data));
}
