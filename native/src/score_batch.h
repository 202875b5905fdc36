// score_batch.h — the checks of a ScoreBatch and of slot ids, shared by every backend.
//
// addon.cc runs validate_score_batch once before a backend's score(), so both backends see only batches whose
// every index is in range and whose every starting slot holds a state (or is saved by an earlier segment).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"

namespace mamba {

// Slot ids are in [0, kMaxSlots).
constexpr int kMaxSlots = 1 << 20;

// Throws std::runtime_error "<what>: slot id N is outside [0, kMaxSlots)".
void check_slot_id(int slot, const std::string& what);

// Throws std::runtime_error "<what>[i] = id is outside [0, vocab)" for the first token out of range.
void check_tokens(const std::vector<int32_t>& tokens, int vocab, const std::string& what);

// Checks every index of a batch before any state is touched: tokens and targets in [0, vocab), segOffsets
// starting at 0, strictly increasing and ending at tokens.length, one segInit / segSave per segment, every
// starting slot holding a state (holds_state) or saved by an earlier segment, score/logit rows in range.
// Throws std::runtime_error with a one-line message naming the field.
void validate_score_batch(const ScoreBatch& b, int vocab, const std::function<bool(int)>& holds_state);

}  // namespace mamba
