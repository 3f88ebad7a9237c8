import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { StreamllEvent } from "@streamll/core";
import { decodeEvent, StreamllError } from "@streamll/core";
import { isConfigurationError, timeoutArgument, v, validateOptions } from "@streamll/core/internal";
import {
  RedisConnection,
  type RedisConnectionOptions,
  redisConnectionOptionsSchema,
} from "./redis-connection";
import { redisErrorCode, toRedisSinkError } from "./redis-errors";
import { DEFAULT_MAX_LEN, EVENT_FIELD } from "./redis-sink";
import { DEFAULT_CLUSTER_STREAM, DEFAULT_STREAM } from "./stream-key";

/**
 * Where a new consumer group starts reading. Only used when the group does not exist yet; an existing group
 * keeps its position.
 * - `"new"`: only entries added after the group is created (`$`).
 * - `"beginning"`: everything still in the stream (`0`).
 * - `{ id }`: entries after the given stream id, e.g. `{ id: "1767225600000-0" }`.
 */
export type ReaderStartFrom = "new" | "beginning" | { readonly id: string };

/** Options for {@link RedisEventReader}. Connection settings are those of {@link RedisConnectionOptions}. */
export interface RedisEventReaderOptions extends RedisConnectionOptions {
  /** Consumer group name. Every group gets every event; consumers within a group share them. */
  group: string;
  /** Stream key. Default `streamll_events`, or `{streamll}:events` with `cluster` (the sink's defaults). */
  stream?: string;
  /** This consumer's name within the group. Default `<hostname>-<pid>-<random>`; keep it stable across restarts. */
  consumer?: string;
  /** Where a newly created group starts. Default `"new"`. */
  startFrom?: ReaderStartFrom;
  /** Entries fetched per read. Default 100. */
  count?: number;
  /**
   * How long one read waits for new entries (`BLOCK`). `stop()` waits for a read in progress, so with Redis
   * reachable this also bounds its wait (besides a handler in flight); while Redis is unreachable it waits for
   * the connection attempt in progress instead, bounded by `connectTimeoutMs`. Default 1000 ms.
   */
  blockMs?: number;
  /**
   * Entries left pending (unacknowledged) this long — by a crashed consumer or a failed handler — are claimed
   * with `XAUTOCLAIM` and delivered again. This is the crash hand-over time of a consumer group: keep it above
   * the longest time your handler takes for one entry, or a slow (not dead) consumer's entry is handled twice.
   * Entries fetched but still waiting for their turn are kept fresh meanwhile, so a long batch is not taken
   * over. (A consumer that stops deletes itself from the group when nothing is left pending on it; a crashed
   * one stays listed until removed with `XGROUP DELCONSUMER`.) Default 60 000 ms.
   */
  claimIdleMs?: number;
  /** How often to look for idle pending entries. Default `min(claimIdleMs, 10 000)` ms. */
  claimIntervalMs?: number;
  /**
   * An entry delivered this many times without being acknowledged goes to the dead-letter stream instead of
   * being delivered again. Default 5.
   */
  maxDeliveries?: number;
  /** Where malformed and repeatedly failing entries go. Default `<stream>:dead-letter`. */
  deadLetterStream?: string;
  /** Length bound of the dead-letter stream (`MAXLEN ~`). Default 100 000. */
  deadLetterMaxLen?: number;
  /**
   * Called with read, acknowledgement and handler errors (Redis errors without secrets). The reader keeps going,
   * except after a `ConfigurationError` (e.g. a missing optional SDK): passed here once, it ends the reader.
   * Without it, the reader's own errors (not the handler's) are written to `console.warn` with a `[streamll]`
   * prefix, once per distinct message until a read succeeds again.
   */
  onError?: (error: unknown) => void;
}

/** One event read from the stream. */
export interface RedisEventMessage {
  /** Stream entry id, e.g. `1767225600000-0`. */
  readonly id: string;
  readonly stream: string;
  /** The event, validated against the streamll schema. */
  readonly event: StreamllEvent;
  /** 1 on first delivery, higher when the entry was claimed again after a failure or a dead consumer. */
  readonly deliveryCount: number;
  /** Acknowledges the entry (`XACK`). Idempotent. The handler and iterator APIs call it for you. */
  ack(): Promise<void>;
}

/** Counters since the reader was created. */
export interface RedisEventReaderStats {
  /** Entries read, including claimed ones. */
  readonly received: number;
  readonly acknowledged: number;
  /** Entries claimed from idle pending lists (dead consumers, stopped consumers or earlier failures). */
  readonly claimed: number;
  /**
   * Entries fetched but not handled by this reader: handed back to the group when it stopped (the other
   * consumers claim them on their next claim scan instead of after `claimIdleMs`), or taken over by another
   * consumer while they waited for their turn here (possible only when a handler ran about `claimIdleMs` or
   * Redis could not be reached), which then handles them instead of this reader.
   */
  readonly released: number;
  /** Handler calls that threw; the entry stays pending and is retried after `claimIdleMs`. */
  readonly handlerFailures: number;
  /** Entries moved to the dead-letter stream (malformed plus too many deliveries). */
  readonly deadLettered: number;
  /** Entries that were not a valid streamll event (counted once each, when dead-lettered). */
  readonly malformed: number;
  /** Failed reads, claims, acknowledgements or dead-letter writes (the reader retried them). */
  readonly errors: number;
}

/** Why an entry was dead-lettered (the `reason` field of the dead-letter entry). */
export type DeadLetterReason = "malformed" | "max-deliveries";

/**
 * Handler for {@link RedisEventReader.run}. Resolve (with any value, ignored) to acknowledge; throw to leave the
 * entry for a retry.
 */
export type RedisEventHandler = (event: StreamllEvent, message: RedisEventMessage) => unknown;

interface RawEntry {
  readonly id: string;
  readonly fields: readonly string[] | null;
  readonly deliveryCount: number;
}

/** One handler call of {@link RedisEventReader.run}: `stop()` called inside it must not wait for it. */
interface HandlerCall {
  readonly reader: RedisEventReader;
  returned: boolean;
}

/** The handler call the current code runs in (also in what it started, hence `returned`). */
const handlerCalls = new AsyncLocalStorage<HandlerCall>();

/** The message of an error with its fix (the install command, the setting to change) when not in it. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const fix = (error as { fix?: unknown }).fix;
  return typeof fix === "string" && fix !== "" && !error.message.includes(fix)
    ? `${error.message}. Fix: ${fix}`
    : error.message;
}

function deferred(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve: () => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** `RedisEventReaderOptions` as the constructor checks them. */
export const redisEventReaderOptionsSchema = redisConnectionOptionsSchema.extend<RedisEventReaderOptions>({
  group: v.string({ min: 1 }),
  stream: v.string({ min: 1 }).optional(),
  consumer: v.string({ min: 1 }).optional(),
  startFrom: v
    .union(
      v.oneOf(["new", "beginning"]),
      v.object<{ readonly id: string }>({
        id: v.string({ pattern: /^\d+(-\d+)?$/, expected: "a stream id <ms>-<seq>" }),
      }),
    )
    .optional(),
  count: v.integer({ min: 1 }).optional(),
  blockMs: v.integer({ min: 1 }).optional(),
  claimIdleMs: v.integer({ min: 1 }).optional(),
  claimIntervalMs: v.integer({ min: 1 }).optional(),
  maxDeliveries: v.integer({ min: 1 }).optional(),
  deadLetterStream: v.string({ min: 1 }).optional(),
  deadLetterMaxLen: v.integer({ min: 1 }).optional(),
  onError: v.fn<(error: unknown) => void>().optional(),
});

const runOptionsSchema = v.object<{ signal?: AbortSignal }>({
  signal: v.instance(AbortSignal, "an AbortSignal").optional(),
});

function startId(start: ReaderStartFrom | undefined): string {
  if (start === undefined || start === "new") return "$";
  if (start === "beginning") return "0";
  return start.id;
}

function asString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return undefined;
}

function parseEntries(value: unknown, deliveryCount: number): RawEntry[] {
  if (!Array.isArray(value)) return [];
  const out: RawEntry[] = [];
  for (const item of value) {
    if (!Array.isArray(item)) continue;
    const id = asString(item[0]);
    if (id === undefined) continue;
    const rawFields: unknown = item[1];
    const fields = Array.isArray(rawFields) ? rawFields.map((field) => asString(field) ?? "") : null;
    out.push({ id, fields, deliveryCount });
  }
  return out;
}

// XREADGROUP answers [[stream, entries]] (RESP2 and ioredis' legacy RESP3 mapping) or { stream: entries }.
function parseReadReply(reply: unknown): RawEntry[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) {
    const out: RawEntry[] = [];
    for (const streamReply of reply) {
      if (Array.isArray(streamReply)) out.push(...parseEntries(streamReply[1], 1));
    }
    return out;
  }
  if (typeof reply === "object") {
    return Object.values(reply as Record<string, unknown>).flatMap((entries) => parseEntries(entries, 1));
  }
  return [];
}

function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1];
  }
  return undefined;
}

/** An entry of this consumer's pending list, from `XPENDING`. */
interface PendingInfo {
  readonly idleMs: number;
  readonly deliveries: number;
}

// XPENDING (extended form) answers [[id, consumer, idle, deliveries], ...].
function parsePending(reply: unknown): Map<string, PendingInfo> {
  const out = new Map<string, PendingInfo>();
  for (const row of Array.isArray(reply) ? reply : []) {
    if (!Array.isArray(row)) continue;
    const id = asString(row[0]);
    const idleMs = Number(row[2]);
    const deliveries = Number(row[3]);
    if (id !== undefined && Number.isFinite(idleMs) && Number.isFinite(deliveries)) {
      out.set(id, { idleMs, deliveries });
    }
  }
  return out;
}

/** Orders stream ids `<ms>-<seq>` numerically (string order is wrong across digit counts). */
function compareIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split("-").map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split("-").map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}

/** The lowest and highest id of non-empty `entries`. */
function idRange(entries: readonly RawEntry[]): { first: string; last: string } {
  const ids = entries.map((entry) => entry.id).sort(compareIds);
  return { first: ids[0] ?? "-", last: ids[ids.length - 1] ?? "+" };
}

/**
 * Reads streamll events from a Redis stream with a consumer group.
 *
 * - Entries are acknowledged (`XACK`) only after the handler resolved (or, with `for await`, when the loop
 *   asks for the next message), so a crash never loses an event.
 * - Entries left pending longer than `claimIdleMs` (dead consumer, failed handler) are taken over with
 *   `XAUTOCLAIM` and delivered again; after `maxDeliveries` deliveries they go to the dead-letter stream.
 * - Entries that are not a valid streamll event go straight to the dead-letter stream. Either way the entry
 *   is acknowledged only after its dead-letter copy was written, and it is counted; the reader never stops.
 * - On start it first reads this consumer's own pending entries (left by an earlier process with the same
 *   `consumer` name), then new ones.
 * - The entries of one read wait in the reader for their turn, but Redis counts their idle time from the read:
 *   they are kept fresh (re-claimed idle) while they wait, and one another consumer took over meanwhile is
 *   dropped, never handled twice.
 */
export class RedisEventReader implements AsyncIterable<RedisEventMessage> {
  /** The stream key read. */
  readonly stream: string;
  /** The consumer group. */
  readonly group: string;
  /** This consumer's name in the group. */
  readonly consumer: string;
  /** Where malformed and repeatedly failing entries are written. */
  readonly deadLetterStream: string;
  readonly #connection: RedisConnection;
  readonly #startId: string;
  readonly #count: number;
  readonly #blockMs: number;
  readonly #claimIdleMs: number;
  readonly #claimIntervalMs: number;
  readonly #maxDeliveries: number;
  readonly #deadLetterMaxLen: number;
  readonly #onError: ((error: unknown) => void) | undefined;
  #groupReady = false;
  #claimCursor = "0-0";
  #lastClaimAt = Number.NEGATIVE_INFINITY;
  #stopping = false;
  #running: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /**
   * Aborted by stop(): ends a wait for the connection at once. Without it a reader whose Redis is unreachable
   * would keep stop() waiting for the whole `connectTimeoutMs`.
   */
  readonly #stopSignal = new AbortController();
  #failureStreak = 0;
  /**
   * Where the next read of this consumer's own pending entries (`XREADGROUP ... <id>`) starts; undefined once
   * they were all read. "0" at start: a restarted consumer handles what its previous process left.
   */
  #ownPendingFrom: string | undefined = "0";
  /** The last id a read of new entries (`>`) returned: a later lost reply delivered only entries after it. */
  #lastNewId: string | undefined;
  /** How often the entries waiting in the batch are kept fresh: well within `claimIdleMs`. */
  readonly #refreshMs: number;
  /** When the entries waiting in the batch were last known to be this consumer's and fresh. */
  #batchFreshAt = 0;
  /** Entries of the batch another consumer took over (or that may be taken over): never handled here. */
  #lost = new Set<string>();
  /** The permanent error that ended the reader; `run()` and iteration reject with it. */
  #fatal: Error | undefined;
  readonly #ready = deferred();
  /** Resolved when `stop(timeoutMs)` gave up on the loop and closed the connection: `run()` settles then. */
  readonly #abandoned = deferred();
  #gaveUp = false;
  /** Settles when `run()` has (stop() resolves after it, so `run()` is settled when `stop()` resolves). */
  #runSettled: Promise<void> | undefined;
  /** The last message written by the default logger (no `onError`); repeats are not written again. */
  #lastLogged: string | undefined;
  #iterating = false;
  #polling: Promise<unknown> | undefined;
  /** The entries of the last read; those from `#handedOut` on never reached a handler (released on stop). */
  #batch: readonly RawEntry[] = [];
  #handedOut = 0;
  #stats = {
    received: 0,
    acknowledged: 0,
    claimed: 0,
    released: 0,
    handlerFailures: 0,
    deadLettered: 0,
    malformed: 0,
    errors: 0,
  };

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: RedisEventReaderOptions) {
    validateOptions("RedisEventReader", redisEventReaderOptionsSchema, options);
    // ready() may never be awaited: its rejection on stop must not surface as unhandled.
    this.#ready.promise.catch(() => undefined);
    this.group = options.group;
    this.stream = options.stream ?? (options.cluster ? DEFAULT_CLUSTER_STREAM : DEFAULT_STREAM);
    this.consumer = options.consumer ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.deadLetterStream = options.deadLetterStream ?? `${this.stream}:dead-letter`;
    this.#startId = startId(options.startFrom);
    this.#count = options.count ?? 100;
    this.#blockMs = options.blockMs ?? 1_000;
    this.#claimIdleMs = options.claimIdleMs ?? 60_000;
    this.#claimIntervalMs = options.claimIntervalMs ?? Math.min(this.#claimIdleMs, 10_000);
    // A tenth: an entry's handler starts at most this long after its last refresh, so it gets 90% of claimIdleMs.
    this.#refreshMs = Math.max(1, Math.floor(this.#claimIdleMs / 10));
    this.#maxDeliveries = options.maxDeliveries ?? 5;
    this.#deadLetterMaxLen = options.deadLetterMaxLen ?? DEFAULT_MAX_LEN;
    this.#onError = options.onError;
    this.#connection = new RedisConnection(options, {
      connectionName: "streamll-reader",
      // A blocking read legitimately waits blockMs before answering.
      extraCommandTimeoutMs: this.#blockMs,
    });
  }

  /** A snapshot of the reader's counters. */
  getStats(): RedisEventReaderStats {
    return { ...this.#stats };
  }

  /**
   * Resolves once the reader is connected and its group exists, i.e. its reads have started (after `run()` or
   * iteration began): from then on it gets its share of new entries. Rejects if the reader stops first.
   */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  /**
   * Calls `handler` for every event until {@link stop} is called or `signal` aborts, then closes the connection.
   * Resolves once stopped (also when `stop(timeoutMs)` gave up on a handler that did not return), before
   * `stop()` resolves. Handler errors are counted and reported to `onError`; they never end the loop. Rejects
   * with a `ConfigurationError` (reported to `onError` once first) when the reader can never work as configured,
   * e.g. the optional SDK of its credential provider is not installed: no retry would help.
   */
  run(handler: RedisEventHandler, options: { signal?: AbortSignal } = {}): Promise<void> {
    const before = this.#running;
    const running = this.#run(handler, options);
    // Only the call that started the loop (its synchronous start set #running): stop() resolves after it.
    if (this.#running !== before)
      this.#runSettled = running.then(
        () => undefined,
        () => undefined,
      );
    return running;
  }

  async #run(handler: RedisEventHandler, options: { signal?: AbortSignal }): Promise<void> {
    validateOptions("RedisEventReader.run()", runOptionsSchema, options);
    const loop = this.#begin(async () => {
      while (!this.#stopping) {
        const entries = await this.#poll();
        for (const [index, entry] of entries.entries()) {
          if (this.#stopping) break;
          if (!(await this.#stillOurs(index))) continue;
          if (this.#stopping) break;
          this.#handedOut = index + 1;
          const message = await this.#prepare(entry);
          if (message === undefined) continue;
          const call: HandlerCall = { reader: this, returned: false };
          let failure: { error: unknown } | undefined;
          try {
            await handlerCalls.run(call, () => handler(message.event, message));
          } catch (error) {
            failure = { error };
          } finally {
            call.returned = true;
          }
          // stop(timeoutMs) gave up on this handler and closed the connection: its entry stays pending.
          if (this.#gaveUp) break;
          if (failure !== undefined) {
            this.#stats.handlerFailures += 1;
            this.#report(failure.error, { fromHandler: true });
            continue;
          }
          await message.ack();
        }
      }
    });
    const onAbort = () => void this.stop();
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([loop, this.#abandoned.promise]);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      await this.#close();
    }
    if (this.#fatal) throw this.#fatal;
  }

  /**
   * Iterates over events. A message is acknowledged when the loop asks for the next one, i.e. after the loop
   * body completed; if the body throws or `break`s, the current message stays pending and is redelivered after
   * `claimIdleMs` (call `await message.ack()` before `break` to avoid that).
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<RedisEventMessage, void, undefined> {
    let release: (() => void) | undefined;
    const loop = this.#begin(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    this.#iterating = true;
    try {
      while (!this.#stopping) {
        const entries = await this.#poll();
        for (const [index, entry] of entries.entries()) {
          if (this.#stopping) break;
          if (!(await this.#stillOurs(index))) continue;
          if (this.#stopping) break;
          // Set before yielding: if the loop body breaks, the entries after the current one go back.
          this.#handedOut = index + 1;
          const message = await this.#prepare(entry);
          if (message === undefined) continue;
          yield message;
          await message.ack();
        }
      }
      if (this.#fatal) throw this.#fatal;
    } finally {
      release?.();
      await loop;
      await this.#close();
    }
  }

  /**
   * Stops reading and leaves the group: the current handler call finishes (and is acknowledged), the current
   * read returns within `blockMs`, a wait for the connection (Redis down or unreachable) is given up at once;
   * entries fetched but not yet handled are handed back to the group (marked idle, so the other consumers
   * claim them on their next claim scan, with their delivery count unchanged); the consumer is deleted from the
   * group when nothing is left pending on it; then the connection is closed. Resolves when the reader is closed
   * and `run()` has settled.
   *
   * Called from inside a `run()` handler it only requests the stop (the handler is what it would wait for)
   * and resolves at once: when the handler returns, its event is acknowledged, nothing after it is handled,
   * and `run()` resolves once the reader has stopped as above.
   *
   * With `for await`, the loop ends when it asks for its next message (the current one is acknowledged
   * then) and the connection closes with it; `stop()` only waits for a read in progress, so calling it from
   * inside the loop body is safe.
   *
   * @param timeoutMs Stop waiting for a handler after this long and close the connection anyway; its entry
   *   stays pending (claimed by another consumer after `claimIdleMs`) and `run()` resolves. Default: wait as
   *   long as the handler takes.
   */
  async stop(timeoutMs?: number): Promise<void> {
    const timeout = timeoutArgument("RedisEventReader.stop()", timeoutMs, Number.POSITIVE_INFINITY);
    this.#stopping = true;
    this.#wake?.();
    this.#stopSignal.abort();
    const call = handlerCalls.getStore();
    // From inside a handler: waiting for run() would wait for this very handler, which waits for stop().
    if (call?.reader === this && !call.returned) return;
    if (this.#iterating) {
      await this.#polling;
      return;
    }
    if (this.#running !== undefined) {
      const running = this.#running.catch(() => undefined);
      if (timeout === Number.POSITIVE_INFINITY) {
        await running;
      } else {
        let timer: NodeJS.Timeout | undefined;
        const settled = await Promise.race([
          running.then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeout))),
        ]);
        clearTimeout(timer);
        if (!settled) {
          // The handler (or a read) did not finish in time: close anyway and let run() resolve.
          this.#gaveUp = true;
          this.#abandoned.resolve();
        }
      }
    }
    await this.#close();
    await this.#runSettled;
  }

  #begin(body: () => Promise<void>): Promise<void> {
    if (this.#closed !== undefined || this.#stopping) {
      throw new StreamllError("CONFIGURATION_INVALID", "RedisEventReader was stopped; create a new reader");
    }
    if (this.#running !== undefined) {
      throw new StreamllError(
        "CONFIGURATION_INVALID",
        "RedisEventReader is already running; use one loop per reader",
      );
    }
    this.#running = body();
    return this.#running;
  }

  #close(): Promise<void> {
    this.#stopping = true;
    this.#stopSignal.abort();
    this.#ready.reject(new StreamllError("SINK_CLOSED", "RedisEventReader stopped before it was ready"));
    this.#closed ??= this.#leave().then(() => this.#connection.close());
    return this.#closed;
  }

  /**
   * Leaves the group: hands the fetched but unhandled entries to the most recently active other consumer, then
   * deletes this consumer if nothing is pending on it. Plain commands, no script: the user needs no scripting
   * permission, and nothing can become pending on a consumer that stopped reading, so check-then-delete is safe.
   */
  async #leave(): Promise<void> {
    const unhandled = this.#batch.slice(this.#handedOut).filter((entry) => !this.#lost.has(entry.id));
    this.#batch = [];
    if (!this.#groupReady) return;
    const client = this.#connection.client;
    try {
      // Only those still on this consumer: one another consumer took over is its to handle, not to re-release.
      const owned = unhandled.length > 0 ? await this.#ownPending(unhandled) : new Map<string, PendingInfo>();
      const entries = unhandled.filter((entry) => owned.has(entry.id));
      this.#stats.released += unhandled.length - entries.length;
      if (entries.length > 0) {
        const heir = await this.#heir();
        const claims = client.pipeline();
        for (const entry of entries) {
          // IDLE as if delivered at the epoch: every consumer's XAUTOCLAIM takes it on its next scan, whoever
          // owns it. RETRYCOUNT undoes the delivery counted by a read that never reached a handler.
          claims.xclaim(
            this.stream,
            this.group,
            heir,
            0,
            entry.id,
            "IDLE",
            Date.now(),
            "RETRYCOUNT",
            Math.max(0, entry.deliveryCount - 1),
            "JUSTID",
          );
        }
        const replies = await claims.exec();
        const failed = replies?.find(([error]) => error !== null)?.[0];
        if (failed) throw failed;
        this.#stats.released += entries.length;
      }
      const pending: unknown = await client.xpending(this.stream, this.group, "-", "+", 1, this.consumer);
      // Deleting a consumer drops its pending entries: only an empty one leaves.
      if (Array.isArray(pending) && pending.length === 0) {
        await client.xgroup("DELCONSUMER", this.stream, this.group, this.consumer);
      }
    } catch (error) {
      // The entries stay pending here and are claimed after claimIdleMs: later, never lost.
      this.#fail(error, "Redis leaving the consumer group failed");
    }
  }

  /** The other consumer that read most recently (it is probably alive), or this one when there is none. */
  async #heir(): Promise<string> {
    const rows: unknown = await this.#connection.client.xinfo("CONSUMERS", this.stream, this.group);
    let heir = this.consumer;
    let heirIdle = Number.POSITIVE_INFINITY;
    for (const row of Array.isArray(rows) ? rows : []) {
      // A flat [name, value, ...] list (RESP2, ioredis' RESP3 mapping) or a map (RESP3).
      const info: Record<string, unknown> = {};
      if (Array.isArray(row)) {
        for (let i = 0; i + 1 < row.length; i += 2) info[asString(row[i]) ?? ""] = row[i + 1];
      } else if (typeof row === "object" && row !== null) {
        Object.assign(info, row);
      }
      const name = asString(info.name);
      const idle = Number(info.idle);
      if (name !== undefined && name !== this.consumer && idle < heirIdle) {
        heir = name;
        heirIdle = idle;
      }
    }
    return heir;
  }

  /**
   * Passes an error to `onError`. Without one, the reader's own errors go to `console.warn` (each distinct
   * message once until a read succeeds again); handler errors are the application's and are not logged.
   */
  #report(error: unknown, { fromHandler = false }: { fromHandler?: boolean } = {}): void {
    if (this.#onError === undefined) {
      if (fromHandler) return;
      const message = describeError(error);
      if (message === this.#lastLogged) return;
      this.#lastLogged = message;
      console.warn(`[streamll] Redis reader ${this.stream} (group ${this.group}): ${message}`);
      return;
    }
    try {
      this.#onError(error);
    } catch {
      // A throwing error callback must not stop the reader.
    }
  }

  #fail(error: unknown, context: string): void {
    this.#stats.errors += 1;
    const wrapped = toRedisSinkError(error, context, this.#connection.secrets());
    if (wrapped.redisCode === "NOGROUP") this.#groupReady = false;
    this.#report(wrapped);
  }

  /**
   * Ends the reader for an error no retry can fix: reported to `onError` once, as it is (a `ConfigurationError`
   * keeps its `fix`, e.g. the install command), then the loop stops and `run()`, iteration and `ready()` reject
   * with it.
   */
  #failPermanently(error: Error): void {
    this.#fatal = error;
    this.#stats.errors += 1;
    this.#report(error);
    this.#ready.reject(error);
    this.#stopping = true;
  }

  async #pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  async #ensureGroup(): Promise<void> {
    if (this.#groupReady) return;
    try {
      await this.#connection.client.xgroup("CREATE", this.stream, this.group, this.#startId, "MKSTREAM");
    } catch (error) {
      if (redisErrorCode(error) !== "BUSYGROUP") throw error;
    }
    this.#groupReady = true;
  }

  /**
   * Reads the next entries: claimed idle ones first, then new ones. Never throws; errors back off and retry,
   * except a permanent one (a `ConfigurationError`), which ends the reader.
   */
  async #poll(): Promise<RawEntry[]> {
    const polling = this.#pollOnce();
    this.#polling = polling;
    const entries = await polling;
    this.#batch = entries;
    this.#handedOut = 0;
    return entries;
  }

  async #pollOnce(): Promise<RawEntry[]> {
    try {
      await this.#connection.ready(this.#stopSignal.signal);
      await this.#ensureGroup();
      this.#ready.resolve();
      const entries = await this.#readNext();
      this.#failureStreak = 0;
      this.#lastLogged = undefined;
      this.#stats.received += entries.length;
      this.#batchFreshAt = Date.now();
      this.#lost = new Set();
      return entries;
    } catch (error) {
      // A read whose reply was lost (connection dropped) left its entries pending here, unseen: read them
      // again before new ones rather than wait claimIdleMs for them.
      this.#ownPendingFrom ??= this.#lastNewId ?? "0";
      if (this.#stopping) return [];
      if (isConfigurationError(error)) {
        this.#failPermanently(error);
        return [];
      }
      this.#fail(error, "Redis read failed");
      this.#failureStreak += 1;
      await this.#pause(Math.min(100 * 2 ** Math.min(this.#failureStreak, 5), 2_000));
      return [];
    }
  }

  /** This consumer's own pending entries first (until none is left), then idle claimed ones, then new ones. */
  async #readNext(): Promise<RawEntry[]> {
    if (this.#ownPendingFrom !== undefined) {
      const own = await this.#readOwnPending(this.#ownPendingFrom);
      const last = own[own.length - 1];
      if (last !== undefined) {
        this.#ownPendingFrom = last.id;
        return own;
      }
      this.#ownPendingFrom = undefined;
    }
    const claimed = await this.#claimIdle();
    return claimed.length > 0 ? claimed : this.#readNew();
  }

  /**
   * Reads this consumer's pending entries after `from` (a read of its history). Redis counts it as a delivery,
   * so an entry that keeps failing still reaches `maxDeliveries` and the dead-letter stream. Paged by the last
   * id, not from "0" again: an entry whose handler failed stays pending and would be read forever.
   */
  async #readOwnPending(from: string): Promise<RawEntry[]> {
    return this.#withDeliveryCounts(await this.#readGroup(from));
  }

  async #readNew(): Promise<RawEntry[]> {
    const entries = await this.#readGroup(">", this.#blockMs);
    this.#lastNewId = entries[entries.length - 1]?.id ?? this.#lastNewId;
    return entries;
  }

  /** One XREADGROUP from `id` (`>` for new entries, an id for this consumer's pending ones after it). */
  async #readGroup(id: string, blockMs?: number): Promise<RawEntry[]> {
    const { client } = this.#connection;
    const [group, consumer, count, stream] = [this.group, this.consumer, this.#count, this.stream];
    const reply: unknown =
      blockMs === undefined
        ? await client.xreadgroup("GROUP", group, consumer, "COUNT", count, "STREAMS", stream, id)
        : await client.xreadgroup(
            "GROUP",
            group,
            consumer,
            "COUNT",
            count,
            "BLOCK",
            blockMs,
            "STREAMS",
            stream,
            id,
          );
    return parseReadReply(reply);
  }

  async #claimIdle(): Promise<RawEntry[]> {
    const now = Date.now();
    if (now - this.#lastClaimAt < this.#claimIntervalMs) return [];
    const client = this.#connection.client;
    const reply = await client.xautoclaim(
      this.stream,
      this.group,
      this.consumer,
      this.#claimIdleMs,
      this.#claimCursor,
      "COUNT",
      this.#count,
    );
    const next = Array.isArray(reply) ? asString(reply[0]) : undefined;
    this.#claimCursor = next ?? "0-0";
    // A full scan of the pending list is done when the cursor wraps to 0-0; until then keep claiming.
    if (this.#claimCursor === "0-0") this.#lastClaimAt = now;
    const entries = Array.isArray(reply) ? parseEntries(reply[1], 1) : [];
    if (entries.length === 0) return [];
    this.#stats.claimed += entries.length;
    return this.#withDeliveryCounts(entries);
  }

  /** `XAUTOCLAIM` and history reads do not report delivery counts; `XPENDING` over the entries' range does. */
  async #withDeliveryCounts(entries: RawEntry[]): Promise<RawEntry[]> {
    if (entries.length === 0) return entries;
    const pending = await this.#ownPending(entries);
    return entries.map((entry) => ({
      ...entry,
      deliveryCount: pending.get(entry.id)?.deliveries ?? entry.deliveryCount,
    }));
  }

  /**
   * This consumer's pending entries between the lowest and highest id of `entries` (`XPENDING ... <consumer>`),
   * paged: the range may also hold entries whose handler failed earlier.
   */
  async #ownPending(entries: readonly RawEntry[]): Promise<Map<string, PendingInfo>> {
    const { first, last } = idRange(entries);
    const pageSize = this.#count + 100;
    const out = new Map<string, PendingInfo>();
    let start = first;
    for (;;) {
      const page = parsePending(
        await this.#connection.client.xpending(this.stream, this.group, start, last, pageSize, this.consumer),
      );
      for (const [id, info] of page) out.set(id, info);
      const lastRow = [...page.keys()].pop();
      if (page.size < pageSize || lastRow === undefined) return out;
      // "(" excludes the id (Redis 6.2, like XAUTOCLAIM).
      start = `(${lastRow}`;
    }
  }

  /**
   * Whether the batch entry at `index` is still this consumer's to handle. Redis counts a fetched entry idle
   * from the read, so entries waiting here for their turn would age past `claimIdleMs` and be claimed (and
   * handled) by another consumer as well: every `#refreshMs` the waiting ones are re-claimed idle (two
   * commands for the whole batch, not per entry), and those another consumer took over meanwhile are dropped.
   */
  async #stillOurs(index: number): Promise<boolean> {
    const entry = this.#batch[index];
    if (entry === undefined || this.#lost.has(entry.id)) return false;
    if (Date.now() - this.#batchFreshAt >= this.#refreshMs) await this.#refreshBatch(index);
    return !this.#lost.has(entry.id);
  }

  /**
   * Resets the idle time of the batch entries from `from` on that are still pending on this consumer
   * (`XCLAIM ... 0 <ids> JUSTID`: no delivery counted). Ownership is checked first (`XPENDING`) because `XCLAIM`
   * would take an entry back from the consumer that claimed it; no script, so no scripting permission. An
   * entry idle long enough to have been claimed between the check and the claim is dropped too: it stays
   * pending, and whoever claims it next handles it once.
   */
  async #refreshBatch(from: number): Promise<void> {
    const waiting = this.#batch.slice(from).filter((entry) => !this.#lost.has(entry.id));
    if (waiting.length === 0) return;
    const checkedAt = Date.now();
    try {
      const owned = await this.#ownPending(waiting);
      const keep = waiting.filter(
        (entry) => (owned.get(entry.id)?.idleMs ?? Number.POSITIVE_INFINITY) < this.#claimIdleMs,
      );
      const reclaimed = new Set<string>();
      if (keep.length > 0) {
        // Min idle 0: claimed whatever its idle time, which resets it. `call`, as ioredis' typing of xclaim()
        // cannot take a list of ids on the standalone-or-cluster client; lower case so a cluster finds the key.
        const reply: unknown = await this.#connection.client.call(
          "xclaim",
          this.stream,
          this.group,
          this.consumer,
          0,
          ...keep.map((entry) => entry.id),
          "JUSTID",
        );
        for (const id of Array.isArray(reply) ? reply : []) {
          const text = asString(id);
          if (text !== undefined) reclaimed.add(text);
        }
      }
      const elapsed = Date.now() - checkedAt;
      for (const entry of waiting) {
        const idleMs = owned.get(entry.id)?.idleMs ?? Number.POSITIVE_INFINITY;
        if (!reclaimed.has(entry.id) || idleMs + elapsed >= this.#claimIdleMs) this.#drop(entry);
      }
      this.#batchFreshAt = checkedAt;
    } catch (error) {
      this.#fail(error, "Redis keeping fetched entries failed");
      // Unknown whether they are still ours: once they may have been claimed, leave them to the claim scans.
      if (Date.now() - this.#batchFreshAt >= this.#claimIdleMs) {
        for (const entry of waiting) this.#drop(entry);
      }
    }
  }

  /** Leaves a fetched entry to the consumer that took (or will take) it over; counted as released. */
  #drop(entry: RawEntry): void {
    this.#lost.add(entry.id);
    this.#stats.released += 1;
  }

  /** Validates an entry; dead-letters it when malformed or delivered too often. Returns a message to handle. */
  async #prepare(entry: RawEntry): Promise<RedisEventMessage | undefined> {
    const raw = entry.fields === null ? undefined : fieldValue(entry.fields, EVENT_FIELD);
    // Counted when dead-lettered: an entry whose dead-letter write failed is seen again and must not count twice.
    if (raw === undefined) {
      if (await this.#deadLetter(entry, "", "malformed", `entry has no "${EVENT_FIELD}" field`))
        this.#stats.malformed += 1;
      return undefined;
    }
    const decoded = decodeEvent(raw);
    if (!decoded.ok) {
      if (await this.#deadLetter(entry, raw, "malformed", decoded.error.message)) this.#stats.malformed += 1;
      return undefined;
    }
    if (entry.deliveryCount > this.#maxDeliveries) {
      await this.#deadLetter(
        entry,
        raw,
        "max-deliveries",
        `not acknowledged after ${this.#maxDeliveries} deliveries`,
      );
      return undefined;
    }
    let acked = false;
    return {
      id: entry.id,
      stream: this.stream,
      event: decoded.event,
      deliveryCount: entry.deliveryCount,
      ack: async () => {
        if (acked) return;
        try {
          await this.#connection.client.xack(this.stream, this.group, entry.id);
          acked = true;
          this.#stats.acknowledged += 1;
        } catch (error) {
          // The entry stays pending and is delivered again later: at least once, never lost.
          this.#fail(error, "Redis XACK failed");
        }
      },
    };
  }

  /** Writes the entry to the dead-letter stream, then acknowledges it. Returns whether both succeeded. */
  async #deadLetter(
    entry: RawEntry,
    raw: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<boolean> {
    const client = this.#connection.client;
    try {
      // Written first, acknowledged second: a failure in between leaves the entry pending, never lost.
      await client.xadd(
        this.deadLetterStream,
        "MAXLEN",
        "~",
        String(this.#deadLetterMaxLen),
        "*",
        EVENT_FIELD,
        raw,
        "reason",
        reason,
        "error",
        detail.slice(0, 1_000),
        "source_stream",
        this.stream,
        "source_id",
        entry.id,
        "group",
        this.group,
        "consumer",
        this.consumer,
        "deliveries",
        String(entry.deliveryCount),
      );
      await client.xack(this.stream, this.group, entry.id);
      this.#stats.deadLettered += 1;
      return true;
    } catch (error) {
      this.#fail(error, "Redis dead-letter write failed");
      return false;
    }
  }
}
