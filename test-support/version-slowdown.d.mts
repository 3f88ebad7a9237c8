/** Types of version-slowdown.mjs, for the TypeScript tests that use it. */
import type * as Core from "@streamll/core";
import type { Sink } from "@streamll/core";
import type { expect as Expect } from "vitest";

export declare const ROUNDS: number;
export declare const EVENTS: number;
export declare function lines(stdout: string): string[];
export declare function recordTwoReleases(core: typeof Core, sink: Sink, shutdownMs?: number): Promise<void>;
export declare function expectSlowdownFlagged(core: typeof Core, expect: typeof Expect, jsonl: string): void;
