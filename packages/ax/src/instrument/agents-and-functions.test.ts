import { AxFunctionError, type AxInputFunctionType, agent, ax, f, fn } from "@ax-llm/ax";
import { ConfigurationError, type StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { scriptedAI, stagedAgentAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { cityAI, weatherFunction } from "../test-support/weather-function";
import { instrumentAx } from "./instrument-ax";
import { instrumentAxFunctions } from "./instrument-functions";

afterEach(teardown);

const spanStarts = (events: readonly StreamllEvent[]) => events.filter((e) => e.event_type === "start");

describe("function calls", () => {
  it("records each function an ax() program calls as a child span with its arguments and result", async () => {
    const sink = setup();
    const { service } = scriptedAI([
      { content: "", functionCalls: [{ id: "c1", name: "lookupWeather", params: '{"city":"Paris"}' }] },
      { content: "Answer: sunny" },
    ]);
    const program = instrumentAx(ax("question:string -> answer:string", { functions: [weatherFunction] }));
    expect(await program.forward(service, { question: "Weather in Paris?" })).toEqual({ answer: "sunny" });

    const events = await collect(sink);
    const root = spanStarts(events).find((e) => e.parent_span_id === null) as StreamllEvent;
    const call = events.filter((e) => e.operation === "function:lookupWeather");
    expect(call.map((e) => e.event_type)).toEqual(["start", "end"]);
    expect(call[0]?.parent_span_id).toBe(root.span_id);
    expect(call[0]?.data).toEqual({ function: "lookupWeather", arguments: { city: "Paris" } });
    expect(call[1]?.data.outputs).toBe("sunny in Paris");
    expect(events.filter((e) => e.event_type === "llm_call").map((e) => e.data.step)).toEqual([0, 1]);
  });
});

describe("a function of an ax() program that throws", () => {
  const failingWeather = {
    ...weatherFunction,
    func: async ({ city }: { city: string }): Promise<string> => {
      throw new Error(`quota exceeded for city ${city}`);
    },
  };

  /** The `function:lookupWeather` span's events and the call's own `error`, for the function as given. */
  async function runFailing(functions: AxInputFunctionType) {
    const sink = setup();
    const { service } = scriptedAI([
      { content: "", functionCalls: [{ id: "c1", name: "lookupWeather", params: '{"city":"Paris"}' }] },
      { content: "Answer: sunny" },
    ]);
    const program = instrumentAx(ax("question:string -> answer:string", { functions }));
    const thrown = await program.forward(service, { question: "Weather in Paris?" }).catch((e: unknown) => e);
    const events = await collect(sink);
    return {
      thrown,
      events,
      fn: events.filter((e) => e.operation === "function:lookupWeather"),
      callError: events.find((e) => e.event_type === "error" && e.operation === null),
    };
  }

  it("ends the function's span with the function's own error, as a wrapped function's span does", async () => {
    const { thrown, events, fn, callError } = await runFailing([failingWeather]);
    expect(String(thrown)).toContain("quota exceeded for city Paris");
    expect(fn.map((e) => e.event_type)).toEqual(["start", "error"]);
    expect(fn[1]?.data).toMatchObject({
      function: "lookupWeather",
      error_type: "Error",
      error_message: "quota exceeded for city Paris",
    });
    expect(fn[1]?.data.stack).toContain("quota exceeded for city Paris");
    expect(typeof fn[1]?.data.duration_ms).toBe("number");
    // Ax does not retry after an error it cannot hand to the model: the call fails with it.
    expect(events.some((e) => e.event_type === "retry")).toBe(false);
    expect(callError?.data.error_message).toContain("quota exceeded for city Paris");
    await teardown();

    const wrapped = await runFailing(instrumentAxFunctions([failingWeather]));
    expect(wrapped.fn.map((e) => e.event_type)).toEqual(["start", "error"]);
    for (const key of ["error_type", "error_message"])
      expect(fn[1]?.data[key], key).toEqual(wrapped.fn[1]?.data[key]);
  });

  const badCityWeather = {
    ...weatherFunction,
    func: async ({ city }: { city: string }): Promise<string> => {
      throw new AxFunctionError([{ field: "city", message: `unknown city ${city}` }]);
    },
  };

  it("records an AxFunctionError as Ax's fixing instructions, and the retry Ax makes with Ax's reason", async () => {
    const { thrown, events, fn } = await runFailing([badCityWeather]);
    expect(thrown).toEqual({ answer: "sunny" });
    expect(fn.map((e) => e.event_type)).toEqual(["start", "error"]);
    expect(fn[1]?.data.error_type).toBe("FunctionError");
    expect(fn[1]?.data.error_message).toContain("`city` - unknown city Paris");
    const retries = events.filter((e) => e.event_type === "retry");
    expect(retries).toHaveLength(1);
    expect(retries[0]?.data).toMatchObject({ attempt: 1, kind: "function" });
    expect(retries[0]?.data.reason).toContain("lookupWeather");
    expect(retries[0]?.data.reason).toContain("city: unknown city Paris");
  });

  it("records a wrapped function's AxFunctionError with its fields, though the error has no message", async () => {
    const { fn } = await runFailing(instrumentAxFunctions([badCityWeather]));
    expect(fn.map((e) => e.event_type)).toEqual(["start", "error"]);
    expect(fn[1]?.data).toMatchObject({
      error_type: "AxFunctionError",
      error_message: "Function validation error\n  - city: unknown city Paris",
    });
  });
});

describe("functions wrapped by instrumentAxFunctions() in an ax() program", () => {
  it("records each call once: the wrapper's span, not a second one from onFunctionCall", async () => {
    const sink = setup();
    const { service } = scriptedAI([
      { content: "", functionCalls: [{ id: "c1", name: "lookupWeather", params: '{"city":"Paris"}' }] },
      { content: "", functionCalls: [{ id: "c2", name: "lookupWeather", params: '{"city":"Rome"}' }] },
      { content: "Answer: sunny" },
    ]);
    const hooked: string[] = [];
    const program = instrumentAx(
      ax("question:string -> answer:string", { functions: instrumentAxFunctions([weatherFunction]) }),
    );
    const result = await program.forward(
      service,
      { question: "Weather in Paris and Rome?" },
      { onFunctionCall: (call) => void hooked.push(call.fn) },
    );
    expect(result).toEqual({ answer: "sunny" });
    expect(hooked, "the caller's own onFunctionCall still runs").toEqual(["lookupWeather", "lookupWeather"]);

    const events = await collect(sink);
    const root = spanStarts(events).find((e) => e.parent_span_id === null) as StreamllEvent;
    const calls = events.filter((e) => e.operation === "function:lookupWeather");
    expect(calls.map((e) => e.event_type)).toEqual(["start", "end", "start", "end"]);
    expect(new Set(calls.map((e) => e.span_id)).size).toBe(2);
    for (const e of calls) expect(e.parent_span_id).toBe(root.span_id);
    expect(calls.filter((e) => e.event_type === "start").map((e) => e.data.arguments)).toEqual([
      { city: "Paris" },
      { city: "Rome" },
    ]);
    expect(calls.filter((e) => e.event_type === "end").map((e) => e.data.outputs)).toEqual([
      "sunny in Paris",
      "sunny in Rome",
    ]);
  });
});

describe("instrumentAxFunctions() checks the functions it wraps", () => {
  const problem = (functions: unknown): ConfigurationError => {
    try {
      instrumentAxFunctions(functions as never);
    } catch (error) {
      if (error instanceof ConfigurationError) return error;
      throw error;
    }
    throw new Error("accepted");
  };

  it("rejects a misspelled func at once, naming the entry's path and the key it meant", () => {
    const { func, ...rest } = weatherFunction;
    const error = problem([weatherFunction, { ...rest, fucn: func }]);
    expect(error.code).toBe("CONFIGURATION_INVALID");
    expect(error.issues).toEqual([
      expect.objectContaining({ path: "[1].fucn", message: expect.stringContaining("did you mean `func`?") }),
      expect.objectContaining({ path: "[1].func", message: expect.stringContaining("is required") }),
    ]);
  });

  it("requires a name, and rejects a non-array", () => {
    const { name: _name, ...rest } = weatherFunction;
    expect(problem([rest]).issues.map((i) => i.path)).toEqual(["[0].name"]);
    expect(problem(weatherFunction).issues.map((i) => i.path)).toEqual([""]);
  });

  it("accepts every key of Ax's functions, those fn(...).build() makes included", () => {
    const built = fn("lookupWeather")
      .description("Looks up the current weather for a city")
      .namespace("weather")
      .arg("city", f.string("the city"))
      .returns(f.string("the weather"))
      .example({ code: 'await weather.lookupWeather({ city: "Paris" })' })
      .handler(async ({ city }) => `sunny in ${city}`)
      .build();
    const [wrapped] = instrumentAxFunctions([built]);
    expect(Object.keys(wrapped).sort()).toEqual(Object.keys(built).sort());
    expect(() =>
      instrumentAxFunctions([{ ...weatherFunction, componentId: "c", execution: "background" as const }]),
    ).not.toThrow();
  });
});

const agentAI = () =>
  stagedAgentAI({
    fn: "lookupWeather",
    distill: 'await final("Look up the current weather in Paris and report it", { city: "Paris" })',
    execute: [
      'const weather = await utils.lookupWeather({ city: "Paris" });\nconsole.log(weather);',
      'await final("Report the weather in Paris", { weather: "sunny in Paris" })',
    ],
  });

describe("agent(...)", () => {
  it("makes the agent one execution, its stages child spans and its function calls spans, with usage summed", async () => {
    const sink = setup();
    const weatherAgent = agent("question:string -> answer:string", {
      agentIdentity: { name: "weatherAgent", description: "Answers weather questions" },
      functions: instrumentAxFunctions([weatherFunction]),
    });
    instrumentAx(weatherAgent, { name: "weather-agent" });
    const result = await weatherAgent.forward(agentAI(), { question: "Weather in Paris?" }, { maxSteps: 6 });
    expect(result).toEqual({ answer: "It is sunny in Paris." });

    const events = await collect(sink);
    expect(new Set(events.map((e) => e.execution_id)).size).toBe(1);
    const root = spanStarts(events).filter((e) => e.parent_span_id === null);
    expect(root.map((e) => e.module_name)).toEqual(["weather-agent"]);
    const stages = spanStarts(events).filter((e) => e.parent_span_id !== null && e.operation === null);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.module_name).not.toMatch(/^#|^r$/);
    const fn = events.filter((e) => e.operation === "function:lookupWeather");
    expect(fn.map((e) => e.event_type)).toEqual(["start", "end"]);
    expect(fn[0]?.data).toEqual({ function: "lookupWeather", arguments: { city: "Paris" } });
    expect(fn[1]?.data.outputs).toBe("sunny in Paris");
    const end = events.find((e) => e.event_type === "end" && e.parent_span_id === null) as StreamllEvent;
    const requests = events.filter((e) => e.event_type === "llm_call").length;
    expect(requests).toBeGreaterThanOrEqual(3);
    expect(end.data.usage).toMatchObject({ requests, total_tokens: 6 * requests });
    expect(end.data.outputs).toEqual({ answer: "It is sunny in Paris." });
  }, 120_000);
});

describe("agent(...) function calls across agent runs", () => {
  /** An agent whose executor looks up the weather in `city`, so each run's function call is told apart. */
  const cityAgent = (name: string) => {
    const weatherAgent = agent("question:string -> answer:string", {
      agentIdentity: { name: "weatherAgent", description: "Answers weather questions" },
      functions: instrumentAxFunctions([weatherFunction]),
    });
    return instrumentAx(weatherAgent, { name });
  };
  const run = (city: string) =>
    cityAgent(`agent-${city}`).forward(cityAI(city), { question: `Weather in ${city}?` }, { maxSteps: 6 });

  /**
   * Each agent run is one execution holding exactly its own function call, opened under a span of that run
   * (the agent or one of its stages) that is still open when the call ends. Ax calls the functions from a
   * pooled worker first used by an earlier run, so a call recorded in that run's context would land there.
   */
  const expectOwnFunctionCalls = (events: readonly StreamllEvent[], cities: readonly string[]) => {
    const starts = spanStarts(events);
    const roots = starts.filter((e) => e.parent_span_id === null);
    expect(roots.map((e) => e.module_name).sort()).toEqual(cities.map((city) => `agent-${city}`).sort());
    const byId = new Map(starts.map((e) => [e.span_id, e]));
    const endOf = (spanId: string) => events.find((e) => e.span_id === spanId && e.event_type !== "start");
    for (const city of cities) {
      const root = roots.find((e) => e.module_name === `agent-${city}`) as StreamllEvent;
      const calls = starts.filter(
        (e) => e.operation === "function:lookupWeather" && e.execution_id === root.execution_id,
      );
      expect(calls.map((e) => e.data.arguments)).toEqual([{ city }]);
      const call = calls[0] as StreamllEvent;
      const parent = byId.get(call.parent_span_id ?? "");
      expect(parent?.execution_id).toBe(root.execution_id);
      expect([parent?.span_id, parent?.parent_span_id]).toContain(root.span_id);
      const callEnd = endOf(call.span_id) as StreamllEvent;
      const parentEnd = endOf(parent?.span_id ?? "") as StreamllEvent;
      expect(callEnd.event_type).toBe("end");
      expect(Date.parse(parentEnd.timestamp)).toBeGreaterThanOrEqual(Date.parse(callEnd.timestamp));
    }
  };

  it("records each function call under the agent run that made it, runs one after another", async () => {
    const sink = setup();
    const cities = ["Paris", "Rome", "Oslo"];
    for (const city of cities) expect(await run(city)).toEqual({ answer: "It is sunny in Paris." });
    expectOwnFunctionCalls(await collect(sink), cities);
  }, 120_000);

  it("records each function call under the agent run that made it, runs at the same time", async () => {
    const sink = setup();
    const cities = ["Lima", "Cairo"];
    await Promise.all(cities.map(run));
    expectOwnFunctionCalls(await collect(sink), cities);
  }, 120_000);
});
