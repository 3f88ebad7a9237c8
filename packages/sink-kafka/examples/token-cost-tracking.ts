// Token cost tracking: sums the tokens of every `llm_usage` event per model and prices them.
// The LLM-calling module reports usage with
//   emit("llm_usage", { model, input_tokens, output_tokens })
// inside its instrumented call. Runs as a batch job over what the topic holds now (`stopAtEnd`); drop
// `stopAtEnd` to keep a running total in a long-lived consumer.
import { type KafkaConnectionOptions, KafkaEventReader } from "@streamll/sink-kafka";

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
      if (event.event_type !== "llm_usage" || seen.has(event.event_id)) return;
      seen.add(event.event_id);
      const model = typeof event.data.model === "string" ? event.data.model : "unknown";
      const inputTokens = count(event.data.input_tokens);
      const outputTokens = count(event.data.output_tokens);
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
