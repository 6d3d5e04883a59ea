#!/usr/bin/env python3
"""Times synthc's fused attention on a CUDA device next to PyTorch's scaled_dot_product_attention.

For each shape (batch 8, 16 heads, N in {1024, 4096}, head dim in {64, 128}; --quick: two tiny shapes), compiles a
one-layer causal dot-product language model with `synthc --target=cuda` at f32 and bf16, times its `forward` with
`synth-run bench --device=cuda --json` and takes the fused attention kernel's median, then times
torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True) on the same shape in bf16 on the same GPU
(CUDA events, median of the timed runs), and prints a Markdown table: medians in ms, the bf16 ratio
synthc / SDPA (below 1: synthc faster) and synthc's bf16 TFLOP/s (causal: 2 * B * H * N^2 * d).

Usage: bench_attention.py BIN_DIR WORK_DIR --arch sm_90a|sm_80 [--quick] [--reps N]

Without PyTorch or without a CUDA device visible to it, the SDPA columns say "n/a" (the synthc columns still come
from whatever driver libsynthrt loads: on ptxsim, SYNTH_CUDA_DRIVER, they only show that the plumbing works).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

FULL = [(8, 16, 1024, 64), (8, 16, 1024, 128), (8, 16, 4096, 64), (8, 16, 4096, 128)]
QUICK = [(1, 2, 64, 16), (1, 2, 96, 32)]


def synthc_median(bin_dir, work, arch, precision, batch, heads, n, d, reps):
    name = f"attn_b{batch}_h{heads}_n{n}_d{d}"
    config = {
        "name": name, "task": "lm", "d_model": heads * d, "heads": heads, "layers": 1, "ffn": heads * d,
        "max_len": n, "vocab": {"kind": "bytes"}, "norm": "pre", "activation": "relu", "seed": 1,
        "attention": {"kind": "dot"},
    }
    path = os.path.join(work, name + ".json")
    with open(path, "w") as f:
        json.dump(config, f)
    artifact = os.path.join(work, f"{name}.{precision}.synth")
    subprocess.run([os.path.join(bin_dir, "synthc"), path, "--target=cuda", f"--gpu-arch={arch}",
                    f"--gpu-precision={precision}", "--batch", str(batch), "--seq-len", str(n), "-o", artifact],
                   check=True, stdout=subprocess.DEVNULL)
    run = subprocess.run([os.path.join(bin_dir, "synth-run"), "bench", artifact, "--device=cuda", "--json",
                          "--warmup", "3", "--reps", str(reps)], check=True, capture_output=True, text=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    times = [t for k, t in result["kernel_median_seconds"].items() if k.endswith("_fused_attention")]
    if len(times) != 1:
        raise RuntimeError(f"{artifact}: expected one fused attention kernel, got {times}")
    return times[0]


def sdpa_median(batch, heads, n, d, reps):
    try:
        import torch
    except ImportError:
        return None, "no PyTorch"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device"
    q, k, v = (torch.randn(batch, heads, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    attention = torch.nn.functional.scaled_dot_product_attention
    for _ in range(3):
        attention(q, k, v, is_causal=True)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        attention(q, k, v, is_causal=True)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times), torch.cuda.get_device_name()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("work")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rows = []
    sdpa_note = ""
    for batch, heads, n, d in QUICK if args.quick else FULL:
        f32 = synthc_median(args.bin_dir, args.work, args.arch, "f32", batch, heads, n, d, args.reps)
        bf16 = synthc_median(args.bin_dir, args.work, args.arch, "bf16", batch, heads, n, d, args.reps)
        sdpa, note = sdpa_median(batch, heads, n, d, args.reps)
        sdpa_note = note
        flops = 2.0 * batch * heads * n * n * d  # causal: half of 4 B H N^2 d
        rows.append((batch, heads, n, d, f32, bf16, sdpa, flops / bf16 / 1e12))
    print(f"fused attention, causal, forward ({'quick shapes' if args.quick else 'issue shapes'}, {args.arch}; "
          f"SDPA: {sdpa_note})")
    print("| batch | heads | N | d | synthc f32 ms | synthc bf16 ms | SDPA bf16 ms | bf16 synthc/SDPA | synthc bf16 TFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for batch, heads, n, d, f32, bf16, sdpa, tflops in rows:
        sdpa_text = f"{sdpa * 1e3:.3f}" if sdpa else "n/a"
        ratio = f"{bf16 / sdpa:.2f}" if sdpa else "n/a"
        print(f"| {batch} | {heads} | {n} | {d} | {f32 * 1e3:.3f} | {bf16 * 1e3:.3f} | {sdpa_text} | {ratio} | "
              f"{tflops:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
