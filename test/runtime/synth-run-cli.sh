#!/usr/bin/env bash
# synth-run's command line on the toy artifact: bad usage exits 2 with a message naming the problem, failures while
# running exit 1, and forward/bench/generate/eval work. Usage: synth-run-cli.sh SYNTH_RUN TOY_ARTIFACT WORK_DIR
set -u
RUN="$1"
TOY="$2"
WORK="$3"
rm -rf "$WORK" && mkdir -p "$WORK"
failures=0
checks=0

# expect CODE TEXT -- COMMAND...: COMMAND exits CODE and its output (stdout + stderr) contains TEXT.
expect() {
  local code="$1" text="$2"
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  checks=$((checks + 1))
  if [[ $rc -ne $code ]] || ! grep -qF -- "$text" <<<"$out"; then
    echo "FAIL: $* -> exit $rc (want $code), output should contain: $text"
    echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
  fi
}

# Token ids as a .npy file (int32 [2, 8]), written without numpy.
python3 - "$WORK" <<'PY'
import struct, sys
def npy(path, descr, shape, data):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
work = sys.argv[1]
ids = [(i * 37) % 256 for i in range(16)]
npy(work + "/tokens.npy", "<i4", (2, 8), struct.pack("<16i", *ids))
npy(work + "/tokens64.npy", "<i8", (2, 8), struct.pack("<16q", *ids))
npy(work + "/short.npy", "<i4", (7,), struct.pack("<7i", *ids[:7]))
npy(work + "/mask.npy", "|u1", (2, 8), bytes([1] * 12 + [0] * 4))
npy(work + "/mask-bool.npy", "|b1", (2, 8), bytes([1] * 16))
npy(work + "/mask-bad.npy", "|u1", (2, 8), bytes([1, 37] + [1] * 14))
npy(work + "/big.npy", "<i8", (2, 8), struct.pack("<16q", *([1 << 40] * 16)))
PY

# Bad usage: exit 2.
expect 2 "usage: synth-run <command> ARTIFACT" -- "$RUN"
expect 2 'unknown command "frobnicate"' -- "$RUN" frobnicate "$TOY"
expect 2 "synth-run forward: missing ARTIFACT" -- "$RUN" forward
expect 2 "synth-run forward: unknown flag --bogus" -- "$RUN" forward "$TOY" --bogus
expect 2 "unknown flag --bogus" -- "$RUN" forward "$TOY" --bogus=1
expect 2 "--device expects cpu or cuda, got \"tpu\"" -- "$RUN" train "$TOY" --device=tpu --data x
expect 2 'synth-run forward: unexpected argument "extra" (only one ARTIFACT)' -- "$RUN" forward "$TOY" extra
expect 2 '--threads expects an integer in [0, 4096], got "abc"' -- "$RUN" forward "$TOY" --threads abc
expect 2 '--threads expects an integer in [0, 4096], got "-1"' -- "$RUN" bench "$TOY" --threads=-1
expect 2 "flag --text needs a value (STRING)" -- "$RUN" forward "$TOY" --text
expect 2 "flag --threads given twice" -- "$RUN" forward "$TOY" --threads 1 --threads 2
expect 2 "give --tokens or --text, not both" -- "$RUN" forward "$TOY" --text a --tokens "$WORK/tokens.npy"
expect 2 "-o out.txt: the file name must end in .npy or .safetensors" -- "$RUN" forward "$TOY" --text a -o out.txt
expect 2 '--input expects NAME=FILE.npy, got "tokens"' -- "$RUN" forward "$TOY" --input tokens
expect 2 "run 'synth-run forward --help' for usage" -- "$RUN" forward "$TOY" --bogus
expect 2 '--reps expects an integer in [1, 1000000], got "0"' -- "$RUN" bench "$TOY" --reps 0
expect 2 "synth-run generate: missing --prompt TEXT" -- "$RUN" generate "$TOY"
expect 2 "--top-k needs --temperature > 0" -- "$RUN" generate "$TOY" --prompt a --top-k 5
expect 2 '--temperature expects a number >= 0, got "hot"' -- "$RUN" generate "$TOY" --prompt a --temperature hot
expect 2 "flag --raw takes no value" -- "$RUN" generate "$TOY" --prompt a --raw=1
expect 2 "synth-run eval: missing --data FILE" -- "$RUN" eval "$TOY"
expect 0 "--tokens FILE.npy" -- "$RUN" forward --help
expect 0 "decoding cache" -- "$RUN" generate --help
expect 0 "commands:" -- "$RUN" --help

# Failures while running: exit 1, with the runtime's message.
expect 1 "synth-run forward: error: $WORK/none.synth: cannot open the artifact directory" -- \
  "$RUN" forward "$WORK/none.synth" --text a
expect 1 'input "tokens" of entry forward is not given (use --input tokens=FILE.npy, --tokens or --text)' -- \
  "$RUN" forward "$TOY"
expect 1 "--text has 9 bytes; the plan's sequence length is 8" -- "$RUN" forward "$TOY" --text 123456789
expect 1 'no entry point "nope" (the artifact has: forward, pool, loss)' -- "$RUN" forward "$TOY" --entry nope --text a
expect 1 "short.npy: input \"tokens\" needs I32 [2, 8], the file holds I32 [7]" -- \
  "$RUN" forward "$TOY" --tokens "$WORK/short.npy"
expect 1 "big.npy: element 0 (1099511627776) does not fit in int32" -- "$RUN" forward "$TOY" --tokens "$WORK/big.npy"
expect 1 'entry forward has no input "mask"' -- "$RUN" forward "$TOY" --input mask="$WORK/tokens.npy"
expect 1 "not a .npy file" -- "$RUN" forward "$TOY" --tokens "$TOY/manifest.json"
mkdir -p "$WORK/bad.synth" && cp "$TOY"/* "$WORK/bad.synth/"
printf 'x' >>"$WORK/bad.synth/weights.safetensors"
expect 1 "$WORK/bad.synth: size mismatch for weights.safetensors" -- "$RUN" bench "$WORK/bad.synth"

# Happy paths.
expect 0 "logits: F32 [2, 8, 256]" -- "$RUN" forward "$TOY" --tokens "$WORK/tokens.npy" -o "$WORK/logits.npy"
expect 0 "logits: F32 [2, 8, 256]" -- "$RUN" forward "$TOY" --tokens "$WORK/tokens64.npy"
expect 0 "wrote $WORK/pool.safetensors" -- \
  "$RUN" forward "$TOY" --entry pool --input tokens="$WORK/tokens.npy" --input mask="$WORK/mask.npy" \
  -o "$WORK/pool.safetensors"
expect 0 "pooled: F32 [2, 16]" -- \
  "$RUN" forward "$TOY" --entry pool --input tokens="$WORK/tokens.npy" --input mask="$WORK/mask-bool.npy"
expect 1 'input "mask" needs U8 [2, 8], the file holds I32 [2, 8]' -- "$RUN" forward "$TOY" --entry pool \
  --input tokens="$WORK/tokens.npy" --input mask="$WORK/tokens.npy"
expect 1 'input "mask": element 1 is 37, but a U8 mask holds 0 or 1' -- "$RUN" forward "$TOY" --entry pool \
  --input tokens="$WORK/tokens.npy" --input mask="$WORK/mask-bad.npy"
expect 0 "logits: F32 [3, 256]" -- "$RUN" forward "$TOY" --text abc -o "$WORK/abc.safetensors"
expect 1 "abc.safetensors: missing parameter \"embed.weight\" of shape [256, 16]" -- "$RUN" forward "$TOY" --text a --weights "$WORK/abc.safetensors"
expect 0 "toy_k1_logits" -- "$RUN" bench "$TOY" --warmup 1 --reps 3 --threads 1
expect 0 "toy_k2_masked_mean" -- "$RUN" bench "$TOY" --entry pool --reps 2
expect 0 "no decoding cache is used" -- "$RUN" generate "$TOY" --prompt "hello, world" --max-tokens 8
expect 0 "perplexity" -- "$RUN" eval "$TOY" --data "$TOY/manifest.json" --max-batches 4
first=$("$RUN" generate "$TOY" --prompt ab --max-tokens 16 --temperature 1 --top-k 20 --seed 7 2>/dev/null)
second=$("$RUN" generate "$TOY" --prompt ab --max-tokens 16 --temperature 1 --top-k 20 --seed 7 2>/dev/null)
checks=$((checks + 1))
if [[ "$first" != "$second" || ${#first} -lt 18 ]]; then
  echo "FAIL: seeded sampling is not reproducible: '$first' vs '$second'"
  failures=$((failures + 1))
fi
# The .npy matches NumPy's reading of it, when NumPy is installed.
if python3 -c "import numpy" 2>/dev/null; then
  checks=$((checks + 1))
  if ! python3 -c "import numpy, sys; a = numpy.load(sys.argv[1]); assert a.shape == (2, 8, 256) and a.dtype == numpy.float32" \
    "$WORK/logits.npy"; then
    echo "FAIL: numpy cannot read $WORK/logits.npy"
    failures=$((failures + 1))
  fi
fi

# --device: a cpu artifact does not run on the CUDA device, a cuda artifact not on the CPU, and without a CUDA driver
# --device=cuda fails with exit 1 and says so (never a crash). The cuda artifact is a tiny hand-written one (its
# "PTX" is not PTX: nothing here hands it to a driver).
expect 1 'the artifact'"'"'s target is cpu (x86-64); it cannot run on the CUDA device (use --device=cpu)' -- \
  "$RUN" forward "$TOY" --tokens "$WORK/tokens.npy" --device=cuda
expect 1 '--device expects cpu or cuda, got "tpu"' -- "$RUN" forward "$TOY" --tokens "$WORK/tokens.npy" --device=tpu
expect 1 'the artifact'"'"'s target is cpu (x86-64); it cannot run on the CUDA device (use --device=cpu)' -- \
  "$RUN" train "$TOY" --device=cuda --data "$WORK" --checkpoint "$WORK/cuda.ckpt"
CUDA_ART="$WORK/tiny-cuda.synth"
mkdir -p "$CUDA_ART"
printf '// not PTX\n' >"$CUDA_ART/k.ptx"
cat >"$CUDA_ART/manifest.json" <<JSON
{"format": "synthc-artifact", "version": 1, "model": {},
 "target": {"kind": "cuda", "arch": "sm_90a", "required_features": [], "variants": []},
 "files": {"k.ptx": {"sha256": "$(sha256sum "$CUDA_ART/k.ptx" | cut -d' ' -f1)", "bytes": $(stat -c %s "$CUDA_ART/k.ptx")}},
 "parameters": [],
 "entries": {"forward": {"inputs": [{"name": "tokens", "buffer": 0}], "outputs": [{"name": "y", "buffer": 1}],
   "buffers": [{"shape": [4], "dtype": "I32", "storage": "input"}, {"shape": [4], "dtype": "F32", "storage": "output"}],
   "arena_bytes": 0, "calls": [{"kernel": "k", "buffers": [0, 1], "flops": 4, "bytes": 32}]}},
 "cuda": {"arch": "sm_90a", "abi": "bare-pointers",
   "kernels": {"k": {"entry": "k", "ptx": "k.ptx", "grid": [1, 1, 1], "block": [4, 1, 1], "shared_bytes": 0}},
   "skipped_entries": []}}
JSON
expect 1 "tiny-cuda.synth: the artifact's target is cuda (sm_90a); it cannot run on the CPU (use --device=cuda)" -- \
  "$RUN" bench "$CUDA_ART" --reps 1
if ! ldconfig -p 2>/dev/null | grep -qF 'libcuda.so.1 '; then
  for cmd in forward bench; do
    expect 1 "synth-run $cmd: error: no CUDA driver: libcuda.so.1 not found (this machine has no NVIDIA GPU driver)" -- \
      "$RUN" "$cmd" "$CUDA_ART" --device=cuda
  done
  expect 1 "synth-run eval: error: no CUDA driver: libcuda.so.1 not found" -- \
    "$RUN" eval "$CUDA_ART" --device=cuda --data "$WORK/tokens.npy"
  expect 1 "synth-run generate: error: no CUDA driver: libcuda.so.1 not found" -- \
    "$RUN" generate "$CUDA_ART" --device=cuda --prompt hi
  expect 1 "synth-run train: error: no CUDA driver: libcuda.so.1 not found" -- \
    "$RUN" train "$CUDA_ART" --device=cuda --data "$WORK" --checkpoint "$WORK/cuda.ckpt"
fi

echo "synth-run-cli: $((checks - failures))/$checks checks passed"
[[ $failures -eq 0 ]]
