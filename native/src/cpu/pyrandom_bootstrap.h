// pyrandom_bootstrap.h — lm-eval's perplexity bootstrap draws, as CPython's `random.Random(seed).choices` makes
// them (MT19937 seeded through init_by_array([seed])), summed per resample. Bit-identical to
// src/harness/pyrandom.ts `resampleSumsFromSeed`; the exp and everything else stays in TypeScript.
#pragma once
#include <cstdint>

namespace mamba {

constexpr int kMtWords = 624;  // MT19937 state words; one regeneration yields this many outputs

// CPython's init_by_array(key) for a one-word key: the state `random.Random(seed)` starts from (seed < 2^32).
void mt_seed_one_word(uint32_t state[kMtWords], uint32_t seed);

// Regenerates the whole 624-word block in place (the refill in genrand_uint32).
void mt_regenerate(uint32_t state[kMtWords]);

// out[i] = tempered(state[i]) for the whole block: the 624 outputs genrand_uint32 returns next, in order.
void mt_temper_block(const uint32_t state[kMtWords], uint32_t out[kMtWords]);

// out[j] for j < count: the sum, left to right, of the j-th resample `random.Random(seed).choices(values, k=n)`
// returns (resamples drawn one after the other from the same generator). 0 ≤ n < 2^31.
void resample_sums(const double* values, int64_t n, uint32_t seed, double* out, int64_t count);

// All of a bootstrap's resample sums: chunk c (c < chunk_count < 2^32) is resample_sums(values, n, c, ...,
// chunk_size) written to out[c·chunk_size ...]. Pairs of chunks (run in lockstep) are claimed from an atomic
// counter by `threads` threads, the calling one included; the results never depend on the thread count.
void bootstrap_resample_sums(const double* values, int64_t n, int64_t chunk_size, int64_t chunk_count,
                             int threads, double* out);

}  // namespace mamba
