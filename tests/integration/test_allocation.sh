#!/usr/bin/env bash
# Configuration and allocation (docs/admin-api.md "Endpoints", docs/device-api.md "The payload"):
# endpoints through the admin API and provctl, with the references enrollments make to them;
# the allocation policies as devices see them; configuration templates and their precedence;
# every reprovisioning policy with the endpoint list changed and unchanged, and the operator's
# forced reprovisioning; the custom allocation webhook answering well, with 500 or 302, with
# nonsense (not JSON, over 64 KiB, not UTF-8, nested too deep, empty, a host it was not offered),
# with a certificate provd does not trust, too slowly or not at all, while provd keeps serving
# other devices; refusals quoting names cut inside a character.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SINK=${2:?usage: $0 BIN_DIR WEBHOOK_SINK}

SECRET=allocation-secret-0123456789
provd_init
# The webhooks are verified against the data directory's CA, whose certificate the receivers use.
jq --arg ca "$CA" --arg s "$SECRET" \
    '. + {allocation_ca_file: $ca, allocation_secret: $s, region: "eu-west"}' \
    "$DATA/provd.json" >"$WORK/provd.json" && mv "$WORK/provd.json" "$DATA/provd.json"
# One worker: the device served while a webhook is slow shares its event loop.
provd_start --workers 1

HA=hub-a.example.com
HB=hub-b.example.com
HC=hub-c.example.com
CT_JSON='Content-Type: application/json; charset=utf-8'

pc() {
    "$BIN/provctl" --data-dir "$DATA" --server "$ADM" "$@" >"$WORK/out" 2>"$WORK/err"
}
oj() {
    jq -r "$1" "$WORK/out"
}

# reg REGID KEY [PAYLOAD_JSON]: registers with the device key KEY.
reg() {
    local body
    body=$(jq -nc --arg r "$1" --argjson p "${3:-null}" \
        '{registrationId: $r} + (if $p == null then {} else {payload: $p} end)')
    devreq PUT "/$SCOPE/registrations/$1/register?$API" -H "$CT_JSON" \
        -H "Authorization: $(sas_token "$2" "$1")" --data-binary "$body"
}

# state: "status assignedHub substatus errorCode" of the last register answer.
state() {
    jb '[.status, (.registrationState | .assignedHub, .substatus, .errorCode) | . // "-"
         | tostring] | join(" ")'
}

# last_audit SUBJECT: "event outcome httpStatus errorCode" of the newest record about SUBJECT.
last_audit() {
    local st
    st=$(admreq GET "/audit?subject=$1&limit=1000")
    assert_eq 200 "$st" "GET /audit?subject=$1"
    jb '.records[-1] | [.event, .outcome, .httpStatus, .errorCode] | map(tostring) | join(" ")'
}

# ---- Endpoints through the admin API ----
st=$(admjson PUT /endpoints/Hub-A.example.com '{"region":"eu-west"}')
assert_eq 200 "$st" "PUT endpoint hub-a"
assert_eq "$HA 8883 mqtts 1 true eu-west null" "$(jb '[.hostName, .port, .protocol, .weight,
    .enabled, .region, (.trustBundle | tostring)] | map(tostring) | join(" ")')" "hub-a defaults"
assert_match "$TIME_RE" "$(jb .createdDateTimeUtc)" "hub-a createdDateTimeUtc"
etag_a=$(jb .etag)
st=$(admjson PUT "/endpoints/$HB" "$(jq -nc --rawfile ca "$CA" \
    '{protocol: "https", port: 8443, weight: 3, trustBundle: $ca}')")
assert_eq 200 "$st" "PUT endpoint hub-b"
assert_eq "https 8443 3" "$(jb '[.protocol, .port, .weight] | map(tostring) | join(" ")')" "hub-b"
assert_eq "$(cat "$CA")" "$(jb .trustBundle)" "hub-b trust bundle kept as given"
st=$(admjson PUT "/endpoints/$HC" '{"region":"us-east"}')
assert_eq 200 "$st" "PUT endpoint hub-c"
st=$(admreq GET "/endpoints/HUB-A.EXAMPLE.COM")
assert_eq "200 $HA $etag_a" "$st $(jb '[.hostName, .etag] | join(" ")')" "GET endpoint hub-a"
st=$(admjson PUT "/endpoints/$HA" '{"region":"eu-west","weight":2}' -H "If-Match: \"$etag_a\"")
assert_eq "200 2" "$st $(jb .weight)" "PUT endpoint with If-Match"
st=$(admjson PUT "/endpoints/$HA" '{"region":"eu-west"}' -H "If-Match: \"$etag_a\"")
assert_error 412 412001 "$st" "PUT endpoint with a stale etag"
st=$(admjson PUT "/endpoints/$HA" '{"region":"eu-west"}')
assert_eq "200 1" "$st $(jb .weight)" "PUT endpoint unconditionally"
st=$(admreq GET /endpoints -H 'x-ms-max-item-count: 2')
assert_eq "200 $HA $HB" "$st $(jb '[.[].hostName] | join(" ")')" "GET /endpoints, first page"
cont=$(header x-ms-continuation)
[ -n "$cont" ] || fail "GET /endpoints: no continuation"
st=$(admjson POST /endpoints/query '{"query":"*"}' -H 'x-ms-max-item-count: 2' \
    -H "x-ms-continuation: $cont")
assert_eq "200 $HC" "$st $(jb '[.[].hostName] | join(" ")')" "POST /endpoints/query, next page"
assert_eq "" "$(header x-ms-continuation)" "last page has no continuation"
st=$(admreq GET /endpoints/hub-none.example.com)
assert_error 404 404006 "$st" "GET an unknown endpoint"
st=$(admreq DELETE /endpoints/hub-none.example.com)
assert_error 404 404006 "$st" "DELETE an unknown endpoint"
st=$(admjson PUT /endpoints/hub_x '{}')
assert_error 400 400003 "$st" "endpoint with an invalid host name"
st=$(admjson PUT /endpoints/hub-x '{"hostName":"hub-y"}')
assert_error 400 400004 "$st" "endpoint whose hostName differs from the path"
while IFS= read -r doc; do
    st=$(admjson PUT /endpoints/hub-x "$doc")
    assert_error 400 400006 "$st" "invalid endpoint $doc"
done <<'EOF'
{"port":0}
{"protocol":"gopher"}
{"weight":0}
{"enabled":"yes"}
{"region":"eu west"}
{"trustBundle":"not PEM"}
{"trustBundle":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}
{"typo":1}
EOF
# The trust bundle goes to every device as given: text around its certificates is refused.
st=$(admjson PUT /endpoints/hub-x "$(jq -nc --rawfile ca "$CA" \
    '{trustBundle: ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" + $ca)}')")
assert_error 400 400006 "$st" "trust bundle with text before its certificate"
assert_eq "trustBundle holds text outside its PEM blocks" "$(jb .message)" "trust bundle message"
# Refusals that quote a name cut inside a character are still JSON (UTF-8) answers.
# LONG_NAME is "a" and 40 "é" (2 bytes each); CUT_N is "a", N-1 of them and '?' in place of the
# half "é" left by a cut at 2N bytes.
E=$'\xc3\xa9'
LONG_NAME="a$(printf "$E%.0s" $(seq 40))"
CUT_20="a$(printf "$E%.0s" $(seq 19))?"
CUT_32="a$(printf "$E%.0s" $(seq 31))?"
st=$(admjson PUT /endpoints/hub-x "$(jq -nc --arg h "$LONG_NAME" '{hostName: $h}')")
assert_error 400 400004 "$st" "hostName of 81 bytes that differs from the path"
assert_eq "hostName \"$CUT_32\" differs from \"hub-x\" in the path" "$(jb .message)" \
    "hostName refusal, cut inside a character"
st=$(admreq GET /endpoints/hub-x)
assert_error 404 404006 "$st" "no refused endpoint was stored"

# Enrollments and groups name existing endpoints only.
GK=$(new_key 32)
st=$(admjson PUT /enrollmentGroups/refs "$(jq -nc --arg k "$GK" '{attestation: {type:
    "symmetricKey", symmetricKey: {primaryKey: $k}}, iotHubs: ["hub-a.example.com",
    "hub-nowhere.example.com"]}')")
assert_error 400 400006 "$st" "group naming an endpoint that does not exist"
assert_match 'hub-nowhere\.example\.com' "$(jb .message)" "the refusal names the endpoint"
st=$(admjson PUT /enrollments/refs-1 '{"iotHubHostName":"hub-nowhere.example.com"}')
assert_error 400 400006 "$st" "enrollment naming an endpoint that does not exist"
st=$(admjson PUT /enrollmentGroups/refs "$(jq -nc --arg k "$GK" '{attestation: {type:
    "symmetricKey", symmetricKey: {primaryKey: $k}}, iotHubs: ["HUB-A.example.com"]}')")
assert_eq "200 $HA" "$st $(jb '.iotHubs | join(" ")')" "group naming hub-a (stored lower-cased)"
st=$(admreq DELETE "/endpoints/$HA")
assert_error 409 409002 "$st" "DELETE an endpoint a group names"
assert_match "enrollment group refs" "$(jb .message)" "the refusal lists the group"
st=$(admreq GET "/endpoints/$HA")
assert_eq 200 "$st" "the endpoint is still there"
st=$(admreq DELETE /enrollmentGroups/refs)
assert_eq 204 "$st" "DELETE the group"
st=$(admjson PUT /endpoints/hub-gone.example.com '{}')
assert_eq 200 "$st" "PUT endpoint hub-gone"
st=$(admreq DELETE /endpoints/hub-gone.example.com)
assert_eq 204 "$st" "DELETE an endpoint nobody names"
assert_eq "endpoint.delete accepted 204 0" "$(last_audit hub-gone.example.com)" \
    "audit of the endpoint delete"
st=$(admreq GET "/audit?subject=$HA")
assert_eq "endpoint.put endpoint.put endpoint.put" \
    "$(jb '[.records[] | select(.outcome == "accepted") | .event] | join(" ")')" \
    "audit of hub-a's changes"

# ---- Endpoints through provctl ----
pc endpoint add hub-d.example.com --protocol amqps --weight 5 --region ap-south \
    --trust-bundle "$CA" --json || fail "endpoint add: $(cat "$WORK/err")"
assert_eq "hub-d.example.com amqps 5671 5 ap-south true" "$(oj '[.hostName, .protocol, .port,
    .weight, .region, .enabled] | map(tostring) | join(" ")')" "provctl endpoint add"
pc endpoint add hub-d.example.com && fail "endpoint add of an existing endpoint succeeded"
grep -q "already exists" "$WORK/err" || fail "endpoint add of an existing one: $(cat "$WORK/err")"
pc endpoint update hub-d.example.com --disabled --no-region --port 5700 --json ||
    fail "endpoint update: $(cat "$WORK/err")"
assert_eq "amqps 5700 5 false null" "$(oj '[.protocol, .port, .weight, .enabled,
    (.region | tostring)] | map(tostring) | join(" ")')" "provctl endpoint update"
pc endpoint show hub-d.example.com || fail "endpoint show: $(cat "$WORK/err")"
grep -Eq '^Trust bundle: +1 certificate ' "$WORK/out" || fail "endpoint show text: $(cat "$WORK/out")"
grep -Eq '^Enabled: +false$' "$WORK/out" || fail "endpoint show text: $(cat "$WORK/out")"
pc endpoint list || fail "endpoint list: $(cat "$WORK/err")"
grep -Eq '^HOST +PROTOCOL +PORT +WEIGHT +ENABLED +REGION$' "$WORK/out" ||
    fail "endpoint list header: $(cat "$WORK/out")"
grep -Eq '^hub-d\.example\.com +amqps +5700 +5 +false +-$' "$WORK/out" ||
    fail "endpoint list row: $(cat "$WORK/out")"
assert_eq 4 "$(grep -c '\.example\.com' "$WORK/out")" "endpoint list rows"
set +e
pc endpoint add 'bad host'
assert_eq 2 $? "endpoint add of an invalid host name"
pc endpoint remove hub-none.example.com
assert_eq 1 $? "endpoint remove of an unknown endpoint"
set -e
grep -q "404006" "$WORK/err" || fail "endpoint remove of an unknown one: $(cat "$WORK/err")"
pc endpoint remove hub-d.example.com || fail "endpoint remove: $(cat "$WORK/err")"
assert_eq "Deleted endpoint hub-d.example.com." "$(cat "$WORK/out")" "endpoint remove text"

# ---- Allocation policies ----
# Each group has a key of its own, made from its ID (a device is attested by the first group
# whose key signs its token).
group_key() {
    b64_hmac "$GK" "group:$1"
}
group_put() { # group_put ID JSON_EXTRA
    admjson PUT "/enrollmentGroups/$1" "$(jq -nc --arg k "$(group_key "$1")" --argjson x "$2" \
        '{attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}} + $x')"
}
dev_key() { # dev_key REGID: the key of a device of the group its ID starts with
    b64_hmac "$(group_key "${1%%-*}")" "$1"
}

# geoLatency: the device's reported region, else this listener's (eu-west), else hashed.
st=$(group_put geo "{\"allocationPolicy\":\"geoLatency\",\"iotHubs\":[\"$HA\",\"$HC\"]}")
assert_eq 200 "$st" "PUT group geo"
st=$(reg geo-1 "$(dev_key geo-1)" '{"region":"us-east"}')
assert_eq "200 assigned $HC initialAssignment -" "$st $(state)" "geoLatency: device in us-east"
st=$(reg geo-2 "$(dev_key geo-2)")
assert_eq "200 assigned $HA initialAssignment -" "$st $(state)" \
    "geoLatency: no region from the device, the listener's eu-west"
for i in $(seq 1 12); do
    st=$(reg "geo-x$i" "$(dev_key "geo-x$i")" '{"region":"mars"}')
    assert_eq 200 "$st" "geoLatency: unknown region"
    assert_match "^($HA|$HC)\$" "$(jb .registrationState.assignedHub)" "geoLatency fallback"
done

# Disabled endpoints are never chosen; with none left, the registration fails cleanly.
st=$(group_put spread "{\"allocationPolicy\":\"evenlyWeighted\",\"iotHubs\":[\"$HA\",\"$HC\"]}")
assert_eq 200 "$st" "PUT group spread"
st=$(admjson PUT "/endpoints/$HC" '{"region":"us-east","enabled":false}')
assert_eq 200 "$st" "disable hub-c"
for i in $(seq 1 16); do
    st=$(reg "spread-$i" "$(dev_key "spread-$i")")
    assert_eq "200 assigned $HA" "$st $(jb '[.status, .registrationState.assignedHub] |
        join(" ")')" "spread-$i never on the disabled hub-c"
done
st=$(admjson PUT "/endpoints/$HA" '{"region":"eu-west","enabled":false}')
assert_eq 200 "$st" "disable hub-a"
st=$(reg spread-none "$(dev_key spread-none)")
assert_eq "200 failed - - 400008" "$st $(state)" "no enabled endpoint left"
assert_eq "no enabled endpoint is available for this device" \
    "$(jb .registrationState.errorMessage)" "no endpoint: errorMessage"
assert_eq "device.register refused 200 400008" "$(last_audit spread-none)" "no endpoint: audit"
st=$(admreq GET /registrations/spread-none)
assert_error 404 404004 "$st" "a failed registration stores no state"
for h in "$HA" "$HC"; do
    st=$(admjson PUT "/endpoints/$h" "$(jq -nc --arg r "$([ "$h" = "$HA" ] && echo eu-west ||
        echo us-east)" '{region: $r}')")
    assert_eq 200 "$st" "enable $h again"
done

# static: the one endpoint named, with what the device needs to reach it.
IK=$(new_key 32)
ind_put() { # ind_put REGID JSON_EXTRA
    admjson PUT "/enrollments/$1" "$(jq -nc --arg k "$IK" --argjson x "$2" \
        '{attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}}} + $x')"
}
st=$(ind_put static-1 "{\"allocationPolicy\":\"static\",\"iotHubHostName\":\"$HB\"}")
assert_eq 200 "$st" "PUT enrollment static-1"
st=$(reg static-1 "$IK")
assert_eq "200 assigned $HB initialAssignment -" "$st $(state)" "static allocation"
assert_eq "$(jq -nc --arg h "$HB" --rawfile ca "$CA" \
    '{host: $h, port: 8443, protocol: "https", trustBundle: $ca}')" \
    "$(jb '.registrationState.payload.endpoint | tojson')" "payload.endpoint with its trust bundle"
st=$(ind_put static-2 "{\"allocationPolicy\":\"static\",\"iotHubs\":[\"$HA\",\"$HB\"]}")
assert_error 400 400006 "$st" "static with two endpoints and no iotHubHostName"

# ---- Configuration templates ----
CONF='{"mqtt": {"clientId": "${deviceId}", "topic": "fleets/${group}/${registrationId}/up",
       "broker": "${endpoint.protocol}://${endpoint.host}:${endpoint.port}"},
       "site": "${payload.site}", "floor": "${payload.where.floor}", "interval": 30,
       "literal": "$${deviceId}"}'
TWIN='{"tags": {"tier": "bronze", "line": 4}, "properties": {"desired": {"interval": 60}}}'
st=$(group_put tmpl "$(jq -nc --argjson c "$CONF" --argjson t "$TWIN" --arg h "$HA" \
    '{iotHubHostName: $h, configuration: $c, initialTwin: $t}')")
assert_eq 200 "$st" "PUT group tmpl"
st=$(reg tmpl-1 "$(dev_key tmpl-1)" '{"site":"lab-3","where":{"floor":2}}')
assert_eq "200 assigned $HA" "$st $(jb '[.status, .registrationState.assignedHub] | join(" ")')" \
    "register tmpl-1"
assert_eq "$(jq -S . <<<"{\"endpoint\": {\"host\": \"$HA\", \"port\": 8883, \"protocol\": \"mqtts\"},
    \"configuration\": {\"mqtt\": {\"clientId\": \"tmpl-1\", \"topic\": \"fleets/tmpl/tmpl-1/up\",
    \"broker\": \"mqtts://$HA:8883\"}, \"site\": \"lab-3\", \"floor\": \"2\", \"interval\": 30,
    \"literal\": \"\${deviceId}\"}, \"initialTwin\": $TWIN}")" \
    "$(jq -S .registrationState.payload "$WORK/body")" "rendered payload of tmpl-1"

# An individual enrollment that takes the group's templates: its own values win.
st=$(ind_put tmpl-ind "$(jq -nc --arg h "$HB" '{enrollmentGroupId: "TMPL", deviceId: "unit-9",
    iotHubHostName: $h, configuration: {site: "fixed-${registrationId}", extra: ["${group}"]},
    initialTwin: {tags: {tier: "gold"}, properties: {desired: {mode: "eco"}}}}')")
assert_eq "200 tmpl" "$st $(jb .enrollmentGroupId)" "PUT enrollment tmpl-ind"
st=$(reg tmpl-ind "$IK")
assert_eq 200 "$st" "register tmpl-ind"
assert_eq "$(jq -S . <<<"{\"mqtt\": {\"clientId\": \"unit-9\", \"topic\": \"fleets/tmpl/tmpl-ind/up\",
    \"broker\": \"https://$HB:8443\"}, \"site\": \"fixed-tmpl-ind\", \"floor\": \"\",
    \"interval\": 30, \"literal\": \"\${deviceId}\", \"extra\": [\"tmpl\"]}")" \
    "$(jq -S .registrationState.payload.configuration "$WORK/body")" \
    "configuration: the enrollment's values over the group's"
assert_eq '{"properties":{"desired":{"interval":60,"mode":"eco"}},"tags":{"line":4,"tier":"gold"}}' \
    "$(jq -cS .registrationState.payload.initialTwin "$WORK/body")" \
    "initialTwin: the enrollment's values over the group's"
assert_eq null "$(jb .registrationState.symmetricKey)" "tmpl-ind is not attested by the group"
st=$(admreq DELETE /enrollmentGroups/tmpl)
assert_error 409 409002 "$st" "DELETE a group an enrollment takes templates from"
assert_match "enrollment tmpl-ind" "$(jb .message)" "the refusal names the enrollment"

st=$(group_put bad-tmpl '{"configuration":{"a":{"b":["x","${deviceID}"]}}}')
assert_error 400 400006 "$st" "template with an unknown variable"
assert_eq 'configuration.a.b[1]: unknown variable ${deviceID}' "$(jb .message)" \
    "the refusal names the place and the variable"
st=$(group_put bad-tmpl '{"configuration":{"a":"${deviceId"}}')
assert_error 400 400006 "$st" "template with an unclosed variable"
st=$(group_put bad-tmpl "$(jq -nc --arg k "$LONG_NAME" '{configuration: {($k): "${nope}"}}')")
assert_error 400 400006 "$st" "template refusal quoting a member name cut inside a character"
assert_eq "configuration.$CUT_20: unknown variable \${nope}" "$(jb .message)" \
    "template refusal message"
st=$(group_put bad-tmpl '{"configuration":"x"}')
assert_error 400 400006 "$st" "configuration that is not an object"
st=$(ind_put bad-ind '{"enrollmentGroupId":"no-such-group"}')
assert_error 400 400006 "$st" "enrollmentGroupId naming no group"
st=$(admreq GET /enrollmentGroups/bad-tmpl)
assert_error 404 404003 "$st" "no refused group was stored"

# ---- Reprovisioning: each policy, with the endpoint list changed and unchanged ----
rp_put() { # rp_put REGID HUB POLICY_JSON
    ind_put "$1" "$(jq -nc --arg h "$2" --argjson p "$3" \
        '{iotHubHostName: $h, reprovisionPolicy: $p}')"
}
for p in never:false:true migrate:true:true reset:true:false; do
    IFS=: read -r name update migrate <<<"$p"
    policy="{\"updateHubAssignment\":$update,\"migrateDeviceData\":$migrate}"
    r=rp-$name
    st=$(rp_put "$r" "$HA" "$policy")
    assert_eq 200 "$st" "PUT $r"
    st=$(reg "$r" "$IK")
    assert_eq "200 assigned $HA initialAssignment -" "$st $(state)" "$r: first registration"
    st=$(reg "$r" "$IK")
    assert_eq "200 assigned $HA initialAssignment -" "$st $(state)" "$r: again, list unchanged"
    st=$(rp_put "$r" "$HC" "$policy")
    assert_eq 200 "$st" "PUT $r naming hub-c instead"
    st=$(reg "$r" "$IK")
    case $name in
    never) want="$HA initialAssignment" ;;
    migrate) want="$HC deviceDataMigrated" ;;
    reset) want="$HC deviceDataReset" ;;
    esac
    assert_eq "200 assigned $want -" "$st $(state)" "$r: list changed"
    assert_eq "$(cut -d' ' -f1 <<<"$want")" "$(jb .registrationState.payload.endpoint.host)" \
        "$r: payload endpoint"
    st=$(reg "$r" "$IK")
    assert_eq "200 assigned $(cut -d' ' -f1 <<<"$want") initialAssignment -" "$st $(state)" \
        "$r: again after the change"
done

# Forced reprovisioning: rp-never stays on hub-a until the operator asks.
st=$(admreq POST /registrations/rp-never/reprovision)
assert_eq 204 "$st" "POST reprovision"
assert_eq "registration.reprovision accepted 204 0" "$(last_audit rp-never)" "reprovision audit"
st=$(admreq GET /registrations/rp-never)
assert_eq "200 true $HA" "$st $(jb '[.reprovisionPending, .assignedHub] | join(" ")')" \
    "reprovision pending"
st=$(reg rp-never "$IK")
assert_eq "200 assigned $HC reprovisionedToInitialAssignment -" "$st $(state)" \
    "forced reprovisioning re-allocates"
st=$(admreq GET /registrations/rp-never)
assert_eq "200 null" "$st $(jb '.reprovisionPending | tostring')" "reprovision flag cleared"
st=$(reg rp-never "$IK")
assert_eq "200 assigned $HC initialAssignment -" "$st $(state)" "after the forced reprovisioning"
st=$(admreq POST /registrations/rp-nobody/reprovision)
assert_error 404 404004 "$st" "reprovision of an unknown registration"
pc registration reprovision rp-migrate || fail "registration reprovision: $(cat "$WORK/err")"
assert_eq "Registration rp-migrate is re-allocated at the device's next registration." \
    "$(cat "$WORK/out")" "provctl registration reprovision"
st=$(reg rp-migrate "$IK")
assert_eq "200 assigned $HC reprovisionedToInitialAssignment -" "$st $(state)" \
    "forced reprovisioning from provctl, same endpoint"

# "Never reprovision" keeps a device on its endpoint only while the endpoint exists.
st=$(admjson PUT /endpoints/hub-old.example.com '{}')
assert_eq 200 "$st" "PUT endpoint hub-old"
st=$(rp_put rp-old hub-old.example.com '{"updateHubAssignment":false}')
st=$(reg rp-old "$IK")
assert_eq "200 assigned hub-old.example.com" "$st $(jb '[.status, .registrationState.assignedHub] |
    join(" ")')" "rp-old on hub-old"
st=$(rp_put rp-old "$HA" '{"updateHubAssignment":false}')
st=$(admreq DELETE /endpoints/hub-old.example.com)
assert_eq 204 "$st" "DELETE hub-old, which nobody names any more"
st=$(reg rp-old "$IK")
assert_eq "200 failed - - 400008" "$st $(state)" "kept endpoint gone"

# ---- Custom allocation webhook ----
ANSWER=$(jq -nc --arg h "$HB" '{iotHubHostName: $h, initialTwin: {tags: {from: "webhook"}},
    payload: {ticket: 42}}')
printf '%s' "$ANSWER" >"$WORK/good.reply"
printf 'this is not JSON' >"$WORK/bad.reply"
jq -nc '{iotHubHostName: "hub-c.example.com"}' >"$WORK/stranger.reply"
sink_start good --reply-file "$WORK/good.reply"
sink_start slow --reply-file "$WORK/good.reply" --delay-ms 3000
sink_start err --status 500 --reply-file "$WORK/good.reply"
sink_start bad --reply-file "$WORK/bad.reply"
sink_start stranger --reply-file "$WORK/stranger.reply"

custom_put() { # custom_put REGID SINK [TIMEOUT_MS]
    local url="https://127.0.0.1:${SINK_PORT[$2]:-1}/api/allocate?code=function-key-1"
    ind_put "$1" "$(jq -nc --arg u "$url" --argjson t "${3:-null}" --arg a "$HA" --arg b "$HB" \
        '{allocationPolicy: "custom", iotHubs: [$a, $b], initialTwin: {tags: {tier: "gold"}},
          customAllocationDefinition: ({webhookUrl: $u, apiVersion: "2021-10-01"} +
          (if $t == null then {} else {timeoutMs: $t} end))}')"
}
st=$(ind_put custom-bad '{"allocationPolicy":"custom"}')
assert_error 400 400006 "$st" "custom without customAllocationDefinition"
st=$(ind_put custom-bad '{"customAllocationDefinition":{"webhookUrl":"http://x.example.com/"}}')
assert_error 400 400006 "$st" "webhook that is not https"

st=$(custom_put custom-ok good)
assert_eq 200 "$st" "PUT custom-ok"
st=$(reg custom-ok "$IK" '{"model":"x1"}')
assert_eq "200 assigned $HB initialAssignment -" "$st $(state)" "webhook chose hub-b"
assert_eq '{"ticket":42}' "$(jb '.registrationState.payload.webhook | tojson')" \
    "the webhook's payload reaches the device"
assert_eq '{"tags":{"from":"webhook","tier":"gold"}}' \
    "$(jq -cS .registrationState.payload.initialTwin "$WORK/body")" \
    "the webhook's initialTwin over the enrollment's"
req=$(tail -n1 "$WORK/good.jsonl")
assert_eq "POST /api/allocate?code=function-key-1 $SECRET" "$(jq -r '[.method, .uri,
    .headers["x-provd-allocation-secret"]] | join(" ")' <<<"$req")" "the webhook request"
body=$(jq -r .body <<<"$req")
assert_eq "custom-ok custom {\"model\":\"x1\"} $HA,$HB {}" "$(jq -r '[.individualEnrollment
    .registrationId, .individualEnrollment.allocationPolicy, (.deviceRuntimeContext.payload |
    tojson), (.linkedHubs | join(",")), (.deviceRuntimeContext.symmetricKey | tojson)] |
    join(" ")' <<<"$body")" "the webhook request body"
assert_eq null "$(jq -r .deviceRuntimeContext.currentIotHubHostName <<<"$body")" \
    "first registration: no current hub"
grep -qF -- "$IK" <<<"$body" && fail "the webhook request holds the enrollment key"
grep -q primaryKey <<<"$body" && fail "the webhook request names a key"
st=$(reg custom-ok "$IK")
assert_eq "200 assigned $HB initialAssignment -" "$st $(state)" "webhook again, same hub"
assert_eq "$HB custom-ok" "$(tail -n1 "$WORK/good.jsonl" | jq -r '.body | fromjson |
    .deviceRuntimeContext | [.currentIotHubHostName, .currentDeviceId] | join(" ")')" \
    "re-registration: the webhook is told the current hub and device"

# custom_fails SINK:CODE...: device custom-SINK, enrolled with the webhook of sink SINK, fails
# its registration with CODE, in its answer and its audit record.
custom_fails() {
    local c s code r st
    for c in "$@"; do
        IFS=: read -r s code <<<"$c"
        r=custom-$s
        st=$(custom_put "$r" "$s")
        assert_eq 200 "$st" "PUT $r"
        st=$(reg "$r" "$IK")
        assert_eq "200 failed - - $code" "$st $(state)" "$r: the device's answer"
        assert_eq "device.register refused 200 $code" "$(last_audit "$r")" "$r: audit"
    done
}
custom_fails err:502001 bad:502002 stranger:502002 nowhere:502001
assert_eq 'the custom allocation webhook answered HTTP 500' \
    "$(admreq GET '/audit?subject=custom-err' >/dev/null; jb '.records[-1].reason')" \
    "500: the audit reason"
assert_match 'not one of the linkedHubs' \
    "$(admreq GET '/audit?subject=custom-stranger' >/dev/null; jb '.records[-1].reason')" \
    "stranger: the audit reason"
assert_eq 1 "$(wc -l <"$WORK/err.jsonl" | tr -d ' ')" "one call to the failing webhook"

# Hostile or broken webhooks: each fails its device's registration with its code, and the
# device's answer still carries the registrationState that says why.
jq -nc --arg h "$HB" --arg pad "$(head -c 70000 /dev/zero | tr '\0' x)" \
    '{iotHubHostName: $h, payload: $pad}' >"$WORK/huge.reply"
printf '{"iotHubHostName":"%s","payload":"\xff"}' "$HB" >"$WORK/latin1.reply"
{ printf '{"iotHubHostName":"%s","payload":' "$HB"
  head -c 30000 /dev/zero | tr '\0' '['
  head -c 30000 /dev/zero | tr '\0' ']'
  printf '}'; } >"$WORK/deep.reply"
jq -nc --arg h "$LONG_NAME" '{iotHubHostName: $h}' >"$WORK/longname.reply"
: >"$WORK/empty.reply"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/self.key" \
    -out "$WORK/self.pem" 2>/dev/null
sink_start huge --reply-file "$WORK/huge.reply"
sink_start latin1 --reply-file "$WORK/latin1.reply"
sink_start deep --reply-file "$WORK/deep.reply"
sink_start longname --reply-file "$WORK/longname.reply"
sink_start empty --reply-file "$WORK/empty.reply"
sink_start redirect --status 302 --reply-file "$WORK/good.reply"
sink_start selfsigned --cert "$WORK/self.pem" --key "$WORK/self.key" --reply-file "$WORK/good.reply"
custom_fails huge:502002 latin1:502002 deep:502002 longname:502002 empty:502002 \
    redirect:502001 selfsigned:502001
st=$(reg custom-longname "$IK")
assert_eq "the webhook chose \"$CUT_32\", which is not one of the linkedHubs" \
    "$(jb .registrationState.errorMessage)" "longname: errorMessage, cut inside a character"
assert_eq 0 "$(wc -l <"$WORK/selfsigned.jsonl" | tr -d ' ')" \
    "no request reached the webhook whose certificate is not trusted"

# A slow webhook fails its own registration, and nobody else waits for it.
st=$(custom_put custom-slow slow 1000)
assert_eq 200 "$st" "PUT custom-slow"
st=$(ind_put fast-1 "{\"iotHubHostName\":\"$HA\"}")
assert_eq 200 "$st" "PUT fast-1"
(
    t0=$(date +%s%N)
    curl -sS --cacert "$CA" -o "$WORK/slow.body" -w '%{http_code}' -X PUT -H "$CT_JSON" \
        -H "Authorization: $(sas_token "$IK" custom-slow)" \
        --data-binary '{"registrationId":"custom-slow"}' \
        "$DEV/$SCOPE/registrations/custom-slow/register?$API" >"$WORK/slow.status"
    echo $((($(date +%s%N) - t0) / 1000000)) >"$WORK/slow.ms"
) &
slow_pid=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/slow.jsonl" ] && break
    sleep 0.02
done
[ -s "$WORK/slow.jsonl" ] || fail "the slow webhook was not called"
t0=$(date +%s%N)
st=$(reg fast-1 "$IK")
fast_ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "200 assigned $HA" "$st $(jb '[.status, .registrationState.assignedHub] | join(" ")')" \
    "another device during the slow webhook"
[ ! -s "$WORK/slow.ms" ] || fail "the slow registration ended before the other device was served"
[ "$fast_ms" -lt 800 ] || fail "another device waited ${fast_ms} ms for the slow webhook"
wait "$slow_pid"
assert_eq 200 "$(cat "$WORK/slow.status")" "slow webhook: HTTP status"
assert_eq "failed 504001" "$(jq -r '[.status, .registrationState.errorCode] | map(tostring) |
    join(" ")' "$WORK/slow.body")" "slow webhook: the device's answer"
slow_ms=$(cat "$WORK/slow.ms")
[ "$slow_ms" -ge 900 ] && [ "$slow_ms" -lt 2900 ] ||
    fail "the slow webhook's registration took ${slow_ms} ms, not its 1000 ms timeout"
assert_eq "device.register refused 200 504001" "$(last_audit custom-slow)" "slow webhook: audit"
echo "slow webhook: its device answered after ${slow_ms} ms; another device meanwhile in ${fast_ms} ms"

# No secret in the audit log or provd's log: keys, the shared secret, the URL's function key.
audit_all >/dev/null
for secret in "$GK" "$IK" "$SECRET" "function-key-1"; do
    ! grep -qF -- "$secret" "$WORK/audit.jsonl" || fail "the audit log holds ${secret:0:8}..."
    ! grep -qF -- "$secret" "$WORK/provd.log" || fail "provd's log holds ${secret:0:8}..."
done

# A stop while a webhook is being asked: provd waits for it (no longer than its timeout), tells
# the device to come back (503, unless the answer is cut by the exit: the device retries either
# way), and exits 0.
curl -sS --cacert "$CA" -o "$WORK/stop.body" -w '%{http_code}' -X PUT -H "$CT_JSON" \
    -H "Authorization: $(sas_token "$IK" custom-slow)" --data-binary '{"registrationId":"custom-slow"}' \
    "$DEV/$SCOPE/registrations/custom-slow/register?$API" >"$WORK/stop.status" &
stop_pid=$!
n=$(wc -l <"$WORK/slow.jsonl")
for _ in $(seq 1 100); do
    [ "$(wc -l <"$WORK/slow.jsonl")" -gt "$n" ] && break
    sleep 0.02
done
[ "$(wc -l <"$WORK/slow.jsonl")" -gt "$n" ] || fail "the slow webhook was not called again"
t0=$(date +%s%N)
provd_stop || fail "provd exit status after SIGTERM during a webhook call"
stop_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$stop_ms" -lt 2900 ] || fail "the stop took ${stop_ms} ms"
wait "$stop_pid" || true
stop_answer="$(cat "$WORK/stop.status") $(jq -r .errorCode "$WORK/stop.body" 2>/dev/null || true)"
[ "$stop_answer" = "503 503001" ] || [ "$stop_answer" = "000 " ] ||
    fail "the device whose webhook call a stop interrupted got '$stop_answer'"

echo "PASS test_allocation"
