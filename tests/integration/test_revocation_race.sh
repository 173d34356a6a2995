#!/usr/bin/env bash
# A revocation answered while a registration it concerns is being decided (docs/admin-api.md,
# "Device certificates"): a device attested by its provd certificate whose registration is
# still waiting for its custom allocation webhook when that certificate is revoked is refused
# (401), and nothing of its registration is stored, over DPS and EST simplereenroll alike, also
# when other registrations of the device made it be decided again the most times a registration
# is. The holder of a revoked certificate so never leaves with a new one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SINK=${2:?usage: $0 BIN_DIR WEBHOOK_SINK}

provd_init --id-scope 0ne00RACE01
jq --arg ca "$CA" '. + {allocation_ca_file: $ca}' "$DATA/provd.json" >"$WORK/provd.json"
mv "$WORK/provd.json" "$DATA/provd.json"
provd_start
endpoint_add hub.example.com
O=$WORK/o
mkdir -p "$O"
jq -nc '{iotHubHostName: "hub.example.com"}' >"$WORK/alloc.reply"
sink_start alloc --reply-file "$WORK/alloc.reply"
URL="https://127.0.0.1:${SINK_PORT[alloc]}/allocate"

# enrollment REGID KEY: an individual symmetric-key enrollment with a custom allocation webhook.
enrollment() {
    local st
    st=$(admjson PUT "/enrollments/$1" "$(jq -nc --arg id "$1" --arg k "$2" --arg u "$URL" \
        '{registrationId: $id, allocationPolicy: "custom",
          attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k, secondaryKey: $k}},
          customAllocationDefinition: {webhookUrl: $u}}')")
    assert_eq 200 "$st" "PUT /enrollments/$1: $(cat "$WORK/body")"
}

# csr NAME CN: a P-256 key NAME.key and a CSR for CN, NAME.der (DER) and NAME.b64 (base64).
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$1.key" \
        -subj "/CN=$2" -outform DER -out "$O/$1.der" 2>/dev/null
    openssl base64 -A -in "$O/$1.der" -out "$O/$1.b64"
}

# calls: how many requests the allocation webhook has received.
calls() {
    if [ -f "$WORK/alloc.jsonl" ]; then wc -l <"$WORK/alloc.jsonl"; else echo 0; fi
}

# wait_call N: waits until the webhook has received its Nth request (the registration is then
# authenticated and being decided).
wait_call() {
    local _
    for _ in $(seq 200); do
        [ "$(calls)" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "the allocation webhook did not receive request $1"
}

# revoke_in_flight SERIAL CALLS: revokes SERIAL (keyCompromise) once the webhook has received
# request CALLS, while it holds that answer back.
revoke_in_flight() {
    wait_call "$2"
    assert_eq 200 "$(admjson POST "/certificates/$1/revoke" '{"reason":"keyCompromise"}')" \
        "revoke $1: $(cat "$WORK/body")"
}

# cert_total REGID: how many certificates the store lists for REGID.
cert_total() {
    assert_eq 200 "$(admreq GET "/certificates?registrationId=$1")" "GET /certificates"
    jb '.certificates | length'
}

# last_audit REGID: the last audit record about REGID, compact JSON.
last_audit() {
    audit_all "&subject=$1" | tail -n 1
}

# issued REGID KEY NAME: REGID registered with its key and a new CSR NAME; its certificate in
# NAME.pem (key NAME.key), and its serial printed.
issued() {
    local st
    csr "$3" "$1"
    st=$(register "$1" "$(sas_token "$2" "$1")" \
        "{\"registrationId\":\"$1\",\"csr\":\"$(cat "$O/$3.b64")\"}")
    assert_eq 200 "$st" "register $1 with a CSR: $(cat "$WORK/body")"
    jb '.registrationState.issuedCertificateChain[0]' | base64 -d |
        openssl x509 -inform DER -out "$O/$3.pem"
    openssl x509 -in "$O/$3.pem" -noout -serial | sed 's/.*=//'
}

# register_cert REGID NAME NEW: REGID registers attested by certificate NAME.pem with a new CSR
# NEW; the status goes to dps.status.
register_cert() {
    csr "$3" "$1"
    devreq PUT "/$SCOPE/registrations/$1/register?$API" --cert "$O/$2.pem" --key "$O/$2.key" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"registrationId\":\"$1\",\"csr\":\"$(cat "$O/$3.b64")\"}" \
        >"$WORK/dps.status"
}

# ---- DPS: a registration attested by the certificate being revoked ----
KEY=$(new_key)
enrollment dev-1 "$KEY"
S1=$(issued dev-1 "$KEY" c1)
# The webhook holds its next answers back long enough for the revocation to come first.
echo "200 3000" >"$WORK/alloc.control"
register_cert dev-1 c1 c2 &
DPS=$!
revoke_in_flight "$S1" 2
wait "$DPS" || fail "the registration with the revoked certificate did not complete"
assert_error 401 401002 "$(cat "$WORK/dps.status")" "registration with a certificate revoked meanwhile"
assert_eq 1 "$(cert_total dev-1)" "no certificate was issued after the revocation"
rec=$(last_audit dev-1)
assert_eq refused "$(jq -r .outcome <<<"$rec")" "audit outcome"
grep -qF "certificate $S1 is revoked for keyCompromise" <<<"$(jq -r .reason <<<"$rec")" ||
    fail "audit reason: $(jq -r .reason <<<"$rec")"

# ---- EST simplereenroll with the certificate being revoked ----
rm -f "$WORK/alloc.control"
EKEY=$(new_key)
enrollment est-1 "$EKEY"
csr e1 est-1
st=$(devreq POST /.well-known/est/simpleenroll -u "est-1:$EKEY" \
    -H 'Content-Type: application/pkcs10' --data-binary "@$O/e1.b64")
assert_eq 200 "$st" "simpleenroll est-1: $(cat "$WORK/body")"
openssl base64 -d -A -in "$WORK/body" | openssl pkcs7 -inform DER -print_certs -out "$O/e1.pem"
E1=$(openssl x509 -in "$O/e1.pem" -noout -serial | sed 's/.*=//')
echo "200 3000" >"$WORK/alloc.control"
csr e2 est-1
devreq POST /.well-known/est/simplereenroll --cert "$O/e1.pem" --key "$O/e1.key" \
    -H 'Content-Type: application/pkcs10' --data-binary "@$O/e2.b64" >"$WORK/est.status" &
ESTPID=$!
revoke_in_flight "$E1" "$(($(calls) + 1))"
wait "$ESTPID" || fail "the re-enrollment with the revoked certificate did not complete"
assert_eq 401 "$(cat "$WORK/est.status")" "simplereenroll with a certificate revoked meanwhile"
assert_eq 1 "$(cert_total est-1)" "no certificate was issued after the revocation"
rm -f "$WORK/alloc.control"

# ---- DPS: the revocation comes after other registrations of the device made it be decided
# again three times (the most a registration is) ----
KEY2=$(new_key)
enrollment dev-2 "$KEY2"
D1=$(issued dev-2 "$KEY2" d1)
n=$(calls)
echo "200 2000" >"$WORK/alloc.control"
register_cert dev-2 d1 d2 &
DPS=$!
wait_call $((n + 1))
for i in 1 2 3; do
    # Answered at once, it is stored while the one with the certificate waits.
    echo 200 >"$WORK/alloc.control"
    st=$(register dev-2 "$(sas_token "$KEY2" dev-2)" '{"registrationId":"dev-2"}')
    assert_eq 200 "$st" "registration $i of dev-2 meanwhile: $(cat "$WORK/body")"
    echo "200 2000" >"$WORK/alloc.control"
    wait_call $((n + 2 * i + 1))
done
revoke_in_flight "$D1" $((n + 7))
wait "$DPS" || fail "the registration with the revoked certificate did not complete"
assert_error 401 401002 "$(cat "$WORK/dps.status")" \
    "registration decided again three times, with a certificate revoked meanwhile"
assert_eq 1 "$(cert_total dev-2)" "no certificate was issued to dev-2 after the revocation"
grep -qF "certificate $D1 is revoked" <<<"$(jq -r .reason <<<"$(last_audit dev-2)")" ||
    fail "audit reason: $(last_audit dev-2)"
rm -f "$WORK/alloc.control"

provd_stop || fail "provd did not stop cleanly"
echo "PASS: revocation_race"
