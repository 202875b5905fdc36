/**
 * lm-evaluation-harness's tokenisation rule for (context, continuation) pairs, its left truncation,
 * and its rolling windows for whole-document scoring (TemplateLM._encode_pair, HFLM._loglikelihood_tokens,
 * utils.get_rolling_token_windows + make_disjoint_window). This is where parity is usually lost, so the
 * rule is written down once, here:
 *
 *   context "The cat sat on the "   continuation "mat"
 *        1. trailing whitespace of the context moves to the front of the continuation
 *   context "The cat sat on the"    continuation " mat"
 *        2. whole = encode(context + continuation); ctxIds = encode(context)
 *           contIds = whole[len(ctxIds):]        (the tail of the JOINT encoding)
 *   whole   [ The | cat | sat | on | the | mat ]
 *   ctxIds  [ The | cat | sat | on | the ]
 *   contIds                              [ mat ]
 *        3. model input = (ctxIds + contIds)[-(maxLength+1):][:-1]; the last len(contIds) rows of
 *           that input predict the continuation tokens:
 *   input   [ The | cat | sat | on | the ]        row 4 ("the") predicts "mat"
 *
 * Empty context: context = [prefix id] (EOS = BOS = 0 for GPT-NeoX), continuation = encode(continuation);
 * if the continuation's first token already is the prefix token, that token becomes the context. Only a truly
 * empty context ("") takes this path, as in lm-eval; a whitespace-only context goes through step 1, encodes
 * to no tokens and is rejected (lm-eval asserts a non-empty context encoding).
 * No BOS is ever added.
 */
import { MambaEvalError } from "../errors.js";

/** What encodePair needs from a tokenizer: encode without special tokens (batch form optional). */
export interface PairEncoder {
    encode(text: string): Promise<ArrayLike<number>>;
    encodeBatch?(texts: string[]): Promise<ArrayLike<number>[]>;
    /**
     * True when encode(a + b) = encode(a) ++ encode(b) for every a ending in a non-whitespace character and b
     * starting with " " (src/model/tokenizer.ts `splitsBeforeSpace` proves it from the tokenizer.json).
     */
    splitsBeforeSpace?: boolean;
}

/** The context and continuation token ids of one request, before truncation. */
export interface EncodedPair {
    context: number[];
    continuation: number[];
}

/** A request in token form after truncation: what the scheduler scores. */
export interface TokenRequest {
    /**
     * The kept token sequence: (context + continuation)[-(maxLength+1):]. The model reads all but the last
     * token; row i predicts tokens[i + 1].
     */
    tokens: number[];
    /** How many trailing tokens are scored (the continuation length); rows tokens.length-1-nScored .. tokens.length-2. */
    nScored: number;
}

/** lm-eval's default for mamba_ssm. */
export const DEFAULT_MAX_LENGTH = 2048;

/**
 * Python's str.isspace() for one code point: the characters with bidirectional class WS, B or S, or
 * general category Zs. Unlike JavaScript's \s it includes U+001C..U+001F and excludes U+FEFF.
 */
export function isPythonSpace(codePoint: number): boolean {
    return (
        (codePoint >= 0x09 && codePoint <= 0x0d) ||
        (codePoint >= 0x1c && codePoint <= 0x20) ||
        codePoint === 0x85 ||
        codePoint === 0xa0 ||
        codePoint === 0x1680 ||
        (codePoint >= 0x2000 && codePoint <= 0x200a) ||
        codePoint === 0x2028 ||
        codePoint === 0x2029 ||
        codePoint === 0x202f ||
        codePoint === 0x205f ||
        codePoint === 0x3000
    );
}

/** Splits `context` into (context.rstrip(), its trailing whitespace) with Python's whitespace definition. */
export function splitTrailingWhitespace(context: string): [string, string] {
    let end = context.length;
    while (end > 0) {
        // All Python whitespace characters are in the BMP, so checking single UTF-16 units is exact.
        const unit = context.charCodeAt(end - 1);
        if (!isPythonSpace(unit)) break;
        end--;
    }
    return [context.slice(0, end), context.slice(end)];
}

/** Step 1 of the rule: the (context, continuation) strings that are actually encoded. */
export function moveTrailingWhitespace(context: string, continuation: string): [string, string] {
    const [kept, trailing] = splitTrailingWhitespace(context);
    return [kept, trailing + continuation];
}

function toArray(ids: ArrayLike<number>): number[] {
    return Array.isArray(ids) ? (ids as number[]) : Array.from(ids);
}

/**
 * The token ids lm-eval scores for one request (TemplateLM._encode_pair, with main's empty-context rule).
 * `prefixTokenId` is the token used as context when the context is empty (0 for GPT-NeoX).
 */
export async function encodePair(
    encoder: PairEncoder,
    context: string,
    continuation: string,
    prefixTokenId: number,
): Promise<EncodedPair> {
    const pairs = await encodePairs(encoder, [{ context, continuation }], prefixTokenId);
    return pairs[0]!;
}

/**
 * encodePair over many requests at once: every distinct string is encoded once (batched when the encoder
 * supports it), which matters because multiple-choice tasks repeat each context several times. When the encoder
 * splitsBeforeSpace and the (moved) continuation starts with " " after a context ending in a non-space (all but 3
 * of the Table-3 tasks' 65 719 requests), encode(context + continuation) is encode(context) ++ encode(continuation),
 * so the continuation is encoded alone: the same ids as step 2, for less than half the tokenizer's work.
 */
export async function encodePairs(
    encoder: PairEncoder,
    requests: readonly { context: string; continuation: string }[],
    prefixTokenId: number,
): Promise<EncodedPair[]> {
    // lm-eval tests the original context for "" before moving whitespace: "   " is not an empty context.
    const moved = requests.map((r) => (r.context === "" ? null : moveTrailingWhitespace(r.context, r.continuation)));
    const splits = encoder.splitsBeforeSpace === true;
    const encodedApart = moved.map((pair) => splits && pair !== null && splitsAtBoundary(pair[0], pair[1]));
    const texts = new Set<string>();
    moved.forEach((pair, i) => {
        if (pair === null) texts.add(requests[i]!.continuation);
        else {
            texts.add(pair[0]);
            texts.add(encodedApart[i] ? pair[1] : pair[0] + pair[1]);
        }
    });
    const encoded = await encodeAll(encoder, [...texts]);
    return moved.map((pair, i) => {
        if (pair === null) {
            const cont = requests[i]!.continuation;
            const contIds = encoded.get(cont)!;
            if (contIds.length > 0 && contIds[0] === prefixTokenId) {
                return { context: [prefixTokenId], continuation: contIds.slice(1) };
            }
            return { context: [prefixTokenId], continuation: contIds.slice() };
        }
        const [ctx, cont] = pair;
        const ctxIds = encoded.get(ctx)!;
        if (encodedApart[i]) return { context: ctxIds.slice(), continuation: encoded.get(cont)!.slice() };
        const whole = encoded.get(ctx + cont)!;
        return { context: ctxIds.slice(), continuation: whole.slice(ctxIds.length) };
    });
}

/** A non-empty context ending in a non-space, and a continuation starting with " " (see PairEncoder.splitsBeforeSpace). */
function splitsAtBoundary(context: string, continuation: string): boolean {
    return context.length > 0 && !isPythonSpace(context.charCodeAt(context.length - 1)) && continuation.startsWith(" ");
}

async function encodeAll(encoder: PairEncoder, texts: string[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    const chunk = 4096;
    const parts: string[][] = [];
    for (let i = 0; i < texts.length; i += chunk) parts.push(texts.slice(i, i + chunk));
    // Every batch is handed over at once: the tokenizer's threads encode the later ones while this thread takes in
    // the finished ones. (A failure is thrown by the await that meets it; the others are then ignored.)
    const pending = parts.map((part) => (encoder.encodeBatch ? encoder.encodeBatch(part) : Promise.all(part.map((t) => encoder.encode(t)))));
    for (const p of pending) p.catch(() => undefined);
    for (const [k, part] of parts.entries()) {
        const ids = await pending[k]!;
        part.forEach((t, j) => out.set(t, toArray(ids[j]!)));
    }
    return out;
}

/**
 * lm-eval's left truncation for causal models: keep (context + continuation)[-(maxLength+1):]; the model
 * input is that without its last token. Throws when the continuation is empty or longer than maxLength
 * (lm-eval asserts both).
 */
export function truncatePair(pair: EncodedPair, maxLength: number = DEFAULT_MAX_LENGTH): TokenRequest {
    const nScored = pair.continuation.length;
    if (pair.context.length === 0) {
        throw new MambaEvalError("encodePair: the context encodes to no tokens (a whitespace-only context; lm-eval rejects it too)");
    }
    if (nScored === 0) {
        throw new MambaEvalError("encodePair: the continuation encodes to no tokens; lm-eval requires a non-empty continuation");
    }
    if (nScored > maxLength) {
        throw new MambaEvalError(
            `encodePair: the continuation has ${nScored} tokens, more than max_length ${maxLength}`,
        );
    }
    const whole = pair.context.concat(pair.continuation);
    const tokens = whole.length > maxLength + 1 ? whole.slice(whole.length - (maxLength + 1)) : whole;
    return { tokens, nScored };
}

/** One rolling window: the tokens the window conditions on and the tokens it predicts. */
export interface RollingWindow {
    context: number[];
    continuation: number[];
}

/**
 * lm-eval's get_rolling_token_windows: split a document's tokens into windows of at most maxSeqLen
 * predicted tokens so that every token is predicted exactly once. The first window is
 * [prefix] + toks[:maxSeqLen-1] predicting toks[:maxSeqLen]; each later window predicts the next
 * (up to maxSeqLen - contextLen + 1) tokens from the maxSeqLen tokens ending just before its last one:
 *
 *   toks     t0 t1 t2 t3 t4 t5 t6        maxSeqLen 4, contextLen 1
 *   window 1 input [P  t0 t1 t2]  predicts t0 t1 t2 t3
 *   window 2 input [t2 t3 t4 t5]  predicts          t4 t5 t6
 *   (make_disjoint_window then cuts window 2's context to [t2 t3]: t4 t5 come from its continuation)
 */
export function rollingTokenWindows(
    tokens: readonly number[],
    prefixTokenId: number,
    maxSeqLen: number,
    contextLen: number,
): RollingWindow[] {
    if (!(maxSeqLen >= 1 && contextLen >= 1 && contextLen <= maxSeqLen)) {
        throw new MambaEvalError(`rollingTokenWindows: need 1 <= contextLen (${contextLen}) <= maxSeqLen (${maxSeqLen})`);
    }
    const windows: RollingWindow[] = [];
    if (tokens.length === 0) return windows;
    const predLen = maxSeqLen - contextLen + 1;
    const firstLen = Math.min(maxSeqLen, tokens.length);
    windows.push({ context: [prefixTokenId, ...tokens.slice(0, firstLen - 1)], continuation: tokens.slice(0, firstLen) });
    let predicted = firstLen;
    while (predicted < tokens.length) {
        const windowPredLen = Math.min(tokens.length - predicted, predLen);
        const windowEnd = predicted + windowPredLen;
        windows.push({
            context: tokens.slice(windowEnd - maxSeqLen - 1, windowEnd - 1),
            continuation: tokens.slice(windowEnd - windowPredLen, windowEnd),
        });
        predicted += windowPredLen;
    }
    return windows;
}

/** lm-eval's make_disjoint_window: drop from the context the tokens the continuation already supplies. */
export function makeDisjointWindow(window: RollingWindow): RollingWindow {
    const keep = window.context.length - (window.continuation.length - 1);
    return { context: window.context.slice(0, keep), continuation: window.continuation };
}

/**
 * The scoring requests of one document for loglikelihood_rolling (context_len 1, as HFLM does): disjoint
 * windows, already truncated for the model. The document's log-likelihood is the sum over its windows.
 */
export function rollingRequests(tokens: readonly number[], prefixTokenId: number, maxLength: number = DEFAULT_MAX_LENGTH): TokenRequest[] {
    return rollingTokenWindows(tokens, prefixTokenId, maxLength, 1)
        .map(makeDisjointWindow)
        .map((w) => truncatePair(w, maxLength));
}
