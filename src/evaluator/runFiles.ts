/**
 * A run's files under --output_path, named as lm-eval names them (results_<date id>.json, samples_<task>_<date
 * id>.jsonl, or <name>_<date id>.json for a .json --output_path; the date id is Python's
 * `datetime.isoformat().replace(":", "-")` of the run's start, microseconds included) and never written over an
 * existing file: every file is written to an exclusive temporary file first, then all of them are linked into
 * place under one date id, each link failing if its name exists. When a name is taken (another run that started
 * in the same microsecond, or a file already there), the files linked so far are removed and the next microsecond
 * is tried, so names stay unique, keep lm-eval's shape and still sort by start time. The samples files are placed
 * before the results file, so a results file never appears without its samples.
 */
import path from "node:path";
import { AtomicFileWriter, FileExistsError } from "../io/atomicWrite.js";
import { rmSync } from "node:fs";
import { fileDateIdFromMicros, outputLocation } from "./results.js";
import { samplesFileName } from "./samples.js";

/** One file of a run: its content, and its name for a date id. */
interface PendingFile {
    writer: AtomicFileWriter;
    pathFor: (dateId: string) => string;
}

/** Most date ids tried before giving up (a thousand runs starting in the same millisecond). */
const MAX_ATTEMPTS = 1000;

/** The paths written and the date id they share. */
export interface WrittenRunFiles {
    dateId: string;
    resultsFile: string;
    samplesFiles: string[];
}

/**
 * Writes the results JSON and the samples JSONL of a run (see the module comment). `startMicros` is the run's start
 * (results.ts nowMicros); the first date id tried is its own. Write errors are thrown as they come (with code).
 */
export function writeRunFiles(
    outputPath: string,
    modelNameSanitized: string,
    startMicros: number,
    results: string,
    samples: readonly { task: string; jsonl: string }[],
): WrittenRunFiles {
    const where = (dateId: string) => outputLocation(outputPath, modelNameSanitized, dateId);
    const pending: PendingFile[] = [];
    try {
        for (const s of samples) {
            const writer = new AtomicFileWriter(path.join(where("x").dir, samplesFileName(s.task, "x")));
            pending.push({ writer, pathFor: (id) => path.join(where(id).dir, samplesFileName(s.task, id)) });
            writer.write(s.jsonl);
        }
        const resultsWriter = new AtomicFileWriter(where("x").resultsFile);
        pending.push({ writer: resultsWriter, pathFor: (id) => where(id).resultsFile });
        resultsWriter.write(results);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            const dateId = fileDateIdFromMicros(startMicros + attempt);
            const placed: string[] = [];
            try {
                for (const file of pending) {
                    const target = file.pathFor(dateId);
                    file.writer.place(target);
                    placed.push(target);
                }
            } catch (e) {
                for (const file of placed) rmSync(file, { force: true });
                if (e instanceof FileExistsError) continue;
                throw e;
            }
            return { dateId, resultsFile: placed[placed.length - 1]!, samplesFiles: placed.slice(0, -1) };
        }
        throw new FileExistsError(where(fileDateIdFromMicros(startMicros)).resultsFile);
    } finally {
        for (const file of pending) file.writer.abort();
    }
}
