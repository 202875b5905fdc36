/**
 * Hub settings from call options and the environment, resolved the way huggingface_hub resolves them, each checked
 * here so a bad value fails as one line naming the variable (never later as a stack trace).
 *
 *   endpoint  opts.endpoint, else HF_ENDPOINT, else https://huggingface.co (an http(s) URL)
 *   cache     opts.cacheDir, else HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, where HF_HOME defaults
 *             to $XDG_CACHE_HOME/huggingface, then ~/.cache/huggingface ("~" and $VARS are expanded)
 *   token     opts.token, else HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH (default
 *             $HF_HOME/token, written by `hf auth login`)
 *   offline   opts.offline, else HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1/true/yes/on
 *   timeouts  opts.timeouts, else HF_HUB_ETAG_TIMEOUT (metadata and listings) and HF_HUB_DOWNLOAD_TIMEOUT (file
 *             bodies), in seconds, default 10: the longest wait for a connection, for an answer, or between two
 *             chunks of a body
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { DownloadError } from "../errors.js";
import type { HubRepoType } from "./hubCache.js";
import type { ProgressSink } from "./hubProgress.js";

/** Connection and idle timeouts, in milliseconds. */
export interface HubTimeouts {
    /** HEAD requests and listings (HF_HUB_ETAG_TIMEOUT). */
    metadataMs: number;
    /** File bodies (HF_HUB_DOWNLOAD_TIMEOUT). */
    downloadMs: number;
}

/** How transient failures (no connection, a timeout, HTTP 408/429/5xx) are retried. */
export interface HubRetryPolicy {
    /** Tries of one request before giving up (at least 1). */
    tries: number;
    /** Wait before the first retry; doubles after each failed try, up to maxDelayMs. */
    baseDelayMs: number;
    maxDelayMs: number;
    /** A Retry-After longer than this is not waited for: the request fails at once, saying how long the hub asked. */
    maxRetryAfterMs: number;
    /** Polling interval while another process holds a download lock. */
    lockPollMs: number;
    /** A lock left by a process on another host (or by another tool) counts as abandoned once untouched this long. */
    lockStaleMs: number;
}

/** Options of every hub call; unset ones come from the environment. */
export interface HubOptions {
    repoType?: HubRepoType;
    /** Branch, tag or commit (default "main"). */
    revision?: string;
    /** Cache root (default: see the module comment). */
    cacheDir?: string;
    /** Hub URL (default $HF_ENDPOINT or https://huggingface.co). */
    endpoint?: string;
    /** Access token (default: see the module comment). */
    token?: string;
    /** Use only the cache (default: $HF_HUB_OFFLINE is 1/true/yes/on). */
    offline?: boolean;
    /** Progress and notice lines (default process.stderr). */
    progress?: ProgressSink;
    /** Aborts every request, wait and lock wait at once (SIGINT/SIGTERM); the error thrown is the signal's reason. */
    signal?: AbortSignal;
    /** Timeouts (default from HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT, 10 s each). */
    timeouts?: Partial<HubTimeouts>;
    /** Retry policy (default 5 tries, waits of 1, 2, 4, 8 s, Retry-After up to 5 minutes). */
    retry?: Partial<HubRetryPolicy>;
}

/** Which setting chose the cache folder (named in errors about it). */
export type CacheSource = "option" | "HF_HUB_CACHE" | "HUGGINGFACE_HUB_CACHE" | "HF_HOME" | "XDG_CACHE_HOME" | "default";

/** Everything a hub call needs, resolved. */
export interface HubSettings {
    repoType: HubRepoType;
    revision: string;
    cacheDir: string;
    cacheSource: CacheSource;
    endpoint: string;
    offline: boolean;
    progress: ProgressSink;
    signal: AbortSignal | undefined;
    timeouts: HubTimeouts;
    retry: HubRetryPolicy;
    /** The token, read when first needed (never offline). */
    token: () => string | undefined;
}

const DEFAULT_ENDPOINT = "https://huggingface.co";
const DEFAULT_RETRY: HubRetryPolicy = {
    tries: 5, baseDelayMs: 1000, maxDelayMs: 8000, maxRetryAfterMs: 300_000, lockPollMs: 250, lockStaleMs: 60_000,
};

/** huggingface_hub's truthy spellings. */
export function isTrue(value: string | undefined): boolean {
    return /^(1|true|yes|on)$/i.test((value ?? "").trim());
}

/** Expands a leading "~" and $VAR / ${VAR} (unknown variables stay as written), as os.path.expanduser/expandvars. */
export function expandPath(value: string, env: NodeJS.ProcessEnv = process.env): string {
    const vars = value.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, a: string | undefined, b: string | undefined) => env[(a ?? b)!] ?? whole);
    return vars === "~" || vars.startsWith("~/") ? path.join(homedir(), vars.slice(1)) : vars;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): { dir: string; source: CacheSource } {
    if (env.HF_HOME) return { dir: expandPath(env.HF_HOME, env), source: "HF_HOME" };
    if (env.XDG_CACHE_HOME) return { dir: path.join(expandPath(env.XDG_CACHE_HOME, env), "huggingface"), source: "XDG_CACHE_HOME" };
    return { dir: path.join(homedir(), ".cache", "huggingface"), source: "default" };
}

/** The hub cache root and the setting that chose it. */
export function resolveCacheRoot(env: NodeJS.ProcessEnv = process.env): { dir: string; source: CacheSource } {
    if (env.HF_HUB_CACHE) return { dir: expandPath(env.HF_HUB_CACHE, env), source: "HF_HUB_CACHE" };
    if (env.HUGGINGFACE_HUB_CACHE) return { dir: expandPath(env.HUGGINGFACE_HUB_CACHE, env), source: "HUGGINGFACE_HUB_CACHE" };
    const home = hfHome(env);
    return { dir: path.join(home.dir, "hub"), source: home.source };
}

/** The cache root from the environment (see resolveCacheRoot). */
export function hubCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
    return resolveCacheRoot(env).dir;
}

/** What the cache source means, for messages: "HF_HOME=/x" etc. */
export function describeCacheSource(source: CacheSource, env: NodeJS.ProcessEnv = process.env): string {
    switch (source) {
        case "option": return "the cache folder option";
        case "default": return "the default ~/.cache/huggingface/hub";
        default: return `${source}=${env[source] ?? ""}`;
    }
}

/** A hub endpoint: an absolute http(s) URL without a trailing slash. */
export function checkEndpoint(value: string, fromEnv: boolean): string {
    const name = fromEnv ? "HF_ENDPOINT" : "hub endpoint";
    let url: URL;
    try {
        url = new URL(value);
    } catch {
        throw new DownloadError(`${name}=${JSON.stringify(value)} is not a URL; expected e.g. https://huggingface.co or a mirror's https:// address`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new DownloadError(`${name}=${JSON.stringify(value)} is not an http(s) URL; expected e.g. https://huggingface.co`);
    }
    if (url.search || url.hash || url.username || url.password) {
        throw new DownloadError(`${name}=${JSON.stringify(value)}: expected a plain http(s) address without query, fragment or credentials`);
    }
    return value.replace(/\/+$/, "");
}

function secondsSetting(env: NodeJS.ProcessEnv, name: string): number | undefined {
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") return undefined;
    const seconds = Number(raw);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new DownloadError(`${name}=${JSON.stringify(raw)}: expected a number of seconds > 0`);
    return seconds * 1000;
}

/** A token with the surrounding whitespace and line breaks removed; empty means none. */
function cleanToken(raw: string | undefined): string | undefined {
    const token = raw?.replace(/[\r\n]/g, "").trim();
    return token ? token : undefined;
}

/** HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file (HF_TOKEN_PATH or $HF_HOME/token). */
export function tokenFromEnvironment(env: NodeJS.ProcessEnv = process.env): string | undefined {
    const fromVariable = cleanToken(env.HF_TOKEN) ?? cleanToken(env.HUGGING_FACE_HUB_TOKEN);
    if (fromVariable) return fromVariable;
    const file = env.HF_TOKEN_PATH ? expandPath(env.HF_TOKEN_PATH, env) : path.join(hfHome(env).dir, "token");
    try {
        return cleanToken(readFileSync(file, "utf8"));
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return undefined;
        const name = env.HF_TOKEN_PATH ? "HF_TOKEN_PATH" : "the token file";
        throw new DownloadError(`${name} ${file}: cannot read the hub token (${code ?? (e as Error).message})`);
    }
}

/** The settings of one call. */
export function settingsOf(opts: HubOptions, env: NodeJS.ProcessEnv = process.env): HubSettings {
    const cache = opts.cacheDir !== undefined ? { dir: opts.cacheDir, source: "option" as const } : resolveCacheRoot(env);
    const endpoint = opts.endpoint !== undefined ? checkEndpoint(opts.endpoint, false)
        : env.HF_ENDPOINT ? checkEndpoint(env.HF_ENDPOINT, true) : DEFAULT_ENDPOINT;
    const metadataMs = opts.timeouts?.metadataMs ?? secondsSetting(env, "HF_HUB_ETAG_TIMEOUT") ?? 10_000;
    const downloadMs = opts.timeouts?.downloadMs ?? secondsSetting(env, "HF_HUB_DOWNLOAD_TIMEOUT") ?? 10_000;
    const retry = { ...DEFAULT_RETRY, ...opts.retry };
    retry.tries = Math.max(1, Math.floor(retry.tries));
    let token: { value: string | undefined } | undefined;
    return {
        repoType: opts.repoType ?? "model",
        revision: opts.revision ?? "main",
        cacheDir: cache.dir,
        cacheSource: cache.source,
        endpoint,
        offline: opts.offline ?? (isTrue(env.HF_HUB_OFFLINE) || isTrue(env.TRANSFORMERS_OFFLINE)),
        progress: opts.progress ?? process.stderr,
        signal: opts.signal,
        timeouts: { metadataMs, downloadMs },
        retry,
        token: () => (token ??= { value: opts.token ?? tokenFromEnvironment(env) }).value,
    };
}
