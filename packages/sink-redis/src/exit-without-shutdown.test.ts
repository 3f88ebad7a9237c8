// A program that configures a RedisSink, emits events and simply ends (no shutdown()) must exit by itself once
// core's `beforeExit` flush delivered its events: the sink's open connection alone must not keep it alive.
// The program is a child process (test/exit-process.mjs, on the built package) against the real Redis.
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventIndexes,
  expectExited,
  range,
  runExitProgram,
  runWithSilentPeer,
} from "../../../test-support/exit-without-shutdown.mjs";
import { closedPort } from "../../../test-support/shutdown-exit.mjs";
import {
  PrivateRedis,
  REDIS_URL,
  redisAvailable,
  redisServerInstalled,
  uniqueName,
} from "./test-support/redis-servers";

const WORKER = fileURLToPath(new URL("../test/exit-process.mjs", import.meta.url));

/** The `i` of every event in `stream`, sorted. */
async function storedIndexes(client: Redis, stream: string): Promise<number[]> {
  const entries = (await client.xrange(stream, "-", "+")) as [string, string[]][];
  return eventIndexes(entries.map(([, fields]) => fields[fields.indexOf("event") + 1] ?? "{}"));
}

describe("RedisSink: a program that ends without shutdown() exits, its events delivered", () => {
  let admin: Redis;
  const streams: string[] = [];

  beforeAll(async () => {
    if (!(await redisAvailable())) throw new Error(`Redis is not reachable at ${REDIS_URL}`);
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    if (streams.length > 0) await admin.del(...streams);
    admin.disconnect();
  });

  it.each([
    ["a few events, still queued when the program ends", 5, 0],
    ["1,000 events, batches still queued when the program ends", 1_000, 0],
    ["events delivered before the end, the connection left open and idle", 20, 1_000],
  ])("%s", { timeout: 30_000 }, async (_name, count, idleMs) => {
    const stream = uniqueName("exit");
    streams.push(stream);
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_URL: REDIS_URL,
      STREAMLL_EXIT_STREAM: stream,
      STREAMLL_EXIT_COUNT: String(count),
      STREAMLL_EXIT_IDLE_MS: String(idleMs),
    });
    expectExited(expect, run);
    expect(await storedIndexes(admin, stream)).toEqual(range(count));
  });

  it("holds the process while a direct send() or close() is awaited, with nothing else to keep it alive", {
    timeout: 30_000,
  }, async () => {
    const stream = uniqueName("exit-direct");
    streams.push(stream);
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_URL: REDIS_URL,
      STREAMLL_EXIT_STREAM: stream,
      STREAMLL_EXIT_COUNT: "50",
      STREAMLL_EXIT_DIRECT: "1",
    });
    expectExited(expect, run);
    expect(await storedIndexes(admin, stream)).toEqual(range(50));
  });

  it("exits by the exit flush deadline when the server accepts connections and never answers", {
    timeout: 30_000,
  }, async () => {
    // The connect timeout (60 s) is past the kill bound: only the exit flush's deadline (1 s) can end it, so
    // neither the socket nor the send waiting on it may hold the process.
    const run = await runWithSilentPeer(WORKER, (port) => ({
      STREAMLL_EXIT_URL: `redis://127.0.0.1:${port}`,
      STREAMLL_EXIT_STREAM: uniqueName("exit-silent"),
      STREAMLL_EXIT_COUNT: "5",
      STREAMLL_EXIT_FLUSH_MS: "1000",
      STREAMLL_EXIT_CONNECT_TIMEOUT_MS: "60000",
    }));
    expectExited(expect, run);
  });

  it("exits when Redis is unreachable: reconnect attempts do not keep it alive", {
    timeout: 30_000,
  }, async () => {
    const run = await runExitProgram(WORKER, {
      STREAMLL_EXIT_URL: `redis://127.0.0.1:${await closedPort()}`,
      STREAMLL_EXIT_STREAM: uniqueName("exit-down"),
      STREAMLL_EXIT_COUNT: "5",
      STREAMLL_EXIT_FLUSH_MS: "1000",
    });
    expectExited(expect, run);
  });
});

describe.skipIf(!redisServerInstalled())(
  "RedisSink (cluster: true): a program that ends without shutdown() exits",
  () => {
    let server: PrivateRedis;
    let admin: Redis;

    beforeAll(async () => {
      server = await PrivateRedis.start({ cluster: true });
      admin = new Redis(server.url);
    }, 30_000);

    afterAll(async () => {
      admin?.disconnect();
      await server?.stop();
    });

    it("1,000 events still queued when the program ends", { timeout: 30_000 }, async () => {
      const stream = "{exit}:events";
      const run = await runExitProgram(WORKER, {
        STREAMLL_EXIT_URL: server.url,
        STREAMLL_EXIT_STREAM: stream,
        STREAMLL_EXIT_COUNT: "1000",
        STREAMLL_EXIT_CLUSTER: "1",
      });
      expectExited(expect, run);
      expect(await storedIndexes(admin, stream)).toEqual(range(1_000));
    });
  },
);
