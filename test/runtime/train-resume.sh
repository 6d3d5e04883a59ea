#!/usr/bin/env bash
# synth-run train end to end on a tiny language model (test/reference/configs/lm_dot.json, batches [2, 16]) and a few
# KB of this repository's README as the corpus: an uninterrupted run; a run SIGKILLed mid-way and resumed, and one
# stopped by SIGTERM (exit 143, checkpoint written) and resumed, both reaching bit-identical parameters and AdamW
# moments; SIGINT exits 130; a diverging run (--lr=1e30) stops at the NaN and keeps the last good checkpoint; bad
# flags, data and checkpoints give clear errors; the loss falls and metrics.jsonl and loss.svg are well formed.
# Usage: train-resume.sh SYNTHC SYNTH_RUN SOURCE_DIR WORK_DIR
set -u
SYNTHC="$1"
RUN="$2"
SRC="$3"
WORK="$4"
PY="${PYTHON:-/usr/bin/python3}"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"  # host builds depend on it
rm -rf "$WORK" && mkdir -p "$WORK"
failures=0
checks=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect CODE TEXT -- COMMAND...: COMMAND exits CODE and its output (stdout + stderr) contains TEXT.
expect() {
  local code="$1" text="$2"
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  checks=$((checks + 1))
  if [[ $rc -ne $code ]] || ! grep -qF -- "$text" <<<"$out"; then
    fail "$* -> exit $rc (want $code), output should contain: $text"
    echo "$out" | sed 's/^/    /'
  fi
}

# check DESCRIPTION -- COMMAND...: COMMAND succeeds.
check() {
  local what="$1"
  shift 2
  local out
  checks=$((checks + 1))
  if ! out=$("$@" 2>&1); then
    fail "$what"
    echo "$out" | sed 's/^/    /'
  else
    echo "ok: $what${out:+ ($out)}"
  fi
}

# Reads checkpoints (safetensors) and metrics without numpy.
cat >"$WORK/inspect.py" <<'PY'
import json, math, struct, sys, xml.dom.minidom

def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {name: (t["dtype"], t["shape"], data[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]])
               for name, t in header.items()}
    return meta, tensors

def save(path, meta, tensors):
    header, blob = {"__metadata__": meta}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + blob)

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "meta":  # meta FILE KEY: prints the metadata value
    print(load(args[0])[0][args[1]])
elif cmd == "same":  # same A B: every tensor (parameters and state.*) bit-identical
    (ma, a), (mb, b) = load(args[0]), load(args[1])
    assert sorted(a) == sorted(b), f"tensor names differ: {sorted(set(a) ^ set(b))}"
    assert any(k.startswith("state.adam.m.") for k in a) and any(k.startswith("state.adam.v.") for k in a)
    diff = [k for k in a if a[k] != b[k]]
    assert not diff, f"{len(diff)} of {len(a)} tensors differ, e.g. {diff[:3]}"
    for key in ("step", "data_epoch", "data_position", "rng_state", "tokens_seen"):
        assert ma[key] == mb[key], f"metadata {key}: {ma[key]} != {mb[key]}"
    print(f"{len(a)} tensors bit-identical at step {ma['step']}")
elif cmd == "finite":  # finite FILE: every F32 value is finite
    for name, (dtype, shape, raw) in load(args[0])[1].items():
        values = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert all(math.isfinite(v) for v in values), f"{name} is not finite"
elif cmd == "edit":  # edit IN OUT KEY VALUE: the checkpoint with one metadata value changed
    meta, tensors = load(args[0])
    meta[args[2]] = args[3]
    save(args[1], meta, tensors)
elif cmd == "metrics":  # metrics FILE.jsonl PLOT.svg: records well formed, losses fall, the plot parses
    train, evals = [], []
    for line in open(args[0]):
        record = json.loads(line)
        if "eval_loss" in record:
            assert set(record) >= {"step", "eval_loss", "eval_perplexity", "eval_bits_per_byte"}, record
            assert abs(record["eval_perplexity"] - math.exp(record["eval_loss"])) < 1e-3 * record["eval_perplexity"]
            evals.append((record["step"], record["eval_loss"]))
        else:
            assert set(record) == {"step", "loss", "learning_rate", "grad_norm", "tokens_per_second",
                                   "elapsed_seconds"}, record
            train.append((record["step"], record["loss"]))
    steps = [s for s, _ in train]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), f"train steps not increasing: {steps}"
    eval_steps = [s for s, _ in evals]
    assert eval_steps == sorted(set(eval_steps)), f"evaluation steps not increasing: {eval_steps}"
    assert len(train) >= 2 and len(evals) >= 2, (train, evals)
    assert train[-1][1] < train[0][1] - 0.5, f"training loss did not fall: {train}"
    assert evals[-1][1] < evals[0][1], f"held-out loss did not fall: {evals}"
    svg = xml.dom.minidom.parse(args[1]).documentElement
    assert svg.tagName == "svg"
    assert len(svg.getElementsByTagName("polyline")) == 2
    assert len(svg.getElementsByTagName("circle")) >= len(evals)
    labels = [t.firstChild.data for t in svg.getElementsByTagName("text") if t.firstChild]
    assert "step" in labels and any(label.startswith("loss") for label in labels), labels
    print(f"loss {train[0][1]:.3f} -> {train[-1][1]:.3f}, held-out {evals[0][1]:.3f} -> {evals[-1][1]:.3f}")
PY
inspect() { "$PY" "$WORK/inspect.py" "$@"; }

# Waits (up to 60 s) until process $1 has stopped itself (SYNTH_TRAIN_PAUSE_AFTER_STEP).
wait_stopped() {
  for _ in $(seq 600); do
    if [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == "T" ]]; then
      return 0
    fi
    if ! kill -0 "$1" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# The corpus: about 1 KB of the README to train on (an epoch is ~30 steps, so runs cross an epoch boundary) and the
# next 2 KB held out, cut at line ends.
DATA="$WORK/data"
mkdir -p "$DATA"
"$PY" - "$SRC/README.md" "$DATA" <<'PY'
import sys
text = open(sys.argv[1]).read()
cut1 = text.index("\n", 1000) + 1
cut2 = text.index("\n", cut1 + 2000) + 1
open(sys.argv[2] + "/train.txt", "w").write(text[:cut1])
open(sys.argv[2] + "/heldout.txt", "w").write(text[cut1:cut2])
PY

CONFIG="$SRC/test/reference/configs/lm_dot.json"
if ! "$SYNTHC" "$CONFIG" --target=cpu --train --batch 2 --seq-len 16 --cpu=host --lr=3e-3 --warmup-steps=5 \
  -o "$WORK/lm.synth"; then
  echo "FAIL: synthc could not compile $CONFIG"
  exit 1
fi
LM="$WORK/lm.synth"
# Flags of every run; each run adds --data, --steps, --checkpoint-every and --sample-tokens (a flag may be given once).
FLAGS=(--eval-every 10 --threads 1 --log-every 5)
COMMON=("${FLAGS[@]}" --data "$DATA" --steps 40 --checkpoint-every 5 --sample-tokens 0)

# (1) The uninterrupted run, with a sample at the end.
SAMPLE=("${FLAGS[@]}" --data "$DATA" --steps 40 --checkpoint-every 5 --sample-tokens=24 --prompt "The ")
expect 0 "held-out after step 40: loss" -- "$RUN" train "$LM" "${SAMPLE[@]}" --checkpoint "$WORK/A.ckpt"
# Resuming a finished run trains no more; it evaluates and samples again.
expect 0 "sample (24 tokens, temperature 0.8, top-k 40):" -- "$RUN" train "$LM" "${SAMPLE[@]}" \
  --checkpoint "$WORK/A.ckpt" --resume
# The checkpoint serves as --weights elsewhere: eval on the held-out text agrees with train's last evaluation.
trained=$("$RUN" train "$LM" "${SAMPLE[@]}" --checkpoint "$WORK/A.ckpt" --resume 2>/dev/null |
  sed -n 's/^held-out after step 40: loss \([0-9.]*\).*/\1/p')
evaluated=$("$RUN" eval "$LM" --data "$DATA/heldout.txt" --weights "$WORK/A.ckpt/checkpoint.safetensors" |
  sed -n 's/^loss \([0-9.]*\).*/\1/p')
check "eval --weights CHECKPOINT gives train's held-out loss" -- \
  "$PY" -c 'import sys; a, b = map(float, sys.argv[1:]); assert abs(a - b) < 1e-4, (a, b); print(a, b)' \
  "$trained" "$evaluated"
check "the uninterrupted run ends at step 40" -- test "$(inspect meta "$WORK/A.ckpt/checkpoint.safetensors" step)" = 40
check "the metrics fall and the plot parses" -- inspect metrics "$WORK/A.ckpt/metrics.jsonl" "$WORK/A.ckpt/loss.svg"

# (2) SIGKILL after step 13 (the last checkpoint is step 10's), then --resume: bit-identical to (1).
SYNTH_TRAIN_PAUSE_AFTER_STEP=13 "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/B.ckpt" \
  >"$WORK/B.log" 2>&1 &
pid=$!
if wait_stopped $pid; then
  check "the killed run's checkpoint is step 10's" -- test "$(inspect meta "$WORK/B.ckpt/checkpoint.safetensors" step)" = 10
  kill -KILL $pid
  wait $pid 2>/dev/null
  rc=$?
  checks=$((checks + 1))
  [[ $rc -eq 137 ]] || fail "SIGKILL: exit $rc, want 137"
  expect 0 "resuming after step 10 of 40" -- "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/B.ckpt" --resume
  check "killed and resumed == uninterrupted" -- \
    inspect same "$WORK/A.ckpt/checkpoint.safetensors" "$WORK/B.ckpt/checkpoint.safetensors"
  check "the resumed run's metrics read as one run" -- inspect metrics "$WORK/B.ckpt/metrics.jsonl" "$WORK/B.ckpt/loss.svg"
else
  fail "the run to kill never paused after step 13"
  sed 's/^/    /' "$WORK/B.log"
  kill -KILL $pid 2>/dev/null
fi

# (3) SIGTERM after step 36 (past the first epoch): checkpoint at 36, exit 143; resumed == uninterrupted.
SYNTH_TRAIN_PAUSE_AFTER_STEP=36 "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/C.ckpt" \
  >"$WORK/C.log" 2>&1 &
pid=$!
if wait_stopped $pid; then
  kill -TERM $pid
  kill -CONT $pid
  wait $pid
  rc=$?
  checks=$((checks + 1))
  [[ $rc -eq 143 ]] || fail "SIGTERM: exit $rc, want 143"
  check "SIGTERM says where the checkpoint is" -- \
    grep -qF "stopped by SIGTERM after step 36 of 40; checkpoint $WORK/C.ckpt/checkpoint.safetensors" "$WORK/C.log"
  check "the SIGTERM checkpoint is step 36's, in epoch 1" -- \
    test "$(inspect meta "$WORK/C.ckpt/checkpoint.safetensors" step)/$(inspect meta "$WORK/C.ckpt/checkpoint.safetensors" data_epoch)" = 36/1
  expect 0 "resuming after step 36 of 40" -- "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/C.ckpt" --resume
  check "stopped by SIGTERM and resumed == uninterrupted" -- \
    inspect same "$WORK/A.ckpt/checkpoint.safetensors" "$WORK/C.ckpt/checkpoint.safetensors"
else
  fail "the run to terminate never paused after step 36"
  sed 's/^/    /' "$WORK/C.log"
  kill -KILL $pid 2>/dev/null
fi

# SIGINT: exit 130 with a checkpoint of the step it finished.
SYNTH_TRAIN_PAUSE_AFTER_STEP=3 "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/I.ckpt" >"$WORK/I.log" 2>&1 &
pid=$!
if wait_stopped $pid; then
  kill -INT $pid
  kill -CONT $pid
  wait $pid
  rc=$?
  checks=$((checks + 1))
  [[ $rc -eq 130 ]] || fail "SIGINT: exit $rc, want 130"
  check "the SIGINT checkpoint is step 3's" -- test "$(inspect meta "$WORK/I.ckpt/checkpoint.safetensors" step)" = 3
else
  fail "the run to interrupt never paused after step 3"
  kill -KILL $pid 2>/dev/null
fi

# The time limit stops cleanly (checkpoint, evaluation) with exit 0.
expect 0 "synth-run train: time limit of 0.05 s reached after step" -- \
  "$RUN" train "$LM" "${FLAGS[@]}" --data "$DATA" --steps 1000000 --checkpoint "$WORK/T.ckpt" --time-limit 0.05

# (4) Divergence: a learning rate of 1e30 gives a finite first step (checkpointed) and a NaN loss at step 2.
if "$SYNTHC" "$CONFIG" --target=cpu --train --batch 2 --seq-len 16 --cpu=host --lr=1e30 --warmup-steps=0 \
  --max-grad-norm=0 -o "$WORK/nan.synth"; then
  expect 1 "step 2: the loss is NaN: training diverged and stopped without writing a checkpoint; the last good checkpoint (step 1) is kept at $WORK/N.ckpt/checkpoint.safetensors" -- \
    "$RUN" train "$WORK/nan.synth" "${FLAGS[@]}" --data "$DATA" --steps 40 --checkpoint "$WORK/N.ckpt" \
    --checkpoint-every 1
  check "the NaN run kept step 1's checkpoint" -- test "$(inspect meta "$WORK/N.ckpt/checkpoint.safetensors" step)" = 1
  check "the kept checkpoint is finite" -- inspect finite "$WORK/N.ckpt/checkpoint.safetensors"
  # Resuming the diverging artifact from the kept checkpoint diverges again and still keeps it.
  expect 1 "the last good checkpoint (step 1) is kept" -- \
    "$RUN" train "$WORK/nan.synth" "${COMMON[@]}" --checkpoint "$WORK/N.ckpt" --resume
else
  fail "synthc could not compile the diverging artifact"
fi

# (5) Bad usage (exit 2), bad data and checkpoints (exit 1).
expect 2 "synth-run train: missing --data DIR" -- "$RUN" train "$LM"
expect 2 '--steps expects an integer in [1, 2147483647], got "0"' -- "$RUN" train "$LM" --data "$DATA" --steps 0
expect 2 "must end in .svg" -- "$RUN" train "$LM" --data "$DATA" --plot loss.png
expect 2 "--top-k needs --temperature > 0" -- "$RUN" train "$LM" --data "$DATA" --temperature 0 --top-k 3
expect 2 "unknown flag --bogus" -- "$RUN" train "$LM" --data "$DATA" --bogus
expect 2 "flag --resume takes no value" -- "$RUN" train "$LM" --data "$DATA" --resume=yes
expect 0 "--checkpoint-every K" -- "$RUN" train --help
expect 0 "train     train a language model" -- "$RUN" --help
expect 1 "$WORK/none: cannot open" -- "$RUN" train "$LM" --data "$WORK/none" --checkpoint "$WORK/E.ckpt"
# Artifacts that cannot be trained: one without train_step (compiled without --train), one of another task.
cp -r "$LM" "$WORK/notrain.synth" && cp -r "$LM" "$WORK/encoder.synth"
"$PY" - "$WORK/notrain.synth/manifest.json" "$WORK/encoder.synth/manifest.json" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
del manifest["entries"]["train_step"]
json.dump(manifest, open(sys.argv[1], "w"), indent=1)
manifest = json.load(open(sys.argv[2]))
manifest["model"]["task"] = "encoder"
json.dump(manifest, open(sys.argv[2], "w"), indent=1)
PY
expect 1 'has no "train_step" entry: compile the model with synthc --train' -- \
  "$RUN" train "$WORK/notrain.synth" --data "$DATA" --checkpoint "$WORK/E.ckpt"
expect 1 'train needs a language model (task "lm");' -- \
  "$RUN" train "$WORK/encoder.synth" --data "$DATA" --checkpoint "$WORK/E.ckpt"
# A SentencePiece folder (spm.model + spm.vocab of 3 pieces) for this byte model.
mkdir -p "$WORK/spm" && echo model >"$WORK/spm/spm.model" && printf 'a\t0\nb\t0\nc\t0\n' >"$WORK/spm/spm.vocab"
expect 1 "vocabulary mismatch: the model's is bytes (256 ids) but $WORK/spm holds sentencepiece (3 ids)" -- \
  "$RUN" train "$LM" --data "$WORK/spm" --checkpoint "$WORK/E.ckpt"
mkdir -p "$WORK/half" && cp "$DATA/train.txt" "$WORK/half/"
expect 1 "$WORK/half/heldout.txt: cannot open" -- "$RUN" train "$LM" --data "$WORK/half" --checkpoint "$WORK/E.ckpt"
expect 1 "$WORK/A.ckpt/checkpoint.safetensors exists: continue that run with --resume" -- \
  "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/A.ckpt"
expect 1 "no checkpoint to resume: $WORK/E.ckpt/checkpoint.safetensors: cannot open" -- \
  "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/E.ckpt" --resume
expect 1 "belongs to a run of --steps 40" -- \
  "$RUN" train "$LM" "${FLAGS[@]}" --data "$DATA" --steps 50 --checkpoint "$WORK/A.ckpt" --resume
mkdir -p "$WORK/other" && cp "$DATA/heldout.txt" "$WORK/other/train.txt" && cp "$DATA/heldout.txt" "$WORK/other/"
expect 1 "was trained on other data" -- "$RUN" train "$LM" "${FLAGS[@]}" --data "$WORK/other" \
  --checkpoint "$WORK/A.ckpt" --resume
# A truncated checkpoint, a file that is not safetensors, and one of another model.
mkdir -p "$WORK/D1.ckpt" "$WORK/D2.ckpt" "$WORK/D3.ckpt"
head -c 5000 "$WORK/A.ckpt/checkpoint.safetensors" >"$WORK/D1.ckpt/checkpoint.safetensors"
expect 1 "corrupt checkpoint: $WORK/D1.ckpt/checkpoint.safetensors" -- \
  "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/D1.ckpt" --resume
echo "not a checkpoint" >"$WORK/D2.ckpt/checkpoint.safetensors"
expect 1 "corrupt checkpoint: $WORK/D2.ckpt/checkpoint.safetensors" -- \
  "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/D2.ckpt" --resume
inspect edit "$WORK/A.ckpt/checkpoint.safetensors" "$WORK/D3.ckpt/checkpoint.safetensors" model_sha256 0123456789abcdef
expect 1 "was written for model" -- "$RUN" train "$LM" "${COMMON[@]}" --checkpoint "$WORK/D3.ckpt" --resume

echo "train-resume: $checks checks, $failures failures"
[[ $failures -eq 0 ]]
