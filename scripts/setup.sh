#!/usr/bin/env bash
# synthc set-up for a fresh Debian 12 machine: installs every dependency from Debian's packages (only what is
# missing, so running it again does nothing), then configures and builds into build/ with ccache.
# Usage: scripts/setup.sh            (from any directory)
# Env:   SYNTH_BUILD_DIR (default <repo>/build), SYNTH_BUILD_TYPE (default Release)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${SYNTH_BUILD_DIR:-$ROOT/build}"
BUILD_TYPE="${SYNTH_BUILD_TYPE:-Release}"

# Compiler toolchain and MLIR/LLVM 22, Halide 14, test and benchmark libraries, reference numerics (torch, numpy;
# OpenBLAS replaces the netlib reference BLAS that Debian's torch otherwise runs on, a fair anchor for benchmarks),
# the King James Bible with the SWORD tools to read it (the built-in training corpus: scripts/prepare_kjv.py), and
# SentencePiece (spm_train/spm_encode for prepare_kjv.py --tokenizer=sentencepiece, the library for the runtime's
# tokenizer; optional at build time).
PACKAGES=(
  cmake ninja-build ccache git python3
  clang-22 lld-22 clang-format-22 llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  libhalide14-0-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch python3-numpy libopenblas0-pthread
  sword-text-kjv libsword-utils
  sentencepiece libsentencepiece-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} Debian packages present"
fi

# ccache shares hits across build folders only when paths are relative to the source root.
export CCACHE_BASEDIR="$ROOT"
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE"
fi
cmake --build "$BUILD_DIR"
echo "setup: built into $BUILD_DIR (tools in $BUILD_DIR/bin)"
