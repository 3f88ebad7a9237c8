import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitFromEnvironment, detectGitCommit, GIT_COMMIT_ENV_VARS, readGitHead } from "./git-commit";

const root = mkdtempSync(join(tmpdir(), "streamll-git-"));

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    "git",
    ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", ...args],
    {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  ).trim();
}

let repo: string;
let head: string;

beforeAll(() => {
  repo = join(root, "repo");
  mkdirSync(join(repo, "src", "deep"), { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  writeFileSync(join(repo, "src", "module.js"), "export const x = 1;\n");
  git(repo, "add", ".");
  git(repo, "commit", "-q", "-m", "first");
  head = git(repo, "rev-parse", "HEAD");
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("readGitHead", () => {
  it("reads the commit of a branch from a loose ref, from any subdirectory", () => {
    expect(readGitHead(join(repo, "src", "deep"))).toEqual({ commit: head, root: repo });
  });

  it("agrees with git rev-parse --short", () => {
    const short = git(repo, "rev-parse", "--short=7", "HEAD");
    expect(detectGitCommit({ cwd: repo, dirtyCheck: false })).toBe(short);
  });

  it("reads packed refs", () => {
    const packed = join(root, "packed");
    git(root, "clone", "-q", repo, packed);
    git(packed, "pack-refs", "--all", "--prune");
    expect(readGitHead(packed)?.commit).toBe(head);
  });

  it("reads a detached HEAD", () => {
    const detached = join(root, "detached");
    git(root, "clone", "-q", repo, detached);
    git(detached, "checkout", "-q", "--detach", head);
    expect(readGitHead(detached)?.commit).toBe(head);
  });

  it("follows the .git file of a linked worktree to the shared refs", () => {
    const worktree = join(root, "worktree");
    git(repo, "worktree", "add", "-q", "-b", "feature", worktree);
    expect(readGitHead(worktree)).toEqual({ commit: head, root: worktree });
  });

  it("returns null outside a repository and for an empty repository", () => {
    const empty = join(root, "empty");
    mkdirSync(empty);
    git(empty, "init", "-q");
    expect(readGitHead(empty)).toBeNull();
  });
});

describe("detectGitCommit", () => {
  it("appends -dirty while tracked files have uncommitted changes, and drops it once committed", () => {
    const dirtyRepo = join(root, "dirty");
    git(root, "clone", "-q", repo, dirtyRepo);
    const short = head.slice(0, 7);
    expect(detectGitCommit({ cwd: dirtyRepo })).toBe(short);
    writeFileSync(join(dirtyRepo, "src", "module.js"), "export const x = 2;\n");
    expect(detectGitCommit({ cwd: dirtyRepo })).toBe(`${short}-dirty`);
    expect(detectGitCommit({ cwd: dirtyRepo, dirtyCheck: false })).toBe(short);
    git(dirtyRepo, "commit", "-q", "-am", "second");
    const next = git(dirtyRepo, "rev-parse", "--short=7", "HEAD");
    expect(detectGitCommit({ cwd: dirtyRepo })).toBe(next);
  });

  it("counts a new untracked file as dirty but not an ignored one", () => {
    const untracked = join(root, "untracked");
    git(root, "clone", "-q", repo, untracked);
    writeFileSync(join(untracked, ".git", "info", "exclude"), "*.jsonl\n");
    writeFileSync(join(untracked, "events.jsonl"), "{}\n");
    expect(detectGitCommit({ cwd: untracked })).toBe(head.slice(0, 7));
    writeFileSync(join(untracked, "src", "new-helper.js"), "export {};\n");
    expect(detectGitCommit({ cwd: untracked })).toBe(`${head.slice(0, 7)}-dirty`);
  });

  it("falls back to CI/CD variables when there is no repository", () => {
    const plain = mkdtempSync(join(tmpdir(), "streamll-nogit-"));
    try {
      expect(detectGitCommit({ cwd: plain, env: {} })).toBeNull();
      expect(
        detectGitCommit({ cwd: plain, env: { GITHUB_SHA: "ABCDEF0123456789abcdef0123456789abcdef01" } }),
      ).toBe("abcdef0");
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});

describe("commitFromEnvironment", () => {
  it("tries the variables in the documented order", () => {
    expect(GIT_COMMIT_ENV_VARS[0]).toBe("GIT_COMMIT");
    expect(
      commitFromEnvironment({
        VERCEL_GIT_COMMIT_SHA: "1111111aaaa",
        GIT_COMMIT: "2222222bbbb",
        GITHUB_SHA: "3333333",
      }),
    ).toBe("2222222");
    expect(commitFromEnvironment({ CIRCLE_SHA1: "  ", CI_COMMIT_SHA: "4444444cccc" })).toBe("4444444");
  });

  it("keeps non-hash values such as tags, and recognises every documented variable", () => {
    expect(commitFromEnvironment({ SOURCE_VERSION: "release-2026-11" })).toBe("release-2026-11");
    for (const name of GIT_COMMIT_ENV_VARS) {
      expect(commitFromEnvironment({ [name]: "abcdef0123" })).toBe("abcdef0");
    }
  });
});
