import type { EncodedEvent, EventFailure, EventRoute, SendContext, SendResult, Sink } from "@streamll/core";
import { abortable } from "@streamll/core";
import { ProcessHold, v, validateOptions } from "@streamll/core/internal";
import type { Cluster, Redis } from "ioredis";
import {
  RedisConnection,
  type RedisConnectionOptions,
  redisConnectionOptionsSchema,
} from "./redis-connection";
import { RedisSinkError, toRedisSinkError } from "./redis-errors";
import type { StreamKeyResolver, StreamKeyTemplate } from "./stream-key";
import { clusterKeySlot, compileStreamKey, DEFAULT_CLUSTER_STREAM, DEFAULT_STREAM } from "./stream-key";

/**
 * Default stream length bound. 100 000 events of a typical 1–2 KiB is 100–200 MiB of Redis memory: enough for
 * a dashboard's recent history and for a consumer that falls minutes behind, small enough for a modest cache
 * node. Approximate trimming (`MAXLEN ~`) keeps `XADD` O(1); the stream may briefly hold a little more.
 */
export const DEFAULT_MAX_LEN = 100_000;

/** The stream entry field that holds the event's wire JSON. */
export const EVENT_FIELD = "event";

/** Options for {@link RedisSink}. Connection settings are those of {@link RedisConnectionOptions}. */
export interface RedisSinkOptions extends RedisConnectionOptions {
  /**
   * Stream key, fixed or a template (`streamll:{module_name}`, see {@link StreamKeyTemplate}). Default
   * `streamll_events`, or `{streamll}:events` with `cluster`.
   */
  stream?: StreamKeyTemplate;
  /** Upper bound on each stream's length (`XADD … MAXLEN ~ n`). Default {@link DEFAULT_MAX_LEN}. Never unbounded. */
  maxLen?: number;
  /** `true` (default) trims with `~` (cheap, approximate); `false` trims exactly with `=` (costs more CPU). */
  approximateTrim?: boolean;
  /** Name in metrics. Default `redis:<stream>` (or `redis` when the key is a template). */
  name?: string;
  /** Called with connection and authentication errors (messages without secrets), e.g. to log them. */
  onError?: (error: RedisSinkError) => void;
}

/** `RedisSinkOptions` as the constructor checks them. */
export const redisSinkOptionsSchema = redisConnectionOptionsSchema.extend<RedisSinkOptions>({
  stream: v
    .union(
      v.string({ min: 1, max: 512, expected: "a stream key or key template" }),
      v.fn<(event: EventRoute) => string>("a function (event) => stream key"),
    )
    .optional(),
  maxLen: v.integer({ min: 1, expected: "a positive integer (streams are never unbounded)" }).optional(),
  approximateTrim: v.boolean().optional(),
  name: v.string({ min: 1 }).optional(),
  onError: v.fn<(error: RedisSinkError) => void>().optional(),
});

type PipelineReply = [error: Error | null, result: unknown];

/**
 * XADDs per pipeline. Building and writing a pipeline runs on the event loop (5–6 µs per XADD of a 0.6 KB
 * event), so a batch of 512 written at once would hold the loop for milliseconds; chunks of 16 written one
 * loop turn apart keep each stretch near 0.1 ms while the chunks still travel back to back on one connection
 * (measured: the same throughput as 64 per chunk, and half the cost per instrumented call; bench/run.mjs).
 */
export const PIPELINE_CHUNK_SIZE = 16;

/** Lets the event loop run (timers, I/O, the host's own work) before the next chunk is built. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Writes events to Redis Streams: each batch is pipelined as `XADD <stream> MAXLEN ~ <n> * event <json>`, in
 * batch order, in chunks of {@link PIPELINE_CHUNK_SIZE} commands written one event-loop turn apart (so no send
 * blocks the host's event loop for long) and answered together.
 *
 * Failure handling: an error reply for one command (`WRONGTYPE`, `OOM`, `NOPERM`, …) drops just that event
 * (counted as `rejected`); connection loss, timeouts and transient replies (`LOADING`, `READONLY`,
 * `CLUSTERDOWN`, `TRYAGAIN`, …) fail the batch so the delivery pipeline retries it and the circuit breaker sees
 * it. A login the server rejects (`WRONGPASS`, `NOAUTH`) with a static password, or with a provider's credential
 * fetched fresh after a first rejection, and TLS options Node refuses, reject the send with a `ConfigurationError`:
 * the pipeline marks the sink failed and reports it once instead of retrying. ioredis runs without an offline queue and without its own command replay, so a dead server
 * makes `send` fail within `connectTimeoutMs` instead of queueing inside the client. A chunk that fails as a
 * whole (the connection dropped under it) fails just its events, retriably, while the chunks Redis answered
 * stay delivered. Delivery is at least once: events retried after a connection drop may have been partly
 * written before it.
 */
export class RedisSink implements Sink {
  /** Name in metrics, e.g. `redis:streamll_events`. */
  readonly name: string;
  /** The configured stream length bound. */
  readonly maxLen: number;
  readonly #connection: RedisConnection;
  readonly #keys: StreamKeyResolver;
  readonly #trimOperator: "~" | "=";
  readonly #maxLenArg: string;
  /**
   * The connection never holds the process (it is opened with `keepProcessAlive: false`); a send or close in
   * flight does, so whoever awaits one gets its answer even when it is a script's only work.
   */
  readonly #hold = new ProcessHold();
  #closed = false;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: RedisSinkOptions = {}) {
    validateOptions("RedisSink", redisSinkOptionsSchema, options);
    const maxLen = options.maxLen ?? DEFAULT_MAX_LEN;
    this.maxLen = maxLen;
    this.#trimOperator = options.approximateTrim === false ? "=" : "~";
    this.#maxLenArg = String(maxLen);
    const stream = options.stream ?? (options.cluster ? DEFAULT_CLUSTER_STREAM : DEFAULT_STREAM);
    this.#keys = compileStreamKey(stream);
    this.name = options.name ?? (this.#keys.fixed === undefined ? "redis" : `redis:${this.#keys.fixed}`);
    this.#connection = new RedisConnection(options, {
      connectionName: "streamll-sink",
      // A sink's connection must not keep a finished program alive: core flushes pending events on
      // `beforeExit`, and its flush deadline holds the process while that delivery runs.
      keepProcessAlive: false,
      // A failing credential provider would otherwise only show in lastError: the pipeline retries quietly.
      reportProviderFailures: true,
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /**
   * The underlying ioredis client, for diagnostics (`status`, `connect()` ahead of the first send). Do not close
   * it yourself, and do not log it: its `options` hold the current password or token.
   */
  get client(): Redis | Cluster {
    return this.#connection.client;
  }

  /** The stream key an event (or an encoded event's routing fields) goes to. */
  streamFor(event: EventRoute): string {
    return this.#keys.fixed ?? this.#keys.keyFor(event);
  }

  async send(batch: readonly EncodedEvent[], context: SendContext): Promise<SendResult | undefined> {
    if (this.#closed)
      throw new RedisSinkError("RedisSink is closed", { retriable: false, code: "SINK_CLOSED" });
    if (batch.length === 0) return undefined;
    return this.#hold.run(() => this.#send(batch, context));
  }

  async #send(batch: readonly EncodedEvent[], context: SendContext): Promise<SendResult | undefined> {
    // Hot path: a connected client with a current credential needs no await before writing.
    if (!this.#connection.isReady()) await this.#connection.ready(context.signal);
    const fixed = this.#keys.fixed;
    const keys =
      fixed === undefined
        ? batch.map((encoded) => this.#keys.keyFor(encoded))
        : new Array<string>(batch.length).fill(fixed);

    let replies: PipelineReply[];
    if (this.#connection.isCluster && this.#keys.fixed === undefined) {
      replies = await this.#sendBySlot(batch, keys, context.signal);
    } else {
      replies = await this.#pipeline(
        batch.map((_, index) => index),
        batch,
        keys,
        context.signal,
      );
    }

    const secrets = this.#connection.secrets();
    const failures: EventFailure[] = [];
    for (let index = 0; index < batch.length; index++) {
      const error = replies[index]?.[0];
      if (error === null) continue;
      const wrapped = toRedisSinkError(error ?? new Error("no reply"), "Redis XADD failed", secrets);
      failures.push({ index, error: wrapped, retriable: wrapped.retriable });
    }
    if (failures.length === 0) return undefined;
    // A batch that failed as a whole for a transient reason is a send failure: the breaker must count it.
    if (failures.length === batch.length && failures.every((failure) => failure.retriable)) {
      throw failures[0]?.error;
    }
    return { failures };
  }

  // In a cluster one pipeline may only address one node, so a templated key is sent as one pipeline per slot.
  async #sendBySlot(
    batch: readonly EncodedEvent[],
    keys: readonly string[],
    signal: AbortSignal,
  ): Promise<PipelineReply[]> {
    const groups = new Map<number, number[]>();
    keys.forEach((key, index) => {
      const slot = clusterKeySlot(key);
      const group = groups.get(slot);
      if (group === undefined) groups.set(slot, [index]);
      else group.push(index);
    });
    const replies: PipelineReply[] = new Array(batch.length);
    await Promise.all(
      [...groups.values()].map(async (indices) => {
        let groupReplies: PipelineReply[];
        try {
          groupReplies = await this.#pipeline(indices, batch, keys, signal);
        } catch (error) {
          groupReplies = indices.map(() => [error instanceof Error ? error : new Error(String(error)), null]);
        }
        indices.forEach((batchIndex, i) => {
          replies[batchIndex] = groupReplies[i] ?? [new Error("no reply"), null];
        });
      }),
    );
    return replies;
  }

  /**
   * XADDs the events at `indices` in chunks of {@link PIPELINE_CHUNK_SIZE}, one event-loop turn apart, and
   * returns one reply per index. A chunk whose pipeline failed as a whole answers each of its events with that
   * error; when every chunk failed, the error is thrown (the batch failed as a whole).
   */
  async #pipeline(
    indices: readonly number[],
    batch: readonly EncodedEvent[],
    keys: readonly string[],
    signal: AbortSignal,
  ): Promise<PipelineReply[]> {
    const chunks: Promise<PipelineReply[] | Error>[] = [];
    for (let start = 0; start < indices.length; start += PIPELINE_CHUNK_SIZE) {
      if (start > 0) await nextTurn();
      if (signal.aborted) break;
      const pipeline = this.#connection.client.pipeline();
      const end = Math.min(start + PIPELINE_CHUNK_SIZE, indices.length);
      for (let i = start; i < end; i++) {
        const index = indices[i] as number;
        const encoded = batch[index];
        const key = keys[index];
        if (encoded === undefined || key === undefined) continue;
        pipeline.xadd(key, "MAXLEN", this.#trimOperator, this.#maxLenArg, "*", EVENT_FIELD, encoded.json);
      }
      // Settled into a value at once, so a chunk that fails while later ones are built is never unhandled.
      chunks.push(
        pipeline.exec().then(
          (replies) =>
            replies === null
              ? new RedisSinkError("Redis pipeline returned no replies", { retriable: true })
              : replies,
          (error: unknown) => toRedisSinkError(error, "Redis pipeline failed", this.#connection.secrets()),
        ),
      );
    }
    const settled = await abortable(
      Promise.all(chunks),
      signal,
      () => new RedisSinkError("Redis send aborted", { retriable: true, code: "SEND_TIMEOUT" }),
    );
    if (settled.length > 0 && settled.every((chunk) => chunk instanceof Error)) throw settled[0];
    const replies: PipelineReply[] = [];
    settled.forEach((chunk, c) => {
      const size = Math.min(PIPELINE_CHUNK_SIZE, indices.length - c * PIPELINE_CHUNK_SIZE);
      if (chunk instanceof Error) for (let i = 0; i < size; i++) replies.push([chunk, null]);
      else replies.push(...chunk);
    });
    return replies;
  }

  /** Closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#hold.run(() => this.#connection.close());
  }
}
