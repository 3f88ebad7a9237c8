import { ax } from "@ax-llm/ax";
import { afterEach, describe, expect, it } from "vitest";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { instrumentAx } from "./instrument-ax";

afterEach(teardown);

describe("instrumentAx(): a streamed word longer than the token hold", () => {
  // 4,086 characters of compact JSON (no whitespace), then a key: the hold's cap falls inside the key.
  const blob = `{"blob":"${"A".repeat(4070)}","k":"`;
  const key = "sk-proj-PLANTED0123456789abcdef";

  it.each([4, 7])("sends no piece of a key the cap falls in (chunks of %i)", async (chunkSize) => {
    const sink = setup();
    const { service } = scriptedAI([{ content: `Answer: ${blob}${key}"}`, chunkSize }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    for await (const _ of program.streamingForward(service, { question: "q" }));

    const events = await collect(sink);
    const tokens = events.filter((e) => e.event_type === "token").map((e) => e.data.token as string);
    const end = events.find((e) => e.event_type === "end");
    expect(tokens.length).toBeGreaterThan(1);
    expect(end?.data.token_count).toBe(tokens.length);
    // Every 8 characters of the key: none may appear in any event.
    const pieces = Array.from({ length: key.length - 7 }, (_, i) => key.slice(i, i + 8));
    const text = JSON.stringify(events);
    expect(["PLANTED", ...pieces].filter((piece) => text.includes(piece))).toEqual([]);
    const joined = tokens.join("");
    expect(joined).toBe(`${blob}sk-[REDACTED]"}`);
    expect(end?.data.outputs).toEqual({ answer: joined });
  });
});
