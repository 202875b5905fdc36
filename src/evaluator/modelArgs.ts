/**
 * lm-eval's `--model` / `--model_args` conventions → one model specification. `--model mamba_ssm` (or `hf`)
 * takes the checkpoint from `pretrained=` in `--model_args`; any other `--model` value is itself a checkpoint
 * folder or hub id. Values are typed as lm-eval types them (true/false/none, numbers, else strings).
 */
import { UsageError } from "../errors.js";
import { didYouMean } from "../io/suggest.js";
import type { OpenModelOptions } from "../lm/openModel.js";

export type ModelArgValue = string | number | boolean | null;

/** Keys `--model_args` accepts. */
export const MODEL_ARG_KEYS = [
    "pretrained", "dtype", "max_length", "tokenizer", "device", "is_hf", "batch_size", "trust_remote_code", "revision", "state_budget_gb",
] as const;

/** Parses "k=v,k2=v2" (also space-separated) into typed values. */
export function parseModelArgs(text: string | undefined): Record<string, ModelArgValue> {
    const out: Record<string, ModelArgValue> = {};
    if (!text) return out;
    for (const part of text.split(/[,\s]+/).filter((p) => p !== "")) {
        const eq = part.indexOf("=");
        if (eq <= 0) throw new UsageError(`--model_args ${JSON.stringify(part)}: expected key=value`);
        const key = part.slice(0, eq);
        if (!(MODEL_ARG_KEYS as readonly string[]).includes(key)) {
            throw new UsageError(`--model_args: unknown key "${key}" (accepted: ${MODEL_ARG_KEYS.join(", ")})${didYouMean(key, MODEL_ARG_KEYS)}`);
        }
        if (key in out) throw new UsageError(`--model_args: ${key} given more than once`);
        out[key] = typeValue(part.slice(eq + 1));
    }
    return out;
}

function typeValue(v: string): ModelArgValue {
    const lower = v.toLowerCase();
    if (lower === "true") return true;
    if (lower === "false") return false;
    if (lower === "none") return null;
    if (/^[+-]?\d+$/.test(v)) return Number.parseInt(v, 10);
    if (/^[+-]?(\d+\.\d*|\.\d+|\d+)(e[+-]?\d+)?$/i.test(v)) return Number.parseFloat(v);
    return v;
}

/** The largest state budget accepted, in GiB (a PiB: far above any machine, and exact as a byte count). */
export const MAX_STATE_BUDGET_GB = 2 ** 20;

/** Registry names of lm-eval model types that take `pretrained=`. */
export const MODEL_TYPES = ["mamba_ssm", "hf", "mamba"] as const;

export type ComputeDtype = "float32" | "bfloat16";

/** What the CLI flags say about the model to load. */
export interface ModelSpec {
    /** Checkpoint folder or hub id. */
    pretrained: string;
    /** lm-eval's model type name reported in results ("mamba_ssm" when a checkpoint is given directly). */
    modelType: string;
    dtype: ComputeDtype;
    maxLength: number;
    tokenizer: string | undefined;
    device: "cpu" | "cuda";
    /**
     * Bytes of saved prefix states the scheduler may keep (`state_budget_gb=` in --model_args, GiB; ours, not
     * lm-eval's), or undefined for the default (1 GiB on the CPU; on a GPU 12 GiB, more on a large card:
     * defaultStateBudgetBytes). Results do not depend on it.
     */
    stateBudgetBytes: number | undefined;
    /** The --model_args string as given (for the results' config). */
    modelArgs: string;
}

/** Maps a dtype name (flag or model_args) to the compute dtype; float16/auto are refused/mapped clearly. */
export function parseDtype(value: string, flag: string): ComputeDtype {
    switch (value) {
        case "float32":
        case "fp32":
        case "auto":
            return "float32";
        case "bfloat16":
        case "bf16":
            return "bfloat16";
        default:
            throw new UsageError(`${flag} ${value}: expected float32 or bfloat16`);
    }
}

export function parseDevice(value: string, flag: string): "cpu" | "cuda" {
    if (value === "cpu") return "cpu";
    if (value === "cuda" || /^cuda:\d+$/.test(value)) return "cuda";
    throw new UsageError(`${flag} ${value}: expected cpu or cuda`);
}

/** Combines --model, --model_args, --dtype, --device, --tokenizer into a ModelSpec. */
export function resolveModelSpec(flags: {
    model: string;
    modelArgs?: string | undefined;
    dtype?: string | undefined;
    device?: string | undefined;
    tokenizer?: string | undefined;
}): ModelSpec {
    const args = parseModelArgs(flags.modelArgs);
    const isType = (MODEL_TYPES as readonly string[]).includes(flags.model);
    let pretrained: string;
    if (isType) {
        if (args.pretrained === undefined || args.pretrained === null) {
            throw new UsageError(`--model ${flags.model} needs --model_args pretrained=<checkpoint folder or hub id>`);
        }
        pretrained = String(args.pretrained);
    } else {
        if (args.pretrained !== undefined && String(args.pretrained) !== flags.model) {
            throw new UsageError(`--model ${flags.model} is a checkpoint, and --model_args also names pretrained=${String(args.pretrained)}; give one`);
        }
        pretrained = flags.model;
    }
    const dtypeArg = args.dtype !== undefined && args.dtype !== null ? String(args.dtype) : undefined;
    if (dtypeArg !== undefined && flags.dtype !== undefined && parseDtype(dtypeArg, "--model_args dtype") !== parseDtype(flags.dtype, "--dtype")) {
        throw new UsageError(`--dtype ${flags.dtype} contradicts --model_args dtype=${dtypeArg}`);
    }
    const dtype = flags.dtype !== undefined ? parseDtype(flags.dtype, "--dtype") : dtypeArg !== undefined ? parseDtype(dtypeArg, "--model_args dtype") : "float32";
    const maxLength = args.max_length ?? 2048;
    if (typeof maxLength !== "number" || !Number.isInteger(maxLength) || maxLength < 2) {
        throw new UsageError(`--model_args max_length=${String(maxLength)}: expected an integer >= 2`);
    }
    const budget = args.state_budget_gb;
    if (budget !== undefined && !(typeof budget === "number" && budget > 0 && budget * 2 ** 30 >= 1 && budget <= MAX_STATE_BUDGET_GB)) {
        throw new UsageError(`--model_args state_budget_gb=${String(budget)}: expected a positive number of GiB, at most ${MAX_STATE_BUDGET_GB}`);
    }
    const deviceArg = flags.device ?? (typeof args.device === "string" ? args.device : "cpu");
    const tokenizer = flags.tokenizer ?? (args.tokenizer !== undefined && args.tokenizer !== null ? String(args.tokenizer) : undefined);
    return {
        pretrained,
        modelType: isType ? flags.model : "mamba_ssm",
        dtype,
        maxLength,
        tokenizer,
        device: parseDevice(deviceArg, "--device"),
        stateBudgetBytes: budget === undefined ? undefined : Math.floor(budget * 2 ** 30),
        modelArgs: flags.modelArgs ?? `pretrained=${pretrained}`,
    };
}

/** The openModel options (src/lm/openModel.ts) a ModelSpec stands for; `lm` adds the LM's run options. */
export function openOptions(spec: ModelSpec, extra: Omit<OpenModelOptions, "pretrained" | "tokenizer" | "dtype" | "device"> = {}): OpenModelOptions {
    return {
        ...extra,
        pretrained: spec.pretrained,
        tokenizer: spec.tokenizer,
        dtype: spec.dtype,
        device: spec.device,
        lm: {
            maxLength: spec.maxLength,
            ...(spec.stateBudgetBytes !== undefined ? { stateBudgetBytes: spec.stateBudgetBytes } : {}),
            ...extra.lm,
        },
    };
}
