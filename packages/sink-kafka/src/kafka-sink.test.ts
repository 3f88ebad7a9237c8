import {
  createId,
  DeliveryPipeline,
  decodeEvent,
  encodeEvent,
  SinkError,
  type StreamllEvent,
} from "@streamll/core";
import { Kafka, logLevel } from "kafkajs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { kafkaPlaintextConfig, requireBroker, uniqueTopic } from "../test/broker";
import { KafkaSink, type KafkaSinkOptions } from "./kafka-sink";
import {
  createTopic,
  encodeAll,
  makeEvent,
  readDistinctEvents,
  readTopic,
  recordingLogger,
} from "./test-support/kafka-test-support";

const connection = kafkaPlaintextConfig();
const cleanups: (() => Promise<unknown>)[] = [];

function sink(options: Partial<KafkaSinkOptions> = {}): KafkaSink {
  const created = new KafkaSink({ brokers: connection.brokers, logger: recordingLogger(), ...options });
  cleanups.push(() => created.close());
  return created;
}

function pipeline(
  target: KafkaSink,
  options: ConstructorParameters<typeof DeliveryPipeline>[1] = {},
): DeliveryPipeline {
  const created = new DeliveryPipeline(
    target,
    { flushIntervalMs: 20, ...options },
    { logger: recordingLogger() },
  );
  cleanups.push(() => created.shutdown(5_000));
  return created;
}

function signal(ms = 20_000): { signal: AbortSignal; attempt: number } {
  return { signal: AbortSignal.timeout(ms), attempt: 1 };
}

/** One event of every built-in type plus custom ones, with data JSON cannot carry as is. */
function everyEventType(): StreamllEvent[] {
  const execution_id = createId();
  const root = createId();
  const child = createId();
  const circular: Record<string, unknown> = { name: "loop" };
  circular.self = circular;
  const base = { execution_id, module_name: "QA", method_name: "forward" };
  return [
    makeEvent({
      ...base,
      span_id: root,
      event_type: "start",
      data: { inputs: { question: "Wie spät ist es? 🕰️" } },
    }),
    makeEvent({
      ...base,
      span_id: child,
      parent_span_id: root,
      module_name: "Retriever",
      event_type: "start",
    }),
    makeEvent({
      ...base,
      span_id: child,
      parent_span_id: root,
      module_name: "Retriever",
      event_type: "retrieved",
      data: {
        big: 10n as unknown as number,
        circular: circular as never,
        when: new Date(0) as unknown as string,
        map: new Map([["k", 1]]) as never,
        bytes: new Uint8Array([1, 2, 3]) as never,
        lone: "\ud800 surrogate",
        nan: Number.NaN,
        missing: undefined as never,
        error: new TypeError("boom") as never,
        fn: (() => 1) as never,
      },
    }),
    makeEvent({
      ...base,
      span_id: child,
      parent_span_id: root,
      module_name: "Retriever",
      event_type: "end",
      data: { duration_ms: 12.5, outputs: ["doc-1", "doc-2"] },
    }),
    makeEvent({
      ...base,
      span_id: root,
      event_type: "token",
      data: { field: "answer", token: "Es ist ", token_index: 0 },
    }),
    makeEvent({
      ...base,
      span_id: root,
      event_type: "token",
      data: { field: "answer", token: "\u00a0zehn.", token_index: 1 },
    }),
    makeEvent({
      ...base,
      span_id: root,
      event_type: "version",
      module_version: "v2",
      code_signature: "abc123",
    }),
    makeEvent({
      ...base,
      span_id: root,
      event_type: "error",
      data: { error_type: "RateLimitError", error_message: "429", duration_ms: 40, error_code: 429 },
    }),
    makeEvent({ ...base, span_id: root, event_type: "end", data: { duration_ms: 41.25 } }),
  ];
}

beforeAll(async () => {
  await requireBroker(["plaintext"]);
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

describe("KafkaSink on the harness broker", () => {
  it("round-trips every event type, byte for byte, with key, headers and timestamp", async () => {
    const topic = uniqueTopic("sink-roundtrip");
    const events = everyEventType();
    const encoded = encodeAll(events);
    const target = sink({ topic });
    const p = pipeline(target);
    for (const event of encoded) p.enqueue(event);
    expect(await p.flush(20_000)).toBe(true);
    expect(p.getMetrics()).toMatchObject({ emitted: 9, delivered: 9, dropped: 0 });

    const read = await readDistinctEvents(connection, topic, encoded.length);
    expect(read.map((m) => m.value)).toEqual(encoded.map((e) => e.json));
    for (const [i, message] of read.entries()) {
      const original = encoded[i]!;
      expect(message.key).toBe(original.execution_id);
      expect(message.headers).toEqual({
        schema_version: "1.0",
        event_type: original.event_type,
        module_name: original.module_name,
      });
      expect(message.timestamp).toBe(String(Date.parse(original.timestamp)));
      const decoded = decodeEvent(message.value);
      expect(decoded.ok).toBe(true);
      if (decoded.ok) expect(decoded.event).toEqual(JSON.parse(original.json));
    }
    const unsafe = JSON.parse(read[2]!.value) as { data: Record<string, unknown> };
    expect(unsafe.data.big).toBe("10n");
    expect(unsafe.data.lone).toBe("\ufffd surrogate");
    expect((unsafe.data.circular as Record<string, unknown>).self).toBe("[Circular]");
    expect(target.getStats()).toMatchObject({ acknowledged: 9, requests: 1, rejected: 0, connected: true });
  });

  it("keeps the events of each execution in one partition, in order, across partitions", async () => {
    const topic = uniqueTopic("sink-order");
    const target = sink({ topic, createTopic: { numPartitions: 6 } });
    const p = pipeline(target, { maxBatchSize: 37 });
    const executions = Array.from({ length: 24 }, () => createId());
    for (let seq = 0; seq < 20; seq++) {
      for (const execution_id of executions) {
        p.enqueue(encodeEvent(makeEvent({ execution_id, event_type: "step", data: { seq } })));
      }
    }
    expect(await p.flush(30_000)).toBe(true);
    const total = executions.length * 20;
    const idOf = (value: string): string => (JSON.parse(value) as { event_id: string }).event_id;
    const read = await readTopic(connection, topic, (messages) => {
      return new Set(messages.map((m) => idOf(m.value))).size >= total;
    });
    const partitions = new Map<string, Set<number>>();
    const sequences = new Map<string, number[]>();
    // At-least-once: a batch retried after a timeout is written again. Its first copy is where the event was
    // delivered, so order is checked on first occurrences in partition (offset) order.
    const firstSeen = new Set<string>();
    for (const message of read.sort(
      (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
    )) {
      const key = message.key!;
      if (!partitions.has(key)) partitions.set(key, new Set());
      partitions.get(key)!.add(message.partition);
      const id = idOf(message.value);
      if (firstSeen.has(id)) continue;
      firstSeen.add(id);
      const seq = (JSON.parse(message.value) as { data: { seq: number } }).data.seq;
      sequences.set(key, [...(sequences.get(key) ?? []), seq]);
    }
    expect(firstSeen.size).toBe(total);
    const used = new Set(read.map((m) => m.partition));
    expect(used.size).toBeGreaterThan(1);
    for (const execution_id of executions) {
      expect(partitions.get(execution_id)?.size).toBe(1);
      expect(sequences.get(execution_id)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    }
  });

  it("creates the topic with the requested partitions and configs (admin API on this Kafka version)", async () => {
    const topic = uniqueTopic("sink-create");
    const target = sink({
      topic,
      createTopic: { numPartitions: 4, replicationFactor: 1, configEntries: { "retention.ms": "3600000" } },
    });
    await target.send(encodeAll([makeEvent()]), signal());
    const kafka = new Kafka({ ...connection, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]?.partitions).toHaveLength(4);
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: topic, configNames: ["retention.ms"] }],
      });
      expect(configs.resources[0]?.configEntries[0]?.configValue).toBe("3600000");
    } finally {
      await admin.disconnect();
    }
  });

  it("rejects an event larger than maxMessageBytes by index and delivers the rest of the batch", async () => {
    const topic = uniqueTopic("sink-too-large");
    const target = sink({ topic, maxMessageBytes: 20_000 });
    const p = pipeline(target);
    const small = encodeAll([makeEvent({ data: { n: 1 } }), makeEvent({ data: { n: 3 } })]);
    const big = encodeEvent(makeEvent({ data: { a: "x".repeat(15_000), b: "x".repeat(15_000), n: 2 } }));
    expect(big.bytes).toBeGreaterThan(20_000);
    p.enqueue(small[0]!);
    p.enqueue(big);
    p.enqueue(small[1]!);
    expect(await p.flush(20_000)).toBe(true);
    const metrics = p.getMetrics();
    expect(metrics).toMatchObject({ emitted: 3, delivered: 2, dropped: 1, pending: 0 });
    expect(metrics.droppedByReason.rejected).toBe(1);
    expect(metrics.lastError?.message).toMatch(/more than maxMessageBytes/);
    const read = await readDistinctEvents(connection, topic, 2);
    expect(read.map((m) => (JSON.parse(m.value) as { data: { n: number } }).data.n).sort()).toEqual([1, 3]);
    expect(target.getStats().rejected).toBe(1);
  });

  it("isolates events the broker refuses as too large, dropping only those", async () => {
    const topic = uniqueTopic("sink-broker-too-large");
    // The topic accepts at most 8 KB per record batch; the sink believes 1 MB is fine.
    await createTopic(connection, topic, 2, [{ name: "max.message.bytes", value: "8000" }]);
    const target = sink({ topic });
    const events = [
      makeEvent({ data: { n: 1 } }),
      makeEvent({ data: { n: 2, blob: "y".repeat(12_000) } }),
      makeEvent({ data: { n: 3 } }),
      makeEvent({ data: { n: 4 } }),
    ];
    const result = await target.send(encodeAll(events), signal());
    expect(result?.failures.map((f) => [f.index, f.retriable])).toEqual([[1, false]]);
    const failure = result?.failures[0]?.error;
    expect(failure).toBeInstanceOf(SinkError);
    expect((failure as SinkError).message).toMatch(/MESSAGE_TOO_LARGE|larger than the max message size/);
    // The three small events arrive (the refused request may have written some already: at-least-once).
    const nOf = (value: string): number => (JSON.parse(value) as { data: { n: number } }).data.n;
    const read = await readTopic(
      connection,
      topic,
      (messages) => new Set(messages.map((m) => nOf(m.value))).size >= 3,
    );
    expect(new Set(read.map((m) => nOf(m.value)))).toEqual(new Set([1, 3, 4]));
  });

  it("splits a batch larger than maxMessageBytes into several requests, in order", async () => {
    const topic = uniqueTopic("sink-split");
    await createTopic(connection, topic, 1);
    const target = sink({ topic, maxMessageBytes: 8_000 });
    const events = Array.from({ length: 40 }, (_, n) => makeEvent({ data: { n, pad: "p".repeat(500) } }));
    expect(await target.send(encodeAll(events), signal())).toBeUndefined();
    expect(target.getStats().requests).toBeGreaterThan(2);
    const read = await readDistinctEvents(connection, topic, 40);
    expect(read.map((m) => (JSON.parse(m.value) as { data: { n: number } }).data.n)).toEqual(
      Array.from({ length: 40 }, (_, n) => n),
    );
  });

  it("produces gzip-compressed batches and with the idempotent producer", async () => {
    const topic = uniqueTopic("sink-gzip");
    const gzip = sink({ topic, compression: "gzip" });
    const idempotent = sink({ topic, idempotent: true });
    const first = encodeAll([makeEvent({ data: { text: "a".repeat(2_000) } })]);
    const second = encodeAll([makeEvent({ data: { text: "b" } })]);
    await gzip.send(first, signal());
    await idempotent.send(second, signal());
    const read = await readDistinctEvents(connection, topic, 2);
    expect(read.map((m) => m.value).sort()).toEqual([first[0]!.json, second[0]!.json].sort());
  });

  it("fails a send to an unreachable broker retriably, without blocking enqueue", async () => {
    const logger = recordingLogger();
    const target = new KafkaSink({
      brokers: ["127.0.0.1:1"],
      topic: uniqueTopic("sink-dead"),
      connectionTimeoutMs: 500,
      logger,
    });
    cleanups.push(() => target.close());
    await expect(target.send(encodeAll([makeEvent()]), signal(5_000))).rejects.toMatchObject({
      name: "SinkError",
      retriable: true,
    });

    const p = new DeliveryPipeline(
      target,
      { sendTimeoutMs: 1_000, circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 60_000 } },
      { logger: recordingLogger() },
    );
    cleanups.push(() => p.shutdown(100));
    for (let i = 0; i < 200; i++) p.enqueue(encodeEvent(makeEvent()));
    // enqueue is synchronous: every event is accepted before any network I/O could have happened.
    expect(p.getMetrics()).toMatchObject({ emitted: 200, delivered: 0, dropped: 0, pending: 200 });
    expect(await p.flush(4_000)).toBe(false);
    const metrics = p.getMetrics();
    expect(metrics.delivered).toBe(0);
    expect(metrics.dropped).toBe(0);
    expect(metrics.pending).toBe(200);
    expect(metrics.batchesFailed).toBeGreaterThanOrEqual(1);
    expect(metrics.breakerState).toBe("open");
  });

  it("aborts a send when the pipeline's signal fires", async () => {
    const target = sink({ brokers: ["127.0.0.1:1"], connectionTimeoutMs: 5_000, retry: { retries: 5 } });
    const controller = new AbortController();
    const pending = target.send(encodeAll([makeEvent()]), { signal: controller.signal, attempt: 1 });
    setTimeout(
      () =>
        controller.abort(
          new SinkError("send timed out after 50 ms", { retriable: true, code: "SEND_TIMEOUT" }),
        ),
      50,
    );
    await expect(pending).rejects.toMatchObject({ code: "SEND_TIMEOUT", retriable: true });
  });

  it("connects lazily, disconnects on close and refuses sends afterwards", async () => {
    const topic = uniqueTopic("sink-close");
    const target = sink({ topic });
    expect(target.getStats()).toMatchObject({ connected: false, connects: 0 });
    await target.send(encodeAll([makeEvent()]), signal());
    expect(target.getStats()).toMatchObject({ connected: true, connects: 1 });
    await target.close();
    await target.close();
    expect(target.getStats().connected).toBe(false);
    await expect(target.send(encodeAll([makeEvent()]), signal())).rejects.toMatchObject({
      code: "SINK_CLOSED",
      retriable: false,
    });
  });
});

describe("topic creation failures", () => {
  it("fail the send retriably with a message naming the topic and the broker's reason", async () => {
    const topic = uniqueTopic("sink-create-fails");
    const target = sink({ topic, createTopic: { numPartitions: 1, replicationFactor: 3 } });
    const error = (await target
      .send(encodeAll([makeEvent()]), signal())
      .catch((e: unknown) => e)) as SinkError;
    expect(error).toBeInstanceOf(SinkError);
    expect(error.retriable).toBe(true);
    expect(error.message).toMatch(new RegExp(`creating topic ${topic} failed`));
    expect(error.message).toMatch(/INVALID_REPLICATION_FACTOR|[Rr]eplication factor/);
  });
});
