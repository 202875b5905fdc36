"""Times the seed's own path (mamba_ssm's MambaLMHeadModel) on a GPU machine, next to our bench in the same run.

    PYTHONPATH=SEED_DIR [SEED_SIZES="mamba2-2.7b mamba2-130m ..."] python3 seed_bench.py OUT_JSON

SEED_SIZES (default mamba2-2.7b; "all" = every key of SHAPES) picks the Mamba-2 sizes timed, at the shapes of the
state-spaces configs (headdim 64, d_state 128, expand 2, ngroups 1); OUT_JSON is rewritten after every size, so a
run cut short by a timeout keeps what it finished.

SEED_DIR holds state-spaces/mamba's python package folder `mamba_ssm/` only (no compiled extensions: no
selective_scan_cuda, no causal_conv1d), fetched on the development machine into a git-ignored folder and carried.
As perf.md §7 measured it: random weights, float16, the Mamba-2 layers on the Triton SSD kernels with torch's
conv1d (use_mem_eff_path=False, since the fused path needs causal_conv1d), lm-eval-shaped batches (full logits,
then log_softmax over the whole vocabulary). Median of 5 CUDA-event timings after 2 warm-ups (which also run
Triton's autotuning). The Mamba-1 path is probed on a 2-layer model at the mamba-2.8b width: without the
compiled selective_scan it cannot run, and the probe records the error it gives.

Import guards: when the package's import chain fails on something the bench does not use (generation helpers,
the hub loader, Mamba-3), those modules are replaced in sys.modules by empty stand-ins before the import is
retried; mamba_ssm's own files are never edited.
"""

import json
import os
import sys
import types

import torch
import torch.nn.functional as F

from ceilings import timed  # scripts/cuda/ceilings.py: median CUDA-event time of fn

SHAPES = {  # d_model, n_layer of state-spaces/mamba2-*'s config.json; the rest are Mamba2's defaults
    "mamba2-2.7b": dict(d_model=2560, n_layer=64, layer="Mamba2"),
    "mamba2-1.3b": dict(d_model=2048, n_layer=48, layer="Mamba2"),
    "mamba2-780m": dict(d_model=1536, n_layer=48, layer="Mamba2"),
    "mamba2-370m": dict(d_model=1024, n_layer=48, layer="Mamba2"),
    "mamba2-130m": dict(d_model=768, n_layer=24, layer="Mamba2"),
}
# (batch, length): 32 768 tokens each; 512 × 64 is nearest the Table-3 requests' mean length (≈ 65 tokens).
BATCHES = [(64, 512), (256, 128), (512, 64)]
VOCAB = 50277


def import_seed():
    """Imports MambaLMHeadModel and MambaConfig, stubbing unused modules only if the plain import fails."""
    guards = []
    try:
        from mamba_ssm.models.config_mamba import MambaConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
        return MambaLMHeadModel, MambaConfig, guards
    except Exception as e:  # noqa: BLE001 - reported, then retried with guards
        guards.append(f"plain import failed: {type(e).__name__}: {e}")
    for name in [n for n in sys.modules if n == "mamba_ssm" or n.startswith("mamba_ssm.")]:
        del sys.modules[name]
    generation = types.ModuleType("mamba_ssm.utils.generation")

    class GenerationMixin:  # the bench never generates
        pass

    generation.GenerationMixin = GenerationMixin
    hf = types.ModuleType("mamba_ssm.utils.hf")
    hf.load_config_hf = hf.load_state_dict_hf = None
    mamba3 = types.ModuleType("mamba_ssm.modules.mamba3")

    class Mamba3(torch.nn.Module):  # only referenced by create_block for layer="Mamba3"
        pass

    mamba3.Mamba3 = Mamba3
    sys.modules.update({"mamba_ssm.utils.generation": generation, "mamba_ssm.utils.hf": hf,
                        "mamba_ssm.modules.mamba3": mamba3})
    guards.append("stubbed mamba_ssm.utils.generation, mamba_ssm.utils.hf, mamba_ssm.modules.mamba3")
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    return MambaLMHeadModel, MambaConfig, guards


def build(MambaLMHeadModel, MambaConfig, d_model, n_layer, layer):
    ssm_cfg = {"layer": layer}
    if layer == "Mamba2":
        ssm_cfg["use_mem_eff_path"] = False
    config = MambaConfig(d_model=d_model, n_layer=n_layer, vocab_size=VOCAB, ssm_cfg=ssm_cfg, rms_norm=True,
                         residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=16)
    torch.manual_seed(1234)
    return MambaLMHeadModel(config, device="cuda", dtype=torch.float16).eval()


def seed_sizes(text):
    """SEED_SIZES → the SHAPES keys to time, in SHAPES order; an unknown name is refused in one line."""
    names = list(SHAPES) if text.strip() == "all" else text.split()
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise SystemExit(f"seed_bench.py: SEED_SIZES: unknown size {unknown[0]!r}; expected 'all' or some of {', '.join(SHAPES)}")
    return [n for n in SHAPES if n in names]


def write(out, file):
    with open(file, "w") as f:
        json.dump(out, f)


def main() -> int:
    sizes = seed_sizes(os.environ.get("SEED_SIZES", "mamba2-2.7b"))
    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "sizes": sizes, "runs": []}
    MambaLMHeadModel, MambaConfig, guards = import_seed()
    out["import_guards"] = guards
    for g in guards:
        print(f"seed: {g}")
    gen = torch.Generator(device="cuda").manual_seed(7)
    for name in sizes:
        s = SHAPES[name]
        model = build(MambaLMHeadModel, MambaConfig, s["d_model"], s["n_layer"], s["layer"])
        for batch, length in BATCHES:
            ids = torch.randint(0, VOCAB, (batch, length), device="cuda", generator=gen)

            @torch.inference_mode()
            def call():
                logits = model(ids).logits  # [batch, length, padded vocab], float16
                return F.log_softmax(logits, dim=-1)

            seconds = timed(call, reps=5, warmup=2)
            run = {"name": name, "batch": batch, "length": length, "seconds": seconds,
                   "tok_per_s": batch * length / seconds}
            out["runs"].append(run)
            print(f"seed {name} {batch}x{length}: {run['tok_per_s']:.0f} tok/s ({seconds * 1e3:.1f} ms per call)")
        del model
        torch.cuda.empty_cache()
        write(out, sys.argv[1])

    # Mamba-1 (mamba-2.8b width, 2 layers): needs the compiled selective_scan_cuda.
    try:
        probe = build(MambaLMHeadModel, MambaConfig, 2560, 2, "Mamba1")
        with torch.inference_mode():
            probe(torch.randint(0, VOCAB, (2, 16), device="cuda", generator=gen))
        out["mamba1"] = "ran"
    except Exception as e:  # noqa: BLE001 - the expected outcome, recorded
        out["mamba1"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print(f"seed Mamba-1 probe: {out['mamba1']}")
    write(out, sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
