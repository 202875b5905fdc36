/**
 * `--use_cache PATH`: a SQLite file (better-sqlite3, WAL mode) holding one row per finished loglikelihood
 * request, written as soon as the request completes, so a run that is killed resumes without recomputing.
 *
 * Row keys are lm-eval's CachingLM keys: sha256 of Python's `json.dumps(["loglikelihood", context, continuation])`
 * (default separators ", ", non-ASCII escaped as \uXXXX). Unlike lm-eval's model-agnostic cache, a file holds the
 * answers of ONE configuration, recorded in its `meta` table, and is refused (one line naming what differs) by a
 * run of any other: everything that decides an answer is part of it (CacheIdentity): the weights' sha256
 * (src/model/checksum.ts), the checkpoint fingerprint (config + tensor layout), the compute dtype, the device
 * (cpu/cuda give different last bits), the tokenizer (sha256 of its tokenizer.json content) and end-of-text id, the
 * max_length (truncation), the tool version (kernels), and, for the one configuration whose answers depend on the
 * run's set of requests (Mamba-2 in bfloat16 on CUDA, docs/architecture.md), the hash of that set.
 *
 * The weights' checksum takes seconds on a large checkpoint (src/model/checksum.ts hashes on a worker during the
 * run), so it is bound late, without slowing the run and without ever letting an answer of other weights through:
 * - everything else is checked when the file is opened, before any answer is read;
 * - answers read from the file are returned to the caller only once the checksum is known and matches the file's
 *   (CachingLM awaits it before returning; a mismatch fails the run as soon as it is known, one line);
 * - new answers are held in memory until then and written after (a file holds rows only once its weights'
 *   checksum is recorded, so rows are never bound to the wrong weights). A run killed before the checksum is known
 *   (its first seconds) loses those answers only.
 *
 * A file of an older schema (schema 1 recorded only the fingerprint and dtype) or of another program (lm-eval's
 * own SqliteDict cache) is refused with one line; nothing is read from it or written to it. Several processes may
 * share one file: SQLite serialises the writers (busy timeout) and WAL keeps readers consistent.
 *
 * File name: PATH itself when it ends in ".db", else lm-eval's `PATH_rank0.db`.
 */
import { createHash } from "node:crypto";
import { lstatSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { DataFormatError, MambaEvalError, UsageError } from "../errors.js";
import { makeDirs } from "../io/dirs.js";
import { describeFileKind } from "../io/safeFile.js";
import type { LM, LMCallOptions, LoglikelihoodRequest, LoglikelihoodResult } from "../lm/LM.js";

/** The schema this version reads and writes (the `schema` row of `meta`). */
export const CACHE_SCHEMA = "mamba-eval-cache 2";

/** What decides the answers a cache holds, known when it is opened; see the module comment. */
export interface CacheIdentity {
    /** Checkpoint fingerprint (config.json bytes and tensor layout; Checkpoint.fingerprint). */
    fingerprint: string;
    /** Compute dtype, e.g. "float32". */
    dtype: string;
    /** "cpu" or "cuda". */
    device: string;
    /** sha256 of the tokenizer.json content (TextTokenizer.contentSha256). */
    tokenizerSha256: string;
    /** The end-of-text id (the context of a request with an empty context). */
    eosTokenId: number;
    /** lm-eval's max_length (left truncation). */
    maxLength: number;
    /** mamba-eval's version (its kernels decide the last bits). */
    toolVersion: string;
}

/** The bound-late fields: the weights' checksum, and (when answers depend on it) the run's request set. */
export type LateField = "weightsSha256" | "requestSet";

/** Names of the fields in messages and in the meta table. */
const FIELDS: Readonly<Record<keyof CacheIdentity | LateField, { column: string; label: string }>> = {
    fingerprint: { column: "fingerprint", label: "checkpoint fingerprint" },
    dtype: { column: "dtype", label: "dtype" },
    device: { column: "device", label: "device" },
    tokenizerSha256: { column: "tokenizer_sha256", label: "tokenizer (sha256 of tokenizer.json)" },
    eosTokenId: { column: "eos_token_id", label: "end-of-text token id" },
    maxLength: { column: "max_length", label: "max_length" },
    toolVersion: { column: "tool_version", label: "mamba-eval version" },
    weightsSha256: { column: "weights_sha256", label: "weights (sha256 of the weight files)" },
    requestSet: { column: "request_set", label: "set of requests and state budget (Mamba-2 bfloat16 on CUDA answers depend on them)" },
};

/** Python's json.dumps of one string with default settings (ensure_ascii=True). */
export function pythonJsonString(s: string): string {
    let out = '"';
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c === 0x22) out += '\\"';
        else if (c === 0x5c) out += "\\\\";
        else if (c === 0x0a) out += "\\n";
        else if (c === 0x0d) out += "\\r";
        else if (c === 0x09) out += "\\t";
        else if (c === 0x08) out += "\\b";
        else if (c === 0x0c) out += "\\f";
        else if (c < 0x20 || c > 0x7e) out += "\\u" + c.toString(16).padStart(4, "0");
        else out += s[i];
    }
    return out + '"';
}

/** lm-eval's cache key of a loglikelihood request. */
export function cacheKey(request: LoglikelihoodRequest): string {
    const json = `[${pythonJsonString("loglikelihood")}, ${pythonJsonString(request.context)}, ${pythonJsonString(request.continuation)}]`;
    return createHash("sha256").update(json, "utf8").digest("hex");
}

/** The file a `--use_cache` value names. */
export function cacheFilePath(spec: string): string {
    return spec.endsWith(".db") ? spec : `${spec}_rank0.db`;
}

/** Short form of a long hex value for messages. */
function shortValue(value: string): string {
    return /^[0-9a-f]{40,}$/.test(value) ? `${value.slice(0, 12)}…` : value;
}

/** The one-line refusal of a cache made under another configuration. */
export class CacheMismatchError extends UsageError {}

/**
 * Refuses paths SQLite must not open: a cache file that is not a regular file (a FIFO would block the open), and
 * anything but a regular file at the journal names SQLite derives from it (a planted link there would be followed).
 */
function checkCachePaths(file: string): void {
    const check = (p: string, follow: boolean) => {
        let stats;
        try {
            stats = follow ? statSync(p) : lstatSync(p);
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
            throw new DataFormatError(`--use_cache ${file}: cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
        if (!stats.isFile()) throw new DataFormatError(`--use_cache ${file}: ${p} is ${describeFileKind(stats)}, not a regular file`);
    };
    check(file, true);
    for (const suffix of ["-wal", "-shm", "-journal"]) check(file + suffix, false);
}

/** An open result cache; see the module comment. */
export class ResultCache {
    private readonly db: Database.Database;
    private readonly getStmt: Database.Statement<[string], { logprob: number; greedy: number }>;
    private readonly putStmt: Database.Statement<[string, number, number]>;
    /** Rows written by this process. */
    written = 0;

    private constructor(readonly file: string, identity: CacheIdentity) {
        checkCachePaths(file);
        try {
            makeDirs(path.dirname(path.resolve(file)));
        } catch (e) {
            throw new DataFormatError(`--use_cache ${file}: cannot create its folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
        try {
            this.db = new Database(file, { timeout: 30_000 });
        } catch (e) {
            throw new DataFormatError(`--use_cache ${file}: cannot open (${(e as Error).message})`);
        }
        try {
            this.db.pragma("journal_mode = WAL");
            this.db.pragma("synchronous = NORMAL");
            this.db.transaction(() => this.checkSchemaAndIdentity(identity)).immediate();
            this.getStmt = this.db.prepare("SELECT logprob, greedy FROM loglikelihood WHERE key = ?");
            this.putStmt = this.db.prepare("INSERT OR REPLACE INTO loglikelihood (key, logprob, greedy) VALUES (?, ?, ?)");
        } catch (e) {
            this.db.close();
            if (e instanceof MambaEvalError) throw e;
            throw new DataFormatError(`--use_cache ${file}: not a usable SQLite cache (${(e as Error).message})`);
        }
    }

    /** Opens (creating if needed) the cache file named by a `--use_cache` value, for a run of `identity`. */
    static open(spec: string, identity: CacheIdentity): ResultCache {
        return new ResultCache(cacheFilePath(spec), identity);
    }

    private checkSchemaAndIdentity(identity: CacheIdentity): void {
        const tables = (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
        if (tables.length === 0) {
            this.db.exec(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);" +
                    "CREATE TABLE loglikelihood (key TEXT PRIMARY KEY, logprob REAL NOT NULL, greedy INTEGER NOT NULL);",
            );
            this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(CACHE_SCHEMA);
        } else {
            this.checkSchema(tables);
        }
        for (const [field, value] of Object.entries(identity) as [keyof CacheIdentity, string | number][]) this.bindValue(field, String(value));
    }

    private checkSchema(tables: string[]): void {
        const where = `--use_cache ${this.file}`;
        if (!tables.includes("meta") || !tables.includes("loglikelihood")) {
            throw new DataFormatError(`${where}: not a mamba-eval cache (it holds the tables ${tables.join(", ")}; lm-eval's own cache files are not read): use another file`);
        }
        const meta = new Map((this.db.prepare("SELECT key, value FROM meta").all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
        const schema = meta.get("schema");
        if (schema === undefined && meta.has("model")) {
            throw new DataFormatError(
                `${where}: made by an older mamba-eval (cache schema 1, which did not record the weights' checksum, tokenizer or max_length); delete it and run again to recompute`,
            );
        }
        if (schema !== CACHE_SCHEMA) {
            throw new DataFormatError(`${where}: cache schema ${JSON.stringify(schema ?? null)}, this mamba-eval reads ${JSON.stringify(CACHE_SCHEMA)}; use another file`);
        }
        const columns = (this.db.prepare("PRAGMA table_info(loglikelihood)").all() as { name: string }[]).map((c) => c.name).join(",");
        if (columns !== "key,logprob,greedy") throw new DataFormatError(`${where}: its loglikelihood table has the columns ${columns}, expected key, logprob, greedy`);
    }

    /** Records `field` = `value`, or refuses the file when it holds answers made with another value. */
    private bindValue(field: keyof CacheIdentity | LateField, value: string): void {
        const { column, label } = FIELDS[field];
        const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(column) as { value: string } | undefined;
        if (row === undefined) {
            this.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run(column, value);
            return;
        }
        if (row.value !== value) {
            throw new CacheMismatchError(
                `--use_cache ${this.file}: holds answers made with another ${label} (${shortValue(row.value)}; this run: ${shortValue(value)}); ` +
                    "answers are reused only for the same weights, dtype, device, tokenizer and max_length: use another cache file",
            );
        }
    }

    /** Binds a late field (see the module comment), in its own transaction; throws CacheMismatchError. */
    bind(field: LateField, value: string): void {
        this.db.transaction(() => this.bindValue(field, value)).immediate();
    }

    get(request: LoglikelihoodRequest, key: string = cacheKey(request)): LoglikelihoodResult | undefined {
        const row = this.getStmt.get(key);
        if (!row) return undefined;
        // A row this class wrote holds a finite log-probability ≤ 0 and a 0/1 flag; anything else was written by
        // something else, and answering with it would change the scores without a word.
        if (typeof row.logprob !== "number" || !Number.isFinite(row.logprob) || row.logprob > 0 || (row.greedy !== 0 && row.greedy !== 1)) {
            throw new MambaEvalError(
                `--use_cache ${this.file}: row ${JSON.stringify(key)} holds logprob ${String(row.logprob)}, greedy ${String(row.greedy)} ` +
                    "(expected a finite log-probability <= 0 and 0 or 1): the file was altered; use another cache file",
            );
        }
        return { logprob: row.logprob, isGreedy: row.greedy === 1 };
    }

    /** Persists one result now (its own transaction: durable as soon as it returns, up to the OS). */
    put(request: LoglikelihoodRequest, result: LoglikelihoodResult, key: string = cacheKey(request)): void {
        try {
            this.putStmt.run(key, result.logprob, result.isGreedy ? 1 : 0);
        } catch (e) {
            const code = (e as { code?: string }).code;
            throw new MambaEvalError(`--use_cache ${this.file}: cannot write (${code ? `${code}: ` : ""}${(e as Error).message})`);
        }
        this.written++;
    }

    /** Number of cached loglikelihood results. */
    size(): number {
        return (this.db.prepare("SELECT COUNT(*) AS n FROM loglikelihood").get() as { n: number }).n;
    }

    close(): void {
        if (this.db.open) this.db.close();
    }
}

/** What CachingLM must know before its answers may be used. */
export interface CachingLMOptions {
    /** The weights' sha256 (resolves when known; rejects when it cannot be computed). */
    weightsSha256: Promise<string>;
    /**
     * Bind the run's set of requests and its state budget too: where the prefix tree branches, and which branches
     * replay their ancestors when the budget is short, move the last bits of Mamba-2 in bfloat16 on CUDA.
     */
    bindRequestSet?: { stateBudgetBytes: number };
}

/**
 * lm-eval's CachingLM for loglikelihood: answers cached requests from the file, sends only the others to `lm`, and
 * stores each new result the moment the LM reports it (once the weights are verified; see the module comment).
 * Rolling and generation pass through.
 */
export class CachingLM implements LM {
    /** Requests answered from the cache in the last loglikelihood call. */
    lastHits = 0;
    /** Settles once the weights' checksum is bound to the file (rejects with the refusal). */
    private readonly verified: Promise<void>;
    private isVerified = false;
    /** Answers waiting for the weights' checksum. */
    private pending: { request: LoglikelihoodRequest; key: string; result: LoglikelihoodResult }[] = [];

    constructor(private readonly lm: LM, private readonly cache: ResultCache, private readonly options: CachingLMOptions) {
        this.verified = options.weightsSha256.then((sha) => {
            cache.bind("weightsSha256", sha);
            this.isVerified = true;
            const held = this.pending;
            this.pending = [];
            for (const p of held) cache.put(p.request, p.result, p.key);
        });
        this.verified.catch(() => undefined);  // observed in loglikelihood
    }

    private store(request: LoglikelihoodRequest, key: string, result: LoglikelihoodResult): void {
        if (this.isVerified) this.cache.put(request, result, key);
        else this.pending.push({ request, key, result });
    }

    async loglikelihood(requests: LoglikelihoodRequest[], options: LMCallOptions = {}): Promise<LoglikelihoodResult[]> {
        const keys = requests.map((r) => cacheKey(r));
        if (this.options.bindRequestSet) {
            const text = `${[...new Set(keys)].sort().join("\n")}\nstate_budget_bytes=${this.options.bindRequestSet.stateBudgetBytes}`;
            this.cache.bind("requestSet", createHash("sha256").update(text).digest("hex"));
        }
        const results: (LoglikelihoodResult | undefined)[] = requests.map((r, i) => this.cache.get(r, keys[i]));
        const missing: number[] = [];
        results.forEach((r, i) => {
            if (!r) missing.push(i);
        });
        this.lastHits = requests.length - missing.length;
        const hits = this.lastHits;
        if (missing.length > 0) {
            // A refusal found while scoring stops the scoring at once.
            const stop = new AbortController();
            const onAbort = () => stop.abort(options.signal?.reason);
            options.signal?.addEventListener("abort", onAbort, { once: true });
            if (options.signal?.aborted) onAbort();
            let refusal: unknown;
            this.verified.catch((e: unknown) => {
                refusal = e;
                stop.abort(e);
            });
            try {
                const fresh = await this.lm.loglikelihood(
                    missing.map((i) => requests[i]!),
                    {
                        signal: stop.signal,
                        onProgress: (p) => options.onProgress?.({ done: hits + p.done, total: requests.length, tokens: p.tokens }),
                        onResult: (j, result) => {
                            const i = missing[j]!;
                            this.store(requests[i]!, keys[i]!, result);
                            options.onResult?.(i, result);
                        },
                    },
                );
                fresh.forEach((r, j) => {
                    results[missing[j]!] = r;
                });
            } catch (e) {
                if (refusal !== undefined) throw refusal;
                throw e;
            } finally {
                options.signal?.removeEventListener("abort", onAbort);
            }
        }
        await this.verified;  // no answer (read or new) is used before the weights are known to be the file's
        return results.map((r) => r!);
    }

    loglikelihoodRolling(requests: Parameters<LM["loglikelihoodRolling"]>[0], options?: LMCallOptions): Promise<number[]> {
        return this.lm.loglikelihoodRolling(requests, options);
    }

    generateUntil(requests: Parameters<LM["generateUntil"]>[0], options?: LMCallOptions): Promise<string[]> {
        return this.lm.generateUntil(requests, options);
    }
}
