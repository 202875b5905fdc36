/**
 * A token-level prefix tree (radix tree) over the model inputs of many scoring requests. Requests whose
 * inputs share a prefix share its computation: each tree edge ("segment") is run once, starting from its
 * parent's final state, so a HellaSwag context is run once for its four endings and identical contexts
 * across documents are run once in all.
 *
 *   inputs   [A B C D]   [A B C E F]   [A B G]
 *   tree     root ─ [A B] ─┬─ [C] ─┬─ [D]
 *                          │       └─ [E F]
 *                          └─ [G]
 *
 * A request's scored rows are tree positions (segment, depth) with a target token each; a position can be
 * scored against several targets (the last shared token predicts every branch's first token), and equal
 * (position, target) pairs from different requests are scored once.
 *
 * Built from the inputs sorted lexicographically, so construction is linear in the number of tokens after
 * the sort and the children of every node come out in sorted order.
 */
import type { TokenRequest } from "./encodePair.js";

/** One edge of the tree: the tokens at depths [start, end) of the input `source` (a request index). */
export interface TrieSegment {
    /** Parent segment, or -1 when the segment starts at depth 0 (from the zero state). */
    parent: number;
    /** Index of a request whose input contains this segment's tokens. */
    source: number;
    start: number;
    end: number;
    children: number[];
}

/** One scored position: the row at `depth` (inside `segment`) predicts `target`. */
export interface TrieRow {
    segment: number;
    depth: number;
    target: number;
}

/** The unique scored positions as parallel arrays (row r: segment[r], depth[r], target[r]). */
export interface TrieRows {
    length: number;
    segment: Int32Array;
    depth: Int32Array;
    target: Int32Array;
}

/** Row r of a tree as an object. */
export function trieRow(rows: TrieRows, r: number): TrieRow {
    return { segment: rows.segment[r]!, depth: rows.depth[r]!, target: rows.target[r]! };
}

export interface PrefixTree {
    segments: TrieSegment[];
    /** Segment ids in depth-first pre-order: every parent comes before its children. */
    order: number[];
    /** Unique scored positions (parallel arrays: a Table-3 run has over a million). */
    rows: TrieRows;
    /** Per request: indices into `rows` of its continuation tokens, in token order. */
    requestRows: Int32Array[];
    /** Tokens the tree runs in total (sum of segment lengths). */
    tokenSteps: number;
}

/** The model input of a request: all its tokens but the last. */
export function inputLength(request: TokenRequest): number {
    return request.tokens.length - 1;
}

function compareInputs(a: TokenRequest, b: TokenRequest): number {
    const la = inputLength(a);
    const lb = inputLength(b);
    const n = Math.min(la, lb);
    for (let i = 0; i < n; i++) {
        const d = a.tokens[i]! - b.tokens[i]!;
        if (d !== 0) return d;
    }
    return la - lb;
}

function commonPrefix(a: TokenRequest, b: TokenRequest): number {
    const n = Math.min(inputLength(a), inputLength(b));
    let i = 0;
    while (i < n && a.tokens[i] === b.tokens[i]) i++;
    return i;
}

/**
 * Builds the tree. With `share` false every request gets its own chain from the zero state (no sharing at
 * all, not even between identical inputs): the reference that sharing must reproduce bit for bit.
 */
export function buildPrefixTree(requests: readonly TokenRequest[], share = true): PrefixTree {
    for (let i = 0; i < requests.length; i++) {
        const r = requests[i]!;
        if (r.tokens.length < 2 || r.nScored < 1 || r.nScored > r.tokens.length - 1) {
            throw new RangeError(`prefix tree: request ${i} has ${r.tokens.length} tokens and ${r.nScored} scored`);
        }
    }
    const segments: TrieSegment[] = [];
    const roots: number[] = [];
    /** The segment holding each request's last input position, at the time it was inserted. */
    const finalSegment = new Int32Array(requests.length);

    if (!share) {
        for (let i = 0; i < requests.length; i++) {
            finalSegment[i] = segments.length;
            roots.push(segments.length);
            segments.push({ parent: -1, source: i, start: 0, end: inputLength(requests[i]!), children: [] });
        }
    } else {
        const sorted = Array.from(requests.keys()).sort((a, b) => compareInputs(requests[a]!, requests[b]!) || a - b);
        const stack: number[] = [];
        let prev = -1;
        for (const idx of sorted) {
            const req = requests[idx]!;
            const len = inputLength(req);
            const lcp = prev < 0 ? 0 : commonPrefix(requests[prev]!, req);
            if (prev >= 0 && lcp === len && len === inputLength(requests[prev]!)) {
                finalSegment[idx] = finalSegment[prev]!; // identical input
                continue;
            }
            while (stack.length > 0 && segments[stack[stack.length - 1]!]!.start >= lcp) stack.pop();
            const topId = stack.length > 0 ? stack[stack.length - 1]! : -1;
            if (topId < 0) {
                const id = segments.length;
                segments.push({ parent: -1, source: idx, start: 0, end: len, children: [] });
                roots.push(id);
                stack.push(id);
                finalSegment[idx] = id;
            } else {
                const top = segments[topId]!;
                if (lcp === top.end && top.children.length === 0) {
                    // The previous input ended here and this one continues it: extend the leaf.
                    top.end = len;
                    top.source = idx;
                    finalSegment[idx] = topId;
                } else {
                    let parentId = topId;
                    if (lcp < top.end) {
                        // Split: a new segment takes the upper part [start, lcp); `top` keeps the lower part
                        // and its children (so ids already recorded for them stay valid).
                        const upperId = segments.length;
                        const upper: TrieSegment = { parent: top.parent, source: top.source, start: top.start, end: lcp, children: [topId] };
                        segments.push(upper);
                        const siblings = top.parent < 0 ? roots : segments[top.parent]!.children;
                        siblings[siblings.indexOf(topId)] = upperId;
                        top.parent = upperId;
                        top.start = lcp;
                        stack[stack.length - 1] = upperId;
                        parentId = upperId;
                    }
                    const id = segments.length;
                    segments.push({ parent: parentId, source: idx, start: lcp, end: len, children: [] });
                    segments[parentId]!.children.push(id);
                    stack.push(id);
                    finalSegment[idx] = id;
                }
            }
            prev = idx;
        }
    }

    const order: number[] = [];
    const pending = roots.slice().reverse();
    while (pending.length > 0) {
        const id = pending.pop()!;
        order.push(id);
        const kids = segments[id]!.children;
        for (let k = kids.length - 1; k >= 0; k--) pending.push(kids[k]!);
    }

    // A scored position can repeat only across requests, so only segments that hold positions of more than one
    // request (users > 1) keep a map of the positions already made.
    const users = new Int32Array(segments.length);
    for (let i = 0; i < requests.length; i++) users[finalSegment[i]!]!++;
    for (let o = order.length - 1; o >= 0; o--) {
        const seg = segments[order[o]!]!;
        if (seg.parent >= 0) users[seg.parent]! += users[order[o]!]!;
    }
    let scored = 0;
    for (const r of requests) scored += r.nScored;
    const rowSegment = new Int32Array(scored);
    const rowDepth = new Int32Array(scored);
    const rowTarget = new Int32Array(scored);
    let nRows = 0;
    const addRow = (segment: number, depth: number, target: number): number => {
        rowSegment[nRows] = segment;
        rowDepth[nRows] = depth;
        rowTarget[nRows] = target;
        return nRows++;
    };
    const rowIndex: (Map<number, number> | undefined)[] = new Array(segments.length);
    const requestRows: Int32Array[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) {
        const req = requests[i]!;
        const len = inputLength(req);
        const out = new Int32Array(req.nScored);
        let seg = finalSegment[i]!;
        for (let k = req.nScored - 1; k >= 0; k--) {
            const depth = len - req.nScored + k;
            while (segments[seg]!.start > depth) seg = segments[seg]!.parent;
            const target = req.tokens[depth + 1]!;
            if (users[seg] === 1) {
                out[k] = addRow(seg, depth, target);
                continue;
            }
            let map = rowIndex[seg];
            if (!map) rowIndex[seg] = map = new Map();
            const key = depth * 0x1000000 + target;
            let r = map.get(key);
            if (r === undefined) {
                r = addRow(seg, depth, target);
                map.set(key, r);
            }
            out[k] = r;
        }
        requestRows[i] = out;
    }
    let tokenSteps = 0;
    for (const s of segments) tokenSteps += s.end - s.start;
    const rows: TrieRows = {
        length: nRows,
        segment: rowSegment.subarray(0, nRows),
        depth: rowDepth.subarray(0, nRows),
        target: rowTarget.subarray(0, nRows),
    };
    return { segments, order, rows, requestRows, tokenSteps };
}
