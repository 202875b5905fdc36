/**
 * The Hugging Face hub cache layout, shared with huggingface_hub so files either tool downloaded are reused:
 *
 *   <cache>/models--ORG--NAME/            (datasets: datasets--ORG--NAME)
 *     blobs/<etag>                        file contents, named by their etag (sha256 for LFS files)
 *     refs/<revision>                     the commit hash a branch/tag pointed to when last resolved
 *     snapshots/<commit>/<path>           relative symlinks into ../../blobs/<etag>
 *
 * Cache root: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
 */
import { mkdir, readFile, readdir, rename, symlink, copyFile, lstat, stat, writeFile, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { DownloadError } from "../errors.js";

/** A hub repository kind. */
export type HubRepoType = "model" | "dataset";

/** The cache root from the environment. */
export function hubCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
    if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
    if (env.HF_HOME) return path.join(env.HF_HOME, "hub");
    return path.join(homedir(), ".cache", "huggingface", "hub");
}

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
    /** <cache>/<type>s--ORG--NAME */
    readonly root: string;

    constructor(cacheDir: string, readonly repo: string, readonly repoType: HubRepoType) {
        this.root = path.join(cacheDir, `${repoType}s--${repo.split("/").join("--")}`);
    }

    /** blobs/<etag>: the file's contents. */
    blobPath(etag: string): string {
        return path.join(this.root, "blobs", etag);
    }

    /** snapshots/<commit>: the repo's files at that commit (as symlinks). */
    snapshotDir(commit: string): string {
        return path.join(this.root, "snapshots", commit);
    }

    /** snapshots/<commit>/<path>, with the repo path's "/" turned into the platform's separator. */
    snapshotPath(commit: string, filePath: string): string {
        return path.join(this.snapshotDir(commit), ...filePath.split("/"));
    }

    /** The commit a revision resolves to from the cache alone (a commit hash resolves to itself). */
    async cachedCommit(revision: string): Promise<string | undefined> {
        if (isCommitHash(revision)) return revision;
        const ref = await readFile(path.join(this.root, "refs", ...revision.split("/")), "utf8").catch(() => undefined);
        const commit = ref?.trim();
        return commit !== undefined && isCommitHash(commit) ? commit : undefined;
    }

    /** Records that `revision` points at `commit` (not needed when the revision is the commit itself). */
    async writeRef(revision: string, commit: string): Promise<void> {
        if (revision === commit) return;
        const file = path.join(this.root, "refs", ...revision.split("/"));
        await mkdir(path.dirname(file), { recursive: true });
        const current = await readFile(file, "utf8").catch(() => undefined);
        if (current !== commit) await writeFile(file, commit);
    }

    /** Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink (a copy where symlinks fail). */
    async linkSnapshot(commit: string, filePath: string, etag: string): Promise<string> {
        const pointer = this.snapshotPath(commit, filePath);
        const blob = this.blobPath(etag);
        await mkdir(path.dirname(pointer), { recursive: true });
        const existing = await lstat(pointer).catch(() => undefined);
        if (existing) await unlink(pointer);
        const temporary = `${pointer}.${process.pid}.tmp`;
        try {
            await symlink(path.relative(path.dirname(pointer), blob), temporary);
        } catch {
            await copyFile(blob, temporary);
        }
        await rename(temporary, pointer);
        return pointer;
    }

    /** Files present in a cached snapshot, as repo paths with "/" separators. */
    async snapshotFiles(commit: string): Promise<string[]> {
        const dir = this.snapshotDir(commit);
        const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
        const files: string[] = [];
        for (const entry of entries.sort()) {
            if ((await stat(path.join(dir, entry)).catch(() => undefined))?.isFile()) files.push(entry.split(path.sep).join("/"));
        }
        return files;
    }
}
