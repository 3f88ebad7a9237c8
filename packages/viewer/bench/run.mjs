// How fast the viewer's page takes in events: 10,000 events pushed into an open page in batches of 1,000 (as
// the server flushes them), per round a fresh page. For each batch the page measures applying it (parse +
// model) and the render that follows; the baseline, measured in the same page, is JSON.parse of the same
// batch text alone (the least any page must do). Target: <= 50 ms per 1,000 events.
// Usage: pnpm --filter @streamll/viewer bench   (BENCH_ROUNDS, BENCH_EVENTS to override). Needs `pnpm build`.
// Writes bench/results/viewer.json (test-support/bench-results.mjs).
import { execFileSync } from "node:child_process";
import { createId, SCHEMA_VERSION } from "@streamll/core";
import { startBench } from "../../../test-support/bench-results.mjs";
import { startViewer } from "../dist/index.js";
import { chromiumPath, launchChromium } from "../scripts/chromium.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
const BATCH = 1_000;
const bench = startBench(
  new URL("..", import.meta.url),
  "viewer",
  "viewer page: time to apply a batch of events (parse + model + render) against JSON.parse of the same batch",
);

/** Executions of 20 events: root call, retrieval step, a streamed model call of 14 tokens with usage. */
function loadEvents(count) {
  const out = [];
  for (let i = 0; out.length < count; i++) {
    const executionId = createId();
    const start = Date.now() - 60_000 + i * 10;
    const [rootSpan, retrieval, model] = [createId(), createId(), createId()];
    const event = (span, parent, module, type, at, data) => ({
      schema_version: SCHEMA_VERSION,
      event_id: createId(),
      execution_id: executionId,
      span_id: span,
      parent_span_id: parent,
      timestamp: new Date(start + at).toISOString(),
      module_name: module,
      method_name: "forward",
      event_type: type,
      operation: null,
      data,
      tags: { service: "bench" },
      module_version: "qa@1.0.0",
      code_signature: i % 2 === 0 ? "sig-v1-aaaaaaaa" : "sig-v2-bbbbbbbb",
      git_commit: null,
    });
    const events = [
      event(rootSpan, null, "RAGPipeline", "start", 0, { inputs: { question: `question ${i}` } }),
      event(retrieval, rootSpan, "RAGPipeline", "start", 1, { k: 3 }),
      event(retrieval, rootSpan, "RAGPipeline", "end", 11, { duration_ms: 10 }),
      event(model, rootSpan, "LanguageModel", "start", 12, { inputs: ["prompt"] }),
    ];
    for (let t = 0; t < 14; t++) {
      events.push(
        event(model, rootSpan, "LanguageModel", "token", 13 + t, {
          field: "answer",
          token: `word${t} `,
          token_index: t,
        }),
      );
    }
    events.push(
      event(model, rootSpan, "LanguageModel", "end", 72, {
        duration_ms: 60,
        usage: { model: "gpt-4o-mini", prompt_tokens: 900, completion_tokens: 14, total_tokens: 914 },
      }),
      i % 10 === 9
        ? event(rootSpan, null, "RAGPipeline", "error", 90, {
            duration_ms: 90,
            error_type: "Error",
            error_message: "refused",
          })
        : event(rootSpan, null, "RAGPipeline", "end", 90, { duration_ms: 90 }),
    );
    out.push(...events.slice(0, count - out.length));
  }
  return out;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const quantile = (values, q) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];

const executablePath = chromiumPath();
const chromiumVersion = execFileSync(executablePath, ["--version"], { encoding: "utf8" }).trim();
const browser = await launchChromium({ executablePath });
const context = browser.context;
const lines = loadEvents(EVENTS).map((event) => JSON.stringify(event));
const batches = [];
for (let offset = 0; offset < lines.length; offset += BATCH)
  batches.push(`[${lines.slice(offset, offset + BATCH).join(",")}]`);

const perBatch = [];
const baseline = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    const server = await startViewer({ onWarning: () => undefined });
    const page = await context.newPage();
    await page.goto(server.url);
    await page.waitForSelector(".badge-live");
    for (let offset = 0; offset < lines.length; offset += BATCH) {
      for (const line of lines.slice(offset, offset + BATCH)) server.ingest(line);
      // One batch at a time, as a live stream would bring them: wait until the page rendered this one.
      const expected = Math.min(lines.length, offset + BATCH);
      await page.waitForFunction(
        (n) => window.streamllViewer.records().reduce((s, r) => s + r.events, 0) >= n,
        expected,
        { timeout: 60_000 },
      );
    }
    const records = await page.evaluate(() => window.streamllViewer.records());
    for (const record of records) perBatch.push(((record.applyMs + record.renderMs) / record.events) * 1_000);
    // Baseline in the same page and round: parsing the same batch texts, nothing else.
    const parse = await page.evaluate((texts) => {
      const out = [];
      for (const text of texts) {
        const started = performance.now();
        const parsed = JSON.parse(text);
        out.push(((performance.now() - started) / parsed.length) * 1_000);
      }
      return out;
    }, batches);
    baseline.push(...parse);
    await page.close();
    await server.close();
  }
} finally {
  await browser.close();
}

const mean = (values) => values.reduce((sum, v) => sum + v, 0) / values.length;
bench.merge("apply", {
  per_1000_events: {
    mean_ms: mean(perBatch),
    median_ms: median(perBatch),
    p95_ms: quantile(perBatch, 0.95),
    max_ms: Math.max(...perBatch),
  },
});
bench.merge("baseline", {
  json_parse_per_1000_events: { mean_ms: mean(baseline), median_ms: median(baseline) },
});
bench.merge("apply", {
  vs_json_parse: {
    mean_ratio: mean(perBatch) / mean(baseline),
    median_ratio: median(perBatch) / median(baseline),
  },
});
bench.merge("settings", {
  run: { rounds: ROUNDS, events_per_round: EVENTS, batch_size: BATCH, batches: perBatch.length },
  browser: { version: chromiumVersion },
});
const r = bench.results;
bench.write();
console.log(
  [
    `viewer page, ${ROUNDS} rounds of ${EVENTS} events in batches of ${BATCH} (${chromiumVersion})`,
    `  apply + render          : ${r["apply.per_1000_events.mean_ms"]} ms per 1,000 events (mean; median ${r["apply.per_1000_events.median_ms"]}, p95 ${r["apply.per_1000_events.p95_ms"]}, max ${r["apply.per_1000_events.max_ms"]}); target <= 50`,
    `  baseline JSON.parse     : ${r["baseline.json_parse_per_1000_events.mean_ms"]} ms per 1,000 events (mean)`,
    `  ratio to baseline       : ${r["apply.vs_json_parse.mean_ratio"]}x`,
  ].join("\n"),
);
