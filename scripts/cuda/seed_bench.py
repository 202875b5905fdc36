"""Times the seed's own path (mamba_ssm's MambaLMHeadModel) on the GPU machine, next to our bench in the same run.

    PYTHONPATH=SEED_DIR python3 seed_bench.py OUT_JSON

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
import statistics
import sys
import types

import torch
import torch.nn.functional as F

SHAPES = {"mamba2-2.7b": dict(d_model=2560, n_layer=64, layer="Mamba2")}
BATCHES = [(64, 512), (256, 128)]
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


def timed(fn, reps=5, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def build(MambaLMHeadModel, MambaConfig, d_model, n_layer, layer):
    ssm_cfg = {"layer": layer}
    if layer == "Mamba2":
        ssm_cfg["use_mem_eff_path"] = False
    config = MambaConfig(d_model=d_model, n_layer=n_layer, vocab_size=VOCAB, ssm_cfg=ssm_cfg, rms_norm=True,
                         residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=16)
    torch.manual_seed(1234)
    return MambaLMHeadModel(config, device="cuda", dtype=torch.float16).eval()


def main() -> int:
    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "runs": []}
    MambaLMHeadModel, MambaConfig, guards = import_seed()
    out["import_guards"] = guards
    for g in guards:
        print(f"seed: {g}")
    gen = torch.Generator(device="cuda").manual_seed(7)
    for name, s in SHAPES.items():
        model = build(MambaLMHeadModel, MambaConfig, s["d_model"], s["n_layer"], s["layer"])
        for batch, length in BATCHES:
            ids = torch.randint(0, VOCAB, (batch, length), device="cuda", generator=gen)

            @torch.inference_mode()
            def call():
                logits = model(ids).logits  # [batch, length, padded vocab], float16
                return F.log_softmax(logits, dim=-1)

            seconds = timed(call)
            run = {"name": name, "batch": batch, "length": length, "seconds": seconds,
                   "tok_per_s": batch * length / seconds}
            out["runs"].append(run)
            print(f"seed {name} {batch}x{length}: {run['tok_per_s']:.0f} tok/s ({seconds * 1e3:.1f} ms per call)")
        del model
        torch.cuda.empty_cache()

    # Mamba-1 (mamba-2.8b width, 2 layers): needs the compiled selective_scan_cuda.
    try:
        probe = build(MambaLMHeadModel, MambaConfig, 2560, 2, "Mamba1")
        with torch.inference_mode():
            probe(torch.randint(0, VOCAB, (2, 16), device="cuda", generator=gen))
        out["mamba1"] = "ran"
    except Exception as e:  # noqa: BLE001 - the expected outcome, recorded
        out["mamba1"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print(f"seed Mamba-1 probe: {out['mamba1']}")
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
