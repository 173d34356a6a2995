#!/usr/bin/env bash
# A registration stays with the enrollment it was made under (docs/device-api.md, "Which
# enrollment a device belongs to"): another group's key cannot take a device over or read its
# state while that group exists; an individual enrollment takes it over; a deleted registration
# or group frees the device; a disabled enrollment's devices cannot read their state; a device
# that two groups attest stays in the one it is registered under.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
provd_start
endpoint_add hub-a.example.com hub-b.example.com

# group ID KEY HUB: a symmetric-key group whose devices go to HUB.
group() {
    st=$(admjson PUT "/enrollmentGroups/$1" "$(jq -nc --arg g "$1" --arg k "$2" --arg h "$3" \
        '{enrollmentGroupId: $g, attestation: {type: "symmetricKey",
          symmetricKey: {primaryKey: $k}}, iotHubs: [$h],
          initialTwin: {properties: {desired: {secret: $g}}}}')")
    assert_eq 200 "$st" "PUT group $1: $(cat "$WORK/body")"
}
# status REGID DEVICE_KEY: the device looks up its registration state.
status() {
    devreq POST "/$SCOPE/registrations/$1?$API" -H "Authorization: $(sas_token "$2" "$1")" \
        -H 'Content-Type: application/json' --data-binary "{\"registrationId\":\"$1\"}"
}
# reg REGID DEVICE_KEY: the device registers.
reg() {
    devreq PUT "/$SCOPE/registrations/$1/register?$API" -H "Authorization: $(sas_token "$2" "$1")" \
        -H 'Content-Type: application/json' --data-binary "{\"registrationId\":\"$1\"}"
}

KA=$(new_key 32)
KB=$(new_key 32)
group grp-a "$KA" hub-a.example.com
group grp-b "$KB" hub-b.example.com

# ---- registered under grp-a: grp-b's key neither takes the device nor reads its state ----
st=$(reg dev-x "$(b64_hmac "$KA" dev-x)")
assert_eq 200 "$st" "register dev-x through grp-a: $(cat "$WORK/body")"
assert_eq grp-a "$(jb .registrationState.symmetricKey.enrollmentGroupId)" "dev-x: its group"
st=$(reg dev-x "$(b64_hmac "$KB" dev-x)")
assert_error 403 403004 "$st" "register dev-x through grp-b"
assert_match 'registered under another enrollment' "$(jb .message)" "grp-b takeover: message"
st=$(status dev-x "$(b64_hmac "$KB" dev-x)")
assert_error 403 403004 "$st" "status of dev-x through grp-b"
grep -q grp-a "$WORK/body" && fail "grp-b's status refusal names grp-a"
st=$(status dev-x "$(b64_hmac "$KA" dev-x)")
assert_eq 200 "$st" "status of dev-x through grp-a"
assert_eq hub-a.example.com "$(jb .assignedHub)" "dev-x stayed on grp-a's hub"
audit_all "&subject=dev-x" | jq -se 'any(.[]; .event == "device.register" and
    .outcome == "refused" and .errorCode == 403004)' >/dev/null ||
    fail "no audit record of the refused takeover"

# ---- a disabled enrollment's devices cannot read their state ----
st=$(admjson PUT /enrollmentGroups/grp-a "$(jq -nc --arg k "$KA" '{enrollmentGroupId: "grp-a",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubs: ["hub-a.example.com"], provisioningStatus: "disabled"}')")
assert_eq 200 "$st" "disable grp-a: $(cat "$WORK/body")"
st=$(status dev-x "$(b64_hmac "$KA" dev-x)")
assert_error 403 403001 "$st" "status of dev-x with grp-a disabled"
grep -q secret "$WORK/body" && fail "a disabled group's device read its state"
st=$(reg dev-x "$(b64_hmac "$KB" dev-x)")
assert_error 403 403004 "$st" "register dev-x through grp-b while grp-a is disabled"

# ---- the operator deletes the registration: grp-b may take the device ----
st=$(admreq DELETE /registrations/dev-x)
assert_eq 204 "$st" "DELETE registration dev-x: $(cat "$WORK/body")"
st=$(reg dev-x "$(b64_hmac "$KB" dev-x)")
assert_eq 200 "$st" "register dev-x through grp-b once its registration is deleted"
assert_eq grp-b "$(jb .registrationState.symmetricKey.enrollmentGroupId)" "dev-x: its new group"

# ---- an individual enrollment takes the device over; grp-b's key no longer attests it ----
KI=$(new_key 32)
st=$(admjson PUT /enrollments/dev-x "$(jq -nc --arg k "$KI" '{registrationId: "dev-x",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubHostName: "hub-a.example.com"}')")
assert_eq 200 "$st" "PUT enrollment dev-x: $(cat "$WORK/body")"
st=$(reg dev-x "$KI")
assert_eq 200 "$st" "register dev-x through its individual enrollment: $(cat "$WORK/body")"
assert_eq null "$(jb .registrationState.symmetricKey.enrollmentGroupId)" "dev-x: no group"
st=$(status dev-x "$(b64_hmac "$KB" dev-x)")
assert_error 401 401002 "$st" "status of dev-x through grp-b after the individual enrollment"

# ---- the enrollment is deleted: a group may take the device ----
st=$(admreq DELETE /enrollments/dev-x)
assert_eq 204 "$st" "DELETE enrollment dev-x: $(cat "$WORK/body")"
st=$(status dev-x "$(b64_hmac "$KB" dev-x)")
assert_error 403 403004 "$st" "status through grp-b of a device registered individually"
st=$(reg dev-x "$(b64_hmac "$KB" dev-x)")
assert_eq 200 "$st" "register dev-x through grp-b once its enrollment is deleted"

# ---- the group is deleted: another group may take its devices ----
st=$(reg dev-y "$(b64_hmac "$KB" dev-y)")
assert_eq 200 "$st" "register dev-y through grp-b"
KC=$(new_key 32)
group grp-c "$KC" hub-a.example.com
st=$(reg dev-y "$(b64_hmac "$KC" dev-y)")
assert_error 403 403004 "$st" "register dev-y through grp-c"
st=$(admreq DELETE /enrollmentGroups/grp-b)
assert_eq 204 "$st" "DELETE group grp-b: $(cat "$WORK/body")"
# Workers trust their copy of the groups for up to 2 s.
for _ in $(seq 50); do
    st=$(reg dev-y "$(b64_hmac "$KC" dev-y)")
    [ "$st" = 200 ] && break
    sleep 0.1
done
assert_eq 200 "$st" "register dev-y through grp-c once grp-b is deleted: $(cat "$WORK/body")"
assert_eq grp-c "$(jb .registrationState.symmetricKey.enrollmentGroupId)" "dev-y: its new group"

# ---- two groups attest the device: it stays in the one it is registered under ----
# Symmetric keys: zz-same registers dev-k; aa-same, with the same key, comes first in ID order.
KS=$(new_key 32)
group zz-same "$KS" hub-b.example.com
st=$(reg dev-k "$(b64_hmac "$KS" dev-k)")
assert_eq 200 "$st" "register dev-k through zz-same"
group aa-same "$KS" hub-a.example.com
sleep 2.2 # past the workers' 2 s trust in their copy of the groups
st=$(reg dev-k "$(b64_hmac "$KS" dev-k)")
assert_eq 200 "$st" "register dev-k again, aa-same attesting it too: $(cat "$WORK/body")"
assert_eq zz-same "$(jb .registrationState.symmetricKey.enrollmentGroupId)" "dev-k stays in zz-same"

# X.509: zz-line holds an intermediate CA; aa-fleet, added later, holds its root.
O=$WORK/pki
mkdir -p "$O"
printf '[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n%s' \
    '[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
' >"$O/ext.cnf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/root.key" \
    -out "$O/root.pem" -subj "/CN=Line Root" -days 30 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# issue CN OUT ISSUER EXT: OUT.pem and OUT.key, signed by ISSUER.
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$2.key" \
        -subj "/CN=$1" -out "$O/$2.csr" 2>/dev/null
    openssl x509 -req -in "$O/$2.csr" -CA "$O/$3.pem" -CAkey "$O/$3.key" -CAcreateserial \
        -days 30 -extfile "$O/ext.cnf" -extensions "$4" -out "$O/$2.pem" 2>/dev/null
}
issue "Line Intermediate" int root ca
issue dev-m dev int leaf
cat "$O/dev.pem" "$O/int.pem" >"$O/devchain.pem"
# x509_group ID CA_PEM: an X.509 group whose devices go to hub-a.
x509_group() {
    st=$(admjson PUT "/enrollmentGroups/$1" "$(jq -nc --arg g "$1" --rawfile c "$2" \
        '{enrollmentGroupId: $g, iotHubHostName: "hub-a.example.com", attestation: {type: "x509",
          x509: {signingCertificates: {primary: {certificate: $c}}}}}')")
    assert_eq 200 "$st" "PUT group $1: $(cat "$WORK/body")"
}
x509_group zz-line "$O/int.pem"
reg_mtls() {
    devreq PUT "/$SCOPE/registrations/dev-m/register?$API" --cert "$O/devchain.pem" \
        --key "$O/dev.key" -H 'Content-Type: application/json' \
        --data-binary '{"registrationId":"dev-m"}'
}
st=$(reg_mtls)
assert_eq 200 "$st" "register dev-m through zz-line: $(cat "$WORK/body")"
x509_group aa-fleet "$O/root.pem"
sleep 2.2
st=$(reg_mtls)
assert_eq 200 "$st" "register dev-m again, aa-fleet attesting it too: $(cat "$WORK/body")"
assert_eq zz-line "$(jb .registrationState.x509.enrollmentGroupId)" "dev-m stays in zz-line"

echo "PASS: binding"
