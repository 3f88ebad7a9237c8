import { exportsWithoutCases, type MisspellingCase, misspelledOptionProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import * as viewer from "./index";

/** Every public constructor and factory of @streamll/viewer given a misspelled option, top level and nested. */
const cases: readonly MisspellingCase[] = [
  {
    name: "startViewer",
    call: (options) => viewer.startViewer(options as viewer.ViewerOptions),
    top: ["maxExecution", "maxExecutions"],
    nested: [
      { prices: { m: { inputPerMillion: 1, outputPerMilion: 1 } } },
      "prices.m.outputPerMilion",
      "outputPerMillion",
    ],
  },
  {
    name: "ViewerServer",
    call: (options) => viewer.ViewerServer.start(options as viewer.ViewerOptions),
    top: ["keepalive", "keepAlive"],
  },
  {
    name: "ViewerSink",
    call: (options) => new viewer.ViewerSink(options as viewer.ViewerSinkOptions),
    top: ["onURL", "onUrl"],
  },
  {
    name: "followFile",
    call: (options) =>
      viewer.followFile("/nonexistent", { line: () => undefined, skipped: () => undefined }, options),
    top: ["poll", "pollMs"],
  },
];

describe("every public options object rejects a misspelled key", () => {
  it("names the path, the meant key and the allowed keys, at the top level and nested", async () => {
    expect(await misspelledOptionProblems(cases)).toEqual([]);
  });

  it("covers every exported function and class that takes an options object", () => {
    expect(exportsWithoutCases([viewer], cases, ["readLines"])).toEqual([]);
  });
});
