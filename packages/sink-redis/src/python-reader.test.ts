// The short Python reader of docs/production/redis.md (examples/python/redis_reader.py) against the shared
// Redis: it reads what RedisSink wrote in a consumer group, acknowledges everything, and counts malformed
// entries without stopping or logging their content. The Python comes from scripts/python.sh; when it cannot
// be set up the suite fails, it never skips.
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import { REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";

const available = await redisAvailable();
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SECRET = "sk-planted-redis-0123456789";
const stream = uniqueName("python-reader");
const client = new Redis(REDIS_URL, { lazyConnect: true });

afterAll(async () => {
  if (client.status === "ready") await client.del(stream);
  client.disconnect();
});

describe.skipIf(!available)("examples/python/redis_reader.py", () => {
  it("prints every event of the stream, acknowledges all, skips malformed entries unseen", async () => {
    const python = execFileSync("bash", [`${ROOT}scripts/python.sh`], { encoding: "utf8" }).trim();
    await client.connect();
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const first = sequence(3, { module_name: "Retriever", event_type: "end" });
    const second = sequence(2, { module_name: "Generator", event_type: "token" });
    await sink.send(first, sendContext());
    await client.xadd(stream, "*", "event", `{"api_key":"${SECRET}"`);
    await client.xadd(stream, "*", "other", SECRET);
    await sink.send(second, sendContext());
    await sink.close();

    const group = uniqueName("python-group");
    const args = [
      "--url",
      REDIS_URL,
      "--stream",
      stream,
      "--group",
      group,
      "--from-start",
      "--idle-exit",
      "1",
    ];
    const result = spawnSync(python, [`${ROOT}examples/python/redis_reader.py`, ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const expected = [...first, ...second].map(
      (event) => `${event.execution_id} ${event.module_name}.${event.method_name} ${event.event_type}`,
    );
    expect(
      result.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(" ").slice(1).join(" ")),
    ).toEqual(expected);
    expect(result.stderr).toContain("5 events, 2 invalid");
    expect(`${result.stdout}${result.stderr}`).not.toContain("sk-planted");
    const pending = (await client.xpending(stream, group)) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
  }, 60_000);
});
