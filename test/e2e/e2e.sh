#!/usr/bin/env bash
# Compiles one model with synthc for the CPU (with its `gradients` and `train_step` entries), runs it with libsynthrt
# on fresh random weights and inputs, and compares logits and loss with the C++ reference (relative error <= 1e-5),
# every trainable parameter's gradient with the reference's backward pass (<= 1e-4) and two AdamW steps with AdamW
# written out in the checker (<= 1e-4 of the update), then has PyTorch judge the compiled numbers on the same
# weights and inputs (test/reference/torch_crosscheck.py: PyTorch autograd, same tolerances).
#
# Usage: e2e.sh BIN_DIR MODEL.json OUT_DIR "SHAPE_FLAGS" ["SYNTHC_FLAGS"]
#   SHAPE_FLAGS go to both synthc and synth-reference (e.g. "--batch 2 --seq-len 100").
# The seed is printed; set SYNTH_E2E_SEED to reproduce a failure.
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: e2e.sh BIN_DIR MODEL.json OUT_DIR SHAPE_FLAGS [SYNTHC_FLAGS]" >&2
  exit 2
fi
bin="$1"; model="$2"; out="$3"; shape="$4"; synthc_flags="${5:---cpu=host}"
name="$(basename "$model" .json)"
seed="${SYNTH_E2E_SEED:-$(date +%s%N)}"
echo "e2e: $name ($shape $synthc_flags), seed $seed (reproduce with SYNTH_E2E_SEED=$seed)"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"  # host builds depend on it
rm -rf "$out/$name.synth"
mkdir -p "$out"
# shellcheck disable=SC2086
"$bin/synthc" "$model" --target=cpu --gradients --train $synthc_flags $shape -o "$out/$name.synth"
# shellcheck disable=SC2086
"$bin/synth-reference" "$model" --seed "$seed" $shape -o "$out/$name.ref.safetensors"
"$bin/synth-e2e-check" "$out/$name.synth" "$out/$name.ref.safetensors" \
  --write-outputs "$out/$name.compiled.safetensors"
# PyTorch judges the compiled numbers on the same weights and inputs (skipped, visibly, without torch).
python="${PYTHON:-/usr/bin/python3}"
here="$(cd "$(dirname "$0")" && pwd)"
status=0
"$python" "$here/../reference/torch_crosscheck.py" "$model" "$out/$name.compiled.safetensors" || status=$?
if [[ $status -eq 77 ]]; then
  echo "e2e: SKIP the PyTorch comparison: python3-torch is not installed"
  exit 0
fi
exit $status
