/**
 * The evaluation workload on the real data (/work/shared/data, i.e. ../shared/data from the repo): the six
 * tasks' loglikelihood requests, tokenised with the GPT-NeoX-20B tokenizer through the harness's encodePairs
 * and truncatePair, then
 *   - token-steps lm-eval's way (Σ len(ctx+cont) − 1) vs the prefix tree's (src/harness/prefixTree.ts);
 *   - wall time on a subset (first `docsPerTask` documents of each task) through the scheduler vs one
 *     score() call per request, with the log-likelihoods asserted bit-identical.
 * HellaSwag exists only as derived text (hellaswag_val_full.txt.bz2: per item a context line, the label,
 * four endings; see PROVENANCE.md); it is decompressed with the system bzip2 and its contexts are used as
 * they stand (close to, not exactly, lm-eval's query: a token-count measurement, not a score).
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { encodePairs, truncatePair, type TokenRequest } from "../src/lm/encodePair.js";
import { buildPrefixTree } from "../src/lm/prefixTree.js";
import { buildTaskRequests } from "../src/evaluator/requests.js";
import { scoreTokenRequests } from "../src/lm/scheduler.js";
import type { NativeBackend } from "../src/backend/NativeBackend.js";
import { loadTokenizerFile } from "../src/model/tokenizer.js";
import { loadTaskDocs } from "../src/tasks/datasets.js";
import { getTask } from "../src/tasks/registry.js";
import { DEFAULT_TOKENS_PER_CALL } from "../src/lm/defaults.js";

const LOCAL_TASKS = ["lambada_openai", "piqa", "arc_easy", "arc_challenge", "winogrande"] as const;

/** (context, continuation) pairs of one task's documents, in document order. */
export interface TaskPairs {
    task: string;
    /** pairs[d] = the requests of document d. */
    docs: { context: string; continuation: string }[][];
}

/** HellaSwag from the derived text file: 6 lines per item (context, label, 4 endings). */
function hellaswagPairs(dataDir: string): TaskPairs {
    const file = path.join(dataDir, "hellaswag", "hellaswag_val_full.txt.bz2");
    let text: string;
    try {
        text = execFileSync("bzip2", ["-dc", file], { encoding: "utf8", maxBuffer: 64 << 20 });
    } catch (e) {
        throw new Error(`${file}: cannot decompress with the system bzip2 (${(e as Error).message.split("\n")[0]})`);
    }
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    if (lines.length % 6 !== 0) throw new Error(`${file}: expected 6 lines per item, got ${lines.length} lines`);
    const docs: TaskPairs["docs"] = [];
    for (let i = 0; i < lines.length; i += 6) {
        const context = lines[i]!;
        docs.push(lines.slice(i + 2, i + 6).map((ending) => ({ context, continuation: " " + ending })));
    }
    return { task: "hellaswag", docs };
}

/** All six tasks' requests from the data folder, grouped by document. */
export async function loadAllPairs(dataDir: string): Promise<TaskPairs[]> {
    const out: TaskPairs[] = [];
    for (const name of LOCAL_TASKS) {
        const task = getTask(name);
        const docs = await loadTaskDocs(task, { dataDir });
        const byDoc: TaskPairs["docs"] = docs.map(() => []);
        for (const inst of buildTaskRequests(task, docs)) byDoc[inst.docId]!.push({ context: inst.context, continuation: inst.continuation });
        out.push({ task: name, docs: byDoc });
    }
    out.push(hellaswagPairs(dataDir));
    return out;
}

/** Token requests of the given documents (encodePairs + truncatePair, EOS 0 as the empty-context prefix). */
export async function tokenRequests(tokenizerFile: string, tasks: readonly TaskPairs[], docsPerTask?: number): Promise<Map<string, TokenRequest[]>> {
    const tok = await loadTokenizerFile(tokenizerFile);
    const out = new Map<string, TokenRequest[]>();
    for (const t of tasks) {
        const pairs = (docsPerTask === undefined ? t.docs : t.docs.slice(0, docsPerTask)).flat();
        const encoded = await encodePairs(tok, pairs, tok.eosTokenId);
        out.set(t.task, encoded.map((p) => truncatePair(p)));
    }
    return out;
}

export interface TokenStepCounts {
    task: string;
    requests: number;
    /** Σ (len − 1): what lm-eval runs. */
    lmEval: number;
    /** Tokens the prefix tree over the task's requests runs. */
    tree: number;
}

/** Token-steps per task and in total, lm-eval's way vs the prefix tree's. */
export function countTokenSteps(requests: Map<string, TokenRequest[]>): TokenStepCounts[] {
    const rows: TokenStepCounts[] = [];
    for (const [task, reqs] of requests) {
        let lmEval = 0;
        for (const r of reqs) lmEval += r.tokens.length - 1;
        rows.push({ task, requests: reqs.length, lmEval, tree: buildPrefixTree(reqs, true).tokenSteps });
    }
    return rows;
}

export interface SubsetRun {
    requests: number;
    treeTokens: number;
    aloneTokens: number;
    treeSeconds: number;
    aloneSeconds: number;
    scoredRows: number;
    calls: number;
    bitIdentical: boolean;
}

/** The subset through the scheduler, then each request in its own score() call; compares every result bit for bit. */
export async function runSubset(model: NativeBackend, requests: readonly TokenRequest[]): Promise<SubsetRun> {
    const t0 = performance.now();
    const shared = await scoreTokenRequests(model, requests, { maxTokensPerCall: DEFAULT_TOKENS_PER_CALL.cpu, maxStateSlots: 64 });
    const treeSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    let aloneTokens = 0;
    let scoredRows = 0;
    const alone: { logprob: number; isGreedy: boolean }[] = [];
    for (const r of requests) {
        const n = r.tokens.length - 1;
        const rows = Int32Array.from({ length: r.nScored }, (_, i) => n - r.nScored + i);
        const out = await model.score({
            tokens: Int32Array.from(r.tokens.slice(0, n)),
            segOffsets: Int32Array.from([0, n]),
            segInit: Int32Array.from([-1]),
            segSave: Int32Array.from([-1]),
            scoreRows: rows,
            scoreTargets: Int32Array.from(rows, (row) => r.tokens[row + 1]!),
        });
        let logprob = 0;
        let greedy = true;
        for (let i = 0; i < r.nScored; i++) {
            logprob += out.logprobs[i]!;
            if (out.greedy[i] !== 1) greedy = false;
        }
        alone.push({ logprob, isGreedy: greedy });
        aloneTokens += n;
        scoredRows += r.nScored;
    }
    const aloneSeconds = (performance.now() - t1) / 1000;
    const bitIdentical = alone.every((a, i) => {
        const b = shared.results[i]!;
        return Object.is(a.logprob, b.logprob) && a.isGreedy === b.isGreedy;
    });
    return {
        requests: requests.length, treeTokens: shared.stats.tokenSteps, aloneTokens, treeSeconds, aloneSeconds,
        scoredRows, calls: shared.stats.calls, bitIdentical,
    };
}
