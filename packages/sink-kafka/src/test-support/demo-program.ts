import { configure, emit, flush, getMetrics, instrument, MemorySink, shutdown, trace } from "@streamll/core";
import type { KafkaSink } from "../kafka-sink";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What the demo traffic produced, for assertions. */
export interface DemoTraffic {
  readonly executionIds: string[];
  readonly failedExecutionId: string;
  readonly memory: MemorySink;
}

/**
 * Runs a small RAG-style program, instrumented with streamll and streaming to `sink`: 4 calls with a slow
 * retriever version, 4 with a fast one, then one call whose LLM stream fails midway. Each generator call
 * reports token usage with `emit("llm_usage", ...)`.
 */
export async function runDemoTraffic(sink: KafkaSink): Promise<DemoTraffic> {
  const memory = new MemorySink();
  configure({
    sinks: [sink, memory],
    serviceName: "qa-api",
    delivery: { flushIntervalMs: 20 },
    logger: { warn: () => undefined, error: () => undefined },
  });
  const slowRetriever = instrument(
    async function retrieve(question: string) {
      await sleep(30);
      return [`doc about ${question}`, "doc-2"];
    },
    { name: "Retriever", tags: { version: "retriever-v1" } },
  );
  const fastRetriever = instrument(
    async function retrieve(question: string) {
      await sleep(1);
      return [`cached doc about ${question}`];
    },
    { name: "Retriever", tags: { version: "retriever-v2" } },
  );
  const generate = instrument(
    async function* generate(question: string, model: string, fail: boolean) {
      emit("llm_usage", { model, input_tokens: 1_000 + question.length, output_tokens: 3 });
      yield "Paris";
      yield " is";
      if (fail) throw new Error("upstream LLM connection reset");
      yield " the capital.";
    },
    { name: "Generator", streamField: "answer" },
  );
  const answer = instrument(
    async function answer(question: string, options: { fast: boolean; model: string; fail?: boolean }) {
      const docs = await (options.fast ? fastRetriever : slowRetriever)(question);
      let text = "";
      for await (const token of generate(question, options.model, options.fail ?? false)) text += token;
      await trace("post-process", async () => {
        emit("checkpoint", { documents: docs.length, chars: text.length });
      });
      return text;
    },
    { name: "QAPipeline" },
  );

  for (let i = 0; i < 4; i++) await answer(`capital of France? #${i}`, { fast: false, model: "gpt-4o-mini" });
  for (let i = 0; i < 4; i++)
    await answer(`capital of France? #${i + 4}`, { fast: true, model: "gpt-4o-mini" });
  await answer("capital of France? (gpt-4o)", { fast: true, model: "gpt-4o" }).catch(() => undefined);
  await answer("will fail", { fast: true, model: "gpt-4o", fail: true }).catch(() => undefined);
  if (!(await flush(20_000))) throw new Error(`demo traffic not delivered: ${JSON.stringify(getMetrics())}`);
  const executionIds = [...new Set(memory.events.map((event) => event.execution_id))];
  const failed = memory.events.find((event) => event.event_type === "error" && event.parent_span_id === null);
  if (failed === undefined) throw new Error("the demo's failing call emitted no top-level error event");
  return { executionIds, failedExecutionId: failed.execution_id, memory };
}

/** Ends the demo's streamll runtime (flushes, closes the sinks). */
export async function endDemoTraffic(): Promise<void> {
  await shutdown(10_000);
}
