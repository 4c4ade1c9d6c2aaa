#!/usr/bin/env bash
# Fails, listing the differences, if any C++ file of the tree differs from what clang-format
# makes of it with the project's .clang-format (Google style, 100 columns). Fix with
#   git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
format=${CLANG_FORMAT:-clang-format}
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find src tests bench -name '*.cc' -o -name '*.h')
fi
[ ${#files[@]} -gt 0 ] || { echo "check-format: no C++ files found" >&2; exit 1; }
if ! "$format" --dry-run --Werror "${files[@]}"; then
  echo "check-format: the files above are not formatted (clang-format -i FILE)" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
