// Extracts every ```ts / ```typescript block from the Markdown docs and READMEs and type-checks each as its
// own module against the built packages, resolved the way a user's project resolves them (NodeNext + the
// packages' exports maps). A snippet that does not compile fails CI, so docs cannot drift from the code.
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

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const fence = /^```(ts|typescript)\s*$([\s\S]*?)^```\s*$/gm;
const index = [];
for (const file of markdownFiles()) {
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
