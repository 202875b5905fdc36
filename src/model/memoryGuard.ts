/**
 * Memory guard: before a model is loaded, estimate what it and one scoring call need and refuse, with one clear
 * line and a remedy, when that exceeds the memory this process can get (MemAvailable, the cgroup limit).
 *
 * The estimate follows what the CPU backend holds (native/src/cpu/cpu_backend.cc):
 * - weights in compute form: the matrices (embedding, in/x/dt/out projections, untied LM head) at 4 bytes (f32) or
 *   2 bytes (bf16) per element; norms, biases, conv taps, A, D always f32 (conv taps and A twice: the backend keeps
 *   a transposed / exponentiated copy beside the original);
 * - activations of one call: per packed token the residual and normed rows (2·D), in_proj output, conv output,
 *   mixer output (E) and, for Mamba-1, x_proj output and dt (E);
 * - attention layers (hybrid models): in_proj / out_proj (and conv taps, twice) like the Mamba matrices; the GatedMLP's
 *   fc1 / fc2 in every block; per packed token the attention's in_proj output, conv output and context, or the MLP's
 *   hidden rows, whichever is larger (they are not alive at once);
 * - recurrent states: every live slot holds conv (K−1 × channels) and SSM floats of every layer, and with attention
 *   layers the K and V rows of every token of the sequence (counted for 2048 tokens);
 * - logits: the LM-head scratch (32 rows × vocab) plus any rows the caller asks to get back, counted twice
 *   (native buffer and its JS copy).
 * The numbers are an estimate, not a bound: a margin (default 10 %) covers allocator slack and Node itself.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { UsageError } from "../errors.js";
import type { MambaConfig } from "./types.js";
import { attentionShapes, isAttentionLayer } from "./weightMap.js";

/** Rows of the LM-head scratch the CPU backend computes at a time (kHeadChunk in cpu_backend.cc). */
const HEAD_CHUNK_ROWS = 32;

/** What one model load plus one scoring call will hold. */
export interface MemoryNeeds {
    config: MambaConfig;
    /** Compute form of the weights (the --dtype flag: float32 → "f32", bfloat16 → "bf16"). */
    weightType: "f32" | "bf16";
    /** Packed tokens per score() call (MambaLMOptions.maxTokensPerCall; --batch_size × 256). */
    tokensPerCall: number;
    /** State slots alive at once (prefix-tree states kept by the scheduler, or sequences decoded together). */
    stateSlots: number;
    /**
     * Optional cap on the bytes of saved states (MambaLMOptions.stateBudgetBytes): the scheduler keeps no more
     * slots than fit in it, so the state part is min(stateSlots × bytes per slot, stateBudgetBytes).
     */
    stateBudgetBytes?: number;
    /** Rows whose full logits are returned by one call (score --logits-out, generation); default 0. */
    logitRows?: number;
}

/** The estimate, in bytes, part by part. */
export interface MemoryEstimate {
    /** Parameters of the model (elements, including the LM head only when untied). */
    parameters: number;
    weightBytes: number;
    activationBytes: number;
    /** Bytes of one sequence's recurrent state (conv + SSM, all layers, f32). */
    stateBytesPerSlot: number;
    stateBytes: number;
    logitsBytes: number;
    totalBytes: number;
}

/** Memory this process may still allocate, and where that number came from. */
export interface AvailableMemory {
    bytes: number;
    /** e.g. "/proc/meminfo MemAvailable", "cgroup memory.max", "os.freemem()". */
    source: string;
}

function positiveInteger(value: number, field: string): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`memory estimate: ${field} ${value}: expected a non-negative integer`);
}

/** Parameter counts of the model: matrices (stored in the compute type) and small vectors (always f32). */
function parameterCounts(c: MambaConfig): { matrices: number; vectors: number; backendCopies: number } {
    const D = c.dModel, E = c.dInner, N = c.dState, K = c.dConv, V = c.paddedVocabSize;
    let matrices = V * D * (c.tieEmbeddings ? 1 : 2);
    let vectors = D; // norm_f
    let backendCopies = 0; // f32 floats the backend derives and keeps beside the originals
    for (let layer = 0; layer < c.nLayer; layer++) {
        vectors += D; // block norm
        if (c.dIntermediate) {
            matrices += 3 * c.dIntermediate * D; // fc1 [2·dI, D], fc2 [D, dI]
            vectors += D; // norm2
        }
        if (c.attention && isAttentionLayer(c, layer)) {
            const a = c.attention;
            const { qkvDim, inRows, outCols } = attentionShapes(a);
            matrices += inRows * D + D * outCols; // in_proj, out_proj
            if (a.qkvBias) vectors += inRows;
            if (a.outBias) vectors += D;
            if (a.dConv > 0) {
                vectors += qkvDim * (a.dConv + 1); // conv taps and bias
                backendCopies += qkvDim * a.dConv; // transposed conv taps
            }
        } else if (c.family === "mamba1") {
            const R = c.dtRank;
            matrices += 2 * E * D + (R + 2 * N) * E + E * R + D * E; // in_proj, x_proj, dt_proj, out_proj
            vectors += E * K + (c.convBias ? E : 0) + E + E * N + E; // conv taps, conv bias, dt bias, A_log, D
            if (c.projBias) vectors += 2 * E + D;
            backendCopies += E * K + E * N; // transposed conv taps, A = −exp(A_log)
        } else {
            const G = c.nGroups, H = c.nHeads, C = E + 2 * G * N;
            const inRows = 2 * E + 2 * G * N + H;
            matrices += inRows * D + D * E;
            vectors += C * K + (c.convBias ? C : 0) + 3 * H + E; // conv, dt_bias, A_log, D, gated norm
            if (c.projBias) vectors += inRows + D;
            backendCopies += C * K + H; // transposed conv taps, A = −exp(A_log)
        }
    }
    return { matrices, vectors, backendCopies };
}

/**
 * Floats of one sequence's state: the fixed part (conv and SSM over all layers; an attention layer's conv state is
 * its last dConv − 1 pre-conv q, k, v rows) and the attention layers' K and V rows per token of the sequence.
 */
export function stateFloats(c: MambaConfig): { conv: number; ssm: number; kvPerToken: number } {
    const convChannels = c.family === "mamba1" ? c.dInner : c.dInner + 2 * c.nGroups * c.dState;
    const ssmPerLayer = c.family === "mamba1" ? c.dInner * c.dState : c.nHeads * c.headDim * c.dState;
    const a = c.attention;
    const nAttention = a ? a.layers.length : 0;
    const nMamba = c.nLayer - nAttention;
    let conv = nMamba * (c.dConv - 1) * convChannels;
    let kvPerToken = 0;
    if (a) {
        const { qkvDim, kvFloatsPerToken } = attentionShapes(a);
        conv += nAttention * Math.max(0, a.dConv - 1) * qkvDim;
        kvPerToken = nAttention * kvFloatsPerToken;
    }
    return { conv, ssm: nMamba * ssmPerLayer, kvPerToken };
}

/** Tokens a sequence's state is counted for when it holds K and V rows (lm-eval's max_length for mamba_ssm). */
const KV_TOKENS_PER_SLOT = 2048;

/**
 * Floats per packed token of one call's activations beyond the Mamba layers' (the CPU backend's attention and
 * GatedMLP scratch, shared between the two): in_proj or fc1 output, conv output or MLP hidden, attention context,
 * and the layer's K and V rows copied head-major.
 */
function hybridActivationFloats(c: MambaConfig): number {
    const a = c.attention ? attentionShapes(c.attention) : undefined;
    const dI = c.dIntermediate ?? 0;
    const conv = a && c.attention!.dConv > 0 ? a.qkvDim : 0;
    return Math.max(a?.inRows ?? 0, 2 * dI) + Math.max(conv, dI) + (a ? a.outCols + a.kvFloatsPerToken : 0);
}

/** Estimates what loading `needs.config` and one scoring call of `needs.tokensPerCall` tokens hold. */
export function estimateMemory(needs: MemoryNeeds): MemoryEstimate {
    const c = needs.config;
    positiveInteger(needs.tokensPerCall, "tokensPerCall");
    positiveInteger(needs.stateSlots, "stateSlots");
    const logitRows = needs.logitRows ?? 0;
    positiveInteger(logitRows, "logitRows");
    if (needs.stateBudgetBytes !== undefined) positiveInteger(needs.stateBudgetBytes, "stateBudgetBytes");
    const { matrices, vectors, backendCopies } = parameterCounts(c);
    const weightBytes = matrices * (needs.weightType === "bf16" ? 2 : 4) + (vectors + backendCopies) * 4;
    const D = c.dModel, E = c.dInner, N = c.dState;
    const inRows = c.family === "mamba1" ? 2 * E : 2 * E + 2 * c.nGroups * N + c.nHeads;
    const convChannels = c.family === "mamba1" ? E : E + 2 * c.nGroups * N;
    const mamba1Extra = c.family === "mamba1" ? c.dtRank + 2 * N + E : 0;
    const floatsPerToken = 2 * D + inRows + convChannels + E + mamba1Extra + hybridActivationFloats(c);
    const activationBytes = needs.tokensPerCall * floatsPerToken * 4;
    const state = stateFloats(c);
    const stateBytesPerSlot = (state.conv + state.ssm + state.kvPerToken * KV_TOKENS_PER_SLOT) * 4;
    const stateBytes = Math.min(needs.stateSlots * stateBytesPerSlot, needs.stateBudgetBytes ?? Infinity);
    const logitsBytes = (HEAD_CHUNK_ROWS + 2 * logitRows) * c.paddedVocabSize * 4;
    return {
        parameters: matrices + vectors,
        weightBytes,
        activationBytes,
        stateBytesPerSlot,
        stateBytes,
        logitsBytes,
        totalBytes: weightBytes + activationBytes + stateBytes + logitsBytes,
    };
}

function readText(file: string): string | undefined {
    try {
        return readFileSync(file, "utf8");
    } catch {
        return undefined;
    }
}

/** A cgroup number file ("max" or unreadable → undefined). */
function cgroupNumber(file: string): number | undefined {
    const text = readText(file)?.trim();
    if (text === undefined || !/^\d+$/.test(text)) return undefined;
    const n = Number(text);
    // cgroup v1 writes a huge page-aligned number for "no limit".
    return n >= 2 ** 60 ? undefined : n;
}

/** MemAvailable from a /proc/meminfo text, in bytes, or undefined when absent. */
export function parseMemAvailable(meminfo: string): number | undefined {
    const m = /^MemAvailable:\s+(\d+)\s*kB$/m.exec(meminfo);
    return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * Memory this process can still get: the smallest of /proc/meminfo MemAvailable (else os.freemem()) and the room
 * left under the cgroup limit (v2 memory.max − memory.current, or v1 limit_in_bytes − usage_in_bytes).
 */
export function availableMemory(): AvailableMemory {
    const memAvailable = parseMemAvailable(readText("/proc/meminfo") ?? "");
    let best: AvailableMemory = memAvailable !== undefined
        ? { bytes: memAvailable, source: "/proc/meminfo MemAvailable" }
        : { bytes: os.freemem(), source: "os.freemem()" };
    const limits: Array<[string, string, string]> = [
        ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "cgroup memory.max"],
        ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes", "cgroup memory.limit_in_bytes"],
    ];
    for (const [limitFile, usageFile, source] of limits) {
        const limit = cgroupNumber(limitFile);
        const usage = cgroupNumber(usageFile);
        if (limit === undefined || usage === undefined) continue;
        const room = Math.max(0, limit - usage);
        if (room < best.bytes) best = { bytes: room, source };
    }
    return best;
}

/** "1.23 GiB" / "456.0 MiB". */
export function formatBytes(bytes: number): string {
    if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Options of checkMemory beyond the needs themselves. */
export interface CheckMemoryOptions {
    /** What may be allocated (default: availableMemory()); tests and the CUDA path pass their own. */
    available?: AvailableMemory;
    /** Fraction added to the estimate for allocator slack and Node itself (default 0.10). */
    margin?: number;
}

/**
 * Throws UsageError (one line, with a remedy) when the estimate plus the margin exceeds the available memory;
 * otherwise returns the estimate. Call it after the config is read and before the native model is created.
 */
export function checkMemory(needs: MemoryNeeds, options: CheckMemoryOptions = {}): MemoryEstimate {
    const estimate = estimateMemory(needs);
    const available = options.available ?? availableMemory();
    const margin = options.margin ?? 0.1;
    const needed = Math.ceil(estimate.totalBytes * (1 + margin));
    if (needed <= available.bytes) return estimate;
    const parts =
        `weights ${formatBytes(estimate.weightBytes)} as ${needs.weightType}, activations ${formatBytes(estimate.activationBytes)} ` +
        `for ${needs.tokensPerCall} tokens per call, states ${formatBytes(estimate.stateBytes)} for ${needs.stateSlots} slots, ` +
        `logits ${formatBytes(estimate.logitsBytes)}`;
    const fits = (n: MemoryNeeds): boolean => Math.ceil(estimateMemory(n).totalBytes * (1 + margin)) <= available.bytes;
    const remedies: string[] = [];
    if (needs.weightType === "f32") remedies.push("--dtype bfloat16 (halves the weights)");
    if (estimate.activationBytes + estimate.stateBytes > estimate.totalBytes / 10) remedies.push("a smaller --batch_size");
    const smallest: MemoryNeeds = { ...needs, weightType: "bf16", tokensPerCall: Math.min(needs.tokensPerCall, 256), stateSlots: Math.min(needs.stateSlots, 1) };
    if (!fits(smallest) || remedies.length === 0) remedies.push("a smaller model or a machine with more memory");
    throw new UsageError(
        `not enough memory: the model needs about ${formatBytes(needed)} (${parts}) but only ${formatBytes(available.bytes)} ` +
            `is available (${available.source}); try ${remedies.join(" or ")}`,
    );
}
