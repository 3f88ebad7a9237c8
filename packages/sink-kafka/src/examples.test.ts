// Runs the consumer examples of docs/kafka.md (packages/sink-kafka/examples) against the harness broker, on
// traffic produced by an instrumented program through KafkaSink.
import { readFileSync } from "node:fs";
import { createId } from "@streamll/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayLatestFailure } from "../examples/replay-failed-execution";
import { detectSlowModules, percentile } from "../examples/slow-module-detection";
import { PRICES, trackTokenCosts } from "../examples/token-cost-tracking";
import { kafkaPlaintextConfig, requireBroker, uniqueTopic } from "../test/broker";
import { KafkaSink } from "./kafka-sink";
import { type DemoTraffic, endDemoTraffic, runDemoTraffic } from "./test-support/demo-program";
import { recordingLogger } from "./test-support/kafka-test-support";

const connection = { brokers: kafkaPlaintextConfig().brokers, logger: recordingLogger() };
const topic = uniqueTopic("examples");
let traffic: DemoTraffic;

beforeAll(async () => {
  await requireBroker(["plaintext"]);
  traffic = await runDemoTraffic(new KafkaSink({ ...connection, topic, createTopic: { numPartitions: 3 } }));
});

afterAll(async () => {
  await endDemoTraffic();
});

describe("docs/kafka.md consumer examples", () => {
  it("token cost tracking prices the llm_usage events per model and module", async () => {
    const report = await trackTokenCosts(connection, { topic, groupId: `costs-${createId()}` });
    const usage = traffic.memory.events.filter((event) => event.event_type === "llm_usage");
    expect(usage).toHaveLength(10);
    const mini = usage.filter((event) => event.data.model === "gpt-4o-mini");
    const inputMini = mini.reduce((sum, event) => sum + (event.data.input_tokens as number), 0);
    expect(report.byModel["gpt-4o-mini"]).toEqual({
      calls: 8,
      inputTokens: inputMini,
      outputTokens: 24,
      usd: expect.closeTo((inputMini * 0.15 + 24 * 0.6) / 1_000_000, 12),
    });
    expect(report.byModel["gpt-4o"]?.calls).toBe(2);
    expect(report.byModule.Generator).toBeCloseTo(report.totalUsd, 12);
    expect(report.unpriced).toEqual([]);
    expect(PRICES["gpt-4o"]?.inputPerMillion).toBe(2.5);
  });

  it("slow-module detection flags the retriever version whose p95 is over budget", async () => {
    const rows = await detectSlowModules(connection, {
      topic,
      groupId: `latency-${createId()}`,
      p95BudgetMs: 20,
    });
    const retriever = rows.filter((row) => row.moduleName === "Retriever");
    expect(retriever.every((row) => row.operation === null)).toBe(true);
    expect(retriever.map((row) => [row.version, row.calls, row.slow])).toEqual([
      ["retriever-v1", 4, true],
      ["retriever-v2", 6, false],
    ]);
    expect(retriever[0]!.p95Ms).toBeGreaterThanOrEqual(25);
    const pipeline = rows.filter((row) => row.moduleName === "QAPipeline");
    expect(new Set(pipeline.map((row) => `${row.operation ?? "call"}:${row.calls}`))).toEqual(
      new Set(["call:9", "post-process:9"]),
    );
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBe(10);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
  });

  it("replaying the latest failed execution reconstructs what happened", async () => {
    const result = await replayLatestFailure(connection, { topic, groupId: `replay-${createId()}` });
    expect(result).not.toBeNull();
    const { replay, text } = result!;
    expect(replay.executionId).toBe(traffic.failedExecutionId);
    expect(replay.failed).toBe(true);
    expect(replay.events).toHaveLength(
      traffic.memory.events.filter((event) => event.execution_id === traffic.failedExecutionId).length,
    );
    const lines = text.split("\n");
    expect(lines[0]).toBe(`execution ${traffic.failedExecutionId}: FAILED`);
    expect(lines[1]).toMatch(
      /^ {2}QAPipeline\.answer \[error, \d+\.\d ms\] Error: upstream LLM connection reset$/,
    );
    expect(text).toMatch(/ {4}Retriever\.retrieve \[ok, \d+\.\d ms\]/);
    expect(text).toMatch(
      / {4}Generator\.generate \[error, \d+\.\d ms\] Error: upstream LLM connection reset\n {6}streamed answer: "Paris is"/,
    );
    expect(text).toContain('llm_usage {"model":"gpt-4o"');
  });
});

describe("docs/kafka.md", () => {
  it("shows each example file verbatim, so the guide shows exactly the code this suite runs", () => {
    const guide = readFileSync(new URL("../../../docs/kafka.md", import.meta.url), "utf8");
    for (const name of ["token-cost-tracking.ts", "slow-module-detection.ts", "replay-failed-execution.ts"]) {
      const source = readFileSync(new URL(`../examples/${name}`, import.meta.url), "utf8");
      expect(guide.includes(`\`\`\`ts\n${source}\`\`\``), name).toBe(true);
    }
  });
});
