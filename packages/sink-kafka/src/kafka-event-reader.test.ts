import { createId, type StreamllEvent } from "@streamll/core";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startSilentPeer } from "../../../test-support/shutdown-exit.mjs";
import {
  KAFKA_SASL_SSL_BROKERS,
  kafkaPlaintextConfig,
  readKafkaCa,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import {
  KafkaEventReader,
  type KafkaEventReaderOptions,
  type KafkaEventRecord,
  KafkaReaderError,
} from "./kafka-event-reader";
import { KafkaSink } from "./kafka-sink";
import { type DemoTraffic, endDemoTraffic, runDemoTraffic } from "./test-support/demo-program";
import {
  createTopic,
  encodeAll,
  makeEvent,
  produceRaw,
  readTopic,
  recordingLogger,
  waitUntil,
} from "./test-support/kafka-test-support";

const connection = kafkaPlaintextConfig();
const cleanups: (() => Promise<unknown>)[] = [];

function reader(options: Partial<KafkaEventReaderOptions> & { topic: string }): KafkaEventReader {
  const created = new KafkaEventReader({
    brokers: connection.brokers,
    groupId: `reader-${createId()}`,
    fromBeginning: true,
    logger: recordingLogger(),
    ...options,
  });
  cleanups.push(() => created.close());
  return created;
}

async function produce(topic: string, events: StreamllEvent[]): Promise<void> {
  const sink = new KafkaSink({ brokers: connection.brokers, topic, logger: recordingLogger() });
  try {
    const result = await sink.send(encodeAll(events), { signal: AbortSignal.timeout(15_000), attempt: 1 });
    expect(result).toBeUndefined();
  } finally {
    await sink.close();
  }
}

const seqOf = (record: KafkaEventRecord): unknown => record.event.data.seq;

beforeAll(async () => {
  await requireBroker(["plaintext"]);
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

describe("KafkaEventReader", () => {
  it("validates every message: handles events, counts and skips malformed ones, never crashes", async () => {
    const topic = uniqueTopic("reader-malformed");
    await createTopic(connection, topic, 1);
    const execution_id = createId();
    await produce(topic, [
      makeEvent({ execution_id, data: { seq: 0 } }),
      makeEvent({ execution_id, data: { seq: 1 } }),
    ]);
    await produceRaw(connection, topic, [
      { key: "x", value: "{not json" },
      { key: "x", value: JSON.stringify({ schema_version: "1.0", event_id: "short" }) },
      { key: "x", value: JSON.stringify({ ...makeEvent(), schema_version: "2.0" }) },
      { key: "x", value: null },
      { key: "x", value: Buffer.from([0xff, 0xfe, 0x00]) },
    ]);
    await produce(topic, [makeEvent({ execution_id, data: { seq: 2 } })]);
    const handled: KafkaEventRecord[] = [];
    const r = reader({ topic, stopAtEnd: true });
    await r.run((record) => {
      handled.push(record);
    });
    expect(handled.map(seqOf)).toEqual([0, 1, 2]);
    expect(handled[0]).toMatchObject({
      topic,
      partition: 0,
      offset: "0",
      key: execution_id,
      headers: { schema_version: "1.0", event_type: "start", module_name: "RAGPipeline" },
    });
    expect(r.getStats()).toEqual({
      received: 8,
      handled: 3,
      malformed: 5,
      deadLettered: 0,
      deadLetterTruncated: 0,
      deadLetterFailed: 0,
    });
  });

  it("sends malformed messages to the dead-letter topic with the reason and source", async () => {
    const topic = uniqueTopic("reader-dlq");
    const deadLetterTopic = `${topic}-dlq`;
    await createTopic(connection, topic, 1);
    await produceRaw(connection, topic, [{ key: "k1", value: '{"schema_version":"1.0"}' }]);
    await produce(topic, [makeEvent({ data: { seq: 7 } })]);
    const handled: unknown[] = [];
    const r = reader({ topic, stopAtEnd: true, deadLetterTopic });
    await r.run((record) => {
      handled.push(seqOf(record));
    });
    expect(handled).toEqual([7]);
    expect(r.getStats()).toMatchObject({ malformed: 1, deadLettered: 1 });
    const [dead] = await readTopic(connection, deadLetterTopic, 1);
    expect(dead).toMatchObject({
      key: "k1",
      value: '{"schema_version":"1.0"}',
      headers: { streamll_source_topic: topic, streamll_source_partition: "0", streamll_source_offset: "0" },
    });
    expect(dead?.headers.streamll_error).toMatch(/event_id/);
  });

  it("cuts a malformed message to the dead-letter topic's max.message.bytes, with a marker header", async () => {
    const topic = uniqueTopic("reader-dlq-big");
    const deadLetterTopic = `${topic}-dlq`;
    await createTopic(connection, topic, 1);
    await createTopic(connection, deadLetterTopic, 1, [{ name: "max.message.bytes", value: "8192" }]);
    const secret = "sk-live PLANTED/0c4e8a2f6b";
    // 60 KB: fits the source topic (1 MB), not the dead-letter topic; a planted secret in its tag keys.
    const poison = JSON.stringify({
      ...makeEvent(),
      tags: { [secret]: 1 },
      data: { pad: "x".repeat(60_000) },
    });
    await produceRaw(connection, topic, [{ key: "big", value: poison }]);
    await produce(topic, [makeEvent({ data: { seq: 1 } })]);
    const handled: unknown[] = [];
    const r = reader({ topic, stopAtEnd: true, deadLetterTopic });
    await r.run((record) => {
      handled.push(seqOf(record));
    });
    expect(handled).toEqual([1]);
    expect(r.getStats()).toMatchObject({
      malformed: 1,
      deadLettered: 1,
      deadLetterTruncated: 1,
      deadLetterFailed: 0,
    });
    const [dead] = await readTopic(connection, deadLetterTopic, 1);
    expect(dead?.headers.streamll_truncated).toBe(String(Buffer.byteLength(poison)));
    expect(dead?.key).toBe("big");
    expect(Buffer.byteLength(dead?.value ?? "")).toBeGreaterThan(1_000);
    expect(Buffer.byteLength(dead?.value ?? "")).toBeLessThan(8_192);
    expect(poison.startsWith(dead?.value ?? "-")).toBe(true);
    expect(dead?.headers.streamll_error).toMatch(/^tags\.\*: /);
    expect(JSON.stringify(dead?.headers)).not.toContain("PLANTED");
  });

  it("skips and counts a malformed message the dead-letter topic refuses (default policy), after retrying", async () => {
    const topic = uniqueTopic("reader-dlq-refused");
    const deadLetterTopic = `${topic}-dlq`;
    await createTopic(connection, topic, 1);
    // deadLetterMaxBytes says more than the topic takes: the broker refuses the copy (MESSAGE_TOO_LARGE).
    await createTopic(connection, deadLetterTopic, 1, [{ name: "max.message.bytes", value: "8192" }]);
    await produceRaw(connection, topic, [{ key: "bad", value: `{not json${" ".repeat(40_000)}` }]);
    await produce(topic, [makeEvent({ data: { seq: 2 } })]);
    const logger = recordingLogger();
    const handled: unknown[] = [];
    const r = reader({
      topic,
      stopAtEnd: true,
      deadLetterTopic,
      deadLetterMaxBytes: 1_000_000,
      deadLetterRetries: 1,
      logger,
    });
    await r.run((record) => {
      handled.push(seqOf(record));
    });
    expect(handled).toEqual([2]);
    expect(r.getStats()).toMatchObject({ malformed: 1, deadLettered: 0, deadLetterFailed: 1 });
    expect(logger.lines.join("\n")).toMatch(
      new RegExp(
        `skipped the malformed message ${topic}/0@0: writing it to the dead-letter topic ${deadLetterTopic} failed 2 times`,
      ),
    );
  });

  it('with onDeadLetterFailure "stop" rejects with its own code and leaves the message uncommitted', async () => {
    const topic = uniqueTopic("reader-dlq-stop");
    const deadLetterTopic = `${topic}-dlq`;
    await createTopic(connection, topic, 1);
    await createTopic(connection, deadLetterTopic, 1, [{ name: "max.message.bytes", value: "8192" }]);
    await produce(topic, [makeEvent({ data: { seq: 0 } })]);
    await produceRaw(connection, topic, [{ key: "bad", value: `{not json${" ".repeat(40_000)}` }]);
    const groupId = `dlq-stop-${createId()}`;
    const options = {
      topic,
      groupId,
      stopAtEnd: true,
      deadLetterTopic,
      deadLetterMaxBytes: 1_000_000,
      deadLetterRetries: 0,
    };
    const handled: unknown[] = [];
    const first = reader({ ...options, onDeadLetterFailure: "stop" });
    const error = await first.run((record) => void handled.push(seqOf(record))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KafkaReaderError);
    expect((error as KafkaReaderError).code).toBe("KAFKA_READER_DEAD_LETTER_FAILED");
    expect((error as KafkaReaderError).message).toContain(`${topic}/0@1`);
    expect(handled).toEqual([0]);
    // The event before it was committed, the malformed message was not: the next run starts with it.
    const admin = new Kafka({
      clientId: "streamll-test-admin",
      logLevel: logLevel.NOTHING,
      ...connection,
    }).admin();
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      expect(offsets?.partitions).toEqual([{ partition: 0, offset: "1", metadata: null }]);
    } finally {
      await admin.disconnect();
    }
  });

  it("commits after the handler succeeded: a failing handler stops the reader and the event is read again", async () => {
    const topic = uniqueTopic("reader-commit");
    await createTopic(connection, topic, 1);
    await produce(
      topic,
      Array.from({ length: 5 }, (_, seq) => makeEvent({ data: { seq } })),
    );
    const groupId = `commit-${createId()}`;
    const first: unknown[] = [];
    const failing = reader({ topic, groupId });
    const error = await failing
      .run((record) => {
        if (seqOf(record) === 2) throw new Error("database unavailable");
        first.push(seqOf(record));
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KafkaReaderError);
    expect(error).toMatchObject({ code: "KAFKA_READER_HANDLER_FAILED" });
    expect((error as Error).message).toContain("database unavailable");
    expect(first).toEqual([0, 1]);

    const second: unknown[] = [];
    await reader({ topic, groupId, stopAtEnd: true }).run((record) => {
      second.push(seqOf(record));
    });
    expect(second).toEqual([2, 3, 4]);
  });

  it("iterates with for await; breaking out leaves the current event uncommitted", async () => {
    const topic = uniqueTopic("reader-iterate");
    await createTopic(connection, topic, 1);
    await produce(
      topic,
      Array.from({ length: 4 }, (_, seq) => makeEvent({ data: { seq } })),
    );
    const groupId = `iterate-${createId()}`;
    const seen: unknown[] = [];
    for await (const record of reader({ topic, groupId })) {
      seen.push(seqOf(record));
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([0, 1]);
    const all: unknown[] = [];
    for await (const record of reader({ topic, groupId, stopAtEnd: true })) all.push(seqOf(record));
    expect(all).toEqual([1, 2, 3]);
  });

  it("stopAtEnd returns at once when the group has nothing left to read", async () => {
    const topic = uniqueTopic("reader-nothing-left");
    await createTopic(connection, topic, 2);
    await produce(topic, [makeEvent({ data: { seq: 0 } })]);
    const handled: unknown[] = [];
    // A new group that starts at the end (fromBeginning: false) has caught up before reading anything.
    await reader({ topic, fromBeginning: false, stopAtEnd: true }).run((record) => {
      handled.push(seqOf(record));
    });
    expect(handled).toEqual([]);
  });

  it("keeps reading new events until stop(), which ends run() gracefully", async () => {
    const topic = uniqueTopic("reader-stop");
    await createTopic(connection, topic, 2);
    const r = reader({ topic, fromBeginning: false });
    const handled: unknown[] = [];
    const running = r.run((record) => {
      handled.push(seqOf(record));
    });
    await expect(r.run(() => undefined)).rejects.toMatchObject({ code: "KAFKA_READER_BUSY" });
    // The group joins asynchronously; produce until the reader sees events.
    let seq = 0;
    let polls = 0;
    await waitUntil(
      () => {
        if (handled.length === 0 && polls++ % 10 === 0)
          void produce(topic, [makeEvent({ data: { seq: seq++ } })]);
        return handled.length > 0;
      },
      20_000,
      "the reader to receive live events",
    ).catch(async (error: unknown) => {
      await r.stop();
      throw error;
    });
    await r.stop();
    await expect(running).resolves.toBeUndefined();
    expect(r.getStats().handled).toBe(handled.length);
  });

  it("stop() from outside waits for the handler in flight and its commit; from inside it only requests the stop", async () => {
    const topic = uniqueTopic("reader-stop-outside");
    await createTopic(connection, topic, 1);
    await produce(
      topic,
      [0, 1, 2].map((seq) => makeEvent({ data: { seq } })),
    );
    const r = reader({ topic, fromBeginning: true });
    let release: () => void = () => undefined;
    const entered = new Promise<void>((resolveEntered) => {
      void r.run(async (record) => {
        if (seqOf(record) !== 0) return;
        resolveEntered();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      });
    });
    await entered;
    let stopped = false;
    const stopping = r.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A SIGTERM handler's stop(): the event being handled is not abandoned.
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(r.getStats().handled).toBe(1);

    // The next reader of the group starts after the event that was handled: it was committed.
    const next = reader({ topic, groupId: r.groupId, fromBeginning: true });
    const seen: unknown[] = [];
    const running = next.run(async (record) => {
      seen.push(seqOf(record));
      if (seen.length === 2) await next.stop();
    });
    await running;
    expect(seen).toEqual([1, 2]);
  });

  it("stops at once while still connecting to a broker that never answers (no 30 s request timeout)", async () => {
    const silent = await startSilentPeer();
    try {
      const r = reader({ topic: uniqueTopic("reader-silent"), brokers: [`127.0.0.1:${silent.port}`] });
      const running = r.run(() => undefined);
      // Inside kafkajs's first request to the peer, which would wait out requestTimeoutMs (30 s).
      await new Promise((resolve) => setTimeout(resolve, 500));
      const stopped = r.stop().then(() => "stopped");
      const late = new Promise((resolve) => setTimeout(resolve, 10_000, "still waiting")).then((v) => v);
      expect(await Promise.race([stopped, late])).toBe("stopped");
      await expect(running).resolves.toBeUndefined();
    } finally {
      await silent.close();
    }
  });
});

describe("replayExecution", () => {
  const topic = uniqueTopic("reader-replay");
  let traffic: DemoTraffic;

  beforeAll(async () => {
    traffic = await runDemoTraffic(
      new KafkaSink({
        brokers: connection.brokers,
        topic,
        createTopic: { numPartitions: 4 },
        logger: recordingLogger(),
      }),
    );
  });

  afterAll(async () => {
    await endDemoTraffic();
  });

  it("rebuilds the span tree, durations, errors and streamed text from one partition", async () => {
    const r = reader({ topic });
    const replay = await r.replayExecution(traffic.failedExecutionId, { from: Date.now() - 120_000 });
    const expected = traffic.memory.events.filter(
      (event) => event.execution_id === traffic.failedExecutionId,
    );
    expect(replay.events.map((e) => e.event_id).sort()).toEqual(expected.map((e) => e.event_id).sort());
    expect(replay.failed).toBe(true);
    expect(replay.roots).toHaveLength(1);
    const root = replay.roots[0]!;
    expect(root).toMatchObject({ moduleName: "QAPipeline", status: "error", parentSpanId: null });
    expect(root.error).toMatchObject({ type: "Error", message: "upstream LLM connection reset" });
    expect(root.children.map((child) => [child.moduleName, child.status])).toEqual([
      ["Retriever", "ok"],
      ["Generator", "error"],
    ]);
    const generator = root.children[1]!;
    expect(generator.streamedText).toEqual({ answer: "Paris is" });
    expect(generator.tokenCount).toBe(2);
    expect(generator.customEvents.map((event) => event.event_type)).toEqual(["llm_usage"]);
    expect(root.children[0]!.durationMs).toBeGreaterThan(0);
    expect(replay.errors.map((entry) => entry.span.moduleName)).toEqual(["Generator", "QAPipeline"]);
    expect(replay.durationMs).toBe(root.durationMs);
  });

  it("rebuilds a successful execution with every partition scanned, and returns nothing for unknown ids", async () => {
    const ok = traffic.executionIds.find((id) => id !== traffic.failedExecutionId)!;
    const r = reader({ topic });
    const replay = await r.replayExecution(ok, { allPartitions: true });
    expect(replay.failed).toBe(false);
    const root = replay.roots[0]!;
    expect(root.status).toBe("ok");
    expect(root.children.map((child) => child.operation ?? child.moduleName)).toEqual([
      "Retriever",
      "Generator",
      "post-process",
    ]);
    expect(root.children[1]!.streamedText).toEqual({ answer: "Paris is the capital." });
    expect(root.outputs).toBe("Paris is the capital.");
    const empty = await r.replayExecution(createId(), { from: Date.now() + 60_000 });
    expect(empty.events).toEqual([]);
    expect(empty.roots).toEqual([]);
    // The throwaway consumer groups were deleted again (DeleteGroups on this Kafka version).
    const kafka = new Kafka({ ...connection, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.listGroups();
      expect(groups.filter((group) => group.groupId.startsWith("streamll-replay-"))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });
});

describe("start-up failures", () => {
  it("a refused login rejects run() with a typed error that never shows the password", async () => {
    const password = "wr0ng-pa55word-7c1d";
    const r = new KafkaEventReader({
      brokers: [...KAFKA_SASL_SSL_BROKERS],
      tls: { ca: readKafkaCa() },
      sasl: { mechanism: "plain", username: "streamll", password },
      groupId: `refused-${createId()}`,
      topic: uniqueTopic("reader-refused"),
      retry: { retries: 0 },
      logger: recordingLogger(),
    });
    cleanups.push(() => r.close());
    const error = await r.run(() => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KafkaReaderError);
    expect(error).toMatchObject({ code: "KAFKA_READER_CRASHED" });
    expect((error as Error).message).toMatch(/could not start: .*SASL/);
    expect((error as Error).message).not.toContain(password);
    // The reader is usable again (run() is not left marked busy).
    await expect(r.run(() => undefined)).rejects.toMatchObject({ code: "KAFKA_READER_CRASHED" });
  });
});

describe("options", () => {
  it("rejects invalid options with a ConfigurationError naming them", () => {
    expect(() => new KafkaEventReader({ brokers: ["127.0.0.1:9092"], groupId: "" })).toThrow(/groupId/);
    expect(
      () =>
        new KafkaEventReader({ brokers: ["127.0.0.1:9092"], groupId: "g", topic: "a", deadLetterTopic: "a" }),
    ).toThrow("deadLetterTopic: must differ from topic");
    expect(
      () => new KafkaEventReader({ brokers: ["127.0.0.1:9092"], groupId: "g", autoCommit: true } as never),
    ).toThrow(/autoCommit: unknown option \(allowed: brokers, clientId, /);
  });
});
