import { parseArgs } from "node:util";
import { type CompareOptions, compareEventFiles } from "./compare-versions";
import { formatCompareReport } from "./format-report";

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

const CLI_USAGE = `Usage: streamll compare <events.jsonl>... [options]

Reads streamll events from JSONL files ("-" reads stdin) and prints, per module and code_signature, the
number of calls, error rate, p50/p95/p99 duration and token counts; then compares versions of each module
and flags a regression only when it is statistically significant.

Options:
  --module <name>        only this module_name
  --baseline <sig>       code_signature to compare from (default: each version vs the one before it)
  --candidate <sig>      code_signature to compare to
  --alpha <p>            family-wise significance level, Holm-corrected over all tests (default 0.05)
  --min-effect <ratio>   smallest relative change of the median duration to flag (default 0.05)
  --min-samples <n>      fewest calls per version to run a test (default 8)
  --json                 print the report as JSON
  --fail-on-regression   exit with status 1 when a regression is flagged
  -h, --help             show this help
  -v, --version          print the version

Exit status: 0 done, 1 regression flagged (with --fail-on-regression), 2 usage or input error.
`;

/**
 * Runs the `streamll` command line with `argv` (without `node` and the script path) and returns the exit
 * status. Never calls `process.exit`, so it can run inside tests.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo = processIo,
  version = "unknown",
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    io.stdout(CLI_USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "-v" || command === "--version") {
    io.stdout(`${version}\n`);
    return 0;
  }
  if (command !== "compare") {
    io.stderr(`streamll: unknown command "${command}"\n\n${CLI_USAGE}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseCompareArgs>;
  try {
    parsed = parseCompareArgs(rest);
  } catch (error) {
    io.stderr(`streamll compare: ${error instanceof Error ? error.message : String(error)}\n\n${CLI_USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout(CLI_USAGE);
    return 0;
  }
  try {
    const report = await compareEventFiles(parsed.files, parsed.options);
    io.stdout(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : formatCompareReport(report));
    const regression = report.comparisons.some(
      (comparison) =>
        comparison.duration.verdict === "regression" || comparison.error_rate.verdict === "regression",
    );
    return parsed.failOnRegression && regression ? 1 : 0;
  } catch (error) {
    io.stderr(`streamll compare: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
}

function parseCompareArgs(args: readonly string[]): {
  files: string[];
  options: CompareOptions;
  json: boolean;
  failOnRegression: boolean;
  help: boolean;
} {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      module: { type: "string" },
      baseline: { type: "string" },
      candidate: { type: "string" },
      alpha: { type: "string" },
      "min-effect": { type: "string" },
      "min-samples": { type: "string" },
      json: { type: "boolean", default: false },
      "fail-on-regression": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return { files: [], options: {}, json: false, failOnRegression: false, help: true };
  if (positionals.length === 0) throw new Error("no event files given");
  const options: CompareOptions = {};
  if (values.module !== undefined) options.module = values.module;
  if (values.baseline !== undefined) options.baseline = values.baseline;
  if (values.candidate !== undefined) options.candidate = values.candidate;
  if (values.alpha !== undefined) options.alpha = numberOption("--alpha", values.alpha, 0, 1, false);
  if (values["min-effect"] !== undefined) {
    options.minEffect = numberOption("--min-effect", values["min-effect"], 0, Number.POSITIVE_INFINITY, true);
  }
  if (values["min-samples"] !== undefined) {
    const n = numberOption("--min-samples", values["min-samples"], 1, Number.POSITIVE_INFINITY, true);
    if (!Number.isInteger(n)) throw new Error("--min-samples must be a whole number");
    options.minSamples = n;
  }
  return {
    files: positionals,
    options,
    json: values.json === true,
    failOnRegression: values["fail-on-regression"] === true,
    help: false,
  };
}

function numberOption(name: string, text: string, min: number, max: number, inclusiveMin: boolean): number {
  const value = Number(text);
  const aboveMin = inclusiveMin ? value >= min : value > min;
  if (text.trim() === "" || !Number.isFinite(value) || !aboveMin || value > max) {
    throw new Error(
      `${name} must be a number ${inclusiveMin ? "≥" : ">"} ${min}${Number.isFinite(max) ? ` and ≤ ${max}` : ""}, got "${text}"`,
    );
  }
  return value;
}
