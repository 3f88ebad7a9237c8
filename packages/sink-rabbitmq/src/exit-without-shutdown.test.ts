// A program that configures a RabbitMQSink, emits events and simply ends (no shutdown()) must exit by itself
// once core's `beforeExit` flush delivered its events: the sink's open connection (socket, heartbeat timers)
// alone must not keep it alive. The program is a child process (test/exit-process.mjs, on the built package)
// against the real broker.
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { afterAll, describe, expect, it } from "vitest";
import {
  eventIndexes,
  expectExited,
  range,
  runExitProgram,
  runWithSilentPeer,
} from "../../../test-support/exit-without-shutdown.mjs";
import { closedPort } from "../../../test-support/shutdown-exit.mjs";
import { BROKER_HOST, BROKER_PORT, skipWithoutBroker } from "./__fixtures__/broker";
import { testId } from "./__fixtures__/events";

const WORKER = fileURLToPath(new URL("../test/exit-process.mjs", import.meta.url));
const BROKER_URL = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/`;

/** The `i` of every message in `queue`, sorted (the queue is drained). */
async function queuedIndexes(queue: string): Promise<number[]> {
  const connection = await amqp.connect(BROKER_URL);
  try {
    const channel = await connection.createChannel();
    const payloads: string[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) break;
      payloads.push(message.content.toString("utf8"));
    }
    return eventIndexes(payloads);
  } finally {
    await connection.close();
  }
}

describe.skipIf(skipWithoutBroker)(
  "RabbitMQSink: a program that ends without shutdown() exits, its events delivered",
  () => {
    const created: { exchange: string; queue: string }[] = [];

    function names(): { exchange: string; queue: string } {
      const id = testId().replace(/[^A-Za-z0-9]/g, "_");
      const pair = { exchange: `exit_x_${id}`, queue: `exit_q_${id}` };
      created.push(pair);
      return pair;
    }

    afterAll(async () => {
      const connection = await amqp.connect(BROKER_URL);
      const channel = await connection.createChannel();
      for (const { exchange, queue } of created) {
        await channel.deleteQueue(queue).catch(() => undefined);
        await channel.deleteExchange(exchange).catch(() => undefined);
      }
      await connection.close().catch(() => undefined);
    });

    it.each([
      ["a few events, still queued when the program ends", 5, 0],
      ["1,000 events, batches still queued when the program ends", 1_000, 0],
      ["events delivered before the end, the connection left open and idle", 20, 1_000],
    ])("%s", { timeout: 30_000 }, async (_name, count, idleMs) => {
      const { exchange, queue } = names();
      const run = await runExitProgram(WORKER, {
        STREAMLL_EXIT_URL: BROKER_URL,
        STREAMLL_EXIT_EXCHANGE: exchange,
        STREAMLL_EXIT_QUEUE: queue,
        STREAMLL_EXIT_COUNT: String(count),
        STREAMLL_EXIT_IDLE_MS: String(idleMs),
      });
      expectExited(expect, run);
      expect(await queuedIndexes(queue)).toEqual(range(count));
    });

    it("holds the process while a direct connect(), send() or close() is awaited, with nothing else to keep it alive", {
      timeout: 30_000,
    }, async () => {
      const { exchange, queue } = names();
      const run = await runExitProgram(WORKER, {
        STREAMLL_EXIT_URL: BROKER_URL,
        STREAMLL_EXIT_EXCHANGE: exchange,
        STREAMLL_EXIT_QUEUE: queue,
        STREAMLL_EXIT_COUNT: "50",
        STREAMLL_EXIT_DIRECT: "1",
      });
      expectExited(expect, run);
      expect(await queuedIndexes(queue)).toEqual(range(50));
    });

    it("exits by the exit flush deadline when the broker accepts connections and never answers", {
      timeout: 30_000,
    }, async () => {
      // The connect timeout (60 s) is past the kill bound: only the exit flush's deadline (1 s) can end it, so
      // neither the socket nor the send waiting on it may hold the process.
      const run = await runWithSilentPeer(WORKER, (port) => ({
        STREAMLL_EXIT_URL: `amqp://guest:guest@127.0.0.1:${port}/`,
        STREAMLL_EXIT_EXCHANGE: "exit_x_silent",
        STREAMLL_EXIT_QUEUE: "exit_q_silent",
        STREAMLL_EXIT_COUNT: "5",
        STREAMLL_EXIT_FLUSH_MS: "1000",
        STREAMLL_EXIT_CONNECT_TIMEOUT_MS: "60000",
      }));
      expectExited(expect, run);
    });

    it("exits when the broker is unreachable", { timeout: 30_000 }, async () => {
      const run = await runExitProgram(WORKER, {
        STREAMLL_EXIT_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}/`,
        STREAMLL_EXIT_EXCHANGE: "exit_x_unreachable",
        STREAMLL_EXIT_QUEUE: "exit_q_unreachable",
        STREAMLL_EXIT_COUNT: "5",
        STREAMLL_EXIT_FLUSH_MS: "1000",
      });
      expectExited(expect, run);
    });
  },
);
