// A second, independent client (kcat, built on librdkafka) reads what KafkaSink produced: the wire format is
// plain Kafka, not something only kafkajs understands.
import { execFile } from "node:child_process";
import { decodeEvent } from "@streamll/core";
import { beforeAll, describe, expect, it } from "vitest";
import {
  KAFKA_CA_FILE,
  KAFKA_PLAINTEXT_BROKERS,
  KAFKA_SASL_PASSWORD,
  KAFKA_SASL_SSL_BROKERS,
  KAFKA_SASL_USERNAME,
  kafkaSaslSslConfig,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import { KafkaSink } from "./kafka-sink";
import { encodeAll, makeEvent, recordingLogger } from "./test-support/kafka-test-support";

interface KcatMessage {
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  key: string | null;
  payload: string | null;
  headers?: string[];
}

function kcat(args: string[]): Promise<KcatMessage[]> {
  return new Promise((resolve, reject) => {
    execFile("kcat", args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`kcat failed (is the Debian package kcat installed?): ${stderr || error.message}`));
        return;
      }
      resolve(
        stdout
          .split("\n")
          .filter((line) => line.trim() !== "")
          .map((line) => JSON.parse(line) as KcatMessage),
      );
    });
  });
}

beforeAll(async () => {
  await requireBroker(["plaintext", "sasl_ssl"]);
});

describe("kcat reads what KafkaSink produced", () => {
  it("sees the key, the wire JSON, the headers and the event time", async () => {
    const topic = uniqueTopic("kcat");
    const events = [
      makeEvent({ event_type: "start", module_name: "Résumé✨", data: { inputs: { q: "ünïcödé 🎉" } } }),
      makeEvent({ event_type: "token", data: { field: "answer", token: "Hi", token_index: 0 } }),
      makeEvent({ event_type: "end", data: { duration_ms: 3.5 } }),
    ];
    const encoded = encodeAll(events);
    const sink = new KafkaSink({
      brokers: [...KAFKA_PLAINTEXT_BROKERS],
      topic,
      logger: recordingLogger(),
      compression: "gzip",
    });
    try {
      await sink.send(encoded, { signal: AbortSignal.timeout(15_000), attempt: 1 });
    } finally {
      await sink.close();
    }
    const messages = await kcat([
      "-b",
      KAFKA_PLAINTEXT_BROKERS[0]!,
      "-C",
      "-t",
      topic,
      "-o",
      "beginning",
      "-e",
      "-q",
      "-J",
    ]);
    expect(messages).toHaveLength(3);
    const byId = new Map(messages.map((m) => [JSON.parse(m.payload ?? "{}").event_id as string, m]));
    for (const original of encoded) {
      const message = byId.get(original.event_id)!;
      expect(message.payload).toBe(original.json);
      expect(message.key).toBe(original.execution_id);
      expect(message.ts).toBe(Date.parse(original.timestamp));
      expect(message.headers).toEqual([
        "schema_version",
        "1.0",
        "event_type",
        original.event_type,
        "module_name",
        original.module_name,
      ]);
      const decoded = decodeEvent(message.payload ?? "");
      expect(decoded.ok).toBe(true);
    }
  });

  it("reads over SASL_SSL PLAIN with certificate verification, like a Confluent Cloud client", async () => {
    const topic = uniqueTopic("kcat-tls");
    const secure = new KafkaSink({
      brokers: [...KAFKA_SASL_SSL_BROKERS],
      tls: { ca: (kafkaSaslSslConfig().ssl as { ca: Buffer[] }).ca },
      sasl: { mechanism: "plain", username: KAFKA_SASL_USERNAME, password: KAFKA_SASL_PASSWORD },
      topic,
      logger: recordingLogger(),
    });
    const encoded = encodeAll([makeEvent()]);
    try {
      await secure.send(encoded, { signal: AbortSignal.timeout(15_000), attempt: 1 });
    } finally {
      await secure.close();
    }
    const messages = await kcat([
      "-b",
      KAFKA_SASL_SSL_BROKERS[0]!,
      "-X",
      "security.protocol=SASL_SSL",
      "-X",
      "sasl.mechanisms=PLAIN",
      "-X",
      `sasl.username=${KAFKA_SASL_USERNAME}`,
      "-X",
      `sasl.password=${KAFKA_SASL_PASSWORD}`,
      "-X",
      `ssl.ca.location=${KAFKA_CA_FILE}`,
      "-C",
      "-t",
      topic,
      "-o",
      "beginning",
      "-e",
      "-q",
      "-J",
    ]);
    expect(messages.map((m) => m.payload)).toEqual([encoded[0]!.json]);
  });
});
