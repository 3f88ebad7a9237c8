import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { optionIssues } from "../options/schema";
import { computeCodeSignature } from "./code-signature";
import { resolveVersionTrackingOptions, versionTrackingOptionsSchema } from "./options";
import { MAX_TRACKED_VERSIONS, VersionTracker } from "./version-tracker";

const root = mkdtempSync(join(tmpdir(), "streamll-tracker-"));
const app = join(root, "app");

beforeAll(() => {
  mkdirSync(join(app, "node_modules", "openai"), { recursive: true });
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({
      name: "qa-service",
      version: "1.4.0",
      dependencies: { openai: "^4.0.0", "streamll-fixture-not-installed": "^4" },
    }),
  );
  writeFileSync(
    join(app, "node_modules", "openai", "package.json"),
    JSON.stringify({ name: "openai", version: "4.7.0" }),
  );
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A tracker that reads the fixture app instead of the test runner's surroundings. */
function tracker(options: ConstructorParameters<typeof VersionTracker>[0] = true): VersionTracker {
  return new VersionTracker(options, { cwd: app, entryDir: app, env: {} });
}

class Qa {
  forward(question: string): string {
    return this.retrieve(question);
  }
  retrieve(question: string): string {
    return question.trim();
  }
}

describe("VersionTracker", () => {
  it("fills the three fields and returns the same object from the cache", () => {
    const t = tracker();
    const first = t.lookup(Qa, "forward", "Qa");
    expect(first.codeSignature).toBe(computeCodeSignature(Qa, { method: "forward" }));
    expect(first.moduleVersion).toBe("qa-service@1.4.0");
    expect(first.gitCommit).toBeNull();
    expect(t.lookup(Qa, "forward", "Qa")).toBe(first);
    expect(t.lookup(Qa, "retrieve", "Qa")).not.toBe(first);
    const fn = (x: number) => x + 1;
    expect(t.lookup(fn)).toBe(t.lookup(fn));
  });

  it("uses the configured strategy, module version and git commit", () => {
    const t = tracker({ strategy: "ast-deps", moduleVersion: "build-77", gitCommit: "abc1234-dirty" });
    const record = t.lookup(Qa, "forward");
    expect(record).toMatchObject({ moduleVersion: "build-77", gitCommit: "abc1234-dirty" });
    expect(record.codeSignature).toBe(computeCodeSignature(Qa, { method: "forward", strategy: "ast-deps" }));
    expect(record.details.methods.map((m) => m.name)).toEqual(["forward", "retrieve"]);
  });

  it("emits the version event data once per (module, code_signature)", () => {
    const t = tracker({ strategy: "ast-deps", gitCommit: "abc1234" });
    const record = t.lookup(Qa, "forward", "Qa");
    const data = t.takeVersionEvent("Qa", record);
    expect(data).toEqual({
      strategy: "ast-deps",
      code_signature: record.codeSignature,
      module_version: "qa-service@1.4.0",
      git_commit: "abc1234",
      methods: [
        { name: "forward", hash: expect.stringMatching(/^[0-9a-f]{12}$/) },
        { name: "retrieve", hash: expect.stringMatching(/^[0-9a-f]{12}$/) },
      ],
      package: "qa-service@1.4.0",
      runtime: {
        name: "node",
        version: process.versions.node,
        platform: process.platform,
        arch: process.arch,
      },
      // Only installed dependencies are listed (the second one is declared but not installed).
      dependencies: { openai: "4.7.0" },
    });
    expect(t.takeVersionEvent("Qa", record)).toBeNull();
    expect(t.takeVersionEvent("QaCanary", record)).not.toBeNull();
    const other = t.lookup(Qa, "retrieve", "Qa");
    expect(t.takeVersionEvent("Qa", other)).not.toBeNull();
  });

  it("announces a null signature once too, saying why it is missing", () => {
    const t = tracker({ gitCommit: null });
    const record = t.lookup(Math.max);
    expect(record.codeSignature).toBeNull();
    expect(t.takeVersionEvent("max", record)).toMatchObject({ code_signature: null, unavailable: "native" });
    expect(t.takeVersionEvent("max", record)).toBeNull();
  });

  it("lists the dependencies it is told to", () => {
    const t = tracker({ dependencies: ["openai", "not-installed"], gitCommit: null });
    expect(t.processInfo().dependencies).toEqual({ openai: "4.7.0" });
  });

  it("stops remembering pairs at MAX_TRACKED_VERSIONS and counts what it did not announce", () => {
    const t = tracker({ gitCommit: null, strategy: () => "v1" });
    const record = t.lookup(Qa, "forward");
    for (let i = 0; i < MAX_TRACKED_VERSIONS; i++) t.takeVersionEvent(`m${i}`, record);
    expect(t.takeVersionEvent("one-too-many", record)).toBeNull();
    expect(t.suppressedVersionEvents).toBe(1);
  });

  it("never throws, even for a hostile target", () => {
    const t = tracker({ gitCommit: null });
    const hostile = new Proxy(function hostile() {}, {
      get() {
        throw new Error("no");
      },
      getPrototypeOf() {
        throw new Error("no");
      },
      getOwnPropertyDescriptor() {
        throw new Error("no");
      },
    });
    expect(t.lookup(hostile, "forward").codeSignature).toBeNull();
    expect(t.lookup(hostile).codeSignature).toBeNull();
  });

  it("does not keep instrumented classes alive (WeakMap cache)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const t = tracker({ gitCommit: null, strategy: "ast-deps" });
    const ref = ((): WeakRef<object> => {
      const Temporary = new Function(
        `return class Temporary { forward() { return this.h(); } h() { return 1; } }`,
      )();
      t.lookup(Temporary, "forward", "Temporary");
      return new WeakRef(Temporary);
    })();
    for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      gc();
    }
    expect(ref.deref()).toBeUndefined();
  });
});

describe("versionTracking options", () => {
  it("true means the ast strategy with automatic module version and git commit", () => {
    expect(resolveVersionTrackingOptions(true)).toEqual({
      strategy: "ast",
      moduleVersion: null,
      gitCommit: "auto",
      dependencies: null,
    });
    expect(resolveVersionTrackingOptions(false)).toBeNull();
    expect(resolveVersionTrackingOptions(undefined)).toBeNull();
  });

  it("validates the option", () => {
    const valid = (value: unknown) => optionIssues(versionTrackingOptionsSchema, value).length === 0;
    expect(valid({ strategy: "ast-deps", gitCommit: null })).toBe(true);
    expect(valid({ strategy: () => "x" })).toBe(true);
    expect(valid({ strategy: "bytecode" })).toBe(false);
    expect(valid({ moduleVersion: "" })).toBe(false);
    expect(valid({ unknown: 1 })).toBe(false);
    expect(valid("ast")).toBe(false);
  });
});

describe("VersionTracker.applyToSpan", () => {
  const span = (moduleName: string) => ({
    moduleName,
    moduleVersion: null,
    codeSignature: null,
    gitCommit: null,
  });

  it("fills the span and announces each (module, signature) once", () => {
    const t = tracker({ gitCommit: "abc1234" });
    const first = span("Qa");
    const data = t.applyToSpan(first, Qa.prototype.forward, "forward", new Qa());
    expect(data).toMatchObject({ strategy: "ast", code_signature: first.codeSignature });
    expect(first).toMatchObject({
      moduleVersion: "qa-service@1.4.0",
      codeSignature: computeCodeSignature(Qa, { method: "forward" }),
      gitCommit: "abc1234",
    });
    expect(t.applyToSpan(span("Qa"), Qa.prototype.forward, "forward", new Qa())).toBeNull();
    expect(t.applyToSpan(span("Renamed"), Qa.prototype.forward, "forward", new Qa())).not.toBeNull();
  });

  it("shares one entry per class across instances, and gives subclasses their own", () => {
    class Sub extends Qa {
      override retrieve(question: string): string {
        return question.toLowerCase();
      }
    }
    const t = tracker({ gitCommit: null, strategy: "ast-deps" });
    const a = span("Qa");
    const b = span("Qa");
    const c = span("Sub");
    t.applyToSpan(a, Qa.prototype.forward, "forward", new Qa());
    t.applyToSpan(b, Qa.prototype.forward, "forward", new Qa());
    t.applyToSpan(c, Qa.prototype.forward, "forward", new Sub());
    expect(t.lookup(Qa, "forward")).toBe(t.lookup(Qa, "forward"));
    expect(a.codeSignature).toBe(b.codeSignature);
    // Sub's forward() reaches Sub's retrieve(): a different signature under ast-deps.
    expect(c.codeSignature).not.toBe(a.codeSignature);
  });

  it("fingerprints the function itself when the receiver's class does not lead to it", () => {
    const t = tracker({ gitCommit: null });
    const standalone = function answer(this: unknown, q: string) {
      return q;
    };
    const s = span("answer");
    t.applyToSpan(s, standalone, "answer", new Qa());
    expect(s.codeSignature).toBe(computeCodeSignature(standalone));
    const plain = span("answer");
    t.applyToSpan(plain, standalone, null, undefined);
    expect(plain.codeSignature).toBe(s.codeSignature);
  });

  it("handles static methods and plain objects", () => {
    class Tool {
      static run(x: number): number {
        return x * 2;
      }
      describe(): string {
        return "doubles";
      }
    }
    const object = {
      forward(x: number) {
        return x + 1;
      },
    };
    const t = tracker({ gitCommit: null });
    const a = span("Tool");
    t.applyToSpan(a, Tool.run, "run", Tool);
    expect(a.codeSignature).toBe(computeCodeSignature(Tool, { method: "run" }));
    const b = span("anonymous");
    t.applyToSpan(b, object.forward, "forward", object);
    expect(b.codeSignature).toBe(computeCodeSignature(object, { method: "forward" }));
  });
});
