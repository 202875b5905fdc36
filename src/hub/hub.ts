/**
 * Hugging Face hub downloads into the standard hub cache (see hubCache.ts for the layout), for model and dataset
 * repos, with Node's fetch:
 *  - `{endpoint}/{repo}/resolve/{revision}/{path}` (datasets: `{endpoint}/datasets/{repo}/resolve/...`); a HEAD
 *    gives X-Repo-Commit, X-Linked-Etag/ETag and X-Linked-Size/Content-Length;
 *  - the file goes to `blobs/<etag>.incomplete`, resumes with a Range request after a dropped connection, is checked
 *    for size and (LFS files, whose etag is a sha256) content hash, then renamed into place atomically;
 *  - `{endpoint}/api/{models|datasets}/{repo}/revision/{rev}` lists a repo's files;
 *  - HF_ENDPOINT, HF_TOKEN (Bearer), HF_HUB_OFFLINE=1 (cache only), HF_HUB_CACHE / HF_HOME.
 * No path from a server or an index may leave the cache folder.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { DownloadError } from "../errors.js";
import {
    assertSafeRepoPath, assertSafeRevision, hubCacheRoot, HubRepoCache, isCommitHash, isHubRepoId as isRepoId,
    type HubRepoType,
} from "./hubCache.js";
import { DownloadProgress, type ProgressSink } from "./hubProgress.js";

/** Options of every hub call; unset ones come from the environment. */
export interface HubOptions {
    repoType?: HubRepoType;
    /** Branch, tag or commit (default "main"). */
    revision?: string;
    /** Cache root (default $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
    cacheDir?: string;
    /** Hub URL (default $HF_ENDPOINT or https://huggingface.co). */
    endpoint?: string;
    /** Access token (default $HF_TOKEN). */
    token?: string;
    /** Use only the cache (default: $HF_HUB_OFFLINE is 1/true/yes/on). */
    offline?: boolean;
    /** Progress lines (default process.stderr). */
    progress?: ProgressSink;
}

interface HubSettings {
    repoType: HubRepoType;
    revision: string;
    cacheDir: string;
    endpoint: string;
    token: string | undefined;
    offline: boolean;
    progress: ProgressSink;
}

/** Whether `id` looks like a hub repo id "org/name". */
export function isHubRepoId(id: string): boolean {
    return isRepoId(id, true);
}

function settingsOf(opts: HubOptions): HubSettings {
    const env = process.env;
    const revision = opts.revision ?? "main";
    assertSafeRevision(revision);
    return {
        repoType: opts.repoType ?? "model",
        revision,
        cacheDir: opts.cacheDir ?? hubCacheRoot(env),
        endpoint: (opts.endpoint ?? env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, ""),
        token: opts.token ?? (env.HF_TOKEN || undefined),
        offline: opts.offline ?? /^(1|true|yes|on)$/i.test(env.HF_HUB_OFFLINE ?? ""),
        progress: opts.progress ?? process.stderr,
    };
}

const encodePath = (filePath: string): string => filePath.split("/").map(encodeURIComponent).join("/");

function resolveUrl(s: HubSettings, repo: string, filePath: string, revision: string): string {
    const prefix = s.repoType === "dataset" ? "datasets/" : "";
    return `${s.endpoint}/${prefix}${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(filePath)}`;
}

function authHeaders(s: HubSettings): Record<string, string> {
    return s.token ? { authorization: `Bearer ${s.token}` } : {};
}

/** A one-line reason for an HTTP failure. */
function httpFailure(what: string, status: number): DownloadError {
    const hint = status === 401 || status === 403 ? " (gated or private: set HF_TOKEN)" : status === 404 ? " (not found)" : "";
    return new DownloadError(`${what}: HTTP ${status}${hint}`);
}

/** Normalises an etag header: drops the weak prefix and quotes; refuses anything not safe as a file name. */
function normaliseEtag(raw: string | null, what: string): string {
    const etag = (raw ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(etag)) throw new DownloadError(`${what}: the server sent no usable ETag (${JSON.stringify(raw)})`);
    return etag;
}

/** What a HEAD on a resolve URL says about a file. */
interface FileMetadata {
    commit: string;
    etag: string;
    size: number;
    /** Where to GET the bytes (the LFS redirect target when the hub redirects). */
    url: string;
}

/** The server could not be reached at all (as opposed to answering with an error status). */
class HubUnreachableError extends DownloadError {}

async function fetchOrFail(url: string, init: RequestInit, what: string): Promise<Response> {
    try {
        return await fetch(url, init);
    } catch (e) {
        throw new HubUnreachableError(`${what}: cannot reach ${new URL(url).origin} (${(e as Error).cause ?? (e as Error).message})`);
    }
}

/** HEAD, following same-host (relative) redirects, stopping at a cross-host one (the LFS CDN) as huggingface_hub does. */
async function headFile(s: HubSettings, repo: string, filePath: string, revision: string, what: string): Promise<FileMetadata> {
    let url = resolveUrl(s, repo, filePath, revision);
    for (let hops = 0; hops < 5; hops++) {
        const response = await fetchOrFail(url, { method: "HEAD", redirect: "manual", headers: { ...authHeaders(s), "accept-encoding": "identity" } }, what);
        const location = response.headers.get("location");
        if (response.status >= 300 && response.status < 400 && location !== null && location.startsWith("/")) {
            url = new URL(location, url).toString();
            continue;
        }
        if (!response.ok && !(response.status >= 300 && response.status < 400)) throw httpFailure(what, response.status);
        const commit = response.headers.get("x-repo-commit") ?? "";
        if (!isCommitHash(commit)) throw new DownloadError(`${what}: the server sent no X-Repo-Commit commit hash`);
        const size = Number(response.headers.get("x-linked-size") ?? response.headers.get("content-length") ?? NaN);
        if (!Number.isSafeInteger(size) || size < 0) throw new DownloadError(`${what}: the server sent no file size`);
        const etag = normaliseEtag(response.headers.get("x-linked-etag") ?? response.headers.get("etag"), what);
        return { commit, etag, size, url: location !== null ? new URL(location, url).toString() : url };
    }
    throw new DownloadError(`${what}: too many redirects`);
}

async function sha256Of(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest("hex");
}

/** One GET attempt into `partial`, resuming from its current size. Returns the size reached. */
async function downloadAttempt(s: HubSettings, meta: FileMetadata, partial: string, progress: DownloadProgress, what: string): Promise<number> {
    let have = (await stat(partial).catch(() => undefined))?.size ?? 0;
    if (have > meta.size) have = 0;
    if (have === meta.size) return have;
    // The token goes to the hub only, never to the storage host an LFS file redirects to (its URL is signed).
    const sameHost = new URL(meta.url).origin === new URL(s.endpoint).origin;
    const headers: Record<string, string> = { ...(sameHost ? authHeaders(s) : {}), "accept-encoding": "identity" };
    if (have > 0) headers.range = `bytes=${have}-`;
    const response = await fetchOrFail(meta.url, { headers }, what);
    if (response.status === 200) have = 0;
    else if (response.status !== 206) throw httpFailure(what, response.status);
    if (!response.body) throw new DownloadError(`${what}: empty response body`);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const handle = await open(partial, have === 0 ? "w" : "a");
    try {
        for (;;) {
            let chunk: Awaited<ReturnType<typeof reader.read>>;
            try {
                chunk = await reader.read();
            } catch {
                return have; // dropped connection: the caller resumes from what was written
            }
            if (chunk.done) return have;
            await handle.write(chunk.value);
            have += chunk.value.byteLength;
            progress.update(have);
        }
    } finally {
        await handle.close();
    }
}

/** Downloads a blob to blobs/<etag> through blobs/<etag>.incomplete, resuming up to 5 times, verifying it. */
async function downloadBlob(s: HubSettings, cache: HubRepoCache, meta: FileMetadata, what: string): Promise<void> {
    const blob = cache.blobPath(meta.etag);
    const partial = `${blob}.incomplete`;
    await mkdir(path.dirname(blob), { recursive: true });
    const progress = new DownloadProgress(s.progress, what, meta.size, (await stat(partial).catch(() => undefined))?.size ?? 0);
    let have = 0;
    for (let attempt = 0; attempt < 5 && have !== meta.size; attempt++) have = await downloadAttempt(s, meta, partial, progress, what);
    if (have !== meta.size) throw new DownloadError(`${what}: got ${have} of ${meta.size} bytes after 5 attempts; run again to resume`);
    if (/^[0-9a-f]{64}$/.test(meta.etag)) {
        const actual = await sha256Of(partial);
        if (actual !== meta.etag) {
            await unlink(partial).catch(() => undefined);
            throw new DownloadError(`${what}: sha256 mismatch (expected ${meta.etag}, got ${actual}); the partial file was removed`);
        }
    }
    await rename(partial, blob);
    progress.finish(have);
}

/** The cached copy of a file at a revision, if the cache has it. */
async function cachedFile(cache: HubRepoCache, revision: string, filePath: string): Promise<string | undefined> {
    const commit = await cache.cachedCommit(revision);
    if (commit === undefined) return undefined;
    const file = cache.snapshotPath(commit, filePath);
    return (await stat(file).catch(() => undefined))?.isFile() ? file : undefined;
}

/**
 * Returns the local path of `filePath` in `repo` at the revision: from the cache when it is there and current,
 * otherwise downloaded. Offline (HF_HUB_OFFLINE=1), only the cache is used.
 */
export async function hubDownloadFile(repo: string, filePath: string, opts: HubOptions = {}): Promise<string> {
    const s = settingsOf(opts);
    if (!isRepoId(repo, false)) throw new DownloadError(`hub repo id ${JSON.stringify(repo)} is not of the form org/name`);
    assertSafeRepoPath(filePath, repo);
    const cache = new HubRepoCache(s.cacheDir, repo, s.repoType);
    const what = `${repo}/${filePath}@${s.revision}`;
    if (s.offline) {
        const cached = await cachedFile(cache, s.revision, filePath);
        if (cached) return cached;
        throw new DownloadError(`${what}: offline (HF_HUB_OFFLINE=1) and the file is not in the cache ${cache.root}`);
    }
    let meta: FileMetadata;
    try {
        meta = await headFile(s, repo, filePath, s.revision, what);
    } catch (e) {
        // Like huggingface_hub: when the hub cannot be reached, a cached copy of the revision is used.
        const cached = e instanceof HubUnreachableError ? await cachedFile(cache, s.revision, filePath) : undefined;
        if (cached) return cached;
        throw e;
    }
    await cache.writeRef(s.revision, meta.commit);
    const pointer = cache.snapshotPath(meta.commit, filePath);
    const blobInfo = await stat(cache.blobPath(meta.etag)).catch(() => undefined);
    if (blobInfo?.size !== meta.size) await downloadBlob(s, cache, meta, what);
    const current = await stat(pointer).catch(() => undefined);
    if (current?.isFile() && current.size === meta.size && (await sameFile(pointer, cache.blobPath(meta.etag)))) return pointer;
    return cache.linkSnapshot(meta.commit, filePath, meta.etag);
}

async function sameFile(a: string, b: string): Promise<boolean> {
    const [x, y] = await Promise.all([stat(a), stat(b)]);
    return x.ino === y.ino && x.dev === y.dev;
}

/** A repo's file list at a revision, and the commit it resolved to. */
export interface HubListing {
    commit: string;
    files: string[];
}

/** Lists a repo's files (`siblings`) through the hub API; offline, from the cached snapshot. */
export async function hubListFiles(repo: string, opts: HubOptions = {}): Promise<HubListing> {
    const s = settingsOf(opts);
    if (!isRepoId(repo, false)) throw new DownloadError(`hub repo id ${JSON.stringify(repo)} is not of the form org/name`);
    const cache = new HubRepoCache(s.cacheDir, repo, s.repoType);
    const what = `${repo}@${s.revision}`;
    if (s.offline) {
        const commit = await cache.cachedCommit(s.revision);
        if (commit === undefined) throw new DownloadError(`${what}: offline (HF_HUB_OFFLINE=1) and the repo is not in the cache ${cache.root}`);
        return { commit, files: await cache.snapshotFiles(commit) };
    }
    const url = `${s.endpoint}/api/${s.repoType}s/${repo}/revision/${encodeURIComponent(s.revision)}`;
    const response = await fetchOrFail(url, { headers: authHeaders(s) }, what);
    if (!response.ok) throw httpFailure(`${what}: listing files`, response.status);
    const body = (await response.json().catch(() => null)) as { sha?: unknown; siblings?: unknown } | null;
    const siblings = body?.siblings;
    if (!body || typeof body.sha !== "string" || !isCommitHash(body.sha) || !Array.isArray(siblings)) {
        throw new DownloadError(`${what}: the listing has no commit sha and siblings`);
    }
    const files = siblings.map((entry: unknown) => {
        const name = (entry as { rfilename?: unknown } | null)?.rfilename;
        if (typeof name !== "string") throw new DownloadError(`${what}: a listed file has no rfilename`);
        assertSafeRepoPath(name, what);
        return name;
    });
    await cache.writeRef(s.revision, body.sha);
    return { commit: body.sha, files };
}

/** Picks the files of a listing to fetch; `readIndex` fetches a json index and returns the shard files it names. */
export type SnapshotChooser = (
    files: readonly string[],
    readIndex: (name: string) => Promise<string[]>,
    where: string,
) => Promise<string[]>;

/**
 * Makes a local snapshot folder holding the files `choose` picks (all from the one listed commit) and returns its
 * path, `<cache>/<type>s--ORG--NAME/snapshots/<commit>`. Offline, the cached snapshot must already hold them.
 */
export async function hubSnapshot(repo: string, opts: HubOptions, choose: SnapshotChooser): Promise<string> {
    const s = settingsOf(opts);
    const { commit, files } = await hubListFiles(repo, opts);
    const pinned: HubOptions = { ...opts, revision: commit };
    const readIndex = async (name: string): Promise<string[]> => {
        const local = await hubDownloadFile(repo, name, pinned);
        let weightMap: unknown;
        try {
            weightMap = (JSON.parse(await readFile(local, "utf8")) as { weight_map?: unknown }).weight_map;
        } catch {
            throw new DownloadError(`${repo}/${name}: not valid JSON`);
        }
        if (typeof weightMap !== "object" || weightMap === null) throw new DownloadError(`${repo}/${name}: no weight_map`);
        const shards = [...new Set(Object.values(weightMap))];
        for (const shard of shards) {
            if (typeof shard !== "string") throw new DownloadError(`${repo}/${name}: weight_map values must be file names`);
            assertSafeRepoPath(shard, `${repo}/${name}`);
        }
        return shards.sort() as string[];
    };
    const where = s.offline ? `${repo}@${commit} (offline: the cached snapshot)` : `${repo}@${commit}`;
    const wanted = await choose(files, readIndex, where);
    for (const file of wanted) {
        if (!files.includes(file)) throw new DownloadError(`${where}: has no file ${file}`);
        await hubDownloadFile(repo, file, pinned);
    }
    return new HubRepoCache(s.cacheDir, repo, s.repoType).snapshotDir(commit);
}
