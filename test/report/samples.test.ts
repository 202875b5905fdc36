/**
 * compare, request by request: hand-made --limit 4 runs of arc_easy and lambada_openai with samples files
 * in lm-eval's current JSONL layout and v0.4.2's JSON-array layout.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compareMain } from "../../src/cli/compareCommand.js";
import { DEFAULT_COMPARE_OPTIONS } from "../../src/report/compareResults.js";
import { runCompare } from "../../src/report/runCompare.js";
import { findSamplesFiles, readSamplesFile } from "../../src/report/samplesFile.js";
import { readResultsFile } from "../../src/report/resultsFile.js";
import { DataFormatError } from "../../src/errors.js";
import { parseSampleRecord } from "../../src/report/samplesFile.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "samples");
const opts = DEFAULT_COMPARE_OPTIONS;

describe("samples files", () => {
    it("finds the samples files of a results file by its datetime and reads both request layouts alike", () => {
        const run = readResultsFile(join(FIXTURES, "base", "state-spaces__mamba-130m", "results_2026-03-02T10-15-42.118204.json"));
        expect(run.provenance?.["dtype"]).toBe("float16"); // a `provenance` block (ours write `mamba_eval`)
        const files = findSamplesFiles(run);
        expect(files.map((f) => f.task)).toEqual(["arc_easy", "lambada_openai"]);
        const arc = readSamplesFile(files[0]!.path, "arc_easy");
        expect(arc).toHaveLength(4);
        const doc2 = arc[2]!;
        expect(doc2.docId).toBe(2);
        expect(doc2.requests.map((r) => r.continuation)).toEqual([" sound", " light", " chemical"]);
        expect(doc2.requests[0]!.context).toBe("Question: Which form of energy does a solar panel change into electricity?\nAnswer:");
        expect(doc2.requests.map((r) => r.logprob)).toEqual([-6.75, -4.140625, -5.87109375]);
        expect(doc2.metrics).toEqual(new Map([["acc", 1], ["acc_norm", 0]]));

        const legacy = readResultsFile(join(FIXTURES, "v042", "results.json"));
        const legacyFiles = findSamplesFiles(legacy);
        expect(legacyFiles.map((f) => f.task)).toEqual(["arc_easy"]);
        const legacyArc = readSamplesFile(legacyFiles[0]!.path, "arc_easy");
        expect(legacyArc[2]!.requests).toEqual(doc2.requests.map((r) => ({ ...r, response: expect.any(String) as string })));
        expect(legacyArc[2]!.docHash).toBeUndefined();
    });

    it("lambada's string responses carry is_greedy", () => {
        const file = join(FIXTURES, "base", "state-spaces__mamba-130m", "samples_lambada_openai_2026-03-02T10-15-42.118204.jsonl");
        const lam = readSamplesFile(file, "lambada_openai");
        expect(lam.map((r) => r.requests[0]!.isGreedy)).toEqual([true, false, true, true]);
        expect(lam[1]!.requests[0]!.continuation).toBe(" bag");
        expect(lam[1]!.metrics.get("acc")).toBe(0);
    });

    it("a malformed record names the file, line and field", () => {
        expect(() => parseSampleRecord({ doc_id: "3", arguments: {}, filtered_resps: [] }, "piqa", "s.jsonl:4"))
            .toThrow(new DataFormatError("s.jsonl:4: field doc_id: Invalid input: expected number, received string"));
        expect(() => parseSampleRecord({ doc_id: 3, target: 0, arguments: { gen_args_0: { arg_0: "a", arg_1: " b" } }, filtered_resps: [] }, "piqa", "s.jsonl:4"))
            .toThrow("s.jsonl:4: field filtered_resps: 0 responses for 1 requests in arguments");
    });
});

describe("compare with samples", () => {
    it("names the changed documents: arc_easy doc 1 (ll of choice 1 fell, acc 1 → 0) and lambada doc 3", () => {
        const report = runCompare(join(FIXTURES, "base"), join(FIXTURES, "changed"), opts);
        expect(report.samples).toBeDefined();
        const s = report.samples!;
        expect(s.tasks.map((t) => [t.task, t.compared, t.changed])).toEqual([["arc_easy", 4, 1], ["lambada_openai", 4, 1]]);
        expect(s.changed.map((d) => [d.task, d.docId])).toEqual([["arc_easy", 1], ["lambada_openai", 3]]);
        expect(s.changed[0]!.changes).toEqual([
            { kind: "logprob", index: 1, baseline: -13.6015625, current: -14.5390625 },
            { kind: "metric", name: "acc", baseline: 1, current: 0 },
            { kind: "metric", name: "acc_norm", baseline: 1, current: 0 },
        ]);
        expect(s.tasks[0]!.metricChanges).toEqual({ acc: 1, acc_norm: 1 });
        expect(s.tasks[1]!.maxAbsLogprobDelta).toBe(0.0009765625);
        // metrics over 4 docs: within noise, so the run passes; exact mode fails on the samples too
        expect(report.failed).toBe(false);
        expect(runCompare(join(FIXTURES, "base"), join(FIXTURES, "changed"), { ...opts, exact: true }).samplesFailed).toBe(true);
    });

    it("prints the first changed documents with their context and continuation shortened", () => {
        let text = "";
        compareMain({ baseline: join(FIXTURES, "base"), current: join(FIXTURES, "changed"), k: 2, floor: 0.001, exact: false, json: false, show: 1 }, (t) => { text += t; });
        expect(text).toContain("samples arc_easy: 4 docs compared, 1 changed; 1 ll changed (max |Δll| 0.938); metric changes: acc 1, acc_norm 1");
        expect(text).toContain("first changed documents (1 of 2):");
        expect(text).toContain("  arc_easy doc 1: ll[1] -13.6015625 → -14.5390625; acc 1 → 0; acc_norm 1 → 0");
        expect(text).toContain('      "…side of the glass. Where does this water come from?\\nAnswer:" ⟶ " the ice inside the glass"');
        expect(text).not.toContain("lambada_openai doc 3");
    });

    it("a v0.4.2 run with identical log-likelihoods shows no changed documents (hashes absent there are skipped)", () => {
        const report = runCompare(join(FIXTURES, "v042"), join(FIXTURES, "base"), { ...opts, exact: true });
        expect(report.samplesNote).toBe("compared for arc_easy");
        expect(report.samples!.changed).toEqual([]);
        expect(report.samples!.tasks[0]!.compared).toBe(4);
        expect(report.results.rows.every((r) => r.verdict === "same")).toBe(true);
        expect(report.failed).toBe(false);
    });

    it("says why samples were not compared when one side has none", () => {
        const report = runCompare(join(FIXTURES, "base"), join(dirname(FIXTURES), "runs", "base"), opts);
        expect(report.samples).toBeUndefined();
        expect(report.samplesNote).toBe("not compared (samples files for a common task are needed; baseline has 2, current has 0)");
    });
});
