import { createId, type StreamllEvent } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { reconstructExecution } from "./execution-replay";
import { makeEvent } from "./test-support/kafka-test-support";

const at = (ms: number): string => new Date(Date.UTC(2026, 10, 27, 10, 0, 0) + ms).toISOString();

function span(execution_id: string, span_id: string, parent_span_id: string | null, module_name: string) {
  return (event_type: string, ms: number, data: StreamllEvent["data"] = {}): StreamllEvent =>
    makeEvent({ execution_id, span_id, parent_span_id, module_name, event_type, timestamp: at(ms), data });
}

describe("reconstructExecution", () => {
  const execution = createId();
  const rootId = createId();
  const llmId = createId();
  const toolId = createId();
  const root = span(execution, rootId, null, "Agent");
  const llm = span(execution, llmId, rootId, "LLM");
  const tool = span(execution, toolId, rootId, "Search");
  const events = [
    root("start", 0, { inputs: { goal: "book a flight" } }),
    llm("start", 5),
    llm("token", 6, { field: "thought", token: "Search ", token_index: 0 }),
    llm("token", 7, { field: "thought", token: "flights", token_index: 1 }),
    llm("retry", 8, { reason: "rate limited" }),
    llm("token", 9, { field: "thought", token: "Look up ", token_index: 0 }),
    llm("token", 11, { field: "thought", token: "fares", token_index: 1 }),
    llm("token", 10, { field: "action", token: "search(", token_index: 0 }),
    llm("token", 12, { field: "action", token: "LHR)", token_index: 1 }),
    llm("end", 13, { duration_ms: 8.25, outputs: "search(LHR)" }),
    tool("start", 14),
    tool("progress", 15, { pct: 50 }),
    tool("error", 20, {
      error_type: "TimeoutError",
      error_message: "search timed out",
      error_code: "ETIMEDOUT",
      duration_ms: 6,
    }),
    root("error", 21, { error_type: "TimeoutError", error_message: "search timed out", duration_ms: 21.5 }),
  ];

  it("rebuilds tree, statuses, durations, errors and streamed text from shuffled, duplicated events", () => {
    const other = makeEvent({ execution_id: createId() });
    const shuffled = [...events].reverse();
    const replay = reconstructExecution(execution, [...shuffled, events[3]!, events[10]!, other]);
    expect(replay.events).toHaveLength(events.length);
    expect(replay.events.map((e) => e.event_id)).toEqual(
      events
        .map((e) => e.event_id)
        .sort((a, b) => {
          const ea = events.find((e) => e.event_id === a)!;
          const eb = events.find((e) => e.event_id === b)!;
          return Date.parse(ea.timestamp) - Date.parse(eb.timestamp);
        }),
    );
    expect(replay.roots).toHaveLength(1);
    const agent = replay.roots[0]!;
    expect(agent).toMatchObject({
      moduleName: "Agent",
      status: "error",
      durationMs: 21.5,
      inputs: { goal: "book a flight" },
      startedAt: at(0),
      endedAt: at(21),
    });
    expect(agent.children.map((c) => c.moduleName)).toEqual(["LLM", "Search"]);
    const [model, search] = agent.children as [typeof agent, typeof agent];
    expect(model.streamedText).toEqual({ thought: "Look up fares", action: "search(LHR)" });
    expect(model.tokenCount).toBe(4);
    expect(model.customEvents.map((e) => e.event_type)).toEqual(["retry"]);
    expect(model).toMatchObject({ status: "ok", durationMs: 8.25, outputs: "search(LHR)" });
    expect(search.error).toEqual({ type: "TimeoutError", message: "search timed out", code: "ETIMEDOUT" });
    expect(search.customEvents.map((e) => e.data)).toEqual([{ pct: 50 }]);
    expect(replay.failed).toBe(true);
    expect(replay.errors.map((e) => e.span.moduleName)).toEqual(["Search", "Agent"]);
    expect(replay.durationMs).toBe(21.5);
    expect(replay.spans.get(toolId)).toBe(search);
  });

  it("keeps spans whose start or parent was not read, and marks unfinished spans running", () => {
    const partial = [events[2]!, events[3]!, events[10]!];
    const replay = reconstructExecution(execution, partial);
    expect(replay.roots.map((r) => [r.moduleName, r.status, r.durationMs])).toEqual([
      ["LLM", "running", null],
      ["Search", "running", null],
    ]);
    expect(replay.roots[0]!.streamedText).toEqual({ thought: "Search flights" });
    expect(replay.failed).toBe(false);
    expect(replay.durationMs).toBe(8);
  });

  it("returns an empty replay for no events", () => {
    expect(reconstructExecution(execution, [])).toMatchObject({
      events: [],
      roots: [],
      failed: false,
      startedAt: null,
      endedAt: null,
      durationMs: null,
    });
  });
});
