// Adds up the vitest JSON reports of every package and prints one closing line, so a reader (or CI) sees
// the whole suite's totals at the end instead of scrolling through each package's summary. A package may
// leave several reports (`.vitest-report.json`, and `.vitest-report.node22.json` from the Node 22 run).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

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
    }
  }
}
if (missing.length > 0) console.log(`no test report from: ${missing.join(", ")}`);
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0);
