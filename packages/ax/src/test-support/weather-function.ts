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
