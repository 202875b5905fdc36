/**
 * Hugging Face hub downloads into the standard hub cache (layout in hubCache.ts), for model and dataset repos,
 * behaving like huggingface_hub so either tool reuses the other's files.
 *
 * API: `hubDownloadFile(repo, path, opts)` → local path; `hubListFiles(repo, opts)` → {commit, files, fromCache};
 * `hubSnapshot(repo, opts, choose)` → a snapshot folder holding the chosen files.
 *
 * What happens:
 *  - a file: HEAD `{endpoint}/{repo}/resolve/{rev}/{path}` (datasets: `{endpoint}/datasets/{repo}/…`), following
 *    relative redirects, for X-Repo-Commit, the etag and size; the bytes come from the hub or, for LFS files, from
 *    the storage host it redirects to (hubBlob.ts: resume, re-resolution of expired signed URLs, sha256 check), under
 *    a lock shared with other processes (`.locks/`, hubLock.ts);
 *  - a listing: `{endpoint}/api/{models|datasets}/{repo}/revision/{rev}` (sha and siblings);
 *  - no answer, a timeout or HTTP 408/429/5xx is retried with backoff (Retry-After honoured); before retrying, and
 *    also for a 401/403, the cached copy of the revision is used when there is one (as huggingface_hub does), with
 *    a notice; otherwise the error names the URL and says what to do;
 *  - `opts.signal` aborts every request and wait (SIGINT/SIGTERM).
 * No path from a server or an index may leave the cache folder.
 *
 * Environment (options override them; hubEnv.ts resolves and checks each):
 *   HF_ENDPOINT              hub URL (default https://huggingface.co), e.g. a mirror
 *   HF_HUB_CACHE             cache folder; else HUGGINGFACE_HUB_CACHE (legacy); else $HF_HOME/hub
 *   HF_HOME                  default $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
 *   HF_HUB_OFFLINE=1         cache only, no network (TRANSFORMERS_OFFLINE=1 too)
 *   HF_TOKEN                 access token (Bearer); else HUGGING_FACE_HUB_TOKEN (legacy); else the file
 *                            HF_TOKEN_PATH (default $HF_HOME/token, as written by `hf auth login`)
 *   HF_HUB_ETAG_TIMEOUT      seconds to wait for a connection, an answer or the next chunk of metadata (default 10)
 *   HF_HUB_DOWNLOAD_TIMEOUT  the same for file bodies (default 10)
 */
import { readFile, stat } from "node:fs/promises";
import { DownloadError, MambaEvalError } from "../errors.js";
import { downloadBlob } from "./hubBlob.js";
import { assertSafeRepoPath, assertSafeRevision, HubRepoCache, isCommitHash, isHubRepoId as isRepoId } from "./hubCache.js";
import { describeCacheSource, settingsOf, type HubOptions, type HubSettings } from "./hubEnv.js";
import { fsFailure, isSystemError } from "./hubFs.js";
import { abortReason } from "./hubHttp.js";
import { withFileLock } from "./hubLock.js";
import { cacheMayAnswer, fileMetadata, hubRequest, type FileMetadata, type HubCall } from "./hubRequest.js";
import { HubUnavailableError } from "./hubRetry.js";

export type { HubOptions, HubRetryPolicy, HubTimeouts } from "./hubEnv.js";
export { hubCacheRoot } from "./hubEnv.js";

/** Whether `id` looks like a hub repo id "org/name". */
export function isHubRepoId(id: string): boolean {
    return isRepoId(id, true);
}

/** What to do when the hub cannot be reached, appended to the final error. */
const UNREACHABLE_ADVICE = "if the files are already in the cache, run with HF_HUB_OFFLINE=1; to use a mirror, set HF_ENDPOINT";

function unreachable(what: string, error: HubUnavailableError): DownloadError {
    return new DownloadError(`${what}: cannot get ${error.message}; ${UNREACHABLE_ADVICE}`);
}

function callOf(s: HubSettings, repo: string): HubCall {
    const notice = (line: string): void => {
        if (s.progress !== false) s.progress.write(`${line}\n`);
    };
    return { s, repo, notice };
}

/** Runs a hub operation, turning file-system failures in the cache into one line (and leaving aborts as they are). */
async function guarded<T>(s: HubSettings, work: () => Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (error) {
        if (s.signal?.aborted && error === abortReason(s.signal)) throw error;
        if (error instanceof MambaEvalError) throw error;
        if (isSystemError(error)) throw fsFailure(error, s.cacheDir, describeCacheSource(s.cacheSource));
        throw error;
    }
}

function checkRepo(repo: string): void {
    if (!isRepoId(repo, false)) throw new DownloadError(`hub repo id ${JSON.stringify(repo)} is not of the form org/name`);
}

/**
 * Returns the local path of `filePath` in `repo` at the revision: from the cache when it is there and current,
 * otherwise downloaded. Offline (HF_HUB_OFFLINE=1), only the cache is used.
 */
export async function hubDownloadFile(repo: string, filePath: string, opts: HubOptions = {}): Promise<string> {
    const s = settingsOf(opts);
    checkRepo(repo);
    assertSafeRepoPath(filePath, repo);
    assertSafeRevision(s.revision);
    const call = callOf(s, repo);
    const cache = new HubRepoCache(s.cacheDir, repo, s.repoType);
    const what = `${repo}/${filePath}@${s.revision}`;
    return guarded(s, async () => {
        const cachedCopy = async (): Promise<string | undefined> => {
            const commit = await cache.cachedCommit(s.revision);
            return commit === undefined ? undefined : cache.snapshotFile(commit, filePath);
        };
        if (s.offline) {
            const cached = await cachedCopy();
            if (cached) return cached;
            throw new DownloadError(`${what}: offline (HF_HUB_OFFLINE=1) and the file is not in the cache ${cache.root}`);
        }
        let meta: FileMetadata;
        try {
            meta = await fileMetadata(call, filePath, s.revision, what, 1);
        } catch (error) {
            if (!cacheMayAnswer(error)) throw error;
            const cached = await cachedCopy();
            if (cached) {
                call.notice(`${what}: ${(error as Error).message.replace(`${what}: `, "")}; using the cached copy`);
                return cached;
            }
            if (!(error instanceof HubUnavailableError)) throw error;
            try {
                meta = await fileMetadata(call, filePath, s.revision, what, s.retry.tries);
            } catch (again) {
                throw again instanceof HubUnavailableError ? unreachable(what, again) : again;
            }
        }
        await cache.writeRef(s.revision, meta.commit);
        const blob = cache.blobPath(meta.etag);
        const pointer = await cache.snapshotFile(meta.commit, filePath);
        if (pointer !== undefined && (await sameFile(pointer, blob)) && (await stat(blob)).size === meta.size) return pointer;
        if ((await stat(blob).catch(() => undefined))?.size !== meta.size) {
            const lock = { pollMs: s.retry.lockPollMs, staleMs: s.retry.lockStaleMs, signal: s.signal,
                onBusy: () => call.notice(`${what}: another process is downloading it; waiting (lock ${cache.lockPath(meta.etag)})`) };
            await withFileLock(cache.lockPath(meta.etag), lock, async () => {
                if ((await stat(blob).catch(() => undefined))?.size === meta.size) return; // the other process finished it
                const resolveAgain = async () => {
                    try {
                        return await fileMetadata(call, filePath, meta.commit, what, s.retry.tries);
                    } catch (error) {
                        throw error instanceof HubUnavailableError ? unreachable(what, error) : error;
                    }
                };
                await downloadBlob(call, cache, meta, resolveAgain, what);
            });
        }
        return cache.linkSnapshot(meta.commit, filePath, meta.etag);
    });
}

async function sameFile(a: string, b: string): Promise<boolean> {
    const [x, y] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
    return x !== undefined && y !== undefined && x.ino === y.ino && x.dev === y.dev;
}

/** A repo's file list at a revision, the commit it resolved to, and whether it came from the cache. */
export interface HubListing {
    commit: string;
    files: string[];
    /** The hub could not be reached (or refused) and the cached snapshot was listed instead (offline too). */
    fromCache: boolean;
}

function parseListing(text: string, what: string): { commit: string; files: string[] } {
    let body: { sha?: unknown; siblings?: unknown } | null;
    try {
        body = JSON.parse(text) as typeof body;
    } catch {
        throw new DownloadError(`${what}: the listing is not JSON`);
    }
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
    return { commit: body.sha, files };
}

/** Lists a repo's files (`siblings`) through the hub API; offline or unreachable, from the cached snapshot. */
export async function hubListFiles(repo: string, opts: HubOptions = {}): Promise<HubListing> {
    const s = settingsOf(opts);
    checkRepo(repo);
    assertSafeRevision(s.revision);
    const call = callOf(s, repo);
    const cache = new HubRepoCache(s.cacheDir, repo, s.repoType);
    const what = `${repo}@${s.revision}`;
    return guarded(s, async () => {
        const cachedListing = async (): Promise<HubListing | undefined> => {
            const commit = await cache.cachedCommit(s.revision);
            if (commit === undefined || !(await cache.hasSnapshot(commit))) return undefined;
            return { commit, files: await cache.snapshotFiles(commit), fromCache: true };
        };
        if (s.offline) {
            const cached = await cachedListing();
            if (cached) return cached;
            throw new DownloadError(`${what}: offline (HF_HUB_OFFLINE=1) and the repo is not in the cache ${cache.root}`);
        }
        const url = `${s.endpoint}/api/${s.repoType}s/${repo}/revision/${encodeURIComponent(s.revision)}`;
        const listingWhat = `${what}: listing files`;
        const fetchListing = async (tries: number): Promise<string> => {
            const answer = await hubRequest(call, url, { method: "GET", what: listingWhat, tries });
            if (answer.status >= 300) {
                answer.discard();
                throw new DownloadError(`${listingWhat}: unexpected redirect to ${String(answer.headers.location)}`);
            }
            return answer.text();
        };
        let text: string;
        try {
            text = await fetchListing(1);
        } catch (error) {
            if (!cacheMayAnswer(error)) throw error;
            const cached = await cachedListing();
            if (cached) {
                call.notice(`${listingWhat}: ${(error as Error).message.replace(`${listingWhat}: `, "")}; using the cached snapshot ${cached.commit}`);
                return cached;
            }
            if (!(error instanceof HubUnavailableError)) throw error;
            try {
                text = await fetchListing(s.retry.tries);
            } catch (again) {
                throw again instanceof HubUnavailableError ? unreachable(listingWhat, again) : again;
            }
        }
        const { commit, files } = parseListing(text, listingWhat);
        await cache.writeRef(s.revision, commit);
        return { commit, files, fromCache: false };
    });
}

/** Picks the files of a listing to fetch; `readIndex` fetches a json index and returns the shard files it names. */
export type SnapshotChooser = (
    files: readonly string[],
    readIndex: (name: string) => Promise<string[]>,
    where: string,
) => Promise<string[]>;

/**
 * Makes a local snapshot folder holding the files `choose` picks (all from the one listed commit) and returns its
 * path, `<cache>/<type>s--ORG--NAME/snapshots/<commit>`. Offline, or when the listing came from the cache, the
 * cached snapshot must already hold them.
 */
export async function hubSnapshot(repo: string, opts: HubOptions, choose: SnapshotChooser): Promise<string> {
    const s = settingsOf(opts);
    const { commit, files, fromCache } = await hubListFiles(repo, opts);
    const pinned: HubOptions = { ...opts, revision: commit, ...(fromCache ? { offline: true } : {}) };
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
    const where = fromCache ? `${repo}@${commit} (the cached snapshot)` : `${repo}@${commit}`;
    const wanted = await choose(files, readIndex, where);
    for (const file of wanted) {
        if (!files.includes(file)) throw new DownloadError(`${where}: has no file ${file}`);
        await hubDownloadFile(repo, file, pinned);
    }
    return new HubRepoCache(s.cacheDir, repo, s.repoType).snapshotDir(commit);
}
