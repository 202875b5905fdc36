/**
 * Audit of "bad input gives a clear one-line error" across the CLI, as a user hits it: each case runs the CLI in a
 * child process (node --import tsx test/reliability/cliEntry.ts …, i.e. bin/mamba-eval.js on the sources) and
 * asserts a non-zero exit status, exactly one stderr line starting with "mamba-eval:" (the last one; progress notes
 * may come before it), that line naming what was wrong, and no stack trace ("    at " lines) unless --verbose.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { chmodSync, closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUNDLED_TOKENIZER } from "../testData.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const ENTRY = path.join(REPO, "test/reliability/cliEntry.ts");
const TINY_MODEL = path.join(REPO, "fixtures/neox-mamba1");
const SMALL_MODEL = path.join(REPO, "fixtures/mamba1-hf");
const TASK_DATA = path.join(REPO, "fixtures/tasks");
const TOKENIZER = BUNDLED_TOKENIZER;

interface CliRun {
    status: number | null;
    stdout: string;
    stderr: string;
}

function cli(args: string[], options: SpawnSyncOptions = {}): CliRun {
    const r = spawnSync(process.execPath, ["--import", "tsx", ENTRY, ...args], {
        cwd: REPO,
        encoding: "utf8",
        timeout: 60_000,
        env: { ...process.env, HF_HUB_OFFLINE: "1", NO_COLOR: "1" },
        ...options,
    });
    return { status: r.status, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Asserts the one-line error contract; returns the error line. */
function expectOneLineError(r: CliRun, mentions: RegExp): string {
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    const context = `exit ${r.status}, stderr:\n${r.stderr}`;
    expect(r.status, context).not.toBe(0);
    expect(r.status, context).not.toBeNull();
    // "mamba-eval: using …" lines are notes on the defaults taken (the bundled checkpoint's tokenizer and samples).
    const errorLines = lines.filter((l) => l.startsWith("mamba-eval:") && !l.startsWith("mamba-eval: using "));
    expect(errorLines, context).toHaveLength(1);
    expect(lines[lines.length - 1], context).toBe(errorLines[0]);
    expect(lines.filter((l) => /^\s+at /.test(l)), context).toEqual([]);
    expect(errorLines[0], context).toMatch(mentions);
    return errorLines[0]!;
}

let tmp: string;
beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-cli-errors-"));
});
afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A copy of a fixture checkpoint in the temp folder, for damaging. */
function copyModel(from: string, name: string): string {
    const dir = path.join(tmp, name);
    cpSync(from, dir, { recursive: true, filter: (src) => !path.basename(src).startsWith("reference") });
    return dir;
}

const runArgs = (extra: string[]) => ["run", "--model", TINY_MODEL, "--tokenizer", TOKENIZER, "--data_dir", TASK_DATA, "--threads", "1", ...extra];

describe("checkpoint problems", () => {
    it("a missing model folder", () => {
        expectOneLineError(cli(["score", "--model", path.join(tmp, "no-such-model"), "--ids", "1,2,3"]), /no-such-model/);
    });

    it("a truncated model.safetensors", () => {
        const dir = copyModel(SMALL_MODEL, "truncated");
        const file = path.join(dir, "model.safetensors");
        truncateSync(file, Math.floor(readFileSync(file).length / 2));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"]), /model\.safetensors/);
    });

    it("a config.json field of the wrong type", () => {
        const dir = copyModel(SMALL_MODEL, "bad-config");
        const file = path.join(dir, "config.json");
        const config = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
        config["hidden_size"] = "48";
        writeFileSync(file, JSON.stringify(config));
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"]), /config\.json.*hidden_size/);
    });

    it("a config.json that is not JSON at all", () => {
        const dir = copyModel(SMALL_MODEL, "garbled-config");
        writeFileSync(path.join(dir, "config.json"), '{\n  "model_type": "mamba",\n  "hidden_size": 48,,\n}\n');
        expectOneLineError(cli(["score", "--model", dir, "--ids", "1,2,3"]), /config\.json/);
    });
});

describe("flags", () => {
    it("an unknown task", () => {
        expectOneLineError(cli(runArgs(["--tasks", "hellaswagg"])), /hellaswagg/);
    });

    it("an unknown flag", () => {
        expectOneLineError(cli(runArgs(["--tasks", "piqa", "--modle", "x"])), /--modle/);
    });

    it.each([["-1"], ["abc"], ["0"]])("--limit %s", (limit) => {
        expectOneLineError(cli(runArgs(["--tasks", "piqa", `--limit=${limit}`])), /--limit/);
    });

    it("token ids outside the vocabulary in score --ids", () => {
        expectOneLineError(cli(["score", "--model", SMALL_MODEL, "--ids", "1,2,99999999"]), /--ids.*99999999/);
    });

    it("a negative token id in score --ids", () => {
        expectOneLineError(cli(["score", "--model", SMALL_MODEL, "--ids=1,-5,3"]), /--ids/);
    });

    it("an unknown command", () => {
        expectOneLineError(cli(["scroe", "--model", SMALL_MODEL]), /scroe/);
    });
});

describe("where results go", () => {
    it("--output_path under a file (a file where a folder is expected), refused before any work is done", () => {
        const file = path.join(tmp, "a-file");
        writeFileSync(file, "not a folder\n");
        const r = cli(runArgs(["--tasks", "piqa", "--limit", "2", "--output_path", path.join(file, "results")]));
        expectOneLineError(r, /--output_path|a-file/);
        // The path is checked before the model is evaluated: no results table was printed and then thrown away.
        expect(r.stdout).not.toContain("|    Tasks");
    });

    it("--output_path in a place nobody may write (/sys), refused before any work is done", () => {
        const r = cli(runArgs(["--tasks", "piqa", "--limit", "2", "--output_path", "/sys/mamba-eval-results"]));
        expectOneLineError(r, /--output_path|\/sys\/mamba-eval-results/);
        expect(r.stdout).not.toContain("|    Tasks");
    });

    it("--output_path on a read-only mount (when this process may mount one)", () => {
        if (process.getuid?.() !== 0) return;
        const mountPoint = path.join(tmp, "read-only-fs");
        mkdirSync(mountPoint);
        if (spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=4k", "tmpfs", mountPoint]).status !== 0) return;
        try {
            const r = cli(runArgs(["--tasks", "piqa", "--limit", "2", "--output_path", mountPoint]));
            expectOneLineError(r, /--output_path|read-only/);
            expect(r.stdout).not.toContain("|    Tasks");
        } finally {
            spawnSync("umount", [mountPoint]);
        }
    });

    it("--output_path in a folder without write permission (non-root only)", () => {
        if (process.getuid?.() === 0) return; // root writes anywhere; the /sys and read-only mount cases cover it
        const dir = path.join(tmp, "read-only");
        mkdirSync(dir);
        chmodSync(dir, 0o500);
        try {
            const r = cli(runArgs(["--tasks", "piqa", "--limit", "2", "--output_path", path.join(dir, "out")]));
            expectOneLineError(r, /--output_path|read-only/);
        } finally {
            chmodSync(dir, 0o700);
        }
    });
});

describe("a full disk", () => {
    it("score --logits-out /dev/full", () => {
        expectOneLineError(cli(["score", "--model", SMALL_MODEL, "--ids", "1,2,3", "--logits-out", "/dev/full"]), /\/dev\/full|no space/i);
    });

    it("stdout on /dev/full", () => {
        const fd = openSync("/dev/full", "w");
        try {
            const r = cli(["score", "--model", SMALL_MODEL, "--ids", "1,2,3"], { stdio: ["ignore", fd, "pipe"] });
            expectOneLineError(r, /no space|stdout|ENOSPC/i);
        } finally {
            closeSync(fd);
        }
    });

    it("--output_path on a 4 KiB tmpfs (when this process may mount one)", () => {
        if (process.getuid?.() !== 0) return;
        const mountPoint = path.join(tmp, "tiny-fs");
        mkdirSync(mountPoint);
        const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=4k", "tmpfs", mountPoint], { encoding: "utf8" });
        if (mount.status !== 0) return; // no mount permission in this container: /dev/full covers ENOSPC
        try {
            writeFileSync(path.join(mountPoint, "filler"), Buffer.alloc(2048)); // leave less room than a results file needs
            const r = cli(runArgs(["--tasks", "piqa", "--limit", "2", "--output_path", mountPoint, "--log_samples"]));
            expectOneLineError(r, /no space|ENOSPC|tiny-fs/i);
        } finally {
            spawnSync("umount", [mountPoint]);
        }
    });
});

describe("--verbose", () => {
    it("keeps the one error line and adds the stack trace", () => {
        const r = cli(["score", "--model", path.join(tmp, "no-such-model"), "--ids", "1,2,3", "--verbose"]);
        expect(r.status).not.toBe(0);
        expect(r.stderr.split("\n").filter((l) => l.startsWith("mamba-eval:"))).toHaveLength(1);
        expect(r.stderr).toMatch(/^\s+at /m);
    });
});
