/**
 * What a definite (non-transient) error answer from the hub means, as one line: the hub names the cause in its
 * X-Error-Code header (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound) and X-Error-Message; a 401
 * without a code is what the hub answers for a private repo (or a missing one) when no valid token was sent.
 */
import { DownloadError } from "../errors.js";
import type { HttpAnswer } from "./hubHttp.js";

/** A refusal by the hub itself (not by the storage host an LFS file redirects to). */
export class HubStatusError extends DownloadError {
    constructor(message: string, readonly status: number, readonly code: string | undefined) {
        super(message);
    }
}

const header = (answer: HttpAnswer, name: string): string | undefined => {
    const value = answer.headers[name];
    const text = Array.isArray(value) ? value[0] : value;
    return text === undefined ? undefined : text.replace(/\s+/g, " ").trim().slice(0, 300);
};

/** Where the refusal happened, for the message. */
export interface RefusalContext {
    /** "org/name/file@rev" or "org/name@rev". */
    what: string;
    /** The repo's page on the hub, e.g. https://huggingface.co/datasets/org/name. */
    repoPage: string;
    /** Whether a token was sent. */
    withToken: boolean;
}

/** The one-line error for an error status from the hub. */
export function hubStatusError(answer: HttpAnswer, context: RefusalContext): HubStatusError {
    const { what, repoPage, withToken } = context;
    const status = answer.status;
    const code = header(answer, "x-error-code");
    const hubMessage = header(answer, "x-error-message");
    const said = hubMessage ? `: ${hubMessage}` : "";
    let message: string;
    if (code === "GatedRepo") {
        message = `${what}: HTTP ${status} (gated repo): accept its access conditions at ${repoPage} while logged in, then ` +
            (withToken ? "make sure HF_TOKEN (or the token file) is a token of that account" : "set HF_TOKEN to a token of that account");
    } else if (status === 401 && /invalid (credentials|username or password)/i.test(hubMessage ?? "")) {
        message = `${what}: HTTP 401 (the hub refused the token${said}); check HF_TOKEN, HUGGING_FACE_HUB_TOKEN or the token file`;
    } else if (code === "RepoNotFound" || status === 401) {
        message = `${what}: HTTP ${status} (repository not found${said}); check the id, or for a private repo ` +
            (withToken ? "check that the token has access to it" : "set HF_TOKEN");
    } else if (code === "RevisionNotFound") {
        message = `${what}: HTTP ${status} (revision not found${said})`;
    } else if (code === "EntryNotFound" || status === 404) {
        message = `${what}: HTTP ${status} (not found${said})`;
    } else if (status === 403) {
        message = `${what}: HTTP 403 (forbidden${said}); check that the token has access to ${repoPage}`;
    } else {
        message = `${what}: HTTP ${status}${said}`;
    }
    return new HubStatusError(message, status, code);
}
