import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import type { EncodedEvent, SendContext, Sink } from "../delivery/sink";
import { SinkError } from "../errors";
import { makeDirectory } from "../files/make-directory";
import { v, validateOptions } from "../options/schema";

/** Size-based rotation for {@link JsonlFileSink}. */
export interface JsonlRotateOptions {
  /**
   * Rotate before a batch when the file is not empty and appending the batch would make it larger than this.
   * A single batch larger than `maxBytes` is written whole into a fresh file.
   */
  maxBytes: number;
  /**
   * Rotated files kept besides the active one: `events.1.jsonl` (newest) … `events.<maxFiles>.jsonl` (oldest);
   * older files are deleted. `0` keeps none. Default 5.
   */
  maxFiles?: number;
}

/** Options for {@link JsonlFileSink}. */
export interface JsonlFileSinkOptions {
  /** File to append to, e.g. `./.streamll/events.jsonl`. Opened on the first batch, never truncated. */
  path: string;
  /** Rotate by size. Default: no rotation. */
  rotate?: JsonlRotateOptions;
  /**
   * Flush each batch to disk (`fsync`) before acknowledging it, so acknowledged events survive a power loss.
   * Costs a disk round trip per batch. Default `false` (the OS writes back on its own schedule).
   */
  fsync?: boolean;
  /** Create missing parent directories. Default `true`. */
  mkdir?: boolean;
  /** Sink name shown in metrics. Default `jsonl:<file name>`. */
  name?: string;
}

const DEFAULT_MAX_FILES = 5;

/** `JsonlFileSinkOptions` as the constructor checks them. */
export const jsonlFileSinkOptionsSchema = v.object<JsonlFileSinkOptions>({
  path: v.string({ min: 1, pattern: /\S/, expected: "a non-empty file path" }),
  rotate: v
    .object<JsonlRotateOptions>({
      maxBytes: v.integer({ min: 1 }),
      maxFiles: v.integer({ min: 0 }).optional(),
    })
    .optional(),
  fsync: v.boolean().optional(),
  mkdir: v.boolean().optional(),
  name: v.string({ min: 1 }).optional(),
});
const NEWLINE = 0x0a;
/**
 * The write buffer a sink keeps between batches is at most this large; a bigger batch gets a buffer of its own.
 * A default batch (512 events of about 0.5 KB) needs under 1 MiB.
 */
const MAX_KEPT_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Write errors that retrying the same batch cannot fix: the path is unusable until someone changes the file
 * system or the configuration. The batch is dropped (counted as `rejected`) and the next batch tries again,
 * reopening the file. Everything else (ENOSPC, EIO, EMFILE, EAGAIN, EBUSY, …) is retried.
 */
const NON_RETRIABLE_CODES = new Set([
  "EACCES",
  "EPERM",
  "EISDIR",
  "ENOTDIR",
  "EROFS",
  "ENAMETOOLONG",
  "ELOOP",
  "EINVAL",
]);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isMissing(error: unknown): boolean {
  return errorCode(error) === "ENOENT";
}

/**
 * Appends events to a file as JSON Lines: one event per line, exactly the wire JSON every other sink sends.
 * Each batch is one append write, and batches are written one at a time, so lines of concurrent batches never
 * interleave. The file is opened in append mode and never truncated; restarting a process continues the file.
 *
 * Errors are thrown as `SinkError`: `EACCES`, `EPERM`, `EISDIR`, `ENOTDIR`, `EROFS`, `ENAMETOOLONG`, `ELOOP`
 * and `EINVAL` as non-retriable (the batch is dropped and counted), all others (e.g. `ENOSPC`, `EIO`) as
 * retriable. After a failed write the file is reopened for the next attempt. Whenever the file is opened and
 * does not end with a newline (a write failed part-way, or a previous process died mid-write), the next batch
 * starts on a new line, so only that one truncated line is unreadable.
 */
export class JsonlFileSink implements Sink {
  readonly name: string;
  /** The active file's path. */
  readonly path: string;
  private readonly rotate: { maxBytes: number; maxFiles: number } | undefined;
  private readonly fsync: boolean;
  private readonly mkdir: boolean;
  private handle: FileHandle | undefined;
  private size = 0;
  private partialLine = false;
  private closed = false;
  /** Batches run one after another: the tail of that chain. */
  private tail: Promise<unknown> = Promise.resolve();
  /**
   * Reused for every batch (batches are written one at a time): allocating a fresh buffer per batch, as
   * `Buffer.from(text)` does, cost more than encoding the text into it.
   */
  private buffer: Buffer = Buffer.alloc(0);

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: JsonlFileSinkOptions) {
    validateOptions("JsonlFileSink", jsonlFileSinkOptionsSchema, options);
    const rotate = options.rotate;
    this.path = options.path;
    this.name = options.name ?? `jsonl:${basename(options.path)}`;
    this.rotate =
      rotate === undefined
        ? undefined
        : { maxBytes: rotate.maxBytes, maxFiles: rotate.maxFiles ?? DEFAULT_MAX_FILES };
    this.fsync = options.fsync ?? false;
    this.mkdir = options.mkdir ?? true;
  }

  /**
   * The path of rotated file `index` (1 = newest): `events.jsonl` → `events.1.jsonl`; a path without an
   * extension gets the number appended (`events` → `events.1`).
   */
  rotatedPath(index: number): string {
    return rotatedJsonlPath(this.path, index);
  }

  send(batch: readonly EncodedEvent[], context?: SendContext): Promise<void> {
    if (this.closed) {
      return Promise.reject(
        new SinkError(`sink ${this.name} is closed`, { retriable: false, code: "SINK_CLOSED" }),
      );
    }
    const run = this.tail.then(() => this.write(batch, context?.signal));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Waits for batches in progress, then closes the file. Later `send` calls fail with `SINK_CLOSED`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.release();
  }

  private async write(batch: readonly EncodedEvent[], signal: AbortSignal | undefined): Promise<void> {
    if (batch.length === 0) return;
    // The pipeline gave up on this attempt while it waited its turn and will resend it: writing it now would
    // duplicate every line.
    if (signal?.aborted) {
      throw new SinkError(`sink ${this.name}: send aborted before writing`, {
        retriable: true,
        code: "SEND_TIMEOUT",
      });
    }
    const lines = this.encode(batch);
    try {
      let active = await this.ensureOpen();
      const body = lines.subarray(1);
      if (this.rotate !== undefined && this.size > 0 && this.size + body.length > this.rotate.maxBytes) {
        active = await this.rotateFiles();
      }
      // The first byte is kept free for the newline that ends a line a failed write left unfinished.
      const buffer = this.partialLine ? lines : body;
      let written = 0;
      while (written < buffer.length) {
        const { bytesWritten } = await active.write(buffer, written, buffer.length - written);
        if (bytesWritten <= 0) throw new Error("write made no progress");
        written += bytesWritten;
        this.size += bytesWritten;
      }
      this.partialLine = false;
      if (this.fsync) await active.sync();
    } catch (error) {
      // Reopening re-reads the size and the last byte, and recovers from a file that was moved or deleted.
      await this.release();
      throw this.toSinkError(error);
    }
  }

  /**
   * The batch as JSON Lines in the reused buffer, after one byte that holds a newline (for a file that ends
   * mid-line). UTF-8 takes at most 3 bytes per UTF-16 code unit, so the capacity is known before encoding.
   */
  private encode(batch: readonly EncodedEvent[]): Buffer {
    let capacity = 1;
    for (const event of batch) capacity += event.json.length * 3 + 1;
    let buffer = this.buffer;
    if (buffer.length < capacity) {
      buffer = Buffer.allocUnsafe(
        capacity <= MAX_KEPT_BUFFER_BYTES ? Math.max(capacity, 64 * 1024) : capacity,
      );
      if (buffer.length <= MAX_KEPT_BUFFER_BYTES) this.buffer = buffer;
    }
    buffer[0] = NEWLINE;
    let offset = 1;
    for (const event of batch) {
      offset += buffer.write(event.json, offset, "utf8");
      buffer[offset++] = NEWLINE;
    }
    return buffer.subarray(0, offset);
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    // One level at a time (see makeDirectory): a recursive mkdir never returns for some paths (/proc/sys) and
    // calls a read-only file system ENOENT.
    if (this.mkdir) makeDirectory(dirname(this.path));
    // "a+" rather than "a": the last byte is read to tell whether the file ends mid-line.
    const handle = await open(this.path, "a+");
    try {
      this.size = (await handle.stat()).size;
      this.partialLine = false;
      if (this.size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, this.size - 1);
        this.partialLine = last[0] !== NEWLINE;
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.handle = handle;
    return handle;
  }

  private async rotateFiles(): Promise<FileHandle> {
    const rotate = this.rotate;
    await this.release();
    if (rotate === undefined) return this.ensureOpen();
    if (rotate.maxFiles === 0) {
      await unlink(this.path).catch(ignoreMissing);
    } else {
      await unlink(this.rotatedPath(rotate.maxFiles)).catch(ignoreMissing);
      for (let i = rotate.maxFiles - 1; i >= 1; i--) {
        await rename(this.rotatedPath(i), this.rotatedPath(i + 1)).catch(ignoreMissing);
      }
      await rename(this.path, this.rotatedPath(1)).catch(ignoreMissing);
    }
    return this.ensureOpen();
  }

  private async release(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle !== undefined) await handle.close().catch(() => undefined);
  }

  private toSinkError(error: unknown): SinkError {
    if (error instanceof SinkError) return error;
    const code = errorCode(error);
    const retriable = code === undefined || !NON_RETRIABLE_CODES.has(code);
    const reason = error instanceof Error ? error.message : String(error);
    return new SinkError(`sink ${this.name}: cannot write ${this.path}: ${reason}`, {
      retriable,
      cause: error,
    });
  }
}

/**
 * Where {@link JsonlFileSink} moves rotated file `index` (1 = newest) of `path`: `events.jsonl` →
 * `events.1.jsonl`; a path without an extension gets the number appended (`events` → `events.1`). Readers that
 * follow a rotating file use it to find the older files.
 */
export function rotatedJsonlPath(path: string, index: number): string {
  const ext = extname(path);
  const base = basename(path, ext);
  return join(dirname(path), `${base}.${index}${ext}`);
}

function ignoreMissing(error: unknown): void {
  if (!isMissing(error)) throw error;
}
