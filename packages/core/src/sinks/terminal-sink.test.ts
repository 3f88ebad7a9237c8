import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DeliveryPipeline } from "../delivery/delivery-pipeline";
import type { EncodedEvent, SendContext } from "../delivery/sink";
import { SinkError } from "../errors";
import { encodeEvent } from "../events/encode-event";
import type { StreamllEvent } from "../events/event-schema";
import { TerminalSink, type TerminalSinkOptions } from "./terminal-sink";

// biome-ignore lint/suspicious/noControlCharactersInRegex: asserting on ANSI escapes
const ANSI = /\u001b\[[0-9;]*m/;

class Collector extends Writable {
  chunks: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk.toString("utf8"));
    callback();
  }
  get text(): string {
    return this.chunks.join("");
  }
}

let seq = 0;
const T0 = Date.parse("2026-03-04T05:06:07.000Z");

function ev(overrides: Partial<StreamllEvent> & { offsetMs?: number } = {}): EncodedEvent {
  seq += 1;
  const { offsetMs = 0, ...rest } = overrides;
  const event: StreamllEvent = {
    schema_version: "1.0",
    event_id: `event${String(seq).padStart(6, "0")}`,
    execution_id: "abcdef123456",
    span_id: "root0000span",
    parent_span_id: null,
    timestamp: new Date(T0 + offsetMs).toISOString(),
    module_name: "RAG",
    method_name: "forward",
    event_type: "start",
    operation: null,
    data: {},
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
    ...rest,
  };
  return encodeEvent(event);
}

function ctx(signal: AbortSignal = new AbortController().signal): SendContext {
  return { signal, attempt: 1 };
}

function sinkWith(options: TerminalSinkOptions = {}): { sink: TerminalSink; out: Collector } {
  const out = new Collector();
  const sink = new TerminalSink({ stream: out, colors: false, timestamps: false, ...options });
  return { sink, out };
}

const child = {
  span_id: "child000span",
  parent_span_id: "root0000span",
  method_name: "forward",
  operation: "retrieval",
};

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("TerminalSink", () => {
  it("renders a nested run with start, end, custom, tokens and durations", async () => {
    const { sink, out } = sinkWith();
    await sink.send(
      [
        ev({ event_type: "start", data: { inputs: { question: "Why?" } } }),
        ev({ ...child, event_type: "start", offsetMs: 1 }),
        ev({ ...child, event_type: "retrieved", data: { count: 2 }, offsetMs: 5 }),
        ev({ ...child, event_type: "end", offsetMs: 13 }),
        ev({ event_type: "token", data: { field: "answer", token: "Be" }, offsetMs: 20 }),
        ev({ event_type: "token", data: { field: "answer", token: "cause" }, offsetMs: 21 }),
      ],
      ctx(),
    );
    await sink.send(
      [
        ev({ event_type: "token", data: { field: "answer", token: "." }, offsetMs: 22 }),
        ev({ event_type: "end", data: { duration_ms: 1500, outputs: { answer: "Because." } }, offsetMs: 30 }),
      ],
      ctx(),
    );
    expect(out.text.split("\n")).toEqual([
      'abcdef ▶ RAG.forward {"question":"Why?"}',
      "abcdef   ▶ retrieval (RAG.forward)",
      // Under a span whose start is on screen, custom and token lines need no label.
      'abcdef     ◆ retrieved {"count":2}',
      "abcdef   ■ retrieval (RAG.forward) 12ms",
      "abcdef   • answer: Because.",
      'abcdef ■ RAG.forward 1.50s {"answer":"Because."}',
      "",
    ]);
  });

  it("writes each batch with a single write", async () => {
    const { sink, out } = sinkWith();
    await sink.send([ev(), ev({ event_type: "end" }), ev({ event_type: "note" })], ctx());
    expect(out.chunks).toHaveLength(1);
  });

  it("starts a new token line when the field or span changes", async () => {
    const { sink, out } = sinkWith();
    await sink.send(
      [
        ev({ event_type: "token", data: { field: "reasoning", token: "a" } }),
        ev({ event_type: "token", data: { field: "reasoning", token: "b" } }),
        ev({ event_type: "token", data: { field: "answer", token: "c" } }),
        ev({ ...child, event_type: "token", data: { field: "answer", token: "d" } }),
      ],
      ctx(),
    );
    await sink.close();
    expect(out.text).toBe(
      [
        "abcdef   • RAG.forward reasoning: ab",
        "abcdef   • RAG.forward answer: c",
        "abcdef   • retrieval (RAG.forward) answer: d",
        "",
      ].join("\n"),
    );
  });

  it("shows the error type and message", async () => {
    const { sink, out } = sinkWith();
    await sink.send(
      [
        ev(),
        ev({
          event_type: "error",
          data: { error_type: "TypeError", error_message: "bad question" },
          offsetMs: 4,
        }),
      ],
      ctx(),
    );
    expect(out.text).toContain("abcdef ✗ RAG.forward 4ms TypeError: bad question\n");
  });

  it("accepts the error as a nested object too", async () => {
    const { sink, out } = sinkWith();
    await sink.send(
      [ev({ event_type: "error", data: { error: { name: "RangeError", message: "boom" } } })],
      ctx(),
    );
    expect(out.text).toBe("abcdef ✗ RAG.forward RangeError: boom\n");
  });

  it("prints local HH:MM:SS.mmm timestamps when enabled", async () => {
    const { sink, out } = sinkWith({ timestamps: true });
    await sink.send([ev({ offsetMs: 42 })], ctx());
    const d = new Date(T0 + 42);
    const hh = String(d.getHours()).padStart(2, "0");
    expect(out.text.startsWith(`${hh}:${String(d.getMinutes()).padStart(2, "0")}:07.042 abcdef ▶`)).toBe(
      true,
    );
  });

  it("hides data when showData is false and truncates long data", async () => {
    const hidden = sinkWith({ showData: false });
    await hidden.sink.send([ev({ event_type: "note", data: { a: 1 } })], ctx());
    expect(hidden.out.text).toBe("abcdef   ◆ note RAG.forward\n");

    const cut = sinkWith({ maxDataChars: 10 });
    await cut.sink.send([ev({ event_type: "note", data: { text: "x".repeat(50) } })], ctx());
    expect(cut.out.text).toBe('abcdef   ◆ note RAG.forward {"text":"…\n');
  });

  it("never throws on odd events and strips control characters", async () => {
    const { sink, out } = sinkWith();
    // Sinks are public: a hand-made batch may hold JSON no encoder would produce.
    const odd = [
      { event_type: "token", data: { token: 42 } },
      { event_type: "error", data: null },
      { data: { big: "10" }, tags: 5 },
      null,
      { event_type: "note\u001b[2J", module_name: "M\u001b[31m", data: { text: "a\nb\u0007" } },
    ].map((event) => ({ json: JSON.stringify(event) })) as unknown as EncodedEvent[];
    await expect(sink.send(odd, ctx())).resolves.toBeUndefined();
    expect(out.text).not.toMatch(ANSI);
    expect(out.text).not.toContain("\u0007");
    expect(out.text).toContain("42");
    expect(out.text).toContain("✗ ? Error: (no message)");
    expect(out.text).toContain("? unrenderable event");
    // JSON escaping already neutralises line breaks and control characters inside data.
    expect(out.text).toContain('note[2J M[31m {"text":"a\\nb\\u0007"}');
  });

  it("colours only when enabled", async () => {
    const plain = sinkWith({ colors: false });
    await plain.sink.send([ev(), ev({ event_type: "error" })], ctx());
    expect(plain.out.text).not.toMatch(ANSI);

    const coloured = sinkWith({ colors: true });
    await coloured.sink.send([ev(), ev({ event_type: "error" })], ctx());
    expect(coloured.out.text).toMatch(ANSI);
  });

  it("detects colour support from the environment and the stream", async () => {
    const tty = Object.assign(new Collector(), { isTTY: true });
    const render = async (stream: Collector): Promise<string> => {
      const before = stream.text.length;
      await new TerminalSink({ stream, timestamps: false }).send([ev()], ctx());
      return stream.text.slice(before);
    };
    vi.stubEnv("FORCE_COLOR", undefined);
    vi.stubEnv("NO_COLOR", undefined);
    vi.stubEnv("TERM", "xterm");
    expect(await render(tty)).toMatch(ANSI);
    expect(await render(new Collector())).not.toMatch(ANSI);
    vi.stubEnv("NO_COLOR", "1");
    expect(await render(tty)).not.toMatch(ANSI);
    vi.stubEnv("FORCE_COLOR", "1");
    expect(await render(new Collector())).toMatch(ANSI);
    vi.stubEnv("FORCE_COLOR", "0");
    expect(await render(tty)).not.toMatch(ANSI);
  });

  it("forgets the oldest spans beyond its bound", async () => {
    const { sink, out } = sinkWith();
    const batch = [ev({ span_id: "first000span" })];
    for (let i = 0; i < 10_000; i++) batch.push(ev({ span_id: `other${String(i).padStart(7, "0")}` }));
    batch.push(ev({ span_id: "late0000span", parent_span_id: "first000span" }));
    await sink.send(batch, ctx());
    // The parent was evicted, so the child is shown at the root level instead of growing memory without bound.
    expect(out.text.endsWith("abcdef ▶ RAG.forward\n")).toBe(true);
  });

  it("waits for 'drain' when write() returns false (backpressure)", async () => {
    let release: (() => void) | undefined;
    const slow = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        release = () => callback();
      },
    });
    const sink = new TerminalSink({ stream: slow, colors: false });
    let done = false;
    const sending = sink.send([ev()], ctx()).then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    release?.();
    await sending;
    expect(done).toBe(true);
  });

  it("stops waiting when the send is aborted, without failing the batch", async () => {
    const stuck = new Writable({ write() {} });
    const sink = new TerminalSink({ stream: stuck, colors: false });
    const controller = new AbortController();
    const sending = sink.send([ev()], ctx(controller.signal));
    controller.abort();
    await expect(sending).resolves.toBeUndefined();
  });

  it("close() does not wait on a stream that never calls back", async () => {
    const stuck = new Writable({ write() {} });
    const sink = new TerminalSink({ stream: stuck, colors: false });
    const controller = new AbortController();
    const sending = sink.send([ev({ event_type: "token", data: { token: "x" } })], ctx(controller.signal));
    controller.abort();
    await sending;
    await expect(sink.close()).resolves.toBeUndefined();
  });

  it("is done when a minimal stream's write() returns, without waiting for a callback it never calls", async () => {
    const written: string[] = [];
    const stream = {
      write(text: string): boolean {
        written.push(text);
        return true;
      },
    };
    const sink = new TerminalSink({ stream, colors: false, timestamps: false });
    await expect(sink.send([ev({ event_type: "note" })], ctx())).resolves.toBeUndefined();
    expect(written).toEqual(["abcdef   ◆ note RAG.forward\n"]);
  });

  it("delivers through the pipeline to a minimal stream once, with no retry", async () => {
    const written: string[] = [];
    const stream = {
      write(text: string): boolean {
        written.push(text);
        return true;
      },
    };
    const pipeline = new DeliveryPipeline(new TerminalSink({ stream, colors: false, timestamps: false }), {
      flushIntervalMs: 1,
    });
    for (let i = 0; i < 3; i++) pipeline.enqueue(ev({ event_type: "note", data: { i } }));
    expect(await pipeline.flush(5_000)).toBe(true);
    await pipeline.shutdown(5_000);
    const metrics = pipeline.getMetrics();
    expect(metrics.delivered).toBe(3);
    expect(metrics.retried).toBe(0);
    expect(written.join("").split("\n").filter(Boolean)).toHaveLength(3);
  });

  it("does not wait for 'drain' on a minimal stream that returns false but cannot emit events", async () => {
    const written: string[] = [];
    const stream = {
      write(text: string): boolean {
        written.push(text);
        return false;
      },
    };
    const sink = new TerminalSink({ stream, colors: false, timestamps: false });
    await expect(sink.send([ev()], ctx())).resolves.toBeUndefined();
    expect(written).toHaveLength(1);
  });

  it("does not print a batch again when its send is retried after the stream held it (no 'drain')", async () => {
    const written: string[] = [];
    let release: (() => void) | undefined;
    const stuck = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _encoding, callback) {
        written.push(chunk.toString("utf8"));
        release = () => callback();
      },
    });
    const sink = new TerminalSink({ stream: stuck, colors: false, timestamps: false });
    const first = ev({ event_type: "note" });
    const controller = new AbortController();
    const sending = sink.send([first], ctx(controller.signal));
    controller.abort();
    await sending;
    // The pipeline's send timeout fails the batch and retries it, joined by a new event.
    const retry = new AbortController();
    const retrying = sink.send([first, ev({ event_type: "later" })], { signal: retry.signal, attempt: 2 });
    retry.abort();
    await retrying;
    // The stream finally takes its buffered text: each line reaches it once.
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual(["abcdef   ◆ note RAG.forward\n", "abcdef   ◆ later RAG.forward\n"]);
  });

  it("fails the batch when a minimal stream reports an error from within write()", async () => {
    const stream = {
      write(_text: string, callback?: (error?: Error | null) => void): boolean {
        callback?.(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
        return true;
      },
    };
    const error = await new TerminalSink({ stream }).send([ev()], ctx()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as SinkError).retriable).toBe(false);
  });

  it("does not count a batch as printed when the stream refused it with an error", async () => {
    let calls = 0;
    const written: string[] = [];
    const flaky = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        calls++;
        if (calls === 1) {
          callback(Object.assign(new Error("write EAGAIN"), { code: "EAGAIN" }));
          return;
        }
        written.push(chunk.toString("utf8"));
        callback();
      },
    }).on("error", () => undefined);
    const sink = new TerminalSink({ stream: flaky, colors: false, timestamps: false });
    const event = ev({ event_type: "note" });
    const error = await sink.send([event], ctx()).catch((e: unknown) => e);
    expect((error as SinkError).retriable).toBe(true);
    // The errored Node stream is destroyed, so the retry fails for good instead of counting as printed.
    const retry = await sink
      .send([event], { signal: new AbortController().signal, attempt: 2 })
      .catch((e: unknown) => e);
    expect(retry).toBeInstanceOf(SinkError);
    expect((retry as SinkError).retriable).toBe(false);
    expect(written).toEqual([]);
  });

  it("reports write errors as SinkError, EPIPE as non-retriable", async () => {
    const failing = (code: string): Writable =>
      new Writable({
        write(_chunk, _encoding, callback) {
          callback(Object.assign(new Error(`write ${code}`), { code }));
        },
      }).on("error", () => undefined);
    const eio = await new TerminalSink({ stream: failing("EIO") })
      .send([ev()], ctx())
      .catch((e: unknown) => e);
    expect(eio).toBeInstanceOf(SinkError);
    expect((eio as SinkError).retriable).toBe(true);
    const epipe = await new TerminalSink({ stream: failing("EPIPE") })
      .send([ev()], ctx())
      .catch((e: unknown) => e);
    expect((epipe as SinkError).retriable).toBe(false);
  });

  it("close() ends an open token line, leaves the stream open and refuses later batches", async () => {
    const { sink, out } = sinkWith();
    await sink.send([ev({ event_type: "token", data: { token: "hi" } })], ctx());
    await sink.close();
    expect(out.text).toBe("abcdef   • RAG.forward output: hi\n");
    expect(out.writable).toBe(true);
    const error = await sink.send([ev()], ctx()).catch((e: unknown) => e);
    expect((error as SinkError).code).toBe("SINK_CLOSED");
  });
});
