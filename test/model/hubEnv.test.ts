/**
 * The hub's environment, resolved as huggingface_hub resolves it (cache folder, token, endpoint, timeouts), and
 * bad settings or a cache another tool left in an unexpected shape failing as one line, in the library and
 * through the CLI (a child process, as a user runs it).
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DownloadError, MambaEvalError } from "../../src/errors.js";
import { hubDownloadFile, hubListFiles, type HubOptions } from "../../src/hub/hub.js";
import { checkEndpoint, expandPath, resolveCacheRoot, tokenFromEnvironment } from "../../src/hub/hubEnv.js";
import { FakeHub, files } from "./fakeHub.js";
import { tempDir } from "./helpers.js";

const COMMIT = "00112233445566778899aabbccddeeff00112233";
const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
const HUB_VARIABLES = ["HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"];

const hub = new FakeHub();
let root = "";
let cleanup: () => Promise<void> = async () => {};
const saved = Object.fromEntries(HUB_VARIABLES.map((k) => [k, process.env[k]]));

/** Sets the hub variables for one test (the others unset). */
function environment(values: Record<string, string>): void {
    for (const k of HUB_VARIABLES) delete process.env[k];
    Object.assign(process.env, values);
}

const quick: HubOptions = { progress: false, retry: { tries: 2, baseDelayMs: 10 } };

beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir());
    const main = (entries: Parameters<typeof files>[0]) => new Map([["main", { commit: COMMIT, files: files(entries) }]]);
    hub.add({ type: "model", id: "org/m", revisions: main([["config.json", "{}"], ["model.safetensors", Buffer.alloc(1000, 1), true]]) });
    hub.add({ type: "model", id: "org/gated", gatedFor: "hf_from_file", revisions: main([["config.json", '{"gated": true}']]) });
    await hub.start();
});
afterEach(() => {
    for (const k of HUB_VARIABLES) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    }
});
afterAll(async () => {
    await hub.stop();
    await cleanup();
});

describe("settings from the environment", () => {
    it("cache folder: HF_HUB_CACHE, then HUGGINGFACE_HUB_CACHE, then $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub", () => {
        const all = { HF_HUB_CACHE: "/a", HUGGINGFACE_HUB_CACHE: "/b", HF_HOME: "/c", XDG_CACHE_HOME: "/d" };
        expect(resolveCacheRoot(all)).toEqual({ dir: "/a", source: "HF_HUB_CACHE" });
        expect(resolveCacheRoot({ ...all, HF_HUB_CACHE: "" })).toEqual({ dir: "/b", source: "HUGGINGFACE_HUB_CACHE" });
        expect(resolveCacheRoot({ HF_HOME: "/c", XDG_CACHE_HOME: "/d" })).toEqual({ dir: "/c/hub", source: "HF_HOME" });
        expect(resolveCacheRoot({ XDG_CACHE_HOME: "/d" })).toEqual({ dir: "/d/huggingface/hub", source: "XDG_CACHE_HOME" });
        expect(resolveCacheRoot({})).toEqual({ dir: path.join(homedir(), ".cache/huggingface/hub"), source: "default" });
        expect(resolveCacheRoot({ HF_HOME: "~/hf" }).dir).toBe(path.join(homedir(), "hf/hub"));
        expect(expandPath("$BASE/x/${BASE}/$NOPE", { BASE: "/b" })).toBe("/b/x//b/$NOPE");
    });

    it("token: HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the file HF_TOKEN_PATH or $HF_HOME/token (trimmed)", async () => {
        const home = path.join(root, "home-token");
        await mkdir(home, { recursive: true });
        await writeFile(path.join(home, "token"), "  hf_in_home\n");
        await writeFile(path.join(root, "elsewhere-token"), "hf_at_path\r\n");
        expect(tokenFromEnvironment({ HF_TOKEN: "hf_a", HUGGING_FACE_HUB_TOKEN: "hf_b", HF_HOME: home })).toBe("hf_a");
        expect(tokenFromEnvironment({ HF_TOKEN: " ", HUGGING_FACE_HUB_TOKEN: "hf_b", HF_HOME: home })).toBe("hf_b");
        expect(tokenFromEnvironment({ HF_HOME: home })).toBe("hf_in_home");
        expect(tokenFromEnvironment({ HF_HOME: home, HF_TOKEN_PATH: path.join(root, "elsewhere-token") })).toBe("hf_at_path");
        expect(tokenFromEnvironment({ XDG_CACHE_HOME: path.join(root, "no-such") })).toBeUndefined();
        expect(() => tokenFromEnvironment({ HF_TOKEN_PATH: home })).toThrow(/HF_TOKEN_PATH .*home-token: cannot read the hub token \(EISDIR\)/);
    });

    it("the token file is what the hub receives (a gated repo opens with it)", async () => {
        const home = path.join(root, "home-gated");
        await mkdir(home, { recursive: true });
        await writeFile(path.join(home, "token"), "hf_from_file\n");
        environment({ HF_HOME: home, HF_ENDPOINT: hub.endpoint });
        const file = await hubDownloadFile("org/gated", "config.json", quick);
        expect(file.startsWith(path.join(home, "hub", "models--org--gated"))).toBe(true);
        expect(await readFile(file, "utf8")).toBe('{"gated": true}');
        environment({ HF_HOME: home, HF_ENDPOINT: hub.endpoint, HUGGING_FACE_HUB_TOKEN: "hf_from_file", HF_TOKEN_PATH: path.join(root, "none") });
        expect(await hubDownloadFile("org/gated", "config.json", { ...quick, cacheDir: path.join(root, "c-legacy") })).toMatch(/config\.json$/);
    });

    it("HUGGINGFACE_HUB_CACHE and XDG_CACHE_HOME place the cache; HF_HUB_CACHE wins over both", async () => {
        environment({ HF_ENDPOINT: hub.endpoint, HUGGINGFACE_HUB_CACHE: path.join(root, "legacy"), XDG_CACHE_HOME: path.join(root, "xdg") });
        expect(await hubDownloadFile("org/m", "config.json", quick)).toBe(path.join(root, "legacy", "models--org--m", "snapshots", COMMIT, "config.json"));
        environment({ HF_ENDPOINT: hub.endpoint, XDG_CACHE_HOME: path.join(root, "xdg") });
        expect(await hubDownloadFile("org/m", "config.json", quick)).toBe(path.join(root, "xdg", "huggingface", "hub", "models--org--m", "snapshots", COMMIT, "config.json"));
        environment({ HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: path.join(root, "new"), HUGGINGFACE_HUB_CACHE: path.join(root, "legacy") });
        expect(await hubDownloadFile("org/m", "config.json", quick)).toBe(path.join(root, "new", "models--org--m", "snapshots", COMMIT, "config.json"));
    });

    it("HF_HUB_ETAG_TIMEOUT bounds each wait for an answer; a bad value is refused by name", async () => {
        hub.fault("resolve", { kind: "hang" }, 4);
        environment({ HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: path.join(root, "c-timeout"), HF_HUB_ETAG_TIMEOUT: "0.1" });
        await expect(hubDownloadFile("org/m", "config.json", quick)).rejects.toThrow(/no answer within 0\.1 s \(2 tries\)/);
        hub.clearFaults();
        environment({ HF_ENDPOINT: hub.endpoint, HF_HUB_ETAG_TIMEOUT: "soon" });
        await expect(hubDownloadFile("org/m", "config.json", quick)).rejects.toThrow('HF_HUB_ETAG_TIMEOUT="soon": expected a number of seconds > 0');
    });
});

describe("bad settings and foreign caches fail as one line", () => {
    const oneLine = async (promise: Promise<unknown>, pattern: RegExp): Promise<void> => {
        const error = await promise.then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(DownloadError);
        expect(error).toBeInstanceOf(MambaEvalError);
        expect((error as Error).message).not.toContain("\n");
        expect((error as Error).message).toMatch(pattern);
    };

    it("HF_ENDPOINT that is not an http(s) URL", async () => {
        environment({ HF_ENDPOINT: "huggingface.co" });
        await oneLine(hubDownloadFile("org/m", "config.json", quick), /^HF_ENDPOINT="huggingface\.co" is not a URL; expected e\.g\. https:\/\/huggingface\.co/);
        environment({ HF_ENDPOINT: "ftp://mirror.example" });
        await oneLine(hubListFiles("org/m", quick), /^HF_ENDPOINT="ftp:\/\/mirror\.example" is not an http\(s\) URL/);
        expect(checkEndpoint("https://hf-mirror.com/", true)).toBe("https://hf-mirror.com");
    });

    it("HF_HOME that is a file", async () => {
        const file = path.join(root, "hf-home-file");
        await writeFile(file, "not a folder");
        environment({ HF_HOME: file, HF_ENDPOINT: hub.endpoint });
        await oneLine(hubDownloadFile("org/m", "config.json", quick), new RegExp(`^${file}: is a file where the hub cache needs a folder \\(cache from HF_HOME=${file}\\)$`));
    });

    it("a cache in a shape this layout cannot hold: a refs file that is not a commit, folders where files belong and files where folders belong", async () => {
        const cacheDir = path.join(root, "foreign");
        const repo = path.join(cacheDir, "models--org--m");
        await mkdir(path.join(repo, "refs"), { recursive: true });
        await writeFile(path.join(repo, "refs", "main"), "ref: refs/heads/main\n");
        await oneLine(hubDownloadFile("org/m", "config.json", { ...quick, cacheDir, offline: true }),
            /refs\/main: holds "ref: refs\/heads\/main", not a 40-hex commit hash \(a cache written by another tool, or damaged\); remove it/);
        await writeFile(path.join(repo, "refs", "main"), COMMIT);
        await writeFile(path.join(repo, "snapshots"), "");
        await oneLine(hubListFiles("org/m", { ...quick, cacheDir, offline: true }), /snapshots: is a file where the hub cache needs a folder/);

        const online = { ...quick, endpoint: hub.endpoint, cacheDir: path.join(root, "foreign2") };
        const repo2 = path.join(online.cacheDir, "models--org--m");
        await mkdir(path.join(repo2, "refs", "main"), { recursive: true });
        await oneLine(hubDownloadFile("org/m", "config.json", online), /refs\/main: is a folder where the hub cache needs a file/);
        await writeFile(path.join(root, "foreign2", "blobs-file"), "");
        await mkdir(path.join(repo2, "snapshots", COMMIT, "config.json"), { recursive: true });
        await import("node:fs/promises").then((fs) => fs.rm(path.join(repo2, "refs", "main"), { recursive: true }));
        await oneLine(hubDownloadFile("org/m", "config.json", online), new RegExp(`snapshots/${COMMIT}/config\\.json: is not a file`));
        await writeFile(path.join(repo2, "blobs"), "");
        await oneLine(hubDownloadFile("org/m", "model.safetensors", online), /models--org--m\/blobs: is a file where the hub cache needs a folder/);
    });

    /** Runs the CLI in a child process (asynchronously, so the local hub in this process keeps answering). */
    function cli(args: string[], env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
        const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !HUB_VARIABLES.includes(k)));
        const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "test/reliability/cliEntry.ts"), ...args], {
            cwd: REPO_ROOT, env: { ...base, NO_COLOR: "1", ...env },
        });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += String(d)));
        return new Promise((resolve) => child.on("close", (status) => resolve({ status, stderr })));
    }

    it("through the CLI: one mamba-eval line naming the setting, never an internal error", async () => {
        const args = ["run", "--model", "org/m", "--tasks", "lambada_openai", "--data_dir", path.join(REPO_ROOT, "fixtures/tasks")];
        const file = path.join(root, "hf-home-file-cli");
        await writeFile(file, "");
        const runs = await Promise.all([
            cli(args, { HF_ENDPOINT: "huggingface.co" }),
            cli(args, { HF_ENDPOINT: hub.endpoint, HF_HOME: file }),
        ]);
        const expected = [/HF_ENDPOINT="huggingface\.co" is not a URL/, /hf-home-file-cli: is a file where the hub cache needs a folder \(cache from HF_HOME=/];
        runs.forEach((r, i) => {
            const lines = r.stderr.split("\n").filter((l) => l.startsWith("mamba-eval:"));
            expect(r.status, r.stderr).toBe(1);
            expect(lines, r.stderr).toHaveLength(1);
            expect(lines[0]).toMatch(expected[i]!);
            expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
        });
    });
});
