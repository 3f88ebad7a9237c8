import { configure, flush, MemorySink, shutdown } from "@streamll/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { summarize } from "./ax-summarizer";

let sink: MemorySink;

beforeEach(() => {
  sink = new MemorySink();
  configure({ sinks: [sink] });
});

afterEach(async () => {
  await shutdown();
});

describe("demo Ax program", () => {
  it("streams the summary, retries with Ax's reason and reports the call's token usage", async () => {
    const summary = await summarize("Events are buffered and retried.");
    expect(summary).toBe(
      "streamll buffers events, retries failed batches and counts every event it has to drop.",
    );
    await flush();
    const events = sink.events;
    expect(new Set(events.map((e) => e.module_name))).toEqual(
      new Set(["Summarizes an answer in one sentence"]),
    );
    const types = events.map((e) => e.event_type);
    expect(types[0]).toBe("start");
    expect(types.at(-1)).toBe("end");
    const retry = events.find((e) => e.event_type === "retry");
    expect(retry?.data).toMatchObject({ kind: "validation", reason: "the summary must end with a period" });
    const tokens = events.filter(
      (e) => e.event_type === "token" && events.indexOf(e) > events.indexOf(retry as never),
    );
    expect(tokens.map((t) => t.data.token).join("")).toBe(summary);
    const end = events.at(-1);
    expect(end?.data.usage).toMatchObject({
      prompt_tokens: 360,
      completion_tokens: 48,
      total_tokens: 408,
      requests: 2,
    });
    expect(events.every((e) => e.tags.program === "ax")).toBe(true);
  });
});
