/**
 * The compare workflow as a library function: resolve both arguments to results files, read them,
 * compare metric by metric, and — when both runs have samples files next to them — request by request.
 */
import { compareResults, type CompareOptions, type ResultsComparison } from "./compareResults.js";
import { compareSamples, type SamplesComparison } from "./compareSamples.js";
import { resolveResultsFile } from "./locateResults.js";
import { readResultsFile, type ResultsRun } from "./resultsFile.js";
import { findSamplesFiles, readSamplesFile, type SampleRecord } from "./samplesFile.js";

export interface CompareReport {
    baseline: ResultsRun;
    current: ResultsRun;
    results: ResultsComparison;
    /** The samples comparison, when both runs logged samples for a common task. */
    samples: SamplesComparison | undefined;
    /** Why samples were not compared (or which tasks were). */
    samplesNote: string;
    /** Exact mode and some sample record differs. */
    samplesFailed: boolean;
    /** The comparison fails (exit status 1). */
    failed: boolean;
}

/** Compares BASELINE with CURRENT (each a results file or a folder holding them). */
export function runCompare(baselineArg: string, currentArg: string, options: CompareOptions): CompareReport {
    const baseline = readResultsFile(resolveResultsFile(baselineArg, "BASELINE"));
    const current = readResultsFile(resolveResultsFile(currentArg, "CURRENT"));
    const results = compareResults(baseline, current, options);

    const baseFiles = findSamplesFiles(baseline);
    const curFiles = findSamplesFiles(current);
    const common = baseFiles.map((f) => f.task).filter((task) => curFiles.some((f) => f.task === task));
    let samples: SamplesComparison | undefined;
    let samplesNote: string;
    if (common.length === 0) {
        samplesNote = baseFiles.length === 0 && curFiles.length === 0
            ? "not compared (no samples files next to either results file)"
            : `not compared (samples files for a common task are needed; baseline has ${baseFiles.length}, current has ${curFiles.length})`;
    } else {
        const load = (files: typeof baseFiles) => {
            const map = new Map<string, SampleRecord[]>();
            for (const f of files) if (common.includes(f.task)) map.set(f.task, readSamplesFile(f.path, f.task));
            return map;
        };
        samples = compareSamples(common, load(baseFiles), load(curFiles));
        samplesNote = `compared for ${common.join(", ")}`;
    }
    const samplesFailed = options.exact && samples !== undefined &&
        (samples.changed.length > 0 || samples.tasks.some((t) => t.onlyInBaseline > 0 || t.onlyInCurrent > 0));
    return { baseline, current, results, samples, samplesNote, samplesFailed, failed: results.failed || samplesFailed };
}
