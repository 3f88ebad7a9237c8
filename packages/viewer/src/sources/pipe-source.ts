import { constants, openSync, type Stats, statSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable } from "node:stream";
import { notRegularFile } from "./follow-file";

/**
 * How a source path is read: `follow` (a regular file, or nothing there yet: followed like `tail -F`), `stream`
 * (a FIFO, or a pipe such as `<(cmd)`: read once, in order, like stdin). Throws, with what to do instead, for
 * anything else (a directory, a device, a socket): none can be followed, and a device read could block a
 * worker thread past Ctrl-C.
 */
export function sourceMode(path: string): "follow" | "stream" {
  let info: Stats;
  try {
    info = statSync(path);
  } catch {
    // Missing (waited for), or unreadable: the follower reports why, as it does when that happens later.
    return "follow";
  }
  if (info.isFile()) return "follow";
  if (info.isFIFO()) return "stream";
  throw new Error(notRegularFile(path, info.isDirectory()));
}

/**
 * Opens a FIFO or pipe for reading as a stream, until its writers close it. Opened non-blocking and read
 * through a pipe handle: a blocking open would wait for a writer on a worker thread that nothing can cancel,
 * keeping the process alive after Ctrl-C; this one waits for data on the event loop, and `destroy()` ends it.
 */
export function openPipe(path: string): Readable {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  return new Socket({ fd, readable: true, writable: false });
}
