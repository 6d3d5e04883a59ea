#!/usr/bin/env bash
# Builds one small model with a Halide autoscheduler (synthc --cpu-scheduler, the plugin loaded from Debian's
# libhalide14-1) instead of the explicit schedules, runs it with libsynthrt and compares logits and loss with the C++
# reference (synth-e2e-check: relative error <= 1e-5). Kernels the autoscheduler gives up on keep their explicit
# schedule, with a note; the manifest records which kernels it scheduled, and at least one must be.
#
# Usage: autoscheduler.sh BIN_DIR MODEL.json OUT_DIR SCHEDULER
# Forward and loss only: the training functions take minutes to autoschedule.
set -euo pipefail
if [[ $# -ne 4 ]]; then
  echo "usage: autoscheduler.sh BIN_DIR MODEL.json OUT_DIR SCHEDULER" >&2
  exit 2
fi
bin="$1"; model="$2"; out="$3"; scheduler="$4"
seed="${SYNTH_E2E_SEED:-$(date +%s%N)}"
echo "autoscheduler: $(basename "$model") with $scheduler, seed $seed (reproduce with SYNTH_E2E_SEED=$seed)"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"
rm -rf "$out" && mkdir -p "$out"
"$bin/synthc" "$model" --target=cpu --cpu=host --cpu-scheduler="$scheduler" --batch 2 --seq-len 8 \
  -o "$out/model.synth" 2> "$out/synthc.log" || { cat "$out/synthc.log" >&2; exit 1; }
grep "synthc: note:" "$out/synthc.log" || true
scheduled=$(grep -c "\"scheduler\": \"$scheduler\"" "$out/model.synth/manifest.json" || true)
echo "autoscheduler: $scheduled kernels scheduled by $scheduler"
if [[ "$scheduled" -lt 1 ]]; then
  echo "autoscheduler: FAIL: the manifest names no kernel scheduled by $scheduler" >&2
  exit 1
fi
"$bin/synth-reference" "$model" --seed "$seed" --batch 2 --seq-len 8 -o "$out/ref.safetensors"
"$bin/synth-e2e-check" "$out/model.synth" "$out/ref.safetensors"
