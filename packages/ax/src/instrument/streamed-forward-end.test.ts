import { type AxChatResponse, AxMockAIService, ax } from "@ax-llm/ax";
import type { StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { instrumentAx } from "./instrument-ax";

afterEach(teardown);

const ofType = (events: readonly StreamllEvent[], type: string) =>
  events.filter((e) => e.event_type === type);

describe("the end of a streamed forward", () => {
  it("says it was not cancelled, with the token count, as streamingForward's end does", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris is the capital", chunkSize: 4 }]);
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "capital" });
    await program.forward(service, { question: "q" }, { stream: true });
    for await (const _ of program.streamingForward(service, { question: "q" })) void _;

    const [forwardEnd, streamEnd] = ofType(await collect(sink), "end");
    expect(forwardEnd?.data.cancelled).toBe(false);
    expect(streamEnd?.data.cancelled).toBe(false);
    expect(forwardEnd?.data.token_count).toBe(streamEnd?.data.token_count);
    expect(Object.keys(forwardEnd?.data ?? {}).sort()).toEqual(Object.keys(streamEnd?.data ?? {}).sort());
  });

  it("has no cancelled field when the forward was not streamed", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris" }]);
    await instrumentAx(ax("question:string -> answer:string")).forward(service, { question: "q" });
    const [end] = ofType(await collect(sink), "end");
    expect(end?.data).not.toHaveProperty("cancelled");
    expect(end?.data).not.toHaveProperty("token_count");
  });

  it("ends in an error marked cancelled when aborted mid-stream", async () => {
    const sink = setup();
    const controller = new AbortController();
    // Aborts the call once its first chunk was read; Ax notices on the chunks after it.
    const service = new AxMockAIService<string>({
      features: { functions: false, streaming: true },
      chatResponse: async () => {
        let pulls = 0;
        return new ReadableStream<AxChatResponse>({
          pull(stream) {
            pulls += 1;
            if (pulls === 2) controller.abort("user left");
            if (pulls > 4) stream.close();
            else stream.enqueue({ results: [{ index: 0, content: pulls === 1 ? "Answer: " : "Paris " }] });
          },
        });
      },
    });
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "capital" });
    await expect(
      program.forward(service, { question: "q" }, { stream: true, abortSignal: controller.signal }),
    ).rejects.toThrow();

    const events = await collect(sink);
    expect(ofType(events, "end")).toHaveLength(0);
    expect(ofType(events, "error")[0]?.data.cancelled).toBe(true);
  });
});
