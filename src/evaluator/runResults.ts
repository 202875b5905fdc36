/**
 * The run command's results object: lm-eval main's `config` block, tokenizer facts and tracker fields, plus our
 * `mamba_eval` provenance block (tool version, git commit, backend, threads, dtype, model fingerprint), passed to
 * results.ts `buildResults` together with the per-task aggregates.
 */
import type { TaskEvaluation } from "./evaluate.js";
import type { JsonLike } from "../io/pyjson.js";
import { buildResults, modelNameFromArgs, type RunConfig } from "./results.js";
import { taskHash } from "./samples.js";
import type { Checkpoint } from "../model/types.js";
import { UsageError } from "../errors.js";
import { parseModelArgs, type ModelArgValue, type ModelSpec } from "./modelArgs.js";
import { gitCommit, toolVersion } from "./provenance.js";
import { displayPath } from "../io/bundled.js";

/** Everything about the run that the results file records besides the evaluation itself. */
export interface RunFacts {
    spec: ModelSpec;
    /** --model_args parsed (lm-eval main records the dict). */
    modelArgs: Record<string, ModelArgValue>;
    checkpoint: Checkpoint;
    /** sha256 over the weight files' bytes (src/model/checksum.ts). */
    weightsSha256: string;
    backend: { device: string; isa: string };
    threads: number;
    tokenizer: { eosTokenId: number; eosToken: string; source: string };
    batchSize: string;
    useCache: string | null;
    limit: number | null;
    seeds: Seeds;
    /** Where the documents came from: a --data_dir folder, or null for the HF datasets. */
    dataDir: string | null;
    /** Unix start time, seconds. */
    startTime: number;
    totalSeconds: number;
}

/** lm-eval's four seeds (python random, numpy, torch, fewshot). */
export interface Seeds {
    random: number | null;
    numpy: number | null;
    torch: number | null;
    fewshot: number | null;
}

/**
 * lm-eval's --seed: one value for all four seeds, or a comma list of 3 or 4 (python, numpy, torch[, fewshot]);
 * "None" leaves a seed unset. Zero-shot scores never use them; they are recorded.
 */
export function parseSeeds(text: string): Seeds {
    const parts = text.split(",").map((s) => s.trim());
    const values = parts.map((p) => {
        if (p === "None") return null;
        if (!/^\d+$/.test(p)) throw new UsageError(`--seed ${text}: expected an integer, None, or a comma list of 3 or 4 of them`);
        return Number(p);
    });
    if (values.length === 1) return { random: values[0]!, numpy: values[0]!, torch: values[0]!, fewshot: values[0]! };
    if (values.length === 3 || values.length === 4) return { random: values[0]!, numpy: values[1]!, torch: values[2]!, fewshot: values[3] ?? 1234 };
    throw new UsageError(`--seed ${text}: expected an integer, None, or a comma list of 3 or 4 of them`);
}

/** Parameter count of the checkpoint's canonical tensors (a tied lm_head counted once, as torch does). */
export function parameterCount(checkpoint: Checkpoint): number {
    return checkpoint.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** The hub commit of a checkpoint folder inside the Hugging Face cache (…/snapshots/<sha>), else "". */
export function snapshotCommit(dir: string): string {
    const m = /[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]?$/.exec(dir);
    return m ? m[1]! : "";
}

/** lm-eval's model_name for a run: the pretrained= value of --model_args (the checkpoint as given). */
export function runModelName(spec: ModelSpec): string {
    return modelNameFromArgs(parseModelArgs(spec.modelArgs)) ?? spec.pretrained;
}

/** The results object (lm-eval main's layout plus `mamba_eval`) for a finished evaluation. */
export function runResults(tasks: readonly TaskEvaluation[], facts: RunFacts): Record<string, JsonLike> {
    const config: RunConfig = {
        model: facts.spec.modelType,
        model_args: facts.modelArgs,
        model_num_parameters: parameterCount(facts.checkpoint),
        model_dtype: `torch.${facts.spec.dtype}`,
        model_revision: "main",
        model_sha: snapshotCommit(facts.checkpoint.dir),
        batch_size: facts.batchSize,
        batch_sizes: [],
        device: facts.spec.device,
        use_cache: facts.useCache,
        limit: facts.limit,
        bootstrap_iters: 100000,
        gen_kwargs: {},
        random_seed: facts.seeds.random,
        numpy_seed: facts.seeds.numpy,
        torch_seed: facts.seeds.torch,
        fewshot_seed: facts.seeds.fewshot,
    };
    const commit = gitCommit();
    const eos: [string, string] = [facts.tokenizer.eosToken, String(facts.tokenizer.eosTokenId)];
    const taskHashes: Record<string, string> = {};
    for (const t of tasks) if (t.samples) taskHashes[t.task.name] = taskHash(t.samples);
    const modelName = runModelName(facts.spec);
    return buildResults({
        tasks: tasks.map((t) => t.aggregate),
        config,
        gitHash: commit === null ? null : commit.slice(0, 7),
        startTime: facts.startTime,
        // GPT-NeoX-20B has no pad token; lm-eval's HF wrapper then pads with the unk/eos token, which is <|endoftext|>.
        tokenizer: { padToken: eos, eosToken: eos, bosToken: eos, eotTokenId: facts.tokenizer.eosTokenId, maxLength: facts.spec.maxLength },
        taskHashes,
        modelSource: facts.spec.modelType,
        modelName,
        totalEvaluationTimeSeconds: facts.totalSeconds,
        provenance: {
            tool_version: toolVersion(),
            git_commit: commit,
            backend: facts.backend.device,
            threads: facts.threads,
            dtype: facts.spec.dtype,
            model_fingerprint: facts.checkpoint.fingerprint,
            model_checksum: facts.weightsSha256,
            device_name: facts.backend.isa,
            model_dir: displayPath(facts.checkpoint.dir),
            tokenizer: displayPath(facts.tokenizer.source),
            data_dir: facts.dataDir === null ? null : displayPath(facts.dataDir),
        },
    });
}
