#!/usr/bin/env bash
# `make bench`: provd's rates on this machine beside the physics that bound them.
# Usage: bench/run.sh [BUILD_DIR]
# Environment (defaults in brackets):
#   DURATION   seconds of each provbench run [10]
#   KEEPALIVE  keep-alive concurrency levels ["16 64 256"]
#   NEWCONN    new-connection (and bare handshake) concurrency levels ["16 64 256"]
#   CSR        keep-alive concurrency levels with a CSR in every registration ["64 256"]; provbench
#              makes keys and requests for at most 20000 devices before the run and cycles
#              through those, so runs longer than that many issuances re-register devices
#   REVOKED    certificates issued by the CSR levels that are marked revoked before the CRL is
#              timed [40000]
#   DEVICES    simulated devices per level; each level has its own prefix, so that every
#              registration is a device's first one unless a level cycles through [1000000]
#   WORKERS    provd worker threads [nproc]
#   RESULTS    file to append every provbench JSON result to [none]
#   PERF_DIR   when set, `perf record` provd during the middle keep-alive, certificate issuance
#              and new-connection levels into that directory and print the top functions
# Starts provd on a temporary data directory on loopback, creates an enrollment group, measures
# the physics (bench/physics), TLS handshakes against provd (openssl s_time, provbench), then
# registrations with provbench, keep-alive and one connection per device. The load generator
# runs on the same machine; its own CPU time is reported beside provd's.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
DURATION=${DURATION:-10}
KEEPALIVE=${KEEPALIVE:-"16 64 256"}
NEWCONN=${NEWCONN:-"16 64 256"}
CSR=${CSR:-"64 256"}
REVOKED=${REVOKED:-40000}
DEVICES=${DEVICES:-1000000}
WORKERS=${WORKERS:-$(nproc)}
RESULTS=${RESULTS:-}
PERF_DIR=${PERF_DIR:-}
for tool in jq openssl curl awk sqlite3; do
    command -v $tool >/dev/null || {
        echo "bench: $tool is needed (scripts/deps.sh --bench)" >&2
        exit 1
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/provd-bench.XXXXXX")
PID=
PERF_PID=
cleanup() {
    for p in $PERF_PID $PID; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BUILD/bin/provd" init --data-dir "$WORK/data" >/dev/null 2>"$WORK/init.log"
"$BUILD/bin/provd" serve --data-dir "$WORK/data" --device-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --port-file "$WORK/ports.json" --workers "$WORKERS" \
    --log-level warn 2>"$WORK/provd.log" &
PID=$!
for _ in $(seq 200); do
    [ -s "$WORK/ports.json" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/provd.log" >&2; exit 1; }
    sleep 0.05
done
[ -s "$WORK/ports.json" ] || { echo "bench: provd did not start" >&2; exit 1; }
PORT=$(jq -r .device "$WORK/ports.json")
DEV=https://127.0.0.1:$PORT
ADM=https://127.0.0.1:$(jq -r .admin "$WORK/ports.json")
SCOPE=$(jq -r .id_scope "$WORK/data/provd.json")
CA=$WORK/data/ca/root.pem
KEY=$(head -c 64 /dev/urandom | base64 -w0)

# admin METHOD PATH BODY: one admin API call that must succeed.
admin() {
    curl -sSf --cacert "$CA" -o /dev/null -X "$1" -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" "$ADM$2" -d "$3"
}
# The group's devices are spread over two endpoints by a hash of their registration ID.
admin PUT /endpoints/hub-a.example.com '{}'
admin PUT /endpoints/hub-b.example.com '{}'
admin PUT /enrollmentGroups/bench "$(jq -nc --arg k "$KEY" '{enrollmentGroupId: "bench",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubs: ["hub-a.example.com", "hub-b.example.com"]}')"

HZ=$(getconf CLK_TCK)
# provd's user + system CPU time in µs (fields 14 and 15 of /proc/PID/stat).
provd_cpu_us() {
    awk -v hz="$HZ" '{ sub(/.*\) /, ""); print ($12 + $13) * 1000000 / hz }' "/proc/$PID/stat"
}
now_us() { echo $(($(date +%s%N) / 1000)); }
# div A B [DECIMALS]: A / B, "n/a" when B is 0 or empty.
div() {
    awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN { if (b > 0) printf "%.*f", d, a / b
        else printf "n/a" }'
}
# pct A B: A as a percentage of B.
pct() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else printf "n/a" }'
}
ms() { div "$1" 1000 2; }

echo "== machine"
echo "  $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
    "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  provd $WORKERS workers; load generator on the same machine over loopback;" \
    "$(date -u +%Y-%m-%dT%H:%MZ)"

echo "== physics (one core each; bench/physics)"
physics=$("$BUILD/bin/physics" "$WORK" "$WORK/data/tls/server.pem" "$WORK/data/tls/server.key" \
    "$CA")
phys() { sed -n "s/^physics $1=//p" <<<"$physics"; }
SQL_FULL=$(phys sqlite_insert_full_1txn_per_s)
SQL_BATCH=$(phys sqlite_insert_full_1000txn_per_s)
HS_SRV_US=$(phys tls_handshake_server_us)
SIGN_RATE=$(phys ecdsa_p256_sign_per_s)
VERIFY_RATE=$(phys ecdsa_p256_verify_per_s)
printf '  %-50s %9s/s\n' \
    "HMAC-SHA256 of 64 bytes (common/hmac.c)" "$(phys hmac_sha256_64B_per_s)" \
    "SQLite WAL insert, 1 per txn, synchronous=FULL" "$SQL_FULL" \
    "SQLite WAL insert, 1 per txn, synchronous=NORMAL" "$(phys sqlite_insert_normal_1txn_per_s)" \
    "SQLite WAL insert, 1000 per txn, synchronous=FULL" "$SQL_BATCH" \
    "ECDSA P-256 sign" "$SIGN_RATE" \
    "ECDSA P-256 verify" "$VERIFY_RATE" \
    "X25519 key generation + agreement" "$(phys x25519_keygen_derive_per_s)" \
    "P-256 key from its SPKI, OpenSSL d2i_PUBKEY" "$(phys p256_pubkey_d2i_per_s)" \
    "P-256 key from its SPKI, daemon/spki.c" "$(phys p256_pubkey_spki_per_s)"
echo "  full TLS handshake in memory (OpenSSL, provd's certificate): server $HS_SRV_US us" \
    "($(div 1000000 "$HS_SRV_US" 0) per core-second), verifying client" \
    "$(phys tls_handshake_client_us) us"

failed=0
# run_provbench MODE CONCURRENCY PREFIX [OPTION...]: one provbench run; its JSON result is in $R.
run_provbench() {
    local rc=0
    R=$("$BUILD/bin/provbench" --endpoint "$DEV" --ca-file "$CA" --id-scope "$SCOPE" \
        --group-key "$KEY" --devices "$DEVICES" --concurrency "$2" --mode "$1" \
        --duration "$DURATION" --prefix "$3" --server-pid "$PID" --json "${@:4}") || rc=$?
    if [ -n "$RESULTS" ]; then echo "$R" >>"$RESULTS"; fi
    if [ $rc -ne 0 ]; then
        failed=1
        echo "  provbench $1 concurrency $2: exit $rc, errors $(jq -c .error_kinds <<<"$R" || true)"
    fi
}
j() { jq -r "$1" <<<"$R"; }
# summary: the common part of a registration run's line.
summary() {
    echo "$(j '.rate_per_s | floor')/s, latency p50 $(ms "$(j .latency_us.p50)") ms" \
        "p99 $(ms "$(j .latency_us.p99)") ms; CPU per registration: provd" \
        "$(j .cpu.provd_us_per_op) us ($(j .cpu.provd_cores) cores), provbench" \
        "$(j .cpu.provbench_us_per_op) us; $(others); errors $(j .errors)"
}
# others: how busy the machine was, and how much of that was neither provd nor provbench.
others() {
    echo "machine $(j .cpu.machine_busy_cores) cores busy, $(j .cpu.other_cores) by other programs"
}
middle() {
    local a
    read -r -a a <<<"$1"
    echo "${a[$(((${#a[@]} - 1) / 2))]}"
}
# perf_start NAME / perf_stop NAME: profile provd during one run when PERF_DIR is set.
perf_start() {
    [ -n "$PERF_DIR" ] || return 0
    mkdir -p "$PERF_DIR"
    perf record -F 999 --call-graph dwarf,16384 -o "$PERF_DIR/provd-$1.data" -p "$PID" \
        2>"$PERF_DIR/provd-$1.log" &
    PERF_PID=$!
    sleep 1
}
perf_stop() {
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
    echo "  perf: provd's functions with the most samples (self), $PERF_DIR/provd-$1.data:"
    perf report -i "$PERF_DIR/provd-$1.data" --no-children --stdio -g none --percent-limit 1.5 \
        2>/dev/null | grep -E '^ +[0-9]' | head -25 | sed 's/^/    /'
}

# busy_jiffies: all CPUs' busy time from /proc/stat (everything but idle and iowait).
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

echo "== TLS handshakes against provd (full handshakes, no session resumption)"
before=$(provd_cpu_us)
b0=$(busy_jiffies)
t0=$(now_us)
st=$(openssl s_time -connect "127.0.0.1:$PORT" -new -time 5 2>&1) || true
t1=$(now_us)
b1=$(busy_jiffies)
after=$(provd_cpu_us)
conns=$(sed -n 's/^\([0-9]*\) connections in [0-9.]*s;.*/\1/p' <<<"$st" | head -n1)
STIME_RATE=0
if [ -n "$conns" ] && [ "$conns" -gt 0 ]; then
    STIME_RATE=$(div "$conns" "$(div $((t1 - t0)) 1000000 6)")
    STIME_US=$(div $((after - before)) "$conns")
    echo "  openssl s_time -new (one connection at a time): $conns in" \
        "$(div $((t1 - t0)) 1000000 2) s = $STIME_RATE/s; provd $STIME_US us CPU per handshake" \
        "= $(div 1000000 "$STIME_US" 0) handshakes per core-second; machine" \
        "$(div "$(((b1 - b0) * 1000000 / HZ))" $((t1 - t0)) 2) cores busy"
else
    echo "  openssl s_time failed: $st"
    failed=1
fi
declare -A HS_RATE HS_US
for c in $NEWCONN; do
    run_provbench handshake "$c" "hs$c"
    HS_RATE[$c]=$(j .rate_per_s)
    HS_US[$c]=$(j .cpu.provd_us_per_op)
    echo "  provbench handshake, concurrency $c: $(j '.rate_per_s | floor')/s," \
        "p50 $(ms "$(j .latency_us.p50)") ms; provd ${HS_US[$c]} us CPU per handshake" \
        "($(div 1000000 "${HS_US[$c]}" 0) per core-second), provbench" \
        "$(j .cpu.provbench_us_per_op) us; $(others)"
done

echo "== keep-alive registrations (persistent TLS connections; each registration durable)"
BEST_KA=0
declare -A KA_US
for c in $KEEPALIVE; do
    [ "$c" != "$(middle "$KEEPALIVE")" ] || perf_start keepalive
    run_provbench keepalive "$c" "ka$c"
    [ "$c" != "$(middle "$KEEPALIVE")" ] || perf_stop keepalive
    rate=$(j .rate_per_s)
    KA_US[$c]=$(awk -v p="$(j .cpu.provd_us_per_op)" -v b="$(j .cpu.provbench_us_per_op)" \
        'BEGIN { printf "%.1f", p + b }')
    BEST_KA=$(awk -v a="$rate" -v b="$BEST_KA" 'BEGIN { print (a > b ? a : b) }')
    echo "  concurrency $c: $(summary)"
    echo "      = $(div "$rate" "$SQL_FULL")x the SQLite rate at 1 insert per transaction," \
        "$(pct "$rate" "$SQL_BATCH") of the rate at 1000 per transaction"
done

echo "== certificate issuance (keep-alive, CSR in every registration)"
# What provd's crypto needs per certificate: one P-256 verify (the CSR's proof of possession) and
# one P-256 sign (the certificate), at physics' rates from this run.
CRYPTO_US=$(awk -v s="$SIGN_RATE" -v v="$VERIFY_RATE" 'BEGIN { if (s > 0 && v > 0)
    printf "%.1f", 1e6 / s + 1e6 / v; else printf "0" }')
CRYPTO_RATE=$(div 1000000 "$CRYPTO_US" 0)
CORES=$(nproc)
echo "  crypto per certificate (physics, one core): 1 ECDSA P-256 verify + 1 sign = $CRYPTO_US us" \
    "= $CRYPTO_RATE certificates per core-second, $((CRYPTO_RATE * CORES))/s on $CORES cores"
BEST_CSR=0
CEILING=0
for c in $CSR; do
    [ "$c" != "$(middle "$CSR")" ] || perf_start csr
    run_provbench keepalive "$c" "csr$c" --csr
    [ "$c" != "$(middle "$CSR")" ] || perf_stop csr
    rate=$(j .rate_per_s)
    share=$(div "$rate" $((CRYPTO_RATE * CORES)) 4)
    BEST_CSR=$(awk -v a="$share" -v b="$BEST_CSR" 'BEGIN { print (a > b ? a : b) }')
    echo "  concurrency $c: $(j '.rate_per_s | floor') issuances/s, latency p50" \
        "$(ms "$(j .latency_us.p50)") ms p99 $(ms "$(j .latency_us.p99)") ms; CPU per issuance:" \
        "provd $(j .cpu.provd_us_per_op) us ($(j .cpu.provd_cores) cores), provbench" \
        "$(j .cpu.provbench_us_per_op) us; $(others); errors $(j .errors)"
    echo "      provd CPU per issuance = $(div "$(j .cpu.provd_us_per_op)" "$CRYPTO_US" 2)x the" \
        "crypto's $CRYPTO_US us (the sign + verify are $(pct "$CRYPTO_US" \
            "$(j .cpu.provd_us_per_op)") of it); issuances/s = $(pct "$rate" \
            $((CRYPTO_RATE * CORES))) of the crypto-only bound on $CORES cores"
    # The most any issuance could reach here: a keep-alive registration at this concurrency
    # (provd and provbench, measured above) plus nothing but the sign and the verify.
    [ -n "${KA_US[$c]:-}" ] || continue
    ceiling=$(div $((CORES * 1000000)) "$(awk -v a="${KA_US[$c]}" -v b="$CRYPTO_US" \
        'BEGIN { print a + b }')" 0)
    CEILING=$(awk -v a="$(div "$ceiling" $((CRYPTO_RATE * CORES)) 4)" -v b="$CEILING" \
        'BEGIN { print (a > b ? a : b) }')
    echo "      an issuance adding only its crypto to a keep-alive registration at concurrency" \
        "$c (${KA_US[$c]} us of provd and provbench CPU) would reach $ceiling/s on $CORES cores" \
        "= $(pct "$ceiling" $((CRYPTO_RATE * CORES))) of the crypto-only bound"
done

echo "== revocation and the CRL"
# The certificates issued above, up to REVOKED of them, are marked revoked in the store directly
# (sqlite3, no audit records: a set-up, not what is measured); then one revocation through the
# admin API, the CRL request that signs the CRL listing them all, and a request served from memory.
sqlite3 "$WORK/data/provd.db" "PRAGMA busy_timeout = 10000; UPDATE certificates SET
    status = 'revoked', revoked_at = strftime('%s', 'now'), reason = 'keyCompromise' WHERE rowid IN
    (SELECT rowid FROM certificates WHERE status = 'valid' LIMIT $REVOKED - 1);" >/dev/null
last=$(sqlite3 "$WORK/data/provd.db" "SELECT serial FROM certificates WHERE status = 'valid' LIMIT 1")
if [ -z "$last" ]; then
    echo "  no certificate left to revoke (CSR=\"$CSR\" issued none?)"
else
    t_revoke=$(curl -sSf --cacert "$CA" -o /dev/null -w '%{time_total}' -X POST \
        -H 'Content-Type: application/json' -d '{"reason": "keyCompromise"}' \
        -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" \
        "$ADM/certificates/$last/revoke") || failed=1
    t_sign=$(curl -sSf --cacert "$CA" -o "$WORK/crl.der" -w '%{time_total}' "$DEV/crl") || failed=1
    t_mem=$(curl -sSf --cacert "$CA" -o /dev/null -w '%{time_total}' "$DEV/crl") || failed=1
    entries=$(openssl crl -inform DER -in "$WORK/crl.der" -noout -text | grep -c 'Serial Number')
    echo "  $entries revoked certificates: a revocation answered in $(div "$t_revoke" 0.001 1) ms;" \
        "the next GET /crl, which signs the CRL ($(($(stat -c %s "$WORK/crl.der") / 1024)) KiB)," \
        "$(div "$t_sign" 0.001 1) ms; the one after (from memory) $(div "$t_mem" 0.001 1) ms" \
        "(curl's total time, TLS handshake included)"
fi

echo "== new-connection registrations (a new TLS connection and full handshake per device)"
BEST_NC=0
for c in $NEWCONN; do
    [ "$c" != "$(middle "$NEWCONN")" ] || perf_start newconn
    run_provbench newconn "$c" "nc$c"
    [ "$c" != "$(middle "$NEWCONN")" ] || perf_stop newconn
    rate=$(j .rate_per_s)
    share=$(div "$rate" "${HS_RATE[$c]}" 4)
    BEST_NC=$(awk -v a="$share" -v b="$BEST_NC" 'BEGIN { print (a > b ? a : b) }')
    echo "  concurrency $c: $(summary)"
    echo "      = $(pct "$rate" "${HS_RATE[$c]}") of the bare handshake rate at concurrency $c," \
        "$(pct "$rate" "$STIME_RATE") of openssl s_time's; the handshake is" \
        "$(pct "${HS_US[$c]}" "$(j .cpu.provd_us_per_op)") of provd's CPU per registration"
done

echo "== targets"
echo "  keep-alive, best level: $(div "$BEST_KA" 1 0)/s (target at least 10000, aim 20000)"
echo "  one connection per device, best level: $(pct "$BEST_NC" 1) of the bare handshake rate" \
    "at the same concurrency (target at least 70%)"
ceiling_note=
if [ "$CEILING" != 0 ]; then
    ceiling_note="; an issuance costing a registration and its crypto alone: $(pct "$CEILING" 1)"
fi
echo "  certificate issuance, best level: $(pct "$BEST_CSR" 1) of the rate ECDSA sign + verify" \
    "alone allow on $CORES cores (aim at least 50%)$ceiling_note"
if [ $failed -ne 0 ]; then
    echo "bench: some runs had errors (above)" >&2
    exit 1
fi
