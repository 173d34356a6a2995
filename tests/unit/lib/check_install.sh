#!/usr/bin/env bash
# Installs the build into a temporary prefix and uses it as a device maker would: the headers,
# prov.pc, libprov.so and libprov.a, prov-agent and its man page are where they belong, and the
# example program of docs/libprov.md compiles and runs against the library, shared and static.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR CC [EXTRA_CFLAGS...]
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR SOURCE_DIR CC [EXTRA_CFLAGS...]}
src=${2:?}
cc=${3:?}
shift 3
extra=()
for f in "$@"; do
    [ -n "$f" ] && extra+=("$f")
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/prov-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

p=$tmp/prefix
cmake --install "$build" --prefix "$p" >"$tmp/install.log"
for f in include/prov/prov.h include/prov/transport.h bin/prov-agent share/man/man1/prov-agent.1; do
    [ -f "$p/$f" ] || fail "$f not installed"
done
pc=$(find "$p" -name prov.pc)
[ -n "$pc" ] || fail "prov.pc not installed"
libdir=$(dirname "$(dirname "$pc")")
for f in libprov.so libprov.so.0 libprov.a; do
    [ -e "$libdir/$f" ] || fail "$f not installed in $libdir"
done
export PKG_CONFIG_PATH=$(dirname "$pc")
[ "$(pkg-config --variable=libdir prov)" -ef "$libdir" ] || fail "prov.pc names another libdir"

# The installed prov-agent finds the installed library by its RPATH.
"$p/bin/prov-agent" --version | grep -q '^prov-agent [0-9]' || fail "installed prov-agent"

# The first C block of docs/libprov.md is the example program.
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on' "$src/docs/libprov.md" >"$tmp/register.c"
[ -s "$tmp/register.c" ] || fail "no example program in docs/libprov.md"
flags=(-std=c17 -Wall -Wextra -Werror "${extra[@]}")
# shellcheck disable=SC2046
"$cc" "${flags[@]}" "$tmp/register.c" $(pkg-config --cflags --libs prov) \
    -Wl,-rpath,"$libdir" -o "$tmp/register-shared"
# shellcheck disable=SC2046
"$cc" "${flags[@]}" "$tmp/register.c" $(pkg-config --cflags prov) "$libdir/libprov.a" \
    $(pkg-config --libs jansson libcurl libcrypto) -o "$tmp/register-static"
! readelf -d "$tmp/register-static" | grep -q 'libprov' || fail "static example needs libprov.so"
readelf -d "$tmp/register-shared" | grep -q 'libprov.so.0' || fail "shared example lacks libprov"

for kind in shared static; do
    exe=$tmp/register-$kind
    rc=0
    "$exe" >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 2 ] && grep -q '^usage:' "$tmp/err" || fail "$kind example without arguments: $rc"
    rc=0
    "$exe" http://127.0.0.1:1 0ne00ABCDEF dev-1 AAAA /dev/null >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 1 ] || fail "$kind example with an http endpoint: exit $rc"
    grep -q 'endpoint must be an https:// URL' "$tmp/err" || fail "$kind example: $(cat "$tmp/err")"
    echo "$kind example: ok"
done
