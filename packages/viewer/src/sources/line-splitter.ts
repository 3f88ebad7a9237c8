import { StringDecoder } from "node:string_decoder";

/** Longest line taken (the largest event `decodeEvent` accepts by default); longer ones are skipped whole. */
export const MAX_LINE_CHARS = 1_048_576;

/**
 * Cuts a byte stream into lines. A line longer than {@link MAX_LINE_CHARS} is skipped up to its newline and
 * reported through `onOversized`, so one runaway line cannot hold the whole stream in memory.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOversized: () => void,
  ) {}

  push(chunk: Buffer | string): void {
    const text = typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    let start = 0;
    for (;;) {
      const newline = text.indexOf("\n", start);
      if (newline === -1) break;
      const piece = text.slice(start, newline);
      start = newline + 1;
      if (this.skipping) {
        this.skipping = false;
        this.partial = "";
        continue;
      }
      const line = this.partial === "" ? piece : this.partial + piece;
      this.partial = "";
      if (line.length > MAX_LINE_CHARS) this.onOversized();
      else if (line.trim() !== "") this.onLine(line);
    }
    if (this.skipping) return;
    this.partial += text.slice(start);
    if (this.partial.length > MAX_LINE_CHARS) {
      this.partial = "";
      this.skipping = true;
      this.onOversized();
    }
  }

  /**
   * Ends the stream: a last line without a newline is taken when `takeRest` (stdin that ended), else dropped
   * (a file cut off mid-write) and returned as whether something was dropped.
   */
  end(takeRest: boolean): boolean {
    const rest = this.partial + this.decoder.end();
    this.partial = "";
    const skipped = this.skipping;
    this.skipping = false;
    if (skipped || rest.trim() === "") return false;
    if (takeRest) {
      this.onLine(rest);
      return false;
    }
    return true;
  }
}
