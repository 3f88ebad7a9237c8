import { describe, expect, it } from "vitest";
import { runCli } from "../version/compare/run-cli";
import { parseCommandArgs, passwordFromEnv, runCommand, UsageError, wholeNumber } from "./cli-command";
import type { CliIo } from "./cli-io";

const options = {
  module: { type: "string" },
  "min-samples": { type: "string" },
  json: { type: "boolean" },
} as const;

describe("parseCommandArgs", () => {
  it("parses as parseArgs does, strictly", () => {
    const { values, positionals } = parseCommandArgs({
      args: ["a.jsonl", "--module", "qa", "--json"],
      allowPositionals: true,
      options,
    });
    expect(values).toEqual({ module: "qa", json: true });
    expect(positionals).toEqual(["a.jsonl"]);
  });

  it.each([
    [["--modul", "qa"], true, "Unknown option '--modul'; did you mean --module?"],
    [["--min-sample", "3"], false, "Unknown option '--min-sample'; did you mean --min-samples?"],
    [
      ["--bogus"],
      true,
      `Unknown option '--bogus' (for an argument that starts with "-", put "--" before it)`,
    ],
    [["--bogus"], false, "Unknown option '--bogus'"],
    [["-x"], false, "Unknown option '-x'"],
    [["--bogus=VALUE"], false, "Unknown option '--bogus'"],
    [["--modul=VALUE"], false, "Unknown option '--modul'; did you mean --module?"],
    [["--Pl4nted-Passw0rd-XYZ=1"], false, "Unknown option (not shown: it may be a secret)"],
    [
      ["--Pl4nted-Passw0rd-XYZ"],
      true,
      `Unknown option (not shown: it may be a secret) (for an argument that starts with "-", put "--" before it)`,
    ],
    // Suggested by the shared start, but too far from `--module` to be a typo of it: not repeated.
    [
      ["--module-Pl4nted-Passw0rd-XYZ"],
      false,
      "Unknown option (not shown: it may be a secret); did you mean --module?",
    ],
    [["-P"], false, "Unknown option (not shown: it may be a secret)"],
    [["stray"], false, "Unexpected argument 'stray'; this command takes no positional arguments"],
    [
      ["Pl4nted-Passw0rd-XYZ"],
      false,
      "Unexpected argument (not shown: it may be a secret); this command takes no positional arguments",
    ],
  ])("refuses %j with a usage error naming the option meant", (args, allowPositionals, message) => {
    const parse = () => parseCommandArgs({ args, allowPositionals, options });
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow(new UsageError(message));
  });

  it("keeps parseArgs' other errors (a missing value) as they are", () => {
    expect(() => parseCommandArgs({ args: ["--module"], options })).toThrow(
      expect.objectContaining({ code: "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" }),
    );
  });
});

describe("runCommand", () => {
  const spec = {
    tool: "streamll",
    command: "compare",
    version: "0.0.0",
    usage: "Usage: streamll compare\n",
    parse: (_args: readonly string[]) => ({}),
    run: async () => 0,
  };

  /** Runs `command` (default: `spec`) on `argv`; its exit status and what it wrote to stdout and stderr. */
  async function outputOf(
    argv: readonly string[],
    command: typeof spec = spec,
  ): Promise<{ status: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const io: CliIo = {
      stdout: async (text: string) => {
        stdout += text;
      },
      stderr: (text: string) => {
        stderr += text;
      },
      env: {},
    };
    const status = await runCommand(command, argv, io);
    return { status, stdout, stderr };
  }

  /** Runs `command` (default: `spec`) on `argv`; its exit status and what it wrote to stderr. */
  async function stderrOf(
    argv: readonly string[],
    command: typeof spec = spec,
  ): Promise<{ status: number; stderr: string }> {
    const { status, stderr } = await outputOf(argv, command);
    return { status, stderr };
  }

  /** `spec`, parsing its arguments strictly as the real commands do (it knows `--module` and `--follow`). */
  const strict = {
    ...spec,
    parse: (args: readonly string[]) => {
      parseCommandArgs({
        args: [...args],
        allowPositionals: true,
        options: { module: { type: "string" }, follow: { type: "boolean" } },
      });
      return {};
    },
  };

  it.each([
    [["--version"]],
    [["-v"]],
    [["compare", "--version"]],
    [["compare", "-v"]],
    [["compare", "a.jsonl", "--module", "qa", "--version"]],
    [["compare", "--bogus", "-v"]],
  ])("prints the version for %j, first or after the command, status 0", async (argv) => {
    expect(await outputOf(argv, strict)).toEqual({ status: 0, stdout: "0.0.0\n", stderr: "" });
  });

  it("prints the version anywhere among the options of a tool without a command", async () => {
    const view = { ...strict, tool: "streamll-view", command: undefined } as unknown as typeof spec;
    for (const argv of [["--version"], ["events.jsonl", "-v"], ["--module", "qa", "--version"]]) {
      expect(await outputOf(argv, view)).toEqual({ status: 0, stdout: "0.0.0\n", stderr: "" });
    }
  });

  it("takes a -v after -- or before an unknown command as what it is, not as --version", async () => {
    expect(await outputOf(["compare", "--", "-v"], strict)).toEqual({ status: 0, stdout: "", stderr: "" });
    const unknown = await outputOf(["frobnicate", "--version"], strict);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it("streamll compare --version prints the version (the real command)", async () => {
    let stdout = "";
    const io: CliIo = {
      stdout: async (text: string) => {
        stdout += text;
      },
      stderr: () => undefined,
      env: {},
    };
    expect(await runCli(["compare", "--version"], io, "1.2.3")).toBe(0);
    expect(await runCli(["compare", "a.jsonl", "-v"], io, "1.2.3")).toBe(0);
    expect(stdout).toBe("1.2.3\n1.2.3\n");
  });

  it.each([
    [["Pl4nted-Passw0rd-XYZ"], "streamll: unknown command (not shown: it may be a secret)"],
    [["sk-proj-abc123DEF456ghi789"], "streamll: unknown command (not shown: it may be a secret)"],
    [["Pl4nted-Passw0rd-XYZ", "--version"], "streamll: unknown command (not shown: it may be a secret)"],
    [
      ["compare", "--Pl4nted-Passw0rd-XYZ=1"],
      "streamll compare: Unknown option (not shown: it may be a secret)",
    ],
    [
      ["compare", "--sk-proj-abc123DEF456ghi789"],
      "streamll compare: Unknown option (not shown: it may be a secret)",
    ],
    [["compare", "--", "x", "--module=Pl4nted-Passw0rd-XYZ"], ""],
  ])("never prints a secret-shaped argument: %j", async (argv, firstLine) => {
    const { stdout, stderr } = await outputOf(argv, strict);
    for (const planted of ["Pl4nted", "Passw0rd", "abc123DEF456ghi789"]) {
      expect(stdout).not.toContain(planted);
      expect(stderr).not.toContain(planted);
    }
    expect(stderr.split("\n")[0]).toContain(firstLine);
  });

  it.each([
    [["comapre"], 'unknown command "comapre"; did you mean "compare"?'],
    [["Compare"], 'unknown command "Compare"; did you mean "compare"?'],
    [["compare", "--folow"], "Unknown option '--folow'; did you mean --follow?"],
    [["compare", "--Modul=x"], "Unknown option '--Modul'; did you mean --module?"],
  ])("still names a typo with the name meant: %j", async (argv, message) => {
    const { status, stderr } = await outputOf(argv, strict);
    expect(status).toBe(2);
    expect(stderr).toContain(message);
  });

  it("still names a typo of the export command with the command meant", async () => {
    const exporter = { ...strict, tool: "streamll-redis", command: "export" };
    expect(await stderrOf(["exprot"], exporter)).toEqual({
      status: 2,
      stderr:
        'streamll-redis: unknown command "exprot"; did you mean "export"?\nRun "streamll-redis --help" for usage.\n',
    });
  });

  it("names the command meant when the one given is misspelt", async () => {
    expect(await stderrOf(["comapre", "a.jsonl"])).toEqual({
      status: 2,
      stderr:
        'streamll: unknown command "comapre"; did you mean "compare"?\nRun "streamll --help" for usage.\n',
    });
  });

  it("never repeats a secret typed as the command or as an option name", async () => {
    const secret = "sk-live-PLANTED1234567890";
    const parsing = {
      ...spec,
      parse: (args: readonly string[]) => {
        parseCommandArgs({ args: [...args], options: { module: { type: "string" } } });
        return {};
      },
    };
    for (const argv of [[secret], ["compare", `--${secret}`]]) {
      const { status, stderr } = await stderrOf(argv, parsing);
      expect(status).toBe(2);
      expect(stderr).not.toContain("PLANTED");
      expect(stderr).toContain("(not shown: it may be a secret)");
    }
  });

  it("suggests nothing for a command unlike any it knows", async () => {
    expect((await stderrOf(["frobnicate"])).stderr).toBe(
      'streamll: unknown command "frobnicate"\nRun "streamll --help" for usage.\n',
    );
  });
});

describe("passwordFromEnv", () => {
  it("reads the variable it names", () => {
    expect(passwordFromEnv("BROKER_PASSWORD", { BROKER_PASSWORD: "pw" })).toBe("pw");
  });

  it("names an unset variable, but never repeats a password passed in its place", () => {
    expect(() => passwordFromEnv("BROKER_PASSWORD", {})).toThrow(
      "environment variable BROKER_PASSWORD is not set or empty",
    );
    for (const given of ["hunter2-PLANTED", "PLANTEDs3cr3t!", "sk-proj-PLANTEDSECRET1234567890abcdef"]) {
      let message = "";
      try {
        passwordFromEnv(given, {});
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        message = (error as Error).message;
      }
      expect(message).toContain("pass the variable's name, not the password");
      expect(message).not.toContain("PLANTED");
    }
  });
});

describe("wholeNumber", () => {
  it("quotes a value that looks like a number, and never one that may be a secret", () => {
    expect(() => wholeNumber("--max", "10s")).toThrow('--max must be a whole number >= 1, got "10s"');
    expect(() => wholeNumber("--max", "0")).toThrow('--max must be a whole number >= 1, got "0"');
    for (const secret of ["sk-proj-PLANTEDSECRET1234567890abcdef", "hunter2-PLANTED"]) {
      let message = "";
      try {
        wholeNumber("--max", secret);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toBe("--max must be a whole number >= 1, got a value that is not a number");
    }
  });
});
