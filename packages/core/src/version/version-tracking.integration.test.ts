import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { streamllEventSchema } from "../event-schema";
import { instrument } from "../instrument";
import { configure, shutdown } from "../runtime";
import { JsonlFileSink } from "../sinks/jsonl-file-sink";
import { computeCodeSignature } from "./code-signature";
import { compareEventFiles } from "./compare/compare-versions";
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

// Two releases of the module "Qa": the second adds a 4 ms lookup before answering.
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
    await sleep(4);
    return question.length;
  }
};

// The control: "Summarize" changes its code but not its speed.
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

const ROUNDS = 40;

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
    expect(qa.duration.relative_change!).toBeGreaterThan(0.3);
    const control = report.comparisons.find((comparison) => comparison.module === "Summarize")!;
    expect(control.duration.verdict).toBe("no-significant-change");
    expect(control.error_rate.verdict).toBe("no-significant-change");

    // The CLI prints the same verdicts and exits 1 with --fail-on-regression.
    let output = "";
    const status = await runCli(["compare", path, "--fail-on-regression"], {
      stdout: (text) => (output += text),
      stderr: (text) => (output += text),
    });
    expect(status).toBe(1);
    expect(output).toContain(`Qa: ${signatures.qa1} -> ${signatures.qa2}`);
    expect(output.match(/REGRESSION/g)).toHaveLength(1);
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
