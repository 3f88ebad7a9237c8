/** Types of exit-without-shutdown.mjs, for the TypeScript tests that use it. */
import type { EncodedEvent, Sink } from "@streamll/core";
import type { expect as Expect } from "vitest";

export declare const EXIT_KILL_AFTER_MS: number;

export interface ExitRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

export declare function runExitProgram(
  worker: string,
  env: Record<string, string>,
  options?: { killAfterMs?: number },
): Promise<ExitRun>;

export declare function runWithSilentPeer(
  worker: string,
  envFor: (port: number) => Record<string, string>,
  options?: { killAfterMs?: number },
): Promise<ExitRun>;

export declare function expectExited(expect: typeof Expect, run: ExitRun, killAfterMs?: number): void;

export declare function eventIndexes(payloads: readonly string[]): number[];

export declare function range(count: number): number[];

export declare function exitProgram(options: {
  core: typeof import("@streamll/core");
  sink: Sink & { connect?(): Promise<void> };
  env?: NodeJS.ProcessEnv;
  exitFlushTimeoutMs?: number;
  sendOptions?: Record<string, unknown>;
}): Promise<void>;

export declare function encodedEvents(
  core: Pick<typeof import("@streamll/core"), "encodeEvent" | "SCHEMA_VERSION">,
  count: number,
): EncodedEvent[];
