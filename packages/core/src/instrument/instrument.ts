import { types } from "node:util";
import { ConfigurationError } from "../errors";
import { DEFAULT_METHOD_NAME, type JsonObject } from "../events/event-schema";
import { nearestName } from "../options/nearest-name";
import { v, validateOptions } from "../options/schema";
import type { VersionTracker } from "../version/version-tracker";
import type { ResolvedConfig } from "./configure";
import { createSpan, getCurrentSpan, runInSpan, type Span } from "./context";
import { HeldTokens } from "./held-tokens";
import {
  clockNow,
  durationMs,
  emitSpanEvent,
  emitSpanEventRaw,
  errorEventData,
  getRuntime,
  isThenable,
  prepareVersion,
  reportInternalError,
  thrownByUserCode,
  toJson,
} from "./runtime";

/**
 * Turns one yielded chunk into a token event: the output field it belongs to and the token text. Return
 * `null` to emit no token event for the chunk.
 */
export type StreamFieldExtractor = (chunk: unknown) => { field: string; token: string } | null;

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /**
   * Methods to instrument on a class, instance or object. Default `forward`, plus `streamingForward` when the
   * target has it. A listed method that does not exist is a `ConfigurationError`.
   */
  methods?: readonly string[];
  /**
   * `module_name` of the events. Default: the class name (for a class, the class of the instance the method
   * runs on, so subclasses report their own name), the function name, or `anonymous`.
   */
  name?: string;
  /** `operation` of the events. Default `null`. */
  operation?: string;
  /** Record arguments as `data.inputs`. Default: the configured `includeInputs`. */
  includeInputs?: boolean;
  /**
   * Record results as `data.outputs` and emit token events for streams. Default: the configured
   * `includeOutputs`.
   */
  includeOutputs?: boolean;
  /**
   * How chunks yielded by an async generator become token events. A string names the output field (default
   * `output`); the token is the chunk when it is a string, else its `delta`, `token` or `text` string, else the
   * chunk as JSON. Ax chunks `{ version, index, delta: { field: text } }` produce one token per field in
   * `delta` (only the named field when a string is given). A function decides per chunk.
   */
  streamField?: string | StreamFieldExtractor;
  /** Tags added to this module's events (over the configured global tags). */
  tags?: Record<string, string>;
}

/**
 * The decorator `instrument(options)` returns. It works with TC39 standard decorators and with TypeScript's
 * `experimentalDecorators`, on classes (instruments `forward`/`methods`) and on single methods.
 */
export interface InstrumentDecorator {
  /** Standard class decorator. */
  <C extends abstract new (...args: never[]) => unknown>(value: C, context: ClassDecoratorContext<C>): C;
  /** Standard method decorator. */
  <This, A extends unknown[], R>(
    value: (this: This, ...args: A) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
  ): (this: This, ...args: A) => R;
  /** Legacy (`experimentalDecorators`) class decorator. */
  <C extends abstract new (...args: never[]) => unknown>(target: C): C;
  /** Legacy (`experimentalDecorators`) method decorator. */
  <T>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): TypedPropertyDescriptor<T>;
}

type AnyFunction = (...args: never[]) => unknown;
type AnyClass = abstract new (...args: never[]) => unknown;
/** Options objects only: a value with other keys (a module with a `forward` method) is a target instead. */
type OptionsOnly<O> = O & { [K in Exclude<keyof O, keyof InstrumentOptions>]: never };

/** Marks wrappers (value: the original function), so nothing is ever wrapped twice. */
const ORIGINAL = Symbol.for("streamll.instrumented");
/** Proxies and copies returned for plain objects: instrumenting one again returns it unchanged. */
const instrumentedObjects = new WeakSet<object>();
/** The Proxy or copy made for each plain object, so instrumenting the same object twice returns the same one. */
const wrappedObjects = new WeakMap<object, object>();

const DEFAULT_METHODS = ["forward", "streamingForward"] as const;
const MAX_NAME_LENGTH = 512;
/** Text kept per output field for a stream's end event; the encoder caps strings further. */
const MAX_JOINED_CHARS = 65_536;

/** `InstrumentOptions` as `instrument()` checks them. */
export const instrumentOptionsSchema = v.object<InstrumentOptions>({
  methods: v.array(v.string({ min: 1, expected: "a method name" }), { min: 1 }).optional(),
  name: v.string({ min: 1 }).optional(),
  operation: v.string().optional(),
  includeInputs: v.boolean().optional(),
  includeOutputs: v.boolean().optional(),
  streamField: v
    .union(
      v.string({ min: 1, expected: "a field name" }),
      v.fn<StreamFieldExtractor>("a function (chunk) => { field, token } | null"),
    )
    .optional(),
  tags: v.record(v.string()).optional(),
});

function parseInstrumentOptions(options: unknown): InstrumentOptions {
  if (options === undefined) return {};
  return validateOptions("instrument()", instrumentOptionsSchema, options);
}

/** What every call of one wrapped function shares; built once at wrap time. */
interface CallMeta {
  /** `options.name`: wins over everything. */
  readonly fixedName: string | undefined;
  /** Used when the receiver does not tell a class name. */
  readonly fallbackName: string;
  /** Methods of classes report the class of the instance they run on. */
  readonly fromReceiver: boolean;
  /** The method's key; `null` for a plain function (its events say `forward`, version tracking keys it alone). */
  readonly methodName: string | null;
  readonly operation: string | null;
  readonly includeInputs: boolean | undefined;
  readonly includeOutputs: boolean | undefined;
  readonly tags: Readonly<Record<string, string>> | undefined;
  readonly streamField: string | StreamFieldExtractor | undefined;
}

function clampName(name: string): string {
  return name.length > MAX_NAME_LENGTH ? name.slice(0, MAX_NAME_LENGTH) : name;
}

function makeMeta(
  options: InstrumentOptions,
  methodName: string | null,
  fallbackName: string,
  fromReceiver: boolean,
): CallMeta {
  return Object.freeze({
    fixedName: options.name === undefined ? undefined : clampName(options.name),
    fallbackName: clampName(fallbackName || "anonymous"),
    fromReceiver,
    methodName: methodName === null ? null : clampName(methodName),
    operation: options.operation === undefined ? null : clampName(options.operation),
    includeInputs: options.includeInputs,
    includeOutputs: options.includeOutputs,
    tags: options.tags === undefined ? undefined : Object.freeze({ ...options.tags }),
    streamField: options.streamField,
  });
}

/**
 * A function's `name` when it is a string, else `""`: a class may define `name` as a static method or a getter
 * that throws, and instrumenting it must neither fail nor record a non-string module name.
 */
function nameOf(fn: Function): string {
  try {
    const name: unknown = fn.name;
    return typeof name === "string" ? name : "";
  } catch {
    return "";
  }
}

function moduleNameOf(meta: CallMeta, receiver: unknown): string {
  if (meta.fixedName !== undefined) return meta.fixedName;
  if (meta.fromReceiver) {
    if (typeof receiver === "function") {
      // A static method: the receiver is the class itself.
      const name = nameOf(receiver);
      if (name !== "") return clampName(name);
    } else if (typeof receiver === "object" && receiver !== null) {
      const ctor = (receiver as { constructor?: unknown }).constructor;
      const name = typeof ctor === "function" && ctor !== Object ? nameOf(ctor) : "";
      if (name !== "") return clampName(name);
    }
  }
  return meta.fallbackName;
}

function startData(meta: CallMeta, config: ResolvedConfig, args: readonly unknown[]): JsonObject {
  if (!(meta.includeInputs ?? config.includeInputs)) return {};
  return { inputs: toJson(args.length === 1 ? args[0] : args, config.encode) };
}

/** @internal True for the objects async generator functions return. */
export function isAsyncGeneratorObject(value: unknown): value is AsyncGenerator<unknown, unknown, unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    Object.prototype.toString.call(value) === "[object AsyncGenerator]"
  );
}

function isAsyncGeneratorFunction(fn: Function): boolean {
  return (fn as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === "AsyncGeneratorFunction";
}

/**
 * Version tracking: copies the cached `module_version`, `code_signature` and `git_commit` of this class and
 * method onto the span, and emits the `version` event the first time a (module, signature) pair is seen.
 */
function trackVersion(
  tracker: VersionTracker,
  span: Span,
  original: Function,
  meta: CallMeta,
  receiver: unknown,
): void {
  const data = tracker.applyToSpan(span, original, meta.methodName, receiver);
  if (data !== null) emitSpanEvent(span, "version", data);
}

/** The span of one instrumented call, child of the current span, with its version fields when tracking is on. */
function openCallSpan(
  meta: CallMeta,
  original: Function,
  receiver: unknown,
  tracker: VersionTracker | null,
): Span {
  const span = createSpan(
    getCurrentSpan(),
    moduleNameOf(meta, receiver),
    meta.methodName ?? DEFAULT_METHOD_NAME,
    meta.operation,
    meta.tags,
  );
  if (tracker !== null) trackVersion(tracker, span, original, meta, receiver);
  return span;
}

/** The hot path of every instrumented call that is not an async generator function. */
function callInstrumented(meta: CallMeta, original: Function, receiver: unknown, args: unknown[]): unknown {
  const runtime = getRuntime();
  if (!runtime.active) return Reflect.apply(original, receiver, args);
  let span: Span;
  let startedAt: number;
  try {
    span = openCallSpan(meta, original, receiver, runtime.config.versionTracker);
    // Emitted before the call runs, so the arguments are read as they were passed, sanitised once while encoding.
    emitSpanEventRaw(
      span,
      "start",
      (meta.includeInputs ?? runtime.config.includeInputs)
        ? { inputs: args.length === 1 ? args[0] : args }
        : {},
    );
    // Read after the start event is out, so `duration_ms` measures the call alone.
    startedAt = clockNow();
  } catch (error) {
    reportInternalError("instrumentation failed; call not recorded", error);
    return Reflect.apply(original, receiver, args);
  }
  let result: unknown;
  try {
    result = runInSpan(span, original as AnyFunction, receiver, args);
  } catch (error) {
    emitSpanEvent(span, "error", errorEventData(error, startedAt));
    throw error;
  }
  try {
    // The caller always gets the original value back, never a promise of ours: a promise it already handled
    // (`.catch()` inside the function) must not resurface as an unhandled rejection, a Promise subclass keeps
    // its identity and methods (`cancel()`), and continuations run on the same microtask as without streamll.
    if (types.isPromise(result)) {
      observePromise(meta, span, startedAt, result as Promise<unknown>);
      return result;
    }
    if (isThenable(result)) {
      // Not a native promise: a query builder (Knex, Mongoose), a lazy request. Its `then` may run the work
      // (a query runs when awaited), so calling it to learn the outcome would do what the caller may never
      // ask for, and twice when the caller awaits it too. The call is recorded as ending when it returns, with
      // the thenable itself as its output; what it resolves to later is the caller's business.
      return finish(meta, span, startedAt, result);
    }
  } catch (error) {
    // A hostile thenable (throwing `then` getter), or a Promise subclass whose constructor refuses the derived
    // promise `then` makes: hand it back untouched, unrecorded.
    reportInternalError("could not observe a returned thenable", error);
    return result;
  }
  return finish(meta, span, startedAt, result);
}

/**
 * Records how a returned native promise (or subclass) settles, without changing it: the observer's own
 * derived promise always fulfils (nothing is rethrown), so it never reports an unhandled rejection; a
 * rejection the caller does not handle is reported by the caller's promise exactly as without streamll.
 */
function observePromise(meta: CallMeta, span: Span, startedAt: number, promise: Promise<unknown>): void {
  Promise.prototype.then.call(
    promise,
    (value: unknown) => {
      settled(meta, span, startedAt, value);
    },
    (error: unknown) => {
      try {
        emitSpanEvent(span, "error", errorEventData(error, startedAt));
      } catch (failure) {
        reportInternalError("recording an error failed", failure);
      }
    },
  );
}

/**
 * Ends a call whose promise fulfilled. An async generator the promise resolved to cannot be swapped for an
 * instrumented one (the caller holds the original promise): the call ends here, with the generator as its
 * output (recorded by its type); its chunks are not recorded.
 */
function settled(meta: CallMeta, span: Span, startedAt: number, value: unknown): void {
  try {
    const config = getRuntime().config;
    const endedAt = clockNow();
    const data: Record<string, unknown> = { duration_ms: durationMs(startedAt, endedAt) };
    if (meta.includeOutputs ?? config.includeOutputs) data.outputs = value;
    emitSpanEventRaw(span, "end", data, endedAt);
  } catch (error) {
    reportInternalError("recording a result failed", error);
  }
}

/** Ends a call with `value`, or keeps the span open when the call produced an async generator. */
function finish(meta: CallMeta, span: Span, startedAt: number, value: unknown): unknown {
  if (isAsyncGeneratorObject(value)) {
    try {
      return new InstrumentedStream(value, span, meta, undefined, startedAt);
    } catch (error) {
      reportInternalError("recording a result failed", error);
      return value;
    }
  }
  settled(meta, span, startedAt, value);
  return value;
}

/** Calls of async generator functions: the span opens now, the start event waits for the first `next()`. */
function callStream(meta: CallMeta, original: Function, receiver: unknown, args: unknown[]): unknown {
  const runtime = getRuntime();
  if (!runtime.active) return Reflect.apply(original, receiver, args);
  let span: Span;
  let start: JsonObject;
  try {
    span = openCallSpan(meta, original, receiver, runtime.config.versionTracker);
    // Inputs are captured at call time: arguments may be mutated before the consumer starts iterating.
    start = startData(meta, runtime.config, args);
  } catch (error) {
    reportInternalError("instrumentation failed; stream not recorded", error);
    return Reflect.apply(original, receiver, args);
  }
  const generator = runInSpan(span, original as AnyFunction, receiver, args);
  if (!isAsyncGeneratorObject(generator)) return generator;
  try {
    return new InstrumentedStream(generator, span, meta, start, undefined);
  } catch (error) {
    reportInternalError("instrumentation failed; stream not recorded", error);
    return generator;
  }
}

type StreamStep = IteratorResult<unknown, unknown>;

const NOT_STARTED = 0;
const RUNNING = 1;
const FINISHED = 2;

interface FieldText {
  text: string;
  /** Every token of the field came from a string (no JSON fallback), so joining them means something. */
  joinable: boolean;
}

/**
 * Wraps an async generator so each `next()`/`return()`/`throw()` runs inside the generator's span (children
 * created while streaming get the right parent), every yield becomes a token event, and the span ends only
 * when the generator finishes, throws, or the consumer stops it early (`cancelled: true`).
 */
class InstrumentedStream implements AsyncGenerator<unknown, unknown, unknown> {
  readonly #inner: AsyncGenerator<unknown, unknown, unknown>;
  readonly #span: Span;
  readonly #meta: CallMeta;
  /** The start event's data, or `undefined` when the start event was already emitted at call time. */
  readonly #start: JsonObject | undefined;
  #phase: number;
  #startedAt: number;
  #includeOutputs = true;
  #tokenIndex = 0;
  #retries = 0;
  #version: unknown;
  #fields = new Map<string, FieldText>();
  readonly #held = new HeldTokens((data, at) => emitSpanEvent(this.#span, "token", data, at));

  constructor(
    inner: AsyncGenerator<unknown, unknown, unknown>,
    span: Span,
    meta: CallMeta,
    start: JsonObject | undefined,
    startedAt: number | undefined,
  ) {
    this.#inner = inner;
    this.#span = span;
    this.#meta = meta;
    this.#start = start;
    this.#phase = startedAt === undefined ? NOT_STARTED : RUNNING;
    this.#startedAt = startedAt ?? 0;
    if (startedAt !== undefined)
      this.#includeOutputs = meta.includeOutputs ?? getRuntime().config.includeOutputs;
  }

  next(...args: [] | [unknown]): Promise<IteratorResult<unknown, unknown>> {
    return this.#step(this.#inner.next, args, false);
  }

  return(value?: unknown): Promise<IteratorResult<unknown, unknown>> {
    return this.#step(this.#inner.return, [value], true);
  }

  throw(error?: unknown): Promise<IteratorResult<unknown, unknown>> {
    return this.#step(this.#inner.throw, [error], false);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  // It behaves as the async generator it wraps, so it reports itself as one: code that recognises streams by
  // their tag (`trace()` keeping its span open over a returned stream, instrumented functions returning one)
  // must treat an instrumented stream as the stream it is.
  get [Symbol.toStringTag](): string {
    return "AsyncGenerator";
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return(undefined);
  }

  #step(method: Function, args: unknown[], cancelling: boolean): Promise<IteratorResult<unknown, unknown>> {
    if (this.#phase === FINISHED) return Reflect.apply(method, this.#inner, args) as Promise<StreamStep>;
    if (this.#phase === NOT_STARTED) {
      if (method !== this.#inner.next) {
        // Stopped before the body ever ran: nothing happened, so nothing is recorded.
        this.#phase = FINISHED;
        return Reflect.apply(method, this.#inner, args) as Promise<StreamStep>;
      }
      this.#begin();
    }
    const pending = runInSpan(
      this.#span,
      method as (...args: never[]) => Promise<StreamStep>,
      this.#inner,
      args,
    );
    return pending.then(cancelling ? this.#onReturned : this.#onStepped, this.#onFailed);
  }

  // Made once per stream rather than twice per chunk: a stream may yield thousands of chunks.
  readonly #onStepped = (result: StreamStep): StreamStep => {
    this.#observe(result, false);
    return result;
  };

  readonly #onReturned = (result: StreamStep): StreamStep => {
    this.#observe(result, true);
    return result;
  };

  readonly #onFailed = (error: unknown): never => {
    if (this.#phase === RUNNING) {
      this.#phase = FINISHED;
      this.#held.flush();
      emitSpanEvent(this.#span, "error", errorEventData(error, this.#startedAt));
    }
    throw error;
  };

  #begin(): void {
    this.#phase = RUNNING;
    try {
      this.#includeOutputs = this.#meta.includeOutputs ?? getRuntime().config.includeOutputs;
      emitSpanEvent(this.#span, "start", this.#start ?? {});
    } catch (error) {
      reportInternalError("recording a stream start failed", error);
    }
    this.#startedAt = clockNow();
  }

  #observe(result: IteratorResult<unknown, unknown>, cancelling: boolean): void {
    try {
      if (this.#phase !== RUNNING) return;
      if (result.done === true) {
        this.#phase = FINISHED;
        this.#end(result.value, cancelling);
      } else {
        this.#chunk(result.value);
      }
    } catch (error) {
      reportInternalError("recording a stream chunk failed", error);
    }
  }

  #chunk(chunk: unknown): void {
    if (typeof chunk === "object" && chunk !== null) {
      const version = (chunk as { version?: unknown }).version;
      if (typeof version === "number") {
        // Ax restarts a stream with a higher version on retry: what was streamed so far is void.
        if (this.#version !== undefined && version !== this.#version) {
          this.#held.flush();
          emitSpanEvent(this.#span, "retry", {
            previous_version: this.#version as number,
            version,
            discarded_tokens: this.#tokenIndex,
          });
          this.#retries += 1;
          this.#tokenIndex = 0;
          this.#fields.clear();
        }
        this.#version = version;
      }
    }
    const streamField = this.#meta.streamField;
    if (typeof streamField === "function") {
      let extracted: { field: string; token: string } | null = null;
      try {
        extracted = streamField(chunk);
      } catch (error) {
        reportInternalError("streamField function threw; chunk not recorded", thrownByUserCode(error));
        return;
      }
      if (extracted !== null && typeof extracted === "object") {
        const { field, token } = extracted;
        if (typeof field === "string" && typeof token === "string") this.#token(field, token, true, chunk);
      }
      return;
    }
    const field = streamField ?? "output";
    if (typeof chunk === "string") {
      this.#token(field, chunk, true, chunk);
      return;
    }
    if (typeof chunk === "object" && chunk !== null) {
      const { delta, token, text } = chunk as { delta?: unknown; token?: unknown; text?: unknown };
      if (typeof delta === "object" && delta !== null && !Array.isArray(delta)) {
        this.#deltaObject(delta as Record<string, unknown>, streamField, chunk);
        return;
      }
      const piece = typeof delta === "string" ? delta : typeof token === "string" ? token : text;
      if (typeof piece === "string") {
        this.#token(field, piece, true, chunk);
        return;
      }
    }
    this.#token(field, this.#json(chunk), false, chunk);
  }

  /** Ax-style `delta: { answer: "Hel" }`: one token per field, or only the configured field. */
  #deltaObject(delta: Record<string, unknown>, only: string | undefined, chunk: unknown): void {
    for (const key of only === undefined ? Object.keys(delta) : [only]) {
      if (!Object.hasOwn(delta, key)) continue;
      const value = delta[key];
      if (value === undefined) continue;
      if (typeof value === "string") this.#token(key, value, true, chunk);
      else this.#token(key, this.#json(value), false, chunk);
    }
  }

  #json(value: unknown): string {
    try {
      return JSON.stringify(toJson(value, getRuntime().config.encode)) ?? "null";
    } catch {
      return "[Unreadable]";
    }
  }

  #token(field: string, token: string, joinable: boolean, chunk: unknown): void {
    const index = this.#tokenIndex;
    this.#tokenIndex = index + 1;
    if (!this.#includeOutputs) return;
    const data: JsonObject & { token: string } = { field, token, token_index: index };
    const sample =
      typeof chunk === "object" && chunk !== null ? (chunk as { index?: unknown }).index : undefined;
    const isAxChunk = typeof sample === "number" && this.#version !== undefined;
    if (isAxChunk) data.sample_index = sample;
    this.#held.add(isAxChunk ? `${sample}:${field}` : field, data);
    // Interleaved samples would make the joined text meaningless; the first sample stands for the result.
    if (isAxChunk && sample !== 0) return;
    const entry = this.#fields.get(field);
    if (entry === undefined) {
      this.#fields.set(field, { text: token.slice(0, MAX_JOINED_CHARS), joinable });
    } else {
      if (!joinable) entry.joinable = false;
      if (entry.text.length < MAX_JOINED_CHARS)
        entry.text += token.slice(0, MAX_JOINED_CHARS - entry.text.length);
    }
  }

  #end(returned: unknown, cancelled: boolean): void {
    this.#held.flush();
    const endedAt = clockNow();
    const data: JsonObject = {
      duration_ms: durationMs(this.#startedAt, endedAt),
      token_count: this.#tokenIndex,
      cancelled,
    };
    if (this.#retries > 0) data.retries = this.#retries;
    if (this.#includeOutputs) {
      const outputs: JsonObject = {};
      for (const [field, entry] of this.#fields) if (entry.joinable) outputs[field] = entry.text;
      if (returned !== undefined) outputs.return_value = toJson(returned, getRuntime().config.encode);
      data.outputs = outputs;
    }
    emitSpanEvent(this.#span, "end", data, endedAt);
  }
}

/**
 * @internal Keeps a `trace()` span open over the async generator its block returned: the span ends when the
 * stream does (or is cancelled), each step runs inside the span, and yields are counted as tokens. Token
 * events and joined outputs are recorded only when `recordOutputs` is set (a block's outputs are opt-in).
 */
export function traceStream(
  generator: AsyncGenerator<unknown, unknown, unknown>,
  span: Span,
  startedAt: number,
  recordOutputs: boolean,
): AsyncGenerator<unknown, unknown, unknown> {
  const meta = makeMeta(
    recordOutputs ? {} : { includeOutputs: false },
    span.methodName,
    span.moduleName,
    false,
  );
  return new InstrumentedStream(generator, span, meta, undefined, startedAt);
}

/** Wraps one function; the wrapper keeps its name, length and `this` behaviour. */
function wrapFunction(original: Function, meta: CallMeta): Function {
  const existing = (original as { [ORIGINAL]?: unknown })[ORIGINAL];
  if (typeof existing === "function") return original;
  let wrapper: Function;
  if (isAsyncGeneratorFunction(original)) {
    wrapper = function (this: unknown, ...args: unknown[]) {
      return callStream(meta, original, this, args);
    };
  } else {
    wrapper = function (this: unknown, ...args: unknown[]) {
      // Functions used as constructors are passed through: a construction is not a module call.
      if (new.target !== undefined) return Reflect.construct(original, args, new.target);
      return callInstrumented(meta, original, this, args);
    };
    if (Object.hasOwn(original, "prototype")) {
      Object.defineProperty(wrapper, "prototype", { value: (original as { prototype: unknown }).prototype });
    }
  }
  Object.defineProperty(wrapper, "name", { value: nameOf(original), configurable: true });
  Object.defineProperty(wrapper, "length", { value: original.length, configurable: true });
  Object.defineProperty(wrapper, ORIGINAL, { value: original });
  return wrapper;
}

/** True for functions returned by `instrument()`. */
export function isInstrumented(value: unknown): boolean {
  return (
    (typeof value === "function" && typeof (value as { [ORIGINAL]?: unknown })[ORIGINAL] === "function") ||
    (typeof value === "object" && value !== null && instrumentedObjects.has(value))
  );
}

function isClass(fn: Function, options: InstrumentOptions): boolean {
  if (!Object.hasOwn(fn, "prototype")) return false;
  const tag = (fn as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  if (tag === "GeneratorFunction" || tag === "AsyncGeneratorFunction") return false;
  try {
    if (/^class[\s{]/.test(Function.prototype.toString.call(fn))) return true;
  } catch {
    // Some host functions refuse toString; fall through to the duck test.
  }
  // A pre-ES2015 constructor function counts as a class when its prototype has the methods to instrument.
  const proto = (fn as { prototype?: unknown }).prototype;
  if (typeof proto !== "object" || proto === null) return false;
  const names = options.methods ?? DEFAULT_METHODS;
  return names.some((name) => typeof findDescriptor(proto, name)?.value === "function");
}

function findDescriptor(start: object, key: string): PropertyDescriptor | undefined {
  let current: object | null = start;
  while (current !== null && current !== Object.prototype) {
    const descriptor = Object.getOwnPropertyDescriptor(current, key);
    if (descriptor !== undefined) return descriptor;
    current = Object.getPrototypeOf(current) as object | null;
  }
  return undefined;
}

function describeTarget(target: object): string {
  if (typeof target === "function") return nameOf(target) || "anonymous";
  const ctor = (target as { constructor?: unknown }).constructor;
  const name = typeof ctor === "function" && ctor !== Object ? nameOf(ctor) : "";
  return name !== "" ? `a ${name}` : "an object";
}

/**
 * The methods to wrap: the listed ones (each must exist), or `forward`/`streamingForward` (at least one).
 * Returns name and the function currently found.
 */
function selectMethods(
  holder: object,
  options: InstrumentOptions,
  label: string,
): { name: string; descriptor: PropertyDescriptor; fn: Function }[] {
  const explicit = options.methods !== undefined;
  const names = options.methods ?? DEFAULT_METHODS;
  const found: { name: string; descriptor: PropertyDescriptor; fn: Function }[] = [];
  const missing: number[] = [];
  names.forEach((name, index) => {
    const descriptor = findDescriptor(holder, name);
    const fn = descriptor?.value;
    if (descriptor === undefined || typeof fn !== "function") {
      missing.push(index);
      return;
    }
    found.push({ name, descriptor, fn });
  });
  if (explicit && missing.length > 0) throw missingMethodsError(holder, names, missing, label);
  if (found.length === 0) {
    throw new ConfigurationError(
      `instrument(${label}): nothing to instrument: it has no forward() or streamingForward() method; pass { methods: [...] } to choose methods`,
      [{ path: "methods", message: "no method to instrument" }],
    );
  }
  return found;
}

/**
 * Names each listed method that does not exist by its index (`methods[0]`), never by its value: a string
 * passed by mistake may be a secret. The target's nearest method name is suggested instead; it is code.
 */
function missingMethodsError(
  holder: object,
  names: readonly string[],
  missing: readonly number[],
  label: string,
): ConfigurationError {
  const known = methodNamesOf(holder);
  const entries = missing.map((index) => {
    const near = nearestName(names[index] ?? "", known);
    return { path: `methods[${index}]`, hint: near === undefined ? "" : ` (did you mean \`${near}\`?)` };
  });
  const list = entries.map((entry) => `${entry.path}${entry.hint}`).join(", ");
  const verb = missing.length === 1 ? "is not a method" : "are not methods";
  return new ConfigurationError(
    `instrument(${label}): ${list} ${verb} of ${label} (methods must name functions of the target)`,
    entries.map((entry) => ({ path: entry.path, message: `not a method of ${label}${entry.hint}` })),
  );
}

/** The names of the functions `holder` has, own or inherited (Object.prototype's aside). */
function methodNamesOf(holder: object): string[] {
  const names = new Set<string>();
  let current: object | null = holder;
  while (current !== null && current !== Object.prototype) {
    for (const key of Object.getOwnPropertyNames(current)) {
      if (key === "constructor") continue;
      if (typeof Object.getOwnPropertyDescriptor(current, key)?.value === "function") names.add(key);
    }
    current = Object.getPrototypeOf(current) as object | null;
  }
  return [...names];
}

function instrumentClass<C extends Function>(ctor: C, options: InstrumentOptions): C {
  const proto = (ctor as { prototype?: unknown }).prototype as object;
  const className = nameOf(ctor) || "anonymous";
  const methods = selectMethods(proto, options, className).filter(({ fn }) => !isInstrumented(fn));
  // Checked before anything changes: a class is instrumented whole or not at all.
  for (const { name } of methods) {
    const reason = whyNotRedefinable(proto, name);
    if (reason !== null) {
      throw new ConfigurationError(
        `instrument(${className}): cannot instrument ${name} of ${className}: ${reason}; instrument an instance or a subclass instead`,
        [{ path: "target", message: `${name} of ${className} cannot be replaced (${reason})` }],
      );
    }
  }
  for (const { name, descriptor, fn } of methods) {
    const meta = makeMeta(options, name, className, true);
    const wrapped = wrapFunction(fn, meta);
    // Defined on this class's prototype even when inherited, so the base class stays untouched.
    Object.defineProperty(proto, name, { ...descriptor, value: wrapped });
    // Calls on instances of this class look up (class, method): its signature can be computed now.
    prepareVersion(ctor, meta.methodName, meta.fixedName ?? meta.fallbackName);
  }
  return ctor;
}

/**
 * Why `name` cannot be (re)defined on a class prototype, or `null` when it can: a frozen prototype (its own
 * methods are neither writable nor configurable, and inherited ones cannot be shadowed), or one method defined
 * non-configurable and read-only.
 */
function whyNotRedefinable(proto: object, name: string): string | null {
  const own = Object.getOwnPropertyDescriptor(proto, name);
  const frozen = Object.isFrozen(proto) ? " (frozen class)" : "";
  if (own === undefined) {
    return Object.isExtensible(proto)
      ? null
      : `the prototype is not extensible${frozen || " (sealed class)"}`;
  }
  if (own.configurable === false && own.writable !== true) return `the property is not configurable${frozen}`;
  return null;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || proto === Object.prototype;
}

function instrumentObject<T extends object>(target: T, options: InstrumentOptions): T {
  if (instrumentedObjects.has(target)) return target;
  const existing = wrappedObjects.get(target);
  if (existing !== undefined) return existing as T;
  const plain = isPlainObject(target);
  const label = describeTarget(target);
  const moduleName = options.name ?? (plain ? "anonymous" : label.replace(/^an? /, ""));
  const wrappers = new Map<string, { original: Function; wrapper: Function }>();
  const methods = selectMethods(target, options, label);
  for (const { name, fn } of methods) {
    if (isInstrumented(fn)) continue;
    wrappers.set(name, {
      original: fn,
      wrapper: wrapFunction(fn, makeMeta(options, name, moduleName, false)),
    });
  }
  if (wrappers.size === 0) return target;

  // Class instances are patched in place (own properties shadowing the prototype): identity and private
  // fields keep working, which a Proxy would break. Plain objects get a Proxy so the caller's object stays as
  // it was while sharing its state. Frozen objects cannot be patched or proxied method by method, so they get
  // a wrapped copy. A class instance that cannot be patched gets a Proxy that runs everything on the instance.
  if (!plain) {
    const ctor = (target as { constructor?: unknown }).constructor;
    if (typeof ctor === "function" && ctor !== Object) {
      for (const name of wrappers.keys()) prepareVersion(ctor, name, moduleName);
    }
  }
  if (!plain && Object.isExtensible(target) && canDefineAll(target, wrappers.keys())) {
    for (const [name, { wrapper }] of wrappers) {
      const own = Object.getOwnPropertyDescriptor(target, name);
      Object.defineProperty(target, name, {
        value: wrapper,
        writable: own?.writable ?? true,
        enumerable: own?.enumerable ?? false,
        configurable: own?.configurable ?? true,
      });
    }
    return target;
  }
  const result = !plain
    ? instanceView(target, wrappers)
    : canProxyAll(target, wrappers.keys())
      ? proxyObject(target, wrappers)
      : copyObject(target, wrappers);
  instrumentedObjects.add(result);
  wrappedObjects.set(target, result);
  return result;
}

function canDefineAll(target: object, names: Iterable<string>): boolean {
  for (const name of names) {
    const own = Object.getOwnPropertyDescriptor(target, name);
    if (own !== undefined && own.configurable === false && own.writable !== true) return false;
  }
  return true;
}

/** A Proxy `get` trap may not change a non-configurable, non-writable own property. */
function canProxyAll(target: object, names: Iterable<string>): boolean {
  for (const name of names) {
    const own = Object.getOwnPropertyDescriptor(target, name);
    if (own !== undefined && own.configurable === false && own.writable === false) return false;
  }
  return true;
}

function proxyObject<T extends object>(
  target: T,
  wrappers: Map<string, { original: Function; wrapper: Function }>,
): T {
  return new Proxy(target, {
    get(object, key, receiver) {
      const value: unknown = Reflect.get(object, key, receiver);
      if (typeof key !== "string") return value;
      const entry = wrappers.get(key);
      // A method replaced after instrumenting is returned as it is now, not as it was.
      return entry !== undefined && value === entry.original ? entry.wrapper : value;
    },
  });
}

/**
 * The object returned for a class instance that cannot take own properties (sealed, frozen, non-extensible) or
 * whose method is an own locked property: a Proxy of it. Private fields, brand checks and internal slots exist
 * on the instance alone, so instrumented methods, getters and setters reached through the Proxy run with `this`
 * set to the instance, never to the Proxy (which would throw `Cannot read private member`).
 */
function instanceView<T extends object>(
  instance: T,
  wrappers: Map<string, { original: Function; wrapper: Function }>,
): T {
  // A Proxy may not report a non-configurable, read-only own property as anything but its value: when a wrapped
  // method is one, the Proxy stands on a copy that holds the wrapper instead. Reads and writes still go to the
  // instance; the copy only answers the Proxy's invariant checks (and `Object.keys` and the like).
  const shell = canProxyAll(instance, wrappers.keys()) ? instance : copyObject(instance, wrappers);
  const holder: { view: T | undefined } = { view: undefined };
  const onInstance = new Map<string, { original: Function; wrapper: Function }>();
  for (const [name, { original, wrapper }] of wrappers) {
    onInstance.set(name, { original, wrapper: callOnInstance(wrapper, original, instance, holder) });
  }
  // Only a read or write made on the Proxy itself is redirected: an object inheriting from it keeps its own `this`.
  const receiverOf = (receiver: unknown): unknown => (receiver === holder.view ? instance : receiver);
  const view = new Proxy(shell, {
    get(_shell, key, receiver) {
      const value: unknown = Reflect.get(instance, key, receiverOf(receiver));
      if (typeof key !== "string") return value;
      const entry = onInstance.get(key);
      // A method replaced after instrumenting is returned as it is now, not as it was.
      return entry !== undefined && value === entry.original ? entry.wrapper : value;
    },
    set(_shell, key, value, receiver) {
      return Reflect.set(instance, key, value, receiverOf(receiver));
    },
  });
  holder.view = view;
  return view;
}

/**
 * An instrumented method as the Proxy of {@link instanceView} hands it out: called on the Proxy, it runs on the
 * instance. A method that returns its instance (a fluent API) returns the Proxy, so chained calls stay
 * instrumented; a promise is returned untouched (its identity is kept), so an async method resolves to the
 * instance itself.
 */
function callOnInstance(
  wrapper: Function,
  original: Function,
  instance: object,
  holder: { readonly view: object | undefined },
): Function {
  const onInstance = function (this: unknown, ...args: unknown[]): unknown {
    if (new.target !== undefined) return Reflect.construct(wrapper, args, new.target);
    if (this !== holder.view) return Reflect.apply(wrapper, this, args);
    const result: unknown = Reflect.apply(wrapper, instance, args);
    return result === instance ? this : result;
  };
  Object.defineProperty(onInstance, "name", { value: nameOf(original), configurable: true });
  Object.defineProperty(onInstance, "length", { value: original.length, configurable: true });
  Object.defineProperty(onInstance, ORIGINAL, { value: original });
  return onInstance;
}

function copyObject<T extends object>(
  target: T,
  wrappers: Map<string, { original: Function; wrapper: Function }>,
): T {
  const descriptors: Record<PropertyKey, PropertyDescriptor> = Object.getOwnPropertyDescriptors(target);
  for (const [name, { wrapper }] of wrappers) {
    const own = descriptors[name];
    descriptors[name] = {
      value: wrapper,
      writable: own?.writable ?? true,
      enumerable: own?.enumerable ?? false,
      configurable: true,
    };
  }
  return Object.create(Object.getPrototypeOf(target) as object | null, descriptors) as T;
}

function isOptionsObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value) || !isPlainObject(value))
    return false;
  if (Object.keys(value).every((key) => instrumentOptionsSchema.keys.includes(key))) return true;
  // A plain object without a single method has nothing to instrument: read as options, a misspelled key
  // (`instrument({ nme: "qa" })`) gets the options' error with the nearest name, not "nothing to instrument".
  return Object.values(value).every((member) => typeof member !== "function");
}

function methodKeyName(key: string | symbol): string {
  return typeof key === "string" ? key : (key.description ?? "symbol");
}

function isDecoratorContext(
  value: unknown,
): value is { kind: string; name: string | symbol | undefined; static?: boolean } {
  return (
    typeof value === "object" && value !== null && typeof (value as { kind?: unknown }).kind === "string"
  );
}

function createDecorator(options: InstrumentOptions): InstrumentDecorator {
  const decorator = (...args: unknown[]): unknown => {
    const [first, second, third] = args;
    if (args.length === 2 && isDecoratorContext(second)) {
      if (second.kind === "class" && typeof first === "function") return instrumentClass(first, options);
      if (second.kind === "method" && typeof first === "function") {
        const name = second.name === undefined ? first.name : methodKeyName(second.name);
        return wrapFunction(first, makeMeta(options, name, "anonymous", true));
      }
      throw new ConfigurationError(
        `@instrument() decorates classes and methods, not a ${second.kind} (${String(second.name)})`,
        [{ path: "decorator", message: `unsupported decorator kind ${second.kind}` }],
      );
    }
    if (args.length === 3 && (typeof second === "string" || typeof second === "symbol")) {
      const descriptor = third as PropertyDescriptor | undefined;
      if (descriptor === undefined || typeof descriptor.value !== "function") {
        throw new ConfigurationError(
          `@instrument() decorates classes and methods, not the property ${methodKeyName(second)}`,
          [{ path: "decorator", message: "target is not a method" }],
        );
      }
      const owner = typeof first === "function" ? first : (first as { constructor?: unknown }).constructor;
      const fallback = typeof owner === "function" && owner !== Object ? nameOf(owner) : "anonymous";
      return {
        ...descriptor,
        value: wrapFunction(
          descriptor.value as Function,
          makeMeta(options, methodKeyName(second), fallback, true),
        ),
      };
    }
    if (args.length === 1 && typeof first === "function") return instrumentClass(first, options);
    throw new ConfigurationError(
      "@instrument() was called with arguments that are neither a standard nor a legacy class or method decorator",
      [{ path: "decorator", message: "unrecognised decorator call" }],
    );
  };
  return decorator as InstrumentDecorator;
}

/**
 * Instruments a function (sync, async or async generator), a class (its prototype methods, in place; returns
 * the class), a class instance (its methods, patched on the instance; returns the same instance, or for a
 * sealed, frozen or non-extensible one a Proxy whose instrumented methods run on the instance) or a plain
 * object (returns a Proxy, the original stays uninstrumented). Each call emits `start`, then `end` with the
 * duration and result or `error` (the original error is rethrown unchanged). Async generators emit one
 * `token` event per yield. Instrumenting something twice is a no-op.
 *
 * With only options (or none), returns a decorator for classes and methods.
 *
 * @throws ConfigurationError for invalid options, or when a class or object has no method to instrument.
 */
export function instrument<T extends AnyFunction>(target: T, options?: InstrumentOptions): T;
export function instrument<T extends AnyClass>(target: T, options?: InstrumentOptions): T;
export function instrument<O extends InstrumentOptions>(options?: OptionsOnly<O>): InstrumentDecorator;
export function instrument<T extends object>(target: T, options?: InstrumentOptions): T;
export function instrument(target?: unknown, options?: InstrumentOptions): unknown {
  try {
    return instrumentTarget(target, options);
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    // A revoked proxy, a proxy trap or getter that throws while the target is inspected. Its message is not
    // repeated (it is the target's own text); it stays available as `cause`.
    throw new ConfigurationError(
      "instrument(): the target cannot be inspected: it is a revoked proxy, or one of its proxy traps or getters threw",
      [{ path: "target", message: "could not be read (a revoked proxy, or a proxy trap or getter threw)" }],
      { cause: error },
    );
  }
}

function instrumentTarget(target: unknown, options: InstrumentOptions | undefined): unknown {
  if (target === undefined || (options === undefined && isOptionsObject(target))) {
    return createDecorator(parseInstrumentOptions(target));
  }
  const parsed = parseInstrumentOptions(options);
  if (typeof target === "function") {
    if (isInstrumented(target)) return target;
    if (isClass(target, parsed)) return instrumentClass(target, parsed);
    // A function is its own module: its name becomes the method name only when `name` renames the module.
    const name = nameOf(target);
    const methodName = parsed.name !== undefined && name !== "" ? name : null;
    const meta = makeMeta(parsed, methodName, name, false);
    const wrapped = wrapFunction(target, meta);
    // A plain function's calls look up the function itself (whatever its method name).
    prepareVersion(target, null, meta.fixedName ?? meta.fallbackName);
    return wrapped;
  }
  if (typeof target === "object" && target !== null) return instrumentObject(target, parsed);
  throw new ConfigurationError(
    `instrument() expects a function, class, object or options, got ${target === null ? "null" : typeof target}`,
    [{ path: "target", message: "not instrumentable" }],
  );
}
