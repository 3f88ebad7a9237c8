/** Types of settles.mjs, for the TypeScript tests that use it. */
export declare function settles(promise: Promise<unknown>, ms?: number): Promise<"settled" | "hung">;
