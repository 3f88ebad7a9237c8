import type { AxAIService } from "@ax-llm/ax";

/** How an AI service appears in events: its provider name and model, never the object (it holds credentials). */
export interface AIServiceDescriptor {
  provider: string | null;
  model: string | null;
}

function safeString(read: () => unknown): string | null {
  try {
    const value = read();
    return typeof value === "string" && value !== "" ? value : null;
  } catch {
    return null;
  }
}

/**
 * `{ provider, model }` of `ai`: `getName()` (`OpenAI`, `Anthropic`, …) and the model the call asked for, else
 * the model the service used last. Read through the `AxAIService` interface only; nothing else of the service
 * is looked at.
 */
export function describeAIService(ai: unknown, requestedModel?: unknown): AIServiceDescriptor {
  if (typeof ai !== "object" || ai === null) return { provider: null, model: null };
  const service = ai as Partial<AxAIService>;
  const provider = safeString(() => service.getName?.());
  let model = typeof requestedModel === "string" && requestedModel !== "" ? requestedModel : null;
  if (model === null) model = safeString(() => service.getLastUsedChatModel?.());
  return { provider, model };
}
