// Shared by the spill tests (spill-pipeline, spill-order): numbered events, a sink that is down until switched
// on, delivery options with a spill, pipelines shut down after each test, and small waiting helpers.
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SinkError } from "../../errors";
import { DeliveryPipeline } from "../delivery-pipeline";
import type { DeliveryOptions, SinkMetrics } from "../delivery-types";
import { type EncodedEvent, encodedEventFromJson, type Sink } from "../sink";

/** Event number `id` (id `event-<id>`, data `{ n: id }`). */
export function ev(id: number): EncodedEvent {
  return encodedEventFromJson(JSON.stringify({ event_id: `event-${id}`, data: { n: id } }));
}

/** A sink that is down (throws retriably) until `up` is set, and records the ids it acknowledged. */
export class SwitchSink implements Sink {
  readonly name: string;
  up = false;
  readonly acked: string[] = [];
  sends = 0;
  delayMs = 0;
  /** Every send waits for it first, like a connection attempt that has not timed out yet. */
  hold: Promise<void> | undefined;
  constructor(name = "switch") {
    this.name = name;
  }
  async send(batch: readonly EncodedEvent[]): Promise<void> {
    this.sends++;
    if (this.hold !== undefined) await this.hold;
    await new Promise((resolve) =>
      this.delayMs > 0 ? setTimeout(resolve, this.delayMs) : setImmediate(resolve),
    );
    if (!this.up) throw new SinkError("broker unavailable", { retriable: true });
    for (const event of batch) this.acked.push(event.event_id);
  }
  async close(): Promise<void> {}
}

export const quiet = { logger: { warn() {} } };

/** Every directory {@link spillDir} made, in order. */
export const spillDirs: string[] = [];

/** A fresh directory under the system's temporary directory. */
export function spillDir(prefix = "streamll-spill-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  spillDirs.push(dir);
  return dir;
}

/** Small, fast delivery settings with a spill in `directory` (`extra.spill` is merged into it). */
export function options(directory: string, extra: Partial<DeliveryOptions> = {}): DeliveryOptions {
  return {
    maxQueueSize: 100,
    maxBatchSize: 50,
    flushIntervalMs: 5,
    retry: { initialDelayMs: 5, maxDelayMs: 20 },
    circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 30 },
    ...extra,
    spill: { directory, replayRate: 20_000, ...(extra.spill === false ? {} : extra.spill) },
  };
}

const pipelines: DeliveryPipeline[] = [];

/** A pipeline that {@link shutDownPipelines} shuts down after the test. */
export function pipelineFor(sink: Sink, opts: DeliveryOptions): DeliveryPipeline {
  const pipeline = new DeliveryPipeline(sink, opts, quiet);
  pipelines.push(pipeline);
  return pipeline;
}

/** Shuts down every pipeline {@link pipelineFor} made (call it in `afterEach`). */
export async function shutDownPipelines(): Promise<void> {
  await Promise.all(pipelines.splice(0).map((p) => p.shutdown(2_000)));
}

/** The accounting identity every metrics snapshot must satisfy. */
export function balanced(m: SinkMetrics): boolean {
  return m.emitted + m.recovered === m.delivered + m.dropped + m.pending;
}

export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Enqueues in chunks of 50 with a turn of the event loop between them, like a program doing work. */
export async function enqueueSteadily(pipeline: DeliveryPipeline, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    pipeline.enqueue(ev(i));
    if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Every segment file under `root`, sorted by path. */
export function segmentFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name.endsWith(".seg")) found.push(join(dir, entry.name));
    }
  };
  walk(root);
  return found.sort();
}

/**
 * Writes, in `directory`, a module for `node --import` that lets a child process import this package's `.ts`
 * sources by their extensionless relative specifiers (Node strips the types); returns its path.
 */
export function writeTsResolveHook(directory: string): string {
  const hook = join(directory, "resolve-ts.mjs");
  writeFileSync(
    hook,
    `import { registerHooks } from "node:module";
registerHooks({ resolve(specifier, context, next) {
  try { return next(specifier, context); } catch (error) {
    if (specifier.startsWith(".") && !/\\.[cm]?[jt]s$/.test(specifier)) return next(specifier + ".ts", context);
    throw error;
  } } });
`,
  );
  return hook;
}

/**
 * Runs `script` (TypeScript, importing this package's sources) in a child Node with `hook` from
 * {@link writeTsResolveHook}, killed after 8 s: for calls that may never return (a recursive mkdir under
 * /proc/sys), so a regression fails a test instead of hanging the suite. `signal` is null when it ended itself.
 */
export function runChildWithTimeout(hook: string, script: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ["--import", hook, script], {
    encoding: "utf8",
    timeout: 8_000,
    killSignal: "SIGKILL",
  });
}
