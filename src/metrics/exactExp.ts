/**
 * exp rounded correctly, as glibc's `exp` (what CPython's math.exp calls) returns it. V8's Math.exp (fdlibm) is
 * off by one ulp for roughly one argument in ten, which would change lm-eval's perplexity and its bootstrap
 * replicates in the last bit. Double-double arithmetic (~100 bits) and one final rounding give the correctly
 * rounded value.
 */

/** a·b as an unevaluated sum hi + lo (Dekker). */
function twoProduct(a: number, b: number): [number, number] {
    const splitter = 134217729; // 2^27 + 1
    const p = a * b;
    let c = splitter * a;
    const ah = c - (c - a);
    const al = a - ah;
    c = splitter * b;
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

/** exp(x) correctly rounded to the nearest double (agrees with glibc's exp, hence with Python's math.exp). */
export function correctlyRoundedExp(x: number): number {
    if (!Number.isFinite(x) || x > 709 || x < -700 || x === 0) return Math.exp(x);
    const ln2Hi = 0.6931471805599453;
    const ln2Lo = 2.3190468138462996e-17;
    const k = Math.round(x / ln2Hi);
    // r = x − k·ln2 in double-double.
    const [kh, kl] = twoProduct(k, ln2Hi);
    let [rh, rl] = ddAdd(x, 0, -kh, -kl);
    [rh, rl] = ddAdd(rh, rl, -k * ln2Lo, 0);
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

