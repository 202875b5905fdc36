"""Measures this GPU's two ceilings through PyTorch: bf16 matmul rate (8192³) and device copy bandwidth.

    python3 ceilings.py OUT_JSON

Random inputs (never zeros), 3 warm-ups, median of 10 CUDA-event timings. Bandwidth counts bytes read + written.
"""

import json
import statistics
import sys

import torch


def timed(fn, reps=10, warmup=3):
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


def main() -> int:
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    t_mm = timed(lambda: torch.matmul(a, b))
    src = torch.randn(1 << 30, device="cuda", dtype=torch.float32)  # 4 GiB
    dst = torch.empty_like(src)
    t_copy = timed(lambda: dst.copy_(src))
    out = {"gpu": torch.cuda.get_device_name(0), "bf16_matmul_tflops": 2 * n ** 3 / t_mm / 1e12,
           "copy_gbps": 2 * src.numel() * 4 / t_copy / 1e9}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
