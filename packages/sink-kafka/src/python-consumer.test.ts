// The Python consumers of docs/kafka.md (examples/python) against the harness broker: a TypeScript program
// produces a known execution through KafkaSink, rebuild_execution.py rebuilds it, and its tree must equal
// what reconstructExecution returns for the same events; token_costs.py prices the recorded usage. Malformed
// messages on the topic must be counted and skipped, never stop the consumer, never be logged. The Python
// comes from scripts/python.sh; when it cannot be set up the suite fails, it never skips.
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { createId, type JsonValue } from "@streamll/core";
import { Kafka, logLevel } from "kafkajs";
import { beforeAll, describe, expect, it } from "vitest";
import { kafkaPlaintextConfig, REPO_ROOT, requireBroker, uniqueTopic } from "../test/broker";
import { type ReplayedSpan, reconstructExecution } from "./execution-replay";
import { KafkaSink } from "./kafka-sink";
import { makeEvent } from "./test-support/kafka-test-support";
import { type RagTraffic, runRagProgram } from "./test-support/rag-program";

const EXAMPLES = join(REPO_ROOT, "examples/python");
const brokers = kafkaPlaintextConfig().brokers;
const topic = uniqueTopic("python-consumer");
const SECRET = "sk-planted-0123456789";
let python: string;
let traffic: RagTraffic;

/** The malformed messages planted between the program's events. */
const MALFORMED: (string | Buffer | null)[] = [
  Buffer.from([0xff, 0xfe, 0x00, 0x41]),
  `{"api_key":"${SECRET}"`,
  JSON.stringify({ note: "not an event", api_key: SECRET }),
  JSON.stringify({ ...makeEvent({ data: { api_key: SECRET } }), method_name: null }),
  JSON.stringify(makeEvent({ schema_version: "2.0", data: { api_key: SECRET } })),
  null,
];

function runPython(script: string, args: string[]): { stdout: string; stderr: string } {
  const result = spawnSync(python, [join(EXAMPLES, script), ...args], { encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`${script} exited ${result.status}: ${result.stderr}`);
  return { stdout: result.stdout, stderr: result.stderr };
}

const kafkaArgs = (groupId: string): string[] => [
  "--bootstrap-servers",
  brokers.join(","),
  "--topic",
  topic,
  "--group-id",
  groupId,
  "--stop-at-end",
];

const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });

async function plantMalformed(): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: MALFORMED.map((value, index) => ({ key: `malformed-${index}`, value })),
  });
  await producer.disconnect();
}

/** The TypeScript replay in the JSON shape rebuild_execution.py prints (without usage, which it adds). */
function spanShape(span: ReplayedSpan): Record<string, JsonValue> {
  const shape: Record<string, JsonValue> = {
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    module_name: span.moduleName,
    method_name: span.methodName,
    operation: span.operation,
    module_version: span.moduleVersion,
    started_at: span.startedAt,
    ended_at: span.endedAt,
    duration_ms: span.durationMs,
    status: span.status,
    error: span.error === null ? null : { ...span.error },
    streamed_text: { ...span.streamedText },
    token_count: span.tokenCount,
    custom_events: span.customEvents.map((event) => ({ event_type: event.event_type, data: event.data })),
    children: span.children.map(spanShape),
  };
  if (span.inputs !== undefined) shape.inputs = span.inputs;
  if (span.outputs !== undefined) shape.outputs = span.outputs;
  return shape;
}

function withoutUsage(span: Record<string, unknown>): Record<string, unknown> {
  const { usage: _usage, own_usage: _own, children, ...rest } = span;
  return { ...rest, children: (children as Record<string, unknown>[]).map(withoutUsage) };
}

interface PythonExecution {
  execution_id: string;
  complete: boolean;
  failed: boolean;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  event_count: number;
  roots: Record<string, unknown>[];
  usage_by_module: Record<string, { calls: number; prompt_tokens: number; completion_tokens: number }>;
}

beforeAll(async () => {
  await requireBroker(["plaintext"]);
  python = execFileSync("bash", [join(REPO_ROOT, "scripts/python.sh")], { encoding: "utf8" }).trim();
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  // Malformed messages before and after the program's events: the consumer must read past them.
  await plantMalformed();
  traffic = await runRagProgram(new KafkaSink({ brokers, topic }));
  await plantMalformed();
}, 180_000);

describe("examples/python against Kafka", () => {
  it("rebuild_execution.py rebuilds the same trees as reconstructExecution, with usage per module", () => {
    const groupId = `py-rebuild-${createId()}`;
    const { stdout, stderr } = runPython("rebuild_execution.py", [...kafkaArgs(groupId), "--json"]);
    const printed = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as PythonExecution);
    const byId = new Map(printed.map((execution) => [execution.execution_id, execution]));
    for (const id of [traffic.okExecutionId, traffic.failedExecutionId]) {
      // The same events the Python consumer read from the topic, as the program sent them.
      const replay = reconstructExecution(id, traffic.events);
      const rebuilt = byId.get(id);
      expect(rebuilt, id).toBeDefined();
      expect(rebuilt!.roots.map(withoutUsage)).toEqual(replay.roots.map(spanShape));
      expect(rebuilt).toMatchObject({
        complete: true,
        failed: replay.failed,
        started_at: replay.startedAt,
        ended_at: replay.endedAt,
        duration_ms: replay.durationMs,
        event_count: replay.events.length,
      });
    }
    const ok = byId.get(traffic.okExecutionId)!;
    const root = ok.roots[0] as { module_name: string; children: { module_name: string; status: string }[] };
    expect(root.module_name).toBe("RAGPipeline");
    expect(root.children.map((child) => `${child.module_name}:${child.status}`)).toEqual([
      "Retriever:ok",
      "RAGPipeline:ok",
      "LanguageModel:ok",
      "Verifier:error",
      "LanguageModel:ok",
    ]);
    // The pipeline's usage covers its two model calls: each request is counted once, under the model's module.
    const mini = traffic.usageByModel["gpt-4o-mini"]!;
    const large = traffic.usageByModel["gpt-4o"]!;
    expect(ok.usage_by_module).toEqual({
      LanguageModel: {
        calls: 2,
        prompt_tokens: mini.prompt + large.prompt,
        completion_tokens: mini.completion + large.completion,
        total_tokens: mini.prompt + large.prompt + mini.completion + large.completion,
        models: ["gpt-4o-mini", "gpt-4o"],
      },
    });
    expect(byId.get(traffic.failedExecutionId)?.failed).toBe(true);
    // Every malformed message was counted and skipped; none stopped the consumer or reached the log.
    expect(stderr).toMatch(new RegExp(`\\b${MALFORMED.length * 2} invalid\\b`));
    expect(stderr).toMatch(/\b0 incomplete\b/);
    expect(stderr).not.toContain(SECRET);
    expect(stderr).not.toContain("sk-planted");
  });

  it("commits after handling: the same group reads nothing twice", () => {
    const groupId = `py-commit-${createId()}`;
    const first = runPython("rebuild_execution.py", kafkaArgs(groupId));
    expect(first.stdout).toContain(`execution ${traffic.okExecutionId}: ok, `);
    expect(first.stdout).toContain(`execution ${traffic.failedExecutionId}: FAILED, `);
    const again = runPython("rebuild_execution.py", kafkaArgs(groupId));
    expect(again.stdout).toBe("");
    expect(again.stderr).toMatch(/\b0 messages\b/);
  });

  it("prints the tree of one execution", () => {
    const { stdout } = runPython("rebuild_execution.py", [
      ...kafkaArgs(`py-lookup-${createId()}`),
      "--no-commit",
      // One argument with `=`: an id may start with "-", which argparse would take for an option.
      `--execution-id=${traffic.failedExecutionId}`,
    ]);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      new RegExp(
        `^execution ${traffic.failedExecutionId}: FAILED, [\\d.]+ ms, 4 spans, 2 failed span\\(s\\)$`,
      ),
    );
    expect(lines[1]).toMatch(
      /^ {2}RAGPipeline\.forward \[error, [\d.]+ ms\] Error: gpt-4o-mini stream reset$/,
    );
    expect(stdout).toMatch(
      /\n {4}rerank \(RAGPipeline\.forward\) \[ok, [\d.]+ ms\]\n {6}reranked \{"kept": 2, "of": 3\}/,
    );
    expect(stdout).toMatch(
      / {4}LanguageModel\.generate \[error, [\d.]+ ms\] Error: gpt-4o-mini stream reset\n/,
    );
    expect(stdout).toContain('      streamed reasoning: "The capital"\n      streamed answer: "Paris is"\n');
    expect(stdout).not.toContain(traffic.okExecutionId);
  });

  it("shows an execution that has not ended yet, once reading reaches the end", async () => {
    const runningTopic = uniqueTopic("python-running");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: runningTopic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    const executionId = createId();
    const root = makeEvent({ execution_id: executionId });
    const child = { execution_id: executionId, parent_span_id: root.span_id, span_id: createId() };
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: runningTopic,
      messages: [
        root,
        makeEvent({ ...child, operation: "retrieve", event_type: "start" }),
        makeEvent({ ...child, operation: "retrieve", event_type: "end", data: { duration_ms: 3 } }),
      ].map((event) => ({ key: executionId, value: JSON.stringify(event) })),
    });
    await producer.disconnect();
    const args = kafkaArgs(`py-running-${createId()}`);
    args[args.indexOf(topic)] = runningTopic;
    const { stdout } = runPython("rebuild_execution.py", [
      ...args,
      `--execution-id=${executionId}`,
      "--json",
    ]);
    const printed = JSON.parse(stdout) as PythonExecution;
    expect(printed.execution_id).toBe(executionId);
    expect(printed.complete).toBe(false);
    expect(printed.event_count).toBe(3);
  });

  it("token_costs.py totals and prices the usage per model", () => {
    const { stdout } = runPython("token_costs.py", [
      ...kafkaArgs(`py-costs-${createId()}`),
      "--price",
      "gpt-4o-mini=0.15,0.60",
      "--json",
    ]);
    const report = JSON.parse(stdout) as {
      models: Record<
        string,
        { calls: number; prompt_tokens: number; completion_tokens: number; cost_usd: number }
      >;
      total_usd: number;
      unpriced: string[];
    };
    const mini = traffic.usageByModel["gpt-4o-mini"]!;
    expect(report.models["gpt-4o-mini"]).toMatchObject({
      calls: 1,
      prompt_tokens: mini.prompt,
      completion_tokens: mini.completion,
    });
    expect(report.models["gpt-4o-mini"]?.cost_usd).toBeCloseTo(
      (mini.prompt * 0.15 + mini.completion * 0.6) / 1e6,
      12,
    );
    expect(report.models["gpt-4o"]).toMatchObject({ calls: 1, cost_usd: null });
    expect(report.unpriced).toEqual(["gpt-4o"]);
    expect(report.total_usd).toBeCloseTo(report.models["gpt-4o-mini"]!.cost_usd, 12);
  });
});
