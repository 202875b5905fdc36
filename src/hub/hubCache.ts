/**
 * The Hugging Face hub cache layout, shared with huggingface_hub so files either tool downloaded are reused:
 *
 *   <cache>/models--ORG--NAME/            (datasets: datasets--ORG--NAME)
 *     blobs/<etag>                        file contents, named by their etag (sha256 for LFS files)
 *     refs/<revision>                     the commit hash a branch/tag pointed to when last resolved
 *     snapshots/<commit>/<path>           relative symlinks into ../../blobs/<etag>
 *   <cache>/.locks/models--ORG--NAME/<etag>.lock    held while a blob is downloaded (hubLock.ts)
 *
 * Reading refuses what this layout cannot hold (a refs file that is not a commit hash, a folder where a file
 * belongs) with one line naming the path, instead of guessing.
 */
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { copyFile, lstat, mkdir, readFile, readdir, rename, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { DownloadError } from "../errors.js";

/** A name part no other writer (process or concurrent call) uses at the same time. */
const uniqueSuffix = (): string => `${process.pid}-${randomBytes(6).toString("hex")}`;

/** stat, or undefined when nothing is there; a file where a folder belongs above it (ENOTDIR) is thrown. */
async function statIfExists(file: string): Promise<Stats | undefined> {
    try {
        return await stat(file);
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
    }
}

/** A file's text, or undefined when it does not exist; a folder in its place is refused by name. */
async function readTextIfExists(file: string): Promise<string | undefined> {
    try {
        return await readFile(file, "utf8");
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return undefined;
        if (code === "EISDIR") throw new DownloadError(`${file}: is a folder where the hub cache needs a file (a cache written by another tool? remove it to fetch again)`);
        throw e; // a file where a folder belongs above it (ENOTDIR): hubFs.ts names it
    }
}

/** A hub repository kind. */
export type HubRepoType = "model" | "dataset";

/** "org/name" or "name", with the characters the hub allows; no "..". */
export function isHubRepoId(id: string, requireOrg = true): boolean {
    const pattern = requireOrg ? /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/ : /^([A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;
    return pattern.test(id) && !id.includes("..") && id.length <= 200;
}

/** A full 40-hex commit hash. */
export function isCommitHash(value: string): boolean {
    return /^[0-9a-f]{40}$/.test(value);
}

/**
 * Refuses a file path (from the caller or a server) that could escape the snapshot folder: absolute paths,
 * backslashes, "..", ".", empty segments, NUL.
 */
export function assertSafeRepoPath(filePath: string, where: string): void {
    const segments = filePath.split("/");
    const bad = filePath === "" || filePath.startsWith("/") || /[\\\0]/.test(filePath) || /^[A-Za-z]:/.test(filePath) ||
        segments.some((s) => s === "" || s === "." || s === "..");
    if (bad) throw new DownloadError(`${where}: refusing file path ${JSON.stringify(filePath)} (it would leave the cache folder)`);
}

/** A revision name usable as a refs/ file name (branch or tag names may contain "/"). */
export function assertSafeRevision(revision: string): void {
    if (revision === "" || revision.length > 255 || revision.split("/").some((s) => s === "" || s === "." || s === "..") ||
        /[\\\0]/.test(revision)) {
        throw new DownloadError(`revision ${JSON.stringify(revision)} is not a valid branch, tag or commit name`);
    }
}

/** Paths of one repository's cache folder. */
export class HubRepoCache {
    /** models--ORG--NAME (datasets--ORG--NAME) */
    readonly folderName: string;
    /** <cache>/<type>s--ORG--NAME */
    readonly root: string;

    constructor(readonly cacheDir: string, readonly repo: string, readonly repoType: HubRepoType) {
        this.folderName = `${repoType}s--${repo.split("/").join("--")}`;
        this.root = path.join(cacheDir, this.folderName);
    }

    /** blobs/<etag>: the file's contents. */
    blobPath(etag: string): string {
        return path.join(this.root, "blobs", etag);
    }

    /** <cache>/.locks/<type>s--ORG--NAME/<etag>.lock, as huggingface_hub names it. */
    lockPath(etag: string): string {
        return path.join(this.cacheDir, ".locks", this.folderName, `${etag}.lock`);
    }

    /** snapshots/<commit>: the repo's files at that commit (as symlinks). */
    snapshotDir(commit: string): string {
        return path.join(this.root, "snapshots", commit);
    }

    /** snapshots/<commit>/<path>, with the repo path's "/" turned into the platform's separator. */
    snapshotPath(commit: string, filePath: string): string {
        return path.join(this.snapshotDir(commit), ...filePath.split("/"));
    }

    private refPath(revision: string): string {
        return path.join(this.root, "refs", ...revision.split("/"));
    }

    /**
     * The commit a revision resolves to from the cache alone (a commit hash resolves to itself); undefined when
     * the cache has no ref for it. A ref that is not a commit hash is refused.
     */
    async cachedCommit(revision: string): Promise<string | undefined> {
        if (isCommitHash(revision)) return revision;
        const file = this.refPath(revision);
        const text = await readTextIfExists(file);
        if (text === undefined) return undefined;
        const commit = text.trim();
        if (!isCommitHash(commit)) {
            throw new DownloadError(
                `${file}: holds ${JSON.stringify(commit.slice(0, 60))}, not a 40-hex commit hash (a cache written by another tool, or damaged); remove it to resolve the revision again`,
            );
        }
        return commit;
    }

    /** Records that `revision` points at `commit` (not needed when the revision is the commit itself). */
    async writeRef(revision: string, commit: string): Promise<void> {
        if (revision === commit) return;
        const file = this.refPath(revision);
        await mkdir(path.dirname(file), { recursive: true });
        const current = await readTextIfExists(file);
        if (current !== commit) {
            const temporary = `${file}.${uniqueSuffix()}.tmp`;
            await writeFile(temporary, commit);
            await rename(temporary, file);
        }
    }

    /** The cached copy of a file at a commit, if there is one; a folder in its place is refused. */
    async snapshotFile(commit: string, filePath: string): Promise<string | undefined> {
        const file = this.snapshotPath(commit, filePath);
        const info = await statIfExists(file);
        if (info === undefined) return undefined;
        if (!info.isFile()) throw new DownloadError(`${file}: is not a file (a cache written by another tool, or damaged); remove it to fetch the file again`);
        return file;
    }

    /** Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink (a copy where symlinks fail). */
    async linkSnapshot(commit: string, filePath: string, etag: string): Promise<string> {
        const pointer = this.snapshotPath(commit, filePath);
        const blob = this.blobPath(etag);
        await mkdir(path.dirname(pointer), { recursive: true });
        const existing = await lstat(pointer).catch(() => undefined);
        if (existing?.isDirectory()) throw new DownloadError(`${pointer}: is a folder where the hub cache needs a file (a cache written by another tool? remove it to fetch again)`);
        const temporary = `${pointer}.${uniqueSuffix()}.tmp`;
        try {
            await symlink(path.relative(path.dirname(pointer), blob), temporary);
        } catch {
            await copyFile(blob, temporary);
        }
        await rename(temporary, pointer);
        return pointer;
    }

    /** Whether snapshots/<commit> exists (a file in its place, or above it, is refused). */
    async hasSnapshot(commit: string): Promise<boolean> {
        const dir = this.snapshotDir(commit);
        const info = await statIfExists(dir);
        if (info === undefined) return false;
        if (!info.isDirectory()) throw new DownloadError(`${dir}: is a file where the hub cache needs a folder (a cache written by another tool, or damaged)`);
        return true;
    }

    /** Files present in a cached snapshot, as repo paths with "/" separators (sorted). */
    async snapshotFiles(commit: string): Promise<string[]> {
        if (!(await this.hasSnapshot(commit))) return [];
        const dir = this.snapshotDir(commit);
        const entries = await readdir(dir, { recursive: true });
        const files: string[] = [];
        for (const entry of entries.sort()) {
            if ((await stat(path.join(dir, entry)).catch(() => undefined))?.isFile()) files.push(entry.split(path.sep).join("/"));
        }
        return files;
    }
}
