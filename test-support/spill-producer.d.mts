/** Types of spill-producer.mjs, for the TypeScript tests that use it. */
import type { ChildProcess } from "node:child_process";
import type { DeliveryOptions, SinkMetrics } from "@streamll/core";
import type { expect as Expect } from "vitest";

export interface ProducerConfig {
  /** The sink's options, passed to the worker's `makeSink`. */
  readonly sink: Record<string, unknown>;
  readonly delivery?: DeliveryOptions;
  /** Events to emit (`tick` with `data.seq` from `from`). */
  readonly count: number;
  /** Events per second. */
  readonly rate: number;
  readonly from?: number;
  /** A string put in every event's data, to size the events. */
  readonly pad?: string;
  readonly sampleMs?: number;
  /** Flush and report as soon as everything is emitted, without waiting for `finish()`. */
  readonly autoFinish?: boolean;
  readonly flushTimeoutMs?: number;
  readonly shutdownTimeoutMs?: number;
}

export interface ProducerSample {
  readonly metrics: SinkMetrics;
  readonly memory: NodeJS.MemoryUsage;
  readonly at: number;
}

export interface ProducerReport {
  readonly flushed: boolean;
  readonly metrics: SinkMetrics;
  readonly warnings: readonly string[];
  readonly memory: NodeJS.MemoryUsage;
}

export declare function serveProducer(
  core: unknown,
  makeSink: (options: Record<string, unknown>, logger: unknown) => unknown,
): Promise<void>;

export declare class ProducerProcess {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  metrics: SinkMetrics | undefined;
  readonly samples: ProducerSample[];
  emitted: boolean;
  final: ProducerReport | undefined;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(worker: string, config: ProducerConfig, env?: Record<string, string>);
  waitFor(predicate: (producer: ProducerProcess) => boolean, timeoutMs: number, what: string): Promise<void>;
  finish(timeoutMs?: number): Promise<ProducerReport>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a producer against a broker that stays down until all its events are on disk, then SIGKILLs it. */
export declare function spillAllThenKill(worker: string, config: ProducerConfig): Promise<void>;

export declare function runOutage(options: {
  readonly worker: string;
  readonly config: ProducerConfig;
  readonly env?: Record<string, string>;
  /** Emitted events before the outage starts. */
  readonly outageAfter: number;
  readonly outageMs: number;
  readonly down: () => Promise<void>;
  readonly up: () => Promise<void>;
}): Promise<{
  readonly final: ProducerReport;
  readonly samples: readonly ProducerSample[];
  readonly downAt: number;
  readonly upAt: number;
  readonly stderr: string;
}>;

export interface DeliverySummary {
  readonly records: number;
  readonly distinct: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly firstMissing: readonly number[];
  readonly changedIds: number;
}

export declare function summarizeDelivery(
  records: readonly { readonly seq: number; readonly id: string }[],
  count: number,
  from?: number,
): DeliverySummary;

export declare function seqAndId(json: string): { seq: number; id: string };

export declare function outageDelivery(spillDirectory?: string): DeliveryOptions;

export declare function expectOutageSurvived(
  expect: typeof Expect,
  options: {
    readonly name: string;
    readonly final: ProducerReport;
    readonly count: number;
    readonly records: () => Promise<readonly { readonly seq: number; readonly id: string }[]>;
  },
): Promise<void>;

export declare function expectLeftoversDelivered(
  expect: typeof Expect,
  options: {
    readonly worker: string;
    readonly sink: Record<string, unknown>;
    readonly delivery: DeliveryOptions;
    readonly count: number;
    readonly records: () => Promise<readonly { readonly seq: number; readonly id: string }[]>;
  },
): Promise<void>;
