// Measurement helpers shared by bench/cases/*.mjs. Plain ESM so the bench runs on the built package with
// nothing but node.
import { performance } from "node:perf_hooks";

/** Yields to the event loop so timers, I/O and the delivery pipeline get their turn. */
export function yieldToLoop() {
  return new Promise((resolve) => setImmediate(resolve));
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function collectGarbage() {
  if (typeof globalThis.gc === "function") globalThis.gc();
}

/**
 * Runs `body(count)` (which must perform `count` operations) for `warmupRounds` unrecorded rounds, then
 * `rounds` recorded ones, and returns the median nanoseconds per operation. The loop yields to the event loop
 * every `chunk` operations inside `body` callers, so background work caused by the operations (batching,
 * delivery) is paid for inside the measured time instead of being deferred past it.
 */
export async function nsPerOp(body, { ops, rounds = 7, warmupRounds = 2 }) {
  for (let i = 0; i < warmupRounds; i++) await body(ops);
  const samples = [];
  for (let i = 0; i < rounds; i++) {
    collectGarbage();
    await yieldToLoop();
    const start = performance.now();
    await body(ops);
    samples.push(((performance.now() - start) * 1e6) / ops);
  }
  return { median: median(samples), samples };
}

/**
 * Measures two variants with interleaved rounds (A, B, A, B, …) so drift in machine load affects both alike,
 * and returns the median ns/op of each.
 */
export async function compare(bodyA, bodyB, { ops, rounds = 7, warmupRounds = 2 }) {
  for (let i = 0; i < warmupRounds; i++) {
    await bodyA(ops);
    await bodyB(ops);
  }
  const a = [];
  const b = [];
  for (let i = 0; i < rounds; i++) {
    for (const [body, samples] of [
      [bodyA, a],
      [bodyB, b],
    ]) {
      collectGarbage();
      await yieldToLoop();
      const start = performance.now();
      await body(ops);
      samples.push(((performance.now() - start) * 1e6) / ops);
    }
  }
  return { a: median(a), b: median(b), samplesA: a, samplesB: b };
}

export function formatNs(ns) {
  if (!Number.isFinite(ns)) return "n/a";
  if (Math.abs(ns) >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (Math.abs(ns) >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}
