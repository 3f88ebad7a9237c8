import { AxBootstrapFewShot, AxGEPA, AxMockAIService, ax } from "@ax-llm/ax";
import { ConfigurationError, compareEvents, type StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { instrumentAx } from "../instrument/instrument-ax";
import { collect, setup, teardown } from "../test-support/setup";
import { fingerprintProgram } from "../version/program-fingerprint";
import { instrumentAxOptimizer } from "./instrument-optimizer";

afterEach(teardown);

/** Answers `4` to questions whose sum is 4 and `5` otherwise: deterministic, half right on the set below. */
function arithmeticAI() {
  return new AxMockAIService<string>({
    name: "mock-ai",
    modelInfo: { name: "mock-model" },
    chatResponse: async (req) => {
      const prompt = JSON.stringify(req.chatPrompt);
      const sumIsFour = /(2\+2|1\+3|0\+4)\?(?![\s\S]*\?)/.test(prompt);
      return {
        results: [{ index: 0, content: `Answer: ${sumIsFour ? "4" : "5"}`, finishReason: "stop" }],
        modelUsage: {
          ai: "mock-ai",
          model: "mock-model",
          tokens: { promptTokens: 8, completionTokens: 2, totalTokens: 10 },
        },
      };
    },
  });
}

const examples = [
  { question: "2+2?", answer: "4" },
  { question: "1+3?", answer: "4" },
  { question: "3+3?", answer: "6" },
  { question: "0+4?", answer: "4" },
  { question: "5+1?", answer: "6" },
  { question: "2+3?", answer: "5" },
];
const exactMatch = ({ prediction, example }: { prediction: unknown; example: Record<string, unknown> }) =>
  (prediction as { answer?: unknown }).answer === example.answer ? 1 : 0;

const byType = (events: readonly StreamllEvent[], type: string) =>
  events.filter((e) => e.event_type === type);

describe("instrumentAxOptimizer(...)", () => {
  it("records one execution per compile: start, a trial per metric call, end with the best score and the new version", async () => {
    const sink = setup({ versionTracking: true });
    const ai = arithmeticAI();
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "math" });
    const optimizer = instrumentAxOptimizer(
      new AxBootstrapFewShot({ studentAI: ai, options: { maxRounds: 1, maxDemos: 2 } }),
    );
    const before = fingerprintProgram(program).signature;
    const result = await optimizer.compile(program, examples, exactMatch, { maxDemos: 2 });

    const events = await collect(sink);
    const run = events.filter((e) => e.method_name === "compile");
    expect(new Set(run.map((e) => e.execution_id)).size).toBe(1);
    expect(run[0]?.module_name).toBe("optimize math");
    expect(run.map((e) => e.event_type)).toEqual(
      expect.arrayContaining(["start", "optimizer_start", "optimizer_trial", "optimizer_end", "end"]),
    );
    const start = byType(run, "optimizer_start")[0] as StreamllEvent;
    expect(start.data).toMatchObject({
      optimizer: "AxBootstrapFewShot",
      program: "math",
      program_version: before,
      examples: 6,
    });

    const trials = byType(run, "optimizer_trial");
    expect(trials.length).toBeGreaterThan(0);
    expect(trials.map((t) => t.data.trial)).toEqual(trials.map((_, i) => i + 1));
    let best = -1;
    for (const trial of trials) {
      expect([0, 1]).toContain(trial.data.score);
      best = Math.max(best, trial.data.score as number);
      expect(trial.data.best_score).toBe(best);
    }

    // Every program call of the run is a child span of it, and its tokens count toward the run.
    const calls = events.filter((e) => e.module_name === "math" && e.event_type === "start");
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) expect(call.execution_id).toBe(start.execution_id);
    const end = byType(run, "optimizer_end")[0] as StreamllEvent;
    expect(end.data.best_score).toBe(result.bestScore);
    expect(end.data.trials).toBe(trials.length);
    expect(end.data.program_version_before).toBe(before);
    expect((end.data.usage as { requests: number }).requests).toBe(byType(events, "llm_call").length);

    // The version announced is the one the program has once the result is applied.
    program.setDemos(result.demos ?? []);
    expect(end.data.program_version).toBe(fingerprintProgram(program).signature);
    expect(end.data.program_version).not.toBe(before);
  });

  it("lets streamll compare the program before and after an optimizer run", async () => {
    const sink = setup({ versionTracking: true });
    const ai = arithmeticAI();
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "math" });
    for (const example of examples) await program.forward(ai, { question: example.question });
    const optimizer = instrumentAxOptimizer(
      new AxBootstrapFewShot({ studentAI: ai, options: { maxRounds: 1, maxDemos: 2 } }),
    );
    const result = await optimizer.compile(program, examples, exactMatch);
    program.setDemos(result.demos ?? []);
    for (const example of examples) await program.forward(ai, { question: example.question });

    const events = await collect(sink);
    const end = byType(events, "optimizer_end")[0] as StreamllEvent;
    // The optimizer's own calls of the program (its trials of intermediate versions) are marked, so every
    // event goes to compare as recorded and the program's calls still compare the two versions.
    const trialCalls = events.filter((e) => e.execution_id === end.execution_id && e.module_name === "math");
    expect(trialCalls.length).toBeGreaterThan(0);
    for (const event of trialCalls) expect(event.operation).toBe("optimizer");
    const report = compareEvents(events, { module: "math" });
    const signatures = report.versions.filter((v) => v.operation === null).map((v) => v.code_signature);
    expect(signatures).toEqual([end.data.program_version_before, end.data.program_version]);
    const calls = report.comparisons.filter((c) => c.operation === null);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      baseline: end.data.program_version_before,
      candidate: end.data.program_version,
    });
    // Six calls each side: tested with `minSamples` at six, as a user with fewer calls would set it.
    const tested = compareEvents(events, { module: "math", minSamples: 6 }).comparisons.find(
      (c) => c.operation === null,
    );
    expect(tested?.duration.verdict).not.toBe("insufficient-data");
    expect(tested?.duration.n_baseline).toBe(6);
    expect(tested?.duration.n_candidate).toBe(6);
  });

  it("records AxGEPA runs the same way", async () => {
    const sink = setup({ versionTracking: true });
    const ai = arithmeticAI();
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "math" });
    const optimizer = instrumentAxOptimizer(
      new AxGEPA({ studentAI: ai, numTrials: 2, minibatchSize: 2, seed: 7 }),
    );
    const result = await optimizer.compile(program, examples, exactMatch, { maxMetricCalls: 24 });
    const events = await collect(sink);
    const end = byType(events, "optimizer_end")[0] as StreamllEvent;
    expect(byType(events, "optimizer_start")[0]?.data.optimizer).toBe("AxGEPA");
    expect(end.data.best_score).toBe(result.bestScore);
    expect(byType(events, "optimizer_trial").length).toBeGreaterThan(0);
    expect(end.data.program_version).toMatch(/^[0-9a-f]{12}$/);
  });

  it("records a failing run as an error of its execution", async () => {
    const sink = setup();
    const program = ax("question:string -> answer:string");
    const optimizer = instrumentAxOptimizer(new AxBootstrapFewShot({ studentAI: arithmeticAI() }));
    // Ax rejects a run without examples before it starts.
    const thrown = await optimizer.compile(program, [], exactMatch).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Error);
    const events = await collect(sink);
    const error = byType(events, "error").find((e) => e.method_name === "compile");
    expect(error?.data.error_message).toBe((thrown as Error).message);
    expect(byType(events, "optimizer_end")).toHaveLength(0);
  });

  it("rejects unknown options and values that are not optimizers", () => {
    const optimizer = new AxBootstrapFewShot({ studentAI: arithmeticAI() });
    expect(() => instrumentAxOptimizer(optimizer, { nme: "x" } as never)).toThrow(ConfigurationError);
    expect(() => instrumentAxOptimizer({} as never)).toThrow(/compile/);
    expect(instrumentAxOptimizer(optimizer)).toBe(optimizer);
  });
});
