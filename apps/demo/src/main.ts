import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  configure,
  flush,
  formatSinkMetrics,
  getMetrics,
  JsonlFileSink,
  shutdown,
  TerminalSink,
} from "@streamll/core";
import { ViewerSink } from "@streamll/viewer";
import { summarize } from "./ax-summarizer";
import { RAGPipeline } from "./rag-pipeline";

/** Questions the demo asks; the last (blank) one fails on purpose to show an error event. */
export const DEMO_QUESTIONS: readonly string[] = [
  "How are events delivered when a sink keeps failing?",
  "Which sinks can receive streamed tokens?",
  "   ",
];

/** What one demo run did. */
export interface DemoRunResult {
  readonly answers: readonly string[];
  readonly errors: readonly string[];
}

/**
 * Asks each question in turn. Failures are caught and reported, as an application would; streamll has
 * already recorded them as error events.
 */
export async function runDemo(
  pipeline: RAGPipeline,
  questions: readonly string[],
  log: (line: string) => void = () => undefined,
): Promise<DemoRunResult> {
  const answers: string[] = [];
  const errors: string[] = [];
  for (const question of questions) {
    log(`\nQ: ${JSON.stringify(question)}`);
    let caught: string | undefined;
    try {
      const { answer } = await pipeline.forward({ question });
      answers.push(answer);
    } catch (error) {
      caught = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      errors.push(caught);
    }
    // Let the live view catch up before the demo prints its own lines.
    await flush();
    if (caught !== undefined) log(`(the demo caught ${caught})`);
  }
  return { answers, errors };
}

async function countLines(path: string): Promise<number> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line !== "").length;
}

/** Resolves on Ctrl-C (or SIGTERM). */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const path = resolve(process.cwd(), ".streamll", "demo-events.jsonl");
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const unknown = argv.filter((arg) => arg !== "--view");
  if (unknown.length > 0) {
    process.stderr.write(`streamll demo: unknown argument ${unknown[0]} (the only option is --view)\n`);
    process.exitCode = 2;
    return;
  }
  // --view: the run also goes to the live viewer, which stays up after the run until Ctrl-C.
  const viewer = argv.includes("--view")
    ? new ViewerSink({
        keepAlive: true,
        onUrl: (url) =>
          log(`live viewer: ${url}  (open it in a browser; it stays up after the run, Ctrl-C ends)`),
      })
    : undefined;
  if (viewer !== undefined) await viewer.ready;

  configure({
    serviceName: "streamll-demo",
    sinks: [
      // A short flush interval so tokens appear as they are generated.
      { sink: new TerminalSink(), delivery: { flushIntervalMs: 10 } },
      new JsonlFileSink({ path }),
      ...(viewer === undefined ? [] : [{ sink: viewer, delivery: { flushIntervalMs: 10 } }]),
    ],
  });

  log("streamll demo: an offline RAG pipeline, instrumented (no network, no API keys)");
  const { answers } = await runDemo(new RAGPipeline(), DEMO_QUESTIONS, log);

  // An Ax program on Ax's offline AI service, instrumented with @streamll/ax: streamed tokens, a retry with
  // Ax's reason, and the token usage of the call.
  log("\nAx program: summarize the first answer (AxMockAIService, offline)");
  await summarize(answers[0] ?? "");
  await flush();

  await flush();
  const metrics = getMetrics();
  if (viewer !== undefined) {
    log(`\nthe run is in the viewer: ${viewer.url ?? ""}\npress Ctrl-C to end`);
    await interrupted();
  }
  await shutdown();

  const file = metrics.find((m) => m.sink.startsWith("jsonl:"));
  log("");
  log(
    `events written this run: ${file?.delivered ?? 0} → ${path} (${await countLines(path)} lines in the file)`,
  );
  log("delivery accounting (emitted = delivered + dropped + pending):");
  for (const m of metrics) log(`  ${formatSinkMetrics(m)}`);
}

// Run only as the program entry point, so tests can import runDemo without starting the demo.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main(process.argv.slice(2));
}
