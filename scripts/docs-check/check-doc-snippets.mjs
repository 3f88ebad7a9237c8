// Extracts every ```ts / ```typescript block from the Markdown docs and READMEs and type-checks each as its
// own module against the built packages, resolved the way a user's project resolves them (NodeNext + the
// packages' exports maps). A snippet that does not compile fails CI, so docs cannot drift from the code.
//
// A block preceded by `<!-- verbatim: path/from/repo/root -->` shows a real file: it must equal that file byte
// for byte (the files are run by the test suite). Every ```python block is compiled with Python.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const outDir = join(here, ".snippets");

function markdownFiles() {
  const files = [join(root, "README.md")];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".md")) files.push(path);
    }
  };
  walk(join(root, "docs"));
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(root, group))) {
      const readme = join(root, group, name, "README.md");
      try {
        statSync(readme);
        files.push(readme);
      } catch {}
    }
  }
  return files;
}

/** Files a guide must show verbatim: the guide is checked to contain each, unchanged. */
const REQUIRED_VERBATIM = {
  "docs/kafka.md": [
    "packages/ax/examples/stream-answer.ts",
    "packages/ax/examples/optimize-program.ts",
    "examples/python/streamll_event.py",
    "examples/python/rebuild_execution.py",
    "examples/python/token_costs.py",
  ],
  "docs/production/redis.md": ["examples/python/redis_reader.py"],
  "docs/production/rabbitmq.md": ["examples/python/rabbitmq_reader.py"],
};

/** Checks every `<!-- verbatim: path -->` block against its file; returns the problems found. */
function checkVerbatim(files) {
  const problems = [];
  let checked = 0;
  const marked = /^<!-- verbatim: (\S+) -->\n```[\w-]*\n([\s\S]*?)^```$/gm;
  for (const file of files) {
    const doc = relative(root, file);
    const text = readFileSync(file, "utf8");
    const shown = new Set();
    for (const match of text.matchAll(marked)) {
      const [, path, block] = match;
      const line = text.slice(0, match.index).split("\n").length;
      let source;
      try {
        source = readFileSync(join(root, path), "utf8");
      } catch {
        problems.push(`${doc}:${line}: ${path} does not exist`);
        continue;
      }
      checked += 1;
      shown.add(path);
      if (block !== source)
        problems.push(`${doc}:${line}: the block differs from ${path}; paste the file again`);
    }
    for (const path of REQUIRED_VERBATIM[doc] ?? []) {
      if (!shown.has(path))
        problems.push(`${doc}: must show ${path} verbatim (<!-- verbatim: ${path} --> block)`);
    }
  }
  return { checked, problems };
}

/** Compiles every ```python block with the project's Python (scripts/python.sh); returns the problems found. */
function checkPython(files) {
  const python = execFileSync("bash", [join(root, "scripts", "python.sh")], { encoding: "utf8" }).trim();
  const dir = join(outDir, "python");
  mkdirSync(dir, { recursive: true });
  const blocks = [];
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    let n = 0;
    for (const match of text.matchAll(/^```python\n([\s\S]*?)^```$/gm)) {
      n += 1;
      const line = text.slice(0, match.index).split("\n").length;
      const path = join(dir, `${relative(root, file).replace(/[^A-Za-z0-9]+/g, "_")}_${n}.py`);
      writeFileSync(path, match[1]);
      blocks.push({ path, source: `${relative(root, file)}:${line}` });
    }
  }
  const problems = [];
  const compile = "import py_compile, sys\nfor f in sys.argv[1:]:\n    py_compile.compile(f, doraise=True)";
  for (const block of blocks) {
    try {
      execFileSync(python, ["-c", compile, block.path], { stdio: "pipe", encoding: "utf8" });
    } catch (error) {
      const detail = `${error.stderr ?? ""}`.trim().split("\n").slice(-3).join(" ");
      problems.push(`${block.source}: Python block does not compile: ${detail}`);
    }
  }
  return { checked: blocks.length, problems };
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const docs = markdownFiles();
const verbatim = checkVerbatim(docs);
const python = checkPython(docs);
const otherProblems = [...verbatim.problems, ...python.problems];
console.log(
  `docs-check: ${verbatim.checked} verbatim blocks match their files, ${python.checked} Python blocks compiled, ` +
    `${otherProblems.length} problems`,
);
for (const problem of otherProblems) console.error(problem);

const fence = /^```(ts|typescript)\s*$([\s\S]*?)^```\s*$/gm;
const index = [];
for (const file of docs) {
  const text = readFileSync(file, "utf8");
  let n = 0;
  for (const match of text.matchAll(fence)) {
    n += 1;
    const line = text.slice(0, match.index).split("\n").length;
    const name = `${relative(root, file).replace(/[^A-Za-z0-9]+/g, "_")}_${n}.ts`;
    // `export {}` makes every snippet a module, so top-level await and local names never clash.
    writeFileSync(join(outDir, name), `${match[2]}\nexport {};\n`);
    index.push({ name, source: `${relative(root, file)}:${line}` });
  }
}
writeFileSync(
  join(outDir, "tsconfig.json"),
  JSON.stringify(
    {
      compilerOptions: {
        target: "ES2023",
        lib: ["ES2023"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        types: ["node"],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        noUnusedLocals: false,
      },
      include: ["*.ts"],
    },
    null,
    2,
  ),
);
writeFileSync(join(outDir, "package.json"), JSON.stringify({ type: "module" }));
console.log(`docs-check: type-checking ${index.length} snippets`);
const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
try {
  execFileSync(process.execPath, [tsc, "-p", join(outDir, "tsconfig.json")], {
    stdio: "pipe",
    encoding: "utf8",
  });
} catch (error) {
  const output = `${error.stdout ?? ""}${error.stderr ?? ""}`;
  // Map the generated file names back to the Markdown file and line the snippet came from.
  const mapped = output.replace(/^([A-Za-z0-9_]+\.ts)\((\d+),(\d+)\)/gm, (_all, name, l, c) => {
    const entry = index.find((e) => e.name === name);
    return entry ? `${entry.source} (snippet line ${l}:${c})` : `${name}(${l},${c})`;
  });
  console.error(mapped);
  console.log(`docs-check: ${index.length} snippets, 0 passed, failures above`);
  process.exit(1);
}
console.log(`docs-check: ${index.length} snippets type-check`);
if (otherProblems.length > 0) process.exit(1);
