import { AxMockAIService, ax } from "@ax-llm/ax";
import type { StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { instrumentAx } from "../instrument/instrument-ax";
import { collect, setup, teardown } from "../test-support/setup";

afterEach(teardown);

const of = (events: readonly StreamllEvent[], type: string) => events.filter((e) => e.event_type === type);

/** A service whose members read a private field: called with any other `this` than itself, they throw. */
class PrivateFieldService extends AxMockAIService<string> {
  readonly #features = { functions: false, streaming: false };
  override getFeatures() {
    return { ...super.getFeatures(), ...this.#features };
  }
}

const reply = {
  results: [{ index: 0, content: "Answer: Paris", finishReason: "stop" as const }],
  modelUsage: {
    ai: "mock-ai",
    model: "mock-model",
    tokens: { promptTokens: 10, completionTokens: 5, totalTokens: 15 },
  },
};

describe("the AI service an instrumented program is given", () => {
  it("calls the service's members on the service itself, private fields included", async () => {
    const sink = setup();
    const service = new PrivateFieldService({
      name: "mock-ai",
      modelInfo: { name: "mock-model" },
      chatResponse: reply,
    });
    const program = instrumentAx(ax("question:string -> answer:string"));
    await program.forward(service, { question: "Capital of France?" });
    await program.forward(service, { question: "Capital of France?" });
    const events = await collect(sink);
    expect(of(events, "error")).toHaveLength(0);
    expect(of(events, "llm_call")).toHaveLength(2);
  });

  it("uses (and records) a member the service replaced after an earlier call", async () => {
    const sink = setup();
    const service = new AxMockAIService<string>({
      name: "mock-ai",
      modelInfo: { name: "mock-model" },
      chatResponse: reply,
    });
    const program = instrumentAx(ax("question:string -> answer:string"));
    await program.forward(service, { question: "Capital of France?" });
    const original = service.chat;
    let replaced = 0;
    service.chat = function chat(this: typeof service, ...args: Parameters<typeof original>) {
      replaced += 1;
      return Reflect.apply(original, this, args);
    };
    await program.forward(service, { question: "Capital of France?" });
    await program.forward(service, { question: "Capital of France?" });
    const events = await collect(sink);
    expect(replaced).toBe(2);
    expect(of(events, "llm_call")).toHaveLength(3);
    expect(of(events, "end").map((e) => (e.data.usage as { requests: number }).requests)).toEqual([1, 1, 1]);
  });
});
