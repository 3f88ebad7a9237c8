import { inspect } from "node:util";
import { ConfigurationError, encodeEvent, SinkError } from "@streamll/core";
import { CompressionCodecs, CompressionTypes, logLevel } from "kafkajs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { confluentCloud } from "./confluent";
import {
  EVENT_HUBS_DELIVERY,
  EVENT_HUBS_USERNAME,
  eventHubsConnectionString,
  eventHubsEntra,
  eventHubsScope,
  parseEventHubsNamespace,
} from "./event-hubs";
import { createKafkaClient, DEFAULT_KAFKA_CONNECTION, toTlsOptions } from "./kafka-connection";
import { isRejectedRecordError, kafkaErrorType, toSinkError } from "./kafka-errors";
import { createKafkaLogCreator, SecretScrubber } from "./kafka-logger";
import { estimateRecordBytes, KafkaSink, toKafkaMessage } from "./kafka-sink";
import { makeEvent, recordingLogger } from "./test-support/kafka-test-support";
import { readTlsFiles } from "./tls-files";

const BROKERS = ["127.0.0.1:9092"];
const CONNECTION_STRING =
  "Endpoint=sb://My-Namespace.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0LWtleS12YWx1ZQ==";

function configIssues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as ConfigurationError).issues.map((issue) => issue.path);
  }
  throw new Error("expected a ConfigurationError");
}

describe("KafkaSink options", () => {
  const originalZstd = CompressionCodecs[CompressionTypes.ZSTD];
  afterEach(() => {
    CompressionCodecs[CompressionTypes.ZSTD] = originalZstd;
  });

  it("takes DEFAULT_KAFKA_CONNECTION spread into its options, shaped as they are", () => {
    const sink = new KafkaSink({ ...DEFAULT_KAFKA_CONNECTION, brokers: BROKERS });
    expect(sink.name).toBe("kafka:streamll_events");
    expect(DEFAULT_KAFKA_CONNECTION.retry).toEqual({
      retries: 2,
      initialRetryTimeMs: 100,
      maxRetryTimeMs: 1_000,
    });
  });

  it("reports a hole in the brokers list when configured, not as a retried send failure", () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
    expect(configIssues(() => new KafkaSink({ brokers: [, "h:1"] as never }))).toEqual(["brokers[0]"]);
  });

  it("names every invalid option", () => {
    expect(
      configIssues(
        () =>
          new KafkaSink({
            brokers: ["no-port", "ok:9092"],
            topic: "bad topic!",
            acks: 2 as never,
            compression: "brotli" as never,
            maxMessageBytes: 10,
            createTopic: { numPartitions: 0 },
            sasl: { mechanism: "plain", username: "", password: "x" },
            tls: { cert: "only-cert" },
            extra: true,
          } as never),
      ),
    ).toEqual([
      "extra",
      "brokers[0]",
      "tls.key",
      "sasl.username",
      "maxMessageBytes",
      "topic",
      "createTopic.numPartitions",
      "acks",
      "compression",
    ]);
    expect(configIssues(() => new KafkaSink({ brokers: BROKERS, idempotent: true, acks: 1 }))).toEqual([
      "acks",
    ]);
    expect(configIssues(() => new KafkaSink({ brokers: [] }))).toEqual(["brokers"]);
    expect(
      configIssues(
        () =>
          new KafkaSink({
            brokers: BROKERS,
            reauthenticationThresholdMs: 20_000,
            sasl: {
              mechanism: "oauthbearer",
              refreshAheadMs: 5_000,
              tokenProvider: async () => ({ token: "t" }),
            },
          }),
      ),
    ).toEqual(["sasl.refreshAheadMs"]);
  });

  it("needs a registered kafkajs codec for snappy, lz4 and zstd", () => {
    expect(() => new KafkaSink({ brokers: BROKERS, compression: "zstd" })).toThrow(
      /CompressionCodecs\[CompressionTypes\.ZSTD\]/,
    );
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      compress: async (encoder: { buffer: Buffer }) => encoder.buffer,
      decompress: async (buffer: Buffer) => buffer,
    });
    expect(new KafkaSink({ brokers: BROKERS, compression: "zstd" }).name).toBe("kafka:streamll_events");
  });

  it("maps an event to key execution_id, the wire JSON, three headers and the event time", () => {
    const encoded = encodeEvent(makeEvent({ module_name: "Summarizer", event_type: "token" }));
    expect(toKafkaMessage(encoded)).toEqual({
      key: encoded.execution_id,
      value: encoded.json,
      headers: { schema_version: "1.0", event_type: "token", module_name: "Summarizer" },
      timestamp: String(Date.parse(encoded.timestamp)),
    });
    expect(estimateRecordBytes(encoded)).toBeGreaterThan(encoded.bytes + 12);
  });
});

describe("TLS", () => {
  it("verifies certificates unless told otherwise in so many words", () => {
    expect(toTlsOptions(true)).toEqual({ rejectUnauthorized: true, minVersion: "TLSv1.2" });
    expect(toTlsOptions({ ca: "CA", servername: "kafka.internal" })).toMatchObject({
      rejectUnauthorized: true,
      ca: "CA",
      servername: "kafka.internal",
    });
    expect(toTlsOptions({ rejectUnauthorized: false }).rejectUnauthorized).toBe(false);
  });

  it("reads PEM files and names a file it cannot read", () => {
    expect(() => readTlsFiles({ caFile: "/nonexistent/ca.pem" })).toThrow(
      /caFile \/nonexistent\/ca.pem cannot be read/,
    );
    expect(() => readTlsFiles({ certFile: "/x" })).toThrow(ConfigurationError);
  });
});

describe("cloud adapters (shapes)", () => {
  it("Confluent Cloud: SASL_SSL PLAIN with the API key", () => {
    expect(
      confluentCloud({
        bootstrapServer: "pkc-abc12.eu-west-1.aws.confluent.cloud:9092",
        apiKey: "KEY",
        apiSecret: "SECRET",
      }),
    ).toEqual({
      brokers: ["pkc-abc12.eu-west-1.aws.confluent.cloud:9092"],
      tls: true,
      sasl: { mechanism: "plain", username: "KEY", password: "SECRET" },
    });
    expect(
      configIssues(() => confluentCloud({ bootstrapServer: "pkc", apiKey: "", apiSecret: "s" })),
    ).toEqual(["bootstrapServer", "apiKey"]);
  });

  it("Event Hubs: $ConnectionString on port 9093 with the service's limits", () => {
    expect(parseEventHubsNamespace(CONNECTION_STRING)).toBe("my-namespace.servicebus.windows.net");
    expect(eventHubsConnectionString({ connectionString: CONNECTION_STRING })).toEqual({
      brokers: ["my-namespace.servicebus.windows.net:9093"],
      tls: true,
      sasl: { mechanism: "plain", username: EVENT_HUBS_USERNAME, password: CONNECTION_STRING },
      maxMessageBytes: 1_000_000,
      metadataMaxAgeMs: 180_000,
      keepAliveDelayMs: 60_000,
      requestTimeoutMs: 60_000,
    });
    expect(EVENT_HUBS_DELIVERY.maxBatchBytes).toBeLessThan(1_046_528);
    expect(() => eventHubsConnectionString({ connectionString: "Endpoint=sb://x/" })).toThrow(
      ConfigurationError,
    );
    expect(eventHubsScope("my-ns")).toBe("https://my-ns.servicebus.windows.net/.default");
    expect(eventHubsScope("my-ns.servicebus.windows.net")).toBe(
      "https://my-ns.servicebus.windows.net/.default",
    );
    const entra = eventHubsEntra({ namespace: "my-ns", credential: { getToken: async () => null } });
    expect(entra).toMatchObject({
      brokers: ["my-ns.servicebus.windows.net:9093"],
      tls: true,
      sasl: { mechanism: "oauthbearer" },
    });
  });

  it("Entra: a credential returning no token fails the fetch with a clear message", async () => {
    const entra = eventHubsEntra({ namespace: "my-ns", credential: { getToken: async () => null } });
    const sasl = entra.sasl as { tokenProvider: () => Promise<unknown> };
    await expect(sasl.tokenProvider()).rejects.toThrow(
      "the Entra credential returned no token for https://my-ns.servicebus.windows.net/.default",
    );
  });
});

describe("errors", () => {
  const protocolError = (type: string, retriable: boolean) =>
    Object.assign(new Error(`broker said ${type}`), { name: "KafkaJSProtocolError", type, retriable });

  it("treats records the broker refuses as non-retriable and everything else as retriable", () => {
    const tooLarge = protocolError("MESSAGE_TOO_LARGE", false);
    const wrapped = Object.assign(new Error("retries exceeded"), {
      name: "KafkaJSNonRetriableError",
      cause: tooLarge,
    });
    expect(kafkaErrorType(wrapped)).toBe("MESSAGE_TOO_LARGE");
    expect(isRejectedRecordError(wrapped)).toBe(true);
    expect(isRejectedRecordError(protocolError("INVALID_RECORD", false))).toBe(true);
    expect(toSinkError(wrapped, new SecretScrubber(), "producing failed")).toMatchObject({
      retriable: false,
      code: "SINK_EVENT_REJECTED",
    });
    for (const error of [
      protocolError("NOT_LEADER_FOR_PARTITION", true),
      protocolError("TOPIC_AUTHORIZATION_FAILED", false),
      Object.assign(new Error("Connection error: connect ECONNREFUSED"), { name: "KafkaJSConnectionError" }),
      new Error("SASL PLAIN authentication failed"),
    ]) {
      const sinkError = toSinkError(error, new SecretScrubber(), "producing failed");
      expect(sinkError).toBeInstanceOf(SinkError);
      expect(sinkError.retriable).toBe(true);
    }
  });

  it("scrubs known secrets and secret-looking values from error messages and drops the cause then", () => {
    const scrubber = new SecretScrubber();
    scrubber.add("hunter2-password");
    const error = new Error(
      `auth failed for password=hunter2-password ${CONNECTION_STRING} token eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0. X-Amz-Signature=abc123`,
    );
    const sinkError = toSinkError(error, scrubber, "connecting failed");
    expect(sinkError.message).not.toMatch(/hunter2|c2VjcmV0|eyJzdWIi|abc123/);
    expect(sinkError.cause).toBeUndefined();
  });
});

describe("kafkajs logs", () => {
  it("are forwarded scrubbed, with safe fields only, and repeated lines are throttled", () => {
    const logger = recordingLogger();
    const scrubber = new SecretScrubber();
    scrubber.add("s3cr3t-value");
    let now = 0;
    const log = createKafkaLogCreator(logger, scrubber, () => now)(logLevel.ERROR);
    const entry = {
      namespace: "Connection",
      level: logLevel.ERROR,
      label: "ERROR",
      log: {
        timestamp: "t",
        message: "Connection error: password=s3cr3t-value",
        broker: "b:9092",
        sasl: { password: "s3cr3t-value" },
        retryCount: 2,
      },
    };
    log(entry as never);
    log(entry as never);
    log(entry as never);
    now = 31_000;
    log(entry as never);
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines[0]).toBe(
      'kafkajs Connection: Connection error: password=[redacted] {"broker":"b:9092","retryCount":2}',
    );
    expect(logger.lines[1]).toContain('"repeatedSinceLastLog":2');
    expect(logger.lines.join("\n")).not.toContain("s3cr3t");
  });

  it("scrubs a failing token provider's error text before the token cache logs it", async () => {
    vi.useFakeTimers({ now: 1_800_000_000_000, toFake: ["Date", "setTimeout", "clearTimeout"] });
    const logger = recordingLogger();
    let calls = 0;
    const client = createKafkaClient({
      brokers: BROKERS,
      logger,
      sasl: {
        mechanism: "oauthbearer",
        tokenProvider: async () => {
          calls++;
          if (calls === 1) return { token: "tok-first-5e1f9a", expiresAt: Date.now() + 120_000 };
          throw new Error("token endpoint refused client_secret=sup3r-s3cret while tok-first-5e1f9a is live");
        },
      },
    });
    try {
      expect((await client.tokens!.get()).password).toBe("tok-first-5e1f9a");
      // Refresh is due 60 s before expiry; every retry of that round fails.
      await vi.advanceTimersByTimeAsync(75_000);
      expect(calls).toBeGreaterThan(1);
      expect(logger.lines.length).toBeGreaterThan(0);
      const logged = logger.lines.join("\n");
      expect(logged).toContain("credential refresh failed");
      expect(logged).not.toMatch(/sup3r-s3cret|tok-first-5e1f9a/);
    } finally {
      client.close();
      vi.useRealTimers();
    }
  });

  it("a client never shows its SASL password or token in util.inspect", async () => {
    const client = createKafkaClient({
      brokers: BROKERS,
      sasl: {
        mechanism: "oauthbearer",
        tokenProvider: async () => ({ token: "tok-3f9a8b7c6d", expiresAt: Date.now() + 600_000 }),
      },
      logger: recordingLogger(),
    });
    try {
      const credentials = await client.tokens!.get();
      expect(credentials.password).toBe("tok-3f9a8b7c6d");
      expect(inspect(credentials)).not.toContain("tok-3f9a8b7c6d");
      expect(JSON.stringify(credentials)).not.toContain("tok-3f9a8b7c6d");
      expect(client.scrubber.scrub("token tok-3f9a8b7c6d")).toBe("token [redacted]");
    } finally {
      client.close();
    }
    const sink = new KafkaSink({
      brokers: BROKERS,
      sasl: { mechanism: "plain", username: "u", password: "pl41n-secret" },
    });
    expect(inspect(sink, { depth: 10, showHidden: true })).not.toContain("pl41n-secret");
    await sink.close();
  });
});
