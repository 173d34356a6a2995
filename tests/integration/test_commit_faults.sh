#!/usr/bin/env bash
# Certificates issued and revoked when the store's commit fails at its fsync (the sync_fault
# library preloaded into provd makes one sync of the write-ahead log fail each time the test
# asks): the registration with a CSR, the EST enrollment and the revocation are answered 500 and
# none of them is stored, neither while provd goes on running nor after it is killed (SIGKILL)
# and started again, when SQLite's recovery reads the write-ahead log anew. The store stays
# sound and provd serves as before.
#
# Usage: test_commit_faults.sh BIN_DIR SYNC_FAULT_LIBRARY
source "$(dirname "$0")/lib.sh"

FAULT=${2:?usage: $0 BIN_DIR SYNC_FAULT_LIBRARY}
TRIGGER=$WORK/sync-fail

# start: provd with sync_fault preloaded. An AddressSanitizer build of provd must be told that
# its runtime is no longer the first library loaded.
start() {
    LD_PRELOAD=$FAULT PROVD_TEST_SYNC_FAIL=$TRIGGER \
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 provd_start
}

# restart: provd killed (nothing of it runs at exit) and started again.
restart() {
    provd_stop KILL
    start
}

# fail_next_sync: the next sync of the write-ahead log fails.
fail_next_sync() {
    touch "$TRIGGER"
}

# sync_failed WHAT: the sync asked for has failed.
sync_failed() {
    [ ! -e "$TRIGGER" ] || fail "$1: no sync of the write-ahead log failed"
}

# csr NAME CN: a P-256 key NAME.key and a CSR for CN, NAME.der (DER) and NAME.b64 (base64).
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$1.key" \
        -subj "/CN=$2" -outform DER -out "$O/$1.der" 2>/dev/null
    openssl base64 -A -in "$O/$1.der" -out "$O/$1.b64"
}

# register_csr REGID: registers REGID with its group-derived key and a new CSR.
register_csr() {
    csr "$1" "$1"
    devreq PUT "/$SCOPE/registrations/$1/register?$API" \
        -H "Authorization: $(sas_token "$(b64_hmac "$GKEY" "$1")" "$1")" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"registrationId\":\"$1\",\"csr\":\"$(cat "$O/$1.b64")\"}"
}

# certs REGID: how many certificates the store lists for REGID.
certs() {
    assert_eq 200 "$(admreq GET "/certificates?registrationId=$1")" "GET /certificates of $1"
    jb '.certificates | length'
}

# crl_serials: the serial numbers the CRL served lists, one a line.
crl_serials() {
    assert_eq 200 "$(devreq GET /crl)" "GET /crl"
    openssl crl -inform DER -in "$WORK/body" -noout -text | sed -n 's/ *Serial Number: //p'
}

# not_stored REGID: neither a registration of REGID nor a certificate, nor an accepted audit
# record about it.
not_stored() {
    assert_eq 404 "$(admreq GET "/registrations/$1")" "$1: registration"
    assert_eq 0 "$(certs "$1")" "$1: certificates"
    assert_eq 0 "$(audit_all "&subject=$1" | jq -s 'map(select(.outcome == "accepted")) | length')" \
        "$1: accepted audit records"
}

provd_init
O=$WORK/o
mkdir -p "$O"
start
endpoint_add hub.example.com
GKEY=$(new_key)
st=$(admjson PUT /enrollmentGroups/fleet "{\"enrollmentGroupId\":\"fleet\",\"attestation\":{
    \"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$GKEY\"}}}")
assert_eq 200 "$st" "PUT /enrollmentGroups/fleet: $(cat "$WORK/body")"
assert_eq 200 "$(register_csr dev-1)" "register dev-1: $(cat "$WORK/body")"
S1=$(jb '.registrationState.issuedCertificateChain[0]' | base64 -d |
    openssl x509 -inform DER -noout -serial | sed 's/.*=//')

# ---- A registration with a CSR ----
fail_next_sync
st=$(register_csr dev-2)
sync_failed "register dev-2"
assert_error 500 500001 "$st" "register dev-2 while its commit fails"
not_stored dev-2
restart
not_stored dev-2

# ---- An EST enrollment ----
csr est-1 est-1
fail_next_sync
st=$(devreq POST /.well-known/est/simpleenroll -u "est-1:$(b64_hmac "$GKEY" est-1)" \
    -H 'Content-Type: application/pkcs10' --data-binary "@$O/est-1.b64")
sync_failed "simpleenroll est-1"
assert_eq 500 "$st" "simpleenroll while its commit fails: $(cat "$WORK/body")"
restart
not_stored est-1

# ---- A revocation ----
fail_next_sync
st=$(admjson POST "/certificates/$S1/revoke" '{"reason":"keyCompromise"}')
sync_failed "revoke $S1"
assert_error 500 500001 "$st" "revoke while its commit fails"
[ -z "$(crl_serials)" ] || fail "the CRL lists a revocation answered as failed"
restart
assert_eq 200 "$(admreq GET "/certificates/$S1")" "GET /certificates/$S1"
assert_eq valid "$(jb .status)" "$S1 after a revocation answered as failed"
[ -z "$(crl_serials)" ] || fail "the CRL lists a revocation answered as failed, after a restart"

# ---- The store is sound, and provd serves as before ----
assert_eq ok "$(sqlite3 "$DATA/provd.db" 'PRAGMA integrity_check')" "integrity_check"
assert_eq 200 "$(register_csr dev-2)" "register dev-2 again: $(cat "$WORK/body")"
assert_eq 1 "$(certs dev-2)" "certificates of dev-2"
assert_eq 200 "$(admjson POST "/certificates/$S1/revoke" '{}')" "revoke $S1 again"
[ "$(crl_serials)" = "$S1" ] || fail "the CRL lists $S1"

provd_stop || fail "provd did not stop cleanly"
echo "PASS: commit_faults"
