/**
 * Fuzzing the task data path: copies of the task files (fixtures/tasks/*, and the first lines of the real files in
 * ../shared/data) are mutated — byte flips, truncations, a JSON field of one line deleted or given another type,
 * lines deleted, duplicated or replaced by garbage, labels edited — and each task is loaded the way a run loads
 * it (loadTaskDocs with --data_dir → the requests → gold index and per-document metrics from synthetic answers).
 *
 * Each case must end in either a clean error (a src/errors.ts class, one line) or well-formed requests: strings
 * only, one request per choice, a gold index the metrics can use, finite metrics; and, when the mutation left the
 * documents as they were (e.g. it only touched whitespace between JSON tokens), exactly the unmutated requests.
 *
 * FUZZ_CASES (default 300) and FUZZ_SEED replay or lengthen the run.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTaskRequests, goldIndex, isMultipleInput, processResults } from "../../src/evaluator/requests.js";
import { loadTaskDocs } from "../../src/tasks/datasets.js";
import { localDataFiles } from "../../src/tasks/localFiles.js";
import { getTask } from "../../src/tasks/registry.js";
import type { Doc, TaskSpec } from "../../src/tasks/types.js";
import { describeFailures, FUZZ_CASES, FUZZ_SEED, fuzzTimeout, OutcomeTally, saveFailures, uncleanError, type FuzzFailure } from "./fuzzCase.js";
import { byteFlip, editJsonValue, Prng, truncate, type Mutation, type Mutator } from "./mutators.js";
import { taskDataDir } from "../testData.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const FIXTURE_TASKS = path.join(REPO, "fixtures/tasks");
/** The real task data (MAMBA_EVAL_DATA): its first lines are fuzzed too when it is given. */
const SHARED_DATA = taskDataDir;
/** Lines of each shared file copied (the mutations need documents, not thousands of them). */
const SHARED_LINES = 25;

const ALL_TASKS = ["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande", "openbookqa"];
/** ../shared/data has no hellaswag jsonl (only a derived text file), so it serves the other six. */
const SHARED_TASKS = ["lambada_openai", "piqa", "arc_easy", "arc_challenge", "winogrande", "openbookqa"];

/** What a task load produced, in a comparable form. */
interface TaskOutcome {
    docs: string;
    requests: string;
}

/** The run path for one task: documents → requests → gold and metrics; throws what the code under test throws. */
async function loadTask(task: TaskSpec, dataDir: string): Promise<{ outcome: TaskOutcome; problem: string | undefined }> {
    const docs = await loadTaskDocs(task, { dataDir });
    const requests = buildTaskRequests(task, docs);
    return { outcome: { docs: JSON.stringify(docs), requests: JSON.stringify(requests) }, problem: checkRequests(task, docs, requests) };
}

/** Why the requests are not well formed, or undefined. */
function checkRequests(task: TaskSpec, docs: readonly Doc[], requests: ReturnType<typeof buildTaskRequests>): string | undefined {
    for (const r of requests) {
        if (typeof r.context !== "string" || typeof r.continuation !== "string") return `request of doc ${r.docId} has a non-string context or continuation`;
    }
    const multipleInput = isMultipleInput(task, docs);
    for (let docId = 0; docId < docs.length; docId++) {
        const doc = docs[docId]!;
        const mine = requests.filter((r) => r.docId === docId);
        if (task.outputType === "loglikelihood") {
            if (mine.length !== 1) return `doc ${docId}: ${mine.length} requests, expected 1`;
            const metrics = processResults(task, doc, [{ logprob: -1.5, isGreedy: true }], multipleInput);
            if (!Object.values(metrics).every(Number.isFinite)) return `doc ${docId}: non-finite metrics ${JSON.stringify(metrics)}`;
            continue;
        }
        const choices = task.docToChoice!(doc);
        if (!Array.isArray(choices) || choices.length === 0 || !choices.every((c) => typeof c === "string")) return `doc ${docId}: choices are not a non-empty list of strings`;
        if (mine.length !== choices.length) return `doc ${docId}: ${mine.length} requests for ${choices.length} choices`;
        const gold = goldIndex(task, doc, choices, multipleInput);
        if (!Number.isInteger(gold) || gold >= choices.length) return `doc ${docId}: gold index ${gold} for ${choices.length} choices`;
        const answers = choices.map((_, i) => ({ logprob: -1 - i, isGreedy: false }));
        const metrics = processResults(task, doc, answers, multipleInput);
        if (!Object.values(metrics).every((v) => v === 0 || v === 1)) return `doc ${docId}: metrics ${JSON.stringify(metrics)} are not 0/1`;
    }
    return undefined;
}

/** Splits into lines, keeping a final newline's absence. */
function lines(input: Buffer): string[] {
    return input.toString("utf8").split("\n");
}

/** One line of a JSON-lines file: a field deleted or given another type (deep inside objects and lists too). */
const jsonlFieldEdit: Mutator = (input, rng) => {
    const all = lines(input);
    const candidates = all.map((l, i) => [l, i] as const).filter(([l]) => l.trim().startsWith("{"));
    if (candidates.length === 0) return byteFlip(input, rng);
    const [text, i] = rng.pick(candidates);
    const { doc, what } = editJsonValue(JSON.parse(text), rng);
    all[i] = JSON.stringify(doc);
    return { bytes: Buffer.from(all.join("\n")), what: `line ${i + 1}: ${what}` };
};

/** Whitespace inserted between JSON tokens of one line: the documents stay the same. */
const jsonlWhitespace: Mutator = (input, rng) => {
    const all = lines(input);
    const candidates = all.map((l, i) => [l, i] as const).filter(([l]) => l.trim().startsWith("{"));
    if (candidates.length === 0) return byteFlip(input, rng);
    const [text, i] = rng.pick(candidates);
    all[i] = rng.int(2) === 0 ? JSON.stringify(JSON.parse(text), null, 0).replace(/^\{/, "{ \t") : `  ${text}\t `;
    return { bytes: Buffer.from(all.join("\n")), what: `line ${i + 1}: whitespace added` };
};

/** Line-level edits: delete, duplicate, swap, blank, garbage, CRLF endings. */
const lineEdit: Mutator = (input, rng) => {
    const all = lines(input);
    const i = rng.int(all.length);
    const kind = rng.int(6);
    switch (kind) {
        case 0: all.splice(i, 1); return { bytes: Buffer.from(all.join("\n")), what: `line ${i + 1} deleted` };
        case 1: all.splice(i, 0, all[i]!); return { bytes: Buffer.from(all.join("\n")), what: `line ${i + 1} duplicated` };
        case 2: {
            const j = rng.int(all.length);
            [all[i], all[j]] = [all[j]!, all[i]!];
            return { bytes: Buffer.from(all.join("\n")), what: `lines ${i + 1} and ${j + 1} swapped` };
        }
        case 3: {
            const garbage = rng.pick(["{", "[]", "null", "42", '"text"', "{}", "\u0000\u0001", "\uFEFF{}", "2", "-1", "0.5", "1 0"]);
            all.splice(i, 0, garbage);
            return { bytes: Buffer.from(all.join("\n")), what: `${JSON.stringify(garbage)} inserted at line ${i + 1}` };
        }
        case 4: return { bytes: Buffer.from(all.join("\r\n")), what: "CRLF line endings" };
        default: all.splice(i, 0, ""); return { bytes: Buffer.from(all.join("\n")), what: `blank line inserted at ${i + 1}` };
    }
};

/** Where a task's files are copied and mutated. */
interface TaskCopy {
    label: string;
    task: TaskSpec;
    dataDir: string;
    files: string[];
    originals: Map<string, Buffer>;
    baseline: TaskOutcome;
}

function mutatorsFor(file: string): Array<[Mutator, number]> {
    if (file.endsWith(".jsonl")) return [[jsonlFieldEdit, 6], [lineEdit, 3], [jsonlWhitespace, 1], [byteFlip, 3], [truncate, 2]];
    return [[lineEdit, 4], [byteFlip, 3], [truncate, 1]];
}

describe("task data fuzzing", () => {
    let root: string;
    const copies: TaskCopy[] = [];

    beforeAll(async () => {
        root = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-fuzz-tasks-"));
        const sources: Array<[string, string, string[], number | undefined]> = [
            ["fixtures", FIXTURE_TASKS, ALL_TASKS, undefined],
            ...(SHARED_DATA !== undefined ? [["shared", SHARED_DATA, SHARED_TASKS, SHARED_LINES] as [string, string, string[], number]] : []),
        ];
        for (const [source, from, tasks, keepLines] of sources) {
            for (const name of tasks) {
                const task = getTask(name);
                const dataDir = path.join(root, `${source}-${name}`);
                const files = localDataFiles(name);
                const originals = new Map<string, Buffer>();
                for (const f of files) {
                    mkdirSync(path.dirname(path.join(dataDir, f)), { recursive: true });
                    if (keepLines === undefined) cpSync(path.join(from, f), path.join(dataDir, f));
                    else writeFileSync(path.join(dataDir, f), readFileSync(path.join(from, f), "utf8").split("\n").slice(0, keepLines).join("\n") + "\n");
                    originals.set(f, readFileSync(path.join(dataDir, f)));
                }
                const { outcome, problem } = await loadTask(task, dataDir);
                if (problem) throw new Error(`unmutated ${source} ${name}: ${problem}`);
                copies.push({ label: `${source}/${name}`, task, dataDir, files, originals, baseline: outcome });
            }
        }
    });
    afterAll(() => {
        if (root) rmSync(root, { recursive: true, force: true });
    });

    it("every unmutated copy loads into requests (the baseline)", () => {
        expect(copies.map((c) => c.label)).toHaveLength(ALL_TASKS.length + (SHARED_DATA !== undefined ? SHARED_TASKS.length : 0));
        for (const c of copies) expect(JSON.parse(c.baseline.requests).length).toBeGreaterThan(0);
    });

    it(`${FUZZ_CASES} random mutations end in a clean error or well-formed requests`, async () => {
        const failures: FuzzFailure[] = [];
        const tally = new OutcomeTally();
        for (let k = 0; k < FUZZ_CASES; k++) {
            const seed = FUZZ_SEED + k;
            const rng = new Prng(seed);
            const copy = rng.pick(copies);
            const file = rng.pick(copy.files);
            const original = copy.originals.get(file)!;
            const mutation: Mutation = rng.pickWeighted(mutatorsFor(file))(original, rng);
            const target = path.join(copy.dataDir, file);
            writeFileSync(target, mutation.bytes);
            let problem: string | undefined;
            try {
                const result = await loadTask(copy.task, copy.dataDir);
                if (result.problem) {
                    problem = result.problem;
                    tally.add("malformed requests");
                } else if (result.outcome.docs === copy.baseline.docs) {
                    tally.add("same documents");
                    if (result.outcome.requests !== copy.baseline.requests) problem = "same documents, different requests";
                } else {
                    tally.add("changed documents, well-formed requests");
                }
            } catch (error) {
                problem = uncleanError(error);
                tally.add(problem ? "unclean error" : `clean ${(error as Error).name}`);
            } finally {
                writeFileSync(target, original);
            }
            if (problem) failures.push({ seed, target: `${copy.label}/${file}`, mutation: mutation.what, problem });
        }
        saveFailures(failures);
        console.log(`task data fuzz: ${FUZZ_CASES} cases (seed ${FUZZ_SEED}): ${tally}`);
        expect(failures, describeFailures(failures)).toEqual([]);
    }, fuzzTimeout(FUZZ_CASES, 10));
});
