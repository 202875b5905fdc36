/**
 * Per-request comparison of two `--log_samples` runs of the same model and tasks (run by
 * scripts/cuda/harness_check.sh on a GPU machine, bundled to plain JS):
 *
 *   node compareSamples.mjs BASELINE_DIR CURRENT_DIR REL_TOL
 *
 * Every samples_<task>_*.jsonl of the baseline folder (searched recursively) must have a counterpart with the
 * same documents and requests in the current folder. For each request's log-likelihood a and b the relative
 * difference |a − b| / max(1, |a|) must not exceed REL_TOL; is_greedy flags that differ are counted and
 * reported (near-ties may flip under bf16). Prints one line per task and exits 1 on any failure.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

interface SampleLine {
    doc_id: number;
    resps: [string, string][][];
}

/** One task's samples file in a results folder: samples_<task>_<date>.jsonl, searched recursively. */
function samplesFiles(dir: string): Map<string, string> {
    const found = new Map<string, string>();
    const walk = (d: string): void => {
        for (const entry of readdirSync(d)) {
            const p = path.join(d, entry);
            if (statSync(p).isDirectory()) walk(p);
            const m = /^samples_(.+)_\d{4}-\d\d-\d\dT[\d.-]+\.jsonl$/.exec(entry);
            if (m?.[1]) found.set(m[1], p);
        }
    };
    walk(dir);
    return found;
}

function readSamples(file: string): Map<number, SampleLine> {
    const out = new Map<number, SampleLine>();
    const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
    lines.forEach((line, i) => {
        const parsed = JSON.parse(line) as Partial<SampleLine>;
        if (typeof parsed.doc_id !== "number" || !Array.isArray(parsed.resps)) {
            throw new Error(`${file}:${i + 1}: expected doc_id (number) and resps (array)`);
        }
        out.set(parsed.doc_id, parsed as SampleLine);
    });
    return out;
}

function main(): number {
    const [baselineDir, currentDir, tolText] = process.argv.slice(2);
    const tol = Number(tolText);
    if (!baselineDir || !currentDir || !Number.isFinite(tol) || tol < 0) {
        process.stderr.write("compareSamples: usage: compareSamples.mjs BASELINE_DIR CURRENT_DIR REL_TOL\n");
        return 2;
    }
    const base = samplesFiles(baselineDir);
    const cur = samplesFiles(currentDir);
    if (base.size === 0) {
        process.stderr.write(`compareSamples: no samples_*.jsonl under ${baselineDir}\n`);
        return 1;
    }
    let failed = false;
    for (const [task, baseFile] of base) {
        const curFile = cur.get(task);
        if (!curFile) {
            process.stdout.write(`${task}: FAIL no samples file under ${currentDir}\n`);
            failed = true;
            continue;
        }
        const a = readSamples(baseFile);
        const b = readSamples(curFile);
        let requests = 0;
        let worst = 0;
        let greedyFlips = 0;
        let problem = a.size === b.size ? "" : `${a.size} vs ${b.size} documents`;
        for (const [doc, sa] of a) {
            const sb = b.get(doc);
            if (!sb || sb.resps.length !== sa.resps.length) {
                problem ||= `document ${doc} missing or with a different request count`;
                continue;
            }
            sa.resps.forEach((resp, r) => {
                const ra = resp[0];
                const rb = sb.resps[r]?.[0];
                if (!ra || !rb) return;
                const la = Number(ra[0]);
                const lb = Number(rb[0]);
                requests++;
                const rel = Math.abs(la - lb) / Math.max(1, Math.abs(la));
                if (!(rel <= worst)) worst = Number.isNaN(rel) ? Number.POSITIVE_INFINITY : rel;
                if (ra[1] !== rb[1]) greedyFlips++;
            });
        }
        const ok = problem === "" && worst <= tol;
        failed ||= !ok;
        process.stdout.write(
            `${task}: ${ok ? "ok  " : "FAIL"} ${requests} requests, worst relative ll difference ${worst.toExponential(2)} ` +
                `(limit ${tol}), is_greedy differing ${greedyFlips}${problem ? `; ${problem}` : ""}\n`,
        );
    }
    return failed ? 1 : 0;
}

process.exitCode = main();
