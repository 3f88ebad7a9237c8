import {
  configure,
  decodeEvent,
  type EncodedEvent,
  emit,
  flush,
  getCurrentSpan,
  getMetrics,
  instrument,
  type StreamllEvent,
  shutdown,
  trace,
} from "@streamll/core";
import type { KafkaSink } from "../kafka-sink";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `data.usage` as an LLM integration records it on a module call's `end` event. */
export interface ModelUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  model: string;
  provider: string;
}

/** Usage per span id, filled in by {@link LanguageModel} and attached to its `end` event. */
const usageBySpan = new Map<string, ModelUsage>();

function addUsage(spanId: string, usage: ModelUsage): void {
  const sum = usageBySpan.get(spanId);
  usageBySpan.set(
    spanId,
    sum === undefined
      ? usage
      : {
          ...sum,
          prompt_tokens: sum.prompt_tokens + usage.prompt_tokens,
          completion_tokens: sum.completion_tokens + usage.completion_tokens,
          total_tokens: sum.total_tokens + usage.total_tokens,
        },
  );
}

class Retriever {
  async forward(question: string): Promise<string[]> {
    await sleep(2);
    return [`passage about ${question}`, "passage 2", "passage 3"];
  }
}

/**
 * A deterministic model streaming Ax-style chunks (`{ version, delta: { reasoning?, answer? } }`); version 0 is
 * abandoned halfway, as Ax does when it retries a stream. Records its token usage for the call's `end` event,
 * as `@streamll/ax` does for Ax programs.
 */
class LanguageModel {
  constructor(
    private readonly model: string,
    private readonly words: readonly string[],
  ) {}

  async *generate(
    prompt: string,
    options: { failAfter?: number } = {},
  ): AsyncGenerator<{ version: number; delta: { reasoning?: string; answer?: string } }> {
    const span = getCurrentSpan();
    const usage: ModelUsage = {
      prompt_tokens: prompt.length,
      completion_tokens: this.words.length,
      total_tokens: prompt.length + this.words.length,
      model: this.model,
      provider: "mock",
    };
    if (span !== undefined) addUsage(span.spanId, usage);
    // An abandoned first attempt: a `retry` event makes consumers drop what it streamed.
    yield { version: 0, delta: { reasoning: "Hmm" } };
    yield { version: 1, delta: { reasoning: "The capital" } };
    for (const [index, word] of this.words.entries()) {
      if (options.failAfter === index) throw new Error(`${this.model} stream reset`);
      await sleep(1);
      yield { version: 1, delta: { answer: index === 0 ? word : ` ${word}` } };
    }
  }
}

class Verifier {
  async forward(answer: string): Promise<boolean> {
    if (!answer.endsWith("."))
      throw Object.assign(new RangeError("answer is not a sentence"), { code: "E_FORMAT" });
    return true;
  }
}

/** The known execution: a RAG pipeline with a retrieval, a traced re-ranking, two model calls, a failing check. */
class RAGPipeline {
  readonly retriever = new Retriever();
  readonly draft = new LanguageModel("gpt-4o-mini", ["Paris", "is", "the", "capital"]);
  readonly refine = new LanguageModel("gpt-4o", ["Paris."]);
  readonly verifier = new Verifier();

  async forward(question: string, options: { fail?: boolean } = {}): Promise<string> {
    const passages = await this.retriever.forward(question);
    const kept = await trace(
      "rerank",
      async () => {
        emit("reranked", { kept: 2, of: passages.length });
        return passages.slice(0, 2);
      },
      { data: { k: 2 } },
    );
    let draft = "";
    const prompt = `${question}\n${kept.join("\n")}`;
    for await (const chunk of this.draft.generate(prompt, options.fail ? { failAfter: 2 } : {})) {
      draft += chunk.delta.answer ?? "";
    }
    const ok = await this.verifier.forward(draft).catch(() => false);
    let answer = draft;
    if (!ok) {
      answer = "";
      for await (const chunk of this.refine.generate(draft)) answer += chunk.delta.answer ?? "";
    }
    // An enclosing call reports the usage of everything nested in it (summed over its model requests).
    const span = getCurrentSpan();
    if (span !== undefined) {
      for (const [spanId, usage] of [...usageBySpan]) {
        if (spanId !== span.spanId) addUsage(span.spanId, { ...usage, model: "gpt-4o-mini" });
      }
    }
    return answer;
  }
}

instrument(RAGPipeline);
instrument(Retriever);
instrument(Verifier);
instrument(LanguageModel, { methods: ["generate"] });

/** What the program produced. */
export interface RagTraffic {
  /** Every event the program sent to Kafka, decoded from the wire JSON. */
  readonly events: readonly StreamllEvent[];
  readonly okExecutionId: string;
  readonly failedExecutionId: string;
  /** Usage each model call recorded, by model. */
  readonly usageByModel: Readonly<Record<string, { calls: number; prompt: number; completion: number }>>;
}

/**
 * Runs the pipeline twice through `sink` (one execution that succeeds, one whose model stream fails), plus an
 * `emit()` outside any span. Usage recorded by the model calls is attached to their `end` events as
 * `data.usage`, the way an LLM integration records it.
 */
export async function runRagProgram(sink: KafkaSink): Promise<RagTraffic> {
  usageBySpan.clear();
  const executions: string[] = [];
  const wire: string[] = [];
  const recorder = {
    name: "recorder",
    send: async (batch: readonly EncodedEvent[]) => {
      for (const encoded of batch) wire.push(encoded.json);
    },
    close: async () => undefined,
  };
  configure({
    sinks: [sink, recorder],
    serviceName: "rag-api",
    delivery: { flushIntervalMs: 20 },
    logger: { warn: () => undefined, error: () => undefined },
    redact: (event) => {
      if (event.parent_span_id === null && event.event_type === "start") executions.push(event.execution_id);
      const usage = event.event_type === "end" ? usageBySpan.get(event.span_id) : undefined;
      return usage === undefined ? event : { ...event, data: { ...event.data, usage: { ...usage } } };
    },
  });
  const pipeline = new RAGPipeline();
  await pipeline.forward("capital of France?");
  usageBySpan.clear();
  await pipeline.forward("capital of France, failing", { fail: true }).catch(() => undefined);
  emit("deployed", { version: "2.1.0" });
  if (!(await flush(20_000))) throw new Error(`RAG traffic not delivered: ${JSON.stringify(getMetrics())}`);
  await shutdown(10_000);
  const [okExecutionId, failedExecutionId] = executions;
  if (okExecutionId === undefined || failedExecutionId === undefined)
    throw new Error("executions not recorded");
  const prompt = "capital of France?\npassage about capital of France?\npassage 2".length;
  const events = wire.map((json) => {
    const decoded = decodeEvent(json);
    if (!decoded.ok) throw decoded.error;
    return decoded.event;
  });
  return {
    events,
    okExecutionId,
    failedExecutionId,
    usageByModel: {
      "gpt-4o-mini": { calls: 1, prompt, completion: 4 },
      "gpt-4o": { calls: 1, prompt: "Paris is the capital".length, completion: 1 },
    },
  };
}
