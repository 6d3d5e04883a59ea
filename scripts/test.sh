#!/usr/bin/env bash
# Runs every synthc test: installs and builds through scripts/setup.sh, then runs ctest (lit + FileCheck IR tests,
# GoogleTest unit tests, the clang-format check).
# Usage: scripts/test.sh [extra ctest arguments]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh"
ctest --test-dir "${SYNTH_BUILD_DIR:-$ROOT/build}" --output-on-failure -j2 "$@"
