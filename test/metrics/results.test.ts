import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildTaskRequests, processResults } from "../../src/evaluator/requests.js";
import { pyJsonDumps } from "../../src/io/pyjson.js";
import { aggregateTask, buildResults, writeResultsFile, type RunConfig } from "../../src/evaluator/results.js";
import { buildSampleRecord, samplesFileName, sha256Hex, taskHash, writeSamplesFile } from "../../src/evaluator/samples.js";
import { getTask } from "../../src/tasks/registry.js";

describe("results and samples", () => {
    const task = getTask("lambada_openai");
    const docs = [{ text: "a b" }, { text: "c  d" }];
    const answers = [{ logprob: -21.84375, isGreedy: true }, { logprob: -1e-5, isGreedy: false }];

    it("writes a sample record as lm-eval main does (string resps, hashes, metric types)", () => {
        const requests = buildTaskRequests(task, docs);
        const metrics = processResults(task, docs[0]!, [answers[0]!], false);
        const record = buildSampleRecord(task, 0, docs[0]!, [requests[0]!], [answers[0]!], metrics);
        // python3: json.dumps({...}, ensure_ascii=False) of the same record.
        expect(pyJsonDumps(record)).toBe(
            '{"doc_id": 0, "doc": {"text": "a b"}, "target": " b", "arguments": {"gen_args_0": {"arg_0": "a", "arg_1": " b"}}, ' +
                '"resps": [[["-21.84375", "True"]]], "filtered_resps": [["-21.84375", "True"]], "filter": "none", "metrics": ["perplexity", "acc"], ' +
                `"doc_hash": "${sha256Hex('{\n  "text": "a b"\n}')}", "prompt_hash": "${sha256Hex("a")}", "target_hash": "${sha256Hex(" b")}", "perplexity": -21.84375, "acc": 1}`,
        );
        expect(taskHash([record])).toBe(sha256Hex(record.doc_hash + record.prompt_hash + record.target_hash));
    });

    it("aggregates and writes the results file under <output>/<model>/results_<date>.json", async () => {
        const perDoc = docs.map((d, i) => processResults(task, d, [answers[i]!], false));
        const agg = aggregateTask(task, perDoc, 5153, 1000);
        expect(Object.keys(agg.metrics)).toEqual(["perplexity,none", "perplexity_stderr,none", "acc,none", "acc_stderr,none"]);
        const config: RunConfig = {
            model: "mamba_ssm", model_args: { pretrained: "state-spaces/mamba-130m" }, model_num_parameters: 129135360, model_dtype: "torch.float16",
            model_revision: "main", model_sha: "", batch_size: "1", batch_sizes: [], device: "cpu", use_cache: null, limit: 2,
            bootstrap_iters: 1000, gen_kwargs: {}, random_seed: 0, numpy_seed: 1234, torch_seed: 1234, fewshot_seed: 1234,
        };
        const results = buildResults({
            tasks: [agg], config, gitHash: "abc1234", startTime: 1767225600.5,
            tokenizer: { padToken: ["<|endoftext|>", "0"], eosToken: ["<|endoftext|>", "0"], bosToken: ["<|endoftext|>", "0"], eotTokenId: 0, maxLength: 2048 },
            taskHashes: {}, modelSource: "mamba_ssm", modelName: "state-spaces/mamba-130m", totalEvaluationTimeSeconds: 12.5,
            provenance: { tool_version: "0.1.0", git_commit: null, backend: "cpu", threads: 2, dtype: "float32", model_fingerprint: "sha256:…" },
        });
        const dir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-results-"));
        try {
            const file = await writeResultsFile(results, { outputPath: dir, modelNameSanitized: "state-spaces__mamba-130m", dateId: "2026-01-01T00-00-00.500000" });
            expect(file).toBe(path.join(dir, "state-spaces__mamba-130m", "results_2026-01-01T00-00-00.500000.json"));
            const text = await readFile(file, "utf8");
            expect(text).toContain('"results": {\n    "lambada_openai": {\n      "name": "lambada_openai",\n      "alias": "lambada_openai",\n      "sample_len": 2,\n      "perplexity,none": ');
            expect(text).toContain('"acc,none": 0.5,');
            expect(text).toContain('"versions": {\n    "lambada_openai": 1.0\n  }');
            expect(text).toContain('"n-samples": {\n    "lambada_openai": {\n      "original": 5153,\n      "effective": 2\n    }\n  }');
            expect(text).toContain('"limit": 2.0,');
            expect(text).toContain('"model_name_sanitized": "state-spaces__mamba-130m"');
            expect(text).toContain('"total_evaluation_time_seconds": "12.5"');
            expect(Object.keys(JSON.parse(text)).slice(0, 8)).toEqual(["results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config"]);
            const samplesFile = path.join(dir, samplesFileName("lambada_openai", "D"));
            const requests = buildTaskRequests(task, docs);
            await writeSamplesFile(samplesFile, docs.map((d, i) => buildSampleRecord(task, i, d, [requests[i]!], [answers[i]!], perDoc[i]!)));
            const lines = (await readFile(samplesFile, "utf8")).split("\n");
            expect(lines).toHaveLength(3);
            expect(JSON.parse(lines[1]!).resps).toEqual([[["-1e-05", "False"]]]);
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});
