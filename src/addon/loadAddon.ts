/**
 * Finds and loads the native addon (native/build/Release/mamba_eval.node, built by cmake-js at install), once
 * per process. MAMBA_EVAL_ADDON names another build of it (the sanitizer build of scripts/sanitize.sh).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { NativeError } from "../errors.js";
import type { NativeAddon } from "./addonTypes.js";

/** Where the addon lives, relative to the package root. */
export const ADDON_RELATIVE_PATH = path.join("native", "build", "Release", "mamba_eval.node");

/** The package root: the nearest folder above this file that holds package.json and native/. */
function packageRoot(): string {
    const here = path.dirname(fileURLToPath(import.meta.url));
    for (let dir = here; ; dir = path.dirname(dir)) {
        if (existsSync(path.join(dir, "package.json")) && existsSync(path.join(dir, "native"))) return dir;
        if (path.dirname(dir) === dir) return path.resolve(here, "../..");
    }
}

let cachedAddon: NativeAddon | undefined;

/** Loads the addon once; throws NativeError naming the path it looked in when it is missing or broken. */
export function loadAddon(): NativeAddon {
    if (cachedAddon) return cachedAddon;
    const file = process.env.MAMBA_EVAL_ADDON ? path.resolve(process.env.MAMBA_EVAL_ADDON) : path.join(packageRoot(), ADDON_RELATIVE_PATH);
    if (!existsSync(file)) {
        throw new NativeError(`native addon not built: run \`npm run build:native\` (looked in ${file})`);
    }
    let loaded: Partial<NativeAddon> | null;
    try {
        loaded = createRequire(import.meta.url)(file) as Partial<NativeAddon> | null;
    } catch (e) {
        throw new NativeError(`native addon ${file} failed to load: ${e instanceof Error ? e.message : String(e)}`);
    }
    // A file that loads but is not this addon (an empty file loads as an empty JavaScript module)
    const exports = ["capabilities", "createModel", "bootstrapResampleSums"] as const;
    const lacking = exports.filter((name) => typeof loaded?.[name] !== "function");
    if (lacking.length > 0) throw new NativeError(`native addon ${file}: not a mamba-eval addon (no ${lacking.join(", ")})`);
    cachedAddon = loaded as NativeAddon;
    return cachedAddon;
}
