/** Types of cli-process.mjs, for the TypeScript tests that use it. */
import type { ChildProcess } from "node:child_process";

export interface CliExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly exited: Promise<CliExit>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  interrupt(timeoutMs?: number): Promise<CliExit>;
  stdout(): string;
  stderr(): string;
}

export declare function startCli(
  bin: string,
  args: readonly string[],
  options?: { env?: Record<string, string>; input?: string },
): RunningCli;

export declare function runCli(
  bin: string,
  args: readonly string[],
  options?: { env?: Record<string, string>; input?: string },
): Promise<CliExit & { readonly stdout: string; readonly stderr: string }>;
