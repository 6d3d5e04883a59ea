#!/usr/bin/env bash
# GPU device checks, for a machine with an NVIDIA GPU and its driver (this project's CI machines have none).
#
# Builds synthc (scripts/setup.sh), then test/gpu/check-models.sh: for every small configuration of the reference
# tests (every attention variant, the three tasks) and the long end-to-end configurations, and for each precision
# (f32; bf16 and f16 on tensor cores): compiles it with `synthc --target=cuda --train --gradients` for this GPU's
# architecture, draws fresh random weights and inputs with the C++ reference (synth-reference, float64), runs
# `forward`, `loss`, `decode`, `gradients` and two `train_step`s on the device through libsynthrt's CUDA device, and
# compares them with the reference: relative error <= 1e-4 (f32), <= 1e-2 normwise (bf16, f16); gradients <= 1e-4 (f32),
# normwise <= 0.1 over all of them (16-bit); AdamW updates within 1e-4. Prints one line per model and precision and a summary;
# exits 1 if any fails. Then test/gpu/check-train.sh: `synth-run train --device=cuda` (f32, bf16) against the same
# run on the CPU, kill and resume. The test suite runs the same checks on ptxsim, the PTX interpreter of
# test/ptxsim (ctest -R gpu-sim), where no GPU is present.
#
# Usage: test/gpu/run.sh [--arch sm_90a|sm_80]      (default: from nvidia-smi's compute capability)
#
# Then test/gpu/bench_attention.py times the fused attention (batch 8, 16 heads, N = 1024 and 4096, head dim 64 and
# 128, causal) at f32 and bf16 next to PyTorch's scaled_dot_product_attention (bf16, when PyTorch with CUDA is
# installed) and prints a Markdown table.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
arch=""
if [[ "${1:-}" == "--arch" && -n "${2:-}" ]]; then
  arch="$2"
fi
if [[ -z "$arch" ]]; then
  if ! cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1); then
    echo "gpu/run.sh: nvidia-smi failed: no NVIDIA GPU or driver here (pass --arch to compile anyway)" >&2
    exit 1
  fi
  case "$cap" in
    9.*) arch=sm_90a ;;
    8.*) arch=sm_80 ;;
    *) echo "gpu/run.sh: compute capability $cap is not a target of synthc (sm_80, sm_90a)" >&2; exit 1 ;;
  esac
fi
"$root/scripts/setup.sh"
out="$(mktemp -d)"
status=0
"$root/test/gpu/check-models.sh" "$root/build/bin" "$out" --arch "$arch" --precisions "f32 bf16 f16" || status=1
"$root/test/gpu/check-train.sh" "$root/build/bin" "$root" "$out/train" --arch "$arch" || status=1
# Timing: the fused attention (f32 and bf16) next to PyTorch's scaled_dot_product_attention (bf16) on this GPU.
python3 "$root/test/gpu/bench_attention.py" "$root/build/bin" "$out/bench" --arch "$arch" || status=1
exit $status
