#!/usr/bin/env bash
# Durability (docs/device-api.md: "the registration is durable before the answer leaves"): every
# registration acknowledged before a SIGKILL is there after a restart, with its audit records;
# a SIGTERM shutdown exits 0 and leaves a consistent store.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
provd_start

GROUP=fleet-restart
GK=$(new_key 32)
endpoint_add hub-a.example.com hub-b.example.com hub-c.example.com
st=$(admjson PUT "/enrollmentGroups/$GROUP" "$(jq -nc --arg g "$GROUP" --arg k "$GK" '{
    enrollmentGroupId: $g,
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubs: ["hub-a.example.com", "hub-b.example.com", "hub-c.example.com"]}')")
assert_eq 200 "$st" "PUT group"

declare -A DEVICE_OF HUB_OF OP_OF CREATED_OF
N=50
for i in $(seq -w 1 $N); do
    r=dev-$i
    st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
    assert_eq 200 "$st" "register $r"
    OP_OF[$r]=$(jq -r .operationId "$WORK/body")
    CREATED_OF[$r]=$(jq -r .registrationState.createdDateTimeUtc "$WORK/body")
    DEVICE_OF[$r]=$(jq -r .registrationState.deviceId "$WORK/body")
    HUB_OF[$r]=$(jq -r .registrationState.assignedHub "$WORK/body")
done
# Killed right after the last acknowledgement: nothing gets a chance to flush.
provd_stop KILL

provd_start
for i in $(seq -w 1 $N); do
    r=dev-$i
    st=$(admreq GET "/registrations/$r")
    assert_eq 200 "$st" "GET /registrations/$r after SIGKILL"
    assert_eq "${DEVICE_OF[$r]} ${HUB_OF[$r]} assigned" \
        "$(jb '[.deviceId, .assignedHub, .status] | join(" ")')" "$r after SIGKILL"
done
audit_all >/dev/null
assert_eq "$N" "$(jq -r 'select(.event == "device.register" and .outcome == "accepted") |
    .subject' "$WORK/audit.jsonl" | sort -u | wc -l | tr -d ' ')" \
    "accepted device.register records after SIGKILL"
assert_eq "$N" "$(jq -r 'select(.event == "device.register") | .subject' "$WORK/audit.jsonl" |
    wc -l | tr -d ' ')" "device.register records after SIGKILL"
assert_eq 1 "$(jq -r 'select(.event == "group.put") | .subject' "$WORK/audit.jsonl" |
    wc -l | tr -d ' ')" "group.put record after SIGKILL"
st=$(admreq GET /info)
assert_eq "1 $N" "$(jb '[.counts.enrollmentGroups, .counts.registrations] | join(" ")')" \
    "info counts after SIGKILL"

# The last acknowledged operation can still be polled, and its state looked up.
r=dev-$N
auth=$(sas_token "$(b64_hmac "$GK" "$r")" "$r")
st=$(devreq GET "/$SCOPE/registrations/$r/operations/${OP_OF[$r]}?$API" -H "Authorization: $auth")
assert_eq 200 "$st" "poll the last operation after SIGKILL"
assert_eq "${OP_OF[$r]} assigned ${DEVICE_OF[$r]} ${HUB_OF[$r]} ${CREATED_OF[$r]}" \
    "$(jb '[.operationId, .status, .registrationState.deviceId, .registrationState.assignedHub,
        .registrationState.createdDateTimeUtc] | join(" ")')" "poll after SIGKILL"

# A device registers again after the restart and keeps its assignment.
r=dev-07
st=$(register "$r" "$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
assert_eq 200 "$st" "register $r after the restart"
assert_eq "${DEVICE_OF[$r]} ${HUB_OF[$r]} ${CREATED_OF[$r]}" "$(jb '[.registrationState.deviceId,
    .registrationState.assignedHub, .registrationState.createdDateTimeUtc] | join(" ")')" \
    "$r after the restart"

# SIGTERM: provd finishes and exits 0.
provd_stop || fail "provd exit status after SIGTERM"
[ ! -e "$WORK/ports.json" ] || fail "the port file is left behind after SIGTERM"
if command -v sqlite3 >/dev/null; then
    assert_eq ok "$(sqlite3 "$DATA/provd.db" 'PRAGMA integrity_check')" "store integrity"
fi

# And the store serves everything once more.
provd_start
audit_all >/dev/null
assert_eq $((N + 1)) "$(jq -r 'select(.event == "device.register") | .subject' \
    "$WORK/audit.jsonl" | wc -l | tr -d ' ')" "device.register records after SIGTERM"
st=$(admreq GET "/registrations/dev-$N")
assert_eq 200 "$st" "GET /registrations/dev-$N after SIGTERM"
assert_eq "${DEVICE_OF[dev-$N]} ${HUB_OF[dev-$N]}" "$(jb '[.deviceId, .assignedHub] | join(" ")')" \
    "dev-$N after SIGTERM"

# ---- Registrations in flight when provd stops ----
# reap PID...: waits for each of the processes, whatever their exit status.
reap() {
    local pid
    for pid in "$@"; do
        wait "$pid" || true
    done
}

# burst PREFIX COUNT: starts COUNT registrations at once in the background. Each leaves its
# HTTP status in $WORK/burst/REGID.status (000 when no answer came), its answer in
# $WORK/burst/REGID.json and curl's exit status (0: the whole answer arrived) in
# $WORK/burst/REGID.rc; their process IDs are in BURST_PIDS, in order.
burst() {
    local prefix=$1 count=$2 i r
    local -a auth=()
    mkdir -p "$WORK/burst"
    BURST_IDS=()
    for i in $(seq -w 1 "$count"); do
        r=$prefix-$i
        BURST_IDS+=("$r")
        auth+=("$(sas_token "$(b64_hmac "$GK" "$r")" "$r")")
    done
    BURST_PIDS=()
    for i in "${!BURST_IDS[@]}"; do
        r=${BURST_IDS[$i]}
        (
            rc=0
            curl -s --cacert "$CA" -o "$WORK/burst/$r.json" -D "$WORK/burst/$r.headers" \
                -w '%{http_code}' -X PUT \
                -H 'Content-Type: application/json' -H "Authorization: ${auth[$i]}" \
                --data-binary "{\"registrationId\":\"$r\"}" \
                "$DEV/$SCOPE/registrations/$r/register?$API" >"$WORK/burst/$r.status" \
                2>/dev/null || rc=$?
            echo "$rc" >"$WORK/burst/$r.rc"
        ) &
        BURST_PIDS+=($!)
    done
}

# burst_check WHAT CUT: after a restart, every registration answered 200 in full is stored as
# answered, and has its audit record. CUT "cut-ok" allows answers cut short (provd killed while
# sending); otherwise an answer cut short fails. Sets N_OK to the number answered 200.
burst_check() {
    local r st
    N_OK=0
    audit_all >/dev/null
    for r in "${BURST_IDS[@]}"; do
        st=$(cat "$WORK/burst/$r.status")
        if [ "$(cat "$WORK/burst/$r.rc")" != 0 ]; then
            [ "$st" = 000 ] || [ "$2" = cut-ok ] || fail "$1: the answer to $r ($st) was cut short"
            continue
        fi
        case $st in
        200)
            N_OK=$((N_OK + 1))
            local want
            want=$(jq -r '[.registrationState.deviceId, .registrationState.assignedHub] |
                join(" ")' "$WORK/burst/$r.json")
            st=$(admreq GET "/registrations/$r")
            assert_eq 200 "$st" "$1: acknowledged $r is stored"
            assert_eq "$want" "$(jb '[.deviceId, .assignedHub] | join(" ")')" "$1: $r as answered"
            assert_eq 1 "$(jq -r --arg r "$r" 'select(.event == "device.register" and
                .outcome == "accepted" and .subject == $r) | .seq' "$WORK/audit.jsonl" |
                wc -l | tr -d ' ')" "$1: audit record of $r"
            ;;
        503)
            assert_eq 503001 "$(jq -r .errorCode "$WORK/burst/$r.json")" "$1: 503 for $r"
            grep -qi '^retry-after: 2' "$WORK/burst/$r.headers" ||
                fail "$1: 503 for $r without Retry-After"
            ;;
        000) ;;
        *) fail "$1: register $r answered $st: $(cat "$WORK/burst/$r.json")" ;;
        esac
    done
}

# SIGKILL while registrations are in flight, once the first ten have been answered.
burst kill 40
reap "${BURST_PIDS[@]:0:10}"
provd_stop KILL
reap "${BURST_PIDS[@]:10}"
for r in "${BURST_IDS[@]:0:10}"; do
    assert_eq "200 0" "$(cat "$WORK/burst/$r.status") $(cat "$WORK/burst/$r.rc")" \
        "register $r before SIGKILL"
done
provd_start
burst_check "SIGKILL in flight" cut-ok

# SIGTERM while registrations are in flight: provd exits 0, what it acknowledged is stored,
# the rest got 503 / 503001 or no answer.
burst term 40
reap "${BURST_PIDS[@]:0:5}"
provd_stop || fail "provd exit status after SIGTERM with registrations in flight"
reap "${BURST_PIDS[@]:5}"
provd_start
burst_check "SIGTERM in flight" whole
[ "$N_OK" -ge 5 ] || fail "SIGTERM in flight: only $N_OK registrations answered 200"
if command -v sqlite3 >/dev/null; then
    provd_stop
    assert_eq ok "$(sqlite3 "$DATA/provd.db" 'PRAGMA integrity_check')" \
        "store integrity after SIGTERM in flight"

    # SIGTERM while registrations wait for their commit (another process holds the database's
    # write lock): once committed, each is answered in full before provd exits.
    provd_start
    hold_write_lock
    burst held 5
    wait_decisions 5 "device.register subject=held-"
    kill -TERM "$PROVD_PID"
    sleep 0.5
    release_write_lock
    rc=0
    wait "$PROVD_PID" || rc=$?
    PROVD_PID=
    assert_eq 0 "$rc" "provd exit status after SIGTERM with commits waiting"
    reap "${BURST_PIDS[@]}"
    for r in "${BURST_IDS[@]}"; do
        assert_eq "200 0" "$(cat "$WORK/burst/$r.status") $(cat "$WORK/burst/$r.rc")" \
            "register $r, waiting for its commit at SIGTERM"
    done
    provd_start
    burst_check "SIGTERM with commits waiting" whole
fi

echo "PASS test_restart"
