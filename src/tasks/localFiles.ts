/**
 * `--data_dir DIR`: the tasks' original published files, converted to the Hugging Face dataset's row schema
 * (the doc dicts lm-eval's functions see, with the HF column order and types, since docs are logged and hashed).
 *
 * Layout (that of fixtures/tasks, the bundled samples):
 *   lambada_openai/lambada_test.jsonl                {text}                      → {text}
 *   hellaswag/hellaswag_val.jsonl                    rowanz/hellaswag schema     → {ind, activity_label, ctx_a,
 *                                                                                   ctx_b, ctx, endings, source_id,
 *                                                                                   split, split_type, label: "<n>"}
 *   piqa/valid.jsonl + piqa/valid-labels.lst         {goal, sol1, sol2} + 0/1    → {goal, sol1, sol2, label: int}
 *   arc/ARC-Easy-Test.jsonl, arc/ARC-Challenge-Test.jsonl
 *                                                    ARC-V1 {id, question{stem, choices[{text,label}]}, answerKey}
 *                                                                                → {id, question, choices{text[],
 *                                                                                   label[]}, answerKey}
 *   winogrande/dev.jsonl                             {qID, sentence, option1, option2, answer}
 *                                                                                → {sentence, option1, option2, answer}
 *   openbookqa/test.jsonl                            either the hub's schema (config main)
 *                                                    {id, question_stem, choices{text[], label[]}, answerKey}
 *                                                    or the original release's Data/Main/test.jsonl
 *                                                    {id, question{stem, choices[{text,label}]}, answerKey}
 *                                                                                → {id, question_stem, choices{text[],
 *                                                                                   label[]}, answerKey}
 *
 * API: `localDataFiles(taskName)` (relative paths read), `loadLocalRows(dataDir, taskName)` → rows before
 * process_docs, `loadLocalSource` → the same with each row's file:line. A missing or malformed file throws
 * DataFormatError naming the file and line: a file that is not a regular file (a FIFO is never opened for a blocking
 * read), one over 512 MiB, bytes that are not UTF-8 (never replaced silently), a file without any document.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { DataFormatError } from "../errors.js";
import { decodeUtf8Strict, FileAccessError, readSmallFile, SIZE_LIMITS } from "../io/safeFile.js";
import type { Doc, DocValue } from "./types.js";

type RowConverter = (record: unknown, where: string) => Doc;

interface LocalSource {
    /** Main jsonl file, relative to the data dir. */
    file: string;
    convert: RowConverter;
    /** piqa only: labels file aligned by line. */
    labels?: string;
}

const SOURCES: Readonly<Record<string, LocalSource>> = {
    lambada_openai: { file: "lambada_openai/lambada_test.jsonl", convert: (r, w) => ({ text: str(r, "text", w) }) },
    hellaswag: { file: "hellaswag/hellaswag_val.jsonl", convert: hellaswagRow },
    piqa: {
        file: "piqa/valid.jsonl",
        labels: "piqa/valid-labels.lst",
        convert: (r, w) => ({ goal: str(r, "goal", w), sol1: str(r, "sol1", w), sol2: str(r, "sol2", w) }),
    },
    arc_easy: { file: "arc/ARC-Easy-Test.jsonl", convert: arcRow },
    arc_challenge: { file: "arc/ARC-Challenge-Test.jsonl", convert: arcRow },
    winogrande: {
        file: "winogrande/dev.jsonl",
        convert: (r, w) => ({
            sentence: str(r, "sentence", w),
            option1: str(r, "option1", w),
            option2: str(r, "option2", w),
            answer: str(r, "answer", w),
        }),
    },
    openbookqa: { file: "openbookqa/test.jsonl", convert: openbookqaRow },
};

/** The files (relative to the data dir) a task reads. */
export function localDataFiles(taskName: string): string[] {
    const source = sourceOf(taskName);
    return source.labels ? [source.file, source.labels] : [source.file];
}

/** Reads a task's original file(s) under `dataDir` and returns HF-schema rows in file order. */
export async function loadLocalRows(dataDir: string, taskName: string): Promise<Doc[]> {
    return (await loadLocalSource(dataDir, taskName)).rows;
}

/** loadLocalRows, with the "file:line" each row was read from (for messages about a document). */
export async function loadLocalSource(dataDir: string, taskName: string): Promise<{ rows: Doc[]; locations: string[] }> {
    const source = sourceOf(taskName);
    const file = path.join(dataDir, source.file);
    const lines = await readLines(file);
    if (lines.length === 0) throw new DataFormatError(`${file}: holds no documents (the file is empty)`);
    const locations = lines.map(({ line }) => `${file}:${line}`);
    const rows = lines.map(({ text }, i) => source.convert(parseJson(text, locations[i]!), locations[i]!));
    if (source.labels) {
        const labelFile = path.join(dataDir, source.labels);
        const labels = await readLines(labelFile);
        if (labels.length !== rows.length) {
            throw new DataFormatError(`${labelFile}: has ${labels.length} labels but ${file} has ${rows.length} documents`);
        }
        labels.forEach(({ text, line }, i) => {
            const label = text.trim();
            if (label !== "0" && label !== "1") throw new DataFormatError(`${labelFile}:${line}: expected a label 0 or 1, got ${JSON.stringify(text)}`);
            rows[i]!["label"] = Number(label);
        });
    }
    return { rows, locations };
}

function sourceOf(taskName: string): LocalSource {
    const source = SOURCES[taskName];
    if (!source) throw new DataFormatError(`no local data layout for task "${taskName}"`);
    return source;
}

async function readLines(file: string): Promise<{ text: string; line: number }[]> {
    let content: string;
    try {
        content = decodeUtf8Strict(await readSmallFile(file, { limit: SIZE_LIMITS.taskData, what: "a task data file" }), file);
    } catch (error) {
        if (error instanceof FileAccessError && error.code !== "ENOENT") throw new DataFormatError(error.message);
        const code = (error as NodeJS.ErrnoException).code;
        // A folder may hold HellaSwag only in llama.cpp's derived text form (hellaswag_val_full.txt.bz2), which lacks
        // ctx_a/ctx_b and so cannot give lm-eval's prompts: say so instead of a bare ENOENT.
        const derived = path.join(path.dirname(file), "hellaswag_val_full.txt.bz2");
        const hint = code === "ENOENT" && existsSync(derived)
            ? `; the folder only has ${path.basename(derived)}, a derived form without ctx_a/ctx_b that cannot reproduce ` +
              "lm-eval's prompts: add rowanz/hellaswag's hellaswag_val.jsonl, or leave out --data_dir to use the HF dataset"
            : "";
        throw new DataFormatError(`${file}: cannot read the data file (${code ?? String(error)})${hint}`);
    }
    let lines = 0;
    for (let at = content.indexOf("\n"); at >= 0; at = content.indexOf("\n", at + 1)) {
        if (++lines > MAX_DATA_LINES) {
            throw new DataFormatError(`${file}: more than ${MAX_DATA_LINES} lines; the task data files have at most tens of thousands`);
        }
    }
    if (content.startsWith("\uFEFF")) content = content.slice(1);  // a UTF-8 byte order mark, as label files' trim drops it
    const out: { text: string; line: number }[] = [];
    content.split("\n").forEach((raw, i) => {
        const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (text.trim() !== "") out.push({ text, line: i + 1 });
    });
    return out;
}

/** Lines a task data file may have (hellaswag's 10 042 documents are the most of any task's split). */
const MAX_DATA_LINES = 2_000_000;

function parseJson(text: string, where: string): unknown {
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (e) {
        throw new DataFormatError(`${where}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
    }
    checkWellFormed(value, where, "");
    return value;
}

/**
 * Refuses a string holding an unpaired UTF-16 surrogate (a `\ud800` escape is valid JSON but not Unicode text): the
 * tokenizer would silently read it as U+FFFD, where lm-eval's fails.
 */
function checkWellFormed(value: unknown, where: string, at: string): void {
    if (typeof value === "string") {
        const lone = /\p{Cs}/u.exec(value);
        if (lone) {
            const code = lone[0].charCodeAt(0).toString(16);
            throw new DataFormatError(`${where}: ${at === "" ? "the line" : `field ${at}`} holds an unpaired surrogate (\\u${code}), not valid Unicode text`);
        }
    } else if (Array.isArray(value)) {
        value.forEach((v, i) => checkWellFormed(v, where, `${at}[${i}]`));
    } else if (value !== null && typeof value === "object") {
        for (const [k, v] of Object.entries(value)) checkWellFormed(v, where, at === "" ? `"${k}"` : `${at}.${k}`);
    }
}

function field(record: unknown, key: string, where: string): unknown {
    if (record === null || typeof record !== "object" || Array.isArray(record)) throw new DataFormatError(`${where}: expected a JSON object`);
    const value = (record as Record<string, unknown>)[key];
    if (value === undefined) throw new DataFormatError(`${where}: missing field "${key}"`);
    return value;
}

function str(record: unknown, key: string, where: string): string {
    const value = field(record, key, where);
    if (typeof value !== "string") throw new DataFormatError(`${where}: field "${key}" must be a string`);
    return value;
}

function int(record: unknown, key: string, where: string): number {
    const value = field(record, key, where);
    if (typeof value !== "number" || !Number.isInteger(value)) throw new DataFormatError(`${where}: field "${key}" must be an integer`);
    return value;
}

function hellaswagRow(r: unknown, where: string): Doc {
    const endings = field(r, "endings", where);
    if (!Array.isArray(endings) || !endings.every((e) => typeof e === "string")) {
        throw new DataFormatError(`${where}: field "endings" must be a list of strings`);
    }
    const label = field(r, "label", where);
    if (!(typeof label === "number" && Number.isInteger(label)) && !(typeof label === "string" && /^[0-9]+$/.test(label))) {
        throw new DataFormatError(`${where}: field "label" must be an integer index`);
    }
    return {
        ind: int(r, "ind", where),
        activity_label: str(r, "activity_label", where),
        ctx_a: str(r, "ctx_a", where),
        ctx_b: str(r, "ctx_b", where),
        ctx: str(r, "ctx", where),
        endings: endings as string[],
        source_id: str(r, "source_id", where),
        split: str(r, "split", where),
        split_type: str(r, "split_type", where),
        label: String(label),
    };
}

function arcRow(r: unknown, where: string): Doc {
    const question = field(r, "question", where);
    if (typeof question === "string") {  // the HF dataset's flat layout (allenai/ai2_arc), as lm-eval reads it
        return { id: str(r, "id", where), question, choices: choiceLists(r, where), answerKey: str(r, "answerKey", where) };
    }
    if (question === null || typeof question !== "object" || Array.isArray(question)) {
        throw new DataFormatError(
            `${where}: field "question" must be an object {stem, choices} (the original ARC files) or a string with a top-level "choices" {text, label} (the HF dataset's rows)`,
        );
    }
    const choices = field(question, "choices", where);
    if (!Array.isArray(choices) || choices.length === 0) throw new DataFormatError(`${where}: field "question.choices" must be a non-empty list`);
    const text: DocValue[] = [];
    const label: DocValue[] = [];
    choices.forEach((c, i) => {
        text.push(str(c, "text", `${where} choice ${i}`));
        label.push(str(c, "label", `${where} choice ${i}`));
    });
    return {
        id: str(r, "id", where),
        question: str(question, "stem", where),
        choices: { text, label },
        answerKey: str(r, "answerKey", where),
    };
}

function openbookqaRow(r: unknown, where: string): Doc {
    // The original release nests the stem and the choices under "question", as ARC does.
    if (r !== null && typeof r === "object" && !("question_stem" in r) && "question" in r) {
        const { id, question, choices, answerKey } = arcRow(r, where);
        return { id: id!, question_stem: question!, choices: choices!, answerKey: answerKey! };
    }
    const choices = choiceLists(r, where);
    return {
        id: str(r, "id", where),
        question_stem: str(r, "question_stem", where),
        choices,
        answerKey: str(r, "answerKey", where),
    };
}

/** The HF datasets' `choices` {text, label}: as many labels as texts, at least one. */
function choiceLists(r: unknown, where: string): { text: string[]; label: string[] } {
    const choices = field(r, "choices", where);
    const text = stringList(choices, "text", `${where} choices`);
    const label = stringList(choices, "label", `${where} choices`);
    if (text.length === 0 || text.length !== label.length) {
        throw new DataFormatError(`${where}: field "choices" must hold as many labels as texts (at least one), got ${text.length} texts and ${label.length} labels`);
    }
    return { text, label };
}

function stringList(record: unknown, key: string, where: string): string[] {
    const value = field(record, key, where);
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw new DataFormatError(`${where}: field "${key}" must be a list of strings`);
    return value as string[];
}
