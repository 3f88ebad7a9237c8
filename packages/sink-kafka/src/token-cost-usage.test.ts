// The per-event rule of docs/kafka.md's token cost consumer (examples/token-cost-tracking.ts), without a broker:
// which events it counts, so a module's `llm_usage` events and an Ax program's `llm_call` events are each
// counted once, and the `data.usage` totals of `end` and `error` events are not counted again.
import { configure, emit, flush, MemorySink, type StreamllEvent, shutdown, trace } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { requestUsage } from "../examples/token-cost-tracking";

afterEach(() => shutdown(2_000));

/** The events an Ax program's call records (as @streamll/ax emits them) and one `llm_usage` of a module. */
async function recordedEvents(): Promise<readonly StreamllEvent[]> {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }] });
  await trace("qa", async () => {
    for (const [prompt, completion] of [
      [10, 5],
      [12, 6],
    ] as const) {
      emit("llm_call", {
        provider: "openai",
        model: "gpt-4o-mini",
        latency_ms: 12.5,
        streaming: true,
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      });
    }
    emit("llm_usage", { model: "gpt-4o", input_tokens: 100, output_tokens: 7 });
    emit("end", {
      usage: {
        prompt_tokens: 22,
        completion_tokens: 11,
        total_tokens: 33,
        model: "gpt-4o-mini",
        requests: 2,
      },
    });
  });
  await flush(2_000);
  return sink.events;
}

describe("token cost tracking (docs/kafka.md)", () => {
  it("counts each llm_usage and each Ax llm_call once, never the usage totals of end events", async () => {
    const events = await recordedEvents();
    const counted = events.map(requestUsage).filter((usage) => usage !== undefined);
    expect(counted).toEqual([
      { model: "gpt-4o-mini", inputTokens: 10, outputTokens: 5 },
      { model: "gpt-4o-mini", inputTokens: 12, outputTokens: 6 },
      { model: "gpt-4o", inputTokens: 100, outputTokens: 7 },
    ]);
  });

  it("ignores an llm_call without usage (a failed request) and events of any other type", () => {
    // Only the two fields the rule reads.
    const event = (event_type: string, data: StreamllEvent["data"]) =>
      ({ event_type, data }) as StreamllEvent;
    expect(requestUsage(event("llm_call", { model: "gpt-4o", error_type: "Error" }))).toBeUndefined();
    expect(requestUsage(event("token", { field: "answer", token: "Paris" }))).toBeUndefined();
  });
});
