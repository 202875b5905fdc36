/**
 * The hub client when the hub misbehaves, against the local hub of fakeHub.ts: expired signed URLs, 5xx/429 with
 * Retry-After, a connection accepted and never answered, a body that stalls, gated repos, listings and files
 * answered from the cache when the hub is down, and aborts (SIGINT/SIGTERM). Timeouts and waits are milliseconds
 * here, through the options.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hubDownloadFile, hubListFiles, type HubOptions } from "../../src/hub/hub.js";
import { resolveModelDir } from "../../src/model/loadModel.js";
import { FakeHub, files, sha256 } from "./fakeHub.js";
import { tempDir } from "./helpers.js";

const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const BLOB = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 251));

const hub = new FakeHub();
let root = "";
let cleanup: () => Promise<void> = async () => {};
let cacheCount = 0;
let cacheDir = "";

/** A sink collecting the notice lines. */
function lines(): { sink: Writable; text: () => string } {
    const parts: string[] = [];
    return { sink: new Writable({ write(chunk, _e, done) { parts.push(String(chunk)); done(); } }), text: () => parts.join("") };
}

const opts = (extra: HubOptions = {}): HubOptions => ({
    progress: false, endpoint: hub.endpoint, cacheDir,
    retry: { tries: 3, baseDelayMs: 10, maxDelayMs: 40, lockPollMs: 20 }, timeouts: { metadataMs: 1000, downloadMs: 1000 },
    ...extra,
});

beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir());
    const main = (entries: Parameters<typeof files>[0]) => new Map([["main", { commit: COMMIT, files: files(entries) }]]);
    hub.add({ type: "model", id: "org/m", revisions: main([["config.json", '{"d_model": 4}'], ["model.safetensors", BLOB, true]]) });
    hub.add({ type: "model", id: "org/gated", gatedFor: "hf_granted", revisions: main([["config.json", "{}"], ["w.bin", BLOB, true]]) });
    await hub.start();
});
afterAll(async () => {
    await hub.stop();
    await cleanup();
});
beforeEach(() => {
    hub.clearFaults();
    hub.requests.length = 0;
    hub.signedUrlTtlMs = 60_000;
    cacheDir = path.join(root, `cache${cacheCount++}`);
});

describe("signed storage URLs", () => {
    it("an expired signed URL is resolved again (a fresh one), never reported as a gated repo", async () => {
        hub.fault("resolve", { kind: "expired" }, 1, "HEAD");
        const file = await hubDownloadFile("org/m", "model.safetensors", opts());
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(hub.requests.map((r) => `${r.route} ${r.method}`)).toEqual(["resolve HEAD", "storage GET", "resolve HEAD", "storage GET"]);
        const [stale, fresh] = hub.of("storage").map((r) => new URL(r.url, "http://x").searchParams.get("Expires"));
        expect(Number(stale)).toBeLessThan(Date.now());
        expect(Number(fresh)).toBeGreaterThan(Date.now());
    });

    it("a retry after a dropped body never reuses a URL that expired during the wait", async () => {
        hub.signedUrlTtlMs = 50;
        hub.fault("storage", { kind: "drop", afterBytes: 64_000 }, 1, "GET");
        const file = await hubDownloadFile("org/m", "model.safetensors", opts({ retry: { tries: 3, baseDelayMs: 150, maxDelayMs: 150 } }));
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        const storage = hub.of("storage");
        expect(storage).toHaveLength(2);
        expect(storage[0]!.url).not.toBe(storage[1]!.url);
        expect(storage[1]!.range).toMatch(/^bytes=\d+-$/);
    });

    it("a storage host that keeps refusing fails with what happened, keeping the bytes for the next run", async () => {
        hub.fault("storage", { kind: "status", status: 403 }, 10, "GET");
        await expect(hubDownloadFile("org/m", "model.safetensors", opts())).rejects.toThrow(
            /org\/m\/model\.safetensors@main: the storage host http:\/\/127\.0\.0\.1:\d+ refused the signed URL \(HTTP 403; expired\?\) \(3 tries in a row\)/,
        );
    });
});

describe("transient errors: retries, backoff, Retry-After", () => {
    it("honours Retry-After on 503 and 429 (the 10 s backoff is never waited)", async () => {
        hub.fault("resolve", { kind: "status", status: 503, headers: { "retry-after": "0" } }, 2, "HEAD");
        hub.fault("storage", { kind: "status", status: 429, headers: { "retry-after": "0" } }, 1, "GET");
        const started = Date.now();
        const file = await hubDownloadFile("org/m", "model.safetensors", opts({ retry: { tries: 4, baseDelayMs: 10_000, maxDelayMs: 10_000 } }));
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(Date.now() - started).toBeLessThan(5000);
        expect(hub.of("resolve", "HEAD").length).toBe(4); // two 503s, the good HEAD, the HEAD before the retried GET
        expect(hub.of("storage", "GET").length).toBe(2);
    }, 8000);

    it("a Retry-After beyond the limit fails at once, saying how long the hub asked to wait", async () => {
        hub.fault("resolve", { kind: "status", status: 429, headers: { "retry-after": "3600" } }, 5, "HEAD");
        await expect(hubDownloadFile("org/m", "config.json", opts({ retry: { tries: 5, baseDelayMs: 10, maxRetryAfterMs: 60_000 } }))).rejects.toThrow(
            /config\.json@main: cannot get http:\/\/127\.0\.0\.1:\d+\/org\/m\/resolve\/main\/config\.json: HTTP 429, and the server asks to retry after 3600 s/,
        );
    });

    it("5xx on every try: the final error names the URL, the tries and what to do", async () => {
        hub.fault("resolve", { kind: "status", status: 502 }, 10, "HEAD");
        await expect(hubDownloadFile("org/m", "config.json", opts())).rejects.toThrow(
            /cannot get http:\/\/127\.0\.0\.1:\d+\/org\/m\/resolve\/main\/config\.json: HTTP 502 \(3 tries\); if the files are already in the cache, run with HF_HUB_OFFLINE=1; to use a mirror, set HF_ENDPOINT/,
        );
        // One quick try (to fall back on the cache), then the full retry budget.
        expect(hub.of("resolve", "HEAD")).toHaveLength(4);
    });
});

describe("a hub that does not answer", () => {
    it("a connection accepted and never answered ends after the timeout and the retries, with one clear line", async () => {
        hub.fault("resolve", { kind: "hang" }, 10);
        const started = Date.now();
        const error = await hubDownloadFile("org/m", "config.json", opts({ timeouts: { metadataMs: 100 }, retry: { tries: 2, baseDelayMs: 10 } })).catch((e: Error) => e);
        expect(Date.now() - started).toBeLessThan(3000);
        expect(String(error)).toMatch(/org\/m\/config\.json@main: cannot get http:\/\/127\.0\.0\.1:\d+\/org\/m\/resolve\/main\/config\.json: no answer within 0\.1 s \(2 tries\); if the files are already in the cache, run with HF_HUB_OFFLINE=1; to use a mirror, set HF_ENDPOINT/);
        expect((error as Error).message).not.toContain("\n");
    });

    it("a body that stalls mid-way is resumed from where it stopped", async () => {
        hub.fault("storage", { kind: "stall", afterBytes: 50_000 }, 1, "GET");
        const file = await hubDownloadFile("org/m", "model.safetensors", opts({ timeouts: { downloadMs: 150 } }));
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(hub.of("storage").map((r) => r.range)).toEqual([undefined, "bytes=50000-"]);
    });

    it("a body that never recovers fails, and the bytes it got are kept for the next run", async () => {
        hub.fault("storage", { kind: "stall", afterBytes: 50_000 }, 1, "GET");
        hub.fault("storage", { kind: "hang" }, 10, "GET");
        await expect(hubDownloadFile("org/m", "model.safetensors", opts({ timeouts: { downloadMs: 100 } }))).rejects.toThrow(
            /model\.safetensors@main: the storage host http:\/\/127\.0\.0\.1:\d+: no answer within 0\.1 s \(3 tries in a row\); 50000 of 200000 bytes are kept and a new run resumes from there/,
        );
        const partial = path.join(cacheDir, "models--org--m", "blobs", `${sha256(BLOB)}.incomplete`);
        expect((await stat(partial)).size).toBe(50_000);
        hub.clearFaults();
        hub.requests.length = 0;
        const file = await hubDownloadFile("org/m", "model.safetensors", opts());
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(hub.of("storage").map((r) => r.range)).toEqual(["bytes=50000-"]);
    });
});

describe("the cache answers when the hub cannot", () => {
    it("files and listings come from the cache when the hub is down, hangs or fails, with a notice and no HF_HUB_OFFLINE", async () => {
        const dir = await resolveModelDir("org/m", opts());
        const down = opts({ endpoint: "http://127.0.0.1:9" });
        expect(await resolveModelDir("org/m", down)).toBe(dir);
        const notes = lines();
        hub.fault("listing", { kind: "status", status: 500 }, 10);
        expect(await resolveModelDir("org/m", opts({ progress: notes.sink }))).toBe(dir);
        expect(notes.text()).toMatch(/org\/m@main: listing files: http:\/\/127\.0\.0\.1:\d+\/api\/models\/org\/m\/revision\/main: HTTP 500; using the cached snapshot 89abcdef/);
        hub.clearFaults();
        hub.fault("resolve", { kind: "hang" }, 10);
        hub.requests.length = 0;
        expect(await hubDownloadFile("org/m", "config.json", opts({ progress: notes.sink, timeouts: { metadataMs: 100 } }))).toBe(path.join(dir, "config.json"));
        expect(hub.of("resolve")).toHaveLength(1); // one try, then the cache: no retries when the cache has it
        expect(notes.text()).toMatch(/org\/m\/config\.json@main: .*no answer within 0\.1 s; using the cached copy/);
        const listing = await hubListFiles("org/m", down);
        expect(listing).toEqual({ commit: COMMIT, files: ["config.json", "model.safetensors"], fromCache: true });
    });

    it("a listing with nothing cached is retried, then fails naming the URL", async () => {
        hub.fault("listing", { kind: "status", status: 503 }, 10);
        await expect(hubListFiles("org/m", opts())).rejects.toThrow(
            /org\/m@main: listing files: cannot get http:\/\/127\.0\.0\.1:\d+\/api\/models\/org\/m\/revision\/main: HTTP 503 \(3 tries\); if the files are already in the cache, run with HF_HUB_OFFLINE=1/,
        );
    });
});

describe("gated repos", () => {
    it("a 401/403 with X-Error-Code GatedRepo says the repo is gated and what to do; the granted token works", async () => {
        await expect(hubDownloadFile("org/gated", "config.json", opts())).rejects.toThrow(
            /org\/gated\/config\.json@main: HTTP 401 \(gated repo\): accept its access conditions at http:\/\/127\.0\.0\.1:\d+\/org\/gated while logged in, then set HF_TOKEN to a token of that account/,
        );
        await expect(hubDownloadFile("org/gated", "config.json", opts({ token: "hf_other" }))).rejects.toThrow(
            /HTTP 403 \(gated repo\): .* then make sure HF_TOKEN \(or the token file\) is a token of that account/,
        );
        const file = await hubDownloadFile("org/gated", "w.bin", opts({ token: "hf_granted" }));
        expect((await readFile(file)).equals(BLOB)).toBe(true);
        expect(hub.of("storage").every((r) => r.auth === undefined)).toBe(true);
    });
});

describe("aborts (SIGINT/SIGTERM)", () => {
    const interrupted = (): { controller: AbortController; reason: Error } => {
        const controller = new AbortController();
        const reason = new Error("interrupted by SIGINT");
        setTimeout(() => controller.abort(reason), 100);
        return { controller, reason };
    };

    it("end a stalled body, an unanswered request and a backoff wait at once, with the signal's reason", async () => {
        const slow = { timeouts: { metadataMs: 30_000, downloadMs: 30_000 }, retry: { tries: 5, baseDelayMs: 30_000 } };
        const cases: Array<() => void> = [
            () => hub.fault("storage", { kind: "stall", afterBytes: 10_000 }, 1, "GET"),
            () => hub.fault("resolve", { kind: "hang" }, 1),
            () => hub.fault("resolve", { kind: "status", status: 503 }, 5),
        ];
        for (const arrange of cases) {
            hub.clearFaults();
            arrange();
            const { controller, reason } = interrupted();
            const started = Date.now();
            const error = await hubDownloadFile("org/m", "model.safetensors", opts({ ...slow, signal: controller.signal, cacheDir: path.join(root, `abort${cacheCount++}`) })).catch((e: unknown) => e);
            expect(error).toBe(reason);
            expect(Date.now() - started).toBeLessThan(2000);
        }
    });
});
