/**
 * The environment variables mamba-eval reads, checked once when a command starts, each bad value refused with one
 * line naming the variable and what it accepts (instead of being ignored, misread, or failing deep inside a run):
 * - Hugging Face: HF_ENDPOINT through the hub's own check (src/hub/hubEnv.ts, the same line the hub gives, only
 *   earlier); HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE must be a yes or a no (1/0, true/false, yes/no, on/off), not a
 *   value the hub would silently read as "online". The cache folders (HF_HOME, HF_HUB_CACHE) and the token are the
 *   hub's to judge when it is used (it names the setting: "…: is a file where the hub cache needs a folder (cache
 *   from HF_HOME=…)"), since a run on local files never touches them.
 * - ours: MAMBA_EVAL_ADDON (an addon file), MAMBA_EVAL_ISA, MAMBA_EVAL_PROFILE and MAMBA_EVAL_CUDA_PROFILE
 *   (native/src/cpu/*.cc and native/cuda/*.cuh read them with getenv; the accepted values below are the ones that
 *   code acts on, and must follow it). The CUDA A/B switches of earlier versions are refused as no longer read
 *   (setting one would change nothing). A MAMBA_EVAL_* name that is a near miss of a live one (a typo) is refused
 *   with the name it probably means; other MAMBA_EVAL_* names (build and test settings) are not ours to judge here.
 */
import { statSync } from "node:fs";
import { UsageError } from "../errors.js";
import { checkEndpoint } from "../hub/hubEnv.js";
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
    MAMBA_EVAL_CUDA_PROFILE: { values: ["", "1"], meaning: "per-phase CUDA timings on stderr (empty or unset: off)" },
};

/** Switches of earlier versions that nothing reads any more (the CUDA backend keeps one path per kernel). */
const RETIRED_SWITCHES = [
    "MAMBA_EVAL_CUDA_GRAPHS", "MAMBA_EVAL_CUDA_SCAN1", "MAMBA_EVAL_CUDA_SCAN_ORDER", "MAMBA_EVAL_CUDA_SSD", "MAMBA_EVAL_CUDA_SSD_OCC",
    "MAMBA_EVAL_CUDA_GEMV",
];

/** Every runtime MAMBA_EVAL_* name (for near-miss detection). */
const KNOWN_NAMES = ["MAMBA_EVAL_ADDON", ...Object.keys(NATIVE_SWITCHES)];
/** Build-time names (cmake-js reads them at install): never a typo of a runtime one. */
const BUILD_NAMES = ["MAMBA_EVAL_CUDA", "MAMBA_EVAL_CUBLAS_ROOT"];

const OFFLINE_VALUES = /^(1|0|true|false|yes|no|on|off)?$/i;

/** Checks the variables described in the module comment; throws a UsageError naming the first bad one. */
export function validateEnvironment(env: NodeJS.ProcessEnv = process.env): void {
    if (env.HF_ENDPOINT) checkEndpoint(env.HF_ENDPOINT, true);
    for (const name of ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"]) {
        const value = env[name];
        if (value !== undefined && !OFFLINE_VALUES.test(value.trim())) {
            throw new UsageError(`${name}=${value}: expected 1 or 0 (also true/false, yes/no, on/off)`);
        }
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
        if (RETIRED_SWITCHES.includes(name)) throw new UsageError(`${name} is no longer read (the CUDA backend keeps one path per kernel); unset it`);
        if (!name.startsWith("MAMBA_EVAL_") || KNOWN_NAMES.includes(name) || BUILD_NAMES.includes(name)) continue;
        const near = KNOWN_NAMES.find((known) => editDistance(name, known) <= 2);
        if (near !== undefined) throw new UsageError(`${name} is not a mamba-eval variable; did you mean ${near}?`);
    }
}
