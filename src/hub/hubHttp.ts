/**
 * One HTTP request to the hub or its storage host, with node:http/https so every wait is bounded:
 *  - connecting: at most `timeoutMs` until the TCP connection is up;
 *  - idle: at most `timeoutMs` waiting for the answer's headers, and again for each chunk of the body (a hub that
 *    accepts the connection and never answers, or stalls mid-body, fails here instead of hanging the run);
 *  - `signal`: aborts the request (or the body being read) at once, throwing the signal's reason.
 * Redirects are not followed (the callers decide). Failures to get an answer are `HubNetworkError`s, which the
 * retry layer (hubRetry.ts) retries.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import { DownloadError, MambaEvalError } from "../errors.js";

/** No answer: cannot connect, timed out, or the connection dropped. Transient; `reason` is a short phrase. */
export class HubNetworkError extends DownloadError {
    constructor(readonly url: string, readonly reason: string) {
        super(`${url}: ${reason}`);
    }
}

/** The error an aborted signal stands for: its reason when that is an Error, else a plain "interrupted". */
export function abortReason(signal: AbortSignal): Error {
    return signal.reason instanceof Error ? signal.reason : new MambaEvalError("interrupted");
}

/** An answer whose body has not been read yet. */
export interface HttpAnswer {
    status: number;
    /** Lower-case header names. */
    headers: IncomingHttpHeaders;
    /** The URL asked for. */
    url: string;
    /** The body, chunk by chunk; a stall longer than the timeout or a dropped connection throws HubNetworkError. */
    chunks(): AsyncGenerator<Buffer, void, undefined>;
    /** The whole body as text (refused above `maxBytes`). */
    text(maxBytes?: number): Promise<string>;
    /** Drops the body and the connection. */
    discard(): void;
}

/** A request's method, headers and limits. */
export interface HttpRequest {
    method: "GET" | "HEAD";
    headers: Record<string, string>;
    timeoutMs: number;
    signal?: AbortSignal | undefined;
}

const seconds = (ms: number): string => `${Number((ms / 1000).toPrecision(3))} s`;

/** A one-phrase reason for a socket error. */
function networkReason(error: NodeJS.ErrnoException): string {
    switch (error.code) {
        case "ECONNREFUSED": return "connection refused";
        case "ECONNRESET": return "connection reset";
        case "EPIPE": return "connection closed";
        case "ENOTFOUND": case "EAI_AGAIN": return "host name not found (DNS)";
        case "ETIMEDOUT": return "connection timed out";
        case "EHOSTUNREACH": case "ENETUNREACH": case "ENETDOWN": return "network unreachable";
        default: return error.code ? `${error.code}: ${error.message}` : error.message;
    }
}

/** Sends one request and resolves with the answer's status and headers; see the module comment for the limits. */
export function httpRequest(url: string, request: HttpRequest): Promise<HttpAnswer> {
    const target = new URL(url);
    const transport = target.protocol === "https:" ? https : http;
    const { signal, timeoutMs } = request;
    return new Promise<HttpAnswer>((resolve, reject) => {
        if (signal?.aborted) return reject(abortReason(signal));
        let response: IncomingMessage | undefined;
        let settled = false;
        let idleTimer: NodeJS.Timeout | undefined;
        let connectTimer: NodeJS.Timeout | undefined;

        const clearTimers = (): void => {
            clearTimeout(idleTimer);
            clearTimeout(connectTimer);
            idleTimer = connectTimer = undefined;
        };
        const stop = (error: Error): void => {
            clearTimers();
            if (!settled) {
                settled = true;
                signal?.removeEventListener("abort", onAbort);
                reject(error);
                req.destroy();
            } else {
                response?.destroy(error);
            }
        };
        const onAbort = (): void => stop(abortReason(signal!));
        const armIdle = (phase: string): void => {
            clearTimeout(idleTimer);
            idleTimer = setTimeout(() => stop(new HubNetworkError(url, `no ${phase} within ${seconds(timeoutMs)}`)), timeoutMs);
        };

        // No connection reuse: a kept-alive socket the server has since closed would fail the request spuriously
        // (and a first-try failure may send a caller to its cache); hub calls are few and large.
        const req = transport.request(target, { method: request.method, headers: request.headers, agent: false });
        signal?.addEventListener("abort", onAbort, { once: true });
        req.on("socket", (socket) => {
            if (!socket.connecting) return armIdle("answer");
            connectTimer = setTimeout(() => stop(new HubNetworkError(url, `could not connect within ${seconds(timeoutMs)}`)), timeoutMs);
            socket.once("connect", () => {
                clearTimeout(connectTimer);
                if (!settled) armIdle("answer");
            });
        });
        req.on("error", (error: NodeJS.ErrnoException) => {
            if (!settled) stop(signal?.aborted ? abortReason(signal) : new HubNetworkError(url, networkReason(error)));
        });
        req.on("response", (res) => {
            response = res;
            settled = true;
            clearTimers();
            res.on("error", () => {}); // errors reach the reader through its iterator; none may go unhandled
            const release = (): void => {
                clearTimers();
                signal?.removeEventListener("abort", onAbort);
            };
            async function* chunks(): AsyncGenerator<Buffer, void, undefined> {
                const reader = res[Symbol.asyncIterator]();
                try {
                    for (;;) {
                        armIdle("data");
                        let next: IteratorResult<Buffer>;
                        try {
                            next = (await reader.next()) as IteratorResult<Buffer>;
                        } catch (error) {
                            if (signal?.aborted) throw abortReason(signal);
                            if (error instanceof HubNetworkError) throw error;
                            throw new HubNetworkError(url, `connection dropped mid-body (${networkReason(error as NodeJS.ErrnoException)})`);
                        }
                        clearTimeout(idleTimer);
                        if (next.done) return;
                        yield next.value;
                    }
                } finally {
                    release();
                    if (!res.complete) res.destroy();
                }
            }
            resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                url,
                chunks,
                async text(maxBytes = 64 << 20) {
                    const parts: Buffer[] = [];
                    let size = 0;
                    for await (const chunk of chunks()) {
                        size += chunk.byteLength;
                        if (size > maxBytes) throw new DownloadError(`${url}: the answer is larger than ${maxBytes} bytes`);
                        parts.push(chunk);
                    }
                    return Buffer.concat(parts).toString("utf8");
                },
                discard() {
                    release();
                    res.destroy();
                },
            });
        });
        req.end();
    });
}

/** Waits `ms`, or throws the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(abortReason(signal));
        const onAbort = (): void => {
            clearTimeout(timer);
            reject(abortReason(signal!));
        };
        const timer = setTimeout(() => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
        }, ms);
        signal?.addEventListener("abort", onAbort, { once: true });
    });
}
