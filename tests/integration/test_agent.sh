#!/usr/bin/env bash
# prov-agent against a real provd (docs/prov-agent.md): an individual and a group enrollment,
# identity.json and its permissions, the offline second run, --force, corrupt state, every
# documented exit code, settings from flags, environment and file, registration IDs found on the
# machine, and retries against a scripted server (stub_dps) that answers 429 and 202.
# Usage: bash test_agent.sh BIN_DIR STUB_DPS
set -euo pipefail
source "$(dirname "$0")/lib.sh"

STUB=${2:?usage: $0 BIN_DIR STUB_DPS}
AGENT=$BIN/prov-agent
STUB_PID=

stub_stop() {
    [ -n "$STUB_PID" ] || return 0
    kill "$STUB_PID" 2>/dev/null || true
    wait "$STUB_PID" 2>/dev/null || true
    STUB_PID=
}
# The exit status must reach cleanup (lib.sh), which reports and passes it on.
trap 'rc=$?; set +e; stub_stop; (exit $rc); cleanup' EXIT

# agent EXPECTED_EXIT NAME ARGS...: runs prov-agent, output in $WORK/NAME.out and .err, and
# checks its exit code.
agent() {
    local want=$1 name=$2 rc=0
    shift 2
    "$AGENT" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    if [ "$rc" != "$want" ]; then
        echo "--- stdout ---" >&2
        cat "$WORK/$name.out" >&2
        echo "--- stderr ---" >&2
        cat "$WORK/$name.err" >&2
        fail "$name: exit code $rc, expected $want"
    fi
}

# mode PATH: the octal permission bits.
mode() {
    stat -c %a "$1"
}

# no_secret NAME SECRET...: none of the secrets appears in NAME's output.
no_secret() {
    local name=$1 s
    shift
    for s in "$@"; do
        ! grep -qF -- "$s" "$WORK/$name.out" "$WORK/$name.err" || fail "$name: a key was printed"
    done
}

# endpoint HOST: declares an endpoint enrollments may name, where the server keeps a list of
# them (PUT /endpoints); a server without that list (404005, no such path) takes any host name.
endpoint() {
    local st
    st=$(admjson PUT "/endpoints/$1" '{}')
    case "$st" in
        200 | 201) ;;
        404) assert_eq 404005 "$(jb .errorCode)" "PUT /endpoints/$1" ;;
        *) fail "PUT /endpoints/$1: HTTP $st" ;;
    esac
}

provd_init
provd_start
for h in hub-ind.example.com hub-a.example.com hub-b.example.com; do
    endpoint "$h"
done

# ---- An individual enrollment ----
KEY=$(new_key 32)
TWIN='{"tags":{"site":"lab"},"properties":{"desired":{"interval":30}}}'
st=$(admjson PUT /enrollments/agent-ind "$(jq -nc --arg k "$KEY" --argjson t "$TWIN" \
    '{registrationId: "agent-ind", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-ind.example.com", initialTwin: $t}')")
assert_eq 200 "$st" "PUT individual enrollment"

S1=$WORK/state-ind
agent 0 ind --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-ind \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$S1" --json --verbose
no_secret ind "$KEY"
ID=$S1/identity.json
assert_eq 700 "$(mode "$S1")" "state dir mode"
assert_eq 600 "$(mode "$ID")" "identity.json mode"
assert_eq "$(ls -A "$S1")" identity.json "only identity.json in the state dir"
assert_eq "1 agent-ind agent-ind hub-ind.example.com assigned initialAssignment" \
    "$(jq -r '[.version, .registrationId, .deviceId, .assignedHub, .status, .substatus] |
        map(tostring) | join(" ")' "$ID")" "identity.json"
# The payload is what the server gives this device (its status look-up says the same), and it
# carries the enrollment's initial twin.
st=$(devreq POST "/$SCOPE/registrations/agent-ind?$API" -H "Authorization: $(sas_token "$KEY" \
    agent-ind)" -H 'Content-Type: application/json' --data-binary '{}')
assert_eq 200 "$st" "status look-up"
assert_eq "$(jb '.payload' | jq -cS .)" "$(jq -cS .payload "$ID")" "identity.json payload"
assert_eq true "$(jq --argjson t "$TWIN" '[.payload | .. | select(. == $t)] | length > 0' "$ID")" \
    "identity.json payload carries the initial twin"
assert_match "$TIME_RE" "$(jq -r .createdDateTimeUtc "$ID")" "createdDateTimeUtc"
assert_match "$TIME_RE" "$(jq -r .lastUpdatedDateTimeUtc "$ID")" "lastUpdatedDateTimeUtc"
assert_eq null "$(jq -r .enrollmentGroupId "$ID")" "no group for an individual enrollment"
# --json prints the identity (without the file's version).
assert_eq "$(jq -cS 'del(.version)' "$ID")" "$(jq -cS . "$WORK/ind.out")" "--json output"
# The server has the registration the agent reports.
st=$(admreq GET /registrations/agent-ind)
assert_eq 200 "$st" "GET registration"
assert_eq "$(jq -r .etag "$ID")" "$(jb .etag)" "etag agrees with the server"

# ---- A group enrollment; settings from file, environment and flags ----
GK=$(new_key 64)
st=$(admjson PUT /enrollmentGroups/agent-fleet "$(jq -nc --arg k "$GK" \
    '{enrollmentGroupId: "agent-fleet", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubs: ["hub-a.example.com", "hub-b.example.com"]}')")
assert_eq 200 "$st" "PUT group"

S2=$WORK/state-grp
CONF=$WORK/agent.conf
# The file's endpoint and registration ID are overridden by the environment and the flag.
cat >"$CONF" <<EOF
# prov-agent settings
endpoint = https://127.0.0.1:1
id-scope = $SCOPE
registration-id = from-the-file
group-key = $GK
ca-file = $CA

state-dir = $S2
deadline = 30
EOF
chmod 600 "$CONF"
PROV_AGENT_ENDPOINT=$DEV PROV_AGENT_REGISTRATION_ID=from-the-env \
    agent 0 grp --config "$CONF" --registration-id Agent-Grp-1
no_secret grp "$GK"
ID2=$S2/identity.json
assert_eq "agent-grp-1 agent-grp-1 agent-fleet assigned" \
    "$(jq -r '[.registrationId, .deviceId, .enrollmentGroupId, .status] | join(" ")' "$ID2")" \
    "group identity.json"
hub=$(jq -r .assignedHub "$ID2")
[ "$hub" = hub-a.example.com ] || [ "$hub" = hub-b.example.com ] || fail "group hub '$hub'"
grep -q '^provisioned: device agent-grp-1 on hub-' "$WORK/grp.out" || fail "group: human output"
# The same settings from PROV_AGENT_CONFIG alone name the file's registration ID, which the
# group accepts too (proof that the file is read when no flag or variable overrides it).
PROV_AGENT_CONFIG=$CONF PROV_AGENT_ENDPOINT=$DEV PROV_AGENT_STATE_DIR=$WORK/state-file \
    agent 0 file
assert_eq from-the-file "$(jq -r .registrationId "$WORK/state-file/identity.json")" \
    "registration ID from the file"

# ---- The second run needs no server ----
provd_stop
cp -p "$ID2" "$WORK/grp-before.json"
inode=$(stat -c %i "$ID2")
PROV_AGENT_ENDPOINT=$DEV agent 0 again --config "$CONF" --registration-id agent-grp-1
grep -q '^already provisioned: device agent-grp-1' "$WORK/again.out" || fail "second run output"
cmp -s "$ID2" "$WORK/grp-before.json" || fail "second run changed identity.json"
assert_eq "$inode" "$(stat -c %i "$ID2")" "second run replaced identity.json"
assert_eq "$(stat -c %Y "$WORK/grp-before.json")" "$(stat -c %Y "$ID2")" "identity.json mtime"
PROV_AGENT_ENDPOINT=$DEV agent 0 again-json --config "$CONF" --registration-id agent-grp-1 --json
assert_eq "$(jq -cS 'del(.version)' "$ID2")" "$(jq -cS . "$WORK/again-json.out")" \
    "second run --json"

# ---- --force provisions again ----
provd_start
sleep 0.01
PROV_AGENT_ENDPOINT=$DEV agent 0 force --config "$CONF" --registration-id agent-grp-1 --force
[ "$(stat -c %i "$ID2")" != "$inode" ] || fail "--force did not write a new identity.json"
assert_eq agent-grp-1 "$(jq -r .deviceId "$ID2")" "--force: device ID kept"
[ "$(jq -r .lastUpdatedDateTimeUtc "$ID2")" != "$(jq -r .lastUpdatedDateTimeUtc \
    "$WORK/grp-before.json")" ] || fail "--force: lastUpdatedDateTimeUtc unchanged"
assert_eq 600 "$(mode "$ID2")" "--force: identity.json mode"

# ---- Corrupt state: reported, kept, and replaced only with --force ----
head -c 40 "$ID2" >"$WORK/truncated.json"
cp "$WORK/truncated.json" "$ID2"
PROV_AGENT_ENDPOINT=$DEV agent 5 corrupt --config "$CONF" --registration-id agent-grp-1
grep -q 'not valid JSON' "$WORK/corrupt.err" || fail "corrupt: no reason given"
grep -q -- '--force' "$WORK/corrupt.err" || fail "corrupt: no hint at --force"
cmp -s "$ID2" "$WORK/truncated.json" || fail "corrupt identity.json was changed"
: >"$ID2"
PROV_AGENT_ENDPOINT=$DEV agent 5 empty --config "$CONF" --registration-id agent-grp-1
PROV_AGENT_ENDPOINT=$DEV agent 0 corrupt-force --config "$CONF" --registration-id agent-grp-1 \
    --force
assert_eq agent-grp-1 "$(jq -r .deviceId "$ID2")" "--force over a corrupt state"

# ---- Refused: a wrong key ----
S3=$WORK/state-refused
agent 3 refused --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-ind \
    --symmetric-key "$(new_key 32)" --ca-file "$CA" --state-dir "$S3" --json
[ ! -e "$S3/identity.json" ] || fail "refused: state written"
assert_eq "401 401002" "$(jq -r '"\(.httpStatus) \(.errorCode)"' "$WORK/refused.out")" \
    "refused: --json error"
grep -q '401002' "$WORK/refused.err" || fail "refused: no error code on stderr"
# An unknown ID scope is a refusal too.
agent 3 scope --endpoint "$DEV" --id-scope 0ne00000000 --registration-id agent-ind \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$S3"
[ ! -e "$S3/identity.json" ] || fail "unknown scope: state written"

# ---- A disabled enrollment ----
OFFKEY=$(new_key 32)
st=$(admjson PUT /enrollments/agent-off "$(jq -nc --arg k "$OFFKEY" \
    '{registrationId: "agent-off", provisioningStatus: "disabled", attestation:
      {type: "symmetricKey", symmetricKey: {primaryKey: $k}}}')")
assert_eq 200 "$st" "PUT disabled enrollment"
agent 6 disabled --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-off \
    --symmetric-key "$OFFKEY" --ca-file "$CA" --state-dir "$S3"
grep -q '403001' "$WORK/disabled.err" || fail "disabled: no error code on stderr"
[ ! -e "$S3/identity.json" ] || fail "disabled: state written"

# ---- Unreachable: a closed port, within the deadline ----
start=$(date +%s%N)
agent 4 unreachable --endpoint https://127.0.0.1:1 --id-scope "$SCOPE" \
    --registration-id agent-ind --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$S3" \
    --deadline 3
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -lt 10000 ] || fail "unreachable: took ${elapsed_ms} ms with --deadline 3"
grep -q 'deadline' "$WORK/unreachable.err" || fail "unreachable: no word of the deadline"
[ ! -e "$S3/identity.json" ] || fail "unreachable: state written"

# ---- An untrusted server: no CA file, so the system store, which lacks provd's root ----
# A certificate that does not verify is final: no retries until the deadline.
start=$(date +%s%N)
agent 4 untrusted --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-ind \
    --symmetric-key "$KEY" --state-dir "$S3" --deadline 60
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -lt 5000 ] || fail "untrusted: took ${elapsed_ms} ms: a TLS failure was retried"
grep -qi 'certificate' "$WORK/untrusted.err" || fail "untrusted: no word of the certificate"

# ---- Usage and configuration errors ----
COMMON=(--id-scope "$SCOPE" --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$S3")
agent 2 no-endpoint "${COMMON[@]}" --registration-id a
agent 2 http --endpoint "http://127.0.0.1:1" "${COMMON[@]}" --registration-id a
agent 2 two-ids --endpoint "$DEV" "${COMMON[@]}" --registration-id a --registration-id-from mac
agent 2 two-keys --endpoint "$DEV" "${COMMON[@]}" --registration-id a --group-key "$GK"
agent 2 bad-id --endpoint "$DEV" "${COMMON[@]}" --registration-id 'a/b'
agent 2 bad-payload --endpoint "$DEV" "${COMMON[@]}" --registration-id a --payload '{x'
agent 2 bad-key --endpoint "$DEV" --id-scope "$SCOPE" --symmetric-key 'not base64' \
    --registration-id a --state-dir "$S3"
agent 2 bad-deadline --endpoint "$DEV" "${COMMON[@]}" --registration-id a --deadline 0
agent 2 bad-from --endpoint "$DEV" "${COMMON[@]}" --registration-id-from serial
agent 2 extra-arg --endpoint "$DEV" "${COMMON[@]}" --registration-id a extra
agent 2 no-value --endpoint
printf 'endpoint = %s\ncolour = blue\n' "$DEV" >"$WORK/bad.conf"
agent 2 bad-conf --config "$WORK/bad.conf" "${COMMON[@]}" --registration-id a
grep -q 'bad.conf:2: unknown setting "colour"' "$WORK/bad-conf.err" || fail "bad-conf: message"
agent 2 no-conf --config "$WORK/none.conf" "${COMMON[@]}" --registration-id a
[ ! -e "$S3/identity.json" ] || fail "usage errors: state written"
agent 0 help --help
grep -q '^Exit status:' "$WORK/help.out" || fail "--help lacks the exit codes"
agent 0 version --version
grep -q '^prov-agent [0-9]' "$WORK/version.out" || fail "--version"

# ---- Registration IDs found on the machine (the group accepts any) ----
from() {
    local src=$1 want=$2
    agent 0 "from-$src" --endpoint "$DEV" --id-scope "$SCOPE" --group-key "$GK" --ca-file "$CA" \
        --state-dir "$WORK/state-$src" --registration-id-from "$src"
    assert_eq "$want" "$(jq -r .registrationId "$WORK/state-$src/identity.json")" \
        "--registration-id-from $src"
}
if [ -r /etc/machine-id ]; then
    from machine-id "$(tr 'A-F' 'a-f' </etc/machine-id)"
fi
host=$(hostname | tr 'A-Z' 'a-z')
if [ "$host" != localhost ]; then
    from hostname "$host"
fi
mac=
for dev in $(ls /sys/class/net | LC_ALL=C sort); do
    [ "$dev" != lo ] || continue
    addr=$(cat "/sys/class/net/$dev/address" 2>/dev/null || true)
    if [[ "$addr" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] && [ "$addr" != 00:00:00:00:00:00 ]; then
        mac=${addr//:/}
        break
    fi
done
if [ -n "$mac" ]; then
    from mac "$mac"
fi

# ---- Retries against a scripted server ----
# stub_start SCRIPT: the stub on a free loopback port with provd's TLS certificate; $STUB_URL.
stub_start() {
    stub_stop
    rm -f "$WORK/stub.port" "$WORK/stub.log"
    "$STUB" --cert "$DATA/tls/server.pem" --key "$DATA/tls/server.key" \
        --port-file "$WORK/stub.port" --log "$WORK/stub.log" --script "$1" \
        >>"$WORK/stub.err" 2>&1 &
    STUB_PID=$!
    for _ in $(seq 1 200); do
        [ -s "$WORK/stub.port" ] && break
        kill -0 "$STUB_PID" 2>/dev/null || fail "stub_dps exited at start"
        sleep 0.05
    done
    [ -s "$WORK/stub.port" ] || fail "stub_dps did not start listening"
    STUB_URL=https://127.0.0.1:$(cat "$WORK/stub.port")
}

# 429 with Retry-After: 1, then 200: two PUTs at least a second apart.
stub_start 429,200
agent 0 throttled --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-429 \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$WORK/state-429" --verbose
assert_eq "PUT 429
PUT 200" "$(awk '{ print $2, $4 }' "$WORK/stub.log")" "throttled: requests"
gap=$(awk 'NR == 1 { t = $1 } NR == 2 { print $1 - t }' "$WORK/stub.log")
[ "$gap" -ge 1000 ] || fail "throttled: retried after ${gap} ms despite Retry-After: 1"
[ "$gap" -lt 5000 ] || fail "throttled: retried after ${gap} ms, Retry-After was 1 s"
grep -q 'HTTP 429' "$WORK/throttled.err" || fail "throttled: the retry was not logged"
assert_eq "stub-hub.example.com stub" \
    "$(jq -r '"\(.assignedHub) \(.payload.from)"' "$WORK/state-429/identity.json")" \
    "throttled: identity.json"

# 202 assigning, then the operation is polled after its Retry-After.
stub_start 202,200
agent 0 polled --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-202 \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$WORK/state-202"
assert_eq "PUT /$SCOPE/registrations/agent-202/register?api-version=2021-06-01
GET /$SCOPE/registrations/agent-202/operations/op-1?api-version=2021-06-01" \
    "$(awk '{ print $2, $3 }' "$WORK/stub.log")" "polled: requests"
assert_eq agent-202 "$(jq -r .deviceId "$WORK/state-202/identity.json")" "polled: identity"

# A server failing with 503 until the deadline: unreachable, in time, no state.
stub_start 503
start=$(date +%s%N)
agent 4 failing --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-503 \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$WORK/state-503" --deadline 3
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -lt 10000 ] || fail "failing: took ${elapsed_ms} ms with --deadline 3"
[ "$(wc -l <"$WORK/stub.log")" -ge 2 ] || fail "failing: 503 was not retried"
[ ! -e "$WORK/state-503/identity.json" ] || fail "failing: state written"
stub_stop

echo "PASS: prov-agent"
