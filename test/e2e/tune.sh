#!/usr/bin/env bash
# synth-tune with a tiny budget on a tiny model: it writes a schedule file that synthc accepts and whose artifact
# matches the C++ reference, a report with the per-kernel table (default, best, the li2018 autoscheduler) and an SVG
# plot; the same run again comes from the cache without compiling and writes the same file; bad flags are refused.
#
# Usage: tune.sh BIN_DIR MODEL.json OUT_DIR
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: tune.sh BIN_DIR MODEL.json OUT_DIR" >&2
  exit 2
fi
bin="$1"; model="$2"; out="$3"
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//') ($(nproc) cores)"
rm -rf "$out" && mkdir -p "$out"
fail() { echo "tune: FAIL: $*" >&2; exit 1; }
flags=(--batch 2 --seq-len 8 --budget 20 --reps 2 --autoschedulers=li2018 --cache "$out/cache")
"$bin/synth-tune" "$model" "${flags[@]}" -o "$out/tuned.json" --report "$out/report" > "$out/stdout.txt" 2> "$out/stderr.txt" \
  || { cat "$out/stderr.txt" >&2; fail "synth-tune failed"; }
cat "$out/stdout.txt"
grep -q '"format": "synthc-schedule"' "$out/tuned.json" || fail "tuned.json is not a schedule file"
grep -q '"name": "forward_k[0-9]*_fused_attention"' "$out/tuned.json" || fail "tuned.json lacks the attention kernel"
grep -q '^| kernel | kind | default | best | from | speed-up | li2018 | candidates |' "$out/report/report.md" \
  || fail "the report lacks its per-kernel table"
grep -q '^| forward_k[0-9]*_fused_attention | fused_attention |' "$out/report/report.md" \
  || fail "the report lacks the attention kernel"
head -c 4 "$out/report/candidates.svg" | grep -q '<svg' || fail "candidates.svg is not an SVG"
grep -q 'search rounds' "$out/report/report.md" || fail "the report does not say how many rounds ran"
# synthc accepts the file, and the tuned artifact computes the model.
"$bin/synthc" "$model" --target=cpu --cpu=host --batch 2 --seq-len 8 --schedule="$out/tuned.json" -o "$out/tuned.synth"
"$bin/synth-reference" "$model" --seed 11 --batch 2 --seq-len 8 -o "$out/ref.safetensors"
"$bin/synth-e2e-check" "$out/tuned.synth" "$out/ref.safetensors"
# The same run again: from the cache, nothing compiled, the same file.
"$bin/synth-tune" "$model" "${flags[@]}" -o "$out/again.json" --report "$out/report2" 2> "$out/stderr2.txt"
grep -q "this run is in the cache" "$out/stderr2.txt" || { cat "$out/stderr2.txt" >&2; fail "the second run was not cached"; }
cmp "$out/tuned.json" "$out/again.json" || fail "the cached run wrote another file"
# Bad flags.
status=0; "$bin/synth-tune" "$model" --autoschedulers=fast -o "$out/x.json" 2> "$out/bad.txt" || status=$?
[[ $status -eq 2 ]] && grep -q 'unknown autoscheduler "fast"' "$out/bad.txt" || fail "a bad --autoschedulers was not refused"
status=0; "$bin/synth-tune" "$model" --entry=train -o "$out/x.json" 2> "$out/bad.txt" || status=$?
[[ $status -eq 2 ]] && grep -q 'unknown --entry=train' "$out/bad.txt" || fail "a bad --entry was not refused"
status=0; "$bin/synth-tune" "$model" 2> "$out/bad.txt" || status=$?
[[ $status -eq 2 ]] && grep -q 'needs -o FILE' "$out/bad.txt" || fail "a missing -o was not refused"
echo "tune: PASS"
