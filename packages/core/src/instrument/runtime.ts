import { safeErrorMessage, scrubErrorText } from "../delivery/backoff";
import { DeliveryPipeline, resolveDeliveryOptions } from "../delivery/delivery-pipeline";
import type {
  DeliveryOptions,
  SinkDeliveryOptions,
  SinkMetrics,
  StateChange,
} from "../delivery/delivery-types";
import type { EncodedEvent, Sink } from "../delivery/sink";
import type { SpillOptions } from "../delivery/spill/spill-options";
import { ConfigurationError } from "../errors";
import {
  createEnvelope,
  type EncodeLimits,
  type Envelope,
  encodeEvent,
  encodeRedacting,
  encodesValidEvent,
  encodeWithEnvelope,
  sanitizeJson,
  toDataObject,
} from "../events/encode-event";
import {
  type JsonObject,
  type JsonValue,
  SCHEMA_VERSION,
  type StreamllEvent,
  streamllEventSchema,
} from "../events/event-schema";
import { createId } from "../events/ids";
import { type KeyRedaction, keyRedactorKeysOf, redactHeader, scrubName } from "../events/redact";
import { configurationError, timeoutArgument } from "../options/schema";
import { JsonlFileSink } from "../sinks/jsonl-file-sink";
import { MemorySink } from "../sinks/memory-sink";
import { TerminalSink } from "../sinks/terminal-sink";
import {
  DEFAULT_JSONL_PATH,
  type EnvConfig,
  loadEnvConfig,
  type ParsedOptions,
  parseOptions,
  type ResolvedConfig,
  resolveConfig,
  type SinkEntry,
  type StreamllLogger,
  type StreamllOptions,
  stderrLogger,
} from "./configure";
import { type Span, spanIdsOf } from "./context";
import { createEventClock } from "./event-clock";

/** One configured sink and the pipeline that feeds it. */
interface PipelineHandle {
  readonly pipeline: DeliveryPipeline;
  readonly unsubscribe: () => void;
}

/** @internal What the hot path reads: swapped as a whole by `configure()`, never mutated. */
export interface RuntimeState {
  readonly config: ResolvedConfig;
  readonly pipelines: readonly PipelineHandle[];
  /** `enabled` and at least one sink: otherwise instrumentation calls straight through. */
  readonly active: boolean;
  /** Bumped by every `configure()`/`shutdown()`, so caches keyed on it notice new global tags. */
  readonly generation: number;
  /**
   * The keys when `redact` is a key list; `undefined` without redaction; `null` for a redact function, which
   * may change any field and so needs the event object and the general encoder.
   */
  readonly redactKeys: KeyRedaction | undefined | null;
}

/** Internal errors of one kind are logged once, then every this-many occurrences. */
const INTERNAL_ERROR_LOG_EVERY = 1_000;

let state: RuntimeState | undefined;
let generation = 0;
/**
 * Pipelines shutting down (replaced by a later `configure()`, or in a `shutdown()`) and the end of their shutdown,
 * in the order they began. `getMetrics()` lists them until they are done, so their pending events stay visible.
 */
const retiring = new Map<DeliveryPipeline, Promise<void>>();
/** The `shutdown()` in progress or last done, returned to further calls until sinks are configured again. */
let lastShutdown: Promise<SinkMetrics[]> | undefined;
const stateListeners = new Set<(change: StateChange) => void>();
/** Pipelines sharing one sink (a sink kept across `configure()` calls) close it only when the last one is done. */
const sinkLeases = new Map<Sink, number>();
const internalErrorCounts = new Map<string, number>();

let exitHookInstalled = false;
let exitFlushRunning = false;
let emittedAtLastExitFlush = -1;

/** What `instrument()` knows ahead of the first call: the owner and method whose code signature a call uses. */
interface VersionTarget {
  readonly owner: WeakRef<object>;
  readonly method: string | null;
  readonly moduleName: string;
}

/**
 * Targets instrumented so far, so `configure()` can compute their code signatures before the first call.
 * Bounded: a program instrumenting more than this many targets computes the rest on their first call.
 */
const versionTargets: VersionTarget[] = [];
const MAX_VERSION_TARGETS = 1_000;

/**
 * @internal Registers an instrumented (owner, method) whose code signature the first call would compute, and
 * computes it now when version tracking is already on. Hashing the code (an AST parse) and reading the
 * process's versions (package.json files, `git status`) cost milliseconds to a few hundred of them: done here,
 * at `instrument()` or `configure()` time, the first call only looks the result up. Never throws.
 */
export function prepareVersion(owner: object, method: string | null, moduleName: string): void {
  try {
    if (versionTargets.length < MAX_VERSION_TARGETS)
      versionTargets.push({ owner: new WeakRef(owner), method, moduleName });
    state?.config.versionTracker?.lookup(owner, method, moduleName);
  } catch (error) {
    reportInternalError("preparing version tracking failed", error);
  }
}

/** Computes what the first instrumented calls would: the process's versions and every known target's signature. */
function prepareVersions(config: ResolvedConfig): void {
  const tracker = config.versionTracker;
  if (tracker === null || !config.enabled) return;
  try {
    tracker.processInfo();
    for (const target of versionTargets) {
      const owner = target.owner.deref();
      if (owner !== undefined) tracker.lookup(owner, target.method, target.moduleName);
    }
  } catch (error) {
    reportInternalError("preparing version tracking failed", error);
  }
}

/** @internal The current state; reads the environment the first time it is needed without `configure()`. */
export function getRuntime(): RuntimeState {
  return state ?? initFromEnvironment();
}

/** Runs on the hot path of the first instrumented call, so it must not throw whatever the environment holds. */
function initFromEnvironment(): RuntimeState {
  let config: ResolvedConfig | undefined;
  try {
    const env = loadEnvConfig(readProcessEnv());
    config = resolveConfig({}, env);
    for (const warning of env.warnings) safeLog(config.logger, warning);
    const pipelines = buildPipelines(envSinkEntries(env, config.logger), undefined, config.logger);
    return install(config, pipelines);
  } catch (error) {
    safeLog(
      config?.logger ?? stderrLogger,
      `environment configuration failed, streamll stays off: ${safeErrorMessage(error)}`,
    );
    return install(config ?? resolveConfig({ enabled: false }, EMPTY_ENV), []);
  }
}

const EMPTY_ENV: EnvConfig = Object.freeze({ tags: {}, jsonlPath: DEFAULT_JSONL_PATH, warnings: [] });

function readProcessEnv(): Readonly<Record<string, string | undefined>> {
  try {
    return typeof process === "object" && process !== null && typeof process.env === "object"
      ? process.env
      : {};
  } catch {
    return {};
  }
}

function envSinkEntries(env: EnvConfig, logger: StreamllLogger): SinkEntry[] {
  try {
    switch (env.sink) {
      case "terminal":
        return [{ sink: new TerminalSink() }];
      case "jsonl":
        return [{ sink: new JsonlFileSink({ path: env.jsonlPath || DEFAULT_JSONL_PATH }) }];
      case "memory":
        return [{ sink: new MemorySink() }];
      default:
        return [];
    }
  } catch (error) {
    safeLog(logger, `STREAMLL_SINK=${env.sink} ignored: ${safeErrorMessage(error)}`);
    return [];
  }
}

/**
 * Configures streamll for the whole process: sinks, tags, redaction, filtering. Validates everything first and
 * throws `ConfigurationError` (naming each bad option) without changing anything when an option is invalid.
 *
 * Calling it again replaces the configuration; pipelines of the previous sinks drain in the background (a sink
 * passed again is kept open). Environment variables fill in what the options leave out.
 */
export function configure(options: StreamllOptions = {}): void {
  const parsed = parseOptions(options);
  validateDelivery(parsed);
  const { sinks, ...rest } = parsed;
  const env = loadEnvConfig(readProcessEnv());
  const config = resolveConfig(rest, env);
  for (const warning of env.warnings) safeLog(config.logger, warning);
  const entries = sinks.length > 0 ? sinks : envSinkEntries(env, config.logger);
  const pipelines = buildPipelines(entries, parsed.delivery, config.logger);
  const previous = state;
  lastShutdown = undefined;
  install(config, pipelines);
  // Nobody awaits this drain: it goes on while the program runs, but must not keep an ended program alive
  // (the exit flush gives it `exitFlushTimeoutMs`, as it does the current sinks).
  if (previous !== undefined)
    for (const handle of previous.pipelines) retire(handle, DEFAULT_WAIT_MS, config.logger, false);
  prepareVersions(config);
}

/** Checks every sink's effective delivery options before anything is built, so a bad option changes nothing. */
function validateDelivery(parsed: ParsedOptions): void {
  const issues: { path: string; message: string }[] = [];
  const collect = (options: DeliveryOptions | undefined, path: string) => {
    try {
      resolveDeliveryOptions(options, path);
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      issues.push(...error.issues);
    }
  };
  collect(parsed.delivery, "delivery");
  parsed.sinks.forEach((entry, index) => {
    if (entry.delivery !== undefined)
      collect(mergeDelivery(parsed.delivery, entry.delivery), `sinks[${index}].delivery`);
  });
  if (issues.length > 0) throw configurationError("streamll", issues);
}

/**
 * A sink's delivery options over the defaults. A per-sink spill without `directory` and no default spill stays
 * without one, so resolving the result reports `sinks[i].delivery.spill.directory` as required.
 */
function mergeDelivery(
  base: DeliveryOptions | undefined,
  own: SinkDeliveryOptions | undefined,
): DeliveryOptions {
  if (base === undefined) return (own ?? {}) as DeliveryOptions;
  if (own === undefined) return base;
  const merged = { ...base, ...own } as DeliveryOptions;
  if (base.retry !== undefined || own.retry !== undefined) merged.retry = { ...base.retry, ...own.retry };
  if (base.circuitBreaker !== undefined || own.circuitBreaker !== undefined) {
    merged.circuitBreaker = { ...base.circuitBreaker, ...own.circuitBreaker };
  }
  // A per-sink spill refines the default one (e.g. its own `name`); `false` turns it off for that sink.
  if (own.spill !== undefined && own.spill !== false && base.spill !== undefined && base.spill !== false) {
    merged.spill = { ...base.spill, ...own.spill } as SpillOptions;
  }
  return merged;
}

function buildPipelines(
  entries: readonly SinkEntry[],
  defaults: DeliveryOptions | undefined,
  logger: StreamllLogger,
): PipelineHandle[] {
  const handles: PipelineHandle[] = [];
  for (const [index, entry] of entries.entries()) {
    const lease = leaseSink(entry.sink);
    let pipeline: DeliveryPipeline;
    try {
      const path = entry.delivery === undefined ? "delivery" : `sinks[${index}].delivery`;
      pipeline = new DeliveryPipeline(lease, mergeDelivery(defaults, entry.delivery), { logger }, path);
    } catch (error) {
      // An unusable spill directory: nothing is installed, so give back what was taken (never closing sinks).
      for (const built of [...handles.map((h) => h.pipeline.sink), lease]) unlease(built);
      for (const handle of handles) handle.pipeline.abandon();
      throw error;
    }
    const unsubscribe = pipeline.onStateChange(publishStateChange);
    handles.push({ pipeline, unsubscribe });
  }
  return handles;
}

/**
 * Pipelines close their sink when they shut down. A sink that stays configured across `configure()` calls is
 * fed by the old pipeline (draining) and the new one at once, so each gets a lease and the sink is closed
 * only when the last lease is released.
 */
function leaseSink(sink: Sink): Sink {
  sinkLeases.set(sink, (sinkLeases.get(sink) ?? 0) + 1);
  let released = false;
  const lease: Sink = {
    get name() {
      return sink.name;
    },
    send: (batch, context) => sink.send(batch, context),
    close: async () => {
      if (released) return;
      released = true;
      const remaining = (sinkLeases.get(sink) ?? 1) - 1;
      if (remaining > 0) {
        sinkLeases.set(sink, remaining);
        return;
      }
      sinkLeases.delete(sink);
      await sink.close();
    },
  };
  leasedSinks.set(lease, sink);
  return lease;
}

/** The sink behind each lease, so a failed `configure()` can give its leases back without closing anything. */
const leasedSinks = new WeakMap<Sink, Sink>();

function unlease(lease: Sink): void {
  const sink = leasedSinks.get(lease);
  if (sink === undefined) return;
  const remaining = (sinkLeases.get(sink) ?? 1) - 1;
  if (remaining > 0) sinkLeases.set(sink, remaining);
  else sinkLeases.delete(sink);
}

function install(config: ResolvedConfig, pipelines: PipelineHandle[]): RuntimeState {
  generation += 1;
  // Envelopes hold the previous configuration's tags: they would only be rebuilt one by one.
  envelopes.clear();
  const next: RuntimeState = Object.freeze({
    config,
    pipelines: Object.freeze(pipelines),
    active: config.enabled && pipelines.length > 0,
    generation,
    redactKeys: config.redact === undefined ? undefined : (keyRedactorKeysOf(config.redact) ?? null),
  });
  state = next;
  if (pipelines.length > 0) {
    // There are sinks again (configured, or from the environment): a later `shutdown()` has work to do.
    lastShutdown = undefined;
    installExitHook();
  }
  return next;
}

/** @param holdProcess whether the shutdown's deadline holds the process (someone awaits it). */
function retire(
  handle: PipelineHandle,
  timeoutMs: number,
  logger: StreamllLogger,
  holdProcess: boolean,
): Promise<void> {
  handle.unsubscribe();
  const { pipeline } = handle;
  const existing = retiring.get(pipeline);
  if (existing !== undefined) return existing;
  const started = holdProcess ? pipeline.shutdown(timeoutMs) : pipeline.retire(timeoutMs);
  const done = started.catch((error: unknown) => {
    safeLog(logger, `shutting down sink ${pipeline.getMetrics().sink} failed: ${safeErrorMessage(error)}`);
  });
  retiring.set(pipeline, done);
  void done.finally(() => retiring.delete(pipeline));
  return done;
}

function publishStateChange(change: StateChange): void {
  for (const listener of [...stateListeners]) {
    try {
      listener(change);
    } catch {
      // A listener's failure must not disturb delivery or other listeners.
    }
  }
}

/**
 * Sends everything pending to every sink now and waits for it (also waits for sinks replaced by a later
 * `configure()` that are still draining). Rejects only for an invalid `timeoutMs` (`ConfigurationError`).
 * @param timeoutMs how long to wait per sink: a number >= 0 or `Infinity`. Default 30 000.
 * @returns `true` when every event emitted before the call was delivered or dropped in time.
 */
export async function flush(timeoutMs?: number): Promise<boolean> {
  const timeout = timeoutArgument("flush()", timeoutMs, DEFAULT_WAIT_MS);
  const current = state;
  const flushes = (current?.pipelines ?? []).map((handle) =>
    handle.pipeline.flush(timeout).catch(() => false),
  );
  const results = await Promise.all(flushes);
  if (retiring.size > 0) results.push(await settleWithin([...retiring.values()], timeout));
  return results.every(Boolean);
}

/** What `flush()` and `shutdown()` wait by default (ms). */
const DEFAULT_WAIT_MS = 30_000;

/** Not `unref()`'d: the caller awaits this deadline (the exit flush included), so the process waits for it. */
function settleWithin(promises: readonly Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.min(timeoutMs, 2 ** 31 - 1));
    void Promise.allSettled(promises).then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Drains and closes every sink, then resets streamll to its unconfigured state: `configure()` may be called
 * again (tests do), and `onStateChange` listeners are removed. Events emitted afterwards follow the
 * environment (`STREAMLL_SINK`) until the next `configure()`. Rejects only for an invalid `timeoutMs`
 * (`ConfigurationError`), before anything is shut down.
 * @param timeoutMs time the shutdown may take: every sink drains and closes within it, in parallel, and its
 *   events still pending at the deadline are dropped. A number >= 0 or `Infinity`. Default 30 000.
 * @returns the final metrics of the sinks it shut down, in configuration order, then of the sinks an earlier
 *   `configure()` replaced that were still draining (as `getMetrics()` lists them): what was delivered, dropped
 *   (`shutdown` drops included) and left in a disk spill, for an end-of-run summary (`formatSinkMetrics`).
 *   Calling it again before sinks are configured again returns the same promise.
 */
export function shutdown(timeoutMs?: number): Promise<SinkMetrics[]> {
  let timeout: number;
  try {
    timeout = timeoutArgument("shutdown()", timeoutMs, DEFAULT_WAIT_MS);
  } catch (error) {
    return Promise.reject(error);
  }
  // A second caller (a signal handler and the end of main) waits for the same drain and gets the same metrics.
  lastShutdown ??= runShutdown(timeout);
  return lastShutdown;
}

async function runShutdown(timeout: number): Promise<SinkMetrics[]> {
  const deadline = Date.now() + timeout;
  const current = state;
  state = undefined;
  generation += 1;
  stateListeners.clear();
  internalErrorCounts.clear();
  eventStats.filtered = 0;
  eventStats.suppressedByRedact = 0;
  eventStats.droppedRedactFailed = 0;
  eventStats.droppedInvalidEdit = 0;
  eventStats.droppedInternalError = 0;
  removeExitHook();
  const logger = current?.config.logger ?? stderrLogger;
  const pipelines = current?.pipelines ?? [];
  const replaced = [...retiring.entries()];
  const tasks = pipelines.map((handle) => retire(handle, timeout, logger, true));
  await Promise.allSettled(tasks);
  // Sinks replaced by an earlier `configure()` drain on their own (longer) deadline: this shutdown waits for
  // them within its own, then ends their drain as its deadline ends the current sinks' (a send still in flight
  // is aborted), so none of them keeps the program alive past it.
  if (replaced.length > 0) {
    const drained = await settleWithin(
      replaced.map(([, done]) => done),
      Math.max(0, deadline - Date.now()),
    );
    if (!drained) for (const [pipeline] of replaced) pipeline.cutShutdownShort();
  }
  return [...pipelines.map((handle) => handle.pipeline), ...replaced.map(([pipeline]) => pipeline)].map(
    (pipeline) => pipeline.getMetrics(),
  );
}

/**
 * Delivery counters of every configured sink, in configuration order, then of every sink still shutting down
 * (replaced by a later `configure()`, or in a `shutdown()` not yet done) until its shutdown is done, so its
 * pending events are not lost from sight.
 */
export function getMetrics(): SinkMetrics[] {
  const current = getRuntime().pipelines.map((handle) => handle.pipeline);
  const shuttingDown = [...retiring.keys()].filter((pipeline) => !current.includes(pipeline));
  return [...current, ...shuttingDown].map((pipeline) => pipeline.getMetrics());
}

/**
 * Events that never reached a sink's pipeline, counted so that nothing disappears silently. Sink-level drops
 * (queue full, rejected, …) are in {@link getMetrics}; these happen before an event is handed to any sink.
 */
export interface EventStats {
  /** Events your `eventFilter` declined (intentional). */
  readonly filtered: number;
  /** Events your `redact` function turned into `null` (intentional). */
  readonly suppressedByRedact: number;
  /**
   * Events dropped because the `redact` function threw or returned something other than a valid event or null
   * (a Promise, `{}`, an event with a field of the wrong type or a required one removed).
   */
  readonly droppedRedactFailed: number;
  /** Events dropped because your `eventFilter` edited them into invalid events (e.g. removed `event_id`). */
  readonly droppedInvalidEdit: number;
  /** Events dropped because building or encoding them failed inside streamll (a bug: please report it). */
  readonly droppedInternalError: number;
}

const eventStats = {
  filtered: 0,
  suppressedByRedact: 0,
  droppedRedactFailed: 0,
  droppedInvalidEdit: 0,
  droppedInternalError: 0,
};

/** Counters of events dropped or filtered before any sink saw them, since the last `shutdown()`. */
export function getEventStats(): EventStats {
  return { ...eventStats };
}

/**
 * Calls `listener` whenever a sink's circuit breaker changes state (opens after failures, half-opens for a
 * trial, closes again). Covers sinks configured later too. Listener errors are swallowed.
 * @returns a function that unsubscribes.
 */
export function onStateChange(listener: (change: StateChange) => void): () => void {
  stateListeners.add(listener);
  return () => {
    stateListeners.delete(listener);
  };
}

function installExitHook(): void {
  if (exitHookInstalled || typeof process !== "object" || typeof process.on !== "function") return;
  exitHookInstalled = true;
  process.on("beforeExit", onBeforeExit);
}

function removeExitHook(): void {
  if (!exitHookInstalled) return;
  exitHookInstalled = false;
  process.removeListener("beforeExit", onBeforeExit);
}

/**
 * Node emits `beforeExit` when the event loop is empty, and again after any async work a listener started.
 * The flush only runs when events were emitted since the last attempt, so a sink that stays down cannot keep
 * the process in a loop: after one bounded attempt the process exits.
 */
function onBeforeExit(): void {
  const current = state;
  if (current === undefined || exitFlushRunning) return;
  try {
    let pending = 0;
    let emitted = 0;
    for (const handle of current.pipelines) {
      const metrics = handle.pipeline.getMetrics();
      pending += metrics.pending;
      emitted += metrics.emitted;
    }
    if (pending === 0 && retiring.size === 0) return;
    if (emitted === emittedAtLastExitFlush) return;
    emittedAtLastExitFlush = emitted;
    exitFlushRunning = true;
    void flush(current.config.exitFlushTimeoutMs)
      .then((flushed) => {
        if (flushed) return;
        // Past the deadline the program ends with these events undelivered: say so, as shutdown() does. A send
        // still in flight is given up, since a sink may hold the process while it waits on a silent broker.
        const left: string[] = [];
        for (const pipeline of [...current.pipelines.map((handle) => handle.pipeline), ...retiring.keys()]) {
          pipeline.abandonSendsInFlight();
          const { sink, pending } = pipeline.getMetrics();
          if (pending > 0) left.push(`${pending} for sink "${sink}"`);
        }
        if (left.length > 0) {
          safeLog(
            current.config.logger,
            `streamll: the exit flush timed out after ${current.config.exitFlushTimeoutMs} ms; events not delivered: ${left.join(", ")} (call shutdown() before the program ends to choose how long to wait)`,
          );
        }
      })
      .finally(() => {
        exitFlushRunning = false;
      });
  } catch (error) {
    reportInternalError("exit-flush", error);
  }
}

/**
 * @internal Logs a failure inside streamll itself (never thrown to the host): the first occurrence of each
 * kind, then one line per {@link INTERNAL_ERROR_LOG_EVERY}, so a persistent fault cannot flood the log.
 */
export function reportInternalError(kind: string, error: unknown): void {
  try {
    const count = (internalErrorCounts.get(kind) ?? 0) + 1;
    if (internalErrorCounts.size < 100 || internalErrorCounts.has(kind)) internalErrorCounts.set(kind, count);
    if (count === 1 || count % INTERNAL_ERROR_LOG_EVERY === 0) {
      const logger = state?.config.logger ?? stderrLogger;
      const suffix = count === 1 ? "" : ` (${count} times so far)`;
      safeLog(logger, `${kind}: ${safeErrorMessage(error)}${suffix}`);
    }
  } catch {
    // Reporting is best effort.
  }
}

/**
 * @internal What may be logged of an error thrown by a user's function that was reading an event (`redact`,
 * `eventFilter`, `streamField`): its name only. Its message may quote the event's data, e.g. the field a
 * `JSON.parse` refused, which is exactly what a redact function is there to hide.
 */
export function thrownByUserCode(error: unknown): string {
  let name: string = typeof error;
  try {
    if (
      error instanceof Error &&
      typeof error.name === "string" &&
      /^[A-Za-z_$][\w$]{0,63}$/.test(error.name)
    )
      name = error.name;
  } catch {
    // A hostile error: its type is enough.
  }
  return `${name} (its message is not shown: it may quote event data)`;
}

function safeLog(logger: StreamllLogger, message: string): void {
  try {
    logger.warn(message);
  } catch {
    // A throwing logger must not turn a warning into a crash.
  }
}

/** The clock every event is stamped with and every span is timed with. */
const eventClock = createEventClock();

/** @internal A monotonic clock reading (ms): a span's start or end, and the time its event is stamped with. */
export const clockNow = (): number => eventClock.now();

/** Caches the merge of global and span tags per span-tags object and configuration generation. */
const mergedTagsCache = new WeakMap<object, { generation: number; tags: Readonly<Record<string, string>> }>();

function eventTags(span: Span, current: RuntimeState): Readonly<Record<string, string>> {
  const own = span.tags;
  if (own === undefined) return current.config.tags;
  const cached = mergedTagsCache.get(own);
  if (cached !== undefined && cached.generation === current.generation) return cached.tags;
  const tags = Object.freeze({ ...current.config.tags, ...own });
  mergedTagsCache.set(own, { generation: current.generation, tags });
  return tags;
}

/** An envelope and the span fields it was built from (besides the module name, its key). */
interface EnvelopeEntry {
  readonly methodName: string | null;
  readonly operation: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly moduleVersion: string | null;
  readonly codeSignature: string | null;
  readonly gitCommit: string | null;
  readonly envelope: Envelope | undefined;
}

/**
 * Envelopes by module name, a few per module: its methods, the `trace()` steps inside it (each its own
 * `operation`), versions a tracker filled in. An entry whose tags are stale (`configure()`) is replaced.
 * Bounded: the map is cleared when a program has this many module names, a module keeps its latest few.
 */
const envelopes = new Map<string, EnvelopeEntry[]>();
const MAX_ENVELOPE_MODULES = 1_000;
const MAX_ENVELOPES_PER_MODULE = 8;

function matches(entry: EnvelopeEntry, span: Span, tags: Readonly<Record<string, string>>): boolean {
  return (
    entry.operation === span.operation &&
    entry.methodName === span.methodName &&
    entry.tags === tags &&
    entry.moduleVersion === span.moduleVersion &&
    entry.codeSignature === span.codeSignature &&
    entry.gitCommit === span.gitCommit
  );
}

function envelopeOf(
  span: Span,
  tags: Readonly<Record<string, string>>,
  keys: KeyRedaction | undefined,
): Envelope | undefined {
  const moduleName = span.moduleName;
  let entries = envelopes.get(moduleName);
  if (entries === undefined) {
    if (envelopes.size >= MAX_ENVELOPE_MODULES) envelopes.clear();
    entries = [];
    envelopes.set(moduleName, entries);
  }
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as EnvelopeEntry;
    if (matches(entry, span, tags)) return entry.envelope;
  }
  const entry: EnvelopeEntry = {
    methodName: span.methodName,
    operation: span.operation,
    tags,
    moduleVersion: span.moduleVersion,
    codeSignature: span.codeSignature,
    gitCommit: span.gitCommit,
    // Names and tags redacted as the key redactor does on the general path, once per envelope.
    envelope: createEnvelope(
      redactHeader(
        {
          module_name: moduleName,
          method_name: span.methodName,
          operation: span.operation,
          tags,
          module_version: span.moduleVersion,
          code_signature: span.codeSignature,
          git_commit: span.gitCommit,
        },
        keys,
      ),
    ),
  };
  if (entries.length >= MAX_ENVELOPES_PER_MODULE) entries.shift();
  entries.push(entry);
  return entry.envelope;
}

/**
 * @internal Builds one event for `span` and hands it to every sink (see {@link emitEvent}). Never throws.
 * `data` must already be sanitised JSON. `at` is the {@link clockNow} reading the event is stamped with (a
 * call's start or end, so its timestamps agree with its duration); by default the clock is read now.
 */
export function emitSpanEvent(span: Span, eventType: string, data: JsonObject, at?: number): void {
  emitEvent(span, eventType, data, true, at);
}

/**
 * @internal Like {@link emitSpanEvent}, for `data` built from values not yet sanitised (a plain object of
 * arguments, results, user data). They must not change before this returns: they are read once, here.
 */
export function emitSpanEventRaw(
  span: Span,
  eventType: string,
  data: Record<string, unknown>,
  at?: number,
): void {
  emitEvent(span, eventType, data, false, at);
}

/**
 * The one emit path: select → build → sanitise → redact → filter → encode once → enqueue to every sink.
 *
 * Usually no one reads the event object, so none is made: the fields a module's events share are encoded once
 * ({@link envelopeOf}), the span's ids once per span, and `data` is sanitised, redacted (key list) and
 * serialised in one walk. Two settings need the event object, and then the reference encoder (`encodeEvent`)
 * writes it: a `redact` function (it may change any field) and an `eventFilter` function (it is shown the
 * event, and may edit it). The envelope encoder also hands over to the reference encoder for what it does not
 * handle (lone surrogates, an event over `maxEventBytes`, data that threw while read); both write the same
 * bytes for the same event (encode-envelope.property.test.ts).
 */
function emitEvent(
  span: Span,
  eventType: string,
  data: Record<string, unknown>,
  sanitized: boolean,
  at: number | undefined,
): void {
  const current = state;
  if (current === undefined || !current.active) return;
  try {
    const { config } = current;
    if (config.select !== undefined && !config.select(eventType, span.operation)) {
      eventStats.filtered += 1;
      return;
    }
    const eventId = createId();
    const timestamp = eventClock.timestampAt(at ?? eventClock.now());
    const tags = eventTags(span, current);
    const keys = current.redactKeys;
    if (keys !== null && config.filter === undefined) {
      const encoded = encodeFromEnvelope(
        span,
        tags,
        eventId,
        timestamp,
        eventType,
        data,
        config.encode,
        keys,
      );
      // Over the cap, lone surrogates or unreadable data: the reference encoder, from the data as given (not
      // a first pass's output), so when it shrinks the event each marker counts what the data held.
      if (encoded !== undefined) enqueueAll(current, encoded);
      else {
        const event = buildEvent(span, eventId, timestamp, eventType, data as JsonObject, tags);
        enqueueAll(current, encodeRedacting(redactNames(event, keys), config.encode, keys));
      }
      return;
    }
    const json = sanitized ? (data as JsonObject) : toJsonData(data, config.encode);
    const event = redactAndFilter(config, buildEvent(span, eventId, timestamp, eventType, json, tags));
    if (event !== null) enqueueAll(current, encodeEvent(event, config.encode));
  } catch (error) {
    eventStats.droppedInternalError += 1;
    reportInternalError("building an event failed", error);
  }
}

/** `event` with its names, type and tags redacted as a key redactor does (`data` is redacted while encoded). */
function redactNames(event: StreamllEvent, keys: KeyRedaction | undefined): StreamllEvent {
  if (keys === undefined || keys.size === 0) return event;
  return { ...redactHeader(event, keys), event_type: scrubName(event.event_type, keys) };
}

function encodeFromEnvelope(
  span: Span,
  tags: Readonly<Record<string, string>>,
  eventId: string,
  timestamp: string,
  eventType: string,
  data: Record<string, unknown>,
  limits: EncodeLimits | undefined,
  keys: KeyRedaction | undefined,
): EncodedEvent | undefined {
  const ids = spanIdsOf(span);
  if (ids === undefined) return undefined;
  const envelope = envelopeOf(span, tags, keys);
  if (envelope === undefined) return undefined;
  return encodeWithEnvelope(envelope, ids, eventId, timestamp, eventType, data, limits, keys);
}

/**
 * @internal True when `value` can be an event's data as it is, unsanitised: a plain object without `toJSON`.
 * Anything else goes through `toJson` first, which turns e.g. a Date into `{ "$value": "…" }`.
 */
export function isPlainData(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  try {
    const proto: unknown = Object.getPrototypeOf(value);
    return (
      (proto === Object.prototype || proto === null) &&
      typeof (value as { toJSON?: unknown }).toJSON !== "function"
    );
  } catch {
    // A Proxy whose traps throw: `toJson` turns it into a marker.
    return false;
  }
}

/** Sanitised data for the reference encoder; the runtime's data objects are plain, so this is an object too. */
function toJsonData(data: Record<string, unknown>, limits: EncodeLimits | undefined): JsonObject {
  return toDataObject(toJson(data, limits));
}

function buildEvent(
  span: Span,
  eventId: string,
  timestamp: string,
  eventType: string,
  data: JsonObject,
  tags: Readonly<Record<string, string>>,
): StreamllEvent {
  return {
    schema_version: SCHEMA_VERSION,
    event_id: eventId,
    execution_id: span.executionId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    timestamp,
    module_name: span.moduleName,
    method_name: span.methodName,
    event_type: eventType,
    operation: span.operation,
    data,
    tags,
    module_version: span.moduleVersion,
    code_signature: span.codeSignature,
    git_commit: span.gitCommit,
  };
}

/** The event after `redact` (key list or function) and the `eventFilter` function; `null` when it stops here. */
function redactAndFilter(config: ResolvedConfig, built: StreamllEvent): StreamllEvent | null {
  let event: StreamllEvent | null = built;
  if (config.redact !== undefined) {
    try {
      event = config.redact(built);
    } catch (error) {
      // Sending an event the redactor could not clean might leak what it was meant to hide.
      eventStats.droppedRedactFailed += 1;
      reportInternalError("redact function threw; event dropped", thrownByUserCode(error));
      return null;
    }
    if (event === null) {
      eventStats.suppressedByRedact += 1;
      return null;
    }
    // A Promise (an async redact), `{}`, or an event whose ids it removed would be sent as a line no reader
    // accepts; and sending the unredacted original instead might leak what it was meant to hide.
    if (!isValidEdit(built, event)) {
      eventStats.droppedRedactFailed += 1;
      reportInternalError(
        "redact function returned neither a valid event nor null; event dropped",
        kindOf(event),
      );
      return null;
    }
  }
  if (config.filter === undefined) return event;
  // The filter is shown a copy, so an edit it makes is sent only once it is known to leave a valid event, and
  // a filter that throws halfway leaves the event as it was.
  const shown: StreamllEvent = { ...event, tags: { ...event.tags } };
  try {
    if (config.filter(shown) === false) {
      eventStats.filtered += 1;
      return null;
    }
  } catch (error) {
    // A broken filter is not a privacy boundary (redact is): deliver rather than lose the event.
    reportInternalError("eventFilter threw; event kept", thrownByUserCode(error));
    return event;
  }
  if (isValidEdit(event, shown)) return shown;
  eventStats.droppedInvalidEdit += 1;
  reportInternalError("eventFilter edited the event into an invalid one; event dropped", "invalid event");
  return null;
}

/** The fields a redact function or filter may break; `data` is sanitised by the encoder whatever it holds. */
const HEADER_KEYS = Object.keys(streamllEventSchema.shape).filter(
  (key) => key !== "data",
) as (keyof StreamllEvent)[];

/**
 * True when `edited` (what a redact function returned, or an event a filter edited) is written as a valid
 * event. Fields left as they were in `reference` (built valid) are not checked again, so the schema runs only
 * when a field changed, and then on the fields as the encoder writes them (see `encodesValidEvent`).
 */
function isValidEdit(reference: StreamllEvent, edited: unknown): edited is StreamllEvent {
  if (typeof edited !== "object" || edited === null || Array.isArray(edited)) return false;
  try {
    const fields = edited as Record<string, unknown>;
    const original = reference as unknown as Record<string, unknown>;
    for (const key of HEADER_KEYS) {
      const value = fields[key];
      if (value === original[key] || (key === "tags" && sameTags(value, reference.tags))) continue;
      return encodesValidEvent(edited);
    }
    return true;
  } catch {
    // A Proxy whose traps throw.
    return false;
  }
}

function sameTags(value: unknown, tags: Readonly<Record<string, string>>): boolean {
  if (typeof value !== "object" || value === null) return false;
  const keys = Object.keys(value);
  if (keys.length !== Object.keys(tags).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(tags, key) || (value as Record<string, unknown>)[key] !== tags[key]) return false;
  }
  return true;
}

/** What a redact function returned, for a log line: its kind, never its content. */
function kindOf(value: unknown): string {
  if (value === null || typeof value !== "object") return typeof value;
  return isThenable(value) ? "a Promise (redact must be synchronous)" : "an object that is not a valid event";
}

function enqueueAll(current: RuntimeState, encoded: EncodedEvent): void {
  const pipelines = current.pipelines;
  for (let i = 0; i < pipelines.length; i++) (pipelines[i] as PipelineHandle).pipeline.enqueue(encoded);
}

/** Stacks are cut here: past a few frames a stack adds bytes, not insight. */
const MAX_STACK_CHARS = 2_048;
const MAX_ERROR_MESSAGE_CHARS = 4_096;

/** @internal Milliseconds from `startedAt` to `endedAt` ({@link clockNow} readings), rounded to microseconds. */
export function durationMs(startedAt: number, endedAt: number): number {
  return Math.round((endedAt - startedAt) * 1_000) / 1_000;
}

/** Milliseconds since `startedAt` (a {@link clockNow} reading), rounded to microseconds. */
function elapsedMs(startedAt: number): number {
  return durationMs(startedAt, clockNow());
}

/** @internal Sanitised JSON for `value`, never throws (the sanitiser itself marks what it cannot read). */
export function toJson(value: unknown, limits: EncodeLimits | undefined): JsonValue {
  try {
    return sanitizeJson(value, limits);
  } catch (error) {
    reportInternalError("sanitising data failed", error);
    return "[Unreadable]";
  }
}

/**
 * An error's message; for an error without one whose class words itself in `toString()` (Ax's
 * `AxFunctionError` lists its fields there), that text without the leading `Name: `.
 */
function messageOfError(error: Error): string {
  const message = typeof error.message === "string" ? error.message : "";
  if (message !== "" || typeof error.toString !== "function" || error.toString === Error.prototype.toString)
    return message;
  let text: string;
  try {
    text = String(error.toString());
  } catch {
    return message;
  }
  const prefix = `${error.name}: `;
  return text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

/**
 * @internal The data of an `error` event: type, message, stack (truncated) and duration. Reads the error
 * defensively: a throwing getter or a Proxy must not replace the user's error with ours.
 */
export function errorEventData(error: unknown, startedAt: number): JsonObject {
  const data: JsonObject = { error_type: "Error", error_message: "", duration_ms: elapsedMs(startedAt) };
  try {
    if (error instanceof Error) {
      // A name is any string the thrower chose (`err.name = \`AuthError for ${url}\``): scrubbed as the message is.
      data.error_type = clip(
        typeof error.name === "string" && error.name !== "" ? error.name : error.constructor.name,
        MAX_ERROR_MESSAGE_CHARS,
      );
      data.error_message = clip(messageOfError(error), MAX_ERROR_MESSAGE_CHARS);
      if (typeof error.stack === "string") data.stack = clip(error.stack, MAX_STACK_CHARS);
      const code = (error as { code?: unknown }).code;
      if (typeof code === "string") data.error_code = clip(code, MAX_ERROR_MESSAGE_CHARS);
      else if (typeof code === "number") data.error_code = code;
    } else if (typeof error === "object" && error !== null) {
      const { name, message } = error as { name?: unknown; message?: unknown };
      data.error_type =
        typeof name === "string" && name !== "" ? clip(name, MAX_ERROR_MESSAGE_CHARS) : "object";
      data.error_message = clip(
        typeof message === "string" ? message : JSON.stringify(toJson(error, undefined)),
        MAX_ERROR_MESSAGE_CHARS,
      );
    } else {
      data.error_type = typeof error;
      data.error_message = clip(String(error), MAX_ERROR_MESSAGE_CHARS);
    }
  } catch {
    data.error_message = "unreadable error";
  }
  return data;
}

/**
 * Cuts error text to `max` characters, after scrubbing what it may quote: connection URLs and strings
 * (`Password=…;`), `api_key=…` pairs, keys and tokens (see `scrubErrorText`).
 */
function clip(text: string, max: number): string {
  // Scrubbed with some margin past the cut, so a secret straddling it cannot be half kept.
  const safe = scrubErrorText(text.length > max + 256 ? text.slice(0, max + 256) : text);
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}

/** @internal True for anything `await` would treat as a promise. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * @internal Native promises are chained directly. Other thenables are adopted into a native promise (as
 * `await` would do): a minimal thenable whose `then` returns nothing must still hand its value to the caller.
 */
export function adopt<T>(value: PromiseLike<T>): Promise<T> {
  return value instanceof Promise ? value : Promise.resolve(value);
}
