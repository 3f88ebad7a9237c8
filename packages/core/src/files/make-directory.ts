import * as fs from "node:fs";
import { dirname, resolve } from "node:path";

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/**
 * Creates `directory` and its missing parents one level at a time, like `mkdir -p`. Not
 * `fs.mkdirSync(..., { recursive: true })` (nor its promise form): that reports ENOENT instead of EROFS on a
 * read-only file system, and never returns for some paths (under `/proc/sys`), keeping a thread of libuv's
 * pool busy for good. Each failure keeps its own code (EROFS, EACCES, ENOTDIR, ENOENT). Synchronous: a few
 * `stat` calls, run when a spill is configured or a file sink opens its file, never per event.
 */
export function makeDirectory(directory: string): void {
  const missing: string[] = [];
  let current = resolve(directory);
  for (;;) {
    let isDirectory: boolean | undefined;
    try {
      isDirectory = fs.statSync(current).isDirectory();
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
    }
    if (isDirectory === false) {
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${current}'`), { code: "ENOTDIR" });
    }
    if (isDirectory === true) break;
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const level of missing.reverse()) {
    try {
      fs.mkdirSync(level);
    } catch (error) {
      // Created meanwhile (another process starting up) is fine, as long as it is a directory.
      if (errorCode(error) === "EEXIST" && fs.statSync(level).isDirectory()) continue;
      throw error;
    }
  }
}
