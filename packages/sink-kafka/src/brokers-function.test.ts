// A `brokers` function that fails for good (mskBrokersFromArn without its optional SDK, a bad ARN) throws a
// ConfigurationError; kafkajs wraps it in a KafkaJSConnectionError of its message alone. The sink and the
// reader must still see the permanent error, not an outage to retry forever.
import { ConfigurationError, DeliveryPipeline, encodeEvent } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { KafkaEventReader } from "./kafka-event-reader";
import { KafkaSink } from "./kafka-sink";
import { makeEvent, recordingLogger } from "./test-support/kafka-test-support";

const missingSdk = async (): Promise<readonly string[]> => {
  throw new ConfigurationError(
    "mskBrokersFromArn() needs the optional package @aws-sdk/client-kafka, not installed: npm install @aws-sdk/client-kafka",
    [{ path: "@aws-sdk/client-kafka", message: "optional peer dependency not installed" }],
    { fix: "npm install @aws-sdk/client-kafka" },
  );
};

describe("a brokers function that throws a ConfigurationError", () => {
  it("fails the sink once, with the fix, instead of retrying", async () => {
    const sink = new KafkaSink({ brokers: missingSdk, topic: "brokers-fn", logger: recordingLogger() });
    const lines: string[] = [];
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 1, retry: { initialDelayMs: 1 } },
      { logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) } },
    );
    try {
      for (let i = 0; i < 3; i++) pipeline.enqueue(encodeEvent(makeEvent({ data: { i } })));
      expect(await pipeline.flush(10_000)).toBe(true);
      const metrics = pipeline.getMetrics();
      expect(metrics.failed).toMatchObject({
        code: "CONFIGURATION_INVALID",
        fix: "npm install @aws-sdk/client-kafka",
      });
      expect(metrics.droppedByReason["sink-failed"]).toBe(3);
      expect(metrics.retried).toBe(0);
      expect(lines).toHaveLength(1);
    } finally {
      await pipeline.shutdown(2_000);
    }
  });

  it("makes the reader's run() reject with the fix", async () => {
    const reader = new KafkaEventReader({
      brokers: missingSdk,
      topic: "brokers-fn",
      groupId: "brokers-fn",
      logger: recordingLogger(),
    });
    await expect(reader.run(async () => {})).rejects.toThrow(/npm install @aws-sdk\/client-kafka/);
  });
});
