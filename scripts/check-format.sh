#!/usr/bin/env bash
# Checks that every C++ source of the repository is clang-format clean (LLVM style, .clang-format).
# Usage: scripts/check-format.sh [clang-format binary]   (run from anywhere; checks the whole tree)
set -euo pipefail
CLANG_FORMAT="${1:-clang-format-22}"
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.h' '*.c' '*.cc')
if [[ ${#files[@]} -eq 0 ]]; then
  echo "check-format: no C++ sources found" >&2
  exit 1
fi
if ! "$CLANG_FORMAT" --dry-run --Werror "${files[@]}"; then
  echo "check-format: the files above are not formatted; fix with: $CLANG_FORMAT -i <file>" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files clean ($("$CLANG_FORMAT" --version | head -1))"
