"""Writes one random bf16 checkpoint at a real Mamba shape, for the CUDA bench (run on the GPU machine).

    python3 make_bench_checkpoint.py NAME OUT_DIR

NAME is one of mamba-130m, mamba-370m, mamba-790m, mamba-1.4b, mamba-2.8b, mamba2-2.7b. OUT_DIR/model.safetensors gets canonical
(mamba_ssm) tensor names; OUT_DIR/shape.json the NativeModelSpec numbers. Weights are drawn on the GPU with
a fixed seed, scaled like an initialised model (so activations stay finite), never zeros.
"""

import json
import math
import os
import sys

import torch
from safetensors.torch import save_file

SHAPES = {
    "mamba-130m": dict(family=1, d_model=768, n_layer=24, d_state=16, head_dim=0),
    "mamba-370m": dict(family=1, d_model=1024, n_layer=48, d_state=16, head_dim=0),
    "mamba-790m": dict(family=1, d_model=1536, n_layer=48, d_state=16, head_dim=0),
    "mamba-1.4b": dict(family=1, d_model=2048, n_layer=48, d_state=16, head_dim=0),
    "mamba-2.8b": dict(family=1, d_model=2560, n_layer=64, d_state=16, head_dim=0),
    "mamba2-2.7b": dict(family=2, d_model=2560, n_layer=64, d_state=128, head_dim=64),
}
VOCAB = 50280
D_CONV = 4


def main() -> int:
    name, out_dir = sys.argv[1], sys.argv[2]
    s = SHAPES[name]
    D, L, N = s["d_model"], s["n_layer"], s["d_state"]
    E = 2 * D
    R = math.ceil(D / 16)
    H = E // s["head_dim"] if s["family"] == 2 else 0
    G = 1
    g = torch.Generator(device="cuda").manual_seed(1234)
    bf16 = torch.bfloat16

    def randn(*shape, scale):
        return (torch.randn(*shape, generator=g, device="cuda") * scale).to(bf16)

    def uniform(lo, hi, *shape):
        return (torch.rand(*shape, generator=g, device="cuda") * (hi - lo) + lo)

    def inv_softplus(y):
        return y + torch.log(-torch.expm1(-y))

    t = {"backbone.embedding.weight": randn(VOCAB, D, scale=0.02),
         "backbone.norm_f.weight": torch.ones(D, dtype=bf16, device="cuda")}
    for i in range(L):
        p = f"backbone.layers.{i}."
        t[p + "norm.weight"] = torch.ones(D, dtype=bf16, device="cuda")
        t[p + "mixer.D"] = torch.ones(E if s["family"] == 1 else H, dtype=bf16, device="cuda")
        t[p + "mixer.out_proj.weight"] = randn(D, E, scale=1 / math.sqrt(E) / math.sqrt(L))
        dt = torch.exp(uniform(math.log(1e-3), math.log(1e-1), E if s["family"] == 1 else H))
        if s["family"] == 1:
            t[p + "mixer.in_proj.weight"] = randn(2 * E, D, scale=1 / math.sqrt(D))
            t[p + "mixer.conv1d.weight"] = randn(E, 1, D_CONV, scale=0.5)
            t[p + "mixer.conv1d.bias"] = randn(E, scale=0.1)
            t[p + "mixer.x_proj.weight"] = randn(R + 2 * N, E, scale=1 / math.sqrt(E))
            t[p + "mixer.dt_proj.weight"] = randn(E, R, scale=R ** -0.5)
            t[p + "mixer.dt_proj.bias"] = inv_softplus(dt).to(bf16)
            t[p + "mixer.A_log"] = torch.log(torch.arange(1, N + 1, device="cuda").float()).repeat(E, 1).to(bf16)
        else:
            C = E + 2 * G * N
            t[p + "mixer.in_proj.weight"] = randn(2 * E + 2 * G * N + H, D, scale=1 / math.sqrt(D))
            t[p + "mixer.conv1d.weight"] = randn(C, 1, D_CONV, scale=0.5)
            t[p + "mixer.conv1d.bias"] = randn(C, scale=0.1)
            t[p + "mixer.dt_bias"] = inv_softplus(dt).to(bf16)
            t[p + "mixer.A_log"] = torch.log(uniform(1, 16, H)).to(bf16)
            t[p + "mixer.norm.weight"] = torch.ones(E, dtype=bf16, device="cuda")
    os.makedirs(out_dir, exist_ok=True)
    save_file({k: v.contiguous().cpu() for k, v in t.items()}, os.path.join(out_dir, "model.safetensors"))
    spec = dict(family=s["family"], dModel=D, nLayer=L, vocab=VOCAB, dState=N, dConv=D_CONV, dInner=E,
                dtRank=R if s["family"] == 1 else 0, nHeads=H, headDim=s["head_dim"], nGroups=G if s["family"] == 2 else 0,
                params=sum(v.numel() for v in t.values()),
                layerGemmParams=sum(v.numel() for k, v in t.items() if k.endswith("proj.weight")))
    with open(os.path.join(out_dir, "shape.json"), "w") as f:
        json.dump(spec, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
