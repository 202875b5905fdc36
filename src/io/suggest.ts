/** "Did you mean" suggestions for unknown flags, commands and task names. */

/** Levenshtein edit distance between two strings. */
export function editDistance(a: string, b: string): number {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const cur = [i];
        for (let j = 1; j <= b.length; j++) {
            cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        prev = cur;
    }
    return prev[b.length]!;
}

/** The candidate closest to `word` (normalising - and _), if it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
    const norm = (s: string) => s.toLowerCase().replaceAll("-", "_");
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const c of candidates) {
        const d = editDistance(norm(word), norm(c));
        if (d < bestDistance) {
            bestDistance = d;
            best = c;
        }
    }
    return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** " (did you mean X?)" or "". */
export function didYouMean(word: string, candidates: readonly string[], format: (s: string) => string = (s) => s): string {
    const c = closest(word, candidates);
    return c === undefined ? "" : `; did you mean ${format(c)}?`;
}
