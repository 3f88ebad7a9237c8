// `streamll-rabbitmq` as a process (the built bin), held to what every streamll command-line tool does: usage
// on stderr when arguments are missing, one-line errors with the --help hint, status 130 on Ctrl-C.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli, startCli } from "../../../test-support/cli-process.mjs";
import { BROKER_HOST, BROKER_PORT } from "./__fixtures__/broker";
import { testId } from "./__fixtures__/events";
import { LISTENING_PREFIX } from "./cli-main";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const runnable = existsSync(CLI) || process.env.CI === "true";
const URL_ = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}`;

describe.skipIf(!runnable)("streamll-rabbitmq (the built bin)", () => {
  it("run without a command prints its usage on stderr, status 2", async () => {
    const result = await runCli(CLI, []);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage: streamll-rabbitmq tail");
  });

  it.each([
    [["import"], 'streamll-rabbitmq: unknown command "import"', "streamll-rabbitmq"],
    [["tail", "--max", "0"], "--max must be a whole number >= 1", "streamll-rabbitmq tail"],
    [["tail", "--count", "5"], "Unknown option '--count'", "streamll-rabbitmq tail"],
  ])("reports %j in one line plus the --help hint, status 2", async (args, message, command) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    const lines = result.stderr.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(message);
    expect(lines[1]).toBe(`Run "${command} --help" for usage.`);
  });

  it("ends with status 130 on Ctrl-C while tailing", async () => {
    const cli = startCli(CLI, ["tail", "--url", URL_, "--exchange", `cli_sigint_${testId()}`, "--follow"]);
    await cli.waitFor(new RegExp(LISTENING_PREFIX));
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
    expect(cli.stderr()).toContain("printed 0 events");
  });
});
