// The bench-number check itself, on a small repository of its own: what it accepts, what it reports.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { checkBenchNumbers, markdownFiles } from "../check-bench-numbers.mjs";

const root = mkdtempSync(join(tmpdir(), "bench-numbers-"));
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "docs"), { recursive: true });
mkdirSync(join(root, "packages/core/bench/results"), { recursive: true });
writeFileSync(
  join(root, "packages/core/bench/results/core.json"),
  JSON.stringify({
    results: {
      "call.reading_sink.added_us": 1.8374,
      "throughput.sink.events_per_s": 31_245,
      "loop.redis.added_p99_ms": -0.25,
      "broker.redis.version": "7.0.15",
      "memory.outage.retained_after_gc_bytes": 10_428_232,
    },
  }),
);
writeFileSync(join(root, "README.md"), "# test\n");
const FILE = "packages/core/bench/results/core.json";

/** Checks one document with `text`; returns the problems without the `file:line: ` prefix. */
function check(text) {
  const doc = join(root, "docs", "doc.md");
  writeFileSync(doc, text);
  const { problems, cited } = checkBenchNumbers(root, [doc]);
  return { cited, problems: problems.map((p) => p.replace(/^docs\/doc\.md:\d+: /, "")) };
}

describe("check-bench-numbers", () => {
  it("reads a _bytes result in the unit written after the citation, and reports one that does not match", () => {
    const key = `${FILE}#memory.outage.retained_after_gc_bytes`;
    for (const shown of [
      "9.9<!-- bench: K --> MiB",
      "10.4<!-- bench: K --> MB",
      "10,184<!-- bench: K --> KiB",
      "10,428,232<!-- bench: K --> B",
    ]) {
      const result = check(`holds ${shown.replace("K", key)} more\n`);
      assert.deepEqual(result, { cited: 1, problems: [] }, shown);
    }
    const wrong = check(`holds 1.9<!-- bench: ${key} --> MiB more\n`);
    assert.equal(wrong.problems.length, 1);
    assert.match(wrong.problems[0], /the docs say 1\.9, .* holds 9\.94/);
  });

  it("accepts a number that equals the stored value rounded to the decimals shown", () => {
    for (const shown of ["1.84", "1.8", "2", "+1.84", "1.837"]) {
      const result = check(`adds ${shown} µs<!-- bench: ${FILE}#call.reading_sink.added_us --> per call\n`);
      assert.deepEqual(result, { cited: 1, problems: [] }, shown);
    }
    assert.deepEqual(
      check(`| 31,245 events/s<!-- bench: ${FILE}#throughput.sink.events_per_s --> |\n`).problems,
      [],
    );
    assert.deepEqual(check(`−0.25 ms<!-- bench: ${FILE}#loop.redis.added_p99_ms -->\n`).problems, []);
  });

  it("reports a number that does not match, with the stored value and its rounding", () => {
    const { problems } = check(`adds 1.83 µs<!-- bench: ${FILE}#call.reading_sink.added_us -->\n`);
    assert.deepEqual(problems, [
      `the docs say 1.83, ${FILE}#call.reading_sink.added_us holds 1.8374 (rounded to 2 decimals: 1.84)`,
    ]);
    assert.match(
      check(`31,000 events/s<!-- bench: ${FILE}#throughput.sink.events_per_s -->`).problems[0],
      /holds 31245/,
    );
  });

  it("resolves `#key` against the document's bench-file, and cites the number right before each comment", () => {
    const text = [
      `<!-- bench-file: ${FILE} -->`,
      "| sink | 31,245<!-- bench: #throughput.sink.events_per_s --> | 1.84<!-- bench: #call.reading_sink.added_us --> |",
    ].join("\n");
    assert.deepEqual(check(text), { cited: 2, problems: [] });
  });

  it("reports missing files, missing keys, text values and citations without a number", () => {
    const text = [
      "2 µs<!-- bench: packages/core/bench/results/missing.json#a.b.c_us -->",
      `2 µs<!-- bench: ${FILE}#a.b.c_us -->`,
      `7 <!-- bench: ${FILE}#broker.redis.version -->`,
      `no number here <!-- bench: ${FILE}#call.reading_sink.added_us -->`,
      "3 µs<!-- bench: #call.reading_sink.added_us -->",
    ].join("\n");
    assert.deepEqual(check(text).problems, [
      "packages/core/bench/results/missing.json does not exist (cited for 2)",
      `${FILE} has no number at a.b.c_us`,
      `${FILE} has no number at broker.redis.version (it holds "7.0.15")`,
      `<!-- bench: ${FILE}#call.reading_sink.added_us --> follows no number`,
      "<!-- bench: #call.reading_sink.added_us --> needs <results file>#<key> (or a bench-file above)",
    ]);
  });

  it("reports a measured-looking number that cites nothing, but not targets, settings or code", () => {
    const text = [
      "Each call adds 4.3 µs and the sink writes 38,000 events/s.",
      "Target: ≤ 2 µs added; at most 0.7 µs per emit(); a steady 10,000 events/s of load.",
      "`sleep 90 µs` in code",
      "```",
      "added 5.5 µs",
      "```",
    ].join("\n");
    assert.deepEqual(check(text).problems, [
      '"4.3 µs" reads as a measurement but cites no stored result',
      '"38,000 events/s" reads as a measurement but cites no stored result',
    ]);
  });

  it("reads README.md, docs/ and every package's README", () => {
    mkdirSync(join(root, "packages/core"), { recursive: true });
    writeFileSync(join(root, "packages/core/README.md"), "# core\n");
    const files = markdownFiles(root).map((file) => file.slice(root.length + 1));
    assert.deepEqual(files.sort(), ["README.md", "docs/doc.md", "packages/core/README.md"]);
  });
});

describe("check-bench-numbers --update", () => {
  it("rewrites each cited number from its results file, keeping decimals and sign, thousands separated", () => {
    const doc = join(root, "docs", "update.md");
    writeFileSync(
      doc,
      [
        `<!-- bench-file: ${FILE} -->`,
        "adds +2.10 µs<!-- bench: #call.reading_sink.added_us --> (was 9<!-- bench: #call.reading_sink.added_us -->)",
        "| 30001 events/s<!-- bench: #throughput.sink.events_per_s --> | −1.5 ms<!-- bench: #loop.redis.added_p99_ms --> |",
        "```",
        "4.3 µs<!-- bench: #call.reading_sink.added_us -->",
        "```",
        "",
      ].join("\n"),
    );
    const result = checkBenchNumbers(root, [doc], { update: true });
    assert.deepEqual(result.problems, []);
    assert.equal(result.updated, 4);
    assert.deepEqual(readFileSync(doc, "utf8").split("\n").slice(1, 5), [
      "adds +1.84 µs<!-- bench: #call.reading_sink.added_us --> (was 2<!-- bench: #call.reading_sink.added_us -->)",
      "| 31,245 events/s<!-- bench: #throughput.sink.events_per_s --> | −0.3 ms<!-- bench: #loop.redis.added_p99_ms --> |",
      "```",
      "4.3 µs<!-- bench: #call.reading_sink.added_us -->",
    ]);
    assert.deepEqual(checkBenchNumbers(root, [doc]).problems, []);
  });
});
