import { agent, flow } from "@ax-llm/ax";
import type { StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { collect, setup, teardown } from "../test-support/setup";
import { cityAI, weatherFunction } from "../test-support/weather-function";
import { instrumentAx } from "./instrument-ax";
import { instrumentAxFunctions } from "./instrument-functions";
import type { InstrumentAxOptions } from "./options";

afterEach(teardown);

/**
 * A flow whose only node is an agent with a wrapped function, instrumented as a user would: the flow only
 * (the agent is never passed to instrumentAx itself).
 */
const weatherFlow = (options: InstrumentAxOptions) => {
  const weatherAgent = agent("question:string -> answer:string", {
    agentIdentity: { name: "weatherAgent", description: "Answers weather questions" },
    functions: instrumentAxFunctions([weatherFunction]),
  });
  const trip = flow<{ question: string }>()
    .node("weather", weatherAgent)
    .execute("weather", (s) => ({ question: s.question }))
    .returns((s) => ({ answer: s.weatherResult.answer }));
  return instrumentAx(trip, { name: "trip", ...options });
};

type Flow = ReturnType<typeof weatherFlow>;
const run = (trip: Flow, city: string) =>
  trip.forward(cityAI(city), { question: `Weather in ${city}?` }, { maxSteps: 6 });

/**
 * Each flow run is one execution holding exactly its own function call, whose span's parents all belong to
 * that run and lead up to the run's root span.
 */
const expectOwnFunctionCalls = (events: readonly StreamllEvent[], cities: readonly string[]) => {
  const starts = events.filter((e) => e.event_type === "start");
  const roots = starts.filter((e) => e.parent_span_id === null);
  expect(roots.map((e) => e.module_name)).toEqual(cities.map(() => "trip"));
  const byId = new Map(starts.map((e) => [e.span_id, e]));
  for (const city of cities) {
    const root = roots.find(
      (e) => (e.data.inputs as { question?: unknown } | undefined)?.question === `Weather in ${city}?`,
    ) as StreamllEvent;
    expect(root, city).toBeDefined();
    const calls = starts.filter(
      (e) => e.operation === "function:lookupWeather" && e.data.arguments !== undefined,
    );
    const own = calls.filter((e) => (e.data.arguments as { city?: unknown }).city === city);
    expect(own, city).toHaveLength(1);
    const call = own[0] as StreamllEvent;
    expect(call.execution_id, city).toBe(root.execution_id);
    const chain: string[] = [];
    for (let span = byId.get(call.parent_span_id ?? ""); span !== undefined; ) {
      expect(span.execution_id, city).toBe(root.execution_id);
      chain.push(span.span_id);
      span = span.parent_span_id === null ? undefined : byId.get(span.parent_span_id);
    }
    expect(chain.at(-1), `${city}: the call's parents lead to its run`).toBe(root.span_id);
    const end = events.find((e) => e.span_id === call.span_id && e.event_type !== "start");
    expect(end?.event_type).toBe("end");
  }
};

describe.each([
  ["nested programs instrumented", {}],
  ["nested: false", { nested: false }],
] as const)("a flow with an agent node, only the flow instrumented (%s)", (_, options) => {
  it("records each function call under the flow run that made it, runs one after another", async () => {
    const sink = setup();
    const trip = weatherFlow(options);
    const cities = ["Paris", "Rome"];
    for (const city of cities) expect(await run(trip, city)).toEqual({ answer: "It is sunny in Paris." });
    expectOwnFunctionCalls(await collect(sink), cities);
  }, 120_000);

  // Two flows, each with its own agent: Ax keeps a run's code session on the agent's stages
  // (`_sharedSession`), so two runs of one agent instance at the same time share it in Ax itself.
  it("records each function call under the flow run that made it, flows run at the same time", async () => {
    const sink = setup();
    const cities = ["Lima", "Cairo"];
    await Promise.all(cities.map((city) => run(weatherFlow(options), city)));
    expectOwnFunctionCalls(await collect(sink), cities);
  }, 120_000);
});
