import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StreamllEvent, streamllEventSchema } from "../events/event-schema";
import { COMPARE_REPORT_FORMAT_VERSION, compareEventFiles } from "./compare/compare-versions";
import { runCli } from "./compare/run-cli";
import { GIT_COMMIT_ENV_VARS } from "./git-commit";

/**
 * Runs every ```sql block of docs/guides/version-tracking.md, in order and in one DuckDB connection, against a
 * generated events.jsonl, and checks each result. A block without a `-- name:` this test knows fails the
 * test, so no query can be added to the guide without being executed here.
 */
const GUIDE = new URL("../../../../docs/guides/version-tracking.md", import.meta.url);

type Row = Record<string, unknown>;

/** Deterministic uniform [0, 1) numbers (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const V1 = "3c9a1f0e5b7d";
const V2 = "8e21d4c6a09f";
const SUMMARIZE = "51f0b2a9c3e4";

let counter = 0;
function id(): string {
  counter++;
  return `id${String(counter).padStart(10, "0")}`;
}

interface Version {
  module: string;
  signature: string;
  commit: string;
  calls: number;
  ms: number;
  errorEvery: number;
  /** Minutes after 06:00 of the first call; calls are one second apart. */
  from: number;
  dependencies: Record<string, string>;
}

function eventsOf(version: Version, next: () => number): StreamllEvent[] {
  const events: StreamllEvent[] = [];
  const base = (timestamp: Date, span: string, execution: string) => ({
    schema_version: "1.0",
    event_id: id(),
    execution_id: execution,
    span_id: span,
    parent_span_id: null,
    timestamp: timestamp.toISOString(),
    module_name: version.module,
    method_name: "forward",
    operation: null,
    tags: { service: "qa-service", env: "prod" },
    module_version: "qa-service@1.4.0",
    code_signature: version.signature,
    git_commit: version.commit,
  });
  for (let i = 0; i < version.calls; i++) {
    const at = new Date(Date.UTC(2026, 10, 27, 6, version.from, i));
    const span = id();
    const execution = id();
    if (i === 0) {
      events.push({
        ...base(at, span, execution),
        event_type: "version",
        data: {
          strategy: "ast",
          code_signature: version.signature,
          module_version: "qa-service@1.4.0",
          git_commit: version.commit,
          methods: [{ name: "forward", hash: version.signature }],
          package: "qa-service@1.4.0",
          runtime: { name: "node", version: "24.21.0", platform: "linux", arch: "x64" },
          dependencies: version.dependencies,
        },
      });
    }
    events.push({ ...base(at, span, execution), event_type: "start", data: { inputs: `question ${i}` } });
    events.push({
      ...base(at, span, execution),
      event_type: "token",
      data: { field: "answer", token: "ok", token_index: 0 },
    });
    const duration_ms = Math.round(version.ms * (0.7 + 0.6 * next()) * 1000) / 1000;
    const end = new Date(at.getTime() + Math.round(duration_ms));
    if (i % version.errorEvery === version.errorEvery - 1) {
      events.push({
        ...base(end, span, execution),
        event_type: "error",
        data: { error_type: "TimeoutError", error_message: "upstream timed out", duration_ms },
      });
    } else {
      events.push({
        ...base(end, span, execution),
        event_type: "end",
        data: { duration_ms, outputs: { answer: "ok" }, token_count: 1 },
      });
    }
  }
  return events;
}

const dir = mkdtempSync(join(tmpdir(), "streamll-sql-"));
const fixture = join(dir, "events.jsonl");
let instance: DuckDBInstance;

beforeAll(async () => {
  const next = random(42);
  const events = [
    ...eventsOf(
      {
        module: "qa",
        signature: V1,
        commit: "abc1234",
        calls: 120,
        ms: 10,
        errorEvery: 40,
        from: 0,
        dependencies: { openai: "4.7.0" },
      },
      next,
    ),
    ...eventsOf(
      {
        module: "qa",
        signature: V2,
        commit: "def5678-dirty",
        calls: 40,
        ms: 15,
        errorEvery: 5,
        from: 30,
        dependencies: { openai: "4.8.0" },
      },
      next,
    ),
    ...eventsOf(
      {
        module: "summarize",
        signature: SUMMARIZE,
        commit: "abc1234",
        calls: 30,
        ms: 4,
        errorEvery: 1000,
        from: 0,
        dependencies: {},
      },
      next,
    ),
  ];
  // Only wire-valid events go into the fixture.
  const lines = events.map((event) => JSON.stringify(streamllEventSchema.parse(event)));
  writeFileSync(fixture, `${lines.join("\n")}\n`);
  instance = await DuckDBInstance.create(":memory:");
});

afterAll(() => {
  instance?.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

const num = (value: unknown): number => Number(value);

const EXPECTATIONS: Record<string, (rows: Row[]) => void> = {
  "events-view": () => {},
  "latency-per-version": (rows) => {
    expect(rows.map((r) => [r.module_name, r.code_signature])).toEqual([
      ["qa", V1],
      ["qa", V2],
      ["summarize", SUMMARIZE],
    ]);
    for (const row of rows) {
      expect(num(row.p50_ms)).toBeLessThanOrEqual(num(row.p95_ms));
      expect(num(row.p95_ms)).toBeLessThanOrEqual(num(row.p99_ms));
    }
    expect(num(rows[0]!.calls)).toBe(117);
    expect(num(rows[1]!.p95_ms)).toBeGreaterThan(num(rows[0]!.p95_ms));
  },
  "error-rate-per-version": (rows) => {
    const qa = rows.filter((r) => r.module_name === "qa");
    const rate = (signature: string) => num(qa.find((r) => r.code_signature === signature)!.error_rate);
    expect(rate(V2)).toBeCloseTo(0.2, 6);
    expect(rate(V1)).toBeCloseTo(3 / 120, 4);
    expect(num(rows.find((r) => r.module_name === "summarize")!.errors)).toBe(0);
  },
  "canary-comparison": (rows) => {
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ module_name: "qa", canary: V2 });
    expect(num(row.canary_calls)).toBe(40);
    expect(num(row.rest_calls)).toBe(120);
    expect(num(row.canary_error_rate)).toBeGreaterThan(num(row.rest_error_rate));
    expect(num(row.canary_p95_ms)).toBeGreaterThan(num(row.rest_p95_ms));
    expect(num(row.error_rate_z)).toBeGreaterThan(1.96);
  },
  "version-details": (rows) => {
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.strategy === "ast")).toBe(true);
    const canary = rows.find((r) => r.code_signature === V2)!;
    expect(canary).toMatchObject({ git_commit: "def5678-dirty", package: "qa-service@1.4.0" });
    expect(JSON.parse(String(canary.dependencies))).toEqual({ openai: "4.8.0" });
  },
  "latency-by-commit": (rows) => {
    expect(rows.map((r) => [r.git_commit, r.module_name, r.local_changes])).toEqual([
      ["abc1234", "qa", false],
      ["abc1234", "summarize", false],
      ["def5678-dirty", "qa", true],
    ]);
  },
};

/** Fenced code blocks of a Markdown text: info string (language) and body, by CommonMark's fence rules. */
function fencedBlocks(markdown: string): { info: string; body: string }[] {
  const blocks: { info: string; body: string }[] = [];
  const lines = markdown.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[j]!)) {
      body.push(lines[j]!);
      j++;
    }
    blocks.push({ info: open[2]!.toLowerCase(), body: body.join("\n") });
    i = j;
  }
  return blocks;
}

/** Languages that mean "a query someone will run": every such block must be executed here. */
const QUERY_LANGUAGES = new Set(["sql", "duckdb", "psql", "postgresql", "mysql", "sqlite"]);

function sqlBlocks(markdown: string): { name: string; sql: string }[] {
  return fencedBlocks(markdown)
    .filter((block) => QUERY_LANGUAGES.has(block.info))
    .map((block) => {
      const name = /^-- name: ([\w-]+)/m.exec(block.body)?.[1] ?? "(unnamed)";
      return { name, sql: block.body };
    });
}

/** Every Markdown file of the docs and the package READMEs. */
function documentationFiles(): string[] {
  const root = fileURLToPath(new URL("../../../../", import.meta.url));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".md")) files.push(path);
    }
  };
  walk(join(root, "docs"));
  for (const pkg of readdirSync(join(root, "packages"))) {
    const readme = join(root, "packages", pkg, "README.md");
    if (existsSync(readme)) files.push(readme);
  }
  files.push(join(root, "README.md"));
  return files.filter((file) => existsSync(file));
}

describe("docs/guides/version-tracking.md SQL", () => {
  it("has a tested expectation for every query, and every expectation has a query", () => {
    const names = sqlBlocks(readFileSync(GUIDE, "utf8")).map((block) => block.name);
    expect(names).toEqual(Object.keys(EXPECTATIONS));
  });

  it("finds every fenced block, whatever the fence style", () => {
    const sample =
      "```sql\nSELECT 1;\n```\n\n~~~SQL\nSELECT 2;\n~~~\n\n````duckdb\nSELECT '```';\n````\n```text\nno\n```\n";
    expect(sqlBlocks(sample).map((block) => block.sql)).toEqual(["SELECT 1;", "SELECT 2;", "SELECT '```';"]);
  });

  it("no other document holds a query block that this test does not run", () => {
    const guide = fileURLToPath(GUIDE);
    const files = documentationFiles();
    expect(files).toContain(guide);
    const elsewhere = files
      .filter((file) => file !== guide)
      .filter((file) => sqlBlocks(readFileSync(file, "utf8")).length > 0);
    expect(elsewhere).toEqual([]);
  });

  it("runs every query against a generated events.jsonl with DuckDB", async () => {
    const connection = await instance.connect();
    try {
      for (const block of sqlBlocks(readFileSync(GUIDE, "utf8"))) {
        // The guide reads ./events.jsonl; point it at the fixture.
        const sql = block.sql.replaceAll("'events.jsonl'", `'${fixture}'`);
        const reader = await connection.runAndReadAll(sql);
        const rows = reader.getRowObjectsJson() as Row[];
        if (block.name !== "events-view") expect(rows.length, block.name).toBeGreaterThan(0);
        EXPECTATIONS[block.name]!(rows);
      }
    } finally {
      connection.closeSync();
    }
  });
});

/** The key structure of a JSON value: objects by sorted keys, arrays by their first element. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, shape((value as Record<string, unknown>)[key])]),
    );
  }
  return "value";
}

describe("docs/guides/version-tracking.md claims", () => {
  it("the --json example has exactly the fields `streamll compare --json` prints", async () => {
    const example = fencedBlocks(readFileSync(GUIDE, "utf8")).find(
      (block) => block.info === "json" && block.body.includes('"format_version"'),
    );
    expect(example).toBeDefined();
    const documented = JSON.parse(example!.body) as Record<string, unknown>;
    expect(documented.format_version).toBe(COMPARE_REPORT_FORMAT_VERSION);
    let stdout = "";
    const status = await runCli(["compare", fixture, "--json"], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: () => {},
    });
    expect(status).toBe(0);
    const printed = JSON.parse(stdout) as Record<string, unknown>;
    expect(printed).toEqual(JSON.parse(JSON.stringify(await compareEventFiles([fixture]))));
    expect(shape(documented)).toEqual(shape(printed));
  });

  it("lists the CI/CD commit variables the code reads, in the order it reads them", () => {
    const guide = readFileSync(GUIDE, "utf8");
    const item = /Without a repository[\s\S]*?\n4\. /.exec(guide)?.[0] ?? "";
    const documented = [...item.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]);
    expect(documented).toEqual([...GIT_COMMIT_ENV_VARS]);
  });
});
