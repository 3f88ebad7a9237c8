// Every benchmark number in the docs and READMEs cites the stored result it comes from, and must match it.
//
// Citation: an HTML comment right after the number (invisible on GitHub and on the docs site):
//
//   adds 1.84 µs<!-- bench: packages/core/bench/results/core.json#call.reading_sink.added_us --> per call
//
// cites the last number before the comment on its line (here 1.84). With `<!-- bench-file: <path> -->` once
// in a document, later citations may give just the key: `<!-- bench: #call.reading_sink.added_us -->`.
// The number matches when the stored value, rounded to as many decimals as the docs show, equals it
// (`1.84` cites 1.8374; thousands separators, a leading `+` and the `−` sign are allowed). A key ending in
// `_bytes` may be shown in the unit written right after the comment (`9.9<!-- bench: …_bytes --> MiB` cites
// 10428232): B, KiB, MiB, GiB (powers of 1,024) or KB, MB, GB (powers of 1,000).
//
// And a number that reads as a measurement (followed by µs, ns, events/s, or ops/s) outside code blocks and
// inline code must cite a result: numbers a stored run cannot back do not belong in the docs. A number after
// `≤`, `<`, "at most", "target", "of" and the like is a target or a setting, not a measurement.
//
// Usage: node check-bench-numbers.mjs   (exit code 1 and one line per problem when any number is off)
//        node check-bench-numbers.mjs --update   (after a bench run: rewrites every cited number from its
//        results file, keeping the decimals and sign the docs show, thousands separated; then checks)
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const CITATION = /<!--\s*bench(-file)?:\s*(\S*?)\s*-->/g;
const NUMBER = /[+\-−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[+\-−]?\d+(?:\.\d+)?/g;
const MEASUREMENT = /(\d{1,3}(?:[ ,]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(µs|ns|events\/s|ops\/s)(?![\w/])/g;
/** Words before a number that make it a target, a limit or a setting rather than a measurement. */
const NOT_MEASURED =
  /(≤|<|≥|>|at most|at least|under|below|above|within|target:?|of|steady|emitting|emit|sends?|rate)\s*$/i;

/** The Markdown files the docs check reads: README.md, docs/**, and every package's and app's README. */
export function markdownFiles(root) {
  const files = [join(root, "README.md")];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".md")) files.push(path);
    }
  };
  if (existsSync(join(root, "docs"))) walk(join(root, "docs"));
  for (const group of ["packages", "apps"]) {
    if (!existsSync(join(root, group))) continue;
    for (const name of readdirSync(join(root, group))) {
      const readme = join(root, group, name, "README.md");
      if (existsSync(readme)) files.push(readme);
    }
  }
  return files.filter((file) => existsSync(file));
}

/**
 * The number a key cites: a result (`call.reading_sink.added_us`), or with `machine.` a field of the machine the
 * run was measured on (`machine.load_average_start.0`, `machine.cores`), so prose about the run's conditions
 * is checked too.
 */
function storedValue(json, key) {
  if (!key.startsWith("machine.")) return json.results?.[key];
  let value = json.machine;
  for (const part of key.slice("machine.".length).split(".")) value = value?.[part];
  return value;
}

const BYTE_UNITS = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, KB: 1e3, MB: 1e6, GB: 1e9 };

/** How many bytes one shown unit is, for a `_bytes` key followed by a unit (`after` is the text after the comment). */
function byteScale(key, after) {
  if (!key.endsWith("_bytes")) return 1;
  const unit = /^\s*(B|KiB|MiB|GiB|KB|MB|GB)(?![\w/])/.exec(after)?.[1];
  return unit === undefined ? 1 : BYTE_UNITS[unit];
}

/** `stored` written the way `shown` is: same decimals and sign style, thousands separated. */
function formatLike(shown, stored) {
  const { decimals } = parseShown(shown);
  let digits = Math.abs(stored).toFixed(decimals);
  // Thousands are always separated (the docs' style), whatever the number showed before.
  digits = digits.replace(/^\d+/, (int) => Number(int).toLocaleString("en-US"));
  if (stored < 0 && Number(digits) !== 0) return `${shown.startsWith("−") ? "−" : "-"}${digits}`;
  return shown.startsWith("+") ? `+${digits}` : digits;
}

/** `"1,234.5"` → `{ value: 1234.5, decimals: 1 }`. */
function parseShown(text) {
  const plain = text.replace(/,/g, "").replace("−", "-").replace(/^\+/, "");
  const decimals = plain.includes(".") ? plain.split(".")[1].length : 0;
  return { value: Number(plain), decimals };
}

/**
 * Checks `files` (absolute paths) against the results files under `root`. Returns `{ cited, problems,
 * updated }`: `problems` are `file:line: message` strings. With `update`, every cited number that differs is
 * first rewritten in its file from the stored value (`updated` counts them).
 */
export function checkBenchNumbers(root, files, { update = false } = {}) {
  let updated = 0;
  const problems = [];
  const results = new Map();
  let cited = 0;
  const load = (path) => {
    if (!results.has(path)) {
      const absolute = join(root, path);
      let json;
      try {
        json = existsSync(absolute) ? JSON.parse(readFileSync(absolute, "utf8")) : undefined;
      } catch (error) {
        json = { error: String(error) };
      }
      results.set(path, json);
    }
    return results.get(path);
  };
  for (const file of files) {
    const doc = relative(root, file);
    let defaultFile;
    let fenced = false;
    const original = readFileSync(file, "utf8");
    const lines = original.split("\n");
    lines.forEach((line, i) => {
      const edits = [];
      const where = `${doc}:${i + 1}`;
      if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
      if (fenced) return;
      let from = 0;
      const citedAt = [];
      for (const match of line.matchAll(CITATION)) {
        const [comment, isFile, target] = match;
        if (isFile) {
          defaultFile = target;
          if (load(target) === undefined) problems.push(`${where}: bench-file ${target} does not exist`);
          from = match.index + comment.length;
          continue;
        }
        cited += 1;
        const before = line.slice(from, match.index);
        from = match.index + comment.length;
        const numbers = [...before.matchAll(NUMBER)];
        const last = numbers.at(-1);
        if (last === undefined) {
          problems.push(`${where}: ${comment} follows no number`);
          continue;
        }
        citedAt.push(last.index + (match.index - before.length));
        const [path, key] = target.startsWith("#") ? [defaultFile, target.slice(1)] : target.split("#");
        if (!path || !key) {
          problems.push(
            `${where}: ${comment} needs <results file>#<key>${path ? "" : " (or a bench-file above)"}`,
          );
          continue;
        }
        const json = load(path);
        if (json === undefined) {
          problems.push(`${where}: ${path} does not exist (cited for ${last[0]})`);
          continue;
        }
        const raw = storedValue(json, key);
        const stored =
          typeof raw === "number" ? raw / byteScale(key, line.slice(match.index + comment.length)) : raw;
        if (typeof stored !== "number") {
          problems.push(
            `${where}: ${path} has no number at ${key}${stored === undefined ? "" : ` (it holds ${JSON.stringify(stored)})`}`,
          );
          continue;
        }
        const shown = parseShown(last[0]);
        const rounded = Number(stored.toFixed(shown.decimals));
        if (update) {
          const at = last.index + (match.index - before.length);
          const text = formatLike(last[0], stored);
          if (text !== last[0]) edits.push({ at, end: at + last[0].length, text });
        } else if (rounded !== shown.value) {
          problems.push(
            `${where}: the docs say ${last[0]}, ${path}#${key} holds ${stored} ` +
              `(rounded to ${shown.decimals} decimal${shown.decimals === 1 ? "" : "s"}: ${stored.toFixed(shown.decimals)})`,
          );
        }
      }
      // Numbers that read as measurements must be among the cited ones.
      const stripped = line.replace(/`[^`]*`/g, (code) => " ".repeat(code.length));
      for (const match of stripped.matchAll(MEASUREMENT)) {
        const start = match.index;
        if (NOT_MEASURED.test(stripped.slice(Math.max(0, start - 16), start))) continue;
        const end = start + match[1].length;
        if (!citedAt.some((at) => at >= start - 1 && at < end)) {
          problems.push(`${where}: "${match[0]}" reads as a measurement but cites no stored result`);
        }
      }
      let rewritten = line;
      for (const edit of edits.reverse())
        rewritten = rewritten.slice(0, edit.at) + edit.text + rewritten.slice(edit.end);
      lines[i] = rewritten;
      updated += edits.length;
    });
    if (update && lines.join("\n") !== original) writeFileSync(file, lines.join("\n"));
  }
  return { cited, problems, updated };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const update = process.argv.includes("--update");
  const { cited, problems, updated } = checkBenchNumbers(root, markdownFiles(root), { update });
  for (const problem of problems) console.error(`docs-check: ${problem}`);
  if (update)
    console.log(`docs-check: ${updated} cited benchmark numbers rewritten from their results files`);
  console.log(`docs-check: ${cited} benchmark numbers cite stored results, ${problems.length} problems`);
  if (problems.length > 0) process.exitCode = 1;
}
