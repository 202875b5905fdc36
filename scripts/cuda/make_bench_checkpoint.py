"""Writes one random bf16 checkpoint at a real Mamba shape, for the CUDA bench and the end-to-end Table-3 timing
(run on a GPU machine; without CUDA the weights are drawn on the CPU).

    python3 make_bench_checkpoint.py NAME OUT_DIR

NAME is a key of SHAPES: the five Mamba-1 sizes mamba-130m … mamba-2.8b, the Mamba-2 sizes mamba2-130m …
mamba2-2.7b, the attention checkpoints transformerpp-2.7b and mamba2attn-2.7b, or tiny-mamba1 / tiny-mamba2 (two
layers, for dry runs on the CPU). OUT_DIR/model.safetensors gets
canonical (mamba_ssm) tensor names; OUT_DIR/config.json the mamba_ssm config of that shape, so OUT_DIR is a
checkpoint folder the CLI loads (`mamba-eval --model OUT_DIR`); OUT_DIR/shape.json the NativeModelSpec numbers
(bench.ts). Weights are drawn with a fixed seed, scaled like an initialised model (so activations stay finite),
never zeros. The shapes are those of the state-spaces configs (Mamba-2: headdim 64, d_state 128, expand 2,
ngroups 1); the vocabulary is GPT-NeoX's 50277 padded to a multiple of 8.
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
    "mamba2-130m": dict(family=2, d_model=768, n_layer=24, d_state=128, head_dim=64),
    "mamba2-370m": dict(family=2, d_model=1024, n_layer=48, d_state=128, head_dim=64),
    "mamba2-780m": dict(family=2, d_model=1536, n_layer=48, d_state=128, head_dim=64),
    "mamba2-1.3b": dict(family=2, d_model=2048, n_layer=48, d_state=128, head_dim=64),
    "mamba2-2.7b": dict(family=2, d_model=2560, n_layer=64, d_state=128, head_dim=64),
    "tiny-mamba1": dict(family=1, d_model=64, n_layer=2, d_state=16, head_dim=0),
    "tiny-mamba2": dict(family=2, d_model=64, n_layer=2, d_state=16, head_dim=16),
    # The attention checkpoints (state-spaces configs; shared/spec/hybrid-semantics.md): attention layers, their
    # attn_cfg, and GatedMLP hidden size (0: none).
    "transformerpp-2.7b": dict(family=2, d_model=2560, n_layer=32, d_state=128, head_dim=64, attn_layers=list(range(32)),
                               attn=dict(num_heads=32, head_dim=80, rotary_emb_dim=40, d_conv=0), d_intermediate=6912),
    "mamba2attn-2.7b": dict(family=2, d_model=2560, n_layer=64, d_state=128, head_dim=64,
                            attn_layers=[9, 18, 27, 36, 45, 56],
                            attn=dict(num_heads=30, head_dim=128, rotary_emb_dim=64, d_conv=4), d_intermediate=0),
}
VOCAB_UNPADDED = 50277
PAD_VOCAB_MULTIPLE = 8
VOCAB = 50280  # VOCAB_UNPADDED rounded up to PAD_VOCAB_MULTIPLE, as MambaLMHeadModel pads it
D_CONV = 4


def mamba_ssm_config(s):
    """The config.json of mamba_ssm's MambaConfig for shape `s` (what state-spaces/* checkpoints ship)."""
    ssm_cfg = {"layer": "Mamba1" if s["family"] == 1 else "Mamba2", "d_state": s["d_state"], "d_conv": D_CONV, "expand": 2}
    if s["family"] == 2:
        ssm_cfg.update(headdim=s["head_dim"], ngroups=1)
    attn_cfg = {}
    if s.get("attn_layers"):
        a = s["attn"]
        attn_cfg = {"causal": True, "head_dim": a["head_dim"], "num_heads": a["num_heads"], "out_proj_bias": False,
                    "qkv_proj_bias": False, "rotary_emb_dim": a["rotary_emb_dim"]}
        if a["d_conv"]:
            attn_cfg["d_conv"] = a["d_conv"]
    return {"d_model": s["d_model"], "d_intermediate": s.get("d_intermediate", 0), "n_layer": s["n_layer"],
            "vocab_size": VOCAB_UNPADDED, "ssm_cfg": ssm_cfg, "attn_layer_idx": s.get("attn_layers", []), "attn_cfg": attn_cfg,
            "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": PAD_VOCAB_MULTIPLE,
            "tie_embeddings": True}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        print(f"usage: make_bench_checkpoint.py NAME OUT_DIR, NAME one of {', '.join(SHAPES)}", file=sys.stderr)
        return 2
    name, out_dir = sys.argv[1], sys.argv[2]
    s = SHAPES[name]
    D, L, N = s["d_model"], s["n_layer"], s["d_state"]
    E = 2 * D
    R = math.ceil(D / 16)
    H = E // s["head_dim"] if s["family"] == 2 else 0
    G = 1
    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator(device=device).manual_seed(1234)
    bf16 = torch.bfloat16

    def randn(*shape, scale):
        return (torch.randn(*shape, generator=g, device=device) * scale).to(bf16)

    def uniform(lo, hi, *shape):
        return (torch.rand(*shape, generator=g, device=device) * (hi - lo) + lo)

    def inv_softplus(y):
        return y + torch.log(-torch.expm1(-y))

    t = {"backbone.embedding.weight": randn(VOCAB, D, scale=0.02),
         "backbone.norm_f.weight": torch.ones(D, dtype=bf16, device=device)}
    attn_layers = set(s.get("attn_layers", []))
    a = s.get("attn", {})
    dI = -(-s.get("d_intermediate", 0) // 128) * 128  # GatedMLP rounds its hidden size up to a multiple of 128
    hd, AH = a.get("head_dim", 0), a.get("num_heads", 0)
    qkv = hd * 3 * AH  # num_heads_kv unset: as many K/V heads as query heads
    for i in range(L):
        p = f"backbone.layers.{i}."
        t[p + "norm.weight"] = torch.ones(D, dtype=bf16, device=device)
        if dI:
            t[p + "norm2.weight"] = torch.ones(D, dtype=bf16, device=device)
            t[p + "mlp.fc1.weight"] = randn(2 * dI, D, scale=1 / math.sqrt(D))
            t[p + "mlp.fc2.weight"] = randn(D, dI, scale=1 / math.sqrt(dI) / math.sqrt(L))
        if i in attn_layers:
            t[p + "mixer.in_proj.weight"] = randn(qkv, D, scale=1 / math.sqrt(D))
            if a["d_conv"]:
                t[p + "mixer.conv1d.weight"] = randn(qkv, 1, a["d_conv"], scale=0.5)
                t[p + "mixer.conv1d.bias"] = randn(qkv, scale=0.1)
            t[p + "mixer.out_proj.weight"] = randn(D, hd * AH, scale=1 / math.sqrt(hd * AH) / math.sqrt(L))
            continue
        t[p + "mixer.D"] = torch.ones(E if s["family"] == 1 else H, dtype=bf16, device=device)
        t[p + "mixer.out_proj.weight"] = randn(D, E, scale=1 / math.sqrt(E) / math.sqrt(L))
        dt = torch.exp(uniform(math.log(1e-3), math.log(1e-1), E if s["family"] == 1 else H))
        if s["family"] == 1:
            t[p + "mixer.in_proj.weight"] = randn(2 * E, D, scale=1 / math.sqrt(D))
            t[p + "mixer.conv1d.weight"] = randn(E, 1, D_CONV, scale=0.5)
            t[p + "mixer.conv1d.bias"] = randn(E, scale=0.1)
            t[p + "mixer.x_proj.weight"] = randn(R + 2 * N, E, scale=1 / math.sqrt(E))
            t[p + "mixer.dt_proj.weight"] = randn(E, R, scale=R ** -0.5)
            t[p + "mixer.dt_proj.bias"] = inv_softplus(dt).to(bf16)
            t[p + "mixer.A_log"] = torch.log(torch.arange(1, N + 1, device=device).float()).repeat(E, 1).to(bf16)
        else:
            C = E + 2 * G * N
            t[p + "mixer.in_proj.weight"] = randn(2 * E + 2 * G * N + H, D, scale=1 / math.sqrt(D))
            t[p + "mixer.conv1d.weight"] = randn(C, 1, D_CONV, scale=0.5)
            t[p + "mixer.conv1d.bias"] = randn(C, scale=0.1)
            t[p + "mixer.dt_bias"] = inv_softplus(dt).to(bf16)
            t[p + "mixer.A_log"] = torch.log(uniform(1, 16, H)).to(bf16)
            t[p + "mixer.norm.weight"] = torch.ones(E, dtype=bf16, device=device)
    os.makedirs(out_dir, exist_ok=True)
    save_file({k: v.contiguous().cpu() for k, v in t.items()}, os.path.join(out_dir, "model.safetensors"))
    spec = dict(family=s["family"], dModel=D, nLayer=L, vocab=VOCAB, dState=N, dConv=D_CONV, dInner=E,
                dtRank=R if s["family"] == 1 else 0, nHeads=H, headDim=s["head_dim"], nGroups=G if s["family"] == 2 else 0,
                params=sum(v.numel() for v in t.values()),
                layerGemmParams=sum(v.numel() for k, v in t.items() if k.endswith(("proj.weight", "fc1.weight", "fc2.weight"))))
    if attn_layers or dI:  # the NativeModelSpec's hybrid fields (addonTypes.ts)
        spec.update(layerKinds=[1 if i in attn_layers else 0 for i in range(L)], attnHeads=AH, attnHeadsKv=AH, attnHeadDim=hd,
                    attnConv=a.get("d_conv", 0), attnRotaryDim=a.get("rotary_emb_dim", 0), attnRotaryBase=10000.0,
                    attnQkvBias=False, attnOutBias=False, attnMlpDim=0,
                    attnSoftmaxScale=1 / math.sqrt(hd) if hd else 1.0, dIntermediate=dI)
    with open(os.path.join(out_dir, "shape.json"), "w") as f:
        json.dump(spec, f)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(mamba_ssm_config(s), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
