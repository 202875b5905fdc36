/** End-to-end CLI runs as child processes on the tiny GPT-NeoX-vocabulary fixture checkpoint. */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { neoxTokenizer, runCli, sharedData, tinyNeoxModel } from "./cliHelpers.js";
import { taskDataDir } from "../testData.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Reads float32 tensor `name` from a safetensors file. */
function readTensor(file: string, name: string): { shape: number[]; data: Float32Array } {
    const buf = readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
    const t = header[name]!;
    const bytes = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
    return { shape: t.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

describe("strict command line", () => {
    it("rejects an unknown flag with a suggestion and exit status 2", () => {
        const r = runCli(["score", "--modle", tinyNeoxModel]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim()).toBe("mamba-eval: unknown flag --modle; did you mean --model?");
    });
    it("calls a stray word an unexpected argument, not an unknown flag", () => {
        const r = runCli(["ls", "extra"]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim()).toBe('mamba-eval: unexpected argument "extra"');
    });
    it("rejects a flag given twice, in either spelling, before anything runs", () => {
        for (const args of [
            ["--tasks", "piqa", "--output_path", "a", "--output_path", "b"],
            ["--tasks", "piqa", "--use_cache=a", "--use-cache", "b"],
            ["score", "--model", tinyNeoxModel, "--ids", "1,2", "--ids", "3,4"],
            ["generate", "--model", tinyNeoxModel, "--prompt", "hi", "--prompt", "x"],
        ]) {
            const r = runCli(args);
            expect(r.code).toBe(2);
            expect(r.stderr.trim()).toMatch(/^mamba-eval: --(output_path|use-cache|ids|prompt) given more than once \(each flag takes one value\)$/);
        }
    });
    it("rejects an unknown command and an unknown task with suggestions", () => {
        const c = runCli(["scroe"]);
        expect(c.code).toBe(2);
        expect(c.stderr).toMatch(/^mamba-eval: unknown command "scroe"; did you mean score\?/);
        const t = runCli(["--model", tinyNeoxModel, "--tasks", "hellaswg", "--tokenizer", neoxTokenizer]);
        expect(t.code).toBe(2);
        expect(t.stderr).toMatch(/did you mean "hellaswag"/);
        expect(t.stderr.trim().split("\n")).toHaveLength(1);
    });
    it("table3 --state_budget_gb takes a positive number of GiB, refused in one line otherwise", () => {
        for (const bad of ["0", "-1", "lots", "1e30"]) {
            const r = runCli(["table3", "--state_budget_gb", bad]);
            expect(r.code).toBe(2);
            expect(r.stderr.trim()).toBe(`mamba-eval: --state_budget_gb ${bad}: expected a number in (0, 1048576]`);
        }
    });
    it("table3 refuses a bad --dtype, --device, --batch_size, --data_dir or --use_cache once, before any model", () => {
        const file = path.join(tmp, "a-file");
        writeFileSync(file, "x");
        const cases: [string[], string][] = [
            [["--dtype", "float16"], "--dtype float16: expected float32 or bfloat16"],
            [["--device", "tpu"], "--device tpu: expected cpu or cuda"],
            [["--batch_size", "abc"], "--batch_size abc: expected a positive integer, auto or auto:N"],
            [["--tokenizer", path.join(tmp, "nope.json")], `--tokenizer ${path.join(tmp, "nope.json")}: no such file or folder, and not a hub id of the form org/name`],
            [["--data_dir", path.join(tmp, "nowhere")], `--data_dir ${path.join(tmp, "nowhere")}: no such folder`],
            [["--use_cache", path.join(file, "x")], `--use_cache ${path.join(file, "x")}: a part of the path is not a folder`],
            [["--output_path", path.join(file, "out")], `--output_path ${path.join(file, "out")}: cannot create or write the folder ${path.join(file, "out")} (ENOTDIR)`],
        ];
        for (const [flags, message] of cases) {
            const out = flags.includes("--output_path") ? [] : ["--output_path", path.join(tmp, "t3")];
            const r = runCli(["table3", "--models", tinyNeoxModel, ...out, ...flags]);
            expect(r.code, r.stderr).toBe(2);
            expect(r.stderr.trim()).toBe(`mamba-eval: ${message}`);
        }
    });
    it("accepts both spellings of a flag", () => {
        const a = runCli(["score", "--model", tinyNeoxModel, "--ids", "5,6,7"]);
        const b = runCli(["score", "--model", tinyNeoxModel, "--ids", "5,6,7", "--threads", "1"]);
        expect(a.code).toBe(0);
        expect(a.stdout).toBe(b.stdout); // thread count never changes the numbers
        const c = runCli(["score", "--model", tinyNeoxModel, "--ids-file", path.join(tmp, "missing.json")]);
        const d = runCli(["score", "--model", tinyNeoxModel, "--ids_file", path.join(tmp, "missing.json")]);
        expect(c.stderr).toBe(d.stderr);
        expect(c.stderr).toMatch(/--ids-file .*missing\.json: no such file/);
    });
});

describe("score and generate", () => {
    it("prints per-token log-probs consistent with the logits it writes", () => {
        const out = path.join(tmp, "logits.safetensors");
        const r = runCli(["score", "--model", tinyNeoxModel, "--ids", "12092,1533,13,436", "--logits-out", out]);
        expect(r.code).toBe(0);
        const rows = r.stdout.split("\n").filter((l) => /^\d+\t/.test(l)).map((l) => l.split("\t"));
        expect(rows.map((x) => x[1])).toEqual(["1533", "13", "436"]);
        const { shape, data } = readTensor(out, "logits_0");
        expect(shape[0]).toBe(4);
        const vocab = shape[1]!;
        // log_softmax(logits[i])[ids[i+1]] recomputed from the written logits, in float64.
        const ids = [12092, 1533, 13, 436];
        for (let i = 0; i < 3; i++) {
            const row = data.subarray(i * vocab, (i + 1) * vocab);
            const max = Math.max(...row);
            let sum = 0;
            for (const v of row) sum += Math.exp(v - max);
            const lp = row[ids[i + 1]!]! - max - Math.log(sum);
            expect(Number(rows[i]![2])).toBeCloseTo(lp, 5);
        }
        const mean = rows.reduce((a, x) => a + Number(x[2]), 0) / 3;
        expect(Number(/perplexity ([\d.e+]+)/.exec(r.stdout)![1]) / Math.exp(-mean)).toBeCloseTo(1, 5);
    });

    it("generates greedily: the first new token is the argmax of the prompt's last logits row", () => {
        const out = path.join(tmp, "prompt.safetensors");
        expect(runCli(["score", "--model", tinyNeoxModel, "--ids", "510,5347,273", "--logits-out", out]).code).toBe(0);
        const { shape, data } = readTensor(out, "logits_0");
        const last = data.subarray(2 * shape[1]!, 3 * shape[1]!);
        let best = 0;
        last.forEach((v, i) => {
            if (v > last[best]!) best = i;
        });
        const g = runCli(["generate", "--model", tinyNeoxModel, "--ids", "510,5347,273", "--max-new-tokens", "5", "--json"]);
        expect(g.code).toBe(0);
        const json = JSON.parse(g.stdout.trim().split("\n").pop()!) as { tokens: number[] };
        expect(json.tokens).toHaveLength(5);
        expect(json.tokens[0]).toBe(best);
        // Seeded sampling is reproducible.
        const s1 = runCli(["generate", "--model", tinyNeoxModel, "--ids", "510", "--max_new_tokens", "6", "--temperature", "1.5", "--seed", "3", "--json"]);
        const s2 = runCli(["generate", "--model", tinyNeoxModel, "--ids", "510", "--max_new_tokens", "6", "--temperature", "1.5", "--seed", "3", "--json"]);
        expect(s1.stdout).toBe(s2.stdout);
    });
});

describe("run", () => {
    it.skipIf(taskDataDir === undefined)("evaluates tasks from --data_dir (the real data) and writes lm-eval-shaped results and samples", () => {
        const outDir = path.join(tmp, "out");
        const r = runCli([
            "run", "--model", tinyNeoxModel, "--tokenizer", neoxTokenizer, "--tasks", "piqa,winogrande,lambada_openai",
            "--data_dir", sharedData, "--limit", "4", "--output_path", outDir, "--log_samples",
        ]);
        expect(r.stderr).not.toMatch(/mamba-eval: (?!using )/);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^\|lambada_openai *\| *1\|none *\| *0\|acc *\|↑ *\|/m);
        const dir = path.join(outDir, readdirSync(outDir)[0]!);
        const files = readdirSync(dir);
        const results = JSON.parse(readFileSync(path.join(dir, files.find((f) => f.startsWith("results_"))!), "utf8"));
        expect(Object.keys(results.results).sort()).toEqual(["lambada_openai", "piqa", "winogrande"]);
        expect(results["n-samples"].piqa).toEqual({ original: 1838, effective: 4 });
        expect(results.results.winogrande["acc,none"]).toBeGreaterThanOrEqual(0);
        const samples = readFileSync(path.join(dir, files.find((f) => f.startsWith("samples_piqa"))!), "utf8").trim().split("\n").map((l) => JSON.parse(l));
        expect(samples).toHaveLength(4);
        expect(samples[0].arguments.gen_args_0.arg_0).toMatch(/^Question: .*\nAnswer:$/s);
        // acc from the logged responses (first index wins ties).
        for (const s of samples) {
            const lls = s.filtered_resps.map((x: string[]) => Number(x[0]));
            expect(s.acc).toBe(lls.indexOf(Math.max(...lls)) === s.target * 1 ? 1 : 0);
        }
    });
});

describe("offline with what the package ships, and clear lines for mistakes", () => {
    const offline = { HF_HUB_OFFLINE: "1" };

    it("every bundled checkpoint runs offline on the bundled tokenizer and samples, saying so", () => {
        const r = runCli(["--model", "fixtures/neox-mamba2", "--tasks", "piqa", "--limit", "2"], offline);
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(/^mamba-eval: using the bundled checkpoint fixtures\/neox-mamba2 .*the bundled GPT-NeoX-20B tokenizer .*the bundled sample documents/m);
        expect(r.stdout).toMatch(/^\|piqa\s*\|/m);
    });

    it("a mistyped local folder is named as such, with the closest one, not sent to the hub", () => {
        const r = runCli(["--model", "fixtures/neox-mambaX", "--tasks", "piqa"], offline);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split("\n").at(-1)).toMatch(/^mamba-eval: --model fixtures\/neox-mambaX: no such folder; did you mean fixtures\/neox-mamba[12]\?$/);
        const dotted = runCli(["--model", "./no-such-checkpoint", "--tasks", "piqa"], offline);
        expect(dotted.stderr.trim().split("\n").at(-1)).toBe("mamba-eval: --model ./no-such-checkpoint: no such folder");
    });

    it("--device cuda on a build without CUDA names the build flag", () => {
        const r = runCli(["--model", tinyNeoxModel, "--tasks", "piqa", "--device", "cuda"], offline);
        const last = r.stderr.trim().split("\n").at(-1)!;
        if (/has no CUDA backend/.test(last)) expect(last).toContain("MAMBA_EVAL_CUDA=ON npm run build:native");
        else expect(r.code).toBe(0);  // a CUDA build on a machine with a GPU
    });

    it("--help wraps at word boundaries", () => {
        const r = runCli(["--help"]);
        expect(r.code).toBe(0);
        // Joined back at its line breaks, every description reads whole: a word cut mid-line would leave "t oken".
        const joined = r.stdout.replace(/\s*\n\s+/g, " ");
        expect(joined).toContain("Per-token log-probabilities and perplexity of a text or token ids");
        expect(joined).toContain("Evaluate every published Mamba (or Mamba-2) size on its paper's zero-shot tasks and write the table");
    });
});

describe("weights that overflow float32 while computing", () => {
    it("score and generate refuse the NaN/Inf in one line, as run does, instead of printing perplexity NaN or tokens", () => {
        // finite weights (the loader accepts them) whose product overflows: the final norm's scale at 1e38
        const dir = path.join(tmp, "overflow");
        cpSync(path.join(path.dirname(tinyNeoxModel), "mamba2-hf"), dir, { recursive: true });
        const file = path.join(dir, "model.safetensors");
        const buf = readFileSync(file);
        const n = Number(buf.readBigUInt64LE(0));
        const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; data_offsets: [number, number] }>;
        const t = header["backbone.norm_f.weight"]!;
        expect(t.dtype).toBe("F32");
        for (let at = 8 + n + t.data_offsets[0]; at < 8 + n + t.data_offsets[1]; at += 4) buf.writeFloatLE(1e38, at);
        writeFileSync(file, buf);
        const score = runCli(["score", "--model", dir, "--ids", "5,6,7"]);
        expect(score.code).toBe(1);
        expect(score.stdout).not.toMatch(/perplexity/);
        expect(score.stderr.trim()).toMatch(/^mamba-eval: the model produced a non-finite log-probability \((NaN|-?Infinity)\) at position 0 \(target token 6\): its weights overflow float32 or are corrupt$/);
        const generate = runCli(["generate", "--model", dir, "--ids", "5,6,7", "--max_new_tokens", "3"]);
        expect(generate.code).toBe(1);
        expect(generate.stderr.trim()).toMatch(/^mamba-eval: the model produced a non-finite logit \((NaN|-?Infinity)\) after prompt 0: its weights overflow float32 or are corrupt$/);
    });
});
