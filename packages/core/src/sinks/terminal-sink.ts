import type { EncodedEvent, SendContext, Sink } from "../delivery/sink";
import { SinkError } from "../errors";
import type { StreamllEvent } from "../events/event-schema";
import { v, validateOptions } from "../options/schema";

/**
 * What {@link TerminalSink} writes to: any Node writable stream, or any object with `write()`. A write is done
 * once `write()` returns; when it returns `false` and the object can emit `'drain'` (it has `on()` and
 * `removeListener()`), the sink waits for `'drain'` before taking the next batch. The callback is optional:
 * the sink never waits for it.
 */
export interface TerminalOutput {
  write(text: string, callback?: (error?: Error | null) => void): unknown;
}

/** Options for {@link TerminalSink}. */
export interface TerminalSinkOptions {
  /**
   * Where to write. Default `process.stdout`: the live view is the program's primary output while developing,
   * and it keeps stderr free for the application's own warnings. The sink never closes or ends this stream.
   */
  stream?: TerminalOutput;
  /**
   * ANSI colours. Default: on when `FORCE_COLOR` is set to anything but `0`/`false`; otherwise off when
   * `NO_COLOR` is set (non-empty) or `TERM=dumb`; otherwise on when the stream is a TTY.
   */
  colors?: boolean;
  /** Show inputs, outputs and custom event data as compact JSON. Default `true`. */
  showData?: boolean;
  /** Data longer than this many characters is cut with `…`. Default 160. */
  maxDataChars?: number;
  /** Prefix each line with the event's local time as `HH:MM:SS.mmm`. Default `true`. */
  timestamps?: boolean;
  /** Sink name shown in metrics. Default `terminal`. */
  name?: string;
}

/** `TerminalSinkOptions` as the constructor checks them. */
export const terminalSinkOptionsSchema = v.object<TerminalSinkOptions>({
  stream: v
    .custom<TerminalOutput>(
      "a writable stream (an object with write())",
      (value) => typeof (value as { write?: unknown } | null)?.write === "function",
    )
    .optional(),
  colors: v.boolean().optional(),
  showData: v.boolean().optional(),
  maxDataChars: v.integer({ min: 1 }).optional(),
  timestamps: v.boolean().optional(),
  name: v.string({ min: 1 }).optional(),
});

/** How many spans the sink remembers for indentation and durations; the oldest are forgotten first. */
const MAX_TRACKED_SPANS = 10_000;
const MAX_LABEL_CHARS = 200;
const DEFAULT_MAX_DATA_CHARS = 160;

const SGR = {
  reset: "\u001b[0m",
  bold: "\u001b[1m",
  dim: "\u001b[2m",
  red: "\u001b[31m",
  green: "\u001b[32m",
  yellow: "\u001b[33m",
  blue: "\u001b[34m",
  magenta: "\u001b[35m",
  cyan: "\u001b[36m",
} as const;
type Style = keyof typeof SGR;

/** Execution ids get a stable colour each so interleaved executions can be told apart at a glance. */
const EXECUTION_PALETTE: readonly Style[] = ["cyan", "magenta", "blue", "yellow", "green"];

interface SpanInfo {
  readonly depth: number;
  /** Epoch ms of the span's start event, NaN when unknown. */
  readonly startedAt: number;
}

interface OpenTokenLine {
  readonly spanId: string;
  readonly field: string;
}

/** Control characters (including ESC, so event data cannot drive the terminal) and line breaks. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

function clean(text: string): string {
  return text.replace(/\r?\n/g, "↵").replace(/\t/g, " ").replace(CONTROL_CHARS, "");
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  // Avoid cutting a surrogate pair in half.
  let end = Math.max(0, max - 1);
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function asString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function formatTime(epochMs: number): string {
  if (!Number.isFinite(epochMs)) return "??:??:??.???";
  const d = new Date(epochMs);
  return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`;
}

function formatDuration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${Math.round((ms % 60_000) / 1000)}s`;
}

function hash(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return Math.abs(h);
}

function envColors(env: NodeJS.ProcessEnv, stream: TerminalOutput): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force.toLowerCase() !== "false";
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return (stream as { isTTY?: unknown }).isTTY === true;
}

/**
 * The live developer view: one line per span start (`▶`), end (`■`, with duration), error (`✗`, type and
 * message) and custom event (`◆`, with its name), indented by span depth; streamed tokens (`•`) of one field
 * are written onto a single line as they arrive. Each line shows the local time, the first 6 characters of the
 * execution id and the module and method.
 *
 * Rendering never throws: missing or oddly typed fields are shown as `?`. Control characters in event data are
 * stripped so events cannot move the cursor or change colours.
 */
export class TerminalSink implements Sink {
  readonly name: string;
  private readonly stream: TerminalOutput;
  private readonly colors: boolean;
  private readonly showData: boolean;
  private readonly maxDataChars: number;
  private readonly timestamps: boolean;
  private readonly spans = new Map<string, SpanInfo>();
  private openTokens: OpenTokenLine | undefined;
  private closed = false;
  /** Events whose text the stream has accepted (weakly held: the pipeline forgets them once settled). */
  private readonly handedOver = new WeakSet<EncodedEvent>();

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: TerminalSinkOptions = {}) {
    validateOptions("TerminalSink", terminalSinkOptionsSchema, options);
    this.name = options.name ?? "terminal";
    this.stream = options.stream ?? process.stdout;
    this.colors = options.colors ?? envColors(process.env, this.stream);
    this.showData = options.showData ?? true;
    this.maxDataChars = options.maxDataChars ?? DEFAULT_MAX_DATA_CHARS;
    this.timestamps = options.timestamps ?? true;
  }

  async send(batch: readonly EncodedEvent[], context?: SendContext): Promise<void> {
    if (this.closed) {
      throw new SinkError(`sink ${this.name} is closed`, { retriable: false, code: "SINK_CLOSED" });
    }
    // A retry after a send timeout brings back events whose text the stream already holds: printing them
    // again would show the same lines twice.
    const fresh = batch.filter((encoded) => !this.handedOver.has(encoded));
    let text = "";
    // Parsed from the wire JSON: the encoded event holds only routing fields, and the terminal shows what a
    // broker would receive.
    for (const encoded of fresh) text += this.render(encoded.json);
    if (text !== "") await this.write(text, fresh, context?.signal);
  }

  /** Ends an open token line. The stream itself is left open: the sink does not own it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.openTokens !== undefined) {
      this.openTokens = undefined;
      // Not awaited: a stream that never calls back must not hold up shutdown.
      try {
        this.stream.write("\n");
      } catch {
        // The stream is gone; there is no line left to end.
      }
    }
    this.spans.clear();
  }

  /** Renders one event to text (possibly without a trailing newline, for an open token line). */
  private render(json: string): string {
    try {
      return this.renderUnsafe(JSON.parse(json) as StreamllEvent);
    } catch {
      // Rendering is best effort: an odd event must never break delivery or the host.
      const prefix = this.closeTokenLine();
      return `${prefix}${this.paint("dim", "? unrenderable event")}\n`;
    }
  }

  private renderUnsafe(event: StreamllEvent): string {
    const record = event as unknown as Record<string, unknown>;
    const type = asString(record.event_type) ?? "?";
    const spanId = asString(record.span_id) ?? "";
    const parentId = asString(record.parent_span_id);
    const executionId = asString(record.execution_id) ?? "";
    const data = asRecord(record.data) ?? {};
    const at = Date.parse(asString(record.timestamp) ?? "");

    if (type === "token") {
      const field = clean(asString(data.field) ?? asString(data.signature_field) ?? "output");
      const tokenValue = data.token;
      const token = clean(typeof tokenValue === "string" ? tokenValue : JSON.stringify(tokenValue ?? ""));
      if (
        this.openTokens !== undefined &&
        this.openTokens.spanId === spanId &&
        this.openTokens.field === field
      ) {
        return token;
      }
      const prefix = this.closeTokenLine();
      this.openTokens = { spanId, field };
      const depth = this.depthOf(spanId, parentId) + 1;
      const head = this.linePrefix(at, executionId, depth);
      return `${prefix}${head}${this.paint("magenta", "•")} ${this.context(record, spanId, "", " ")}${field}: ${token}`;
    }

    const prefix = this.closeTokenLine();
    switch (type) {
      case "start": {
        const depth = this.depthOf(spanId, parentId);
        this.remember(spanId, { depth, startedAt: at });
        const details = this.dataText(
          data.inputs !== undefined ? data.inputs : this.without(data, ["inputs"]),
        );
        return `${prefix}${this.linePrefix(at, executionId, depth)}${this.paint("cyan", "▶")} ${this.label(record, "bold")}${details}\n`;
      }
      case "end": {
        const span = this.spans.get(spanId);
        const depth = span?.depth ?? this.depthOf(spanId, parentId);
        this.spans.delete(spanId);
        const duration = this.duration(data, span, at);
        const durationText = duration === undefined ? "" : ` ${this.paint("dim", formatDuration(duration))}`;
        const details = this.dataText(data.outputs !== undefined ? data.outputs : undefined);
        return `${prefix}${this.linePrefix(at, executionId, depth)}${this.paint("green", "■")} ${this.label(record, undefined)}${durationText}${details}\n`;
      }
      case "error": {
        const span = this.spans.get(spanId);
        const depth = span?.depth ?? this.depthOf(spanId, parentId);
        this.spans.delete(spanId);
        const { errorType, message } = this.errorParts(data);
        const duration = this.duration(data, span, at);
        const durationText = duration === undefined ? "" : ` ${this.paint("dim", formatDuration(duration))}`;
        const text = `${errorType}: ${message}`;
        return `${prefix}${this.linePrefix(at, executionId, depth)}${this.paint("red", "✗")} ${this.label(record, "bold")}${durationText} ${this.paint("red", truncate(text, this.maxDataChars + MAX_LABEL_CHARS))}\n`;
      }
      default: {
        const depth = this.depthOf(spanId, parentId) + 1;
        const name = truncate(clean(type), MAX_LABEL_CHARS);
        const details = this.dataText(Object.keys(data).length > 0 ? data : undefined);
        return `${prefix}${this.linePrefix(at, executionId, depth)}${this.paint("yellow", "◆")} ${this.paint("bold", name)}${this.context(record, spanId, " ", "")}${details}\n`;
      }
    }
  }

  private closeTokenLine(): string {
    if (this.openTokens === undefined) return "";
    this.openTokens = undefined;
    return "\n";
  }

  /**
   * What the span is: its operation (for `trace()` steps) with the module and method in parentheses, or just
   * `module.method`. `style` paints the main part; the parenthesised part is always dim.
   */
  private label(record: Record<string, unknown>, style: Style | undefined): string {
    const module = asString(record.module_name) ?? "?";
    const method = asString(record.method_name);
    const operation = asString(record.operation);
    const qualified = truncate(clean(method ? `${module}.${method}` : module), MAX_LABEL_CHARS);
    if (!operation || operation === method) return style ? this.paint(style, qualified) : qualified;
    const main = truncate(clean(operation), MAX_LABEL_CHARS);
    return `${style ? this.paint(style, main) : main} ${this.paint("dim", `(${qualified})`)}`;
  }

  /**
   * The span label for token and custom lines, only when the span's start line is not on screen (its start
   * was not seen, or it was forgotten); under a known span the indentation already says where it belongs.
   */
  private context(record: Record<string, unknown>, spanId: string, before: string, after: string): string {
    if (this.spans.has(spanId)) return "";
    return `${before}${this.paint("dim", this.label(record, undefined))}${after}`;
  }

  private linePrefix(at: number, executionId: string, depth: number): string {
    const time = this.timestamps ? `${this.paint("dim", formatTime(at))} ` : "";
    const shortId = clean(executionId).slice(0, 6).padEnd(6, " ");
    const palette = EXECUTION_PALETTE[hash(executionId) % EXECUTION_PALETTE.length] ?? "cyan";
    return `${time}${this.paint(palette, shortId)} ${"  ".repeat(Math.min(depth, 32))}`;
  }

  private depthOf(spanId: string, parentId: string | undefined): number {
    const own = this.spans.get(spanId);
    if (own !== undefined) return own.depth;
    if (parentId === undefined) return 0;
    const parent = this.spans.get(parentId);
    return parent === undefined ? 0 : parent.depth + 1;
  }

  private remember(spanId: string, info: SpanInfo): void {
    if (spanId === "") return;
    this.spans.delete(spanId);
    this.spans.set(spanId, info);
    if (this.spans.size > MAX_TRACKED_SPANS) {
      const oldest = this.spans.keys().next();
      if (!oldest.done) this.spans.delete(oldest.value);
    }
  }

  private duration(
    data: Record<string, unknown>,
    span: SpanInfo | undefined,
    at: number,
  ): number | undefined {
    const reported = data.duration_ms;
    if (typeof reported === "number" && Number.isFinite(reported) && reported >= 0) return reported;
    if (
      span !== undefined &&
      Number.isFinite(span.startedAt) &&
      Number.isFinite(at) &&
      at >= span.startedAt
    ) {
      return at - span.startedAt;
    }
    return undefined;
  }

  private errorParts(data: Record<string, unknown>): { errorType: string; message: string } {
    const nested = asRecord(data.error);
    const errorType =
      asString(data.error_type) ??
      asString(nested?.type) ??
      asString(nested?.name) ??
      asString(data.type) ??
      "Error";
    const message =
      asString(data.error_message) ??
      asString(nested?.message) ??
      asString(data.message) ??
      asString(data.error) ??
      "(no message)";
    return { errorType: clean(errorType), message: clean(message) };
  }

  private without(
    data: Record<string, unknown>,
    keys: readonly string[],
  ): Record<string, unknown> | undefined {
    const rest: Record<string, unknown> = {};
    let any = false;
    for (const [key, value] of Object.entries(data)) {
      if (keys.includes(key)) continue;
      rest[key] = value;
      any = true;
    }
    return any ? rest : undefined;
  }

  private dataText(value: unknown): string {
    if (!this.showData || value === undefined) return "";
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (json === undefined) return "";
    return ` ${this.paint("dim", truncate(clean(json), this.maxDataChars))}`;
  }

  private paint(style: Style, text: string): string {
    return this.colors ? `${SGR[style]}${text}${SGR.reset}` : text;
  }

  /**
   * Hands the text to the stream. The write is done when `write()` returns: the callback is optional for an
   * object with `write()` and may never come, and waiting past the pipeline's send timeout would fail the batch
   * and print it again on the retry. When `write()` returns `false` (backpressure) and the stream can emit
   * `'drain'`, the next batch waits for it. A write error reported before the write is done fails the batch;
   * one reported later cannot take back text already handed over (a broken Node stream fails the next write).
   */
  private async write(
    text: string,
    events: readonly EncodedEvent[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let pending = true;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const callback = (error?: Error | null): void => {
      if (!pending || !error) return;
      failure ??= error;
      wake?.();
    };
    let accepted: unknown;
    try {
      accepted = this.stream.write(text, callback);
    } catch (error) {
      throw writeFailure(error instanceof Error ? error : new Error(String(error)));
    }
    for (const encoded of events) this.handedOver.add(encoded);
    try {
      if (failure === undefined && accepted === false && canDrain(this.stream)) {
        await waitForDrain(this.stream, signal, (done) => {
          wake = done;
        });
      }
    } finally {
      pending = false;
    }
    if (failure !== undefined) {
      // The stream refused the text, so a retry may print it.
      for (const encoded of events) this.handedOver.delete(encoded);
      throw writeFailure(failure);
    }
  }
}

/** A stream that emits `'drain'` after `write()` returned `false`, as Node's writable streams do. */
interface DrainingOutput extends TerminalOutput {
  on(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

function canDrain(stream: TerminalOutput): stream is DrainingOutput {
  const candidate = stream as Partial<DrainingOutput>;
  return typeof candidate.on === "function" && typeof candidate.removeListener === "function";
}

/**
 * Resolves on `'drain'`, on `'close'` (a destroyed stream never drains), on `abort` (the pipeline stopped
 * waiting; the text stays in the stream's buffer) or when the write callback reports an error (`onWake`).
 */
function waitForDrain(
  stream: DrainingOutput,
  signal: AbortSignal | undefined,
  onWake: (done: () => void) => void,
): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      try {
        stream.removeListener("drain", done);
        stream.removeListener("close", done);
      } catch {
        // Listeners of an odd stream that cannot be removed only hold a resolved function.
      }
      signal?.removeEventListener("abort", done);
      resolve();
    };
    onWake(done);
    if (signal?.aborted) {
      done();
      return;
    }
    signal?.addEventListener("abort", done, { once: true });
    try {
      stream.on("drain", done);
      stream.on("close", done);
    } catch {
      // An object that cannot take listeners cannot signal backpressure either: do not wait.
      done();
    }
  });
}

function writeFailure(error: Error): SinkError {
  // A closed pipe will not reopen; other write errors may be transient.
  const code = (error as { code?: unknown }).code;
  const retriable =
    code !== "EPIPE" && code !== "ERR_STREAM_DESTROYED" && code !== "ERR_STREAM_WRITE_AFTER_END";
  return new SinkError(`terminal write failed: ${error.message}`, { retriable, cause: error });
}
