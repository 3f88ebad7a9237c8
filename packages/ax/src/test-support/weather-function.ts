import { stagedAgentAI } from "./mock-ai";

/** An Ax function the tests give programs and agents: its city comes back as `sunny in <city>`. */
export const weatherFunction = {
  name: "lookupWeather",
  description: "Looks up the current weather for a city",
  parameters: {
    type: "object" as const,
    properties: { city: { type: "string" as const, description: "the city" } },
    required: ["city"],
  },
  func: async ({ city }: { city: string }) => `sunny in ${city}`,
};

/** An agent's model whose executor's code looks up the weather in `city` with {@link weatherFunction}. */
export function cityAI(city: string) {
  return stagedAgentAI({
    fn: "lookupWeather",
    distill: `await final("Look up the current weather in ${city} and report it", { city: "${city}" })`,
    execute: [
      `const weather = await utils.lookupWeather({ city: "${city}" });\nconsole.log(weather);`,
      `await final("Report the weather in ${city}", { weather: "sunny in ${city}" })`,
    ],
  });
}
