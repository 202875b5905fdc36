/**
 * The CLI run on the bundled samples against lm-eval's procedure in float64 (fixtures/lm-eval-tasks/<model>.json:
 * scripts/fixtures/lm_eval_reference.py on scripts/fixtures/task_sample_requests.json, run on the GPU machine):
 * every request's ll within 1e-3 and is_greedy identical; every per-document metric identical to what the
 * reference's numbers give (the lambada perplexity item is the ll itself, so within 1e-3).
 * Skipped, visibly, until the reference files are committed.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { isMultipleInput, processResults } from "../../src/evaluator/requests.js";
import { loadTaskDocs } from "../../src/tasks/datasets.js";
import { getTask } from "../../src/tasks/registry.js";
import { taskSampleRequests } from "../../scripts/fixtures/dump_task_requests.js";
import { neoxTokenizerPath, repoRoot } from "./helpers.js";

interface ReferenceResult {
    task: string;
    doc_id: number;
    idx: number;
    context: string;
    continuation: string;
    ll?: number;
    is_greedy?: boolean;
    error?: string;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-ref-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(["neox-mamba1", "neox-mamba2"] as const)("the run on the bundled samples vs lm-eval in float64 (%s)", (name) => {
    const file = path.join(repoRoot, "fixtures/lm-eval-tasks", `${name}.json`);
    it.skipIf(!existsSync(file))("per-request ll within 1e-3, is_greedy and per-document metrics identical", async () => {
        const reference = (JSON.parse(readFileSync(file, "utf8")) as { results: ReferenceResult[] }).results;
        // The reference was computed on exactly the requests the harness builds today.
        const requests = await taskSampleRequests();
        expect(reference.map((r) => [r.task, r.doc_id, r.idx, r.context, r.continuation])).toEqual(requests.map((r) => [r.task, r.doc_id, r.idx, r.context, r.continuation]));
        expect(reference.filter((r) => r.error !== undefined)).toEqual([]);

        const out = path.join(tmp, name);
        let stderr = "";
        const code = await main(
            ["--model", `fixtures/${name}`, "--tokenizer", neoxTokenizerPath, "--data_dir", "fixtures/tasks", "--threads", "1", "--output_path", out, "--log_samples"],
            { out: () => undefined, err: (t) => void (stderr += t), errIsTTY: false },
        );
        expect(stderr).not.toMatch(/mamba-eval: (?!using)/);
        expect(code).toBe(0);
        const dir = path.join(out, readdirSync(out)[0]!);
        for (const taskName of new Set(reference.map((r) => r.task))) {
            const task = getTask(taskName);
            const docs = await loadTaskDocs(task, { dataDir: path.join(repoRoot, "fixtures/tasks") });
            const samplesFile = readdirSync(dir).find((f) => f.startsWith(`samples_${taskName}_`))!;
            const records = readFileSync(path.join(dir, samplesFile), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
            expect(records).toHaveLength(docs.length);
            records.forEach((record, docId) => {
                const refs = reference.filter((r) => r.task === taskName && r.doc_id === docId).sort((a, b) => a.idx - b.idx);
                const ours = record["filtered_resps"] as [string, string][];
                expect(ours).toHaveLength(refs.length);
                refs.forEach((ref, i) => {
                    expect(Math.abs(Number(ours[i]![0]) - ref.ll!), `${taskName} doc ${docId} idx ${i}`).toBeLessThan(1e-3);
                    expect(ours[i]![1], `${taskName} doc ${docId} idx ${i}`).toBe(ref.is_greedy ? "True" : "False");
                });
                const expected = processResults(task, docs[docId]!, refs.map((r) => ({ logprob: r.ll!, isGreedy: r.is_greedy! })), isMultipleInput(task, docs));
                for (const [metric, value] of Object.entries(expected)) {
                    if (metric === "perplexity") expect(Math.abs((record[metric] as number) - value)).toBeLessThan(1e-3);
                    else expect(record[metric], `${taskName} doc ${docId} ${metric}`).toBe(value);
                }
            });
        }
    });
});
