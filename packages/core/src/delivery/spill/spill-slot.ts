import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { ConfigurationError } from "../../errors";
import { makeDirectory } from "../../files/make-directory";

/**
 * Who may use which part of a sink's spill directory. Each live process owns one numbered slot
 * (`<directory>/<sink>/<n>/`) through a lock file there, writes and replays only that slot's segments, and on
 * start-up adopts the segments of slots whose owner is gone (a crash, an earlier deploy): so two live
 * processes never replay the same segment, and no segment waits forever for an owner.
 *
 * A lock is stale when its process is gone (same host), when it names this process but this process does not
 * hold it (a restarted container is often pid 1 again), or when its heartbeat (the lock file's mtime,
 * touched every {@link HEARTBEAT_MS}) is older than {@link STALE_AFTER_MS} (another host on a shared volume).
 */
export const HEARTBEAT_MS = 10_000;
export const STALE_AFTER_MS = 60_000;
const MAX_SLOTS = 256;
const LOCK_FILE = "lock";
export const SEGMENT_SUFFIX = ".seg";

/** Lock files this process holds, by path. */
const heldLocks = new Set<string>();

export interface SpillSlot {
  /** The slot directory holding this process's segments. */
  readonly directory: string;
  /** Segment files found on disk (this slot's leftovers and adopted ones), oldest first. */
  readonly leftovers: readonly { readonly path: string; readonly bytes: number }[];
  /** The next free segment number in `directory`. */
  readonly nextSegment: number;
  /** Stops the heartbeat and removes the lock. Idempotent. */
  release(): void;
}

/** A stable, safe directory name for a sink: `kafka:events` becomes `kafka_events-3f2a9c1d`. */
export function sinkDirectoryName(sinkName: string): string {
  const readable =
    sinkName
      .replace(/[^A-Za-z0-9._-]/g, "_")
      .replace(/^[._-]+/, "")
      .slice(0, 60) || "sink";
  const hash = createHash("sha256").update(sinkName).digest("hex").slice(0, 8);
  return `${readable}-${hash}`;
}

function unusable(directory: string, error: unknown, option: string): ConfigurationError {
  const code = (error as { code?: unknown } | null)?.code;
  const reason =
    code === "EACCES" || code === "EPERM"
      ? "is not writable (permission denied)"
      : code === "EROFS"
        ? "is on a read-only file system"
        : code === "ENOTDIR" || code === "EEXIST"
          ? "is not a directory"
          : code === "ENOENT"
            ? "cannot be created (ENOENT)"
            : `cannot be used (${typeof code === "string" ? code : "unknown error"})`;
  return new ConfigurationError(
    `spill directory ${directory} ${reason}`,
    [{ path: option, message: reason }],
    {
      fix: `point ${option} at a directory this process can create and write, or remove delivery.spill`,
    },
  );
}

/**
 * Takes a slot for this process under `sinkDirectory` (created when missing) and adopts orphaned slots.
 * Synchronous: it runs in `configure()`, which must fail right there when the directory cannot be used.
 * @param option the option's path for the error, e.g. `delivery.spill.directory`.
 * @throws ConfigurationError when the directory cannot be created or written.
 */
export function acquireSlot(sinkDirectory: string, option: string): SpillSlot {
  try {
    makeDirectory(sinkDirectory);
    fs.accessSync(sinkDirectory, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw unusable(sinkDirectory, error, option);
  }
  let slotDirectory: string | undefined;
  let lockPath = "";
  try {
    for (let n = 0; n < MAX_SLOTS && slotDirectory === undefined; n++) {
      const candidate = join(sinkDirectory, String(n));
      makeDirectory(candidate);
      if (tryLock(join(candidate, LOCK_FILE))) {
        slotDirectory = candidate;
        lockPath = join(candidate, LOCK_FILE);
      }
    }
  } catch (error) {
    throw unusable(sinkDirectory, error, option);
  }
  if (slotDirectory === undefined) {
    throw new ConfigurationError(
      `spill directory ${sinkDirectory} has ${MAX_SLOTS} live owners`,
      [{ path: option, message: "every slot is locked by a live process" }],
      { fix: "give each process its own delivery.spill.directory or delivery.spill.name" },
    );
  }
  const own = listSegments(slotDirectory);
  let next = own.reduce((max, s) => Math.max(max, segmentNumber(s.path) + 1), 0);
  const leftovers = [...own];
  const orphans = adoptOrphans(sinkDirectory, slotDirectory);
  for (const orphan of orphans.segments) {
    const target = join(slotDirectory, segmentFileName(next++));
    try {
      fs.renameSync(orphan.path, target);
      leftovers.push({ path: target, bytes: orphan.bytes });
    } catch {
      // Gone meanwhile.
    }
  }
  for (const lock of orphans.locks) {
    heldLocks.delete(lock);
    try {
      fs.unlinkSync(lock);
      fs.rmdirSync(dirname(lock));
    } catch {
      // Not empty (a file we could not move): the next start-up adopts it again.
    }
  }
  const heldLock = lockPath;
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      fs.utimesSync(heldLock, now, now);
    } catch {
      // The lock file vanished (someone cleaned the directory): nothing better to do than keep going.
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  let released = false;
  return {
    directory: slotDirectory,
    leftovers,
    nextSegment: next,
    release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      heldLocks.delete(heldLock);
      try {
        fs.unlinkSync(heldLock);
      } catch {
        // Already gone.
      }
    },
  };
}

export function segmentFileName(n: number): string {
  return `${String(n).padStart(12, "0")}${SEGMENT_SUFFIX}`;
}

function segmentNumber(path: string): number {
  const base = basename(path, SEGMENT_SUFFIX);
  const n = Number.parseInt(base, 10);
  return Number.isFinite(n) ? n : -1;
}

/** The segment files of a directory, oldest (lowest number) first. */
function listSegments(directory: string): { path: string; bytes: number }[] {
  const names = fs
    .readdirSync(directory)
    .filter((name) => name.endsWith(SEGMENT_SUFFIX))
    .sort();
  const segments: { path: string; bytes: number }[] = [];
  for (const name of names) {
    const path = join(directory, name);
    try {
      segments.push({ path, bytes: fs.statSync(path).size });
    } catch {
      // Removed meanwhile.
    }
  }
  return segments;
}

/** Locks every other slot with no live owner and returns its segments (oldest first) and the locks taken. */
function adoptOrphans(
  sinkDirectory: string,
  ownSlot: string,
): { segments: { path: string; bytes: number }[]; locks: string[] } {
  const adopted: { path: string; bytes: number; mtime: number }[] = [];
  const locks: string[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(sinkDirectory);
  } catch {
    return { segments: [], locks };
  }
  for (const entry of entries) {
    const slot = join(sinkDirectory, entry);
    if (slot === ownSlot || !/^\d+$/.test(entry)) continue;
    const lock = join(slot, LOCK_FILE);
    try {
      if (!tryLock(lock)) continue;
      locks.push(lock);
      for (const segment of listSegments(slot)) {
        adopted.push({ ...segment, mtime: fs.statSync(segment.path).mtimeMs });
      }
    } catch {
      // Unreadable slot: left alone.
    }
  }
  adopted.sort((a, b) => a.mtime - b.mtime || a.path.localeCompare(b.path));
  return { segments: adopted, locks };
}

/** Creates the lock file, or takes over a stale one. */
function tryLock(lockPath: string): boolean {
  const content = JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(lockPath, content, { flag: "wx" });
      heldLocks.add(lockPath);
      return true;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ENOENT") {
        // Another process removed this empty slot while adopting it: recreate it.
        makeDirectory(dirname(lockPath));
        continue;
      }
      if (code !== "EEXIST") throw error;
    }
    if (!isStale(lockPath)) return false;
    // Rename first: of two processes taking over the same stale lock, only one rename succeeds.
    const aside = `${lockPath}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      fs.renameSync(lockPath, aside);
      fs.rmSync(aside, { force: true });
    } catch {
      return false;
    }
  }
  return false;
}

function isStale(lockPath: string): boolean {
  let owner: { pid?: unknown; host?: unknown };
  let mtime: number;
  try {
    mtime = fs.statSync(lockPath).mtimeMs;
    owner = JSON.parse(fs.readFileSync(lockPath, "utf8")) as { pid?: unknown; host?: unknown };
  } catch {
    // Unreadable or half-written: stale once its heartbeat would have been renewed.
    try {
      return Date.now() - fs.statSync(lockPath).mtimeMs > STALE_AFTER_MS;
    } catch {
      return false;
    }
  }
  if (Date.now() - mtime > STALE_AFTER_MS) return true;
  if (owner.host !== hostname() || typeof owner.pid !== "number") return false;
  if (owner.pid === process.pid) return !heldLocks.has(lockPath);
  return !isAlive(owner.pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === "EPERM";
  }
}
