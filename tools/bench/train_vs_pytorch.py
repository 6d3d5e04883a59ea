#!/usr/bin/python3
"""synthc's training step vs PyTorch eager on the byte LMs, on this machine, in one run.

Usage: tools/bench/train_vs_pytorch.py [--bin build/bin] [--artifact-dir DIR] [--torch-only]
                                       [--models models/lm/dot.json,models/lm/random.json]
                                       [--batch 16] [--seq-len 256] [--steps 10] [--warmup 2]
                                       [--rounds 1] [--threads 2] [--torch-variants naive,fused,sdpa]

One training step: forward, mean cross-entropy of the causal LM over random byte tokens (targets: the next
byte), backward, global grad-norm clipping to 1.0, one AdamW step (lr 1e-3, betas 0.9/0.999, eps 1e-8,
weight decay 0.01), zero_grad. Tokens/s = batch * seq-len / median step seconds.

synthc side (skipped with --torch-only): for each model, `BIN/synthc MODEL --target=cpu --cpu=host --train --batch=B
--seq-len=N -o DIR/<name>.synth`, then `BIN/synth-run bench DIR/<name>.synth --entry train_step --threads T
--warmup W --reps S --json`, whose last JSON line gives the median step time, e.g.
{"entry": "train_step", "median_seconds": 0.4, "tokens_per_second": 10240.0}. (The train_step entry and
`--json` are being added to synth-run by the training issue; see run_synthc_bench.)

PyTorch side: the model is test/reference/torch_crosscheck.py's TorchModel (the model of docs/model-format.md,
written from the documentation alone and checked against the float64 reference by ctest), imported, not
copied, with the parameter table's tensors as float32 leaf tensors. Variants, all the same math:
  naive  TorchModel as it is (masked_fill causal mask, hand-written layer norm and cross-entropy)
  fused  the same with PyTorch's fused operators: F.layer_norm, an additive causal mask, F.cross_entropy;
         random scores (which do not depend on the tokens) are softmaxed once per step, not per sequence
  sdpa   fused, with the dot-product attention core as scaled_dot_product_attention(is_causal=True)
         (dot-product models only; torch 1.13 has it as F._scaled_dot_product_attention)
  compile  sdpa (fused for the synthesizers), its forward and loss compiled by torch.compile (PyTorch 2.x; with
         SYNTH_BENCH_TORCH_PYTHON=build/bench-venv/bin/python)
Every variant's loss and gradients are checked against naive's on the benchmark batch (relative error <= 1e-5
for the loss, <= 1e-4 for every gradient; a finite excess is rechecked in float64 at 1e-9, as
torch_crosscheck.py does) before its time is trusted; the fastest checked variant is the anchor.
Weights: the project's initial weights (`synthc MODEL --emit=weights`) unless --torch-only or --init
documented, which draws from the documented initializers with numpy (same distributions, other values).

PyTorch runs at its best here (BENCHMARKING.md): /usr/bin/python3 (Debian's python3-torch), OpenBLAS
(libopenblas0-pthread as libblas.so.3) with OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines and T threads, ATen's
AVX-512 kernels (ATEN_CPU_CAPABILITY=avx512; Debian's build dispatches to AVX2 otherwise), OMP_WAIT_POLICY=PASSIVE
(spinning OpenMP threads otherwise fight OpenBLAS's threads for the cores), glibc malloc tunables that keep
activations mapped between steps, torch.set_num_threads(T), one inter-op thread, AdamW(foreach=True),
zero_grad(set_to_none=True). The script sets the variables and re-executes itself when needed
(SYNTH_BENCH_<VARIABLE> overrides one; "default" keeps the inherited value), prints what PyTorch used, and runs
synthc's processes in the environment it was started with.
"""

import argparse
import ctypes
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# The interpreter with PyTorch: Debian's python3-torch (1.13) by default; SYNTH_BENCH_TORCH_PYTHON picks another,
# e.g. build/bench-venv/bin/python with PyTorch 2.x from PyPI (tools/bench/tuned_vs_pytorch.py creates it).
TORCH_PYTHON = os.environ.get("SYNTH_BENCH_TORCH_PYTHON", "/usr/bin/python3")
DEFAULT_MODELS = ["models/lm/dot.json", "models/lm/random.json"]
VARIANTS = ["naive", "fused", "sdpa", "compile"]
LOSS_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-4
ADAMW = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}
MAX_GRAD_NORM = 1.0
TARGET_RATIO = 1.5  # issue #5: synthc's tokens/s at least 1.5x PyTorch's


def has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


# The environment PyTorch must start with (all are read when the process, torch or its BLAS starts), each
# overridden by SYNTH_BENCH_<NAME> ("default" keeps what the environment has):
#   OPENBLAS_CORETYPE    OpenBLAS 0.3.21 does not know these CPUs and otherwise uses generic kernels (~4x slower)
#   ATEN_CPU_CAPABILITY  Debian's torch has AVX-512 ATen kernels but dispatches to AVX2 unless asked
#   OMP_WAIT_POLICY      PASSIVE: torch's spinning OpenMP threads otherwise fight OpenBLAS's own threads for the
#                        2 cores (measured: steps 1.5-3x slower and 3-5x as noisy with the default policy)
#   GLIBC_TUNABLES       keep freed activations in the heap instead of unmapping and faulting them in every step
WANTED_ENV = {
    "OPENBLAS_CORETYPE": os.environ.get("SYNTH_BENCH_OPENBLAS_CORETYPE", "SkylakeX" if has_avx512() else ""),
    "ATEN_CPU_CAPABILITY": os.environ.get("SYNTH_BENCH_ATEN_CPU_CAPABILITY", "avx512" if has_avx512() else ""),
    "OMP_WAIT_POLICY": os.environ.get("SYNTH_BENCH_OMP_WAIT_POLICY", "PASSIVE"),
    "GLIBC_TUNABLES": os.environ.get("SYNTH_BENCH_GLIBC_TUNABLES",
                                     "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"),
    # torch.compile's Inductor otherwise compiles in a pool of worker processes that outlives the compilation and
    # slowed synthc's kernels, timed in the same run, by up to 1.6x (AMD EPYC Zen 4, 2026-12-03).
    "TORCHINDUCTOR_COMPILE_THREADS": os.environ.get("SYNTH_BENCH_TORCHINDUCTOR_COMPILE_THREADS", "1"),
}
# The values these had before, so that synthc's processes run in the environment the script was started in.
ORIGINAL_PREFIX = "SYNTH_BENCH_ORIGINAL_"
UNSET = "(unset)"


def reexec_if_needed():
    changed = False
    for name, value in WANTED_ENV.items():
        if value and value != "default" and os.environ.get(name) != value:
            os.environ.setdefault(ORIGINAL_PREFIX + name, os.environ.get(name, UNSET))
            os.environ[name] = value
            changed = True
    python = TORCH_PYTHON if os.path.exists(TORCH_PYTHON) else sys.executable
    changed |= os.path.realpath(sys.executable) != os.path.realpath(python)
    if changed and not os.environ.get("SYNTH_BENCH_REEXECUTED"):
        os.environ["SYNTH_BENCH_REEXECUTED"] = "1"
        os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


if __name__ == "__main__":
    reexec_if_needed()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "test", "reference"))
import torch_crosscheck as crosscheck  # noqa: E402


def blas_description():
    """The BLAS library behind PyTorch and, for OpenBLAS, the kernel it picked (plus a handle to set threads)."""
    config = torch.__config__.show()
    blas = [line.strip(" -") for line in config.splitlines() if "CPU capability" in line]
    blas += [", ".join(re.findall(r"(?:BLAS|LAPACK)_INFO=[^,\s]*", config))]
    if "BLAS_INFO=mkl" in config:  # PyPI's wheels: MKL (and oneDNN), linked into torch itself
        return blas, "MKL (linked into torch)", None
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return blas, "OpenBLAS " + lib.openblas_get_corename().decode(), lib
    except (OSError, AttributeError):
        return blas, "not OpenBLAS (reference BLAS?)", None


# ----------------------------------------------------------------------------------------------------------
# The PyTorch models: torch_crosscheck.TorchModel, and the same math with PyTorch's fused operators
# ----------------------------------------------------------------------------------------------------------

CAUSAL = object()  # FusedModel's stand-in for the causal mask of LM self-attention


def sdpa_function():
    """Causal scaled_dot_product_attention of this PyTorch, and its name; (None, None) without one."""
    if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
        return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                "F.scaled_dot_product_attention(is_causal=True)")
    if hasattr(F, "_scaled_dot_product_attention"):  # torch 1.13: returns (output, weights)
        return (lambda q, k, v: F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0],
                "F._scaled_dot_product_attention(is_causal=True) (torch 1.13)")
    return None, None


class FusedModel(crosscheck.TorchModel):
    """TorchModel's math with fused PyTorch operators, for the LM task (other tasks fall back to TorchModel).

    Same math: F.layer_norm is the biased-variance layer norm; in causal self-attention every query sees at
    least itself, so softmax(S + M) with M = -inf above the diagonal equals TorchModel's masked softmax (which
    also handles fully masked rows); F.cross_entropy with ignore_index=-100 is the same mean when at least one
    target counts. Scores that do not depend on the tokens (random, factorized random) stay [1, H, N, N] and
    their softmax is computed once per step; the weighted sum of values is one product for the whole batch.
    """

    def __init__(self, cfg, table, weights, dtype, sdpa=None):
        super().__init__(cfg, table, weights, dtype)
        self.sdpa = sdpa
        self.causal_bias = None

    def layer_norm(self, x, prefix):
        return F.layer_norm(x, x.shape[-1:], self.p[prefix + ".weight"], self.p[prefix + ".bias"], self.cfg.eps)

    def scores(self, spec, attn, x):
        s = super().scores(spec, attn, x)
        return s[:1] if spec["kind"] in ("random", "factorized_random") else s  # undo the batch expand

    def self_attention(self, spec, attn, x, visible):
        if visible is not CAUSAL:
            return super().self_attention(spec, attn, x, visible)
        p = self.p
        b, n, d_model = x.shape
        v = self.split_heads(x @ p[attn + ".v.weight"])
        if self.sdpa is not None and spec["kind"] == "dot":
            q = self.split_heads(x @ p[attn + ".dot.q.weight"])
            k = self.split_heads(x @ p[attn + ".dot.k.weight"])
            context = self.sdpa(q, k, v).transpose(1, 2)
        else:
            probs = torch.softmax(self.scores(spec, attn, x) + self.causal_bias, dim=-1)
            if probs.shape[0] == 1 and b > 1:
                context = torch.einsum("hnm,bhmd->bnhd", probs[0], v)
            else:
                context = (probs @ v).transpose(1, 2)
        return context.reshape(b, n, d_model) @ p[attn + ".o.weight"]

    def run(self, inputs):
        if self.cfg.task != "lm":
            return super().run(inputs)
        tokens = inputs["input.tokens"]
        n = tokens.shape[1]
        self.causal_bias = torch.full((n, n), float("-inf"), dtype=self.p["embed.weight"].dtype).triu(1)
        logits = self.lm_head(self.stack("", self.cfg.decoder, self.embed(tokens), CAUSAL))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs["input.targets"].reshape(-1),
                               ignore_index=crosscheck.IGNORE_TARGET)
        return logits, loss


def build_model(variant, cfg, table, weights, dtype=torch.float32):
    if variant == "naive":
        return crosscheck.TorchModel(cfg, table, weights, dtype)
    sdpa = sdpa_function()[0] if variant in ("sdpa", "compile") else None
    model = FusedModel(cfg, table, weights, dtype, sdpa)
    if variant == "compile":
        # torch.compile (Inductor) of the forward and loss; AOTAutograd compiles the backward.
        model.run = torch.compile(model.run)
    return model


def loss_and_gradients(model, names, inputs):
    """Loss and {name: gradient} of one forward and backward pass (no optimizer step), as numpy."""
    _, loss = model.run(inputs)
    loss.backward()
    grads = {}
    for name in names:
        p = model.p[name]
        grads[name] = np.zeros(tuple(p.shape)) if p.grad is None else p.grad.numpy().copy()
        p.grad = None
    return loss.detach().numpy(), grads


def uses_dot(spec):
    return spec["kind"] == "dot" or any(uses_dot(part) for part in spec.get("parts", []))


# ----------------------------------------------------------------------------------------------------------
# Weights, FLOPs
# ----------------------------------------------------------------------------------------------------------

GLOROT_KINDS = ("dense", "random", "factorized_random", "factorized_dense")


def documented_init(table, seed):
    """The initializers of docs/model-format.md (same distributions, numpy's draws, not the project's values)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape, _ in table:
        parts = name.split(".")
        if parts[-2].endswith("norm") and parts[-1] == "weight":
            value = np.ones(shape)
        elif parts[-1] in ("bias", "b1", "b2", "ba", "bb", "logits"):
            value = np.zeros(shape)
        elif len(parts) >= 3 and parts[-2] in GLOROT_KINDS:
            limit = math.sqrt(6.0 / (shape[-2] + shape[-1]))
            value = rng.uniform(-limit, limit, shape)
        else:
            value = rng.normal(0.0, 0.02, shape)
        weights[name] = value.astype(np.float32)
    return weights


def synthc_weights(args, model_path, name, out_dir, table):
    """The project's initial weights: `synthc MODEL --emit=weights`."""
    path = os.path.join(out_dir, f"{name}.weights.safetensors")
    run_checked([os.path.join(args.bin, "synthc"), model_path, "--emit=weights", "-o", path])
    weights, _, _ = crosscheck.read_safetensors(path)
    for pname, shape, _ in table:
        if pname not in weights or weights[pname].shape != shape:
            raise ValueError(f"{path}: {pname} missing or not of shape {shape}")
    return weights


def forward_flops_per_token(cfg, n):
    """2 per multiply-add of the matrix products, attention over the full N x N square (as `synthc --stats`);
    None for attention kinds this count does not cover."""
    D, F_, V = cfg.d_model, cfg.ffn, cfg.vocab

    def scores(spec):
        kind = spec["kind"]
        if kind == "dot":
            return 2 * 2 * D * D + 2 * n * D  # x Wq, x Wk, Q K^T
        if kind in ("random", "fixed_random"):
            return 0
        if kind == "mixture":
            parts = [scores(part) for part in spec["parts"]]
            return None if None in parts else sum(parts)
        return None

    total = 2 * D * V  # lm_head
    for spec in cfg.encoder + cfg.decoder:
        s = scores(spec)
        if s is None:
            return None
        total += s + 2 * 2 * D * D + 2 * n * D + 2 * 2 * D * F_  # + x Wv, Wo, softmax(S) V, the FFN
    return total


# ----------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------

class Trainer:
    """One PyTorch model, its AdamW optimizer and the benchmark batch."""

    def __init__(self, variant, cfg, table, weights, inputs):
        self.model = build_model(variant, cfg, table, weights)
        self.names = [name for name, _, trainable in table if trainable]
        self.params = [self.model.p[name] for name in self.names]
        self.optimizer = torch.optim.AdamW(self.params, foreach=True, **ADAMW)
        self.inputs = inputs
        self.times = []

    def step(self):
        _, loss = self.model.run(self.inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def time_steps(self, warmup, steps):
        for _ in range(warmup):
            self.step()
        for _ in range(steps):
            start = time.perf_counter()
            loss = self.step()
            self.times.append(time.perf_counter() - start)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)}")


def worst_errors(result, reference):
    """(loss relative error, gradient name, its relative error) of one pass against another."""
    (loss, grads), (ref_loss, ref_grads) = result, reference
    worst_name, worst = None, -1.0
    for name, grad in grads.items():
        err = crosscheck.relative_error(grad, ref_grads[name])
        if err > worst:
            worst_name, worst = name, err
    return crosscheck.relative_error(loss, ref_loss), worst_name, worst


def check_variant(variant, trainer, reference, cfg, table, weights, inputs):
    """Checks a variant's float32 loss and gradients against naive's on the benchmark batch; prints one line and
    returns whether its time can be trusted. As in torch_crosscheck.py, float32 cannot resolve everything (a ReLU
    input within rounding of 0 flips its derivative; with few tokens one flip moves a gradient by percents): a
    finite excess is rechecked with both models in float64, where the same math must agree to 1e-9."""
    loss_err, grad_name, grad_err = worst_errors(loss_and_gradients(trainer.model, trainer.names, inputs),
                                                 reference)
    text = (f"  {variant:<6} float32 loss rel err {loss_err:.2e}, gradients max rel err {grad_err:.2e} "
            f"({grad_name})")
    if loss_err <= LOSS_TOLERANCE and grad_err <= GRADIENT_TOLERANCE:
        print(text)
        return True
    if not (math.isfinite(loss_err) and math.isfinite(grad_err)):
        print(text + "  MISMATCH: not timed")
        return False
    passes = [loss_and_gradients(build_model(v, cfg, table, weights, torch.float64), trainer.names, inputs)
              for v in ("naive", variant)]
    loss64, name64, grad64 = worst_errors(passes[1], passes[0])
    ok = max(loss64, grad64) <= crosscheck.FLOAT64_TOLERANCE
    print(text + f"; float64 recheck: loss {loss64:.2e}, gradients {grad64:.2e} ({name64}) "
          + ("(float32 rounding: warn)" if ok else "MISMATCH: not timed"))
    return ok


def median_min_max(values):
    values = sorted(values)
    n = len(values)
    median = values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
    return median, values[0], values[-1]


# ----------------------------------------------------------------------------------------------------------
# synthc side
# ----------------------------------------------------------------------------------------------------------

class SynthcError(RuntimeError):
    pass


def synthc_environment():
    """This process's environment without the variables set above for PyTorch."""
    env = dict(os.environ)
    for key in [k for k in env if k.startswith(ORIGINAL_PREFIX)]:
        name, original = key[len(ORIGINAL_PREFIX):], env.pop(key)
        if original == UNSET:
            env.pop(name, None)
        else:
            env[name] = original
    return env


def run_checked(command):
    result = subprocess.run(command, capture_output=True, text=True, env=synthc_environment())
    if result.returncode != 0:
        message = [line for line in (result.stderr or result.stdout).splitlines()
                   if line.strip() and "--help' for usage" not in line]
        raise SynthcError(f"{' '.join(command)}: exit {result.returncode}: "
                          + (" / ".join(message[:3]) if message else "no output"))
    return result.stdout


def compile_synthc(args, model_path, name, out_dir):
    artifact = os.path.join(out_dir, f"{name}.synth")
    run_checked([os.path.join(args.bin, "synthc"), model_path, "--target=cpu", "--cpu=host", "--train",
                 f"--batch={args.batch}", f"--seq-len={args.seq_len}", "-o", artifact])
    return artifact


def parse_bench_json(text):
    """The last line of synth-run's output that is a JSON object with "median_seconds"."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "median_seconds" in record:
            if record.get("entry", "train_step") != "train_step":
                raise SynthcError(f"synth-run bench timed entry {record['entry']!r}, not train_step")
            if not record["median_seconds"] > 0:
                raise SynthcError(f"synth-run bench: median_seconds {record['median_seconds']!r}")
            return record
    raise SynthcError("synth-run bench printed no JSON line with median_seconds")


def run_synthc_bench(args, artifact):
    """Times synthc's train_step entry; returns synth-run's JSON record.

    `synth-run bench --json` ends with one JSON line, e.g. {"entry": "train_step", "median_seconds": 0.4,
    "min_seconds": ..., "max_seconds": ..., "tokens_per_second": 10240.0}: the wall time of whole runs of the
    entry (one optimizer step each). tokens/s is recomputed here as batch * seq-len / median_seconds.
    """
    return parse_bench_json(run_checked([
        os.path.join(args.bin, "synth-run"), "bench", artifact, "--entry", "train_step",
        "--threads", str(args.threads), "--warmup", str(args.warmup), "--reps", str(args.steps), "--json"]))


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", "--synth-run", dest="bin", default=os.path.join(REPO, "build", "bin"),
                        help="directory with synthc and synth-run (default: build/bin)")
    parser.add_argument("--artifact-dir", help="where to write the artifacts (default: a temporary directory)")
    parser.add_argument("--torch-only", action="store_true", help="run the PyTorch side only")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated model descriptions (paths relative to the repository root or cwd)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before each round's timed steps")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds alternating synthc and PyTorch; times pool over rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-variants", default=",".join(VARIANTS))
    parser.add_argument("--init", choices=["synthc", "documented"],
                        help="initial weights: synthc --emit=weights (default) or numpy draws from the documented "
                             "initializers (default with --torch-only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tokens (and of --init documented)")
    args = parser.parse_args()
    args.init = args.init or ("documented" if args.torch_only else "synthc")
    args.torch_variants = args.torch_variants.split(",")
    bad = [v for v in args.torch_variants if v not in VARIANTS]
    if bad or min(args.batch, args.seq_len, args.steps, args.rounds, args.threads) < 1 or args.warmup < 0:
        parser.error(f"unknown variants {bad}" if bad else "sizes, steps, rounds and threads must be positive")
    return args


def resolve(path):
    return path if os.path.isabs(path) or os.path.exists(path) else os.path.join(REPO, path)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    blas, core, blas_lib = blas_description()
    if blas_lib is not None and hasattr(blas_lib, "openblas_set_num_threads"):
        blas_lib.openblas_set_num_threads(args.threads)
    _, sdpa_name = sdpa_function()
    tokens_per_step = args.batch * args.seq_len

    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"PyTorch {torch.__version__} eager ({sys.executable}), {torch.get_num_threads()} threads, "
          f"{torch.get_num_interop_threads()} inter-op thread; BLAS kernel: {core}")
    names = list(WANTED_ENV) + sorted(n for n in os.environ if n.startswith("OPENBLAS_") and n not in WANTED_ENV)
    print("  environment: " + ", ".join(f"{n}={os.environ.get(n, UNSET)}" for n in names)
          + ("" if args.torch_only else " (synthc's processes get the environment the script started with)"))
    for line in blas:
        print(f"  {line}")
    print(f"  AdamW(lr {ADAMW['lr']}, betas {ADAMW['betas']}, eps {ADAMW['eps']}, weight decay "
          f"{ADAMW['weight_decay']}, foreach), clip_grad_norm_({MAX_GRAD_NORM}), zero_grad(set_to_none=True); "
          f"SDPA: {sdpa_name or 'not in this PyTorch'}")
    print("synthc: " + ("not run (--torch-only)" if args.torch_only else
                         f"{args.bin}/synthc --target=cpu --cpu=host --train; synth-run bench --entry train_step, "
                         f"{args.threads} threads"))
    print(f"training step: batch {args.batch} x {args.seq_len} random bytes, causal LM, float32; "
          f"{args.warmup} warm-up + {args.steps} timed steps per round, {args.rounds} round(s); "
          f"weights: {args.init}")
    print()
    sys.stdout.flush()

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.artifact_dir or tmp
        os.makedirs(out_dir, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        models = []
        failures = 0
        for model_arg in args.models.split(","):
            path = resolve(model_arg)
            with open(path) as f:
                desc = json.load(f)
            name = desc.get("name", os.path.splitext(os.path.basename(path))[0])
            cfg = crosscheck.Config(desc)
            if cfg.task != "lm":
                raise SystemExit(f"{path}: this benchmark trains LMs (task {cfg.task!r})")
            if args.seq_len > cfg.max_len:
                raise SystemExit(f"{path}: --seq-len {args.seq_len} > max_len {cfg.max_len}")
            table = crosscheck.parameter_table(cfg)
            entry = {"name": name, "path": path, "cfg": cfg, "synthc": [], "synthc_error": None, "trainers": {}}
            if not args.torch_only:
                try:
                    entry["artifact"] = compile_synthc(args, path, name, out_dir)
                except SynthcError as error:
                    entry["synthc_error"] = str(error)
            weights = None
            if args.init == "synthc":
                try:
                    weights = synthc_weights(args, path, name, out_dir, table)
                except (SynthcError, OSError, ValueError) as error:
                    print(f"{name}: no project weights ({error}); using --init documented")
            if weights is None:
                weights = documented_init(table, args.seed)
            data = torch.from_numpy(rng.integers(0, cfg.vocab, (args.batch, args.seq_len + 1)).astype(np.int64))
            inputs = {"input.tokens": data[:, :-1].contiguous(), "input.targets": data[:, 1:].contiguous()}

            # Check every variant against naive (TorchModel) on this batch before timing any of them.
            variants = [v for v in args.torch_variants
                        if (v != "sdpa" or (sdpa_name and any(uses_dot(s) for s in cfg.decoder)))
                        and (v != "compile" or hasattr(torch, "compile"))]
            naive = Trainer("naive", cfg, table, weights, inputs)
            reference = loss_and_gradients(naive.model, naive.names, inputs)
            print(f"{name}: {path}, {len(table)} parameter tensors; check against naive "
                  f"(tolerance loss {LOSS_TOLERANCE:.0e}, gradients {GRADIENT_TOLERANCE:.0e})")
            for variant in variants:
                trainer = naive if variant == "naive" else Trainer(variant, cfg, table, weights, inputs)
                if variant != "naive" and not check_variant(variant, trainer, reference, cfg, table, weights,
                                                            inputs):
                    failures += 1
                    continue
                entry["trainers"][variant] = trainer
            entry["flops"] = forward_flops_per_token(cfg, args.seq_len)
            models.append(entry)
        print()
        sys.stdout.flush()

        # Rounds: each model's synthc step, then each PyTorch variant, alternating.
        for _ in range(args.rounds):
            for entry in models:
                if not args.torch_only and entry["synthc_error"] is None:
                    try:
                        entry["synthc"].append(run_synthc_bench(args, entry["artifact"]))
                    except SynthcError as error:
                        entry["synthc_error"] = str(error)
                for variant, trainer in entry["trainers"].items():
                    trainer.time_steps(args.warmup, args.steps)

        header = (f"{'model':<10} {'side':<14} {'step s (min-max)':>22} {'tok/s':>9} {'GFLOP/s':>8}")
        print(header)
        print("-" * len(header))
        summary = []
        for entry in models:
            flops = None if entry["flops"] is None else 3 * entry["flops"] * tokens_per_step  # fwd + bwd

            def line(side, median, lo, hi):
                gflops = "-" if flops is None else f"{flops / median / 1e9:.1f}"
                print(f"{entry['name']:<10} {side:<14} {median:>8.4f} ({lo:.4f}-{hi:.4f})"
                      f" {tokens_per_step / median:>9.0f} {gflops:>8}")

            synthc_tps = None
            if entry["synthc"]:
                med, lo, hi = median_min_max([r["median_seconds"] for r in entry["synthc"]])
                lo = min(r.get("min_seconds", lo) for r in entry["synthc"])
                hi = max(r.get("max_seconds", hi) for r in entry["synthc"])
                line("synthc", med, lo, hi)
                synthc_tps = tokens_per_step / med
                last = entry["synthc"][-1]
                reported = last.get("tokens_per_second")
                if reported and abs(reported - tokens_per_step / last["median_seconds"]) > 0.01 * reported:
                    print(f"{'':<10} note: synth-run reported {reported:.0f} tok/s, not batch x seq-len / median")
            elif not args.torch_only:
                print(f"{entry['name']:<10} {'synthc':<14} FAILED: {entry['synthc_error']}")
                failures += 1
            best = None
            for variant, trainer in entry["trainers"].items():
                med, lo, hi = median_min_max(trainer.times)
                line(f"PyTorch {variant}", med, lo, hi)
                if best is None or med < best[1]:
                    best = (variant, med)
            summary.append((entry["name"], synthc_tps, best))
        print()
        print("GFLOP/s: 3x the forward FLOPs (2 per multiply-add of the matrix products, attention over the "
              "full N x N square, as `synthc --stats`); the same count for every row.")
        if not args.torch_only:
            print(f"synthc artifacts: {out_dir}" + ("" if args.artifact_dir else " (temporary, removed)"))
        print(f"PyTorch process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        print()

        header = (f"{'model':<10} {'synthc tok/s':>12} {'PyTorch tok/s':>13}  {'(anchor: fastest variant)':<26} "
                  f"{'synthc/PyTorch':>14}  {'>= ' + str(TARGET_RATIO) + 'x':>7}")
        print(header)
        print("-" * len(header))
        for name, synthc_tps, best in summary:
            torch_tps = None if best is None else tokens_per_step / best[1]
            ratio = synthc_tps / torch_tps if synthc_tps and torch_tps else None
            print(f"{name:<10} {'-' if synthc_tps is None else f'{synthc_tps:.0f}':>12} "
                  f"{'-' if torch_tps is None else f'{torch_tps:.0f}':>13}  "
                  f"{'' if best is None else best[0]:<26} "
                  + (f"{'-':>14}  {'-':>7}" if ratio is None else
                     f"{ratio:>13.2f}x  {'yes' if ratio >= TARGET_RATIO else 'NO':>7}"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
