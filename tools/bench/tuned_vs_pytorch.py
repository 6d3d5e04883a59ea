#!/usr/bin/env python3
"""synthc's attention with synth-tune's schedules vs PyTorch 2.x at its best, on this machine, in one run.

Usage: tools/bench/tuned_vs_pytorch.py [--bin build/bin] [--cases dot:512,dot:1024,dot:512:causal,...]
                                       [--budget 90] [--reps 5] [--threads 2] [--out build/bench-tuned]

For each case (variant, sequence length N, causal or not; batch 8, 8 heads, head dim 64, fp32, forward):
  1. `synth-bench-attention --emit-ir` writes the attention function as synth IR;
  2. `synth-tune` searches its kernel's schedule for --budget seconds (Halide's autoschedulers of
     --autoschedulers measured beside it) and writes a schedule file and a report (OUT/<case>.report/report.md);
  3. `synth-bench-attention` times the default and the tuned schedule (libsynthrt, medians) and dumps the tuned
     run's inputs and output;
  4. PyTorch 2.x, installed from PyPI into a virtual environment by this script (build/bench-venv, kept out of
     scripts/setup.sh), computes the same attention on the very same inputs as eager code, as
     F.scaled_dot_product_attention (dot), as torch.compile of the eager code, and as FlexAttention (compiled;
     dot, and random synthesizers as a score_mod reading R), each checked against synthc's output (max-norm
     relative error <= 1e-4, finite) before its time is trusted, then timed (medians after warm-up).
A case "V:N:transfer=M" times the schedule tuned at length M (its file, applied by kernel name) without tuning
again: the N = 4096 cases, whose runs take seconds, use the N = 1024 schedule.
It prints the machine's measured fp32 FMA peak (a C micro-benchmark compiled here: independent FMA chains on
every thread) and, per case, GFLOP/s with one FLOP count for all columns and the fraction of that peak.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(ROOT, "build", "bench-venv")


def ensure_venv():
    """Re-executes this script under the benchmark venv's python, creating it first if needed."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        print(f"creating {VENV} with PyTorch from PyPI (about 6 GB with its CUDA libraries)", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "-q", "torch", "numpy"])
    os.execv(python, [python] + sys.argv)


ensure_venv()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Inductor compiles in a pool of worker processes that stays alive after torch.compile returns; measured on AMD
# EPYC Zen 4 (2026-12-03), synthc's N = 1024 kernel then ran in 211-229 ms instead of 130 ms. Compile in-process.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, HERE)
from attention_vs_pytorch import read_safetensors, scores, time_torch  # noqa: E402

PEAK_SOURCE = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __AVX512F__
typedef __m512 V; enum { LANES = 16 };
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SET(x) _mm512_set1_ps(x)
#define SUM(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 V; enum { LANES = 8 };
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET(x) _mm256_set1_ps(x)
static float SUM(V v) { float f[8]; _mm256_storeu_ps(f, v); return f[0]; }
#endif
enum { CHAINS = 12 };
static long iters = 200000000L / CHAINS;
static float sink;
static void *run(void *arg) {
  V a = SET(0.999999f), b = SET(1e-7f);
  V c0 = SET(0), c1 = SET(1), c2 = SET(2), c3 = SET(3), c4 = SET(4), c5 = SET(5);
  V c6 = SET(6), c7 = SET(7), c8 = SET(8), c9 = SET(9), c10 = SET(10), c11 = SET(11);
  for (long i = 0; i < iters; ++i) {
    c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
    c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
    c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
  }
  float s = SUM(c0) + SUM(c1) + SUM(c2) + SUM(c3) + SUM(c4) + SUM(c5) + SUM(c6) + SUM(c7) +
            SUM(c8) + SUM(c9) + SUM(c10) + SUM(c11);
  sink += s; return arg;
}
int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  pthread_t t[256]; struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; ++i) pthread_create(&t[i], 0, run, 0);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%.1f\n", 2.0 * LANES * CHAINS * (double)iters * threads / s / 1e9);
  return sink == 12345.0f;
}
"""


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def measured_peak(threads, tmp):
    flags = open("/proc/cpuinfo").read()
    isa = ["-mavx512f"] if " avx512f" in flags else ["-mavx2", "-mfma"]
    source = os.path.join(tmp, "peak.c")
    binary = os.path.join(tmp, "peak")
    with open(source, "w") as f:
        f.write(PEAK_SOURCE)
    subprocess.check_call(["cc", "-O3", *isa, source, "-o", binary, "-lpthread"])
    runs = [float(subprocess.check_output([binary, str(threads)]).decode()) for _ in range(3)]
    return max(runs), "AVX-512" if isa == ["-mavx512f"] else "AVX2+FMA"


def torch_attention(variant, t, n, head_dim, causal):
    scale = 1.0 / head_dim ** 0.5
    parts = {"random_dot": ["random", "dot"], "dense_dot": ["dense", "dot"],
             "random_dense": ["random", "dense"]}.get(variant, [variant])
    if len(parts) == 1:
        s = scores(parts[0], t, n, scale)
    else:
        alpha = torch.softmax(t["input.mixture.logits"], dim=1)
        s = sum(alpha[None, :, m, None, None] * scores(kind, t, n, scale) for m, kind in enumerate(parts))
    if causal:
        mask = torch.ones(n, n, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), t["input.values"])


def peers(variant, t, n, head_dim, causal):
    """name -> zero-argument function computing the attention output."""
    out = {"eager": lambda: torch_attention(variant, t, n, head_dim, causal)}
    compiled = torch.compile(lambda: torch_attention(variant, t, n, head_dim, causal))
    out["torch.compile"] = compiled
    if variant == "dot":
        q, k, v = t["input.q"], t["input.k"], t["input.values"]
        out["SDPA"] = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    try:
        from torch.nn.attention.flex_attention import flex_attention, create_block_mask
    except ImportError:
        return out
    flex = torch.compile(flex_attention)
    v = t["input.values"]
    block_mask = None
    if causal:
        block_mask = create_block_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, None, None, n, n,
                                       device="cpu")
    if variant == "dot":
        q, k = t["input.q"], t["input.k"]
        out["FlexAttention"] = lambda: flex(q, k, v, block_mask=block_mask)
    elif variant in ("random", "fixed_random"):
        r = t["input.random.R"][:, :n, :n].contiguous()
        zeros = torch.zeros_like(v)

        def score_mod(score, b, h, q_idx, kv_idx):
            return r[h, q_idx, kv_idx]
        out["FlexAttention"] = lambda: flex(zeros, zeros, v, score_mod=score_mod, block_mask=block_mask)
    return out


def parse_case(text):
    fields = text.split(":")
    case = {"variant": fields[0], "n": int(fields[1]), "causal": False, "transfer": None}
    for extra in fields[2:]:
        if extra == "causal":
            case["causal"] = True
        elif extra.startswith("transfer="):
            case["transfer"] = int(extra.split("=", 1)[1])
        else:
            raise SystemExit(f"bad case {text}: expected VARIANT:N[:causal][:transfer=M]")
    return case


def case_name(variant, n, causal):
    return f"{variant}-{n}{'-causal' if causal else ''}"


def main():
    default_cases = ("dot:512,dot:1024,dot:4096:transfer=1024,dot:512:causal,dot:1024:causal,"
                     "dot:4096:causal:transfer=1024,dense:1024,random:1024,fixed_random:1024,"
                     "factorized_random:1024,factorized_dense:1024,random_dot:1024,dense_dot:1024,"
                     "random_dense:1024")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--cases", default=default_cases)
    parser.add_argument("--budget", type=int, default=90, help="synth-tune seconds per tuned case")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--autoschedulers", default="li2018,mullapudi2016",
                        help="passed to synth-tune; adams2019 ran over 10 minutes and 14 GB on the N = 1024 fused "
                             "attention kernel (AMD EPYC Zen 3, 2026-12-03) without finishing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench-tuned"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    cases = [parse_case(c) for c in args.cases.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        peak, isa = measured_peak(args.threads, tmp)
        print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; CPU: {cpu_name()} ({os.cpu_count()} CPUs); "
              f"{args.threads} threads")
        print(f"measured fp32 FMA peak ({isa}, {args.threads} threads): {peak:.1f} GFLOP/s")
        print(f"PyTorch {torch.__version__} (PyPI, {VENV}); MKL {torch.backends.mkl.is_available()}, "
              f"oneDNN {torch.backends.mkldnn.is_available()}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
              f"TORCHINDUCTOR_COMPILE_THREADS={os.environ['TORCHINDUCTOR_COMPILE_THREADS']}")
        print(f"batch {args.batch}, {args.heads} heads, head dim {args.head_dim}, fp32, forward; synth-tune budget "
              f"{args.budget} s per tuned case; times are medians in ms")
        print()
        header = (f"{'case':<26} {'synthc default':>14} {'synthc tuned':>12} {'eager':>9} {'SDPA':>9} "
                  f"{'compile':>9} {'Flex':>9} {'best peer / tuned':>18} {'tuned GFLOP/s':>14} {'of peak':>8}")
        print(header)
        print("-" * len(header))
        failures = 0
        for case in cases:
            variant, n, causal = case["variant"], case["n"], case["causal"]
            name = case_name(variant, n, causal)
            common = ["--variant", variant, "--seq-len", str(n), "--batch", str(args.batch), "--heads",
                      str(args.heads), "--head-dim", str(args.head_dim), "--threads", str(args.threads)]
            if causal:
                common.append("--causal")
            bench = os.path.join(args.bin, "synth-bench-attention")
            if case["transfer"]:
                schedule = os.path.join(args.out, case_name(variant, case["transfer"], causal) + ".json")
                if not os.path.exists(schedule):
                    print(f"{name:<26} no schedule tuned at N = {case['transfer']} ({schedule})")
                    failures += 1
                    continue
            else:
                ir = os.path.join(args.out, name + ".mlir")
                subprocess.check_call([bench, *common, "--emit-ir", ir])
                schedule = os.path.join(args.out, name + ".json")
                tune = [os.path.join(args.bin, "synth-tune"), ir, "--budget", str(args.budget), "--reps", "3",
                        "--autoschedulers", args.autoschedulers,
                        "--threads", str(args.threads), "--cache", os.path.join(args.out, "cache"),
                        "-o", schedule, "--report", os.path.join(args.out, name + ".report")]
                result = subprocess.run(tune, capture_output=True, text=True)
                if result.returncode != 0:
                    print(f"{name:<26} synth-tune failed: {result.stderr.strip()[-400:]}")
                    failures += 1
                    continue
            reps = str(3 if n >= 4096 else args.reps)
            default = json.loads(subprocess.check_output([bench, *common, "--reps", reps]).decode()
                                 .strip().splitlines()[-1])
            dump = os.path.join(tmp, name + ".safetensors")
            tuned = json.loads(subprocess.check_output([bench, *common, "--reps", reps, "--schedule", schedule,
                                                        "--dump", dump]).decode().strip().splitlines()[-1])
            t = read_safetensors(dump)
            got = t["output"]
            times = {}
            for peer, fn in peers(variant, t, n, args.head_dim, causal).items():
                try:
                    with torch.no_grad():
                        expected = fn()
                    err = float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-30))
                    if not (err <= 1e-4 and torch.isfinite(expected).all()):
                        print(f"  {name}: {peer} disagrees with synthc (max rel err {err:.2e}); not timed")
                        failures += 1
                        continue
                    times[peer] = time_torch(fn, int(reps))[0] * 1e3
                except Exception as error:  # a peer that cannot run this case is reported, not fatal
                    print(f"  {name}: {peer} failed: {str(error).splitlines()[0][:200]}")
            best = min(times.values()) if times else float("nan")
            flops = tuned["flops"]
            gflops = flops / tuned["median_ms"] / 1e6
            cell = lambda k: f"{times[k]:>9.1f}" if k in times else f"{'-':>9}"  # noqa: E731
            print(f"{name + (' (' + str(case['transfer']) + ')' if case['transfer'] else ''):<26} "
                  f"{default['median_ms']:>14.1f} {tuned['median_ms']:>12.1f} {cell('eager')} {cell('SDPA')} "
                  f"{cell('torch.compile')} {cell('FlexAttention')} {best / tuned['median_ms']:>17.2f}x "
                  f"{gflops:>14.1f} {gflops / peak:>7.0%}", flush=True)
            os.remove(dump)
    print()
    print("FLOPs: 2 per multiply-add of the score function and of softmax(S) V over the full N x N square, for "
          "every column (causal cases compute about half of it, so their GFLOP/s and fraction of peak count work "
          "the kernel skips). '(1024)': the schedule tuned at N = 1024, applied unchanged. Per-kernel reports "
          "with the autoschedulers: OUT/<case>.report/report.md.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
