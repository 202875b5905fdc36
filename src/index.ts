/**
 * mamba-eval as a library: lm-evaluation-harness's API for Mamba models, in TypeScript.
 *
 *   evaluate({ model, tasks, ... })     lm-eval's simple_evaluate: scores, and with outputPath lm-eval's files
 *   openModel({ pretrained, ... })      a checkpoint, its tokenizer and a backend behind the LM interface
 *   lm.loglikelihood / loglikelihoodRolling / generateUntil   the LM interface (src/lm/LM.ts)
 *   getTask / listTasks / loadTaskDocs  the task registry and its documents
 *   runCompare / loadTable3 / runTable3 accuracy regression between runs; the Mamba papers' Table 3 view
 *
 * Everything the `mamba-eval` command does goes through these functions.
 */
export { simpleEvaluate as evaluate, simpleEvaluate, openForEvaluation, tokensPerCall } from "./evaluator/simpleEvaluate.js";
export type { SimpleEvaluateOptions, SimpleEvaluateResult } from "./evaluator/simpleEvaluate.js";
export { evaluate as evaluateLM, type EvaluateOptions, type TaskEvaluation } from "./evaluator/evaluate.js";
export { RunMemo } from "./evaluator/runMemo.js";
export { CachingLM, ResultCache } from "./evaluator/cache.js";

export type { GenerateRequest, LM, LMCallOptions, LMProgress, LoglikelihoodRequest, LoglikelihoodResult, RollingRequest } from "./lm/LM.js";
export { MambaLM, type GenerateOptions, type MambaLMOptions, type SequenceScore } from "./lm/MambaLM.js";
export { openModel, type OpenedModel, type OpenModelOptions } from "./lm/openModel.js";
export { DEFAULT_MAX_LENGTH, DEFAULT_STATE_BUDGET_BYTES, DEFAULT_TOKENS_PER_CALL, defaultStateBudgetBytes } from "./lm/defaults.js";
export type { SamplingOptions } from "./lm/sampler.js";

export type { Backend, BackendInfo, BackendOptions, ScoreBatch, ScoreOutput, StateSnapshot } from "./backend/Backend.js";
export { NativeBackend } from "./backend/NativeBackend.js";

export { getTask, listTasks, resolveTaskNames, type TaskListing } from "./tasks/registry.js";
export { loadTaskDocs, type DataSourceOptions } from "./tasks/datasets.js";
export type { Doc, TaskSpec } from "./tasks/types.js";

export { loadCheckpoint, resolveModelDir } from "./model/loadModel.js";
export { loadTokenizer, loadTokenizerFile, type TextTokenizer } from "./model/tokenizer.js";
export type { Checkpoint, MambaConfig } from "./model/types.js";

export { runCompare, type CompareReport } from "./report/runCompare.js";
export { loadTable3, renderTable3, type TableFormat } from "./report/runTable.js";
export { runTable3, simpleEvaluator, table3ModelList, TABLE3_MODELS, type Table3Options, type Table3Outcome } from "./report/table3Workflow.js";

export {
    CheckpointFormatError,
    ConfigError,
    DataFormatError,
    DownloadError,
    MambaEvalError,
    NativeError,
    NumericError,
    TaskError,
    UsageError,
} from "./errors.js";
