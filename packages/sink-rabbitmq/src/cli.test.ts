import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as core from "@streamll/core";
import { recordingIo } from "@streamll/core/internal";
import type { ChannelModel } from "amqplib";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EVENTS,
  expectSlowdownFlagged,
  lines,
  recordTwoReleases,
} from "../../../test-support/version-slowdown.mjs";
import { BROKER_HOST, BROKER_PORT, skipWithoutBroker, waitUntil } from "./__fixtures__/broker";
import { makeEvent, testId } from "./__fixtures__/events";
import { LISTENING_PREFIX, main } from "./cli-main";
import { RabbitMQSink } from "./rabbitmq-sink";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const built = existsSync(CLI);
const childCase = built || process.env.CI === "true";
const URL_ = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}`;
const quiet = { warn: () => {} };

interface Tail {
  readonly done: Promise<number>;
  readonly stdout: () => string;
  readonly stderr: () => string;
}

/** Starts `main` with captured output and resolves once its queue is bound. */
async function startMain(
  argv: string[],
  env: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Tail> {
  const recorded = recordingIo(env, signal);
  const done = main(argv, recorded.io);
  let finished = false;
  void done.then(() => (finished = true));
  await waitUntil(
    () => recorded.stderr().includes(LISTENING_PREFIX) || finished,
    10_000,
    "the tail to listen",
  );
  return { done, stdout: recorded.stdout, stderr: recorded.stderr };
}

async function runMain(argv: string[], env: Record<string, string> = {}) {
  const tail = await startMain(argv, env);
  const status = await tail.done;
  return { status, stdout: tail.stdout(), stderr: tail.stderr() };
}

/** Starts the built bin and resolves once its queue is bound. */
async function startChild(argv: string[]): Promise<Tail> {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const done = new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code ?? -1));
  });
  let finished = false;
  void done.then(() => (finished = true));
  await waitUntil(() => stderr.includes(LISTENING_PREFIX) || finished, 10_000, "the bin to listen");
  return { done, stdout: () => stdout, stderr: () => stderr };
}

describe.skipIf(skipWithoutBroker)("streamll-rabbitmq tail against a real broker", () => {
  let admin: ChannelModel;
  const exchanges: string[] = [];
  const exchangeName = (prefix: string) => {
    const name = `streamll_test_${prefix}_${testId().replace(/[^A-Za-z0-9]/g, "x")}`;
    exchanges.push(name);
    return name;
  };
  let versions: string;
  let fromMain: { status: number; stdout: string; stderr: string };
  let fromChild: { status: number; stdout: string; stderr: string } | undefined;

  beforeAll(async () => {
    admin = await amqp.connect(URL_);
    versions = exchangeName("cli_versions");
    // Both tails bind their own queue before anything is published: each sees every event. The idle time
    // counts from the start, and on a busy machine starting the child and the sink can take seconds.
    const tail = await startMain(["tail", "--url", URL_, "--exchange", versions, "--idle-ms", "5000"]);
    const child = childCase
      ? await startChild(["tail", "--url", URL_, "--exchange", versions, "--max", String(EVENTS)])
      : undefined;
    await recordTwoReleases(core, new RabbitMQSink({ url: URL_, exchange: versions, logger: quiet }), 5_000);
    fromMain = { status: await tail.done, stdout: tail.stdout(), stderr: tail.stderr() };
    if (child) fromChild = { status: await child.done, stdout: child.stdout(), stderr: child.stderr() };
  });

  afterAll(async () => {
    const channel = await admin.createChannel();
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await admin.close();
  });

  it("prints every published event until idle, and streamll compare flags the slower version", () => {
    expect(fromMain.status).toBe(0);
    expect(fromMain.stderr).toContain(`printed ${EVENTS} events\n`);
    expectSlowdownFlagged(core, expect, fromMain.stdout);
  });

  it.skipIf(!childCase)("works as the built bin in a pipe, exiting after --max events", () => {
    expect(fromChild?.stderr).toContain(`exits after ${EVENTS} events or after 2000 ms without one`);
    expect(fromChild?.stderr).toContain(`printed ${EVENTS} events\n`);
    expect(fromChild?.status).toBe(0);
    expectSlowdownFlagged(core, expect, fromChild?.stdout ?? "");
  });

  it("follows --binding, prints the body as is, re-serialises multi-line JSON and skips malformed messages", async () => {
    const exchange = exchangeName("cli_bindings");
    const tail = await startMain([
      "tail",
      "--url",
      URL_,
      "--exchange",
      exchange,
      "--binding",
      "streamll.Keep.*",
      "--binding",
      "streamll.Also.end",
      "--max",
      "3",
    ]);
    const channel = await admin.createChannel();
    const first = JSON.stringify(makeEvent({ module_name: "Keep", data: { seq: 0 } }));
    const pretty = makeEvent({ module_name: "Also", event_type: "end", data: { seq: 2 } });
    channel.publish(exchange, "streamll.Other.start", Buffer.from(JSON.stringify(makeEvent())));
    channel.publish(exchange, "streamll.Keep.start", Buffer.from(first));
    channel.publish(exchange, "streamll.Keep.start", Buffer.from("{not json"));
    channel.publish(exchange, "streamll.Also.start", Buffer.from(JSON.stringify(makeEvent())));
    channel.publish(
      exchange,
      "streamll.Keep.end",
      Buffer.from(JSON.stringify(makeEvent({ data: { seq: 1 } }))),
    );
    channel.publish(exchange, "streamll.Also.end", Buffer.from(JSON.stringify(pretty, null, 2)));
    await channel.close();
    expect(await tail.done).toBe(0);
    const printed = lines(tail.stdout());
    expect(printed).toHaveLength(3);
    expect(printed[0]).toBe(first);
    expect(printed.map((line) => (JSON.parse(line) as { data: { seq: number } }).data.seq)).toEqual([
      0, 1, 2,
    ]);
    expect(JSON.parse(printed[2]!)).toEqual(pretty);
    expect(tail.stderr()).toMatch(
      /skipped a message \(routing key streamll\.Keep\.start\): input is not valid JSON/,
    );
    expect(tail.stderr()).toContain("printed 3 events, skipped 1 malformed message\n");
  });

  it.each([[["--follow"]], [["--idle-ms", "0"]]])(
    "with %j keeps listening until interrupted, then ends with status 130",
    async (flags) => {
      const exchange = exchangeName("cli_interrupt");
      const controller = new AbortController();
      const tail = await startMain(
        ["tail", "--url", URL_, "--exchange", exchange, ...flags],
        {},
        controller.signal,
      );
      expect(tail.stderr()).toContain("exits on Ctrl-C");
      const channel = await admin.createChannel();
      channel.publish(exchange, "streamll.Qa.start", Buffer.from(JSON.stringify(makeEvent())));
      await waitUntil(() => lines(tail.stdout()).length === 1, 10_000, "the event");
      controller.abort("interrupted");
      expect(await tail.done).toBe(130);
      expect(tail.stderr()).toContain("printed 1 event\n");
      // The exclusive queue went with the connection: the exchange has nothing bound any more.
      const unroutable = new Promise<boolean>((resolve) => {
        channel.once("return", () => resolve(true));
        setTimeout(() => resolve(false), 1_000);
      });
      channel.publish(exchange, "streamll.Qa.end", Buffer.from("{}"), { mandatory: true });
      expect(await unroutable).toBe(true);
      await channel.close();
    },
  );

  it("never prints a password, whether from the URL or from --password-env", async () => {
    const secret = "wrong-Pa55word-for-streamll";
    const fromUrl = await runMain(["tail", "--url", `amqp://guest:${secret}@${BROKER_HOST}:${BROKER_PORT}`]);
    expect(fromUrl.status).toBe(1);
    expect(fromUrl.stderr).toMatch(/^streamll-rabbitmq: cannot connect to amqp:\/\/127\.0\.0\.1:5672\//);
    expect(fromUrl.stderr).not.toContain(secret);

    const fromEnv = await runMain(
      ["tail", "--url", `amqp://guest@${BROKER_HOST}:${BROKER_PORT}`, "--password-env", "AMQP_PASSWORD"],
      { AMQP_PASSWORD: secret },
    );
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).not.toContain(secret);

    const malformed = await runMain(["tail", "--url", `amqp//guest:${secret}@host`]);
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).not.toContain(secret);
    const positional = await runMain(["tail", `amqp://guest:${secret}@host`]);
    expect(positional.status).toBe(2);
    expect(positional.stderr).not.toContain(secret);
  });
});

describe("streamll-rabbitmq usage", () => {
  it("prints help on stdout with status 0", async () => {
    for (const argv of [["--help"], ["tail", "--help"], ["help"]]) {
      const result = await runMain(argv);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain("Usage: streamll-rabbitmq tail");
    }
  });

  it("rejects bad usage with status 2 and says why on stderr", async () => {
    const cases: [string[], string][] = [
      [[], "Usage:"],
      [["export"], 'unknown command "export"'],
      [["tail", "--max", "0"], "--max must be a whole number >= 1"],
      [["tail", "--idle-ms", "-5"], "argument is ambiguous"],
      [["tail", "--follow", "--idle-ms", "10"], "cannot be combined with --idle-ms"],
      [["tail", "--idle-ms", "soon"], "--idle-ms must be a whole number >= 0"],
      [["tail", "--exchange", ""], "--exchange must be 1-255 bytes"],
      [["tail", "--url", "http://localhost"], "must start with amqp:// or amqps://"],
      [["tail", "--password-env", "STREAMLL_TEST_UNSET"], "STREAMLL_TEST_UNSET is not set"],
      [["tail", "--exchnage", "x"], "Unknown option '--exchnage'; did you mean --exchange?"],
      [["tail", "--verbose"], "Unknown option '--verbose'"],
    ];
    for (const [argv, message] of cases) {
      const result = await runMain(argv);
      expect(result.status, argv.join(" ")).toBe(2);
      expect(result.stdout, argv.join(" ")).toBe("");
      expect(result.stderr, argv.join(" ")).toContain(message);
    }
  });
});
