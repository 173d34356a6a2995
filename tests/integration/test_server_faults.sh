#!/usr/bin/env bash
# provd's listeners when libevent cannot make a connection's TLS bufferevent (out of memory),
# simulated by the bev_fault library preloaded into provd: every second connection fails so.
# Such a connection is served without TLS by evhttp: a TLS client's handshake is refused, a plain
# HTTP request is answered 500 and its connection closed; provd logs each, goes on serving the
# other connections and stops cleanly.
#
# Usage: test_server_faults.sh BIN_DIR BEV_FAULT_LIBRARY
source "$(dirname "$0")/lib.sh"

FAULT=${2:?usage: $0 BIN_DIR BEV_FAULT_LIBRARY}

# get URL [CURL_ARGS...]: GET URL/healthz; the status on stdout ("000" when there was no answer),
# the body in $WORK/body and the headers in $WORK/headers.
get() {
    local url=$1
    shift
    curl -sS --max-time 10 --cacert "$CA" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' \
        "$@" "$url/healthz" 2>>"$WORK/curl.err" || true
}

provd_init
# One worker, so that connections reach provd in the order they are made; a TLS handshake that
# evhttp reads as a request it cannot parse yet ends at the idle timeout. An AddressSanitizer
# build of provd must be told that its runtime is no longer the first library loaded.
LD_PRELOAD=$FAULT PROVD_TEST_BEV_FAIL_EVERY=2 \
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    provd_start --workers 1 --idle-timeout 2
oom='level=warn worker 0: out of memory for a new connection'
refused='level=warn worker 0: a request on a connection without TLS refused'

# 1st connection: TLS.
assert_eq 200 "$(get "$DEV")" "device listener, 1st connection"
# 2nd: no TLS; the TLS client's handshake fails on what evhttp answers in plain text.
assert_eq 000 "$(get "$ADM")" "admin listener, 2nd connection (no TLS)"
assert_eq 1 "$(grep -c "$oom" "$WORK/provd.log")" "log lines of connections made without TLS"
# 3rd: TLS again.
assert_eq 200 "$(get "$ADM")" "admin listener, 3rd connection"
# 4th: no TLS, and a plain HTTP request: refused with the DPS error, and the connection closed.
dev_port=${DEV##*:}
st=$(get "http://127.0.0.1:$dev_port")
assert_error 500 500001 "$st" "a plain HTTP request on a connection without TLS"
assert_eq close "$(header connection)" "Connection header of the refusal"
assert_eq 2 "$(grep -c "$oom" "$WORK/provd.log")" "log lines of connections made without TLS"
assert_eq 1 "$(grep -c "$refused" "$WORK/provd.log")" "log lines of requests refused without TLS"
# 5th: TLS.
assert_eq 200 "$(get "$DEV")" "device listener, 5th connection"

provd_stop || fail "provd did not stop cleanly"

echo "PASS: server faults"
