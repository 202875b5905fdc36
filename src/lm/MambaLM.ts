/**
 * MambaLM: lm-evaluation-harness's LM interface on a Mamba backend and a tokenizer.
 *
 * - loglikelihood: encodePair (lm-eval's tokenisation rule) → left truncation to maxLength → one prefix tree
 *   over all requests → packed score() calls (scheduler.ts). Results are bit-identical to scoring each request
 *   alone, at any packing.
 * - loglikelihoodRolling: lm-eval's disjoint rolling windows (context_len 1) through the same scheduler.
 * - generateUntil / generate: the recurrent path: prefill the prompt with one score() call that saves the
 *   state and returns the last row's logits, then step() token by token, many sequences per step call.
 *
 * Calls are serialised (one at a time per model): they share the backend's state slots.
 */
import { argmax, Sampler, type SamplingOptions } from "./sampler.js";
import { MambaEvalError, NumericError, UsageError } from "../errors.js";
import type { Backend } from "../backend/Backend.js";
import { encodePairs, rollingRequests, truncatePair, type TokenRequest } from "./encodePair.js";
import { DEFAULT_GENERATE_BATCH, DEFAULT_MAX_LENGTH, DEFAULT_TOKENS_PER_CALL, defaultStateBudgetBytes } from "./defaults.js";
import { scoreTokenRequests, type KvBudget, type ScheduleStats } from "./scheduler.js";
import type { PrefixTree } from "./prefixTree.js";
import type {
    GenerateRequest,
    LM,
    LMCallOptions,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
} from "./LM.js";

/** What MambaLM needs from a tokenizer (src/model/tokenizer.ts TextTokenizer provides it). */
export interface LMTokenizer {
    encode(text: string): Promise<number[]>;
    encodeBatch(texts: readonly string[]): Promise<number[][]>;
    decode(ids: readonly number[]): Promise<string>;
    eosTokenId: number;
    vocabSize: number;
    /** The tokenizer file; names it in a RunMemo key (without it nothing is shared). */
    source?: string;
    /** Lets encodePairs encode a continuation alone (encodePair.ts PairEncoder.splitsBeforeSpace). */
    splitsBeforeSpace?: boolean;
}

/**
 * Inputs shared between the models of one process (the evaluator's RunMemo): token requests made once per
 * tokenizer and request list, and their prefix tree. Each model still scores exactly what it would alone.
 */
export interface RequestMemo {
    tokenRequests(key: string, requests: readonly LoglikelihoodRequest[], encode: () => Promise<TokenRequest[]>): Promise<TokenRequest[]>;
    prefixTree(requests: readonly TokenRequest[], share: boolean): PrefixTree;
}

export interface MambaLMOptions {
    /** lm-eval's max_length (2048 for mamba_ssm). */
    maxLength?: number;
    /** Token cap of one score() call (default DEFAULT_TOKENS_PER_CALL of the device). Results do not depend on it. */
    maxTokensPerCall?: number;
    /**
     * Bytes the scheduler may keep in saved states; sets the live state-slot cap. Default
     * defaultStateBudgetBytes of the model on its device.
     */
    stateBudgetBytes?: number;
    /** Prefix sharing (default true). Results do not depend on it. */
    share?: boolean;
    /** Sequences stepped together in generation (default DEFAULT_GENERATE_BATCH). */
    generateBatch?: number;
    /** Token requests shared with the other models of a table3 run (tokenised once for all of them). */
    memo?: RequestMemo;
}

/** Token form of loglikelihood requests: lm-eval's encode-pair rule, then truncation to maxLength. */
export async function encodeTokenRequests(tokenizer: LMTokenizer, requests: readonly LoglikelihoodRequest[], maxLength: number): Promise<TokenRequest[]> {
    const pairs = await encodePairs(tokenizer, requests, tokenizer.eosTokenId);
    return pairs.map((p, i) => {
        try {
            return truncatePair(p, maxLength);
        } catch (e) {
            const r = requests[i]!;
            throw new MambaEvalError(`request ${i} (context ${JSON.stringify(r.context.slice(-40))}, continuation ${JSON.stringify(r.continuation)}): ${(e as Error).message}`);
        }
    });
}

/** The RunMemo key of token requests made by `tokenizer` for max length `maxLength` (none without a tokenizer file). */
export function tokenRequestsKey(tokenizer: LMTokenizer, maxLength: number): string | undefined {
    return tokenizer.source === undefined ? undefined : `${tokenizer.source}\0${tokenizer.eosTokenId}\0${maxLength}`;
}

/** Options of `generate`. */
export interface GenerateOptions extends SamplingOptions {
    maxNewTokens: number;
    /** Stop when the end-of-text token is produced (it is not returned). Default true. */
    stopAtEos?: boolean;
    /** Called with each new token as soon as it is chosen. */
    onToken?: (token: number) => void | Promise<void>;
}

/** Per-token output of `scoreSequence`. */
export interface SequenceScore {
    /** logprobs[i] = log P(ids[i+1] | ids[..i]); length ids.length - 1. */
    logprobs: Float64Array;
    greedy: Uint8Array;
    /** ids.length × vocab logits when asked for, else undefined. */
    logits?: Float32Array;
    vocab: number;
}



/** A promise chain that runs async jobs one at a time. */
class Serial {
    private tail: Promise<unknown> = Promise.resolve();
    run<T>(job: () => Promise<T>): Promise<T> {
        const next = this.tail.then(job, job);
        this.tail = next.catch(() => undefined);
        return next;
    }
}

/** Implements lm-eval's LM on a Mamba backend; see the module comment. */
export class MambaLM implements LM {
    readonly maxLength: number;
    private readonly serial = new Serial();
    /** Statistics of the last loglikelihood call (token steps with and without sharing). */
    lastStats: ScheduleStats | undefined;

    constructor(
        readonly backend: Backend,
        readonly tokenizer: LMTokenizer | undefined,
        private readonly options: MambaLMOptions = {},
    ) {
        this.maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
        if (!(Number.isInteger(this.maxLength) && this.maxLength >= 2)) {
            throw new UsageError(`max_length ${this.maxLength}: expected an integer >= 2`);
        }
    }

    private requireTokenizer(what: string): LMTokenizer {
        if (!this.tokenizer) throw new UsageError(`${what} needs a tokenizer (--tokenizer)`);
        return this.tokenizer;
    }

    /** Bytes of saved prefix states this LM keeps at once: its option, else the device's default. */
    stateBudgetBytes(): number {
        return this.options.stateBudgetBytes ?? defaultStateBudgetBytes(this.backend.info());
    }

    /** Live state slots allowed by the state budget. */
    private maxStateSlots(): number {
        const info = this.backend.info();
        const slotBytes = Math.max(1, (info.convStateFloats + info.ssmStateFloats) * 4);
        return Math.max(2, Math.min(4096, Math.floor(this.stateBudgetBytes() / slotBytes)));
    }

    /**
     * With attention layers a saved state also holds K and V rows for every token of its sequence: the scheduler
     * then counts each slot's bytes at its depth against the state budget. Undefined for a pure Mamba model.
     */
    private kvBudget(): KvBudget | undefined {
        const info = this.backend.info();
        if (!(info.kvFloatsPerToken > 0)) return undefined;
        return {
            slotBytes: (info.convStateFloats + info.ssmStateFloats) * 4,
            bytesPerToken: info.kvFloatsPerToken * 4,
            budgetBytes: this.stateBudgetBytes(),
        };
    }

    /** Scores token requests (already truncated) through the prefix-tree scheduler. */
    async loglikelihoodTokens(requests: readonly TokenRequest[], options: LMCallOptions = {}): Promise<LoglikelihoodResult[]> {
        return this.serial.run(async () => {
            const total = requests.length;
            const kvBudget = this.kvBudget();
            const out = await scoreTokenRequests(this.backend, requests, {
                maxTokensPerCall: this.options.maxTokensPerCall ?? DEFAULT_TOKENS_PER_CALL[this.backend.info().device],
                maxStateSlots: this.maxStateSlots(),
                ...(kvBudget ? { kvBudget } : {}),
                share: this.options.share,
                ...(this.options.memo ? { tree: this.options.memo.prefixTree(requests, this.options.share ?? true) } : {}),
                signal: options.signal,
                onResult: options.onResult,
                onProgress: (done, tokens) => options.onProgress?.({ done, total, tokens }),
            });
            this.lastStats = out.stats;
            return out.results;
        });
    }

    /** Token form of loglikelihood requests: lm-eval's encode-pair rule, then truncation to maxLength. */
    async encodeRequests(requests: readonly LoglikelihoodRequest[]): Promise<TokenRequest[]> {
        return encodeTokenRequests(this.requireTokenizer("loglikelihood"), requests, this.maxLength);
    }

    async loglikelihood(requests: LoglikelihoodRequest[], options: LMCallOptions = {}): Promise<LoglikelihoodResult[]> {
        const memo = this.options.memo;
        const key = tokenRequestsKey(this.requireTokenizer("loglikelihood"), this.maxLength);
        const tokens = memo && key !== undefined
            ? await memo.tokenRequests(key, requests, () => this.encodeRequests(requests))
            : await this.encodeRequests(requests);
        return this.loglikelihoodTokens(tokens, options);
    }

    async loglikelihoodRolling(requests: RollingRequest[], options: LMCallOptions = {}): Promise<number[]> {
        const tok = this.requireTokenizer("loglikelihood_rolling");
        const docs = await tok.encodeBatch(requests.map((r) => r.text));
        const windows: TokenRequest[] = [];
        const owner: number[] = [];
        docs.forEach((ids, d) => {
            for (const w of rollingRequests(ids, tok.eosTokenId, this.maxLength)) {
                windows.push(w);
                owner.push(d);
            }
        });
        const results = await this.loglikelihoodTokens(windows, { signal: options.signal, onProgress: options.onProgress });
        const sums = new Array<number>(requests.length).fill(0);
        results.forEach((r, i) => {
            sums[owner[i]!]! += r.logprob;
        });
        return sums;
    }

    /** Per-token log-probabilities of one id sequence (and optionally its logits), in one score() call. */
    async scoreSequence(ids: readonly number[], withLogits = false): Promise<SequenceScore> {
        if (ids.length === 0) throw new UsageError("score: the sequence is empty");
        return this.serial.run(async () => {
            const n = ids.length;
            const rows = Int32Array.from({ length: n - 1 }, (_, i) => i);
            const out = await this.backend.score({
                tokens: Int32Array.from(ids),
                segOffsets: Int32Array.of(0, n),
                segInit: Int32Array.of(-1),
                segSave: Int32Array.of(-1),
                scoreRows: rows,
                scoreTargets: Int32Array.from(ids.slice(1)),
                ...(withLogits ? { logitRows: Int32Array.from({ length: n }, (_, i) => i) } : {}),
            });
            const vocab = withLogits ? out.logits.length / n : 0;
            return { logprobs: out.logprobs, greedy: out.greedy, ...(withLogits ? { logits: out.logits } : {}), vocab };
        });
    }

    /**
     * Prefills each prompt (one score() call saving its state in slots 0..k-1 and returning its last row's
     * logits), then steps all unfinished sequences together. `choose(i, logits)` returns sequence i's next
     * token or -1 to stop it. Slots are freed at the end.
     */
    private async decodeLoop(
        prompts: readonly number[][],
        maxNew: readonly number[],
        choose: (i: number, logits: Float32Array) => Promise<number>,
    ): Promise<void> {
        const k = prompts.length;
        const offsets = new Int32Array(k + 1);
        prompts.forEach((p, i) => {
            if (p.length === 0) throw new UsageError("generate: empty prompt");
            offsets[i + 1] = offsets[i]! + p.length;
        });
        const tokens = new Int32Array(offsets[k]!);
        prompts.forEach((p, i) => tokens.set(p, offsets[i]!));
        const slots = Int32Array.from({ length: k }, (_, i) => i);
        // NaN/Inf logits (weights that overflow float32) are reported, never turned into tokens.
        const finite = (logits: Float32Array, what: string): Float32Array => {
            for (let v = 0; v < logits.length; v++) {
                if (!Number.isFinite(logits[v]!)) {
                    throw new NumericError(`the model produced a non-finite logit (${logits[v]}) ${what}: its weights overflow float32 or are corrupt`);
                }
            }
            return logits;
        };
        try {
            const pre = await this.backend.score({
                tokens,
                segOffsets: offsets,
                segInit: new Int32Array(k).fill(-1),
                segSave: slots,
                scoreRows: new Int32Array(0),
                scoreTargets: new Int32Array(0),
                logitRows: Int32Array.from({ length: k }, (_, i) => offsets[i + 1]! - 1),
            });
            const vocab = pre.logits.length / k;
            let active: number[] = [];
            let nextTokens: number[] = [];
            for (let i = 0; i < k; i++) {
                if (maxNew[i]! <= 0) continue;
                const t = await choose(i, finite(pre.logits.subarray(i * vocab, (i + 1) * vocab), `after prompt ${i}`));
                if (t >= 0) {
                    active.push(i);
                    nextTokens.push(t);
                }
            }
            const produced = new Int32Array(k).fill(1);
            while (active.length > 0) {
                const going = active.filter((i) => produced[i]! < maxNew[i]!);
                const toks = nextTokens.filter((_, j) => produced[active[j]!]! < maxNew[active[j]!]!);
                if (going.length === 0) break;
                const logits = await this.backend.step(Int32Array.from(going, (i) => slots[i]!), Int32Array.from(toks));
                const v = logits.length / going.length;
                active = [];
                nextTokens = [];
                for (let j = 0; j < going.length; j++) {
                    const i = going[j]!;
                    const t = await choose(i, finite(logits.subarray(j * v, (j + 1) * v), `at step ${produced[i]!} of prompt ${i}`));
                    produced[i]!++;
                    if (t >= 0) {
                        active.push(i);
                        nextTokens.push(t);
                    }
                }
            }
        } finally {
            for (const s of slots) this.backend.freeState(s);
        }
    }

    /**
     * Generates from token ids: greedy by default, or seeded sampling. Returns the new token ids (without a
     * final end-of-text token).
     */
    async generate(promptIds: readonly number[], options: GenerateOptions): Promise<number[]> {
        const { maxNewTokens } = options;
        if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 0)) throw new UsageError(`--max-new-tokens ${maxNewTokens}: expected an integer >= 0`);
        const vocab = this.tokenizer?.vocabSize ?? Number.MAX_SAFE_INTEGER;
        const sampler = new Sampler(options, vocab);
        const eos = options.stopAtEos === false ? -1 : this.tokenizer?.eosTokenId ?? -1;
        const out: number[] = [];
        await this.serial.run(() =>
            this.decodeLoop([promptIds.slice()], [maxNewTokens], async (_i, logits) => {
                const t = sampler.pick(logits);
                if (t === eos) return -1;
                out.push(t);
                await options.onToken?.(t);
                return t;
            }),
        );
        return out;
    }

    async generateUntil(requests: GenerateRequest[], options: LMCallOptions = {}): Promise<string[]> {
        const tok = this.requireTokenizer("generate_until");
        const eosText = await tok.decode([tok.eosTokenId]);
        const results = new Array<string>(requests.length).fill("");
        const contexts = await tok.encodeBatch(requests.map((r) => r.context));
        const batch = this.options.generateBatch ?? DEFAULT_GENERATE_BATCH;
        let done = 0;
        let tokensRun = 0;
        for (let start = 0; start < requests.length; start += batch) {
            options.signal?.throwIfAborted();
            const group = requests.slice(start, start + batch);
            const prompts = group.map((r, j) => {
                const keep = Math.max(1, this.maxLength - r.maxGenToks);
                const ids = contexts[start + j]!;
                return ids.length === 0 ? [tok.eosTokenId] : ids.slice(-keep);
            });
            const generated = group.map(() => [] as number[]);
            const stops = group.map((r) => [...r.until, eosText]);
            await this.serial.run(() =>
                this.decodeLoop(prompts, group.map((r) => r.maxGenToks), async (j, logits) => {
                    const t = argmax(logits, Math.min(logits.length, tok.vocabSize));
                    tokensRun++;
                    if (t === tok.eosTokenId) return -1;
                    generated[j]!.push(t);
                    const text = await tok.decode(generated[j]!);
                    return stops[j]!.some((s) => s !== "" && text.includes(s)) ? -1 : t;
                }),
            );
            for (let j = 0; j < group.length; j++) {
                let text = await tok.decode(generated[j]!);
                for (const s of stops[j]!) if (s !== "") text = text.split(s)[0]!;
                results[start + j] = text;
            }
            done += group.length;
            options.onProgress?.({ done, total: requests.length, tokens: tokensRun });
        }
        return results;
    }
}
