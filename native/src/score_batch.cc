// score_batch.cc — see score_batch.h.
#include "score_batch.h"

#include <algorithm>
#include <stdexcept>

namespace mamba {

void check_slot_id(int slot, const std::string& what) {
    if (slot < 0 || slot >= kMaxSlots)
        throw std::runtime_error(what + ": slot id " + std::to_string(slot) + " is outside [0, " +
                                 std::to_string(kMaxSlots) + ")");
}

void check_tokens(const std::vector<int32_t>& tokens, int vocab, const std::string& what) {
    for (size_t i = 0; i < tokens.size(); i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            throw std::runtime_error(what + "[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                                     " is outside [0, " + std::to_string(vocab) + ")");
}

void validate_score_batch(const ScoreBatch& b, int vocab, const std::function<bool(int)>& holds_state) {
    const int64_t T = int64_t(b.tokens.size());
    if (T == 0) throw std::runtime_error("score: tokens is empty");
    check_tokens(b.tokens, vocab, "score: tokens");
    const size_t n_seg = b.seg_offsets.size() < 2 ? 0 : b.seg_offsets.size() - 1;
    if (n_seg == 0) throw std::runtime_error("score: segOffsets needs at least 2 entries (nSeg + 1)");
    if (b.seg_offsets[0] != 0) throw std::runtime_error("score: segOffsets[0] must be 0");
    if (b.seg_offsets.back() != T)
        throw std::runtime_error("score: the last segOffsets entry must equal tokens.length (" + std::to_string(T) +
                                 "), got " + std::to_string(b.seg_offsets.back()));
    for (size_t s = 0; s < n_seg; s++)
        if (b.seg_offsets[s + 1] <= b.seg_offsets[s])
            throw std::runtime_error("score: segOffsets must increase strictly (segment " + std::to_string(s) +
                                     " is empty or negative)");
    if (b.seg_init.size() != n_seg || b.seg_save.size() != n_seg)
        throw std::runtime_error("score: segInit and segSave need one entry per segment (" + std::to_string(n_seg) + ")");
    std::vector<int> will_live;  // slots saved by earlier segments of this batch
    for (size_t s = 0; s < n_seg; s++) {
        const std::string where = "score: segment " + std::to_string(s);
        const int init = b.seg_init[s], save = b.seg_save[s];
        if (init != -1) {
            check_slot_id(init, where + " segInit");
            if (!holds_state(init) && std::find(will_live.begin(), will_live.end(), init) == will_live.end())
                throw std::runtime_error(where + " starts from slot " + std::to_string(init) + ", which holds no state");
        }
        if (save != -1) {
            check_slot_id(save, where + " segSave");
            will_live.push_back(save);
        }
    }
    if (b.score_rows.size() != b.score_targets.size())
        throw std::runtime_error("score: scoreRows and scoreTargets differ in length (" +
                                 std::to_string(b.score_rows.size()) + " vs " + std::to_string(b.score_targets.size()) + ")");
    auto check_rows = [&](const std::vector<int32_t>& rows, const char* what) {
        for (size_t i = 0; i < rows.size(); i++)
            if (rows[i] < 0 || rows[i] >= T)
                throw std::runtime_error(std::string("score: ") + what + "[" + std::to_string(i) + "] = " +
                                         std::to_string(rows[i]) + " is outside [0, " + std::to_string(T) + ")");
    };
    check_rows(b.score_rows, "scoreRows");
    check_rows(b.logit_rows, "logitRows");
    check_tokens(b.score_targets, vocab, "score: scoreTargets");
}

}  // namespace mamba
