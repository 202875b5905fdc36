/**
 * A download lock between processes, at the path huggingface_hub uses (`<cache>/.locks/<repo folder>/<etag>.lock`),
 * so two runs never write the same blob at once. The lock is the file itself, created exclusively (O_EXCL) and
 * holding {pid, host, id}; its holder touches it every staleMs/4 while it works and removes it when done.
 *
 * A lock whose holder is gone is taken over: on this host, when its pid no longer runs; otherwise (another host,
 * or a lock file that is not ours, e.g. huggingface_hub's own, which it leaves in place) once it has not been
 * touched for staleMs. Taking over renames the stale file away first, so two waiters cannot both remove it.
 * This is best effort across tools (huggingface_hub locks with flock, which Node cannot take); the blob's size and
 * sha256 checks still guard the content.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { link, mkdir, open, readFile, rename, stat, unlink, utimes } from "node:fs/promises";
import path from "node:path";
import { sleep } from "./hubHttp.js";

/** How to wait for a lock. */
export interface LockOptions {
    pollMs: number;
    staleMs: number;
    signal?: AbortSignal | undefined;
    /** Told once when the lock is busy (to print a notice). */
    onBusy?: (() => void) | undefined;
}

interface LockOwner {
    pid: number;
    host: string;
    id: string;
}

function parseOwner(text: string): LockOwner | undefined {
    try {
        const owner = JSON.parse(text) as Partial<LockOwner>;
        return typeof owner.pid === "number" && typeof owner.host === "string" && typeof owner.id === "string" ? (owner as LockOwner) : undefined;
    } catch {
        return undefined;
    }
}

function processRuns(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

/** Whether the lock file's holder is gone (see the module comment). */
async function isStale(file: string, text: string, staleMs: number): Promise<boolean> {
    const owner = parseOwner(text);
    if (owner && owner.host === hostname()) return !processRuns(owner.pid);
    const info = await stat(file).catch(() => undefined);
    return info !== undefined && Date.now() - info.mtimeMs > staleMs;
}

/** Removes a stale lock unless someone replaced it meanwhile (then it is put back). */
async function takeOver(file: string, seen: string): Promise<void> {
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
        await rename(file, aside);
    } catch {
        return; // another waiter moved it first
    }
    const moved = await readFile(aside, "utf8").catch(() => "");
    if (moved === seen) {
        await unlink(aside).catch(() => undefined);
        return;
    }
    // A fresh lock was created between our read and our rename: give it back unless yet another one exists.
    await link(aside, file).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
}

async function tryCreate(file: string, owner: LockOwner): Promise<boolean> {
    try {
        const handle = await open(file, "wx");
        try {
            await handle.writeFile(JSON.stringify(owner));
        } finally {
            await handle.close();
        }
        return true;
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw e;
    }
}

/** Runs `work` while holding the lock file `file`, waiting (abortably) while another live process holds it. */
export async function withFileLock<T>(file: string, options: LockOptions, work: () => Promise<T>): Promise<T> {
    await mkdir(path.dirname(file), { recursive: true });
    const owner: LockOwner = { pid: process.pid, host: hostname(), id: randomBytes(8).toString("hex") };
    let told = false;
    while (!(await tryCreate(file, owner))) {
        const text = await readFile(file, "utf8").catch(() => undefined);
        if (text !== undefined && (await isStale(file, text, options.staleMs))) {
            await takeOver(file, text);
            continue;
        }
        if (!told) {
            told = true;
            options.onBusy?.();
        }
        await sleep(options.pollMs, options.signal);
    }
    const heartbeat = setInterval(() => {
        const now = new Date();
        utimes(file, now, now).catch(() => undefined);
    }, Math.max(50, options.staleMs / 4));
    heartbeat.unref();
    try {
        return await work();
    } finally {
        clearInterval(heartbeat);
        const current = await readFile(file, "utf8").catch(() => undefined);
        if (current !== undefined && parseOwner(current)?.id === owner.id) await unlink(file).catch(() => undefined);
    }
}
