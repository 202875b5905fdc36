/**
 * openbookqa on the bundled samples against lm-eval's procedure in float64 (fixtures/lm-eval-tasks/openbookqa/<model>.json:
 * scripts/fixtures/lm_eval_reference.py on scripts/fixtures/openbookqa_sample_requests.json;
 * see fixtures/lm-eval-tasks/README.md): the CLI's per-request ll within 1e-3, is_greedy identical, and acc / acc_norm
 * of every document identical to what the reference's numbers give. Skipped, visibly, until the reference files exist.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { processResults } from "../../src/evaluator/requests.js";
import { loadTaskDocs } from "../../src/tasks/datasets.js";
import { getTask } from "../../src/tasks/registry.js";
import { taskSampleRequests } from "../../scripts/fixtures/dump_task_requests.js";
import { fixtures, repoRoot } from "./helpers.js";
import { BUNDLED_TOKENIZER } from "../testData.js";

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

const tokenizer = BUNDLED_TOKENIZER;
const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-obqa-ref-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(["neox-mamba1", "neox-mamba2"] as const)("openbookqa on the bundled samples vs lm-eval in float64 (%s)", (name) => {
    const file = path.join(repoRoot, "fixtures/lm-eval-tasks/openbookqa", `${name}.json`);
    it.skipIf(!existsSync(file))("per-request ll within 1e-3, is_greedy, acc and acc_norm identical", async () => {
        const reference = (JSON.parse(readFileSync(file, "utf8")) as { results: ReferenceResult[] }).results;
        const requests = await taskSampleRequests(fixtures, ["openbookqa"]);
        expect(reference.map((r) => [r.task, r.doc_id, r.idx, r.context, r.continuation])).toEqual(requests.map((r) => [r.task, r.doc_id, r.idx, r.context, r.continuation]));
        expect(reference.filter((r) => r.error !== undefined)).toEqual([]);

        const out = path.join(tmp, name);
        let stderr = "";
        const code = await main(
            ["--model", `fixtures/${name}`, "--tokenizer", tokenizer, "--data_dir", fixtures, "--tasks", "openbookqa", "--threads", "1", "--output_path", out, "--log_samples"],
            { out: () => undefined, err: (t) => void (stderr += t), errIsTTY: false },
        );
        expect(stderr).not.toMatch(/mamba-eval: (?!using)/);
        expect(code).toBe(0);
        const dir = path.join(out, readdirSync(out)[0]!);
        const task = getTask("openbookqa");
        const docs = await loadTaskDocs(task, { dataDir: fixtures });
        const samplesFile = readdirSync(dir).find((f) => f.startsWith("samples_openbookqa_"))!;
        const records = readFileSync(path.join(dir, samplesFile), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(records).toHaveLength(docs.length);
        records.forEach((record, docId) => {
            const refs = reference.filter((r) => r.doc_id === docId).sort((a, b) => a.idx - b.idx);
            const ours = record["filtered_resps"] as [string, string][];
            expect(ours).toHaveLength(refs.length);
            refs.forEach((ref, i) => {
                expect(Math.abs(Number(ours[i]![0]) - ref.ll!), `doc ${docId} idx ${i}`).toBeLessThan(1e-3);
                expect(ours[i]![1], `doc ${docId} idx ${i}`).toBe(ref.is_greedy ? "True" : "False");
            });
            const expected = processResults(task, docs[docId]!, refs.map((r) => ({ logprob: r.ll!, isGreedy: r.is_greedy! })), false);
            expect([docId, record["acc"], record["acc_norm"]]).toEqual([docId, expected["acc"], expected["acc_norm"]]);
            expect(record["target"]).toBe(String(task.docToTarget(docs[docId]!)));
        });
    });
});
