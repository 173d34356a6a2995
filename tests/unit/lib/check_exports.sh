#!/usr/bin/env bash
# Checks libprov's exported symbols: libprov.so's dynamic symbols and libprov.a's global ones
# must be exactly the functions the public headers declare with PROV_EXPORT, and the shared
# library must carry its SONAME.
# Usage: check_exports.sh LIBPROV_SO LIBPROV_A INCLUDE_PROV_DIR
set -euo pipefail

so=${1:?usage: $0 LIBPROV_SO LIBPROV_A INCLUDE_PROV_DIR}
ar=${2:?}
inc=${3:?}
status=0

declared=$(grep -h 'PROV_EXPORT' "$inc"/*.h | grep -o '\bprov_[a-z0-9_]*(' | tr -d '(' | sort -u)
[ -n "$declared" ] || { echo "FAIL: no PROV_EXPORT declarations found in $inc" >&2; exit 1; }

# check WHAT SYMBOLS: SYMBOLS (one a line) must equal the declared functions.
check() {
    local what=$1 symbols=$2 bad missing
    bad=$(grep -v '^prov_' <<<"$symbols" || true)
    if [ -n "$bad" ]; then
        echo "FAIL: $what exports symbols outside the prov_ namespace:" >&2
        sed 's/^/    /' <<<"$bad" >&2
        status=1
    fi
    missing=$(comm -23 <(echo "$declared") <(sort -u <<<"$symbols"))
    if [ -n "$missing" ]; then
        echo "FAIL: $what lacks functions its headers declare:" >&2
        sed 's/^/    /' <<<"$missing" >&2
        status=1
    fi
    extra=$(comm -13 <(echo "$declared") <(sort -u <<<"$symbols"))
    if [ -n "$extra" ]; then
        echo "FAIL: $what exports prov_ symbols no header declares:" >&2
        sed 's/^/    /' <<<"$extra" >&2
        status=1
    fi
    echo "$what: $(wc -l <<<"$symbols") exported symbols"
}

check "$(basename "$so")" "$(nm -D --defined-only "$so" | awk '{ print $3 }')"
check "$(basename "$ar")" "$(nm -g --defined-only "$ar" | awk 'NF == 3 { print $3 }')"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
case "$soname" in
    libprov.so.[0-9]*) echo "SONAME: $soname" ;;
    *) echo "FAIL: $(basename "$so") has SONAME '$soname'" >&2; status=1 ;;
esac
exit $status
