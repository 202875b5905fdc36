/**
 * Named errors. Every user-facing failure is one of these, with a one-line message that names the
 * file, field or flag and says what was expected. The CLI prints `mamba-eval: <message>` and exits
 * non-zero; stack traces only with --verbose.
 */
export class MambaEvalError extends Error {
    constructor(message: string) {
        super(message);
        this.name = new.target.name;
    }
}

/** A checkpoint file (config.json, safetensors, pytorch_model.bin) is malformed or unsupported. */
export class CheckpointFormatError extends MambaEvalError {}
/** A configuration value (config.json field, --model_args) is invalid or unsupported. */
export class ConfigError extends MambaEvalError {}
/** A command-line flag or argument is invalid. */
export class UsageError extends MambaEvalError {}
/** A task name is unknown, or a task's data file is missing or malformed. */
export class TaskError extends MambaEvalError {}
/** A data file (dataset jsonl/parquet, cache, results file) is malformed. */
export class DataFormatError extends MambaEvalError {}
/** A download from the hub failed or was refused (offline, 404, checksum mismatch). */
export class DownloadError extends MambaEvalError {}
/** The native addon is missing, failed to load, or a native call reported an error. */
export class NativeError extends MambaEvalError {}
/** Non-finite numbers (NaN/Inf) in weights or outputs. */
export class NumericError extends MambaEvalError {}
