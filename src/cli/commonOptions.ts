/**
 * Shared yargs option definitions. Every flag is registered under its lm-eval spelling with underscores
 * and accepted with dashes too (`--output_path` = `--output-path`).
 */
import type { Argv, Options } from "yargs";
import { integerFlag, nonEmptyFlag } from "./flags.js";

/** The other spelling of a flag name (underscores ⇄ dashes), or undefined when it has neither. */
export function otherSpelling(name: string): string | undefined {
    if (name.includes("_")) return name.replaceAll("_", "-");
    if (name.includes("-")) return name.replaceAll("-", "_");
    return undefined;
}

/** Every flag name registered through addOptions (both spellings), for "did you mean" hints. */
export const registeredFlags = new Set<string>(["help"]);

/** Adds options under both spellings. */
export function addOptions<T>(yargs: Argv<T>, options: Record<string, Options>): Argv<T> {
    let y = yargs;
    for (const [name, opt] of Object.entries(options)) {
        const alt = otherSpelling(name);
        registeredFlags.add(name);
        if (alt) registeredFlags.add(alt);
        const alias = [...(opt.alias === undefined ? [] : Array.isArray(opt.alias) ? opt.alias : [opt.alias]), ...(alt ? [alt] : [])];
        y = y.option(name, { ...opt, alias });
    }
    return y;
}

/** Options of every model-loading command. */
export const MODEL_OPTIONS: Record<string, Options> = {
    model: { type: "string", coerce: nonEmptyFlag("--model"), describe: "mamba_ssm | hf (with --model_args pretrained=…), or a checkpoint folder / hub id" },
    model_args: { type: "string", describe: "lm-eval style key=value list: pretrained=…,dtype=…,max_length=…,tokenizer=…" },
    tokenizer: { type: "string", coerce: nonEmptyFlag("--tokenizer"), describe: "tokenizer.json file, folder or hub id (default: the model folder's, else EleutherAI/gpt-neox-20b)" },
    dtype: { type: "string", describe: "compute dtype of the weights: float32 | bfloat16 (default float32)" },
    device: { type: "string", describe: "cpu | cuda (default cpu)" },
    threads: { type: "string", coerce: integerFlag("--threads", 1, 256), describe: "CPU threads (default: all cores)" },
    verbose: { type: "boolean", default: false, describe: "print stack traces with errors" },
};
