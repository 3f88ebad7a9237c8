import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { streamllEventSchema } from "../events/event-schema";
import { instrument } from "../instrument/instrument";
import { configure, flush, shutdown } from "../instrument/runtime";
import { trace } from "../instrument/trace";
import { JsonlFileSink } from "../sinks/jsonl-file-sink";
import { MemorySink } from "../sinks/memory-sink";
import { computeCodeSignature, computeCodeSignatureDetails } from "./code-signature";
import { compareEventFiles, compareEvents } from "./compare/compare-versions";
import { formatCompareReport } from "./compare/format-report";
import { runCli } from "./compare/run-cli";
import type { CodeSignatureStrategyName } from "./options";

/**
 * End to end: two implementations of the same module name run through instrument(), the delivery pipeline
 * and a JsonlFileSink; `streamll compare` must tell the versions apart, flag the injected slowdown and leave a
 * same-speed control alone.
 */
const dir = mkdtempSync(join(tmpdir(), "streamll-versions-"));
const path = join(dir, "events.jsonl");

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// Two releases of the module "Qa": the second adds a 30 ms lookup before answering. The slowdown is several
// times the base latency so that event-loop stalls on a loaded machine (which hit every version alike, as
// all four modules run concurrently) cannot hide it.
const SLOWDOWN_MS = 30;
const QaV1 = class Qa {
  async forward(question: string): Promise<string> {
    await sleep(4);
    return question.trim();
  }
};
const QaV2 = class Qa {
  async forward(question: string): Promise<string> {
    await sleep(4);
    await this.lookup(question);
    return question.trim();
  }
  async lookup(question: string): Promise<number> {
    await sleep(SLOWDOWN_MS);
    return question.length;
  }
};

// The control: "Summarize" changes its code but not its speed. Both versions start their 4 ms timer in the same
// tick of every round, so they see the same stalls; the 5 % minimum effect keeps the tiny, order-dependent
// differences (alternated every round) from ever being flagged.
const SummarizeV1 = class Summarize {
  async forward(text: string): Promise<string> {
    await sleep(4);
    return text.slice(0, 10);
  }
};
const SummarizeV2 = class Summarize {
  async forward(text: string): Promise<string> {
    await sleep(4);
    return text.split(" ")[0] ?? text;
  }
};

const ROUNDS = 30;

describe("version change detection end to end", () => {
  it("records both versions and streamll compare flags only the slowdown", async () => {
    configure({
      sinks: [{ sink: new JsonlFileSink({ path }), delivery: { flushIntervalMs: 20 } }],
      versionTracking: { gitCommit: "abc1234", moduleVersion: "qa-service@2.0.0" },
      includeInputs: false,
      includeOutputs: false,
    });
    const modules = [QaV1, QaV2, SummarizeV1, SummarizeV2].map((Module) => instrument(new Module()));
    for (let round = 0; round < ROUNDS; round++) {
      // All four run concurrently so they share the machine's state; the order alternates so no version is
      // systematically first.
      const order = round % 2 === 0 ? modules : [...modules].reverse();
      await Promise.all(order.map((module) => module.forward(`question ${round} for the module`)));
    }
    await shutdown(5_000);

    const events = readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => streamllEventSchema.parse(JSON.parse(line)));
    const signatures = {
      qa1: computeCodeSignature(QaV1, { method: "forward" }),
      qa2: computeCodeSignature(QaV2, { method: "forward" }),
      sum1: computeCodeSignature(SummarizeV1, { method: "forward" }),
      sum2: computeCodeSignature(SummarizeV2, { method: "forward" }),
    };
    expect(new Set(Object.values(signatures)).size).toBe(4);

    // Every event of an instrumented call carries the three fields.
    for (const event of events) {
      expect(event.module_version).toBe("qa-service@2.0.0");
      expect(event.git_commit).toBe("abc1234");
      expect(Object.values(signatures)).toContain(event.code_signature);
    }
    // One version event per (module, signature), before that version's first start event.
    const versionEvents = events.filter((event) => event.event_type === "version");
    expect(versionEvents.map((event) => `${event.module_name}:${event.code_signature}`).sort()).toEqual(
      [
        `Qa:${signatures.qa1}`,
        `Qa:${signatures.qa2}`,
        `Summarize:${signatures.sum1}`,
        `Summarize:${signatures.sum2}`,
      ].sort(),
    );
    for (const version of versionEvents) {
      expect(version.data).toMatchObject({ strategy: "ast", code_signature: version.code_signature });
      const firstStart = events.findIndex(
        (event) => event.event_type === "start" && event.code_signature === version.code_signature,
      );
      expect(events.indexOf(version)).toBeLessThan(firstStart);
    }

    const report = await compareEventFiles([path]);
    const versionsOf = (module: string) =>
      report.versions.filter((version) => version.module === module).map((version) => version.code_signature);
    expect(versionsOf("Qa")).toEqual([signatures.qa1, signatures.qa2]);
    expect(versionsOf("Summarize")).toEqual([signatures.sum1, signatures.sum2]);
    for (const version of report.versions) {
      expect(version).toMatchObject({ calls: ROUNDS, errors: 0, strategy: "ast", git_commit: "abc1234" });
    }

    const qa = report.comparisons.find((comparison) => comparison.module === "Qa")!;
    expect(qa).toMatchObject({ baseline: signatures.qa1, candidate: signatures.qa2 });
    expect(qa.duration).toMatchObject({ verdict: "regression", n_baseline: ROUNDS, n_candidate: ROUNDS });
    // Timers never fire early by more than the clock's rounding, so the slow version's median is at least
    // the base sleep plus the injected lookup.
    expect(qa.duration.p50_candidate!).toBeGreaterThan(SLOWDOWN_MS + 3);
    expect(qa.duration.relative_change!).toBeGreaterThan(1);
    expect(qa.duration.probability_slower!).toBeGreaterThan(0.8);
    expect(qa.duration.p_adjusted!).toBeLessThan(0.001);
    const control = report.comparisons.find((comparison) => comparison.module === "Summarize")!;
    expect(control).toMatchObject({ baseline: signatures.sum1, candidate: signatures.sum2 });
    expect(control.duration).toMatchObject({ n_baseline: ROUNDS, n_candidate: ROUNDS });
    expect(control.duration.verdict).toBe("no-significant-change");
    expect(control.error_rate.verdict).toBe("no-significant-change");

    // The CLI prints the same verdicts and exits 1 with --fail-on-regression.
    let output = "";
    const status = await runCli(["compare", path, "--fail-on-regression"], {
      stdout: (text) => {
        output += text;
      },
      stderr: (text) => {
        output += text;
      },
    });
    expect(status).toBe(1);
    expect(output).toContain(`Qa.forward: ${signatures.qa1} -> ${signatures.qa2}`);
    expect(output).toContain(`n = ${ROUNDS} vs ${ROUNDS}, Mann-Whitney U`);
    expect(output.match(/REGRESSION/g)).toHaveLength(1);
    const lines = output.split("\n");
    const qaHeader = lines.findIndex(
      (line) => line.trim() === `Qa.forward: ${signatures.qa1} -> ${signatures.qa2}`,
    );
    expect(lines[qaHeader + 1]).toMatch(/^\s+duration .*REGRESSION$/);
  });
});

describe("streamll compare counts calls by (module, method), trace() steps apart", () => {
  it("reports forward's own calls and error rate, and each step in a row of its own", async () => {
    // The demo's shape: every call runs two steps, one call in three fails after them. Counting every span as a
    // call of the module would report 54 calls and 11 % errors instead of 18 calls and 33 %.
    class RagPipeline {
      async forward(question: number): Promise<string> {
        const passages = await trace("retrieve", async () => [`passage ${question}`]);
        await trace("generate", () => passages.length);
        if (question % 3 === 0) throw new Error("the model refused");
        return passages[0]!;
      }
    }
    const sink = new MemorySink();
    configure({ sinks: [sink], versionTracking: { gitCommit: "abc1234" } });
    const pipeline = instrument(new RagPipeline());
    for (let question = 0; question < 18; question++) await pipeline.forward(question).catch(() => null);
    await shutdown(2_000);

    const report = compareEvents(sink.events);
    const rows = report.versions.map((version) => ({
      row: [version.module, version.method, version.operation],
      calls: version.calls,
      errors: version.errors,
      strategy: version.strategy,
    }));
    expect(rows).toEqual([
      { row: ["RagPipeline", "forward", null], calls: 18, errors: 6, strategy: "ast" },
      { row: ["RagPipeline", "forward", "generate"], calls: 18, errors: 0, strategy: "ast" },
      { row: ["RagPipeline", "forward", "retrieve"], calls: 18, errors: 0, strategy: "ast" },
    ]);
    expect(report.versions[0]!.error_rate).toBeCloseTo(1 / 3);
    const text = formatCompareReport(report);
    expect(text).toContain("module RagPipeline, method forward\n");
    expect(text).toContain("module RagPipeline, method forward, operation retrieve\n");
  });

  it("compares a step's versions with each other, not with the module's calls", async () => {
    const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    const FastLookup = class Lookup {
      async forward(): Promise<void> {
        await trace("fetch", () => sleep(1));
      }
    };
    const SlowLookup = class Lookup {
      async forward(): Promise<void> {
        await trace("fetch", () => sleep(40));
      }
    };
    const sink = new MemorySink();
    configure({ sinks: [sink], versionTracking: { gitCommit: "abc1234" } });
    const fast = instrument(new FastLookup());
    for (let i = 0; i < 10; i++) await fast.forward();
    const slow = instrument(new SlowLookup());
    for (let i = 0; i < 10; i++) await slow.forward();
    await shutdown(2_000);

    const report = compareEvents(sink.events);
    expect(report.comparisons.map((comparison) => [comparison.method, comparison.operation])).toEqual([
      ["forward", null],
      ["forward", "fetch"],
    ]);
    const step = report.comparisons[1]!;
    expect(step.duration).toMatchObject({ n_baseline: 10, n_candidate: 10, verdict: "regression" });
    expect(formatCompareReport(report)).toContain(`Lookup.forward (operation fetch): ${step.baseline} -> `);
  });
});

describe("version fields through instrument()", () => {
  class Writer {
    async forward(topic: string): Promise<string> {
      return `about ${topic}`;
    }
    async fail(): Promise<never> {
      throw new Error("upstream timed out");
    }
    async *stream(topic: string): AsyncGenerator<string> {
      yield "about ";
      yield topic;
    }
  }

  it("is off by default: no version events and null fields", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink] });
    await instrument(new Writer()).forward("x");
    await flush(2_000);
    expect(sink.events.map((event) => event.event_type)).toEqual(["start", "end"]);
    for (const event of sink.events) {
      expect([event.module_version, event.code_signature, event.git_commit]).toEqual([null, null, null]);
    }
    await shutdown(2_000);
  });

  it("one option turns it on: start, end, error and token events carry the three fields; one version event per pair", async () => {
    const sink = new MemorySink();
    configure({
      sinks: [sink],
      versionTracking: { gitCommit: "abc1234-dirty", moduleVersion: "writer@3.1.0" },
    });
    // Many instances and concurrent first calls: still one version event per (module, code_signature).
    const writers = Array.from({ length: 5 }, () =>
      instrument(new Writer(), { methods: ["forward", "fail", "stream"] }),
    );
    await Promise.all(writers.map((writer) => writer.forward("a")));
    await Promise.all(writers.map((writer) => writer.fail().catch(() => "failed")));
    for (const writer of writers) {
      const chunks: string[] = [];
      for await (const chunk of writer.stream("b")) chunks.push(chunk);
      expect(chunks.join("")).toBe("about b");
    }
    await flush(2_000);
    const events = sink.events;
    const signatureOf = (method: string) => computeCodeSignature(Writer, { method });
    const expected = new Map([
      ["forward", signatureOf("forward")],
      ["fail", signatureOf("fail")],
      ["stream", signatureOf("stream")],
    ]);
    expect(new Set(expected.values()).size).toBe(3);
    const kinds = new Set(events.map((event) => event.event_type));
    for (const kind of ["version", "start", "end", "error", "token"]) expect(kinds).toContain(kind);
    for (const event of events) {
      expect(event.code_signature).toBe(expected.get(event.method_name!));
      expect(event.module_version).toBe("writer@3.1.0");
      expect(event.git_commit).toBe("abc1234-dirty");
    }
    const versionEvents = events.filter((event) => event.event_type === "version");
    expect(versionEvents.map((event) => event.method_name).sort()).toEqual(["fail", "forward", "stream"]);
    // Ordinary events stay small: the mapping is only in the version event.
    for (const event of events.filter((e) => e.event_type !== "version")) {
      expect(event.data).not.toHaveProperty("strategy");
      expect(event.data).not.toHaveProperty("methods");
      expect(event.data).not.toHaveProperty("dependencies");
    }
    for (const version of versionEvents) {
      expect(Object.keys(version.data).sort()).toEqual(
        [
          "code_signature",
          "dependencies",
          "git_commit",
          "methods",
          "module_version",
          "package",
          "runtime",
          "strategy",
        ].sort(),
      );
    }
    await shutdown(2_000);
  });
});

describe("instrument() and signatures", () => {
  it("instrumenting a class in place does not change any of its signatures", () => {
    class Pipeline {
      async forward(input: string): Promise<string> {
        return this.normalize(input);
      }
      normalize(input: string): string {
        return input.trim().toLowerCase();
      }
    }
    const strategies: CodeSignatureStrategyName[] = ["ast", "ast-deps", "source", "signature"];
    const before = strategies.map((strategy) =>
      computeCodeSignature(Pipeline, { strategy, method: "forward" }),
    );
    instrument(Pipeline, { methods: ["forward", "normalize"] });
    const after = strategies.map((strategy) =>
      computeCodeSignature(Pipeline, { strategy, method: "forward" }),
    );
    expect(after).toEqual(before);
    expect(before.every((signature) => signature !== null)).toBe(true);
  });
});

describe("instrument() and functions held by the instance", () => {
  /** Evaluated from text so the field stays a field whatever the test transpiler does with class fields. */
  const load = <T>(source: string): T => new Function(`"use strict"; return (${source});`)() as T;

  it("class fields holding arrow functions: each body gets its own signature and version event", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink], versionTracking: { gitCommit: null } });
    type Forward = { forward(q: string): Promise<string> };
    const QaV1 = load<new () => Forward>(`class Qa { forward = async (q) => { return q + "!"; } }`);
    const QaV2 = load<new () => Forward>(`class Qa { forward = async (q) => { return q + "?"; } }`);
    const a = instrument(new QaV1(), { name: "Qa" });
    const b = instrument(new QaV2(), { name: "Qa" });
    await a.forward("x");
    await b.forward("y");
    await instrument(new QaV1(), { name: "Qa" }).forward("z");
    await flush(2_000);
    const v1 = computeCodeSignature(QaV1, { method: "forward" });
    const v2 = computeCodeSignature(QaV2, { method: "forward" });
    expect(v1).toMatch(/^[0-9a-f]{12}$/);
    expect(v2).toMatch(/^[0-9a-f]{12}$/);
    expect(v1).not.toBe(v2);
    const versions = sink.events.filter((event) => event.event_type === "version");
    expect(versions.map((event) => event.code_signature)).toEqual([v1, v2]);
    const starts = sink.events.filter((event) => event.event_type === "start");
    expect(starts.map((event) => event.code_signature)).toEqual([v1, v2, v1]);
    await shutdown(2_000);
  });

  it("a function the constructor assigns is signed from the receiver on the first call", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink], versionTracking: { gitCommit: null, strategy: "ast-deps" } });
    type Run = { run(x: number): number };
    const F = load<new () => Run>(
      `class F { constructor() { this.run = (x) => this.step(x); } step(x) { return x + 1; } }`,
    );
    const f = instrument(new F(), { name: "FieldArrow", methods: ["run"] });
    expect(f.run(1)).toBe(2);
    await flush(2_000);
    const expected = computeCodeSignatureDetails(new F(), { strategy: "ast-deps", method: "run" });
    expect(expected.methods.map((method) => method.name)).toEqual(["run", "step (inherited, level 1)"]);
    const [version] = sink.events.filter((event) => event.event_type === "version");
    expect(version?.code_signature).toBe(expected.signature);
    expect(version?.data).not.toHaveProperty("unavailable");
    await shutdown(2_000);
  });

  it.each(["ast", "source"] as const)(
    "%s: a field or a constructor-assigned function shadows the inherited method: four bodies, four versions",
    async (strategy) => {
      const sink = new MemorySink();
      configure({ sinks: [sink], versionTracking: { gitCommit: null, strategy } });
      type Forward = { forward(q: string): Promise<string> };
      const [Base, SubA, SubB, CtorSub] = load<(new () => Forward)[]>(`(() => {
        class Base { async forward(q) { return q + "base"; } }
        class SubA extends Base { forward = async (q) => q + "A"; }
        class SubB extends Base { forward = async (q) => { await null; return q + "B, different body"; }; }
        class CtorSub extends Base { constructor() { super(); this.forward = async (q) => q + "ctor"; } }
        return [Base, SubA, SubB, CtorSub];
      })()`);
      const outputs: string[] = [];
      for (const C of [Base!, SubA!, SubB!, CtorSub!])
        outputs.push(await instrument(new C(), { name: "Answer" }).forward("x"));
      // Another instance of each: its own copy of the field or constructor function is the same code.
      for (const C of [SubA!, CtorSub!]) await instrument(new C(), { name: "Answer" }).forward("y");
      expect(outputs).toEqual(["xbase", "xA", "xB, different body", "xctor"]);
      await flush(2_000);
      const starts = sink.events.filter((event) => event.event_type === "start");
      const signatures = starts.map((event) => event.code_signature);
      expect(new Set(signatures.slice(0, 4)).size).toBe(4);
      expect(signatures.slice(4)).toEqual([signatures[1], signatures[3]]);
      const versions = sink.events.filter((event) => event.event_type === "version");
      expect(versions.map((event) => event.code_signature)).toEqual(signatures.slice(0, 4));
      const own = computeCodeSignature(new CtorSub!(), { strategy, method: "forward" });
      expect(signatures[3]).toBe(own);
      expect(signatures[1]).toBe(computeCodeSignature(SubA!, { strategy, method: "forward" }));
      await shutdown(2_000);
    },
  );
});
