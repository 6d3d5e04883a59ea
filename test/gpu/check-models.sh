#!/usr/bin/env bash
# Compiles every small reference configuration (every attention variant, the three tasks), the long end-to-end
# configurations and one with head dimension 64 (test/e2e/configs) with `synthc --target=cuda`, draws fresh random weights and inputs with the C++ reference
# (synth-reference, float64), runs `forward`, `loss` and `decode` on the CUDA device through libsynthrt (synth-e2e-check
# --device cuda) and compares: f32 kernels within relative error 1e-4 (of the largest element), bf16/f16 tensor-core
# kernels within 1e-2 (normwise).
# Training (artifacts built with --train --gradients): every parameter's gradient against the reference's float64
# backward pass (f32: 1e-4; bf16/f16: normwise, all together 0.1, see run_one) and two AdamW steps of `train_step`
# against AdamW in double on the `gradients` entry's results (1e-4 of the update).
# Prints one line per model and precision; exits 1 if any fails.
#
# Usage: check-models.sh BIN_DIR WORK_DIR --arch sm_90a|sm_80 [--precisions "f32 bf16 f16"]
#                        [--train-precisions "f32 bf16 f16"] [--models small|long|all] [--ptx-only]
# --models: the small reference configurations, the three longer ones, or both (default); the test suite runs them
# as separate ctest entries so that ctest -j balances them.
# --train-precisions: the precisions whose artifacts also get the training entries (default: all of --precisions;
# "none": forward entries only);
# --ptx-only: no cubins (ptxsim runs PTX only; saves the ptxas time of hundreds of training kernels).
#
# The device is whatever driver libsynthrt loads: a GPU's libcuda.so.1 (test/gpu/run.sh), or with
# SYNTH_CUDA_DRIVER=<build>/lib/libsynth-ptxsim.so the test suite's PTX interpreter (ctest gpu-sim-*).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$1" out="$2"
shift 2
arch="" precisions="f32 bf16 f16" train_precisions="" ptx_only=() models=all
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --precisions) precisions="$2"; shift 2 ;;
    --train-precisions) train_precisions="$2"; shift 2 ;;
    --ptx-only) ptx_only=(--ptx-only); shift ;;
    --models) models="$2"; shift 2 ;;
    *) echo "check-models.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$arch" ]] || { echo "check-models.sh: --arch is required" >&2; exit 2; }
case "$models" in
  small|long|all) ;;
  *) echo "check-models.sh: --models must be small, long or all, not '$models'" >&2; exit 2 ;;
esac
train_precisions="${train_precisions:-$precisions}"
[[ "$train_precisions" == none ]] && train_precisions=""
mkdir -p "$out"
seed="${SYNTH_GPU_SEED:-$(date +%s%N)}"
echo "check-models: arch $arch, precisions $precisions (training: $train_precisions), models $models, seed $seed, work in $out"
failed=0 passed=0
run_one() {
  local model="$1" shape="$2" precision="$3" name tol=1e-4 grad=(--grad-rtol 1e-4) train=()
  [[ " $train_precisions " == *" $precision "* ]] && train=(--train --gradients)
  name="$(basename "$model" .json)"
  local started=$SECONDS
  if [[ "$precision" != f32 ]]; then
    # With 16-bit inputs a ReLU's (FFN, dense synthesizer) pre-activations near 0 change sign against the float64
    # reference, and a few elements of the gradients below it move by the whole upstream gradient: in these tiny
    # models (16 rows) a small tensor such as a synthesizer's b1 then moves by up to 0.25 normwise (bf16; 0.3 of
    # its largest element). 16-bit gradients are judged normwise: all together within 0.1 (measured about 0.03 for
    # bf16), each tensor within 1 (a wrong or missing gradient, not rounding).
    # The outputs too are judged normwise at 16-bit: an encoder row with a single real token pools no rounding errors
    # away (measured 1.01e-2 of the largest logit elementwise, 6e-3 normwise, for such a row at bf16).
    tol=1e-2 grad=(--metric l2 --grad-metric l2 --grad-rtol 1 --grad-global-rtol 0.1)
  fi
  if [[ ! -f "$out/$name.ref.safetensors" ]]; then
    # shellcheck disable=SC2086
    "$bin/synth-reference" "$model" --seed "$seed" $shape -o "$out/$name.ref.safetensors" >/dev/null
  fi
  # shellcheck disable=SC2086
  if ! "$bin/synthc" "$model" --target=cuda --gpu-arch="$arch" --gpu-precision="$precision" $shape "${train[@]}" "${ptx_only[@]}" \
      -o "$out/$name.$precision.synth" > "$out/$name.$precision.log" 2>&1 ||
     ! "$bin/synth-e2e-check" "$out/$name.$precision.synth" "$out/$name.ref.safetensors" --device cuda \
      --rtol "$tol" "${grad[@]}" >> "$out/$name.$precision.log" 2>&1; then
    echo "FAIL $name $precision ($((SECONDS - started)) s):"; sed 's/^/    /' "$out/$name.$precision.log"
    failed=$((failed + 1))
    return
  fi
  echo "PASS $name $precision: $(grep -E '^(forward|loss|decode|gradients [0-9]+|gradients all|train_step) ' "$out/$name.$precision.log" |
    sed -E 's/ \(tolerance [^)]*\)//; s/ max rel err of the update/ update rel err/' | tr -s ' ' | tr '\n' ' ')($((SECONDS - started)) s)"
  passed=$((passed + 1))
}
for precision in $precisions; do
  if [[ "$models" != long ]]; then
    for model in "$root"/test/reference/configs/*.json; do
      run_one "$model" "--batch 2 --seq-len 8" "$precision"
    done
  fi
  if [[ "$models" != small ]]; then
    run_one "$root/test/e2e/configs/lm_mixture_long.json" "--batch 2 --seq-len 100" "$precision"
    run_one "$root/test/e2e/configs/encoder_long.json" "--batch 3 --seq-len 77" "$precision"
    run_one "$root/test/e2e/configs/lm_head64.json" "--batch 2 --seq-len 40" "$precision"
  fi
done
echo "check-models: $passed passed, $failed failed ($(grep -h -m1 '^device: ' "$out"/*.log 2>/dev/null | head -1))"
[[ $failed -eq 0 ]]
