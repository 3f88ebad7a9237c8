/** Types of shutdown-exit.mjs, for the TypeScript tests that use it. */
import type { Sink } from "@streamll/core";

export declare function startSilentPeer(): Promise<{ readonly port: number; close(): Promise<void> }>;
export declare function closedPort(): Promise<number>;

export interface ShutdownRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Milliseconds from shutdown() resolving to the process exiting; undefined if it never resolved. */
  readonly exitAfterMs: number | undefined;
  /** `process.getActiveResourcesInfo()` right after shutdown resolved, stdio left out. */
  readonly active: string;
  readonly stderr: string;
}

export declare function runShutdownWorker(
  worker: string,
  options: { port: number; shutdownMs: number; killAfterMs?: number },
): Promise<ShutdownRun>;

export declare function serveShutdown(
  core: {
    configure(options: { sinks: Sink[] }): void;
    emit(name: string, data: Record<string, unknown>): void;
    shutdown(timeoutMs?: number): Promise<void>;
  },
  createSink: (port: number) => Sink,
): Promise<void>;

export declare function shutdownExitSuite(
  vitest: typeof import("vitest"),
  sinkName: string,
  worker: string,
  shutdownMs?: number,
): void;
