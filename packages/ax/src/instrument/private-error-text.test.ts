import { ai, ax, flow } from "@ax-llm/ax";
import type { StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { instrumentAx } from "./instrument-ax";

afterEach(teardown);

/** Personal text planted in a program's input, and in what its model writes. */
const INPUT = "PATIENT Jane Roe DOB 1970-01-01 diagnosis X";
const OUTPUT = "MODEL-WROTE Jane Roe lives at 12 Private Lane";

/**
 * Ax's real OpenAI provider over a `fetch` that fails with 500 and quotes the request body, as providers that
 * reject content do: Ax's error then carries the prompt (in its stack).
 */
const rejectingOpenAI = () =>
  ai({
    name: "openai",
    apiKey: "sk-test",
    options: {
      // One request, not Ax's retries with backoff.
      retry: { maxRetries: 0 },
      fetch: (async (_input: unknown, init?: { body?: unknown }) =>
        new Response(JSON.stringify({ error: { message: `content rejected: ${String(init?.body)}` } }), {
          status: 500,
          headers: { "content-type": "application/json" },
        })) as typeof fetch,
    },
  });

const failing = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );
const of = (events: readonly StreamllEvent[], type: string) => events.filter((e) => e.event_type === type);

describe("instrumentAx(): error text without inputs or outputs", () => {
  it("keeps the prompt out of a failed call's events when inputs are not recorded", async () => {
    const sink = setup();
    const program = instrumentAx(ax("question:string -> answer:string"), { includeInputs: false });
    const thrown = await failing(program.forward(rejectingOpenAI(), { question: INPUT }, { maxRetries: 0 }));
    expect(thrown).toBeInstanceOf(Error);
    // The premise: Ax's own error quotes the prompt.
    expect(String((thrown as Error).stack)).toContain("PATIENT Jane Roe");

    const events = await collect(sink);
    for (const event of events) expect(JSON.stringify(event)).not.toContain("Jane Roe");
    const error = of(events, "error")[0] as StreamllEvent;
    expect(error.data.error_type).toBe((thrown as Error).name);
    expect(error.data.error_message).toMatch(/^HTTP 500/);
    expect(error.data).not.toHaveProperty("stack");
    expect(of(events, "llm_call").length).toBeGreaterThan(0);
  });

  it("still records the whole error when inputs and outputs are recorded", async () => {
    const sink = setup();
    const program = instrumentAx(ax("question:string -> answer:string"));
    await failing(program.forward(rejectingOpenAI(), { question: INPUT }, { maxRetries: 0 }));
    const error = of(await collect(sink), "error")[0] as StreamllEvent;
    expect(typeof error.data.stack).toBe("string");
  });

  it("keeps what the model wrote out of retries and the error when outputs are not recorded", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: `Answer: ${OUTPUT}` }]);
    const program = instrumentAx(ax("question:string -> answer:number"), { includeOutputs: false });
    const thrown = await failing(program.forward(service, { question: "How old?" }, { maxRetries: 1 }));
    expect((thrown as Error).message).toContain("MODEL-WROTE");

    const events = await collect(sink);
    for (const event of events) expect(JSON.stringify(event)).not.toContain("Jane Roe");
    const retries = of(events, "retry");
    expect(retries.length).toBeGreaterThan(0);
    for (const retry of retries)
      expect(retry.data).toMatchObject({
        kind: "validation",
        reason: "not recorded (includeOutputs is false)",
      });
    const error = of(events, "error")[0] as StreamllEvent;
    expect(error.data.error_type).toBe((thrown as Error).name);
    expect(error.data).not.toHaveProperty("stack");
    expect(String(error.data.error_message)).toMatch(/^Generate failed/);
  });

  it("does the same for a streamed call and for a flow whose node fails", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: `Answer: ${OUTPUT}`, chunkSize: 5 }]);
    const streamed = instrumentAx(ax("question:string -> answer:number"), { includeOutputs: false });
    await failing(
      (async () => {
        for await (const _ of streamed.streamingForward(
          service,
          { question: "How old?" },
          { maxRetries: 1 },
        ));
      })(),
    );
    const review = instrumentAx(
      flow<{ question: string }>()
        .node("age", "question:string -> age:number")
        .execute("age", (state) => ({ question: state.question }))
        .returns((state) => ({ age: state.ageResult.age })),
      { name: "review", includeInputs: false, includeOutputs: false },
    );
    await failing(review.forward(service, { question: INPUT }, { maxRetries: 1 }));

    const events = await collect(sink);
    for (const event of events) expect(JSON.stringify(event)).not.toContain("Jane Roe");
    expect(of(events, "retry").length).toBeGreaterThan(1);
    expect(of(events, "error").length).toBeGreaterThan(1);
  });
});
