#!/usr/bin/env bash
# Cross-checks the C++ reference against PyTorch for one model, on fresh random weights and inputs every run.
#
# Usage: crosscheck.sh SYNTH_REFERENCE MODEL.json OUT_DIR RUN_FLAGS [: RUN_FLAGS ...]
#   Each group of RUN_FLAGS (separated by a lone ":") is one synth-reference run, e.g.
#   "--batch 2 --seq-len 16 : --batch 3 --seq-len 13 --perturb 0.1"; all runs are then checked by one
#   torch_crosscheck.py process (importing torch once).
# The seed is printed; set SYNTH_REFERENCE_SEED to reproduce a failure. PYTHON picks the interpreter
# (default /usr/bin/python3). Exits 0 on pass, 1 on failure, 77 when python3-torch is missing (ctest SKIP).
set -euo pipefail

if [[ $# -lt 4 ]]; then
  echo "usage: crosscheck.sh SYNTH_REFERENCE MODEL.json OUT_DIR RUN_FLAGS [: RUN_FLAGS ...]" >&2
  exit 2
fi
reference="$1"
model="$2"
out_dir="$3"
shift 3
python="${PYTHON:-/usr/bin/python3}"
here="$(cd "$(dirname "$0")" && pwd)"
name="$(basename "$model" .json)"

# A fresh seed per run (nanoseconds since the epoch fit in 63 bits), unless one is given to reproduce.
seed="${SYNTH_REFERENCE_SEED:-$(date +%s%N)}"
echo "crosscheck: $name, seed $seed (reproduce with SYNTH_REFERENCE_SEED=$seed)"
mkdir -p "$out_dir"

files=()
run=0
flags=()
finish_run() {
  local file="$out_dir/$name.$run.safetensors"
  echo "crosscheck: run $run: synth-reference $model --seed $((seed + run)) ${flags[*]}"
  "$reference" "$model" --seed "$((seed + run))" "${flags[@]}" -o "$file"
  files+=("$file")
  run=$((run + 1))
  flags=()
}
for arg in "$@"; do
  if [[ "$arg" == ":" ]]; then
    finish_run
  else
    flags+=("$arg")
  fi
done
finish_run

status=0
"$python" "$here/torch_crosscheck.py" "$model" "${files[@]}" || status=$?
if [[ $status -ne 0 && $status -ne 77 ]]; then
  echo "crosscheck: FAILED for seed $seed (reproduce with SYNTH_REFERENCE_SEED=$seed)"
fi
exit $status
