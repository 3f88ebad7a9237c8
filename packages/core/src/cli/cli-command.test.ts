import { describe, expect, it } from "vitest";
import { parseCommandArgs, UsageError } from "./cli-command";

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
