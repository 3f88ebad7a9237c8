import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as core from "@streamll/core";
import { OUTPUT_CLOSED, recordingIo } from "@streamll/core/internal";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EVENTS,
  expectSlowdownFlagged,
  lines,
  recordTwoReleases,
} from "../../../test-support/version-slowdown.mjs";
import { main } from "./cli-main";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import { REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const available = await redisAvailable();
const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const built = existsSync(CLI);
const run = promisify(execFile);

/** Runs `main` with captured output. */
async function runMain(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  const recorded = recordingIo(env);
  const status = await main(argv, recorded.io);
  return { status, stdout: recorded.stdout(), stderr: recorded.stderr() };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.skipIf(!available)("streamll-redis export against Redis", () => {
  let admin: Redis;
  const keys: string[] = [];
  let versionsStream: string;

  function streamName(prefix: string): string {
    const stream = uniqueName(prefix);
    keys.push(stream);
    return stream;
  }

  beforeAll(async () => {
    admin = new Redis(REDIS_URL);
    versionsStream = streamName("cli-versions");
    await recordTwoReleases(core, new RedisSink({ url: REDIS_URL, stream: versionsStream }), 5_000);
  });

  afterAll(async () => {
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  it("exports the stream as the stored JSON lines, and streamll compare flags the slower version", async () => {
    const result = await runMain(["export", "--url", REDIS_URL, "--stream", versionsStream]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(`streamll-redis: exported ${EVENTS} events from ${versionsStream}\n`);
    expectSlowdownFlagged(core, expect, result.stdout);
    // Exactly what the sink wrote, in stream order.
    const stored = (await admin.xrange(versionsStream, "-", "+")).map(([, fields]) => fields[1]);
    expect(lines(result.stdout)).toEqual(stored);
    // Non-destructive: nothing removed, no consumer group created.
    expect(await admin.xlen(versionsStream)).toBe(EVENTS);
    expect(await admin.xinfo("GROUPS", versionsStream)).toEqual([]);
  });

  it.skipIf(!built && process.env.CI !== "true")("works as the built bin in a pipe", async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      [CLI, "export", "--url", REDIS_URL, "--stream", versionsStream],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    expect(stderr).toContain(`exported ${EVENTS} events`);
    expectSlowdownFlagged(core, expect, stdout);
  });

  it("reads past one page, skips and counts malformed entries, honours --from, --to and --max", async () => {
    const stream = streamName("cli-pages");
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const events = sequence(1_100);
    await sink.send(events.slice(0, 600), sendContext());
    await admin.xadd(stream, "*", "event", "{not json");
    await admin.xadd(stream, "*", "other", "field");
    await sink.send(events.slice(600), sendContext());
    await sink.close();

    const all = await runMain(["export", "--stream", stream]);
    expect(all.status).toBe(0);
    const seqs = lines(all.stdout).map((line) => (JSON.parse(line) as { data: { seq: number } }).data.seq);
    expect(seqs).toEqual(Array.from({ length: 1_100 }, (_, i) => i));
    expect(all.stderr).toMatch(/skipped entry \d+-\d+: input is not valid JSON/);
    expect(all.stderr).toMatch(/skipped entry \d+-\d+: no "event" field/);
    expect(all.stderr).toContain(`exported 1100 events from ${stream}, skipped 2 malformed entries\n`);

    const counted = await runMain(["export", "--stream", stream, "--max", "7"]);
    expect(lines(counted.stdout)).toEqual(lines(all.stdout).slice(0, 7));

    const ids = (await admin.xrange(stream, "-", "+")).map(([id]) => id);
    const ranged = await runMain(["export", "--stream", stream, "--from", ids[10]!, "--to", ids[20]!]);
    expect(lines(ranged.stdout)).toEqual(lines(all.stdout).slice(10, 21));
  });

  it("stops when stdout is closed (status 0) or the export is interrupted (status 130)", async () => {
    for (const [reason, expected] of [
      [OUTPUT_CLOSED, 0],
      ["interrupted", 130],
    ] as const) {
      const controller = new AbortController();
      const written: string[] = [];
      const status = await main(["export", "--stream", versionsStream], {
        stdout: (text) => {
          written.push(text);
          if (written.length === 3) controller.abort(reason);
        },
        stderr: () => undefined,
        signal: controller.signal,
      });
      expect(status).toBe(expected);
      expect(written).toHaveLength(3);
    }
  });

  it("with --follow prints what the stream holds, then entries added later, until --max or interrupted", async () => {
    const stream = streamName("cli-follow");
    const sink = new RedisSink({ url: REDIS_URL, stream });
    const events = sequence(900);
    await sink.send(events.slice(0, 600), sendContext());
    const controller = new AbortController();
    const recorded = recordingIo({}, controller.signal);
    const done = main(["export", "--stream", stream, "--follow"], recorded.io);
    const seqs = () =>
      lines(recorded.stdout()).map((line) => (JSON.parse(line) as { data: { seq: number } }).data.seq);
    await waitUntil(() => seqs().length === 600, "the stored entries");
    await sink.send(events.slice(600), sendContext());
    await sink.close();
    await waitUntil(() => seqs().length === 900, "the entries added later");
    expect(seqs()).toEqual(Array.from({ length: 900 }, (_, i) => i));
    controller.abort("interrupted");
    expect(await done).toBe(130);
    expect(recorded.stderr()).toContain(`exported 900 events from ${stream}\n`);

    // From a stream that does not exist yet, starting after an id, ending at --max.
    const later = streamName("cli-follow-later");
    const waiting = runMain(["export", "--stream", later, "--follow", "--from", "5-0", "--max", "2"]);
    await sleep(300);
    const writer = new RedisSink({ url: REDIS_URL, stream: later });
    await admin.xadd(later, "4-1", "event", events[0]!.json);
    await admin.xadd(later, "5-0", "event", events[1]!.json);
    await admin.xadd(later, "6-0", "event", events[2]!.json);
    await admin.xadd(later, "7-0", "event", events[3]!.json);
    await writer.close();
    const result = await waiting;
    expect(result.status).toBe(0);
    expect(lines(result.stdout)).toEqual([events[1]!.json, events[2]!.json]);
  });

  it("exits 0 with no events when the stream does not exist", async () => {
    const result = await runMain(["export", "--stream", uniqueName("cli-missing")]);
    expect(result).toMatchObject({ status: 0, stdout: "" });
    expect(result.stderr).toContain("exported 0 events");
  });

  it("never prints a password, whether from the URL or from --password-env", async () => {
    const secret = "s3cret-Pa55word";
    const fromUrl = await runMain([
      "export",
      "--url",
      `redis://streamll-nobody:${secret}@127.0.0.1:6379`,
      "--connect-timeout-ms",
      "1000",
    ]);
    expect(fromUrl.status).toBe(1);
    expect(fromUrl.stderr).toContain("streamll-redis:");
    expect(fromUrl.stderr).not.toContain(secret);

    const fromEnv = await runMain(
      [
        "export",
        "--url",
        "redis://streamll-nobody@127.0.0.1:6379",
        "--password-env",
        "REDIS_PASSWORD",
        "--connect-timeout-ms",
        "1000",
      ],
      { REDIS_PASSWORD: secret },
    );
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).not.toContain(secret);

    const malformed = await runMain(["export", "--url", `redis//u:${secret}@host`]);
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).not.toContain(secret);
    const positional = await runMain(["export", `redis://u:${secret}@host`]);
    expect(positional.status).toBe(2);
    expect(positional.stderr).not.toContain(secret);
  });
});

describe("streamll-redis usage", () => {
  it("prints help on stdout with status 0", async () => {
    for (const argv of [["--help"], ["export", "--help"], ["help"]]) {
      const result = await runMain(argv);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain("Usage: streamll-redis export");
    }
  });

  it("rejects bad usage with status 2 and says why on stderr", async () => {
    const cases: [string[], string][] = [
      [[], "Usage:"],
      [["import"], 'unknown command "import"'],
      [["export", "--max", "0"], "--max must be a whole number >= 1"],
      [["export", "--max", "ten"], "--max must be a whole number >= 1"],
      [["export", "--from", "yesterday"], "--from must be"],
      [["export", "--to", "-"], "--to must be"],
      [["export", "--follow", "--to", "+"], "cannot be combined with --to"],
      [["export", "--stream"], "argument missing"],
      [["export", "--password-env", "STREAMLL_TEST_UNSET"], "STREAMLL_TEST_UNSET is not set"],
      [["export", "--stram", "x"], "Unknown option '--stram'; did you mean --stream?"],
      [["export", "--verbose"], "Unknown option '--verbose'"],
    ];
    for (const [argv, message] of cases) {
      const result = await runMain(argv);
      expect(result.status, argv.join(" ")).toBe(2);
      expect(result.stdout, argv.join(" ")).toBe("");
      expect(result.stderr, argv.join(" ")).toContain(message);
    }
  });
});
