// A program that configures a RedisSink, emits events and simply ends (no shutdown()) must exit by itself once
// core's `beforeExit` flush delivered its events: the sink's open connection alone must not keep it alive.
// The program is a child process (test/exit-process.mjs, on the built package) against the real Redis.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, startSilentPeer } from "../../../test-support/shutdown-exit.mjs";
import {
  PrivateRedis,
  REDIS_URL,
  redisAvailable,
  redisServerInstalled,
  uniqueName,
} from "./test-support/redis-servers";

const WORKER = fileURLToPath(new URL("../test/exit-process.mjs", import.meta.url));
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

/** The `i` of every event in `stream`, sorted. */
async function storedIndexes(client: Redis, stream: string): Promise<number[]> {
  const entries = (await client.xrange(stream, "-", "+")) as [string, string[]][];
  return entries
    .map(([, fields]) => JSON.parse(fields[fields.indexOf("event") + 1] ?? "{}") as { data?: { i?: number } })
    .map((event) => Number(event.data?.i))
    .sort((a, b) => a - b);
}

const range = (count: number) => Array.from({ length: count }, (_, i) => i);

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
    const run = await runProgram({
      STREAMLL_EXIT_URL: REDIS_URL,
      STREAMLL_EXIT_STREAM: stream,
      STREAMLL_EXIT_COUNT: String(count),
      STREAMLL_EXIT_IDLE_MS: String(idleMs),
    });
    expectExited(run);
    expect(await storedIndexes(admin, stream)).toEqual(range(count));
  });

  it("holds the process while a direct send() or close() is awaited, with nothing else to keep it alive", {
    timeout: 30_000,
  }, async () => {
    const stream = uniqueName("exit-direct");
    streams.push(stream);
    const run = await runProgram({
      STREAMLL_EXIT_URL: REDIS_URL,
      STREAMLL_EXIT_STREAM: stream,
      STREAMLL_EXIT_COUNT: "50",
      STREAMLL_EXIT_DIRECT: "1",
    });
    expectExited(run);
    expect(await storedIndexes(admin, stream)).toEqual(range(50));
  });

  it("exits by the exit flush deadline when the server accepts connections and never answers", {
    timeout: 30_000,
  }, async () => {
    // The connect timeout (60 s) is past the kill bound: only the exit flush's deadline (1 s) can end it, so
    // neither the socket nor the send waiting on it may hold the process.
    const peer = await startSilentPeer();
    try {
      const run = await runProgram({
        STREAMLL_EXIT_URL: `redis://127.0.0.1:${peer.port}`,
        STREAMLL_EXIT_STREAM: uniqueName("exit-silent"),
        STREAMLL_EXIT_COUNT: "5",
        STREAMLL_EXIT_FLUSH_MS: "1000",
        STREAMLL_EXIT_CONNECT_TIMEOUT_MS: "60000",
      });
      expectExited(run);
    } finally {
      await peer.close();
    }
  });

  it("exits when Redis is unreachable: reconnect attempts do not keep it alive", {
    timeout: 30_000,
  }, async () => {
    const run = await runProgram({
      STREAMLL_EXIT_URL: `redis://127.0.0.1:${await closedPort()}`,
      STREAMLL_EXIT_STREAM: uniqueName("exit-down"),
      STREAMLL_EXIT_COUNT: "5",
      STREAMLL_EXIT_FLUSH_MS: "1000",
    });
    expectExited(run);
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
      const run = await runProgram({
        STREAMLL_EXIT_URL: server.url,
        STREAMLL_EXIT_STREAM: stream,
        STREAMLL_EXIT_COUNT: "1000",
        STREAMLL_EXIT_CLUSTER: "1",
      });
      expectExited(run);
      expect(await storedIndexes(admin, stream)).toEqual(range(1_000));
    });
  },
);
