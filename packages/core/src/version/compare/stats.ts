/**
 * The statistics behind `streamll compare`: quantiles, the Mann-Whitney U test for durations, the
 * two-proportion z-test and Fisher's exact test for error rates, and Holm's correction for running many tests
 * at once. Plain numeric code, no dependencies.
 */

/**
 * Quantile `q` (0..1) of ascending `sorted` values by linear interpolation between closest ranks (Hyndman &
 * Fan type 7, what DuckDB's `quantile_cont` and NumPy's default compute). NaN for no values.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const position = (n - 1) * Math.min(1, Math.max(0, q));
  const lower = Math.floor(position);
  const upper = Math.min(n - 1, lower + 1);
  const weight = position - lower;
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * weight;
}

/** Complementary error function; fractional error below 1.2e-7 everywhere (Numerical Recipes' `erfcc`). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Two-sided p-value of a standard normal statistic. */
export function twoSidedNormalP(z: number): number {
  if (!Number.isFinite(z)) return Number.isNaN(z) ? 1 : 0;
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}

/** Result of {@link mannWhitneyU}. */
export interface MannWhitneyResult {
  readonly n1: number;
  readonly n2: number;
  /** U of the second sample: how often a value of `b` exceeds one of `a` (ties count half). */
  readonly u: number;
  /** Normal approximation with tie and continuity correction; 0 when every value is tied. */
  readonly z: number;
  readonly pValue: number;
  /** `u / (n1 * n2)`: the probability that a random value of `b` exceeds a random value of `a`. */
  readonly probabilityGreater: number;
}

/**
 * Two-sided Mann-Whitney U test (Wilcoxon rank-sum) of whether values of `b` tend to be larger or smaller
 * than values of `a`. Uses the normal approximation with tie correction and continuity correction, which is
 * accurate from about 8 values per sample; callers should not test smaller samples.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): MannWhitneyResult {
  const n1 = a.length;
  const n2 = b.length;
  const n = n1 + n2;
  if (n1 === 0 || n2 === 0) return { n1, n2, u: 0, z: 0, pValue: 1, probabilityGreater: 0.5 };
  const values = new Float64Array(n);
  values.set(a, 0);
  values.set(b, n1);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((x, y) => values[x]! - values[y]!);
  let rankSumB = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && values[order[j]!] === values[order[i]!]) j++;
    // Tied values share the average of the ranks they span (ranks are 1-based).
    const averageRank = (i + 1 + j) / 2;
    const ties = j - i;
    if (ties > 1) tieTerm += ties ** 3 - ties;
    for (let k = i; k < j; k++) if (order[k]! >= n1) rankSumB += averageRank;
    i = j;
  }
  const u = rankSumB - (n2 * (n2 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  const probabilityGreater = u / (n1 * n2);
  if (!(variance > 0)) return { n1, n2, u, z: 0, pValue: 1, probabilityGreater };
  const difference = u - mean;
  const corrected = Math.max(0, Math.abs(difference) - 0.5) * Math.sign(difference);
  const z = corrected / Math.sqrt(variance);
  return { n1, n2, u, z, pValue: twoSidedNormalP(z), probabilityGreater };
}

/** Result of a test comparing two error rates. */
export interface ProportionTestResult {
  readonly test: "two-proportion-z" | "fisher-exact";
  /** The z statistic (z-test only). */
  readonly z: number | null;
  readonly pValue: number;
}

/**
 * Compares `x1/n1` with `x2/n2`: the pooled two-proportion z-test when every expected cell count is at least
 * 5 (where its normal approximation holds), Fisher's exact test otherwise.
 */
export function compareProportions(x1: number, n1: number, x2: number, n2: number): ProportionTestResult {
  const total = n1 + n2;
  const successes = x1 + x2;
  const failures = total - successes;
  const minimumExpected = Math.min(n1, n2) * (Math.min(successes, failures) / Math.max(total, 1));
  if (minimumExpected >= 5) {
    const z = twoProportionZ(x1, n1, x2, n2);
    return { test: "two-proportion-z", z, pValue: twoSidedNormalP(z) };
  }
  return { test: "fisher-exact", z: null, pValue: fisherExact(x1, n1 - x1, x2, n2 - x2) };
}

/** The pooled two-proportion z statistic of `x2/n2 - x1/n1`; 0 when both rates are 0 or both 1. */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return 0;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (!(se > 0)) return 0;
  return (x2 / n2 - x1 / n1) / se;
}

/**
 * Two-sided Fisher exact test for the 2×2 table [[a, b], [c, d]]: the probability, with all margins fixed,
 * of a table at most as likely as the observed one.
 */
export function fisherExact(a: number, b: number, c: number, d: number): number {
  const row1 = a + b;
  const col1 = a + c;
  const total = a + b + c + d;
  if (total === 0) return 1;
  const logP = (x: number) =>
    logFactorial(row1) +
    logFactorial(total - row1) +
    logFactorial(col1) +
    logFactorial(total - col1) -
    logFactorial(total) -
    logFactorial(x) -
    logFactorial(row1 - x) -
    logFactorial(col1 - x) -
    logFactorial(total - row1 - col1 + x);
  const observed = logP(a);
  const low = Math.max(0, row1 + col1 - total);
  const high = Math.min(row1, col1);
  let p = 0;
  for (let x = low; x <= high; x++) {
    const value = logP(x);
    // Relative tolerance: tables as likely as the observed one (up to rounding) count as extreme.
    if (value <= observed + 1e-7) p += Math.exp(value);
  }
  return Math.min(1, p);
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const shifted = x - 1;
  let sum = LANCZOS[0]!;
  const t = shifted + 7.5;
  for (let i = 1; i < 9; i++) sum += LANCZOS[i]! / (shifted + i);
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

function logFactorial(n: number): number {
  return n < 2 ? 0 : logGamma(n + 1);
}

/**
 * Holm-Bonferroni adjusted p-values (same order as the input): controls the chance of any false alarm
 * across all tests at the chosen alpha, and is uniformly more powerful than plain Bonferroni.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, index) => ({ p, index })).sort((x, y) => x.p - y.p);
  const adjusted = new Array<number>(m).fill(1);
  let running = 0;
  order.forEach(({ p, index }, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[index] = running;
  });
  return adjusted;
}
