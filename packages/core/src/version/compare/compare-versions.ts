import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { StreamllError } from "../../errors";
import { nearestName } from "../../options/nearest-name";
import { v, validateOptions } from "../../options/schema";
import { decodeEventLine } from "./event-line";
import { compareProportions, holmAdjust, mannWhitneyU } from "./stats";
import { rowKey, VersionAggregator, type VersionSamples, type VersionSummary } from "./version-aggregator";

/** What `streamll compare` compares and how strictly. */
export interface CompareOptions {
  /** Only this `module_name`. */
  module?: string;
  /**
   * The `code_signature` to compare from. Without `baseline`/`candidate`, each version of a module is
   * compared with the one that appeared before it (by the median timestamp of each version's events, so one
   * event with a skewed clock cannot reorder them).
   */
  baseline?: string;
  /**
   * The `code_signature` to compare to (with `baseline`: that pair only; alone: every other version to it).
   * The same signature as `baseline` gives no comparison (`streamll compare` refuses it as a usage error).
   */
  candidate?: string;
  /** Family-wise significance level, after Holm's correction over every test in the report. Default 0.05. */
  alpha?: number;
  /**
   * Smallest relative change of the median duration that is flagged, however significant: with enough calls
   * even a 0.1 % difference is "significant" but not worth an alarm. Default 0.05 (5 %).
   */
  minEffect?: number;
  /** Fewest calls per version for a test; smaller samples are reported as `insufficient-data`. Default 8. */
  minSamples?: number;
}

export type CompareVerdict =
  | "regression"
  | "improvement"
  | "no-significant-change"
  | "insufficient-data"
  | "not-comparable";

/** The latency part of a comparison. */
export interface DurationComparison {
  readonly test: "mann-whitney-u";
  readonly n_baseline: number;
  readonly n_candidate: number;
  readonly p50_baseline: number | null;
  readonly p50_candidate: number | null;
  readonly p95_baseline: number | null;
  readonly p95_candidate: number | null;
  /** `p50_candidate / p50_baseline - 1`, e.g. 0.2 for 20 % slower. */
  readonly relative_change: number | null;
  /** Probability that a random candidate call is slower than a random baseline call (0.5: no difference). */
  readonly probability_slower: number | null;
  readonly u: number | null;
  readonly z: number | null;
  readonly p_value: number | null;
  /** Holm-adjusted over all tests of the report. */
  readonly p_adjusted: number | null;
  readonly verdict: CompareVerdict;
}

/** The error-rate part of a comparison. */
export interface ErrorRateComparison {
  readonly test: "two-proportion-z" | "fisher-exact" | null;
  readonly errors_baseline: number;
  readonly calls_baseline: number;
  readonly errors_candidate: number;
  readonly calls_candidate: number;
  readonly rate_baseline: number;
  readonly rate_candidate: number;
  readonly z: number | null;
  readonly p_value: number | null;
  readonly p_adjusted: number | null;
  readonly verdict: CompareVerdict;
}

/** One baseline → candidate comparison within a module's calls (or within one of its `trace()` steps). */
export interface VersionComparison {
  readonly module: string;
  /** The calls' `method_name`. */
  readonly method: string | null;
  /** null for the module's calls; the step's `operation` for a `trace()` step. */
  readonly operation: string | null;
  readonly baseline: string | null;
  readonly candidate: string | null;
  /** Why the versions were not tested (different strategies), if so. */
  readonly note: string | null;
  readonly duration: DurationComparison;
  readonly error_rate: ErrorRateComparison;
}

/**
 * The version of the `--json` report layout. Fields are only ever added within a version; a rename, removal
 * or change of meaning increments it, so scripts can check it before reading the report.
 */
export const COMPARE_REPORT_FORMAT_VERSION = 1;

/**
 * Everything `streamll compare --json` prints (field by field in docs/guides/version-tracking.md). Durations
 * are in milliseconds, rates and changes are fractions (0.2 = 20 %), and a value that could not be computed is
 * null, never NaN.
 */
export interface CompareReport {
  /** {@link COMPARE_REPORT_FORMAT_VERSION}. */
  readonly format_version: typeof COMPARE_REPORT_FORMAT_VERSION;
  readonly files: readonly string[];
  /** Events counted, each `event_id` once. */
  readonly events: number;
  /** Events skipped because an event with the same `event_id` came before (redeliveries, a file read twice). */
  readonly duplicate_events: number;
  readonly invalid_lines: number;
  readonly alpha: number;
  readonly min_effect: number;
  readonly min_samples: number;
  readonly correction: "holm";
  /** How many p-values the Holm correction covered. */
  readonly tests: number;
  readonly versions: readonly VersionSummary[];
  readonly comparisons: readonly VersionComparison[];
}

const DEFAULTS = { alpha: 0.05, minEffect: 0.05, minSamples: 8 } as const;

/** `CompareOptions` as `compareEvents()`, `compareEventFiles()` and `streamll compare` check them. */
export const compareOptionsSchema = v.object<CompareOptions>({
  module: v.string({ min: 1 }).optional(),
  baseline: v.string({ min: 1 }).optional(),
  candidate: v.string({ min: 1 }).optional(),
  alpha: v.number({ min: Number.MIN_VALUE, max: 1, expected: "a number > 0 and <= 1" }).optional(),
  minEffect: v.number({ min: 0 }).optional(),
  minSamples: v.integer({ min: 1 }).optional(),
});

/** Reads JSONL event files (or `-` for stdin) and compares the versions found in them. */
export async function compareEventFiles(
  paths: readonly string[],
  options: CompareOptions = {},
): Promise<CompareReport> {
  const aggregator = await readEventFiles(paths, options);
  return buildReport(aggregator, paths, options);
}

/**
 * {@link compareEventFiles} for `streamll compare`: also checks that `module`, `baseline` and `candidate`
 * name something in the events, and throws a {@link CompareSelectionError} naming what did not match.
 */
export async function compareEventFilesChecked(
  paths: readonly string[],
  options: CompareOptions = {},
): Promise<CompareReport> {
  const aggregator = await readEventFiles(paths, options);
  const versions = aggregator.versions();
  const problem = selectionProblem(aggregator.modules, versions, options);
  if (problem !== null) throw new CompareSelectionError(problem);
  return buildReport(aggregator, paths, options, versions);
}

async function readEventFiles(paths: readonly string[], options: CompareOptions): Promise<VersionAggregator> {
  validateOptions("compareEventFiles()", compareOptionsSchema, options);
  const aggregator = new VersionAggregator({ module: options.module ?? null });
  for (const path of paths) {
    const input: Readable = path === "-" ? process.stdin : createReadStream(path, { encoding: "utf8" });
    try {
      await readJsonLines(input, aggregator);
    } catch (error) {
      // System errors (ENOENT, EISDIR, EACCES…) are about the file; anything else is not, and stays as it is.
      throw isSystemError(error) ? new EventFileError(path, error) : error;
    }
  }
  return aggregator;
}

function isSystemError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && typeof (error as { code?: unknown }).code === "string";
}

/** What common `errno` codes mean, in the words `streamll compare` prints. */
const FILE_ERROR_REASONS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EISDIR: "it is a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "a part of the path is not a directory",
  ENAMETOOLONG: "the name is too long",
  ELOOP: "too many symbolic links",
  EMFILE: "too many open files",
};

/**
 * An event file (or stdin, `-`) could not be read. The message names the path as given and the reason
 * (`cannot read nope.jsonl: no such file (ENOENT)`); Node's own message is not used, since it says neither
 * which file nor, for some errors, what went wrong in words.
 */
export class EventFileError extends StreamllError<"EVENT_FILE_UNREADABLE"> {
  readonly path: string;
  /** The system error code, e.g. `ENOENT`. */
  readonly errno: string;

  constructor(path: string, cause: Error & { code: string }) {
    const errno = cause.code;
    const reason = `${FILE_ERROR_REASONS[errno] ?? "read failed"} (${errno})`;
    super("EVENT_FILE_UNREADABLE", `cannot read ${path === "-" ? "stdin" : path}: ${reason}`, { cause });
    this.name = "EventFileError";
    this.path = path;
    this.errno = errno;
  }
}

/** `--module`, `--baseline` or `--candidate` matched nothing in the events: a usage error of the command. */
export class CompareSelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompareSelectionError";
  }
}

/** How many known values a "matches nothing" message lists. */
const LISTED_VALUES = 8;

/**
 * Why the selection matches nothing, or null when it is fine: a `module` no event has, a `baseline` or
 * `candidate` no version (of that module) has, or a baseline and candidate that never share a row.
 */
export function selectionProblem(
  modules: Iterable<string>,
  versions: readonly VersionSamples[],
  options: CompareOptions,
): string | null {
  if (options.module !== undefined) {
    const known = [...modules].sort();
    if (!known.includes(options.module)) return noMatch("--module", options.module, "module_name", known);
  }
  const signatures = [...new Set(versions.flatMap((version) => version.summary.code_signature ?? []))];
  const scope = options.module === undefined ? "" : ` of module ${options.module}`;
  const rows = (signature: string) =>
    versions
      .filter((version) => version.summary.code_signature === signature)
      .map((version) => rowKey(version.summary));
  for (const [flag, signature] of [
    ["--baseline", options.baseline],
    ["--candidate", options.candidate],
  ] as const) {
    if (signature !== undefined && !signatures.includes(signature)) {
      return noMatch(flag, signature, `code_signature${scope}`, signatures);
    }
  }
  if (options.baseline !== undefined && options.baseline === options.candidate) {
    return `--baseline and --candidate are both ${options.baseline}: nothing to compare`;
  }
  if (options.baseline !== undefined && options.candidate !== undefined) {
    const candidateRows = new Set(rows(options.candidate));
    if (!rows(options.baseline).some((row) => candidateRows.has(row))) {
      const where = (signature: string) =>
        [
          ...new Set(
            versions
              .filter((version) => version.summary.code_signature === signature)
              .map((version) => rowLabel(version.summary)),
          ),
        ].join(", ");
      return (
        `--baseline ${options.baseline} (${where(options.baseline)}) and --candidate ${options.candidate} ` +
        `(${where(options.candidate)}) are never versions of the same module, method and operation`
      );
    }
  }
  return null;
}

function noMatch(flag: string, value: string, what: string, known: readonly string[]): string {
  if (known.length === 0) return `${flag} "${value}" matches no ${what}: the events hold none`;
  const meant = nearestName(value, known);
  const listed =
    known.length > LISTED_VALUES
      ? `${known.slice(0, LISTED_VALUES).join(", ")} and ${known.length - LISTED_VALUES} more`
      : known.join(", ");
  return (
    `${flag} "${value}" matches no ${what} in the events` +
    (meant === undefined ? "" : `; did you mean "${meant}"?`) +
    ` (found: ${listed})`
  );
}

function rowLabel(summary: VersionSummary): string {
  const name = summary.method === null ? summary.module : `${summary.module}.${summary.method}`;
  return summary.operation === null ? name : `${name} operation ${summary.operation}`;
}

/** Compares versions in events already in memory (e.g. from a `MemorySink`). */
export function compareEvents(events: Iterable<unknown>, options: CompareOptions = {}): CompareReport {
  validateOptions("compareEvents()", compareOptionsSchema, options);
  const aggregator = new VersionAggregator({ module: options.module ?? null });
  for (const event of events) aggregator.add(event);
  return buildReport(aggregator, [], options);
}

async function readJsonLines(input: Readable, aggregator: VersionAggregator): Promise<void> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    const text = line.trim();
    if (text === "") continue;
    // Exactly the lines decodeEvent (what every other streamll reader uses) accepts: a line with a future
    // major schema_version, a bad timestamp or a malformed id is not an event, and counting it could pick the
    // wrong baseline.
    const event = decodeEventLine(text);
    if (event === null) {
      aggregator.invalid++;
      continue;
    }
    aggregator.add(event);
  }
}

interface PendingComparison {
  readonly module: string;
  readonly method: string | null;
  readonly operation: string | null;
  readonly baseline: VersionSamples;
  readonly candidate: VersionSamples;
}

function buildReport(
  aggregator: VersionAggregator,
  files: readonly string[],
  options: CompareOptions,
  versions: VersionSamples[] = aggregator.versions(),
): CompareReport {
  const alpha = options.alpha ?? DEFAULTS.alpha;
  const minEffect = options.minEffect ?? DEFAULTS.minEffect;
  const minSamples = Math.max(1, options.minSamples ?? DEFAULTS.minSamples);
  const pairs = selectPairs(versions, options);

  // First pass: raw tests. Second pass: Holm over every p-value, then verdicts.
  const raw = pairs.map((pair) => rawTests(pair, minSamples));
  const pValues: number[] = [];
  for (const tests of raw) {
    if (tests.duration) pValues.push(tests.duration.pValue);
    if (tests.errors) pValues.push(tests.errors.pValue);
  }
  const adjusted = holmAdjust(pValues);
  let next = 0;
  const comparisons = pairs.map((pair, index): VersionComparison => {
    const tests = raw[index]!;
    const durationAdjusted = tests.duration ? adjusted[next++]! : null;
    const errorsAdjusted = tests.errors ? adjusted[next++]! : null;
    return {
      module: pair.module,
      method: pair.method,
      operation: pair.operation,
      baseline: pair.baseline.summary.code_signature,
      candidate: pair.candidate.summary.code_signature,
      note: tests.note,
      duration: durationComparison(pair, tests, durationAdjusted, alpha, minEffect),
      error_rate: errorComparison(pair, tests, errorsAdjusted, alpha, minSamples),
    };
  });
  return {
    format_version: COMPARE_REPORT_FORMAT_VERSION,
    files: [...files],
    events: aggregator.events,
    duplicate_events: aggregator.duplicates,
    invalid_lines: aggregator.invalid,
    alpha,
    min_effect: minEffect,
    min_samples: minSamples,
    correction: "holm",
    tests: pValues.length,
    versions: versions.map((version) => version.summary),
    comparisons,
  };
}

function selectPairs(versions: readonly VersionSamples[], options: CompareOptions): PendingComparison[] {
  const byRow = new Map<string, VersionSamples[]>();
  for (const version of versions) {
    const key = rowKey(version.summary);
    const list = byRow.get(key);
    if (list) list.push(version);
    else byRow.set(key, [version]);
  }
  const pairs: PendingComparison[] = [];
  for (const list of byRow.values()) {
    const { module, method, operation } = list[0]!.summary;
    const row = { module, method, operation };
    const find = (signature: string) => list.find((version) => version.summary.code_signature === signature);
    if (options.baseline !== undefined && options.candidate !== undefined) {
      const baseline = find(options.baseline);
      const candidate = find(options.candidate);
      // Never a version against itself: that would report "no significant change" about nothing.
      if (baseline && candidate && baseline !== candidate) pairs.push({ ...row, baseline, candidate });
    } else if (options.baseline !== undefined) {
      const baseline = find(options.baseline);
      if (!baseline) continue;
      for (const candidate of list) if (candidate !== baseline) pairs.push({ ...row, baseline, candidate });
    } else if (options.candidate !== undefined) {
      const candidate = find(options.candidate);
      if (!candidate) continue;
      for (const baseline of list) if (baseline !== candidate) pairs.push({ ...row, baseline, candidate });
    } else {
      for (let i = 1; i < list.length; i++)
        pairs.push({ ...row, baseline: list[i - 1]!, candidate: list[i]! });
    }
  }
  return pairs;
}

interface RawTests {
  readonly note: string | null;
  readonly duration: ReturnType<typeof mannWhitneyU> | null;
  readonly errors: ReturnType<typeof compareProportions> | null;
}

function rawTests(pair: PendingComparison, minSamples: number): RawTests {
  const a = pair.baseline.summary;
  const b = pair.candidate.summary;
  if (a.strategy !== null && b.strategy !== null && a.strategy !== b.strategy) {
    return {
      note: `signatures from different strategies (${a.strategy} vs ${b.strategy}) are not comparable`,
      duration: null,
      errors: null,
    };
  }
  const durationTestable =
    pair.baseline.durations.length >= minSamples && pair.candidate.durations.length >= minSamples;
  const errorsTestable = a.calls >= minSamples && b.calls >= minSamples && a.errors + b.errors > 0;
  return {
    note: null,
    duration: durationTestable ? mannWhitneyU(pair.baseline.durations, pair.candidate.durations) : null,
    errors: errorsTestable ? compareProportions(a.errors, a.calls, b.errors, b.calls) : null,
  };
}

function durationComparison(
  pair: PendingComparison,
  tests: RawTests,
  pAdjusted: number | null,
  alpha: number,
  minEffect: number,
): DurationComparison {
  const a = pair.baseline.summary.duration_ms;
  const b = pair.candidate.summary.duration_ms;
  const p50Baseline = a?.p50 ?? null;
  const p50Candidate = b?.p50 ?? null;
  const relative =
    p50Baseline !== null && p50Candidate !== null && p50Baseline > 0 ? p50Candidate / p50Baseline - 1 : null;
  const test = tests.duration;
  let verdict: CompareVerdict;
  if (tests.note !== null) verdict = "not-comparable";
  else if (test === null || pAdjusted === null) verdict = "insufficient-data";
  else if (pAdjusted < alpha && relative !== null && Math.abs(relative) >= minEffect) {
    // The rank test and the medians must agree on the direction: when they disagree (e.g. a faster median
    // with a much slower tail) neither "slower" nor "faster" describes the change.
    const slower = test.probabilityGreater > 0.5 && relative > 0;
    const faster = test.probabilityGreater < 0.5 && relative < 0;
    verdict = slower ? "regression" : faster ? "improvement" : "no-significant-change";
  } else verdict = "no-significant-change";
  return {
    test: "mann-whitney-u",
    n_baseline: pair.baseline.durations.length,
    n_candidate: pair.candidate.durations.length,
    p50_baseline: p50Baseline,
    p50_candidate: p50Candidate,
    p95_baseline: a?.p95 ?? null,
    p95_candidate: b?.p95 ?? null,
    relative_change: relative,
    probability_slower: test ? test.probabilityGreater : null,
    u: test ? test.u : null,
    z: test ? test.z : null,
    p_value: test ? test.pValue : null,
    p_adjusted: pAdjusted,
    verdict,
  };
}

function errorComparison(
  pair: PendingComparison,
  tests: RawTests,
  pAdjusted: number | null,
  alpha: number,
  minSamples: number,
): ErrorRateComparison {
  const a = pair.baseline.summary;
  const b = pair.candidate.summary;
  const test = tests.errors;
  let verdict: CompareVerdict;
  if (tests.note !== null) verdict = "not-comparable";
  else if (Math.min(a.calls, b.calls) < minSamples) verdict = "insufficient-data";
  // Enough calls and no error on either side: nothing changed (and there is nothing to test).
  else if (test === null || pAdjusted === null) verdict = "no-significant-change";
  else if (pAdjusted < alpha) verdict = b.error_rate > a.error_rate ? "regression" : "improvement";
  else verdict = "no-significant-change";
  return {
    test: test ? test.test : null,
    errors_baseline: a.errors,
    calls_baseline: a.calls,
    errors_candidate: b.errors,
    calls_candidate: b.calls,
    rate_baseline: a.error_rate,
    rate_candidate: b.error_rate,
    z: test ? test.z : null,
    p_value: test ? test.pValue : null,
    p_adjusted: pAdjusted,
    verdict,
  };
}
