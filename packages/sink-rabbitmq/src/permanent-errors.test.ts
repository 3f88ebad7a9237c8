// Issue 13: an error no retry can fix is not retried as if transient. A credential provider that throws core's
// ConfigurationError (what amazonMqIamCredentials() does when @aws-sdk/client-sts is not installed, via the
// optional-package loader) must fail the sink for good and end a reader, with the fix reported once. No broker is
// needed: the provider fails before any connection is attempted.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { ConfigurationError, DeliveryPipeline, DIAGNOSTICS_CHANNEL } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { RabbitMQEventReader } from "./rabbitmq-event-reader";
import { RabbitMQSink } from "./rabbitmq-sink";

const FIX = "npm install @aws-sdk/client-sts";

/** Throws as `loadOptionalPackages` does for a missing SDK, counting its calls. */
function missingSdkProvider(): { provider: () => Promise<never>; calls: () => number } {
  let calls = 0;
  return {
    provider: async () => {
      calls += 1;
      throw new ConfigurationError(
        `Amazon MQ IAM authentication needs the optional package @aws-sdk/client-sts, not installed: ${FIX}`,
        [{ path: "@aws-sdk/client-sts", message: "optional peer dependency not installed" }],
        { fix: FIX },
      );
    },
    calls: () => calls,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a credential provider that throws a ConfigurationError", () => {
  it("fails RabbitMQSink for good: reported once with the fix, events dropped as sink-failed, no reconnects", async () => {
    const published: unknown[] = [];
    const onMessage = (message: unknown) => published.push(message);
    subscribe(DIAGNOSTICS_CHANNEL, onMessage);
    const { provider, calls } = missingSdkProvider();
    const sinkLogs: string[] = [];
    const lines: string[] = [];
    const sink = new RabbitMQSink({
      url: "amqp://127.0.0.1:5672",
      credentials: provider,
      logger: { warn: (message) => sinkLogs.push(message) },
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 1, retry: { initialDelayMs: 1 } },
      { logger: { warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) } },
    );
    try {
      for (let i = 0; i < 5; i++) pipeline.enqueue(encoded(makeEvent()));
      expect(await pipeline.flush(5_000)).toBe(true);
      pipeline.enqueue(encoded(makeEvent()));
      // Time for reconnects, had any been scheduled (10-20 ms apart).
      await sleep(200);
      const metrics = pipeline.getMetrics();
      expect(metrics.failed).toMatchObject({ code: "CONFIGURATION_INVALID", fix: FIX });
      expect(metrics.droppedByReason["sink-failed"]).toBe(6);
      expect(metrics.retried).toBe(0);
      expect(metrics.breakerState).toBe("closed");
      expect(calls()).toBe(1);
      expect(lines).toHaveLength(1);
      // The message already ends with the install command: core does not repeat it as a "Fix:".
      expect(lines[0]?.split(FIX)).toHaveLength(2);
      expect(published).toEqual([
        expect.objectContaining({ type: "sink-failed", sink: sink.name, fix: FIX }),
      ]);
      // The pipeline reports it; the sink's own logger does not repeat it.
      expect(sinkLogs).toEqual([]);
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNEL, onMessage);
      await pipeline.shutdown(1_000);
    }
  });

  it("rejects RabbitMQEventReader.run() with the ConfigurationError, logged once, instead of retrying", async () => {
    const { provider, calls } = missingSdkProvider();
    const logs: string[] = [];
    const reader = new RabbitMQEventReader({
      url: "amqp://127.0.0.1:5672",
      queue: `q_${testId()}`,
      credentials: provider,
      logger: { warn: (message) => logs.push(message) },
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    const ready = reader.ready();
    const error = await reader.run(() => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).fix).toBe(FIX);
    await expect(ready).rejects.toBe(error);
    await sleep(100);
    expect(calls()).toBe(1);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/failed permanently: Amazon MQ IAM authentication needs .*@aws-sdk\/client-sts/);
    expect(logs[0]).toContain(FIX);
  });

  it("ends a RabbitMQEventReader iteration with the ConfigurationError", async () => {
    const { provider } = missingSdkProvider();
    const reader = new RabbitMQEventReader({
      url: "amqp://127.0.0.1:5672",
      queue: `q_${testId()}`,
      credentials: provider,
      logger: { warn: () => undefined },
    });
    const iterate = async () => {
      for await (const _ of reader) {
        // No event can arrive.
      }
    };
    await expect(iterate()).rejects.toBeInstanceOf(ConfigurationError);
  });
});
