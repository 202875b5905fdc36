/**
 * `--use_cache PATH`: a SQLite file (better-sqlite3, WAL mode) holding one row per finished loglikelihood
 * request, written as soon as the request completes, so a run that is killed resumes without recomputing.
 *
 * Keys are lm-eval's CachingLM keys: sha256 of Python's `json.dumps(["loglikelihood", context, continuation])`
 * (default separators ", ", non-ASCII escaped as \uXXXX). Unlike lm-eval's model-agnostic cache, a meta row
 * records the model fingerprint and dtype, and opening the file for another model is an error. Several
 * processes may share one file: SQLite serialises the writers (busy timeout) and WAL keeps readers consistent.
 *
 * File name: PATH itself when it ends in ".db", else lm-eval's `PATH_rank0.db`.
 */
import { createHash } from "node:crypto";
import { makeDirs } from "../io/dirs.js";
import path from "node:path";
import Database from "better-sqlite3";
import { DataFormatError, UsageError } from "../errors.js";
import type { LM, LMCallOptions, LoglikelihoodRequest, LoglikelihoodResult } from "../lm/LM.js";

/** What identifies the numbers a cache holds. */
export interface CacheIdentity {
    /** Checkpoint fingerprint (src/model/types.ts Checkpoint.fingerprint). */
    fingerprint: string;
    /** Compute dtype, e.g. "float32". */
    dtype: string;
}

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

/** An open result cache; see the module comment. */
export class ResultCache {
    private readonly db: Database.Database;
    private readonly getStmt: Database.Statement<[string], { logprob: number; greedy: number }>;
    private readonly putStmt: Database.Statement<[string, number, number]>;
    /** Rows written by this process. */
    written = 0;

    private constructor(readonly file: string, identity: CacheIdentity) {
        makeDirs(path.dirname(path.resolve(file)));
        try {
            this.db = new Database(file, { timeout: 30_000 });
            this.db.pragma("journal_mode = WAL");
            this.db.pragma("synchronous = NORMAL");
            this.db.exec(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);" +
                    "CREATE TABLE IF NOT EXISTS loglikelihood (key TEXT PRIMARY KEY, logprob REAL NOT NULL, greedy INTEGER NOT NULL);",
            );
        } catch (e) {
            throw new DataFormatError(`--use_cache ${file}: not a usable SQLite cache (${(e as Error).message})`);
        }
        const wanted = JSON.stringify(identity);
        this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('model', ?)").run(wanted);
        const row = this.db.prepare("SELECT value FROM meta WHERE key = 'model'").get() as { value: string };
        if (row.value !== wanted) {
            let other = row.value;
            try {
                const o = JSON.parse(row.value) as CacheIdentity;
                other = `model ${o.fingerprint.slice(0, 12)} (${o.dtype})`;
            } catch {
                /* show the raw value */
            }
            this.db.close();
            throw new UsageError(
                `--use_cache ${file}: holds results of ${other}, not of model ${identity.fingerprint.slice(0, 12)} (${identity.dtype}); use another cache file`,
            );
        }
        this.getStmt = this.db.prepare("SELECT logprob, greedy FROM loglikelihood WHERE key = ?");
        this.putStmt = this.db.prepare("INSERT OR REPLACE INTO loglikelihood (key, logprob, greedy) VALUES (?, ?, ?)");
    }

    /** Opens (creating if needed) the cache file named by a `--use_cache` value. */
    static open(spec: string, identity: CacheIdentity): ResultCache {
        return new ResultCache(cacheFilePath(spec), identity);
    }

    get(request: LoglikelihoodRequest): LoglikelihoodResult | undefined {
        const row = this.getStmt.get(cacheKey(request));
        return row ? { logprob: row.logprob, isGreedy: row.greedy === 1 } : undefined;
    }

    /** Persists one result now (its own transaction: durable as soon as it returns, up to the OS). */
    put(request: LoglikelihoodRequest, result: LoglikelihoodResult): void {
        this.putStmt.run(cacheKey(request), result.logprob, result.isGreedy ? 1 : 0);
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

/**
 * lm-eval's CachingLM for loglikelihood: answers cached requests from the file, sends only the others to
 * `lm`, and stores each new result the moment the LM reports it. Rolling and generation pass through.
 */
export class CachingLM implements LM {
    /** Requests answered from the cache in the last loglikelihood call. */
    lastHits = 0;

    constructor(private readonly lm: LM, private readonly cache: ResultCache) {}

    async loglikelihood(requests: LoglikelihoodRequest[], options: LMCallOptions = {}): Promise<LoglikelihoodResult[]> {
        const results: (LoglikelihoodResult | undefined)[] = requests.map((r) => this.cache.get(r));
        const missing: number[] = [];
        results.forEach((r, i) => {
            if (!r) missing.push(i);
        });
        this.lastHits = requests.length - missing.length;
        const hits = this.lastHits;
        if (missing.length > 0) {
            const fresh = await this.lm.loglikelihood(
                missing.map((i) => requests[i]!),
                {
                    signal: options.signal,
                    onProgress: (p) => options.onProgress?.({ done: hits + p.done, total: requests.length, tokens: p.tokens }),
                    onResult: (j, result) => {
                        const i = missing[j]!;
                        this.cache.put(requests[i]!, result);
                        options.onResult?.(i, result);
                    },
                },
            );
            fresh.forEach((r, j) => {
                results[missing[j]!] = r;
            });
        }
        return results.map((r) => r!);
    }

    loglikelihoodRolling(requests: Parameters<LM["loglikelihoodRolling"]>[0], options?: LMCallOptions): Promise<number[]> {
        return this.lm.loglikelihoodRolling(requests, options);
    }

    generateUntil(requests: Parameters<LM["generateUntil"]>[0], options?: LMCallOptions): Promise<string[]> {
        return this.lm.generateUntil(requests, options);
    }
}
