#!/usr/bin/env bash
# The DPS wire protocol as device SDKs speak it (docs/device-api.md, PROTOCOL-DPS.md): operation
# polls, status look-ups, percent-encoded and differently cased paths, every spelling of the SAS
# resource, individual enrollments and their precedence over groups, health checks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
provd_start

GROUP=fleet-proto
GK=$(new_key 32)
GK2=$(new_key 48)
HUB_A=hub-a.example.com
HUB_B=hub-b.example.com
CT_JSON='Content-Type: application/json; charset=utf-8'
endpoint_add "$HUB_A" "$HUB_B" hub-i.example.com hub-x.example.com hub-ind.example.com \
    hub-u.example.com hub-1.example.com hub-2.example.com hub-3.example.com hub-4.example.com

st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -nc --arg g "$GROUP" --arg k "$GK" \
    --arg k2 "$GK2" --arg a "$HUB_A" --arg b "$HUB_B" \
    '{enrollmentGroupId: $g, attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k, secondaryKey: $k2}}, iotHubs: [$a, $b]}')")
assert_eq 200 "$st" "PUT group"

dev_key() {
    b64_hmac "$GK" "$1"
}

# put_reg PATH_REGID BODY_REGID AUTH [PATH_PREFIX]: PUT register with PATH_REGID in the path as
# given (it may be percent-encoded).
put_reg() {
    devreq PUT "/$SCOPE/registrations/$1/register?$API" -H "$CT_JSON" -H "Authorization: $3" \
        --data-binary "{\"registrationId\":\"$2\"}"
}

# status_of REGID AUTH [API_QUERY]: POST the status look-up.
status_of() {
    devreq POST "/$SCOPE/registrations/$1?${3:-$API}" -H "$CT_JSON" -H "Authorization: $2" \
        --data-binary "{\"registrationId\":\"$1\"}"
}

# ---- Register, then poll the operation ----
r=dev-p1
auth1=$(sas_token "$(dev_key $r)" $r)
st=$(put_reg $r $r "$auth1")
assert_eq 200 "$st" "register $r"
cp "$WORK/body" "$WORK/reg1.json"
opid=$(jb .operationId)
[ -n "$opid" ] && [ "$opid" != null ] || fail "no operationId"
assert_eq "assigned $GROUP" "$(jb '[.status, .registrationState.symmetricKey.enrollmentGroupId] |
    join(" ")')" "register $r"

st=$(devreq GET "/$SCOPE/registrations/$r/operations/$opid?$API" -H "Authorization: $auth1")
assert_eq 200 "$st" "poll operation"
assert_eq "$JSON_CT" "$(header content-type)" "poll: Content-Type"
assert_eq "$opid assigned" "$(jb '[.operationId, .status] | join(" ")')" "poll: operation"
assert_eq "$(jq -S .registrationState "$WORK/reg1.json")" \
    "$(jq -S .registrationState "$WORK/body")" "poll: same registration state"

st=$(devreq GET "/$SCOPE/registrations/$r/operations/00000000-0000-4000-8000-000000000000?$API" \
    -H "Authorization: $auth1")
assert_error 404 404004 "$st" "poll of an unknown operation"

# A polling GET with a body "{}", then a second request on the same connection.
url="$DEV/$SCOPE/registrations/$r/operations/$opid?$API"
out=$(curl -sS --cacert "$CA" -X GET -H "$CT_JSON" -H "Authorization: $auth1" --data-binary '{}' \
    -o "$WORK/poll1.json" -w '%{http_code} %{num_connects}\n' "$url" \
    --next --cacert "$CA" -X GET -H "Authorization: $auth1" \
    -o "$WORK/poll2.json" -w '%{http_code} %{num_connects}\n' "$url")
assert_eq "200 1,200 0" "$(paste -sd, <<<"$out")" "GET with a body, then keep-alive reuse"
assert_eq "$(jq -S . "$WORK/poll1.json")" "$(jq -S . "$WORK/poll2.json")" "both polls answer alike"
assert_eq "$opid" "$(jq -r .operationId "$WORK/poll2.json")" "poll on the reused connection"

# ---- Status look-up ----
st=$(status_of $r "$auth1")
assert_eq 200 "$st" "status look-up"
assert_eq "$JSON_CT" "$(header content-type)" "status: Content-Type"
assert_eq "$(jq -S .registrationState "$WORK/reg1.json")" "$(jq -S . "$WORK/body")" \
    "status answers the registration state"

r9=dev-p9
auth9=$(sas_token "$(dev_key $r9)" $r9)
st=$(status_of $r9 "$auth9")
assert_error 404 404004 "$st" "status of an enrolled device that never registered"
st=$(devreq GET "/$SCOPE/registrations/$r9/operations/$opid?$API" -H "Authorization: $auth9")
assert_error 404 404004 "$st" "poll by a device that never registered"

# api-version: the known dates and any later one, with or without -preview; nothing older, and
# nothing that is not a date.
for v in 2019-03-31 2021-06-01 2021-10-01 2025-07-01-preview 2031-01-15; do
    st=$(status_of $r "$auth1" "api-version=$v")
    assert_eq 200 "$st" "api-version=$v"
done
for v in 2018-11-01 yesterday 2021-06-01-beta 2099-99-99 2021-13-01 2021-06-00 ""; do
    st=$(status_of $r "$auth1" "api-version=$v")
    assert_error 400 400005 "$st" "api-version='$v'"
done
st=$(status_of $r "$auth1" "api-version=2021-06-01&flag")
assert_error 400 400001 "$st" "a query string that is not name=value pairs"

# ---- Percent-encoded paths ----
st=$(devreq PUT "/$SCOPE%2fregistrations%2fdev-x/register?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key dev-x)" dev-x)" \
    --data-binary '{"registrationId":"dev-x"}')
assert_eq 200 "$st" "register through %2f-encoded path"
assert_eq "dev-x dev-x" "$(jb '[.registrationState.registrationId, .registrationState.deviceId] |
    join(" ")')" "register through %2f-encoded path: IDs"

st=$(devreq PUT "/$SCOPE%2Fregistrations%2Fdev-y%2Fregister?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key dev-y)" dev-y)" \
    --data-binary '{"registrationId":"dev-y"}')
assert_eq 200 "$st" "register through %2F-encoded path"
assert_eq dev-y "$(jb .registrationState.registrationId)" "register through %2F-encoded path"

rc=dev:c1
keyc=$(dev_key $rc)
st=$(put_reg 'dev%3ac1' $rc "$(sas_token "$keyc" $rc)")
assert_eq 200 "$st" "register dev%3ac1"
assert_eq "$rc $rc" "$(jb '[.registrationState.registrationId, .registrationState.deviceId] |
    join(" ")')" "register dev%3ac1: IDs"
# The same device, its sr encoded in full (':' as %3a, '/' as %2f) and the path encoded too.
se=$(($(date +%s) + 3600))
st=$(devreq POST "/$SCOPE/registrations/dev%3Ac1?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_raw "$keyc" "$SCOPE%2fregistrations%2fdev%3ac1" $se)" \
    --data-binary '{"registrationId":"dev:c1"}')
assert_eq 200 "$st" "status of dev:c1 with an encoded sr"
assert_eq $rc "$(jb .registrationId)" "status of dev:c1"

# ---- Case-insensitive paths and trailing slash ----
st=$(devreq PUT "/$SCOPE/REGISTRATIONS/dev-c2/Register?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key dev-c2)" dev-c2)" \
    --data-binary '{"registrationId":"dev-c2"}')
assert_eq 200 "$st" "REGISTRATIONS/.../Register"
assert_eq dev-c2 "$(jb .registrationState.registrationId)" "REGISTRATIONS/.../Register"

st=$(devreq PUT "/$SCOPE/registrations/dev-c3/register/?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key dev-c3)" dev-c3)" \
    --data-binary '{"registrationId":"dev-c3"}')
assert_eq 200 "$st" "register/ with a trailing slash"
assert_eq dev-c3 "$(jb .registrationState.registrationId)" "register/ with a trailing slash"

st=$(devreq POST "/$SCOPE/Registrations/dev-c2/?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key dev-c2)" dev-c2)" \
    --data-binary '{"registrationId":"dev-c2"}')
assert_eq 200 "$st" "status with Registrations and a trailing slash"

# ---- SAS resource spellings and field order ----
se=$(($(date +%s) + 3600))
for spelling in plain lower upper reversed; do
    r=dev-sas-$spelling
    case $spelling in
    plain | reversed) sr="$SCOPE/registrations/$r" ;;
    lower) sr="$SCOPE%2fregistrations%2f$r" ;;
    upper) sr="$SCOPE%2Fregistrations%2F$r" ;;
    esac
    st=$(put_reg $r $r "$(sas_raw "$(dev_key $r)" "$sr" $se "$spelling")")
    assert_eq 200 "$st" "SAS sr spelled $spelling"
    assert_eq "assigned $r" "$(jb '[.status, .registrationState.registrationId] | join(" ")')" \
        "SAS sr spelled $spelling"
done

# A signature over one spelling does not verify another.
r=dev-sas-lower
sig=$(urlenc "$(b64_hmac "$(dev_key $r)" "$SCOPE/registrations/$r"$'\n'"$se")")
st=$(put_reg $r $r \
    "SharedAccessSignature sr=$SCOPE%2fregistrations%2f$r&sig=$sig&se=$se&skn=registration")
assert_error 401 401002 "$st" "signature over another spelling of sr"

# The signature's escapes in lower case (%2b %2f %3d), as some clients write them.
r=dev-sas-plain
sig=$(b64_hmac "$(dev_key $r)" "$SCOPE/registrations/$r"$'\n'"$se")
sig=$(printf '%s' "$sig" | sed -e 's/+/%2b/g' -e 's|/|%2f|g' -e 's/=/%3d/g')
st=$(put_reg $r $r \
    "SharedAccessSignature sr=$SCOPE/registrations/$r&sig=$sig&se=$se&skn=registration")
assert_eq 200 "$st" "signature with lower-case escapes"

# Content types and bodies.
auth=$(sas_token "$(dev_key $r)" $r)
for ct in 'application/json' 'application/json;charset=UTF-8' 'Application/JSON; charset=utf-8'; do
    st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "Content-Type: $ct" \
        -H "Authorization: $auth" --data-binary "{\"registrationId\":\"$r\"}")
    assert_eq 200 "$st" "register with Content-Type: $ct"
done
st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "Authorization: $auth" \
    -H 'Content-Type:' --data-binary "{\"registrationId\":\"$r\"}")
assert_error 415 415001 "$st" "register without a Content-Type"
st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "Authorization: $auth" \
    -H 'Content-Type: application/jsonx' --data-binary "{\"registrationId\":\"$r\"}")
assert_error 415 415001 "$st" "register with Content-Type application/jsonx"
for body in '' '[]' '"dev"' '{"registrationId":"dev-sas-plain"'; do
    st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "Authorization: $auth" \
        -H "$CT_JSON" --data-binary "$body")
    assert_error 400 400002 "$st" "register with the body '$body'"
done

# Expiry: within the lifetime (300 days) accepted, 20 years ahead refused.
r=dev-sas-plain
st=$(put_reg $r $r "$(sas_token "$(dev_key $r)" $r $(($(date +%s) + 300 * 86400)))")
assert_eq 200 "$st" "token valid for 300 days"
st=$(put_reg $r $r "$(sas_token "$(dev_key $r)" $r $(($(date +%s) + 20 * 365 * 86400)))")
assert_error 401 401002 "$st" "token valid for 20 years"

# The group's secondary key.
r=dev-sec
st=$(put_reg $r $r "$(sas_token "$(b64_hmac "$GK2" $r)" $r)")
assert_eq 200 "$st" "key derived from the group's secondary key"
assert_eq "$GROUP" "$(jb .registrationState.symmetricKey.enrollmentGroupId)" "secondary key group"

# ---- Individual enrollments ----
IK1=$(new_key 32)
IK2=$(new_key 64)
TWIN='{"tags":{"site":"lab-3"},"properties":{"desired":{"interval":30,"mode":"eco"}}}'
st=$(admjson PUT /enrollments/ind-auto "$(jq -nc --arg k "$IK1" --arg k2 "$IK2" \
    --argjson t "$TWIN" '{registrationId: "ind-auto", deviceId: "auto",
      iotHubHostName: "hub-i.example.com",
      attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k, secondaryKey: $k2}},
      initialTwin: $t}')")
assert_eq 200 "$st" "PUT enrollment ind-auto"

st=$(put_reg ind-auto ind-auto "$(sas_token "$IK1" ind-auto)")
assert_eq 200 "$st" "register ind-auto"
auto_id=$(jb .registrationState.deviceId)
assert_match "$UUID_RE" "$auto_id" "deviceId auto"
assert_eq "assigned hub-i.example.com null" "$(jb '[.status, .registrationState.assignedHub,
    (.registrationState.symmetricKey.enrollmentGroupId | tostring)] | join(" ")')" \
    "ind-auto: hub, no group"
assert_eq "$(jq -S . <<<"$TWIN")" "$(jq -S .registrationState.payload.initialTwin "$WORK/body")" \
    "ind-auto: initialTwin in the payload"
created=$(jb .registrationState.createdDateTimeUtc)

st=$(put_reg ind-auto ind-auto "$(sas_token "$IK2" ind-auto)")
assert_eq 200 "$st" "register ind-auto again, with the secondary key"
assert_eq "$auto_id $created" "$(jb '[.registrationState.deviceId,
    .registrationState.createdDateTimeUtc] | join(" ")')" "ind-auto: same device ID"
st=$(admreq GET /registrations/ind-auto)
assert_eq 200 "$st" "admin GET registration ind-auto"
assert_eq "$auto_id" "$(jb .deviceId)" "ind-auto: stored device ID"

# Registrations of one device at the same time (a device that retried): each is decided over
# what the others stored, so every answer names the device ID the store keeps; one that found
# the device changed under it four times over is refused 503 / 503003. Every answer has its
# audit record. The sqlite3 shell holds the database's write lock until all six are decided.
if command -v sqlite3 >/dev/null; then
    st=$(admjson PUT /enrollments/ind-race "$(jq -nc --arg k "$IK1" '{registrationId: "ind-race",
        deviceId: "auto", iotHubHostName: "hub-i.example.com",
        attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')")
    assert_eq 200 "$st" "PUT enrollment ind-race"
    hold_write_lock
    auth=$(sas_token "$IK1" ind-race)
    for i in 1 2 3 4 5 6; do
        curl -s --cacert "$CA" -o "$WORK/race-$i.json" -w '%{http_code}' -X PUT -H "$CT_JSON" \
            -H "Authorization: $auth" --data-binary '{"registrationId":"ind-race"}' \
            "$DEV/$SCOPE/registrations/ind-race/register?$API" >"$WORK/race-$i.status" &
        pids[i]=$!
    done
    wait_decisions 6 "device.register subject=ind-race"
    release_write_lock
    for i in 1 2 3 4 5 6; do
        wait "${pids[i]}" || fail "register ind-race ($i) failed"
    done
    st=$(admreq GET /registrations/ind-race)
    assert_eq 200 "$st" "admin GET registration ind-race"
    race_id=$(jb .deviceId)
    version=$(jb .etag | tr -d '"' | base64 -d 2>/dev/null | od -An -tu8 -N8 --endian=big | tr -d ' ')
    assert_match "$UUID_RE" "$race_id" "ind-race: stored device ID"
    assigned=0
    for i in 1 2 3 4 5 6; do
        case $(cat "$WORK/race-$i.status") in
        200)
            assigned=$((assigned + 1))
            assert_eq "assigned $race_id" "$(jq -r '[.status, .registrationState.deviceId] |
                join(" ")' "$WORK/race-$i.json")" "ind-race: answer $i names the stored device ID"
            ;;
        503) assert_eq 503003 "$(jq -r .errorCode "$WORK/race-$i.json")" "ind-race: 503 $i" ;;
        *) fail "ind-race: answer $i: $(cat "$WORK/race-$i.status") $(cat "$WORK/race-$i.json")" ;;
        esac
    done
    [ "$assigned" -ge 4 ] || fail "ind-race: only $assigned of 6 registrations assigned"
    assert_eq "$assigned" "$version" "ind-race: one stored version per registration assigned"
    assert_eq 6 "$(audit_all "&subject=ind-race" | jq -s '[.[] | select(.event ==
        "device.register")] | length')" "ind-race: an audit record per answer"
fi

st=$(admjson PUT /enrollments/ind-explicit "$(jq -nc --arg k "$IK1" \
    '{registrationId: "ind-explicit", deviceId: "my-device-7", iotHubs: ["hub-x.example.com"],
      attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')")
assert_eq 200 "$st" "PUT enrollment ind-explicit"
st=$(put_reg ind-explicit ind-explicit "$(sas_token "$IK1" ind-explicit)")
assert_eq 200 "$st" "register ind-explicit"
assert_eq 'my-device-7 hub-x.example.com {"endpoint":{"host":"hub-x.example.com","port":8883,"protocol":"mqtts"}}' \
    "$(jb '[.registrationState.deviceId, .registrationState.assignedHub,
    (.registrationState.payload | tojson)] | join(" ")')" "ind-explicit: explicit device ID"

# An individual enrollment for a registration ID that a group would also admit wins.
IKB=$(new_key 32)
st=$(admjson PUT /enrollments/dev-both "$(jq -nc --arg k "$IKB" \
    '{registrationId: "dev-both", iotHubHostName: "hub-ind.example.com",
      attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')")
assert_eq 200 "$st" "PUT enrollment dev-both"
st=$(put_reg dev-both dev-both "$(sas_token "$(dev_key dev-both)" dev-both)")
assert_error 401 401002 "$st" "group key for an individually enrolled device"
st=$(put_reg dev-both dev-both "$(sas_token "$IKB" dev-both)")
assert_eq 200 "$st" "register dev-both with its own key"
assert_eq "dev-both hub-ind.example.com null" "$(jb '[.registrationState.deviceId,
    .registrationState.assignedHub, (.registrationState.symmetricKey.enrollmentGroupId |
    tostring)] | join(" ")')" "dev-both: individual enrollment used"

# ---- Registration IDs are case-insensitive and stored lower-cased ----
IKU=$(new_key 32)
st=$(admjson PUT /enrollments/dev-upper "$(jq -nc --arg k "$IKU" \
    '{registrationId: "dev-upper", iotHubHostName: "hub-u.example.com",
      attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')")
assert_eq 200 "$st" "PUT enrollment dev-upper"
st=$(put_reg DEV-UPPER DEV-UPPER "$(sas_token "$IKU" DEV-UPPER)")
assert_eq 200 "$st" "register DEV-UPPER"
assert_eq "dev-upper dev-upper" "$(jb '[.registrationState.registrationId,
    .registrationState.deviceId] | join(" ")')" "DEV-UPPER stored lower-cased"
st=$(admreq GET /registrations/dev-upper)
assert_eq 200 "$st" "admin GET registration dev-upper"
assert_eq dev-upper "$(jb .registrationId)" "admin GET registration dev-upper"
st=$(status_of dev-upper "$(sas_token "$IKU" dev-upper)")
assert_eq 200 "$st" "status of dev-upper in lower case"

# ---- Health checks, without authentication ----
for base in "$DEV" "$ADM"; do
    st=$(curl -sS --cacert "$CA" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' \
        "$base/healthz")
    assert_eq 200 "$st" "GET $base/healthz"
    assert_eq "$JSON_CT" "$(header content-type)" "healthz Content-Type"
    assert_eq '{"status":"ok"}' "$(jq -c . "$WORK/body")" "healthz body"
done

# ---- Re-registration and the reprovisioning policy ----
KM=$(new_key 32)
move() {
    admjson PUT /enrollments/ind-move "$(jq -nc --arg k "$KM" --arg h "$1" --argjson p "$2" \
        '{registrationId: "ind-move", iotHubHostName: $h, reprovisionPolicy: $p,
          attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')"
}
authm=$(sas_token "$KM" ind-move)
st=$(move hub-1.example.com '{"updateHubAssignment":true,"migrateDeviceData":true}')
assert_eq 200 "$st" "PUT ind-move"
st=$(put_reg ind-move ind-move "$authm")
assert_eq "200 hub-1.example.com initialAssignment" "$st $(jb '[.registrationState.assignedHub,
    .registrationState.substatus] | join(" ")')" "ind-move first registration"
op_first=$(jb .operationId)
st=$(move hub-2.example.com '{"updateHubAssignment":true,"migrateDeviceData":true}')
st=$(put_reg ind-move ind-move "$authm")
assert_eq "200 hub-2.example.com deviceDataMigrated" "$st $(jb '[.registrationState.assignedHub,
    .registrationState.substatus] | join(" ")')" "ind-move re-allocated, data migrated"
op_second=$(jb .operationId)
[ "$op_second" != "$op_first" ] || fail "a new registration kept the operation ID"
st=$(devreq GET "/$SCOPE/registrations/ind-move/operations/$op_first?$API" \
    -H "Authorization: $authm")
assert_error 404 404004 "$st" "poll of an operation that is no longer the latest"
st=$(devreq GET "/$SCOPE/registrations/ind-move/operations/$op_second?$API" \
    -H "Authorization: $authm")
assert_eq 200 "$st" "poll of the latest operation"
st=$(move hub-3.example.com '{"updateHubAssignment":true,"migrateDeviceData":false}')
st=$(put_reg ind-move ind-move "$authm")
assert_eq "200 hub-3.example.com deviceDataReset" "$st $(jb '[.registrationState.assignedHub,
    .registrationState.substatus] | join(" ")')" "ind-move re-allocated, data reset"
st=$(move hub-4.example.com '{"updateHubAssignment":false,"migrateDeviceData":true}')
st=$(put_reg ind-move ind-move "$authm")
assert_eq "200 hub-3.example.com" "$st $(jb .registrationState.assignedHub)" \
    "ind-move kept its hub (updateHubAssignment false)"

# A disabled individual enrollment.
st=$(admjson PUT /enrollments/ind-off "$(jq -nc --arg k "$KM" '{registrationId: "ind-off",
    provisioningStatus: "disabled", iotHubHostName: "hub-1.example.com",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')")
assert_eq 200 "$st" "PUT ind-off"
st=$(put_reg ind-off ind-off "$(sas_token "$KM" ind-off)")
assert_eq "200 failed 403001" "$st $(jb '[.status, .registrationState.errorCode] | join(" ")')" \
    "disabled individual enrollment"

# A device payload is accepted (and, without a custom allocation, not needed).
st=$(devreq PUT "/$SCOPE/registrations/dev-pl/register?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key dev-pl)" dev-pl)" \
    --data-binary '{"registrationId":"dev-pl","payload":{"model":"x1","fw":[1,2,3]}}')
assert_eq 200 "$st" "register with a device payload"

# Malformed tokens.
se=$(($(date +%s) + 3600))
sig=$(urlenc "$(b64_hmac "$(dev_key dev-p1)" "$SCOPE/registrations/dev-p1"$'\n'"$se")")
for bad in "sr=$SCOPE/registrations/dev-p1&sig=$sig&se=$se&skn=registration" \
    "SharedAccessSignature sr=$SCOPE/registrations/dev-p1&sig=$sig&se=soon&skn=registration" \
    "SharedAccessSignature sr=$SCOPE/registrations/dev-p1&se=$se&skn=registration" \
    "SharedAccessSignature sig=$sig&se=$se&skn=registration" \
    "Bearer $TOKEN"; do
    st=$(status_of dev-p1 "$bad")
    assert_error 401 401002 "$st" "malformed SAS token '${bad:0:40}...'"
done

# The look-ups and polls are audited like registrations.
audit_all "&subject=$r9" >/dev/null
assert_eq "device.status refused 404 404004,device.operation refused 404 404004" \
    "$(jq -r '[.event, .outcome, .httpStatus, .errorCode] | join(" ")' "$WORK/audit.jsonl" |
        paste -sd,)" "audit of dev-p9"

# ---- Unknown paths, and known ones with another method ----
for path in "/$SCOPE/registrations/dev-p1/unknown?$API" "/$SCOPE/nothing?$API" "/?$API"; do
    st=$(devreq GET "$path" -H "Authorization: $auth1")
    assert_error 404 404005 "$st" "GET $path"
done
for m in "GET /$SCOPE/registrations/dev-p1/register PUT" \
    "PUT /$SCOPE/registrations/dev-p1 POST" \
    "DELETE /$SCOPE/registrations/dev-p1/operations/x GET" \
    "POST /healthz GET, HEAD" "DELETE /crl GET, HEAD"; do
    read -r method path allow <<<"$m"
    st=$(devreq "$method" "$path?$API" -H "Authorization: $auth1")
    assert_error 405 405001 "$st" "$method $path"
    assert_eq "$allow" "$(header allow)" "$method $path: Allow"
done
# HEAD: the headers a GET has, its Content-Length included, and no body: the next request on
# the same connection is answered.
crl_len=$(curl -sS --cacert "$CA" "$DEV/crl" | wc -c)
st=$(curl -sS --cacert "$CA" -o /dev/null -o /dev/null -D "$WORK/headers" \
    -w '%{http_code} %{num_connects} ' \
    -I "$DEV/healthz" "$DEV/crl")
assert_eq "200 1 200 0 " "$st" "HEAD /healthz, then HEAD /crl on the same connection"
assert_eq "$crl_len" "$(header content-length)" "HEAD /crl: Content-Length"

# Two Content-Length headers: refused, and the connection closed.
printf 'PUT /%s/registrations/dev-p1/register?%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 0\r\n\r\n{}' \
    "$SCOPE" "$API" | timeout 10 openssl s_client -quiet -connect "${DEV#https://}" \
    -CAfile "$CA" 2>/dev/null >"$WORK/two-lengths" || true
head -n 1 "$WORK/two-lengths" | grep -q '^HTTP/1.1 400' ||
    fail "two Content-Length headers: $(head -n 1 "$WORK/two-lengths")"
grep -qi '^connection: close' "$WORK/two-lengths" || fail "two Content-Length: connection kept"

# ---- Settings: the SAS lifetime (provd.json) and the body limit (--max-body) ----
provd_stop
jq '.sas_max_lifetime_s = 600' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
provd_start --max-body 2048
r=dev-p1
st=$(put_reg $r $r "$(sas_token "$(dev_key $r)" $r $(($(date +%s) + 3600)))")
assert_error 401 401002 "$st" "token valid for an hour, with a 10-minute lifetime"
st=$(put_reg $r $r "$(sas_token "$(dev_key $r)" $r $(($(date +%s) + 300)))")
assert_eq 200 "$st" "token valid for 5 minutes, with a 10-minute lifetime"
auth=$(sas_token "$(dev_key $r)" $r $(($(date +%s) + 300)))
pad=$(head -c 1500 /dev/zero | tr '\0' 'B')
st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "$CT_JSON" -H "Authorization: $auth" \
    --data-binary "{\"registrationId\":\"$r\",\"payload\":\"$pad\"}")
assert_eq 200 "$st" "1.5 KiB body with --max-body 2048"
pad=$(head -c 3000 /dev/zero | tr '\0' 'B')
st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "$CT_JSON" -H "Authorization: $auth" \
    --data-binary "{\"registrationId\":\"$r\",\"payload\":\"$pad\"}")
assert_error 413 413001 "$st" "3 KiB body with --max-body 2048"

provd_stop
jq '.sas_max_lifetime_s = 0' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
provd_start
st=$(put_reg $r $r "$(sas_token "$(dev_key $r)" $r $(($(date +%s) + 20 * 365 * 86400)))")
assert_eq 200 "$st" "token valid for 20 years with no lifetime limit"

# docs/errors.md: a JSON value of the wrong type is 400002 (400004 is for an ID that differs).
r=dev-sas-plain
st=$(devreq PUT "/$SCOPE/registrations/$r/register?$API" -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$(dev_key $r)" $r)" --data-binary '{"registrationId":42}')
assert_error 400 400002 "$st" "register with a number as registrationId"

echo "PASS test_device_protocol"
