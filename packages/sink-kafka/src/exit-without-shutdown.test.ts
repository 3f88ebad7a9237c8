// A program that configures a KafkaSink, emits events and simply ends (no shutdown()) must exit by itself once
// core's `beforeExit` flush delivered its events: the sink's open broker connections alone must not keep it
// alive. The program is a child process (test/exit-process.mjs, on the built package) against the harness
// broker (see test/global-setup.ts).
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  eventIndexes,
  expectExited,
  range,
  runExitProgram,
  runWithSilentPeer,
} from "../../../test-support/exit-without-shutdown.mjs";
import { closedPort } from "../../../test-support/shutdown-exit.mjs";
import {
  KAFKA_CA_FILE,
  KAFKA_PLAINTEXT_BROKERS,
  KAFKA_SASL_PASSWORD,
  KAFKA_SASL_SSL_BROKERS,
  KAFKA_SASL_USERNAME,
  kafkaPlaintextConfig,
  uniqueTopic,
} from "../test/broker";
import { readTopic } from "./test-support/kafka-test-support";

const WORKER = fileURLToPath(new URL("../test/exit-process.mjs", import.meta.url));

/** The `i` of every event on `topic`, sorted. */
async function topicIndexes(topic: string, count: number): Promise<number[]> {
  const messages = await readTopic(kafkaPlaintextConfig(), topic, count);
  return eventIndexes(messages.map((message) => message.value));
}

describe("KafkaSink: a program that ends without shutdown() exits, its events delivered", () => {
  it.each([
    ["a few events, still queued when the program ends", 5, 0],
    ["1,000 events, batches still queued when the program ends", 1_000, 0],
    ["events delivered before the end, the connections left open and idle", 20, 3_000],
  ])("%s", { timeout: 60_000 }, async (_name, count, idleMs) => {
    const topic = uniqueTopic("streamll-exit");
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_BROKERS: KAFKA_PLAINTEXT_BROKERS.join(","),
      STREAMLL_EXIT_TOPIC: topic,
      STREAMLL_EXIT_COUNT: String(count),
      STREAMLL_EXIT_IDLE_MS: String(idleMs),
    });
    expectExited(expect, run);
    expect(await topicIndexes(topic, count)).toEqual(range(count));
  });

  it("holds the process while a direct send() or close() is awaited, with nothing else to keep it alive", {
    timeout: 60_000,
  }, async () => {
    const topic = uniqueTopic("streamll-exit-direct");
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_BROKERS: KAFKA_PLAINTEXT_BROKERS.join(","),
      STREAMLL_EXIT_TOPIC: topic,
      STREAMLL_EXIT_COUNT: "50",
      STREAMLL_EXIT_DIRECT: "1",
    });
    expectExited(expect, run);
    expect(await topicIndexes(topic, 50)).toEqual(range(50));
  });

  it("1,000 events over SASL_SSL (TLS sockets), still queued when the program ends", {
    timeout: 60_000,
  }, async () => {
    const topic = uniqueTopic("streamll-exit-tls");
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_BROKERS: KAFKA_SASL_SSL_BROKERS.join(","),
      STREAMLL_EXIT_CA_FILE: KAFKA_CA_FILE,
      STREAMLL_EXIT_SASL_USERNAME: KAFKA_SASL_USERNAME,
      STREAMLL_EXIT_SASL_PASSWORD: KAFKA_SASL_PASSWORD,
      STREAMLL_EXIT_TOPIC: topic,
      STREAMLL_EXIT_COUNT: "1000",
    });
    expectExited(expect, run);
    // Both listeners belong to the one harness broker.
    expect(await topicIndexes(topic, 1_000)).toEqual(range(1_000));
  });

  it("exits when the broker is unreachable: kafkajs's connection retries do not keep it alive", {
    timeout: 30_000,
  }, async () => {
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_BROKERS: `127.0.0.1:${await closedPort()}`,
      STREAMLL_EXIT_TOPIC: uniqueTopic("streamll-exit-down"),
      STREAMLL_EXIT_COUNT: "5",
      STREAMLL_EXIT_FLUSH_MS: "1000",
    });
    expectExited(expect, run);
  });

  it("exits when the broker accepts connections and never answers: a request left in flight does not keep it alive", {
    timeout: 30_000,
  }, async () => {
    // The pipeline's send waits on kafkajs's ApiVersions request, in flight on the open connection until
    // kafkajs's requestTimeout, and its own send timeout is the default 30 s: both past the kill bound. Neither
    // the send, that socket nor kafkajs's request timeout watchdog may hold the process: the exit flush's
    // deadline (1 s) ends it.
    const run = await runWithSilentPeer(WORKER, (port) => ({
      STREAMLL_EXIT_BROKERS: `127.0.0.1:${port}`,
      STREAMLL_EXIT_TOPIC: uniqueTopic("streamll-exit-silent"),
      STREAMLL_EXIT_COUNT: "5",
      STREAMLL_EXIT_FLUSH_MS: "1000",
    }));
    expectExited(expect, run);
  });
});
