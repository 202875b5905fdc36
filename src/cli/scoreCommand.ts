/**
 * `mamba-eval score --model M (--text T | --ids 1,2,3 | --ids-file F.json) [--logits-out OUT.safetensors]`:
 * per-token log-probabilities and perplexity of one or more sequences. Token ids need no tokenizer.
 * --logits-out writes one float32 tensor `logits_<k>` of shape [length, padded vocab] per sequence k.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Argv, CommandModule } from "yargs";
import { DataFormatError, UsageError } from "../errors.js";
import { addOptions, MODEL_OPTIONS } from "./commonOptions.js";
import type { CliIO } from "./io.js";
import { openOptions, resolveModelSpec } from "../evaluator/modelArgs.js";
import { openModel } from "../lm/openModel.js";
import { checkIds, parseIdList } from "./tokenIds.js";
import { writeSafetensorsF32, type F32Tensor } from "../io/safetensorsWriter.js";

export interface ScoreArgs {
    model?: string;
    model_args?: string;
    tokenizer?: string;
    dtype?: string;
    device?: string;
    threads?: number;
    text?: string;
    ids?: string;
    ids_file?: string;
    logits_out?: string;
}

/** Reads --ids-file: a JSON array of token-id arrays. */
export async function readIdsFile(file: string): Promise<number[][]> {
    let json: unknown;
    try {
        json = JSON.parse(await readFile(file, "utf8"));
    } catch (e) {
        throw new DataFormatError(`--ids-file ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : "not valid JSON"}`);
    }
    if (!Array.isArray(json) || json.length === 0) throw new DataFormatError(`--ids-file ${file}: expected a non-empty JSON array of token-id arrays`);
    return json.map((seq, k) => {
        if (!Array.isArray(seq) || seq.length === 0 || !seq.every((x) => Number.isInteger(x) && x >= 0)) {
            throw new DataFormatError(`--ids-file ${file}: entry ${k} is not a non-empty array of non-negative integer token ids`);
        }
        return seq as number[];
    });
}

export function scoreBuilder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        ...MODEL_OPTIONS,
        text: { type: "string", describe: "text to score (tokenized without special tokens)" },
        ids: { type: "string", describe: "comma-separated token ids" },
        ids_file: { type: "string", describe: "JSON file: an array of token-id arrays" },
        logits_out: { type: "string", describe: "write logits_<k> [length, vocab] float32 tensors to this .safetensors file" },
    });
}

/** Runs the command; returns the exit status. */
export async function scoreMain(args: ScoreArgs, io: CliIO): Promise<number> {
    const given = [args.text, args.ids, args.ids_file].filter((x) => x !== undefined).length;
    if (given !== 1) throw new UsageError("score: give exactly one of --text, --ids, --ids-file");
    if (!args.model) throw new UsageError("score: --model is required");
    if (args.logits_out !== undefined && !existsSync(path.dirname(path.resolve(args.logits_out)))) {
        throw new UsageError(`--logits-out ${args.logits_out}: its folder does not exist`);
    }
    const spec = resolveModelSpec({ model: args.model, modelArgs: args.model_args, dtype: args.dtype, device: args.device, tokenizer: args.tokenizer });
    const model = await openModel(openOptions(spec, { threads: args.threads, needTokenizer: args.text !== undefined }));
    try {
        let sequences: number[][];
        if (args.text !== undefined) sequences = [await model.tokenizer!.encode(args.text)];
        else if (args.ids !== undefined) sequences = [parseIdList(args.ids, "--ids")];
        else sequences = await readIdsFile(args.ids_file!);
        const vocab = model.checkpoint.config.paddedVocabSize;
        const tensors: F32Tensor[] = [];
        for (let k = 0; k < sequences.length; k++) {
            const ids = sequences[k]!;
            if (ids.length === 0) throw new UsageError("score: --text encodes to no tokens");
            checkIds(ids, vocab, args.text !== undefined ? "--text" : args.ids !== undefined ? "--ids" : "--ids-file");
            const s = await model.lm.scoreSequence(ids, args.logits_out !== undefined);
            io.out(`# sequence ${k}: ${ids.length} tokens\n`);
            io.out("pos\tid\tlogprob\tgreedy" + (model.tokenizer ? "\ttoken" : "") + "\n");
            let sum = 0;
            for (let i = 1; i < ids.length; i++) {
                const lp = s.logprobs[i - 1]!;
                sum += lp;
                const piece = model.tokenizer ? `\t${JSON.stringify(await model.tokenizer.decode([ids[i]!]))}` : "";
                io.out(`${i}\t${ids[i]}\t${lp.toFixed(6)}\t${s.greedy[i - 1]}${piece}\n`);
            }
            const n = ids.length - 1;
            io.out(n > 0 ? `perplexity ${Math.exp(-sum / n).toFixed(6)} (mean log-prob ${(sum / n).toFixed(6)} over ${n} tokens)\n` : "perplexity n/a (a single token predicts nothing)\n");
            if (s.logits) tensors.push({ name: `logits_${k}`, shape: [ids.length, s.vocab], data: s.logits });
        }
        if (args.logits_out !== undefined) {
            writeSafetensorsF32(args.logits_out, tensors);
            io.err(`wrote ${tensors.length} logits tensor(s) to ${args.logits_out}\n`);
        }
        return 0;
    } finally {
        await model.dispose();
    }
}

export function scoreCommand(io: CliIO, setCode: (code: number) => void): CommandModule<object, ScoreArgs> {
    return {
        command: "score",
        describe: "Per-token log-probabilities and perplexity of a text or token ids",
        builder: (y) => scoreBuilder(y) as unknown as Argv<ScoreArgs>,
        handler: async (args) => setCode(await scoreMain(args, io)),
    };
}
