/**
 * Requests to the hub itself, as huggingface_hub makes them:
 *  - the token (Bearer) goes only to the hub's own origin, never to the storage host LFS files redirect to (their
 *    URLs are signed);
 *  - relative redirects are followed (the hub answers /{repo}/resolve/{rev}/{file} of a small file with a 307 to
 *    /api/resolve-cache/…, and a renamed repo with a relative redirect); an absolute one is where a file's bytes
 *    live (the LFS CDN) and is returned, not followed;
 *  - transient failures are retried (hubRetry.ts); an error status becomes a one-line HubStatusError.
 *
 * `fileMetadata` is the HEAD on a file's resolve URL: X-Repo-Commit, the etag (X-Linked-Etag for LFS files, else
 * ETag), the size (X-Linked-Size, else Content-Length) and the URL to GET the bytes from.
 */
import { DownloadError } from "../errors.js";
import type { HubSettings } from "./hubEnv.js";
import { HubStatusError, hubStatusError } from "./hubErrors.js";
import { httpRequest, type HttpAnswer } from "./hubHttp.js";
import { HubUnavailableError, requestWithRetries } from "./hubRetry.js";
import { isCommitHash } from "./hubCache.js";

/** One repo's side of the calls: settings, repo id and kind. */
export interface HubCall {
    s: HubSettings;
    repo: string;
    /** Prints a notice line (to the progress sink). */
    notice: (line: string) => void;
}

/** The repo's page, e.g. https://huggingface.co/datasets/org/name. */
export function repoPage(call: HubCall): string {
    return `${call.s.endpoint}/${call.s.repoType === "dataset" ? "datasets/" : ""}${call.repo}`;
}

/** A URL for messages: origin and path, without a (signed) query. */
export function shownUrl(url: string): string {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
}

/** A Location header resolved against the URL that sent it; refused unless it is an http(s) URL. */
function redirectTarget(location: string, base: string, what: string): string {
    let target: URL;
    try {
        target = new URL(location, base);
    } catch {
        throw new DownloadError(`${what}: the server redirected to ${JSON.stringify(location.slice(0, 100))}, which is not a URL`);
    }
    if (target.protocol !== "http:" && target.protocol !== "https:") throw new DownloadError(`${what}: the server redirected to a ${target.protocol} URL`);
    return target.toString();
}

/** Headers for a request to `url`: the token only when it goes to the hub's own origin. */
export function requestHeaders(call: HubCall, url: string, extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { "user-agent": "mamba-eval (hub client)", "accept-encoding": "identity", ...extra };
    if (new URL(url).origin === new URL(call.s.endpoint).origin) {
        const token = call.s.token();
        if (token) headers.authorization = `Bearer ${token}`;
    }
    return headers;
}

/** How many times to try each request; metadata and listings use the metadata timeout. */
export interface HubRequestOptions {
    method: "GET" | "HEAD";
    what: string;
    tries: number;
}

/**
 * Sends a request to the hub, following relative redirects. Returns a 2xx answer or an absolute redirect; throws
 * HubStatusError for an error status and HubUnavailableError when every try failed transiently.
 */
export async function hubRequest(call: HubCall, url: string, options: HubRequestOptions): Promise<HttpAnswer> {
    const { s } = call;
    let current = url;
    for (let hops = 0; hops <= 10; hops++) {
        const target = current;
        const answer = await requestWithRetries(
            shownUrl(target),
            () => httpRequest(target, { method: options.method, headers: requestHeaders(call, target), timeoutMs: s.timeouts.metadataMs, signal: s.signal }),
            { policy: s.retry, signal: s.signal, onWait: call.notice },
            options.tries,
        );
        const location = answer.headers.location;
        if (answer.status >= 300 && answer.status < 400 && location !== undefined) {
            if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) || location.startsWith("//")) return answer;
            answer.discard();
            current = redirectTarget(location, target, options.what);
            continue;
        }
        if (answer.status >= 200 && answer.status < 300) return answer;
        answer.discard();
        throw hubStatusError(answer, { what: options.what, repoPage: repoPage(call), withToken: call.s.token() !== undefined });
    }
    throw new DownloadError(`${options.what}: more than 10 redirects from ${shownUrl(url)}`);
}

/** A file's resolve URL on the hub. */
export function resolveUrl(call: HubCall, filePath: string, revision: string): string {
    const prefix = call.s.repoType === "dataset" ? "datasets/" : "";
    const encodedPath = filePath.split("/").map(encodeURIComponent).join("/");
    return `${call.s.endpoint}/${prefix}${call.repo}/resolve/${encodeURIComponent(revision)}/${encodedPath}`;
}

/** What the HEAD on a resolve URL says about a file. */
export interface FileMetadata {
    commit: string;
    etag: string;
    size: number;
    /** Where to GET the bytes: the final hub URL, or the storage host's (signed) URL for an LFS file. */
    url: string;
}

/** Drops the weak prefix and quotes of an etag; refuses anything not safe as a file name. */
function normaliseEtag(raw: string | undefined, what: string): string {
    const etag = (raw ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(etag)) throw new DownloadError(`${what}: the server sent no usable ETag (${JSON.stringify(raw ?? null)})`);
    return etag;
}

const single = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/** HEAD on the file's resolve URL (see the module comment); `tries` bounds each request. */
export async function fileMetadata(call: HubCall, filePath: string, revision: string, what: string, tries: number): Promise<FileMetadata> {
    const answer = await hubRequest(call, resolveUrl(call, filePath, revision), { method: "HEAD", what, tries });
    answer.discard();
    const headers = answer.headers;
    const redirected = answer.status >= 300 && answer.status < 400;
    const commit = single(headers["x-repo-commit"]) ?? "";
    if (!isCommitHash(commit)) throw new DownloadError(`${what}: the server sent no X-Repo-Commit commit hash (is ${call.s.endpoint} a Hugging Face hub?)`);
    const sizeText = single(headers["x-linked-size"]) ?? (redirected ? undefined : single(headers["content-length"]));
    const size = sizeText === undefined ? NaN : Number(sizeText);
    if (!Number.isSafeInteger(size) || size < 0) throw new DownloadError(`${what}: the server sent no file size`);
    const etag = normaliseEtag(single(headers["x-linked-etag"]) ?? single(headers.etag), what);
    const url = redirected ? redirectTarget(single(headers.location)!, answer.url, what) : answer.url;
    return { commit, etag, size, url };
}

/** Whether a failure to reach the hub may be answered from the cache (not a definite "no such file/revision"). */
export function cacheMayAnswer(error: unknown): boolean {
    return error instanceof HubUnavailableError || (error instanceof HubStatusError && error.status !== 404);
}
