import type { Readable } from "node:stream";
import { LineSplitter } from "./line-splitter";

/** Callbacks of a source: each line, and each line that could not be taken (too long, cut off). */
export interface LineSink {
  line(text: string): void;
  skipped(): void;
}

/**
 * Reads JSON lines from a stream (stdin) until it ends. Resolves when it ended; rejects when it failed. A last
 * line without a newline is taken.
 */
export async function readLines(stream: Readable, sink: LineSink): Promise<void> {
  const splitter = new LineSplitter(
    (line) => sink.line(line),
    () => sink.skipped(),
  );
  for await (const chunk of stream) splitter.push(chunk as Buffer | string);
  splitter.end(true);
}
