// `streamll` as a process (the built bin), held to what every streamll command-line tool does: usage on stderr
// when arguments are missing, one-line errors with the --help hint, status 130 on Ctrl-C.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli, startCli } from "../../../../test-support/cli-process.mjs";

const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const runnable = existsSync(CLI) || process.env.CI === "true";

describe.skipIf(!runnable)("streamll (the built bin)", () => {
  it.each([[[]], [["compare"]]])("run as %j prints its usage on stderr, status 2", async (args) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage: streamll compare <events.jsonl>...");
  });

  it.each([
    [["frobnicate"], 'streamll: unknown command "frobnicate"', "streamll"],
    [["compare", "a.jsonl", "--bogus"], "streamll compare: Unknown option '--bogus'", "streamll compare"],
    [
      ["compare", "a.jsonl", "--alpha", "2"],
      "streamll compare: --alpha must be a number",
      "streamll compare",
    ],
    [
      ["compare", "no-such-file.jsonl"],
      "streamll compare: cannot read no-such-file.jsonl: no such file (ENOENT)",
      "streamll compare",
    ],
    [["compare", "."], "streamll compare: cannot read .: it is a directory (EISDIR)", "streamll compare"],
  ])("reports %j in one line plus the --help hint, status 2", async (args, message, command) => {
    const result = await runCli(CLI, args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const lines = result.stderr.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(message);
    expect(lines[1]).toBe(`Run "${command} --help" for usage.`);
  });

  it("ends with status 130 on Ctrl-C while reading stdin", async () => {
    const cli = startCli(CLI, ["compare", "-"]);
    cli.child.stdin?.write('{"not":"finished"}\n');
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
    expect(cli.stdout()).toBe("");
  });
});
