import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeEvent } from "../../events/decode-event";
import { testEvent } from "../../events/test-event";
import { compareEventFiles, compareEvents } from "./compare-versions";
import { formatCompareReport } from "./format-report";
import { runCli } from "./run-cli";

/** Deterministic uniform [0, 1) numbers (mulberry32), so every run sees the same samples. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface VersionSpec {
  module: string;
  signature: string | null;
  calls: number;
  /** Median duration; samples spread ±40 % around it. */
  ms: number;
  errorEvery?: number;
  strategy?: string;
  tokens?: number;
  startMinute?: number;
  seed?: number;
}

/** Builds the events a run of one module version would produce: version, start, token, end/error. */
function events(spec: VersionSpec): object[] {
  const next = random(spec.seed ?? 1);
  const minute = String(spec.startMinute ?? 0).padStart(2, "0");
  const base = {
    module_name: spec.module,
    code_signature: spec.signature,
    module_version: "qa-service@1.0.0",
    git_commit: "abc1234",
    timestamp: `2026-11-27T06:${minute}:00.000Z`,
  };
  const out: object[] = [
    {
      ...base,
      event_type: "version",
      data: { strategy: spec.strategy ?? "ast", code_signature: spec.signature },
    },
  ];
  for (let i = 0; i < spec.calls; i++) {
    const timestamp = `2026-11-27T06:${minute}:${String(i % 60).padStart(2, "0")}.000Z`;
    out.push({ ...base, timestamp, event_type: "start", data: {} });
    for (let t = 0; t < (spec.tokens ?? 0); t++)
      out.push({ ...base, timestamp, event_type: "token", data: {} });
    const duration_ms = spec.ms * (0.6 + 0.8 * next());
    const failed = spec.errorEvery !== undefined && i % spec.errorEvery === 0;
    out.push({
      ...base,
      timestamp,
      event_type: failed ? "error" : "end",
      data: failed
        ? { duration_ms, error_type: "Error" }
        : { duration_ms, ...(spec.tokens ? { token_count: spec.tokens } : {}), usage: { total_tokens: 10 } },
    });
  }
  return out;
}

/** Version v1 (10 ms calls), then v2 five minutes later at twice the duration: a regression from v1 to v2. */
function slowerSecondVersion(calls: number): { v1: object[]; v2: object[] } {
  return {
    v1: events({ module: "qa", signature: "v1v1v1v1v1v1", calls, ms: 10, seed: 1 }),
    v2: events({ module: "qa", signature: "v2v2v2v2v2v2", calls, ms: 20, seed: 2, startMinute: 5 }),
  };
}

/** `list` with its second event stamped 1970: well-formed, from a host whose clock was not set yet. */
function withSkewedClock(list: object[]): object[] {
  return list.map((event, i) => (i === 1 ? { ...event, timestamp: "1970-01-01T00:00:00.000Z" } : event));
}

/** The same events with an `event_id` each, as the runtime writes them (unique per event). */
function withIds(list: object[], prefix: string): object[] {
  return list.map((event, index) => ({ ...event, event_id: `${prefix}${String(index).padStart(8, "0")}` }));
}

/**
 * `event` with the fields the schema requires and the test did not set, as the runtime writes it: files are
 * read with `decodeEvent`, which rejects anything less. `id` makes the event_id (unless the event has one).
 */
function onTheWire(event: object, id: string): object {
  const ids = id.replace(/[^A-Za-z0-9_-]/g, "_").padStart(8, "0");
  return { ...testEvent({ event_id: ids, execution_id: ids, span_id: ids }), ...event };
}

describe("compareEvents: what an event must hold to count", () => {
  it("orders versions by the median timestamp of their events, not the earliest: a skewed clock is outvoted", () => {
    const { v1, v2 } = slowerSecondVersion(30);
    const report = compareEvents([...withSkewedClock(v2), ...v1]);
    expect(report.comparisons.map((c) => [c.baseline, c.candidate])).toEqual([
      ["v1v1v1v1v1v1", "v2v2v2v2v2v2"],
    ]);
    expect(report.comparisons[0]!.duration.verdict).toBe("regression");
    expect(report.versions.map((version) => version.first_seen)).toEqual([
      "2026-11-27T06:00:00.000Z",
      "1970-01-01T00:00:00.000Z",
    ]);
    // The same order as without the skew.
    expect(compareEvents([...v2, ...v1]).comparisons.map((c) => [c.baseline, c.candidate])).toEqual([
      ["v1v1v1v1v1v1", "v2v2v2v2v2v2"],
    ]);
  });

  it("orders versions by time, not by how the timestamp is spelled, and ignores timestamps that are not times", () => {
    const v1 = events({ module: "qa", signature: "v1v1v1v1v1v1", calls: 30, ms: 10, seed: 1 });
    const v2 = events({ module: "qa", signature: "v2v2v2v2v2v2", calls: 30, ms: 20, seed: 2 });
    // As strings, "06:00:00.500Z" sorts before "06:00:00Z" ("." < "Z") though it is half a second later.
    const at = (list: object[], timestamp: string | ((i: number) => string)) =>
      list.map((event, i) => ({
        ...event,
        timestamp: typeof timestamp === "string" ? timestamp : timestamp(i),
      }));
    const first = at(v1, "2026-11-27T06:00:00Z");
    const second = at(v2, (i) => (i === 1 ? "1970-01-01 (bad)" : "2026-11-27T06:00:00.500Z"));
    const report = compareEvents([...second, ...first]);
    expect(report.comparisons.map((c) => [c.baseline, c.candidate])).toEqual([
      ["v1v1v1v1v1v1", "v2v2v2v2v2v2"],
    ]);
    expect(report.comparisons[0]!.duration.verdict).toBe("regression");
    expect(report.versions[1]!.first_seen).toBe("2026-11-27T06:00:00.500Z");
  });

  it("counts an event without a module_name as invalid, never as a module named ''", () => {
    const list = events({ module: "qa", signature: "v1", calls: 3, ms: 1 });
    const report = compareEvents([...list, { ...list[1]!, module_name: "" }]);
    expect(report.invalid_lines).toBe(1);
    expect(report.versions.map((version) => version.module)).toEqual(["qa"]);
  });
});

describe("compareEvents: duplicates, labels and the text report", () => {
  it("counts an event once per event_id, so redelivered events never add calls", () => {
    const v1 = withIds(events({ module: "qa", signature: "v1v1v1v1v1v1", calls: 30, ms: 10, seed: 1 }), "a");
    const v2 = withIds(
      events({ module: "qa", signature: "v2v2v2v2v2v2", calls: 30, ms: 11, seed: 2, startMinute: 5 }),
      "b",
    );
    const once = compareEvents([...v1, ...v2]);
    const thrice = compareEvents([...v1, ...v2, ...v1, ...v2, ...v2]);
    expect(once.duplicate_events).toBe(0);
    expect(thrice.duplicate_events).toBe(v1.length + 2 * v2.length);
    expect(thrice.events).toBe(once.events);
    expect(thrice.versions).toEqual(once.versions);
    expect(thrice.comparisons).toEqual(once.comparisons);
    expect(formatCompareReport(thrice)).toContain(`${thrice.duplicate_events} duplicate events skipped`);
    expect(formatCompareReport(once)).not.toContain("duplicate");
    // Events without an id (hand-made) cannot be told apart and are all counted.
    const anonymous = events({ module: "qa", signature: "v1v1v1v1v1v1", calls: 5, ms: 10 });
    expect(compareEvents([...anonymous, ...anonymous]).versions[0]!.calls).toBe(10);
  });

  it("lists every module_version and git_commit one signature ran under, and says so in the table", () => {
    const first = events({ module: "dep", signature: "aaaaaaaaaaaa", calls: 10, ms: 10 });
    const second = events({
      module: "dep",
      signature: "aaaaaaaaaaaa",
      calls: 10,
      ms: 10,
      startMinute: 5,
    }).map((event) => ({ ...event, module_version: "qa-service@1.1.0", git_commit: "def5678" }));
    const report = compareEvents([...first, ...second]);
    expect(report.versions).toHaveLength(1);
    expect(report.versions[0]).toMatchObject({
      module_version: "qa-service@1.0.0",
      module_versions: ["qa-service@1.0.0", "qa-service@1.1.0"],
      git_commit: "abc1234",
      git_commits: ["abc1234", "def5678"],
    });
    const text = formatCompareReport(report);
    expect(text).toContain("qa-service@1.0.0 +1 more");
    expect(text).toContain("abc1234 +1 more");
    const single = compareEvents(first).versions[0]!;
    expect(single).toMatchObject({ module_versions: ["qa-service@1.0.0"], git_commits: ["abc1234"] });
    expect(formatCompareReport(compareEvents(first))).not.toContain("more");
  });

  it("shows the language-model tokens of usage in the tokens column", () => {
    // 40 calls, usage.total_tokens 10 each (the JSON's usage), 3 streamed chunks each (token_count).
    const report = compareEvents(
      events({ module: "qa", signature: "aaaaaaaaaaaa", calls: 40, ms: 10, tokens: 3 }),
    );
    expect(report.versions[0]!.usage).toEqual({ total_tokens: 400 });
    const row = formatCompareReport(report)
      .split("\n")
      .find((line) => line.includes("aaaaaaaaaaaa"))!;
    expect(row.trim().split(/\s+/).at(-1)).toBe("400");
    const prompt = compareEvents([
      {
        module_name: "m",
        event_type: "end",
        code_signature: "s",
        data: { duration_ms: 1, usage: { prompt_tokens: 7, completion_tokens: 2 } },
      },
      { module_name: "n", event_type: "end", code_signature: "s", data: { duration_ms: 1 } },
    ]);
    const cells = formatCompareReport(prompt)
      .split("\n")
      .filter((line) => line.startsWith("  s "))
      .map((line) => line.trim().split(/\s+/).at(-1));
    expect(cells).toEqual(["9", "-"]);
  });
});

describe("compareEvents: summaries", () => {
  it("reports calls, errors, percentiles, tokens and version info per module and code_signature", () => {
    const report = compareEvents([
      ...events({ module: "qa", signature: "aaaaaaaaaaaa", calls: 40, ms: 10, errorEvery: 10, tokens: 3 }),
      ...events({ module: "other", signature: null, calls: 5, ms: 1 }),
    ]);
    expect(report.versions.map((v) => [v.module, v.code_signature])).toEqual([
      ["other", null],
      ["qa", "aaaaaaaaaaaa"],
    ]);
    const qa = report.versions[1]!;
    expect(qa).toMatchObject({
      strategy: "ast",
      module_version: "qa-service@1.0.0",
      git_commit: "abc1234",
      calls: 40,
      errors: 4,
      error_rate: 0.1,
      unfinished: 0,
      token_events: 120,
      token_count: 108,
      usage: { total_tokens: 360 },
    });
    const d = qa.duration_ms!;
    expect(d.p50).toBeGreaterThan(6);
    expect(d.p50).toBeLessThan(14);
    expect(d.p50).toBeLessThanOrEqual(d.p95);
    expect(d.p95).toBeLessThanOrEqual(d.p99);
    expect(report.comparisons).toEqual([]);
  });

  it("counts lines that are not events and calls without an end", () => {
    const report = compareEvents([
      42,
      null,
      { event_type: "end" },
      { module_name: "qa", event_type: "start", code_signature: "x", data: {} },
    ]);
    expect(report.invalid_lines).toBe(3);
    expect(report.versions[0]).toMatchObject({ calls: 0, unfinished: 1, duration_ms: null });
  });
});

describe("compareEvents: comparisons", () => {
  const baseline = events({ module: "qa", signature: "v1v1v1v1v1v1", calls: 60, ms: 10, seed: 1 });

  it("flags a slower candidate as a regression, naming the test and sample sizes", () => {
    const slower = events({
      module: "qa",
      signature: "v2v2v2v2v2v2",
      calls: 60,
      ms: 13,
      seed: 2,
      startMinute: 5,
    });
    const report = compareEvents([...baseline, ...slower]);
    expect(report.comparisons).toHaveLength(1);
    const { duration, error_rate, baseline: from, candidate: to } = report.comparisons[0]!;
    expect([from, to]).toEqual(["v1v1v1v1v1v1", "v2v2v2v2v2v2"]);
    expect(duration).toMatchObject({
      test: "mann-whitney-u",
      n_baseline: 60,
      n_candidate: 60,
      verdict: "regression",
    });
    expect(duration.relative_change!).toBeGreaterThan(0.15);
    expect(duration.p_adjusted!).toBeLessThan(0.05);
    expect(duration.probability_slower!).toBeGreaterThan(0.7);
    expect(error_rate.verdict).toBe("no-significant-change");
    const text = formatCompareReport(report);
    expect(text).toContain("Mann-Whitney U");
    expect(text).toContain("n = 60 vs 60");
    expect(text).toContain("REGRESSION");
  });

  it("does not flag a new version with the same performance", () => {
    const same = events({
      module: "qa",
      signature: "v2v2v2v2v2v2",
      calls: 60,
      ms: 10,
      seed: 3,
      startMinute: 5,
    });
    const report = compareEvents([...baseline, ...same]);
    expect(report.comparisons[0]!.duration.verdict).toBe("no-significant-change");
    expect(formatCompareReport(report)).not.toContain("REGRESSION");
  });

  it("reports a faster candidate as an improvement", () => {
    const faster = events({
      module: "qa",
      signature: "v2v2v2v2v2v2",
      calls: 60,
      ms: 6,
      seed: 4,
      startMinute: 5,
    });
    expect(compareEvents([...baseline, ...faster]).comparisons[0]!.duration.verdict).toBe("improvement");
  });

  it("does not flag a significant but tiny change (below minEffect)", () => {
    const slightly = events({
      module: "qa",
      signature: "v2",
      calls: 2000,
      ms: 10.3,
      seed: 5,
      startMinute: 5,
    });
    const big = events({ module: "qa", signature: "v1", calls: 2000, ms: 10, seed: 6 });
    const report = compareEvents([...big, ...slightly]);
    const { duration } = report.comparisons[0]!;
    expect(duration.p_value!).toBeLessThan(0.05);
    expect(duration.verdict).toBe("no-significant-change");
    expect(compareEvents([...big, ...slightly], { minEffect: 0.01 }).comparisons[0]!.duration.verdict).toBe(
      "regression",
    );
  });

  it("flags an error-rate regression (z-test for larger counts, Fisher exact for small ones)", () => {
    const failing = events({
      module: "qa",
      signature: "v2",
      calls: 200,
      ms: 10,
      errorEvery: 4,
      seed: 7,
      startMinute: 5,
    });
    const steady = events({ module: "qa", signature: "v1", calls: 200, ms: 10, errorEvery: 40, seed: 8 });
    const large = compareEvents([...steady, ...failing]).comparisons[0]!.error_rate;
    expect(large).toMatchObject({ test: "two-proportion-z", verdict: "regression", errors_candidate: 50 });
    const few = compareEvents([
      ...events({ module: "qa", signature: "v1", calls: 40, ms: 10, seed: 9 }),
      ...events({
        module: "qa",
        signature: "v2",
        calls: 40,
        ms: 10,
        errorEvery: 5,
        seed: 10,
        startMinute: 5,
      }),
    ]).comparisons[0]!.error_rate;
    expect(few).toMatchObject({
      test: "fisher-exact",
      verdict: "regression",
      errors_baseline: 0,
      errors_candidate: 8,
    });
  });

  it("does not test versions with too few calls", () => {
    const report = compareEvents([
      ...events({ module: "qa", signature: "v1", calls: 5, ms: 10 }),
      ...events({ module: "qa", signature: "v2", calls: 5, ms: 50, startMinute: 5 }),
    ]);
    expect(report.comparisons[0]!.duration.verdict).toBe("insufficient-data");
    expect(report.comparisons[0]!.error_rate.verdict).toBe("insufficient-data");
    expect(report.tests).toBe(0);
  });

  it("never compares signatures of different strategies", () => {
    const report = compareEvents([
      ...events({ module: "qa", signature: "v1", calls: 30, ms: 10, strategy: "ast" }),
      ...events({ module: "qa", signature: "v2", calls: 30, ms: 50, strategy: "source", startMinute: 5 }),
    ]);
    expect(report.comparisons[0]).toMatchObject({
      note: expect.stringContaining("different strategies"),
      duration: { verdict: "not-comparable" },
    });
  });

  it("compares consecutive versions by default, or the pair asked for, within the module asked for", () => {
    const all = [
      ...events({ module: "qa", signature: "v1", calls: 10, ms: 10, startMinute: 1 }),
      ...events({ module: "qa", signature: "v2", calls: 10, ms: 10, startMinute: 2 }),
      ...events({ module: "qa", signature: "v3", calls: 10, ms: 10, startMinute: 3 }),
      ...events({ module: "sum", signature: "s1", calls: 10, ms: 10, startMinute: 1 }),
      ...events({ module: "sum", signature: "s2", calls: 10, ms: 10, startMinute: 2 }),
    ];
    const pairs = (options = {}) =>
      compareEvents(all, options).comparisons.map((c) => `${c.baseline}>${c.candidate}`);
    expect(pairs()).toEqual(["v1>v2", "v2>v3", "s1>s2"]);
    expect(pairs({ baseline: "v1", candidate: "v3" })).toEqual(["v1>v3"]);
    expect(pairs({ baseline: "v2" })).toEqual(["v2>v1", "v2>v3"]);
    expect(pairs({ candidate: "v3" })).toEqual(["v1>v3", "v2>v3"]);
    expect(pairs({ module: "sum" })).toEqual(["s1>s2"]);
    expect(compareEvents(all, { module: "sum" }).versions.every((v) => v.module === "sum")).toBe(true);
  });

  it("does not call it a regression or an improvement when the median and the rank test disagree", () => {
    const call = (signature: string, duration_ms: number, second: number) => ({
      module_name: "qa",
      code_signature: signature,
      timestamp: `2026-11-27T06:${signature === "v1" ? "00" : "05"}:${String(second % 60).padStart(2, "0")}.000Z`,
      event_type: "end",
      data: { duration_ms },
    });
    // Baseline 1..60 ms (median 30.5). Candidate: a faster median (28 ms) but 29 calls at 1 s, so a random
    // candidate call is slower than a random baseline call 72 % of the time.
    const baseline = Array.from({ length: 60 }, (_, i) => call("v1", i + 1, i));
    const candidate = Array.from({ length: 60 }, (_, i) => call("v2", i < 31 ? 28 : 1000, i));
    const { duration } = compareEvents([...baseline, ...candidate]).comparisons[0]!;
    expect(duration.relative_change!).toBeCloseTo(28 / 30.5 - 1, 10);
    expect(duration.probability_slower!).toBeCloseTo((31 * 27.5 + 29 * 60) / 3600, 10);
    expect(duration.p_adjusted!).toBeLessThan(0.001);
    expect(duration.verdict).toBe("no-significant-change");
  });

  it("matches a hand calculation of U, z and p", () => {
    // a = 1..10, b = 6..15. U counts the pairs where b's value is larger (ties half): 5 * 10 for a = 1..5,
    // then 9.5 + 8.5 + 7.5 + 6.5 + 5.5 for a = 6..10, so U = 87.5 (also counted below).
    const a = Array.from({ length: 10 }, (_, i) => i + 1);
    const b = Array.from({ length: 10 }, (_, i) => i + 6);
    let u = 0;
    for (const x of a) for (const y of b) u += y > x ? 1 : y === x ? 0.5 : 0;
    // 5 tied pairs of values (6..10 appear twice): tie term 5 * (2^3 - 2) = 30.
    const variance = ((10 * 10) / 12) * (21 - 30 / (20 * 19));
    const z = (u - 50 - 0.5) / Math.sqrt(variance);
    const report = compareEvents([
      ...a.map((ms, i) => ({
        module_name: "m",
        code_signature: "a",
        timestamp: `2026-01-01T00:00:${String(i).padStart(2, "0")}Z`,
        event_type: "end",
        data: { duration_ms: ms },
      })),
      ...b.map((ms, i) => ({
        module_name: "m",
        code_signature: "b",
        timestamp: `2026-01-01T00:01:${String(i).padStart(2, "0")}Z`,
        event_type: "end",
        data: { duration_ms: ms },
      })),
    ]);
    const { duration } = report.comparisons[0]!;
    expect(u).toBe(87.5);
    expect(duration.u).toBe(u);
    expect(duration.z!).toBeCloseTo(z, 10);
    // variance = 100 / 12 * (21 - 30 / 380) = 174.342; z = (87.5 - 50 - 0.5) / 13.2039 = 2.80221;
    // two-sided p = erfc(z / sqrt 2) = 0.0050754 (Python math.erfc).
    expect(duration.z!).toBeCloseTo(2.80221, 4);
    expect(duration.p_value!).toBeCloseTo(0.0050754, 6);
    expect(report.format_version).toBe(1);
  });

  it("applies Holm's correction across every test in the report", () => {
    const report = compareEvents([
      ...events({ module: "qa", signature: "v1", calls: 60, ms: 10, seed: 11, errorEvery: 20 }),
      ...events({
        module: "qa",
        signature: "v2",
        calls: 60,
        ms: 13,
        seed: 12,
        errorEvery: 20,
        startMinute: 5,
      }),
    ]);
    const { duration, error_rate } = report.comparisons[0]!;
    expect(report.tests).toBe(2);
    expect(duration.p_adjusted!).toBeCloseTo(Math.min(1, 2 * duration.p_value!), 12);
    expect(error_rate.p_adjusted!).toBeGreaterThanOrEqual(duration.p_adjusted!);
  });
});

describe("streamll CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "streamll-cli-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, list: object[], extra = ""): string => {
    const path = join(dir, name);
    const lines = list.map((e, index) => JSON.stringify(onTheWire(e, `${name}-${index}`)));
    writeFileSync(path, `${lines.join("\n")}\n${extra}`);
    return path;
  };
  const run = async (argv: string[]) => {
    let stdout = "";
    let stderr = "";
    const status = await runCli(
      argv,
      {
        stdout: (t) => {
          stdout += t;
        },
        stderr: (t) => {
          stderr += t;
        },
      },
      "9.9.9",
    );
    return { status, stdout, stderr };
  };

  it("reads several files, prints the table and comparisons, and can fail on a regression", async () => {
    const { v1, v2 } = slowerSecondVersion(40);
    const a = write("a.jsonl", v1);
    const b = write("b.jsonl", v2, "not json\n\n");
    const plain = await run(["compare", a, b]);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain("2 files");
    expect(plain.stdout).toContain("1 unreadable lines skipped");
    expect(plain.stdout).toMatch(/code_signature\s+strategy\s+module_version\s+git_commit\s+calls/);
    expect(plain.stdout).toContain("qa.forward: v1v1v1v1v1v1 -> v2v2v2v2v2v2");
    expect(plain.stdout).toContain("REGRESSION");
    expect((await run(["compare", a, b, "--fail-on-regression"])).status).toBe(1);
    const json = await run(["compare", a, b, "--json", "--alpha", "0.01"]);
    const report = JSON.parse(json.stdout) as {
      alpha: number;
      comparisons: { duration: { verdict: string } }[];
    };
    expect(report.alpha).toBe(0.01);
    expect(report.comparisons[0]!.duration.verdict).toBe("regression");
  });

  it("reports usage errors with status 2", async () => {
    expect((await run([])).status).toBe(2);
    expect((await run(["frobnicate"])).stderr).toContain('unknown command "frobnicate"');
    expect((await run(["compare"])).stderr).toContain("no event files given");
    expect((await run(["compare", "x.jsonl", "--alpha", "2"])).stderr).toContain("--alpha must be a number");
    expect((await run(["compare", "x.jsonl", "--bogus"])).status).toBe(2);
    const missing = await run(["compare", join(dir, "missing.jsonl")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("ENOENT");
  });

  it("names a file it cannot read, in one line followed by the --help hint, status 2", async () => {
    const hint = 'Run "streamll compare --help" for usage.\n';
    const missing = join(dir, "missing.jsonl");
    expect(await run(["compare", missing])).toEqual({
      status: 2,
      stdout: "",
      stderr: `streamll compare: cannot read ${missing}: no such file (ENOENT)\n${hint}`,
    });
    const ok = write("ok.jsonl", events({ module: "qa", signature: "v1", calls: 2, ms: 1 }));
    expect(await run(["compare", ok, dir])).toEqual({
      status: 2,
      stdout: "",
      stderr: `streamll compare: cannot read ${dir}: it is a directory (EISDIR)\n${hint}`,
    });
    await expect(compareEventFiles([missing])).rejects.toMatchObject({
      name: "EventFileError",
      code: "EVENT_FILE_UNREADABLE",
      path: missing,
      errno: "ENOENT",
    });
  });

  it("counts lines decodeEvent rejects as invalid and never aggregates them", async () => {
    const valid = withIds(events({ module: "qa", signature: "v1v1v1v1v1v1", calls: 10, ms: 10 }), "ok");
    const sample = onTheWire(valid[1]!, "x") as Record<string, unknown>;
    const rejected = [
      { ...sample, event_id: "bad00001", schema_version: "9.0" },
      { ...sample, event_id: "bad00002", timestamp: "1970-01-01 (bad)" },
      { ...sample, event_id: "bad00003", module_name: "" },
      { ...sample, event_id: "short" },
    ];
    for (const event of rejected) expect(decodeEvent(JSON.stringify(event)).ok).toBe(false);
    const path = write("invalid.jsonl", [...valid, ...rejected]);
    const json = await run(["compare", path, "--json"]);
    const report = JSON.parse(json.stdout) as {
      events: number;
      invalid_lines: number;
      versions: { module: string; unfinished: number; first_seen: string }[];
    };
    expect(report.invalid_lines).toBe(4);
    expect(report.events).toBe(valid.length);
    expect(report.versions.map((version) => version.module)).toEqual(["qa"]);
    expect(report.versions[0]).toMatchObject({ unfinished: 0, first_seen: "2026-11-27T06:00:00.000Z" });
    expect((await run(["compare", path])).stdout).toContain("4 unreadable lines skipped");
  });

  it("picks the baseline by the first valid timestamp: a bad one cannot turn a regression into an improvement", async () => {
    const { v1, v2 } = slowerSecondVersion(40);
    const early = { ...v2[1]!, timestamp: "1970-01-01 (bad)" };
    const path = write("badts.jsonl", [...v1, ...v2, early]);
    const result = await run(["compare", path, "--fail-on-regression"]);
    expect(result.stdout).toContain("qa.forward: v1v1v1v1v1v1 -> v2v2v2v2v2v2");
    expect(result.stdout).toContain("1 unreadable lines skipped");
    expect(result.status).toBe(1);
  });

  it("orders versions by their median event time: one valid but skewed timestamp cannot pick the baseline", async () => {
    const { v1, v2 } = slowerSecondVersion(40);
    // A well-formed timestamp from a host whose clock was not set yet: the earliest event of the file.
    const path = write("skew.jsonl", [...v1, ...withSkewedClock(v2)]);
    const result = await run(["compare", path, "--fail-on-regression"]);
    expect(result.stdout).toContain("qa.forward: v1v1v1v1v1v1 -> v2v2v2v2v2v2");
    expect(result.stdout).toContain("REGRESSION");
    expect(result.status).toBe(1);
    const report = JSON.parse((await run(["compare", path, "--json"])).stdout) as {
      versions: { code_signature: string; first_seen: string }[];
    };
    // first_seen stays what the events say.
    expect(report.versions.map((version) => [version.code_signature, version.first_seen])).toEqual([
      ["v1v1v1v1v1v1", "2026-11-27T06:00:00.000Z"],
      ["v2v2v2v2v2v2", "1970-01-01T00:00:00.000Z"],
    ]);
  });

  it("rejects a --module, --baseline or --candidate that matches nothing, and a version against itself", async () => {
    const path = write("sel.jsonl", [
      ...events({ module: "qa", signature: "13b3e79e07e1", calls: 20, ms: 10, seed: 1 }),
      ...events({ module: "qa", signature: "9f00aa11bb22", calls: 20, ms: 20, seed: 2, startMinute: 5 }),
      ...events({ module: "other", signature: "cccccccccccc", calls: 20, ms: 10, seed: 3 }),
    ]);
    const typo = await run(["compare", path, "--baseline", "13b3e79e07eX", "--fail-on-regression"]);
    expect(typo.status).toBe(2);
    expect(typo.stdout).toBe("");
    expect(typo.stderr).toContain('--baseline "13b3e79e07eX" matches no code_signature');
    expect(typo.stderr).toContain('did you mean "13b3e79e07e1"?');
    expect(typo.stderr).toContain("(found: cccccccccccc, 13b3e79e07e1, 9f00aa11bb22)");
    expect(typo.stderr).toContain('Run "streamll compare --help" for usage.');

    const candidate = await run(["compare", path, "--module", "qa", "--candidate", "cccccccccccc"]);
    expect(candidate.status).toBe(2);
    expect(candidate.stderr).toContain('--candidate "cccccccccccc" matches no code_signature of module qa');

    const module = await run(["compare", path, "--module", "Qa", "--fail-on-regression"]);
    expect(module.status).toBe(2);
    expect(module.stderr).toContain('--module "Qa" matches no module_name in the events; did you mean "qa"?');
    expect(module.stderr).toContain("(found: other, qa)");

    const apart = await run(["compare", path, "--baseline", "13b3e79e07e1", "--candidate", "cccccccccccc"]);
    expect(apart.status).toBe(2);
    expect(apart.stderr).toContain("are never versions of the same module, method and operation");

    const same = await run(["compare", path, "--baseline", "13b3e79e07e1", "--candidate", "13b3e79e07e1"]);
    expect(same.status).toBe(2);
    expect(same.stderr).toContain("--baseline and --candidate are both 13b3e79e07e1");
    // In code, the same signature as both gives no comparison instead of a version compared with itself.
    const self = compareEvents(events({ module: "qa", signature: "s1", calls: 20, ms: 10 }), {
      baseline: "s1",
      candidate: "s1",
    });
    expect(self.comparisons).toEqual([]);

    const ok = await run(["compare", path, "--baseline", "13b3e79e07e1", "--fail-on-regression"]);
    expect(ok.status).toBe(1);
    expect(ok.stdout).toContain("qa.forward: 13b3e79e07e1 -> 9f00aa11bb22");

    const lone = await run(["compare", path, "--baseline", "cccccccccccc"]);
    expect(lone.status).toBe(0);
    expect(lone.stdout).toContain("comparisons: none (no other version shares");
  });

  it("reads a file twice without counting its events twice", async () => {
    const path = write(
      "dup.jsonl",
      withIds(events({ module: "qa", signature: "v1v1v1v1v1v1", calls: 12, ms: 10 }), "d"),
    );
    const json = await run(["compare", path, path, "--json"]);
    const report = JSON.parse(json.stdout) as { duplicate_events: number; versions: { calls: number }[] };
    expect(report.duplicate_events).toBe(25);
    expect(report.versions[0]!.calls).toBe(12);
  });

  it("prints help and version", async () => {
    expect((await run(["--help"])).stdout).toContain("Usage: streamll compare");
    expect((await run(["compare", "--help"])).status).toBe(0);
    expect((await run(["--version"])).stdout).toBe("9.9.9\n");
  });

  it("reads a file through compareEventFiles", async () => {
    const path = write("c.jsonl", events({ module: "qa", signature: "v1", calls: 3, ms: 1 }));
    const report = await compareEventFiles([path]);
    expect(report.files).toEqual([path]);
    expect(report.versions[0]!.calls).toBe(3);
  });
});
