import { type AxChatResponse, AxMockAIService, ax } from "@ax-llm/ax";
import { instrumentAx } from "@streamll/ax";

/** What the offline model answers, in turn: the first reply breaks the program's rule, so Ax retries. */
const REPLIES = [
  "Summary: streamll keeps events in a bounded buffer and retries",
  "Summary: streamll buffers events, retries failed batches and counts every event it has to drop.",
];

/**
 * Ax's own offline AI service, streaming each scripted reply in small chunks with token usage, as a provider
 * would. No network, no API key.
 */
export function offlineAI(chunkSize = 8): AxMockAIService<string> {
  let turn = 0;
  return new AxMockAIService<string>({
    name: "offline-ai",
    modelInfo: { name: "offline-model" },
    chatResponse: async (_req, options) => {
      const content = REPLIES[Math.min(turn, REPLIES.length - 1)] as string;
      turn += 1;
      const modelUsage = {
        ai: "offline-ai",
        model: "offline-model",
        tokens: { promptTokens: 180, completionTokens: 24, totalTokens: 204 },
      };
      if (options?.stream !== true) {
        return {
          results: [{ index: 0, content, finishReason: "stop" }],
          modelUsage,
        } satisfies AxChatResponse;
      }
      return new ReadableStream<AxChatResponse>({
        start(controller) {
          for (let i = 0; i < content.length; i += chunkSize) {
            const last = i + chunkSize >= content.length;
            controller.enqueue({
              results: [
                {
                  index: 0,
                  content: content.slice(i, i + chunkSize),
                  ...(last ? { finishReason: "stop" as const } : {}),
                },
              ],
              ...(last ? { modelUsage } : {}),
            });
          }
          controller.close();
        },
      });
    },
  });
}

/** An Ax program with one rule (a summary ends with a period), instrumented with @streamll/ax. */
export function createSummarizer() {
  const summarizer = ax('"Summarizes an answer in one sentence" answerText:string -> summary:string');
  summarizer.addAssert((out) =>
    out.summary?.trim().endsWith(".") ? true : "the summary must end with a period",
  );
  return instrumentAx(summarizer, { tags: { program: "ax" } });
}

/** Streams the summary of `answer`: tokens per field, the retry with Ax's reason, usage at the end. */
export async function summarize(answer: string, ai = offlineAI()): Promise<string> {
  const summarizer = createSummarizer();
  const { summary } = await summarizer.forward(ai, { answerText: answer }, { stream: true });
  return summary;
}
