// `streamll-kafka` as a process (the built bin), held to what every streamll command-line tool does: usage on
// stderr when arguments are missing, one-line errors with the --help hint, status 130 on Ctrl-C.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli } from "../../../test-support/cli-process.mjs";
import { kafkaPlaintextConfig, requireBroker, uniqueTopic } from "../test/broker";
import { createTopic, makeEvent, produceRaw } from "./test-support/kafka-test-support";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const runnable = existsSync(CLI) || process.env.CI === "true";
const connection = kafkaPlaintextConfig();

describe.skipIf(!runnable)("streamll-kafka (the built bin)", () => {
  beforeAll(async () => {
    await requireBroker();
  });

  it.each([[[]], [["export"]]])("run as %j prints its usage on stderr, status 2", async (args) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage: streamll-kafka export");
  });

  it.each([
    [["import"], 'streamll-kafka: unknown command "import"', "streamll-kafka"],
    [
      ["export", "--brokers", "a:1", "--max", "0"],
      "--max must be a whole number >= 1",
      "streamll-kafka export",
    ],
    [["export", "--brokers", "a:1", "--count", "5"], "Unknown option '--count'", "streamll-kafka export"],
  ])("reports %j in one line plus the --help hint, status 2", async (args, message, command) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    const lines = result.stderr.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(message);
    expect(lines[1]).toBe(`Run "${command} --help" for usage.`);
  });

  it("ends with status 130 on Ctrl-C while following a topic", async () => {
    const topic = uniqueTopic("cli_sigint");
    await createTopic(connection, topic);
    await produceRaw(connection, topic, [{ value: JSON.stringify(makeEvent()) }]);
    const cli = startCli(CLI, [
      "export",
      "--brokers",
      connection.brokers.join(","),
      "--topic",
      topic,
      "--follow",
    ]);
    await cli.waitFor(/"event_id"/);
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
    expect(cli.stderr()).toContain(`exported 1 event from ${topic}`);
  });
});
