#!/usr/bin/env bash
# A registration stays with the enrollment it was made under (docs/device-api.md, "Which
# enrollment a device belongs to"): another group's key cannot take a device over or read its
# state while that group exists; an individual enrollment takes it over; a deleted registration
# or group frees the device; a disabled enrollment's devices cannot read their state.
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

echo "PASS: binding"
