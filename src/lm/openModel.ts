/**
 * Loads what a command needs: checkpoint → native backend → MambaLM, plus the tokenizer when the command
 * needs one (score/generate with token ids load none).
 */
import os from "node:os";
import { loadCheckpoint, resolveModelDir } from "../model/loadModel.js";
import { checkMemory } from "../model/memoryGuard.js";
import { loadTokenizer, type TextTokenizer } from "../model/tokenizer.js";
import type { Backend } from "../backend/Backend.js";
import { NativeBackend } from "../backend/NativeBackend.js";
import { MambaLM, type MambaLMOptions } from "./MambaLM.js";
import type { Checkpoint } from "../model/types.js";
import { UsageError } from "../errors.js";
import type { HubOptions } from "../hub/hub.js";
import { BUNDLED_TOKENIZER, isBundledCheckpoint } from "../io/bundled.js";
import { DEFAULT_STATE_BUDGET_BYTES, DEFAULT_TOKENS_PER_CALL, type Device } from "./defaults.js";

export interface OpenedModel {
    checkpoint: Checkpoint;
    tokenizer: TextTokenizer | undefined;
    backend: Backend;
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

/** Which model to open, and how to run it. */
export interface OpenModelOptions {
    /** A checkpoint folder or a hub id ("state-spaces/mamba-130m"). */
    pretrained: string;
    /**
     * tokenizer.json, a folder holding one, or a hub id; default: the model folder's, else (a bundled checkpoint) the
     * bundled GPT-NeoX-20B tokenizer, else EleutherAI/gpt-neox-20b from the hub.
     */
    tokenizer?: string | undefined;
    /** Load the tokenizer (default true); scoring token ids needs none. */
    needTokenizer?: boolean;
    /** Compute dtype of the weights (default float32). */
    dtype?: "float32" | "bfloat16";
    device?: Device;
    /** CPU threads (default: all cores). */
    threads?: number | undefined;
    /** The LM's options: max_length, tokens per call, state budget, shared inputs. */
    lm?: MambaLMOptions;
    /** Hub settings for a hub id (default: the HF_* environment variables). */
    hub?: Omit<HubOptions, "repoType">;
    /** Called with the tokenizer as soon as it is loaded, before the weights are (work on inputs can start). */
    onTokenizer?: (tokenizer: TextTokenizer) => void;
}

/** Opens a model: checkpoint (downloaded when a hub id), tokenizer, backend, and the LM over them. */
export async function openModel(options: OpenModelOptions): Promise<OpenedModel> {
    const threads = parseThreads(options.threads);
    const device = options.device ?? "cpu";
    const dir = await resolveModelDir(options.pretrained, options.hub);
    const checkpoint = await loadCheckpoint(dir);
    // A bundled checkpoint (fixtures/) has no tokenizer.json of its own: it uses the bundled GPT-NeoX-20B copy, offline.
    const tokenizerSource = options.tokenizer ?? (isBundledCheckpoint(dir) ? BUNDLED_TOKENIZER : undefined);
    const tokenizer = options.needTokenizer === false ? undefined : await loadTokenizer(tokenizerSource, dir, options.hub);
    if (tokenizer !== undefined) options.onTokenizer?.(tokenizer);
    const weightType = options.dtype === "bfloat16" ? "bf16" : "f32";
    // Refuse, with a remedy, before loading what would not fit (host memory; the GPU checks its own on allocation).
    if (device === "cpu") {
        checkMemory({
            config: checkpoint.config,
            weightType,
            tokensPerCall: options.lm?.maxTokensPerCall ?? DEFAULT_TOKENS_PER_CALL.cpu,
            stateSlots: Number.MAX_SAFE_INTEGER,
            stateBudgetBytes: options.lm?.stateBudgetBytes ?? DEFAULT_STATE_BUDGET_BYTES.cpu,
        });
    }
    const backend = await NativeBackend.create(checkpoint, { device, threads, weightType });
    const lm = new MambaLM(backend, tokenizer, options.lm);
    return {
        checkpoint,
        tokenizer,
        backend,
        lm,
        threads,
        dispose: () => backend[Symbol.asyncDispose](),
    };
}
