import { type AxChatResponse, AxMockAIService, type AxModelUsage } from "@ax-llm/ax";

/** One scripted model reply: the text (`Answer: ...`) and the usage it reports. */
export interface ScriptedReply {
  content: string;
  /** Splits `content` into streamed chunks; default one chunk per 6 characters. */
  chunkSize?: number;
  usage?: { prompt: number; completion: number };
  model?: string;
  functionCalls?: { id: string; name: string; params: string }[];
}

/**
 * A real `AxMockAIService` that answers with the scripted replies in turn (the last one repeats), streaming
 * when Ax asks for a stream, so programs run fully offline with known text and usage.
 */
export function scriptedAI(replies: readonly ScriptedReply[], options: { name?: string } = {}) {
  let turn = 0;
  const requests: { stream: boolean; model: unknown }[] = [];
  const service = new AxMockAIService<string>({
    name: options.name ?? "mock-ai",
    modelInfo: { name: "mock-model" },
    features: { functions: true, streaming: true },
    chatResponse: async (req, opts) => {
      const reply = replies[Math.min(turn, replies.length - 1)] as ScriptedReply;
      turn += 1;
      const stream = opts?.stream === true;
      requests.push({ stream, model: req.model });
      const modelUsage: AxModelUsage = {
        ai: options.name ?? "mock-ai",
        model: reply.model ?? "mock-model",
        tokens: {
          promptTokens: reply.usage?.prompt ?? 10,
          completionTokens: reply.usage?.completion ?? 5,
          totalTokens: (reply.usage?.prompt ?? 10) + (reply.usage?.completion ?? 5),
        },
      };
      const functionCalls = reply.functionCalls?.map((call) => ({
        id: call.id,
        type: "function" as const,
        function: { name: call.name, params: call.params },
      }));
      if (!stream) {
        return {
          results: [{ index: 0, content: reply.content, functionCalls, finishReason: "stop" }],
          modelUsage,
        } satisfies AxChatResponse;
      }
      const size = reply.chunkSize ?? 6;
      const pieces: string[] = [];
      for (let i = 0; i < reply.content.length; i += size) pieces.push(reply.content.slice(i, i + size));
      if (pieces.length === 0) pieces.push("");
      return new ReadableStream<AxChatResponse>({
        start(controller) {
          pieces.forEach((piece, i) => {
            const last = i === pieces.length - 1;
            controller.enqueue({
              results: [
                {
                  index: 0,
                  content: piece,
                  ...(last && functionCalls ? { functionCalls } : {}),
                  ...(last ? { finishReason: "stop" as const } : {}),
                },
              ],
              ...(last ? { modelUsage } : {}),
            });
          });
          controller.close();
        },
      });
    },
  });
  return { service, requests, turns: () => turn };
}
