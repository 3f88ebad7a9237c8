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

/** What a {@link stagedAgentAI} answers at each stage of an agent that has the function `fn`. */
export interface AgentScript {
  /** The function's name as the agent's prompts show it (`utils.<fn>`). */
  fn: string;
  /** The distiller's JavaScript: hands the task on with `final(...)`. */
  distill: string;
  /** The executor's JavaScript, one entry per turn (the last repeats). */
  execute: readonly string[];
}

/**
 * Ax 24's agent runs in stages: a distiller writes JavaScript that hands the task on with `final(...)`, an
 * executor writes JavaScript that calls the agent's functions as `utils.<name>(...)`, and a responder writes
 * the answer. This mock plays each stage by the system prompt it is sent (a stage that does not see `fn` —
 * a responder, or a child agent's stages — answers "It is sunny in Paris."), each reply 6 tokens.
 */
export function stagedAgentAI(script: AgentScript) {
  let executorTurns = 0;
  const seesFunction = new RegExp(`utils\\.${script.fn}\\b`);
  return new AxMockAIService<string>({
    features: { functions: true, streaming: false },
    chatResponse: async (req) => {
      const system = String(req.chatPrompt.find((m) => m.role === "system")?.content ?? "");
      let content = "Answer: It is sunny in Paris.";
      if (seesFunction.test(system) && /Calling one here throws/.test(system)) {
        content = `Javascript Code: ${script.distill}`;
      } else if (seesFunction.test(system)) {
        const turn = Math.min(executorTurns, script.execute.length - 1);
        executorTurns += 1;
        content = `Javascript Code: ${script.execute[turn]}`;
      }
      return {
        results: [{ index: 0, content, finishReason: "stop" as const }],
        modelUsage: {
          ai: "mock-ai",
          model: "mock-model",
          tokens: { promptTokens: 4, completionTokens: 2, totalTokens: 6 },
        },
      };
    },
  });
}
