import type { EncodedEvent, EventFailure, SendContext, SendResult, Sink } from "@streamll/core";
import { abortable, SinkError } from "@streamll/core";
import { ProcessHold, v, validateOptions } from "@streamll/core/internal";
import { type Admin, CompressionTypes, type Message, Partitioners, type Producer } from "kafkajs";
import {
  createKafkaClient,
  DEFAULT_KAFKA_CONNECTION,
  type KafkaClientHandle,
  type KafkaConnectionOptions,
  kafkaConnectionOptionsSchema,
} from "./kafka-connection";
import {
  configurationErrorIn,
  isRejectedRecordError,
  isRetryWithFreshCredentials,
  toSinkError,
} from "./kafka-errors";
import { CompressionCodecs } from "./kafkajs-codecs";

/** The topic events go to unless told otherwise. */
export const DEFAULT_TOPIC = "streamll_events";

/** Message compression. `snappy`, `lz4` and `zstd` need a codec registered in kafkajs's `CompressionCodecs`. */
export type KafkaCompression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

/** Topic creation settings (Admin `CreateTopics`). */
export interface KafkaTopicCreation {
  /** Partitions. Default: the broker's `num.partitions`. */
  numPartitions?: number;
  /** Replicas per partition. Default: the broker's `default.replication.factor`. */
  replicationFactor?: number;
  /** Topic configs, e.g. `{ "retention.ms": "604800000", "cleanup.policy": "delete" }`. */
  configEntries?: Readonly<Record<string, string>>;
}

/** Options of {@link KafkaSink}: a connection plus producer settings. */
export interface KafkaSinkOptions extends KafkaConnectionOptions {
  /** Shown in metrics. Default `kafka:<topic>`. */
  name?: string;
  /** Topic to produce to. Default `streamll_events`. */
  topic?: string;
  /**
   * Create the topic on first connect if it does not exist (`true` uses the broker's defaults). Default
   * `false`: the topic is expected to exist, or the broker creates it on first use when
   * `auto.create.topics.enable` is on.
   */
  createTopic?: boolean | KafkaTopicCreation;
  /**
   * Acknowledgements the broker must collect before a batch counts as delivered: `-1` (all in-sync
   * replicas, default), `1` (the leader only) or `0` (none: nothing is confirmed, events count as delivered
   * once written to the socket).
   */
  acks?: -1 | 0 | 1;
  /**
   * Idempotent producer: the broker discards duplicates of a retried request, so kafkajs's own retries never
   * write an event twice. Needs `acks: -1`. Default `false`.
   */
  idempotent?: boolean;
  /** Default `none`. Event Hubs accepts `none` and `gzip`. */
  compression?: KafkaCompression;
  /** How long the broker may wait for the acknowledgements (`acks`). Default 30 000 ms. */
  ackTimeoutMs?: number;
}

/** Counters of one sink. Use the pipeline's `getMetrics()` for delivery accounting. */
export interface KafkaSinkStats {
  /** Messages the broker acknowledged. */
  readonly acknowledged: number;
  /** `sendBatch` requests made (a pipeline batch larger than `maxMessageBytes` takes several). */
  readonly requests: number;
  /** Events dropped because the broker (or the size check) refused them as too large or invalid. */
  readonly rejected: number;
  /** Successful connects of the producer (the first one included). */
  readonly connects: number;
  readonly connected: boolean;
}

const COMPRESSION: Readonly<Record<KafkaCompression, CompressionTypes>> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** Record-format overhead per message (length, attributes, deltas, varints) plus per header entry. */
const RECORD_OVERHEAD = 40;
const HEADER_OVERHEAD = 6;
/** Record batch header, topic and partition framing per request. */
const REQUEST_OVERHEAD = 256;

/** A valid Kafka topic name: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`. */
export function isValidTopicName(topic: unknown): topic is string {
  return (
    typeof topic === "string" && /^[a-zA-Z0-9._-]{1,249}$/.test(topic) && topic !== "." && topic !== ".."
  );
}

/** A topic name, for the sink's and the reader's options. */
export const topicNameSchema = v.string({
  min: 1,
  max: 249,
  pattern: /^(?!\.{1,2}$)[a-zA-Z0-9._-]+$/,
  expected: "a topic name of 1-249 characters a-z A-Z 0-9 . _ -",
});

/** `KafkaSinkOptions` as the constructor checks them. */
export const kafkaSinkOptionsSchema = kafkaConnectionOptionsSchema
  .extend<KafkaSinkOptions>({
    name: v.string({ min: 1 }).optional(),
    topic: topicNameSchema.optional(),
    createTopic: v
      .union(
        v.boolean(),
        v.object<KafkaTopicCreation>({
          numPartitions: v.integer({ min: 1 }).optional(),
          replicationFactor: v.integer({ min: 1 }).optional(),
          configEntries: v.record(v.string()).optional(),
        }),
      )
      .optional(),
    acks: v.oneOf([-1, 0, 1]).optional(),
    idempotent: v.boolean().optional(),
    compression: v.oneOf(["none", "gzip", "snappy", "lz4", "zstd"]).optional(),
    ackTimeoutMs: v.number({ min: 1 }).optional(),
  })
  .refine((options, report) => {
    if (options.idempotent === true && (options.acks ?? -1) !== -1) {
      report("the idempotent producer needs acks: -1", "acks");
    }
    const compression = options.compression ?? "none";
    if (compression === "none" || compression === "gzip") return;
    // kafkajs ships placeholders that throw for these; a registered plugin replaces them.
    try {
      CompressionCodecs[COMPRESSION[compression] as keyof typeof CompressionCodecs]();
    } catch {
      const type = { snappy: "Snappy", lz4: "LZ4", zstd: "ZSTD" }[compression];
      report(
        `"${compression}" needs a kafkajs codec: register one in CompressionCodecs[CompressionTypes.${type}] before creating the sink`,
        "compression",
      );
    }
  });

/** The three headers every message carries, so consumers can route and filter without parsing JSON. */
export function eventHeaders(encoded: EncodedEvent): Record<string, string> {
  return {
    schema_version: encoded.schema_version,
    event_type: encoded.event_type,
    module_name: encoded.module_name,
  };
}

/** The Kafka message for one encoded event: key execution_id, value the wire JSON, the event time. */
export function toKafkaMessage(encoded: EncodedEvent): Message {
  const message: Message = {
    key: encoded.execution_id,
    value: encoded.json,
    headers: eventHeaders(encoded),
  };
  const time = Date.parse(encoded.timestamp);
  if (Number.isFinite(time)) message.timestamp = String(time);
  return message;
}

/** Bytes a message adds to a request, an upper estimate of the record format's size. */
export function estimateRecordBytes(encoded: EncodedEvent): number {
  const event = encoded;
  let bytes = RECORD_OVERHEAD + encoded.bytes + Buffer.byteLength(event.execution_id, "utf8");
  bytes += 3 * HEADER_OVERHEAD + "schema_versionevent_typemodule_name".length;
  bytes += Buffer.byteLength(event.schema_version, "utf8");
  bytes += Buffer.byteLength(event.event_type, "utf8");
  bytes += Buffer.byteLength(event.module_name, "utf8");
  return bytes;
}

/** One `sendBatch` worth of messages and the batch indices they came from. */
interface Chunk {
  readonly indices: number[];
  readonly messages: Message[];
}

/** Longest wait for the broker to close a connection whose handshake it refused, before connecting again. */
const FRESH_RETRY_SETTLE_MS = 2_000;

/** How long `close()` lets kafkajs disconnect gracefully before destroying the client's sockets. */
const CLOSE_GRACE_MS = 500;

/**
 * Produces streamll events to a Kafka topic with kafkajs.
 *
 * - Message key `execution_id` (every event of one execution lands in one partition, in order), value the
 *   wire JSON, headers `schema_version`, `event_type`, `module_name`, timestamp the event's.
 * - Each pipeline batch goes out as one `producer.sendBatch` (several when it exceeds `maxMessageBytes`)
 *   and counts as delivered only once the broker acknowledged it (`acks: -1` by default).
 * - An event larger than `maxMessageBytes` is rejected before sending; if the broker still refuses a
 *   request as too large or invalid, the events of that request are re-sent one at a time so only the
 *   offending ones are dropped (`rejected`). Credentials the broker refuses (a static password at once, a
 *   provider's token also after one fresh fetch) fail with a `ConfigurationError`: the pipeline marks the
 *   sink failed and reports it once. Everything else fails retriably and feeds the pipeline's retry and
 *   circuit breaker.
 * - Connects lazily on the first send; a `send` never outlives the pipeline's send timeout.
 */
export class KafkaSink implements Sink {
  readonly name: string;
  /** The topic events are produced to. */
  readonly topic: string;
  readonly #client: KafkaClientHandle;
  readonly #acks: -1 | 0 | 1;
  readonly #idempotent: boolean;
  readonly #compression: CompressionTypes;
  readonly #ackTimeoutMs: number;
  readonly #createTopic: KafkaTopicCreation | undefined;
  readonly #maxMessageBytes: number;
  readonly #retry: { retries: number; initialRetryTime: number; maxRetryTime: number };
  /**
   * The client never holds the process (it is created with `keepProcessAlive: false`); a send or close in
   * flight does, so whoever awaits one gets its answer even when it is a script's only work.
   */
  readonly #hold = new ProcessHold();
  #producer: Producer | undefined;
  #ready: Promise<Producer> | undefined;
  #topicReady = false;
  #connected = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #acknowledged = 0;
  #requests = 0;
  #rejected = 0;
  #connects = 0;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: KafkaSinkOptions) {
    validateOptions("KafkaSink", kafkaSinkOptionsSchema, options);
    const topic = options.topic ?? DEFAULT_TOPIC;
    const acks = options.acks ?? -1;
    const compression = options.compression ?? "none";
    const createTopic = options.createTopic;

    this.topic = topic;
    this.name = options.name ?? `kafka:${topic}`;
    this.#acks = acks;
    this.#idempotent = options.idempotent ?? false;
    this.#compression = COMPRESSION[compression];
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
    this.#createTopic = createTopic === true ? {} : createTopic === false ? undefined : createTopic;
    // A sink's connections must not keep a finished program alive: core flushes pending events on
    // `beforeExit`, and its flush deadline holds the process while that delivery runs.
    this.#client = createKafkaClient(options, { keepProcessAlive: false });
    this.#maxMessageBytes = this.#client.maxMessageBytes;
    const d = DEFAULT_KAFKA_CONNECTION;
    this.#retry = {
      retries: options.retry?.retries ?? d.retry.retries,
      initialRetryTime: options.retry?.initialRetryTimeMs ?? d.retry.initialRetryTimeMs,
      maxRetryTime: options.retry?.maxRetryTimeMs ?? d.retry.maxRetryTimeMs,
    };
  }

  /** A snapshot of this sink's counters. */
  getStats(): KafkaSinkStats {
    return {
      acknowledged: this.#acknowledged,
      requests: this.#requests,
      rejected: this.#rejected,
      connects: this.#connects,
      connected: this.#connected,
    };
  }

  async send(batch: readonly EncodedEvent[], context: SendContext): Promise<SendResult | undefined> {
    if (this.#closed) {
      throw new SinkError("the Kafka sink is closed", { retriable: false, code: "SINK_CLOSED" });
    }
    if (batch.length === 0) return undefined;
    return this.#hold.run(() => this.#send(batch, context));
  }

  async #send(batch: readonly EncodedEvent[], context: SendContext): Promise<SendResult | undefined> {
    const { signal } = context;
    const timeout = (): SinkError => {
      const reason: unknown = signal.reason;
      return reason instanceof SinkError
        ? reason
        : new SinkError("Kafka send aborted", { retriable: true, code: "SEND_TIMEOUT" });
    };
    const producer = await abortable(this.#connect(), signal, timeout);

    const failures: EventFailure[] = [];
    const chunks = this.#chunk(batch, failures);
    let delivered = 0;
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c]!;
      try {
        await abortable(this.#sendMessages(producer, chunk.messages), signal, timeout);
        delivered += chunk.indices.length;
      } catch (error) {
        if (isRejectedRecordError(error) && !signal.aborted) {
          delivered += await this.#isolate(producer, chunk, failures, signal, timeout);
          continue;
        }
        // Credentials refused for good on a new broker connection: the sink cannot work, whatever got through.
        const permanent = configurationErrorIn(error);
        if (permanent !== undefined) throw permanent;
        const failure = toSinkError(error, this.#client.scrubber, `producing to ${this.topic} failed`);
        // Nothing got through: the whole batch failed, which the pipeline counts toward the breaker.
        if (delivered === 0 && failures.length === 0) throw failure;
        for (let rest = c; rest < chunks.length; rest++) {
          for (const index of chunks[rest]!.indices)
            failures.push({ index, error: failure, retriable: true });
        }
        break;
      }
    }
    return failures.length === 0 ? undefined : { failures };
  }

  async close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = this.#hold.run(async () => {
        const disconnected = (async () => {
          await this.#ready?.catch(() => undefined);
          await this.#producer?.disconnect();
        })().catch(() => {
          // Disconnecting from an unreachable broker has nothing left to release.
        });
        // The pipeline drained before closing, so nothing useful is in flight. kafkajs waits for requests it
        // still has out (a connection attempt to a broker that never answers: its whole requestTimeout), so
        // it gets a short grace, then the client's sockets are destroyed: nothing keeps the host alive.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          disconnected,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, CLOSE_GRACE_MS);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        this.#connected = false;
        this.#client.close();
      });
    }
    return this.#closing;
  }

  /** Splits a batch into requests of at most `maxMessageBytes`, rejecting events too large on their own. */
  #chunk(batch: readonly EncodedEvent[], failures: EventFailure[]): Chunk[] {
    const limit = this.#maxMessageBytes - REQUEST_OVERHEAD - this.topic.length;
    const chunks: Chunk[] = [];
    let current: Chunk = { indices: [], messages: [] };
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) {
      const encoded = batch[i]!;
      const size = estimateRecordBytes(encoded);
      if (size > limit) {
        this.#rejected++;
        failures.push({
          index: i,
          retriable: false,
          error: new SinkError(
            `event ${encoded.event_id} is ${size} bytes as a Kafka record, more than maxMessageBytes (${this.#maxMessageBytes})`,
            { retriable: false },
          ),
        });
        continue;
      }
      if (bytes + size > limit && current.messages.length > 0) {
        chunks.push(current);
        current = { indices: [], messages: [] };
        bytes = 0;
      }
      current.indices.push(i);
      current.messages.push(toKafkaMessage(encoded));
      bytes += size;
    }
    if (current.messages.length > 0) chunks.push(current);
    return chunks;
  }

  /**
   * The broker refused a request as too large or invalid. Kafka applies such errors per partition and
   * kafkajs reports only the first, so the events are sent again one per request, in order, to find the
   * offending ones. Events of other partitions in the refused request may already have been written and are
   * then written again (at-least-once; `event_id` identifies duplicates).
   * @returns how many events got through.
   */
  async #isolate(
    producer: Producer,
    chunk: Chunk,
    failures: EventFailure[],
    signal: AbortSignal,
    timeout: () => SinkError,
  ): Promise<number> {
    let delivered = 0;
    for (let k = 0; k < chunk.indices.length; k++) {
      const index = chunk.indices[k]!;
      try {
        await abortable(this.#sendMessages(producer, [chunk.messages[k]!]), signal, timeout);
        delivered++;
      } catch (error) {
        const permanent = configurationErrorIn(error);
        if (permanent !== undefined) throw permanent;
        const failure = toSinkError(error, this.#client.scrubber, `producing to ${this.topic} failed`);
        if (!failure.retriable) {
          this.#rejected++;
          failures.push({
            index,
            error: failure,
            retriable: false,
          });
          continue;
        }
        for (let rest = k; rest < chunk.indices.length; rest++) {
          failures.push({ index: chunk.indices[rest]!, error: failure, retriable: true });
        }
        break;
      }
    }
    return delivered;
  }

  async #sendMessages(producer: Producer, messages: Message[]): Promise<void> {
    this.#requests++;
    await producer.sendBatch({
      topicMessages: [{ topic: this.topic, messages }],
      acks: this.#acks,
      timeout: this.#ackTimeoutMs,
      compression: this.#compression,
    });
    this.#acknowledged += messages.length;
  }

  /** Connects once; a failed attempt is forgotten so the next send tries again. */
  #connect(): Promise<Producer> {
    if (this.#ready !== undefined) return this.#ready;
    const attempt = (async (): Promise<Producer> => {
      if (this.#producer === undefined) {
        const producer = this.#client.kafka.producer({
          createPartitioner: Partitioners.DefaultPartitioner,
          metadataMaxAge: this.#client.metadataMaxAgeMs,
          allowAutoTopicCreation: true,
          idempotent: this.#idempotent,
          retry: this.#retry,
          ...(this.#idempotent ? { maxInFlightRequests: 1 } : {}),
        });
        producer.on(producer.events.DISCONNECT, () => {
          this.#connected = false;
        });
        this.#producer = producer;
      }
      const producer = this.#producer;
      for (let attempt = 1; ; attempt++) {
        try {
          await producer.connect();
          if (this.#createTopic !== undefined && !this.#topicReady) await this.#ensureTopic();
          break;
        } catch (error) {
          await producer.disconnect().catch(() => undefined);
          // The broker refused a provider's token: once more at once, with a freshly fetched token, whose
          // refusal is then permanent (a ConfigurationError) instead of waiting for the pipeline's retry.
          if (attempt === 1 && !this.#closed && isRetryWithFreshCredentials(error)) {
            await this.#client.settled(FRESH_RETRY_SETTLE_MS);
            continue;
          }
          throw (
            configurationErrorIn(error) ??
            this.#client.brokersFailure() ??
            toSinkError(error, this.#client.scrubber, `connecting to Kafka for ${this.topic} failed`)
          );
        }
      }
      this.#connected = true;
      this.#connects++;
      return producer;
    })();
    this.#ready = attempt;
    attempt.catch(() => {
      if (this.#ready === attempt) this.#ready = undefined;
    });
    return attempt;
  }

  async #ensureTopic(): Promise<void> {
    const settings = this.#createTopic ?? {};
    const admin: Admin = this.#client.kafka.admin();
    try {
      await admin.connect();
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: this.topic,
            ...(settings.numPartitions === undefined ? {} : { numPartitions: settings.numPartitions }),
            ...(settings.replicationFactor === undefined
              ? {}
              : { replicationFactor: settings.replicationFactor }),
            ...(settings.configEntries === undefined
              ? {}
              : {
                  configEntries: Object.entries(settings.configEntries).map(([name, value]) => ({
                    name,
                    value,
                  })),
                }),
          },
        ],
      });
      this.#topicReady = true;
    } catch (error) {
      throw (
        configurationErrorIn(error) ??
        toSinkError(error, this.#client.scrubber, `creating topic ${this.topic} failed`)
      );
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
