import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  configure,
  decodeEvent,
  flush,
  getMetrics,
  JsonlFileSink,
  MemorySink,
  type StreamllEvent,
  shutdown,
  streamllEventSchema,
  TerminalSink,
} from "@streamll/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CORPUS, search } from "./corpus";
import { FakeLanguageModel } from "./fake-model";
import { DEMO_QUESTIONS, runDemo } from "./main";
import { EmptyQuestionError, RAGPipeline } from "./rag-pipeline";

let sink: MemorySink;
const fastModel = (): FakeLanguageModel => new FakeLanguageModel({ tokenDelayMs: 0 });

beforeEach(() => {
  sink = new MemorySink();
  configure({ sinks: [sink] });
});

afterEach(async () => {
  await shutdown();
});

/** `module.method` or the operation, plus the event type: the shape of the run at a glance. */
function outline(events: readonly StreamllEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const where = e.operation ?? `${e.module_name}.${e.method_name}`;
    const line = `${where} ${e.event_type}`;
    // Collapse the token run into one entry; the tokens themselves are checked separately.
    if (e.event_type === "token" && out.at(-1) === line) continue;
    out.push(line);
  }
  return out;
}

describe("demo RAG pipeline", () => {
  it("emits start, a traced retrieval with its custom event, streamed tokens and end", async () => {
    const question = "How are events delivered when a sink keeps failing?";
    const result = await new RAGPipeline({ model: fastModel() }).forward({ question });
    await flush();
    const events = sink.events;

    expect(outline(events)).toEqual([
      "RAGPipeline.forward start",
      "retrieval start",
      "retrieval retrieved",
      "retrieval end",
      "FakeLanguageModel.generate start",
      "FakeLanguageModel.generate token",
      "FakeLanguageModel.generate end",
      "RAGPipeline.forward end",
    ]);
    for (const event of events) expect(streamllEventSchema.safeParse(event).success).toBe(true);

    const [start] = events;
    expect(start?.data.inputs).toEqual({ question });
    expect(new Set(events.map((e) => e.execution_id)).size).toBe(1);

    const retrievalStart = events.find((e) => e.operation === "retrieval" && e.event_type === "start");
    expect(retrievalStart?.parent_span_id).toBe(start?.span_id);
    const retrieved = events.find((e) => e.event_type === "retrieved");
    const expectedIds = search(CORPUS, question, 3).map((p) => p.id);
    expect(retrieved?.data).toEqual({ count: expectedIds.length, ids: expectedIds });
    expect(retrieved?.span_id).toBe(retrievalStart?.span_id);
    expect(result.sources).toEqual(expectedIds);

    const tokens = events.filter((e) => e.event_type === "token");
    expect(tokens.length).toBeGreaterThan(5);
    expect(tokens.map((t) => t.data.token).join("")).toBe(result.answer);
    expect(tokens.map((t) => t.data.token_index)).toEqual(tokens.map((_, i) => i));
    expect(tokens.every((t) => t.data.field === "answer")).toBe(true);
    const generateStart = events.find((e) => e.method_name === "generate" && e.event_type === "start");
    expect(generateStart?.parent_span_id).toBe(start?.span_id);

    const end = events.at(-1);
    expect(end?.data.outputs).toEqual({ answer: result.answer, sources: expectedIds });
    expect(typeof end?.data.duration_ms).toBe("number");
  });

  it("records a blank question as an error event and rethrows the original error", async () => {
    const error = await new RAGPipeline({ model: fastModel() })
      .forward({ question: "  " })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmptyQuestionError);
    await flush();
    expect(outline(sink.events)).toEqual(["RAGPipeline.forward start", "RAGPipeline.forward error"]);
    expect(sink.events[1]?.data).toMatchObject({
      error_type: "EmptyQuestionError",
      error_message: "question must not be empty",
    });
  });

  it("runDemo answers the demo questions and catches the failing one", async () => {
    const result = await runDemo(new RAGPipeline({ model: fastModel() }), DEMO_QUESTIONS);
    expect(result.answers).toHaveLength(DEMO_QUESTIONS.length - 1);
    expect(result.errors).toEqual(["EmptyQuestionError: question must not be empty"]);
    const executions = new Set(sink.events.map((e) => e.execution_id));
    expect(executions.size).toBe(DEMO_QUESTIONS.length);
    expect(sink.events.filter((e) => e.event_type === "error")).toHaveLength(1);
  });

  it("shows the run live in the terminal and writes the same events to the JSONL file", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "streamll-demo-")), "events.jsonl");
    const screen = new PassThrough();
    let shown = "";
    screen.on("data", (chunk: Buffer) => {
      shown += chunk.toString("utf8");
    });
    const memory = new MemorySink();
    configure({
      sinks: [new TerminalSink({ stream: screen, colors: false }), new JsonlFileSink({ path }), memory],
    });
    await runDemo(new RAGPipeline({ model: fastModel() }), DEMO_QUESTIONS);
    expect(await flush(5_000)).toBe(true);
    for (const m of getMetrics()) {
      expect(m).toMatchObject({ emitted: memory.events.length, delivered: memory.events.length, dropped: 0 });
    }
    await shutdown();

    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    const fromFile = lines.map((line) => {
      const decoded = decodeEvent(line);
      if (!decoded.ok) throw decoded.error;
      return decoded.event;
    });
    expect(fromFile).toEqual(memory.events);
    expect(shown).toContain("▶ RAGPipeline.forward");
    expect(shown).toContain("▶ retrieval");
    expect(shown).toContain("• answer: ");
    expect(shown).toContain("■ RAGPipeline.forward");
    expect(shown).toContain("✗ RAGPipeline.forward");
    expect(shown).toContain("EmptyQuestionError: question must not be empty");
  });

  it("the fake model is deterministic", async () => {
    const model = fastModel();
    const passages = search(CORPUS, "tokens", 2);
    const collect = async (): Promise<string> => {
      let text = "";
      for await (const token of model.generate("tokens", passages)) text += token;
      return text;
    };
    const first = await collect();
    expect(await collect()).toBe(first);
    expect(first).toBe(model.answerFor("tokens", passages));
  });
});

describe("demo --view", () => {
  const built = existsSync(fileURLToPath(new URL("../dist/main.js", import.meta.url)));

  it.skipIf(!built && process.env.CI !== "true")(
    "opens the run in the live viewer, which stays up until Ctrl-C",
    async () => {
      const cwd = mkdtempSync(join(tmpdir(), "streamll-demo-view-"));
      const child = spawn(
        process.execPath,
        [fileURLToPath(new URL("../dist/main.js", import.meta.url)), "--view"],
        {
          cwd,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while (!stdout.includes("press Ctrl-C to end") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const url = /live viewer: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(stdout)?.[1];
      expect(url).toBeDefined();
      // The whole run is held: the stream's first status counts its four executions (three questions, then
      // the Ax program, whose events reach the sinks through the built packages, as in an application).
      const response = await fetch(url!.replace("/?", "/events?"));
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!/event: status\ndata: .*"executions":4/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      expect(text).toContain('"module_name":"RAGPipeline"');
      expect(text).toContain('"module_name":"Summarizes an answer in one sentence"');
      expect(text).toContain('"event_type":"llm_call"');
      await reader.cancel();
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    },
  );
});
