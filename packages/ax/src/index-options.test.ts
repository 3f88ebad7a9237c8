import { AxBootstrapFewShot, AxMockAIService, ax } from "@ax-llm/ax";
import { exportsWithoutCases, type MisspellingCase, misspelledOptionProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import * as streamllAx from "./index";

/** Every public function of @streamll/ax that takes an options object, given a misspelled option. */
const cases: readonly MisspellingCase[] = [
  {
    name: "instrumentAx",
    call: (options) => streamllAx.instrumentAx(ax("question:string -> answer:string"), options),
    top: ["includeInput", "includeInputs"],
  },
  {
    name: "instrumentAxOptimizer",
    call: (options) =>
      streamllAx.instrumentAxOptimizer(
        new AxBootstrapFewShot({ studentAI: new AxMockAIService<string>() }),
        options,
      ),
    top: ["tag", "tags"],
  },
  {
    name: "instrumentAxFunctions",
    call: (entry) =>
      streamllAx.instrumentAxFunctions([{ name: "lookup", description: "d", func: () => "ok", ...entry }]),
    top: ["fucn", "func"],
  },
];

describe("every public options object rejects a misspelled key", () => {
  it("names the path, the meant key and the allowed keys", async () => {
    expect(await misspelledOptionProblems(cases)).toEqual([]);
  });

  it("covers every exported function and class that takes an options object", () => {
    const withoutOptions = ["isAxInstrumented", "fingerprintProgram"];
    expect(exportsWithoutCases([streamllAx], cases, withoutOptions)).toEqual([]);
  });
});
