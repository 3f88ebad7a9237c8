// Generates the API reference (pages/api/, not committed) from the packages' TSDoc with TypeDoc and
// typedoc-plugin-markdown: one folder per published package, one page per public entry point (the
// `@streamll/core/internal` entry is streamll's own plumbing and is left out). Workspace imports resolve to
// the packages' sources, so the reference needs no build of the packages.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Application } from "typedoc";
import { appRoot, headings, packages, slugify } from "../.vitepress/site.ts";

const out = join(appRoot, "pages", "api");

/** The source file behind an exports target (`./dist/msk.js` is built from `src/msk.ts`). */
function sourceOf(pkg, target) {
  const file = join(pkg.path, "src", basename(target).replace(/\.(c|m)?js$/, ".ts"));
  if (!existsSync(file)) throw new Error(`${pkg.manifest.name}: no source ${file} for export ${target}`);
  return file;
}

function entries(pkg) {
  return Object.entries(pkg.manifest.exports ?? {})
    .filter(([key]) => !key.endsWith(".json") && key !== "./internal")
    .map(([key, value]) => ({ key, source: sourceOf(pkg, value.import?.default ?? value.default ?? value) }));
}

// `@streamll/x` and `@streamll/x/sub` resolve to sources, for every package (internal entries included).
const paths = {};
for (const pkg of packages) {
  for (const [key, value] of Object.entries(pkg.manifest.exports ?? {})) {
    if (key.endsWith(".json")) continue;
    const spec = key === "." ? pkg.manifest.name : `${pkg.manifest.name}/${key.slice(2)}`;
    paths[spec] = [sourceOf(pkg, value.import?.default ?? value.default ?? value)];
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const index = [
  "---",
  'title: "API reference"',
  'description: "The public API of every streamll package, generated from the TSDoc in their sources."',
  "---",
  "",
  "# API reference",
  "",
  "Generated with TypeDoc from the TSDoc comments of each package's public entry points.",
  "",
];
for (const pkg of packages) {
  const app = await Application.bootstrapWithPlugins({
    entryPoints: entries(pkg).map((entry) => entry.source),
    tsconfig: join(pkg.path, "tsconfig.json"),
    compilerOptions: { paths, skipLibCheck: true },
    // By path: pnpm keeps the plugins out of TypeDoc's own reach.
    plugin: ["typedoc-plugin-markdown", "typedoc-vitepress-theme"].map((name) =>
      fileURLToPath(import.meta.resolve(name)),
    ),
    out: join(out, pkg.dir),
    name: pkg.manifest.name,
    readme: "none",
    outputFileStrategy: "modules",
    entryFileName: "index",
    hideBreadcrumbs: true,
    hidePageHeader: true,
    excludePrivate: true,
    excludeInternal: true,
    excludeExternals: true,
    sanitizeComments: true,
    skipErrorChecking: true,
    disableSources: true,
    logLevel: "Warn",
    validation: { notExported: false, invalidLink: true, rewrittenLink: true },
  });
  const project = await app.convert();
  if (!project) throw new Error(`TypeDoc could not convert ${pkg.manifest.name}`);
  await app.generateOutputs(project);
  if (app.logger.hasErrors()) throw new Error(`TypeDoc reported errors for ${pkg.manifest.name}`);
  addFrontMatter(join(out, pkg.dir), pkg.manifest.name);
  index.push(`- [${pkg.manifest.name}](./${pkg.dir}/): ${pkg.manifest.description ?? ""}`);
}
writeFileSync(join(out, "index.md"), `${index.join("\n")}\n`);
console.log(`api: wrote the reference of ${packages.length} packages to ${out}`);

/**
 * Names the pages after their import paths (TypeDoc names a module after its file: `index`, `msk`) and gives
 * each an SEO title and a description.
 */
function addFrontMatter(dir, packageName) {
  const importPath = (module) =>
    module === "index" || module === packageName ? packageName : `${packageName}/${module}`;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (!file.endsWith(".md")) continue;
    const text = readFileSync(file, "utf8")
      .replace(/^#\s+(.+)$/m, (_, module) => `# ${importPath(module.replace(/\\/g, ""))}`)
      .replace(
        /^- \[([\w-]+)\]\(([\w-]+\.md)\)$/gm,
        (_, module, link) => `- [${importPath(module)}](${link})`,
      );
    const heading = /^#\s+(.+)$/m.exec(text)?.[1] ?? packageName;
    const front = [
      "---",
      `title: ${JSON.stringify(`${heading} API reference`)}`,
      `description: ${JSON.stringify(`Classes, functions, options and types of ${heading}, from its TSDoc.`)}`,
      "---",
      "",
    ].join("\n");
    writeFileSync(file, front + repairAnchors(text));
  }
}

/**
 * TypeDoc numbers repeated headings (`#options-1`) by its own count, which can differ from the one VitePress
 * uses for the ids: an in-page anchor that does not exist is pointed at the nearest existing heading of the
 * same name (the browser tests check that every anchor resolves).
 */
function repairAnchors(text) {
  const ids = new Set();
  for (const heading of headings(text)) {
    const slug = slugify(heading.text);
    let id = slug;
    for (let n = 1; ids.has(id); n++) id = `${slug}-${n}`;
    ids.add(id);
  }
  return text.replace(/\]\(#([^)\s]+)\)/g, (link, anchor) => {
    if (ids.has(anchor)) return link;
    // TypeDoc dashes the underscores of CONSTANT_NAMES; GitHub-style ids keep them.
    const underscored = [...ids].find((id) => id.replace(/_/g, "-") === anchor);
    if (underscored) return `](#${underscored})`;
    const [, name = anchor, count = "0"] = /^(.*?)(?:-(\d+))?$/.exec(anchor) ?? [];
    for (let n = Number(count) - 1; n >= 0; n--) {
      const candidate = n === 0 ? name : `${name}-${n}`;
      if (ids.has(candidate)) return `](#${candidate})`;
    }
    return link;
  });
}
