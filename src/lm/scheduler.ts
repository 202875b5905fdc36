/**
 * Turns token requests into a few large scoring calls. All requests of a run go into one prefix tree
 * (prefixTree.ts); its segments are packed in depth-first order into ScoreBatch calls of at most
 * `maxTokensPerCall` tokens. A segment starts from its parent's saved state slot and saves its own final
 * state only when it has children; a slot is freed after the call in which its last child starts. A
 * segment longer than the room left in a call is cut into pieces chained through a temporary slot (exact:
 * a state restored from a slot continues the scan where it stopped). Cuts fall at multiples of
 * SEGMENT_CUT_ALIGNMENT tokens from where the run started, so a backend that scans in fixed-size chunks from
 * each segment's first row (the CUDA Mamba-2 SSD) does the same arithmetic cut or uncut, whatever the call size.
 *
 * Calls are pipelined one deep: while the engine runs call k, the tree walk goes on and fills call k+1's
 * arrays; call k+1 is submitted only once call k has finished, its results were taken in and its slots freed
 * in the engine. Building a call never reads results, so the calls, their order, the slot ids and the
 * freeState calls between them are the same as running each call to its end before building the next.
 *
 * Per request the result is the float64 sum of its continuation tokens' log-probabilities, in token order,
 * and isGreedy = every token was the argmax. Because the kernels compute every row independently of the
 * packing (docs/architecture.md, Determinism), results are bit-identical to scoring each request alone.
 */
import { MambaEvalError, NumericError } from "../errors.js";
import type { Backend, ScoreBatch, ScoreOutput } from "../backend/Backend.js";
import type { LoglikelihoodResult } from "./LM.js";
import type { TokenRequest } from "./encodePair.js";
import { buildPrefixTree, type PrefixTree } from "./prefixTree.js";

/** The part of the Backend the scheduler uses. */
export type ScoringEngine = Pick<Backend, "score" | "freeState">;

export interface SchedulerOptions {
    /** Token cap of one score() call (src/lm/defaults.ts has the devices' defaults). */
    maxTokensPerCall: number;
    /** Most state slots alive at once (memory policy: budget bytes / bytes per state). */
    maxStateSlots: number;
    /**
     * Models with attention layers, whose saved states also hold K and V rows for every token of their sequence:
     * a slot saved at depth d counts slotBytes + bytesPerToken × d (an upper bound: chains share their ancestors'
     * rows), and the slots alive at once may count at most budgetBytes. Absent: only maxStateSlots limits them.
     */
    kvBudget?: KvBudget;
    /** Share common prefixes (default true). false runs every request from the zero state on its own. */
    share?: boolean;
    /**
     * The prefix tree of exactly these requests with this `share` setting, built earlier (RunMemo.prefixTree);
     * default: built here.
     */
    tree?: PrefixTree;
    /** Called when a request's result is known; index is the input index. */
    onResult?: (index: number, result: LoglikelihoodResult) => void;
    /** Called after each call with the number of finished requests and tokens run so far. */
    onProgress?: (doneRequests: number, tokensRun: number) => void;
    signal?: AbortSignal;
}

/** The byte budget of saved states that grow with their sequence (SchedulerOptions.kvBudget). */
export interface KvBudget {
    /** Bytes of a state's fixed part (conv and SSM states). */
    slotBytes: number;
    /** Bytes per token of the state's sequence (K and V rows of every attention layer). */
    bytesPerToken: number;
    budgetBytes: number;
}

export interface ScheduleStats {
    /** Tokens run through the model (after sharing; includes replays forced by the slot budget). */
    tokenSteps: number;
    /** What lm-eval runs: Σ (len(tokens) - 1) over requests. */
    unsharedTokenSteps: number;
    calls: number;
    /** Most state slots alive at any time. */
    peakSlots: number;
}

export interface ScheduleResult {
    results: LoglikelihoodResult[];
    stats: ScheduleStats;
}

/**
 * Where a segment may be cut: a multiple of this many tokens from the start of its run (a multiple of the
 * chunk lengths of chunked scans, 16 and 64). Only when a call holds fewer tokens than this are cuts unaligned.
 */
export const SEGMENT_CUT_ALIGNMENT = 64;

/** One packed piece of a segment within a call. */
interface Piece {
    segment: number;
    /**
     * Depth range this piece runs. It can start above the segment (replaying unscored ancestor tokens when
     * an ancestor's state could not be kept); rows are scored only inside the segment.
     */
    from: number;
    to: number;
    init: number;
    save: number;
}

/**
 * Slot ids: reused only after the call that released them has been submitted (no reuse inside a call). An
 * id released when call k is submitted may be taken by call k+1's pieces; the engine frees it (freeInEngine)
 * after call k has finished and before call k+1 is submitted, so the engine never sees it reused early.
 */
class SlotPool {
    private readonly free: number[] = [];
    private next = 0;
    /** Bytes counted for each live slot that has any (kvBudget). */
    private readonly slotBytes = new Map<number, number>();
    live = 0;
    peak = 0;
    bytes = 0;

    /** A slot id, counted as `bytes` bytes until released. */
    take(bytes = 0): number {
        this.live++;
        this.peak = Math.max(this.peak, this.live);
        const slot = this.free.length > 0 ? this.free.pop()! : this.next++;
        if (bytes > 0) {
            this.slotBytes.set(slot, bytes);
            this.bytes += bytes;
        }
        return slot;
    }

    /** Makes `slots` available to later take() calls. */
    release(slots: readonly number[]): void {
        for (const s of slots) {
            this.free.push(s);
            this.live--;
            const bytes = this.slotBytes.get(s);
            if (bytes !== undefined) {
                this.bytes -= bytes;
                this.slotBytes.delete(s);
            }
        }
        // Lowest ids first, so the set of ids in use stays small and deterministic.
        this.free.sort((a, b) => b - a);
    }

    /** Frees released slots' states in the engine (once the last call reading them has finished). */
    static freeInEngine(slots: readonly number[], engine: ScoringEngine): void {
        for (const s of slots) engine.freeState(s);
    }
}

/** One call's arrays, and which tree row each scored row is. */
interface BuiltCall {
    batch: ScoreBatch;
    scoredRowIds: Int32Array;
    nTokens: number;
}

/** Scores token requests through `engine`; see the module comment. */
export async function scoreTokenRequests(
    engine: ScoringEngine,
    requests: readonly TokenRequest[],
    options: SchedulerOptions,
): Promise<ScheduleResult> {
    const maxTokens = options.maxTokensPerCall;
    const maxSlots = options.maxStateSlots;
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new RangeError(`maxTokensPerCall must be a positive integer, got ${maxTokens}`);
    if (!(Number.isInteger(maxSlots) && maxSlots >= 2)) throw new RangeError(`maxStateSlots must be an integer >= 2, got ${maxSlots}`);

    const tree = options.tree ?? buildPrefixTree(requests, options.share ?? true);
    const run = new TreeRun(engine, requests, tree, maxTokens, maxSlots, options);
    await run.execute();
    let unshared = 0;
    for (const r of requests) unshared += r.tokens.length - 1;
    return {
        results: run.results(),
        stats: { tokenSteps: run.tokensRun, unsharedTokenSteps: unshared, calls: run.calls, peakSlots: run.slots.peak },
    };
}

class TreeRun {
    readonly slots = new SlotPool();
    calls = 0;
    private readonly rowLogprob: Float64Array;
    private readonly rowGreedy: Uint8Array;
    /** CSR: the rows of each segment, in row order (segment s: segRowIds[segRowStart[s] .. segRowStart[s + 1])). */
    private readonly segRowStart: Int32Array;
    private readonly segRowIds: Int32Array;
    /** CSR: requests that use each row. */
    private readonly rowUserStart: Int32Array;
    private readonly rowUsers: Int32Array;
    private readonly remaining: Int32Array;
    private readonly done: (LoglikelihoodResult | undefined)[];
    private doneCount = 0;
    tokensRun = 0;
    /** Per segment with children: the slot its children start from (-1: zero state) and that state's depth. */
    private readonly baseSlot: Int32Array;
    private readonly baseDepth: Int32Array;
    /** The submitted call not yet waited for: it resolves after its results and slot frees are done. */
    private inFlight: Promise<void> | undefined;

    constructor(
        private readonly engine: ScoringEngine,
        private readonly requests: readonly TokenRequest[],
        private readonly tree: PrefixTree,
        private readonly maxTokens: number,
        private readonly maxSlots: number,
        private readonly options: SchedulerOptions,
    ) {
        const nRows = tree.rows.length;
        this.rowLogprob = new Float64Array(nRows);
        this.rowGreedy = new Uint8Array(nRows);
        const nSegments = tree.segments.length;
        this.segRowStart = new Int32Array(nSegments + 1);
        for (let i = 0; i < nRows; i++) this.segRowStart[tree.rows.segment[i]! + 1]!++;
        for (let s = 0; s < nSegments; s++) this.segRowStart[s + 1]! += this.segRowStart[s]!;
        this.segRowIds = new Int32Array(nRows);
        const segFill = this.segRowStart.slice(0, nSegments);
        for (let i = 0; i < nRows; i++) this.segRowIds[segFill[tree.rows.segment[i]!]!++] = i;
        const counts = new Int32Array(nRows + 1);
        for (const rr of tree.requestRows) for (const r of rr) counts[r + 1]!++;
        for (let i = 0; i < nRows; i++) counts[i + 1]! += counts[i]!;
        this.rowUserStart = counts;
        this.rowUsers = new Int32Array(counts[nRows]!);
        const fill = counts.slice(0, nRows);
        tree.requestRows.forEach((rr, req) => {
            for (const r of rr) this.rowUsers[fill[r]!++] = req;
        });
        this.remaining = new Int32Array(tree.requestRows.map((rr) => rr.length));
        this.done = new Array(requests.length);
        this.baseSlot = new Int32Array(tree.segments.length).fill(-1);
        this.baseDepth = new Int32Array(tree.segments.length);
    }

    async execute(): Promise<void> {
        try {
            await this.walk();
            await this.drain();
        } catch (error) {
            // Nothing runs on after a failure: a call still in flight is waited for (its own error, had it
            // failed first, is the one reported) before the walk's error is.
            await this.drain();
            throw error;
        }
    }

    /** Packs the tree's segments into calls, in depth-first order. */
    private async walk(): Promise<void> {
        const { segments } = this.tree;
        let pieces: Piece[] = [];
        let tokens = 0;
        let toFree: number[] = [];
        /** Builds a call of the current pieces and submits it once the call before it has finished. */
        const flush = async (): Promise<void> => {
            if (pieces.length === 0) return;
            const call = this.buildCall(pieces);
            const released = toFree;
            this.slots.release(released);
            pieces = [];
            tokens = 0;
            toFree = [];
            await this.submit(call, released);
        };
        const kv = this.options.kvBudget;
        /**
         * A new slot for a state at `depth` tokens, or -1 when the live-slot budget (or the byte budget of states
         * with K/V rows) is spent even after finishing the current call.
         */
        const tryTakeSlot = async (depth: number): Promise<number> => {
            const bytes = kv ? kv.slotBytes + kv.bytesPerToken * depth : 0;
            const fits = (): boolean => this.slots.live + 1 <= this.maxSlots && (!kv || this.slots.bytes + bytes <= kv.budgetBytes);
            if (!fits()) {
                await flush();
                await this.drain();
            }
            return fits() ? this.slots.take(bytes) : -1;
        };
        const refs = new Map<number, number>();
        const addRefs = (slot: number, n: number): void => {
            if (slot >= 0) refs.set(slot, (refs.get(slot) ?? 0) + n);
        };
        const dropRef = (slot: number): void => {
            if (slot < 0) return;
            const left = refs.get(slot)! - 1;
            if (left === 0) {
                refs.delete(slot);
                toFree.push(slot);
            } else refs.set(slot, left);
        };
        const minSplit = Math.max(1, Math.min(256, Math.floor(this.maxTokens / 4)));

        for (const segId of this.tree.order) {
            const seg = segments[segId]!;
            // Where this segment's run starts: its parent's saved state, or (parent unsaved for lack of
            // slots) the parent's own starting point, replaying the parent's tokens unscored.
            let init = seg.parent < 0 ? -1 : this.baseSlot[seg.parent]!;
            let from = seg.parent < 0 ? 0 : this.baseDepth[seg.parent]!;
            const runStart = from;
            const align = this.maxTokens >= SEGMENT_CUT_ALIGNMENT ? SEGMENT_CUT_ALIGNMENT : 1;
            while (from < seg.end) {
                const room = this.maxTokens - tokens;
                const left = seg.end - from;
                if (left > room && room < minSplit) {
                    // Too little room to be worth a cut: start a new call (room is then maxTokens >= minSplit).
                    await flush();
                    continue;
                }
                let to = from + Math.min(left, room);
                if (to < seg.end) {
                    const aligned = runStart + Math.floor((to - runStart) / align) * align;
                    if (aligned <= from) {
                        // Room for less than one aligned step: start a new call (a fresh call holds at least one).
                        await flush();
                        continue;
                    }
                    to = aligned;
                }
                let save = -1;
                if (to < seg.end) {
                    save = await tryTakeSlot(to);
                    if (save < 0) to = seg.end; // no slot to chain pieces through: one oversized piece
                    else addRefs(save, 1);
                }
                if (to === seg.end && seg.children.length > 0) {
                    save = await tryTakeSlot(to);
                    if (save >= 0) {
                        addRefs(save, seg.children.length);
                        this.baseSlot[segId] = save;
                        this.baseDepth[segId] = seg.end;
                    } else {
                        // No slot for this state: the children replay this piece's run from its start.
                        addRefs(init, seg.children.length);
                        this.baseSlot[segId] = init;
                        this.baseDepth[segId] = from;
                    }
                }
                pieces.push({ segment: segId, from, to, init, save });
                tokens += to - from;
                dropRef(init);
                init = save;
                from = to;
                if (tokens >= this.maxTokens) await flush();
                this.options.signal?.throwIfAborted();
            }
        }
        await flush();
    }

    /** The call's arrays for `pieces` (reads only the tree and the requests, never results). */
    private buildCall(pieces: readonly Piece[]): BuiltCall {
        let nTokens = 0;
        let nScore = 0;
        for (const p of pieces) {
            nTokens += p.to - p.from;
            for (let q = this.segRowStart[p.segment]!; q < this.segRowStart[p.segment + 1]!; q++) {
                const d = this.tree.rows.depth[this.segRowIds[q]!]!;
                if (d >= p.from && d < p.to) nScore++;
            }
        }
        const batch: ScoreBatch = {
            tokens: new Int32Array(nTokens),
            segOffsets: new Int32Array(pieces.length + 1),
            segInit: new Int32Array(pieces.length),
            segSave: new Int32Array(pieces.length),
            scoreRows: new Int32Array(nScore),
            scoreTargets: new Int32Array(nScore),
        };
        const scoredRowIds = new Int32Array(nScore);
        let at = 0;
        let k = 0;
        pieces.forEach((p, i) => {
            const seg = this.tree.segments[p.segment]!;
            const src = this.requests[seg.source]!.tokens;
            for (let d = p.from; d < p.to; d++) batch.tokens[at + d - p.from] = src[d]!;
            batch.segOffsets[i] = at;
            batch.segInit[i] = p.init;
            batch.segSave[i] = p.save;
            for (let q = this.segRowStart[p.segment]!; q < this.segRowStart[p.segment + 1]!; q++) {
                const r = this.segRowIds[q]!;
                const depth = this.tree.rows.depth[r]!;
                if (depth >= p.from && depth < p.to) {
                    batch.scoreRows[k] = at + depth - p.from;
                    batch.scoreTargets[k] = this.tree.rows.target[r]!;
                    scoredRowIds[k] = r;
                    k++;
                }
            }
            at += p.to - p.from;
        });
        batch.segOffsets[pieces.length] = at;
        return { batch, scoredRowIds, nTokens };
    }

    /**
     * Waits for the call in flight (its results taken in, its released slots freed in the engine), then
     * starts `call` without waiting for it; `released` are the slots whose last reader is `call`.
     */
    private async submit(call: BuiltCall, released: readonly number[]): Promise<void> {
        await this.drain();
        this.options.signal?.throwIfAborted();
        const running = this.engine.score(call.batch).then((out) => {
            this.takeResults(call, out);
            SlotPool.freeInEngine(released, this.engine);
        });
        // Its failure is reported by the drain() that waits for it, never as an unhandled rejection.
        running.catch(() => undefined);
        this.inFlight = running;
    }

    /** Waits for the call in flight, if any; rethrows its error (then and at every later drain). */
    private async drain(): Promise<void> {
        if (this.inFlight === undefined) return;
        await this.inFlight;
        this.inFlight = undefined;
    }

    /** Takes in a finished call's log-probs: rows, then every request whose rows are all known. */
    private takeResults(call: BuiltCall, out: ScoreOutput): void {
        const { batch, scoredRowIds, nTokens } = call;
        const nScore = scoredRowIds.length;
        if (out.logprobs.length !== nScore || out.greedy.length !== nScore) {
            throw new MambaEvalError(`scheduler: backend returned ${out.logprobs.length} log-probs for ${nScore} scored rows`);
        }
        this.calls++;
        this.tokensRun += nTokens;
        for (let j = 0; j < nScore; j++) {
            const r = scoredRowIds[j]!;
            if (!Number.isFinite(out.logprobs[j]!)) {
                // NaN/Inf logits (e.g. weights that overflow in float32) are reported, never averaged into a metric.
                const req = this.rowUsers[this.rowUserStart[r]!]!;
                throw new NumericError(
                    `the model produced a non-finite log-probability (${out.logprobs[j]}) for request ${req} ` +
                        `(target token ${batch.scoreTargets[j]}): its weights overflow float32 or are corrupt`,
                );
            }
            this.rowLogprob[r] = out.logprobs[j]!;
            this.rowGreedy[r] = out.greedy[j]!;
            for (let u = this.rowUserStart[r]!; u < this.rowUserStart[r + 1]!; u++) {
                const req = this.rowUsers[u]!;
                if (--this.remaining[req]! === 0) this.finish(req);
            }
        }
        this.options.onProgress?.(this.doneCount, this.tokensRun);
    }

    private finish(req: number): void {
        let logprob = 0;
        let greedy = true;
        for (const r of this.tree.requestRows[req]!) {
            logprob += this.rowLogprob[r]!;
            if (this.rowGreedy[r] !== 1) greedy = false;
        }
        const result = { logprob, isGreedy: greedy };
        this.done[req] = result;
        this.doneCount++;
        this.options.onResult?.(req, result);
    }

    results(): LoglikelihoodResult[] {
        return this.done.map((r, i) => {
            if (!r) throw new MambaEvalError(`scheduler: request ${i} was never scored`);
            return r;
        });
    }
}
