/**
 * A results file's model identifier → the normalised name used to find its published row:
 * the checkpoint's own name without organisation or folder, lower-cased, without a trailing "-hf".
 *   "state-spaces/mamba-130m"      → "mamba-130m"
 *   "state-spaces/mamba-2.8b-hf"   → "mamba-2.8b"
 *   "/x/hub/models--state-spaces--mamba-370m/snapshots/3f0c…" → "mamba-370m" (HF cache folder)
 *   "./checkpoints/Mamba-790M/"    → "mamba-790m"
 */
export function normaliseModelName(id: string): string {
    const parts = id.replaceAll("\\", "/").split("/").filter((p) => p !== "" && p !== ".");
    const cacheFolder = parts.find((p) => p.startsWith("models--"));
    let name = cacheFolder !== undefined ? (cacheFolder.split("--").at(-1) ?? cacheFolder) : (parts.at(-1) ?? id);
    name = name.toLowerCase();
    if (name.endsWith("-hf")) name = name.slice(0, -3);
    return name;
}
