// Reads the pending changesets (`.changeset/*.md` front matter: `"package": patch|minor|major`) the way
// `changeset version` does, to check before a release what versions it will produce.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export type Bump = "patch" | "minor" | "major";
const order: Bump[] = ["patch", "minor", "major"];

/** The highest pending bump per package name. */
export function pendingBumps(root: string): Map<string, Bump> {
  const bumps = new Map<string, Bump>();
  const dir = join(root, ".changeset");
  if (!existsSync(dir)) return bumps;
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".md") && name !== "README.md")) {
    const frontMatter = /^---\r?\n([\s\S]*?)\r?\n---/.exec(readFileSync(join(dir, file), "utf8"))?.[1] ?? "";
    for (const line of frontMatter.split(/\r?\n/)) {
      const match = /^\s*["']?([^"':]+)["']?\s*:\s*(patch|minor|major)\s*$/.exec(line);
      if (!match) continue;
      const [, name = "", bump = "patch"] = match;
      const current = bumps.get(name);
      if (!current || order.indexOf(bump as Bump) > order.indexOf(current)) bumps.set(name, bump as Bump);
    }
  }
  return bumps;
}
