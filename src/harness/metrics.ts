/**
 * lm-eval's metric aggregations and standard errors (`lm_eval/api/metrics.py`), with Python's float semantics:
 *
 * - `mean(xs)`: plain left-to-right sum divided by n (CPython ≤ 3.11 `sum`).
 * - `perplexity(lls)`: `exp(-mean(lls))`, per-document (per-target) perplexity.
 * - `sampleStddev(xs)`: Bessel-corrected (n − 1); `meanStderr(xs)` = sampleStddev / √n.
 * - `bootstrapStderr(lls, iters)`: lm-eval's perplexity stderr: chunks of min(1000, iters) resamples, chunk i
 *   drawn with `random.Random(i).choices(xs, k=n)`, stderr = sampleStddev of all replicate perplexities.
 * - `aggregate(name, items)` / `stderrFor(name, items, bootstrapIters)`: dispatch by aggregation name, returning
 *   `"N/A"` where lm-eval does (one item, or bootstrapIters ≤ 0).
 */
import { PyRandom } from "./pyrandom.js";

/** Aggregations used by the six tasks. */
export type AggregationName = "mean" | "perplexity";

/** lm-eval's `mean`: left-to-right float sum / n. */
export function mean(xs: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < xs.length; i++) total += xs[i]!;
    return total / xs.length;
}

/** lm-eval's `perplexity` aggregation: exp(−mean(log-likelihoods)). */
export function perplexity(lls: ArrayLike<number>): number {
    return correctlyRoundedExp(-mean(lls));
}

// ---- exp rounded correctly, as glibc's `exp` (what CPython's math.exp calls) returns it --------------------
// V8's Math.exp (fdlibm) is off by one ulp for roughly one argument in ten, which would change lm-eval's
// perplexity and its bootstrap replicates in the last bit. Double-double arithmetic (~100 bits) and one final
// rounding give the correctly rounded value.

const SPLITTER = 134217729; // 2^27 + 1

/** a·b as an unevaluated sum hi + lo (Dekker). */
function twoProduct(a: number, b: number): [number, number] {
    const p = a * b;
    let c = SPLITTER * a;
    const ah = c - (c - a);
    const al = a - ah;
    c = SPLITTER * b;
    const bh = c - (c - b);
    const bl = b - bh;
    return [p, ((ah * bh - p) + ah * bl + al * bh) + al * bl];
}

/** Double-double product, normalised. */
function ddMul(xh: number, xl: number, yh: number, yl: number): [number, number] {
    const [p, e] = twoProduct(xh, yh);
    const err = e + (xh * yl + xl * yh);
    const hi = p + err;
    return [hi, err - (hi - p)];
}

/** Double-double sum, normalised. */
function ddAdd(xh: number, xl: number, yh: number, yl: number): [number, number] {
    const s = xh + yh;
    const bb = s - xh;
    const e = (xh - (s - bb)) + (yh - bb) + xl + yl;
    const hi = s + e;
    return [hi, e - (hi - s)];
}

/** Double-double divided by a small positive integer, normalised. */
function ddDivideByInteger(xh: number, xl: number, n: number): [number, number] {
    const q1 = xh / n;
    const [p, e] = twoProduct(q1, n);
    const q2 = ((xh - p) - e + xl) / n;
    const hi = q1 + q2;
    return [hi, q2 - (hi - q1)];
}

const LN2_HI = 0.6931471805599453;
const LN2_LO = 2.3190468138462996e-17;

/** exp(x) correctly rounded to the nearest double (agrees with glibc's exp, hence with Python's math.exp). */
export function correctlyRoundedExp(x: number): number {
    if (!Number.isFinite(x) || x > 709 || x < -700 || x === 0) return Math.exp(x);
    const k = Math.round(x / LN2_HI);
    // r = x − k·ln2 in double-double.
    const [kh, kl] = twoProduct(k, LN2_HI);
    let [rh, rl] = ddAdd(x, 0, -kh, -kl);
    [rh, rl] = ddAdd(rh, rl, -k * LN2_LO, 0);
    // exp(r) = exp(r / 256)^256, with a Taylor series for the small argument.
    const sh = rh / 256;
    const sl = rl / 256;
    let th = 1;
    let tl = 0;
    for (let n = 14; n >= 1; n--) {
        // t = 1 + s·t / n (Horner form of the Taylor series)
        [th, tl] = ddMul(th, tl, sh, sl);
        [th, tl] = ddDivideByInteger(th, tl, n);
        [th, tl] = ddAdd(1, 0, th, tl);
    }
    for (let i = 0; i < 8; i++) [th, tl] = ddMul(th, tl, th, tl);
    return (th + tl) * Math.pow(2, k);
}

/** Sample standard deviation with n − 1 in the denominator (lm-eval's `sample_stddev`). */
export function sampleStddev(xs: ArrayLike<number>): number {
    const mu = mean(xs);
    let total = 0;
    for (let i = 0; i < xs.length; i++) {
        const d = xs[i]! - mu;
        total += d * d;
    }
    return Math.sqrt(total / (xs.length - 1));
}

/** Standard error of the mean: sampleStddev / √n (lm-eval's `mean_stderr`). */
export function meanStderr(xs: ArrayLike<number>): number {
    return sampleStddev(xs) / Math.sqrt(xs.length);
}

/**
 * The perplexity replicates lm-eval's bootstrap draws: for chunk i = 0 .. iters/chunk − 1 a fresh
 * `random.Random(i)` makes `chunk` resamples of size n with `choices`; each replicate is `perplexity(resample)`.
 * Returned in lm-eval's order (chunk by chunk).
 */
export function bootstrapPerplexityReplicates(lls: ArrayLike<number>, iters: number): Float64Array {
    const n = lls.length;
    const values = Float64Array.from(lls);
    const chunk = Math.min(1000, iters);
    const chunks = Math.floor(iters / chunk);
    const replicates = new Float64Array(chunks * chunk);
    let r = 0;
    for (let seed = 0; seed < chunks; seed++) {
        const rng = new PyRandom(seed);
        for (let j = 0; j < chunk; j++) replicates[r++] = correctlyRoundedExp(-(rng.resampleSum(values) / n));
    }
    return replicates;
}

/** lm-eval's bootstrap stderr of the perplexity aggregation (deterministic; independent of --seed). */
export function bootstrapPerplexityStderr(lls: ArrayLike<number>, iters: number): number {
    return sampleStddev(bootstrapPerplexityReplicates(lls, iters));
}

/** Aggregates per-document metric items the way the named lm-eval aggregation does. */
export function aggregate(aggregation: AggregationName, items: ArrayLike<number>): number {
    return aggregation === "perplexity" ? perplexity(items) : mean(items);
}

/**
 * lm-eval's stderr for an aggregation (`stderr_for_metric` + the evaluator's guards): `"N/A"` when
 * bootstrapIters ≤ 0 or fewer than two items; mean → meanStderr; perplexity → bootstrap.
 */
export function stderrFor(aggregation: AggregationName, items: ArrayLike<number>, bootstrapIters: number): number | "N/A" {
    if (!(bootstrapIters > 0) || items.length <= 1) return "N/A";
    return aggregation === "perplexity" ? bootstrapPerplexityStderr(items, bootstrapIters) : meanStderr(items);
}
