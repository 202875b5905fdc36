// pyrandom_bootstrap.cc — see pyrandom_bootstrap.h.
//
// lm-eval's perplexity bootstrap (lm_eval/api/metrics.py bootstrap_stderr + _bootstrap_internal) resamples the n
// per-document log-likelihoods in chunks: chunk c makes a fresh `random.Random(c)` and draws `chunk_size`
// resamples with `choices(values, k=n)`. In CPython:
//
//   random.Random(c)    MT19937 state from init_by_array([c])              (c < 2^32: a one-word key)
//   genrand_uint32()    next state word, tempered; the 624-word block is regenerated when used up
//   random()            (a·2^26 + b) · 2^-53   with a = genrand_uint32() >> 5, b = genrand_uint32() >> 6
//   choices(v, k=n)     [v[floor(random() · n)] for _ in range(n)]
//
// Here each resample is summed left to right as it is drawn (TypeScript turns a sum into exp(-(sum / n))).
// The index of one draw is computed exactly as pyrandom.ts mtResampleSum does it:
//
//   index = trunc(double(a·2^26 + b) · (n · 2^-53))
//
// a·2^26 + b < 2^53 is exact in a double, n·2^-53 is exact (a power-of-two scaling), so the one multiply rounds
// exactly as Python's random() · n does; the product is ≥ 0 and < n (for n not a power of two it lies more than
// half an ulp below n; for a power of two it is exact), so truncation is floor and the index is in range.
//
// Every draw takes two words, and a chunk's stream starts at a block boundary (a fresh generator's first call
// regenerates), so with 624 words per block a draw's two words never straddle a regeneration: each block is
// exactly 312 draws. The generator therefore works a block at a time: regenerate, temper all 624 words and turn
// them into 312 indices (loops without branches, which the compiler vectorises), then add values[index] to the
// running sum in draw order. Built with -ffp-contract=off (CMakeLists.txt), so no multiply-add is fused.
//
// Speed: one chunk's sum is a chain of dependent additions (3–4 cycles each), which the block generation
// overlaps. So each thread runs two chunks in lockstep (same n, so their blocks and resamples end together):
// two independent chains, each in its own order. ≈ 1.0 ns per draw per thread on the dev box (Zen 5), 1.5–1.9 on
// a 16-core Xeon, against 1.4 and 2.6 for one chunk at a time, and 9–11 in JS.
#include "cpu/pyrandom_bootstrap.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

namespace mamba {

namespace {
constexpr int kDrawsPerBlock = kMtWords / 2;  // 312 draws of two words each
constexpr int kShift = 397;                   // MT19937's m
constexpr uint32_t kUpperBit = 0x80000000u;
constexpr uint32_t kLowerBits = 0x7fffffffu;
constexpr uint32_t kMatrixA = 0x9908b0dfu;
static_assert(kMtWords % 2 == 0, "a draw's two words must never straddle a regeneration");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "next_block_indices reads two words as one 64-bit lane");

// One word of the regeneration: the upper bit of `word`, the lower 31 bits of `next`, twisted, xored into `far`.
inline uint32_t twist(uint32_t word, uint32_t next, uint32_t far) {
    uint32_t y = (word & kUpperBit) | (next & kLowerBits);
    return far ^ (y >> 1) ^ ((0u - (y & 1u)) & kMatrixA);
}

// MT19937's output tempering of one state word.
inline uint32_t temper(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

// The next block's 312 draw indices into a population of n (scale = n · 2^-53); see the comment at the top.
// Draw i's words 2i (a) and 2i+1 (b) are read as one little-endian 64-bit lane, and a >> 5 and b >> 6 (below
// 2^52) become doubles exactly by placing them in the mantissa of 2^52 and subtracting 2^52: every step stays
// within the lane, so the loop vectorises without shuffles (AVX2 has no 64-bit integer → double conversion).
void next_block_indices(uint32_t state[kMtWords], double scale, int32_t index[kDrawsPerBlock]) {
    const uint64_t two52_bits = 0x4330000000000000ull;  // the double 2^52
    uint32_t words[kMtWords];
    mt_regenerate(state);
    mt_temper_block(state, words);
    for (int i = 0; i < kDrawsPerBlock; i++) {
        uint64_t pair;
        std::memcpy(&pair, &words[2 * i], sizeof pair);  // words[2i] | words[2i+1] << 32
        uint64_t a_bits = two52_bits | ((pair & 0xffffffffu) >> 5);
        uint64_t b_bits = two52_bits | (pair >> 38);
        double a, b;
        std::memcpy(&a, &a_bits, sizeof a);
        std::memcpy(&b, &b_bits, sizeof b);
        a -= 0x1p52;
        b -= 0x1p52;
        // a·2^26 + b < 2^53 is exact; the one rounding is in · scale, as in Python's random() · n.
        index[i] = int32_t((a * 67108864.0 + b) * scale);
    }
}

// resample_sums for kChunks chunks at once, in lockstep: out[c][j] = the j-th resample sum of seeds[c].
template <int kChunks>
void resample_sums_lockstep(const double* values, int64_t n, const uint32_t seeds[kChunks], double* const out[kChunks],
                            int64_t count) {
    uint32_t state[kChunks][kMtWords];
    int32_t index[kChunks][kDrawsPerBlock];
    for (int c = 0; c < kChunks; c++) mt_seed_one_word(state[c], seeds[c]);
    const double scale = double(n) * 0x1p-53;
    int used = kDrawsPerBlock;  // draws taken from the current blocks; a fresh generator regenerates first
    for (int64_t j = 0; j < count; j++) {
        double total[kChunks] = {};
        for (int64_t left = n; left > 0;) {
            if (used == kDrawsPerBlock) {
                for (int c = 0; c < kChunks; c++) next_block_indices(state[c], scale, index[c]);
                used = 0;
            }
            int take = int(std::min<int64_t>(left, kDrawsPerBlock - used));
            for (int i = used; i < used + take; i++)
                for (int c = 0; c < kChunks; c++) total[c] += values[index[c][i]];
            used += take;
            left -= take;
        }
        for (int c = 0; c < kChunks; c++) out[c][j] = total[c];
    }
}
}  // namespace

void mt_seed_one_word(uint32_t state[kMtWords], uint32_t seed) {
    // init_genrand(19650218)
    state[0] = 19650218u;
    for (int i = 1; i < kMtWords; i++) state[i] = 1812433253u * (state[i - 1] ^ (state[i - 1] >> 30)) + uint32_t(i);
    // init_by_array's two mixing passes, for key = [seed] (so key[j] + j is always seed + 0).
    int i = 1;
    for (int k = kMtWords; k > 0; k--) {
        state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) * 1664525u)) + seed;
        if (++i >= kMtWords) {
            state[0] = state[kMtWords - 1];
            i = 1;
        }
    }
    for (int k = kMtWords - 1; k > 0; k--) {
        state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
        if (++i >= kMtWords) {
            state[0] = state[kMtWords - 1];
            i = 1;
        }
    }
    state[0] = kUpperBit;  // the MSB is 1, assuring a non-zero initial array
}

void mt_regenerate(uint32_t state[kMtWords]) {
    // state[k] ← state[k + 397] ^ twist(state[k], state[k + 1]), indices mod 624, k = 0 .. 623 in order. Split
    // so that no loop wraps: the first reads words not yet rewritten, the second words rewritten 227 steps ago.
    int k = 0;
    for (; k < kMtWords - kShift; k++) state[k] = twist(state[k], state[k + 1], state[k + kShift]);
    for (; k < kMtWords - 1; k++) state[k] = twist(state[k], state[k + 1], state[k + kShift - kMtWords]);
    state[kMtWords - 1] = twist(state[kMtWords - 1], state[0], state[kShift - 1]);
}

void mt_temper_block(const uint32_t state[kMtWords], uint32_t out[kMtWords]) {
    for (int i = 0; i < kMtWords; i++) out[i] = temper(state[i]);
}

void resample_sums(const double* values, int64_t n, uint32_t seed, double* out, int64_t count) {
    resample_sums_lockstep<1>(values, n, &seed, &out, count);
}

void bootstrap_resample_sums(const double* values, int64_t n, int64_t chunk_size, int64_t chunk_count,
                             int threads, double* out) {
    // Threads claim pairs of chunks (2p, 2p + 1), run in lockstep; an odd last chunk runs alone.
    const int64_t pair_count = (chunk_count + 1) / 2;
    std::atomic<int64_t> next_pair{0};
    auto claim_chunks = [&] {
        for (;;) {
            int64_t c = 2 * next_pair.fetch_add(1);
            if (c >= chunk_count) return;
            if (c + 1 < chunk_count) {
                const uint32_t seeds[2] = {uint32_t(c), uint32_t(c + 1)};
                double* const outs[2] = {out + c * chunk_size, out + (c + 1) * chunk_size};
                resample_sums_lockstep<2>(values, n, seeds, outs, chunk_size);
            } else {
                resample_sums(values, n, uint32_t(c), out + c * chunk_size, chunk_size);
            }
        }
    };
    std::vector<std::thread> helpers;
    int64_t wanted = std::min<int64_t>(threads, pair_count) - 1;
    for (int64_t t = 0; t < wanted; t++) {
        try {
            helpers.emplace_back(claim_chunks);
        } catch (const std::system_error&) {
            break;  // no more threads to be had: the ones running (at least this one) claim every chunk
        }
    }
    claim_chunks();
    for (auto& h : helpers) h.join();
}

}  // namespace mamba
