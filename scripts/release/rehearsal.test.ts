import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  entryPoints,
  installOptionalPeers,
  manifestTargets,
  type Rehearsal,
  reachableFiles,
  rehearsePublish,
  run,
} from "./rehearsal";
import { publishedPackages, repoRoot } from "./workspace";

const packages = publishedPackages();
let rehearsal: Rehearsal;

beforeAll(() => {
  // Packs what the build produced: make sure it is current (turbo answers from its cache when it is).
  run("pnpm", ["turbo", "run", "build", "--filter=./packages/*", "--output-logs=errors-only"], repoRoot);
  rehearsal = rehearsePublish();
  // Recorded for the release notes and for anyone watching tarball growth (the folder is gitignored).
  const artifacts = join(repoRoot, ".artifacts", "release");
  mkdirSync(artifacts, { recursive: true });
  const sizes = rehearsal.tarballs.map((t) => ({
    name: t.name,
    version: t.version,
    bytes: t.bytes,
    files: t.files,
  }));
  writeFileSync(join(artifacts, "tarballs.json"), `${JSON.stringify(sizes, null, 2)}\n`);
  console.log(
    [
      "tarball sizes:",
      ...rehearsal.tarballs.map((t) => `  ${t.name}@${t.version}: ${t.bytes} bytes, ${t.files.length} files`),
    ].join("\n"),
  );
});

afterAll(() => {
  if (rehearsal) rmSync(rehearsal.dir, { recursive: true, force: true });
});

const tarball = (name: string) => {
  const found = rehearsal.tarballs.find((t) => t.name === name);
  if (!found) throw new Error(`no tarball for ${name}`);
  return found;
};

describe.each(packages.map((p) => [p.manifest.name]))("%s", (name) => {
  it("gets its first or next version from the changesets, with a CHANGELOG", () => {
    const { version, changelog } = tarball(name);
    const before = rehearsal.versionsBefore[name];
    // A package never released sits at 0.0.0 and its first release is 0.1.0.
    if (before === "0.0.0") expect(version).toBe("0.1.0");
    else expect(version).not.toBe(before);
    expect(changelog).toContain(`# ${name}`);
    expect(changelog).toContain(`## ${version}`);
  });

  it("ships its build, README, LICENSE and CHANGELOG, and nothing else", () => {
    const { files, manifest } = tarball(name);
    const root = join(rehearsal.scratch, "node_modules", name);
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", "LICENSE", "CHANGELOG.md"]));
    const stray = files.filter(
      (file) =>
        !["package.json", "README.md", "LICENSE", "CHANGELOG.md"].includes(file) &&
        !/^dist\/([^/]+\.(js|cjs|d\.ts|d\.cts|json)|[\w-]+\/[^/]+\.(js|css|html|svg|png|woff2))$/.test(file),
    );
    expect(stray, "files outside dist/ or of an unexpected kind (sources, tests, maps)").toEqual([]);
    // Every file the manifest points at is there, and every dist file is used by one of them.
    const missing = manifestTargets(manifest).filter((target) => !files.includes(target));
    expect(missing, "exports/bin targets missing from the tarball").toEqual([]);
    const reachable = reachableFiles(root, manifest);
    const unused = files.filter((file) => file.startsWith("dist/") && !reachable.has(file));
    expect(unused, "build outputs nothing imports (stray files)").toEqual([]);
  });

  it("keeps its workspace dependencies as real version ranges", () => {
    const { manifest } = tarball(name);
    for (const [dependency, range] of Object.entries(manifest.dependencies ?? {})) {
      expect(range, dependency).not.toMatch(/^workspace:/);
      const sibling = rehearsal.tarballs.find((t) => t.name === dependency);
      if (sibling) expect(range).toBe(`^${sibling.version}`);
    }
  });
});

const smoke = (file: string, entries: string[]) =>
  JSON.parse(run("node", [file, ...entries], rehearsal.scratch)) as {
    exported: Record<string, string[]>;
    result: unknown;
    eventTypes: string[];
  };

/** The ESM and the CommonJS smoke file load the same exports from every entry and run the core. */
function expectSmokeRuns(entries: string[]) {
  const esm = smoke("smoke.mjs", entries);
  const cjs = smoke("smoke.cjs", entries);
  for (const spec of entries) {
    expect(esm.exported[spec]?.length, spec).toBeGreaterThan(0);
    expect(cjs.exported[spec], spec).toEqual(esm.exported[spec]);
  }
  for (const result of [esm, cjs]) {
    expect(result.result).toEqual({ echoed: "hello" });
    expect(result.eventTypes).toEqual(expect.arrayContaining(["start", "end"]));
  }
}

describe("installed from the tarballs with npm, outside the workspace", () => {
  it("loads every package's main entry as ESM and CommonJS without any optional peer, and runs the core", () => {
    expectSmokeRuns(rehearsal.tarballs.map((t) => t.name));
  });

  it("runs every package's bin", () => {
    for (const { manifest } of rehearsal.tarballs) {
      const bins =
        typeof manifest.bin === "string" ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {});
      for (const bin of Object.keys(bins)) {
        const help = run(join(rehearsal.scratch, "node_modules", ".bin", bin), ["--help"], rehearsal.scratch);
        expect(help, bin).toMatch(/usage/i);
      }
    }
  });
});

describe("with the optional peers (cloud SDKs) installed too", () => {
  const entries = () => rehearsal.tarballs.flatMap((t) => entryPoints(t.manifest));
  beforeAll(() => {
    installOptionalPeers(rehearsal);
  });

  it("loads every entry point as ESM and as CommonJS, with the same exports", () => {
    expectSmokeRuns(entries());
  });

  // One tsc run checks all three resolutions (build mode, one process): the ES module and CommonJS flavours
  // of `nodenext`, and `bundler`. `skipLibCheck` is off so streamll's shipped declarations are checked too;
  // errors inside third-party declarations (ioredis's own types need `@types/redis-errors`) are not ours.
  it("type-checks with tsc --noEmit under nodenext (ESM and CommonJS) and bundler", () => {
    const imports = entries().map((spec, i) => `import * as entry${i} from "${spec}";`);
    const uses = `export const entries = [${entries()
      .map((_, i) => `entry${i}`)
      .join(", ")}];`;
    const body = readFileSync(join(rehearsal.scratch, "usage.ts"), "utf8");
    const variants = [
      ["usage.mts", { module: "nodenext", moduleResolution: "nodenext" }],
      ["usage.cts", { module: "nodenext", moduleResolution: "nodenext" }],
      ["usage-bundler.ts", { module: "esnext", moduleResolution: "bundler" }],
    ] as const;
    const configs = variants.map(([file, resolution]) => {
      writeFileSync(join(rehearsal.scratch, file), [...imports, body, uses].join("\n"));
      const compilerOptions = {
        ...resolution,
        target: "es2022",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      };
      const config = `tsconfig.${file.replace(/\W/g, "-")}.json`;
      writeFileSync(
        join(rehearsal.scratch, config),
        JSON.stringify({ compilerOptions, files: [file] }, null, 2),
      );
      return config;
    });
    const tsc = join(rehearsal.scratch, "node_modules", ".bin", "tsc");
    let output = "";
    try {
      output = run(tsc, ["-b", ...configs, "--pretty", "false"], rehearsal.scratch);
    } catch (error) {
      output = (error as Error).message;
    }
    const ours = output
      .split("\n")
      .filter((line) => /error TS\d+/.test(line) && !/^node_modules\/(?!@streamll\/)/.test(line));
    expect(ours).toEqual([]);
  });
});
