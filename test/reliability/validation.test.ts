/**
 * Bad input is named early and clearly: documents are validated before any scoring (answer keys, labels, empty
 * files, bytes that are not UTF-8, each with its file and line), a tokenizer that does not fit the model is said in
 * those words, every numeric flag and environment variable is checked with one line, and a folder holding both
 * weight formats is read as lm-eval would read it, with a note saying so.
 */
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRandomCheckpoint } from "../lm/randomCheckpoint.js";
import { cleanEnv, cli, expectOneLineError, SMALL_HF_MODEL, TASK_DATA, TINY_MODEL, TOKENIZER } from "./cliProcess.js";

let tmp: string;
beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-validation-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the sample documents with one file's line `line` (1-based) replaced by `edit(line text)`. */
function dataWith(name: string, file: string, line: number, edit: (text: string) => string | Buffer): string {
    const dir = path.join(tmp, name);
    cpSync(TASK_DATA, dir, { recursive: true });
    const target = path.join(dir, file);
    const lines = readFileSync(target, "utf8").split("\n");
    const edited = edit(lines[line - 1]!);
    if (typeof edited === "string") {
        lines[line - 1] = edited;
        writeFileSync(target, lines.join("\n"));
    } else {
        writeFileSync(target, Buffer.concat([Buffer.from(lines.slice(0, line - 1).map((l) => l + "\n").join("")), edited, Buffer.from("\n" + lines.slice(line).join("\n"))]));
    }
    return dir;
}

const run = (data: string, tasks: string, extra: string[] = []) =>
    cli(["run", "--model", TINY_MODEL, "--tokenizer", TOKENIZER, "--data_dir", data, "--tasks", tasks, "--threads", "1", ...extra]);

/** Nothing was scored: no progress line, no token-steps line, no table. */
function expectNothingScored(r: { stderr: string; stdout: string }): void {
    expect(r.stderr).not.toMatch(/loglikelihood: \d/);
    expect(r.stderr).not.toMatch(/token steps/);
    expect(r.stdout).not.toContain("|");
}

describe("documents are validated before any scoring", () => {
    it("an ARC answer key that is not one of the choice labels, named with file and line", () => {
        const data = dataWith("bad-answer-key", "arc/ARC-Easy-Test.jsonl", 3, (l) => l.replace(/"answerKey":\s*"[^"]*"/, '"answerKey": "Z"'));
        const r = run(data, "piqa,arc_easy");
        expectOneLineError(r, /arc\/ARC-Easy-Test\.jsonl:3: arc_easy: answerKey "Z" of document .* is not one of its choice labels/);
        expectNothingScored(r);
    });

    it("a HellaSwag label outside its endings", () => {
        const data = dataWith("bad-label", "hellaswag/hellaswag_val.jsonl", 2, (l) => l.replace(/"label":\s*\d+/, '"label": 7'));
        const r = run(data, "hellaswag");
        expectOneLineError(r, /hellaswag\/hellaswag_val\.jsonl:2: hellaswag: the answer index 7 is not one of the document's 4 choices/);
        expectNothingScored(r);
    });

    it("a WinoGrande answer that is neither 1 nor 2", () => {
        const data = dataWith("bad-answer", "winogrande/dev.jsonl", 4, (l) => l.replace(/"answer":\s*"\d"/, '"answer": "3"'));
        const r = run(data, "winogrande");
        expectOneLineError(r, /winogrande\/dev\.jsonl:4: winogrande: document field "answer" must be "1" or "2", got "3"/);
        expectNothingScored(r);
    });

    it("an empty data file (instead of a table of NaN)", () => {
        const data = path.join(tmp, "empty-data");
        cpSync(TASK_DATA, data, { recursive: true });
        writeFileSync(path.join(data, "lambada_openai/lambada_test.jsonl"), "\n\n");
        const r = run(data, "lambada_openai");
        expectOneLineError(r, /lambada_openai\/lambada_test\.jsonl: holds no documents \(the file is empty\)/);
        expect(r.stdout).not.toMatch(/nan/i);
    });

    it("bytes that are not UTF-8, named with file, line and position (never replaced)", () => {
        const data = dataWith("bad-utf8", "piqa/valid.jsonl", 5, (l) => Buffer.concat([Buffer.from(l.slice(0, 12)), Buffer.from([0xff, 0xfe]), Buffer.from(l.slice(12))]));
        const r = run(data, "piqa");
        expectOneLineError(r, /piqa\/valid\.jsonl:5: invalid UTF-8 \(byte 0xff at byte 13 of the line\)/);
        expectNothingScored(r);
    });
});

describe("a tokenizer that does not fit the model", () => {
    it("says so in those words, before the weights are loaded", () => {
        const r = cli(["run", "--model", SMALL_HF_MODEL, "--tokenizer", TOKENIZER, "--data_dir", TASK_DATA, "--tasks", "piqa"]);
        expectOneLineError(r, /the tokenizer's vocabulary \(50277 ids, .*gpt-neox-20b\.tokenizer\.json\.gz\) does not fit the model's embedding \(260 rows, .*mamba1-hf\)/);
    });
});

describe("flags are checked with one line", () => {
    it.each([
        [["generate", "--model", TINY_MODEL, "--ids", "1,2", "--seed", "abc"], /--seed abc: expected an integer in \[0, 4294967295\]/],
        [["generate", "--model", TINY_MODEL, "--ids", "1,2", "--max_new_tokens", "1.5"], /--max_new_tokens 1\.5: expected an integer >= 0/],
        [["generate", "--model", TINY_MODEL, "--ids", "1,2", "--temperature", "hot"], /--temperature hot: expected a number >= 0/],
        [["generate", "--model", TINY_MODEL, "--ids", "1,2", "--top_p", "0"], /--top_p 0: expected a number in \(0, 1\]/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--seed", "abc"], /--seed abc: expected an integer, None, or a comma list/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--threads", "abc"], /--threads abc: expected an integer in \[1, 256\]/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--threads", "0"], /--threads 0: expected an integer in \[1, 256\]/],
        [["score", "--model", TINY_MODEL, "--ids", "1,2", "--threads", "1.5"], /--threads 1\.5: expected an integer in \[1, 256\]/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--num_fewshot", "few"], /--num_fewshot few: expected an integer >= 0/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--limit", "lots"], /--limit lots: expected a count >= 1 or a fraction in \(0, 1\)/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--limit", "1e400"], /--limit 1e400: expected a count >= 1 or a fraction in \(0, 1\)/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--output_path", ""], /--output_path: expected a value, got an empty string/],
        [["run", "--model", TINY_MODEL, "--tasks", "piqa", "--batch_size", "0"], /--batch_size 0: expected a positive integer, auto or auto:N/],
        [["compare", "a.json", "b.json", "--k", "abc"], /--k abc: expected a number >= 0/],
    ])("%j", (args, message) => {
        expectOneLineError(cli(args as string[]), message);
    });
});

describe("environment variables are checked with one line", () => {
    let aFile: string;
    let emptyFile: string;
    beforeAll(() => {
        aFile = path.join(tmp, "a-file");
        writeFileSync(aFile, "not a folder");
        emptyFile = path.join(tmp, "empty-file");
        writeFileSync(emptyFile, "");
    });
    const score = ["score", "--model", TINY_MODEL, "--ids", "1,2,3"];
    it.each([
        [{ HF_ENDPOINT: "not a url" }, /HF_ENDPOINT="not a url" is not a URL/],
        [{ HF_ENDPOINT: "ftp://mirror.example" }, /HF_ENDPOINT="ftp:\/\/mirror\.example" is not an http\(s\) URL/],
        [{ HF_HUB_OFFLINE: "maybe" }, /HF_HUB_OFFLINE=maybe: expected 1 or 0/],
        [{ MAMBA_EVAL_ISA: "avx3" }, /MAMBA_EVAL_ISA=avx3: expected one of auto, avx2, avx512/],
        [{ MAMBA_EVAL_PROFILE: "0" }, /MAMBA_EVAL_PROFILE=0: expected 1 \(per-op CPU timings on stderr \(unset it to turn them off\)\)/],
        [{ MAMBA_EVAL_CUDA_PROFILE: "0" }, /MAMBA_EVAL_CUDA_PROFILE=0: expected one of empty, 1/],
        [{ MAMBA_EVAL_CUDA_GRAPHS: "0" }, /MAMBA_EVAL_CUDA_GRAPHS is no longer read .*; unset it/],
        [{ MAMBA_EVAL_IAS: "avx2" }, /MAMBA_EVAL_IAS is not a mamba-eval variable; did you mean MAMBA_EVAL_ISA\?/],
        [{ MAMBA_EVAL_ADDON: "/no/such/addon.node" }, /MAMBA_EVAL_ADDON=\/no\/such\/addon\.node: no such file/],
        [{ MAMBA_EVAL_ADDON: "EMPTY" }, /native addon .*empty-file: not a mamba-eval addon \(no capabilities, createModel, bootstrapResampleSums\)$/],
    ])("%j", (vars, message) => {
        const env = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.replace("FILE", aFile).replace("EMPTY", emptyFile)]));
        expectOneLineError(cli(score, { env: cleanEnv(env) }), message);
    });

    it("HF_HOME that is a file: the hub's line naming the setting, when the hub is used", () => {
        for (const home of [aFile, path.join(aFile, "sub")]) {
            const r = cli(["score", "--model", "org/some-model", "--ids", "1,2,3"], { env: cleanEnv({ HF_HOME: home }) });
            expectOneLineError(r, /a-file: is a file where the hub cache needs a folder \(cache from HF_HOME=.*a-file/);
        }
    });

    it("leaves build-time and unrelated MAMBA_EVAL_* names alone", () => {
        const r = cli(score, { env: cleanEnv({ MAMBA_EVAL_CUDA: "ON", MAMBA_EVAL_CUBLAS_ROOT: "/opt/x", MAMBA_EVAL_SOMETHING_ELSE: "1" }) });
        expect(r.status, r.stderr).toBe(0);
    });
});

describe("a folder holding both pytorch_model.bin and model.safetensors", () => {
    it("is read as mamba_ssm reads it (pytorch_model.bin), with a note, and gives that file's numbers", () => {
        const both = path.join(tmp, "both-formats");
        cpSync(TINY_MODEL, both, { recursive: true, filter: (src) => !path.basename(src).startsWith("reference") });
        // Same tensor names and shapes, other values: the two files disagree.
        const other = writeRandomCheckpoint(path.join(tmp, "disagreeing"), { family: "mamba1", dModel: 32, nLayer: 2, vocab: 50277, dState: 16 }, 9);
        copyFileSync(path.join(other, "model.safetensors"), path.join(both, "model.safetensors"));
        const args = (model: string) => ["run", "--model", model, "--tokenizer", TOKENIZER, "--data_dir", TASK_DATA, "--tasks", "piqa", "--threads", "1"];
        const r = cli(args(both));
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toContain(`note: ${both} holds pytorch_model.bin and model.safetensors: reading pytorch_model.bin, as mamba_ssm's MambaLMHeadModel.from_pretrained (lm-eval --model mamba_ssm) does`);
        const table = (stdout: string) => stdout.split("\n").filter((l) => l.startsWith("|")).join("\n");
        const original = cli(args(TINY_MODEL));
        expect(table(r.stdout)).toBe(table(original.stdout));
        // …and the safetensors file alone would have given other numbers.
        rmSync(path.join(both, "pytorch_model.bin"));
        expect(table(cli(args(both)).stdout)).not.toBe(table(original.stdout));
    });
});
