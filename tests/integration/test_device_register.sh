#!/usr/bin/env bash
# Device registration through an enrollment group (docs/device-api.md): 100 devices with keys
# derived from the group key, re-registration, every refusal of the device API with its exact
# status and error code, and the audit log that all of it leaves (docs/admin-api.md, "Audit log").
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
provd_start

GROUP=fleet-register
GK=$(new_key 32)
GK2=$(new_key 32)
HUB_A=hub-a.example.com
HUB_B=hub-b.example.com
endpoint_add "$HUB_A" "$HUB_B"

# Every request sent to the device API is listed in $EXPECT as the audit record it must leave:
# event|subject|outcome|httpStatus|errorCode, "*" matching anything.
EXPECT=$WORK/expected-audit.txt
: >"$EXPECT"
expect_audit() {
    printf '%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "$5" >>"$EXPECT"
}

# reg REGID AUTH [BODY] [CONTENT_TYPE]: PUT register on the device API.
reg() {
    local regid=$1 auth=$2 body=${3:-"{\"registrationId\":\"$1\"}"}
    local ct=${4:-'application/json; charset=utf-8'}
    local args=(-H "Content-Type: $ct" --data-binary "$body")
    [ -n "$auth" ] && args+=(-H "Authorization: $auth")
    devreq PUT "/$SCOPE/registrations/$regid/register?$API" "${args[@]}"
}

dev_key() {
    b64_hmac "$GK" "$1"
}

# ---- The group ----
st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -nc --arg g "$GROUP" --arg k "$GK" \
    --arg k2 "$GK2" --arg a "$HUB_A" --arg b "$HUB_B" \
    '{enrollmentGroupId: $g, attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k, secondaryKey: $k2}}, iotHubs: [$a, $b]}')")
assert_eq 200 "$st" "PUT group"
assert_eq "$GROUP" "$(jb .enrollmentGroupId)" "group id in answer"
assert_eq "$GK" "$(jb .attestation.symmetricKey.primaryKey)" "group primary key kept"
assert_eq enabled "$(jb .provisioningStatus)" "group provisioningStatus default"

# ---- 100 devices ----
declare -A HUB_OF CREATED_OF
for i in $(seq -f '%03g' 0 99); do
    r=dev-$i
    st=$(reg "$r" "$(sas_token "$(dev_key "$r")" "$r")")
    expect_audit device.register "$r" accepted 200 0
    assert_eq 200 "$st" "register $r"
    assert_eq "$JSON_CT" "$(header content-type)" "register $r: Content-Type"
    # One jq for the whole answer keeps 100 registrations fast.
    read -r status regid devid rstatus substatus group hub created updated etag opid < <(jb '
        .registrationState as $s | [.status, $s.registrationId, $s.deviceId, $s.status,
        $s.substatus, $s.symmetricKey.enrollmentGroupId, $s.assignedHub, $s.createdDateTimeUtc,
        $s.lastUpdatedDateTimeUtc, $s.etag, .operationId] | map(. // "-" | tostring) | join(" ")')
    assert_eq "assigned $r $r assigned initialAssignment $GROUP" \
        "$status $regid $devid $rstatus $substatus $group" "register $r: result"
    [ "$hub" = "$HUB_A" ] || [ "$hub" = "$HUB_B" ] || fail "register $r: assignedHub '$hub'"
    HUB_OF[$r]=$hub
    CREATED_OF[$r]=$created
    assert_match "$TIME_RE" "$created" "register $r: createdDateTimeUtc"
    assert_match "$TIME_RE" "$updated" "register $r: lastUpdatedDateTimeUtc"
    assert_match '^[A-Za-z0-9+/]+=*$' "$etag" "register $r: etag"
    [ "$opid" != - ] || fail "register $r: no operationId"
done
n_a=0
n_b=0
for r in "${!HUB_OF[@]}"; do
    if [ "${HUB_OF[$r]}" = "$HUB_A" ]; then n_a=$((n_a + 1)); else n_b=$((n_b + 1)); fi
done
[ "$n_a" -gt 0 ] && [ "$n_b" -gt 0 ] || fail "hashed allocation used one hub only ($n_a/$n_b)"

# ---- Registering again keeps the device ID and the creation time ----
r=dev-042
st=$(reg "$r" "$(sas_token "$(dev_key "$r")" "$r")")
expect_audit device.register "$r" accepted 200 0
assert_eq 200 "$st" "re-register $r"
assert_eq "assigned $r ${HUB_OF[$r]} ${CREATED_OF[$r]}" \
    "$(jb '[.status, .registrationState.deviceId, .registrationState.assignedHub,
            .registrationState.createdDateTimeUtc] | join(" ")')" "re-register $r: state"

# ---- Refusals ----
now=$(date +%s)
r=dev-007
key7=$(dev_key "$r")

st=$(reg "$r" "$(sas_token "$(new_key 32)" "$r")")
expect_audit device.register "$r" refused 401 401002
assert_error 401 401002 "$st" "wrong key"
WRONG_KEY_TRACKING=$(jb .trackingId)

st=$(reg "$r" "$(sas_token "$key7" "$r" $((now - 60)))")
expect_audit device.register "$r" refused 401 401002
assert_error 401 401002 "$st" "expired token"

# A valid token of dev-008 presented for dev-007.
st=$(reg "$r" "$(sas_token "$(dev_key dev-008)" dev-008)")
expect_audit device.register "$r" refused 401 401002
assert_error 401 401002 "$st" "token of another device"

# dev-007's own key, but the token names another scope.
st=$(reg "$r" "$(sas_token "$key7" "$r" $((now + 3600)) 0ne99999999)")
expect_audit device.register "$r" refused 401 401002
assert_error 401 401002 "$st" "token of another scope"

st=$(reg "$r" "")
expect_audit device.register "$r" refused 401 401002
assert_error 401 401002 "$st" "missing Authorization"

# Disabled group: 200 with status "failed" and errorCode 403001 inside registrationState.
st=$(admreq GET "/enrollmentGroups/$GROUP")
assert_eq 200 "$st" "GET group"
etag=$(jb .etag)
st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -c '.provisioningStatus = "disabled"
    | del(.etag, .createdDateTimeUtc, .lastUpdatedDateTimeUtc)' "$WORK/body")" \
    -H "If-Match: \"$etag\"")
assert_eq 200 "$st" "disable group"
assert_eq disabled "$(jb .provisioningStatus)" "group disabled"
etag=$(jb .etag)
r=dev-100
st=$(reg "$r" "$(sas_token "$(dev_key "$r")" "$r")")
expect_audit device.register "$r" refused 200 403001
assert_eq 200 "$st" "register in disabled group"
assert_eq "$JSON_CT" "$(header content-type)" "disabled: Content-Type"
assert_eq "failed failed 403001 $r" \
    "$(jb '[.status, .registrationState.status, .registrationState.errorCode,
            .registrationState.registrationId] | join(" ")')" "disabled: result"
assert_eq string "$(jb '.registrationState.errorMessage | type')" "disabled: errorMessage"
assert_eq null "$(jb .registrationState.assignedHub)" "disabled: no assignedHub"
st=$(admreq GET "/enrollmentGroups/$GROUP")
assert_eq 200 "$st" "GET disabled group"
assert_eq "$etag" "$(jb .etag)" "etag of the disabled group"
st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -c '.provisioningStatus = "enabled"
    | del(.etag, .createdDateTimeUtc, .lastUpdatedDateTimeUtc)' "$WORK/body")" \
    -H "If-Match: $etag")
assert_eq 200 "$st" "enable group"
assert_eq enabled "$(jb .provisioningStatus)" "group enabled"

r=dev-007
se7=$((now + 3600))
auth7=$(sas_token "$key7" "$r" "$se7")
st=$(reg "$r" "$auth7" '{"registrationId": "dev-007",')
expect_audit device.register "$r" refused 400 400002
assert_error 400 400002 "$st" "malformed JSON"

big=$(head -c 102400 /dev/zero | tr '\0' 'A')
st=$(reg "$r" "$auth7" "{\"registrationId\":\"$r\",\"payload\":\"$big\"}")
expect_audit device.register "$r" refused 413 413001
assert_error 413 413001 "$st" "100 KiB body"

# Beyond twice the limit the HTTP layer refuses the body unread: 413, no audit record.
{
    printf '{"registrationId":"%s","payload":"' "$r"
    head -c 204800 /dev/zero | tr '\0' 'A'
    printf '"}'
} >"$WORK/huge.json"
st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "Authorization: $auth7" \
    -H 'Content-Type: application/json' --data-binary "@$WORK/huge.json" || true)
assert_eq 413 "$st" "200 KiB body"

st=$(reg "$r" "$auth7" "{\"registrationId\":\"$r\"}" text/plain)
expect_audit device.register "$r" refused 415 415001
assert_error 415 415001 "$st" "text/plain body"

st=$(reg "$r" "$auth7" '{"registrationId":"dev-008"}')
expect_audit device.register "$r" refused 400 400004
assert_error 400 400004 "$st" "body registrationId differs from path"

long=d$(head -c 129 /dev/zero | tr '\0' 'x')
st=$(reg "$long" "$(sas_token "$(dev_key "$long")" "$long")")
expect_audit device.register '*' refused 400 400003
assert_error 400 400003 "$st" "130-character registration ID"

st=$(reg 'bad!id' "$(sas_token "$(dev_key 'bad!id')" 'bad!id')" '{"registrationId":"bad!id"}')
expect_audit device.register '*' refused 400 400003
assert_error 400 400003 "$st" "registration ID bad!id"

st=$(reg 'dev%20x' "$(sas_token "$(dev_key 'dev x')" 'dev x')" '{"registrationId":"dev x"}')
expect_audit device.register '*' refused 400 400003
assert_error 400 400003 "$st" "registration ID dev%20x"

st=$(devreq PUT "/$SCOPE/registrations/$r/register" -H "Authorization: $auth7" \
    -H 'Content-Type: application/json' --data-binary "{\"registrationId\":\"$r\"}")
expect_audit device.register "$r" refused 400 400005
assert_error 400 400005 "$st" "missing api-version"

st=$(devreq PUT "/0neFFFFFFFF/registrations/$r/register?$API" \
    -H "Authorization: $(sas_token "$key7" "$r" $((now + 3600)) 0neFFFFFFFF)" \
    -H 'Content-Type: application/json' --data-binary "{\"registrationId\":\"$r\"}")
expect_audit device.register "$r" refused 404 404001
assert_error 404 404001 "$st" "unknown ID scope"

# The refusals did not disturb dev-007's registration.
st=$(reg "$r" "$auth7")
expect_audit device.register "$r" accepted 200 0
assert_eq 200 "$st" "register $r after refusals"
assert_eq "${CREATED_OF[$r]} ${HUB_OF[$r]}" \
    "$(jb '[.registrationState.createdDateTimeUtc, .registrationState.assignedHub] | join(" ")')" \
    "$r state after refusals"

# ---- The audit log ----
audit_all >/dev/null
A=$WORK/audit.jsonl
jq -r 'select(.event | startswith("device.")) |
    [.event, .subject, .outcome, (.httpStatus | tostring), (.errorCode | tostring)] | join("|")' \
    "$A" >"$WORK/actual-audit.txt"
assert_eq "$(wc -l <"$EXPECT")" "$(wc -l <"$WORK/actual-audit.txt")" \
    "number of device audit records"
lineno=0
while IFS='|' read -r ev sub out hs ec <&3 && IFS='|' read -r aev asub aout ahs aec <&4; do
    lineno=$((lineno + 1))
    what="audit record $lineno ($ev $sub)"
    assert_eq "$ev" "$aev" "$what: event"
    [ "$sub" = '*' ] || assert_eq "$sub" "$asub" "$what: subject"
    assert_eq "$out" "$aout" "$what: outcome"
    assert_eq "$hs" "$ahs" "$what: httpStatus"
    [ "$ec" = '*' ] || assert_eq "$ec" "$aec" "$what: errorCode"
done 3<"$EXPECT" 4<"$WORK/actual-audit.txt"

# Records are in sequence order, well formed, from loopback.
assert_eq true "$(jq -s '[.[].seq] | . == (sort | unique)' "$A")" "audit seq increasing"
while read -r rec; do
    assert_match "$TIME_RE" "$(jq -r .timestampUtc <<<"$rec")" "audit timestampUtc"
    assert_match '^127\.0\.0\.1:[0-9]+$' "$(jq -r .remote <<<"$rec")" "audit remote"
    assert_eq string "$(jq -r '.reason | type' <<<"$rec")" "audit reason"
done < <(jq -c 'select(.outcome == "refused")' "$A")
# The admin changes of the group are there too: create, disable, enable.
assert_eq "group.put group.put group.put" \
    "$(jq -r --arg g "$GROUP" 'select(.subject == $g and .outcome == "accepted") | .event' "$A" |
        paste -sd' ')" "audit records of the group"

# No secret in the audit log: group keys, device keys, signatures, whole tokens.
sig7=$(b64_hmac "$key7" "$SCOPE/registrations/dev-007"$'\n'"$se7")
for secret in "$GK" "$GK2" "$key7" "$(dev_key dev-042)" "$sig7" "$(urlenc "$sig7")" \
    "${auth7#SharedAccessSignature }" "sig="; do
    if grep -qF -- "$secret" "$A"; then
        fail "the audit log holds secret text: ${secret:0:12}..."
    fi
done
for secret in "$GK" "$key7" "$(urlenc "$sig7")"; do
    ! grep -qF -- "$secret" "$WORK/provd.log" || fail "provd's log holds secret text"
done

# docs/errors.md: the trackingId of an error answer appears in the audit record of the request.
grep -qF -- "$WRONG_KEY_TRACKING" "$A" ||
    fail "trackingId $WRONG_KEY_TRACKING of the wrong-key refusal is not in the audit log"

echo "PASS test_device_register"
