import { describe, expect, it } from "vitest";
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

  /** Runs `command` (default: `spec`) on `argv`; its exit status and what it wrote to stderr. */
  async function stderrOf(
    argv: readonly string[],
    command: typeof spec = spec,
  ): Promise<{ status: number; stderr: string }> {
    let stderr = "";
    const io: CliIo = {
      stdout: async () => undefined,
      stderr: (text: string) => {
        stderr += text;
      },
      env: {},
    };
    const status = await runCommand(command, argv, io);
    return { status, stderr };
  }

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
      expect(stderr).toContain("sk-[REDACTED]");
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
