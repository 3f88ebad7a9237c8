import type { AxAIService, AxChatResponse, AxModelUsage } from "@ax-llm/ax";
import { reportInternalError } from "@streamll/core/internal";
import { type AxCall, currentAxCall } from "../instrument/ax-call";

/** Services handed to programs in place of the user's: never wrapped twice. */
const traced = new WeakSet<object>();
/** One traced view per service, so a program called in a loop reuses it. */
const views = new WeakMap<object, AxAIService>();

/** What one model request reported, for its `llm_call` event and the call's usage total. */
export interface LlmRequestRecord {
  provider: string | null;
  model: string | null;
  latencyMs: number;
  streaming: boolean;
  step: number | null;
  usage: AxModelUsage["tokens"] | undefined;
  /** Milliseconds to the first streamed chunk. */
  firstChunkMs?: number;
  error?: unknown;
  cancelled?: boolean;
}

function modelOf(req: unknown, usage: AxModelUsage | undefined, service: AxAIService): string | null {
  if (typeof usage?.model === "string" && usage.model !== "") return usage.model;
  const requested = (req as { model?: unknown } | null)?.model;
  if (typeof requested === "string" && requested !== "") return requested;
  try {
    const last = service.getLastUsedChatModel();
    return typeof last === "string" && last !== "" ? last : null;
  } catch {
    return null;
  }
}

function providerOf(usage: AxModelUsage | undefined, service: AxAIService): string | null {
  if (typeof usage?.ai === "string" && usage.ai !== "") return usage.ai;
  try {
    const name = service.getName();
    return typeof name === "string" && name !== "" ? name : null;
  } catch {
    return null;
  }
}

function stepOf(options: unknown): number | null {
  const step = (options as { stepIndex?: unknown } | undefined)?.stepIndex;
  return typeof step === "number" ? step : null;
}

/** Names of request headers that carry a credential: `Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`. */
const CREDENTIAL_HEADER = /authori[sz]ation|api[-_]?key|token|secret|password|credential/i;
/** `Bearer <key>` and the like: the key alone is what a provider's error may quote. */
const AUTH_SCHEME = /^(?:bearer|basic|token|key|apikey)\s+(\S+)$/i;
/** Shorter values are not hidden: replacing them would blank out ordinary words of the message. */
const MIN_KEY_CHARS = 8;
/**
 * How long reading a service's headers may hold up the failed request's error on its way to the caller. Ax
 * built the same headers just before the request, so they are at hand; a builder slower than this is not
 * waited for (its key is then hidden only by the pattern scan).
 */
const HEADERS_WAIT_MS = 100;

/** Ax's AI service members that hold its API key (not declared by `AxAIService`; all optional). */
interface KeyHolder {
  /** AxBaseAI's header builder: Ax awaits it before every request, so calling it once more is harmless. */
  headers?: unknown;
  /** The key the OpenAI-compatible providers keep as a string. */
  openAICompatibleApiKey?: unknown;
  /** The provider's request builder, which keeps the key given to it (a string, or a getter not called here). */
  aiImpl?: { apiKey?: unknown } | null;
  /** AxAI (what `ai()` returns) delegates to the provider's service it keeps here. */
  ai?: unknown;
}

function addKey(found: Set<string>, value: unknown): void {
  if (typeof value !== "string") return;
  const trimmed = value.trim();
  if (trimmed.length >= MIN_KEY_CHARS) found.add(trimmed);
  const key = AUTH_SCHEME.exec(trimmed)?.[1];
  if (key !== undefined && key.length >= MIN_KEY_CHARS) found.add(key);
}

/** The value of `promise`, or `undefined` if it fails or takes longer than {@link HEADERS_WAIT_MS}. */
async function settled<T>(promise: Promise<T>): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), HEADERS_WAIT_MS);
    (timer as { unref?: () => void }).unref?.();
  });
  try {
    return await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The API key(s) `service` sends with its requests, as Ax keeps them: the credential headers its header
 * builder makes (the builder Ax itself calls before every request; a credential provider, which may fetch a
 * token, is not called), and the keys kept as strings. Read only when a request failed, to hide them in the
 * error text recorded: a provider's error may quote the key it refused, which pattern scrubbing cannot
 * recognise when the key has no known prefix.
 */
export async function serviceKeys(service: object): Promise<string[]> {
  const found = new Set<string>();
  const holders: unknown[] = [service, (service as KeyHolder).ai];
  for (const holder of holders) {
    if (typeof holder !== "object" || holder === null) continue;
    try {
      const { headers, openAICompatibleApiKey, aiImpl } = holder as KeyHolder;
      addKey(found, openAICompatibleApiKey);
      if (typeof aiImpl === "object" && aiImpl !== null) addKey(found, aiImpl.apiKey);
      if (typeof headers === "function") {
        const made = await settled(
          Promise.resolve().then(() => Reflect.apply(headers, holder, []) as unknown),
        );
        if (typeof made === "object" && made !== null) {
          for (const [name, value] of Object.entries(made))
            if (CREDENTIAL_HEADER.test(name)) addKey(found, value);
        }
      }
    } catch {
      // A service whose members cannot be read has no key to hide here.
    }
  }
  return [...found];
}

/** Tells `call` (and the calls it runs in) the keys of `service`, before a failed request of it is recorded. */
async function noteServiceKeys(call: AxCall, service: object): Promise<void> {
  try {
    const keys = await serviceKeys(service);
    if (keys.length > 0) call.addServiceSecrets(keys);
  } catch (error) {
    reportInternalError("reading an AI service's key failed", error);
  }
}

/**
 * A view of `service` that records every chat request of an instrumented Ax call as an `llm_call` event
 * (latency, model, token usage) and adds its usage to the call's total. It implements `AxAIService` by
 * delegation: every member is the service's own, bound to it; only `chat` (and the services
 * `resolveChatService` pins) are observed. The view holds the service to call it; when a request fails, it
 * reads the service's API key only to hide it in the error text recorded: its options, keys and configuration
 * never reach an event.
 */
export function traceAIService<T extends object>(service: T): T {
  if (typeof service !== "object" || service === null || traced.has(service)) return service;
  const existing = views.get(service);
  if (existing !== undefined) return existing as T;
  const target = service as unknown as AxAIService;
  // Per key, the member last read and what the view returns for it. Ax reads a service's members a few dozen
  // times per forward (getOptions alone about twenty): plain keyed reads of null-prototype objects keep that
  // cheap, where a Map lookup and a property read on the bound function were the trap's main cost. A member
  // replaced on the service (a patched `chat`) no longer matches and is bound or traced again.
  const originals: Record<PropertyKey, unknown> = Object.create(null);
  const bound: Record<PropertyKey, unknown> = Object.create(null);
  const view = new Proxy(target, {
    get(object, key) {
      const value: unknown = (object as unknown as Record<PropertyKey, unknown>)[key];
      if (typeof value !== "function") return value;
      if (originals[key] === value) return bound[key];
      let fn: unknown;
      if (key === "chat") fn = tracedChat(target, value as AxAIService["chat"]);
      else if (key === "resolveChatService") fn = tracedResolve(target, value as Function);
      else fn = (value as Function).bind(object);
      originals[key] = value;
      bound[key] = fn;
      return fn;
    },
  });
  traced.add(view);
  views.set(service, view);
  return view as unknown as T;
}

/** A service `resolveChatService` pins for a run is traced like the one it came from. */
function tracedResolve(service: AxAIService, resolve: Function): Function {
  return async (...args: unknown[]) => {
    const resolved = (await Reflect.apply(resolve, service, args)) as { service?: unknown } | undefined;
    if (resolved !== null && typeof resolved === "object" && typeof resolved.service === "object") {
      return { ...resolved, service: traceAIService(resolved.service as object) };
    }
    return resolved;
  };
}

function tracedChat(service: AxAIService, chat: AxAIService["chat"]): AxAIService["chat"] {
  return async (req, options) => {
    const call = currentAxCall();
    if (call === undefined) return Reflect.apply(chat, service, [req, options]);
    const startedAt = performance.now();
    const step = stepOf(options);
    let response: AxChatResponse | ReadableStream<AxChatResponse>;
    try {
      response = await Reflect.apply(chat, service, [req, options]);
    } catch (error) {
      await noteServiceKeys(call, service);
      call.recordLlmRequest({
        provider: providerOf(undefined, service),
        model: modelOf(req, undefined, service),
        latencyMs: performance.now() - startedAt,
        streaming: false,
        step,
        usage: undefined,
        error,
      });
      throw error;
    }
    try {
      if (typeof ReadableStream === "function" && response instanceof ReadableStream) {
        return observeStream(response, call, { service, req, startedAt, step });
      }
      recordReply(call.replyRecorder(), response as AxChatResponse);
      const usage = (response as AxChatResponse).modelUsage;
      call.recordLlmRequest({
        provider: providerOf(usage, service),
        model: modelOf(req, usage, service),
        latencyMs: performance.now() - startedAt,
        streaming: false,
        step,
        usage: usage?.tokens,
      });
    } catch (error) {
      reportInternalError("recording a model request failed", error);
    }
    return response;
  };
}

/** The text of a reply (or of one streamed chunk), per sample, for a call that hides secret output fields. */
function recordReply(record: ((sample: number, text: string) => void) | undefined, chunk: unknown): void {
  if (record === undefined) return;
  const results = (chunk as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) return;
  for (const result of results as { index?: unknown; content?: unknown }[]) {
    if (typeof result?.content === "string")
      record(typeof result.index === "number" ? result.index : 0, result.content);
  }
}

interface StreamContext {
  readonly service: AxAIService;
  readonly req: unknown;
  readonly startedAt: number;
  readonly step: number | null;
}

/**
 * Passes the chunks through unchanged, noting the first chunk's time and the last usage reported. The request
 * is recorded when its stream ends, fails or is cancelled, or, when Ax leaves it unread (the program's reader
 * stopped early), as cancelled when the call ends, with the usage and latency up to the last chunk read.
 */
function observeStream(
  stream: ReadableStream<AxChatResponse>,
  call: AxCall,
  context: StreamContext,
): ReadableStream<AxChatResponse> {
  let usage: AxModelUsage | undefined;
  let firstChunkMs: number | undefined;
  let lastChunkAt: number | undefined;
  let done = false;
  const finish = (extra: Partial<LlmRequestRecord>, endedAt = performance.now()) => {
    if (done) return;
    done = true;
    untrack();
    try {
      const entry: LlmRequestRecord = {
        provider: providerOf(usage, context.service),
        model: modelOf(context.req, usage, context.service),
        latencyMs: endedAt - context.startedAt,
        streaming: true,
        step: context.step,
        usage: usage?.tokens,
        ...extra,
      };
      if (firstChunkMs !== undefined) entry.firstChunkMs = firstChunkMs;
      call.recordLlmRequest(entry);
    } catch (error) {
      reportInternalError("recording a model request failed", error);
    }
  };
  const untrack = call.trackOpenRequest(() => finish({ cancelled: true }, lastChunkAt));
  const recordText = call.replyRecorder();
  const reader = stream.getReader();
  return new ReadableStream<AxChatResponse>({
    async pull(controller) {
      let step: Awaited<ReturnType<typeof reader.read>>;
      try {
        step = await reader.read();
      } catch (error) {
        await noteServiceKeys(call, context.service);
        finish({ error });
        throw error;
      }
      if (step.done) {
        finish({});
        controller.close();
        return;
      }
      const chunk = step.value;
      lastChunkAt = performance.now();
      try {
        recordReply(recordText, chunk);
      } catch (error) {
        reportInternalError("recording a model reply failed", error);
      }
      if (firstChunkMs === undefined) firstChunkMs = lastChunkAt - context.startedAt;
      const reported = chunk?.modelUsage;
      if (reported?.tokens !== undefined) usage = reported;
      else if (reported !== undefined && usage === undefined) usage = reported;
      controller.enqueue(chunk);
    },
    async cancel(reason) {
      finish({ cancelled: true });
      await reader.cancel(reason);
    },
  });
}
