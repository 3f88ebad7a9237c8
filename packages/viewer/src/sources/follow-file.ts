import { constants } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { rotatedJsonlPath, v, validateOptions } from "@streamll/core/internal";
import { LineSplitter } from "./line-splitter";
import type { LineSink } from "./read-stream";

/** Options of {@link followFile}. */
export interface FollowFileOptions {
  /** How often the file is checked for new lines and rotation. Default 100 ms. */
  pollMs?: number;
  /**
   * First read the rotated files `JsonlFileSink` left beside the file (`events.3.jsonl` … `events.1.jsonl`,
   * oldest first), so executions that straddle a rotation are whole; when the file does not exist yet, the
   * rotated files found once it (or they) appear. Default `true`.
   */
  history?: boolean;
  /** Told when the file is missing, readable again, or failed. */
  onState?: (state: FollowState) => void;
}

const followFileOptionsSchema = v.object<FollowFileOptions>({
  pollMs: v.number({ min: 1 }).optional(),
  history: v.boolean().optional(),
  onState: v.fn<(state: FollowState) => void>().optional(),
});

/** What {@link followFile} reports about the file. */
export type FollowState =
  | { readonly kind: "reading" }
  | { readonly kind: "waiting"; readonly reason: string }
  | { readonly kind: "failed"; readonly error: string };

/** A running {@link followFile}. */
export interface FileFollower {
  /** Stops following and closes the file. */
  close(): Promise<void>;
}

/**
 * The follower without its timer: each `check()` reads what is new, follows rotation and truncation, and
 * resolves to whether it stopped early (its read budget was spent) with more to read. {@link followFile} calls
 * it on a timer; tests call it by hand.
 */
export interface FollowerCore {
  check(): Promise<boolean>;
  close(): Promise<void>;
}

const CHUNK_BYTES = 256 * 1024;
/** Bytes read per check at most, so a huge file is read in slices and the server keeps answering meanwhile. */
const MAX_BYTES_PER_CHECK = 8 * 1024 * 1024;
/** Rotated files looked for at most (JsonlFileSink keeps 5 by default). */
const MAX_HISTORY_FILES = 100;
/** Tries at finding the next file while a rotation renames files under our feet; then the next check retries. */
const MAX_ADVANCE_TRIES = 5;
/** Bytes of the file's start, and of what precedes the read offset, remembered to tell a rewrite from an append. */
const FINGERPRINT_BYTES = 256;

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why a path that is not a regular file cannot be followed, and what to do instead. */
export function notRegularFile(path: string, directory: boolean): string {
  return directory
    ? `${path} is a directory: give a JSONL file, or pipe the events into stdin with "-" (e.g. cat ${path}/*.jsonl | streamll-view -)`
    : `${path} is not a regular file and cannot be followed; pipe it into stdin with "-" (cat ${path} | streamll-view -)`;
}

interface FileId {
  readonly dev: number;
  readonly ino: number;
}

const sameFile = (a: FileId, b: FileId) => a.dev === b.dev && a.ino === b.ino;

async function statOrUndefined(file: string): Promise<FileId | undefined> {
  try {
    return await stat(file);
  } catch (error) {
    if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return undefined;
    throw error;
  }
}

/**
 * Follows a JSON Lines file like `tail -F`: reads what it holds, then every line appended later.
 *
 * Rotation (the file renamed away and a new one created, as `JsonlFileSink` does): the old file is read to its
 * end through the handle still open, then every file rotated since, oldest first (found by where the old file
 * went among `events.1.jsonl`, `events.2.jsonl`, …), then the new file from its start — so no line is lost or
 * read twice however many rotations happened between two checks, as long as the old file was not deleted
 * (pushed past `maxFiles`). A file deleted and recreated is read from its start.
 *
 * A file truncated or rewritten in place (same inode) is read again from its start: before each read the
 * follower compares the first bytes of the file and the bytes just before its read offset with what it read
 * there (256 bytes each). A missing file is waited for.
 */
export function followFile(path: string, sink: LineSink, options: FollowFileOptions = {}): FileFollower {
  validateOptions("followFile()", followFileOptionsSchema, options);
  const pollMs = options.pollMs ?? 100;
  const core = createFollowerCore(path, sink, options);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const loop = async () => {
    try {
      while (!closed) {
        // A check that spent its read budget continues right away; otherwise the next one waits pollMs.
        const more = await core.check();
        if (closed) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (more) setImmediate(resolve);
          else timer = setTimeout(resolve, pollMs);
        });
      }
    } finally {
      await core.close();
    }
  };
  const running = loop();

  return {
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      wake?.();
      await running.catch(() => undefined);
    },
  };
}

/** {@link followFile} without the timer. Internal: for followFile and tests. */
export function createFollowerCore(
  path: string,
  sink: LineSink,
  options: Pick<FollowFileOptions, "history" | "onState"> = {},
): FollowerCore {
  let handle: FileHandle | undefined;
  /** The open file's identity, held open so its inode cannot be reused while we look for where it went. */
  let current: FileId | undefined;
  /** The rotated index the open file was opened at (0: the file itself); it can only have moved up since. */
  let currentIndex = 0;
  let position = 0;
  let splitter = newSplitter();
  /** The file's first bytes as read (up to FINGERPRINT_BYTES), and the bytes read just before `position`. */
  let head = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  let started = false;
  let closed = false;
  let lastState = "";
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);

  function newSplitter(): LineSplitter {
    return new LineSplitter(
      (line) => sink.line(line),
      () => sink.skipped(),
    );
  }

  function report(state: FollowState): void {
    const key = JSON.stringify(state);
    if (key === lastState) return;
    lastState = key;
    options.onState?.(state);
  }

  /** Starts over at the open file's start (new file, or the same one truncated): a line left unfinished is dropped. */
  function restart(): void {
    if (splitter.end(false)) sink.skipped();
    splitter = newSplitter();
    position = 0;
    head = Buffer.alloc(0);
    tail = Buffer.alloc(0);
  }

  async function release(): Promise<void> {
    restart();
    const open = handle;
    handle = undefined;
    current = undefined;
    currentIndex = 0;
    await open?.close().catch(() => undefined);
  }

  /** Switches to `next` (already open, at rotated `index`, 0: the file itself); the previous file is closed only now. */
  async function switchTo(next: FileHandle, id: FileId, index: number): Promise<void> {
    await release();
    handle = next;
    current = id;
    currentIndex = index;
    report({ kind: "reading" });
  }

  /**
   * Opens `file`; undefined when it does not exist. Throws when it is not a regular file: a directory cannot be
   * read, and a FIFO or device cannot be read at an offset (each check would fail again). Opened non-blocking,
   * so a FIFO without a writer does not hold the open (and `close()`, and Ctrl-C) forever.
   */
  async function openFile(file: string): Promise<{ handle: FileHandle; id: FileId } | undefined> {
    let opened: FileHandle;
    try {
      opened = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    } catch (error) {
      if (errorCode(error) === "ENOENT") return undefined;
      throw error;
    }
    try {
      const id = await opened.stat();
      if (!id.isFile()) throw new Error(notRegularFile(file, id.isDirectory()));
      return { handle: opened, id };
    } catch (error) {
      await opened.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The rotated files beside `path` as `[index, identity]`, newest first. One missing index is stepped over:
   * JsonlFileSink renames `events.n` → `events.n+1` from the oldest down, so mid-rotation one slot is empty.
   */
  async function rotatedFiles(): Promise<Array<[number, FileId]>> {
    const found: Array<[number, FileId]> = [];
    let missing = 0;
    for (let index = 1; index <= MAX_HISTORY_FILES && missing < 2; index++) {
      const id = await statOrUndefined(rotatedJsonlPath(path, index));
      if (id === undefined) missing++;
      else {
        missing = 0;
        found.push([index, id]);
      }
    }
    return found;
  }

  /**
   * The first open: with history, the oldest rotated file (the chain of rotations then leads to the file itself),
   * else the file itself. The file itself is opened before the rotated files are looked for: a rotation in
   * between then shows it among them, so no file falls between the two.
   */
  async function openFirst(): Promise<boolean> {
    if (!(options.history ?? true)) return openActive();
    for (let tries = 0; tries < MAX_ADVANCE_TRIES; tries++) {
      const active = await openFile(path);
      const oldest = (await rotatedFiles()).at(-1);
      if (oldest === undefined) {
        if (active === undefined) break;
        await switchTo(active.handle, active.id, 0);
        return true;
      }
      const opened = await openFile(rotatedJsonlPath(path, oldest[0])).finally(() =>
        active?.handle.close().catch(() => undefined),
      );
      if (opened === undefined) continue; // deleted by a rotation meanwhile: look again
      await switchTo(opened.handle, opened.id, oldest[0]);
      return true;
    }
    report({ kind: "waiting", reason: `${path} does not exist (yet)` });
    return false;
  }

  async function openActive(): Promise<boolean> {
    const opened = await openFile(path);
    if (opened === undefined) {
      report({ kind: "waiting", reason: `${path} does not exist (yet)` });
      return false;
    }
    await switchTo(opened.handle, opened.id, 0);
    return true;
  }

  /**
   * Whether the open file was rewritten in place since it was read: shorter than the read offset, or its first
   * bytes or the bytes just before the offset differ from what was read there. Size and mtime alone cannot tell
   * (an append changes both, and a rewrite may be larger); comparing the content read would cost a re-read.
   * Two small reads catch what matters: a JSON line starts with its event's unique id, so a rewritten file's
   * first bytes differ; the bytes before the offset catch a rewrite that kept the start. A rewrite that keeps
   * both, or that lands between this check and the read after it, is taken as an append.
   */
  async function rewritten(open: FileHandle): Promise<boolean> {
    if (position === 0) return false;
    const info = await open.stat();
    if (info.size < position) return true;
    const probe = Buffer.allocUnsafe(head.length + tail.length);
    const { bytesRead: headRead } = await open.read(probe, 0, head.length, 0);
    const { bytesRead: tailRead } = await open.read(probe, head.length, tail.length, position - tail.length);
    if (
      headRead !== head.length ||
      tailRead !== tail.length ||
      !probe.subarray(0, head.length).equals(head) ||
      !probe.subarray(head.length).equals(tail)
    ) {
      return true;
    }
    return false;
  }

  /** Remembers the bytes just read at `at` for the rewrite check. */
  function remember(chunk: Buffer, at: number): void {
    if (at < FINGERPRINT_BYTES) {
      head = Buffer.concat([head, chunk.subarray(0, FINGERPRINT_BYTES - at)]);
    }
    tail =
      chunk.length >= FINGERPRINT_BYTES
        ? Buffer.from(chunk.subarray(chunk.length - FINGERPRINT_BYTES))
        : Buffer.concat([tail, chunk]).subarray(-FINGERPRINT_BYTES);
  }

  /** Reads from the open file up to its end or until `budget` runs out; returns the budget left (-1: not at end). */
  async function drain(open: FileHandle, budget: number): Promise<number> {
    let left = budget;
    while (!closed) {
      if (left <= 0) return -1;
      const { bytesRead } = await open.read(buffer, 0, Math.min(CHUNK_BYTES, left), position);
      if (bytesRead === 0) return left;
      const chunk = buffer.subarray(0, bytesRead);
      remember(chunk, position);
      position += bytesRead;
      left -= bytesRead;
      splitter.push(chunk);
    }
    return left;
  }

  /**
   * Where the rotated file `id` is now: its index, looked for upwards from `from` (a file only moves up, one
   * index per rotation). One missing index is stepped over: JsonlFileSink renames `events.n` → `events.n+1`
   * from the oldest down, so mid-rotation one slot is empty.
   */
  async function findRotated(id: FileId, from: number): Promise<number | undefined> {
    let missing = 0;
    for (let index = Math.max(1, from); index <= MAX_HISTORY_FILES && missing < 2; index++) {
      const file = await statOrUndefined(rotatedJsonlPath(path, index));
      if (file === undefined) missing++;
      else if (sameFile(file, id)) return index;
      else missing = 0;
    }
    return undefined;
  }

  /** The nearest rotated file below `index` (newer than the one there), looked for downwards; undefined: none. */
  async function newerThan(index: number): Promise<[number, FileId] | undefined> {
    for (let below = index - 1; below >= 1; below--) {
      const file = await statOrUndefined(rotatedJsonlPath(path, below));
      if (file !== undefined) return [below, file];
    }
    return undefined;
  }

  /**
   * After the open file lost its name: opens the file that came after it and switches to it. That is the nearest
   * newer rotated file when the open one is found among the rotated files (`events.k` → `events.k-1`, or the
   * file itself after `events.1`), else (deleted, or moved where rotation does not put files) the file itself.
   * Returns false when there is nothing to switch to yet (the file itself is missing mid-rotation).
   */
  async function advance(id: FileId): Promise<boolean> {
    for (let tries = 0; tries < MAX_ADVANCE_TRIES && !closed; tries++) {
      const index = await findRotated(id, currentIndex);
      if (index === undefined) {
        // Still linked somewhere: a rotation may have moved it past the scan; look again. Deleted (pushed past
        // maxFiles, or removed): the files between it and the file itself cannot be told apart from older ones.
        const links = (await handle?.stat())?.nlink ?? 0;
        if (links > 0 && tries < MAX_ADVANCE_TRIES - 1) continue;
        await release();
        return openActive();
      }
      const newer = await newerThan(index);
      const nextPath = newer === undefined ? path : rotatedJsonlPath(path, newer[0]);
      const next = await openFile(nextPath);
      if (next === undefined) {
        if (nextPath !== path) continue; // renamed meanwhile: look again
        report({ kind: "waiting", reason: `${path} was rotated or removed; waiting for it to reappear` });
        return false;
      }
      // Looked at again after the open, the open file last: if it is still at `index`, no rotation renamed
      // anything below it since it was found there (JsonlFileSink renames from the oldest down, the file itself
      // last), so what was opened is the file that came right after it.
      const newerAgain = await newerThan(index);
      const still = await statOrUndefined(rotatedJsonlPath(path, index));
      const consistent =
        still !== undefined &&
        sameFile(still, id) &&
        !sameFile(next.id, id) &&
        (newer === undefined
          ? newerAgain === undefined
          : newerAgain?.[0] === newer[0] && sameFile(newerAgain[1], next.id));
      if (!consistent) {
        await next.handle.close().catch(() => undefined);
        continue;
      }
      await switchTo(next.handle, next.id, newer?.[0] ?? 0);
      return true;
    }
    return false;
  }

  async function check(): Promise<boolean> {
    if (closed) return false;
    if (!started) {
      // Until something was opened, rotated files that appear are history too.
      if (!(await openFirst())) return false;
      started = true;
    } else if (handle === undefined && !(await openActive())) {
      return false;
    }
    let budget = MAX_BYTES_PER_CHECK;
    for (;;) {
      const open = handle;
      const id = current;
      if (open === undefined || id === undefined || closed) return false;
      if (await rewritten(open)) restart();
      budget = await drain(open, budget);
      if (budget < 0) return true;
      const named = await statOrUndefined(path);
      if (named !== undefined && sameFile(named, id)) return false;
      // The file lost its name (rotated, or removed). Writes that landed after the read above and before the
      // rename are read first; JsonlFileSink closes a file before renaming it, so this reaches its end.
      budget = await drain(open, budget);
      if (budget < 0) return true;
      if (!(await advance(id))) return false;
    }
  }

  return {
    async check() {
      try {
        return await check();
      } catch (error) {
        report({ kind: "failed", error: message(error) });
        await release();
        return false;
      }
    },
    async close() {
      closed = true;
      await release();
    },
  };
}
