#!/usr/bin/env bash
# Every C source and header of the tree is as clang-format (with the repository's .clang-format)
# lays it out; `make format` rewrites them so. Lists the files that are not, and fails.
#
# Usage: format.sh SOURCE_DIR
set -euo pipefail

SRC=${1:?usage: $0 SOURCE_DIR}
cd "$SRC"
command -v clang-format >/dev/null ||
    { echo "FAIL: clang-format not found (scripts/deps.sh --test installs it)" >&2; exit 1; }

# The files git tracks in a checkout; in an unpacked source tree, every C file outside build
# directories.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files '*.c' '*.h')
else
    mapfile -t files < <(find . -name '*.[ch]' -not -path './build*' | sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "FAIL: no C files found under $SRC" >&2; exit 1; }

bad=0
for f in "${files[@]}"; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "FAIL: $f is not clang-formatted (make format)" >&2
        bad=$((bad + 1))
    fi
done
[ $bad -eq 0 ] || exit 1
echo "format: ${#files[@]} files clang-formatted"
