#!/usr/bin/env bash
# provbench against a real provd, for a few seconds: N devices of one group register with no
# error over persistent connections and over one connection each, provd records exactly N
# registrations and N audit records per run, devices sending CSRs get their certificates, and
# provbench counts the failures it is shown (wrong key, untrusted server certificate, bad
# options) and exits non-zero for them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=200
provd_init
provd_start

GROUP=fleet-bench
GK=$(new_key 64)
endpoint_add hub-a.example.com hub-b.example.com
st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -nc --arg g "$GROUP" --arg k "$GK" '{
    enrollmentGroupId: $g,
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubs: ["hub-a.example.com", "hub-b.example.com"]}')")
assert_eq 200 "$st" "PUT group: $(cat "$WORK/body")"

# counts: "REGISTRATIONS AUDIT_RECORDS" from GET /info.
counts() {
    assert_eq 200 "$(admreq GET /info)" "GET /info"
    jb '[.counts.registrations, .counts.auditRecords] | join(" ")'
}

# pb EXPECTED_EXIT ARGS...: runs provbench with the common options; its JSON result goes to
# $WORK/pb.json, its stderr to $WORK/pb.err.
pb() {
    local want=$1 rc=0
    shift
    "$BIN/provbench" --endpoint "$DEV" --ca-file "$CA" --id-scope "$SCOPE" --group-key "$GK" \
        --server-pid "$PROVD_PID" --timeout 20 --json "$@" >"$WORK/pb.json" 2>"$WORK/pb.err" ||
        rc=$?
    [ "$rc" = "$want" ] ||
        fail "provbench $*: exit $rc, expected $want: $(cat "$WORK/pb.json" "$WORK/pb.err")"
}
# pbj FILTER: jq -r FILTER over the last provbench result.
pbj() {
    jq -r "$1" "$WORK/pb.json"
}

# Keep-alive: 16 connections carry all N registrations.
read -r regs audit <<<"$(counts)"
pb 0 --mode keepalive --devices $N --concurrency 16 --prefix ka
assert_eq "keepalive $N $N 0 16" "$(pbj '[.mode, .done, .ok, .errors, .connections] | join(" ")')" \
    "keep-alive result"
assert_eq "registration" "$(pbj .unit)" "keep-alive unit"
[ "$(pbj .rate_per_s)" != 0 ] || fail "keep-alive rate is 0"
[ "$(pbj .cpu.provd_us_per_op)" != null ] || fail "no provd CPU figure"
[ "$(pbj '.latency_us.p50 <= .latency_us.p99 and .latency_us.p99 <= .latency_us.max')" = true ] ||
    fail "latency percentiles out of order: $(jq -c .latency_us "$WORK/pb.json")"
assert_eq "$((regs + N)) $((audit + N))" "$(counts)" "registrations and audits after keep-alive"

# One new connection per device.
read -r regs audit <<<"$(counts)"
pb 0 --mode newconn --devices $N --concurrency 8 --prefix nc
assert_eq "newconn $N $N 0 $N" "$(pbj '[.mode, .done, .ok, .errors, .connections] | join(" ")')" \
    "new-connection result"
assert_eq "$((regs + N)) $((audit + N))" "$(counts)" "registrations and audits after newconn"

# The same devices again, for a duration: re-registrations are answered "assigned" too.
pb 0 --mode keepalive --devices 20 --concurrency 4 --prefix ka --duration 0.5
if [ "$(pbj .ok)" -eq 0 ] || [ "$(pbj .errors)" != 0 ]; then
    fail "duration run: $(cat "$WORK/pb.json")"
fi
assert_eq "$((regs + N))" "$(counts | cut -d' ' -f1)" "registrations after re-registering"

# Certificate signing requests: every device sends one and every answer carries its chain; provd
# issued exactly one certificate to each device.
read -r regs audit <<<"$(counts)"
pb 0 --mode keepalive --devices 50 --concurrency 8 --prefix csr --csr
assert_eq "issuance true 50 50 0" "$(pbj '[.unit, .csr, .done, .ok, .errors] | join(" ")')" \
    "CSR result"
assert_eq 200 "$(admreq GET '/certificates?limit=1000')" "GET /certificates"
assert_eq 50 "$(jb '[.certificates[] | select(.registrationId | startswith("csr-"))] | length')" \
    "certificates issued to csr-N"
assert_eq "$((regs + 50))" "$(counts | cut -d' ' -f1)" "registrations after the CSR run"
pb 2 --mode handshake --devices 2 --csr

# Bare handshakes.
pb 0 --mode handshake --devices 20 --concurrency 4
assert_eq "handshake 20 20" "$(pbj '[.unit, .ok, .connections] | join(" ")')" "handshake result"

# A wrong group key: every registration is refused with 401 and counted as such.
GK=$(new_key 64)
read -r regs audit <<<"$(counts)"
pb 1 --devices 5 --concurrency 2 --prefix wrong
assert_eq "5 0 5" "$(pbj '[.done, .ok, .error_kinds.http["401"]] | join(" ")')" "wrong key result"
grep -q "HTTP 401" "$WORK/pb.err" || fail "no 401 described on stderr: $(cat "$WORK/pb.err")"
assert_eq "$regs" "$(counts | cut -d' ' -f1)" "registrations after refused devices"

# A server certificate that does not chain to --ca-file: TLS errors, nothing registered.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca \
    -keyout "$WORK/other.key" -out "$WORK/other.pem" -days 1 2>/dev/null
CA_GOOD=$CA
CA=$WORK/other.pem
pb 1 --devices 3 --concurrency 1 --mode newconn --prefix untrusted
assert_eq "3 0 3" "$(pbj '[.done, .ok, .error_kinds.tls] | join(" ")')" "untrusted server result"
grep -q "certificate" "$WORK/pb.err" || fail "no certificate error on stderr: $(cat "$WORK/pb.err")"
CA=$CA_GOOD

# Nothing listening: connection errors.
DEV_GOOD=$DEV
DEV=https://127.0.0.1:1
pb 1 --devices 2 --concurrency 1 --prefix refused
assert_eq "2 0 2" "$(pbj '[.done, .ok, .error_kinds.connect] | join(" ")')" "refused result"
DEV=$DEV_GOOD

# Bad options are refused with exit status 2 and a reason.
for args in "--devices 0" "--mode fast" "--concurrency x" "--duration -1" "--prefix -bad" \
    "--endpoint http://127.0.0.1:1" "--bogus"; do
    rc=0
    # shellcheck disable=SC2086
    "$BIN/provbench" --endpoint "$DEV" --ca-file "$CA" --id-scope "$SCOPE" --group-key "$GK" \
        $args >/dev/null 2>"$WORK/pb.err" || rc=$?
    assert_eq 2 "$rc" "exit status for $args"
    grep -q "^provbench: " "$WORK/pb.err" || fail "no reason given for $args"
done
"$BIN/provbench" --help | grep -q -- "--concurrency" || fail "--help"

echo "provbench smoke test passed"
