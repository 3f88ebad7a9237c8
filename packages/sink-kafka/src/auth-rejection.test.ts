import { type Channel, channel } from "node:diagnostics_channel";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { inspect } from "node:util";
import { createId, DeliveryPipeline, encodeEvent } from "@streamll/core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  KAFKA_PORTS,
  KAFKA_SASL_USERNAME,
  kafkaPlaintextConfig,
  makeUnsecuredJwt,
  readKafkaCa,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import type { KafkaConnectionOptions, KafkaOAuthToken } from "./kafka-connection";
import { KafkaEventReader, KafkaReaderError } from "./kafka-event-reader";
import { KafkaSink } from "./kafka-sink";
import { makeEvent, readTopic, recordingLogger, waitUntil } from "./test-support/kafka-test-support";

/** A wrong password (or token) that must appear nowhere: metrics, logs, errors, diagnostics. */
const PLANTED = "sk-proj-PLANTEDSECRET1234567890abcdef";

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

beforeAll(async () => {
  await requireBroker();
});

/** A TCP relay to a broker port that counts the connections made through it. */
async function countingProxy(port: number): Promise<{ address: string; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    const upstream = netConnect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port: local } = server.address() as { port: number };
  return { address: `127.0.0.1:${local}`, connections: () => connections };
}

interface Run {
  pipeline: DeliveryPipeline;
  sink: KafkaSink;
  kafkaLog: string[];
  pipelineLog: string[];
  diagnostics: unknown[];
}

/** A sink behind a delivery pipeline (fast retries, a short breaker), with every output recorded. */
function run(connection: KafkaConnectionOptions, name: string): Run {
  const kafkaLogger = recordingLogger();
  const pipelineLogger = recordingLogger();
  const sink = new KafkaSink({
    ...connection,
    name,
    topic: uniqueTopic("auth-rejected"),
    logger: kafkaLogger,
    // kafkajs's default: it would retry a transient failure twice within one send.
    connectionTimeoutMs: 2_000,
  });
  cleanups.push(() => sink.close());
  const pipeline = new DeliveryPipeline(
    sink,
    {
      flushIntervalMs: 20,
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 300 },
    },
    { logger: pipelineLogger },
  );
  cleanups.push(() => pipeline.shutdown(2_000));
  const diagnostics: unknown[] = [];
  const diagnosticsChannel: Channel = channel("streamll:diagnostics");
  const listener = (message: unknown): void => {
    if ((message as { sink?: unknown }).sink === name) diagnostics.push(message);
  };
  diagnosticsChannel.subscribe(listener);
  cleanups.push(async () => diagnosticsChannel.unsubscribe(listener));
  return { pipeline, sink, kafkaLog: kafkaLogger.lines, pipelineLog: pipelineLogger.lines, diagnostics };
}

function expectNoSecret(r: Run, ...more: unknown[]): void {
  const everything = [
    JSON.stringify(r.pipeline.getMetrics()),
    inspect(r.pipeline.getMetrics(), { depth: 8 }),
    JSON.stringify(r.diagnostics),
    ...r.kafkaLog,
    ...r.pipelineLog,
    ...more.map((item) => inspect(item, { depth: 8 })),
  ].join("\n");
  expect(everything).not.toContain(PLANTED);
  expect(everything).not.toContain("PLANTEDSECRET");
}

describe("credentials the broker rejects are a permanent ConfigurationError, reported once", () => {
  for (const mechanism of ["scram-sha-512", "plain"] as const) {
    it(`static ${mechanism} password: the sink is marked failed after one connection, not retried`, async () => {
      const proxy = await countingProxy(KAFKA_PORTS.saslSsl);
      const name = `kafka-wrong-${mechanism}-${createId()}`;
      const r = run(
        {
          brokers: [proxy.address],
          tls: { ca: readKafkaCa(), servername: "localhost" },
          sasl: { mechanism, username: KAFKA_SASL_USERNAME, password: PLANTED },
        },
        name,
      );
      for (let i = 0; i < 5; i++) r.pipeline.enqueue(encodeEvent(makeEvent({ data: { i } })));
      await waitUntil(() => r.pipeline.getMetrics().failed !== null, 15_000, "the sink to be marked failed");
      // Time in which the old behaviour reconnected several times.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const metrics = r.pipeline.getMetrics();
      expect(metrics.failed).toMatchObject({ code: "CONFIGURATION_INVALID" });
      expect(metrics.failed?.message).toMatch(
        new RegExp(
          `rejected the SASL ${mechanism.toUpperCase()} user name and password \\(.*Authentication failed`,
        ),
      );
      expect(metrics.failed?.message).not.toContain("[redacted]");
      expect(metrics.failed?.fix).toMatch(/sasl\.username and sasl\.password/);
      expect(metrics.droppedByReason["sink-failed"]).toBe(5);
      expect(metrics).toMatchObject({ pending: 0, delivered: 0, batchesFailed: 1 });
      expect(metrics.breakerState).not.toBe("open");
      expect(r.diagnostics).toHaveLength(1);
      expect(r.diagnostics[0]).toMatchObject({
        type: "sink-failed",
        sink: name,
        code: "CONFIGURATION_INVALID",
      });
      expect(proxy.connections()).toBeLessThanOrEqual(2);
      // kafkajs's per-attempt lines about the refusal are not forwarded; the pipeline logs it once.
      expect(r.kafkaLog.filter((line) => /SASL|[Aa]uthenticat/.test(line))).toEqual([]);
      expect(r.pipelineLog.filter((line) => line.includes("rejected the SASL"))).toHaveLength(1);
      // New events are dropped as sink-failed, nothing connects again.
      r.pipeline.enqueue(encodeEvent(makeEvent()));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(r.pipeline.getMetrics().droppedByReason["sink-failed"]).toBe(6);
      expect(proxy.connections()).toBeLessThanOrEqual(2);
      expectNoSecret(r);
    }, 30_000);
  }

  it("a direct send rejects with the ConfigurationError (no secret in it)", async () => {
    const sink = new KafkaSink({
      brokers: [`127.0.0.1:${KAFKA_PORTS.saslSsl}`],
      tls: { ca: readKafkaCa() },
      sasl: { mechanism: "scram-sha-256", username: KAFKA_SASL_USERNAME, password: PLANTED },
      topic: uniqueTopic("auth-rejected"),
      logger: recordingLogger(),
    });
    cleanups.push(() => sink.close());
    const error = await sink
      .send([encodeEvent(makeEvent())], { signal: AbortSignal.timeout(10_000), attempt: 1 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "ConfigurationError", code: "CONFIGURATION_INVALID" });
    expect((error as { issues: unknown }).issues).toEqual([
      { path: "sasl.password", message: "rejected by the broker" },
    ]);
    expect(inspect(error, { depth: 8 })).not.toContain("PLANTED");
  });

  it("a token provider whose tokens are always refused: permanent after one fresh fetch", async () => {
    const proxy = await countingProxy(KAFKA_PORTS.oauth);
    let fetches = 0;
    const name = `kafka-bad-token-${createId()}`;
    const r = run(
      {
        brokers: [proxy.address],
        sasl: {
          mechanism: "oauthbearer",
          tokenProvider: async (): Promise<KafkaOAuthToken> => {
            fetches++;
            return { token: PLANTED, expiresAt: Date.now() + 3_600_000 };
          },
        },
      },
      name,
    );
    for (let i = 0; i < 3; i++) r.pipeline.enqueue(encodeEvent(makeEvent({ data: { i } })));
    await waitUntil(() => r.pipeline.getMetrics().failed !== null, 15_000, "the sink to be marked failed");
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const metrics = r.pipeline.getMetrics();
    expect(fetches).toBe(2);
    expect(metrics.failed).toMatchObject({ code: "CONFIGURATION_INVALID" });
    expect(metrics.failed?.message).toMatch(/rejected the SASL OAUTHBEARER token .*freshly fetched/);
    expect(metrics.failed?.message).toContain('"status":"invalid_token"');
    expect(metrics.failed?.message).not.toContain("ILLEGAL_SASL_STATE");
    expect(metrics.failed?.message).not.toContain("[redacted]");
    expect(metrics.failed?.fix).toMatch(/token provider/);
    expect(metrics.droppedByReason["sink-failed"]).toBe(3);
    expect(metrics).toMatchObject({ pending: 0, delivered: 0 });
    expect(r.diagnostics).toHaveLength(1);
    expect(proxy.connections()).toBeLessThanOrEqual(3);
    expect(r.kafkaLog.filter((line) => /SASL|[Aa]uthenticat|token/.test(line))).toEqual([]);
    expectNoSecret(r);
  }, 30_000);

  it("a token provider that hands out a refused token, then a good one: delivered", async () => {
    const tokens = [makeUnsecuredJwt({ scope: "not-kafka" }), makeUnsecuredJwt()];
    let fetches = 0;
    const topic = uniqueTopic("auth-token-recovers");
    const sink = new KafkaSink({
      brokers: [`127.0.0.1:${KAFKA_PORTS.oauth}`],
      topic,
      logger: recordingLogger(),
      reauthenticationThresholdMs: 2_000,
      sasl: {
        mechanism: "oauthbearer",
        tokenProvider: async () => {
          const token = tokens[Math.min(fetches, tokens.length - 1)]!;
          fetches++;
          return { token, expiresAt: Date.now() + 60_000 };
        },
      },
    });
    cleanups.push(() => sink.close());
    const event = encodeEvent(makeEvent({ data: { recovered: true } }));
    await sink.send([event], { signal: AbortSignal.timeout(15_000), attempt: 1 });
    expect(fetches).toBe(2);
    const [message] = await readTopic(kafkaPlaintextConfig(), topic, 1);
    expect(message?.value).toBe(event.json);
  }, 30_000);

  it("a broker that is down stays a transient failure (not a ConfigurationError)", async () => {
    const sink = new KafkaSink({
      brokers: ["127.0.0.1:1"],
      sasl: { mechanism: "plain", username: KAFKA_SASL_USERNAME, password: PLANTED },
      topic: uniqueTopic("auth-down"),
      logger: recordingLogger(),
      connectionTimeoutMs: 500,
      retry: { retries: 0 },
    });
    cleanups.push(() => sink.close());
    const error = await sink
      .send([encodeEvent(makeEvent())], { signal: AbortSignal.timeout(10_000), attempt: 1 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "SinkError", retriable: true });
  });

  it("the reader rejects run() with KAFKA_READER_CRASHED caused by the ConfigurationError", async () => {
    const reader = new KafkaEventReader({
      brokers: [`127.0.0.1:${KAFKA_PORTS.saslSsl}`],
      tls: { ca: readKafkaCa() },
      sasl: { mechanism: "scram-sha-512", username: KAFKA_SASL_USERNAME, password: PLANTED },
      groupId: `auth-rejected-${createId()}`,
      topic: uniqueTopic("auth-rejected-reader"),
      logger: recordingLogger(),
    });
    cleanups.push(() => reader.close());
    const error = (await reader.run(() => undefined).catch((e: unknown) => e)) as KafkaReaderError;
    expect(error).toBeInstanceOf(KafkaReaderError);
    expect(error.code).toBe("KAFKA_READER_CRASHED");
    expect(error.message).toMatch(
      /could not start: the Kafka broker rejected the SASL SCRAM-SHA-512 user name and password \(.*\)\. Fix: check sasl\.username/,
    );
    expect(error.cause).toMatchObject({ name: "ConfigurationError", code: "CONFIGURATION_INVALID" });
    expect(inspect(error, { depth: 8 })).not.toContain("PLANTED");
  });
});
