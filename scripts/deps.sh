#!/usr/bin/env bash
# Installs the Debian packages provd needs to build and test, when they are missing.
# Usage: scripts/deps.sh [--test | --bench | --fuzz]
#   (what the test suite, the benchmarks or the libFuzzer harnesses use too)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libssl-dev libevent-dev libjansson-dev libsqlite3-dev
      libpq-dev libcurl4-openssl-dev openssl curl)
case "${1:-}" in
    --test) pkgs+=(libcmocka-dev sqlite3 jq groff-base valgrind clang-format) ;;
    --bench) pkgs+=(jq sqlite3) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
