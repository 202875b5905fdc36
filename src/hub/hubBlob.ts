/**
 * Downloading one blob into the cache: GET into `blobs/<etag>.incomplete`, resuming with a Range request after a
 * dropped or stalled connection, then checking the size and (LFS files, whose etag is a sha256) the content hash
 * before renaming it into place. The caller holds the blob's lock.
 *
 * Every retry first resolves the file again (a HEAD on its resolve URL): an LFS file's URL on the storage host is
 * signed and expires, so a retry never reuses it; a 401/403/410 from the storage host means exactly that and is
 * retried, not reported as a gated repo. Tries without new bytes are bounded by the retry policy; a try that
 * brought bytes starts the count again.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, stat, truncate, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { DownloadError } from "../errors.js";
import type { HubRepoCache } from "./hubCache.js";
import { hubStatusError } from "./hubErrors.js";
import { abortReason, httpRequest, HubNetworkError, sleep } from "./hubHttp.js";
import { DownloadProgress } from "./hubProgress.js";
import { type FileMetadata, type HubCall, repoPage, requestHeaders, shownUrl } from "./hubRequest.js";
import { backoffMs, retryAfterMs, TRANSIENT_STATUSES } from "./hubRetry.js";

/** How one GET ended when it did not finish the file. */
interface Shortfall {
    reason: string;
    /** Whether it brought new bytes. */
    progressed: boolean;
    /** A wait the server asked for (Retry-After). */
    waitMs?: number | undefined;
}

const sizeOf = async (file: string): Promise<number> => (await stat(file).catch(() => undefined))?.size ?? 0;

/** The file's sha256 (abortable between chunks: hashing gigabytes takes seconds). */
async function sha256Of(file: string, signal: AbortSignal | undefined): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file)) {
        if (signal?.aborted) throw abortReason(signal);
        hash.update(chunk as Buffer);
    }
    return hash.digest("hex");
}

/** One GET into `partial` from its current size. Returns undefined when the file is complete. */
async function attempt(call: HubCall, meta: FileMetadata, partial: string, progress: DownloadProgress, what: string): Promise<Shortfall | undefined> {
    const { s } = call;
    let have = await sizeOf(partial);
    if (have > meta.size) {
        await truncate(partial, 0);
        have = 0;
    }
    if (have === meta.size) return undefined;
    const fromStorage = new URL(meta.url).origin !== new URL(s.endpoint).origin;
    const where = fromStorage ? `the storage host ${new URL(meta.url).origin}` : shownUrl(meta.url);
    let answer;
    try {
        answer = await httpRequest(meta.url, {
            method: "GET",
            headers: requestHeaders(call, meta.url, have > 0 ? { range: `bytes=${have}-` } : {}),
            timeoutMs: s.timeouts.downloadMs,
            signal: s.signal,
        });
    } catch (error) {
        if (error instanceof HubNetworkError) return { reason: `${where}: ${error.reason}`, progressed: false };
        throw error;
    }
    const status = answer.status;
    if (status === 206) {
        const start = Number(/^bytes (\d+)-/.exec(String(answer.headers["content-range"] ?? ""))?.[1] ?? NaN);
        if (start !== have) {
            answer.discard();
            await truncate(partial, 0).catch(() => undefined);
            return { reason: `${where} resumed at byte ${start}, not ${have}; starting over`, progressed: false };
        }
    } else if (status === 200) {
        have = 0;
    } else {
        answer.discard();
        if (status === 416) {
            await truncate(partial, 0);
            return { reason: `${where}: HTTP 416 for the resumed range; starting over`, progressed: false };
        }
        if (TRANSIENT_STATUSES.has(status)) {
            return { reason: `${where}: HTTP ${status}`, progressed: false, waitMs: retryAfterMs(answer.headers["retry-after"]) };
        }
        if (fromStorage && (status === 401 || status === 403 || status === 410)) {
            return { reason: `${where} refused the signed URL (HTTP ${status}; expired?)`, progressed: false };
        }
        throw hubStatusError(answer, { what, repoPage: repoPage(call), withToken: s.token() !== undefined });
    }
    const handle = await open(partial, have === 0 ? "w" : "a");
    const before = have;
    try {
        for await (const chunk of answer.chunks()) {
            if (have + chunk.byteLength > meta.size) {
                await handle.truncate(0);
                return { reason: `${where} sent more than the ${meta.size} bytes announced; starting over`, progressed: false };
            }
            await handle.write(chunk);
            have += chunk.byteLength;
            progress.update(have);
        }
    } catch (error) {
        if (error instanceof HubNetworkError) return { reason: `${where}: ${error.reason}`, progressed: have > before };
        throw error;
    } finally {
        await handle.close();
    }
    if (have === meta.size) return undefined;
    return { reason: `${where} closed the connection at byte ${have} of ${meta.size}`, progressed: have > before };
}

/**
 * Downloads `meta`'s blob to blobs/<etag> (see the module comment). `resolveAgain` re-reads the file's metadata
 * before each retry.
 */
export async function downloadBlob(
    call: HubCall, cache: HubRepoCache, first: FileMetadata, resolveAgain: () => Promise<FileMetadata>, what: string,
): Promise<void> {
    const { s } = call;
    const blob = cache.blobPath(first.etag);
    const partial = `${blob}.incomplete`;
    await mkdir(path.dirname(blob), { recursive: true });
    const progress = new DownloadProgress(s.progress, what, first.size, await sizeOf(partial));
    if (first.size === 0) await writeFile(partial, "");
    let meta = first;
    let failures = 0;
    for (;;) {
        const shortfall = await attempt(call, meta, partial, progress, what);
        if (shortfall === undefined) break;
        failures = shortfall.progressed ? 1 : failures + 1;
        if (failures >= s.retry.tries) {
            const kept = await sizeOf(partial);
            throw new DownloadError(
                `${what}: ${shortfall.reason} (${failures} tries in a row); ${kept} of ${first.size} bytes are kept and a new run resumes from there; ` +
                    "to use a mirror, set HF_ENDPOINT",
            );
        }
        const wait = shortfall.waitMs ?? backoffMs(s.retry, failures);
        if (shortfall.waitMs !== undefined && shortfall.waitMs > s.retry.maxRetryAfterMs) {
            throw new DownloadError(`${what}: ${shortfall.reason}, and the server asks to retry after ${Math.ceil(shortfall.waitMs / 1000)} s; run again later`);
        }
        await sleep(wait, s.signal);
        meta = await resolveAgain();
        if (meta.etag !== first.etag || meta.size !== first.size) {
            throw new DownloadError(`${what}: the file changed on the hub during the download (etag ${first.etag} → ${meta.etag}); run again`);
        }
    }
    if (s.signal?.aborted) throw abortReason(s.signal);
    const got = await sizeOf(partial);
    if (got !== first.size) throw new DownloadError(`${what}: got ${got} of ${first.size} bytes`);
    if (/^[0-9a-f]{64}$/.test(first.etag)) {
        const actual = await sha256Of(partial, s.signal);
        if (actual !== first.etag) {
            await unlink(partial).catch(() => undefined);
            throw new DownloadError(`${what}: sha256 mismatch (expected ${first.etag}, got ${actual}); the partial file was removed`);
        }
    }
    await rename(partial, blob);
    progress.finish(got);
}
