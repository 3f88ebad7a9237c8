import { AxGen, ax, flow } from "@ax-llm/ax";
import { afterEach, describe, expect, it } from "vitest";
import { instrumentAx } from "../instrument/instrument-ax";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { fingerprintProgram } from "./program-fingerprint";

afterEach(teardown);

/** A plain program built with the given setters, fingerprinted without ever having been cached. */
const freshSignature = (instruction: string | undefined, description: string | undefined) => {
  const program = ax("question:string -> answer:string");
  if (instruction !== undefined) program.setInstruction(instruction);
  if (description !== undefined) program.setDescription(description);
  return fingerprintProgram(program).signature;
};

const summaryFlow = () =>
  flow<{ documentText: string }>()
    .node("summarizer", "documentText:string -> summaryText:string")
    .execute("summarizer", (s) => ({ documentText: s.documentText }))
    .returns((s) => ({ summary: s.summarizerResult.summaryText }));

describe("fingerprint of a program changed in place", () => {
  // Ax's setDescription rewrites the signature object in place and its new hash leaves the description out, so
  // a cache keyed on that object and hash would keep the old fingerprint though the prompt changed.
  for (const instruction of [undefined, "Answer briefly."]) {
    it(`follows setDescription ${instruction === undefined ? "without" : "with"} an instruction`, () => {
      const program = ax("question:string -> answer:string");
      if (instruction !== undefined) program.setInstruction(instruction);
      const before = fingerprintProgram(program).signature;
      expect(fingerprintProgram(program).signature).toBe(before);

      program.setDescription("Answers in French");
      const afterFirst = fingerprintProgram(program).signature;
      expect(afterFirst).not.toBe(before);
      expect(afterFirst).toBe(freshSignature(instruction, "Answers in French"));

      program.setDescription("Answers in German");
      const afterSecond = fingerprintProgram(program).signature;
      expect(afterSecond).not.toBe(afterFirst);
      expect(afterSecond).toBe(freshSignature(instruction, "Answers in German"));

      program.setInstruction("Answer at length.");
      expect(fingerprintProgram(program).signature).toBe(
        freshSignature("Answer at length.", "Answers in German"),
      );
    });
  }

  it("gives the calls after setDescription the new code_signature and announces it once", async () => {
    const sink = setup({ versionTracking: true });
    const { service } = scriptedAI([{ content: "Answer: ok" }]);
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "qa" });
    program.setInstruction("Answer briefly.");
    await program.forward(service, { question: "q" });
    program.setDescription("Answers in French");
    await program.forward(service, { question: "q" });
    await program.forward(service, { question: "q" });

    const events = await collect(sink);
    const ends = events.filter((e) => e.event_type === "end").map((e) => e.code_signature);
    expect(ends[1]).not.toBe(ends[0]);
    expect(ends[2]).toBe(ends[1]);
    expect(ends[1]).toBe(freshSignature("Answer briefly.", "Answers in French"));
    expect(fingerprintProgram(program).signature).toBe(ends[1]);
    const versions = events.filter((e) => e.event_type === "version" && e.module_name === "qa");
    expect(versions.map((v) => v.code_signature)).toEqual([ends[0], ends[1]]);
  });

  it("changes a flow's fingerprint when a node's instruction or description changes", async () => {
    const sink = setup({ versionTracking: true });
    const { service } = scriptedAI([{ content: "Summary Text: s" }]);
    const summary = instrumentAx(summaryFlow(), { name: "summary" });
    const node = summary.namedProgramInstances().find((entry) => entry.id.endsWith("summarizer"))?.program;
    if (!(node instanceof AxGen)) throw new Error("the flow's node is not an AxGen");

    await summary.forward(service, { documentText: "d" });
    node.setInstruction("Summarize in one line.");
    await summary.forward(service, { documentText: "d" });
    node.setDescription("Summaries for execs");
    await summary.forward(service, { documentText: "d" });
    node.setDescription("Summaries for engineers");
    await summary.forward(service, { documentText: "d" });

    const events = await collect(sink);
    const ends = events.filter((e) => e.event_type === "end");
    const flowSignatures = ends.filter((e) => e.module_name === "summary").map((e) => e.code_signature);
    const nodeSignatures = ends.filter((e) => e.module_name !== "summary").map((e) => e.code_signature);
    expect(flowSignatures).toHaveLength(4);
    expect(new Set(flowSignatures).size).toBe(4);
    expect(new Set(nodeSignatures).size).toBe(4);
    expect(flowSignatures[3]).toBe(fingerprintProgram(summary).signature);
  });

  it("names an unnamed program after its current description, after every setDescription", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: ok" }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    program.setDescription("Translates to French");
    await program.forward(service, { question: "q" });
    program.setDescription("Translates to German");
    await program.forward(service, { question: "q" });
    const events = await collect(sink);
    const names = events.filter((e) => e.event_type === "end").map((e) => e.module_name);
    expect(names).toEqual(["Translates to French", "Translates to German"]);
  });
});
