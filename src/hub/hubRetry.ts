/**
 * Retrying transient failures as huggingface_hub does: no answer (HubNetworkError) and HTTP 408, 429, 500, 502,
 * 503, 504 are tried again, waiting what the answer's Retry-After asks (seconds or an HTTP date) or else an
 * exponential backoff (base, 2·base, … up to a maximum). An abort ends any wait at once.
 */
import { DownloadError } from "../errors.js";
import type { HubRetryPolicy } from "./hubEnv.js";
import { abortReason, HubNetworkError, sleep, type HttpAnswer } from "./hubHttp.js";

/** Statuses worth another try. */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Every try failed transiently. The message names the URL, the tries and the last reason. */
export class HubUnavailableError extends DownloadError {
    constructor(readonly url: string, readonly tries: number, readonly reason: string) {
        super(`${url}: ${reason}${tries > 1 ? ` (${tries} tries)` : ""}`);
    }
}

/** How long a Retry-After header asks to wait, in ms (undefined when absent or unreadable). */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
    const text = (Array.isArray(value) ? value[0] : value)?.trim();
    if (!text) return undefined;
    if (/^\d+$/.test(text)) return Number(text) * 1000;
    const date = Date.parse(text);
    return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The wait before retry number `retry` (1-based). */
export function backoffMs(policy: HubRetryPolicy, retry: number): number {
    return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
}

/** What a retry loop needs besides the request. */
export interface RetryContext {
    policy: HubRetryPolicy;
    signal?: AbortSignal | undefined;
    /** Told before a long wait (a Retry-After over 2 s), to print a notice. */
    onWait?: ((line: string) => void) | undefined;
}

/**
 * Sends `send()` until its answer is not transient; at most `tries` times. Returns that answer (success or a
 * definite error status, which the caller interprets); throws HubUnavailableError when every try failed.
 */
export async function requestWithRetries(
    url: string, send: () => Promise<HttpAnswer>, context: RetryContext, tries = context.policy.tries,
): Promise<HttpAnswer> {
    const { policy, signal } = context;
    for (let attempt = 1; ; attempt++) {
        let reason: string;
        let wait: number;
        try {
            const answer = await send();
            if (!TRANSIENT_STATUSES.has(answer.status)) return answer;
            const asked = retryAfterMs(answer.headers["retry-after"]);
            answer.discard();
            reason = `HTTP ${answer.status}`;
            if (asked !== undefined && asked > policy.maxRetryAfterMs) {
                throw new HubUnavailableError(url, attempt, `HTTP ${answer.status}, and the server asks to retry after ${Math.ceil(asked / 1000)} s`);
            }
            wait = asked ?? backoffMs(policy, attempt);
            if (asked !== undefined && asked > 2000 && attempt < tries) context.onWait?.(`${url}: HTTP ${answer.status}; retrying in ${Math.ceil(asked / 1000)} s as the server asks`);
        } catch (error) {
            if (signal?.aborted) throw abortReason(signal);
            if (!(error instanceof HubNetworkError)) throw error;
            reason = error.reason;
            wait = backoffMs(policy, attempt);
        }
        if (attempt >= tries) throw new HubUnavailableError(url, attempt, reason);
        await sleep(wait, signal);
    }
}
