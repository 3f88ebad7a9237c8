import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { v, validateOptions } from "../options/schema";

/**
 * CI/CD variables that carry the deployed commit, in the order they are tried when no `.git` directory is
 * found (containers and serverless bundles usually ship without one).
 */
export const GIT_COMMIT_ENV_VARS: readonly string[] = Object.freeze([
  // Generic, set by many build scripts and Dockerfiles (`ARG GIT_COMMIT`).
  "GIT_COMMIT",
  // Heroku (also used by some Dokku and Scalingo setups).
  "SOURCE_VERSION",
  "VERCEL_GIT_COMMIT_SHA",
  // GitHub Actions.
  "GITHUB_SHA",
  // GitLab CI.
  "CI_COMMIT_SHA",
  "BITBUCKET_COMMIT",
  "CIRCLE_SHA1",
  // Google Cloud Build.
  "COMMIT_SHA",
  "RENDER_GIT_COMMIT",
  // AWS CodeBuild.
  "CODEBUILD_RESOLVED_SOURCE_VERSION",
  "CF_PAGES_COMMIT_SHA",
  "RAILWAY_GIT_COMMIT_SHA",
  "BUILDKITE_COMMIT",
  "DRONE_COMMIT_SHA",
  "TRAVIS_COMMIT",
]);

/** Length of the abbreviated commit, as `git rev-parse --short` prints it in most repositories. */
const SHORT_COMMIT_LENGTH = 7;

/** Where and how to look for the commit. */
export interface GitCommitOptions {
  /** Directory to start the search for `.git` from. Default `process.cwd()`. */
  cwd?: string;
  /** Environment to read the CI/CD variables from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Run `git status --porcelain` to append `-dirty`. Default true. */
  dirtyCheck?: boolean;
  /** Upper bound for the `git status` child process. Default 1 000 ms; on timeout no `-dirty` is added. */
  timeoutMs?: number;
}

/** `GitCommitOptions` as `detectGitCommit()` checks them. */
export const gitCommitOptionsSchema = v.object<GitCommitOptions>({
  cwd: v.string({ min: 1 }).optional(),
  env: v.record(v.string().optional()).optional(),
  dirtyCheck: v.boolean().optional(),
  timeoutMs: v.number({ min: 1 }).optional(),
});

/** The repository found around a directory. */
export interface GitHead {
  /** Full commit hash HEAD points at. */
  readonly commit: string;
  /** The working tree root (the directory holding `.git`). */
  readonly root: string;
}

const HEX_COMMIT = /^[0-9a-f]{7,64}$/i;

/**
 * The short commit of the code that is running: `abc1234`, `abc1234-dirty` with uncommitted changes, a CI/CD
 * variable's value when there is no repository, or null. Never throws for any repository; options that are not
 * valid are a `ConfigurationError`.
 */
export function detectGitCommit(options: GitCommitOptions = {}): string | null {
  validateOptions("detectGitCommit()", gitCommitOptionsSchema, options);
  const cwd = options.cwd ?? process.cwd();
  const head = readGitHead(cwd);
  if (head) {
    const short = head.commit.slice(0, SHORT_COMMIT_LENGTH);
    if (options.dirtyCheck === false) return short;
    return isWorkingTreeDirty(head.root, options.timeoutMs ?? 1000) ? `${short}-dirty` : short;
  }
  return commitFromEnvironment(options.env ?? process.env);
}

/** The first CI/CD commit variable that is set: hex hashes abbreviated, anything else (a tag) as is. */
export function commitFromEnvironment(env: Readonly<Record<string, string | undefined>>): string | null {
  for (const name of GIT_COMMIT_ENV_VARS) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (HEX_COMMIT.test(value)) return value.slice(0, SHORT_COMMIT_LENGTH).toLowerCase();
    return value.slice(0, 128);
  }
  return null;
}

/**
 * Reads HEAD from the repository around `cwd` without spawning git: follows `.git` files (worktrees,
 * submodules), symbolic refs, loose refs and `packed-refs`. Null when there is no repository or HEAD does
 * not resolve (an empty repository).
 */
export function readGitHead(cwd: string): GitHead | null {
  try {
    const found = findGitDir(resolve(cwd));
    if (!found) return null;
    const { gitDir, root } = found;
    const commonDir = readCommonDir(gitDir);
    const head = readFileSync(join(gitDir, "HEAD"), "utf8").trim();
    const commit = head.startsWith("ref:") ? resolveRef(head.slice(4).trim(), gitDir, commonDir) : head;
    return commit && HEX_COMMIT.test(commit) ? { commit: commit.toLowerCase(), root } : null;
  } catch {
    return null;
  }
}

function findGitDir(start: string): { gitDir: string; root: string } | null {
  let dir = start;
  for (;;) {
    const candidate = join(dir, ".git");
    if (existsSync(candidate)) {
      const stats = statSync(candidate);
      if (stats.isDirectory()) return { gitDir: candidate, root: dir };
      // Worktrees and submodules: `.git` is a file saying `gitdir: <path>`.
      const match = /^gitdir:\s*(.+)$/m.exec(readFileSync(candidate, "utf8"));
      if (match?.[1]) {
        const target = match[1].trim();
        return { gitDir: isAbsolute(target) ? target : resolve(dir, target), root: dir };
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** A linked worktree keeps its own HEAD but shares refs with the main repository, named in `commondir`. */
function readCommonDir(gitDir: string): string {
  const file = join(gitDir, "commondir");
  if (!existsSync(file)) return gitDir;
  const target = readFileSync(file, "utf8").trim();
  return isAbsolute(target) ? target : resolve(gitDir, target);
}

function resolveRef(ref: string, gitDir: string, commonDir: string): string | null {
  for (const dir of gitDir === commonDir ? [gitDir] : [gitDir, commonDir]) {
    const file = join(dir, ref);
    if (existsSync(file)) {
      const value = readFileSync(file, "utf8").trim();
      if (value.startsWith("ref:")) return resolveRef(value.slice(4).trim(), gitDir, commonDir);
      return value;
    }
  }
  const packed = join(commonDir, "packed-refs");
  if (!existsSync(packed)) return null;
  for (const line of readFileSync(packed, "utf8").split("\n")) {
    if (line.startsWith("#") || line.startsWith("^")) continue;
    const [hash, name] = line.trim().split(" ");
    if (name === ref && hash) return hash;
  }
  return null;
}

/**
 * True when `git status --porcelain` lists anything (modified, staged or untracked files that are not
 * ignored). False when the tree is clean, git is not installed, or it did not answer within `timeoutMs`.
 */
function isWorkingTreeDirty(root: string, timeoutMs: number): boolean {
  try {
    const result = spawnSync("git", ["--no-optional-locks", "status", "--porcelain"], {
      cwd: root,
      encoding: "utf8",
      timeout: timeoutMs,
      stdio: ["ignore", "pipe", "ignore"],
      windowsHide: true,
      maxBuffer: 16 * 1024 * 1024,
    });
    return result.status === 0 && typeof result.stdout === "string" && result.stdout.trim().length > 0;
  } catch {
    return false;
  }
}
