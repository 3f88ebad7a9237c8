import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  configure,
  flush,
  getMetrics,
  JsonlFileSink,
  type SinkMetrics,
  shutdown,
  TerminalSink,
} from "@streamll/core";
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

function describeMetrics(m: SinkMetrics): string {
  const drops = Object.entries(m.droppedByReason)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(", ");
  return (
    `${m.sink}: emitted ${m.emitted}, delivered ${m.delivered}, dropped ${m.dropped}` +
    `${drops === "" ? "" : ` (${drops})`}, pending ${m.pending}, batches ${m.batchesSent}, ` +
    `retried ${m.retried}, circuit ${m.breakerState}`
  );
}

async function countLines(path: string): Promise<number> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line !== "").length;
}

async function main(): Promise<void> {
  const path = resolve(process.cwd(), ".streamll", "demo-events.jsonl");
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };

  configure({
    serviceName: "streamll-demo",
    sinks: [
      // A short flush interval so tokens appear as they are generated.
      { sink: new TerminalSink(), delivery: { flushIntervalMs: 10 } },
      new JsonlFileSink({ path }),
    ],
  });

  log("streamll demo: an offline RAG pipeline, instrumented (no network, no API keys)");
  await runDemo(new RAGPipeline(), DEMO_QUESTIONS, log);

  await flush();
  const metrics = getMetrics();
  await shutdown();

  const file = metrics.find((m) => m.sink.startsWith("jsonl:"));
  log("");
  log(
    `events written this run: ${file?.delivered ?? 0} → ${path} (${await countLines(path)} lines in the file)`,
  );
  log("delivery accounting (emitted = delivered + dropped + pending):");
  for (const m of metrics) log(`  ${describeMetrics(m)}`);
}

// Run only as the program entry point, so tests can import runDemo without starting the demo.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
