#!/usr/bin/env bash
# provctl against a running provd (docs/provctl.md): groups, enrollments, registration states,
# the audit log and info, in text and --json, with the exit statuses of failures; then a device
# registers with a key from `provctl derive-key` and a token from `provctl sas`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
provd_start
# provctl finds the admin port of a data directory in DIR/provd.ports.
cp "$WORK/ports.json" "$DATA/provd.ports"

# pc ARGS...: provctl on the data directory; stdout to $WORK/out, stderr to $WORK/err, the exit
# status in $RC.
pc() {
    RC=0
    "$BIN/provctl" --data-dir "$DATA" "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
}

# pc_ok WHAT ARGS...: pc that must succeed.
pc_ok() {
    local what=$1
    shift
    pc "$@"
    [ "$RC" -eq 0 ] || fail "$what: provctl $* exited $RC: $(cat "$WORK/err")"
}

# pc_fails STATUS PATTERN WHAT ARGS...: pc that must exit STATUS with one line on stderr
# matching PATTERN (an extended regex) and nothing on stdout.
pc_fails() {
    local status=$1 pattern=$2 what=$3
    shift 3
    pc "$@"
    assert_eq "$status" "$RC" "$what: exit status"
    grep -Eq -- "$pattern" "$WORK/err" || fail "$what: stderr '$(cat "$WORK/err")' lacks /$pattern/"
    assert_match '^provctl: ' "$(head -n1 "$WORK/err")" "$what: message prefix"
    assert_eq "" "$(cat "$WORK/out")" "$what: stdout"
}

out() {
    cat "$WORK/out"
}

oj() {
    jq -r "$1" "$WORK/out"
}

# ---- info ----
pc_ok info info
grep -Eq "^ID scope: +$SCOPE\$" "$WORK/out" || fail "info text lacks the ID scope: $(out)"
grep -Eq "^CA: +CN=provd issuing CA $SCOPE\$" "$WORK/out" || fail "info text lacks the CA: $(out)"
grep -Eq "^CA issues until: +20[0-9-]{8}T" "$WORK/out" || fail "info text lacks the CA's end: $(out)"
! grep -q "CA cannot issue" "$WORK/out" || fail "info says a CA valid now cannot issue: $(out)"
pc_ok "info --json" --json info
assert_eq "$SCOPE 0 0 0" "$(oj '[.idScope, .counts.enrollments, .counts.enrollmentGroups,
    .counts.registrations] | join(" ")')" "info --json"
assert_eq "true" "$(oj .ca.canIssue)" "info --json: the CA can issue"

# The same with the connection given in full, without the data directory.
RC=0
"$BIN/provctl" --server "$ADM" --ca-file "$CA" --token-file "$DATA/admin.token" --json info \
    >"$WORK/out" 2>"$WORK/err" || RC=$?
assert_eq 0 "$RC" "info with --server --ca-file --token-file: $(cat "$WORK/err")"
assert_eq "$SCOPE" "$(oj .idScope)" "info with --server"

# The environment: PROVD_DATA_DIR alone, and the command line beating PROVD_SERVER.
RC=0
PROVD_DATA_DIR=$DATA "$BIN/provctl" --json info >"$WORK/out" 2>"$WORK/err" || RC=$?
assert_eq "0 $SCOPE" "$RC $(oj .idScope)" "info with PROVD_DATA_DIR: $(cat "$WORK/err")"
RC=0
PROVD_SERVER=https://127.0.0.1:1 "$BIN/provctl" --data-dir "$DATA" --json info \
    >"$WORK/out" 2>"$WORK/err" || RC=$?
assert_eq "0 $SCOPE" "$RC $(oj .idScope)" "--data-dir beats PROVD_SERVER: $(cat "$WORK/err")"

# A token the server does not know.
printf 'not-the-token\n' >"$WORK/bad.token"
pc_fails 1 '401002' "unknown admin token" --token-file "$WORK/bad.token" info
grep -qF -- "not-the-token" "$WORK/err" && fail "provctl printed the token"

# ---- Groups ----
endpoint_add hub-a.example.com hub-b.example.com hub-c.example.com
pc_ok "group create" --json group create fleet --hub hub-a.example.com --hub hub-b.example.com
assert_eq "fleet enabled hub-a.example.com,hub-b.example.com" \
    "$(oj '[.enrollmentGroupId, .provisioningStatus, (.iotHubs | join(","))] | join(" ")')" \
    "group create --json"
GK=$(oj .attestation.symmetricKey.primaryKey)
assert_eq 64 "$(printf '%s' "$GK" | openssl base64 -d -A | wc -c | tr -d ' ')" \
    "generated group key"
st=$(admreq GET /enrollmentGroups/fleet)
assert_eq 200 "$st" "the group is on the server"
assert_eq "$GK" "$(jb .attestation.symmetricKey.primaryKey)" "the group's key on the server"

pc_fails 1 'fleet' "group create of an existing group" group create fleet
st=$(admreq GET /enrollmentGroups/fleet)
assert_eq "$GK" "$(jb .attestation.symmetricKey.primaryKey)" "existing group left alone"

GK_LINE=$(new_key 32)
pc_ok "group create with keys" group create line-2 --primary-key "$GK_LINE" --disabled \
    --initial-twin '{"tags":{"line":2}}'
grep -Eq '^Group ID: +line-2$' "$WORK/out" || fail "group create text: $(out)"
grep -Eq '^Status: +disabled$' "$WORK/out" || fail "group create text status: $(out)"

pc_ok "group show" --json group show fleet
assert_eq "fleet null" "$(oj '[.enrollmentGroupId, (.attestation.symmetricKey.primaryKey |
    tostring)] | join(" ")')" "group show hides keys"
pc_ok "group show --show-keys" --json group show fleet --show-keys
assert_eq "$GK" "$(oj .attestation.symmetricKey.primaryKey)" "group show --show-keys"

pc_ok "group list" --json group list
assert_eq "fleet line-2" "$(oj '[.[].enrollmentGroupId] | join(" ")')" "group list --json"
assert_eq "" "$(oj '[.[].attestation.symmetricKey.primaryKey // empty] | join("")')" \
    "group list shows no keys"
pc_ok "group list text" group list
grep -Eq '^GROUP ID +STATUS' "$WORK/out" || fail "group list header: $(out)"
grep -Eq '^fleet +enabled +hub-a.example.com, hub-b.example.com' "$WORK/out" ||
    fail "group list row: $(out)"
grep -qF -- "$GK" "$WORK/out" && fail "group list printed a key"

pc_ok "group disable" group disable fleet
assert_eq "Enrollment group fleet is now disabled." "$(out)" "group disable text"
st=$(admreq GET /enrollmentGroups/fleet)
assert_eq "disabled $GK" "$(jb '[.provisioningStatus, .attestation.symmetricKey.primaryKey] |
    join(" ")')" "group disabled on the server, keys kept"
st=$(register dev-1 "$(sas_token "$(b64_hmac "$GK" dev-1)" dev-1)")
assert_eq 200 "$st" "register in the disabled group"
assert_eq "failed 403001" "$(jb '[.status, .registrationState.errorCode] | join(" ")')" \
    "register in the disabled group"
pc_ok "group enable" --json group enable fleet
assert_eq enabled "$(oj .provisioningStatus)" "group enable --json"
st=$(admreq GET /enrollmentGroups/fleet)
assert_eq "enabled $GK" "$(jb '[.provisioningStatus, .attestation.symmetricKey.primaryKey] |
    join(" ")')" "group enabled on the server, keys kept"

# ---- Devices registering with keys and tokens made by provctl ----
pc_ok "derive-key" derive-key --group-key "$GK" dev-1
KEY1=$(tail -n1 "$WORK/out")
assert_eq "$(b64_hmac "$GK" dev-1)" "$KEY1" "derive-key agrees with openssl"
pc_ok "sas" sas --id-scope "$SCOPE" --registration-id dev-1 --key "$KEY1"
st=$(register dev-1 "$(tail -n1 "$WORK/out")")
assert_eq 200 "$st" "register dev-1 with a provctl token"
assert_eq "assigned dev-1 fleet" "$(jb '[.status, .registrationState.deviceId,
    .registrationState.symmetricKey.enrollmentGroupId] | join(" ")')" "dev-1 registered"
HUB1=$(jb .registrationState.assignedHub)

pc_ok "sas --group-key --encode lower" sas --id-scope "$SCOPE" --registration-id dev-2 \
    --group-key "$GK" --encode lower --ttl 600
AUTH2=$(tail -n1 "$WORK/out")
assert_match "^SharedAccessSignature sr=$SCOPE%2fregistrations%2fdev-2&" "$AUTH2" \
    "sas --encode lower"
st=$(register dev-2 "$AUTH2")
assert_eq 200 "$st" "register dev-2 with a provctl token from the group key"

# Registration IDs are case-insensitive: the server lower-cases them and derives the key over
# the lower-cased ID, and so do derive-key and sas, whatever case the ID is typed in.
pc_ok "derive-key of a mixed-case ID" derive-key --group-key "$GK" Dev-3
KEY3=$(tail -n1 "$WORK/out")
assert_eq "$(b64_hmac "$GK" dev-3)" "$KEY3" "derive-key lower-cases the registration ID"
pc_ok "sas of a mixed-case ID" sas --id-scope "$SCOPE" --registration-id Dev-3 --group-key "$GK"
AUTH3=$(tail -n1 "$WORK/out")
assert_match "^SharedAccessSignature sr=$SCOPE/registrations/dev-3&" "$AUTH3" \
    "sas names the lower-cased ID in sr"
st=$(register Dev-3 "$AUTH3")
assert_eq "200 assigned dev-3" "$st $(jb '[.status, .registrationState.registrationId] |
    join(" ")')" "register Dev-3 with a provctl token from the group key"
# The server compares sr without regard to case: a token naming the ID as typed passes too.
st=$(register Dev-3 "$(sas_token "$KEY3" Dev-3)")
assert_eq "200 assigned" "$st $(jb .status)" "register Dev-3 with sr in the case typed"
pc_ok "registration delete dev-3" registration delete dev-3

# ---- Individual enrollments ----
IK=$(new_key 32)
pc_ok "enrollment create" --json enrollment create dev-ind --device-id auto \
    --hub-hostname hub-c.example.com --primary-key "$IK"
assert_eq "dev-ind auto hub-c.example.com $IK" "$(oj '[.registrationId, .deviceId,
    .iotHubHostName, .attestation.symmetricKey.primaryKey] | join(" ")')" "enrollment create"
pc_fails 1 'dev-ind' "enrollment create of an existing one" enrollment create dev-ind
pc_ok "enrollment show" --json enrollment show dev-ind
assert_eq "dev-ind null" "$(oj '[.registrationId, (.attestation.symmetricKey.primaryKey |
    tostring)] | join(" ")')" "enrollment show hides keys"
pc_ok "enrollment show --show-keys" --json enrollment show dev-ind --show-keys
assert_eq "$IK" "$(oj .attestation.symmetricKey.primaryKey)" "enrollment show --show-keys"
pc_ok "enrollment list" --json enrollment list
assert_eq "dev-ind" "$(oj '[.[].registrationId] | join(" ")')" "enrollment list --json"
pc_ok "enrollment list text" enrollment list
grep -Eq '^dev-ind +auto +enabled +hub-c.example.com' "$WORK/out" ||
    fail "enrollment list row: $(out)"

pc_ok "sas for dev-ind" sas --id-scope "$SCOPE" --registration-id dev-ind --key "$IK" \
    --encode upper
st=$(register dev-ind "$(tail -n1 "$WORK/out")")
assert_eq 200 "$st" "register dev-ind with a provctl token"
assert_eq hub-c.example.com "$(jb .registrationState.assignedHub)" "dev-ind hub"
assert_match "$UUID_RE" "$(jb .registrationState.deviceId)" "dev-ind device ID"

pc_ok "enrollment disable" enrollment disable dev-ind
st=$(register dev-ind "$(sas_token "$IK" dev-ind)")
assert_eq "200 failed 403001" "$st $(jb '[.status, .registrationState.errorCode] | join(" ")')" \
    "register with the enrollment disabled"
pc_ok "enrollment enable" --json enrollment enable dev-ind
assert_eq "enabled null" "$(oj '[.provisioningStatus, (.attestation.symmetricKey.primaryKey |
    tostring)] | join(" ")')" "enrollment enable --json, keys left out"
st=$(register dev-ind "$(sas_token "$IK" dev-ind)")
assert_eq "200 assigned" "$st $(jb .status)" "register with the enrollment enabled again"

pc_fails 1 'not found \(404002\)' "enrollment show of an unknown one" enrollment show dev-none
pc_fails 1 '404002' "enrollment delete of an unknown one" enrollment delete dev-none
pc_fails 2 'dev 1' "an invalid registration ID" enrollment show 'dev 1'

# ---- Registration states ----
pc_ok "registration list" --json registration list --group fleet
assert_eq "dev-1 dev-2" "$(oj '[.[].registrationId] | join(" ")')" "registration list --json"
pc_ok "registration list text" registration list --group fleet
grep -Eq "^dev-1 +dev-1 +assigned +$HUB1" "$WORK/out" || fail "registration list row: $(out)"
pc_fails 2 'group' "registration list without --group" registration list
pc_ok "registration show" --json registration show dev-1
assert_eq "dev-1 dev-1 assigned $HUB1" "$(oj '[.registrationId, .deviceId, .status,
    .assignedHub] | join(" ")')" "registration show --json"
pc_ok "registration show text" registration show dev-1
grep -Eq '^Substatus: +initialAssignment$' "$WORK/out" || fail "registration show text: $(out)"
pc_ok "registration delete" --json registration delete dev-1
assert_eq "" "$(out)" "delete --json prints nothing"
st=$(admreq GET /registrations/dev-1)
assert_error 404 404004 "$st" "registration deleted through provctl"
pc_fails 1 '404004' "registration show of a deleted one" registration show dev-1

# ---- Audit log ----
pc_ok "audit list" --json audit list --subject dev-2
assert_eq "device.register accepted 200 0" "$(oj '.records[] | [.event, .outcome, .httpStatus,
    .errorCode] | join(" ")')" "audit list --subject dev-2"
pc_ok "audit list text" audit list --subject dev-1
grep -Eq '^SEQ +TIME +EVENT' "$WORK/out" || fail "audit list header: $(out)"
grep -Eq ' registration\.delete +dev-1 +accepted ' "$WORK/out" || fail "audit list rows: $(out)"
pc_ok "audit list --limit" --json audit list --limit 2
assert_eq 2 "$(oj '.records | length')" "audit list --limit 2"
grep -qi 'more records may follow' "$WORK/err" && fail "--json mode hinted on stderr"
pc_ok "audit list --limit text" audit list --limit 2
next=$(grep -Eo -- '--after [0-9]+' "$WORK/err" | awk '{print $2}')
[ -n "$next" ] || fail "a full page says how to read on: $(cat "$WORK/err")"
assert_eq 3 "$(wc -l <"$WORK/out" | tr -d ' ')" "audit list --limit 2: header and two rows"
pc_ok "audit list --after" --json audit list --after "$next" --limit 1
assert_eq "1 true" "$(jq -r --argjson n "$next" '[(.records | length),
    (.records[0].seq > $n | tostring)] | join(" ")' "$WORK/out")" "audit list --after continues"
for secret in "$GK" "$IK" "$KEY1"; do
    pc_ok "audit list" --json audit list --limit 1000
    grep -qF -- "$secret" "$WORK/out" && fail "the audit log holds a key"
done

# Text a device chose reaches the audit log (an invalid registration ID becomes the record's
# subject): provd keeps only its printable ASCII. Records an older provd stored as sent (planted
# here with the sqlite3 shell) may hold any text: the table shows control characters escaped,
# so that they can neither act on the terminal nor start a line of their own, and other UTF-8
# text as it is.
st=$(devreq PUT "/$SCOPE/registrations/%1b%5b2J%1b%5b31mPWNED%0a123%09x/register?$API" \
    -H 'Content-Type: application/json' --data-binary '{"registrationId":"x"}')
assert_eq 400 "$st" "register with control characters in the registration ID"
pc_ok "audit list --json" --json audit list --limit 1000
assert_eq 1 "$(oj '[.records[] | select(.subject == "?[2J?[31mPWNED?123?x")] | length')" \
    "the audit log holds the printable part of the subject"
command -v sqlite3 >/dev/null || fail "the sqlite3 shell is needed (scripts/deps.sh --test)"
for hex in 1b5b324a1b5b33316d50574e45440a3132330978 636166c3a9c29b7f5c; do
    sqlite3 "$DATA/provd.db" "INSERT INTO audit (ts, event, subject, outcome, http_status,
        error_code) VALUES ('2026-01-01T00:00:00.0000000Z', 'device.register',
        CAST(X'$hex' AS TEXT), 'refused', 400, 400003)"
done
pc_ok "audit list --json" --json audit list --limit 1000
assert_eq 1 "$(oj '[.records[] | select(.subject == "\u001b[2J\u001b[31mPWNED\n123\tx")] |
    length')" "the audit log answers the planted subject as it is"
nrec=$(oj '.records | length')
pc_ok "audit list text with control characters" audit list --limit 1000
LC_ALL=C grep -q $'\x1b' "$WORK/out" && fail "audit list printed an ESC byte: $(out)"
LC_ALL=C grep -q $'\t' "$WORK/out" && fail "audit list printed a tab: $(out)"
LC_ALL=C grep -qF $'\x7f' "$WORK/out" && fail "audit list printed a DEL byte: $(out)"
LC_ALL=C grep -qF $'\xc2\x9b' "$WORK/out" && fail "audit list printed a C1 character: $(out)"
assert_eq $((nrec + 1)) "$(wc -l <"$WORK/out" | tr -d ' ')" \
    "audit list: the header and a line a record"
grep -qF -- ' \x1b[2J\x1b[31mPWNED\n123\tx  ' "$WORK/out" ||
    fail "audit list lacks the escaped subject: $(out)"
grep -qF -- ' café\u009b\x7f\\ ' "$WORK/out" ||
    fail "audit list lacks the subject with C1, DEL and a backslash escaped: $(out)"

# ---- Endpoints ----
# Changing the protocol moves an endpoint on the old protocol's usual port to the new one's;
# a port chosen by hand stays until --port changes it.
pc_ok "endpoint add" --json endpoint add proto.example.com
assert_eq "mqtts 8883" "$(oj '[.protocol, .port] | map(tostring) | join(" ")')" "endpoint add"
pc_ok "endpoint update --protocol" --json endpoint update proto.example.com --protocol amqps
assert_eq "amqps 5671" "$(oj '[.protocol, .port] | map(tostring) | join(" ")')" \
    "endpoint update --protocol takes the new protocol's port"
st=$(admreq GET /endpoints/proto.example.com)
assert_eq "200 amqps 5671" "$st $(jb '[.protocol, .port] | map(tostring) | join(" ")')" \
    "the endpoint on the server"
pc_ok "endpoint update --protocol --port" --json endpoint update proto.example.com \
    --protocol https --port 8443
assert_eq "https 8443" "$(oj '[.protocol, .port] | map(tostring) | join(" ")')" \
    "endpoint update --protocol --port"
pc_ok "endpoint update --protocol, port set by hand" --json endpoint update proto.example.com \
    --protocol wss
assert_eq "wss 8443" "$(oj '[.protocol, .port] | map(tostring) | join(" ")')" \
    "endpoint update --protocol keeps a port set by hand"
pc_ok "endpoint update --weight" --json endpoint update proto.example.com --port 443 --weight 2
pc_ok "endpoint update --protocol, upper case" --json endpoint update proto.example.com \
    --protocol WS
assert_eq "ws 80 2" "$(oj '[.protocol, .port, .weight] | map(tostring) | join(" ")')" \
    "endpoint update --protocol WS"
pc_ok "endpoint show text" endpoint show proto.example.com
grep -Eq '^Port: +80$' "$WORK/out" || fail "endpoint show text: $(out)"
pc_ok "endpoint remove" endpoint remove proto.example.com

# ---- Deleting ----
pc_ok "enrollment delete" enrollment delete dev-ind
assert_eq "Deleted enrollment dev-ind." "$(out)" "enrollment delete text"
pc_fails 1 '404002' "enrollment show after delete" enrollment show dev-ind
pc_ok "group delete" group delete line-2
assert_eq "Deleted enrollment group line-2." "$(out)" "group delete text"
pc_fails 1 'not found \(404003\)' "group show after delete" group show line-2
pc_ok "info at the end" --json info
assert_eq "0 1 2" "$(oj '[.counts.enrollments, .counts.enrollmentGroups, .counts.registrations] |
    join(" ")')" "info counts at the end"

# ---- provctl without a server ----
provd_stop
pc_fails 1 'cannot reach' "server down" info

echo "PASS test_provctl_online"
