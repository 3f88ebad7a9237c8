import { describe, expect, it } from "vitest";
import {
  compareProportions,
  erfc,
  fisherExact,
  holmAdjust,
  logGamma,
  mannWhitneyU,
  quantile,
  twoProportionZ,
  twoSidedNormalP,
} from "./stats";

describe("quantile", () => {
  it("interpolates linearly between closest ranks (type 7)", () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(quantile(values, 0.5)).toBeCloseTo(5.5);
    expect(quantile(values, 0.95)).toBeCloseTo(9.55);
    expect(quantile(values, 0)).toBe(1);
    expect(quantile(values, 1)).toBe(10);
    expect(quantile([4], 0.99)).toBe(4);
    expect(quantile([], 0.5)).toBeNaN();
  });
});

describe("normal distribution", () => {
  it("matches reference values", () => {
    expect(erfc(0)).toBeCloseTo(1, 7);
    expect(erfc(1)).toBeCloseTo(0.157299207, 7);
    expect(erfc(-1)).toBeCloseTo(1.842700793, 7);
    expect(twoSidedNormalP(1.959964)).toBeCloseTo(0.05, 5);
    expect(twoSidedNormalP(2.575829)).toBeCloseTo(0.01, 5);
    expect(twoSidedNormalP(8) / 1.244192e-15).toBeCloseTo(1, 4);
    expect(twoSidedNormalP(Number.NaN)).toBe(1);
  });

  it("computes ln Γ", () => {
    expect(logGamma(1)).toBeCloseTo(0, 10);
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 10);
    expect(logGamma(101)).toBeCloseTo(363.73937555556347, 8);
  });
});

describe("mannWhitneyU", () => {
  it("matches a textbook example (scipy.stats.mannwhitneyu, two-sided, continuity correction)", () => {
    // scipy 1.17: mannwhitneyu([19,22,16,29,24], [20,11,17,12], method="asymptotic") -> U1 = 17, p = 0.111347
    const a = [19, 22, 16, 29, 24];
    const b = [20, 11, 17, 12];
    const result = mannWhitneyU(a, b);
    expect(result.u).toBe(3); // U of b = n1*n2 - U1 = 20 - 17
    expect(result.pValue).toBeCloseTo(0.111347, 5);
  });

  it("applies the tie correction", () => {
    // scipy 1.17: mannwhitneyu([3,4,4,5,5,5], [1,2,2,3,3,3], method="asymptotic") -> U = 34.5, p = 0.0083675
    const result = mannWhitneyU([1, 2, 2, 3, 3, 3], [3, 4, 4, 5, 5, 5]);
    expect(result.u).toBe(34.5);
    expect(result.pValue).toBeCloseTo(0.0083675, 6);
    expect(result.probabilityGreater).toBeCloseTo(34.5 / 36);
  });

  it("gives p = 1 when every value is tied, and for an empty sample", () => {
    expect(mannWhitneyU([2, 2, 2], [2, 2]).pValue).toBe(1);
    expect(mannWhitneyU([], [1, 2]).pValue).toBe(1);
  });

  it("is symmetric in direction", () => {
    const a = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const b = [5, 6, 7, 8, 9, 10, 11, 12, 13];
    const forward = mannWhitneyU(a, b);
    const backward = mannWhitneyU(b, a);
    expect(forward.pValue).toBeCloseTo(backward.pValue, 12);
    expect(forward.z).toBeCloseTo(-backward.z, 12);
    expect(forward.probabilityGreater + backward.probabilityGreater).toBeCloseTo(1, 12);
  });
});

describe("error-rate tests", () => {
  it("Fisher exact matches scipy.stats.fisher_exact", () => {
    // scipy 1.17: fisher_exact([[3, 1], [1, 3]]) -> p = 0.485714
    expect(fisherExact(3, 1, 1, 3)).toBeCloseTo(0.485714, 5);
    // scipy 1.17: fisher_exact([[0, 10], [5, 5]]) -> p = 0.0325077
    expect(fisherExact(0, 10, 5, 5)).toBeCloseTo(0.0325077, 6);
    expect(fisherExact(0, 0, 0, 0)).toBe(1);
  });

  it("two-proportion z matches the formula", () => {
    // 10/100 vs 20/100: pooled 0.15, se = sqrt(0.15*0.85*0.02) = 0.0505, z = 1.980
    expect(twoProportionZ(10, 100, 20, 100)).toBeCloseTo(1.98, 2);
    expect(twoProportionZ(0, 50, 0, 50)).toBe(0);
  });

  it("picks Fisher when an expected count is small, the z-test otherwise", () => {
    expect(compareProportions(1, 200, 3, 200).test).toBe("fisher-exact");
    const large = compareProportions(20, 400, 45, 400);
    expect(large.test).toBe("two-proportion-z");
    expect(large.pValue).toBeLessThan(0.01);
  });
});

describe("holmAdjust", () => {
  it("matches Holm's step-down procedure", () => {
    // sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, max(2*0.03, prev), max(1*0.04, prev)
    const adjusted = holmAdjust([0.01, 0.04, 0.03, 0.005]);
    expect(adjusted.map((p) => Number(p.toFixed(6)))).toEqual([0.03, 0.06, 0.06, 0.02]);
    expect(holmAdjust([])).toEqual([]);
  });
});
