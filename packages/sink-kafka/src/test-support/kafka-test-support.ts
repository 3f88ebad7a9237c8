import { createId, type EncodedEvent, encodeEvent, SCHEMA_VERSION, type StreamllEvent } from "@streamll/core";
import { Kafka, logLevel } from "kafkajs";
import type { KafkaTestConnection } from "../../test/broker";
import type { KafkaLogger } from "../kafka-logger";

/** A complete, valid event; fields can be overridden. */
export function makeEvent(overrides: Partial<StreamllEvent> = {}): StreamllEvent {
  return {
    schema_version: SCHEMA_VERSION,
    event_id: createId(),
    execution_id: createId(),
    span_id: createId(),
    parent_span_id: null,
    timestamp: new Date().toISOString(),
    module_name: "RAGPipeline",
    method_name: "forward",
    event_type: "start",
    operation: null,
    data: {},
    tags: { env: "test" },
    module_version: null,
    code_signature: null,
    git_commit: null,
    ...overrides,
  };
}

export function encodeAll(events: readonly StreamllEvent[]): EncodedEvent[] {
  return events.map((event) => encodeEvent(event));
}

/** A message as read back by an independent kafkajs consumer. */
export interface ReadMessage {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string;
  readonly timestamp: string;
  readonly headers: Record<string, string>;
}

/**
 * Reads a topic from the beginning with a fresh consumer group until `count` messages arrived, or until
 * `count(messages)` is true (or the timeout passes, which fails with what was read so far).
 */
export async function readTopic(
  connection: KafkaTestConnection,
  topic: string,
  count: number | ((messages: readonly ReadMessage[]) => boolean),
  timeoutMs = 20_000,
): Promise<ReadMessage[]> {
  const done =
    typeof count === "number" ? (messages: readonly ReadMessage[]) => messages.length >= count : count;
  const kafka = new Kafka({ clientId: "streamll-test-reader", logLevel: logLevel.NOTHING, ...connection });
  const consumer = kafka.consumer({ groupId: `test-${createId()}` });
  const messages: ReadMessage[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read only ${messages.length} messages from ${topic} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      if (done(messages)) {
        clearTimeout(timer);
        resolve();
        return;
      }
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(message.headers ?? {})) {
              const first = Array.isArray(value) ? value[0] : value;
              if (first !== undefined) headers[name] = first.toString();
            }
            messages.push({
              partition,
              offset: message.offset,
              key: message.key?.toString("utf8") ?? null,
              value: message.value?.toString("utf8") ?? "",
              timestamp: message.timestamp,
              headers,
            });
            if (done(messages)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    return messages;
  } finally {
    await consumer.disconnect();
  }
}

/**
 * Reads until `count` distinct events (by `event_id`) arrived and returns each event's first copy, in partition
 * and offset order. Delivery is at-least-once: a batch retried after a timeout may be on the topic twice, and
 * its first copy is where the event was delivered.
 */
export async function readDistinctEvents(
  connection: KafkaTestConnection,
  topic: string,
  count: number,
  timeoutMs = 20_000,
): Promise<ReadMessage[]> {
  const idOf = (message: ReadMessage): string => (JSON.parse(message.value) as { event_id: string }).event_id;
  const read = await readTopic(
    connection,
    topic,
    (messages) => new Set(messages.map(idOf)).size >= count,
    timeoutMs,
  );
  const seen = new Set<string>();
  const first: ReadMessage[] = [];
  for (const message of read.sort(
    (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
  )) {
    const id = idOf(message);
    if (seen.has(id)) continue;
    seen.add(id);
    first.push(message);
  }
  return first;
}

/** Produces raw messages (for malformed-input tests) with an independent kafkajs producer. */
export async function produceRaw(
  connection: KafkaTestConnection,
  topic: string,
  messages: { key?: string; value: string | Buffer | null }[],
): Promise<void> {
  const kafka = new Kafka({ clientId: "streamll-test-writer", logLevel: logLevel.NOTHING, ...connection });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

/** Creates a topic with `partitions` partitions and waits for its leaders. */
export async function createTopic(
  connection: KafkaTestConnection,
  topic: string,
  partitions = 1,
  configEntries: { name: string; value: string }[] = [],
): Promise<void> {
  const kafka = new Kafka({ clientId: "streamll-test-admin", logLevel: logLevel.NOTHING, ...connection });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries }],
    });
  } finally {
    await admin.disconnect();
  }
}

/** A logger that records what it is given, for assertions (and keeps test output quiet). */
export function recordingLogger(): KafkaLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  const record = (message: string, context?: object): void => {
    lines.push(context === undefined ? message : `${message} ${JSON.stringify(context)}`);
  };
  return { lines, warn: record, error: record };
}

/** Resolves when `predicate` holds, polling every 50 ms; rejects after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
