#!/usr/bin/env bash
# prov-agent against a real provd (docs/prov-agent.md): an individual and a group enrollment,
# identity.json and its permissions, the offline second run, --force, corrupt state, every
# documented exit code, settings from flags, environment and file, registration IDs found on the
# machine, the delivered configuration (endpoint-ca.pem, config.json), and retries against a
# scripted server (stub_dps) that answers 429 and 202. Keys generated on the device (--csr) and
# X.509 attestation (--cert/--key) run against stub_dps and against provd, and so does a state
# directory that cannot be written, or is not the agent's own (found before anything is
# registered). --ca-file is the whole trust store. With KEY_SCAN (tests/key_scan.so, "none" to
# skip), no private key's text is left in the memory prov-agent frees.
# Usage: bash test_agent.sh BIN_DIR STUB_DPS [KEY_SCAN]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

STUB=${2:?usage: $0 BIN_DIR STUB_DPS [KEY_SCAN]}
KEY_SCAN=${3:-none}
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
# checks its exit code. With RUN_AS set (a command and its arguments), prov-agent runs under it.
agent() {
    local want=$1 name=$2 rc=0
    shift 2
    # shellcheck disable=SC2086 # RUN_AS holds several words on purpose
    ${RUN_AS:-} "$AGENT" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
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

# ---- The delivered configuration: the endpoint's trust bundle and the configuration ----
BUNDLE=$(cat "$CA")
st=$(admjson PUT /endpoints/hub-cfg.example.com "$(jq -nc --arg b "$BUNDLE" \
    '{protocol: "mqtts", port: 8884, trustBundle: $b}')")
[ "$st" = 200 ] || [ "$st" = 201 ] || fail "PUT endpoint with a trust bundle: HTTP $st"
CFGKEY=$(new_key 32)
st=$(admjson PUT /enrollments/agent-cfg "$(jq -nc --arg k "$CFGKEY" \
    '{registrationId: "agent-cfg", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-cfg.example.com",
      configuration: {topic: "devices/${deviceId}/up", site: "${payload.site}", qos: 1}}')")
assert_eq 200 "$st" "PUT enrollment with a configuration"
SC=$WORK/state-cfg
agent 0 cfg --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-cfg \
    --symmetric-key "$CFGKEY" --ca-file "$CA" --state-dir "$SC" --payload '{"site":"lab"}'
assert_eq "config.json endpoint-ca.pem identity.json" "$(ls "$SC" | tr '\n' ' ' | sed 's/ $//')" \
    "files of the delivered configuration"
assert_eq 600 "$(mode "$SC/endpoint-ca.pem")" "endpoint-ca.pem mode"
assert_eq 600 "$(mode "$SC/config.json")" "config.json mode"
assert_eq "$BUNDLE" "$(cat "$SC/endpoint-ca.pem")" "endpoint-ca.pem is the trust bundle"
assert_eq "$(openssl x509 -in "$CA" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$SC/endpoint-ca.pem" -noout -fingerprint -sha256)" "endpoint-ca.pem parses"
assert_eq '{"qos":1,"site":"lab","topic":"devices/agent-cfg/up"}' \
    "$(jq -cS . "$SC/config.json")" "config.json is the rendered configuration"
assert_eq '{"host":"hub-cfg.example.com","port":8884,"protocol":"mqtts"}' \
    "$(jq -cS .endpoint "$SC/identity.json")" "identity.json names the endpoint"
assert_eq "agent-cfg agent-cfg initialAssignment" \
    "$(jq -r '"\(.registrationId) \(.deviceId) \(.substatus)"' "$SC/identity.json")" \
    "identity.json of agent-cfg"
assert_eq "$(jq -cS .configuration "$SC/identity.json" 2>/dev/null || true)" null \
    "the configuration is kept in the payload, not beside it"
assert_eq "$(jq -cS .payload.configuration "$SC/identity.json")" "$(jq -cS . "$SC/config.json")" \
    "config.json agrees with identity.json"
# Provisioned again without a trust bundle or configuration, the old files go.
st=$(admjson PUT /endpoints/hub-cfg.example.com '{"protocol": "mqtts", "port": 8884}')
assert_eq 200 "$st" "PUT endpoint without a trust bundle"
st=$(admjson PUT /enrollments/agent-cfg "$(jq -nc --arg k "$CFGKEY" \
    '{registrationId: "agent-cfg", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-cfg.example.com"}')")
assert_eq 200 "$st" "PUT enrollment without a configuration"
agent 0 cfg-again --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-cfg \
    --symmetric-key "$CFGKEY" --ca-file "$CA" --state-dir "$SC" --force
assert_eq identity.json "$(ls -A "$SC")" "stale configuration files removed"

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
# (Not compared by inode: identity.json is removed before the new one is written, and the
# file system may give the new one the old number.)
[ "$(jq -r .operationId "$ID2")" != "$(jq -r .operationId "$WORK/grp-before.json")" ] ||
    fail "--force did not write a new identity.json"
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

# ---- --ca-file: checked with the other settings, and the whole trust store ----
# A CA file that cannot be used is a setting to correct (2), not an unreachable server (4, which
# the systemd unit retries), and it is found on a run that finds the device provisioned too.
agent 2 ca-missing --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-ind \
    --symmetric-key "$KEY" --ca-file "$WORK/none.pem" --state-dir "$WORK/state-ca-missing"
assert_eq "prov-agent: ca-file (from the command line): cannot read CA file $WORK/none.pem: No \
such file or directory" "$(cat "$WORK/ca-missing.err")" "ca-missing: message"
[ ! -e "$WORK/state-ca-missing" ] || fail "ca-missing: the state directory was made"
PROV_AGENT_CA_FILE=$CONF agent 2 ca-no-cert --endpoint "$DEV" --id-scope "$SCOPE" \
    --registration-id agent-ind --symmetric-key "$KEY" --state-dir "$WORK/state-ca-missing"
assert_eq "prov-agent: ca-file (from the environment): $CONF holds no PEM certificate" \
    "$(cat "$WORK/ca-no-cert.err")" "ca-no-cert: message"
cp -p "$ID" "$WORK/ind-before.json"
agent 2 ca-missing-provisioned --endpoint "$DEV" --id-scope "$SCOPE" \
    --registration-id agent-ind --symmetric-key "$KEY" --ca-file "$WORK/none.pem" \
    --state-dir "$S1"
grep -q 'cannot read CA file' "$WORK/ca-missing-provisioned.err" ||
    fail "ca-missing-provisioned: reason"
cmp -s "$ID" "$WORK/ind-before.json" || fail "ca-missing-provisioned: identity.json changed"
# libcurl's default CA directory must not be trusted beside --ca-file. In a mount namespace of
# its own (root only), /etc/ssl/certs becomes a directory that trusts provd's root, as a system
# that trusts it everywhere would; a --ca-file without provd's root must still fail.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
    SYS=$WORK/system-certs
    mkdir -p "$SYS"
    cp "$CA" "$SYS/provd-root.pem"
    cp "$CA" "$SYS/ca-certificates.crt"
    ln -s provd-root.pem "$SYS/$(openssl x509 -hash -noout -in "$CA").0"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
        -subj "/CN=another root" -days 1 -out "$WORK/other-root.pem" 2>/dev/null
    printf '%s\n' '#!/bin/sh' 'mount --bind "$1" /etc/ssl/certs && shift && exec "$@"' \
        >"$WORK/with-certs.sh"
    CAPKEY=$(new_key 32)
    st=$(admjson PUT /enrollments/agent-capath "$(jq -nc --arg k "$CAPKEY" \
        '{registrationId: "agent-capath", attestation: {type: "symmetricKey",
          symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-ind.example.com"}')")
    assert_eq 200 "$st" "PUT enrollment agent-capath"
    # The namespace's system store trusts provd: without --ca-file, the device provisions.
    RUN_AS="unshare -m sh $WORK/with-certs.sh $SYS" agent 0 capath-system --endpoint "$DEV" \
        --id-scope "$SCOPE" --registration-id agent-capath --symmetric-key "$CAPKEY" \
        --state-dir "$WORK/state-capath-system"
    RUN_AS="unshare -m sh $WORK/with-certs.sh $SYS" agent 4 capath-ca-file --endpoint "$DEV" \
        --id-scope "$SCOPE" --registration-id agent-capath --symmetric-key "$CAPKEY" \
        --ca-file "$WORK/other-root.pem" --state-dir "$WORK/state-capath-ca-file"
    grep -qi 'certificate' "$WORK/capath-ca-file.err" || fail "capath-ca-file: reason"
    [ ! -e "$WORK/state-capath-ca-file/identity.json" ] || fail "capath-ca-file: state written"
else
    echo "note: not root, or no mount namespace: --ca-file against a system store that trusts" \
        "provd is not tried" >&2
fi

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
# With --csr the registration ID is the certificate's CN: 64 characters at most, checked before
# the state directory is made.
LONG_ID=$(printf 'b%.0s' $(seq 1 65))
agent 2 csr-long-id --endpoint "$DEV" --id-scope "$SCOPE" --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$WORK/state-long-id" --registration-id "$LONG_ID" --csr
assert_eq "prov-agent: registration-id (from the command line): the registration ID has 65 \
characters; with --csr it is the CN of the device's certificate, which holds at most 64" \
    "$(cat "$WORK/csr-long-id.err")" "csr-long-id: message"
[ ! -e "$WORK/state-long-id" ] || fail "csr-long-id: the state directory was made"
agent 2 bad-from --endpoint "$DEV" "${COMMON[@]}" --registration-id-from serial
agent 2 extra-arg --endpoint "$DEV" "${COMMON[@]}" --registration-id a extra
agent 2 no-value --endpoint
grep -qx 'prov-agent: --endpoint needs a value' "$WORK/no-value.err" || fail "no-value: message"
# A switch given a value on the command line: the flag takes none (yes and no are for the
# environment and the file).
agent 2 csr-value --endpoint "$DEV" "${COMMON[@]}" --registration-id a --csr=yes
grep -qx 'prov-agent: --csr takes no value' "$WORK/csr-value.err" || fail "csr-value: message"
agent 2 force-value --endpoint "$DEV" "${COMMON[@]}" --registration-id a --force=yes
grep -qx 'prov-agent: --force takes no value' "$WORK/force-value.err" || fail "force-value: message"
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
case "$host" in
    localhost | localhost.localdomain | '(none)' | '') ;; # refused: they name no device
    *) from hostname "$host" ;;
esac
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
# stub_start SCRIPT [STUB_ARGS...]: the stub on a free loopback port with provd's TLS
# certificate; $STUB_URL.
stub_start() {
    local script=$1
    shift
    stub_stop
    rm -f "$WORK/stub.port" "$WORK/stub.log"
    "$STUB" --cert "$DATA/tls/server.pem" --key "$DATA/tls/server.key" \
        --port-file "$WORK/stub.port" --log "$WORK/stub.log" --script "$script" "$@" \
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

# A refusal whose message holds a newline and a terminal escape: the server's text stays inside
# the agent's line and cannot print one that looks like the agent's own.
stub_start 401
agent 3 forged --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-401 \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$WORK/state-401" --verbose
grep -q 'bad?prov-agent: provisioned: device evil?\[2K' "$WORK/forged.err" ||
    fail "forged: the server's message is not shown on one line"
! grep -q '^prov-agent: provisioned' "$WORK/forged.err" "$WORK/forged.out" ||
    fail "forged: the server's message printed a line of its own"
! grep -q $'\e' "$WORK/forged.err" || fail "forged: a terminal escape was printed"
[ ! -e "$WORK/state-401/identity.json" ] || fail "forged: state written"
stub_stop

# ---- Keys and certificates: helpers ----
# pubkey_of PEM_FILE: the SHA-256 of the public key of a certificate or a private key.
pubkey_of() {
    if grep -q 'PRIVATE KEY' "$1"; then
        openssl pkey -in "$1" -pubout -outform DER | openssl sha256 -r | cut -d' ' -f1
    else
        openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER |
            openssl sha256 -r | cut -d' ' -f1
    fi
}

# check_csr_state NAME DIR REGID ROOT: DIR holds a private key, the chain issued for it (verified
# up to ROOT) and identity.json, each 0600; the key was never printed.
check_csr_state() {
    local name=$1 dir=$2 regid=$3 root=$4
    local f
    for f in device.key device.pem ca-chain.pem identity.json; do
        [ -f "$dir/$f" ] || fail "$name: no $f"
        assert_eq 600 "$(mode "$dir/$f")" "$name: $f mode"
    done
    assert_eq 700 "$(mode "$dir")" "$name: state dir mode"
    head -1 "$dir/device.key" | grep -q -- '-----BEGIN PRIVATE KEY-----' || fail "$name: device.key"
    assert_eq "ASN1 OID: prime256v1" "$(openssl pkey -in "$dir/device.key" -text -noout |
        grep -o 'ASN1 OID: .*')" "$name: a P-256 key"
    assert_eq "$(pubkey_of "$dir/device.key")" "$(pubkey_of "$dir/device.pem")" \
        "$name: the certificate is the key's"
    assert_eq "subject=CN = $regid" "$(openssl x509 -in "$dir/device.pem" -noout -subject)" \
        "$name: certificate subject"
    assert_eq "$dir/device.pem: OK" \
        "$(openssl verify -CAfile "$root" -untrusted "$dir/ca-chain.pem" "$dir/device.pem")" \
        "$name: openssl verify"
    assert_eq "$dir/device.pem: OK" \
        "$(openssl verify -CAfile "$dir/ca-chain.pem" "$dir/device.pem")" \
        "$name: openssl verify against ca-chain.pem"
    # device.pem is the leaf followed by ca-chain.pem.
    assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$dir/ca-chain.pem")" \
        "$(($(grep -c 'BEGIN CERTIFICATE' "$dir/device.pem") - 1))" "$name: chain lengths"
    assert_eq "$(cat "$dir/device.pem")" \
        "$(openssl x509 -in "$dir/device.pem"; cat "$dir/ca-chain.pem")" \
        "$name: device.pem = leaf + ca-chain.pem"
    ! grep -q 'PRIVATE KEY' "$WORK/$name.out" "$WORK/$name.err" || fail "$name: the key was printed"
}

# ---- --csr against stub_dps, which issues with provd's issuing CA ----
ISSUER=(--issuer "$DATA/ca/issuing.pem" --issuer-key "$DATA/ca/issuing.key" --root "$CA")
stub_start 200 "${ISSUER[@]}" --trust-bundle "$CA"
SCSR=$WORK/state-stub-csr
agent 0 stub-csr --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-csr-stub \
    --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$SCSR" --csr --verbose
check_csr_state stub-csr "$SCSR" agent-csr-stub "$CA"
assert_eq "PUT 200 auth=yes cn=- csr=yes" "$(awk '{ print $2, $4, $5, $6, $7 }' "$WORK/stub.log")" \
    "stub-csr: one PUT with a token and a CSR"
assert_eq "$(cat "$CA")" "$(cat "$SCSR/endpoint-ca.pem")" "stub-csr: endpoint-ca.pem"
assert_eq '{"interval":30,"topic":"devices/agent-csr-stub/up"}' \
    "$(jq -cS . "$SCSR/config.json")" "stub-csr: config.json"
assert_eq '{"host":"stub-hub.example.com","port":8883,"protocol":"mqtts"}' \
    "$(jq -cS .endpoint "$SCSR/identity.json")" "stub-csr: identity.json endpoint"
# A second run stays offline: the stub is gone, the files stay as they are.
stub_stop
key_inode=$(stat -c %i "$SCSR/device.key")
agent 0 stub-csr-again --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$SCSR" --csr
grep -q '^already provisioned' "$WORK/stub-csr-again.out" || fail "stub-csr: second run output"
assert_eq "$key_inode" "$(stat -c %i "$SCSR/device.key")" "stub-csr: second run kept the key"
! grep -q 'warning' "$WORK/stub-csr-again.err" || fail "stub-csr: a warning for a private state"
# A kept key that other users can read, or a state directory they can enter, is worth a warning
# on the runs that find the device provisioned (which write nothing, so tighten nothing).
chmod 640 "$SCSR/device.key"
agent 0 stub-csr-wide-key --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$SCSR" --csr
assert_eq "prov-agent: warning: $SCSR/device.key holds a private key and is readable by other \
users" "$(cat "$WORK/stub-csr-wide-key.err")" "stub-csr-wide-key: warning"
grep -q '^already provisioned' "$WORK/stub-csr-wide-key.out" || fail "stub-csr-wide-key: output"
assert_eq 640 "$(mode "$SCSR/device.key")" "stub-csr-wide-key: the mode was left as it was"
chmod 600 "$SCSR/device.key"
chmod 755 "$SCSR"
agent 0 stub-csr-wide-dir --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$SCSR" --csr
assert_eq "prov-agent: warning: the state directory $SCSR is accessible to other users (mode \
0755, should be 0700)" "$(cat "$WORK/stub-csr-wide-dir.err")" "stub-csr-wide-dir: warning"
chmod 700 "$SCSR"
# identity.json without the key is an incomplete state, not a reason to register quietly.
mv "$SCSR/device.key" "$WORK/device.key.saved"
agent 5 stub-csr-nokey --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$SCSR" --csr
grep -q 'device.key' "$WORK/stub-csr-nokey.err" || fail "stub-csr-nokey: the missing file unnamed"
grep -q -- '--force' "$WORK/stub-csr-nokey.err" || fail "stub-csr-nokey: no hint at --force"
# --force: a new key and a new certificate for it.
stub_start 200 "${ISSUER[@]}"
old_pub=$(pubkey_of "$WORK/device.key.saved")
agent 0 stub-csr-force --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$SCSR" \
    --csr --force
check_csr_state stub-csr-force "$SCSR" agent-csr-stub "$CA"
[ "$(pubkey_of "$SCSR/device.key")" != "$old_pub" ] || fail "stub-csr-force: the key was reused"
[ ! -e "$SCSR/endpoint-ca.pem" ] || fail "stub-csr-force: stale endpoint-ca.pem kept"
# A key that is not the certificate's (the files of two provisionings) is a damaged state, not
# "already provisioned": exit 5, the files left as they are.
cp -p "$SCSR/device.key" "$WORK/device.key.good"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/other.key" 2>/dev/null
cat "$WORK/other.key" >"$SCSR/device.key"
agent 5 stub-csr-mismatch --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$SCSR" \
    --csr
grep -q 'do not belong together' "$WORK/stub-csr-mismatch.err" || fail "stub-csr-mismatch: reason"
grep -q -- '--force' "$WORK/stub-csr-mismatch.err" || fail "stub-csr-mismatch: no hint at --force"
! grep -q '^already provisioned' "$WORK/stub-csr-mismatch.out" ||
    fail "stub-csr-mismatch: reported as provisioned"
assert_eq "$(pubkey_of "$WORK/other.key")" "$(pubkey_of "$SCSR/device.key")" \
    "stub-csr-mismatch: the state was left as it was"
cat "$WORK/device.key.good" >"$SCSR/device.key"
# A device.key that holds no key at all (empty, cut short) is a corrupt file, not the key of
# another certificate: said so, exit 5, the file left as it is.
for damage in empty truncated; do
    if [ "$damage" = empty ]; then
        : >"$SCSR/device.key"
    else
        head -c 100 "$WORK/device.key.good" >"$SCSR/device.key"
    fi
    cp "$SCSR/device.key" "$WORK/device.key.damaged"
    agent 5 "stub-csr-$damage-key" --endpoint "$STUB_URL" --id-scope "$SCOPE" \
        --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" \
        --state-dir "$SCSR" --csr
    assert_eq "prov-agent: $SCSR/device.key holds no unencrypted PEM private key
prov-agent: the state is corrupt and is left as it is; inspect it, then run with --force to \
provision again" "$(cat "$WORK/stub-csr-$damage-key.err")" "stub-csr-$damage-key: message"
    cmp -s "$SCSR/device.key" "$WORK/device.key.damaged" ||
        fail "stub-csr-$damage-key: the file was changed"
done
cat "$WORK/device.key.good" >"$SCSR/device.key"
# --force cut short after the new key is written (ca-chain.pem cannot be replaced): exit 5, and
# the old identity.json is gone rather than left beside a key it has no certificate for.
old_pub=$(pubkey_of "$SCSR/device.key")
rm -f "$SCSR/ca-chain.pem"
mkdir -p "$SCSR/ca-chain.pem/in-the-way"
agent 5 stub-csr-cut --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$SCSR" \
    --csr --force
grep -q 'ca-chain.pem' "$WORK/stub-csr-cut.err" || fail "stub-csr-cut: the failed file unnamed"
[ "$(pubkey_of "$SCSR/device.key")" != "$old_pub" ] || fail "stub-csr-cut: no new key was written"
[ ! -e "$SCSR/identity.json" ] || fail "stub-csr-cut: the old identity.json outlived the old key"
rm -rf "$SCSR/ca-chain.pem"
# What a crash in the middle of a write leaves: a temporary file, here one holding a key.
cp "$SCSR/device.key" "$SCSR/.device.key.tmp-Ab12Cd"
# And an operator's own hidden copy, which is not one.
cp "$SCSR/device.key" "$SCSR/.device.key.backup"
# The next run, without --force, does not take the directory for provisioned: it provisions
# again, with a new key and the certificate for it, and removes the temporary file.
agent 0 stub-csr-after-cut --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$SCSR" \
    --csr
grep -q '^provisioned' "$WORK/stub-csr-after-cut.out" || fail "stub-csr-after-cut: not provisioned"
check_csr_state stub-csr-after-cut "$SCSR" agent-csr-stub "$CA"
[ ! -e "$SCSR/.device.key.tmp-Ab12Cd" ] || fail "stub-csr-after-cut: a temporary file was left"
assert_eq ".device.key.backup" "$(ls -A "$SCSR" | grep '^\.' || true)" \
    "stub-csr-after-cut: no temporary file, the operator's copy kept"
rm "$SCSR/.device.key.backup"
# Provisioned again with the certificate provd gave it as --cert/--key: those are kept.
cp "$SCSR/device.key" "$WORK/kept.key"
agent 0 stub-own-cert --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --ca-file "$CA" --state-dir "$SCSR" \
    --cert "$SCSR/device.pem" --key "$SCSR/device.key" --force
cmp -s "$SCSR/device.key" "$WORK/kept.key" || fail "stub-own-cert: the key in use was removed"
[ -s "$SCSR/device.pem" ] || fail "stub-own-cert: the certificate in use was removed"
# But not with --csr: it writes a new device.key before the certificate issued for it, and a run
# cut short in between would leave the device attesting with a key that is not its
# certificate's. Refused before anything is asked or touched, whatever path names the files.
cp -p "$SCSR/identity.json" "$WORK/own-cert-identity.json"
cp "$SCSR/device.pem" "$WORK/own.pem"
ln -sf "$SCSR/device.key" "$WORK/own-link.key"
requests=$(wc -l <"$WORK/stub.log")
agent 2 stub-own-cert-csr --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --ca-file "$CA" --state-dir "$SCSR" \
    --cert "$SCSR/device.pem" --key "$SCSR/device.key" --csr --force
assert_eq "prov-agent: cert (from the command line): $SCSR/device.pem is the device.pem of the \
state directory $SCSR, which --csr replaces; with --csr, --cert and --key must be files other \
than its device.pem, device.key and ca-chain.pem" "$(cat "$WORK/stub-own-cert-csr.err")" \
    "stub-own-cert-csr: message"
agent 2 stub-own-key-csr --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --ca-file "$CA" --state-dir "$SCSR" \
    --cert "$WORK/own.pem" --key "$WORK/own-link.key" --csr
grep -qF "prov-agent: key (from the command line): $WORK/own-link.key is the device.key of the \
state directory $SCSR, which --csr replaces" "$WORK/stub-own-key-csr.err" ||
    fail "stub-own-key-csr: message"
assert_eq "$requests" "$(wc -l <"$WORK/stub.log")" "stub-own-cert-csr: requests sent"
cmp -s "$SCSR/device.key" "$WORK/kept.key" || fail "stub-own-cert-csr: the key was changed"
cmp -s "$SCSR/device.pem" "$WORK/own.pem" || fail "stub-own-cert-csr: the certificate was changed"
cmp -s "$SCSR/identity.json" "$WORK/own-cert-identity.json" ||
    fail "stub-own-cert-csr: identity.json was changed"
# Provisioned again without --csr: the key and certificates of the --csr provisioning go with
# the rest of it.
agent 0 stub-nocsr-force --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-stub --symmetric-key "$KEY" --ca-file "$CA" --state-dir "$SCSR" \
    --force
assert_eq "config.json identity.json" "$(ls -A "$SCSR" | tr '\n' ' ' | sed 's/ $//')" \
    "stub-nocsr-force: only the files of the new provisioning"
# The switch from the environment, as the file or systemd would set it.
PROV_AGENT_CSR=yes agent 0 stub-csr-env --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-env --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$WORK/state-csr-env"
check_csr_state stub-csr-env "$WORK/state-csr-env" agent-csr-env "$CA"
PROV_AGENT_CSR=maybe agent 2 stub-csr-bad --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-env --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$WORK/state-csr-bad"

# A server that ignores the CSR leaves the device without a certificate: exit 7, nothing kept.
stub_start 200
agent 7 stub-csr-ignored --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-csr-none --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$WORK/state-csr-none" --csr
grep -q 'no certificate' "$WORK/stub-csr-ignored.err" || fail "stub-csr-ignored: reason"
[ ! -e "$WORK/state-csr-none/identity.json" ] || fail "stub-csr-ignored: state written"
[ ! -e "$WORK/state-csr-none/device.key" ] || fail "stub-csr-ignored: key written"

# ---- X.509 attestation against stub_dps: the certificate goes in the handshake, no token ----
# x509_device REGID [CURVE]: DIR $WORK/x509-REGID with an EC key on CURVE (default P-256) and a
# certificate for CN=REGID signed by provd's issuing CA (device.pem holds the chain after the
# leaf).
x509_device() {
    local d=$WORK/x509-$1
    mkdir -p "$d"
    openssl req -new -newkey ec -pkeyopt "ec_paramgen_curve:${2:-P-256}" -nodes -subj "/CN=$1" \
        -keyout "$d/device.key" -out "$d/device.csr" 2>/dev/null
    printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
        extendedKeyUsage=clientAuth >"$d/ext.cnf"
    openssl x509 -req -in "$d/device.csr" -CA "$DATA/ca/issuing.pem" \
        -CAkey "$DATA/ca/issuing.key" -set_serial "0x$(openssl rand -hex 8)" -days 1 \
        -extfile "$d/ext.cnf" -out "$d/leaf.pem" 2>/dev/null
    cat "$d/leaf.pem" "$DATA/ca/issuing.pem" >"$d/device.pem"
}
x509_device agent-x509-stub
XS=$WORK/x509-agent-x509-stub
stub_start 200
agent 0 stub-x509 --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-x509-stub \
    --cert "$XS/device.pem" --key "$XS/device.key" --ca-file "$CA" --state-dir "$XS/state"
assert_eq "PUT 200 auth=no cn=agent-x509-stub csr=no" \
    "$(awk '{ print $2, $4, $5, $6, $7 }' "$WORK/stub.log")" "stub-x509: certificate, no token"
assert_eq agent-x509-stub "$(jq -r .deviceId "$XS/state/identity.json")" "stub-x509: identity"
# A private key other users can read is worth a warning (the run itself goes on).
cp "$XS/device.key" "$XS/wide.key"
chmod 644 "$XS/wide.key"
agent 0 stub-x509-wide --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-x509-stub --cert "$XS/device.pem" --key "$XS/wide.key" \
    --ca-file "$CA" --state-dir "$XS/state"
grep -q 'wide.key holds a private key and is readable by other users' \
    "$WORK/stub-x509-wide.err" || fail "stub-x509-wide: no warning"
# X.509 attestation with a CSR: both in one registration.
stub_start 200 "${ISSUER[@]}"
agent 0 stub-x509-csr --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-x509-stub --cert "$XS/device.pem" --key "$XS/device.key" \
    --ca-file "$CA" --state-dir "$XS/state-csr" --csr
assert_eq "auth=no cn=agent-x509-stub csr=yes" "$(awk '{ print $5, $6, $7 }' "$WORK/stub.log")" \
    "stub-x509-csr: request"
check_csr_state stub-x509-csr "$XS/state-csr" agent-x509-stub "$CA"
stub_stop
# ---- No private key's text in the memory prov-agent frees ----
# key_scan reports each heap block freed while it holds text of the key of KEY_SCAN_FILE. It
# sees what OpenSSL's own reading of a key file leaves behind; it must see nothing of
# prov-agent's: its reading of --key at start, the TLS handshake that presents that key, the key
# --csr makes and keeps, and its reading back on the next run.
if [ "$KEY_SCAN" != none ]; then
    KEY_SCAN_FILE=$XS/device.key LD_PRELOAD=$KEY_SCAN \
        openssl pkey -in "$XS/device.key" -pubout -out /dev/null 2>"$WORK/key-scan-openssl.err"
    grep -q '^key_scan: ' "$WORK/key-scan-openssl.err" ||
        fail "key_scan did not see what OpenSSL's reading of a key file leaves"
    stub_start 200 "${ISSUER[@]}"
    KEY_SCAN_FILE=$XS/device.key LD_PRELOAD=$KEY_SCAN agent 0 key-scan --endpoint "$STUB_URL" \
        --id-scope "$SCOPE" --registration-id agent-x509-stub --cert "$XS/device.pem" \
        --key "$XS/device.key" --ca-file "$CA" --state-dir "$XS/state-scan" --csr
    assert_eq "auth=no cn=agent-x509-stub csr=yes" "$(awk '{ print $5, $6, $7 }' "$WORK/stub.log")" \
        "key-scan: the certificate was presented"
    assert_eq 0 "$(grep -c '^key_scan: ' "$WORK/key-scan.err" || true)" \
        "key-scan: blocks freed with text of --key"
    KEY_SCAN_FILE=$XS/state-scan/device.key LD_PRELOAD=$KEY_SCAN agent 0 key-scan-again \
        --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id agent-x509-stub \
        --cert "$XS/device.pem" --key "$XS/device.key" --ca-file "$CA" \
        --state-dir "$XS/state-scan" --csr
    grep -q '^already provisioned' "$WORK/key-scan-again.out" || fail "key-scan-again: output"
    assert_eq 0 "$(grep -c '^key_scan: ' "$WORK/key-scan-again.err" || true)" \
        "key-scan-again: blocks freed with text of device.key"
    stub_stop
fi
# Usage errors: a key that is not the certificate's, one without the other.
agent 2 x509-wrong-key --endpoint "$STUB_URL" --id-scope "$SCOPE" \
    --registration-id agent-x509-stub --cert "$XS/device.pem" --key "$DATA/ca/issuing.key" \
    --ca-file "$CA" --state-dir "$XS/state-bad"
grep -q '^prov-agent: cert (from the command line): the key of .* is not the key of the cert' \
    "$WORK/x509-wrong-key.err" || fail "x509-wrong-key: reason"
agent 2 x509-no-key --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id a \
    --cert "$XS/device.pem" --ca-file "$CA" --state-dir "$XS/state-bad"
agent 2 x509-no-cert --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id a \
    --key "$XS/device.key" --ca-file "$CA" --state-dir "$XS/state-bad"
agent 2 x509-and-key --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id a \
    --cert "$XS/device.pem" --key "$XS/device.key" --symmetric-key "$KEY" --ca-file "$CA" \
    --state-dir "$XS/state-bad"
agent 2 x509-missing --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id a \
    --cert "$WORK/none.pem" --key "$XS/device.key" --ca-file "$CA" --state-dir "$XS/state-bad"
assert_eq "prov-agent: cert (from the command line): cannot read certificate file $WORK/none.pem: \
No such file or directory" "$(cat "$WORK/x509-missing.err")" "x509-missing: message"
# A key file that cannot be used is the key's fault, named with where it was set.
PROV_AGENT_KEY=$WORK/none.key agent 2 x509-missing-key --endpoint "$STUB_URL" \
    --id-scope "$SCOPE" --registration-id a --cert "$XS/device.pem" --ca-file "$CA" \
    --state-dir "$XS/state-bad"
assert_eq "prov-agent: key (from the environment): cannot read key file $WORK/none.key: No such \
file or directory" "$(cat "$WORK/x509-missing-key.err")" "x509-missing-key: message"
agent 2 x509-not-a-key --endpoint "$STUB_URL" --id-scope "$SCOPE" --registration-id a \
    --cert "$XS/device.pem" --key "$XS/device.pem" --ca-file "$CA" --state-dir "$XS/state-bad"
assert_eq "prov-agent: key (from the command line): $XS/device.pem holds no unencrypted PEM \
private key" "$(cat "$WORK/x509-not-a-key.err")" "x509-not-a-key: message"
[ ! -e "$XS/state-bad" ] || fail "x509 usage errors: state written"

# ---- Against provd: CSR issuance ----
# A CSR made by openssl first, so that a failure tells the server's issuance from the agent's.
PROBEKEY=$(new_key 32)
st=$(admjson PUT /enrollments/agent-csr-probe "$(jq -nc --arg k "$PROBEKEY" \
    '{registrationId: "agent-csr-probe", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-ind.example.com"}')")
assert_eq 200 "$st" "PUT enrollment agent-csr-probe"
probe_csr=$(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout /dev/null -subj /CN=agent-csr-probe -outform DER 2>/dev/null | openssl base64 -A)
st=$(register agent-csr-probe "$(sas_token "$PROBEKEY" agent-csr-probe)" \
    "{\"registrationId\":\"agent-csr-probe\",\"csr\":\"$probe_csr\"}")
assert_eq 200 "$st" "register agent-csr-probe with an openssl CSR"
[ "$(jb '.registrationState.issuedCertificateChain | length')" = 3 ] ||
    fail "agent-csr-probe: issuedCertificateChain should hold leaf, issuing and root"
CSRKEY=$(new_key 32)
st=$(admjson PUT /enrollments/agent-csr "$(jq -nc --arg k "$CSRKEY" \
    '{registrationId: "agent-csr", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-ind.example.com"}')")
assert_eq 200 "$st" "PUT enrollment agent-csr"
SP=$WORK/state-provd-csr
agent 0 provd-csr --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-csr \
    --symmetric-key "$CSRKEY" --ca-file "$CA" --state-dir "$SP" --csr --json
no_secret provd-csr "$CSRKEY"
check_csr_state provd-csr "$SP" agent-csr "$CA"
assert_eq "$(openssl x509 -in "$DATA/ca/issuing.pem" -noout -subject | sed 's/^subject=//')" \
    "$(openssl x509 -in "$SP/device.pem" -noout -issuer | sed 's/^issuer=//')" \
    "provd-csr: issued by provd's issuing CA"
# The second run needs no server.
agent 0 provd-csr-again --endpoint https://127.0.0.1:1 --id-scope "$SCOPE" \
    --registration-id agent-csr --symmetric-key "$CSRKEY" --ca-file "$CA" --state-dir "$SP" \
    --csr
grep -q '^already provisioned' "$WORK/provd-csr-again.out" || fail "provd-csr: second run"

# ---- Against provd: X.509 attestation ----
# The device's certificate comes from provd's own issuing CA, which the server trusts; the
# individual enrollment names it (DPS: x509.clientCertificates.primary.certificate).
x509_device agent-x509
XP=$WORK/x509-agent-x509
st=$(admjson PUT /enrollments/agent-x509 "$(jq -nc --rawfile c "$XP/leaf.pem" \
    '{registrationId: "agent-x509", attestation: {type: "x509",
      x509: {clientCertificates: {primary: {certificate: $c}}}},
      iotHubHostName: "hub-ind.example.com"}')")
assert_eq 200 "$st" "PUT x509 enrollment agent-x509"
agent 0 provd-x509 --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-x509 \
    --cert "$XP/device.pem" --key "$XP/device.key" --ca-file "$CA" --state-dir "$XP/state" \
    --json
assert_eq "agent-x509 agent-x509 hub-ind.example.com assigned" \
    "$(jq -r '[.registrationId, .deviceId, .assignedHub, .status] | join(" ")' \
        "$XP/state/identity.json")" "provd-x509: identity.json"
# A certificate the enrollment does not name is refused.
x509_device agent-x509-other
agent 3 provd-x509-other --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-x509 \
    --cert "$WORK/x509-agent-x509-other/device.pem" \
    --key "$WORK/x509-agent-x509-other/device.key" --ca-file "$CA" \
    --state-dir "$XP/state-other"
[ ! -e "$XP/state-other/identity.json" ] || fail "provd-x509-other: state written"
# The key of a client certificate needs only to be one the TLS handshake can sign with: a P-521
# key, which a CSR of --csr may not carry, attests the device all the same.
x509_device agent-x509-p521 P-521
XQ=$WORK/x509-agent-x509-p521
assert_eq "ASN1 OID: secp521r1" "$(openssl pkey -in "$XQ/device.key" -text -noout |
    grep -o 'ASN1 OID: .*')" "provd-x509-p521: a P-521 key"
st=$(admjson PUT /enrollments/agent-x509-p521 "$(jq -nc --rawfile c "$XQ/leaf.pem" \
    '{registrationId: "agent-x509-p521", attestation: {type: "x509",
      x509: {clientCertificates: {primary: {certificate: $c}}}},
      iotHubHostName: "hub-ind.example.com"}')")
assert_eq 200 "$st" "PUT x509 enrollment agent-x509-p521"
agent 0 provd-x509-p521 --endpoint "$DEV" --id-scope "$SCOPE" \
    --registration-id agent-x509-p521 --cert "$XQ/device.pem" --key "$XQ/device.key" \
    --ca-file "$CA" --state-dir "$XQ/state"
assert_eq "agent-x509-p521 agent-x509-p521 assigned" \
    "$(jq -r '[.registrationId, .deviceId, .status] | join(" ")' "$XQ/state/identity.json")" \
    "provd-x509-p521: identity.json"
# With --csr as well: the device's own key for its new certificate is P-256 still.
agent 0 provd-x509-p521-csr --endpoint "$DEV" --id-scope "$SCOPE" \
    --registration-id agent-x509-p521 --cert "$XQ/device.pem" --key "$XQ/device.key" \
    --ca-file "$CA" --state-dir "$XQ/state-csr" --csr
check_csr_state provd-x509-p521-csr "$XQ/state-csr" agent-x509-p521 "$CA"

# ---- A state directory that cannot be written: found before anything is registered ----
# Found only once the server has answered, it would leave the device registered, and with --csr
# a valid certificate issued for a key then thrown away, on every run. The agent must fail (exit
# 5) before the server is asked anything: no registration, no certificate at provd.
ROKEY=$(new_key 32)
st=$(admjson PUT /enrollments/agent-ro "$(jq -nc --arg k "$ROKEY" \
    '{registrationId: "agent-ro", attestation: {type: "symmetricKey",
      symmetricKey: {primaryKey: $k}}, iotHubHostName: "hub-ind.example.com"}')")
assert_eq 200 "$st" "PUT enrollment agent-ro"
certificates_issued() {
    assert_eq 200 "$(admreq GET '/certificates?limit=1000')" "GET /certificates"
    jb '.certificates | length'
}
# certificates_of REGID: how many certificates provd issued to REGID.
certificates_of() {
    assert_eq 200 "$(admreq GET "/certificates?registrationId=$1")" "GET /certificates of $1"
    jb '.certificates | length'
}
# unwritable NAME DIR MESSAGE CA_FILE: prov-agent --csr with state directory DIR exits 5, says
# MESSAGE (the start of a line of its standard error), and registers nothing.
unwritable() {
    local name=$1 dir=$2 message=$3 ca=$4 before
    before=$(certificates_issued)
    agent 5 "$name" --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-ro \
        --symmetric-key "$ROKEY" --ca-file "$ca" --state-dir "$dir" --csr
    grep -q "^prov-agent: $message" "$WORK/$name.err" || fail "$name: no '$message'"
    grep -qxF -- "prov-agent: $dir cannot hold the device's identity: nothing was registered" \
        "$WORK/$name.err" || fail "$name: not said that nothing was registered"
    ! grep -q 'registered as device' "$WORK/$name.err" || fail "$name: registered first"
    assert_eq 404 "$(admreq GET /registrations/agent-ro)" "$name: GET /registrations/agent-ro"
    assert_eq 0 "$(certificates_of agent-ro)" "$name: certificates of agent-ro"
    assert_eq "$before" "$(certificates_issued)" "$name: certificates issued by provd"
    assert_eq "" "$(ls -A "$dir")" "$name: left something in the state directory"
}
# A directory the agent's user can neither make private nor write into. As root (CI), the agent
# runs as the user nobody: in a directory of root's of mode 0755, and in one of nobody's own of
# mode 0500 (the agent, libprov and the CA file are copied where nobody may read them).
# Otherwise, in a directory of mode 0500.
RO=$WORK/ro
mkdir -p "$RO/ro-wide" "$RO/ro-nowrite"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    PUB=$WORK/pub
    mkdir -p "$PUB"
    cp "$AGENT" "$PUB/prov-agent"
    cp "$(ldd "$AGENT" | awk '$1 ~ /^libprov\.so/ { print $3 }')" "$PUB/"
    cp "$CA" "$PUB/root.pem"
    chmod -R a+rX "$PUB"
    chmod 711 "$WORK"
    chmod 755 "$RO" "$RO/ro-wide"
    chown 65534:65534 "$RO/ro-nowrite"
    chmod 500 "$RO/ro-nowrite"
    AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH=$PUB"
    AGENT=$PUB/prov-agent RUN_AS=$AS_NOBODY unwritable ro-wide "$RO/ro-wide" \
        "$RO/ro-wide belongs to another user (uid 0, not 65534): a state directory must be its \
user's own" "$PUB/root.pem"
    AGENT=$PUB/prov-agent RUN_AS=$AS_NOBODY unwritable ro-nowrite "$RO/ro-nowrite" \
        "cannot create a file in $RO/ro-nowrite: Permission denied" "$PUB/root.pem"
    chmod 700 "$WORK"
elif [ "$(id -u)" = 0 ]; then
    echo "note: no setpriv: the state directories of another user are not tried" >&2
else
    chmod 500 "$RO/ro-nowrite"
    unwritable ro-nowrite "$RO/ro-nowrite" \
        "cannot create a file in $RO/ro-nowrite: Permission denied" "$CA"
fi
chmod 700 "$RO/ro-nowrite"
chown "$(id -u):$(id -g)" "$RO/ro-nowrite"
# A state directory reached through a symbolic link, or (as root) one of another user's: whoever
# can replace the link, or owns the directory, could change what the device keeps there (its CA
# chain, its key) behind its back. Refused before anything is registered, even by root, who could
# write there, and the directory is left as it was.
mkdir -p "$RO/link-target"
ln -s link-target "$RO/linked"
unwritable ro-link "$RO/linked" \
    "$RO/linked is a symbolic link: a state directory must be a directory itself" "$CA"
unwritable ro-link-slash "$RO/linked/" \
    "$RO/linked/ is a symbolic link: a state directory must be a directory itself" "$CA"
unwritable ro-link-dot "$RO/linked/./" \
    "$RO/linked/./ is a symbolic link: a state directory must be a directory itself" "$CA"
assert_eq 755 "$(mode "$RO/link-target")" "ro-link: the directory's mode"
if [ "$(id -u)" = 0 ]; then
    mkdir "$RO/others"
    chown 65534:65534 "$RO/others"
    chmod 777 "$RO/others"
    unwritable ro-others "$RO/others" "$RO/others belongs to another user (uid 65534, not 0): a \
state directory must be its user's own" "$CA"
    assert_eq 777 "$(mode "$RO/others")" "ro-others: the directory's mode"
fi
# The same directory, writable and the agent's own: the registration goes through.
agent 0 ro-fixed --endpoint "$DEV" --id-scope "$SCOPE" --registration-id agent-ro \
    --symmetric-key "$ROKEY" --ca-file "$CA" --state-dir "$RO/ro-nowrite" --csr
check_csr_state ro-fixed "$RO/ro-nowrite" agent-ro "$CA"
assert_eq 1 "$(certificates_of agent-ro)" "ro-fixed: certificates of agent-ro"

echo "PASS: prov-agent"
