import { createHash } from "node:crypto";
import { readFile, readlink, readdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DownloadError } from "../../src/errors.js";
import { hubDownloadFile, hubListFiles, type HubOptions } from "../../src/hub/hub.js";
import { loadCheckpoint, resolveModelDir } from "../../src/model/loadModel.js";
import { tempDir, writeSafetensors, modelTensorSpecs } from "./helpers.js";
import { parseMambaConfig } from "../../src/model/config.js";

/** A local stand-in for the hub: resolve URLs (HEAD/GET, LFS redirects, Range), the listing API, one repo per kind. */
interface HostedFile { body: Buffer; lfs: boolean; claimedSha256?: string }

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const gitEtag = (b: Buffer): string => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

const repos = new Map<string, Map<string, HostedFile>>();
const requests: Array<{ method: string; url: string; auth?: string; range?: string }> = [];
let dropNextLfsGetAfter: number | undefined;
let server: Server;
let endpoint = "";
let root = "";
let cleanup: () => Promise<void> = async () => {};

function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = decodeURIComponent(req.url ?? "");
    requests.push({ method: req.method ?? "", url, auth: req.headers.authorization, range: req.headers.range });
    const listing = /^\/api\/(models|datasets)\/(.+)\/revision\/main$/.exec(url);
    if (listing) {
        const files = repos.get(`${listing[1]}:${listing[2]}`);
        if (!files) return void res.writeHead(404).end();
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ sha: COMMIT, siblings: [...files.keys()].map((rfilename) => ({ rfilename })) }));
    }
    const lfs = /^\/lfs\/([0-9a-f]{64})$/.exec(url);
    if (lfs) {
        const file = [...repos.values()].flatMap((m) => [...m.values()]).find((f) => (f.claimedSha256 ?? sha256(f.body)) === lfs[1]);
        if (!file) return void res.writeHead(404).end();
        const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
        const body = file.body.subarray(start);
        res.writeHead(start > 0 ? 206 : 200, { "content-length": body.length });
        if (dropNextLfsGetAfter !== undefined) {
            const cut = dropNextLfsGetAfter;
            dropNextLfsGetAfter = undefined;
            res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
            return;
        }
        return void res.end(req.method === "HEAD" ? undefined : body);
    }
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const files = resolve ? repos.get(`${resolve[1] ? "datasets" : "models"}:${resolve[2]}`) : undefined;
    const file = resolve && files?.get(resolve[4]!);
    if (!resolve || !file || (resolve[3] !== "main" && resolve[3] !== COMMIT)) return void res.writeHead(404).end();
    if (file.lfs) {
        const sha = file.claimedSha256 ?? sha256(file.body);
        // Cross-host redirect (localhost vs 127.0.0.1), as the hub redirects LFS files to its CDN.
        res.writeHead(302, {
            location: `${endpoint.replace("127.0.0.1", "localhost")}/lfs/${sha}`, "x-repo-commit": COMMIT,
            "x-linked-etag": `"${sha}"`, "x-linked-size": String(file.body.length),
        });
        return void res.end();
    }
    res.writeHead(200, { "x-repo-commit": COMMIT, etag: `"${gitEtag(file.body)}"`, "content-length": file.body.length });
    res.end(req.method === "HEAD" ? undefined : file.body);
}

const quiet: HubOptions = { progress: false };
const opts = (extra: HubOptions = {}): HubOptions => ({ ...quiet, endpoint, cacheDir: path.join(root, "cache"), ...extra });

const CONFIG = { d_model: 4, n_layer: 1, vocab_size: 10, ssm_cfg: { d_state: 2, d_conv: 2 }, rms_norm: true, pad_vocab_size_multiple: 8 };

beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir());
    await writeSafetensors(path.join(root, "model.safetensors"), modelTensorSpecs(parseMambaConfig(CONFIG), "mamba_ssm", 16, false));
    const weights = await readFile(path.join(root, "model.safetensors"));
    const big = Buffer.alloc(300_000, 7);
    repos.set("models:org/tiny", new Map([
        ["config.json", { body: Buffer.from(JSON.stringify(CONFIG)), lfs: false }],
        ["model.safetensors", { body: weights, lfs: true }],
        // Both formats, as some repos have: a mamba_ssm-layout checkpoint is read from pytorch_model.bin, as
        // mamba_ssm's from_pretrained reads it; model.safetensors is never fetched.
        ["pytorch_model.bin", { body: await readFile(path.join(import.meta.dirname, "fixtures/tiny-mamba1-bin/pytorch_model.bin")), lfs: true }],
        ["README.md", { body: Buffer.from("# tiny"), lfs: false }],
    ]));
    repos.set("models:org/files", new Map([
        ["big.bin", { body: big, lfs: true }],
        ["corrupt.bin", { body: Buffer.from("tampered bytes"), lfs: true, claimedSha256: sha256(Buffer.from("original bytes")) }],
        ["sub/dir/note.txt", { body: Buffer.from("nested"), lfs: false }],
    ]));
    repos.set("datasets:org/data", new Map([["data/test.jsonl", { body: Buffer.from('{"a":1}\n'), lfs: false }]]));
    repos.set("models:org/evil", new Map([["../../escape.txt", { body: Buffer.from("x"), lfs: false }]]));
    server = createServer(handle);
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
    await new Promise((done) => server.close(done));
    await cleanup();
});

describe("hubDownloadFile", () => {
    it("writes the huggingface_hub cache layout: blobs/<etag>, refs/main, relative snapshot symlinks", async () => {
        const file = await hubDownloadFile("org/files", "sub/dir/note.txt", opts({ token: "secret" }));
        const repoDir = path.join(root, "cache", "models--org--files");
        expect(file).toBe(path.join(repoDir, "snapshots", COMMIT, "sub", "dir", "note.txt"));
        expect(await readFile(file, "utf8")).toBe("nested");
        expect(await readlink(file)).toBe(path.join("..", "..", "..", "..", "blobs", gitEtag(Buffer.from("nested"))));
        expect(await readFile(path.join(repoDir, "refs", "main"), "utf8")).toBe(COMMIT);
        expect(requests.at(-1)!.auth).toBe("Bearer secret");
    });

    it("resumes an LFS download with a Range request after a dropped connection and verifies its sha256", async () => {
        requests.length = 0;
        dropNextLfsGetAfter = 100_000;
        const lines: string[] = [];
        const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
        const file = await hubDownloadFile("org/files", "big.bin", opts({ progress: sink, token: "secret" }));
        expect((await readFile(file)).equals(Buffer.alloc(300_000, 7))).toBe(true);
        const gets = requests.filter((r) => r.method === "GET");
        expect(gets).toHaveLength(2);
        // The token goes to the hub's HEAD, not to the storage host the LFS file redirects to.
        expect(requests.find((r) => r.method === "HEAD")!.auth).toBe("Bearer secret");
        expect(gets.map((r) => r.auth)).toEqual([undefined, undefined]);
        expect(gets[0]!.range).toBeUndefined();
        expect(Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? "")?.[1])).toBeGreaterThan(0);
        expect(lines.at(-1)).toMatch(/org\/files\/big\.bin@main: 0\.3\/0\.3 MB 100\.0% \(.* MB\/s\) done\n/);
        const blobs = await readdir(path.join(root, "cache", "models--org--files", "blobs"));
        expect(blobs).toContain(sha256(Buffer.alloc(300_000, 7)));
        expect(blobs.some((b) => b.endsWith(".incomplete"))).toBe(false);
    });

    it("uses the cache without downloading again, and offline", async () => {
        requests.length = 0;
        await hubDownloadFile("org/files", "big.bin", opts());
        expect(requests.filter((r) => r.method === "GET")).toEqual([]);
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

    it("reports a 404 and refuses traversal in requested and listed names", async () => {
        await expect(hubDownloadFile("org/files", "missing.txt", opts())).rejects.toThrow(/org\/files\/missing\.txt@main: HTTP 404 \(not found\)/);
        await expect(hubDownloadFile("org/files", "../../../etc/passwd", opts())).rejects.toThrow(DownloadError);
        await expect(hubDownloadFile("org/files", "/abs", opts())).rejects.toThrow(/refusing file path/);
        await expect(hubDownloadFile("org/files", "a\\..\\b", opts())).rejects.toThrow(/refusing file path/);
        await expect(hubListFiles("org/evil", opts())).rejects.toThrow(/refusing file path "\.\.\/\.\.\/escape\.txt"/);
        await expect(hubDownloadFile("../evil", "x", opts())).rejects.toThrow(/is not of the form org\/name/);
    });

    it("downloads from dataset repos into datasets--ORG--NAME", async () => {
        const file = await hubDownloadFile("org/data", "data/test.jsonl", opts({ repoType: "dataset" }));
        expect(file).toBe(path.join(root, "cache", "datasets--org--data", "snapshots", COMMIT, "data", "test.jsonl"));
        expect(requests.at(-1)!.url).toBe("/datasets/org/data/resolve/main/data/test.jsonl");
        expect((await hubListFiles("org/data", opts({ repoType: "dataset" }))).files).toEqual(["data/test.jsonl"]);
    });

    it("says which server it cannot reach, and falls back to a cached copy then", async () => {
        await expect(hubDownloadFile("org/files", "x", opts({ endpoint: "http://127.0.0.1:9" }))).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:9/);
        const cached = await hubDownloadFile("org/files", "big.bin", opts({ endpoint: "http://127.0.0.1:9" }));
        expect(cached).toMatch(/snapshots\/0123456789abcdef0123456789abcdef01234567\/big\.bin$/);
    });
});

describe("resolveModelDir with a hub id", () => {
    it("fetches config and the preferred weights into a snapshot that loads, then works offline", async () => {
        const dir = await resolveModelDir("org/tiny", opts());
        expect(dir).toBe(path.join(root, "cache", "models--org--tiny", "snapshots", COMMIT));
        expect((await readdir(dir)).sort()).toEqual(["config.json", "pytorch_model.bin"]);
        const ckpt = await loadCheckpoint(dir);
        expect(ckpt.config.paddedVocabSize).toBe(16);
        expect(await resolveModelDir("org/tiny", opts({ offline: true }))).toBe(dir);
        await expect(resolveModelDir("org/absent", opts({ offline: true }))).rejects.toThrow(/org\/absent@main: offline/);
        await expect(resolveModelDir("not a model", opts())).rejects.toThrow(/--model not a model: no such folder/);
    });
});
