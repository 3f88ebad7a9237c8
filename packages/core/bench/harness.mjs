// Measurement helpers shared by bench/cases/*.mjs. Plain ESM so the bench runs on the built package with
// nothing but node. The sustained-load measurement the sink benches share lives in
// test-support/bench-calls.mjs.
import { performance } from "node:perf_hooks";

export {
  alternatingRounds,
  chargeBaselineExcess,
  collectGarbage,
  collectYoungGarbage,
  heapAfterGc,
  readingSink,
  SUSTAINED,
  sustainedCalls,
  yieldToLoop,
} from "../../../test-support/bench-calls.mjs";

export const mean = (values) => values.reduce((sum, v) => sum + v, 0) / values.length;

/** Times `fn()` once, in milliseconds. */
export async function timeMs(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** `1.234` under a key ending in `_us` → `1.23 µs`; the unit is the key's suffix (see bench-results.mjs). */
export function formatValue(key, value) {
  if (typeof value !== "number") return String(value);
  const unit = /[._](ns|us|ms|s|bytes|ratio|pct|per_s)$/.exec(key)?.[1];
  const n =
    Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
  switch (unit) {
    case "ns":
      return `${n} ns`;
    case "us":
      return `${n} µs`;
    case "ms":
      return `${n} ms`;
    case "s":
      return `${n} s`;
    case "bytes":
      return `${value.toFixed(0)} B`;
    case "ratio":
      return `${n}×`;
    case "pct":
      return `${n} %`;
    case "per_s":
      return `${value.toFixed(0)}/s`;
    default:
      return String(value);
  }
}
