import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pendingBumps } from "./changesets";
import {
  metadataProblems,
  type PublishedPackage,
  projectUrls,
  publishedPackages,
  readManifest,
  relativeLinks,
  repoRoot,
} from "./workspace";

const packages = publishedPackages();
const urls = projectUrls();

describe("the published packages", () => {
  it("are discovered from packages/ (every directory that is not private)", () => {
    const dirs = readdirSync(join(repoRoot, "packages")).filter((dir) =>
      existsSync(join(repoRoot, "packages", dir, "package.json")),
    );
    const published = dirs.filter((dir) => readManifest(join(repoRoot, "packages", dir)).private !== true);
    expect(packages.map((p) => p.dir)).toEqual(published.sort());
    expect(packages.map((p) => p.manifest.name)).toContain("@streamll/core");
  });

  it("state the project's URLs in one place: the root package.json", () => {
    expect(urls.web).toMatch(/^https:\/\/github\.com\/[^/]+\/[^/]+$/);
    expect(urls.repository).toBe(`git+${urls.web}.git`);
    expect(urls.bugs).toBe(`${urls.web}/issues`);
    expect(urls.docs).toMatch(/^https:\/\/.+\/$/);
  });
});

describe.each(packages.map((p) => [p.manifest.name, p]))("%s", (_name, pkg) => {
  it("has complete metadata: repository with directory, homepage, bugs, keywords, publishConfig", () => {
    expect(metadataProblems(pkg, urls)).toEqual([]);
  });

  it("is released through changesets: unreleased at 0.0.0 with a pending minor changeset, so it starts at 0.1.0", () => {
    const released = existsSync(join(pkg.path, "CHANGELOG.md"));
    if (released) return expect(pkg.manifest.version).not.toBe("0.0.0");
    expect(pkg.manifest.version, "an unreleased package stays at 0.0.0 until `changeset version`").toBe(
      "0.0.0",
    );
    expect(pendingBumps(repoRoot).get(pkg.manifest.name), "its highest pending bump must be minor").toBe(
      "minor",
    );
  });
});

describe("the metadata check", () => {
  it("fails a package that lacks the required metadata, naming each missing field", () => {
    const dir = mkdtempSync(join(tmpdir(), "streamll-metadata-"));
    try {
      mkdirSync(join(dir, "new-thing"));
      writeFileSync(join(dir, "new-thing", "README.md"), "# new\n\nSee [the guide](../../docs/guide.md).\n");
      const bare: PublishedPackage = {
        dir: "new-thing",
        path: join(dir, "new-thing"),
        manifest: { name: "@streamll/new-thing", version: "0.1.0", license: "Apache-2.0" },
      };
      const problems = metadataProblems(bare, urls).join("\n");
      for (const field of [
        "repository.url",
        "repository.directory",
        "homepage",
        "bugs.url",
        "keywords",
        "publishConfig.access",
        "publishConfig.provenance",
        "engines.node",
        "files",
        "exports",
        "description",
        '"../../docs/guide.md" is relative',
      ]) {
        expect(problems).toContain(field);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds relative links in prose but not in code, and accepts absolute links and anchors", () => {
    const markdown = [
      "[a](../../docs/a.md) [b](https://example.org/b) [c](#c) ![d](./d.png)",
      "[e]: ../e.md",
      '<a href="../f">f</a>',
      "`[g](../g.md)`",
      "```md",
      "[h](../h.md)",
      "```",
    ].join("\n");
    expect(relativeLinks(markdown)).toEqual(["../../docs/a.md", "./d.png", "../e.md", "../f"]);
  });

  it("reads the pending bump of each package from the changesets", () => {
    const dir = mkdtempSync(join(tmpdir(), "streamll-changesets-"));
    try {
      mkdirSync(join(dir, ".changeset"));
      writeFileSync(
        join(dir, ".changeset", "a.md"),
        "---\n\"@streamll/x\": patch\n'@streamll/y': minor\n---\n\nA.\n",
      );
      writeFileSync(join(dir, ".changeset", "b.md"), '---\n"@streamll/x": minor\n---\n\nB.\n');
      writeFileSync(join(dir, ".changeset", "README.md"), "# Changesets\n");
      expect(Object.fromEntries(pendingBumps(dir))).toEqual({
        "@streamll/x": "minor",
        "@streamll/y": "minor",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sees every package README link to its docs on the site or the repository", () => {
    for (const pkg of packages) {
      const readme = readFileSync(join(pkg.path, "README.md"), "utf8");
      const links = [...readme.matchAll(/\]\((https?:\/\/[^)\s]+)\)/g)].map((m) => m[1] ?? "");
      const own = links.filter((link) => link.startsWith(urls.docs) || link.startsWith(urls.web));
      expect(own.length, `${pkg.manifest.name} links to its docs`).toBeGreaterThan(0);
    }
  });
});
