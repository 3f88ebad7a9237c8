// Optimizes an Ax program with few-shot demos while streamll records the run: `compile` is one execution with
// `optimizer_start`, an `optimizer_trial` event per metric call (score, best so far), the program's calls as
// child spans, and `optimizer_end` with the best score and the program's new `code_signature`. After the demos
// are applied, the program's events carry that signature, so `streamll compare` can set its calls before the
// run against its calls after.
import { type AxAIService, AxBootstrapFewShot, type AxTypedExample, ax } from "@ax-llm/ax";
import { instrumentAx, instrumentAxOptimizer } from "@streamll/ax";

/** A training example: the input field and the expected output. */
export type Example = AxTypedExample<{ question: string; answer: string }>;

export async function optimizeQa(ai: AxAIService, trainset: readonly Example[]) {
  const qa = instrumentAx(ax("question:string -> answer:string"), { name: "qa" });
  const optimizer = instrumentAxOptimizer(
    new AxBootstrapFewShot({ studentAI: ai, options: { maxRounds: 2, maxDemos: 4 } }),
  );
  const result = await optimizer.compile(qa, trainset, ({ prediction, example }) =>
    (prediction as { answer?: string }).answer === example.answer ? 1 : 0,
  );
  qa.setDemos(result.demos ?? []);
  return { qa, bestScore: result.bestScore };
}
