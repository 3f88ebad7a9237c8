// Python consumers read these events: one event of every kind, written by the real runtime, is validated in
// Python with Python streamll's own pydantic model, with the shipped JSON Schema (`jsonschema`), and by the
// tests of the examples/python model. The Python comes from scripts/python.sh (a venv under .tools/); when it
// cannot be set up this suite fails, it never skips.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EncodedEvent, Sink } from "../delivery/sink";
import { instrument } from "../instrument/instrument";
import { configure, flush, shutdown } from "../instrument/runtime";
import { emit, trace } from "../instrument/trace";
import { decodeEvent } from "./decode-event";
import { createEventJsonSchema } from "./event-json-schema";
import { BUILTIN_EVENT_TYPES } from "./event-schema";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "streamll-python-interop-"));
const eventsFile = join(dir, "events.jsonl");
/** The JSON Schema file @streamll/core ships (written by its build). */
const shippedSchema = join(ROOT, "packages/core/dist/event.schema.json");
let schemaFile: string;
let python: string;

/** Keeps the wire JSON exactly as every sink would send it. */
class WireSink implements Sink {
  readonly name = "wire";
  readonly lines: string[] = [];
  async send(batch: readonly EncodedEvent[]): Promise<void> {
    for (const encoded of batch) this.lines.push(encoded.json);
  }
  async close(): Promise<void> {}
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class LanguageModel {
  async *generate(question: string): AsyncGenerator<string> {
    for (const word of ["Paris", " is", " the capital."]) {
      await sleep(1);
      yield question.length > 0 ? word : "";
    }
  }
}

class AxLikeProgram {
  // Ax restarts a stream with a higher version on retry: the runtime records a `retry` event.
  async *streamingForward(): AsyncGenerator<{ version: number; delta: Record<string, string> }> {
    yield { version: 0, delta: { answer: "Lyon" } };
    yield { version: 1, delta: { answer: "Paris" } };
  }
}

class RAGPipeline {
  constructor(private readonly model: LanguageModel) {}
  async forward(question: string): Promise<string> {
    const passages = await trace("retrieval", async () => {
      emit("retrieved", { count: 2 });
      return ["p1", "p2"];
    });
    let answer = "";
    for await (const token of this.model.generate(question)) answer += token;
    if (question === "fail") throw new TypeError("the model refused");
    return `${answer} (${passages.length} passages)`;
  }
}

instrument(RAGPipeline);
const double = instrument(async function double(n: number) {
  return n * 2;
}); // a plain function: its events say method_name "forward"

/** Every kind of event, from every path of the runtime, written to `sink`. */
async function produceEveryKind(sink: WireSink, versionTracking: boolean): Promise<void> {
  configure({ sinks: [sink], serviceName: "interop", versionTracking, tags: { suite: "python-interop" } });
  const pipeline = new RAGPipeline(
    instrument(new LanguageModel(), { methods: ["generate"], streamField: "answer" }),
  );
  await pipeline.forward("capital of France?"); // start, end, token, custom, trace() inside a module
  await pipeline.forward("fail").catch(() => undefined); // error
  await double(21);
  for await (const _ of instrument(new AxLikeProgram()).streamingForward()) void _; // token, retry
  trace("warm-up", () => emit("cache_loaded", { entries: 3 })); // trace() outside any module
  emit("deployed", { version: "1.2.3" }); // emit() outside any span
  await flush(10_000);
  await shutdown(10_000);
}

beforeAll(async () => {
  python = execFileSync("bash", [join(ROOT, "scripts/python.sh")], { encoding: "utf8" }).trim();
  const off = new WireSink();
  await produceEveryKind(off, false);
  const on = new WireSink();
  await produceEveryKind(on, true);
  // The general encoding path: a redact function (which even breaks method_name) and a filter.
  const general = new WireSink();
  configure({
    sinks: [general],
    redact: (event) => ({ ...event, method_name: null as never }),
    encode: { maxEventBytes: 4096 },
  });
  emit("oversized", { blob: "x".repeat(20_000) });
  trace("redacted-step", () => undefined);
  await flush(10_000);
  await shutdown(10_000);
  writeFileSync(eventsFile, `${[...off.lines, ...on.lines, ...general.lines].join("\n")}\n`);
  // The shipped file when the package is built (always in CI: the suite builds before it tests), else the same
  // generator's output.
  const generated = `${JSON.stringify(createEventJsonSchema(), null, 2)}\n`;
  if (existsSync(shippedSchema)) {
    expect(
      readFileSync(shippedSchema, "utf8"),
      "dist/event.schema.json is stale: rebuild @streamll/core",
    ).toBe(generated);
    schemaFile = shippedSchema;
  } else {
    if (process.env.CI === "true") throw new Error(`${shippedSchema} missing: CI builds before testing`);
    schemaFile = join(dir, "event.schema.json");
    writeFileSync(schemaFile, generated);
  }
}, 300_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface ValidationReport {
  count: number;
  event_types: string[];
  pydantic_failures: unknown[];
  schema_failures: unknown[];
}

function validate(file: string): ValidationReport {
  const script = join(ROOT, "packages/core/test/python/validate_events.py");
  const out = execFileSync(python, [script, file, schemaFile], { encoding: "utf8" });
  return JSON.parse(out) as ValidationReport;
}

describe("events as Python consumers read them", () => {
  it("covers every event kind, with version tracking on and off", () => {
    const events = readFileSync(eventsFile, "utf8").trim().split("\n");
    const types = new Set<string>();
    for (const line of events) {
      const decoded = decodeEvent(line);
      expect(decoded.ok, line).toBe(true);
      if (decoded.ok) types.add(decoded.event.event_type);
    }
    for (const kind of [
      ...BUILTIN_EVENT_TYPES,
      "retry",
      "retrieved",
      "cache_loaded",
      "deployed",
      "oversized",
    ]) {
      expect(types, kind).toContain(kind);
    }
    const parsed = events.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.some((event) => event.code_signature !== null)).toBe(true);
    expect(parsed.some((event) => event.code_signature === null)).toBe(true);
    expect(parsed.filter((event) => event.method_name === null)).toEqual([]);
  });

  it("validates every event with Python streamll's pydantic model and with the JSON Schema", () => {
    const report = validate(eventsFile);
    expect(report.count).toBe(readFileSync(eventsFile, "utf8").trim().split("\n").length);
    expect(report.pydantic_failures).toEqual([]);
    expect(report.schema_failures).toEqual([]);
    expect(report.event_types).toEqual(
      expect.arrayContaining(["start", "end", "error", "token", "retry", "version"]),
    );
  });

  it("really validates: an event with method_name null fails both checks", () => {
    const [first] = readFileSync(eventsFile, "utf8").split("\n");
    const broken = join(dir, "broken.jsonl");
    writeFileSync(broken, `${JSON.stringify({ ...JSON.parse(first as string), method_name: null })}\n`);
    const report = validate(broken);
    expect(report.pydantic_failures).toHaveLength(1);
    expect(report.schema_failures).toHaveLength(1);
  });

  it("passes the tests of examples/python (model, rebuild, costs) on these events and this schema", () => {
    const result = spawnSync(python, ["-m", "unittest", "discover", "-v", "-s", "tests"], {
      cwd: join(ROOT, "examples/python"),
      env: { ...process.env, STREAMLL_EVENTS_FILE: eventsFile, STREAMLL_EVENT_SCHEMA: schemaFile },
      encoding: "utf8",
      timeout: 120_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, output).toBe(0);
    // A bare "OK" closing line with CI=true: unittest writes "OK (skipped=N)" when a test skipped. Elsewhere the
    // tests that start the readers against Redis and RabbitMQ skip when no broker answers.
    expect(output).toMatch(process.env.CI === "true" ? /^OK$/m : /^OK( \(skipped=\d+\))?$/m);
  });
});
