// stop() while the reader is still waiting for its connection (Redis down, or a peer that accepts and never
// answers) gives the wait up at once: it used to hold stop() and run() for the whole connectTimeoutMs.
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RedisEventReader } from "./redis-event-reader";
import { waitUntil } from "./test-support/wait";

/** Far longer than a prompt stop needs; the reader's connectTimeoutMs is longer still. */
const PATIENCE_MS = 20_000;
const CONNECT_TIMEOUT_MS = 120_000;

/** Resolves to "stopped" if `stop` settles first, "timed out" if {@link PATIENCE_MS} passes first. */
async function raceAgainstPatience(stop: Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      stop.then(() => "stopped"),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("timed out"), PATIENCE_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("RedisEventReader.stop() while connecting", () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  async function listen(server: Server): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it("returns at once when every connection is dropped (Redis going down), and run() settles", async () => {
    let accepted = 0;
    const server = createServer((socket) => {
      accepted += 1;
      socket.destroy();
    });
    const port = await listen(server);
    const reader = new RedisEventReader({
      url: `redis://127.0.0.1:${port}`,
      group: "g",
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      onError: () => undefined,
    });
    let runSettled = false;
    const running = reader
      .run(() => undefined)
      .finally(() => {
        runSettled = true;
      });
    // A second attempt means the first failed and the reader is still waiting for its connection.
    await waitUntil(() => accepted >= 2, "the reader to retry its connection");
    expect(await raceAgainstPatience(reader.stop())).toBe("stopped");
    expect(runSettled).toBe(true);
    await expect(running).resolves.toBeUndefined();
  });

  it("returns at once when stopped before the connection could even start", async () => {
    const reader = new RedisEventReader({
      url: "redis://127.0.0.1:1",
      group: "g",
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      onError: () => undefined,
    });
    const running = reader.run(() => undefined);
    expect(await raceAgainstPatience(reader.stop())).toBe("stopped");
    await expect(running).resolves.toBeUndefined();
  });

  it("returns at once when the peer accepts the connection and never answers, and run() settles", async () => {
    let accepted = 0;
    const server = createServer((socket) => {
      accepted += 1;
      sockets.push(socket);
      // Silent: never a reply to HELLO, so the reader waits for its connection to become ready.
    });
    const port = await listen(server);
    const reader = new RedisEventReader({
      url: `redis://127.0.0.1:${port}`,
      group: "g",
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      commandTimeoutMs: CONNECT_TIMEOUT_MS,
      onError: () => undefined,
    });
    let runSettled = false;
    const running = reader
      .run(() => undefined)
      .finally(() => {
        runSettled = true;
      });
    await waitUntil(() => accepted > 0, "the reader to connect to the silent peer");
    expect(await raceAgainstPatience(reader.stop())).toBe("stopped");
    expect(runSettled).toBe(true);
    await expect(running).resolves.toBeUndefined();
  });
});
