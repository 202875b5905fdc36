/**
 * Nothing is overwritten or lost: no write follows a link planted at a name the tool writes (the output folder's
 * write probe, the temporary file of a report, the --logits-out target), two runs never share a results file, a
 * failed --logits-out leaves the old file as it was, and `--model ..` cannot put results outside --output_path.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRunFiles } from "../../src/evaluator/runFiles.js";
import { fileDateIdFromMicros, sanitizeModelName } from "../../src/evaluator/results.js";
import { AtomicFileWriter, FileExistsError, writeFileAtomic } from "../../src/io/atomicWrite.js";
import { writeRandomCheckpoint } from "../lm/randomCheckpoint.js";
import { cli, expectOneLineError, REPO, startCli, TASK_DATA, TINY_MODEL, TOKENIZER, waitFor } from "./cliProcess.js";

let tmp: string;
beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-files-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function victim(name: string): string {
    const file = path.join(tmp, name);
    writeFileSync(file, "precious\n");
    return file;
}

describe("no write follows a planted link", () => {
    it("the output folder's write probe (once named .mamba-eval-write-test-<pid>)", async () => {
        const out = path.join(tmp, "probe-out");
        const dir = path.join(out, sanitizeModelName(TINY_MODEL));
        mkdirSync(dir, { recursive: true });
        const target = victim("probe-victim");
        const run = startCli(["run", "--model", TINY_MODEL, "--tokenizer", TOKENIZER, "--data_dir", TASK_DATA, "--tasks", "piqa", "--limit", "2", "--output_path", out]);
        // The child needs far longer to start than this takes: the link is there before it probes the folder.
        symlinkSync(target, path.join(dir, `.mamba-eval-write-test-${run.child.pid}`));
        const r = await run.exited;
        expect(r.status, r.stderr).toBe(0);
        expect(readFileSync(target, "utf8")).toBe("precious\n");
    });

    it("the temporary file of `table --out` (once named <out>.<pid>.tmp)", async () => {
        const results = path.join(REPO, "test/report/fixtures/table");
        const out = path.join(tmp, "table.md");
        const target = victim("table-victim");
        const run = startCli(["table", results, "--out", out]);
        symlinkSync(target, `${out}.${run.child.pid}.tmp`);
        const r = await run.exited;
        expect(r.status, r.stderr).toBe(0);
        expect(readFileSync(target, "utf8")).toBe("precious\n");
        expect(lstatSync(out).isFile()).toBe(true);
        expect(readFileSync(out, "utf8")).toContain("| Model");
    });

    it("a link at the --logits-out name is replaced, its target left alone", () => {
        const target = victim("logits-victim");
        const out = path.join(tmp, "logits-link.safetensors");
        symlinkSync(target, out);
        const r = cli(["score", "--model", TINY_MODEL, "--ids", "1,2,3", "--logits-out", out]);
        expect(r.status, r.stderr).toBe(0);
        expect(readFileSync(target, "utf8")).toBe("precious\n");
        expect(lstatSync(out).isFile()).toBe(true);
        expect(JSON.parse(readFileSync(out).subarray(8, 8 + Number(readFileSync(out).readBigUInt64LE(0))).toString()).logits_0.shape).toEqual([3, 50280]);
    });

    it("temporary files are created exclusively: a name that exists is never opened", () => {
        const dir = path.join(tmp, "exclusive");
        mkdirSync(dir);
        const writer = new AtomicFileWriter(path.join(dir, "file.txt"));
        writer.write("new");
        const names = readdirSync(dir);
        expect(names).toHaveLength(1);
        expect(names[0]).toMatch(/^\.file\.txt\.[0-9a-f]{24}\.tmp$/);  // 96 random bits: not predictable
        writer.commit();
        expect(readdirSync(dir)).toEqual(["file.txt"]);
        expect(readFileSync(path.join(dir, "file.txt"), "utf8")).toBe("new");
    });
});

describe("an output-file flag that cannot be written is one line, before any work", () => {
    const results = () => path.join(REPO, "test/report/fixtures/table");
    it("table --out: a folder, a path through a file, a missing folder, an empty name", () => {
        const dir = path.join(tmp, "out-is-a-folder");
        mkdirSync(dir);
        const file = victim("out-through-a-file");
        const cases: [string, RegExp][] = [
            [dir, /--out .*out-is-a-folder: is a folder, not a regular file$/],
            [path.join(file, "t.md"), /--out .*out-through-a-file\/t\.md: folder .*out-through-a-file: is a regular file, not a folder$/],
            [path.join(tmp, "no-such-folder", "t.md"), /--out .*t\.md: folder .*no-such-folder: no such folder$/],
            ["", /--out: expected a file name, got an empty string$/],
        ];
        for (const [out, message] of cases) {
            const r = cli(["table", results(), "--out", out]);
            expect(r.status, r.stderr).toBe(2);
            expectOneLineError(r, message);
        }
        expect(readFileSync(file, "utf8")).toBe("precious\n");
    });

    it("score --logits-out: a missing folder names the folder", () => {
        const r = cli(["score", "--model", TINY_MODEL, "--ids", "1,2", "--logits-out", path.join(tmp, "gone", "x.safetensors")]);
        expect(r.status, r.stderr).toBe(2);
        expectOneLineError(r, /--logits-out .*x\.safetensors: folder .*gone: no such folder$/);
    });
});

describe("results files never collide", () => {
    it("two runs that start in the same microsecond get two files, each with its own content", () => {
        const out = path.join(tmp, "collide");
        const start = Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 + 678_000;
        const a = writeRunFiles(out, "m", start, '{"run": "a"}', [{ task: "piqa", jsonl: "a\n" }]);
        const b = writeRunFiles(out, "m", start, '{"run": "b"}', [{ task: "piqa", jsonl: "b\n" }]);
        expect(a.dateId).toBe(fileDateIdFromMicros(start));
        expect(b.dateId).toBe(fileDateIdFromMicros(start + 1));  // the next microsecond: still lm-eval's shape
        expect(path.basename(b.resultsFile)).toMatch(/^results_\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{6}\.json$/);
        expect(readFileSync(a.resultsFile, "utf8")).toBe('{"run": "a"}');
        expect(readFileSync(b.resultsFile, "utf8")).toBe('{"run": "b"}');
        expect(readFileSync(b.samplesFiles[0]!, "utf8")).toBe("b\n");
        expect(readdirSync(path.join(out, "m")).sort()).toEqual([a.resultsFile, b.resultsFile, ...a.samplesFiles, ...b.samplesFiles].map((f) => path.basename(f)).sort());
    });

    it("an existing file or link at a results name is skipped, never written", () => {
        const out = path.join(tmp, "existing");
        const start = Date.UTC(2026, 0, 2, 3, 4, 5) * 1000;
        mkdirSync(path.join(out, "m"), { recursive: true });
        const target = victim("results-victim");
        symlinkSync(target, path.join(out, "m", `results_${fileDateIdFromMicros(start)}.json`));
        writeFileSync(path.join(out, "m", `samples_piqa_${fileDateIdFromMicros(start + 1)}.jsonl`), "someone else's\n");
        const w = writeRunFiles(out, "m", start, "{}", [{ task: "piqa", jsonl: "mine\n" }]);
        expect(w.dateId).toBe(fileDateIdFromMicros(start + 2));
        expect(readFileSync(target, "utf8")).toBe("precious\n");
        expect(readFileSync(path.join(out, "m", `samples_piqa_${fileDateIdFromMicros(start + 1)}.jsonl`), "utf8")).toBe("someone else's\n");
        expect(readdirSync(path.join(out, "m")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    });

    it("writeFileAtomic with noClobber refuses an existing name", () => {
        const file = victim("noclobber");
        expect(() => writeFileAtomic(file, "other", { noClobber: true })).toThrow(FileExistsError);
        expect(readFileSync(file, "utf8")).toBe("precious\n");
    });
});

describe("a failed write leaves the old file intact", () => {
    it("score --logits-out stopped mid-way keeps the old file and leaves no temporary file", async () => {
        const model = writeRandomCheckpoint(path.join(tmp, "wide-vocab"), { family: "mamba1", dModel: 8, nLayer: 1, vocab: 65536, dState: 4 }, 3);
        const out = path.join(tmp, "old-logits.safetensors");
        writeFileSync(out, "the previous logits\n");
        const ids = path.join(tmp, "long-ids.json");
        writeFileSync(ids, JSON.stringify([Array.from({ length: 4000 }, (_, i) => (i * 7919) % 65536)]));
        // 4000 rows of 65536 logits: four pieces of 1024 rows (256 MiB each); stopped after the first piece's lines.
        const run = startCli(["score", "--model", model, "--ids-file", ids, "--logits-out", out]);
        let stdout = "";
        run.child.stdout!.on("data", (d) => (stdout += String(d)));
        await waitFor(() => stdout.includes("\n100\t"), 60_000, "the first scored rows");
        run.child.kill("SIGTERM");
        const r = await run.exited;
        expectOneLineError(r, /interrupted by SIGTERM/);
        expect(readFileSync(out, "utf8")).toBe("the previous logits\n");
        expect(readdirSync(tmp).filter((f) => /^\..*\.tmp$/.test(f))).toEqual([]);  // this tool's temporary names
    });
});

describe("a full disk during --logits-out", () => {
    it("fails with one line and keeps the old file (on a 64 KiB tmpfs, when this process may mount one)", () => {
        if (process.getuid?.() !== 0) return;
        const mountPoint = path.join(tmp, "small-fs");
        mkdirSync(mountPoint);
        if (spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint]).status !== 0) return;  // no mount permission here
        try {
            const out = path.join(mountPoint, "logits.safetensors");
            writeFileSync(out, "the previous logits\n");
            // 3 rows × 50280 floats = 603 KB: far more than the file system holds.
            const r = cli(["score", "--model", TINY_MODEL, "--ids", "1,2,3", "--logits-out", out]);
            expectOneLineError(r, /cannot write .*logits\.safetensors \(ENOSPC/);
            expect(readFileSync(out, "utf8")).toBe("the previous logits\n");
            expect(readdirSync(mountPoint)).toEqual(["logits.safetensors"]);
        } finally {
            spawnSync("umount", [mountPoint]);
        }
    });
});

describe("results stay inside --output_path", () => {
    it("--model .. (a checkpoint that is the parent folder) writes under <output_path>/__/", () => {
        const model = path.join(tmp, "parent-model");
        cpSync(TINY_MODEL, model, { recursive: true, filter: (src) => !path.basename(src).startsWith("reference") });
        const cwd = path.join(model, "work");
        mkdirSync(cwd);
        const before = readdirSync(model).sort();
        const r = cli(["run", "--model", "..", "--tokenizer", TOKENIZER, "--data_dir", TASK_DATA, "--tasks", "piqa", "--limit", "2", "--output_path", "out"], { cwd });
        expect(r.status, r.stderr).toBe(0);
        expect(readdirSync(model).sort()).toEqual(before);  // nothing written beside the checkpoint
        expect(readdirSync(path.join(cwd, "out"))).toEqual(["__"]);
        expect(readdirSync(path.join(cwd, "out", "__")).some((f) => /^results_.*\.json$/.test(f))).toBe(true);
        expect(existsSync(path.join(cwd, "results"))).toBe(false);
    });

    it("names made only of dots become underscores; lm-eval's other names are unchanged", () => {
        expect(sanitizeModelName("..")).toBe("__");
        expect(sanitizeModelName(".")).toBe("_");
        expect(sanitizeModelName("state-spaces/mamba-130m")).toBe("state-spaces__mamba-130m");
        expect(sanitizeModelName("../x")).toBe("..__x");
        expect(sanitizeModelName("..foo")).toBe("..foo");
    });
});
