/**
 * Where a result came from: this tool's version (package.json) and git commit (when the package itself is a git
 * checkout).
 * Both are read once per process; a missing git or a non-git install gives null, never an error.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { PACKAGE_ROOT } from "../io/bundled.js";

let cachedVersion: string | undefined;
let cachedCommit: string | null | undefined;

/** The `version` field of the package's package.json. */
export function toolVersion(): string {
    if (cachedVersion === undefined) {
        const file = path.join(PACKAGE_ROOT, "package.json");
        const json = JSON.parse(readFileSync(file, "utf8")) as { version?: unknown };
        cachedVersion = typeof json.version === "string" ? json.version : "unknown";
    }
    return cachedVersion;
}

/** The full commit hash of the package's git checkout, or null (no git, or not a checkout). */
export function gitCommit(): string | null {
    if (cachedCommit === undefined) {
        try {
            const git = (...args: string[]) => execFileSync("git", ["-C", PACKAGE_ROOT, ...args], { stdio: ["ignore", "pipe", "ignore"], timeout: 5000, encoding: "utf8" }).trim();
            // An install inside another project's checkout (node_modules) must not report that project's commit.
            const top = git("rev-parse", "--show-toplevel");
            const head = git("rev-parse", "HEAD");
            cachedCommit = realpathSync(top) === realpathSync(PACKAGE_ROOT) && /^[0-9a-f]{40}$/.test(head) ? head : null;
        } catch {
            cachedCommit = null;
        }
    }
    return cachedCommit;
}
