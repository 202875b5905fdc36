import { describe, expect, it } from "vitest";
import type { TokenRequest } from "../../src/lm/encodePair.js";
import { buildPrefixTree, trieRow } from "../../src/lm/prefixTree.js";

/** A request whose input is `input` and whose scored tokens are `cont` (appended). */
function req(input: number[], cont: number[]): TokenRequest {
    // tokens = input + last cont token; the scored rows are the last cont.length input positions.
    const ctx = input.slice(0, input.length - (cont.length - 1));
    return { tokens: [...ctx, ...cont], nScored: cont.length };
}

function segTokens(reqs: TokenRequest[], tree: ReturnType<typeof buildPrefixTree>, id: number): number[] {
    const s = tree.segments[id]!;
    return reqs[s.source]!.tokens.slice(s.start, s.end);
}

describe("prefix tree", () => {
    it("builds the radix tree of the module diagram", () => {
        // inputs [1 2 3 4], [1 2 3 5 6], [1 2 7]  (A B C D / A B C E F / A B G)
        const reqs = [req([1, 2, 3, 4], [9]), req([1, 2, 3, 5, 6], [9]), req([1, 2, 7], [9])];
        const tree = buildPrefixTree(reqs);
        const shape = tree.order.map((id) => {
            const s = tree.segments[id]!;
            return { tokens: segTokens(reqs, tree, id), parent: s.parent < 0 ? null : segTokens(reqs, tree, s.parent) };
        });
        expect(shape).toEqual([
            { tokens: [1, 2], parent: null },
            { tokens: [3], parent: [1, 2] },
            { tokens: [4], parent: [3] },
            { tokens: [5, 6], parent: [3] },
            { tokens: [7], parent: [1, 2] },
        ]);
        expect(tree.tokenSteps).toBe(7); // 2 + 1 + 1 + 2 + 1; lm-eval runs 4 + 5 + 3 = 12
    });

    it("scores the last shared token once per distinct target (HellaSwag endings)", () => {
        // context [5 6 7]; endings [8 9], [8 10], [11]; inputs are context + ending[:-1].
        const reqs = [
            { tokens: [5, 6, 7, 8, 9], nScored: 2 },
            { tokens: [5, 6, 7, 8, 10], nScored: 2 },
            { tokens: [5, 6, 7, 11], nScored: 1 },
        ];
        const tree = buildPrefixTree(reqs);
        expect(tree.tokenSteps).toBe(4); // [5 6 7] once, then [8] once (shared by the first two)
        const rowsOf = (i: number) => Array.from(tree.requestRows[i]!, (r) => trieRow(tree.rows, r));
        expect(rowsOf(0).map((r) => [r.depth, r.target])).toEqual([[2, 8], [3, 9]]);
        expect(rowsOf(1).map((r) => [r.depth, r.target])).toEqual([[2, 8], [3, 10]]);
        expect(rowsOf(2).map((r) => [r.depth, r.target])).toEqual([[2, 11]]);
        // Row (depth 2, target 8) is shared: 4 unique rows for 5 scored tokens.
        expect(tree.rows.length).toBe(4);
        expect(tree.requestRows[0]![0]).toBe(tree.requestRows[1]![0]);
    });

    it("puts a request whose input is a prefix of another inside the longer path", () => {
        const reqs = [{ tokens: [1, 2, 3], nScored: 1 }, { tokens: [1, 2, 3, 4, 5], nScored: 1 }];
        const tree = buildPrefixTree(reqs);
        expect(tree.segments.length).toBe(1);
        expect(tree.tokenSteps).toBe(4);
        expect(trieRow(tree.rows, tree.requestRows[0]![0]!)).toEqual({ segment: 0, depth: 1, target: 3 });
    });

    it("shares identical inputs with different targets, and dedupes identical requests", () => {
        const reqs = [
            { tokens: [1, 2, 3], nScored: 1 },
            { tokens: [1, 2, 4], nScored: 1 },
            { tokens: [1, 2, 3], nScored: 1 },
        ];
        const tree = buildPrefixTree(reqs);
        expect(tree.tokenSteps).toBe(2);
        expect(tree.rows.length).toBe(2);
        expect(tree.requestRows[2]![0]).toBe(tree.requestRows[0]![0]);
    });

    it("splits a segment whose children were already built (out-of-order branching)", () => {
        // Sorted inputs: [1 2 3 4], [1 2 3 5], [1 6]: the third branches above the [1 2 3] node.
        const reqs = [{ tokens: [1, 6, 0], nScored: 1 }, { tokens: [1, 2, 3, 4, 0], nScored: 1 }, { tokens: [1, 2, 3, 5, 0], nScored: 1 }];
        const tree = buildPrefixTree(reqs);
        expect(tree.tokenSteps).toBe(6); // [1] [2 3] [4] [5] [6]
        for (const id of tree.order) {
            const s = tree.segments[id]!;
            if (s.parent >= 0) expect(tree.order.indexOf(s.parent)).toBeLessThan(tree.order.indexOf(id));
            if (s.parent >= 0) expect(tree.segments[s.parent]!.end).toBe(s.start);
        }
        const rowOf = (i: number) => trieRow(tree.rows, tree.requestRows[i]![0]!);
        expect(rowOf(0).depth).toBe(1);
        expect(rowOf(1).depth).toBe(3);
        expect(tree.segments[rowOf(0).segment]!.start).toBe(1);
    });

    it("without sharing gives every request its own chain", () => {
        const reqs = [{ tokens: [1, 2, 3], nScored: 1 }, { tokens: [1, 2, 3], nScored: 1 }];
        const tree = buildPrefixTree(reqs, false);
        expect(tree.tokenSteps).toBe(4);
        expect(tree.segments.map((s) => s.parent)).toEqual([-1, -1]);
    });
});
