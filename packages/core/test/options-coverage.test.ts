import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * No package may accept an options object that escapes the shared validator (`v` / `validateOptions` from
 * `@streamll/core/internal`): every exported options interface has a schema declared with it, no package
 * keeps a hand-written key check or a second schema library for options, and every object passed on
 * unchecked says so. Scans the sources of every package, so a new package is held to it too.
 */
const packagesDir = fileURLToPath(new URL("../../", import.meta.url));

interface Source {
  readonly pkg: string;
  readonly path: string;
  readonly text: string;
}

/** Names a package exports from its public entries: `src/index.ts` and each subpath of its exports map. */
function publicNames(pkg: string): Set<string> {
  const manifest = JSON.parse(readFileSync(join(packagesDir, pkg, "package.json"), "utf8")) as {
    exports?: Record<string, unknown>;
  };
  const entries = Object.keys(manifest.exports ?? { ".": null })
    .filter((key) => key !== "./package.json" && key !== "./internal" && !key.endsWith(".json"))
    .map((key) => (key === "." ? "index" : key.slice(2)));
  const names = new Set<string>();
  for (const entry of entries) {
    let text: string;
    try {
      text = readFileSync(join(packagesDir, pkg, "src", `${entry}.ts`), "utf8");
    } catch {
      continue;
    }
    // Re-exports (`export { type X, y } from`, `export type { X } from`) and declarations in the entry itself.
    for (const block of text.matchAll(/export (?:type )?\{([^}]*)\}/g)) {
      for (const part of block[1]!.split(",")) {
        const name = part
          .replace(/\btype\b/, "")
          .trim()
          .split(/\s+as\s+/)
          .at(-1);
        if (name) names.add(name);
      }
    }
    for (const declared of text.matchAll(/export (?:interface|type|class|function|const) (\w+)/g)) {
      names.add(declared[1]!);
    }
  }
  return names;
}

function sources(): Source[] {
  const out: Source[] = [];
  for (const pkg of readdirSync(packagesDir)) {
    const src = join(packagesDir, pkg, "src");
    try {
      statSync(src);
    } catch {
      continue;
    }
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          // The browser page of the viewer takes no options objects; fixtures are test code.
          if (name !== "ui" && name !== "__fixtures__" && name !== "test-support") walk(path);
        } else if (/\.ts$/.test(name) && !/\.test\.ts$/.test(name)) {
          out.push({ pkg, path: relative(packagesDir, path), text: readFileSync(path, "utf8") });
        }
      }
    };
    walk(src);
  }
  return out;
}

const all = sources();

/** Exported interfaces that are options by name but describe data or results, not input options. */
const NOT_INPUT_OPTIONS = new Set([
  // Defaults applied: results of the resolve functions, never passed in by a user.
  "ResolvedVersionTrackingOptions",
  "ResolvedDeliveryOptions",
  "ResolvedRetryOptions",
  "ResolvedCircuitBreakerOptions",
  "ResolvedSpillOptions",
  "ResolvedViewerOptions",
  // Built by the delivery pipeline for each send, not by a user.
  "SendContext",
]);

describe("options coverage", () => {
  it("finds the sources of every package", () => {
    const packages = new Set(all.map((source) => source.pkg));
    for (const pkg of ["core", "sink-kafka", "sink-redis", "sink-rabbitmq"]) expect(packages).toContain(pkg);
  });

  it("declares a schema for every options interface a package exports", () => {
    const missing: string[] = [];
    const schemaText = all.map((source) => source.text).join("\n");
    const exported = new Map<string, Set<string>>();
    const checked: string[] = [];
    for (const source of all) {
      const names = exported.get(source.pkg) ?? publicNames(source.pkg);
      exported.set(source.pkg, names);
      for (const match of source.text.matchAll(
        /export interface (\w+(?:Options|Params|Files|Hooks|Environment))\b/g,
      )) {
        const name = match[1]!;
        if (NOT_INPUT_OPTIONS.has(name) || !names.has(name)) continue;
        const declared = new RegExp(`(?:v\\s*\\.object|\\.extend|v\\.custom|v\\.passthrough)<${name}>`).test(
          schemaText,
        );
        checked.push(name);
        if (!declared) missing.push(`${source.path}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
    // The scan reaches the options of every package, not just a few.
    for (const name of [
      "StreamllOptions",
      "KafkaSinkOptions",
      "RedisEventReaderOptions",
      "MskDiscoveryOptions",
    ]) {
      expect(checked).toContain(name);
    }
  });

  it("keeps no hand-written key checks and no second schema library for options", () => {
    const offenders: string[] = [];
    for (const source of all) {
      if (/\bcheckKnownKeys\b|_OPTION_KEYS\b|OPTION_KEYS = \[/.test(source.text)) offenders.push(source.path);
      // zod describes the wire event (events/), not options.
      if (/from "zod"/.test(source.text) && !source.path.startsWith("core/src/events/")) {
        offenders.push(source.path);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("says of every object passed on unchecked that it is, and to whom", () => {
    const unnamed: string[] = [];
    for (const source of all.filter((s) => s.path !== "core/src/options/schema.ts")) {
      for (const match of source.text.matchAll(/v\.passthrough<[^>]+>\(\s*"([^"]*)"/g)) {
        if (!/unchecked/.test(match[1]!)) unnamed.push(`${source.path}: ${match[1]}`);
      }
    }
    expect(unnamed).toEqual([]);
  });
});
