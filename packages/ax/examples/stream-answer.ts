// Streams an Ax program's answer while streamll records it: the call is one execution, each streamed piece a
// `token` event (field `answer`), each model request an `llm_call` event, and `end` carries the answer and
// the token usage. Configure a sink first (KafkaSink, JsonlFileSink, ...); `ai` is any Ax AI service.
import { type AxAIService, ax } from "@ax-llm/ax";
import { instrumentAx } from "@streamll/ax";

export const answerer = instrumentAx(ax('"Answers support questions" question:string -> answer:string'));

export async function streamAnswer(ai: AxAIService, question: string): Promise<string> {
  let text = "";
  let version = 0;
  for await (const chunk of answerer.streamingForward(ai, { question })) {
    // Ax restarts the stream with a higher `version` when it retries: what came before is void.
    if (chunk.version !== version) {
      version = chunk.version;
      text = "";
    }
    text += chunk.delta.answer ?? "";
  }
  return text;
}
