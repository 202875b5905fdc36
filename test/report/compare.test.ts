/**
 * compare: metric verdicts on hand-made results files with real-looking numbers (mamba-130m-like counts
 * over the real split sizes; stderr = lm-eval's mean_stderr), exact mode, stderr N/A, v0.4.2 files.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compareMain } from "../../src/cli/compareCommand.js";
import { combinedStderr, compareMetric, DEFAULT_COMPARE_OPTIONS } from "../../src/report/compareResults.js";
import { runCompare } from "../../src/report/runCompare.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const run = (name: string) => join(FIXTURES, "runs", name);
const opts = DEFAULT_COMPARE_OPTIONS;

function verdicts(report: ReturnType<typeof runCompare>): Record<string, string> {
    return Object.fromEntries(report.results.rows.map((r) => [`${r.task} ${r.metric}`, r.verdict]));
}

describe("compare: metric by metric", () => {
    it("a HellaSwag acc_norm drop of 3 combined stderr (3540 → 3338 of 10042) is a regression", () => {
        const report = runCompare(run("base"), run("drop"), opts);
        const row = report.results.rows.find((r) => r.task === "hellaswag" && r.metric === "acc_norm,none")!;
        // Hand-checked: Δ = −202/10042 = −0.0201155; se = sqrt(p(1−p)/(n−1)): p = 0.352519 → 0.0047678,
        // p = 0.332404 → 0.0047011; combined sqrt(2.27314e-5 + 2.21007e-5) = 0.0066957; Δ/se = −3.004
        expect(row.delta).toBeCloseTo(-202 / 10042, 15);
        expect(row.stderr).toBeCloseTo(0.0066957, 6);
        expect(row.deltaOverStderr).toBeCloseTo(-3.004, 3);
        expect(row.verdict).toBe("regression");
        expect(report.failed).toBe(true);
        expect(Object.values(verdicts(report)).filter((v) => v !== "same")).toEqual(["regression"]);
    });

    it("an unchanged rerun (same numbers, other date and commit) passes, also in exact mode", () => {
        const report = runCompare(run("base"), run("rerun"), { ...opts, exact: true });
        expect(report.results.rows).toHaveLength(11);
        expect(new Set(Object.values(verdicts(report)))).toEqual(new Set(["same"]));
        expect(report.results.missing).toEqual([]);
        expect(report.failed).toBe(false);
    });

    it("moves within noise pass: acc_norm −30 docs, piqa +9, ppl +0.25 (lower is better)", () => {
        const report = runCompare(run("base"), run("noise"), opts);
        const v = verdicts(report);
        expect(v["hellaswag acc_norm,none"]).toBe("within-noise");
        expect(v["piqa acc,none"]).toBe("within-noise");
        expect(v["arc_challenge acc_norm,none"]).toBe("within-noise");
        expect(v["winogrande acc,none"]).toBe("within-noise");
        expect(v["lambada_openai perplexity,none"]).toBe("within-noise");
        expect(report.failed).toBe(false);
    });

    it("the same within-noise moves fail with k = 0.1 (k is honoured), and ppl direction is lower-is-better", () => {
        const report = runCompare(run("base"), run("noise"), { ...opts, k: 0.1 });
        const v = verdicts(report);
        expect(v["hellaswag acc_norm,none"]).toBe("regression");
        expect(v["piqa acc,none"]).toBe("improved");
        expect(v["lambada_openai perplexity,none"]).toBe("regression"); // 16.045 → 16.292 is worse
        expect(report.failed).toBe(true);
    });

    it("a floor larger than the drop keeps it from failing", () => {
        const report = runCompare(run("base"), run("drop"), { ...opts, floor: 0.05 });
        expect(report.failed).toBe(false);
    });

    it("exact mode catches a 1-ulp change in arc_easy acc that normal mode calls same-within-noise", () => {
        const exact = runCompare(run("base"), run("ulp"), { ...opts, exact: true });
        const row = exact.results.rows.find((r) => r.task === "arc_easy" && r.metric === "acc,none")!;
        expect(row.baseline.value).toBe(0.4797979797979798);
        expect(row.current.value).toBe(0.47979797979797983);
        expect(row.verdict).toBe("changed");
        expect(exact.failed).toBe(true);
        expect(runCompare(run("base"), run("ulp"), opts).failed).toBe(false);
    });

    it("a folder stands for its newest results file", () => {
        const report = runCompare(run("base"), run("rerun"), opts);
        expect(report.baseline.path.endsWith("results_2026-03-02T10-15-42.118204.json")).toBe(true);
    });

    it("prints a readable table and returns exit status 1 on a regression", () => {
        let text = "";
        const code = compareMain({ baseline: run("base"), current: run("drop"), k: 2, floor: 0.001, exact: false, json: false, show: 5 }, (t) => { text += t; });
        expect(code).toBe(1);
        expect(text).toMatch(/\| Task +\| Metric +\| +Baseline \| +Current \| +Δ \| +Δ\/se \| Verdict +\|/);
        expect(text).toMatch(/\| hellaswag +\| acc_norm,none ↑ +\| +0\.3525 ± 0\.0048 \| +0\.3324 ± 0\.0047 \| −0\.0201 \| −3\.00 \| REGRESSION +\|/);
        expect(text.trimEnd().split("\n").at(-1)).toBe("FAIL: 1 metric(s) regressed: hellaswag acc_norm,none");
        let ok = "";
        expect(compareMain({ baseline: run("base"), current: run("rerun"), k: 2, floor: 0.001, exact: false, json: false, show: 5 }, (t) => { ok += t; })).toBe(0);
        expect(ok.trimEnd().split("\n").at(-1)).toBe("OK: no regression");
        expect(ok).toContain("\nprovenance differs: git_commit 937932f → a41c9e2\n");
    });

    it("a run with no task in common with the baseline fails: nothing compared is no evidence", () => {
        const dir = mkdtempSync(join(tmpdir(), "mamba-eval-compare-"));
        try {
            const empty = join(dir, "results_2026-03-01T00-00-00.000000.json");
            writeFileSync(empty, '{"results": {}}');
            let text = "";
            expect(compareMain({ baseline: run("base"), current: empty, k: 2, floor: 0.001, exact: false, json: false, show: 5 }, (t) => { text += t; })).toBe(1);
            expect(text.trimEnd().split("\n").at(-1)).toBe("FAIL: no task and metric in both files, nothing compared");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("--json gives the verdicts as data", () => {
        let text = "";
        compareMain({ baseline: run("base"), current: run("drop"), k: 2, floor: 0.001, exact: false, json: true, show: 5 }, (t) => { text += t; });
        const json = JSON.parse(text) as { failed: boolean; metrics: Array<{ task: string; metric: string; verdict: string; higher_is_better: boolean }> };
        expect(json.failed).toBe(true);
        const ppl = json.metrics.find((m) => m.metric === "perplexity,none")!;
        expect(ppl.higher_is_better).toBe(false);
        expect(json.metrics.filter((m) => m.verdict === "regression").map((m) => `${m.task} ${m.metric}`)).toEqual(["hellaswag acc_norm,none"]);
    });
});

describe("compare: stderr missing or N/A", () => {
    it("with stderr N/A only the floor applies (lm-eval v0.4.2 --limit 1 files)", () => {
        const report = runCompare(run("na-base"), run("na-current"), opts);
        const v = verdicts(report);
        expect(v["piqa acc,none"]).toBe("regression"); // 1 → 0
        // perplexity exp(2.203125) → exp(2.2041015625): +0.0088 > floor 0.001, worse (lower is better)
        expect(v["lambada_openai perplexity,none"]).toBe("regression");
        const ppl = report.results.rows.find((r) => r.metric === "perplexity,none")!;
        expect(ppl.stderr).toBeNull();
        expect(ppl.deltaOverStderr).toBeNull();
        expect(ppl.delta).toBeCloseTo(Math.exp(2.2041015625) - Math.exp(2.203125), 12);
    });

    it("floor-only verdicts: below the floor is noise, above it fails", () => {
        const hib = true;
        expect(compareMetric("t", "acc,none", { value: 0.5, stderr: null }, { value: 0.4995, stderr: null }, hib, opts).verdict).toBe("within-noise");
        expect(compareMetric("t", "acc,none", { value: 0.5, stderr: null }, { value: 0.498, stderr: null }, hib, opts).verdict).toBe("regression");
    });

    it("one side's stderr alone is used when the other has none", () => {
        expect(combinedStderr(0.01, null)).toBe(0.01);
        expect(combinedStderr(null, null)).toBeNull();
        expect(combinedStderr(0.03, 0.04)).toBeCloseTo(0.05, 15);
        const row = compareMetric("t", "acc,none", { value: 0.5, stderr: 0.01 }, { value: 0.485, stderr: null }, true, opts);
        expect(row.verdict).toBe("within-noise"); // 0.015 < 2 × 0.01
    });

    it("an unknown metric has no direction: a significant move either way fails as changed", () => {
        const up = compareMetric("t", "mystery,none", { value: 0.5, stderr: 0.001 }, { value: 0.6, stderr: 0.001 }, undefined, opts);
        expect(up.verdict).toBe("changed");
        expect(up.failed).toBe(true);
    });

    it("a value that became NaN is a regression", () => {
        const row = compareMetric("t", "perplexity,none", { value: 16.0, stderr: 0.5 }, { value: Number.NaN, stderr: null }, false, opts);
        expect(row.verdict).toBe("regression");
    });
});

describe("compare: lm-eval v0.4.2 files", () => {
    it("a v0.4.2 results.json (no higher_is_better, model_args string, alias last) compares with ours", () => {
        const report = runCompare(run("v042"), run("base"), { ...opts, exact: true });
        expect(report.baseline.modelId).toBe("state-spaces/mamba-130m");
        expect(report.baseline.higherIsBetter.size).toBe(0);
        expect(report.results.rows).toHaveLength(11);
        expect(report.results.rows.find((r) => r.metric === "perplexity,none")!.direction).toBe(false);
        expect(report.failed).toBe(false);
    });

    it("tasks and metrics present on one side only are reported (and fail only in exact mode)", () => {
        const table = join(FIXTURES, "table", "my-mamba-finetune");
        const report = runCompare(run("base"), table, opts);
        expect(report.results.missing).toEqual([{ task: "winogrande", metric: undefined, onlyIn: "baseline" }]);
        expect(report.failed).toBe(false);
        expect(runCompare(run("base"), table, { ...opts, exact: true }).failed).toBe(true);
    });
});
