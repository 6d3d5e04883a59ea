#!/usr/bin/env bash
# Greedy generation through the "decode" entry (decoding cache) must produce exactly the bytes of the
# sliding-window forward (no cache) while the context fits in the model's max_len.
# Usage: generate-cache.sh BIN_DIR MODEL.json OUT_DIR
set -euo pipefail
bin="$1"; model="$2"; out="$3"
name="$(basename "$model" .json)"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"  # host builds depend on it
rm -rf "$out/$name.synth"; mkdir -p "$out"
"$bin/synthc" "$model" --target=cpu --cpu=host --batch 1 -o "$out/$name.synth"
with=$("$bin/synth-run" generate "$out/$name.synth" --prompt "abc" --max-tokens 10 2>"$out/with.err")
without=$("$bin/synth-run" generate "$out/$name.synth" --prompt "abc" --max-tokens 10 --no-cache 2>/dev/null)
grep -q "with a decoding cache" "$out/with.err"
echo "with cache:    $with"
echo "without cache: $without"
[[ "$with" == "$without" ]]
