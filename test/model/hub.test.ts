/**
 * The hub client against a local hub that answers as the real one does (fakeHub.ts): small files through the
 * hub's relative 307 to /api/resolve-cache, LFS files through an absolute signed redirect to a storage host,
 * the huggingface_hub cache layout, resume, checksums, offline use, dataset repos, model snapshots.
 * Failures (timeouts, 5xx, expired URLs, gated repos, fallbacks) are in hubFailures.test.ts.
 */
import { readFile, readlink, readdir } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DownloadError } from "../../src/errors.js";
import { hubDownloadFile, hubListFiles, type HubOptions } from "../../src/hub/hub.js";
import { parseMambaConfig } from "../../src/model/config.js";
import { loadCheckpoint, resolveModelDir } from "../../src/model/loadModel.js";
import { FakeHub, files, gitBlobSha1, sha256 } from "./fakeHub.js";
import { modelTensorSpecs, tempDir, writeSafetensors } from "./helpers.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const CONFIG = { d_model: 4, n_layer: 1, vocab_size: 10, ssm_cfg: { d_state: 2, d_conv: 2 }, rms_norm: true, pad_vocab_size_multiple: 8 };
const BIG = Buffer.alloc(300_000, 7);

const hub = new FakeHub();
let root = "";
let cleanup: () => Promise<void> = async () => {};

/** Fast retries and short timeouts, so failures show in milliseconds. */
const opts = (extra: HubOptions = {}): HubOptions => ({
    progress: false, endpoint: hub.endpoint, cacheDir: path.join(root, "cache"),
    retry: { tries: 3, baseDelayMs: 10, maxDelayMs: 40, lockPollMs: 20 }, timeouts: { metadataMs: 2000, downloadMs: 2000 },
    ...extra,
});

beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir());
    await writeSafetensors(path.join(root, "model.safetensors"), modelTensorSpecs(parseMambaConfig(CONFIG), "mamba_ssm", 16, false));
    const weights = await readFile(path.join(root, "model.safetensors"));
    const revision = (entries: Parameters<typeof files>[0]) => new Map([["main", { commit: COMMIT, files: files(entries) }]]);
    hub.add({ type: "model", id: "org/tiny", revisions: revision([
        ["config.json", JSON.stringify(CONFIG)], ["model.safetensors", weights, true],
        ["pytorch_model.bin", "never fetched: safetensors is preferred", true], ["README.md", "# tiny"],
    ]) });
    const filesRepo = revision([["big.bin", BIG, true], ["sub/dir/note.txt", "nested"]]);
    filesRepo.get("main")!.files.set("corrupt.bin", { body: Buffer.from("tampered bytes"), lfs: true, claimedSha256: sha256(Buffer.from("original bytes")) });
    hub.add({ type: "model", id: "org/files", revisions: filesRepo });
    hub.add({ type: "dataset", id: "org/data", revisions: revision([["data/test.jsonl", '{"a":1}\n']]) });
    hub.add({ type: "model", id: "org/evil", revisions: revision([["../../escape.txt", "x"]]) });
    await hub.start();
});
afterAll(async () => {
    await hub.stop();
    await cleanup();
});

describe("hubDownloadFile", () => {
    it("a small file: the hub's relative 307 to /api/resolve-cache, the huggingface_hub cache layout, the token on the hub only", async () => {
        hub.requests.length = 0;
        const file = await hubDownloadFile("org/files", "sub/dir/note.txt", opts({ token: "secret" }));
        const repoDir = path.join(root, "cache", "models--org--files");
        expect(file).toBe(path.join(repoDir, "snapshots", COMMIT, "sub", "dir", "note.txt"));
        expect(await readFile(file, "utf8")).toBe("nested");
        expect(await readlink(file)).toBe(path.join("..", "..", "..", "..", "blobs", gitBlobSha1(Buffer.from("nested"))));
        expect(await readFile(path.join(repoDir, "refs", "main"), "utf8")).toBe(COMMIT);
        expect(hub.requests.map((r) => `${r.route} ${r.method}`)).toEqual(["resolve HEAD", "resolve-cache HEAD", "resolve-cache GET"]);
        expect(hub.requests.every((r) => r.auth === "Bearer secret")).toBe(true);
        expect(hub.requests[1]!.url).toMatch(new RegExp(`^/api/resolve-cache/models/org/files/${COMMIT}/sub/dir/note\\.txt\\?`));
    });

    it("an LFS file: from the signed storage URL without the token; after a dropped connection, resolves again and resumes with Range", async () => {
        hub.requests.length = 0;
        hub.fault("storage", { kind: "drop", afterBytes: 100_000 }, 1, "GET");
        const lines: string[] = [];
        const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
        const file = await hubDownloadFile("org/files", "big.bin", opts({ progress: sink, token: "secret" }));
        expect((await readFile(file)).equals(BIG)).toBe(true);
        // HEAD, GET (dropped), HEAD again for a fresh signed URL, GET of the rest.
        expect(hub.requests.map((r) => `${r.route} ${r.method}`)).toEqual(["resolve HEAD", "storage GET", "resolve HEAD", "storage GET"]);
        const [first, second] = hub.of("storage");
        expect(hub.of("resolve").map((r) => r.auth)).toEqual(["Bearer secret", "Bearer secret"]);
        expect([first!.auth, second!.auth]).toEqual([undefined, undefined]);
        expect(first!.range).toBeUndefined();
        expect(Number(/^bytes=(\d+)-$/.exec(second!.range ?? "")?.[1])).toBeGreaterThan(0);
        expect(lines.at(-1)).toMatch(/org\/files\/big\.bin@main: 0\.3\/0\.3 MB 100\.0% \(.* MB\/s\) done\n/);
        const blobs = await readdir(path.join(root, "cache", "models--org--files", "blobs"));
        expect(blobs).toContain(sha256(BIG));
        expect(blobs.some((b) => b.endsWith(".incomplete"))).toBe(false);
    });

    it("uses the cache without downloading again, and offline", async () => {
        hub.requests.length = 0;
        await hubDownloadFile("org/files", "big.bin", opts());
        expect(hub.requests.filter((r) => r.method === "GET")).toEqual([]);
        const offline = await hubDownloadFile("org/files", "big.bin", opts({ offline: true }));
        expect(offline).toMatch(/snapshots\/0123456789abcdef0123456789abcdef01234567\/big\.bin$/);
        await expect(hubDownloadFile("org/files", "other.bin", opts({ offline: true })))
            .rejects.toThrow(/org\/files\/other\.bin@main: offline \(HF_HUB_OFFLINE=1\) and the file is not in the cache/);
    });

    it("refuses a checksum mismatch and removes the partial file", async () => {
        await expect(hubDownloadFile("org/files", "corrupt.bin", opts())).rejects.toThrow(/corrupt\.bin@main: sha256 mismatch/);
        const blobs = await readdir(path.join(root, "cache", "models--org--files", "blobs"));
        expect(blobs.filter((b) => b.startsWith(sha256(Buffer.from("original bytes"))))).toEqual([]);
    });

    it("names missing files, revisions and repos as the hub's error codes say, and refuses traversal", async () => {
        await expect(hubDownloadFile("org/files", "missing.txt", opts())).rejects.toThrow(/org\/files\/missing\.txt@main: HTTP 404 \(not found: Entry not found\)/);
        await expect(hubDownloadFile("org/files", "big.bin", opts({ revision: "v9" }))).rejects.toThrow(/big\.bin@v9: HTTP 404 \(revision not found/);
        await expect(hubDownloadFile("org/absent", "x", opts())).rejects.toThrow(/org\/absent\/x@main: HTTP 401 \(repository not found: Repository not found\); check the id, or for a private repo set HF_TOKEN/);
        await expect(hubDownloadFile("org/files", "../../../etc/passwd", opts())).rejects.toThrow(DownloadError);
        await expect(hubDownloadFile("org/files", "/abs", opts())).rejects.toThrow(/refusing file path/);
        await expect(hubDownloadFile("org/files", "a\\..\\b", opts())).rejects.toThrow(/refusing file path/);
        await expect(hubListFiles("org/evil", opts())).rejects.toThrow(/refusing file path "\.\.\/\.\.\/escape\.txt"/);
        await expect(hubDownloadFile("../evil", "x", opts())).rejects.toThrow(/is not of the form org\/name/);
    });

    it("downloads from dataset repos into datasets--ORG--NAME", async () => {
        hub.requests.length = 0;
        const file = await hubDownloadFile("org/data", "data/test.jsonl", opts({ repoType: "dataset" }));
        expect(file).toBe(path.join(root, "cache", "datasets--org--data", "snapshots", COMMIT, "data", "test.jsonl"));
        expect(hub.requests[0]!.url).toBe("/datasets/org/data/resolve/main/data/test.jsonl");
        expect(hub.requests[1]!.url).toMatch(/^\/api\/resolve-cache\/datasets\/org\/data\//);
        const listing = await hubListFiles("org/data", opts({ repoType: "dataset" }));
        expect(listing).toEqual({ commit: COMMIT, files: ["data/test.jsonl"], fromCache: false });
    });

    it("says which server it cannot reach, and falls back to a cached copy then", async () => {
        const down = opts({ endpoint: "http://127.0.0.1:9" });
        await expect(hubDownloadFile("org/files", "x", down)).rejects.toThrow(
            /org\/files\/x@main: cannot get http:\/\/127\.0\.0\.1:9\/org\/files\/resolve\/main\/x: connection refused \(3 tries\); if the files are already in the cache, run with HF_HUB_OFFLINE=1; to use a mirror, set HF_ENDPOINT/,
        );
        const cached = await hubDownloadFile("org/files", "big.bin", down);
        expect(cached).toMatch(/snapshots\/0123456789abcdef0123456789abcdef01234567\/big\.bin$/);
    });
});

describe("resolveModelDir with a hub id", () => {
    it("fetches config and the preferred weights into a snapshot that loads, then works offline", async () => {
        const dir = await resolveModelDir("org/tiny", opts());
        expect(dir).toBe(path.join(root, "cache", "models--org--tiny", "snapshots", COMMIT));
        expect((await readdir(dir)).sort()).toEqual(["config.json", "model.safetensors"]);
        const ckpt = await loadCheckpoint(dir);
        expect(ckpt.config.paddedVocabSize).toBe(16);
        expect(await resolveModelDir("org/tiny", opts({ offline: true }))).toBe(dir);
        await expect(resolveModelDir("org/absent", opts({ offline: true }))).rejects.toThrow(/org\/absent@main: offline/);
        await expect(resolveModelDir("not a model", opts())).rejects.toThrow(/--model not a model: no such folder/);
    });
});
