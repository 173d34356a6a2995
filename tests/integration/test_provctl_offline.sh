#!/usr/bin/env bash
# provctl's offline commands (derive-key, sas, gen-id) against every known-answer vector of
# tests/data/crypto-vectors.json, its command-line errors, the help of every command, and how it
# finds a server from a data directory (checked against closed loopback ports, no server needed).
#
# Usage: test_provctl_offline.sh PATH/TO/provctl PATH/TO/tests/data
set -euo pipefail

PROVCTL=${1:?usage: $0 PROVCTL DATA_DIR}
DATA=${2:?usage: $0 PROVCTL DATA_DIR}
VECTORS=$DATA/crypto-vectors.json

# The environment must not point provctl at a server.
unset PROVD_DATA_DIR PROVD_SERVER PROVD_CA_FILE PROVD_TOKEN_FILE

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

checks=0
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() {
    checks=$((checks + 1))
}

# expect_out EXPECTED ARGS...: the command succeeds, prints nothing on stderr, and its last
# line of output is EXPECTED.
expect_out() {
    local want=$1 out rc=0
    shift
    out=$("$PROVCTL" "$@" 2>"$TMP/err") || rc=$?
    [ "$rc" -eq 0 ] || fail "provctl $* exited $rc: $(cat "$TMP/err")"
    [ ! -s "$TMP/err" ] || fail "provctl $* wrote on stderr: $(cat "$TMP/err")"
    [ "$(printf '%s\n' "$out" | tail -n 1)" = "$want" ] ||
        fail "provctl $*: got '$(printf '%s\n' "$out" | tail -n 1)', want '$want'"
    pass
}

# expect_err STATUS PATTERN ARGS...: the command exits with STATUS, prints nothing on stdout and
# exactly one line on stderr, "provctl: ..." containing PATTERN (a fixed string).
expect_err() {
    local want_rc=$1 pattern=$2 out rc=0
    shift 2
    out=$("$PROVCTL" "$@" 2>"$TMP/err") || rc=$?
    [ "$rc" -eq "$want_rc" ] || fail "provctl $*: exit $rc, want $want_rc ($(cat "$TMP/err"))"
    [ -z "$out" ] || fail "provctl $*: printed on stdout: $out"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "provctl $*: stderr is not one line: $(cat "$TMP/err")"
    grep -q '^provctl: ' "$TMP/err" || fail "provctl $*: stderr lacks the prefix: $(cat "$TMP/err")"
    grep -qF -- "$pattern" "$TMP/err" ||
        fail "provctl $*: stderr '$(cat "$TMP/err")' lacks '$pattern'"
    pass
}

# ---- Known-answer vectors ----

n=$(jq '.seed_token | length' "$VECTORS")
[ "$n" -gt 0 ] || fail "no seed_token vectors"
for i in $(seq 0 $((n - 1))); do
    secret=$(jq -r ".seed_token[$i].secret_raw" "$VECTORS")
    id=$(jq -r ".seed_token[$i].device_id" "$VECTORS")
    token=$(jq -r ".seed_token[$i].token" "$VECTORS")
    expect_out "$token" derive-key --raw-secret "$secret" "$id"
    # Options after the positional argument, and --json, give the same key.
    got=$("$PROVCTL" derive-key "$id" --json --raw-secret "$secret" | jq -r .deviceKey)
    [ "$got" = "$token" ] || fail "derive-key --json (seed $i): got $got, want $token"
    pass
done

n=$(jq '.group_key_derivation | length' "$VECTORS")
[ "$n" -gt 0 ] || fail "no group_key_derivation vectors"
for i in $(seq 0 $((n - 1))); do
    gk=$(jq -r ".group_key_derivation[$i].group_key_b64" "$VECTORS")
    id=$(jq -r ".group_key_derivation[$i].registration_id" "$VECTORS")
    want=$(jq -r ".group_key_derivation[$i].derived_key_b64" "$VECTORS")
    expect_out "$want" derive-key --group-key "$gk" "$id"
    expect_out "$want" derive-key --group-key="$gk" "$id"
    got=$("$PROVCTL" --json derive-key --group-key "$gk" "$id")
    [ "$(jq -r .deviceKey <<<"$got")" = "$want" ] || fail "derive-key --json (group $i): $got"
    [ "$(jq -r .id <<<"$got")" = "$id" ] || fail "derive-key --json (group $i) id: $got"
    pass
done

n=$(jq '.sas | length' "$VECTORS")
[ "$n" -gt 0 ] || fail "no sas vectors"
for i in $(seq 0 $((n - 1))); do
    key=$(jq -r ".sas[$i].device_key_b64" "$VECTORS")
    sr=$(jq -r ".sas[$i].sr" "$VECTORS")
    se=$(jq -r ".sas[$i].se" "$VECTORS")
    header=$(jq -r ".sas[$i].header" "$VECTORS")
    case $sr in
    *%2f*) enc=lower ;;
    *%2F*) enc=upper ;;
    *) enc=none ;;
    esac
    plain=${sr//%2f//}
    plain=${plain//%2F//}
    scope=${plain%%/registrations/*}
    regid=${plain#*/registrations/}
    [ "$scope/registrations/$regid" = "$plain" ] || fail "cannot split sr $sr"
    expect_out "$header" sas --id-scope "$scope" --registration-id "$regid" --key "$key" \
        --expiry "$se" --encode "$enc"
    if [ "$enc" = none ]; then
        # none is the default spelling.
        expect_out "$header" sas --id-scope "$scope" --registration-id "$regid" --key "$key" \
            --expiry "$se"
    fi
    got=$("$PROVCTL" sas --json --id-scope "$scope" --registration-id "$regid" --key "$key" \
        --expiry "$se" --encode "$enc" | jq -r .authorization)
    [ "$got" = "$header" ] || fail "sas --json (vector $i): $got"
    pass
    # The same token from the group key the device key derives from, when the vectors hold it.
    gk=$(jq -r --arg k "$key" --arg id "$regid" \
        '.group_key_derivation[] | select(.derived_key_b64 == $k and .registration_id == $id)
         | .group_key_b64' "$VECTORS" | head -n 1)
    if [ -n "$gk" ]; then
        expect_out "$header" sas --id-scope "$scope" --registration-id "$regid" --group-key "$gk" \
            --expiry "$se" --encode "$enc"
    fi
done

# ---- Registration IDs are case-insensitive ----
# The server lower-cases a registration ID and derives the device key over the lower-cased ID:
# the group form of derive-key and sas do the same, whatever case the ID is typed in. The seed
# form signs the device ID's bytes as they are.

gk=$(jq -r '.group_key_derivation[0].group_key_b64' "$VECTORS")
lower=$("$PROVCTL" derive-key --group-key "$gk" sensor-a)
expect_out "$lower" derive-key --group-key "$gk" Sensor-A
expect_out "$lower" derive-key --group-key "$gk" SENSOR-A
got=$("$PROVCTL" --json derive-key --group-key "$gk" Sensor-A)
[ "$(jq -r '[.id, .deviceKey] | join(" ")' <<<"$got")" = "sensor-a $lower" ] ||
    fail "derive-key --json of Sensor-A: $got"
pass
n=$(jq '.group_key_derivation | length' "$VECTORS")
for i in $(seq 0 $((n - 1))); do
    gk=$(jq -r ".group_key_derivation[$i].group_key_b64" "$VECTORS")
    id=$(jq -r ".group_key_derivation[$i].registration_id" "$VECTORS")
    want=$(jq -r ".group_key_derivation[$i].derived_key_b64" "$VECTORS")
    expect_out "$want" derive-key --group-key "$gk" "${id^^}"
done
n=$(jq '.seed_token | length' "$VECTORS")
for i in $(seq 0 $((n - 1))); do
    secret=$(jq -r ".seed_token[$i].secret_raw" "$VECTORS")
    id=$(jq -r ".seed_token[$i].device_id" "$VECTORS")
    token=$(jq -r ".seed_token[$i].token" "$VECTORS")
    [ "${id^^}" != "$id" ] || continue
    got=$("$PROVCTL" derive-key --raw-secret "$secret" "${id^^}")
    [ "$got" != "$token" ] || fail "derive-key --raw-secret lower-cased the device ID ${id^^}"
    pass
done
# sas: the vector's header from the ID in capitals, by --key and by --group-key.
key=$(jq -r '.sas[0].device_key_b64' "$VECTORS")
se=$(jq -r '.sas[0].se' "$VECTORS")
header=$(jq -r '.sas[0].header' "$VECTORS")
gk=$(jq -r --arg k "$key" '.group_key_derivation[] | select(.derived_key_b64 == $k)
    | .group_key_b64' "$VECTORS" | head -n 1)
[ -n "$gk" ] || fail "no group key vector for the sas vector's device key"
expect_out "$header" sas --id-scope 0ne00ABCDEF --registration-id My-Device-01 --key "$key" \
    --expiry "$se"
expect_out "$header" sas --id-scope 0ne00ABCDEF --registration-id MY-DEVICE-01 --group-key "$gk" \
    --expiry "$se"

# ---- Expiry from --ttl ----

key=$(jq -r '.sas[0].device_key_b64' "$VECTORS")
for ttl in "" 60; do
    before=$(date +%s)
    if [ -n "$ttl" ]; then
        h=$("$PROVCTL" sas --id-scope 0ne00ABCDEF --registration-id dev-1 --key "$key" --ttl "$ttl")
    else
        h=$("$PROVCTL" sas --id-scope 0ne00ABCDEF --registration-id dev-1 --key "$key")
    fi
    after=$(date +%s)
    se=$(sed -n 's/.*&se=\([0-9]*\)&.*/\1/p' <<<"$h")
    lifetime=${ttl:-3600}
    if [ -z "$se" ] || [ "$se" -lt $((before + lifetime)) ] || [ "$se" -gt $((after + lifetime)) ]
    then
        fail "sas --ttl '${ttl}': se '$se' not $lifetime s after $before..$after"
    fi
    prefix="SharedAccessSignature sr=0ne00ABCDEF/registrations/dev-1&sig="
    [[ $h == "$prefix"*"&se=$se&skn=registration" ]] || fail "sas --ttl: unexpected header $h"
    pass
done

# ---- gen-id ----

uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
a=$("$PROVCTL" gen-id)
b=$("$PROVCTL" gen-id)
[[ $a =~ $uuid_re ]] || fail "gen-id printed '$a'"
[[ $b =~ $uuid_re ]] || fail "gen-id printed '$b'"
[ "$a" != "$b" ] || fail "gen-id printed the same UUID twice"
[[ $("$PROVCTL" --json gen-id | jq -r .id) =~ $uuid_re ]] || fail "gen-id --json"
pass

# ---- Command-line errors: exit 2 and one message ----

gk=$(jq -r '.group_key_derivation[0].group_key_b64' "$VECTORS")
sas_args=(sas --id-scope 0ne00ABCDEF --registration-id dev-1 --key "$key")
expect_err 2 "missing command"
expect_err 2 'unknown command "frobnicate"' frobnicate
expect_err 2 "group: missing subcommand" group
expect_err 2 'enrollment: unknown subcommand "frob"' enrollment frob
expect_err 2 "derive-key: missing argument" derive-key
expect_err 2 "derive-key: missing argument" derive-key --group-key "$gk"
expect_err 2 "give exactly one of --group-key and --raw-secret" derive-key dev-1
expect_err 2 "give exactly one of --group-key and --raw-secret" \
    derive-key --group-key "$gk" --raw-secret s dev-1
expect_err 2 'unexpected argument "dev-2"' derive-key --group-key "$gk" dev-1 dev-2
expect_err 2 "option --group-key needs a value" derive-key dev-1 --group-key
expect_err 2 "--group-key: not valid base64" derive-key --group-key 'not*base64' dev-1
expect_err 2 "--group-key: not valid base64" derive-key --group-key 'abc' dev-1
expect_err 2 "--group-key: the key is empty" derive-key --group-key '' dev-1
expect_err 2 'invalid registration ID "bad id"' derive-key --group-key "$gk" 'bad id'
expect_err 2 'invalid registration ID "-dev"' derive-key --group-key "$gk" -- -dev
expect_err 2 "derive-key: the secret and the ID must not be empty" derive-key --raw-secret '' x
expect_err 2 "derive-key: unknown option --frob" derive-key --frob x
expect_err 2 "option --json takes no value" derive-key --json=yes --raw-secret s x
expect_err 2 "option --group-key given more than once" \
    derive-key --group-key "$gk" --group-key "$gk" dev-1
expect_err 2 "--id-scope and --registration-id are required" sas --key "$key"
expect_err 2 "--id-scope and --registration-id are required" sas --id-scope 0ne00ABCDEF --key "$key"
expect_err 2 "give exactly one of --key and --group-key" \
    sas --id-scope 0ne00ABCDEF --registration-id dev-1
expect_err 2 "give exactly one of --key and --group-key" "${sas_args[@]}" --group-key "$gk"
expect_err 2 'invalid registration ID "dev/1"' \
    sas --id-scope 0ne00ABCDEF --registration-id dev/1 --key "$key"
expect_err 2 'invalid registration ID "dev-"' \
    sas --id-scope 0ne00ABCDEF --registration-id dev- --key "$key"
expect_err 2 '--id-scope: "0ne/x" is not an ID scope' \
    sas --id-scope 0ne/x --registration-id dev-1 --key "$key"
expect_err 2 "--key: not valid base64" sas --id-scope 0ne00ABCDEF --registration-id dev-1 --key '@@'
expect_err 2 "--group-key: not valid base64" \
    sas --id-scope 0ne00ABCDEF --registration-id dev-1 --group-key 'a b='
expect_err 2 '--encode: "mixed" is none of none, lower, upper' "${sas_args[@]}" --encode mixed
expect_err 2 '--ttl: "0" is not a whole number' "${sas_args[@]}" --ttl 0
expect_err 2 '--ttl: "1h" is not a whole number' "${sas_args[@]}" --ttl 1h
expect_err 2 '--expiry: "-5" is not a whole number' "${sas_args[@]}" --expiry -5
expect_err 2 "--ttl and --expiry exclude each other" "${sas_args[@]}" --ttl 5 --expiry 1795659795
expect_err 2 'gen-id: unexpected argument "x"' gen-id x
expect_err 2 "group show: missing argument" group show
expect_err 2 'invalid group ID "bad id"' group show 'bad id'
expect_err 2 'invalid registration ID "a/b"' enrollment delete a/b
expect_err 2 "group create: unknown option --device-id" group create g1 --device-id x
expect_err 2 "--primary-key: a key must be 16 to 64 bytes, this one has 3" \
    group create g1 --primary-key YWJj
expect_err 2 "--secondary-key needs --primary-key" enrollment create dev-1 --secondary-key "$key"
expect_err 2 "--initial-twin:" enrollment create dev-1 --initial-twin '{"tags":'
expect_err 2 "--initial-twin: must be a JSON object" enrollment create dev-1 --initial-twin '[1]'
expect_err 2 "registration list: --group ID is required" registration list
expect_err 2 '--limit: "0" is not a whole number from 1 to 1000' audit list --limit 0
expect_err 2 'invalid subject "a b"' audit list --subject 'a b'

# ---- Finding the server: errors before any request, and the URL derived from a data dir ----

expect_err 1 "no server given" info
expect_err 1 "no server given" group list --server https://127.0.0.1:1
expect_err 1 'server "http://127.0.0.1:1" is not an https:// URL' \
    info --server http://127.0.0.1:1 --ca-file /dev/null --token-file /dev/null
expect_err 1 "$TMP/none: no provd.json there" info --data-dir "$TMP/none"

dd=$TMP/data
mkdir -p "$dd/ca"
echo "dummy" >"$dd/ca/root.pem"
expect_err 1 "no provd.json there" --data-dir "$dd" info
echo '{"admin_listen": "0.0.0.0:1"}' >"$dd/provd.json"
expect_err 1 "cannot read token file $dd/admin.token" --data-dir "$dd" info
printf '\n' >"$dd/admin.token"
expect_err 1 "token file $dd/admin.token is empty" --data-dir "$dd" info
printf 'secret-token-value\n' >"$dd/admin.token"
# Port 1 on loopback is closed: the message names the URL provctl derived, the token never shows.
expect_err 1 "cannot reach https://127.0.0.1:1:" --data-dir "$dd" info
grep -q secret-token-value "$TMP/err" && fail "the token appeared in an error"
PROVD_DATA_DIR=$dd expect_err 1 "cannot reach https://127.0.0.1:1:" enrollment list
echo '{"device": 3, "admin": 2}' >"$dd/provd.ports"
expect_err 1 "cannot reach https://127.0.0.1:2:" group show g1 --data-dir "$dd"
rm "$dd/provd.ports"
echo '{"admin_listen": "[::]:1"}' >"$dd/provd.json"
expect_err 1 "cannot reach https://[::1]:1:" --data-dir "$dd" info
echo '{"admin_listen": "localhost"}' >"$dd/provd.json"
expect_err 1 'admin_listen "localhost" is not HOST:PORT' --data-dir "$dd" info
# The command line beats the data directory.
expect_err 1 "cannot reach https://127.0.0.1:3:" --data-dir "$dd" --server https://127.0.0.1:3/ info
expect_err 1 "cannot read CA file $TMP/nope.pem" \
    --data-dir "$dd" --server https://127.0.0.1:3 --ca-file "$TMP/nope.pem" info

# ---- --help: every command, exit 0, its usage on stdout ----

cmds=("group create" "group show" "group list" "group enable" "group disable" "group delete"
    "enrollment create" "enrollment show" "enrollment list" "enrollment enable"
    "enrollment disable" "enrollment delete" "registration list" "registration show"
    "registration delete" "audit list" "info" "derive-key" "sas" "gen-id"
    "webhook add" "webhook list" "webhook show" "webhook enable" "webhook disable"
    "webhook remove" "events list" "events show" "events retry"
    "registration reprovision" "endpoint add" "endpoint list" "endpoint show" "endpoint update"
    "endpoint remove" "cert list" "cert show" "cert revoke")
top=$("$PROVCTL" --help)
for c in "${cmds[@]}"; do
    # shellcheck disable=SC2086 # the command's words are meant to split
    out=$("$PROVCTL" $c --help) || fail "provctl $c --help failed"
    grep -q "^Usage: provctl $c" <<<"$out" || fail "provctl $c --help: no usage line"
    # Help is wrapped to 100 columns, the details of a command included.
    long=$(awk 'length > 100' <<<"$out")
    [ -z "$long" ] || fail "provctl $c --help has a line over 100 columns: $long"
    # shellcheck disable=SC2086
    "$PROVCTL" $c -h >/dev/null || fail "provctl $c -h failed"
    grep -q "^  $c" <<<"$top" || fail "provctl --help does not list $c"
    pass
done
# provctl --help lists no command that this test does not know.
cmd_re='^  ((group|enrollment|registration|audit|webhook|events|endpoint|cert) [a-z]+'
cmd_re+='|info|derive-key|sas|gen-id)( |$)'
listed=$(grep -cE "$cmd_re" <<<"$top")
[ "$listed" -eq ${#cmds[@]} ] || fail "provctl --help lists $listed commands, want ${#cmds[@]}"
for g in group enrollment registration audit; do
    "$PROVCTL" "$g" --help | grep -q "^Usage: provctl $g SUBCOMMAND" || fail "provctl $g --help"
    pass
done
# Read whole: grep -q would stop reading at the first line, and provctl fail to write the rest.
top=$("$PROVCTL" -h) || fail "provctl -h failed"
grep -q '^Usage: provctl' <<<"$top" || fail "provctl -h"
"$PROVCTL" --version | grep -qE '^provctl [0-9]' || fail "provctl --version"
pass

echo "provctl offline: $checks checks passed"
