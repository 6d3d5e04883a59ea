#!/usr/bin/env bash
# `synth-run train --device=cuda` end to end: a tiny language model (test/reference/configs/lm_dot.json, batches
# [2, 16]) trained for 12 steps on a few KB of this repository's README, once from a --target=cpu artifact on the CPU
# and once from a --target=cuda artifact on the CUDA device, from the same initial weights and data. Checks:
#   - f32 kernels: every step's loss within 1e-4 (relative) of the CPU run's, the final parameters within 1e-3 of the
#     largest value of each tensor, the held-out losses within 1e-4; the loss falls;
#   - bf16 tensor-core kernels: every step's loss within 2e-2 of the CPU run's;
#   - a CUDA run killed after step 7 resumes from its checkpoint to the uninterrupted run's parameters and moments,
#     bit for bit, and samples text through `decode` on the GPU.
# Usage: check-train.sh BIN_DIR SOURCE_DIR WORK_DIR --arch sm_90a|sm_80
# The device is whatever driver libsynthrt loads: a GPU's libcuda.so.1 (test/gpu/run.sh), or with
# SYNTH_CUDA_DRIVER=<build>/lib/libsynth-ptxsim.so the test suite's PTX interpreter (ctest gpu-sim-train).
set -euo pipefail
bin="$1" src="$2" work="$3"
shift 3
arch=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    *) echo "check-train.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$arch" ]] || { echo "check-train.sh: --arch is required" >&2; exit 2; }
PY="${PYTHON:-/usr/bin/python3}"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"  # host builds depend on it
rm -rf "$work" && mkdir -p "$work/data"
"$PY" - "$src/README.md" "$work/data" <<'PY'
import sys
text = open(sys.argv[1]).read()
cut1 = text.index("\n", 1000) + 1
cut2 = text.index("\n", cut1 + 2000) + 1
open(sys.argv[2] + "/train.txt", "w").write(text[:cut1])
open(sys.argv[2] + "/heldout.txt", "w").write(text[cut1:cut2])
PY
config="$src/test/reference/configs/lm_dot.json"
flags=(--train --batch 2 --seq-len 16 --lr=3e-3 --warmup-steps=3)
"$bin/synthc" "$config" --target=cpu --cpu=host "${flags[@]}" -o "$work/cpu.synth"
"$bin/synthc" "$config" --target=cuda --gpu-arch="$arch" "${flags[@]}" -o "$work/f32.synth"
"$bin/synthc" "$config" --target=cuda --gpu-arch="$arch" --gpu-precision=bf16 "${flags[@]}" -o "$work/bf16.synth"
common=(--data "$work/data" --eval-every 6 --log-every 1 --checkpoint-every 6 --seed 3)
run=("${common[@]}" --steps 12 --sample-tokens 0)
"$bin/synth-run" train "$work/cpu.synth" "${run[@]}" --threads 1 --checkpoint "$work/cpu.ckpt" > "$work/cpu.log"
"$bin/synth-run" train "$work/f32.synth" "${run[@]}" --device=cuda --checkpoint "$work/f32.ckpt" > "$work/f32.log"
"$bin/synth-run" train "$work/bf16.synth" "${run[@]}" --device=cuda --checkpoint "$work/bf16.ckpt" > "$work/bf16.log"
# Kill and resume on the GPU: a run SIGKILLed after step 7 (its checkpoint is step 6's), resumed to step 12 with a
# sample at the end, must reach the uninterrupted run's parameters bit for bit (the kernels use no atomics).
SYNTH_TRAIN_PAUSE_AFTER_STEP=7 "$bin/synth-run" train "$work/f32.synth" "${run[@]}" --device=cuda \
  --checkpoint "$work/resumed.ckpt" > "$work/resumed.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == "T" ]] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -KILL $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
"$bin/synth-run" train "$work/f32.synth" "${common[@]}" --steps 12 --device=cuda --resume \
  --checkpoint "$work/resumed.ckpt" --sample-tokens 12 >> "$work/resumed.log"
grep -q "sample (12 tokens" "$work/resumed.log" || { echo "FAIL: no sample"; cat "$work/resumed.log"; exit 1; }

"$PY" - "$work" <<'PY'
import json, math, struct, sys
work = sys.argv[1]

def losses(name):
    train, held = {}, {}
    for line in open(f"{work}/{name}.ckpt/metrics.jsonl"):
        r = json.loads(line)
        if "eval_loss" in r:
            held[r["step"]] = r["eval_loss"]
        else:
            train[r["step"]] = r["loss"]
    return train, held

def tensors(name):
    data = open(f"{work}/{name}.ckpt/checkpoint.safetensors", "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for key, t in header.items():
        raw = data[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]]
        out[key] = struct.unpack(f"<{len(raw) // 4}f", raw)
    return out

def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)

failed = False
def check(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what)
    failed |= not ok

cpu, cpu_held = losses("cpu")
check(len(cpu) == 12 and cpu[12] < cpu[1], f"CPU run: 12 steps, loss {cpu[1]:.4f} -> {cpu[12]:.4f}")
for name, tol in (("f32", 1e-4), ("bf16", 2e-2), ("resumed", 1e-4)):
    got, held = losses(name)
    worst = max(rel(got[s], cpu[s]) for s in cpu) if sorted(got) == sorted(cpu) else math.inf
    check(worst <= tol, f"{name} on the GPU: step losses within {worst:.2g} of the CPU run's (tolerance {tol:g})")
    if name != "bf16":
        worst = max(rel(held[s], cpu_held[s]) for s in cpu_held) if sorted(held) == sorted(cpu_held) else math.inf
        check(worst <= tol, f"{name}: held-out losses within {worst:.2g} (tolerance {tol:g})")
a, b = tensors("cpu"), tensors("f32")
worst, where = 0.0, ""
for key in a:
    if not key.startswith("state."):
        scale = max(max(abs(v) for v in a[key]), 1e-30)
        err = max(abs(x - y) for x, y in zip(a[key], b[key])) / scale
        if err >= worst:
            worst, where = err, key
check(sorted(a) == sorted(b) and worst <= 1e-3,
      f"f32 parameters after 12 steps within {worst:.2g} of the CPU run's ({where}; tolerance 1e-3)")
c = tensors("resumed")
check(c == b, "killed after step 7 and resumed on the GPU == uninterrupted, bit for bit (parameters and moments)")
sys.exit(1 if failed else 0)
PY
