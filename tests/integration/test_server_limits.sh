#!/usr/bin/env bash
# The limits provd's listeners put on their clients, with real TLS clients on 127.0.0.1:
# - the deadline for a whole request (request_timeout_s), on the device and the admin listener:
#   a client that trickles its request slower than the deadline, but with every gap well within
#   the idle timeout, has its connection closed at the deadline, while other connections are
#   served; a request trickled within the deadline is answered; on a kept-alive connection the
#   deadline runs from the next request's first byte;
# - the wait for a kept-alive connection's next request (idle_timeout_s), which raw TLS bytes that
#   never make up a record do not extend;
# - the TLS close_notify alert that ends a connection provd closes after serving a request on it;
# - a shutdown with connections in every state: before and during the TLS handshake, idle without
#   a request, idle after an answer, trickling a request, waiting for a registration's commit;
# - TLS 1.2 session resumption, by session ID and (admin listener) by ticket, and TLS 1.3's, with
#   several workers.
# Every stop of provd must end with exit status 0 and no sanitizer report.
#
# Usage: test_server_limits.sh BIN_DIR SLOW_CLIENT
source "$(dirname "$0")/lib.sh"

SLOW=${2:?usage: $0 BIN_DIR SLOW_CLIENT}

# assert_between MIN MAX VALUE WHAT
assert_between() {
    if [ "$3" -lt "$1" ] || [ "$3" -gt "$2" ]; then fail "$4: $3 is not within $1..$2"; fi
}

# field NAME LINE: the value of NAME=VALUE in LINE.
field() {
    sed -nE "s/(^|.* )$1=([^ ]*).*/\2/p" <<<"$2"
}

# slow URL SLOW_CLIENT_ARGS...: slow_client against the listener of URL. Sets STATUS (a code, or
# "none" when the connection was closed without an answer), SENT, TOTAL, the times in ms to the
# answer or the close: SINCE_CONNECT, SINCE_ANSWER (after --first) and SINCE_START (since the
# slow request's first byte), and CLOSE: how provd ended the connection (notify: with a TLS
# close_notify alert; eof: without one; none: not within 15 s of the answer).
slow() {
    local url=$1 line
    shift
    line=$("$SLOW" --port "${url##*:}" --ca "$CA" "$@") || fail "slow_client $*: $line"
    echo "$line" >>"$WORK/slow.log"
    STATUS=$(field status "$line")
    SENT=$(field sent "$line" | cut -d/ -f1)
    TOTAL=$(field sent "$line" | cut -d/ -f2)
    SINCE_CONNECT=$(field since_connect_ms "$line")
    SINCE_ANSWER=$(field since_answer_ms "$line")
    SINCE_START=$(field since_start_ms "$line")
    CLOSE=$(field close "$line")
}

# assert_cut WHAT: the last slow request was cut off: no answer, not all of it sent.
assert_cut() {
    assert_eq none "$STATUS" "$1: answer"
    [ "$SENT" -lt "$TOTAL" ] || fail "$1: all $TOTAL bytes were sent before the close"
}

# ---- The request deadline: 2 s, with 4 s allowed between two reads ----
provd_init
"$BIN/provd" serve --data-dir "$DATA" --request-timeout 0 2>"$WORK/err" && fail "--request-timeout 0"
grep -q -- "--request-timeout must be from 1 to 86400" "$WORK/err" ||
    fail "--request-timeout 0: $(cat "$WORK/err")"
provd_start --idle-timeout 4 --request-timeout 2 --workers 2 --log-level debug

# A request of 100 bytes, a byte every 0.25 s (25 s in all): closed 2 s after the connection was
# made, on either listener. Meanwhile, other connections are served at once.
slow "$DEV" --interval 0.25 &
bg=$!
sleep 0.5
for url in "$DEV" "$ADM"; do
    out=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code} %{time_total}' "$url/healthz")
    assert_eq 200 "${out% *}" "healthz at $url while a request is trickled"
    awk -v t="${out#* }" 'BEGIN { exit !(t < 1) }' || fail "healthz at $url took ${out#* } s"
done
wait "$bg"
line=$(tail -n 1 "$WORK/slow.log")
STATUS=$(field status "$line")
SENT=$(field sent "$line" | cut -d/ -f1)
TOTAL=$(field sent "$line" | cut -d/ -f2)
assert_cut "device listener, trickled"
assert_between 1800 3500 "$(field since_connect_ms "$line")" \
    "device listener, trickled: closed after (ms)"

slow "$ADM" --interval 0.25
assert_cut "admin listener, trickled"
assert_between 1800 3500 "$SINCE_CONNECT" "admin listener, trickled: closed after (ms)"

# Each close is logged, with the client's address and the limit.
closed='connection closed worker=[0-9] remote=127\.0\.0\.1:[0-9]*'
n=$(grep -c "level=info request not received in time: $closed request_timeout_s=2\$" \
    "$WORK/provd.log" || true)
assert_eq 2 "$n" "log lines of requests not received in time"

# Trickled, but whole within the deadline (about a second): answered, and the connection then
# closed as the request asked, with a close_notify.
for url in "$DEV" "$ADM"; do
    slow "$url" --interval 0.01
    assert_eq 200 "$STATUS" "$url: a request trickled within the deadline"
    assert_eq "$TOTAL" "$SENT" "$url: bytes sent of a request trickled within the deadline"
    assert_eq notify "$CLOSE" "$url: the close after the answer"
done

# On a kept-alive connection the deadline runs from the next request's first byte: 3 s without a
# byte (less than the idle timeout), then a request sent within the deadline, is answered...
slow "$DEV" --first --pause 3 --interval 0.01
assert_eq 200 "$STATUS" "kept-alive: a request begun after a pause longer than the deadline"
assert_between 3000 6000 "$SINCE_ANSWER" "kept-alive: the pause and the request (ms)"
assert_eq notify "$CLOSE" "kept-alive: the close after the answer"
# ... and a next request trickled past it is cut off 2 s after its first byte, the connection
# ended with a close_notify.
slow "$ADM" --first --pause 1 --interval 0.25
assert_cut "kept-alive, trickled"
assert_between 1800 3500 "$SINCE_START" "kept-alive, trickled: closed after (ms)"
assert_eq notify "$CLOSE" "kept-alive, trickled: the close"

# A next request sent as raw TLS bytes, one every 0.5 s, each resetting the time between two reads
# but none making up the record before the 122nd: no byte of the request is decrypted, and the
# connection is closed when the idle timeout (4 s) after the last answer has passed.
slow "$DEV" --first --raw --interval 0.5
assert_cut "kept-alive, raw TLS bytes"
assert_between 3800 5500 "$SINCE_ANSWER" "kept-alive, raw TLS bytes: closed after (ms)"
assert_eq notify "$CLOSE" "kept-alive, raw TLS bytes: the close"
# The same as a first request: the deadline runs from the accept.
slow "$ADM" --raw --interval 0.25
assert_cut "first request, raw TLS bytes"
assert_between 1800 3500 "$SINCE_CONNECT" "first request, raw TLS bytes: closed after (ms)"
grep -q "level=debug no request in time: $closed timeout_s=4\$" "$WORK/provd.log" ||
    fail "the kept-alive connection's close is not logged"

# ---- Shutdown with connections in every state (deadline 30 s) ----
# A connection that has not begun its TLS handshake, one halfway through it, one with TLS and no
# request, an idle kept-alive one, one trickling a request, and a registration waiting for its
# commit (the store's write lock held by the sqlite3 shell). On SIGTERM provd waits for the
# registration alone: it answers it once the commit is made, closes the others (the kept-alive
# one with a close_notify) and exits 0 at once.
provd_stop || fail "the deadlines: provd did not stop cleanly"
jq '.request_timeout_s = 30' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
provd_start --workers 4
GK=$(new_key 64)
endpoint_add hub-a.example.com
st=$(admjson PUT /enrollmentGroups/limits "$(jq -nc --arg k "$GK" '{enrollmentGroupId: "limits",
    attestation: {type: "symmetricKey", symmetricKey: {primaryKey: $k}},
    iotHubs: ["hub-a.example.com"]}')")
assert_eq 200 "$st" "PUT enrollment group limits: $(cat "$WORK/body")"
port=${DEV##*:}
exec 3<>"/dev/tcp/127.0.0.1/$port"
exec 4<>"/dev/tcp/127.0.0.1/$port"
printf '\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03' >&4 # a ClientHello's first bytes
mkfifo "$WORK/tls-in"
openssl s_client -connect "127.0.0.1:$port" -CAfile "$CA" -quiet <"$WORK/tls-in" \
    >"$WORK/tls-idle.out" 2>&1 &
tls_idle=$!
exec 5>"$WORK/tls-in"
: >"$WORK/slow.log"
slow "$DEV" --first --pause 20 --interval 0.01 &
kept=$!
slow "$DEV" --interval 0.25 &
trickled=$!
hold_write_lock
r=limits-dev
auth=$(sas_token "$(b64_hmac "$GK" "$r")" "$r")
curl -sS --cacert "$CA" -o "$WORK/reg.json" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/json' -H "Authorization: $auth" \
    --data-binary "{\"registrationId\":\"$r\"}" \
    "$DEV/$SCOPE/registrations/$r/register?$API" >"$WORK/reg.status" 2>"$WORK/reg.err" &
reg=$!
wait_decisions 1 "device.register subject=$r "
sleep 1
start=$(date +%s%N)
kill -TERM "$PROVD_PID"
sleep 1
release_write_lock
provd_stop || fail "shutdown with connections in every state: provd did not stop"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -lt 5000 ] || fail "provd took $elapsed_ms ms to stop"
wait "$reg" || fail "the registration waiting for its commit: $(cat "$WORK/reg.err")"
assert_eq 200 "$(cat "$WORK/reg.status")" "the registration waiting for its commit: HTTP status"
assert_eq "assigned hub-a.example.com" "$(jq -r '[.status, .registrationState.assignedHub] |
    join(" ")' "$WORK/reg.json")" "the registration waiting for its commit: answer"
wait "$kept" "$trickled"
line=$(grep -v 'since_answer_ms=- ' "$WORK/slow.log")
assert_eq "none 0 notify" "$(field status "$line") $(field sent "$line" | cut -d/ -f1) $(field \
    close "$line")" "the idle kept-alive connection at shutdown: answer, bytes sent, close"
assert_between 0 10000 "$(field since_answer_ms "$line")" \
    "the idle kept-alive connection at shutdown: closed after (ms)"
line=$(grep 'since_answer_ms=- ' "$WORK/slow.log")
assert_eq none "$(field status "$line")" "the trickled request at shutdown: answer"
for fd in 3 4; do
    timeout 5 cat <&$fd >/dev/null || fail "connection $fd at shutdown: not closed"
done
exec 3<&- 4<&-
for _ in $(seq 50); do
    kill -0 "$tls_idle" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$tls_idle" 2>/dev/null; then
    fail "the TLS connection without a request: not closed"
fi
exec 5>&-

# ---- TLS session resumption, across 4 workers ----
provd_start --workers 4
# The registration answered at shutdown was stored as answered.
assert_eq 200 "$(admreq GET "/registrations/$r")" "GET /registrations/$r after the restart"
assert_eq hub-a.example.com "$(jb .assignedHub)" "$r after the restart"
# resume URL NAME S_CLIENT_ARGS...: a GET /healthz over a new TLS session saved to $WORK/NAME.sess,
# then four more connections offering it: the first must be new, each other resumed. Each
# connection reads its answer until provd closes the connection.
resume() {
    local url=$1 name=$2 i out
    shift 2
    local args=(-connect "${url#https://}" -CAfile "$CA" -ign_eof "$@")
    local req='GET /healthz HTTP/1.1\r\nHost: provd\r\nConnection: close\r\n\r\n'
    rm -f "$WORK/$name.sess"
    # shellcheck disable=SC2059 # req holds the escapes printf expands
    out=$(printf "$req" |
        timeout 10 openssl s_client "${args[@]}" -sess_out "$WORK/$name.sess" 2>&1) || true
    grep -q '^New, TLSv1\.[23]' <<<"$out" || fail "$name: the first session is not new: $out"
    grep -q '^HTTP/1.1 200' <<<"$out" || fail "$name: no answer on the first connection: $out"
    for i in 1 2 3 4; do
        # shellcheck disable=SC2059
        out=$(printf "$req" |
            timeout 10 openssl s_client "${args[@]}" -sess_in "$WORK/$name.sess" 2>&1) || true
        grep -q '^Reused, TLSv1\.[23]' <<<"$out" || fail "$name: connection $i did not resume: $out"
        grep -q '^HTTP/1.1 200' <<<"$out" || fail "$name: no answer on resumed connection $i: $out"
    done
}
for url in "$DEV" "$ADM"; do
    # By session ID: no ticket asked for, none issued, so only provd's session cache can resume.
    resume "$url" sid -tls1_2 -no_ticket
    openssl sess_id -in "$WORK/sid.sess" -noout -text >"$WORK/sid.txt"
    grep -Eq 'Session-ID: [0-9A-F]{64}' "$WORK/sid.txt" ||
        fail "$url: no session ID: $(cat "$WORK/sid.txt")"
    if grep -q 'TLS session ticket:' "$WORK/sid.txt"; then
        fail "$url: a ticket was issued with -no_ticket"
    fi
    # A client asking for a ticket: the admin listener gives one; the device listener keeps the
    # session (and so a client's certificate chain) in its cache, and resumes by session ID.
    resume "$url" ticket -tls1_2
    openssl sess_id -in "$WORK/ticket.sess" -noout -text >"$WORK/ticket.txt"
    if [ "$url" = "$ADM" ]; then
        grep -q 'TLS session ticket:' "$WORK/ticket.txt" || fail "$url: no TLS 1.2 ticket issued"
    elif grep -q 'TLS session ticket:' "$WORK/ticket.txt"; then
        fail "$url: a TLS 1.2 ticket was issued"
    fi
    resume "$url" tls13 -tls1_3
done

provd_stop || fail "session resumption: provd did not stop cleanly"

echo "PASS: server limits"
