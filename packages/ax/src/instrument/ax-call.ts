import { AsyncLocalStorage } from "node:async_hooks";
import type { JsonObject, JsonValue, Span } from "@streamll/core";
import {
  clockNow,
  createSpan,
  durationMs,
  emitSpanEvent,
  emitSpanEventRaw,
  errorEventData,
  getRuntime,
  HeldTokens,
  reportInternalError,
  runInSpan,
  toJson,
} from "@streamll/core/internal";
import type { LlmRequestRecord } from "../ai/traced-ai-service";

/** Why Ax retried: the kind of error it logged and its text. */
interface RetryReason {
  readonly kind: string;
  readonly reason: string;
}

/** Token counts of one or more model requests, as `data.usage` carries them. */
interface TokenTotals {
  prompt: number;
  completion: number;
  total: number;
  requests: number;
}

/** The usage of one provider and model. */
interface ModelUsage {
  readonly provider: string | null;
  readonly model: string | null;
  readonly totals: TokenTotals;
}

/**
 * Per provider and model (`null` and `""` alike), in the order first seen. A list: a call uses one model or a
 * few, so a scan finds its entry sooner than a key string could be built for a map.
 */
type UsageByModel = ModelUsage[];

/** How Ax reports the reason of a retry through its logger (`debug: true`). */
const RETRY_LOG_KINDS: Readonly<Record<string, string>> = {
  ValidationError: "validation",
  FunctionError: "function",
  RefusalError: "refusal",
};

const MAX_REASON_CHARS = 2_048;

/**
 * Shortest input value hidden from error text: shorter ones (`"yes"`, `"en"`) would blank ordinary words of
 * a message while hiding little.
 */
const MIN_SECRET_CHARS = 4;
/** How deep the inputs are searched for values under secret key names; the start event's data is capped too. */
const MAX_SECRET_DEPTH = 16;
const REDACTED = "[REDACTED]";

/** Whether a key's value is redacted in events: the configured key list's matcher, when it is a key list. */
type KeyMatcher = { has(key: string): boolean };

/**
 * The output fields of a program whose names the configured `redact` key list matches, and the titles of all
 * its output fields (`apiPassword` is written `Api Password:` in the model's reply), to find their values in
 * the replies the program's model requests return.
 */
export interface SecretOutputFields {
  /** Titles of the output fields whose value is redacted. */
  readonly secret: readonly string[];
  /** Titles of every output field: where one field's value ends in the reply. */
  readonly all: readonly string[];
}

/** Reply text kept per model request for {@link SecretOutputFields}: enough for any field a model writes. */
const MAX_REPLY_CHARS = 65_536;

/** The reply text of one model request, per sample, with the output fields to look for in it. */
interface ReplyText {
  readonly fields: SecretOutputFields;
  readonly samples: Map<number, string>;
}

/** The key-list matcher of the configuration, or `undefined` with a `redact` function or `redact: []`. */
function keyRedaction(): KeyMatcher | undefined {
  const keys = getRuntime().redactKeys;
  return keys !== undefined && keys !== null && keys.size > 0 ? keys : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The values of the secret fields in one reply, as Ax reads them: the text after `Title:` up to the next
 * field's title, or the whole reply when it has no titles and the secret field comes first (Ax then takes the
 * reply as the first field). A reply that is a JSON object (structured outputs) gives the values under secret
 * names at any depth.
 */
function secretFieldValues(
  text: string,
  fields: SecretOutputFields,
  keys: KeyMatcher,
  out: Set<string>,
): void {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      collectSecrets(JSON.parse(trimmed), keys, 0, new Set(), out);
    } catch {
      // Not JSON after all: read as field lines below.
    }
  }
  const marks: { at: number; end: number; secret: boolean }[] = [];
  for (const title of fields.all) {
    const pattern = new RegExp(`(^|\\n)[ \\t]*${escapeRegExp(title)}[ \\t]*:`, "gi");
    const secret = fields.secret.includes(title);
    for (const match of text.matchAll(pattern)) {
      const at = (match.index ?? 0) + (match[1]?.length ?? 0);
      marks.push({ at, end: (match.index ?? 0) + match[0].length, secret });
    }
  }
  if (marks.length === 0) {
    if (fields.secret[0] !== undefined && fields.secret[0] === fields.all[0]) addSecretText(trimmed, out);
    return;
  }
  marks.sort((a, b) => a.at - b.at);
  marks.forEach((mark, i) => {
    if (mark.secret) addSecretText(text.slice(mark.end, marks[i + 1]?.at ?? text.length).trim(), out);
  });
}

/** A secret field's value, and each of its lines: an error may quote the value whole or one line of it. */
function addSecretText(value: string, out: Set<string>): void {
  collectAll(value, 0, new Set(), out);
  if (value.includes("\n")) for (const line of value.split("\n")) collectAll(line.trim(), 0, new Set(), out);
}

/** `value` (JSON) with the values under redacted key names replaced, as the `end` event's outputs show them. */
function redactNestedKeys(value: JsonValue, keys: KeyMatcher, depth = 0): JsonValue {
  if (typeof value !== "object" || value === null || depth > MAX_SECRET_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => redactNestedKeys(item, keys, depth + 1));
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    const redacted = keys.has(key) ? REDACTED : redactNestedKeys(item, keys, depth + 1);
    Object.defineProperty(out, key, {
      value: redacted,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * One streamed value of a field merged into what the field streamed before, as Ax merges its deltas into the
 * result `forward` returns: text and arrays are appended to, any other value replaces the previous one.
 */
function mergeDelta(previous: unknown, value: unknown): unknown {
  if (Array.isArray(value)) return Array.isArray(previous) ? [...previous, ...value] : [...value];
  if (typeof value === "string" && (previous === undefined || typeof previous === "string"))
    return `${previous ?? ""}${value}`;
  return value;
}

/**
 * @internal Every string of at least {@link MIN_SECRET_CHARS} characters inside `value` (all of it is secret,
 * or private), also as JSON escapes it: what error text quoting `value` may contain.
 */
export function collectAll(value: unknown, depth: number, seen: Set<object>, out: Set<string>): void {
  if (typeof value === "string") {
    if (value.length < MIN_SECRET_CHARS) return;
    out.add(value);
    // Errors that quote the request body as JSON show the value escaped (quotes, newlines).
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped !== value) out.add(escaped);
    return;
  }
  if (typeof value !== "object" || value === null || depth > MAX_SECRET_DEPTH || seen.has(value)) return;
  seen.add(value);
  for (const item of Array.isArray(value) ? value : Object.values(value))
    collectAll(item, depth + 1, seen, out);
}

/** The string values under secret key names anywhere in `value` (what the start event shows as `[REDACTED]`). */
function collectSecrets(
  value: unknown,
  keys: KeyMatcher,
  depth: number,
  seen: Set<object>,
  out: Set<string>,
): void {
  if (typeof value !== "object" || value === null || depth > MAX_SECRET_DEPTH || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) {
    for (const item of value) collectSecrets(item, keys, depth + 1, seen, out);
    return;
  }
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (keys.has(key)) collectAll(item, depth + 1, new Set(), out);
    else collectSecrets(item, keys, depth + 1, seen, out);
  }
}

/**
 * `text` with every secret replaced by `[REDACTED]`; a text cut short (ending in `…`) also loses a secret's
 * start left at the cut, so no part of one survives the clipping of long messages and stacks.
 */
function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  if (out.endsWith("…")) {
    const body = out.slice(0, -1);
    for (const secret of secrets) {
      for (let n = Math.min(secret.length - 1, body.length); n >= MIN_SECRET_CHARS; n--) {
        if (body.endsWith(secret.slice(0, n))) return `${body.slice(0, -n)}${REDACTED}…`;
      }
    }
  }
  return out;
}

const storage = new AsyncLocalStorage<AxCall>();

/**
 * A streamed value as token text: text as it came, any other value (a number, a list, an object) as JSON, its
 * values under redacted key names hidden as `end` hides them.
 */
function tokenText(value: unknown, keys: KeyMatcher | undefined): string {
  if (typeof value === "string") return value;
  const json = toJson(value, undefined);
  return JSON.stringify(keys === undefined ? json : redactNestedKeys(json, keys));
}

/** A function name as Ax matches the model's call to a function: letters and digits, any case. */
function functionKey(name: string): string {
  return name.replace(/[^a-zA-Z0-9]/g, "").toLowerCase();
}

/** The instrumented Ax call the caller runs in (innermost), if any. */
export function currentAxCall(): AxCall | undefined {
  return storage.getStore();
}

/**
 * Calls `fn` with `thisArg` and `args` while `call` is current for model requests and nested programs, inside
 * the call's span; a synchronous throw fails the call and is rethrown. The function and its arguments are
 * passed through, so no closure is made per call.
 */
export function runInCall<R>(
  call: AxCall,
  fn: (...args: never[]) => R,
  thisArg: unknown,
  args: readonly unknown[],
): R {
  try {
    return storage.run(call, runInSpan<R>, call.span, fn, thisArg, args);
  } catch (error) {
    call.fail(error);
    throw error;
  }
}

function emptyTotals(): TokenTotals {
  return { prompt: 0, completion: 0, total: 0, requests: 0 };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

function reasonOf(error: unknown): string {
  try {
    const message = error instanceof Error ? error.message : typeof error === "string" ? error : "";
    const text = message === "" ? String(error) : message;
    return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text;
  } catch {
    return "unreadable error";
  }
}

function isAbort(error: unknown): boolean {
  try {
    if (typeof error !== "object" || error === null) return false;
    const name = (error as { name?: unknown }).name;
    const ctor = (error as { constructor?: { name?: unknown } }).constructor?.name;
    return (
      (typeof name === "string" && /abort/i.test(name)) || (typeof ctor === "string" && /Aborted/.test(ctor))
    );
  } catch {
    return false;
  }
}

/**
 * One call of an instrumented Ax program: its span, the usage of the model requests made under it (its own
 * and its nested programs'), retries, and the text streamed per output field. Emits the call's events.
 */
export class AxCall {
  readonly span: Span;
  readonly program: object;
  readonly parent: AxCall | undefined;
  readonly includeOutputs: boolean;
  /** Token events come from the program's delta stream (`forward(..., { stream: true })`). */
  tokensFromDeltas = false;
  private startedAt: number;
  /** Made on the first model request: most calls make one, some none. */
  private usage: UsageByModel | undefined;
  private ownRequests = 0;
  private retries = 0;
  private tokenIndex = 0;
  private version: number | undefined;
  /**
   * Reasons Ax logged for retries of a streamed call, in order, not yet recorded: a streamed retry is recorded
   * when the stream's version changes, so that its event says what was discarded. Made on the first one.
   */
  private pendingReasons: RetryReason[] | undefined;
  /**
   * Streamed value per output field of the first sample, merged as Ax merges them into `forward`'s result, so
   * `end` shows the same outputs either way. Made on the first streamed chunk.
   */
  private fields: Map<string, unknown> | undefined;
  /**
   * Fields (`sample:field`) of the current stream version whose name the `redact` key list matches and whose
   * first token went out as `[REDACTED]`: their later tokens carry `""`.
   */
  private redactedTokenFields: Set<string> | undefined;
  /**
   * This program's output fields with redacted names, if any: the replies of its model requests are then kept
   * (in {@link replies}) so their values can be hidden in error text, as secret input values are.
   */
  secretOutputs: SecretOutputFields | undefined;
  /** The replies of model requests under this call (its own and its nested programs') with secret fields. */
  private replies: ReplyText[] | undefined;
  private finished = false;
  /**
   * The values the call was given, read only when error text is recorded: Ax's errors may quote the prompt
   * (the request body), so input values under secret key names are hidden in that text as in `start`.
   */
  inputs: unknown;
  /** Those values, found on the first error text recorded. */
  private secrets: readonly string[] | undefined;
  /**
   * The API keys of the AI services whose requests failed under this call (or a call it runs in): hidden in
   * error text whatever the `redact` configuration, as a provider's error may quote the key it refused.
   */
  private serviceSecrets: Set<string> | undefined;
  /**
   * Streamed model requests under this call (its own and its nested programs') whose stream has not ended:
   * each records its request when called. Made on the first streamed request.
   */
  private openRequests: Set<() => void> | undefined;

  constructor(
    parentSpan: Span | undefined,
    program: object,
    moduleName: string,
    tags: Readonly<Record<string, string>> | undefined,
    includeOutputs: boolean,
    methodName = "forward",
  ) {
    this.parent = storage.getStore();
    this.program = program;
    this.includeOutputs = includeOutputs;
    this.span = createSpan(parentSpan, moduleName, methodName, null, tags);
    this.startedAt = clockNow();
  }

  /** Restarts the duration clock once the start event is out, so it measures the call alone. */
  started(): void {
    this.startedAt = clockNow();
  }

  emit(eventType: string, data: JsonObject): void {
    emitSpanEvent(this.span, eventType, data);
  }

  /** `at`: the clock reading (`clockNow()`) the event is stamped with; by default the clock is read now. */
  emitRaw(eventType: string, data: Record<string, unknown>, at?: number): void {
    emitSpanEventRaw(this.span, eventType, data, at);
  }

  /**
   * The input values under secret key names (the configured `redact` key list) of this call and the calls it
   * runs in, and the API keys of the services whose requests failed under it, longest first so a secret
   * containing another is replaced whole.
   */
  private secretInputs(): readonly string[] {
    if (this.secrets !== undefined) return this.secrets;
    const found = new Set<string>();
    try {
      const keys = keyRedaction();
      for (const secret of this.serviceSecrets ?? []) found.add(secret);
      if (keys !== undefined) {
        for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
          collectSecrets(call.inputs, keys, 0, new Set(), found);
        }
        for (const reply of this.replies ?? [])
          for (const text of reply.samples.values()) secretFieldValues(text, reply.fields, keys, found);
      }
    } catch (error) {
      reportInternalError("reading an Ax call's inputs failed", error);
    }
    this.secrets = [...found].sort((a, b) => b.length - a.length);
    return this.secrets;
  }

  /**
   * What records the reply text of a model request made under this call, when this call's program has output
   * fields with redacted names (else `undefined`, and nothing is kept): Ax's errors quote the model's output
   * (`LLM Output: …`, `Field 'Api Password' has an invalid value '…'`), so those fields' values are hidden in
   * error text, here and in the calls this one runs in, whose errors carry the same text.
   */
  replyRecorder(): ((sample: number, text: string) => void) | undefined {
    const fields = this.secretOutputs;
    if (fields === undefined) return undefined;
    const reply: ReplyText = { fields, samples: new Map() };
    const calls: AxCall[] = [];
    for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
      call.replies ??= [];
      call.replies.push(reply);
      calls.push(call);
    }
    return (sample, text) => {
      const previous = reply.samples.get(sample) ?? "";
      if (previous.length >= MAX_REPLY_CHARS) return;
      reply.samples.set(sample, previous + text);
      // The secrets found so far are out of date.
      for (const call of calls) call.secrets = undefined;
    };
  }

  /**
   * API keys of an AI service used under this call, hidden from now on in the error text of this call and of
   * the calls it runs in, whose errors carry the same text.
   */
  addServiceSecrets(values: readonly string[]): void {
    for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
      call.serviceSecrets ??= new Set();
      const before = call.serviceSecrets.size;
      for (const value of values) call.serviceSecrets.add(value);
      // The secrets found so far are out of date.
      if (call.serviceSecrets.size !== before) call.secrets = undefined;
    }
  }

  /** Error text (a message, a stack, a retry reason) with the call's secret values and service keys hidden. */
  hideSecretInputs(text: string): string {
    const secrets = this.secretInputs();
    return secrets.length === 0 ? text : hideSecrets(text, secrets);
  }

  /** Every string field of error data, with the call's secret input values hidden. */
  hideSecretsIn(data: JsonObject): void {
    const secrets = this.secretInputs();
    if (secrets.length === 0) return;
    for (const [key, value] of Object.entries(data)) {
      if (typeof value === "string") data[key] = hideSecrets(value, secrets);
    }
  }

  /**
   * A streamed model request started under this call: `settle` records it if its stream is still open when
   * this call or a call it runs in ends (the reader stopped early and Ax left the stream unread), so the
   * request and its usage are not lost. Returns what to call once the stream has ended and was recorded.
   */
  trackOpenRequest(settle: () => void): () => void {
    for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
      call.openRequests ??= new Set();
      call.openRequests.add(settle);
    }
    return () => {
      for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
        call.openRequests?.delete(settle);
      }
    };
  }

  /** Records the streamed requests still open, before the call's end or error reports its usage. */
  private settleOpenRequests(): void {
    const open = this.openRequests;
    if (open === undefined || open.size === 0) return;
    for (const settle of [...open]) {
      try {
        settle();
      } catch (error) {
        reportInternalError("recording a model request failed", error);
      }
    }
    open.clear();
  }

  /** A model request made under this call: an `llm_call` event here, usage added here and to the parents. */
  recordLlmRequest(request: LlmRequestRecord): void {
    try {
      this.ownRequests += 1;
      const data: JsonObject = {
        provider: request.provider,
        model: request.model,
        latency_ms: Math.round(request.latencyMs * 1_000) / 1_000,
        streaming: request.streaming,
      };
      if (request.step !== null) data.step = request.step;
      if (request.firstChunkMs !== undefined)
        data.first_chunk_ms = Math.round(request.firstChunkMs * 1_000) / 1_000;
      const tokens = request.usage;
      if (tokens !== undefined) {
        const usage: JsonObject = {
          prompt_tokens: count(tokens.promptTokens),
          completion_tokens: count(tokens.completionTokens),
          total_tokens:
            count(tokens.totalTokens) || count(tokens.promptTokens) + count(tokens.completionTokens),
        };
        if (tokens.reasoningTokens !== undefined) usage.reasoning_tokens = count(tokens.reasoningTokens);
        if (tokens.thoughtsTokens !== undefined) usage.thoughts_tokens = count(tokens.thoughtsTokens);
        if (tokens.cacheReadTokens !== undefined) usage.cache_read_tokens = count(tokens.cacheReadTokens);
        if (tokens.cacheCreationTokens !== undefined)
          usage.cache_creation_tokens = count(tokens.cacheCreationTokens);
        data.usage = usage;
      }
      if (request.cancelled === true) data.cancelled = true;
      if (request.error !== undefined) {
        const error = errorEventData(request.error, clockNow());
        data.error_type = error.error_type ?? "Error";
        data.error_message = this.hideSecretInputs(String(error.error_message ?? ""));
      }
      this.emit("llm_call", data);
      for (let call: AxCall | undefined = this; call !== undefined; call = call.parent) {
        call.addUsage(request);
      }
    } catch (error) {
      reportInternalError("recording a model request failed", error);
    }
  }

  private addUsage(request: LlmRequestRecord): void {
    const provider = request.provider ?? "";
    const model = request.model ?? "";
    this.usage ??= [];
    let entry: ModelUsage | undefined;
    for (const known of this.usage) {
      if ((known.provider ?? "") === provider && (known.model ?? "") === model) {
        entry = known;
        break;
      }
    }
    if (entry === undefined) {
      entry = { provider: request.provider, model: request.model, totals: emptyTotals() };
      this.usage.push(entry);
    }
    const tokens = request.usage;
    entry.totals.requests += 1;
    if (tokens === undefined) return;
    const prompt = count(tokens.promptTokens);
    const completion = count(tokens.completionTokens);
    entry.totals.prompt += prompt;
    entry.totals.completion += completion;
    entry.totals.total += count(tokens.totalTokens) || prompt + completion;
  }

  /** `data.usage`: tokens summed over every model request of the call, nested programs included. */
  usageData(): JsonObject | null {
    const entries = this.usage;
    if (entries === undefined || entries.length === 0) return null;
    const first = entries[0] as ModelUsage;
    if (entries.length === 1) {
      const { totals } = first;
      return {
        prompt_tokens: totals.prompt,
        completion_tokens: totals.completion,
        total_tokens: totals.total,
        model: first.model ?? null,
        provider: first.provider ?? null,
        requests: totals.requests,
      };
    }
    const sum = emptyTotals();
    let oneProvider = true;
    for (const { provider, totals } of entries) {
      sum.prompt += totals.prompt;
      sum.completion += totals.completion;
      sum.total += totals.total;
      sum.requests += totals.requests;
      if (provider !== first.provider) oneProvider = false;
    }
    return {
      prompt_tokens: sum.prompt,
      completion_tokens: sum.completion,
      total_tokens: sum.total,
      model: null,
      provider: oneProvider ? (first.provider ?? null) : null,
      requests: sum.requests,
      by_model: entries.map((e) => ({
        provider: e.provider,
        model: e.model,
        prompt_tokens: e.totals.prompt,
        completion_tokens: e.totals.completion,
        total_tokens: e.totals.total,
        requests: e.totals.requests,
      })),
    };
  }

  /** A message of Ax's logger for this call: validation, assertion, function and refusal errors are retries. */
  onAxLog(message: unknown): void {
    try {
      const name = (message as { name?: unknown } | null)?.name;
      if (typeof name !== "string") return;
      const kind = RETRY_LOG_KINDS[name];
      if (kind === undefined) return;
      const reason = this.hideSecretInputs(reasonOf((message as { error?: unknown }).error));
      if (this.tokensFromDeltas || this.streaming) {
        // Streamed: the retry shows as a new version of the stream; its event carries this reason.
        this.pendingReasons ??= [];
        this.pendingReasons.push({ kind, reason });
        return;
      }
      this.retries += 1;
      this.emit("retry", { attempt: this.retries, kind, reason });
    } catch (error) {
      reportInternalError("recording an Ax log message failed", error);
    }
  }

  /**
   * Runs of functions wrapped by `instrumentAxFunctions()` in this call, per name (as Ax matches it), that
   * Ax's `onFunctionCall` has not reported yet: those calls have their span from the wrapper already.
   */
  private wrappedRuns: Map<string, number> | undefined;

  /** A function wrapped by `instrumentAxFunctions()` started in this call (its span is the wrapper's). */
  noteWrappedFunctionRun(name: string): void {
    const key = functionKey(name);
    this.wrappedRuns ??= new Map();
    this.wrappedRuns.set(key, (this.wrappedRuns.get(key) ?? 0) + 1);
  }

  /** True (once per run) when Ax reports a call of a wrapped function, which must not get a second span. */
  takeWrappedFunctionRun(name: string): boolean {
    const key = functionKey(name);
    const runs = this.wrappedRuns?.get(key) ?? 0;
    if (runs === 0) return false;
    if (runs === 1) this.wrappedRuns?.delete(key);
    else this.wrappedRuns?.set(key, runs - 1);
    return true;
  }

  /** Set for `streamingForward` calls. */
  streaming = false;
  /**
   * Set for calls opened by the program's own `streamingForward`: a `forward` of the same program made inside
   * it is part of this call (AxFlow streams its own forward's result), not a call of its own.
   */
  streamingEntry = false;
  /** The logger this call passed to Ax: it marks the options a program was given by this very call. */
  ownLogger: unknown = undefined;

  /** Token events waiting for the word they end in (see `HeldTokens`); made by the first streamed token. */
  private heldTokens: HeldTokens | undefined;

  /** One chunk `{ version, index, delta }` of the program's output stream: token events per field. */
  onDelta(chunk: unknown): void {
    try {
      if (typeof chunk !== "object" || chunk === null) return;
      const { version, index, delta } = chunk as { version?: unknown; index?: unknown; delta?: unknown };
      if (typeof version === "number" && version !== this.version) {
        this.heldTokens?.flush();
        const pending = this.pendingReasons;
        this.pendingReasons = undefined;
        if (this.version !== undefined) {
          // Ax restarts the stream with a higher version on a retry: what was streamed so far is void.
          this.recordStreamRetry(pending?.shift(), {
            previous_version: this.version,
            version,
            discarded_tokens: this.tokenIndex,
          });
          this.tokenIndex = 0;
          this.fields?.clear();
          this.redactedTokenFields?.clear();
        }
        // The other reasons are attempts that failed before streaming anything (a streaming assertion on their
        // first chunk): their versions never reached the output, so only Ax's reason tells of them.
        if (pending !== undefined)
          for (const reason of pending) this.recordStreamRetry(reason, { version, discarded_tokens: 0 });
        this.version = version;
      }
      if (typeof delta !== "object" || delta === null) return;
      const sample = typeof index === "number" ? index : 0;
      const keys = this.includeOutputs ? keyRedaction() : undefined;
      for (const [field, value] of Object.entries(delta as Record<string, unknown>)) {
        if (value === undefined) continue;
        const tokenIndex = this.tokenIndex;
        this.tokenIndex = tokenIndex + 1;
        if (!this.includeOutputs) continue;
        const data = { field, token: "", token_index: tokenIndex, sample_index: sample };
        if (keys?.has(field) === true) this.emitRedactedToken(`${sample}:${field}`, data);
        else {
          data.token = tokenText(value, keys);
          this.heldTokens ??= new HeldTokens((event, at) => emitSpanEvent(this.span, "token", event, at));
          this.heldTokens.add(`${sample}:${field}`, data);
        }
        if (sample === 0) {
          this.fields ??= new Map();
          this.fields.set(field, mergeDelta(this.fields.get(field), value));
        }
      }
    } catch (error) {
      reportInternalError("recording a streamed chunk failed", error);
    }
  }

  /**
   * A token of a field whose name the `redact` key list matches, as `end` shows its value: the field's first
   * token of this stream version carries `[REDACTED]`, the others `""`, so its tokens join to what `end`
   * shows while their indexes and count stay those of the stream. Not held: the text is known already.
   */
  private emitRedactedToken(key: string, data: JsonObject & { token: string }): void {
    this.redactedTokenFields ??= new Set();
    if (!this.redactedTokenFields.has(key)) {
      this.redactedTokenFields.add(key);
      data.token = REDACTED;
    }
    emitSpanEvent(this.span, "token", data);
  }

  /** A `retry` event of a streamed call, with Ax's reason when it logged one. */
  private recordStreamRetry(reason: RetryReason | undefined, data: JsonObject): void {
    this.retries += 1;
    const event: JsonObject = { attempt: this.retries, ...data };
    if (reason !== undefined) {
      event.kind = reason.kind;
      event.reason = reason.reason;
    }
    this.emit("retry", event);
  }

  /**
   * Retries Ax logged for a streamed call that no later version of the stream showed (the call ended first,
   * or failed after its last attempt): recorded before the call's end, as an unstreamed call records each.
   */
  private recordPendingRetries(): void {
    const pending = this.pendingReasons;
    this.pendingReasons = undefined;
    if (pending !== undefined) for (const reason of pending) this.recordStreamRetry(reason, {});
  }

  /** The `end` event's data; `endedAt` ends the duration and stamps the event, so the two agree. */
  private endData(endedAt: number): Record<string, unknown> {
    const data: Record<string, unknown> = { duration_ms: durationMs(this.startedAt, endedAt) };
    const usage = this.usageData();
    if (usage !== null) data.usage = usage;
    data.llm_calls = this.ownRequests;
    if (this.retries > 0) data.retries = this.retries;
    if (this.tokenIndex > 0 || this.streaming || this.tokensFromDeltas) data.token_count = this.tokenIndex;
    return data;
  }

  /**
   * Marks the call finished (false when it already was), first recording what is still open under it: the
   * streamed requests left unread and the retries no stream version showed, so `end` or `error` counts them.
   */
  private closing(): boolean {
    if (this.finished) return false;
    this.finished = true;
    try {
      this.heldTokens?.flush();
      this.settleOpenRequests();
      this.recordPendingRetries();
    } catch (error) {
      reportInternalError("recording an Ax call's open requests failed", error);
    }
    return true;
  }

  /** The call returned `outputs` (the parsed output fields). */
  finish(outputs: unknown): void {
    if (!this.closing()) return;
    try {
      const endedAt = clockNow();
      const data = this.endData(endedAt);
      // A streamed `forward` says whether it was cancelled, as `streamingForward` does: Ax reads its stream to
      // the end before returning, so it was not (an aborted one throws, and its `error` says `cancelled`).
      if (this.streaming || this.tokensFromDeltas) data.cancelled = false;
      if (this.includeOutputs) data.outputs = outputs;
      this.emitRaw("end", data, endedAt);
    } catch (error) {
      reportInternalError("recording an Ax result failed", error);
    }
  }

  /** A streamed call ended (`cancelled`: the consumer stopped reading first). */
  finishStream(cancelled: boolean): void {
    if (!this.closing()) return;
    try {
      const endedAt = clockNow();
      const data = this.endData(endedAt);
      data.cancelled = cancelled;
      if (this.includeOutputs) data.outputs = Object.fromEntries(this.fields ?? []);
      this.emitRaw("end", data, endedAt);
    } catch (error) {
      reportInternalError("recording an Ax result failed", error);
    }
  }

  /** The call failed: an `error` event with the reason, the usage spent so far, and whether it was aborted. */
  fail(error: unknown): void {
    if (!this.closing()) return;
    try {
      const data: JsonObject = errorEventData(error, this.startedAt);
      this.hideSecretsIn(data);
      const usage = this.usageData();
      if (usage !== null) data.usage = usage;
      data.llm_calls = this.ownRequests;
      if (this.retries > 0) data.retries = this.retries;
      if (isAbort(error)) data.cancelled = true;
      this.emit("error", data);
    } catch (failure) {
      reportInternalError("recording an Ax error failed", failure);
    }
  }
}
