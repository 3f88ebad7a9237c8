import { type AxFunctionCallTrace, type AxLoggerFunction, axGlobals } from "@ax-llm/ax";
import { ConfigurationError, getCurrentSpan, type JsonObject, type Span } from "@streamll/core";
import {
  clockNow,
  createSpan,
  emitSpanEvent,
  emitSpanEventRaw,
  errorEventData,
  getRuntime,
  reportInternalError,
} from "@streamll/core/internal";
import { describeAIService } from "../ai/ai-service-descriptor";
import { type LlmRequestRecord, traceAIService } from "../ai/traced-ai-service";
import { isLeafProgram, isSameSignature, nestedPrograms } from "../version/program-fingerprint";
import { trackProgramVersion } from "../version/program-version";
import { AxCall, collectAll, currentAxCall, runInCall, type SecretOutputFields } from "./ax-call";
import { instrumentAxFunctions } from "./instrument-functions";
import { InstrumentedAxStream } from "./instrumented-stream";
import { type InstrumentAxOptions, parseInstrumentAxOptions } from "./options";
import { bindRuntimeContext } from "./runtime-context";

/** What every call of one instrumented program shares. */
interface ProgramMeta {
  readonly fixedName: string | undefined;
  /** A name for a nested program without a description: its id in the tree (`qa.actor`). */
  readonly treeName: string | undefined;
  /** The program's own tags (`instrumentAx` options); a call adds them over its enclosing span's tags. */
  readonly tags: Readonly<Record<string, string>> | undefined;
  /** The program's own options; unset, a call takes them from the Ax call it runs under. */
  readonly includeInputs: boolean | undefined;
  readonly includeOutputs: boolean | undefined;
  readonly nested: boolean;
  /**
   * Only for a program instrumented as part of a flow or agent (never by `instrumentAx` itself): what its
   * calls outside any instrumented Ax call record. `false` once any program it was found in set that option
   * to `false`, so a node of a flow that hides its inputs does not show them when called on its own.
   */
  readonly standalone?: { includeInputs: boolean | undefined; includeOutputs: boolean | undefined };
}

/**
 * The `operation` of every program call made inside an instrumented optimizer's run (the optimizer's trial
 * runs of intermediate program versions): `streamll compare` groups calls by module, method and operation,
 * so these calls form a row of their own and the program's calls outside the run (`operation: null`) compare
 * the version before the run with the version after it.
 */
export const OPTIMIZER_OPERATION = "optimizer";

/** The optimizer runs and every program call made inside one. */
const optimizerCalls = new WeakSet<AxCall>();

/** Marks an optimizer run (`instrumentAxOptimizer`): the program calls made inside it are its trials. */
export function markOptimizerRun(call: AxCall): void {
  optimizerCalls.add(call);
}

/** Longest error text kept when a call records no inputs or no outputs. */
const MAX_REDUCED_CHARS = 200;
/** Shortest input value hidden from error text, as `AxCall` hides secret values (shorter ones are words). */
const MIN_HIDDEN_CHARS = 4;
const NOT_RECORDED_REASON = "not recorded (includeOutputs is false)";

/**
 * Error text a call that records no inputs or no outputs may keep: the texts in `hidden` replaced by
 * `[REDACTED]`, then only the first line, up to its first quote mark (Ax and providers quote the values they
 * complain about: `Field 'Answer' has an invalid value '…'`), at most {@link MAX_REDUCED_CHARS} characters.
 * What was cut is marked `…`. Never empty: a message reduced to nothing becomes `fallback`.
 */
function reducedText(text: string, hidden: readonly string[], fallback: string): string {
  let out = text;
  for (const value of hidden) if (out.includes(value)) out = out.split(value).join("[REDACTED]");
  const line = out.split("\n", 1)[0] ?? "";
  const quote = line.search(/['"`\u2018\u201c]/);
  let kept = (quote === -1 ? line : line.slice(0, quote)).trimEnd();
  if (kept.length > MAX_REDUCED_CHARS) kept = kept.slice(0, MAX_REDUCED_CHARS);
  if (kept === "") return fallback;
  return kept.length < out.trimEnd().length ? `${kept} …` : kept;
}

/**
 * A stand-in for `error` carrying what a call that records no inputs or no outputs may keep: its name, its
 * code (`ECONNRESET`, a status), its message reduced by {@link reducedText}, and no stack (Ax's service errors
 * put the request body, the prompt, in their stack).
 */
function reducedError(error: unknown, hidden: readonly string[]): Error {
  let name = "Error";
  let message = "";
  let code: unknown;
  try {
    if (typeof error === "object" && error !== null) {
      const read = error as { name?: unknown; message?: unknown; code?: unknown };
      const ctor = (error as { constructor?: { name?: unknown } }).constructor?.name;
      name =
        typeof read.name === "string" && read.name !== ""
          ? read.name
          : typeof ctor === "string" && ctor !== ""
            ? ctor
            : "Error";
      message = typeof read.message === "string" ? read.message : "";
      code = read.code;
    } else {
      name = typeof error;
      message = String(error);
    }
  } catch {
    message = "";
  }
  const reduced = new Error();
  const own = (key: string, value: unknown) =>
    Object.defineProperty(reduced, key, { value, writable: true, enumerable: false, configurable: true });
  own("name", name);
  own("message", reducedText(message, hidden, name));
  own("stack", undefined);
  if (typeof code === "string" || typeof code === "number") own("code", code);
  return reduced;
}

/**
 * One call of an instrumented program, with the options it runs with. When it records no inputs or no
 * outputs, the text of its errors and retries is reduced before `AxCall` records it, wherever the error is
 * reported from (the call, a model request, a stream, Ax's logger): that text can quote the prompt or what
 * the model wrote.
 */
class ProgramCall extends AxCall {
  readonly includeInputs: boolean;
  /** Ax's retry reasons as it logged them, when outputs are not recorded: its final error repeats them. */
  private loggedReasons: string[] | undefined;

  constructor(
    parentSpan: Span | undefined,
    program: object,
    moduleName: string,
    tags: Readonly<Record<string, string>> | undefined,
    includeInputs: boolean,
    includeOutputs: boolean,
  ) {
    super(parentSpan, program, moduleName, tags, includeOutputs);
    this.includeInputs = includeInputs;
  }

  /** True when error and retry text must be reduced. */
  get reducesErrors(): boolean {
    return !this.includeInputs || !this.includeOutputs;
  }

  /**
   * Texts hidden from this call's error text: without inputs, the input values of this call and of the calls
   * it runs in (they reach its prompt); without outputs, the retry reasons Ax logged. Longest first.
   */
  hiddenTexts(): readonly string[] {
    const found = new Set<string>();
    try {
      if (!this.includeInputs)
        for (let call: AxCall | undefined = this; call !== undefined; call = call.parent)
          collectAll(call.inputs, 0, new Set(), found);
      if (!this.includeOutputs) for (const reason of this.loggedReasons ?? []) found.add(reason);
    } catch {
      // Unreadable inputs: the first-line and quote cuts still apply.
    }
    return [...found].sort((a, b) => b.length - a.length);
  }

  /** An error as this call may record it. */
  recordable(error: unknown): unknown {
    return this.reducesErrors ? reducedError(error, this.hiddenTexts()) : error;
  }

  override fail(error: unknown): void {
    super.fail(this.recordable(error));
  }

  override recordLlmRequest(request: LlmRequestRecord): void {
    if (request.error === undefined || !this.reducesErrors) {
      super.recordLlmRequest(request);
      return;
    }
    super.recordLlmRequest({ ...request, error: this.recordable(request.error) });
  }

  override onAxLog(message: unknown): void {
    if (!this.reducesErrors || typeof message !== "object" || message === null) {
      super.onAxLog(message);
      return;
    }
    const { name, error } = message as { name?: unknown; error?: unknown };
    if (!this.includeOutputs) {
      // Ax's reasons quote what the model wrote; its final error repeats them, so they are hidden there too.
      const raw = error instanceof Error ? error.message : typeof error === "string" ? error : "";
      if (raw.length >= MIN_HIDDEN_CHARS)
        for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
          if (!(call instanceof ProgramCall) || call.includeOutputs) continue;
          call.loggedReasons ??= [];
          call.loggedReasons.push(raw);
        }
      super.onAxLog({ name, error: NOT_RECORDED_REASON });
      return;
    }
    super.onAxLog({ name, error: reducedError(error, this.hiddenTexts()).message });
  }
}

/**
 * The tags of a call: its enclosing span's (the flow, agent, optimizer run or `trace()` block it runs in)
 * with the program's own over them. Merged sets are kept per pair, so calls do not copy tags each time.
 */
const mergedTags = new WeakMap<object, WeakMap<object, Readonly<Record<string, string>>>>();

function tagsUnder(
  enclosing: Readonly<Record<string, string>> | undefined,
  own: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | undefined {
  if (enclosing === undefined || enclosing === own) return own;
  if (own === undefined) return enclosing;
  let byOwn = mergedTags.get(enclosing);
  if (byOwn === undefined) {
    byOwn = new WeakMap();
    mergedTags.set(enclosing, byOwn);
  }
  let merged = byOwn.get(own);
  if (merged === undefined) {
    merged = Object.freeze({ ...enclosing, ...own });
    byOwn.set(own, merged);
  }
  return merged;
}

/** The program members instrumentation reads; any Ax program (AxGen, AxFlow, AxAgent) has them. */
interface AxProgramLike {
  forward(ai: unknown, values: unknown, options?: unknown): Promise<unknown>;
  streamingForward?(
    ai: unknown,
    values: unknown,
    options?: unknown,
  ): AsyncGenerator<unknown, unknown, unknown>;
  getSignature?(): {
    getDescription?(): string | undefined;
    getInputFields?(): readonly { name: string }[];
    getOutputFields?(): readonly { name: string; title?: string }[];
  };
  /** Both `forward` and `streamingForward` read the program's delta stream from here (AxGen). */
  _forward1?(ai: unknown, values: unknown, options: unknown): AsyncGenerator<unknown, unknown, unknown>;
  options?: { debug?: unknown; logger?: unknown } | undefined;
}

const instrumented = new WeakMap<object, ProgramMeta>();
const MAX_NAME_LENGTH = 200;

/**
 * Marks the loggers and function-call hooks this package passes to Ax with the call that owns them, so a
 * nested program that receives them (Ax hands a parent's options down) finds the user's own hooks behind them.
 * A property on the hook rather than a WeakMap: WeakMap insertions were the largest cost of a forward here.
 */
const OWNER = Symbol("streamll.axCall");

/** What a call passed to Ax on the user's behalf, for the calls nested in it. */
interface OwnHooks {
  /** The user's logger and debug setting, looked up on first use (reading them costs service calls). */
  readonly userLogging: () => UserLogging;
  readonly userHook: ((call: Readonly<AxFunctionCallTrace>) => unknown) | undefined;
}

interface UserLogging {
  readonly debug: boolean;
  readonly logger: AxLoggerFunction | undefined;
}

type OwnHook = Function & { [OWNER]?: OwnHooks };

function ownHooksOf(hook: unknown): OwnHooks | undefined {
  return typeof hook === "function" ? (hook as OwnHook)[OWNER] : undefined;
}

/** True for functions and objects `instrumentAx()` returned. */
export function isAxInstrumented(program: unknown): boolean {
  return typeof program === "object" && program !== null && instrumented.has(program);
}

function clamp(name: string): string {
  // The first line, without Markdown heading marks (agent stages describe themselves as `## Executor`).
  const line = (name.trim().split("\n", 1)[0] ?? "").replace(/^#+\s*/, "").trim();
  return line.length > MAX_NAME_LENGTH ? line.slice(0, MAX_NAME_LENGTH) : line;
}

/** What the instrumentation reads from a program's signature, kept until the signature changes. */
interface SignatureInfo {
  /** The signature object (AxProgram's own field) and its hash, or the signature text: what identifies it. */
  readonly key: unknown;
  readonly hash: unknown;
  readonly description: string | undefined;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** The output fields' titles as the model writes them (`apiPassword` is `Api Password:`), in order. */
  readonly outputTitles: readonly string[];
  /** `module_name` from the description, when it has one (clamped once here, not per call). */
  readonly descriptionName: string | undefined;
  /** `module_name` from the fields (`question -> answer`), when there are any. */
  readonly fieldsName: string | undefined;
}

const signatureInfos = new WeakMap<object, SignatureInfo>();

type SignatureLike = ReturnType<NonNullable<AxProgramLike["getSignature"]>>;

/**
 * The program's signature facts. AxProgram's getSignature() copies the signature on every call, so an AxGen
 * is read through its own `signature` field and `sigHash` (which setSignature/setDescription replace), and its
 * facts are cached until they change; other programs are read through getSignature().
 */
function descriptionOf(signature: SignatureLike | undefined): string | undefined {
  try {
    const read = signature?.getDescription?.();
    return typeof read === "string" ? read : undefined;
  } catch {
    return undefined;
  }
}

function signatureInfo(program: AxProgramLike): SignatureInfo | undefined {
  const own = (program as { signature?: unknown; sigHash?: unknown }).signature as SignatureLike | undefined;
  const hash = (program as { sigHash?: unknown }).sigHash;
  const cached = signatureInfos.get(program);
  // Ax's setDescription rewrites the description in place, keeping the signature object (and maybe its hash):
  // the description is compared too, or `module_name` would keep naming the previous one.
  if (
    cached !== undefined &&
    isSameSignature(program, cached.key, cached.hash) &&
    cached.description === descriptionOf(own)
  )
    return cached;
  try {
    const signature = own ?? program.getSignature?.();
    if (signature === undefined || signature === null) return undefined;
    const key = own ?? String(signature.toString?.() ?? "");
    const description = descriptionOf(signature);
    if (
      cached !== undefined &&
      cached.key === key &&
      cached.hash === hash &&
      cached.description === description
    )
      return cached;
    const inputs = signature.getInputFields?.().map((f) => f.name) ?? [];
    const outputFields = signature.getOutputFields?.() ?? [];
    const outputs = outputFields.map((f) => f.name);
    const outputTitles = outputFields.map((f) => (typeof f.title === "string" ? f.title : f.name));
    const info: SignatureInfo = {
      key,
      hash,
      description,
      inputs,
      outputs,
      outputTitles,
      descriptionName:
        description !== undefined && description.trim() !== "" ? clamp(description) : undefined,
      fieldsName:
        inputs.length + outputs.length > 0
          ? clamp(`${inputs.join(", ")} -> ${outputs.join(", ")}`)
          : undefined,
    };
    signatureInfos.set(program, info);
    return info;
  } catch {
    // A signature that cannot be read tells nothing.
    return undefined;
  }
}

/** `module_name`: the user's name, the signature's description, the program's id in a tree, or its fields. */
function moduleNameOf(
  program: AxProgramLike,
  meta: ProgramMeta,
  info: SignatureInfo | undefined = meta.fixedName === undefined ? signatureInfo(program) : undefined,
): string {
  if (meta.fixedName !== undefined) return meta.fixedName;
  return info?.descriptionName ?? meta.treeName ?? info?.fieldsName ?? "ax";
}

const UNNAMED: ProgramMeta = Object.freeze({
  fixedName: undefined,
  treeName: undefined,
  tags: undefined,
  includeInputs: undefined,
  includeOutputs: undefined,
  nested: false,
});

/** The `module_name` a program's calls have (or would have, instrumented without a `name`). */
export function programModuleName(program: object): string {
  return moduleNameOf(program as AxProgramLike, instrumented.get(program) ?? UNNAMED);
}

/** The program's input values, without anything else passed alongside them. */
function inputValues(info: SignatureInfo | undefined, values: unknown): unknown {
  if (typeof values !== "object" || values === null || Array.isArray(values)) return values;
  try {
    const fields = info?.inputs;
    if (fields === undefined || fields.length === 0) return values;
    const picked: Record<string, unknown> = {};
    for (const name of fields) {
      if (Object.hasOwn(values, name)) picked[name] = (values as Record<string, unknown>)[name];
    }
    return picked;
  } catch {
    return values;
  }
}

/** The secret output fields of a signature, for the key list they were found with. */
const secretOutputsCache = new WeakMap<
  SignatureInfo,
  { readonly keys: object; readonly found: SecretOutputFields | undefined }
>();

/** The program's output fields whose names the configured `redact` key list matches, if any. */
function secretOutputsOf(info: SignatureInfo | undefined): SecretOutputFields | undefined {
  const keys = getRuntime().redactKeys;
  if (keys === undefined || keys === null || keys.size === 0) return undefined;
  if (info === undefined) return undefined;
  // Kept per signature and key list (a new configuration has a new one), so a call does not search again.
  const cached = secretOutputsCache.get(info);
  if (cached !== undefined && cached.keys === keys) return cached.found;
  const secret = info.outputTitles.filter((_, i) => keys.has(info.outputs[i] as string));
  const found = secret.length === 0 ? undefined : { secret, all: info.outputTitles };
  secretOutputsCache.set(info, { keys, found });
  return found;
}

/** Opens the span of one call, with its version fields and `version` event, and emits `start`. */
function openCall(
  program: AxProgramLike,
  meta: ProgramMeta,
  ai: unknown,
  values: unknown,
  options: unknown,
  streaming: boolean,
): AxCall {
  const runtime = getRuntime();
  // Read once for the call's start: its name, secret output fields and input fields.
  const info = signatureInfo(program);
  const moduleName = moduleNameOf(program, meta, info);
  // Options the program was not given come from the Ax call it runs under (the flow or agent calling it),
  // not from whichever flow instrumented it first: one program can be a node of several flows.
  const parent = currentAxCall();
  const enclosing = parent instanceof ProgramCall ? parent : undefined;
  const includeInputs =
    meta.includeInputs ??
    enclosing?.includeInputs ??
    meta.standalone?.includeInputs ??
    runtime.config.includeInputs;
  const includeOutputs =
    meta.includeOutputs ??
    enclosing?.includeOutputs ??
    meta.standalone?.includeOutputs ??
    runtime.config.includeOutputs;
  const parentSpan = getCurrentSpan();
  const tags = tagsUnder(parentSpan?.tags, meta.tags);
  const call = new ProgramCall(parentSpan, program, moduleName, tags, includeInputs, includeOutputs);
  if (parent !== undefined && optimizerCalls.has(parent)) {
    optimizerCalls.add(call);
    // AxCall takes no operation; the span is fresh and has emitted nothing, so setting it here is safe.
    (call.span as { operation: string | null }).operation = OPTIMIZER_OPERATION;
  }
  call.streaming = streaming;
  call.inputs = values;
  call.secretOutputs = secretOutputsOf(info);
  const tracker = runtime.config.versionTracker;
  if (tracker !== null) {
    const versionData = trackProgramVersion(tracker, call.span, program, moduleName);
    if (versionData !== null) emitSpanEvent(call.span, "version", versionData);
  }
  const start: Record<string, unknown> = {
    ai: describeAIService(ai, (options as { model?: unknown } | undefined)?.model),
  };
  if (includeInputs) start.inputs = inputValues(info, values);
  if (streaming || (options as { stream?: unknown } | undefined)?.stream === true) start.streaming = true;
  emitSpanEventRaw(call.span, "start", start);
  call.started();
  return call;
}

/**
 * The options the program runs with: the caller's, plus Ax's per-call hooks this package listens on —
 * `logger` with `debug` (Ax reports validation, assertion and function errors there, which become `retry`
 * events) and `onFunctionCall` (function calls become spans). The caller's own logger still receives every
 * message when the caller had debug logging on, and the caller's `onFunctionCall` still runs.
 */
function callOptions(
  call: AxCall,
  program: AxProgramLike,
  ai: unknown,
  options: unknown,
): Record<string, unknown> {
  const given = (typeof options === "object" && options !== null ? options : {}) as Record<string, unknown>;
  const parentLogging = ownHooksOf(given.logger)?.userLogging;
  let resolved: UserLogging | undefined;
  const userLogging = (): UserLogging => {
    if (resolved !== undefined) return resolved;
    if (parentLogging !== undefined) {
      resolved = parentLogging();
      return resolved;
    }
    // Ax's own order: call options, program options, the AI service's options, axGlobals, the service's logger.
    let serviceOptions: { debug?: unknown; logger?: unknown } = {};
    try {
      serviceOptions = ((ai as { getOptions?: () => unknown }).getOptions?.() ?? {}) as typeof serviceOptions;
    } catch {
      serviceOptions = {};
    }
    const globals: { debug?: unknown; logger?: unknown } = axGlobals;
    const debug = given.debug ?? program.options?.debug ?? serviceOptions.debug ?? globals.debug ?? false;
    let logger = given.logger ?? program.options?.logger ?? serviceOptions.logger ?? globals.logger;
    if (typeof logger !== "function") {
      try {
        logger = (ai as { getLogger?: () => unknown }).getLogger?.();
      } catch {
        logger = undefined;
      }
    }
    resolved = {
      debug: debug === true,
      logger: typeof logger === "function" ? (logger as AxLoggerFunction) : undefined,
    };
    return resolved;
  };
  const givenHook = given.onFunctionCall;
  const parentHooks = ownHooksOf(givenHook);
  const userHook =
    parentHooks !== undefined
      ? parentHooks.userHook
      : typeof givenHook === "function"
        ? (givenHook as (call: Readonly<AxFunctionCallTrace>) => unknown)
        : undefined;
  const hooks: OwnHooks = { userLogging, userHook };

  const logger: OwnHook & AxLoggerFunction = (message) => {
    call.onAxLog(message);
    const user = userLogging();
    if (user.debug && user.logger !== undefined) user.logger(message);
  };
  logger[OWNER] = hooks;
  call.ownLogger = logger;
  const onFunctionCall: OwnHook & ((trace: Readonly<AxFunctionCallTrace>) => unknown) = (trace) => {
    recordFunctionCall(call, trace);
    if (userHook !== undefined) return userHook(trace);
    return undefined;
  };
  onFunctionCall[OWNER] = hooks;
  return { ...given, debug: true, logger, onFunctionCall };
}

/** A function the model called: a child span of the call, with its arguments, result and duration. */
function recordFunctionCall(call: AxCall, trace: Readonly<AxFunctionCallTrace>): void {
  try {
    // Ax reports the call after the function ran, in the function's async context: a function wrapped by
    // instrumentAxFunctions() noted its run there and has its span (with real start and end times) already.
    if (typeof trace.fn === "string" && currentAxCall()?.takeWrappedFunctionRun(trace.fn) === true) return;
    // The options of the call that made it (a program's own, or those it runs under).
    const config = getRuntime().config;
    const includeInputs = call instanceof ProgramCall ? call.includeInputs : config.includeInputs;
    const span: Span = createSpan(
      call.span,
      call.span.moduleName,
      call.span.methodName,
      `function:${trace.fn}`,
      call.span.tags,
    );
    span.moduleVersion = call.span.moduleVersion;
    span.codeSignature = call.span.codeSignature;
    span.gitCommit = call.span.gitCommit;
    const start: Record<string, unknown> = { function: trace.fn };
    if (includeInputs) start.arguments = trace.args;
    emitSpanEventRaw(span, "start", start);
    const duration = typeof trace.ms === "number" ? trace.ms : 0;
    if (trace.ok) {
      const end: Record<string, unknown> = { function: trace.fn, duration_ms: duration };
      if (call.includeOutputs) end.outputs = trace.result;
      emitSpanEventRaw(span, "end", end);
    } else {
      emitSpanEvent(span, "error", functionErrorData(call, trace.fn, trace.result, duration));
    }
  } catch (error) {
    reportInternalError("recording a function call failed", error);
  }
}

/**
 * The `error` event of a failed function call. Ax reports what the function threw (`result`), except for an
 * `AxFunctionError` (bad arguments), which it reports as its fixing instructions for the model: the thrown
 * error gives `error_type`, `error_message` and `stack` as a wrapped function's span records them; the
 * instructions are an `error_message` with `error_type: "FunctionError"`. Input values under secret key names
 * are hidden in the text, as in the call's own `error`.
 */
function functionErrorData(call: AxCall, fn: string, result: unknown, duration: number): JsonObject {
  const reduces = call instanceof ProgramCall && call.reducesErrors;
  const data: JsonObject =
    typeof result === "string"
      ? {
          error_type: "FunctionError",
          error_message: reduces ? reducedText(result, call.hiddenTexts(), "FunctionError") : result,
        }
      : errorEventData(reduces ? call.recordable(result) : result, clockNow());
  data.function = fn;
  data.duration_ms = duration;
  call.hideSecretsIn(data);
  return data;
}

/**
 * Opens a `forward` or `streamingForward` call (its version and start events) and the arguments the program runs
 * with: the traced AI service and the options carrying this package's hooks. `undefined` while streamll is off
 * or when the instrumentation failed (reported): the caller then runs the program unobserved.
 */
function beginCall(
  self: AxProgramLike,
  meta: ProgramMeta,
  ai: unknown,
  values: unknown,
  options: unknown,
  streaming: boolean,
): { call: AxCall; args: unknown[] } | undefined {
  if (!getRuntime().active) return undefined;
  try {
    if (meta.nested) instrumentNested(self, meta);
    const call = openCall(self, meta, ai, values, options, streaming);
    if (!streaming) call.tokensFromDeltas = (options as { stream?: unknown } | undefined)?.stream === true;
    return { call, args: [traceAIService(ai as object), values, callOptions(call, self, ai, options)] };
  } catch (error) {
    reportInternalError(`instrumentation failed; Ax ${streaming ? "stream" : "call"} not recorded`, error);
    return undefined;
  }
}

function wrapForward(program: AxProgramLike, original: AxProgramLike["forward"], meta: ProgramMeta) {
  return function forward(
    this: AxProgramLike,
    ai: unknown,
    values: unknown,
    options?: unknown,
  ): Promise<unknown> {
    const self = (this ?? program) as AxProgramLike;
    // AxFlow's (and some agent parts') streamingForward yields the result of its own `forward`, passing its
    // arguments on: that forward is the streamed call itself, already open with the traced service and this
    // call's hooks (its logger identifies them), so it runs within that call; a span of its own would record
    // the call, and its usage, twice.
    const current = currentAxCall();
    if (
      current?.streamingEntry === true &&
      current.program === self &&
      (options as { logger?: unknown } | undefined)?.logger === current.ownLogger
    )
      return Reflect.apply(original, self, [ai, values, options]) as Promise<unknown>;
    const begun = beginCall(self, meta, ai, values, options, false);
    if (begun === undefined) return Reflect.apply(original, self, [ai, values, options]);
    const { call, args } = begun;
    const pending = runInCall(call, original as never, self, args) as Promise<unknown>;
    return Promise.resolve(pending).then(
      (result) => {
        call.finish(outputValues(self, result));
        return result;
      },
      (error: unknown) => {
        call.fail(error);
        throw error;
      },
    );
  };
}

/** The parsed output fields of a result (and Ax's `thought` when the program asked for it). */
function outputValues(program: AxProgramLike, result: unknown): unknown {
  if (typeof result !== "object" || result === null || Array.isArray(result)) return result;
  try {
    const fields = signatureInfo(program)?.outputs;
    if (fields === undefined || fields.length === 0) return result;
    const picked: Record<string, unknown> = {};
    let found = 0;
    for (const name of fields) {
      if (!Object.hasOwn(result, name)) continue;
      picked[name] = (result as Record<string, unknown>)[name];
      found += 1;
    }
    // A flow's signature is inferred and may not name what its `returns()` maps to: then the result is the output.
    if (found === 0) return result;
    if (Object.hasOwn(result, "thought")) picked.thought = (result as Record<string, unknown>).thought;
    return picked;
  } catch {
    return result;
  }
}

function wrapStreamingForward(
  program: AxProgramLike,
  original: NonNullable<AxProgramLike["streamingForward"]>,
  meta: ProgramMeta,
) {
  return function streamingForward(
    this: AxProgramLike,
    ai: unknown,
    values: unknown,
    options?: unknown,
  ): AsyncGenerator<unknown, unknown, unknown> {
    const self = (this ?? program) as AxProgramLike;
    const begun = beginCall(self, meta, ai, values, options, true);
    if (begun === undefined) return Reflect.apply(original, self, [ai, values, options]);
    const { call, args } = begun;
    call.streamingEntry = true;
    const inner = runInCall(call, original as never, self, args) as AsyncGenerator<unknown, unknown, unknown>;
    return new InstrumentedAxStream(inner, call);
  };
}

/**
 * `forward(..., { stream: true })` reads the same delta stream as `streamingForward` but returns only the
 * merged result, and Ax offers no per-call hook on it: the deltas are observed where AxGen's `forward` reads
 * them, for the instrumented call only. `streamingForward` is observed at its own output instead.
 */
function wrapDeltaSource(original: NonNullable<AxProgramLike["_forward1"]>) {
  return function _forward1(
    this: AxProgramLike,
    ai: unknown,
    values: unknown,
    options: unknown,
  ): AsyncGenerator<unknown, unknown, unknown> {
    const generator = Reflect.apply(original, this, [ai, values, options]) as AsyncGenerator<
      unknown,
      unknown,
      unknown
    >;
    const call = currentAxCall();
    if (call === undefined || call.program !== this || !call.tokensFromDeltas) return generator;
    call.tokensFromDeltas = false;
    call.streaming = true;
    return observeDeltas(generator, call);
  };
}

async function* observeDeltas(
  generator: AsyncGenerator<unknown, unknown, unknown>,
  call: AxCall,
): AsyncGenerator<unknown, unknown, unknown> {
  let finished = false;
  try {
    while (true) {
      const step = await generator.next();
      if (step.done === true) {
        finished = true;
        return step.value;
      }
      call.onDelta(step.value);
      yield step.value;
    }
  } finally {
    // The reader stopped early (or failed): let the program's stream clean up, as `for await` would.
    if (!finished) await generator.return(undefined);
  }
}

function defineOwn(target: object, key: string, value: Function): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: false, configurable: true });
}

function instrumentProgram(program: AxProgramLike, meta: ProgramMeta): void {
  if (instrumented.has(program)) return;
  instrumented.set(program, meta);
  defineOwn(program, "forward", wrapForward(program, program.forward, meta));
  if (typeof program.streamingForward === "function")
    defineOwn(program, "streamingForward", wrapStreamingForward(program, program.streamingForward, meta));
  if (typeof program._forward1 === "function")
    defineOwn(program, "_forward1", wrapDeltaSource(program._forward1));
  // Not only when nested programs are instrumented: without stage spans a function call still belongs to
  // the agent call that made it.
  bindAgentRuntimes(program, new Set());
  if (meta.nested) instrumentNested(program, meta);
}

const AGENT_STAGES = ["distiller", "executor", "responder"] as const;
const tracedChildAgents = new WeakSet<object>();

/**
 * A child agent (an agent passed in another agent's `functions`) reaches its parent as an internal function:
 * Ax copies the child's `getFunction()` into the stages that may call it (`agentFunctions`, `_kind:
 * "internal"`), bound to the child's original `forward`, so wrapping the child's methods would not see those
 * calls. Wrapping that function entry in place makes each call an `agent:<name>` span under the calling stage,
 * with the child's own stages (instrumented as nested programs) under it.
 */
function instrumentChildAgents(program: AxProgramLike): void {
  for (const stage of AGENT_STAGES) {
    const holder = (program as unknown as Record<string, unknown>)[stage];
    const entries =
      typeof holder === "object" && holder !== null
        ? (holder as { agentFunctions?: unknown }).agentFunctions
        : undefined;
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as unknown[]) {
      if (typeof entry !== "object" || entry === null || tracedChildAgents.has(entry)) continue;
      const fn = entry as { _kind?: unknown; name?: unknown; func?: unknown };
      if (fn._kind !== "internal" || typeof fn.name !== "string" || typeof fn.func !== "function") continue;
      const [traced] = instrumentAxFunctions([
        { name: fn.name, func: fn.func as (...args: never[]) => unknown },
      ]);
      tracedChildAgents.add(entry);
      fn.func = traced.func;
    }
  }
}

/**
 * An agent's code stages (distiller, executor) each hold the code runtime (`runtime`, an `AxCodeRuntime`)
 * that runs the code its model writes and calls the agent's functions from it; see `bindRuntimeContext` for
 * why those calls need the calling agent run's async context. Child agents (an executor's `agents`) run
 * their own stages with their own runtimes, and so do the agents among a flow's nodes (`getNodePrograms()`),
 * which `nestedPrograms` does not list (it lists an agent's stage programs, not the agent). A program
 * without these members (neither an agent nor a flow) is left alone.
 */
function bindAgentRuntimes(program: object, seen: Set<object>): void {
  if (seen.has(program)) return;
  seen.add(program);
  const children: unknown[] = [];
  for (const stage of AGENT_STAGES) {
    const holder = (program as unknown as Record<string, unknown>)[stage];
    if (typeof holder !== "object" || holder === null) continue;
    const { runtime, agents } = holder as { runtime?: unknown; agents?: unknown };
    bindRuntimeContext(runtime);
    if (Array.isArray(agents)) children.push(...agents);
  }
  const nodePrograms = (program as { getNodePrograms?: unknown }).getNodePrograms;
  if (typeof nodePrograms === "function") {
    try {
      const nodes: unknown = nodePrograms.call(program);
      if (Array.isArray(nodes))
        children.push(...nodes.map((node) => (node as { program?: unknown })?.program));
    } catch (error) {
      reportInternalError(
        "reading a flow's nodes failed; their agents' function calls may lack a parent",
        error,
      );
    }
  }
  for (const child of children)
    if (typeof child === "object" && child !== null) bindAgentRuntimes(child, seen);
}

/**
 * Programs with nothing nested and no agent stages (a plain AxGen): found so once, not searched on every call.
 * Ax builds a program's stages and registers its children when the program is built, not later.
 */
const plainPrograms = new WeakSet<object>();

function hasAgentStages(program: AxProgramLike): boolean {
  for (const stage of AGENT_STAGES) {
    const holder = (program as unknown as Record<string, unknown>)[stage];
    if (typeof holder === "object" && holder !== null) return true;
  }
  return false;
}

/** Flow nodes, agent actors and responders, sub-agents: each call of one is a child span of its caller. */
function instrumentNested(program: AxProgramLike, meta: ProgramMeta): void {
  if (plainPrograms.has(program)) return;
  const nested = nestedPrograms(program);
  if (nested.length === 0 && isLeafProgram(program) && !hasAgentStages(program)) {
    plainPrograms.add(program);
    return;
  }
  instrumentChildAgents(program);
  // What this program's options turn off, its nested programs' standalone calls leave off too.
  const includeInputs = meta.includeInputs ?? meta.standalone?.includeInputs;
  const includeOutputs = meta.includeOutputs ?? meta.standalone?.includeOutputs;
  for (const { id, program: child } of nested) {
    if (typeof (child as Partial<AxProgramLike>).forward !== "function") continue;
    const known = instrumented.get(child);
    if (known !== undefined) {
      // Found again, in another flow: its calls under that flow take that flow's options at call time.
      const standalone = known.standalone;
      if (standalone !== undefined) {
        if (includeInputs === false) standalone.includeInputs = false;
        if (includeOutputs === false) standalone.includeOutputs = false;
      }
      continue;
    }
    // No tags or options of its own: a call takes them from the call it runs under (see `openCall`).
    instrumentProgram(child as AxProgramLike, {
      fixedName: undefined,
      // Ids are paths in the program tree (`root.summarizer`); the root's name adds nothing.
      treeName: id === "" ? undefined : clamp(id.replace(/^root\./, "")),
      tags: undefined,
      includeInputs: undefined,
      includeOutputs: undefined,
      nested: false,
      standalone: {
        includeInputs: includeInputs === false ? false : undefined,
        includeOutputs: includeOutputs === false ? false : undefined,
      },
    });
  }
}

/**
 * Instruments an Ax program — `ax(...)`/`AxGen`, `flow(...)`/`AxFlow`, `agent(...)`/`AxAgent` — in place and
 * returns it. Each top-level `forward()` or `streamingForward()` is one execution: `start` (input values and
 * the AI service as `{ provider, model }`), an `llm_call` event per model request (latency, model, tokens),
 * `retry` events with Ax's reason, `token` events per output field when streaming, and `end` with the parsed
 * outputs and `data.usage` summed over the call's model requests (or `error`). Nested programs and the
 * functions an agent calls are child spans. With version tracking on, `code_signature` hashes what defines
 * the program (signature, instruction, demos, examples, model config), so an optimized program is a new
 * version.
 *
 * @throws ConfigurationError for invalid options or a value that is not an Ax program.
 */
export function instrumentAx<P extends object>(program: P, options?: InstrumentAxOptions): P {
  const parsed = parseInstrumentAxOptions(options);
  if (
    typeof program !== "object" ||
    program === null ||
    typeof (program as Partial<AxProgramLike>).forward !== "function"
  ) {
    throw new ConfigurationError(
      "instrumentAx() expects an Ax program (ax(...), flow(...), agent(...)): a value with a forward() method",
      [{ path: "program", message: "not an Ax program" }],
    );
  }
  instrumentProgram(program as AxProgramLike, {
    fixedName: parsed.name === undefined ? undefined : clamp(parsed.name),
    treeName: undefined,
    tags: parsed.tags === undefined ? undefined : Object.freeze({ ...parsed.tags }),
    includeInputs: parsed.includeInputs,
    includeOutputs: parsed.includeOutputs,
    nested: parsed.nested ?? true,
  });
  return program;
}
