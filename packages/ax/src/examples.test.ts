// Runs the Ax examples shown verbatim in docs/kafka.md (packages/ax/examples) on AxMockAIService, with the
// events going to a memory sink instead of Kafka, and checks what they record.
import { afterEach, describe, expect, it } from "vitest";
import { optimizeQa } from "../examples/optimize-program";
import { answerer, streamAnswer } from "../examples/stream-answer";
import { fingerprintProgram } from "./index";
import { scriptedAI } from "./test-support/mock-ai";
import { collect, setup, teardown } from "./test-support/setup";

afterEach(teardown);

describe("the Ax examples of docs/kafka.md", () => {
  it("stream-answer.ts streams the answer and records it as token events", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Reset it from the login page.", chunkSize: 7 }]);
    expect(await streamAnswer(service, "How do I reset my password?")).toBe("Reset it from the login page.");
    const events = await collect(sink);
    const tokens = events.filter((e) => e.event_type === "token");
    expect(tokens.length).toBeGreaterThan(1);
    expect(
      tokens.every((t) => t.module_name === "Answers support questions" && t.data.field === "answer"),
    ).toBe(true);
    expect(events.find((e) => e.event_type === "end")?.data.outputs).toEqual({
      answer: "Reset it from the login page.",
    });
    expect(answerer.getSignature().getDescription()).toBe("Answers support questions");
  });

  it("optimize-program.ts records the run and leaves the program on its announced version", async () => {
    const sink = setup({ versionTracking: true });
    const { service } = scriptedAI([{ content: "Answer: 4" }]);
    const trainset = [
      { question: "2+2?", answer: "4" },
      { question: "1+3?", answer: "4" },
      { question: "3+3?", answer: "6" },
      { question: "0+4?", answer: "4" },
      { question: "5+1?", answer: "6" },
    ];
    const { qa, bestScore } = await optimizeQa(service, trainset);
    const events = await collect(sink);
    const end = events.find((e) => e.event_type === "optimizer_end");
    expect(end?.data.best_score).toBe(bestScore);
    expect(end?.data.program_version).toBe(fingerprintProgram(qa).signature);
    expect(events.filter((e) => e.event_type === "optimizer_trial").length).toBeGreaterThan(0);
  });
});
