/**
 * Nothing hangs: every path the CLI reads is checked to be a regular file (or a folder where one is expected)
 * before it is opened, small files are read under a size limit, and SIGINT/SIGTERM end a run promptly in each
 * phase. Each case runs the CLI in a child process with a timeout: a hang shows as a killed child (null status),
 * never as a stuck test run.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, expectOneLineError, SHARDED_MODEL, SMALL_HF_MODEL, startCli, TASK_DATA, TINY_MODEL, TOKENIZER, waitFor } from "./cliProcess.js";


let tmp: string;
beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-hangs-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of a fixture folder in the temp folder (without the reference files), for damaging. */
function copyOf(from: string, name: string): string {
    const dir = path.join(tmp, name);
    cpSync(from, dir, { recursive: true, filter: (src) => !path.basename(src).startsWith("reference") });
    return dir;
}

function fifoAt(file: string): void {
    rmSync(file, { force: true });
    execFileSync("mkfifo", [file]);
}

/** A run must end (one line) well before the child's timeout: a blocked open would hit it. */
const quick = { timeout: 20_000 };

describe("a FIFO, a device, a socket or a folder where a file is expected", () => {
    it("config.json is a FIFO", () => {
        const dir = copyOf(SMALL_HF_MODEL, "fifo-config");
        fifoAt(path.join(dir, "config.json"));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /config\.json: is a FIFO \(named pipe\), not a regular file/);
    });

    it("config.json is a link to /dev/zero (memory would grow without bound)", () => {
        const dir = copyOf(SMALL_HF_MODEL, "zero-config");
        rmSync(path.join(dir, "config.json"));
        symlinkSync("/dev/zero", path.join(dir, "config.json"));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /config\.json: is a character device, not a regular file/);
    });

    it("config.json is a folder", () => {
        const dir = copyOf(SMALL_HF_MODEL, "folder-config");
        rmSync(path.join(dir, "config.json"));
        mkdirSync(path.join(dir, "config.json"));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /config\.json: is a folder, not a regular file/);
    });

    it("config.json is far too large (a sparse 17 MiB file)", () => {
        const dir = copyOf(SMALL_HF_MODEL, "huge-config");
        truncateSync(path.join(dir, "config.json"), 17 * 1024 * 1024);
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /config\.json: is too large for a config\.json \(17825792 bytes; the limit is 16 MiB\)/);
    });

    it("model.safetensors is a FIFO", () => {
        const dir = copyOf(SMALL_HF_MODEL, "fifo-safetensors");
        fifoAt(path.join(dir, "model.safetensors"));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /model\.safetensors: is a FIFO \(named pipe\), not a regular file/);
    });

    it("pytorch_model.bin is a FIFO", () => {
        const dir = copyOf(TINY_MODEL, "fifo-bin");
        fifoAt(path.join(dir, "pytorch_model.bin"));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /pytorch_model\.bin: is a FIFO \(named pipe\), not a regular file/);
    });

    it("a sharded index and a shard are FIFOs", () => {
        const dir = copyOf(SHARDED_MODEL, "fifo-index");
        fifoAt(path.join(dir, "model.safetensors.index.json"));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"], quick), /model\.safetensors\.index\.json: is a FIFO \(named pipe\), not a regular file/);
        const shard = copyOf(SHARDED_MODEL, "fifo-shard");
        fifoAt(path.join(shard, "model-00002-of-00002.safetensors"));
        expectOneLineError(cli(["score", "--model", shard, "--ids", "1,2,3"], quick), /shard .*model-00002-of-00002\.safetensors: is a FIFO/);
    });

    it("--ids-file is a FIFO", () => {
        const file = path.join(tmp, "ids.fifo");
        fifoAt(file);
        expectOneLineError(cli(["score", "--model", SMALL_HF_MODEL, "--ids-file", file], quick), /--ids-file .*ids\.fifo: is a FIFO \(named pipe\), not a regular file/);
    });

    it("--tokenizer is a FIFO, and the model's own tokenizer.json is a socket", async () => {
        const fifo = path.join(tmp, "tokenizer.fifo");
        fifoAt(fifo);
        expectOneLineError(cli(["run", "--model", TINY_MODEL, "--tokenizer", fifo, "--data_dir", TASK_DATA, "--tasks", "piqa"], quick), /--tokenizer .*tokenizer\.fifo: is a FIFO/);
        const dir = copyOf(TINY_MODEL, "socket-tokenizer");
        const server = createServer();
        await new Promise<void>((done) => server.listen(path.join(dir, "tokenizer.json"), done));
        try {
            expectOneLineError(cli(["run", "--model", dir, "--data_dir", TASK_DATA, "--tasks", "piqa"], quick), /tokenizer\.json: is a socket, not a regular file/);
        } finally {
            server.close();
        }
    });

    it("a task data file is a FIFO, and --data_dir is a file", () => {
        const data = copyOf(TASK_DATA, "fifo-data");
        fifoAt(path.join(data, "piqa", "valid.jsonl"));
        expectOneLineError(cli(["run", "--model", TINY_MODEL, "--tokenizer", TOKENIZER, "--data_dir", data, "--tasks", "piqa"], quick), /piqa\/valid\.jsonl: is a FIFO \(named pipe\), not a regular file/);
        const file = path.join(tmp, "not-a-folder");
        writeFileSync(file, "x");
        expectOneLineError(cli(["run", "--model", TINY_MODEL, "--tokenizer", TOKENIZER, "--data_dir", file, "--tasks", "piqa"], quick), /--data_dir .*not-a-folder: is a regular file, not a folder/);
    });

    it("--use_cache is a FIFO", () => {
        const fifo = path.join(tmp, "cache.fifo.db");
        fifoAt(fifo);
        expectOneLineError(cli(["run", "--model", TINY_MODEL, "--tokenizer", TOKENIZER, "--data_dir", TASK_DATA, "--tasks", "piqa", "--use_cache", fifo], quick), /--use_cache .*cache\.fifo\.db: .*cache\.fifo\.db is a FIFO \(named pipe\), not a regular file/);
    });
});

describe("results files given to compare and table", () => {
    it("a FIFO as a results file", () => {
        const fifo = path.join(tmp, "results.fifo");
        fifoAt(fifo);
        expectOneLineError(cli(["compare", fifo, fifo], quick), /BASELINE .*results\.fifo: is a FIFO \(named pipe\); expected a results file or a folder/);
        expectOneLineError(cli(["table", fifo], quick), /RESULTS .*results\.fifo: is a FIFO \(named pipe\); expected a results file or a folder/);
    });
});

// ---- signals in every phase ------------------------------------------------------------------------------------

/** A workload long enough to catch each phase: many lambada documents (tokenising, scoring, the perplexity bootstrap). */
let bigData: string;
beforeAll(() => {
    bigData = path.join(tmp, "big-data");
    mkdirSync(path.join(bigData, "lambada_openai"), { recursive: true });
    const words = "a keeper climbed the stairs every evening to light the lamp and the ships looked for its beam".split(" ");
    const lines = Array.from({ length: 5_000 }, (_, d) => JSON.stringify({ text: `Night ${d}: ` + Array.from({ length: 30 + (d % 13) }, (_, w) => words[(d + w * 5) % words.length]).join(" ") }));
    writeFileSync(path.join(bigData, "lambada_openai", "lambada_test.jsonl"), lines.join("\n") + "\n");
});

/**
 * Starts a run, sends `signal` once `ready(stderr)` holds, and expects the one-line "interrupted" error within
 * a few seconds of it, with no results file, no temporary file and no empty model folder left in the output folder.
 */
async function interruptWhen(name: string, signal: NodeJS.Signals, ready: (stderr: string) => boolean): Promise<void> {
    const out = path.join(tmp, `out-${name}`);
    // The bundled model (no --model), whose first stderr line ("using …") comes once the handlers are set.
    const run = startCli(["run", "--data_dir", bigData, "--tasks", "lambada_openai", "--threads", "1", "--output_path", out, "--log_samples"]);
    await waitFor(() => ready(run.stderrSoFar()), 60_000, `the ${name} phase`);
    const sentAt = Date.now();
    run.child.kill(signal);
    const r = await run.exited;
    const took = Date.now() - sentAt;
    expectOneLineError(r, new RegExp(`^mamba-eval: interrupted by ${signal}`));
    expect(took, `stopped ${took} ms after ${signal}`).toBeLessThan(5000);
    expect(existsSync(out) ? readdirSync(out) : [], "what the run left in the output folder").toEqual([]);
}

describe("SIGINT and SIGTERM end a run promptly", () => {
    it("while the model loads and the documents are read", async () => {
        await interruptWhen("loading", "SIGTERM", (e) => e.startsWith("mamba-eval: using"));
    });

    it("while requests are tokenised and scored", async () => {
        await interruptWhen("scoring", "SIGINT", (e) => /loglikelihood: \d+\/\d+/.test(e));
    });

    it("while the metrics are computed", async () => {
        await interruptWhen("metrics", "SIGTERM", (e) => /token steps: /.test(e));
    });
});
