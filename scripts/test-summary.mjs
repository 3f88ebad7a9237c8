// Adds up the vitest JSON reports of every package and prints one closing line, so a reader (or CI) sees
// the whole suite's totals at the end instead of scrolling through each package's summary. A package may
// leave several reports (`.vitest-report.json`, and `.vitest-report.node22.json` from the Node 22 run).
// Each failed test is named under its package's line with the first line of its error, so the last lines of a
// CI log (often all that is kept) say what failed, not only how many.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const group of ["packages", "apps", "scripts"]) {
  for (const name of readdirSync(join(root, group))) {
    const dir = join(root, group, name);
    if (!existsSync(join(dir, "vitest.config.ts"))) continue;
    const reports = readdirSync(dir).filter((file) => /^\.vitest-report(\.[\w-]+)?\.json$/.test(file));
    if (!reports.includes(".vitest-report.json")) missing.push(`${group}/${name}`);
    for (const file of reports.sort()) {
      const report = JSON.parse(readFileSync(join(dir, file), "utf8"));
      passed += report.numPassedTests;
      failed += report.numFailedTests;
      skipped += report.numPendingTests + (report.numTodoTests ?? 0);
      const flavour = /^\.vitest-report\.([\w-]+)\.json$/.exec(file)?.[1];
      const label = flavour
        ? `${group}/${name} (${flavour.replace(/^node(\d+)$/, "Node $1")})`
        : `${group}/${name}`;
      console.log(`${label}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
      for (const line of failures(dir, report)) console.log(`  ✗ ${line}`);
    }
  }
}
/** One line per failed test: file, test name and the first line of its first error. */
function failures(dir, report) {
  const lines = [];
  for (const file of report.testResults ?? []) {
    for (const test of file.assertionResults ?? []) {
      if (test.status !== "failed") continue;
      const error = (test.failureMessages?.[0] ?? "").split("\n")[0].slice(0, 300);
      lines.push(`${relative(dir, file.name)} › ${test.fullName}: ${error}`);
    }
    // A file that failed to load has no tests to blame: name the file.
    if (file.status === "failed" && (file.assertionResults ?? []).length === 0) {
      lines.push(`${relative(dir, file.name)}: ${(file.message ?? "").split("\n")[0].slice(0, 300)}`);
    }
  }
  return lines;
}

if (missing.length > 0) console.log(`no test report from: ${missing.join(", ")}`);
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0);
