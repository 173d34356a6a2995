#!/usr/bin/env bash
# provd init and provd serve as an operator meets them: the data directory's contents and
# permissions, refusing to re-initialise without --force, what --force keeps and replaces, the
# TLS certificate's names, command-line errors, the worker count, the idle timeout and a clean
# shutdown.
source "$(dirname "$0")/lib.sh"

mode() { stat -c %a "$1"; }

# --help and usage errors.
"$BIN/provd" --help | grep -q "provd COMMAND" || fail "provd --help"
"$BIN/provd" init --help | grep -q -- "--id-scope" || fail "provd init --help"
"$BIN/provd" serve --help | grep -q -- "--device-listen" || fail "provd serve --help"
"$BIN/provd" --version | grep -Eq '^provd [0-9]+\.[0-9]+\.[0-9]+$' || fail "provd --version"
set +e
"$BIN/provd" 2>/dev/null; assert_eq 2 $? "provd without a command"
"$BIN/provd" frobnicate 2>"$WORK/err"; assert_eq 2 $? "unknown command"
grep -q 'unknown command "frobnicate"' "$WORK/err" || fail "unknown command message"
"$BIN/provd" init 2>"$WORK/err"; assert_eq 2 $? "init without --data-dir"
grep -q -- "--data-dir is required" "$WORK/err" || fail "init without --data-dir message"
"$BIN/provd" serve --data-dir "$WORK/nowhere" 2>"$WORK/err"; assert_eq 1 $? "serve on no data dir"
grep -q "provd.json" "$WORK/err" || fail "serve on no data dir names the settings file"
"$BIN/provd" init --data-dir "$WORK/x" --hostname 'bad host!' 2>"$WORK/err"
assert_eq 1 $? "init with a bad --hostname"
[ ! -e "$WORK/x/provd.json" ] || fail "a refused init left a settings file"
set -e

# A fresh data directory: contents, modes, scope, token kept only as a hash.
provd_init --id-scope 0ne00C0FFEE --hostname prov.example.com --hostname 192.0.2.7
assert_eq 0ne00C0FFEE "$SCOPE" "id scope"
assert_eq 700 "$(mode "$DATA")" "data dir mode"
for f in ca/root.key tls/server.key admin.token provd.json; do
    assert_eq 600 "$(mode "$DATA/$f")" "$f mode"
done
assert_eq 64 "${#TOKEN}" "admin token length"
if grep -qa "$TOKEN" "$DATA/provd.db" "$DATA/provd.json"; then fail "the admin token is stored in clear"; fi
openssl verify -CAfile "$CA" "$DATA/tls/server.pem" >/dev/null || fail "server certificate does not chain to root.pem"
sans=$(openssl x509 -in "$DATA/tls/server.pem" -noout -ext subjectAltName)
for name in DNS:localhost "IP Address:127.0.0.1" "IP Address:0:0:0:0:0:0:0:1" DNS:prov.example.com "IP Address:192.0.2.7"; do
    grep -q "$name" <<<"$sans" || fail "server certificate lacks $name: $sans"
done
openssl x509 -in "$DATA/tls/server.pem" -noout -text | grep -q "ASN1 OID: prime256v1" ||
    fail "server key is not P-256"

# provd.json has no workers key (init has no --workers), so serve uses the CPUs online at start.
assert_eq false "$(jq 'has("workers")' "$DATA/provd.json")" "workers in a fresh provd.json"

# A generated scope has the DPS form.
"$BIN/provd" init --data-dir "$WORK/gen" >/dev/null
jq -r .id_scope "$WORK/gen/provd.json" | grep -Eq '^0ne[0-9A-F]{8}$' || fail "generated id scope form"
assert_eq false "$(jq 'has("workers")' "$WORK/gen/provd.json")" "workers in a generated provd.json"

# Re-initialising is refused without --force and changes nothing.
root_before=$(sha256sum "$CA")
set +e
"$BIN/provd" init --data-dir "$DATA" 2>"$WORK/err"; assert_eq 1 $? "init over an existing data dir"
set -e
grep -q -- "--force" "$WORK/err" || fail "the refusal does not mention --force"
assert_eq "$root_before" "$(sha256sum "$CA")" "root CA after a refused init"

# An enrollment survives init --force; the CA and token are new, the scope and the settings are
# kept, and the earlier token stays valid.
provd_start
grep -Eq "serving .* workers=$(getconf _NPROCESSORS_ONLN)\$" "$WORK/provd.log" ||
    fail "serve without a workers setting does not run one worker per CPU"
endpoint_add hub
status=$(admin PUT /enrollments/keep-me '{"registrationId":"keep-me","iotHubHostName":"hub"}')
assert_eq 200 "$status" "create an enrollment"
provd_stop
jq '. + {region: "eu-west"}' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
"$BIN/provd" init --data-dir "$DATA" --force >/dev/null 2>"$WORK/err"
grep -q "re-initialising" "$WORK/err" || fail "init --force does not say what it replaces"
if grep -q "will be refused" "$WORK/err"; then fail "init --force warns of a scope it keeps"; fi
[ "$root_before" != "$(sha256sum "$CA")" ] || fail "init --force kept the old root CA"
assert_eq "eu-west false" "$(jq -r '"\(.region) \(has("workers"))"' "$DATA/provd.json")" \
    "provd.json after init --force"
old_token=$TOKEN
provd_init_reload() { SCOPE=$(jq -r .id_scope "$DATA/provd.json"); TOKEN=$(cat "$DATA/admin.token"); }
provd_init_reload
assert_eq 0ne00C0FFEE "$SCOPE" "id scope after init --force"
[ "$old_token" != "$TOKEN" ] || fail "init --force kept the admin token"
provd_start --idle-timeout 1
assert_eq 200 "$(admin GET /enrollments/keep-me)" "enrollment after init --force"
new_token=$TOKEN
TOKEN=$old_token
assert_eq 200 "$(admin GET /enrollments/keep-me)" "the earlier admin token after init --force"
TOKEN=$new_token

# Both listeners answer /healthz without a token.
for url in "$DEV/healthz" "$ADM/healthz"; do
    assert_eq '{"status":"ok"}' "$(curl -sS --cacert "$CA" "$url")" "healthz at $url"
done

# An idle connection is closed by the server after --idle-timeout (1 s here). s_client reports
# the close as soon as it happens but only exits when its input ends, so each line it prints is
# stamped and the close is found by its stamp.
start=$(date +%s%N)
(sleep 5 | timeout 8 openssl s_client -connect "${DEV#https://}" -CAfile "$CA" -quiet 2>&1 || true) |
    while IFS= read -r line; do echo "$(date +%s%N) $line"; done >"$WORK/idle.out"
closed=$(grep -m1 -E "unexpected eof|closed|errno" "$WORK/idle.out" | cut -d' ' -f1 || true)
[ -n "$closed" ] || fail "the idle connection was never closed: $(cat "$WORK/idle.out")"
elapsed_ms=$(( (closed - start) / 1000000 ))
[ "$elapsed_ms" -lt 3500 ] || fail "idle connection closed only after ${elapsed_ms} ms"

# SIGTERM: provd exits 0 and removes its port file.
provd_stop || fail "exit status after SIGTERM"
[ ! -e "$WORK/ports.json" ] || fail "port file left behind"
grep -q "level=info stopped" "$WORK/provd.log" || fail "no 'stopped' line in the log"
if grep -qa "$TOKEN" "$WORK/provd.log"; then fail "the admin token appears in the log"; fi

# A TLS certificate of the operator's own, named in provd.json, is left alone by init --force.
mkdir -p "$WORK/own-tls"
cp "$DATA/tls/server.pem" "$DATA/tls/server.key" "$WORK/own-tls/"
own_before=$(cat "$WORK/own-tls/server.pem" "$WORK/own-tls/server.key" | sha256sum)
jq --arg c "$WORK/own-tls/server.pem" --arg k "$WORK/own-tls/server.key" \
    '. + {tls_cert: $c, tls_key: $k}' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
"$BIN/provd" init --data-dir "$DATA" --force >/dev/null 2>"$WORK/err"
grep -q "own TLS certificate" "$WORK/err" ||
    fail "init --force with an own TLS certificate: $(cat "$WORK/err")"
assert_eq "$own_before" "$(cat "$WORK/own-tls/server.pem" "$WORK/own-tls/server.key" | sha256sum)" \
    "the operator's TLS certificate after init --force"
assert_eq "$WORK/own-tls/server.pem" "$(jq -r .tls_cert "$DATA/provd.json")" "tls_cert kept"
# Its own certificate for provd's key: the key it was made for is kept with it.
key_before=$(sha256sum <"$DATA/tls/server.key")
jq --arg c "$WORK/own-tls/server.pem" 'del(.tls_key) + {tls_cert: $c}' "$DATA/provd.json" \
    >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
"$BIN/provd" init --data-dir "$DATA" --force >/dev/null 2>"$WORK/err"
grep -q "own TLS certificate" "$WORK/err" ||
    fail "init --force with an own TLS certificate for provd's key: $(cat "$WORK/err")"
assert_eq "$key_before" "$(sha256sum <"$DATA/tls/server.key")" \
    "the key an own TLS certificate was made for, after init --force"
jq 'del(.tls_cert, .tls_key)' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"

# A provd.json that cannot be read: init --force writes the defaults, keeping the ID scope.
jq '. + {workers: "many"}' "$DATA/provd.json" >"$WORK/provd.json"
cp "$WORK/provd.json" "$DATA/provd.json"
"$BIN/provd" init --data-dir "$DATA" --force >/dev/null 2>"$WORK/err"
grep -q "settings cannot be read" "$WORK/err" ||
    fail "init --force over bad settings: $(cat "$WORK/err")"
assert_eq "0ne00C0FFEE false" "$(jq -r '"\(.id_scope) \(has("region"))"' "$DATA/provd.json")" \
    "provd.json after init --force over bad settings"
provd_init_reload

# init --force with another --id-scope replaces the scope and warns that devices using the old
# one will be refused; they then get 404001.
"$BIN/provd" init --data-dir "$DATA" --force --id-scope 0ne00BEEF00 >/dev/null 2>"$WORK/err"
grep -q "devices that use 0ne00C0FFEE will be refused" "$WORK/err" ||
    fail "init --force with a new --id-scope does not warn: $(cat "$WORK/err")"
provd_init_reload
assert_eq 0ne00BEEF00 "$SCOPE" "id scope after init --force --id-scope"
provd_start
st=$(devreq PUT "/0ne00C0FFEE/registrations/keep-me/register?$API" \
    -H 'Content-Type: application/json' --data-binary '{"registrationId":"keep-me"}')
assert_error 404 404001 "$st" "a device using the replaced scope"
provd_stop

# Out of file descriptors (a limit of 64, and 100 connections held open): provd pauses
# accepting rather than retrying in a loop, and serves again once connections close.
(ulimit -n 64; exec "$BIN/provd" serve --data-dir "$DATA" --device-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --port-file "$WORK/ports.json" >>"$WORK/provd.log" 2>&1) &
PROVD_PID=$!
for _ in $(seq 200); do [ -s "$WORK/ports.json" ] && break; sleep 0.05; done
DEV=https://127.0.0.1:$(jq -r .device "$WORK/ports.json")
port=${DEV##*:}
for i in $(seq 100); do
    eval "exec {fd_$i}<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || true
done
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$PROVD_PID/stat"; }
t0=$(ticks)
sleep 2
used=$(($(ticks) - t0))
[ "$used" -lt 50 ] || fail "provd used $used ticks in 2 s with no file descriptor left"
assert_eq 1 "$([ "$(grep -c 'Error from accept' "$WORK/provd.log" || true)" -lt 5 ] && echo 1)" \
    "libevent's accept errors are not logged in a loop"
grep -q "not accepting for 500 ms" "$WORK/provd.log" || fail "no word of the pause in the log"
for i in $(seq 100); do eval "exec {fd_$i}>&-" 2>/dev/null || true; done
st=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$DEV/healthz")
assert_eq 200 "$st" "healthz once connections are closed"
provd_stop

# Settings that cannot be used are refused at start, from provd.json or from the command line,
# with the setting named; nothing listens.
rc=0
"$BIN/provd" serve --data-dir "$DATA" --device-listen 127.0.0.1:99999 --admin-listen 127.0.0.1:0 \
    >/dev/null 2>"$WORK/err" || rc=$?
assert_eq 1 "$rc" "serve --device-listen 127.0.0.1:99999: exit status"
assert_eq 'provd serve: device_listen "127.0.0.1:99999": the port must be from 0 to 65535' \
    "$(cat "$WORK/err")" "serve --device-listen 127.0.0.1:99999: error"
cp "$DATA/provd.json" "$WORK/provd.json.good"
jq '.event_ca_file = "/nonexistent/ca.pem"' "$WORK/provd.json.good" >"$DATA/provd.json"
rc=0
"$BIN/provd" serve --data-dir "$DATA" >/dev/null 2>"$WORK/err" || rc=$?
assert_eq 1 "$rc" "serve with a missing event_ca_file: exit status"
grep -qF 'event_ca_file "/nonexistent/ca.pem": No such file or directory' "$WORK/err" ||
    fail "serve with a missing event_ca_file: $(cat "$WORK/err")"
cp "$WORK/provd.json.good" "$DATA/provd.json"
# An encrypted TLS key is refused at start without asking for its passphrase (on the terminal, or
# on standard input when there is none, as under setsid).
cp "$DATA/tls/server.key" "$WORK/server.key.good"
openssl pkey -in "$WORK/server.key.good" -aes256 -passout pass:secret -out "$DATA/tls/server.key"
rc=0
setsid -w "$BIN/provd" serve --data-dir "$DATA" --device-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 </dev/null >"$WORK/err" 2>&1 || rc=$?
assert_eq 1 "$rc" "serve with an encrypted TLS key: exit status"
if grep -qi "pass phrase" "$WORK/err"; then
    fail "serve with an encrypted TLS key asked for its passphrase: $(cat "$WORK/err")"
fi
grep -qF "loading the TLS certificate and key" "$WORK/err" ||
    fail "serve with an encrypted TLS key: $(cat "$WORK/err")"
cp "$WORK/server.key.good" "$DATA/tls/server.key"
echo "init_serve: ok"
