import { AxGen, type AxInputFunctionType, agent, ax, f, flow, fn } from "@ax-llm/ax";
import { describe, expect, expectTypeOf, it } from "vitest";
import { scriptedAI } from "../test-support/mock-ai";
import { weatherFunction as weather } from "../test-support/weather-function";
import { instrumentAxFunctions } from "./instrument-functions";

/**
 * What `instrumentAxFunctions()` returns goes straight into every Ax option that takes functions, with no
 * `[...]` copy. These lines are checked by `tsc` (the package's typecheck): a readonly result, or one whose
 * literal's nested arrays turned readonly, fails it.
 */

const built = fn("lookupTime")
  .description("Looks up the local time in a city")
  .arg("city", f.string("the city"))
  .handler(async ({ city }) => `noon in ${city}`)
  .build();

describe("instrumentAxFunctions() types", () => {
  it("returns what ax(), AxGen, forward options and flow nodes take as is", () => {
    const inline = ax("question:string -> answer:string", {
      functions: instrumentAxFunctions([
        {
          name: "lookupWeather",
          description: "Looks up the current weather for a city",
          execution: "blocking",
          parameters: {
            type: "object",
            properties: { city: { type: "string", description: "the city", enum: ["Paris", "Rome"] } },
            required: ["city"],
          },
          func: async ({ city }: { city: string }) => `sunny in ${city}`,
        },
      ]),
    });
    const declared = ax("question:string -> answer:string", {
      functions: instrumentAxFunctions([weather, built]),
    });
    const gen = new AxGen("question:string -> answer:string", {
      functions: instrumentAxFunctions([weather]),
    });
    const node = flow<{ question: string }>().node(
      "answerer",
      ax("question:string -> answer:string", { functions: instrumentAxFunctions([built]) }),
    );
    const list: AxInputFunctionType = instrumentAxFunctions([weather, built]);
    expect([inline, declared, gen, node].every((p) => typeof p.forward === "function")).toBe(true);
    expect(list.map((entry) => ("name" in entry ? entry.name : ""))).toEqual(["lookupWeather", "lookupTime"]);
  });

  it("returns what agent() takes as is", () => {
    const weatherAgent = agent("question:string -> answer:string", {
      agentIdentity: { name: "weatherAgent", description: "Answers weather questions" },
      functions: instrumentAxFunctions([weather, built]),
    });
    expect(typeof weatherAgent.forward).toBe("function");
  });

  it("keeps each entry's own type, a literal list as a tuple", () => {
    const wrapped = instrumentAxFunctions([weather, built]);
    expectTypeOf(wrapped).toEqualTypeOf<[typeof weather, typeof built]>();
    const [first] = instrumentAxFunctions([weather]);
    expectTypeOf(first.func).toEqualTypeOf(weather.func);
    const fromReadonly = instrumentAxFunctions([weather] as readonly (typeof weather)[]);
    expectTypeOf(fromReadonly).toEqualTypeOf<(typeof weather)[]>();
    expect(wrapped).not.toBe([weather, built]);
    expect(wrapped.map((entry) => entry.name)).toEqual(["lookupWeather", "lookupTime"]);
  });

  it("runs in a program it was passed to directly, and in forward options", async () => {
    const { service } = scriptedAI([
      { content: "", functionCalls: [{ id: "c1", name: "lookupWeather", params: '{"city":"Paris"}' }] },
      { content: "Answer: sunny" },
    ]);
    const program = ax("question:string -> answer:string");
    const result = await program.forward(
      service,
      { question: "Weather in Paris?" },
      { functions: instrumentAxFunctions([weather]) },
    );
    expect(result).toEqual({ answer: "sunny" });
  });
});
