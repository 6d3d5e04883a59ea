#!/usr/bin/env bash
# Every fusion switch keeps the numbers (docs/schedules.md, "Fusion switches"): compiles each model with
# `synthc --no-fuse=FUSION` for this CPU, runs it with libsynthrt on fresh random weights and inputs and compares it
# with the C++ reference (synth-e2e-check: logits, loss and, for lm, cached decoding within relative error 1e-5;
# with --gradients also every trainable parameter's gradient within 1e-4, with --train also two AdamW steps), then
# has PyTorch judge the compiled numbers on the same weights and inputs (test/reference/torch_crosscheck.py;
# --forward-only without gradients). One line per model; exits 1 when any model fails, after trying them all.
#
# Usage: e2e-no-fuse.sh BIN_DIR OUT_DIR FUSION "SHAPE_FLAGS" [--gradients|--train] [--cuda] MODEL.json...
#   FUSION: the --no-fuse value (attention, elementwise, or a comma list); SHAPE_FLAGS go to synthc and
#   synth-reference (e.g. "--batch 2 --seq-len 8"); --gradients also builds and checks the `gradients` entry,
#   --train `gradients` and `train_step`;
#   --cuda compiles with --target=cuda --ptx-only and runs on libsynthrt's CUDA device (a GPU, or ptxsim with
#   SYNTH_CUDA_DRIVER), judged like test/gpu/check-models.sh judges f32 (1e-4; no PyTorch step).
# The seed is printed; set SYNTH_E2E_SEED to reproduce a failure.
set -uo pipefail
if [[ $# -lt 5 ]]; then
  echo "usage: e2e-no-fuse.sh BIN_DIR OUT_DIR FUSION SHAPE_FLAGS [--gradients|--train] [--cuda] MODEL.json..." >&2
  exit 2
fi
bin="$1"; out="$2"; fusion="$3"; shape="$4"; shift 4
train=()
torch_flags=(--forward-only)
target=(--target=cpu --cpu=host)
check=()
cuda=0
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --gradients) train=(--gradients); torch_flags=() ;;
    --train) train=(--gradients --train); torch_flags=() ;;
    --cuda) cuda=1; target=(--target=cuda --ptx-only); check=(--device cuda --rtol 1e-4 --grad-rtol 1e-4) ;;
    *) echo "e2e-no-fuse.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $# -eq 0 ]]; then
  echo "e2e-no-fuse.sh: no models given" >&2
  exit 2
fi
seed="${SYNTH_E2E_SEED:-$(date +%s%N)}"
python="${PYTHON:-/usr/bin/python3}"
here="$(cd "$(dirname "$0")" && pwd)"
echo "e2e-no-fuse: ${target[*]} --no-fuse=$fusion${train[*]:+ ${train[*]}} ($shape), $# models, seed $seed (reproduce with SYNTH_E2E_SEED=$seed)"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"
mkdir -p "$out"
failed=0
for model in "$@"; do
  name="$(basename "$model" .json)"
  log="$out/$name.log"
  started=$SECONDS
  rm -rf "$out/$name.synth"
  # Each step's output goes to the model's log, printed when it fails.
  # shellcheck disable=SC2086
  if ! { "$bin/synthc" "$model" "${target[@]}" --no-fuse="$fusion" "${train[@]}" $shape \
           -o "$out/$name.synth" &&
         "$bin/synth-reference" "$model" --seed "$seed" $shape -o "$out/$name.ref.safetensors" &&
         "$bin/synth-e2e-check" "$out/$name.synth" "$out/$name.ref.safetensors" "${check[@]}" \
           --write-outputs "$out/$name.compiled.safetensors"; } >"$log" 2>&1; then
    echo "$name: FAIL ($((SECONDS - started)) s); $log:"
    cat "$log"
    failed=1
    continue
  fi
  if [[ $cuda -eq 1 ]]; then
    echo "$name: PASS (the reference agrees on the CUDA device; $((SECONDS - started)) s)"
    continue
  fi
  status=0
  "$python" "$here/../reference/torch_crosscheck.py" "${torch_flags[@]}" "$model" \
    "$out/$name.compiled.safetensors" >>"$log" 2>&1 || status=$?
  if [[ $status -eq 77 ]]; then
    torch="the PyTorch comparison skipped: python3-torch is not installed"
  elif [[ $status -ne 0 ]]; then
    echo "$name: FAIL in the PyTorch comparison ($((SECONDS - started)) s); $log:"
    cat "$log"
    failed=1
    continue
  else
    torch="PyTorch agrees"
  fi
  echo "$name: PASS (the reference agrees, $torch; $((SECONDS - started)) s)"
done
exit $failed
