#!/usr/bin/python3
"""synthc's fused attention vs PyTorch eager, every variant, on this machine, in one run.

Usage: tools/bench/attention_vs_pytorch.py [--bin build/bin] [--seq-lens 128,512,1024]
                                           [--variants dot,dense,...] [--reps 5] [--threads 2]

For each variant of PAPER.md and each sequence length N (batch 8, 8 heads, head dim 64, forward,
not causal), it runs `synth-bench-attention` (the same compiler pipeline and Halide back end as
synthc, timed by libsynthrt), then computes the same attention core, softmax(S) V with S from the
variant, in PyTorch eager on the very inputs synthc used, checks that both outputs agree (relative
error <= 1e-4) before trusting either time, and times PyTorch. It prints medians (with min and max),
GFLOP/s from the same FLOP count, and the ratio PyTorch / synthc.

PyTorch runs at its best here: OpenBLAS (Debian's libopenblas0-pthread as libblas.so.3) with
OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines (OpenBLAS 0.3.21 does not recognise these CPUs and
otherwise falls back to generic kernels about 4x slower) and torch.set_num_threads(T). The script
sets the variable and re-executes itself when needed, and prints which BLAS kernel PyTorch used.
"""

import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

VARIANTS = ["dot", "dense", "random", "fixed_random", "factorized_random", "factorized_dense",
            "random_dot", "dense_dot", "random_dense"]


def has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


# The kernel OpenBLAS should use here; SYNTH_BENCH_OPENBLAS_CORETYPE overrides it.
WANTED_CORETYPE = os.environ.get("SYNTH_BENCH_OPENBLAS_CORETYPE", "SkylakeX" if has_avx512() else "")
if WANTED_CORETYPE and os.environ.get("OPENBLAS_CORETYPE") != WANTED_CORETYPE:
    os.environ["OPENBLAS_CORETYPE"] = WANTED_CORETYPE
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def blas_description():
    """The BLAS library behind PyTorch and, for OpenBLAS, the kernel it picked."""
    config = torch.__config__.show()
    blas = [line.strip() for line in config.splitlines() if "BLAS" in line]
    core = "unknown"
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = "OpenBLAS " + lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        core = "not OpenBLAS (reference BLAS?)"
    return blas, core


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    base = 8 + size
    dtypes = {"F32": np.float32, "F64": np.float64, "I32": np.int32}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=dtypes[info["dtype"]])
        out[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return out


def hidden(t, prefix):
    """relu(x W1 + b1) per head: [B, H, N, k]."""
    return torch.relu(torch.einsum("bnd,hdk->bhnk", t["input.x"], t[f"input.{prefix}.w1"])
                      + t[f"input.{prefix}.b1"][None, :, None, :])


def scores(kind, t, n, scale):
    if kind == "dot":
        return torch.matmul(t["input.q"], t["input.k"].transpose(-1, -2)) * scale
    if kind == "dense":
        h = hidden(t, "dense")
        return torch.matmul(h, t["input.dense.w2"][None]) + t["input.dense.b2"][None, :, None, :]
    if kind in ("random", "fixed_random"):
        return t["input.random.R"][:, :n, :n][None]
    if kind == "factorized_random":
        return torch.matmul(t["input.fr.R1"], t["input.fr.R2"].transpose(-1, -2))[None]
    if kind == "factorized_dense":
        h = hidden(t, "fd")
        a = torch.matmul(h, t["input.fd.wa"][None]) + t["input.fd.ba"][None, :, None, :]
        b = torch.matmul(h, t["input.fd.wb"][None]) + t["input.fd.bb"][None, :, None, :]
        return (a[..., :, None] * b[..., None, :]).flatten(-2)[..., :n]
    raise ValueError(kind)


def attention(variant, t, n, head_dim):
    scale = 1.0 / head_dim ** 0.5
    parts = {"random_dot": ["random", "dot"], "dense_dot": ["dense", "dot"],
             "random_dense": ["random", "dense"]}.get(variant, [variant])
    if len(parts) == 1:
        s = scores(parts[0], t, n, scale)
    else:
        alpha = torch.softmax(t["input.mixture.logits"], dim=1)
        s = sum(alpha[None, :, m, None, None] * scores(kind, t, n, scale)
                for m, kind in enumerate(parts))
    return torch.matmul(torch.softmax(s, dim=-1), t["input.values"])


def time_torch(fn, reps, warmup=2):
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
    parser.add_argument("--seq-lens", default="128,512,1024")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    blas, core = blas_description()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; BLAS kernel: {core}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    for line in blas:
        print(f"  {line}")
    print(f"synthc: synth-bench-attention (Halide, --cpu=host), {args.threads} threads; "
          f"batch {args.batch}, {args.heads} heads, head dim {args.head_dim}, forward, not causal")
    print()
    header = (f"{'variant':<18} {'N':>5}  {'synthc ms (min-max)':>22} {'GFLOP/s':>8}  "
              f"{'PyTorch ms (min-max)':>22} {'GFLOP/s':>8}  {'PyTorch/synthc':>14}  {'max rel err':>11}")
    print(header)
    print("-" * len(header))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.seq_lens.split(",")]:
            for variant in args.variants.split(","):
                dump = os.path.join(tmp, f"{variant}-{n}.safetensors")
                command = [os.path.join(args.bin, "synth-bench-attention"), "--variant", variant,
                           "--seq-len", str(n), "--batch", str(args.batch), "--heads", str(args.heads),
                           "--head-dim", str(args.head_dim), "--threads", str(args.threads),
                           "--reps", str(args.reps), "--dump", dump]
                result = subprocess.run(command, capture_output=True, text=True)
                if result.returncode != 0:
                    print(f"{variant:<18} {n:>5}  synth-bench-attention failed: {result.stderr.strip()}")
                    failures += 1
                    continue
                ours = json.loads(result.stdout.strip().splitlines()[-1])
                tensors = read_safetensors(dump)
                with torch.no_grad():
                    expected = attention(variant, tensors, n, args.head_dim)
                got = tensors["output"]
                err = float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-30))
                ok = err <= 1e-4 and torch.isfinite(got).all()
                median, lo, hi = time_torch(lambda: attention(variant, tensors, n, args.head_dim), args.reps)
                flops = ours["flops"]
                print(f"{variant:<18} {n:>5}  {ours['median_ms']:>8.2f} ({ours['min_ms']:.1f}-{ours['max_ms']:.1f})"
                      f" {flops / ours['median_ms'] / 1e6:>8.1f}  "
                      f"{median * 1e3:>8.2f} ({lo * 1e3:.1f}-{hi * 1e3:.1f}) {flops / median / 1e9:>8.1f}  "
                      f"{median * 1e3 / ours['median_ms']:>13.2f}x  {err:>11.2e}{'' if ok else '  MISMATCH'}")
                sys.stdout.flush()
                failures += 0 if ok else 1
                os.remove(dump)
    print()
    print("FLOPs: 2 per multiply-add of the score function and of softmax(S) V over the full N x N square "
          "(the per-query MLP of dense variants is not counted); the same count for both columns.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
