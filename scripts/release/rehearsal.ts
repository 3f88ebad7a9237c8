// A publish rehearsal, the way the release workflow and a user meet the packages: in a temporary copy of the
// workspace, `changeset version` turns the pending changesets into versions and CHANGELOGs, `pnpm pack` packs
// every published package, and npm installs the tarballs into a scratch project outside the workspace. Nothing
// here touches the working tree or the registry's state.
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Manifest, type PublishedPackage, publishedPackages, readManifest, repoRoot } from "./workspace";

const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

export interface Tarball {
  name: string;
  /** The version `changeset version` gave it. */
  version: string;
  file: string;
  bytes: number;
  /** Paths inside the tarball, without npm's `package/` prefix, sorted. */
  files: string[];
  manifest: Manifest;
  changelog: string;
}

export interface Rehearsal {
  /** The temporary directory holding the workspace copy, the tarballs and the scratch project. */
  dir: string;
  /** Versions before `changeset version`, by package name. */
  versionsBefore: Record<string, string>;
  tarballs: Tarball[];
  /** The scratch project the tarballs were installed into. */
  scratch: string;
}

/**
 * Longest a step may take, under the tests' 10-minute limit: npm retries a registry it cannot reach (a proxy's
 * certificate it does not trust, for one) for many minutes, and a rehearsal that hangs says less than one that
 * fails with npm's output.
 */
const STEP_TIMEOUT_MS = 8 * 60_000;

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    return execFileSync(command, args, {
      cwd,
      encoding: "utf8",
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
      timeout: STEP_TIMEOUT_MS,
    });
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${command} ${args.join(" ")} failed in ${cwd}\n${failure.stdout ?? ""}\n${failure.stderr ?? failure.message}`,
    );
  }
}

/** Tracked and new (not ignored) files: what a clean clone of this working tree would hold. */
function copyWorkspace(target: string, packages: PublishedPackage[]): void {
  const listed = run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], repoRoot);
  for (const file of listed.split("\0")) {
    const from = join(repoRoot, file);
    if (file === "" || !existsSync(from) || statSync(from).isDirectory()) continue;
    mkdirSync(dirname(join(target, file)), { recursive: true });
    cpSync(from, join(target, file));
  }
  // The builds the test script made; the rehearsal packs exactly these files.
  for (const pkg of packages) {
    const dist = join(pkg.path, "dist");
    if (!existsSync(dist)) throw new Error(`${pkg.manifest.name} is not built: run the build first`);
    cpSync(dist, join(target, "packages", pkg.dir, "dist"), { recursive: true });
  }
}

export function rehearsePublish(): Rehearsal {
  const packages = publishedPackages();
  const dir = mkdtempSync(join(tmpdir(), "streamll-rehearsal-"));
  const workspace = join(dir, "workspace");
  const tarballDir = join(dir, "tarballs");
  const scratch = join(dir, "scratch");
  mkdirSync(tarballDir);
  mkdirSync(scratch);

  copyWorkspace(workspace, packages);
  const versionsBefore = Object.fromEntries(packages.map((p) => [p.manifest.name, p.manifest.version]));
  // Links the copy's workspace packages (pnpm pack resolves `workspace:` ranges through them); the store is
  // the one the real install filled, so nothing is downloaded.
  run(
    "pnpm",
    ["install", "--offline", "--frozen-lockfile", "--ignore-scripts", "--reporter=silent"],
    workspace,
  );
  run("pnpm", ["exec", "changeset", "version"], workspace);

  const tarballs: Tarball[] = [];
  for (const pkg of packages) {
    const packageDir = join(workspace, "packages", pkg.dir);
    const packed = JSON.parse(
      run("pnpm", ["pack", "--json", "--pack-destination", tarballDir], packageDir).replace(/^[^{]*/, ""),
    ) as { filename: string };
    const files = run("tar", ["-tzf", packed.filename], dir)
      .split("\n")
      .filter((line) => line !== "" && !line.endsWith("/"))
      .map((line) => line.replace(/^package\//, ""))
      .sort();
    const manifest = readManifest(packageDir);
    tarballs.push({
      name: manifest.name,
      version: manifest.version,
      file: packed.filename,
      bytes: statSync(packed.filename).size,
      files,
      manifest,
      changelog: existsSync(join(packageDir, "CHANGELOG.md"))
        ? readFileSync(join(packageDir, "CHANGELOG.md"), "utf8")
        : "",
    });
  }

  // The scratch project installs exactly what a user would: the tarballs, their dependencies from the
  // registry, TypeScript and Node's types (the workspace's versions), and the optional peers whose types
  // the declarations import.
  writeFileSync(
    join(scratch, "package.json"),
    `${JSON.stringify({ name: "scratch", private: true }, null, 2)}\n`,
  );
  const tools = readManifest(join(repoRoot, "packages", "core")).devDependencies ?? {};
  run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--loglevel=error",
      ...tarballs.map((t) => t.file),
      `typescript@${tools.typescript}`,
      `@types/node@${tools["@types/node"]}`,
    ],
    scratch,
  );
  // What users get is the packed manifest (workspace ranges replaced), so the checks read that one.
  for (const tarball of tarballs)
    tarball.manifest = readManifest(join(scratch, "node_modules", tarball.name));
  cpSync(fixtures, scratch, { recursive: true });
  return { dir, versionsBefore, tarballs, scratch };
}

/** The import paths of a package: its name plus every subpath export that is code (not JSON, not the
 * manifest). */
export function entryPoints(manifest: Manifest): string[] {
  return Object.keys(manifest.exports ?? { ".": "" })
    .filter((key) => !key.endsWith(".json"))
    .map((key) => (key === "." ? manifest.name : `${manifest.name}/${key.slice(2)}`));
}

/** The files a manifest points at: exports targets, main/module/types and bins. */
export function manifestTargets(manifest: Manifest): string[] {
  const targets = new Set<string>();
  const walk = (value: unknown) => {
    if (typeof value === "string") targets.add(value.replace(/^\.\//, ""));
    else if (value !== null && typeof value === "object")
      for (const inner of Object.values(value)) walk(inner);
  };
  walk(manifest.exports);
  walk(manifest.bin);
  for (const field of [manifest.main, manifest.module, manifest.types]) walk(field);
  return [...targets].sort();
}

/** Files reachable from the manifest's targets through relative imports and requires (JS and .d.ts). */
export function reachableFiles(root: string, manifest: Manifest): Set<string> {
  const seen = new Set<string>();
  const queue = manifestTargets(manifest);
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file) || !existsSync(join(root, file))) continue;
    seen.add(file);
    if (!/\.(c|m)?js$|\.d\.(c|m)?ts$/.test(file)) continue;
    const text = readFileSync(join(root, file), "utf8");
    const specs = text.matchAll(
      /(?:from\s+|import\s*\(\s*|require\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g,
    );
    // Assets a module reads at run time (a bundled UI's `ui/app.js`) count when the module names them.
    for (const asset of runtimeAssets(root, file, text)) queue.push(asset);
    for (const match of specs) {
      const target = join(dirname(file), match[1] ?? "");
      // Declarations import `./x.js` for `./x.d.ts`.
      const candidates = [target, target.replace(/\.(c|m)?js$/, ".d.$1ts")];
      for (const candidate of candidates) if (existsSync(join(root, candidate))) queue.push(candidate);
    }
  }
  return seen;
}

/**
 * Installs every optional peer dependency of the published packages (the cloud SDKs) into the scratch
 * project, at the ranges the packages declare: what a user of the cloud adapters' entry points installs.
 */
export function installOptionalPeers(rehearsal: Rehearsal): string[] {
  const peers = new Set<string>();
  for (const { manifest } of rehearsal.tarballs) {
    for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) {
      if (manifest.peerDependenciesMeta?.[name]?.optional) peers.add(`${name}@${range}`);
    }
  }
  const specs = [...peers].sort();
  if (specs.length > 0) {
    run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...specs],
      rehearsal.scratch,
    );
  }
  return specs;
}

/** Non-code files under dist/ whose name a built module mentions (`"/app.css"` for `dist/ui/app.css`). */
function runtimeAssets(root: string, file: string, text: string): string[] {
  if (!/\.(c|m)?js$/.test(file)) return [];
  const dist = join(root, "dist");
  if (!existsSync(dist)) return [];
  const assets = readdirSync(dist, { recursive: true })
    .map(String)
    .filter((path) => /\.(css|js|html|svg|png|woff2)$/.test(path) && path.includes("/"));
  return assets.filter((path) => text.includes(`/${basename(path)}"`)).map((path) => `dist/${path}`);
}

export { run };
