// `streamll-view` as a process (the built bin), held to what every streamll command-line tool does: one-line
// errors with the --help hint, status 130 on Ctrl-C. (It needs no argument: without one it follows the default
// JSONL file.)
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, startCli } from "../../../../test-support/cli-process.mjs";
import { openEventStream } from "../../test/support/sse";

/** Planted in the arguments: must never come out on stdout, stderr, or the page's event stream. */
const SECRET = "sk-live-PLANTED1234567890";

const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const runnable = existsSync(CLI) || process.env.CI === "true";

describe.skipIf(!runnable)("streamll-view (the built bin)", () => {
  const dir = mkdtempSync(join(tmpdir(), "streamll-view-cli-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    [["--max-executions", "0"], "--max-executions must be a whole number >= 1"],
    [["--prot", "80"], "streamll-view: Unknown option '--prot'; did you mean --port?"],
  ])("reports %j in one line plus the --help hint, status 2", async (args, message) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    const lines = result.stderr.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(message);
    expect(lines[1]).toBe('Run "streamll-view --help" for usage.');
  });

  it.each([
    [
      `redis://default:${SECRET}@127.0.0.1:6379`,
      "streamll-redis export --url <url> --follow | streamll-view -",
    ],
    [`amqps://guest:${SECRET}@mq.example:5671/vhost`, "streamll-rabbitmq tail --url <url> --follow"],
    [`kafka://user:${SECRET}@broker:9092`, "streamll-kafka export --brokers <host:port> --follow"],
  ])(
    "refuses a broker URL as the source (status 2), says how to read one, and never prints its password",
    async (url, how) => {
      const result = await runCli(CLI, [url]);
      expect(result.code).toBe(2);
      expect(`${result.stdout}${result.stderr}`).not.toContain(SECRET);
      expect(`${result.stdout}${result.stderr}`).not.toContain("@");
      const lines = result.stderr.split("\n");
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/^streamll-view: a \w+:\/\/ URL is not a source: .*From a broker/);
      expect(lines[0]).toContain(how);
      expect(lines[1]).toBe('Run "streamll-view --help" for usage.');
    },
  );

  it("never echoes a --host value: not a host name, or one that does not resolve (a token can look like one)", async () => {
    const pasted = await runCli(CLI, ["--host", `user:${SECRET}@10.0.0.1`]);
    expect(pasted.code).toBe(2);
    expect(`${pasted.stdout}${pasted.stderr}`).not.toContain(SECRET);
    expect(pasted.stderr.split("\n")[0]).toBe(
      "streamll-view: --host must be a host name or IP address (the value given is neither)",
    );
    for (const host of ["no-such-host.invalid", SECRET]) {
      const unknown = await runCli(CLI, ["--host", host, join(dir, "none.jsonl")]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("streamll-view: cannot start: --host does not resolve to an address");
      expect(unknown.stderr).not.toContain(host);
      expect(unknown.stderr).not.toContain("getaddrinfo");
    }
  });

  it("never echoes a secret typed as an option name", async () => {
    const run = await runCli(CLI, [`--${SECRET}`]);
    expect(run.code).toBe(2);
    expect(`${run.stdout}${run.stderr}`).not.toContain(SECRET);
    expect(run.stderr).toContain("Unknown option");
  });

  it("shows a path that carries URL credentials without them, on stderr and on the page", async () => {
    // A relative path may look like a URL; whatever it holds, `user:pass@` is never shown.
    const path = `./redis://default:${SECRET}@127.0.0.1:6379`;
    const cli = startCli(CLI, [path, "--port", "0"]);
    await cli.waitFor(/streamll-view: http:\/\//);
    await cli.waitFor(/does not exist/);
    const url = /streamll-view: (\S+)/.exec(cli.stdout())![1]!;
    const stream = await openEventStream(url.replace("/?", "/events?"));
    const status = await stream.waitFor((m) => m.event === "status", "status");
    stream.close();
    expect(JSON.parse(status.data).source.label).toBe("./redis://***@127.0.0.1:6379");
    expect(status.data).not.toContain(SECRET);
    expect(cli.stderr()).toContain("reading ./redis://***@127.0.0.1:6379");
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
    expect(`${cli.stdout()}${cli.stderr()}`).not.toContain(SECRET);
  });

  it("ends with status 130 on the first Ctrl-C while a FIFO given as the file has no writer", async () => {
    const fifo = join(dir, "no-writer.fifo");
    execFileSync("mkfifo", [fifo]);
    const cli = startCli(CLI, [fifo, "--port", "0"]);
    await cli.waitFor(/streamll-view: http:\/\//);
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
    expect(cli.stderr()).not.toMatch(/ESPIPE|EISDIR/);
  });

  it("ends with status 130 on Ctrl-C while serving", async () => {
    const file = join(dir, "events.jsonl");
    writeFileSync(file, "");
    const cli = startCli(CLI, [file, "--port", "0"]);
    await cli.waitFor(/streamll-view: http:\/\//);
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
  });
});
