/**
 * The environment variables mamba-eval reads, checked once when the CLI starts, each bad value refused with one
 * line naming the variable and what it accepts (instead of being ignored, misread, or failing deep inside a run
 * as an internal error):
 * - Hugging Face: HF_HOME and HF_HUB_CACHE (a folder, when they exist), HF_ENDPOINT (an http(s) URL), HF_HUB_OFFLINE
 *   (1/0, true/false, yes/no, on/off), HF_TOKEN (no spaces or line breaks: a token read from a file with its newline
 *   would make every request fail);
 * - ours: MAMBA_EVAL_ADDON (an addon file), MAMBA_EVAL_ISA, MAMBA_EVAL_PROFILE and the CUDA switches of
 *   docs/cuda.md (native/src/cpu/*.cc and native/cuda/*.cu read them with getenv; the accepted values below are the
 *   ones that code acts on, and must follow it). A MAMBA_EVAL_* name that is a near miss of one of these (a typo)
 *   is refused with the name it probably means; other MAMBA_EVAL_* names (build and test settings) are not ours
 *   to judge here.
 */
import { statSync } from "node:fs";
import { UsageError } from "../errors.js";
import { describeFileKind } from "../io/safeFile.js";
import { editDistance } from "../io/suggest.js";

/** Values a switch accepts, and what they do (for the message). */
interface Switch {
    values: readonly string[];
    meaning: string;
}

/** Runtime switches read by the native code, with the values it acts on. */
export const NATIVE_SWITCHES: Readonly<Record<string, Switch>> = {
    MAMBA_EVAL_ISA: { values: ["auto", "avx2", "avx512"], meaning: "the CPU GEMM and scan path" },
    // The native code turns profiling on for ANY value, "0" included: only 1 is accepted, so 0 cannot mislead.
    MAMBA_EVAL_PROFILE: { values: ["1"], meaning: "per-op CPU timings on stderr (unset it to turn them off)" },
    MAMBA_EVAL_CUDA_PROFILE: { values: ["", "1"], meaning: "CUDA phase timings (empty or unset: off)" },
    MAMBA_EVAL_CUDA_GRAPHS: { values: ["0", "1"], meaning: "CUDA graphs for decoding steps (0: off)" },
    MAMBA_EVAL_CUDA_SCAN1: { values: ["", "v3"], meaning: "the Mamba-1 CUDA scan variant" },
    MAMBA_EVAL_CUDA_SCAN_ORDER: { values: ["", "levels"], meaning: "the CUDA scan launch order" },
    MAMBA_EVAL_CUDA_SSD: { values: ["", "recurrent"], meaning: "the Mamba-2 CUDA scan variant" },
    MAMBA_EVAL_CUDA_SSD_OCC: { values: ["", "2"], meaning: "blocks per SM of the Mamba-2 CUDA scan" },
    MAMBA_EVAL_CUDA_GEMV: { values: ["", "1"], meaning: "the CUDA GEMV path for single rows" },
};

/** Every runtime MAMBA_EVAL_* name (for near-miss detection). */
const KNOWN_NAMES = ["MAMBA_EVAL_ADDON", ...Object.keys(NATIVE_SWITCHES)];
/** Build-time names (cmake-js reads them at install): never a typo of a runtime one. */
const BUILD_NAMES = ["MAMBA_EVAL_CUDA", "MAMBA_EVAL_CUBLAS_ROOT"];

const OFFLINE_VALUES = /^(1|0|true|false|yes|no|on|off)?$/i;

function checkFolderVariable(env: NodeJS.ProcessEnv, name: string): void {
    const value = env[name];
    if (value === undefined) return;
    if (value === "") throw new UsageError(`${name} is set but empty; expected a folder (or unset it)`);
    let stats;
    try {
        stats = statSync(value);
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return; // created when first needed
        if (code === "ENOTDIR") throw new UsageError(`${name}=${value}: a part of the path is a file, not a folder`);
        throw new UsageError(`${name}=${value}: cannot be read (${code ?? String(e)})`);
    }
    if (!stats.isDirectory()) throw new UsageError(`${name}=${value}: is ${describeFileKind(stats)}, not a folder`);
}

/** Checks the variables described in the module comment; throws a UsageError naming the first bad one. */
export function validateEnvironment(env: NodeJS.ProcessEnv = process.env): void {
    checkFolderVariable(env, "HF_HOME");
    checkFolderVariable(env, "HF_HUB_CACHE");
    const endpoint = env.HF_ENDPOINT;
    if (endpoint !== undefined) {
        let url: URL | undefined;
        try {
            url = new URL(endpoint);
        } catch {
            url = undefined;
        }
        if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.host === "") {
            throw new UsageError(`HF_ENDPOINT=${endpoint}: expected an http(s) URL such as https://huggingface.co`);
        }
    }
    const offline = env.HF_HUB_OFFLINE;
    if (offline !== undefined && !OFFLINE_VALUES.test(offline.trim())) {
        throw new UsageError(`HF_HUB_OFFLINE=${offline}: expected 1 or 0 (also true/false, yes/no, on/off)`);
    }
    const token = env.HF_TOKEN;
    if (token !== undefined && /[\s\p{Cc}]/u.test(token)) {
        throw new UsageError("HF_TOKEN holds a space or a line break (a token read from a file with its newline?); expected the bare token");
    }
    const addon = env.MAMBA_EVAL_ADDON;
    if (addon !== undefined && addon !== "") {
        let stats;
        try {
            stats = statSync(addon);
        } catch {
            throw new UsageError(`MAMBA_EVAL_ADDON=${addon}: no such file; expected a built mamba_eval.node`);
        }
        if (!stats.isFile()) throw new UsageError(`MAMBA_EVAL_ADDON=${addon}: is ${describeFileKind(stats)}; expected a built mamba_eval.node file`);
    }
    for (const [name, { values, meaning }] of Object.entries(NATIVE_SWITCHES)) {
        const value = env[name];
        if (value === undefined || values.includes(value)) continue;
        const accepted = values.map((v) => (v === "" ? "empty" : v)).join(", ");
        throw new UsageError(`${name}=${value}: expected ${values.length > 1 ? "one of " : ""}${accepted} (${meaning})`);
    }
    for (const name of Object.keys(env)) {
        if (!name.startsWith("MAMBA_EVAL_") || KNOWN_NAMES.includes(name) || BUILD_NAMES.includes(name)) continue;
        const near = KNOWN_NAMES.find((known) => editDistance(name, known) <= 2);
        if (near !== undefined) throw new UsageError(`${name} is not a mamba-eval variable; did you mean ${near}?`);
    }
}
