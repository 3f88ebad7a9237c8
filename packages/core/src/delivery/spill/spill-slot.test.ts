import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../errors";
import { acquireSlot } from "./spill-slot";
import { runChildWithTimeout, writeTsResolveHook } from "./spill-test-support";

const OPTION = "sinks[0].delivery.spill.directory";
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "streamll-slot-"));
  dirs.push(dir);
  return dir;
}

/** The ConfigurationError `acquireSlot` throws for `directory`, or a failure when it does not throw one. */
function slotError(directory: string): ConfigurationError {
  try {
    acquireSlot(directory, OPTION).release();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error(`acquireSlot(${directory}) did not throw`);
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("acquireSlot", () => {
  it("creates a nested missing directory, level by level", () => {
    const sinkDirectory = join(tempDir(), "a", "b", "c", "sink");
    const slot = acquireSlot(sinkDirectory, OPTION);
    try {
      expect(slot.directory).toBe(join(sinkDirectory, "0"));
      expect(statSync(slot.directory).isDirectory()).toBe(true);
      expect(existsSync(join(slot.directory, "lock"))).toBe(true);
    } finally {
      slot.release();
    }
    // The directory exists now: taking a slot again is fine.
    const again = acquireSlot(sinkDirectory, OPTION);
    again.release();
    expect(again.directory).toBe(join(sinkDirectory, "0"));
  });

  it("is 'not a directory' when a part of the path is a file", () => {
    const file = join(tempDir(), "file");
    writeFileSync(file, "x");
    for (const directory of [file, join(file, "sink")]) {
      const error = slotError(directory);
      expect(error.message).toBe(`spill directory ${directory} is not a directory`);
      expect(error.issues[0]?.path).toBe(OPTION);
    }
  });

  // Mounting needs root. CI runs as root: there a failing mount fails the test rather than skipping it.
  describe.skipIf(!isRoot && process.env.CI !== "true")("on a read-only file system", () => {
    let mountPoint = "";
    let mounted = false;
    beforeAll(() => {
      mountPoint = tempDir();
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint], { stdio: "pipe" });
      mounted = true;
      mkdirSync(join(mountPoint, "existing"));
      execFileSync("mount", ["-o", "remount,ro", mountPoint], { stdio: "pipe" });
    });
    afterAll(() => {
      if (!mounted) return;
      try {
        execFileSync("umount", [mountPoint], { stdio: "pipe" });
      } catch {
        execFileSync("umount", ["-l", mountPoint], { stdio: "pipe" });
      }
    });

    it.each([
      ["a missing directory", "sink"],
      ["a missing nested directory", join("a", "b", "sink")],
      ["an existing directory", "existing"],
      ["a missing directory inside an existing one", join("existing", "sink")],
    ])("says so for %s", (_, relative) => {
      const directory = join(mountPoint, relative);
      const error = slotError(directory);
      expect(error.message).toBe(`spill directory ${directory} is on a read-only file system`);
      expect(error.issues).toEqual([{ path: OPTION, message: "is on a read-only file system" }]);
    });
  });

  // Node's recursive mkdir never returns for a path under /proc/sys: run it in a child that is killed after a
  // few seconds, so a regression fails this test instead of hanging the suite.
  it.skipIf(process.platform !== "linux" || !existsSync("/proc/sys"))(
    "fails fast under /proc/sys instead of hanging",
    () => {
      const dir = tempDir();
      const hook = writeTsResolveHook(dir);
      const slotPath = new URL("./spill-slot.ts", import.meta.url).pathname;
      const script = join(dir, "child.ts");
      writeFileSync(
        script,
        `import { acquireSlot } from ${JSON.stringify(slotPath)};
try {
  acquireSlot("/proc/sys/streamll-test/sink", ${JSON.stringify(OPTION)}).release();
  console.log("acquired");
} catch (error) {
  console.log(JSON.stringify({ name: error.name, message: error.message, issues: error.issues }));
}
`,
      );
      const started = Date.now();
      const result = runChildWithTimeout(hook, script);
      expect(result.signal, "the child hung and was killed").toBeNull();
      expect(result.stderr).toBe("");
      expect(Date.now() - started).toBeLessThan(8_000);
      const thrown = JSON.parse(result.stdout) as {
        name: string;
        message: string;
        issues: { path: string }[];
      };
      expect(thrown.name).toBe("ConfigurationError");
      expect(thrown.message).toMatch(
        /^spill directory \/proc\/sys\/streamll-test\/sink (cannot be created|is not writable|is on a read-only)/,
      );
      expect(thrown.issues[0]?.path).toBe(OPTION);
    },
  );
});
