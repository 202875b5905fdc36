// mlp.h — the gate of mamba_ssm's GatedMLP (modules/mlp.py) and of MHA's in-attention MLP (modules/mha.py 225-228).
#pragma once
#include <cstdint>

#include "cpu/thread_pool.h"

namespace mamba {

// y[t][i] = x[t][i] · SiLU(x[t][n + i]),  i < n:  the value half times SiLU of the gate half of each row
// (GatedMLP's fc1 output [value | gate], MHA's mlp rows [up | gate]). x: [T] rows at stride ldx, y at stride ldy.
void silu_gate(const float* x, int64_t ldx, int64_t T, int64_t n, float* y, int64_t ldy, ThreadPool& pool);

}  // namespace mamba
