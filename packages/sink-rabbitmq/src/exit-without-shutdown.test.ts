// A program that configures a RabbitMQSink, emits events and simply ends (no shutdown()) must exit by itself
// once core's `beforeExit` flush delivered its events: the sink's open connection (socket, heartbeat timers)
// alone must not keep it alive. The program is a child process (test/exit-process.mjs, on the built package)
// against the real broker.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { afterAll, describe, expect, it } from "vitest";
import { closedPort, startSilentPeer } from "../../../test-support/shutdown-exit.mjs";
import { BROKER_HOST, BROKER_PORT, skipWithoutBroker } from "./__fixtures__/broker";
import { testId } from "./__fixtures__/events";

const WORKER = fileURLToPath(new URL("../test/exit-process.mjs", import.meta.url));
const BROKER_URL = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/`;
/** A behaviour bound: a child still running after this never exits by itself. */
const KILL_AFTER_MS = 20_000;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runProgram(env: Record<string, string>): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stderr });
    });
  });
}

function expectExited(run: ChildRun): void {
  const report = `exit code ${run.code}, signal ${run.signal}\n${run.stderr.slice(-2_000)}`;
  expect(
    run.signal,
    `killed after ${KILL_AFTER_MS} ms: the program never ended by itself. ${report}`,
  ).toBeNull();
  expect(run.code, report).toBe(0);
}

/** The `i` of every message in `queue`, sorted (the queue is drained). */
async function queuedIndexes(queue: string): Promise<number[]> {
  const connection = await amqp.connect(BROKER_URL);
  try {
    const channel = await connection.createChannel();
    const indexes: number[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) break;
      const event = JSON.parse(message.content.toString("utf8")) as { data?: { i?: number } };
      indexes.push(Number(event.data?.i));
    }
    return indexes.sort((a, b) => a - b);
  } finally {
    await connection.close();
  }
}

const range = (count: number) => Array.from({ length: count }, (_, i) => i);

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
      const run = await runProgram({
        STREAMLL_EXIT_URL: BROKER_URL,
        STREAMLL_EXIT_EXCHANGE: exchange,
        STREAMLL_EXIT_QUEUE: queue,
        STREAMLL_EXIT_COUNT: String(count),
        STREAMLL_EXIT_IDLE_MS: String(idleMs),
      });
      expectExited(run);
      expect(await queuedIndexes(queue)).toEqual(range(count));
    });

    it("holds the process while a direct connect(), send() or close() is awaited, with nothing else to keep it alive", {
      timeout: 30_000,
    }, async () => {
      const { exchange, queue } = names();
      const run = await runProgram({
        STREAMLL_EXIT_URL: BROKER_URL,
        STREAMLL_EXIT_EXCHANGE: exchange,
        STREAMLL_EXIT_QUEUE: queue,
        STREAMLL_EXIT_COUNT: "50",
        STREAMLL_EXIT_DIRECT: "1",
      });
      expectExited(run);
      expect(await queuedIndexes(queue)).toEqual(range(50));
    });

    it("exits by the exit flush deadline when the broker accepts connections and never answers", {
      timeout: 30_000,
    }, async () => {
      // The connect timeout (60 s) is past the kill bound: only the exit flush's deadline (1 s) can end it, so
      // neither the socket nor the send waiting on it may hold the process.
      const peer = await startSilentPeer();
      try {
        const run = await runProgram({
          STREAMLL_EXIT_URL: `amqp://guest:guest@127.0.0.1:${peer.port}/`,
          STREAMLL_EXIT_EXCHANGE: "exit_x_silent",
          STREAMLL_EXIT_QUEUE: "exit_q_silent",
          STREAMLL_EXIT_COUNT: "5",
          STREAMLL_EXIT_FLUSH_MS: "1000",
          STREAMLL_EXIT_CONNECT_TIMEOUT_MS: "60000",
        });
        expectExited(run);
      } finally {
        await peer.close();
      }
    });

    it("exits when the broker is unreachable", { timeout: 30_000 }, async () => {
      const run = await runProgram({
        STREAMLL_EXIT_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}/`,
        STREAMLL_EXIT_EXCHANGE: "exit_x_unreachable",
        STREAMLL_EXIT_QUEUE: "exit_q_unreachable",
        STREAMLL_EXIT_COUNT: "5",
        STREAMLL_EXIT_FLUSH_MS: "1000",
      });
      expectExited(run);
    });
  },
);
