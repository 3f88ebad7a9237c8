// Token cost tracking: sums the tokens of every model request per model and prices them. A module you
// instrument yourself reports usage with
//   emit("llm_usage", { model, input_tokens, output_tokens })
// inside its instrumented call; @streamll/ax records each model request of an Ax program as an `llm_call`
// event with `data.usage`. Runs as a batch job over what the topic holds now (`stopAtEnd`); drop
// `stopAtEnd` to keep a running total in a long-lived consumer.
import { type KafkaConnectionOptions, KafkaEventReader, type KafkaEventRecord } from "@streamll/sink-kafka";

/** US dollars per million tokens. Replace with your provider's current prices. */
export interface ModelPrice {
  readonly inputPerMillion: number;
  readonly outputPerMillion: number;
}

export const PRICES: Readonly<Record<string, ModelPrice>> = {
  "gpt-4o-mini": { inputPerMillion: 0.15, outputPerMillion: 0.6 },
  "gpt-4o": { inputPerMillion: 2.5, outputPerMillion: 10 },
  "claude-haiku": { inputPerMillion: 0.8, outputPerMillion: 4 },
};

export interface ModelCost {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  usd: number;
}

export interface CostReport {
  readonly byModel: Record<string, ModelCost>;
  /** Cost per module (the instrumented module that emitted the usage). */
  readonly byModule: Record<string, number>;
  readonly totalUsd: number;
  /** Models seen without a price: their tokens are counted, their cost is not. */
  readonly unpriced: string[];
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** What one model request cost in tokens. */
export interface RequestUsage {
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * The usage of the model request an event reports: an `llm_usage` event (`input_tokens`, `output_tokens`) or
 * an Ax `llm_call` event (`usage.prompt_tokens`, `usage.completion_tokens`). `undefined` for any other event:
 * the `data.usage` of `end` and `error` events sums requests already counted here.
 */
export function requestUsage(event: KafkaEventRecord["event"]): RequestUsage | undefined {
  const data = event.data;
  const model = typeof data.model === "string" ? data.model : "unknown";
  if (event.event_type === "llm_usage")
    return { model, inputTokens: count(data.input_tokens), outputTokens: count(data.output_tokens) };
  const usage = data.usage;
  if (event.event_type !== "llm_call" || typeof usage !== "object" || usage === null || Array.isArray(usage))
    return undefined;
  return { model, inputTokens: count(usage.prompt_tokens), outputTokens: count(usage.completion_tokens) };
}

export async function trackTokenCosts(
  connection: KafkaConnectionOptions,
  options: { groupId: string; topic?: string; prices?: Readonly<Record<string, ModelPrice>> },
): Promise<CostReport> {
  const prices = options.prices ?? PRICES;
  const byModel: Record<string, ModelCost> = {};
  const byModule: Record<string, number> = {};
  const unpriced = new Set<string>();
  // Delivery is at-least-once: an event retried after a timeout can be on the topic twice.
  const seen = new Set<string>();
  const reader = new KafkaEventReader({
    ...connection,
    groupId: options.groupId,
    ...(options.topic === undefined ? {} : { topic: options.topic }),
    fromBeginning: true,
    stopAtEnd: true,
  });
  try {
    await reader.run(({ event }) => {
      const request = requestUsage(event);
      if (request === undefined || seen.has(event.event_id)) return;
      seen.add(event.event_id);
      const { model, inputTokens, outputTokens } = request;
      const price = prices[model];
      if (price === undefined) unpriced.add(model);
      const usd =
        price === undefined
          ? 0
          : (inputTokens * price.inputPerMillion + outputTokens * price.outputPerMillion) / 1_000_000;
      const entry = byModel[model] ?? { calls: 0, inputTokens: 0, outputTokens: 0, usd: 0 };
      byModel[model] = entry;
      entry.calls += 1;
      entry.inputTokens += inputTokens;
      entry.outputTokens += outputTokens;
      entry.usd += usd;
      byModule[event.module_name] = (byModule[event.module_name] ?? 0) + usd;
    });
  } finally {
    await reader.close();
  }
  const totalUsd = Object.values(byModel).reduce((sum, model) => sum + model.usd, 0);
  return { byModel, byModule, totalUsd, unpriced: [...unpriced].sort() };
}
