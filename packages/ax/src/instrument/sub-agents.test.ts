import { agent } from "@ax-llm/ax";
import type { StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { stagedAgentAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { instrumentAx } from "./instrument-ax";

afterEach(teardown);

/**
 * A parent agent whose executor calls a child agent (`utils.weatheragent(...)`, the function Ax makes of an
 * agent passed in `functions`); the child's own stages answer directly.
 */
const parentAndChildAI = () =>
  stagedAgentAI({
    fn: "weatheragent",
    distill: 'await final("Ask the weather agent about Paris", { city: "Paris" })',
    execute: [
      'const weather = await utils.weatheragent({ question: "Weather in Paris?" });\nconsole.log(weather);',
      'await final("Report the weather in Paris", { weather: "sunny in Paris" })',
    ],
  });

describe("sub-agents", () => {
  it("records a child agent called by its parent as a span in the parent's execution, its stages under it", async () => {
    const sink = setup();
    const weatherAgent = agent("question:string -> answer:string", {
      agentIdentity: { name: "weatherAgent", description: "Answers weather questions for a city" },
    });
    const travelAgent = agent("question:string -> answer:string", {
      agentIdentity: { name: "travelAgent", description: "Plans trips" },
      functions: [weatherAgent],
    });
    instrumentAx(travelAgent, { name: "travel-agent" });
    const result = await travelAgent.forward(
      parentAndChildAI(),
      { question: "Trip to Paris?" },
      { maxSteps: 6 },
    );
    expect(result).toEqual({ answer: "It is sunny in Paris." });

    const events = await collect(sink);
    expect(new Set(events.map((e) => e.execution_id)).size).toBe(1);
    const starts = events.filter((e) => e.event_type === "start");
    const byId = new Map(starts.map((e) => [e.span_id, e]));
    const root = starts.filter((e) => e.parent_span_id === null);
    expect(root.map((e) => e.module_name)).toEqual(["travel-agent"]);

    // The child agent is one span, called from a stage of its parent, with its arguments as input.
    const child = starts.filter((e) => e.operation === "function:weatheragent");
    expect(child).toHaveLength(1);
    // Ax runs the executor's code outside the stage's own call, so the caller seen is the agent or a stage.
    const caller = byId.get(child[0]?.parent_span_id ?? "");
    expect([caller?.span_id, caller?.parent_span_id]).toContain(root[0]?.span_id);
    expect(child[0]?.data).toEqual({
      function: "weatheragent",
      arguments: { question: "Weather in Paris?" },
    });
    const childEnd = events.find((e) => e.event_type === "end" && e.span_id === child[0]?.span_id);
    expect(childEnd?.data.outputs).toEqual(expect.stringContaining("sunny"));

    // The child's own stages are spans under it; their model requests count in the execution's usage.
    const childStages = starts.filter((e) => e.parent_span_id === child[0]?.span_id);
    expect(childStages.length).toBeGreaterThanOrEqual(1);
    for (const stage of childStages)
      expect(stage.data.inputs).toMatchObject({ question: "Weather in Paris?" });
    const requests = events.filter((e) => e.event_type === "llm_call").length;
    const end = events.find((e) => e.event_type === "end" && e.parent_span_id === null) as StreamllEvent;
    expect(end.data.usage).toMatchObject({ requests, total_tokens: 6 * requests });
  }, 120_000);
});
