#!/usr/bin/env bash
# Event webhooks (docs/events.md) against local HTTPS receivers (webhook_sink): events for
# registrations, refusals, reprovisionings and enrollment changes arrive signed, and the
# signatures verify with openssl; a receiver that is down gets retries and the event once it is
# back; exhausted deliveries are kept as failed, listed by `provctl events list --failed` and sent
# again by `provctl events retry`; pending deliveries survive a crash and a shutdown in the
# middle of a delivery; a slow receiver never slows registrations down; a delivery whose
# outcome the store cannot record is sent again after a pause, not in a loop; and the limit of
# 100 webhooks holds against creations racing each other on several workers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SINK=${2:?usage: $0 BIN_DIR WEBHOOK_SINK} # used by sink_start (lib.sh)

# received NAME: how many requests receiver NAME has recorded.
received() {
    if [ -f "$WORK/$1.jsonl" ]; then wc -l <"$WORK/$1.jsonl" | tr -d ' '; else echo 0; fi
}

# start: provd_start, and tell provctl the ports (it finds them in DATA_DIR/provd.ports).
start() {
    provd_start
    cp "$WORK/ports.json" "$DATA/provd.ports"
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, failing after SECONDS.
wait_for() {
    local secs=$1 what=$2 i
    shift 2
    for i in $(seq 1 $((secs * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out after ${secs}s waiting for $what"
}

at_least() { [ "$(received "$1")" -ge "$2" ]; }

# pc ARGS...: provctl on the data directory; stdout to $WORK/out, stderr to $WORK/err, the exit
# status in $RC.
pc() {
    RC=0
    "$BIN/provctl" --data-dir "$DATA" "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
}

pc_ok() {
    pc "$@"
    [ "$RC" -eq 0 ] || fail "provctl $* exited $RC: $(cat "$WORK/err")"
}

# deliveries QUERY: the event deliveries the admin API lists for QUERY ("state=failed&..."),
# as one compact JSON object a line.
deliveries() {
    local st
    st=$(admreq GET "/events?limit=1000&${1:-}")
    assert_eq 200 "$st" "GET /events?${1:-}"
    jq -c '.events[]' "$WORK/body"
}

# state_of ID: the state of delivery ID.
state_of() {
    local st
    st=$(admreq GET "/events/$1")
    assert_eq 200 "$st" "GET /events/$1"
    jb .state
}

is_state() { [ "$(state_of "$1")" = "$2" ]; }

# check_signature LINE SECRET WHAT: the request recorded in LINE carries a valid signature by
# SECRET, made the way docs/events.md tells receivers to check it: with openssl, over the
# X-Provd-Timestamp value, a dot and the raw body.
check_signature() {
    local line=$1 secret=$2 what=$3 ts sig want body
    jq -j .body <<<"$line" >"$WORK/sig-body"
    ts=$(jq -r '.headers["x-provd-timestamp"]' <<<"$line")
    sig=$(jq -r '.headers["x-provd-signature"]' <<<"$line")
    want=sha256=$({ printf '%s.' "$ts"; cat "$WORK/sig-body"; } |
        openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}')
    assert_eq "$want" "$sig" "$what: X-Provd-Signature"
    [ $((ts - $(date +%s))) -le 5 ] && [ $(($(date +%s) - ts)) -le 120 ] ||
        fail "$what: X-Provd-Timestamp $ts is not about now"
    # The check is not vacuous: another secret or another time does not verify.
    body=$(cat "$WORK/sig-body")
    [ "$sig" != "sha256=$(printf '%s.%s' "$ts" "$body" |
        openssl dgst -sha256 -hmac "x$secret" | awk '{print $NF}')" ] || fail "$what: any secret"
    [ "$sig" != "sha256=$(printf '%s.%s' "$((ts + 1))" "$body" |
        openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}')" ] || fail "$what: any time"
    assert_eq "application/json" "$(jq -r '.headers["content-type"]' <<<"$line")" \
        "$what: Content-Type"
    assert_eq "$(jq -r .type "$WORK/sig-body")" "$(jq -r '.headers["x-provd-event"]' <<<"$line")" \
        "$what: X-Provd-Event"
    assert_match '^[0-9]+$' "$(jq -r '.headers["x-provd-delivery"]' <<<"$line")" \
        "$what: X-Provd-Delivery"
    assert_eq POST "$(jq -r .method <<<"$line")" "$what: method"
}

# line_of NAME FILTER: the one request of receiver NAME whose body matches the jq FILTER.
line_of() {
    local lines
    lines=$(jq -c --arg f "$2" 'select(.body | fromjson | '"$2"')' "$WORK/$1.jsonl")
    [ "$(grep -c . <<<"$lines")" -eq 1 ] ||
        fail "receiver $1: expected one request with $2, got: $lines"
    printf '%s' "$lines"
}

# ev LINE FILTER: jq -r FILTER over the event body recorded in LINE.
ev() {
    jq -r '.body | fromjson | '"$2" <<<"$1"
}

provd_init
# Quick retries, so that the test runs in seconds; the receivers use provd's own TLS certificate,
# so provd verifies them with its CA.
jq --arg ca "$CA" '. + {event_ca_file: $ca, event_retry_base_ms: 200, event_retry_max_ms: 800,
    event_max_attempts: 6, event_timeout_ms: 8000}' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
start

# ---- Webhooks: added, shown without their secret, refused when malformed ----

sink_start a
URL_A=https://127.0.0.1:${SINK_PORT[a]}
pc_ok --json webhook add all --url "$URL_A/all"
SECRET_ALL=$(jq -r .secret "$WORK/out")
assert_match '^[A-Za-z0-9+/]{43}=$' "$SECRET_ALL" "generated secret"
assert_eq '[["*"],true]' "$(jq -c '[.events, .enabled]' "$WORK/out")" \
    "webhook all: events and enabled"
grep -q "shown this once" "$WORK/err" || fail "webhook add does not say the secret is shown once"
SECRET_REF=refusals-secret-$(openssl rand -hex 8)
printf '%s\n' "$SECRET_REF" >"$WORK/refusals.secret"
pc_ok webhook add refusals --url "$URL_A/refusals" --event device.refused \
    --secret-file "$WORK/refusals.secret"
if grep -q "^Secret:" "$WORK/out"; then fail "a secret the operator gave is shown back"; fi
pc webhook add refusals --url "$URL_A/x"
assert_eq 1 "$RC" "webhook add of an existing ID"
grep -q "409001" "$WORK/err" || fail "webhook add of an existing ID: $(cat "$WORK/err")"
pc_ok webhook show all
grep -q "^URL: *$URL_A/all$" "$WORK/out" || fail "webhook show: $(cat "$WORK/out")"
if grep -qi secret "$WORK/out"; then fail "webhook show prints the secret"; fi
st=$(admreq GET /webhooks)
assert_eq "200 all,refusals" "$st $(jb '[.[].id] | join(",")')" "GET /webhooks"
assert_eq "null" "$(jb '[.[].secret] | unique | .[0]')" "GET /webhooks shows no secret"
st=$(admjson PUT /webhooks/plain '{"url":"http://127.0.0.1:1/"}')
assert_error 400 400010 "$st" "PUT a webhook with an http URL"
st=$(admjson PUT /webhooks/odd "{\"url\":\"$URL_A\",\"events\":[\"device.deleted\"]}")
assert_error 400 400010 "$st" "PUT a webhook with an unknown event type"
st=$(admreq GET /webhooks/nope)
assert_error 404 404010 "$st" "GET an unknown webhook"
if grep -qaF "$SECRET_ALL" "$WORK/provd.log"; then fail "a webhook secret reached the log"; fi

# ---- Events of decisions and changes, signed ----

endpoint_add hub-a.example.com
GROUP=fleet-ev
GK=$(new_key 32)
st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -nc --arg g "$GROUP" --arg k "$GK" '{
    enrollmentGroupId: $g, attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubs: ["hub-a.example.com"]}')")
assert_eq 200 "$st" "PUT group"
r=dev-ev-1
st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
assert_eq 200 "$st" "register $r"
st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
assert_eq 200 "$st" "register $r again"
st=$(register "$r" "$(sas_token "$(new_key 32)" "$r")")
assert_eq 401 "$st" "register $r with a foreign key"
wait_for 20 "five deliveries" at_least a 5
sleep 0.5
assert_eq 5 "$(received a)" "requests received"

line=$(line_of a 'select(.type == "enrollment.changed")')
assert_eq "/all" "$(jq -r .uri <<<"$line")" "enrollment.changed: webhook"
check_signature "$line" "$SECRET_ALL" "enrollment.changed"
assert_eq "fleet-ev enrollmentGroup fleet-ev created enabled" \
    "$(ev "$line" '[.subject, .data.kind, .data.enrollmentGroupId, .data.change,
        .data.provisioningStatus] | join(" ")')" "enrollment.changed: body"
assert_match "$UUID_RE" "$(ev "$line" .id)" "enrollment.changed: id"
assert_match "$TIME_RE" "$(ev "$line" .timestampUtc)" "enrollment.changed: timestampUtc"
assert_eq '["data","id","subject","timestampUtc","type"]' "$(ev "$line" 'keys | tojson')" \
    "event members"

audit_all >/dev/null
line=$(line_of a 'select(.type == "device.registered")')
check_signature "$line" "$SECRET_ALL" "device.registered"
assert_eq "$r $r $r fleet-ev assigned initialAssignment hub-a.example.com 200 0" \
    "$(ev "$line" '[.subject, .data.registrationId, .data.deviceId, .data.enrollmentGroupId,
        .data.status, .data.substatus, .data.assignedHub, .data.httpStatus, .data.errorCode] |
        join(" ")')" "device.registered: body"
# The event carries the tracking ID of the decision's audit record.
assert_eq "$(jq -r "select(.event == \"device.register\" and .subject == \"$r\") | .trackingId" \
    "$WORK/audit.jsonl" | head -n1)" "$(ev "$line" .data.trackingId)" \
    "device.registered: trackingId"
line=$(line_of a 'select(.type == "device.reprovisioned")')
check_signature "$line" "$SECRET_ALL" "device.reprovisioned"
assert_eq "$r hub-a.example.com hub-a.example.com assigned" \
    "$(ev "$line" '[.subject, .data.assignedHub, .data.previousHub, .data.status] | join(" ")')" \
    "device.reprovisioned: body"
lines=$(jq -c 'select((.body | fromjson).type == "device.refused")' "$WORK/a.jsonl")
assert_eq "/all /refusals" "$(jq -r .uri <<<"$lines" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "device.refused goes to both webhooks"
line=$(grep '"uri":"/refusals"' <<<"$lines")
check_signature "$line" "$SECRET_REF" "device.refused to refusals"
line=$(grep '"uri":"/all"' <<<"$lines")
check_signature "$line" "$SECRET_ALL" "device.refused to all"
assert_eq "$r 401 401002 null" \
    "$(ev "$line" '[.subject, .data.httpStatus, .data.errorCode, .data.deviceId] |
        map(tostring) | join(" ")')" "device.refused: body"
assert_match "SAS token refused" "$(ev "$line" .data.reason)" "device.refused: reason"
if grep -qF "$GK" "$WORK/a.jsonl"; then fail "an event carries the group key"; fi

# The deliveries as the operator sees them.
delivered_count() { [ "$(deliveries state=delivered | grep -c .)" -eq "$1" ]; }
wait_for 10 "five delivered" delivered_count 5
pc_ok events list
assert_eq 6 "$(wc -l <"$WORK/out" | tr -d ' ')" "events list: header and five lines"
grep -q "^ID  *CREATED  *TYPE  *SUBJECT  *WEBHOOK  *STATE" "$WORK/out" || fail "events list header"
pc_ok --json events list --webhook refusals
assert_eq "1 device.refused delivered 1 200" "$(jq -r '.events | length as $n | .[0] |
    "\($n) \(.type) \(.state) \(.attempts) \(.lastStatus)"' "$WORK/out")" "events list --webhook"
ID=$(jq -r '.events[0].id' "$WORK/out")
pc_ok events show "$ID"
grep -q '^Event: .*"type":"device.refused"' "$WORK/out" || fail "events show: $(cat "$WORK/out")"
grep -q '^Delivered: ' "$WORK/out" || fail "events show: no delivery time"
pc events retry "$ID"
assert_eq 1 "$RC" "events retry of a delivered event"
grep -q "409010" "$WORK/err" || fail "events retry of a delivered event: $(cat "$WORK/err")"
pc events show 999999
assert_eq 1 "$RC" "events show of an unknown delivery"
grep -q "404011" "$WORK/err" || fail "events show unknown: $(cat "$WORK/err")"

# ---- A receiver that fails at first gets retries, then the event ----

echo 503 >"$WORK/a.control"
n0=$(received a)
st=$(admjson PUT /enrollments/solo-1 "$(jq -nc --arg k "$(new_key 32)" '{registrationId: "solo-1",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubHostName: "hub-a.example.com"}')")
assert_eq 200 "$st" "PUT enrollment solo-1"
wait_for 10 "two failed attempts" at_least a $((n0 + 2))
rm -f "$WORK/a.control"
wait_for 10 "the delivery after the receiver came back" at_least a $((n0 + 3))
ID=$(deliveries "webhook=all" | jq -r 'select(.subject == "solo-1") | .id')
wait_for 5 "solo-1 delivered" is_state "$ID" delivered
attempts=$(tail -n +$((n0 + 1)) "$WORK/a.jsonl")
assert_eq "1" "$(jq -r '.headers["x-provd-delivery"]' <<<"$attempts" | sort -u | grep -c .)" \
    "every attempt names the same delivery"
assert_eq "$ID" "$(jq -r '.headers["x-provd-delivery"]' <<<"$attempts" | head -n1)" \
    "X-Provd-Delivery is the delivery's ID"
assert_eq "1" "$(jq -r .body <<<"$attempts" | sort -u | grep -c .)" \
    "every attempt sends the same body"
assert_eq "200 503" "$(jq -r .status <<<"$attempts" | sort -n -u | tr '\n' ' ' | sed 's/ $//')" \
    "statuses answered"
check_signature "$(tail -n1 "$WORK/a.jsonl")" "$SECRET_ALL" "a retried delivery"
st=$(admreq GET "/events/$ID")
assert_eq "delivered 200" "$(jb '"\(.state) \(.lastStatus)"')" "solo-1 delivery"
[ "$(jb .attempts)" -ge 3 ] || fail "solo-1 delivered after $(jb .attempts) attempts"

# ---- Exhausted retries are kept as failed, listed, and sent again on request ----

# A receiver that is not running: its port is taken once and left free.
sink_start late
LATE_PORT=${SINK_PORT[late]}
sink_stop late
pc_ok webhook add late --url "https://127.0.0.1:$LATE_PORT/late" --event enrollment.changed
SECRET_LATE=$(sed -n 's/^Secret: *//p' "$WORK/out")
[ -n "$SECRET_LATE" ] || fail "webhook add prints no generated secret"
st=$(admjson PUT /enrollments/solo-2 "$(jq -nc --arg k "$(new_key 32)" '{registrationId: "solo-2",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubHostName: "hub-a.example.com"}')")
assert_eq 200 "$st" "PUT enrollment solo-2"
failed_late() { [ "$(deliveries "state=failed&webhook=late" | grep -c .)" -eq 1 ]; }
wait_for 20 "the delivery to the absent receiver to fail" failed_late
pc_ok events list --failed
assert_eq 2 "$(wc -l <"$WORK/out" | tr -d ' ')" "events list --failed: header and one line"
grep -q " late  *failed  *6 " "$WORK/out" || fail "events list --failed: $(cat "$WORK/out")"
pc_ok --json events list --failed --webhook late
ID=$(jq -r '.events[0].id' "$WORK/out")
assert_eq "enrollment.changed solo-2 6" \
    "$(jq -r '.events[0] | "\(.type) \(.subject) \(.attempts)"' "$WORK/out")" "the failed delivery"
assert_match "(onnect|refused)" "$(jq -r '.events[0].lastError' "$WORK/out")" "its last error"
assert_match "$TIME_RE" "$(jq -r '.events[0].failedUtc' "$WORK/out")" "its failedUtc"
# Failed deliveries stay failed: nothing more is tried on its own.
sleep 1
assert_eq failed "$(state_of "$ID")" "a failed delivery a second later"
sink_start late --listen "127.0.0.1:$LATE_PORT"
pc_ok events retry "$ID"
grep -q "^State: *pending" "$WORK/out" || fail "events retry: $(cat "$WORK/out")"
wait_for 10 "the retried delivery" at_least late 1
wait_for 5 "the retried delivery to be delivered" is_state "$ID" delivered
line=$(head -n1 "$WORK/late.jsonl")
check_signature "$line" "$SECRET_LATE" "a delivery retried by the operator"
assert_eq "enrollment.changed solo-2 $ID" "$(ev "$line" '"\(.type) \(.subject)"') $(jq -r \
    '.headers["x-provd-delivery"]' <<<"$line")" "the retried event"
audit_all >/dev/null
assert_eq "1" "$(jq -r "select(.event == \"event.retry\" and .subject == \"$ID\") | .outcome" \
    "$WORK/audit.jsonl" | grep -c accepted)" "the retry is audited"
assert_eq "3" "$(jq -r 'select(.event == "webhook.put") | .subject' "$WORK/audit.jsonl" |
    grep -c .)" "webhook.put audit records"

# ---- Removing a webhook removes what is queued for it ----

pc_ok webhook remove late
grep -q "^Deleted webhook late.$" "$WORK/out" || fail "webhook remove: $(cat "$WORK/out")"
assert_eq 0 "$(deliveries "webhook=late" | grep -c . || true)" "deliveries of a removed webhook"
sink_stop late

# ---- Pending deliveries survive a crash and a shutdown in the middle of a delivery ----

provd_stop
jq '. + {event_max_attempts: 1000}' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
start
echo 503 >"$WORK/a.control"
n0=$(received a)
st=$(admreq DELETE /enrollments/solo-1)
assert_eq 204 "$st" "DELETE enrollment solo-1"
wait_for 10 "an attempt before the crash" at_least a $((n0 + 1))
provd_stop KILL
rm -f "$WORK/a.control"
ID=$(jq -r '.headers["x-provd-delivery"]' <<<"$(tail -n1 "$WORK/a.jsonl")")
start
wait_for 10 "the delivery after the restart" is_state "$ID" delivered
line=$(tail -n1 "$WORK/a.jsonl")
assert_eq "$ID enrollment.changed deleted" "$(jq -r '.headers["x-provd-delivery"]' <<<"$line") \
$(ev "$line" '"\(.type) \(.data.change)"')" "the delivery that survived a crash"
check_signature "$line" "$SECRET_ALL" "the delivery that survived a crash"

# SIGTERM while the receiver holds a delivery: provd does not wait for it, and sends it again
# after the next start.
echo "200 5000" >"$WORK/a.control"
n0=$(received a)
st=$(admreq DELETE /enrollments/solo-2)
assert_eq 204 "$st" "DELETE enrollment solo-2"
wait_for 10 "the delivery held by the receiver" at_least a $((n0 + 1))
ID=$(jq -r '.headers["x-provd-delivery"]' <<<"$(tail -n1 "$WORK/a.jsonl")")
t0=$(date +%s%N)
provd_stop || fail "provd exit status after SIGTERM during a delivery"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 3000 ] || fail "SIGTERM took ${ms} ms with a delivery in flight"
rm -f "$WORK/a.control"
start
wait_for 10 "the abandoned delivery after the restart" is_state "$ID" delivered
assert_eq 2 "$(jq -r --arg id "$ID" 'select(.headers["x-provd-delivery"] == $id) | .uri' \
    "$WORK/a.jsonl" | grep -c .)" "the abandoned delivery was sent twice (at least once)"

# ---- A slow receiver does not slow registrations down ----

echo "200 5000" >"$WORK/a.control"
n0=$(received a)
for i in 1 2 3; do
    r=dev-slow-$i
    auth=$(sas_token "$(b64_hmac "$GK" "$r")" "$r")
    t0=$(date +%s%N)
    st=$(register "$r" "$auth")
    ms=$((($(date +%s%N) - t0) / 1000000))
    assert_eq 200 "$st" "register $r while the receiver is slow"
    [ "$ms" -lt 1000 ] || fail "register $r took ${ms} ms while the receiver is slow"
done
wait_for 10 "the first slow delivery" at_least a $((n0 + 1))
rm -f "$WORK/a.control"
slow_done() { [ "$(deliveries "webhook=all&state=delivered" |
    jq -r 'select(.subject | startswith("dev-slow-")) | .subject' | sort -u | grep -c .)" -eq 3 ]; }
wait_for 30 "the three slow deliveries" slow_done

# ---- A receiver that is down costs one attempt per retry, however many events wait ----
# Seventy events (more than the 32 deliveries read at a time) come due while the receiver
# answers 503 and the first failed attempt waits 4 to 8 s: none of them is tried meanwhile.
provd_stop
cp "$DATA/provd.json" "$WORK/provd.json.before-burst"
jq '. + {event_retry_base_ms: 8000, event_retry_max_ms: 8000}' "$DATA/provd.json" \
    >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
start
echo 503 >"$WORK/a.control"
n0=$(received a)
for i in $(seq 70); do
    st=$(admjson PUT "/enrollments/burst-$i" "$(jq -nc --arg id "burst-$i" '{registrationId: $id,
        attestation: {type: "symmetricKey"}, iotHubHostName: "hub-a.example.com"}')")
    assert_eq 200 "$st" "PUT enrollment burst-$i"
done
wait_for 10 "the first attempt of the burst" at_least a $((n0 + 1))
sleep 1
assert_eq 1 "$(($(received a) - n0))" "attempts at a receiver that is down, for 70 events"
rm -f "$WORK/a.control"
provd_stop
cp "$WORK/provd.json.before-burst" "$DATA/provd.json"
start

# ---- A disabled webhook gets nothing new ----

pc_ok webhook disable all
grep -q "^Enabled: *false" "$WORK/out" || fail "webhook disable: $(cat "$WORK/out")"
n0=$(received a)
r=dev-ev-2
st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
assert_eq 200 "$st" "register $r with the webhook disabled"
sleep 1
assert_eq "$n0" "$(received a)" "requests to a disabled webhook"
pc_ok webhook enable all
pc_ok webhook show all
grep -q "^Enabled: *true" "$WORK/out" || fail "webhook enable: $(cat "$WORK/out")"
# The secret stays through disable and enable.
st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
assert_eq 200 "$st" "register $r again with the webhook enabled"
wait_for 10 "the delivery after enable" at_least a $((n0 + 1))
check_signature "$(tail -n1 "$WORK/a.jsonl")" "$SECRET_ALL" "a delivery after disable and enable"

# ---- An outcome the store cannot record: the delivery is sent again, but not in a loop ----
if command -v sqlite3 >/dev/null; then
    sqlite3 "$DATA/provd.db" "CREATE TRIGGER no_delivery_update BEFORE UPDATE ON deliveries
        BEGIN SELECT RAISE(ABORT, 'read-only for the test'); END;"
    n0=$(received a)
    r=dev-ev-ro
    st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
    assert_eq 200 "$st" "register $r while deliveries cannot be recorded"
    wait_for 10 "the delivery that cannot be recorded" at_least a $((n0 + 1))
    sleep 3
    sent=$(($(received a) - n0))
    [ "$sent" -le 5 ] || fail "a delivery that could not be recorded was sent $sent times in 3 s"
    grep -q "cannot record delivery" "$WORK/provd.log" || fail "no log line for the store failure"
    sqlite3 "$DATA/provd.db" "DROP TRIGGER no_delivery_update"
    ro_done() { [ "$(deliveries "webhook=all&state=delivered" |
        jq -r 'select(.subject == "dev-ev-ro") | .subject' | grep -c .)" -ge 1 ]; }
    wait_for 10 "the delivery recorded once the store can be written" ro_done
fi

# ---- Without webhooks, decisions leave no event behind ----

pc_ok webhook remove all
pc_ok webhook remove refusals
pc_ok webhook list
assert_eq "No webhooks." "$(cat "$WORK/out")" "webhook list with none"
if command -v sqlite3 >/dev/null; then
    before=$(sqlite3 "$DATA/provd.db" 'SELECT count(*) FROM events')
    st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
    assert_eq 200 "$st" "register $r with no webhook"
    st=$(register "$r" "$(sas_token "$(new_key 32)" "$r")")
    assert_eq 401 "$st" "refused $r with no webhook"
    assert_eq "$before" "$(sqlite3 "$DATA/provd.db" 'SELECT count(*) FROM events')" \
        "events stored with no webhook"
    assert_eq 0 "$(sqlite3 "$DATA/provd.db" 'SELECT count(*) FROM deliveries')" \
        "deliveries left once every webhook is removed"
fi

# ---- At most 100 webhooks, however many creations race each other ----
# Eight creations at once on eight workers, one short of the limit: the sqlite3 shell holds the
# write lock while all of them reach the store, so that they are written at the same time. One
# is stored; the others are refused 400 / 400010 and leave no audit record.
if command -v sqlite3 >/dev/null; then
    provd_stop
    provd_start --workers 8
    for i in $(seq 1 99); do
        st=$(admjson PUT "/webhooks/lim-$i" '{"url":"https://127.0.0.1:1/lim","enabled":false}')
        assert_eq 200 "$st" "PUT webhook lim-$i: $(cat "$WORK/body")"
    done
    hold_write_lock
    declare -A lim_pids
    for i in 1 2 3 4 5 6 7 8; do
        curl -s --cacert "$CA" -o "$WORK/lim-$i.json" -w '%{http_code}' -X PUT \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data-binary '{"url":"https://127.0.0.1:1/race","enabled":false}' \
            "$ADM/webhooks/race-$i" >"$WORK/lim-$i.status" &
        lim_pids[$i]=$!
    done
    sleep 2
    release_write_lock
    created=0
    for i in 1 2 3 4 5 6 7 8; do
        wait "${lim_pids[$i]}" || fail "PUT webhook race-$i failed"
        case $(cat "$WORK/lim-$i.status") in
        200) created=$((created + 1)) ;;
        400)
            assert_eq "400010 there are 100 webhooks already, the most a server takes" \
                "$(jq -r '"\(.errorCode) \(.message)"' "$WORK/lim-$i.json")" \
                "PUT webhook race-$i at the limit"
            ;;
        *) fail "PUT webhook race-$i: $(cat "$WORK/lim-$i.status") $(cat "$WORK/lim-$i.json")" ;;
        esac
    done
    assert_eq 1 "$created" "webhooks created by eight racing PUTs one short of the limit"
    st=$(admreq GET /webhooks)
    assert_eq "200 100" "$st $(jb length)" "GET /webhooks after the race"
    assert_eq 1 "$(audit_all | jq -s '[.[] | select(.event == "webhook.put" and
        (.subject | startswith("race-")))] | length')" "audit records of the racing PUTs"
    # At the limit, a new webhook is refused and an existing one is still replaced.
    st=$(admjson PUT /webhooks/lim-extra '{"url":"https://127.0.0.1:1/lim"}')
    assert_error 400 400010 "$st" "PUT a new webhook at the limit"
    st=$(admjson PUT /webhooks/lim-1 '{"url":"https://127.0.0.1:1/lim","enabled":false}' \
        -H 'If-None-Match: *')
    assert_error 409 409001 "$st" "PUT If-None-Match: * on an existing webhook at the limit"
    st=$(admjson PUT /webhooks/lim-1 '{"url":"https://127.0.0.1:1/replaced","enabled":false}')
    assert_eq "200 https://127.0.0.1:1/replaced" "$st $(jb .url)" \
        "PUT an existing webhook at the limit"
    st=$(admreq DELETE /webhooks/lim-2)
    assert_eq 204 "$st" "DELETE webhook lim-2"
    st=$(admjson PUT /webhooks/lim-extra '{"url":"https://127.0.0.1:1/lim","enabled":false}')
    assert_eq 200 "$st" "PUT a new webhook once one was deleted"
fi

provd_stop
if grep -qaF "$SECRET_ALL" "$WORK/provd.log" || grep -qaF "$SECRET_REF" "$WORK/provd.log"; then
    fail "a webhook secret reached the log"
fi
echo "events: ok"
