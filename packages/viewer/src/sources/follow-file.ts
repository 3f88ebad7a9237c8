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
   * oldest first), so executions that straddle a rotation are whole. Default `true`.
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

const CHUNK_BYTES = 256 * 1024;
/** Bytes read per poll at most, so a huge file is read in slices and the server keeps answering meanwhile. */
const MAX_BYTES_PER_POLL = 8 * 1024 * 1024;
/** Rotated files looked for at most (JsonlFileSink keeps 5 by default). */
const MAX_HISTORY_FILES = 100;

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Follows a JSON Lines file like `tail -F`: reads what it holds, then every line appended later. Survives
 * rotation (the file renamed away and a new one created, as `JsonlFileSink` does, or deleted and recreated):
 * the old file is read to its end through the handle already open, then the new file from its start. A file
 * truncated in place is read again from its start. A missing file is waited for.
 */
export function followFile(path: string, sink: LineSink, options: FollowFileOptions = {}): FileFollower {
  validateOptions("followFile()", followFileOptionsSchema, options);
  const pollMs = options.pollMs ?? 100;
  let handle: FileHandle | undefined;
  let inode = -1;
  let position = 0;
  let splitter = newSplitter();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let lastState = "";

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

  /** Reads from the open file up to its end (or the per-poll budget); returns whether it reached the end. */
  async function drain(): Promise<boolean> {
    if (handle === undefined) return true;
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let budget = MAX_BYTES_PER_POLL;
    while (budget > 0 && !closed) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) return true;
      position += bytesRead;
      budget -= bytesRead;
      splitter.push(buffer.subarray(0, bytesRead));
    }
    return false;
  }

  /** Done with the current file (rotated away or truncated): a line it left unfinished is skipped. */
  async function release(): Promise<void> {
    if (splitter.end(false)) sink.skipped();
    splitter = newSplitter();
    const current = handle;
    handle = undefined;
    inode = -1;
    position = 0;
    await current?.close().catch(() => undefined);
  }

  async function openCurrent(): Promise<boolean> {
    try {
      const opened = await open(path, "r");
      handle = opened;
      inode = (await opened.stat()).ino;
      position = 0;
      report({ kind: "reading" });
      return true;
    } catch (error) {
      if (errorCode(error) === "ENOENT") {
        report({ kind: "waiting", reason: `${path} does not exist (yet)` });
        return false;
      }
      throw error;
    }
  }

  async function readHistory(): Promise<void> {
    const rotated: string[] = [];
    for (let index = 1; index <= MAX_HISTORY_FILES; index++) {
      const candidate = rotatedJsonlPath(path, index);
      const exists = await stat(candidate).then(
        () => true,
        () => false,
      );
      if (!exists) break;
      rotated.push(candidate);
    }
    for (const file of rotated.reverse()) {
      if (closed) return;
      const history = await open(file, "r").catch(() => undefined);
      if (history === undefined) continue;
      const reader = newSplitter();
      try {
        const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
        let offset = 0;
        for (;;) {
          const { bytesRead } = await history.read(buffer, 0, CHUNK_BYTES, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          reader.push(buffer.subarray(0, bytesRead));
        }
        if (reader.end(false)) sink.skipped();
      } finally {
        await history.close().catch(() => undefined);
      }
    }
  }

  async function poll(): Promise<void> {
    if (handle === undefined && !(await openCurrent())) return;
    const atEnd = await drain();
    if (!atEnd) return;
    let current: Awaited<ReturnType<typeof stat>> | undefined;
    try {
      current = await stat(path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
    }
    if (current === undefined) {
      // Rotated away with no new file yet (or deleted): what was written to the old one is read; wait.
      await release();
      report({ kind: "waiting", reason: `${path} was rotated or removed; waiting for it to reappear` });
      return;
    }
    if (current.ino !== inode) {
      // A new file took the name: the old one is read to its end (above), continue with the new one.
      await release();
      if (await openCurrent()) await drain();
      return;
    }
    if (current.size < position) {
      // Truncated in place: read it again from the start.
      await release();
      if (await openCurrent()) await drain();
    }
  }

  const loop = async () => {
    try {
      if (options.history ?? true) await readHistory();
      while (!closed) {
        try {
          await poll();
        } catch (error) {
          report({ kind: "failed", error: message(error) });
          await release();
        }
        if (closed) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, pollMs);
        });
      }
    } finally {
      await release();
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
