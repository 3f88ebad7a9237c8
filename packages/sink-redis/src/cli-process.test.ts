// `streamll-redis` as a process (the built bin), held to what every streamll command-line tool does: usage on
// stderr when arguments are missing, one-line errors with the --help hint, status 130 on Ctrl-C.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createId } from "@streamll/core";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, startCli } from "../../../test-support/cli-process.mjs";
import { REDIS_URL, uniqueName } from "./test-support/redis-servers";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const runnable = existsSync(CLI) || process.env.CI === "true";

describe.skipIf(!runnable)("streamll-redis (the built bin)", () => {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  const streams: string[] = [];
  afterAll(async () => {
    if (streams.length > 0) await redis.del(...streams);
    redis.disconnect();
  });

  it("run without a command prints its usage on stderr, status 2", async () => {
    const result = await runCli(CLI, []);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage: streamll-redis export");
  });

  it.each([
    [["import"], 'streamll-redis: unknown command "import"', "streamll-redis"],
    [["export", "--max", "0"], "--max must be a whole number >= 1", "streamll-redis export"],
    [["export", "--count", "5"], "Unknown option '--count'", "streamll-redis export"],
  ])("reports %j in one line plus the --help hint, status 2", async (args, message, command) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    const lines = result.stderr.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(message);
    expect(lines[1]).toBe(`Run "${command} --help" for usage.`);
  });

  it("ends with status 130 on Ctrl-C while following a stream", async () => {
    const stream = uniqueName("cli_sigint");
    streams.push(stream);
    const event = {
      schema_version: "1.0",
      event_id: createId(),
      execution_id: createId(),
      span_id: createId(),
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: "Qa",
      method_name: "forward",
      event_type: "start",
      operation: null,
      data: {},
      tags: {},
      module_version: null,
      code_signature: null,
      git_commit: null,
    };
    await redis.xadd(stream, "*", "event", JSON.stringify(event));
    const cli = startCli(CLI, ["export", "--url", REDIS_URL, "--stream", stream, "--follow"]);
    await cli.waitFor(/"event_id"/);
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
  });
});
