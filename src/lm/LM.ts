/**
 * The language-model interface of lm-evaluation-harness, in TypeScript. Tasks produce these plain-data
 * requests; an LM answers them in input order. Models never see tasks; tasks never see tokens.
 */

/** (context, continuation) → log P(continuation | context) and whether it is the greedy continuation. */
export interface LoglikelihoodRequest {
    context: string;
    continuation: string;
}

export interface LoglikelihoodResult {
    /** Sum of the continuation tokens' log-probabilities (float64). */
    logprob: number;
    /** Every continuation token is the argmax of its row (first index wins ties). */
    isGreedy: boolean;
}

/** A whole text scored token by token (perplexity tasks), lm-eval's rolling windows. */
export interface RollingRequest {
    text: string;
}

export interface GenerateRequest {
    context: string;
    /** Stop strings: the output is cut at the first occurrence of any of them. */
    until: string[];
    /** Maximum number of new tokens (lm-eval's max_gen_toks, default 256). */
    maxGenToks: number;
}

/** Progress of a long call: done/total requests and tokens processed so far. */
export interface LMProgress {
    done: number;
    total: number;
    tokens: number;
}

export interface LMCallOptions {
    onProgress?: (p: LMProgress) => void;
    /** Called as soon as one request's answer is known (for caches); index is the input index. */
    onResult?: (index: number, result: LoglikelihoodResult) => void;
    signal?: AbortSignal;
}

export interface LM {
    loglikelihood(requests: LoglikelihoodRequest[], options?: LMCallOptions): Promise<LoglikelihoodResult[]>;
    loglikelihoodRolling(requests: RollingRequest[], options?: LMCallOptions): Promise<number[]>;
    generateUntil(requests: GenerateRequest[], options?: LMCallOptions): Promise<string[]>;
}
