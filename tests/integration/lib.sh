# Shared by the integration tests: start a real provd on free loopback ports with a temporary
# data directory, talk to it with curl and openssl, and stop it. Source it from a test script
# run by CTest as: bash TEST.sh BIN_DIR
#
# After provd_start: $DATA (data dir), $DEV (https://127.0.0.1:PORT of the device API), $ADM
# (admin API), $SCOPE (ID scope), $TOKEN (admin bearer token), $CA (root.pem), $PROVD_PID.
#
# With PROVD_VALGRIND=1 in the environment, provd serve runs under valgrind's memcheck, which
# also sees the libraries (jansson, OpenSSL, libevent) that the sanitizer build does not
# instrument; any memory error it reports fails the test.

set -euo pipefail

BIN=${1:?usage: $0 BIN_DIR}
BIN=$(cd "$BIN" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/provd-test.XXXXXX")
PROVD_PID=
SECOND_PID=
API="api-version=2021-06-01"

cleanup() {
    local rc=$?
    [ -z "$SECOND_PID" ] || kill "$SECOND_PID" 2>/dev/null || true
    stop_sinks
    provd_stop || rc=1
    if [ $rc -ne 0 ] && [ -f "$WORK/provd.log" ]; then
        echo "--- provd log (last 40 lines) ---" >&2
        tail -n 40 "$WORK/provd.log" >&2
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# provd_init [extra init flags...]: a fresh data directory in $WORK/data.
provd_init() {
    DATA=$WORK/data
    "$BIN/provd" init --data-dir "$DATA" "$@" >"$WORK/init.out"
    SCOPE=$(jq -r .id_scope "$DATA/provd.json")
    TOKEN=$(cat "$DATA/admin.token")
    CA=$DATA/ca/root.pem
}

# wait_listening PID PORT_FILE WHO: waits until WHO, started as PID, has written its port file.
wait_listening() {
    for _ in $(seq 1 600); do
        [ -s "$2" ] && return 0
        kill -0 "$1" 2>/dev/null || fail "$3 exited at start"
        sleep 0.05
    done
    fail "$3 did not start listening"
}

# provd_start [extra serve flags...]: serve on free loopback ports; waits until listening.
provd_start() {
    rm -f "$WORK/ports.json"
    local under=()
    if [ "${PROVD_VALGRIND:-}" = 1 ]; then
        under=(valgrind --quiet --log-file="$WORK/valgrind.%p.log")
    fi
    "${under[@]}" "$BIN/provd" serve --data-dir "$DATA" --device-listen 127.0.0.1:0 \
        --admin-listen 127.0.0.1:0 --port-file "$WORK/ports.json" "$@" \
        >>"$WORK/provd.log" 2>&1 &
    PROVD_PID=$!
    wait_listening "$PROVD_PID" "$WORK/ports.json" provd
    DEV=https://127.0.0.1:$(jq -r .device "$WORK/ports.json")
    ADM=https://127.0.0.1:$(jq -r .admin "$WORK/ports.json")
}

# provd_start_second: a second provd serving $DATA, as a second node sharing the store would; its
# device listener is $DEV2, its log $WORK/provd2.log.
provd_start_second() {
    rm -f "$WORK/ports2.json"
    "$BIN/provd" serve --data-dir "$DATA" --device-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --port-file "$WORK/ports2.json" --log-level warn 2>"$WORK/provd2.log" &
    SECOND_PID=$!
    wait_listening "$SECOND_PID" "$WORK/ports2.json" "the second provd"
    DEV2=https://127.0.0.1:$(jq -r .device "$WORK/ports2.json")
}

# provd_stop_second: stop the second provd; fails when it does not exit 0.
provd_stop_second() {
    kill "$SECOND_PID"
    wait "$SECOND_PID" || fail "the second provd did not stop cleanly: $(cat "$WORK/provd2.log")"
    SECOND_PID=
}

# provd_stop [SIGNAL]: stop provd (SIGTERM by default) and wait for it. Returns 1 after saying
# why when provd stopped by SIGTERM or SIGINT did not exit 0 (a sanitizer's report at exit makes
# it fail), when its log holds a sanitizer's report (whatever stopped it), or when valgrind found
# a memory error (its report is printed).
provd_stop() {
    [ -n "$PROVD_PID" ] || return 0
    local sig=${1:-TERM} rc=0
    kill -"$sig" "$PROVD_PID" 2>/dev/null || true
    wait "$PROVD_PID" 2>/dev/null || rc=$?
    local log=$WORK/valgrind.$PROVD_PID.log
    PROVD_PID=
    if [ -s "$log" ]; then
        echo "--- valgrind: memory errors in provd ---" >&2
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    if [ "$rc" != 0 ] && { [ "$sig" = TERM ] || [ "$sig" = INT ]; }; then
        echo "--- provd exited with status $rc; the end of its log: ---" >&2
        tail -n 40 "$WORK/provd.log" >&2
        return 1
    fi
    if grep -qE '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error' "$WORK/provd.log" \
        2>/dev/null; then
        echo "--- a sanitizer report in provd's log ---" >&2
        grep -E -A 30 '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error' \
            "$WORK/provd.log" >&2
        return 1
    fi
}

# admin METHOD PATH [BODY]: prints "STATUS BODY"-style output: the body to $WORK/body, the
# status on stdout.
admin() {
    local method=$1 path=$2 body=${3:-}
    local args=(-sS --cacert "$CA" -o "$WORK/body" -w '%{http_code}' -X "$method"
                -H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl "${args[@]}" "$ADM$path"
}

# b64_hmac KEY_B64 MESSAGE: base64(HMAC-SHA256(base64decode(KEY), MESSAGE)), by openssl alone.
b64_hmac() {
    local hexkey
    hexkey=$(printf '%s' "$1" | openssl base64 -d -A | od -An -vtx1 | tr -d ' \n')
    printf '%s' "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary |
        openssl base64 -A
}

# urlenc STRING: percent-encode for a SAS signature (+ / = only occur in base64).
urlenc() {
    printf '%s' "$1" | sed -e 's/+/%2B/g' -e 's|/|%2F|g' -e 's/=/%3D/g'
}

# sas_token DEVICE_KEY_B64 REGID [EXPIRY] [SCOPE]: a SAS Authorization value, by openssl alone.
sas_token() {
    local key=$1 regid=$2 se=${3:-$(($(date +%s) + 3600))} scope=${4:-$SCOPE}
    local sr="$scope/registrations/$regid"
    local sig
    sig=$(b64_hmac "$key" "$sr"$'\n'"$se")
    printf 'SharedAccessSignature sr=%s&sig=%s&se=%s&skn=registration' "$sr" "$(urlenc "$sig")" "$se"
}

# register REGID AUTH [BODY]: PUT register; body to $WORK/body, status on stdout.
register() {
    local regid=$1 auth=$2 body=${3:-"{\"registrationId\":\"$1\"}"}
    curl -sS --cacert "$CA" -o "$WORK/body" -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/json; charset=utf-8' -H "Authorization: $auth" \
        --data-binary "$body" "$DEV/$SCOPE/registrations/$regid/register?$API"
}

# ---- Requests whose headers matter, and checks of their answers ----
# Each request function below writes the answer's body to $WORK/body and its headers to
# $WORK/headers, and prints the HTTP status on stdout.

# devreq METHOD PATH [CURL_ARGS...]: a request to the device API (PATH includes the query).
devreq() {
    local method=$1 path=$2
    shift 2
    curl -sS --path-as-is --cacert "$CA" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' \
        -H 'Expect:' -X "$method" "$@" "$DEV$path"
}

# admreq METHOD PATH [CURL_ARGS...]: an authenticated request to the admin API.
admreq() {
    local method=$1 path=$2
    shift 2
    curl -sS --path-as-is --cacert "$CA" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' \
        -H 'Expect:' -X "$method" -H "Authorization: Bearer $TOKEN" "$@" "$ADM$path"
}

# admjson METHOD PATH BODY [CURL_ARGS...]: admreq with a JSON body.
admjson() {
    local method=$1 path=$2 body=$3
    shift 3
    admreq "$method" "$path" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

# header NAME: the value of response header NAME (case-insensitive) in $WORK/headers, empty
# when absent. With several responses in the file (100 Continue), the last value wins.
header() {
    tr -d '\r' <"$WORK/headers" |
        awk -v n="$1" 'BEGIN { n = tolower(n) }
            { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
                  v = substr($0, i + 1); sub(/^[ \t]+/, "", v); found = v } }
            END { printf "%s", found }'
}

# jb FILTER: jq -r FILTER over the last answer's body.
jb() {
    jq -r "$1" "$WORK/body"
}

UUID_RE='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{7}Z$'
JSON_CT='application/json; charset=utf-8'

# assert_match REGEX ACTUAL WHAT
assert_match() {
    [[ "$2" =~ $1 ]] || fail "$3: '$2' does not match /$1/"
}

# assert_error STATUS CODE ACTUAL_STATUS WHAT: the last answer is the error of docs/errors.md
# with that status and code (body, x-ms-error-code header, content type).
assert_error() {
    assert_eq "$1" "$3" "$4: HTTP status"
    assert_eq "$JSON_CT" "$(header content-type)" "$4: Content-Type"
    assert_eq "$2" "$(header x-ms-error-code)" "$4: x-ms-error-code"
    assert_eq "$2" "$(jq -r '.errorCode | tostring' "$WORK/body" 2>/dev/null || echo '?')" \
        "$4: errorCode"
    assert_eq number "$(jb '.errorCode | type')" "$4: errorCode type"
    assert_match "$UUID_RE" "$(jb .trackingId)" "$4: trackingId"
    assert_match "$TIME_RE" "$(jb .timestampUtc)" "$4: timestampUtc"
    assert_eq string "$(jb '.message | type')" "$4: message type"
}

# sas_raw DEVICE_KEY_B64 SR_AS_SENT EXPIRY [ORDER]: a SAS Authorization value whose signature is
# computed over SR exactly as given. ORDER "reversed" lists the fields skn, se, sig, sr.
sas_raw() {
    local key=$1 sr=$2 se=$3 order=${4:-}
    local sig
    sig=$(urlenc "$(b64_hmac "$key" "$sr"$'\n'"$se")")
    if [ "$order" = reversed ]; then
        printf 'SharedAccessSignature skn=registration&se=%s&sig=%s&sr=%s' "$se" "$sig" "$sr"
    else
        printf 'SharedAccessSignature sr=%s&sig=%s&se=%s&skn=registration' "$sr" "$sig" "$se"
    fi
}

# audit_all [QUERY]: every audit record (following "next"), one compact JSON object a line.
# QUERY is appended to the request (e.g. "&subject=dev-1").
audit_all() {
    local after=0 n pages=0
    : >"$WORK/audit.jsonl"
    while :; do
        local st
        st=$(admreq GET "/audit?after=$after&limit=50${1:-}")
        assert_eq 200 "$st" "GET /audit?after=$after"
        n=$(jb '.records | length')
        [ "$n" -gt 0 ] || break
        jq -c '.records[]' "$WORK/body" >>"$WORK/audit.jsonl"
        after=$(jb .next)
        pages=$((pages + 1))
        [ "$pages" -lt 10000 ] || fail "audit paging does not end"
    done
    cat "$WORK/audit.jsonl"
}

# ---- HTTPS receivers for the requests provd sends out (tests/integration/webhook_sink.c) ----
# The test passes the sink's path in $SINK.
declare -A SINK_PID SINK_PORT

# sink_start NAME [SINK_ARGS...]: a receiver with the data directory's TLS certificate, recording
# to $WORK/NAME.jsonl, answering as $WORK/NAME.control says while it exists; its port is then
# ${SINK_PORT[NAME]}.
sink_start() {
    local name=$1
    shift
    rm -f "$WORK/$name.port"
    "$SINK" --cert "$DATA/tls/server.pem" --key "$DATA/tls/server.key" \
        --out "$WORK/$name.jsonl" --port-file "$WORK/$name.port" \
        --control "$WORK/$name.control" "$@" >>"$WORK/$name.log" 2>&1 &
    SINK_PID[$name]=$!
    for _ in $(seq 1 200); do
        [ -s "$WORK/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$WORK/$name.port" ] || fail "webhook sink $name did not start: $(cat "$WORK/$name.log")"
    SINK_PORT[$name]=$(jq -r .port "$WORK/$name.port")
}

sink_stop() {
    kill -TERM "${SINK_PID[$1]}" 2>/dev/null || true
    wait "${SINK_PID[$1]}" 2>/dev/null || true
    unset "SINK_PID[$1]"
}

stop_sinks() {
    local name
    for name in "${!SINK_PID[@]}"; do
        sink_stop "$name"
    done
}

# endpoint_add HOST... : creates each endpoint HOST (enrollments may name only endpoints that
# exist) with the default document, or the one in $ENDPOINT_DOC when set.
endpoint_add() {
    local h st
    for h in "$@"; do
        st=$(admjson PUT "/endpoints/$h" "${ENDPOINT_DOC:-{\}}")
        [ "$st" = 200 ] || fail "PUT /endpoints/$h: HTTP $st $(cat "$WORK/body")"
    done
}

# new_key [BYTES]: a fresh base64 symmetric key (default 32 bytes).
new_key() {
    openssl rand -base64 "${1:-32}" | tr -d '\n'
}

# ---- Holding provd's commits back (needs the sqlite3 shell) ----

# hold_write_lock: the sqlite3 shell takes the store's write lock, as another process writing
# would, and keeps it until release_write_lock: provd's commits wait meanwhile (for up to its
# busy timeout, 10 s). Returns once the lock is held.
hold_write_lock() {
    rm -f "$WORK/release-lock" "$WORK/lock-held"
    # The shell waits for the lock while provd commits (.timeout), says it holds it by making
    # lock-held, and gives up at the first error (-bail) rather than carrying on without it.
    { echo '.timeout 10000'
      echo 'BEGIN IMMEDIATE;'
      echo ".system touch '$WORK/lock-held'"
      while [ ! -e "$WORK/release-lock" ]; do sleep 0.05; done
      echo 'COMMIT;'; } | sqlite3 -bail "$DATA/provd.db" &
    LOCK_PID=$!
    local _
    for _ in $(seq 300); do
        [ -e "$WORK/lock-held" ] && return 0
        kill -0 "$LOCK_PID" 2>/dev/null || break
        sleep 0.05
    done
    release_write_lock
    fail "the sqlite3 shell did not take the write lock"
}

release_write_lock() {
    touch "$WORK/release-lock"
    wait "$LOCK_PID"
}

# wait_decisions COUNT PATTERN: waits until provd's log holds COUNT lines matching PATTERN
# (a decision is logged when it is made, before its commit).
wait_decisions() {
    local _
    for _ in $(seq 600); do
        [ "$(grep -c -- "$2" "$WORK/provd.log" || true)" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "provd did not log $1 lines matching '$2'"
}

# ---- Certificates with chosen dates (openssl ca) ----

# openssl_ca DIR: an `openssl ca` set-up in DIR (its configuration is DIR/ca.cnf, section d;
# subjects need a CN); certificates then come with explicit dates from
# `openssl ca -batch -config DIR/ca.cnf -startdate ... -enddate ...`.
openssl_ca() {
    mkdir -p "$1/db/new"
    : >"$1/db/index.txt"
    echo 1000 >"$1/db/serial"
    cat >"$1/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
dir = $1/db
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = p
unique_subject = no
[p]
organizationName = optional
commonName = supplied
CNF
}
