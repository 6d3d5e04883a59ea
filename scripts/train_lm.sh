#!/usr/bin/env bash
# The main job: train a Synthesizer language model on the built-in corpus (the King James Bible, from Debian's
# packages) for a few minutes, print its held-out perplexity next to the unigram baseline, and generate a sample.
#
#   scripts/train_lm.sh [MODEL.json] [synth-run train flags...]
#
# MODEL defaults to models/lm/random.json (the Random Synthesizer LM: 4 layers, d_model 256, byte vocabulary).
# Prepares the corpus into build/data/kjv once, compiles the model with its train_step entry for this CPU
# (build/models/<name>.train.synth, recompiled when the model or synthc changes), then runs `synth-run train`
# (docs/training.md): progress bar, held-out evaluation, checkpoints, metrics and loss plot next to the artifact.
# STEPS (default 600), BATCH (16) and SEQ_LEN (256) set the run's size; extra flags go to synth-run train.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model="models/lm/random.json"
if [[ $# -gt 0 && "$1" != -* ]]; then
  model="$1"
  shift
fi
steps="${STEPS:-600}"
batch="${BATCH:-16}"
seq_len="${SEQ_LEN:-256}"
bin="$root/build/bin"
data="${SYNTH_DATA:-$root/build/data/kjv}"
for tool in synthc synth-run; do
  if [[ ! -x "$bin/$tool" ]]; then
    echo "train_lm: $bin/$tool is missing: run scripts/setup.sh first" >&2
    exit 1
  fi
done
if [[ ! -f "$model" ]]; then
  echo "train_lm: no model description $model" >&2
  exit 1
fi

if [[ ! -f "$data/manifest.json" ]]; then
  echo "train_lm: preparing the corpus into $data"
  /usr/bin/python3 scripts/prepare_kjv.py "$data"
fi

name="$(basename "$model" .json)"
artifact="$root/build/models/$name.b${batch}n${seq_len}.train.synth"
if [[ ! -f "$artifact/manifest.json" || "$model" -nt "$artifact/manifest.json" ||
      "$bin/synthc" -nt "$artifact/manifest.json" ]]; then
  echo "train_lm: compiling $model for this CPU (forward, loss, decode and train_step; about a minute)"
  mkdir -p "$(dirname "$artifact")"
  rm -rf "$artifact"
  "$bin/synthc" "$model" --target=cpu --cpu=host --train --batch "$batch" --seq-len "$seq_len" -o "$artifact"
fi

/usr/bin/python3 scripts/unigram_baseline.py "$data"
# A second run continues from the checkpoint (a finished run only evaluates and samples again).
resume=()
if [[ -f "${artifact%.synth}.ckpt/checkpoint.safetensors" ]]; then
  echo "train_lm: resuming from ${artifact%.synth}.ckpt (delete it to start over)"
  resume=(--resume)
fi
exec "$bin/synth-run" train "$artifact" --data "$data" --steps "$steps" --threads 2 "${resume[@]}" "$@"
