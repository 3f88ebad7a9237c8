import { ax } from "@ax-llm/ax";
import { compareEvents, type StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { instrumentAx } from "../instrument/instrument-ax";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { fingerprintProgram } from "./program-fingerprint";

afterEach(teardown);

const signatureOf = (events: readonly StreamllEvent[], type = "start") =>
  events.filter((e) => e.event_type === type).map((e) => e.code_signature);

describe("version tracking of Ax programs", () => {
  it("tells two programs apart by what defines them, and two copies of one program not", () => {
    const a = fingerprintProgram(ax("question:string -> answer:string"));
    const b = fingerprintProgram(ax("question:string -> answer:string"));
    const c = fingerprintProgram(ax('"Answers briefly" question:string -> answer:string'));
    const d = fingerprintProgram(ax("question:string -> answer:string, confidence:number"));
    expect(a.signature).toMatch(/^[0-9a-f]{12}$/);
    expect(b.signature).toBe(a.signature);
    expect(new Set([a.signature, c.signature, d.signature]).size).toBe(3);
  });

  it("changes the signature when demos, examples, the instruction or the model config change", () => {
    const program = ax("question:string -> answer:string");
    const seen = new Set([fingerprintProgram(program).signature]);
    program.setDemos([{ traces: [{ question: "2+2?", answer: "4" }], programId: "root" }]);
    seen.add(fingerprintProgram(program).signature);
    program.setExamples([{ question: "1+1?", answer: "2" }]);
    seen.add(fingerprintProgram(program).signature);
    program.setInstruction("Answer with a number only.");
    seen.add(fingerprintProgram(program).signature);
    const tuned = ax("question:string -> answer:string", { modelConfig: { temperature: 0.1 } });
    seen.add(fingerprintProgram(tuned).signature);
    expect(seen.size).toBe(5);
    expect(fingerprintProgram(program).components.map((c) => c.name)).toEqual([
      "signature",
      "instruction",
      "demos",
      "examples",
    ]);
  });

  it("gives an instrumented program's events its code_signature and announces each new version once", async () => {
    const sink = setup({ versionTracking: true });
    const { service } = scriptedAI([{ content: "Answer: 4" }]);
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "math" });
    await program.forward(service, { question: "2+2?" });
    await program.forward(service, { question: "3+3?" });
    program.setDemos([{ traces: [{ question: "2+2?", answer: "4" }], programId: "root" }]);
    await program.forward(service, { question: "4+4?" });

    const events = await collect(sink);
    const versions = events.filter((e) => e.event_type === "version");
    expect(versions).toHaveLength(2);
    expect(versions[0]?.data).toMatchObject({ strategy: "ax-program", methods: [{ name: "signature" }] });
    expect(versions[1]?.data.methods).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "demos" })]),
    );
    const [first, second, third] = signatureOf(events);
    expect(first).toBe(second);
    expect(third).not.toBe(first);
    expect(versions.map((v) => v.code_signature)).toEqual([first, third]);
    for (const event of events) {
      if (event.event_type !== "version") expect(event.code_signature).toMatch(/^[0-9a-f]{12}$/);
    }
  });

  it("announces a new version when the instruction or the examples change between calls", async () => {
    const sink = setup({ versionTracking: true });
    const { service } = scriptedAI([{ content: "Answer: 4" }]);
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "math" });
    await program.forward(service, { question: "1+1?" });
    await program.forward(service, { question: "1+1?" });
    program.setInstruction("Answer with a number only.");
    await program.forward(service, { question: "2+2?" });
    await program.forward(service, { question: "2+2?" });
    program.setExamples([{ question: "1+1?", answer: "2" }]);
    await program.forward(service, { question: "3+3?" });

    const events = await collect(sink);
    const versions = events.filter((e) => e.event_type === "version");
    expect(versions.map((v) => (v.data.methods as { name: string }[]).map((m) => m.name))).toEqual([
      ["signature"],
      ["signature", "instruction"],
      ["signature", "instruction", "examples"],
    ]);
    const starts = signatureOf(events);
    expect(starts[0]).toBe(starts[1]);
    expect(starts[2]).toBe(starts[3]);
    expect(new Set(starts).size).toBe(3);
    expect(versions.map((v) => v.code_signature)).toEqual([starts[0], starts[2], starts[4]]);
  });

  it("leaves the version fields empty when version tracking is off", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: 4" }]);
    await instrumentAx(ax("question:string -> answer:string")).forward(service, { question: "q" });
    const events = await collect(sink);
    expect(events.every((e) => e.code_signature === null)).toBe(true);
    expect(events.some((e) => e.event_type === "version")).toBe(false);
  });

  it("lets streamll compare tell the program before and after new demos apart", async () => {
    const sink = setup({ versionTracking: true });
    const { service } = scriptedAI([{ content: "Answer: 4" }]);
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "math" });
    for (let i = 0; i < 10; i++) await program.forward(service, { question: `${i}+${i}?` });
    const before = fingerprintProgram(program).signature;
    program.setDemos([{ traces: [{ question: "2+2?", answer: "4" }], programId: "root" }]);
    const after = fingerprintProgram(program).signature;
    for (let i = 0; i < 10; i++) await program.forward(service, { question: `${i}*${i}?` });

    const report = compareEvents(await collect(sink), { module: "math" });
    const versions = report.versions.filter((v) => v.operation === null);
    expect(versions.map((v) => v.code_signature).sort()).toEqual([before, after].sort());
    for (const version of versions) {
      expect(version.calls).toBe(10);
      expect(version.strategy).toBe("ax-program");
    }
    const comparison = report.comparisons.find((c) => c.operation === null);
    expect([comparison?.baseline, comparison?.candidate].sort()).toEqual([before, after].sort());
    expect(comparison?.note).toBeNull();
  });
});
