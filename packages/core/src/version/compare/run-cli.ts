import { parseCommandArgs, runCommand, shownNumber, UsageError } from "../../cli/cli-command";
import { type CliIo, createProcessIo, OUTPUT_CLOSED } from "../../cli/cli-io";
import { type CompareOptions, CompareSelectionError, compareEventFilesChecked } from "./compare-versions";
import { formatCompareReport } from "./format-report";

const CLI_USAGE = `Usage: streamll compare <events.jsonl>... [options]

Reads streamll events from JSONL files ("-" reads stdin) and prints, per module and code_signature, the
number of calls, error rate, p50/p95/p99 duration and token counts; then compares versions of each module
and flags a regression only when it is statistically significant.

Options:
  --module <name>        only this module_name
  --baseline <sig>       code_signature to compare from (default: each version vs the one before it)
  --candidate <sig>      code_signature to compare to (not the baseline's)
  --alpha <p>            family-wise significance level, Holm-corrected over all tests (default 0.05)
  --min-effect <ratio>   smallest relative change of the median duration to flag (default 0.05)
  --min-samples <n>      fewest calls per version to run a test (default 8)
  --json                 print the report as JSON
  --fail-on-regression   exit with status 1 when a regression is flagged
  -h, --help             show this help
  -v, --version          print the version

Events whose event_id was already read are counted once. A --module, --baseline or --candidate that
matches nothing in the events is a usage error.

Exit status: 0 done, 1 regression flagged (with --fail-on-regression), 2 usage or input error,
130 interrupted.
`;

interface CompareCommand {
  readonly files: string[];
  readonly options: CompareOptions;
  readonly json: boolean;
  readonly failOnRegression: boolean;
  readonly password?: undefined;
}

/**
 * Runs the `streamll` command line with `argv` (without `node` and the script path) and returns the exit
 * status. Never calls `process.exit`, so it can run inside tests.
 */
export function runCli(argv: readonly string[], io?: CliIo, version = "unknown"): Promise<number> {
  return runCommand<CompareCommand>(
    {
      tool: "streamll",
      command: "compare",
      version,
      usage: CLI_USAGE,
      parse: parseCompareArgs,
      run: runCompare,
    },
    argv,
    io ?? createProcessIo(),
  );
}

async function runCompare(command: CompareCommand, io: CliIo): Promise<number> {
  const signal = io.signal;
  let onAbort: (() => void) | undefined;
  const interrupted = new Promise<"interrupted">((resolve) => {
    if (signal === undefined) return;
    onAbort = () => resolve("interrupted");
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  let report: Awaited<ReturnType<typeof compareEventFilesChecked>> | "interrupted";
  try {
    report = await Promise.race([compareEventFilesChecked(command.files, command.options), interrupted]);
  } catch (error) {
    // --module, --baseline or --candidate that matches nothing: a usage error.
    if (error instanceof CompareSelectionError) throw new UsageError(error.message);
    // A file that cannot be read (an `EventFileError` naming it) is a mistake in the arguments too: the
    // shared front prints it like every other one, one line and the help hint, exit 2.
    throw error;
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
  if (report === "interrupted") {
    // Stdin would keep the process waiting for input nobody is going to read.
    if (command.files.includes("-")) process.stdin.destroy();
    return signal?.reason === OUTPUT_CLOSED ? 0 : 130;
  }
  await io.stdout(command.json ? `${JSON.stringify(report, null, 2)}\n` : formatCompareReport(report));
  const regression = report.comparisons.some(
    (comparison) =>
      comparison.duration.verdict === "regression" || comparison.error_rate.verdict === "regression",
  );
  return command.failOnRegression && regression ? 1 : 0;
}

function parseCompareArgs(args: readonly string[]): CompareCommand | "help" {
  const { values, positionals } = parseCommandArgs({
    args: [...args],
    allowPositionals: true,
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
  if (values.help) return "help";
  if (positionals.length === 0) throw new UsageError("no event files given");
  const options: CompareOptions = {};
  if (values.module !== undefined) options.module = values.module;
  if (values.baseline !== undefined) options.baseline = values.baseline;
  if (values.candidate !== undefined) options.candidate = values.candidate;
  if (options.baseline !== undefined && options.baseline === options.candidate) {
    throw new UsageError(`--baseline and --candidate are both ${options.baseline}: nothing to compare`);
  }
  if (values.alpha !== undefined) options.alpha = numberOption("--alpha", values.alpha, 0, 1, false);
  if (values["min-effect"] !== undefined) {
    options.minEffect = numberOption("--min-effect", values["min-effect"], 0, Number.POSITIVE_INFINITY, true);
  }
  if (values["min-samples"] !== undefined) {
    const n = numberOption("--min-samples", values["min-samples"], 1, Number.POSITIVE_INFINITY, true);
    if (!Number.isInteger(n)) throw new UsageError("--min-samples must be a whole number");
    options.minSamples = n;
  }
  return {
    files: positionals,
    options,
    json: values.json === true,
    failOnRegression: values["fail-on-regression"] === true,
  };
}

function numberOption(name: string, text: string, min: number, max: number, inclusiveMin: boolean): number {
  const value = Number(text);
  const aboveMin = inclusiveMin ? value >= min : value > min;
  if (text.trim() === "" || !Number.isFinite(value) || !aboveMin || value > max) {
    throw new UsageError(
      `${name} must be a number ${inclusiveMin ? "≥" : ">"} ${min}${Number.isFinite(max) ? ` and ≤ ${max}` : ""}, got ${shownNumber(text)}`,
    );
  }
  return value;
}
