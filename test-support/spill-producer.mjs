// A producing process for the disk-spill outage tests: the child side (`serveProducer`, run by a small
// worker file per sink package) configures streamll with one sink and emits `tick` events at a steady rate
// through the public `emit()`; the parent side (`ProducerProcess`) starts it, follows its metrics and memory,
// tells it to finish, or kills it with SIGKILL mid-outage.
import { fork } from "node:child_process";
import { readdirSync } from "node:fs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The child side. `STREAMLL_PRODUCER_CONFIG` holds `{ sink, delivery, count, rate, from?, pad?, sampleMs?,
 * autoFinish?, flushTimeoutMs? }`: events `from .. from+count-1` are emitted as `tick` with `data.seq`, at
 * `rate` per second. Then it waits for `finish` (or finishes at once with `autoFinish`), flushes, shuts
 * down and reports `done` with the final metrics.
 */
export async function serveProducer(core, makeSink) {
  const config = JSON.parse(process.env.STREAMLL_PRODUCER_CONFIG ?? "{}");
  const send = (message) => {
    try {
      process.send?.(message);
    } catch {
      // The parent went away.
    }
  };
  const warnings = [];
  const logger = {
    warn: (message) => warnings.length < 50 && warnings.push(String(message)),
    error: (message) => warnings.length < 50 && warnings.push(String(message)),
  };
  const sink = await makeSink(config.sink, logger);
  core.configure({ serviceName: "spill-producer", sinks: [{ sink, delivery: config.delivery }], logger });
  const finishRequested = new Promise((resolve) => {
    process.on("message", (message) => {
      if (message?.type === "finish") resolve();
    });
  });
  const sample = () =>
    send({ type: "metrics", metrics: core.getMetrics()[0], memory: process.memoryUsage(), at: Date.now() });
  const sampler = setInterval(sample, config.sampleMs ?? 200);
  sample();

  const from = config.from ?? 0;
  const count = config.count ?? 0;
  const pad = config.pad ?? "";
  const started = performance.now();
  let next = from;
  while (next < from + count) {
    const due = from + Math.min(count, Math.floor(((performance.now() - started) / 1000) * config.rate));
    while (next < due) core.emit("tick", { seq: next++, pad });
    await sleep(10);
  }
  sample();
  send({ type: "emitted", at: Date.now() });
  if (!config.autoFinish) await finishRequested;
  const flushed = await core.flush(config.flushTimeoutMs ?? 120_000);
  clearInterval(sampler);
  // The metrics after shutdown: its drops (or what it moved to the disk spill) included.
  const [metrics] = await core.shutdown(config.shutdownTimeoutMs ?? 10_000);
  send({ type: "done", flushed, metrics, warnings, memory: process.memoryUsage() });
  process.disconnect?.();
}

/** The parent side: one producer process. */
export class ProducerProcess {
  metrics = undefined;
  /** Every metrics/memory sample, in order. */
  samples = [];
  emitted = false;
  final = undefined;
  stderr = "";

  constructor(worker, config, env = {}) {
    this.child = fork(worker, [], {
      env: { ...process.env, ...env, STREAMLL_PRODUCER_CONFIG: JSON.stringify(config) },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.pid = this.child.pid;
    this.child.stderr.on("data", (chunk) => {
      if (this.stderr.length < 8_192) this.stderr += chunk.toString();
    });
    this.child.on("message", (message) => {
      if (message?.type === "metrics") {
        this.metrics = message.metrics;
        this.samples.push(message);
      } else if (message?.type === "emitted") this.emitted = true;
      else if (message?.type === "done") {
        this.final = message;
        this.metrics = message.metrics;
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  /** Resolves once `predicate(this)` holds; rejects after `timeoutMs` or when the process exits first. */
  async waitFor(predicate, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => {
      exited = true;
    });
    while (!predicate(this)) {
      if (exited && !predicate(this)) {
        throw new Error(`producer exited while waiting for ${what}; stderr: ${this.stderr.slice(-2_000)}`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; last metrics: ${JSON.stringify(this.metrics)}`,
        );
      }
      await sleep(50);
    }
  }

  /** Asks the producer to flush, shut down and report; resolves with its `done` message. */
  async finish(timeoutMs = 180_000) {
    this.child.send({ type: "finish" });
    await this.waitFor((p) => p.final !== undefined, timeoutMs, "the producer to finish");
    await this.exited;
    return this.final;
  }

  kill(signal = "SIGKILL") {
    this.child.kill(signal);
    return this.exited;
  }
}

/**
 * A crash mid-outage: a producer whose broker is down for its whole life runs until every one of its
 * `config.count` events is in segment files (nothing left in memory or in the writer's hand-over), then is
 * killed with SIGKILL. What it leaves on disk is for the next process to deliver.
 */
export async function spillAllThenKill(worker, config) {
  const producer = new ProducerProcess(worker, config);
  try {
    await producer.waitFor(
      (p) =>
        p.emitted &&
        p.metrics?.pending === config.count &&
        p.metrics.spill?.pending === config.count &&
        p.metrics.spill.buffered === 0,
      60_000,
      "every event in segment files",
    );
  } finally {
    await producer.kill("SIGKILL");
  }
}

/**
 * The outage scenario: a producer emits `count` events at `rate`; after `outageAfter` events the broker goes
 * away (`down()`) for `outageMs`, then comes back (`up()`); once everything is emitted the producer flushes and
 * reports. Returns the final report, the samples and when the outage was.
 */
export async function runOutage({ worker, config, env, outageAfter, outageMs, down, up }) {
  const producer = new ProducerProcess(worker, config, env);
  try {
    await producer.waitFor(
      (p) => (p.metrics?.emitted ?? 0) >= outageAfter,
      120_000,
      "events before the outage",
    );
    const downAt = Date.now();
    await down();
    await sleep(outageMs);
    const upAt = Date.now();
    await up();
    await producer.waitFor((p) => p.emitted, 300_000, "the producer to emit everything");
    const final = await producer.finish();
    return { final, samples: producer.samples, downAt, upAt, stderr: producer.stderr };
  } finally {
    producer.kill();
  }
}

/**
 * The delivery options of the outage tests: test pacing (the breaker probes every second) with production
 * defaults for the queue and batches; with `spillDirectory`, the spill, replaying as fast as the broker takes
 * it (the tests measure completeness, not pacing).
 */
export function outageDelivery(spillDirectory) {
  return {
    sendTimeoutMs: 5_000,
    retry: { initialDelayMs: 50, maxDelayMs: 1_000 },
    circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 1_000 },
    ...(spillDirectory === undefined ? {} : { spill: { directory: spillDirectory, replayRate: 50_000 } }),
  };
}

/**
 * The checks of a spilled outage of `count` events: the producer flushed, every event was delivered and none
 * dropped, tens of thousands went through the spill, the broker holds every seq once under its own id, and no
 * segment is left. `records()` reads what the broker holds. `expect` is vitest's.
 */
export async function expectOutageSurvived(expect, { name, final, count, records }) {
  const m = final.metrics;
  expect(final.flushed).toBe(true);
  expect(m).toMatchObject({ emitted: count, delivered: count, dropped: 0, pending: 0 });
  expect(m.spilled).toBeGreaterThan(30_000);
  expect(m.replayed).toBeGreaterThan(30_000);
  const summary = summarizeDelivery(await records(), count);
  expect(summary).toMatchObject({ distinct: count, missing: 0, changedIds: 0 });
  console.log(
    `${name} spill outage: ${JSON.stringify({ ...summary, spilled: m.spilled, replayed: m.replayed })}`,
  );
  expect(readdirSync(m.spill.directory).filter((f) => f.endsWith(".seg"))).toEqual([]);
}

/**
 * After {@link spillAllThenKill}: a second producer on the same spill directory, emitting nothing, delivers
 * every event the killed one left on disk to `sink`. `records()` reads what the broker holds.
 */
export async function expectLeftoversDelivered(expect, { worker, sink, delivery, count, records }) {
  const second = new ProducerProcess(worker, { sink, delivery, count: 0, rate: 1, autoFinish: true });
  const report = await second.finish();
  expect(report.flushed).toBe(true);
  // At least every event once: a replayed trial batch in flight at the kill is in its segment still.
  expect(report.metrics.recovered).toBeGreaterThanOrEqual(count);
  expect(report.metrics).toMatchObject({ emitted: 0, dropped: 0, pending: 0 });
  expect(report.metrics.delivered).toBe(report.metrics.recovered);
  const summary = summarizeDelivery(await records(), count);
  expect(summary).toMatchObject({ distinct: count, missing: 0, changedIds: 0 });
}

/**
 * What a broker ended up with, from its records' `data.seq` and `event_id`: distinct events, duplicates
 * (at-least-once), the seqs of `[from, from+count)` that are missing, and seqs seen under more than one event
 * id (a replay must keep ids unchanged).
 */
export function summarizeDelivery(records, count, from = 0) {
  const idBySeq = new Map();
  let changedIds = 0;
  for (const { seq, id } of records) {
    const known = idBySeq.get(seq);
    if (known === undefined) idBySeq.set(seq, id);
    else if (known !== id) changedIds++;
  }
  const missing = [];
  for (let seq = from; seq < from + count; seq++) if (!idBySeq.has(seq)) missing.push(seq);
  return {
    records: records.length,
    distinct: idBySeq.size,
    duplicates: records.length - idBySeq.size,
    missing: missing.length,
    firstMissing: missing.slice(0, 10),
    changedIds,
  };
}

/** `{ seq, id }` of an event's JSON. */
export function seqAndId(json) {
  const event = JSON.parse(json);
  return { seq: event.data.seq, id: event.event_id };
}
