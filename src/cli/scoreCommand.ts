/**
 * `mamba-eval score --model M (--text T | --ids 1,2,3 | --ids-file F.json) [--logits-out OUT.safetensors]`:
 * per-token log-probabilities and perplexity of one or more sequences. Token ids need no tokenizer.
 * --logits-out writes one float32 tensor `logits_<k>` of shape [length, padded vocab] per sequence k. The logits
 * are computed and written in pieces of at most LOGITS_BYTES_PER_CALL (one native call each, the state carried from
 * piece to piece, so the numbers are those of one call), so a file of any size is written with bounded memory; the
 * file replaces an old one only once it is complete.
 */
import type { Argv, CommandModule } from "yargs";
import { DataFormatError, NumericError, UsageError } from "../errors.js";
import { addOptions, MODEL_OPTIONS } from "./commonOptions.js";
import { nonEmptyFlag } from "./flags.js";
import { checkOutputFile } from "./outputFile.js";
import { handleInterrupts } from "./interrupt.js";
import { validateEnvironment } from "./environment.js";
import type { CliIO } from "./io.js";
import { openOptions, resolveModelSpec } from "../evaluator/modelArgs.js";
import type { Backend } from "../backend/Backend.js";
import { openModel } from "../lm/openModel.js";
import { SEGMENT_CUT_ALIGNMENT } from "../lm/scheduler.js";
import { checkIds, parseIdList } from "./tokenIds.js";
import { SafetensorsF32Writer } from "../io/safetensorsWriter.js";
import { decodeUtf8Strict, FileAccessError, readSmallFile, SIZE_LIMITS } from "../io/safeFile.js";

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

/** Most logits bytes one native call returns (the addon refuses more than 2^31 - 1 bytes per call). */
export const LOGITS_BYTES_PER_CALL = 256 * 1024 * 1024;

/** Rows per native call when logits are returned: within LOGITS_BYTES_PER_CALL, a multiple of the scheduler's cut alignment. */
export function logitRowsPerCall(vocab: number, bytesPerCall: number = LOGITS_BYTES_PER_CALL): number {
    const rows = Math.max(1, Math.floor(bytesPerCall / (vocab * 4)));
    return rows >= SEGMENT_CUT_ALIGNMENT ? rows - (rows % SEGMENT_CUT_ALIGNMENT) : rows;
}

/** Reads --ids-file: a JSON array of token-id arrays (a regular file of at most 256 MiB). */
export async function readIdsFile(file: string): Promise<number[][]> {
    let json: unknown;
    try {
        json = JSON.parse(decodeUtf8Strict(await readSmallFile(file, { limit: SIZE_LIMITS.ids, what: "an --ids-file" }), file));
    } catch (e) {
        if (e instanceof FileAccessError) throw new DataFormatError(`--ids-file ${e.message}`);
        throw new DataFormatError(`--ids-file ${file}: not valid JSON`);
    }
    if (!Array.isArray(json) || json.length === 0) throw new DataFormatError(`--ids-file ${file}: expected a non-empty JSON array of token-id arrays`);
    return json.map((seq, k) => {
        if (!Array.isArray(seq) || seq.length === 0 || !seq.every((x) => Number.isInteger(x) && x >= 0)) {
            throw new DataFormatError(`--ids-file ${file}: entry ${k} is not a non-empty array of non-negative integer token ids`);
        }
        return seq as number[];
    });
}

/** One piece of a scored sequence: rows [start, start + logprobs.length) and, when asked, their logits. */
interface ScoredPiece {
    start: number;
    logprobs: Float64Array;
    greedy: Uint8Array;
    logits?: Float32Array;
}

/**
 * Scores `ids` in pieces of `rowsPerCall` tokens, each piece starting from the state the previous one saved
 * (slots 0 and 1 in turn): the log-probabilities are those of one call over the whole sequence. With `withLogits`
 * each piece also returns its rows' logits.
 */
async function* scorePieces(backend: Backend, ids: readonly number[], rowsPerCall: number, withLogits: boolean, signal: AbortSignal): AsyncGenerator<ScoredPiece> {
    const n = ids.length;
    let previousSlot = -1;
    try {
        for (let start = 0, piece = 0; start < n; start += rowsPerCall, piece++) {
            signal.throwIfAborted();
            const end = Math.min(n, start + rowsPerCall);
            const saveSlot = end < n ? piece % 2 : -1;
            const scored = Math.min(end, n - 1) - start;  // rows that predict a next token of the sequence
            const out = await backend.score({
                tokens: Int32Array.from(ids.slice(start, end)),
                segOffsets: Int32Array.of(0, end - start),
                segInit: Int32Array.of(previousSlot),
                segSave: Int32Array.of(saveSlot),
                scoreRows: Int32Array.from({ length: scored }, (_, i) => i),
                scoreTargets: Int32Array.from({ length: scored }, (_, i) => ids[start + i + 1]!),
                ...(withLogits ? { logitRows: Int32Array.from({ length: end - start }, (_, i) => i) } : {}),
            });
            if (previousSlot >= 0) backend.freeState(previousSlot);
            previousSlot = saveSlot;
            const bad = out.logprobs.findIndex((lp) => !Number.isFinite(lp));
            if (bad >= 0) {  // as `run` does: a NaN/Inf never becomes a perplexity
                throw new NumericError(
                    `the model produced a non-finite log-probability (${out.logprobs[bad]}) at position ${start + bad} ` +
                        `(target token ${ids[start + bad + 1]}): its weights overflow float32 or are corrupt`,
                );
            }
            yield { start, logprobs: out.logprobs, greedy: out.greedy, ...(withLogits ? { logits: out.logits } : {}) };
        }
    } finally {
        if (previousSlot >= 0) backend.freeState(previousSlot);
    }
}

export function scoreBuilder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        ...MODEL_OPTIONS,
        text: { type: "string", describe: "text to score (tokenized without special tokens)" },
        ids: { type: "string", describe: "comma-separated token ids" },
        ids_file: { type: "string", coerce: nonEmptyFlag("--ids-file"), describe: "JSON file: an array of token-id arrays" },
        logits_out: { type: "string", coerce: nonEmptyFlag("--logits-out"), describe: "write logits_<k> [length, vocab] float32 tensors to this .safetensors file" },
    });
}

/** Runs the command; returns the exit status. */
export async function scoreMain(args: ScoreArgs, io: CliIO): Promise<number> {
    validateEnvironment();
    const given = [args.text, args.ids, args.ids_file].filter((x) => x !== undefined).length;
    if (given !== 1) throw new UsageError("score: give exactly one of --text, --ids, --ids-file");
    if (!args.model) throw new UsageError("score: --model is required");
    if (args.logits_out !== undefined) checkOutputFile("--logits-out", args.logits_out);
    const spec = resolveModelSpec({ model: args.model, modelArgs: args.model_args, dtype: args.dtype, device: args.device, tokenizer: args.tokenizer });
    const fileSequences = args.ids_file !== undefined ? await readIdsFile(args.ids_file) : undefined;
    const interrupts = handleInterrupts(io);
    let model: Awaited<ReturnType<typeof openModel>>;
    try {
        model = await openModel(openOptions(spec, { threads: args.threads, needTokenizer: args.text !== undefined }));
    } catch (e) {
        interrupts.dispose();
        throw e;
    }
    let logitsFile: SafetensorsF32Writer | undefined;
    try {
        let sequences: number[][];
        if (args.text !== undefined) sequences = [await model.tokenizer!.encode(args.text)];
        else if (args.ids !== undefined) sequences = [parseIdList(args.ids, "--ids")];
        else sequences = fileSequences!;
        const vocab = model.checkpoint.config.paddedVocabSize;
        const flag = args.text !== undefined ? "--text" : args.ids !== undefined ? "--ids" : "--ids-file";
        for (const ids of sequences) {
            if (ids.length === 0) throw new UsageError("score: --text encodes to no tokens");
            checkIds(ids, vocab, flag);
        }
        const withLogits = args.logits_out !== undefined;
        if (withLogits) logitsFile = new SafetensorsF32Writer(args.logits_out!, sequences.map((ids, k) => ({ name: `logits_${k}`, shape: [ids.length, vocab] })));
        // Without logits one call takes the whole sequence, as before; with them, pieces bound the memory.
        const rowsPerCall = withLogits ? logitRowsPerCall(vocab) : Number.MAX_SAFE_INTEGER;
        for (let k = 0; k < sequences.length; k++) {
            const ids = sequences[k]!;
            io.out(`# sequence ${k}: ${ids.length} tokens\n`);
            io.out("pos\tid\tlogprob\tgreedy" + (model.tokenizer ? "\ttoken" : "") + "\n");
            let sum = 0;
            for await (const piece of scorePieces(model.backend, ids, rowsPerCall, withLogits, interrupts.signal)) {
                for (let j = 0; j < piece.logprobs.length; j++) {
                    const i = piece.start + j + 1;  // the position whose token row i - 1 predicts
                    const lp = piece.logprobs[j]!;
                    sum += lp;
                    const token = model.tokenizer ? `\t${JSON.stringify(await model.tokenizer.decode([ids[i]!]))}` : "";
                    io.out(`${i}\t${ids[i]}\t${lp.toFixed(6)}\t${piece.greedy[j]}${token}\n`);
                }
                if (piece.logits) {
                    if (piece.logits.length !== Math.min(rowsPerCall, ids.length - piece.start) * vocab) {
                        throw new Error(`score: the backend returned ${piece.logits.length} logits for a piece of ${ids.length - piece.start} rows of ${vocab}`);
                    }
                    logitsFile!.write(piece.logits);
                }
            }
            const n = ids.length - 1;
            io.out(n > 0 ? `perplexity ${Math.exp(-sum / n).toFixed(6)} (mean log-prob ${(sum / n).toFixed(6)} over ${n} tokens)\n` : "perplexity n/a (a single token predicts nothing)\n");
        }
        if (logitsFile) {
            interrupts.signal.throwIfAborted();
            logitsFile.commit();
            logitsFile = undefined;
            io.err(`wrote ${sequences.length} logits tensor(s) to ${args.logits_out}\n`);
        }
        return 0;
    } finally {
        logitsFile?.abort();
        interrupts.dispose();
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
