/**
 * The run command end to end on the bundled samples: the bare command (child process, as a user runs it), the same
 * run in-process with --output_path/--log_samples (results and samples files checked for lm-eval's keys and for
 * internal consistency), --model without --tasks, and two processes sharing one --use_cache at the same time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { cacheFilePath, cacheKey } from "../../src/evaluator/cache.js";
import { mean, perplexity } from "../../src/metrics/metrics.js";
import { sha256Hex } from "../../src/evaluator/samples.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { getTask } from "../../src/tasks/registry.js";
import { taskSampleRequests } from "../../scripts/fixtures/dump_task_requests.js";
import { neoxTokenizerPath, repoRoot, runCliChild, startCliChild } from "./helpers.js";

const TASKS = ["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande"];
const DOCS: Record<string, number> = { lambada_openai: 8, hellaswag: 8, piqa: 8, arc_easy: 8, arc_challenge: 6, winogrande: 8 };
const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-e2e-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** main(argv) in this process with captured output (stderr is not a TTY). */
async function runInProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const code = await main(argv, { out: (t) => void (stdout += t), err: (t) => void (stderr += t), errIsTTY: false });
    return { code, stdout, stderr };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The results file and samples records an --output_path run wrote into its model folder. */
function readRun(outputPath: string): { results: Json; samples: Record<string, Json[]>; files: string[] } {
    const [model] = readdirSync(outputPath);
    const dir = path.join(outputPath, model!);
    const files = readdirSync(dir).sort();
    const resultsFile = files.find((f) => f.startsWith("results_"))!;
    const samples: Record<string, Json[]> = {};
    for (const f of files.filter((x) => x.startsWith("samples_"))) {
        const task = /^samples_(.+)_\d{4}-.*\.jsonl$/.exec(f)![1]!;
        samples[task] = readFileSync(path.join(dir, f), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Json);
    }
    return { results: JSON.parse(readFileSync(path.join(dir, resultsFile), "utf8")) as Json, samples, files: files.map((f) => path.join(model!, f)) };
}

describe("the bare command and the same run with output files", () => {
    let bare: { code: number | null; stdout: string; stderr: string };
    let inProcess: { code: number; stdout: string; stderr: string };
    let run: ReturnType<typeof readRun>;

    beforeAll(async () => {
        const elsewhere = mkdtempSync(path.join(tmp, "cwd-"));
        bare = runCliChild([], elsewhere); // from another folder: the bundled files are found from the package
        inProcess = await runInProcess(["--output_path", path.join(tmp, "out"), "--log_samples", "--threads", "1"]);
        run = readRun(path.join(tmp, "out"));
    });

    it("the bare command evaluates the bundled model on all six tasks offline and says which defaults it used", () => {
        expect(bare.stderr).not.toMatch(/mamba-eval: (?!using)/);
        expect(bare.code).toBe(0);
        expect(bare.stderr).toMatch(/^mamba-eval: using no --model: the bundled tiny checkpoint .*fixtures\/neox-mamba1 .*tokenizer .*gpt-neox-20b\.tokenizer\.json\.gz.*fixtures\/tasks.*no --tasks: the Table-3 tasks/m);
        for (const task of TASKS) expect(bare.stdout).toMatch(new RegExp(`^\\|${task} *\\|`, "m"));
        // Same numbers as the in-process run on one thread (results never depend on the thread count).
        expect(bare.stdout.split("\n").slice(1)).toEqual(inProcess.stdout.split("\n").slice(1));
    });

    it("prints lm-eval's header line and table, and one final progress line on a non-TTY", () => {
        expect(inProcess.code).toBe(0);
        expect(inProcess.stdout.split("\n")[0]).toBe("mamba_ssm ({'pretrained': 'fixtures/neox-mamba1'}), gen_kwargs: ({}), limit: None, num_fewshot: None, batch_size: auto");
        expect(inProcess.stdout.split("\n")[1]).toMatch(/^\| *Tasks *\|Version\|Filter\|n-shot\| *Metric *\| *\| *Value *\| *\| *Stderr *\|$/);
        expect(inProcess.stderr.match(/^loglikelihood: 128\/128 requests \(100\.0%\), \d+ tokens\/s, ETA 0s$/gm)).toHaveLength(1);
        expect(inProcess.stderr).not.toMatch(/\r/);
    });

    it("writes lm-eval's results keys, n-samples and our provenance", async () => {
        const r = run.results;
        expect(Object.keys(r)).toEqual([
            "results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config", "git_hash", "date",
            "pretty_env_info", "transformers_version", "lm_eval_version", "upper_git_hash", "tokenizer_pad_token", "tokenizer_eos_token",
            "tokenizer_bos_token", "eot_token_id", "max_length", "task_hashes", "model_source", "model_name", "model_name_sanitized",
            "system_instruction", "system_instruction_sha", "fewshot_as_multiturn", "chat_template", "chat_template_sha",
            "total_evaluation_time_seconds", "mamba_eval",
        ]);
        expect(Object.keys(r["results"])).toEqual(TASKS);
        for (const task of TASKS) {
            const metrics = getTask(task).metrics.flatMap((m) => [`${m.name},none`, `${m.name}_stderr,none`]);
            expect(Object.keys(r["results"][task])).toEqual(["name", "alias", "sample_len", ...metrics]);
            expect(r["n-samples"][task]).toEqual({ original: DOCS[task], effective: DOCS[task] });
            expect(r["versions"][task]).toBe(1);
            expect(r["n-shot"][task]).toBe(0);
        }
        expect(r["higher_is_better"]["lambada_openai"]).toEqual({ perplexity: false, acc: true });
        expect(r["config"]).toMatchObject({ model: "mamba_ssm", model_args: { pretrained: "fixtures/neox-mamba1" }, device: "cpu", limit: null, bootstrap_iters: 100000 });
        expect(r["model_name_sanitized"]).toBe("fixtures__neox-mamba1");
        expect(r["tokenizer_eos_token"]).toEqual(["<|endoftext|>", "0"]);
        expect(r["eot_token_id"]).toBe(0);
        expect(r["max_length"]).toBe(2048);
        const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
        const checkpoint = await loadCheckpoint(path.join(repoRoot, "fixtures/neox-mamba1"));
        expect(r["mamba_eval"]).toMatchObject({ tool_version: pkg.version, backend: "cpu", threads: 1, dtype: "float32", model_fingerprint: checkpoint.fingerprint });
        expect(r["mamba_eval"]["git_commit"] === null || /^[0-9a-f]{40}$/.test(r["mamba_eval"]["git_commit"])).toBe(true);
        expect(run.files.filter((f) => f.includes("samples_"))).toHaveLength(6);
    });

    it("samples: one record per scored document, metrics consistent with the responses and the aggregates", () => {
        for (const task of TASKS) {
            const records = run.samples[task]!;
            const agg = run.results["results"][task];
            expect(records).toHaveLength(run.results["n-samples"][task].effective);
            expect(records.map((s) => s["doc_id"])).toEqual(records.map((_, i) => i));
            for (const s of records) {
                const lls = (s["filtered_resps"] as [string, string][]).map(([ll]) => Number(ll));
                expect(Object.keys(s["arguments"])).toHaveLength(lls.length);
                if (task === "lambada_openai") {
                    expect(s["perplexity"]).toBe(lls[0]);
                    expect(s["acc"]).toBe(s["filtered_resps"][0][1] === "True" ? 1 : 0);
                } else {
                    const gold = task === "winogrande" ? Number(s["doc"]["answer"]) - 1 : Number(s["target"]);
                    expect(s["acc"]).toBe(lls.indexOf(Math.max(...lls)) === gold ? 1 : 0);
                }
            }
            if (task === "lambada_openai") {
                expect(agg["perplexity,none"]).toBe(perplexity(records.map((s) => s["perplexity"])));
            }
            for (const metric of ["acc", "acc_norm"].filter((m) => `${m},none` in agg)) {
                expect(agg[`${metric},none`]).toBe(mean(records.map((s) => s[metric])));
            }
            expect(run.results["task_hashes"][task]).toBe(sha256Hex(records.map((s) => s["doc_hash"] + s["prompt_hash"] + s["target_hash"]).join("")));
        }
    });
});

describe("--model without --tasks, and a shared --use_cache", () => {
    it("--model alone evaluates the six Table-3 tasks", async () => {
        const r = await runInProcess(["--model", "fixtures/neox-mamba2", "--tokenizer", neoxTokenizerPath, "--data_dir", "fixtures/tasks", "--limit", "1", "--threads", "1"]);
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(/^mamba-eval: using (.*; )?no --tasks: the Table-3 tasks lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande$/m);
        for (const task of TASKS) expect(r.stdout).toMatch(new RegExp(`^\\|${task} *\\|`, "m"));
    });

    it("two processes sharing one cache at once finish with identical results and an intact cache", async () => {
        const cache = path.join(tmp, "shared-cache");
        const args = (out: string) => ["--model", "fixtures/neox-mamba1", "--tokenizer", neoxTokenizerPath, "--data_dir", "fixtures/tasks", "--threads", "1", "--use_cache", cache, "--output_path", out, "--log_samples"];
        const a = startCliChild(args(path.join(tmp, "cache-a")));
        const b = startCliChild(args(path.join(tmp, "cache-b")));
        const [ra, rb] = await Promise.all([a.done, b.done]);
        expect(ra.stderr).not.toMatch(/mamba-eval: (?!using)/);
        expect(rb.stderr).not.toMatch(/mamba-eval: (?!using)/);
        expect([ra.code, rb.code]).toEqual([0, 0]);
        const runA = readRun(path.join(tmp, "cache-a"));
        const runB = readRun(path.join(tmp, "cache-b"));
        expect(runB.results["results"]).toEqual(runA.results["results"]);
        expect(runB.samples).toEqual(runA.samples);
        // A third run answers everything from the cache, with the same numbers.
        const c = await runInProcess(args(path.join(tmp, "cache-c")));
        expect(c.code).toBe(0);
        expect(readRun(path.join(tmp, "cache-c")).results["results"]).toEqual(runA.results["results"]);
        const db = new Database(cacheFilePath(cache), { readonly: true });
        try {
            expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
            const keys = new Set((await taskSampleRequests()).map((r) => cacheKey(r)));
            const rows = db.prepare("SELECT key, logprob, greedy FROM loglikelihood").all() as { key: string; logprob: number; greedy: number }[];
            expect(new Set(rows.map((row) => row.key))).toEqual(keys);
            // Every cached value is the one the runs logged.
            const logged = new Map<string, number>();
            for (const records of Object.values(runA.samples)) {
                for (const s of records) {
                    Object.values(s["arguments"] as Record<string, { arg_0: string; arg_1: string }>).forEach((arg, i) => {
                        logged.set(cacheKey({ context: arg.arg_0, continuation: arg.arg_1 }), Number(s["filtered_resps"][i][0]));
                    });
                }
            }
            for (const row of rows) expect(row.logprob).toBe(logged.get(row.key));
        } finally {
            db.close();
        }
    });
});
