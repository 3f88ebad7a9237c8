// The published packages and the metadata each must carry. Packages are discovered (every non-private
// directory under packages/), never listed, so a new package is checked from its first commit. The project's
// URLs are stated once, in the root package.json (`repository`, `homepage`, `bugs`); every package's
// metadata is derived from them.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The parts of a package.json the release checks read. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  description?: string;
  license?: string;
  homepage?: string;
  repository?: { type?: string; url?: string; directory?: string } | string;
  bugs?: { url?: string } | string;
  keywords?: string[];
  engines?: { node?: string };
  files?: string[];
  main?: string;
  module?: string;
  types?: string;
  bin?: Record<string, string> | string;
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  publishConfig?: { access?: string; provenance?: boolean };
}

export interface PublishedPackage {
  /** Directory name under packages/, e.g. `sink-kafka`. */
  dir: string;
  /** Absolute path of the package directory. */
  path: string;
  manifest: Manifest;
}

export function readManifest(path: string): Manifest {
  return JSON.parse(readFileSync(join(path, "package.json"), "utf8")) as Manifest;
}

/** Every package under `packages/` that is published (not `private`), sorted by directory name. */
export function publishedPackages(root = repoRoot): PublishedPackage[] {
  const group = join(root, "packages");
  return readdirSync(group)
    .filter((dir) => existsSync(join(group, dir, "package.json")))
    .map((dir) => ({ dir, path: join(group, dir), manifest: readManifest(join(group, dir)) }))
    .filter((pkg) => pkg.manifest.private !== true)
    .sort((a, b) => a.dir.localeCompare(b.dir));
}

/** The project's URLs, from the root package.json: the one place they are stated. */
export interface ProjectUrls {
  /** `git+https://github.com/OWNER/REPO.git` */
  repository: string;
  /** `https://github.com/OWNER/REPO` */
  web: string;
  /** The docs site, ending in `/`. */
  docs: string;
  /** The issue tracker. */
  bugs: string;
}

export function projectUrls(root = repoRoot): ProjectUrls {
  const manifest = readManifest(root);
  const repository = typeof manifest.repository === "string" ? manifest.repository : manifest.repository?.url;
  const bugs = typeof manifest.bugs === "string" ? manifest.bugs : manifest.bugs?.url;
  if (!repository || !manifest.homepage || !bugs) {
    throw new Error("the root package.json must state repository.url, homepage and bugs.url");
  }
  return {
    repository,
    web: repository.replace(/^git\+/, "").replace(/\.git$/, ""),
    docs: manifest.homepage.endsWith("/") ? manifest.homepage : `${manifest.homepage}/`,
    bugs,
  };
}

/** The docs page of a package: the site renders each package's README there. */
export function packageDocsUrl(urls: ProjectUrls, dir: string): string {
  return `${urls.docs}packages/${dir}`;
}

/**
 * What is wrong with one published package's metadata, as readable sentences; empty when it is complete.
 * npm provenance needs `repository` (with `directory` in a monorepo) to match the repository that built it.
 */
export function metadataProblems(pkg: PublishedPackage, urls: ProjectUrls): string[] {
  const m = pkg.manifest;
  const problems: string[] = [];
  const expect = (ok: boolean, message: string) => {
    if (!ok) problems.push(`${m.name ?? pkg.dir}: ${message}`);
  };
  expect(typeof m.name === "string" && m.name.startsWith("@streamll/"), 'name must be "@streamll/<name>"');
  expect(/^\d+\.\d+\.\d+/.test(m.version ?? ""), "version must be semver");
  expect(typeof m.description === "string" && m.description.length >= 20, "needs a description");
  expect(m.license === "Apache-2.0", 'license must be "Apache-2.0"');
  const repo = typeof m.repository === "object" ? m.repository : undefined;
  expect(repo?.type === "git" && repo.url === urls.repository, `repository.url must be "${urls.repository}"`);
  expect(repo?.directory === `packages/${pkg.dir}`, `repository.directory must be "packages/${pkg.dir}"`);
  expect(m.homepage === packageDocsUrl(urls, pkg.dir), `homepage must be "${packageDocsUrl(urls, pkg.dir)}"`);
  const bugs = typeof m.bugs === "object" ? m.bugs.url : m.bugs;
  expect(bugs === urls.bugs, `bugs.url must be "${urls.bugs}"`);
  expect(Array.isArray(m.keywords) && m.keywords.length >= 3, "needs at least three keywords");
  expect(m.publishConfig?.access === "public", 'publishConfig.access must be "public"');
  expect(m.publishConfig?.provenance === true, "publishConfig.provenance must be true");
  expect(m.engines?.node === ">=22", 'engines.node must be ">=22" (the suite tests Node 22, 24 and 26)');
  expect(Array.isArray(m.files) && m.files.includes("dist"), 'files must list "dist" (and nothing unbuilt)');
  expect(
    !(m.files ?? []).some((entry) => /^(src|test|bench|examples)(\/|$)/.test(entry)),
    "files must not ship sources, tests, benchmarks or examples",
  );
  expect(m.exports !== undefined && typeof m.exports === "object", "needs an exports map");
  const readme = join(pkg.path, "README.md");
  expect(existsSync(readme), "needs a README.md");
  if (existsSync(readme)) {
    for (const link of relativeLinks(readFileSync(readme, "utf8"))) {
      problems.push(`${m.name}: README link "${link}" is relative and breaks on the registry page`);
    }
  }
  return problems;
}

/**
 * The link targets in Markdown (inline links, images and reference definitions, outside code) that are
 * neither absolute URLs nor in-page anchors.
 */
export function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, "").replace(/`[^`\n]*`/g, "");
  const targets = [
    ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1] ?? ""),
    ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((match) => match[1] ?? ""),
    ...[...prose.matchAll(/<(?:a|img)\s[^>]*(?:href|src)="([^"]+)"/g)].map((match) => match[1] ?? ""),
  ];
  return targets.filter((target) => !/^([a-z][a-z0-9+.-]*:|#)/i.test(target));
}
