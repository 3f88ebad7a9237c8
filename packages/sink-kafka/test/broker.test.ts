import type { KafkaConfig } from "kafkajs";
import { Kafka, logLevel } from "kafkajs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  brokerSockets,
  EVENT_HUBS_CONNECTION_STRING,
  EVENT_HUBS_USERNAME,
  KAFKA_OAUTH_REAUTH_MS,
  KAFKA_OAUTH_SCOPE,
  KAFKA_PORTS,
  type KafkaTestConnection,
  kafkaEventHubsConfig,
  kafkaMtlsConfig,
  kafkaOauthConfig,
  kafkaPlaintextConfig,
  kafkaSaslSslConfig,
  makeUnsecuredJwt,
  readKafkaCa,
  requireBroker,
  uniqueTopic,
} from "./broker";

function decodeJwt(token: string): { header: unknown; payload: Record<string, unknown>; signature: string } {
  const [header = "", payload = "", signature = "", ...rest] = token.split(".");
  expect(rest).toEqual([]);
  const parse = (part: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
  return { header: parse(header), payload: parse(payload), signature };
}

function client(connection: KafkaTestConnection, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: "streamll-harness-test",
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    ...connection,
    ...overrides,
  });
}

/** Connects an admin client and lists topics: a SASL handshake (if any) plus a metadata request. */
async function listTopics(connection: KafkaTestConnection, overrides: Partial<KafkaConfig> = {}) {
  const admin = client(connection, { retry: { retries: 0 }, ...overrides }).admin();
  try {
    await admin.connect();
    return await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
}

describe("makeUnsecuredJwt", () => {
  it("builds an alg=none JWS with whole-second iat/exp, the required scope and no signature", () => {
    const token = makeUnsecuredJwt({ sub: "svc-a", lifetimeMs: 90_500, now: 1_700_000_000_250 });
    const { header, payload, signature } = decodeJwt(token);
    expect(header).toEqual({ alg: "none" });
    expect(payload).toEqual({
      sub: "svc-a",
      iat: 1_700_000_000,
      exp: 1_700_000_090,
      scope: KAFKA_OAUTH_SCOPE,
    });
    expect(signature).toBe("");
  });

  it("keeps several scopes as a JSON array and never lets extra claims replace the standard ones", () => {
    const token = makeUnsecuredJwt({
      scope: ["kafka", "events.write"],
      now: 0,
      claims: { aud: "local", sub: "intruder", exp: 1 },
    });
    const { payload } = decodeJwt(token);
    expect(payload).toEqual({
      aud: "local",
      sub: "streamll",
      iat: 0,
      exp: 60,
      scope: ["kafka", "events.write"],
    });
  });

  it("makes expired tokens from a negative lifetime", () => {
    const { payload } = decodeJwt(makeUnsecuredJwt({ lifetimeMs: -30_000, now: 100_000 }));
    expect(payload.exp).toBe(70);
    expect(payload.iat).toBe(100);
  });
});

describe("harness broker", () => {
  beforeAll(async () => {
    await requireBroker();
  });

  it("accepts every authentication shape and delivers what each one produced", async () => {
    const topic = uniqueTopic("harness-auth");
    const shapes: Array<[string, KafkaTestConnection]> = [
      ["plaintext", kafkaPlaintextConfig()],
      ["sasl-plain", kafkaSaslSslConfig()],
      ["event-hubs", kafkaEventHubsConfig()],
      ["scram-sha-256", kafkaSaslSslConfig({ mechanism: "scram-sha-256" })],
      ["scram-sha-512", kafkaSaslSslConfig({ mechanism: "scram-sha-512" })],
      ["mtls", kafkaMtlsConfig()],
      ["oauthbearer", kafkaOauthConfig()],
    ];
    for (const [name, connection] of shapes) {
      const producer = client(connection).producer({ allowAutoTopicCreation: true });
      await producer.connect();
      await producer.send({ topic, messages: [{ key: name, value: `via ${name}` }] });
      await producer.disconnect();
    }

    const consumer = client(kafkaSaslSslConfig()).consumer({ groupId: uniqueTopic("harness-group") });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = new Map<string, string>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only got ${[...received.keys()].join(",")}`)), 20_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          received.set(message.key?.toString() ?? "", message.value?.toString() ?? "");
          if (received.size === shapes.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    expect(Object.fromEntries(received)).toEqual(
      Object.fromEntries(shapes.map(([name]) => [name, `via ${name}`])),
    );
  });

  it("creates topics on first use with three partitions", async () => {
    const topic = uniqueTopic("harness-partitions");
    const kafka = client(kafkaPlaintextConfig());
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    await producer.send({ topic, messages: [{ value: "x" }] });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.disconnect();
    expect(metadata.topics[0]?.partitions).toHaveLength(3);
  });

  it("rejects a wrong PLAIN password and the Event Hubs user with a different connection string", async () => {
    await expect(listTopics(kafkaSaslSslConfig({ password: "wrong" }))).rejects.toThrow(
      /SASL PLAIN authentication failed/,
    );
    await expect(
      listTopics(
        kafkaSaslSslConfig({
          username: EVENT_HUBS_USERNAME,
          password: EVENT_HUBS_CONNECTION_STRING.replace("dGVzdA==", "b3RoZXI="),
        }),
      ),
    ).rejects.toThrow(/SASL PLAIN authentication failed/);
  });

  it("verifies the broker certificate: without the harness CA the TLS handshake fails", async () => {
    const { brokers, sasl } = kafkaSaslSslConfig();
    await expect(listTopics({ brokers, sasl, ssl: true })).rejects.toThrow(/certificate/);
    await expect(listTopics({ brokers, sasl, ssl: { ca: [readKafkaCa()] } })).resolves.toBeInstanceOf(Array);
  });

  it("requires a client certificate on the SSL listener", async () => {
    const { brokers, ssl } = kafkaMtlsConfig();
    const ca = typeof ssl === "object" ? ssl.ca : undefined;
    await expect(listTopics({ brokers, ssl: { ca } })).rejects.toThrow();
  });

  it("rejects OAUTHBEARER tokens that are expired or lack the required scope", async () => {
    const expired = kafkaOauthConfig({
      oauthBearerProvider: async () => ({ value: makeUnsecuredJwt({ lifetimeMs: -60_000 }) }),
    });
    const unscoped = kafkaOauthConfig({
      oauthBearerProvider: async () => ({ value: makeUnsecuredJwt({ scope: ["other"] }) }),
    });
    await expect(listTopics(expired)).rejects.toThrow();
    await expect(listTopics(unscoped)).rejects.toThrow();
    await expect(listTopics(kafkaOauthConfig())).resolves.toBeInstanceOf(Array);
  });

  it(
    "caps OAUTHBEARER sessions so a long-lived client re-authenticates with a fresh token",
    async () => {
      let tokens = 0;
      const connection = kafkaOauthConfig({
        oauthBearerProvider: async () => {
          tokens += 1;
          return { value: makeUnsecuredJwt() };
        },
      });
      const admin = client(connection).admin();
      await admin.connect();
      // The first request opens every connection the loop will use, so later tokens come from re-authentication.
      await admin.listTopics();
      const initial = tokens;
      const sockets = brokerSockets(KAFKA_PORTS.oauth);
      const seen = new Set<string>();
      // Requests keep flowing past the point where kafkajs must re-authenticate (session minus threshold).
      const until = Date.now() + KAFKA_OAUTH_REAUTH_MS - 1_000;
      while (Date.now() < until) {
        await admin.listTopics();
        for (const socket of brokerSockets(KAFKA_PORTS.oauth)) seen.add(socket);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await admin.listTopics();
      for (const socket of brokerSockets(KAFKA_PORTS.oauth)) seen.add(socket);
      await admin.disconnect();
      expect(initial).toBeGreaterThanOrEqual(1);
      expect(tokens).toBeGreaterThan(initial);
      // The new tokens went over the existing connections (re-authentication), not over new ones.
      expect(sockets.size).toBeGreaterThan(0);
      expect([...seen].filter((socket) => !sockets.has(socket))).toEqual([]);
    },
    KAFKA_OAUTH_REAUTH_MS + 20_000,
  );
});
