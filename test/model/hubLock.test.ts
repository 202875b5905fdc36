/**
 * Download locks (hubLock.ts), shared between processes at huggingface_hub's path `.locks/<repo folder>/<etag>.lock`:
 * concurrent downloads of one blob fetch it once; a live holder in another process is waited for (abortably); the
 * lock of a process that died, or a foreign lock file nobody touches any more, is taken over.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hubDownloadFile, type HubOptions } from "../../src/hub/hub.js";
import { withFileLock } from "../../src/hub/hubLock.js";
import { FakeHub, files, sha256 } from "./fakeHub.js";
import { tempDir } from "./helpers.js";

const COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
const BLOB = Buffer.alloc(120_000, 3);
const REPO_ROOT = path.resolve(import.meta.dirname, "../..");

const hub = new FakeHub();
let root = "";
let cleanup: () => Promise<void> = async () => {};
let cacheDir = "";
let count = 0;

const opts = (extra: HubOptions = {}): HubOptions => ({
    progress: false, endpoint: hub.endpoint, cacheDir, retry: { tries: 3, baseDelayMs: 10, lockPollMs: 20, lockStaleMs: 500 }, ...extra,
});
const lockFile = (): string => path.join(cacheDir, ".locks", "models--org--m", `${sha256(BLOB)}.lock`);

/** Starts lockHolder.ts on `file`, resolving once it holds the lock. */
function holdLock(file: string, holdMs: number): Promise<ChildProcess> {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "test/model/lockHolder.ts"), file, String(holdMs)], { cwd: REPO_ROOT });
    return new Promise((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => String(d).includes("held") && resolve(child));
        child.on("exit", (code) => reject(new Error(`lock holder exited (${code})`)));
    });
}

beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir());
    hub.add({ type: "model", id: "org/m", revisions: new Map([["main", { commit: COMMIT, files: files([["w.bin", BLOB, true]]) }]]) });
    await hub.start();
});
afterAll(async () => {
    await hub.stop();
    await cleanup();
});
beforeEach(() => {
    hub.requests.length = 0;
    cacheDir = path.join(root, `cache${count++}`);
});

describe("download locks", () => {
    it("concurrent downloads of one blob fetch it once and both get the file", async () => {
        const [a, b] = await Promise.all([hubDownloadFile("org/m", "w.bin", opts()), hubDownloadFile("org/m", "w.bin", opts())]);
        expect(a).toBe(b);
        expect((await readFile(a)).equals(BLOB)).toBe(true);
        expect(hub.of("storage", "GET")).toHaveLength(1);
    });

    it("waits for a lock another process holds, saying so, then finds the blob it wrote or downloads it", async () => {
        const holder = await holdLock(lockFile(), 400);
        const notes: string[] = [];
        const sink = new Writable({ write(chunk, _e, done) { notes.push(String(chunk)); done(); } });
        const started = Date.now();
        const file = await hubDownloadFile("org/m", "w.bin", opts({ progress: sink }));
        expect(Date.now() - started).toBeGreaterThanOrEqual(200);
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(notes.join("")).toMatch(/org\/m\/w\.bin@main: another process is downloading it; waiting \(lock .*\.lock\)/);
        await new Promise((done) => (holder.exitCode !== null ? done(null) : holder.on("exit", done)));
    });

    it("an abort ends the wait for a lock at once", async () => {
        const holder = await holdLock(lockFile(), 5000);
        const controller = new AbortController();
        const reason = new Error("interrupted by SIGTERM");
        setTimeout(() => controller.abort(reason), 100);
        const started = Date.now();
        await expect(hubDownloadFile("org/m", "w.bin", opts({ signal: controller.signal }))).rejects.toBe(reason);
        expect(Date.now() - started).toBeLessThan(1000);
        holder.kill("SIGKILL");
    });

    it("takes over the lock of a process that died holding it", async () => {
        const holder = await holdLock(lockFile(), 60_000);
        holder.kill("SIGKILL");
        await new Promise((done) => holder.on("exit", done));
        expect(JSON.parse(await readFile(lockFile(), "utf8")).pid).toBe(holder.pid);
        const started = Date.now();
        const file = await hubDownloadFile("org/m", "w.bin", opts({ retry: { lockPollMs: 20, lockStaleMs: 30_000 } }));
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(Date.now() - started).toBeLessThan(10_000); // taken over because its pid is gone, not after the 30 s stale time
    });

    it("takes over a foreign lock file (another tool's, or another host's) once nobody has touched it for the stale time", async () => {
        await mkdir(path.dirname(lockFile()), { recursive: true });
        await writeFile(lockFile(), ""); // huggingface_hub leaves its (flock) lock files behind, empty
        const old = new Date(Date.now() - 10_000);
        await utimes(lockFile(), old, old);
        const file = await hubDownloadFile("org/m", "w.bin", opts());
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        // A fresh lock of a process on another host is waited for, until it goes stale (500 ms here).
        const other = { pid: 1, host: `${hostname()}-elsewhere`, id: "x" };
        const lock = path.join(cacheDir, ".locks", "x.lock");
        await mkdir(path.dirname(lock), { recursive: true });
        await writeFile(lock, JSON.stringify(other));
        const started = Date.now();
        await withFileLock(lock, { pollMs: 20, staleMs: 500 }, async () => undefined);
        expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    });
});
