/** Types of reader-group.mjs, for the TypeScript tests that use it. */
import type { ChildProcess } from "node:child_process";

export interface ReaderConfig {
  /** The reader's options, passed to the worker's `open`. */
  readonly reader: Record<string, unknown>;
  /** Async work per event in the handler (a timer), in ms. Default 0. */
  readonly handlerDelayMs?: number;
}

export interface ReaderFinal {
  readonly handled: number;
  readonly stats: Record<string, number>;
  readonly handlerMs: number;
  readonly firstAt: number | undefined;
  readonly lastAt: number | undefined;
}

export declare class ReaderProcess {
  readonly index: number;
  readonly pid: number | undefined;
  readonly logPath: string | undefined;
  readonly child: ChildProcess;
  readonly handled: number;
  /** The reader said it is consuming (readers with a `ready()` only). */
  readonly ready: boolean;
  readonly firstAt: number | undefined;
  readonly lastAt: number | undefined;
  readonly final: ReaderFinal | undefined;
  readonly error: string | undefined;
  readonly stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  terminate(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ids(): string[];
  describe(): string;
}

export interface GroupAnalysis {
  /** Distinct ids handled. */
  readonly unique: number;
  readonly missing: string[];
  /** Handled ids that were not expected (e.g. left over from another run). */
  readonly unexpected: string[];
  /** Ids handled more than once, with the index of each process that handled them, in reader order. */
  readonly duplicates: { id: string; readers: number[] }[];
  /** Handled events beyond the first handling of each id. */
  readonly extraDeliveries: number;
  /** Lines logged per process. */
  readonly perReader: number[];
}

export declare class ReaderGroup {
  readonly readers: ReaderProcess[];
  readonly dir: string;
  constructor(options: {
    worker: string;
    config: ReaderConfig;
    env?: Record<string, string>;
    /** Log every handled id (default `true`); benchmarks turn it off. */
    log?: boolean;
  });
  add(overrides?: Partial<ReaderConfig>): ReaderProcess;
  start(count: number): ReaderProcess[];
  readonly handled: number;
  waitForHandled(count: number, timeoutMs?: number): Promise<void>;
  /** Waits until the union of the processes' logs holds every id. */
  waitForIds(expectedIds: Iterable<string>, timeoutMs?: number): Promise<void>;
  waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  stopAll(timeoutMs?: number): Promise<void>;
  analyze(expectedIds: Iterable<string>): GroupAnalysis;
  close(): Promise<void>;
}

/** One line for a test's output: how the ids were shared, and what was missing or handled twice. */
export declare function summarize(analysis: GroupAnalysis): string;
