import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dependencyVersions,
  entryDirectory,
  findNearestPackage,
  installedVersion,
  packageLabel,
} from "./package-version";

const root = mkdtempSync(join(tmpdir(), "streamll-pkg-"));

function writeJson(path: string, value: unknown): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
}

beforeAll(() => {
  writeJson(join(root, "app", "package.json"), {
    name: "qa-service",
    version: "2.3.1",
    dependencies: { openai: "^4.0.0", "@ax-llm/ax": "^24.0.0", missing: "1.0.0" },
  });
  // A package.json without a name (e.g. `{"type": "module"}` in a subfolder) is skipped.
  writeJson(join(root, "app", "src", "package.json"), { type: "module" });
  writeJson(join(root, "app", "node_modules", "openai", "package.json"), {
    name: "openai",
    version: "4.7.0",
  });
  writeJson(join(root, "node_modules", "@ax-llm", "ax", "package.json"), {
    name: "@ax-llm/ax",
    version: "24.1.0",
  });
  mkdirSync(join(root, "app", "src", "modules"), { recursive: true });
  writeFileSync(join(root, "app", "src", "main.js"), "");
  mkdirSync(join(root, "app", "node_modules", ".bin"), { recursive: true });
  writeFileSync(join(root, "app", "node_modules", ".bin", "runner.js"), "");
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("package version", () => {
  it("finds the nearest package.json with a name, skipping nameless ones", () => {
    const info = findNearestPackage(join(root, "app", "src", "modules"));
    expect(info).toMatchObject({ name: "qa-service", version: "2.3.1", dir: join(root, "app") });
    expect(packageLabel(info!)).toBe("qa-service@2.3.1");
    expect(packageLabel({ name: "private-app", version: null, dir: root, dependencies: [] })).toBe(
      "private-app",
    );
  });

  it("resolves installed versions through parent node_modules (as Node does)", () => {
    const from = join(root, "app");
    expect(installedVersion("openai", from)).toBe("4.7.0");
    expect(installedVersion("@ax-llm/ax", from)).toBe("24.1.0");
    expect(installedVersion("missing", from)).toBeNull();
    expect(dependencyVersions(["openai", "@ax-llm/ax", "missing"], from)).toEqual({
      openai: "4.7.0",
      "@ax-llm/ax": "24.1.0",
    });
  });

  it("uses the entry script's directory, or the working directory for tools inside node_modules", () => {
    const cwd = join(root, "app");
    expect(entryDirectory(["node", join(root, "app", "src", "main.js")], cwd)).toBe(join(root, "app", "src"));
    expect(entryDirectory(["node", join(root, "app", "node_modules", ".bin", "runner.js")], cwd)).toBe(cwd);
    expect(entryDirectory(["node"], cwd)).toBe(cwd);
    expect(entryDirectory(["node", join(root, "does-not-exist.js")], cwd)).toBe(cwd);
  });
});
