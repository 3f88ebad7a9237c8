import { AsyncLocalStorage } from "node:async_hooks";
import { createId, decodeEvent, StreamllError, type StreamllEvent } from "@streamll/core";
import { v, validateOptions } from "@streamll/core/internal";
import {
  type Admin,
  type ConfigResourceTypes,
  type Consumer,
  type IHeaders,
  type KafkaMessage,
  Partitioners,
  type PartitionMetadata,
  type Producer,
} from "kafkajs";
import { type ExecutionReplay, reconstructExecution } from "./execution-replay";
import {
  createKafkaClient,
  DEFAULT_KAFKA_CONNECTION,
  type KafkaClientHandle,
  type KafkaConnectionOptions,
  kafkaConnectionOptionsSchema,
} from "./kafka-connection";
import { configurationErrorIn, isRetryWithFreshCredentials } from "./kafka-errors";
import { DEFAULT_TOPIC, topicNameSchema } from "./kafka-sink";

/** Options of {@link KafkaEventReader}. */
export interface KafkaEventReaderOptions extends KafkaConnectionOptions {
  /** Consumer group. Members of one group share the partitions; each group reads every event once. */
  groupId: string;
  /** Topic to read. Default `streamll_events`. */
  topic?: string;
  /**
   * Where a group without committed offsets starts: the oldest retained event (`true`) or only events
   * produced from now on (`false`, default). A group with committed offsets always resumes after them.
   */
  fromBeginning?: boolean;
  /**
   * Messages that are not valid streamll events are produced to this topic (same key and value, the original
   * headers plus `streamll_error`, `streamll_source_topic`, `streamll_source_partition`,
   * `streamll_source_offset`) before their offset is committed. Default: they are counted and skipped.
   */
  deadLetterTopic?: string;
  /**
   * Largest dead-letter message, in bytes. A malformed message whose copy would be larger (key, value and
   * headers) has its value cut to fit and carries a `streamll_truncated` header with the original value's size
   * in bytes; original headers that alone would not fit are left out (`streamll_headers_dropped`). Default: the
   * dead-letter topic's `max.message.bytes`, read from the broker once (1 000 000 when it cannot be read).
   */
  deadLetterMaxBytes?: number;
  /**
   * How often a failed dead-letter write is retried (backoff from 250 ms, doubling, at most 5 s) before
   * `onDeadLetterFailure` applies. Default 3.
   */
  deadLetterRetries?: number;
  /**
   * What a dead-letter write that still failed after `deadLetterRetries` does:
   * - `"skip"` (default): the malformed message is skipped and its offset committed, like without a
   *   dead-letter topic; counted in `getStats().deadLetterFailed` and reported once per message on the logger.
   * - `"stop"`: the reader stops without committing it; `run()` rejects with a `KafkaReaderError` whose code is
   *   `KAFKA_READER_DEAD_LETTER_FAILED`, and the next run starts with that message again.
   */
  onDeadLetterFailure?: "skip" | "stop";
  /**
   * Stop once every partition has been read up to the end offsets it had when `run()` started, like a batch
   * job over what is in the topic now. Default `false`: keep reading new events until `stop()`. Meant for
   * topics written without transactions, as the sink writes them: a transaction marker as the last record of
   * a partition is never delivered, so the end would not be reached.
   */
  stopAtEnd?: boolean;
  /**
   * Consumer group session timeout: how long the partitions of a reader that died without leaving (a crash, a
   * SIGKILL, a network split) stay unread before the group hands them to the other readers. The broker's
   * `group.min.session.timeout.ms` (6 000 ms by default) is the floor. Default 30 000 ms.
   */
  sessionTimeoutMs?: number;
  /** Messages larger than this are treated as malformed. Default 1 MiB (the decoder's default). */
  maxEventBytes?: number;
}

/** One event as read from Kafka, with where it came from. */
export interface KafkaEventRecord {
  readonly event: StreamllEvent;
  readonly topic: string;
  readonly partition: number;
  /** The message offset (a decimal string: offsets can exceed 2^53). */
  readonly offset: string;
  /** The message key: the `execution_id` for messages the sink produced. */
  readonly key: string | null;
  /** Message timestamp in epoch ms, as a decimal string. */
  readonly timestamp: string;
  /** Message headers decoded as UTF-8. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Receives each event; its result is awaited (and ignored), and the offset is committed once it resolved. */
export type KafkaEventHandler = (record: KafkaEventRecord) => unknown;

/** Counters of one reader. */
export interface KafkaEventReaderStats {
  /** Messages fetched, valid or not. */
  readonly received: number;
  /** Events whose handler succeeded (and whose offset was committed). */
  readonly handled: number;
  /** Messages that were not valid streamll events. */
  readonly malformed: number;
  /** Malformed messages written to the dead-letter topic. */
  readonly deadLettered: number;
  /** Of those, messages whose copy was cut to fit the dead-letter topic (see `deadLetterMaxBytes`). */
  readonly deadLetterTruncated: number;
  /** Malformed messages skipped because writing them to the dead-letter topic failed for good. */
  readonly deadLetterFailed: number;
}

/** Options of {@link KafkaEventReader.replayExecution}. */
export interface ReplayOptions {
  /** Read events from this time on (the execution's start or a bit before). Default: the oldest retained. */
  from?: Date | number;
  /** Give up after this long. Default 30 000 ms. */
  timeoutMs?: number;
  /**
   * Read every partition instead of only the one the execution's key maps to (the sink's partitioner).
   * Needed only when the topic's partition count changed after the events were written. Default `false`.
   */
  allPartitions?: boolean;
}

/** Why a reader stopped or refused to start. */
export type KafkaReaderErrorCode =
  | "KAFKA_READER_BUSY"
  | "KAFKA_READER_HANDLER_FAILED"
  | "KAFKA_READER_DEAD_LETTER_FAILED"
  | "KAFKA_READER_CRASHED"
  | "KAFKA_REPLAY_TIMEOUT";

/** A reader failure with a stable `code`. */
export class KafkaReaderError extends StreamllError<KafkaReaderErrorCode> {
  constructor(code: KafkaReaderErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "KafkaReaderError";
  }
}

/**
 * Room a dead-letter message needs besides its key, value and headers: the record batch header (61 bytes), the
 * record's own varints and attributes, and slack for the broker's accounting.
 */
const DEAD_LETTER_OVERHEAD_BYTES = 512;
/** The smallest `deadLetterMaxBytes`: the overhead, the reader's own headers and a little of the value. */
const MIN_DEAD_LETTER_BYTES = 4_096;
/** The dead-letter limit when the topic's `max.message.bytes` cannot be read (Kafka's default is 1 048 588). */
const DEFAULT_DEAD_LETTER_BYTES = 1_000_000;
/** A dead-letter key longer than this is cut (it only places the copy on a partition of the dead-letter topic). */
const MAX_DEAD_LETTER_KEY_BYTES = 1_024;

/**
 * kafkajs's `ConfigResourceTypes.TOPIC`. The enum is a CommonJS export Node's ESM loader cannot name, so the
 * value is spelled out.
 */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/** kafkajs error types of a group coordinator that moved, is loading the group, or is not there yet. */
const COORDINATOR_ERRORS = new Set([
  "NOT_COORDINATOR_FOR_GROUP",
  "GROUP_COORDINATOR_NOT_AVAILABLE",
  "GROUP_LOAD_IN_PROGRESS",
]);

/**
 * Whether `error` (or what it wraps) says the group coordinator is loading the group or not there yet, or, with
 * `moved`, that it moved: worth a retry. A consumer's own commit goes to the coordinator kafkajs found when
 * joining, so a moved coordinator is kafkajs's to handle (it rejoins); the admin looks it up on each request.
 */
function isCoordinatorError(error: unknown, moved: boolean): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const { type, name } = current as Error & { type?: unknown };
    if (type === "NOT_COORDINATOR_FOR_GROUP" && !moved) return false;
    if (typeof type === "string" && COORDINATOR_ERRORS.has(type)) return true;
    if (name === "KafkaJSGroupCoordinatorNotFound") return true;
    current = (current as Error & { originalError?: unknown }).originalError ?? current.cause;
  }
  return false;
}

/** Tries to reach the group coordinator this many times, waiting 200 ms, doubling, at most 2 s in between. */
const COORDINATOR_ATTEMPTS = 6;

/** `KafkaEventReaderOptions` as the constructor checks them. */
export const kafkaEventReaderOptionsSchema = kafkaConnectionOptionsSchema
  .extend<KafkaEventReaderOptions>({
    groupId: v.string({ min: 1 }),
    topic: topicNameSchema.optional(),
    fromBeginning: v.boolean().optional(),
    deadLetterTopic: topicNameSchema.optional(),
    deadLetterMaxBytes: v.integer({ min: MIN_DEAD_LETTER_BYTES }).optional(),
    deadLetterRetries: v.integer({ min: 0 }).optional(),
    onDeadLetterFailure: v.oneOf(["skip", "stop"] as const).optional(),
    stopAtEnd: v.boolean().optional(),
    sessionTimeoutMs: v.number({ min: 1 }).optional(),
    maxEventBytes: v.integer({ min: 1 }).optional(),
  })
  .refine((options, report) => {
    if (
      options.deadLetterTopic !== undefined &&
      options.deadLetterTopic === (options.topic ?? DEFAULT_TOPIC)
    ) {
      report("must differ from topic", "deadLetterTopic");
    }
  });

const replayOptionsSchema = v.object<ReplayOptions>({
  from: v.union(v.instance(Date, "a Date"), v.number({ min: 0, expected: "epoch milliseconds" })).optional(),
  timeoutMs: v.number({ min: 1 }).optional(),
  allPartitions: v.boolean().optional(),
});

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  for (const [name, value] of Object.entries(headers)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first === undefined) continue;
    out[name] = typeof first === "string" ? first : first.toString("utf8");
  }
  return out;
}

function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

/** A one-slot handoff between kafkajs's push-style `eachMessage` and a pull-style async iterator. */
class Handoff<T> {
  /** Put, not yet taken by the loop. */
  #queued: { value: T; release: (processed: boolean) => void } | undefined;
  /** Taken by the loop and being processed. */
  #current: ((processed: boolean) => void) | undefined;
  #waiter: ((result: IteratorResult<T>) => void) | undefined;
  #done = false;

  /** Resolves `true` once the loop asked for the next item (so this one was processed), `false` if it ended. */
  put(value: T): Promise<boolean> {
    if (this.#done) return Promise.resolve(false);
    return new Promise<boolean>((release) => {
      const waiter = this.#waiter;
      if (waiter === undefined) {
        this.#queued = { value, release };
        return;
      }
      this.#waiter = undefined;
      this.#current = release;
      waiter({ value, done: false });
    });
  }

  take(): Promise<IteratorResult<T>> {
    // Asking for the next item means the previous one was handled.
    this.#current?.(true);
    this.#current = undefined;
    const queued = this.#queued;
    if (queued !== undefined) {
      this.#queued = undefined;
      this.#current = queued.release;
      return Promise.resolve({ value: queued.value, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Ends the iteration; items not yet handled are released unprocessed (their offsets are not committed). */
  end(): void {
    this.#done = true;
    this.#current?.(false);
    this.#current = undefined;
    this.#queued?.release(false);
    this.#queued = undefined;
    this.#waiter?.({ value: undefined, done: true });
    this.#waiter = undefined;
  }
}

/**
 * Reads streamll events from a Kafka topic in a consumer group, validating each message with the core
 * schema (`decodeEvent`). Malformed messages never stop the reader: they are counted and skipped, or written
 * to a dead-letter topic. Only offsets of events whose handler succeeded are committed, after each fetched
 * batch and on stop (at-least-once: after a crash, events handled since the last commit are handled again).
 * A failing handler stops the reader without committing that event, so the next run starts with it again.
 *
 * Use `run(handler)` or `for await (const record of reader)`; and `replayExecution()` to rebuild one
 * execution.
 */
/** One handler call of a reader's `run()`: `stop()` called inside it must not wait for it. */
interface HandlerCall {
  readonly reader: KafkaEventReader;
  returned: boolean;
}

/** The handler call the current code runs in (also in what it started, hence `returned`). */
const handlerCalls = new AsyncLocalStorage<HandlerCall>();

export class KafkaEventReader implements AsyncIterable<KafkaEventRecord> {
  /** The topic read. */
  readonly topic: string;
  readonly groupId: string;
  readonly #options: KafkaEventReaderOptions;
  readonly #client: KafkaClientHandle;
  #consumer: Consumer | undefined;
  #dlqProducer: Producer | undefined;
  #running: Promise<void> | undefined;
  #signalStop: (() => void) | undefined;
  /** Set while `for await` reads: its loop body is what the handler waits for, so stop() must not wait. */
  #iterating = false;
  #received = 0;
  #handled = 0;
  #malformed = 0;
  #deadLettered = 0;
  #deadLetterTruncated = 0;
  #deadLetterFailed = 0;
  /** The dead-letter size limit, once known (the option, or the topic's `max.message.bytes`). */
  #deadLetterMaxBytes: Promise<number> | undefined;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: KafkaEventReaderOptions) {
    validateOptions("KafkaEventReader", kafkaEventReaderOptionsSchema, options);
    const topic = options.topic ?? DEFAULT_TOPIC;
    this.#options = options;
    this.topic = topic;
    this.groupId = options.groupId;
    this.#client = createKafkaClient(options);
  }

  /** A snapshot of this reader's counters. */
  getStats(): KafkaEventReaderStats {
    return {
      received: this.#received,
      handled: this.#handled,
      malformed: this.#malformed,
      deadLettered: this.#deadLettered,
      deadLetterTruncated: this.#deadLetterTruncated,
      deadLetterFailed: this.#deadLetterFailed,
    };
  }

  /**
   * Reads events and calls `handler` for each, one at a time (in order within a partition). An offset is
   * committed only once its handler resolved, after each fetched batch and on stop. Resolves when `stop()` was
   * called (or, with `stopAtEnd`, when caught up); rejects with a `KafkaReaderError`
   * (`KAFKA_READER_HANDLER_FAILED`) when the handler threw (that event's offset is not committed), or
   * (`KAFKA_READER_CRASHED`) when the consumer could not start (broker unreachable, authentication refused) or
   * failed for good after kafkajs's own restarts.
   */
  run(handler: KafkaEventHandler): Promise<void> {
    if (this.#running !== undefined) {
      return Promise.reject(new KafkaReaderError("KAFKA_READER_BUSY", "this reader is already running"));
    }
    const running = this.#run(handler);
    this.#running = running;
    const clear = (): void => {
      if (this.#running === running) this.#running = undefined;
    };
    running.then(clear, clear);
    return running;
  }

  /**
   * Stops reading: the event being handled finishes (and is committed), nothing after it is handled.
   * Resolves once the consumer left the group. Called from inside a handler (or a `for await` body) it only
   * requests the stop: waiting would wait for that very handler. From anywhere else (a SIGTERM handler) it
   * waits for the handler in flight and its commit.
   * While the reader is still connecting, the attempt is abandoned (its sockets destroyed) instead of waited
   * out: against a broker that accepted TCP and never answers that would be `requestTimeoutMs` (30 s).
   */
  async stop(): Promise<void> {
    this.#signalStop?.();
    const call = handlerCalls.getStore();
    if ((call?.reader === this && !call.returned) || this.#iterating) return;
    await this.#running?.catch(() => undefined);
  }

  /** Reads events one by one; breaking out of the loop stops the reader (the current event is not committed). */
  async *[Symbol.asyncIterator](): AsyncIterator<KafkaEventRecord> {
    const handoff = new Handoff<KafkaEventRecord>();
    this.#iterating = true;
    const running = this.run(async (record) => {
      const processed = await handoff.put(record);
      // The loop ended before this event was handled: not committing it makes the next run read it again.
      if (!processed) throw new IteratorAbandoned();
    });
    let failure: unknown;
    running.then(
      () => handoff.end(),
      (error: unknown) => {
        failure = error;
        handoff.end();
      },
    );
    try {
      for (;;) {
        const next = await handoff.take();
        if (next.done) break;
        yield next.value;
      }
    } finally {
      handoff.end();
      this.#signalStop?.();
      await running.catch(() => undefined);
      this.#iterating = false;
    }
    if (
      failure !== undefined &&
      !(failure instanceof KafkaReaderError && failure.cause instanceof IteratorAbandoned)
    ) {
      throw failure;
    }
  }

  /**
   * Reads the events of one execution and rebuilds its flow (span tree, durations, errors, streamed text).
   * Uses a throwaway consumer group that commits nothing and is deleted afterwards; by default reads only
   * the partition the execution's key maps to, from `from` up to the end offsets at the time of the call.
   */
  async replayExecution(executionId: string, options: ReplayOptions = {}): Promise<ExecutionReplay> {
    validateOptions("replayExecution()", replayOptionsSchema, options);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const admin: Admin = this.#client.kafka.admin();
    const groupId = `streamll-replay-${createId()}`;
    let consumer: Consumer | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: [this.topic] });
      const partitions: PartitionMetadata[] = metadata.topics[0]?.partitions ?? [];
      const ends = new Map<number, bigint>();
      for (const entry of await admin.fetchTopicOffsets(this.topic))
        ends.set(entry.partition, BigInt(entry.high));
      const starts = new Map<number, bigint>();
      if (options.from === undefined) {
        for (const entry of await admin.fetchTopicOffsets(this.topic))
          starts.set(entry.partition, BigInt(entry.low));
      } else {
        const ms = options.from instanceof Date ? options.from.getTime() : options.from;
        for (const entry of await admin.fetchTopicOffsetsByTimestamp(this.topic, ms)) {
          const offset = BigInt(entry.offset);
          starts.set(entry.partition, offset < 0n ? (ends.get(entry.partition) ?? 0n) : offset);
        }
      }
      const targets = options.allPartitions
        ? partitions.map((p) => p.partitionId)
        : [
            Partitioners.DefaultPartitioner()({
              topic: this.topic,
              partitionMetadata: partitions,
              message: { key: executionId, value: null },
            }),
          ];
      const pending = new Set(targets.filter((p) => (starts.get(p) ?? 0n) < (ends.get(p) ?? 0n)));
      const events: StreamllEvent[] = [];
      if (pending.size === 0) return reconstructExecution(executionId, events);

      const done = new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new KafkaReaderError(
                "KAFKA_REPLAY_TIMEOUT",
                `replaying execution ${executionId} from ${this.topic} did not finish within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
        consumer = this.#client.kafka.consumer({
          groupId,
          metadataMaxAge: this.#client.metadataMaxAgeMs,
          allowAutoTopicCreation: false,
          sessionTimeout: this.#options.sessionTimeoutMs ?? 30_000,
        });
        const active = consumer;
        (async () => {
          await active.connect();
          await active.subscribe({ topics: [this.topic], fromBeginning: true });
          await active.run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              if (!pending.has(partition)) return;
              const offset = BigInt(message.offset);
              if (offset < (starts.get(partition) ?? 0n)) return;
              const end = ends.get(partition) ?? 0n;
              if (offset < end && message.value !== null && message.key?.toString("utf8") === executionId) {
                const decoded = decodeEvent(message.value, this.#decodeOptions());
                if (decoded.ok) events.push(decoded.event);
              }
              if (offset + 1n >= end) {
                pending.delete(partition);
                if (pending.size === 0) resolve();
              }
            },
          });
          for (const p of partitions) {
            const id = p.partitionId;
            const offset = targets.includes(id) ? (starts.get(id) ?? 0n) : (ends.get(id) ?? 0n);
            active.seek({ topic: this.topic, partition: id, offset: offset.toString() });
          }
        })().catch(reject);
      });
      await done;
      return reconstructExecution(executionId, events);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      await (consumer as Consumer | undefined)?.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * Disconnects everything: `stop()`, then the client is released (token refresh timers, sockets). Called
   * while a handler runs (from inside it, or from a signal handler meanwhile), it requests the stop and
   * resolves at once, as `stop()` does; the client is released once the reader has stopped.
   */
  async close(): Promise<void> {
    await this.stop();
    const running = this.#running;
    if (running === undefined) this.#client.close();
    else void running.catch(() => undefined).finally(() => this.#client.close());
  }

  /**
   * `KAFKA_READER_CRASHED` for a consumer that could not start or crashed for good, scrubbed. Credentials the
   * broker refused appear as the `ConfigurationError` the handshake failed with (its message and fix, and as
   * `cause`), not as kafkajs's wrapper.
   */
  #crashed(what: "could not start" | "crashed", error: unknown): KafkaReaderError {
    const scrub = (text: string): string => this.#client.scrubber.scrub(text);
    const configuration = configurationErrorIn(error) ?? this.#client.brokersFailure();
    if (configuration !== undefined) {
      const fix = (configuration as { fix?: unknown }).fix;
      return new KafkaReaderError(
        "KAFKA_READER_CRASHED",
        `the Kafka consumer of ${this.topic} ${what}: ${scrub(configuration.message)}${typeof fix === "string" ? `. Fix: ${scrub(fix)}` : ""}`,
        { cause: configuration },
      );
    }
    return new KafkaReaderError(
      "KAFKA_READER_CRASHED",
      `the Kafka consumer of ${this.topic} ${what}: ${scrub(error instanceof Error ? error.message : String(error))}`,
      { cause: error },
    );
  }

  #decodeOptions(): { maxBytes?: number } {
    return this.#options.maxEventBytes === undefined ? {} : { maxBytes: this.#options.maxEventBytes };
  }

  async #run(handler: KafkaEventHandler): Promise<void> {
    const sessionTimeout = this.#options.sessionTimeoutMs ?? 30_000;
    const consumer = this.#client.kafka.consumer({
      groupId: this.groupId,
      metadataMaxAge: this.#client.metadataMaxAgeMs,
      allowAutoTopicCreation: false,
      sessionTimeout,
      // kafkajs heartbeats every 3 s whatever the session timeout; a third of it keeps short sessions alive.
      heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeout / 3)),
      retry: { retries: DEFAULT_KAFKA_CONNECTION.retry.retries, initialRetryTime: 300, maxRetryTime: 5_000 },
    });
    this.#consumer = consumer;
    let stopRequested = false;
    let failure: unknown;
    let activeBatch: Promise<void> | undefined;
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const requestStop = (): void => {
      stopRequested = true;
      finish();
    };
    this.#signalStop = requestStop;
    consumer.on(consumer.events.CRASH, (event) => {
      if (event.payload.restart) return;
      const error: unknown = event.payload.error;
      failure ??= this.#crashed("crashed", error);
      requestStop();
    });

    // Set when stop() came while kafkajs was still connecting: that attempt is abandoned, not waited out.
    let abandoned = false;
    try {
      let remaining: Map<number, bigint> | undefined;
      try {
        const starting = (async () => {
          try {
            await consumer.connect();
          } catch (error) {
            // The broker refused a provider's token: once more, with a freshly fetched one whose refusal is
            // then permanent.
            if (!isRetryWithFreshCredentials(error) || stopRequested) throw error;
            await consumer.disconnect().catch(() => undefined);
            // The refused connection must be gone first: kafkajs reuses its connection objects.
            await this.#client.settled(2_000);
            await consumer.connect();
          }
          await consumer.subscribe({
            topics: [this.topic],
            fromBeginning: this.#options.fromBeginning ?? false,
          });
          return this.#options.stopAtEnd ? await this.#endOffsets() : undefined;
        })();
        // Against a broker that accepted TCP and never answers, connecting lasts kafkajs's requestTimeout
        // (30 s); a stop meanwhile must not wait for it.
        const started = await Promise.race([
          starting.then((ends) => ({ ends })),
          finished.then(() => undefined),
        ]);
        if (started === undefined) {
          abandoned = true;
          starting.catch(() => undefined);
          return;
        }
        remaining = started.ends;
      } catch (error) {
        // Broker unreachable, authentication refused, topic missing: a typed, scrubbed error, not kafkajs's.
        throw this.#crashed("could not start", error);
      }
      if (remaining !== undefined && remaining.size === 0) return;
      if (stopRequested) return;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // Messages are handled one at a time, in order; the offset after the last handled one is committed at
        // the end of each fetched batch (and when stopping), so a crash re-delivers at most one batch.
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const { topic, partition } = batch;
          let commit: string | undefined;
          let batchDone: () => void = () => undefined;
          activeBatch = new Promise<void>((resolve) => {
            batchDone = resolve;
          });
          try {
            for (const message of batch.messages) {
              if (stopRequested || !isRunning() || isStale()) break;
              this.#received++;
              try {
                await this.#handle(handler, topic, partition, message, () => stopRequested);
              } catch (error) {
                // Stopped while retrying a dead-letter write: that message stays uncommitted, nothing failed.
                if (!(error instanceof StoppedWhileDeadLettering)) failure ??= error;
                requestStop();
                break;
              }
              resolveOffset(message.offset);
              commit = nextOffset(message.offset);
              if (remaining !== undefined) {
                const end = remaining.get(partition);
                if (end !== undefined && BigInt(message.offset) + 1n >= end) {
                  remaining.delete(partition);
                  if (remaining.size === 0) requestStop();
                }
              }
              // Throws when the group rebalances (a reader joined or left): what was handled is committed
              // below, then the error goes to kafkajs, which rejoins the group and resumes from the commits.
              await heartbeat();
            }
          } finally {
            try {
              // A failed commit goes to kafkajs too: a rebalance makes it rejoin (the events handled since the
              // last commit are delivered again to the partition's next owner), other errors are retried by
              // kafkajs or end in a crash, which stops the reader.
              if (commit !== undefined) {
                const offsets = [{ topic, partition, offset: commit }];
                await this.#withCoordinator(() => consumer.commitOffsets(offsets), { moved: false });
              }
            } finally {
              batchDone();
            }
          }
        },
      });
      await finished;
    } finally {
      this.#signalStop = undefined;
      // Its requests would hold disconnect() for their whole timeout.
      if (abandoned) this.#client.dropConnections();
      // Leaving the group first would make the batch's final commit fail (unknown member).
      await activeBatch;
      await consumer.disconnect().catch(() => undefined);
      await this.#dlqProducer?.disconnect().catch(() => undefined);
      this.#dlqProducer = undefined;
      this.#consumer = undefined;
    }
    if (failure !== undefined) {
      if (failure instanceof KafkaReaderError) throw failure;
      throw new KafkaReaderError(
        "KAFKA_READER_HANDLER_FAILED",
        `reading ${this.topic} stopped: ${failure instanceof Error ? this.#client.scrubber.scrub(failure.message) : "handler failed"}`,
        { cause: failure },
      );
    }
  }

  async #handle(
    handler: KafkaEventHandler,
    topic: string,
    partition: number,
    message: KafkaMessage,
    stopping: () => boolean,
  ): Promise<void> {
    const decoded = message.value === null ? undefined : decodeEvent(message.value, this.#decodeOptions());
    if (decoded === undefined || !decoded.ok) {
      this.#malformed++;
      const reason = decoded === undefined ? "message has no value" : decoded.error.message;
      if (this.#options.deadLetterTopic !== undefined) {
        await this.#deadLetterWithPolicy(topic, partition, message, reason, stopping);
      }
    } else {
      const record: KafkaEventRecord = {
        event: decoded.event,
        topic,
        partition,
        offset: message.offset,
        key: message.key === null ? null : message.key.toString("utf8"),
        timestamp: message.timestamp,
        headers: headersToStrings(message.headers),
      };
      const call: HandlerCall = { reader: this, returned: false };
      try {
        await handlerCalls.run(call, () => handler(record));
      } finally {
        call.returned = true;
      }
      this.#handled++;
    }
  }

  /**
   * Writes a malformed message to the dead-letter topic, retrying with backoff; when it still fails, applies
   * `onDeadLetterFailure`: skip (counted, reported) or stop (`KAFKA_READER_DEAD_LETTER_FAILED`).
   */
  async #deadLetterWithPolicy(
    topic: string,
    partition: number,
    message: KafkaMessage,
    reason: string,
    stopping: () => boolean,
  ): Promise<void> {
    const retries = this.#options.deadLetterRetries ?? 3;
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        await sleep(Math.min(250 * 2 ** (attempt - 1), 5_000));
        if (stopping()) throw new StoppedWhileDeadLettering();
      }
      try {
        await this.#deadLetter(topic, partition, message, reason);
        this.#deadLettered++;
        return;
      } catch (error) {
        lastError = error;
      }
    }
    const where = `${topic}/${partition}@${message.offset}`;
    const why = this.#client.scrubber.scrub(
      lastError instanceof Error ? lastError.message : String(lastError),
    );
    const dlt = this.#options.deadLetterTopic!;
    if ((this.#options.onDeadLetterFailure ?? "skip") === "stop") {
      throw new KafkaReaderError(
        "KAFKA_READER_DEAD_LETTER_FAILED",
        `could not write the malformed message ${where} to the dead-letter topic ${dlt} after ${retries + 1} attempts: ${why}`,
        { cause: lastError },
      );
    }
    this.#deadLetterFailed++;
    this.#client.logger.warn(
      `KafkaEventReader: skipped the malformed message ${where}: writing it to the dead-letter topic ${dlt} failed ${retries + 1} times: ${why}`,
    );
  }

  async #deadLetter(topic: string, partition: number, message: KafkaMessage, reason: string): Promise<void> {
    if (this.#dlqProducer === undefined) {
      const producer = this.#client.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        metadataMaxAge: this.#client.metadataMaxAgeMs,
      });
      await producer.connect();
      this.#dlqProducer = producer;
    }
    const maxBytes = await this.#deadLetterLimit();
    const copy = fitDeadLetter(message, maxBytes, {
      streamll_error: reason.slice(0, 1_000),
      streamll_source_topic: topic,
      streamll_source_partition: String(partition),
      streamll_source_offset: message.offset,
    });
    await this.#dlqProducer.send({
      topic: this.#options.deadLetterTopic!,
      acks: -1,
      messages: [copy.message],
    });
    if (copy.truncated) this.#deadLetterTruncated++;
  }

  /** `deadLetterMaxBytes`, or the dead-letter topic's `max.message.bytes` (read once), or the default. */
  #deadLetterLimit(): Promise<number> {
    this.#deadLetterMaxBytes ??= (async () => {
      if (this.#options.deadLetterMaxBytes !== undefined) return this.#options.deadLetterMaxBytes;
      const admin = this.#client.kafka.admin();
      try {
        await admin.connect();
        const { resources } = await admin.describeConfigs({
          includeSynonyms: false,
          resources: [
            {
              type: TOPIC_RESOURCE,
              name: this.#options.deadLetterTopic!,
              configNames: ["max.message.bytes"],
            },
          ],
        });
        const value = Number(
          resources[0]?.configEntries.find((e) => e.configName === "max.message.bytes")?.configValue,
        );
        return Number.isSafeInteger(value) && value > 0 ? value : DEFAULT_DEAD_LETTER_BYTES;
      } catch {
        // A dead-letter topic that does not exist yet (created on first write) has the broker's default.
        return DEFAULT_DEAD_LETTER_BYTES;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    })();
    return this.#deadLetterMaxBytes;
  }

  /**
   * Runs a request to the group coordinator, retrying while the coordinator moves or loads the group
   * (`NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`, `COORDINATOR_NOT_AVAILABLE`), as happens right after a
   * group is created or a broker is busy; other errors are thrown at once.
   */
  async #withCoordinator<T>(request: () => Promise<T>, { moved }: { moved: boolean }): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        if (attempt >= COORDINATOR_ATTEMPTS || !isCoordinatorError(error, moved)) throw error;
        await sleep(Math.min(200 * 2 ** (attempt - 1), 2_000));
      }
    }
  }

  /** End offsets per partition still to be read by this group (partitions already caught up left out). */
  async #endOffsets(): Promise<Map<number, bigint>> {
    const admin = this.#client.kafka.admin();
    try {
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(this.topic);
      const committed = new Map<number, bigint>();
      const fetched = await this.#withCoordinator(
        () => admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] }),
        { moved: true },
      );
      for (const entry of fetched) {
        for (const p of entry.partitions) committed.set(p.partition, BigInt(p.offset));
      }
      const remaining = new Map<number, bigint>();
      for (const entry of ends) {
        const high = BigInt(entry.high);
        const low = BigInt(entry.low);
        const position = committed.get(entry.partition) ?? -1n;
        const start = position >= 0n ? position : this.#options.fromBeginning ? low : high;
        if (start < high) remaining.set(entry.partition, high);
      }
      return remaining;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/** Thrown when `stop()` came while a dead-letter write was being retried; keeps that message uncommitted. */
class StoppedWhileDeadLettering extends Error {
  constructor() {
    super("the reader stopped while retrying a dead-letter write");
    this.name = "StoppedWhileDeadLettering";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === "string" ? Buffer.byteLength(value) : value.length;
}

function headersBytes(headers: IHeaders | undefined): number {
  let total = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) total += Buffer.byteLength(name) + byteLength(item) + 8;
  }
  return total;
}

/**
 * The dead-letter copy of `message`: same key, value and headers plus `own` headers, cut to fit `maxBytes`
 * (original headers dropped if they alone do not fit, key cut to 1 KiB, then the value cut), with marker
 * headers saying what was cut.
 */
export function fitDeadLetter(
  message: Pick<KafkaMessage, "key" | "value" | "headers">,
  maxBytes: number,
  own: Readonly<Record<string, string>>,
): { message: { key: Buffer | null; value: Buffer | null; headers: IHeaders }; truncated: boolean } {
  const markers: Record<string, string> = {};
  let key = message.key;
  if (key !== null && key.length > MAX_DEAD_LETTER_KEY_BYTES) {
    markers.streamll_key_truncated = String(key.length);
    key = key.subarray(0, MAX_DEAD_LETTER_KEY_BYTES);
  }
  // Room for the markers themselves (names and numbers) is part of the overhead budget.
  const budget = maxBytes - DEAD_LETTER_OVERHEAD_BYTES - headersBytes(own) - 128 - byteLength(key);
  let original: IHeaders = message.headers ?? {};
  if (headersBytes(original) > budget / 2) {
    markers.streamll_headers_dropped = String(Object.keys(original).length);
    original = {};
  }
  let value = message.value;
  const room = Math.max(0, budget - headersBytes(original));
  if (value !== null && value.length > room) {
    markers.streamll_truncated = String(value.length);
    value = value.subarray(0, room);
  }
  return {
    message: { key, value, headers: { ...original, ...own, ...markers } },
    truncated: Object.keys(markers).length > 0,
  };
}

/** Thrown inside the iterator's handler when the loop ended first; keeps that event uncommitted. */
class IteratorAbandoned extends Error {
  constructor() {
    super("the async iterator was closed before this event was handled");
    this.name = "IteratorAbandoned";
  }
}
