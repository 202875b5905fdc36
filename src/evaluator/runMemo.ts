/**
 * What the models of one table3 run have in common, kept between their evaluations in one process: the task
 * documents (per task and data source), the token requests (per tokenizer file, max length and request list) and
 * their prefix tree.
 * Each model is still evaluated exactly as a lone `mamba-eval run` would (same documents, same token ids): the memo
 * only skips re-reading and re-tokenising identical inputs, which costs seconds per model against a few seconds of
 * GPU time for the small sizes. Entries are shared read-only: nothing downstream mutates documents or requests.
 */
import type { Doc } from "../tasks/types.js";
import type { TokenRequest } from "../lm/encodePair.js";
import type { LoglikelihoodRequest } from "../lm/LM.js";
import { buildPrefixTree, type PrefixTree } from "../lm/prefixTree.js";

interface EncodedEntry {
    requests: readonly LoglikelihoodRequest[];
    tokens: Promise<TokenRequest[]>;
}

function sameRequests(a: readonly LoglikelihoodRequest[], b: readonly LoglikelihoodRequest[]): boolean {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
        if (a[i]!.context !== b[i]!.context || a[i]!.continuation !== b[i]!.continuation) return false;
    }
    return true;
}

export class RunMemo {
    private readonly docs = new Map<string, Promise<Doc[]>>();
    private readonly encoded = new Map<string, EncodedEntry>();
    private readonly trees = new WeakMap<readonly TokenRequest[], Map<boolean, PrefixTree>>();

    /** The documents `load` returns for `key` (a task and its data source), loaded once; a failed load is retried. */
    documents(key: string, load: () => Promise<Doc[]>): Promise<Doc[]> {
        let docs = this.docs.get(key);
        if (docs === undefined) {
            docs = load();
            this.docs.set(key, docs);
            docs.catch(() => this.docs.delete(key));
        }
        return docs;
    }

    /**
     * The token requests `encode` makes of `requests` with the tokenizer and settings `key` names: reused when the
     * last list encoded under `key` is equal, element by element; otherwise encoded and kept in its place.
     */
    tokenRequests(key: string, requests: readonly LoglikelihoodRequest[], encode: () => Promise<TokenRequest[]>): Promise<TokenRequest[]> {
        const hit = this.encoded.get(key);
        if (hit !== undefined && sameRequests(hit.requests, requests)) return hit.tokens;
        const tokens = encode();
        const entry: EncodedEntry = { requests: [...requests], tokens };
        this.encoded.set(key, entry);
        tokens.catch(() => {
            if (this.encoded.get(key) === entry) this.encoded.delete(key);
        });
        return tokens;
    }

    /** buildPrefixTree(requests, share), built once per request array (the same array tokenRequests hands out). */
    prefixTree(requests: readonly TokenRequest[], share: boolean): PrefixTree {
        let byShare = this.trees.get(requests);
        if (byShare === undefined) {
            byShare = new Map();
            this.trees.set(requests, byShare);
        }
        let tree = byShare.get(share);
        if (tree === undefined) {
            tree = buildPrefixTree(requests, share);
            byShare.set(share, tree);
        }
        return tree;
    }
}
