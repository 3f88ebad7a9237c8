import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { DeliveryPipeline, encodeEvent } from "@streamll/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  brokerSockets,
  EVENT_HUBS_CONNECTION_STRING,
  KAFKA_CA_FILE,
  KAFKA_CLIENT_CERT_FILE,
  KAFKA_CLIENT_KEY_FILE,
  KAFKA_OAUTH_BROKERS,
  KAFKA_PORTS,
  KAFKA_SASL_PASSWORD,
  KAFKA_SASL_SSL_BROKERS,
  KAFKA_SASL_USERNAME,
  KAFKA_SSL_BROKERS,
  kafkaPlaintextConfig,
  makeUnsecuredJwt,
  readKafkaCa,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import { confluentCloud } from "./confluent";
import { eventHubsConnectionString, eventHubsEntra } from "./event-hubs";
import type { KafkaConnectionOptions } from "./kafka-connection";
import { KafkaSink } from "./kafka-sink";
import { encodeAll, makeEvent, readTopic, recordingLogger } from "./test-support/kafka-test-support";
import { readTlsFiles } from "./tls-files";

const plaintext = kafkaPlaintextConfig();
const cleanups: (() => Promise<unknown>)[] = [];
let otherCaDir: string;
let otherCa: Buffer;

function sinkWith(connection: KafkaConnectionOptions, topic: string, logger = recordingLogger()): KafkaSink {
  const sink = new KafkaSink({ ...connection, topic, logger, connectionTimeoutMs: 2_000 });
  cleanups.push(() => sink.close());
  return sink;
}

async function roundTrip(connection: KafkaConnectionOptions): Promise<void> {
  const topic = uniqueTopic("auth");
  const sink = sinkWith(connection, topic);
  const encoded = encodeAll([makeEvent({ data: { via: "auth" } })]);
  await sink.send(encoded, { signal: AbortSignal.timeout(15_000), attempt: 1 });
  const [message] = await readTopic(plaintext, topic, 1);
  expect(message?.value).toBe(encoded[0]!.json);
}

function send(sink: KafkaSink, ms = 8_000): Promise<unknown> {
  return sink.send(encodeAll([makeEvent()]), { signal: AbortSignal.timeout(ms), attempt: 1 });
}

beforeAll(async () => {
  await requireBroker();
  // A CA that did not sign the broker's certificate: verification must fail with it.
  otherCaDir = mkdtempSync(join(tmpdir(), "streamll-other-ca-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=not the harness CA",
      "-keyout",
      join(otherCaDir, "ca.key"),
      "-out",
      join(otherCaDir, "ca.pem"),
    ],
    { stdio: "ignore" },
  );
  otherCa = readFileSync(join(otherCaDir, "ca.pem"));
});

afterAll(() => {
  rmSync(otherCaDir, { recursive: true, force: true });
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

describe("SASL_SSL PLAIN (Confluent Cloud and Event Hubs shapes), TLS verified", () => {
  it("delivers with an API key and secret, the CA verifying the broker certificate", async () => {
    await roundTrip(
      confluentCloud({
        bootstrapServer: KAFKA_SASL_SSL_BROKERS[0]!,
        apiKey: KAFKA_SASL_USERNAME,
        apiSecret: KAFKA_SASL_PASSWORD,
        tls: { ca: readKafkaCa() },
      }),
    );
  });

  it("fails retriably when the certificate does not verify (wrong CA, or the default trust store)", async () => {
    for (const tls of [{ ca: otherCa }, true] as const) {
      const logger = recordingLogger();
      const sink = sinkWith(
        {
          ...confluentCloud({
            bootstrapServer: KAFKA_SASL_SSL_BROKERS[0]!,
            apiKey: KAFKA_SASL_USERNAME,
            apiSecret: KAFKA_SASL_PASSWORD,
            tls,
          }),
          retry: { retries: 0 },
        },
        uniqueTopic("auth-bad-ca"),
        logger,
      );
      const error = (await send(sink).catch((e: unknown) => e)) as Error & { retriable?: boolean };
      expect(error).toMatchObject({ name: "SinkError", retriable: true });
      expect(`${error.message} ${String(error.cause)}`).toMatch(/certificate|self[- ]signed|verify/i);
    }
  });

  it("delivers with the Event Hubs $ConnectionString user and the whole connection string as password", async () => {
    await roundTrip(
      eventHubsConnectionString({
        connectionString: EVENT_HUBS_CONNECTION_STRING,
        brokers: [...KAFKA_SASL_SSL_BROKERS],
        tls: { ca: readKafkaCa() },
      }),
    );
  });

  it("delivers with SCRAM-SHA-512 and SCRAM-SHA-256", async () => {
    for (const mechanism of ["scram-sha-512", "scram-sha-256"] as const) {
      await roundTrip({
        brokers: [...KAFKA_SASL_SSL_BROKERS],
        tls: { ca: readKafkaCa() },
        sasl: { mechanism, username: KAFKA_SASL_USERNAME, password: KAFKA_SASL_PASSWORD },
      });
    }
  });

  it("reports a wrong password as a permanent ConfigurationError and never logs or exposes the secret", async () => {
    const secret =
      "Endpoint=sb://local.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=WRONGwrongWRONG=";
    const logger = recordingLogger();
    const sink = sinkWith(
      {
        ...eventHubsConnectionString({
          connectionString: secret,
          brokers: [...KAFKA_SASL_SSL_BROKERS],
          tls: { ca: readKafkaCa() },
        }),
        retry: { retries: 0 },
        logLevel: "info",
      },
      uniqueTopic("auth-wrong"),
      logger,
    );
    const error = (await send(sink).catch((e: unknown) => e)) as Error & { fix?: string };
    expect(error).toMatchObject({ name: "ConfigurationError", code: "CONFIGURATION_INVALID" });
    expect(error.message).toMatch(
      /rejected the SASL PLAIN user name and password \(.*[Aa]uthentication failed/,
    );
    expect(error.fix).toMatch(/\$ConnectionString/);
    const everything = [
      error.message,
      error.fix,
      inspect(error, { depth: 5 }),
      inspect(sink, { depth: 5 }),
      ...logger.lines,
    ].join("\n");
    expect(everything).not.toContain("WRONGwrongWRONG");
  });
});

describe("mutual TLS (SSL listener with a required client certificate)", () => {
  it("delivers with the client certificate read from PEM files", async () => {
    await roundTrip({
      brokers: [...KAFKA_SSL_BROKERS],
      tls: readTlsFiles({
        caFile: KAFKA_CA_FILE,
        certFile: KAFKA_CLIENT_CERT_FILE,
        keyFile: KAFKA_CLIENT_KEY_FILE,
      }),
    });
  });

  it("is refused without a client certificate", async () => {
    const sink = sinkWith(
      {
        brokers: [...KAFKA_SSL_BROKERS],
        tls: readTlsFiles({ caFile: KAFKA_CA_FILE }),
        retry: { retries: 0 },
      },
      uniqueTopic("auth-no-cert"),
    );
    await expect(send(sink)).rejects.toMatchObject({ name: "SinkError", retriable: true });
  });
});

describe("SASL OAUTHBEARER with a token provider", () => {
  it("Event Hubs Entra shape: asks the credential for the namespace's .default scope", async () => {
    const scopes: (string | string[])[] = [];
    await roundTrip({
      ...eventHubsEntra({
        namespace: "local",
        brokers: [...KAFKA_OAUTH_BROKERS],
        tls: false,
        credential: {
          async getToken(scope) {
            scopes.push(scope);
            return {
              token: makeUnsecuredJwt({ lifetimeMs: 60_000 }),
              expiresOnTimestamp: Date.now() + 60_000,
            };
          },
        },
      }),
      // Below the harness's 10 s session lifetime; at or above it kafkajs re-authenticates before every request.
      reauthenticationThresholdMs: 2_000,
    });
    expect(scopes[0]).toBe("https://local.servicebus.windows.net/.default");
    // One token serves every handshake of the client (bootstrap, broker connection, admin-free producer).
    expect(scopes).toHaveLength(1);
  });

  it("refreshes tokens before they expire and re-authenticates while events flow", async () => {
    const topic = uniqueTopic("auth-reauth");
    const issued: number[] = [];
    const sink = new KafkaSink({
      brokers: [...KAFKA_OAUTH_BROKERS],
      topic,
      logger: recordingLogger(),
      // The broker ends sessions after 10 s (connections.max.reauth.ms) or at token expiry, whichever first.
      reauthenticationThresholdMs: 2_000,
      sasl: {
        mechanism: "oauthbearer",
        refreshAheadMs: 2_000,
        tokenProvider: async () => {
          issued.push(Date.now());
          const lifetimeMs = 5_000;
          return { token: makeUnsecuredJwt({ lifetimeMs }), expiresAt: Date.now() + lifetimeMs };
        },
      },
    });
    cleanups.push(() => sink.close());
    const pipeline = new DeliveryPipeline(sink, { flushIntervalMs: 50 }, { logger: recordingLogger() });
    cleanups.push(() => pipeline.shutdown(5_000));
    const total = 60;
    const startedAt = Date.now();
    let connected: Set<string> | undefined;
    const seen = new Set<string>();
    for (let i = 0; i < total; i++) {
      pipeline.enqueue(encodeEvent(makeEvent({ data: { i } })));
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (connected === undefined && pipeline.getMetrics().delivered > 0) {
        connected = brokerSockets(KAFKA_PORTS.oauth);
      }
      for (const socket of brokerSockets(KAFKA_PORTS.oauth)) seen.add(socket);
    }
    expect(await pipeline.flush(15_000)).toBe(true);
    const elapsedMs = Date.now() - startedAt;
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: total, delivered: total, dropped: 0, batchesFailed: 0 });
    // 12 s or more of traffic (timers run late on a busy machine) with 5 s tokens refreshed 2 s ahead: one
    // token per 3 s, never one per handshake. The bound follows the time that actually passed.
    expect(issued.length).toBeGreaterThanOrEqual(3);
    expect(issued.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / 3_000) + 2);
    // Re-authentication, not reconnection: the connections open after the first delivery carried every later
    // request although each token (and so each broker session) lasted 5 s.
    expect(connected?.size).toBeGreaterThan(0);
    expect([...seen].filter((socket) => !connected?.has(socket))).toEqual([]);
    const iOf = (value: string): number => (JSON.parse(value) as { data: { i: number } }).data.i;
    const read = await readTopic(
      plaintext,
      topic,
      (messages) => new Set(messages.map((m) => iOf(m.value))).size >= total,
    );
    expect(new Set(read.map((m) => iOf(m.value))).size).toBe(total);
  }, 40_000);

  it("fails permanently when the provider hands out tokens the broker refuses, also a fresh one", async () => {
    let fetches = 0;
    const sink = sinkWith(
      {
        brokers: [...KAFKA_OAUTH_BROKERS],
        retry: { retries: 0 },
        sasl: {
          mechanism: "oauthbearer",
          tokenProvider: async () => {
            fetches++;
            return { token: makeUnsecuredJwt({ scope: "not-kafka" }) };
          },
        },
      },
      uniqueTopic("auth-bad-token"),
    );
    await expect(send(sink)).rejects.toMatchObject({
      name: "ConfigurationError",
      message: expect.stringMatching(/rejected the SASL OAUTHBEARER token .*"status":"insufficient_scope"/),
    });
    expect(fetches).toBe(2);
  });
});
