#!/usr/bin/env bash
# Keep-alive registration throughput of a real provd, measured with wrk.
# Usage: bench/wrk-register.sh [BUILD_DIR] ; env DEVICES (20000), DURATION (10s),
# CONNECTIONS ("16 64"), WORKERS (provd worker threads, default 2).
# Starts provd on a temporary data directory on loopback, creates an enrollment group, registers
# DEVICES distinct simulated devices over and over (each request is a durable registration), and
# prints registrations/s and provd's CPU microseconds per registration (from /proc).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
DEVICES=${DEVICES:-20000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-"16 64"}
WORKERS=${WORKERS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
"$BUILD/bin/provd" init --data-dir "$WORK/data" >/dev/null
"$BUILD/bin/provd" serve --data-dir "$WORK/data" --device-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --port-file "$WORK/ports.json" --workers "$WORKERS" \
    --log-level warn 2>"$WORK/provd.log" &
PID=$!
for _ in $(seq 100); do [ -s "$WORK/ports.json" ] && break; sleep 0.05; done
DEV=https://127.0.0.1:$(jq -r .device "$WORK/ports.json")
ADM=https://127.0.0.1:$(jq -r .admin "$WORK/ports.json")
SCOPE=$(jq -r .id_scope "$WORK/data/provd.json")
KEY=$(head -c 64 /dev/urandom | base64 -w0)
curl -sf --cacert "$WORK/data/ca/root.pem" -X PUT -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" \
    -H 'Content-Type: application/json' "$ADM/enrollmentGroups/bench" \
    -d "{\"enrollmentGroupId\":\"bench\",\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY\"}},\"iotHubs\":[\"hub-a\",\"hub-b\"]}" >/dev/null
"$BUILD/bin/sas_tokens" "$SCOPE" "$KEY" dev "$DEVICES" >"$WORK/tokens"

# The physics of this machine, measured in the same run, before the load.
physics=$("$BUILD/bin/physics" "$WORK")
echo "$physics"
full=$(sed -n 's/.*sqlite_insert_full_1txn_per_s=//p' <<<"$physics")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
echo "provd workers=$WORKERS devices=$DEVICES duration=$DURATION ($(nproc) CPUs, load generator on the same machine)"
for c in $CONNECTIONS; do
    before=$(cpu_ticks)
    out=$(TOKENS=$WORK/tokens SCOPE=$SCOPE wrk -t1 -c"$c" -d"$DURATION" -s "$HERE/register.lua" "$DEV")
    after=$(cpu_ticks)
    reqs=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    errs=$(sed -n 's/.*errors_non2xx=\([0-9]*\) socket_errors=\([0-9]*\).*/\1+\2/p' <<<"$out")
    lat=$(sed -n 's/.*p50_us=\([0-9]*\) p99_us=\([0-9]*\).*/p50=\1us p99=\2us/p' <<<"$out")
    cpu_us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
    ratio=$(awk -v a="$rps" -v b="$full" 'BEGIN {printf "%.2f", a / b}')
    echo "keep-alive connections=$c: registrations/s=$rps errors=$errs $lat provd_cpu_us_per_registration=$cpu_us durable_registrations_vs_sqlite_full_1txn=${ratio}x"
done
