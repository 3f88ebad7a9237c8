import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as core from "@streamll/core";
import { recordingIo } from "@streamll/core/internal";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EVENTS,
  expectSlowdownFlagged,
  lines,
  recordTwoReleases,
} from "../../../test-support/version-slowdown.mjs";
import {
  KAFKA_CA_FILE,
  KAFKA_SASL_PASSWORD,
  KAFKA_SASL_SSL_BROKERS,
  KAFKA_SASL_USERNAME,
  kafkaPlaintextConfig,
  requireBroker,
  uniqueTopic,
} from "../test/broker";
import { EXPORT_GROUP_PREFIX, main } from "./cli-main";
import { KafkaSink } from "./kafka-sink";
import {
  createTopic,
  encodeAll,
  makeEvent,
  produceRaw,
  recordingLogger,
} from "./test-support/kafka-test-support";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const built = existsSync(CLI);
const run = promisify(execFile);
const connection = kafkaPlaintextConfig();
const BROKERS = connection.brokers.join(",");

async function runMain(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  const recorded = recordingIo(env);
  const status = await main(argv, recorded.io);
  return { status, stdout: recorded.stdout(), stderr: recorded.stderr() };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function exportGroups(): Promise<string[]> {
  const admin = new Kafka({
    clientId: "streamll-test-admin",
    logLevel: logLevel.NOTHING,
    ...connection,
  }).admin();
  await admin.connect();
  try {
    const { groups } = await admin.listGroups();
    return groups.map((group) => group.groupId).filter((id) => id.startsWith(EXPORT_GROUP_PREFIX));
  } finally {
    await admin.disconnect();
  }
}

describe("streamll-kafka export against the harness broker", () => {
  let topic: string;
  let groupsBefore: string[];

  beforeAll(async () => {
    await requireBroker(["plaintext", "sasl_ssl"]);
    topic = uniqueTopic("cli-versions");
    // Two partitions: the export must find the end of each.
    await createTopic(connection, topic, 2);
    groupsBefore = await exportGroups();
    await recordTwoReleases(
      core,
      new KafkaSink({ brokers: connection.brokers, topic, logger: recordingLogger() }),
      10_000,
    );
  });

  afterAll(async () => {
    // Every export deleted its throwaway group; none of them is left behind.
    expect((await exportGroups()).filter((id) => !groupsBefore.includes(id))).toEqual([]);
  });

  it("exports the topic to its end, and streamll compare flags the slower version", async () => {
    const result = await runMain(["export", "--brokers", BROKERS, "--topic", topic, "--from-beginning"]);
    expect(result.stderr).toBe(`streamll-kafka: exported ${EVENTS} events from ${topic}\n`);
    expect(result.status).toBe(0);
    expectSlowdownFlagged(core, expect, result.stdout);
  });

  it.skipIf(!built && process.env.CI !== "true")("works as the built bin in a pipe", async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      [CLI, "export", "--brokers", BROKERS, "--topic", topic, "--from-beginning"],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    expect(stderr).toBe(`streamll-kafka: exported ${EVENTS} events from ${topic}\n`);
    expectSlowdownFlagged(core, expect, stdout);
  });

  it("stops after --max events, and reads what the topic retains without --from-beginning", async () => {
    const limited = await runMain(["export", "--brokers", BROKERS, "--topic", topic, "--max", "5"]);
    expect(limited.status).toBe(0);
    expect(lines(limited.stdout)).toHaveLength(5);
    const all = await runMain(["export", "--brokers", BROKERS, "--topic", topic]);
    const explicit = await runMain(["export", "--brokers", BROKERS, "--topic", topic, "--from-beginning"]);
    expect(all.status).toBe(0);
    expect(lines(all.stdout).length).toBeGreaterThan(5);
    expect(new Set(lines(all.stdout))).toEqual(new Set(lines(explicit.stdout)));
  });

  it("writes what the sink produced byte for byte, skipping and counting malformed messages", async () => {
    const mixed = uniqueTopic("cli-malformed");
    await createTopic(connection, mixed, 1);
    const sink = new KafkaSink({ brokers: connection.brokers, topic: mixed, logger: recordingLogger() });
    const [first, second] = encodeAll([makeEvent({ data: { seq: 0 } }), makeEvent({ data: { seq: 1 } })]);
    await sink.send([first!], {
      signal: AbortSignal.timeout(15_000),
      attempt: 1,
    });
    await produceRaw(connection, mixed, [
      { key: "x", value: "{not json" },
      { key: "x", value: null },
    ]);
    await sink.send([second!], {
      signal: AbortSignal.timeout(15_000),
      attempt: 1,
    });
    await sink.close();
    const result = await runMain(["export", "--brokers", BROKERS, "--topic", mixed, "--from-beginning"]);
    expect(result.status).toBe(0);
    // Byte for byte what the sink produced.
    expect(lines(result.stdout)).toEqual([first!.json, second!.json]);
    expect(result.stderr).toBe(
      `streamll-kafka: exported 2 events from ${mixed}, skipped 2 malformed messages\n`,
    );
  });

  it("with --follow prints the retained events, then events produced later, until --max", async () => {
    const live = uniqueTopic("cli-follow");
    await createTopic(connection, live, 2);
    const events = encodeAll(Array.from({ length: 6 }, (_, seq) => makeEvent({ data: { seq } })));
    const sink = new KafkaSink({ brokers: connection.brokers, topic: live, logger: recordingLogger() });
    const send = (batch: typeof events) =>
      sink.send(batch, { signal: AbortSignal.timeout(15_000), attempt: 1 });
    await send(events.slice(0, 3));
    const recorded = recordingIo({});
    const done = main(
      ["export", "--brokers", BROKERS, "--topic", live, "--follow", "--max", "6"],
      recorded.io,
    );
    await waitFor(() => lines(recorded.stdout()).length === 3, "the retained events");
    await send(events.slice(3));
    await sink.close();
    expect(await done).toBe(0);
    expect(new Set(lines(recorded.stdout()))).toEqual(new Set(events.map((event) => event.json)));
    expect(recorded.stderr()).toBe(`streamll-kafka: exported 6 events from ${live}\n`);
  });

  it("connects with SASL/SCRAM over TLS with the password from --password-env, and never prints it", async () => {
    const base = [
      "export",
      "--brokers",
      KAFKA_SASL_SSL_BROKERS.join(","),
      "--topic",
      topic,
      "--from-beginning",
      "--ssl",
      "--ca",
      KAFKA_CA_FILE,
      "--sasl-mechanism",
      "scram-sha-256",
      "--username",
      KAFKA_SASL_USERNAME,
      "--password-env",
      "KAFKA_PASSWORD",
      "--max",
      "3",
    ];
    const ok = await runMain(base, { KAFKA_PASSWORD: KAFKA_SASL_PASSWORD });
    expect(ok.stderr).toBe(`streamll-kafka: exported 3 events from ${topic}\n`);
    expect(ok.status).toBe(0);
    expect(lines(ok.stdout)).toHaveLength(3);

    const wrong = "wrong-Pa55word-for-streamll";
    const refused = await runMain(base, { KAFKA_PASSWORD: wrong });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^streamll-kafka: /);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).not.toContain(wrong);
  });

  it("stops when interrupted (status 130) and still deletes its consumer group", async () => {
    const controller = new AbortController();
    const written: string[] = [];
    const status = await main(["export", "--brokers", BROKERS, "--topic", topic, "--from-beginning"], {
      stdout: (text) => {
        written.push(text);
        if (written.length === 2) controller.abort("interrupted");
      },
      stderr: () => undefined,
      signal: controller.signal,
    });
    expect(status).toBe(130);
    expect(written).toHaveLength(2);
  });

  it("exits 1 naming a topic that does not exist (and does not create it)", async () => {
    const missing = uniqueTopic("cli-missing");
    const result = await runMain(["export", "--brokers", BROKERS, "--topic", missing, "--from-beginning"]);
    expect(result).toMatchObject({ status: 1, stdout: "" });
    expect(result.stderr).toBe(`streamll-kafka: topic ${missing} does not exist\n`);
    const admin = new Kafka({
      clientId: "streamll-test-admin",
      logLevel: logLevel.NOTHING,
      ...connection,
    }).admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(missing);
    } finally {
      await admin.disconnect();
    }
  });
});

describe("streamll-kafka usage", () => {
  it("prints help on stdout with status 0", async () => {
    for (const argv of [["--help"], ["export", "--help"], ["help"]]) {
      const result = await runMain(argv);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain("Usage: streamll-kafka export");
    }
  });

  it("rejects bad usage with status 2, says why on stderr and never echoes a password", async () => {
    const cases: [string[], string][] = [
      [[], "Usage:"],
      [["import"], 'unknown command "import"'],
      [["export"], "--brokers is required"],
      [["export", "--brokers", "localhost"], "--brokers must be a comma-separated list of host:port"],
      [["export", "--brokers", "a:1", "--max", "0"], "--max must be a whole number >= 1"],
      [["export", "--brokers", "a:1", "--topic", "no spaces"], "--topic must be"],
      [["export", "--brokers", "a:1", "--sasl-mechanism", "gssapi"], "--sasl-mechanism must be one of"],
      [["export", "--brokers", "a:1", "--sasl-mechanism", "plain"], "--sasl-mechanism needs --username"],
      [
        ["export", "--brokers", "a:1", "--sasl-mechanism", "plain", "--username", "u"],
        "needs --password-env",
      ],
      [
        [
          "export",
          "--brokers",
          "a:1",
          "--sasl-mechanism",
          "plain",
          "--username",
          "u",
          "--password-env",
          "NOPE",
        ],
        "environment variable NOPE is not set",
      ],
      [["export", "--brokers", "a:1", "--username", "u"], "need --sasl-mechanism"],
      [["export", "--brokers", "a:1", "--ca", "/nonexistent/ca.pem"], "--ca: cannot read"],
      [["export", "--brokers", "a:1", "--password", "hunter2-secret"], "--password is not accepted"],
      [["export", "--brokers", "a:1", "--password=hunter2-secret"], "--password is not accepted"],
      [["export", "--brokers", "a:1", "--topc", "x"], "Unknown option '--topc'; did you mean --topic?"],
    ];
    for (const [argv, message] of cases) {
      const result = await runMain(argv);
      expect(result.status, argv.join(" ")).toBe(2);
      expect(result.stdout, argv.join(" ")).toBe("");
      expect(result.stderr, argv.join(" ")).toContain(message);
      expect(result.stderr, argv.join(" ")).not.toContain("hunter2-secret");
    }
  });
});
