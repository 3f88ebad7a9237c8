// The cloud subpaths as an application without their optional SDKs sees them: the built package is installed
// into a temporary node_modules next to its real dependencies (@streamll/core, ioredis) and nothing else. Each
// subpath must import, and each adapter must fail on use with one ConfigurationError naming every missing
// package and the install command.
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);

describe("@streamll/sink-redis without its optional peer dependencies", () => {
  let app: string;
  beforeAll(() => {
    app = mkdtempSync(join(tmpdir(), "streamll-no-peers-"));
    const installed = join(app, "node_modules", "@streamll", "sink-redis");
    mkdirSync(installed, { recursive: true });
    cpSync(join(PACKAGE, "package.json"), join(installed, "package.json"));
    cpSync(join(PACKAGE, "dist"), join(installed, "dist"), { recursive: true });
    symlinkSync(
      realpathSync(join(PACKAGE, "node_modules", "@streamll", "core")),
      join(app, "node_modules", "@streamll", "core"),
    );
    symlinkSync(realpathSync(join(PACKAGE, "node_modules", "ioredis")), join(app, "node_modules", "ioredis"));
  });
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it.each([
    [
      "elasticache",
      'const { elastiCacheIamAuth } = m; return elastiCacheIamAuth({ userId: "u", cacheName: "c", region: "eu-west-1" });',
      ["@smithy/signature-v4", "@aws-crypto/sha256-js", "@aws-sdk/credential-providers"],
      "ElastiCache IAM authentication",
    ],
    ["azure", "return m.azureEntraAuth();", ["@azure/identity"], ""],
    ["memorystore", "return m.memorystoreIamAuth();", ["google-auth-library"], ""],
  ])(
    "imports /%s, and using it names every missing package once",
    async (subpath, create, missing, feature) => {
      const script = join(app, `${subpath}.mjs`);
      writeFileSync(
        script,
        `const m = await import("@streamll/sink-redis/${subpath}");
const credentials = (() => { ${create} })();
try {
  await credentials.provider();
  console.log(JSON.stringify({ ok: true }));
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message, fix: error.fix }));
}
`,
      );
      const { stdout } = await run(process.execPath, [script], { cwd: app });
      const result = JSON.parse(stdout.trim()) as {
        name: string;
        code: string;
        message: string;
        fix: string;
      };
      expect(result.name).toBe("ConfigurationError");
      for (const name of missing) expect(result.message).toContain(name);
      expect(result.fix).toBe(`npm install ${missing.join(" ")}`);
      if (feature !== "") expect(result.message.startsWith(feature)).toBe(true);
      expect(result.message).not.toContain("ERR_MODULE_NOT_FOUND");
    },
  );
});
