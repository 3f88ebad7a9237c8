import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { recordingIo } from "@streamll/core/internal";
import { afterAll, describe, expect, it } from "vitest";
import { execution, jsonl, ragExecution } from "../../test/support/events";
import { openEventStream } from "../../test/support/sse";
import { waitUntil } from "../../test/support/wait";
import { main } from "./cli-main";

const dir = mkdtempSync(join(tmpdir(), "streamll-view-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const URL_PATTERN = /streamll-view: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)\n/;

/** Starts `streamll-view` in-process; resolves once it printed its URL. */
async function startView(argv: string[], stdin = new PassThrough()) {
  const controller = new AbortController();
  const recorded = recordingIo({}, controller.signal);
  const done = main(argv, recorded.io, stdin);
  let url = "";
  await waitUntil(async () => {
    const match = URL_PATTERN.exec(recorded.stdout());
    if (match !== null) url = match[1]!;
    return match !== null || (await Promise.race([done.then(() => true), Promise.resolve(false)]));
  }, "the URL");
  return {
    url,
    eventsUrl: url.replace("/?", "/events?"),
    recorded,
    stop: async () => {
      controller.abort("interrupted");
      return done;
    },
    done,
  };
}

describe("streamll-view", () => {
  it("follows a JSONL file and serves it live, until Ctrl-C (status 130)", async () => {
    const path = join(dir, "events.jsonl");
    const first = ragExecution();
    writeFileSync(path, jsonl(first));
    const view = await startView([path]);
    expect(view.recorded.stderr()).toContain(`reading ${path}`);
    const stream = await openEventStream(view.eventsUrl);
    await stream.waitFor(() => stream.events().length === first.length, "the file's events");
    const later = ragExecution({ error: true });
    writeFileSync(path, jsonl([...first, ...later]));
    await stream.waitFor(() => stream.events().length === first.length + later.length, "the appended events");
    const status = await stream.waitFor(
      (m) => m.event === "status" && m.data.includes('"kind":"file"'),
      "status",
    );
    expect(JSON.parse(status.data).source).toMatchObject({ kind: "file", label: path, state: "live" });
    stream.close();
    expect(await view.stop()).toBe(130);
    await expect(fetch(view.url)).rejects.toThrow();
  });

  it("reads stdin with -, stays up after it ends, and counts lines that are not events", async () => {
    const stdin = new PassThrough();
    const view = await startView(["-", "--max-executions", "3"], stdin);
    const stream = await openEventStream(view.eventsUrl);
    const executions = Array.from({ length: 5 }, () => execution());
    stdin.write("garbage\n");
    for (const events of executions) stdin.write(jsonl(events));
    stdin.end();
    await stream.waitFor(
      (m) => m.event === "status" && JSON.parse(m.data).source.state === "ended",
      "the end of stdin",
    );
    const status = await stream.waitFor(
      (m) => m.event === "status" && JSON.parse(m.data).stats.received === 11,
      "the counts",
    );
    expect(JSON.parse(status.data).stats).toMatchObject({ invalid: 1, executions: 3, evictedExecutions: 2 });
    expect(view.recorded.stderr()).toContain("stdin ended after 11 lines; the page stays up until Ctrl-C");
    expect((await fetch(view.url)).status).toBe(200);
    stream.close();
    expect(await view.stop()).toBe(130);
  });

  it("refuses a directory as the source once, with status 2, suggesting stdin", async () => {
    const recorded = recordingIo();
    expect(await main([dir], recorded.io)).toBe(2);
    const lines = recorded.stderr().split("\n");
    expect(lines[0]).toBe(
      `streamll-view: ${dir} is a directory: give a JSONL file, or pipe the events into stdin with "-" (e.g. cat ${dir}/*.jsonl | streamll-view -)`,
    );
    expect(lines).toHaveLength(3);
  });

  it("reads a FIFO as a stream, like stdin, and ends on Ctrl-C (status 130) with or without a writer", async () => {
    const fifo = join(dir, "events.fifo");
    execFileSync("mkfifo", [fifo]);
    // No writer yet: Ctrl-C still ends it at once.
    const idle = await startView([fifo]);
    expect(await idle.stop()).toBe(130);
    const view = await startView([fifo]);
    const stream = await openEventStream(view.eventsUrl);
    const events = ragExecution();
    // The viewer is reading, so this open does not wait; closing it ends the stream.
    const writer = await open(fifo, "w");
    await writer.write(jsonl(events));
    await writer.close();
    await stream.waitFor(() => stream.events().length === events.length, "the FIFO's events");
    await stream.waitFor(
      (m) => m.event === "status" && JSON.parse(m.data).source.state === "ended",
      "the end of the FIFO",
    );
    expect(view.recorded.stderr()).toContain(`${fifo} ended after ${events.length} lines`);
    expect(view.recorded.stderr()).not.toMatch(/ESPIPE|EISDIR/);
    stream.close();
    expect(await view.stop()).toBe(130);
  });

  it("binds only where told: --host warns, --port is honoured", async () => {
    const free = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, "127.0.0.1", () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    const local = await startView([join(dir, "missing.jsonl"), "--port", String(free)]);
    expect(local.url).toContain(`127.0.0.1:${free}/`);
    expect(local.recorded.stderr()).not.toContain("warning");
    await waitUntil(
      () => local.recorded.stderr().includes("does not exist (yet)"),
      "the missing-file notice",
    );
    expect(await local.stop()).toBe(130);
    const open = await startView([join(dir, "missing.jsonl"), "--host", "0.0.0.0"]);
    expect(open.recorded.stderr()).toMatch(/warning: listening on 0\.0\.0\.0, not only on this machine/);
    expect(await open.stop()).toBe(130);
  });

  it("rejects bad usage with status 2, prints help and version", async () => {
    const prices = join(dir, "prices.json");
    writeFileSync(prices, JSON.stringify({ "gpt-4o-mini": { input: 1 } }));
    const badPrices = join(dir, "bad-prices.json");
    writeFileSync(badPrices, JSON.stringify({ "gpt-4o-mini": 0.15 }));
    const cases: [string[], string][] = [
      [["a.jsonl", "b.jsonl"], "give one file"],
      [["--port", "70000"], "--port must be at most 65535"],
      [["--port", "x"], "--port must be a whole number"],
      [["--max-executions", "0"], "--max-executions must be a whole number >= 1"],
      [["--prices", join(dir, "nope.json")], "--prices: cannot read"],
      [["--prices", prices], "prices.gpt-4o-mini.input: unknown option"],
      [
        ["--prices", badPrices],
        `must hold {"<model>": {"inputPerMillion": <number>, "outputPerMillion": <number>}, …}`,
      ],
      [["--bogus"], `Unknown option '--bogus' (for an argument that starts with "-", put "--" before it)\n`],
      [["--prot", "80"], "Unknown option '--prot'; did you mean --port?\n"],
      [["--no-histroy"], "Unknown option '--no-histroy'; did you mean --no-history?\n"],
    ];
    for (const [argv, message] of cases) {
      const recorded = recordingIo();
      expect(await main(argv, recorded.io), argv.join(" ")).toBe(2);
      expect(recorded.stderr(), argv.join(" ")).toContain(message);
    }
    const help = recordingIo();
    expect(await main(["--help"], help.io)).toBe(0);
    expect(help.stdout()).toContain("Usage: streamll-view [<events.jsonl> | -]");
    const version = recordingIo();
    expect(await main(["--version"], version.io)).toBe(0);
    expect(version.stdout()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it.skipIf(!existsSync(CLI) && process.env.CI !== "true")(
    "works as the built bin at the end of a pipe, and exits on SIGINT",
    async () => {
      const child = spawn(process.execPath, [CLI, "-"], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      child.stdout.on("data", (chunk) => (stdout += chunk));
      await waitUntil(() => URL_PATTERN.test(stdout), "the URL");
      const url = URL_PATTERN.exec(stdout)![1]!;
      const stream = await openEventStream(url.replace("/?", "/events?"));
      const events = ragExecution();
      child.stdin.write(jsonl(events));
      await stream.waitFor(() => stream.events().length === events.length, "the piped events");
      stream.close();
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      child.kill("SIGINT");
      expect(await exited).toBe(130);
    },
  );
});
