/**
 * Loads what a command needs: checkpoint → native backend → MambaLM, plus the tokenizer when the command
 * needs one (score/generate with token ids load none).
 */
import os from "node:os";
import { loadCheckpoint, resolveModelDir } from "../model/loadModel.js";
import { checkMemory } from "../model/memoryGuard.js";
import { loadTokenizer, type TextTokenizer } from "../model/tokenizer.js";
import { NativeBackend } from "../model/backends/NativeBackend.js";
import { MambaLM, type MambaLMOptions } from "../model/MambaLM.js";
import type { Checkpoint } from "../model/types.js";
import { UsageError } from "../errors.js";
import type { ModelSpec } from "./modelArgs.js";

export interface OpenedModel {
    checkpoint: Checkpoint;
    tokenizer: TextTokenizer | undefined;
    backend: NativeBackend;
    lm: MambaLM;
    threads: number;
    dispose(): Promise<void>;
}

/** Parses --threads (default: all cores). */
export function parseThreads(value: number | undefined): number {
    if (value === undefined) return os.availableParallelism();
    if (!Number.isInteger(value) || value < 1 || value > 256) throw new UsageError(`--threads ${value}: expected an integer in [1, 256]`);
    return value;
}

/** Opens the model a ModelSpec names. */
export async function openModel(
    spec: ModelSpec,
    opts: {
        threads?: number | undefined;
        needTokenizer: boolean;
        lm?: MambaLMOptions;
        /** Called with the tokenizer as soon as it is loaded, before the weights are (work on inputs can start). */
        onTokenizer?: (tokenizer: TextTokenizer) => void;
    },
): Promise<OpenedModel> {
    const threads = parseThreads(opts.threads);
    const dir = await resolveModelDir(spec.pretrained);
    const checkpoint = await loadCheckpoint(dir);
    const tokenizer = opts.needTokenizer ? await loadTokenizer(spec.tokenizer, dir) : undefined;
    if (tokenizer !== undefined) opts.onTokenizer?.(tokenizer);
    const weightType = spec.dtype === "bfloat16" ? "bf16" : "f32";
    // Refuse, with a remedy, before loading what would not fit (host memory; the GPU checks its own on allocation).
    if (spec.device === "cpu") {
        checkMemory({
            config: checkpoint.config,
            weightType,
            tokensPerCall: opts.lm?.maxTokensPerCall ?? 8192,
            stateSlots: Number.MAX_SAFE_INTEGER,
            stateBudgetBytes: opts.lm?.stateBudgetBytes ?? 2 ** 30,
        });
    }
    const backend = await NativeBackend.create(checkpoint, { device: spec.device, threads, weightType });
    const lm = new MambaLM(backend, tokenizer, { maxLength: spec.maxLength, ...opts.lm });
    return {
        checkpoint,
        tokenizer,
        backend,
        lm,
        threads,
        dispose: () => backend[Symbol.asyncDispose](),
    };
}

/** Parses "1,2,3" into token ids. */
export function parseIdList(text: string, flag: string): number[] {
    const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (parts.length === 0) throw new UsageError(`${flag}: expected comma-separated token ids, got ${JSON.stringify(text)}`);
    return parts.map((p) => {
        if (!/^\d+$/.test(p)) throw new UsageError(`${flag}: "${p}" is not a token id (a non-negative integer)`);
        return Number.parseInt(p, 10);
    });
}

/** Checks ids are inside the model's (padded) vocabulary. */
export function checkIds(ids: readonly number[], vocab: number, flag: string): void {
    for (const id of ids) {
        if (id >= vocab) throw new UsageError(`${flag}: token id ${id} is outside the model's vocabulary [0, ${vocab})`);
    }
}
