/**
 * `mamba-eval generate --model M (--prompt T | --ids 1,2,3) --max-new-tokens N [--temperature --top-k --top-p
 * --seed] [--json]`: greedy by default; streams the new text to stdout as it is produced. --json prints one JSON
 * object as the last line of stdout with `tokens` (the new ids) and `text` (when a tokenizer is available).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Argv, CommandModule } from "yargs";
import { UsageError } from "../errors.js";
import { resolveModelDir } from "../model/loadModel.js";
import { addOptions, MODEL_OPTIONS } from "./commonOptions.js";
import { integerFlag, numberFlag } from "./flags.js";
import { handleInterrupts } from "./interrupt.js";
import { validateEnvironment } from "./environment.js";
import type { CliIO } from "./io.js";
import { openOptions, resolveModelSpec } from "../evaluator/modelArgs.js";
import { openModel } from "../lm/openModel.js";
import { checkIds, parseIdList } from "./tokenIds.js";

export interface GenerateArgs {
    model?: string;
    model_args?: string;
    tokenizer?: string;
    dtype?: string;
    device?: string;
    threads?: number;
    prompt?: string;
    ids?: string;
    max_new_tokens?: number;
    temperature?: number;
    top_k?: number;
    top_p?: number;
    seed?: number;
    json?: boolean;
}

export function generateBuilder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        ...MODEL_OPTIONS,
        prompt: { type: "string", describe: "prompt text" },
        ids: { type: "string", describe: "prompt as comma-separated token ids" },
        max_new_tokens: { type: "string", default: "32", coerce: integerFlag("--max_new_tokens", 0), describe: "most new tokens" },
        temperature: { type: "string", coerce: numberFlag("--temperature", 0), describe: "sampling temperature (default 0: greedy)" },
        top_k: { type: "string", coerce: integerFlag("--top_k", 0), describe: "sample from the k most likely tokens (0: all)" },
        top_p: { type: "string", coerce: numberFlag("--top_p", 0, 1, true), describe: "sample from the smallest set reaching probability p" },
        seed: { type: "string", default: "0", coerce: integerFlag("--seed", 0, 2 ** 32 - 1), describe: "sampling seed" },
        json: { type: "boolean", default: false, describe: "print {tokens, text} as JSON on the last line" },
    });
}

/** Runs the command; returns the exit status. */
export async function generateMain(args: GenerateArgs, io: CliIO): Promise<number> {
    validateEnvironment();
    if ((args.prompt === undefined) === (args.ids === undefined)) throw new UsageError("generate: give exactly one of --prompt, --ids");
    if (!args.model) throw new UsageError("generate: --model is required");
    const spec = resolveModelSpec({ model: args.model, modelArgs: args.model_args, dtype: args.dtype, device: args.device, tokenizer: args.tokenizer });
    // With token ids a tokenizer is only used (for text output) when one is at hand without downloading.
    let needTokenizer = args.prompt !== undefined || spec.tokenizer !== undefined;
    if (!needTokenizer) needTokenizer = existsSync(path.join(await resolveModelDir(spec.pretrained), "tokenizer.json"));
    const interrupts = handleInterrupts(io);
    let model: Awaited<ReturnType<typeof openModel>>;
    try {
        model = await openModel(openOptions(spec, { threads: args.threads, needTokenizer }));
    } catch (e) {
        interrupts.dispose();
        throw e;
    }
    try {
        const tok = model.tokenizer;
        const prompt = args.prompt !== undefined ? await tok!.encode(args.prompt) : parseIdList(args.ids!, "--ids");
        if (prompt.length === 0) throw new UsageError("generate: --prompt encodes to no tokens");
        checkIds(prompt, model.checkpoint.config.paddedVocabSize, args.prompt !== undefined ? "--prompt" : "--ids");
        const produced: number[] = [];
        let printed = "";
        const tokens = await model.lm.generate(prompt, {
            maxNewTokens: args.max_new_tokens ?? 32,
            temperature: args.temperature,
            topK: args.top_k,
            topP: args.top_p,
            seed: args.seed,
            onToken: async (t) => {
                interrupts.signal.throwIfAborted();
                produced.push(t);
                if (!tok) {
                    if (!args.json) io.out(`${produced.length > 1 ? " " : ""}${t}`);
                    return;
                }
                const text = await tok.decode(produced);
                // Hold back an incomplete UTF-8 sequence (decoded as U+FFFD) until its next byte arrives.
                if (!args.json && !text.endsWith("\uFFFD") && text.startsWith(printed)) {
                    io.out(text.slice(printed.length));
                    printed = text;
                }
            },
        });
        const text = tok ? await tok.decode(tokens) : undefined;
        if (args.json) {
            io.out(`${JSON.stringify(text === undefined ? { tokens } : { tokens, text })}\n`);
        } else {
            if (text !== undefined && text.startsWith(printed)) io.out(text.slice(printed.length));
            io.out("\n");
        }
        return 0;
    } finally {
        interrupts.dispose();
        await model.dispose();
    }
}

export function generateCommand(io: CliIO, setCode: (code: number) => void): CommandModule<object, GenerateArgs> {
    return {
        command: "generate",
        describe: "Generate text from a prompt (greedy by default)",
        builder: (y) => generateBuilder(y) as unknown as Argv<GenerateArgs>,
        handler: async (args) => setCode(await generateMain(args, io)),
    };
}
