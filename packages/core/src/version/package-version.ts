import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";

/** The package.json that describes the running code. */
export interface PackageInfo {
  readonly name: string;
  readonly version: string | null;
  /** The directory holding the package.json. */
  readonly dir: string;
  /** Names listed under `dependencies`. */
  readonly dependencies: readonly string[];
}

/**
 * The directory of the code being run: the entry script's directory (`process.argv[1]`), or the working
 * directory when the entry script is a tool inside `node_modules` (a test runner, a CLI such as `tsx`) or
 * there is none (a REPL). JavaScript cannot tell which file a class was defined in, so this is the best
 * guess available without the `moduleVersion` option.
 */
export function entryDirectory(argv: readonly string[] = process.argv, cwd: string = process.cwd()): string {
  const entry = argv[1];
  if (!entry) return cwd;
  let path: string;
  try {
    path = realpathSync(entry);
  } catch {
    return cwd;
  }
  if (path.split(sep).includes("node_modules")) return cwd;
  return dirname(path);
}

/** The nearest package.json with a `name`, searching from `startDir` upwards. Never throws. */
export function findNearestPackage(startDir: string): PackageInfo | null {
  let dir = resolve(startDir);
  for (;;) {
    const info = readPackage(join(dir, "package.json"));
    if (info?.name) {
      return { name: info.name, version: info.version, dir, dependencies: info.dependencies };
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** `name@version`, or `name` when the package has no version. */
export function packageLabel(info: PackageInfo): string {
  return info.version ? `${info.name}@${info.version}` : info.name;
}

/**
 * The installed version of `name` as Node would resolve it from `fromDir` (walking up `node_modules`
 * directories, which also covers pnpm's symlinked layout). Null when it is not installed there.
 */
export function installedVersion(name: string, fromDir: string): string | null {
  let dir = resolve(fromDir);
  for (;;) {
    const info = readPackage(join(dir, "node_modules", name, "package.json"));
    if (info?.version) return info.version;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Installed versions of `names`, skipping the ones not installed. */
export function dependencyVersions(names: readonly string[], fromDir: string): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const name of names) {
    const version = installedVersion(name, fromDir);
    if (version !== null) versions[name] = version;
  }
  return versions;
}

function readPackage(
  file: string,
): { name: string | null; version: string | null; dependencies: string[] } | null {
  try {
    if (!existsSync(file)) return null;
    const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
    if (typeof parsed !== "object" || parsed === null) return null;
    const record = parsed as Record<string, unknown>;
    const dependencies =
      typeof record.dependencies === "object" && record.dependencies !== null
        ? Object.keys(record.dependencies as object)
        : [];
    return {
      name: typeof record.name === "string" && record.name.length > 0 ? record.name : null,
      version: typeof record.version === "string" && record.version.length > 0 ? record.version : null,
      dependencies,
    };
  } catch {
    return null;
  }
}
