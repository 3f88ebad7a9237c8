// `streamll-view` as a process (the built bin), held to what every streamll command-line tool does: one-line
// errors with the --help hint, status 130 on Ctrl-C. (It needs no argument: without one it follows the default
// JSONL file.)
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, startCli } from "../../../../test-support/cli-process.mjs";

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

  it("ends with status 130 on Ctrl-C while serving", async () => {
    const file = join(dir, "events.jsonl");
    writeFileSync(file, "");
    const cli = startCli(CLI, [file, "--port", "0"]);
    await cli.waitFor(/streamll-view: http:\/\//);
    expect(await cli.interrupt()).toEqual({ code: 130, signal: null });
  });
});
