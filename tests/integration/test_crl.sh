#!/usr/bin/env bash
# The CRL over time (docs/device-api.md, "GET /crl"): a CRL that cannot list a revocation already
# answered is not served (503, with Retry-After) while it cannot be signed; with
# crl_next_update_s at its least, 60 seconds, a CRL asked for again within half of that is the
# same one, and past half of it a new one is signed, so that a client holding one never has to
# keep it past its nextUpdate; with two provd serving one store, a CRL of a higher number lists
# all that one of a lower number lists. (Revocations and the CRL are covered by test_x509.sh too.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
jq '.crl_next_update_s = 60' "$DATA/provd.json" >"$WORK/provd.json"
mv "$WORK/provd.json" "$DATA/provd.json"
provd_start

# crl_field FIELD: a field of the CRL just fetched (openssl crl -FIELD), its value only.
crl_field() { openssl crl -inform DER -in "$WORK/body" -noout "-$1" | sed 's/^[^=]*=//'; }
epoch() { date -u -d "$1" +%s; }
hex() { echo $((16#${1#0x})); }

# ---- A revocation the CRL cannot be signed for ----
# A certificate of the store's (set up directly), revoked through the admin API while another
# program holds the store's write lock past provd's busy timeout (10 s): the CRL that does not
# list it is not served. Once the lock is gone, the next request gets one that does.
sqlite3 "$DATA/provd.db" "INSERT INTO certificates (serial, registration_id, device_id, subject,
    issuer, thumbprint, not_before, not_after, status, created) VALUES ('0A1B2C3D', 'dev-1',
    'dev-1', 'CN=dev-1', 'CN=ca', 'AB', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'valid',
    '2026-01-01T00:00:00Z')"
assert_eq 200 "$(admjson POST /certificates/0A1B2C3D/revoke '{}')" "revoke: $(cat "$WORK/body")"
printf 'BEGIN EXCLUSIVE;\n.shell touch %s\n.shell sleep 13\nCOMMIT;\n' "$WORK/locked" |
    sqlite3 "$DATA/provd.db" &
LOCKER=$!
while [ ! -e "$WORK/locked" ]; do sleep 0.02; done
st=$(devreq GET /crl)
assert_eq 503 "$st" "GET /crl while no CRL listing the revocation can be signed"
assert_eq 503002 "$(jq -r .errorCode "$WORK/body")" "the CRL not available: code"
[ -n "$(header retry-after)" ] || fail "503 without Retry-After"
wait "$LOCKER"
assert_eq 200 "$(devreq GET /crl)" "GET /crl once the store can be written again"
openssl crl -inform DER -in "$WORK/body" -noout -text | grep -q 'Serial Number: 0A1B2C3D' ||
    fail "the CRL lists the revocation"

# ---- The same CRL within half its validity, a new one past it ----
first=$(crl_field crlnumber)
this=$(epoch "$(crl_field lastupdate)")
assert_eq 60 $(($(epoch "$(crl_field nextupdate)") - this)) "nextUpdate 60 s after thisUpdate"
assert_eq 200 "$(devreq GET /crl)" "GET /crl again"
assert_eq "$first" "$(crl_field crlnumber)" "the same CRL within half its validity"
# Past half of its validity (thisUpdate + 30 s, to the second).
wait_s=$((this + 31 - $(date -u +%s)))
[ "$wait_s" -le 0 ] || sleep "$wait_s"
assert_eq 200 "$(devreq GET /crl)" "GET /crl past half its validity"
second=$(crl_field crlnumber)
[ "$(hex "$second")" -gt "$(hex "$first")" ] ||
    fail "a new CRL past half the validity of the first ($first, then $second)"
[ "$(epoch "$(crl_field lastupdate)")" -ge $((this + 30)) ] ||
    fail "the new CRL's thisUpdate is its own"

# ---- Two provd serving one store: CRL numbers follow what the CRLs list ----
# provd (A) is asked for a stale CRL while another program holds the store's write lock and, in
# that transaction, revokes a certificate as a second provd would; the second provd (B) is asked
# once the lock is gone. Whichever CRL has the higher number must list all the other lists: A's
# must not be numbered after B's with the revocation left out.
provd_start_second
for s in 0AA00001 0BB00001; do
    sqlite3 "$DATA/provd.db" "INSERT INTO certificates (serial, registration_id, device_id,
        subject, issuer, thumbprint, not_before, not_after, status, created) VALUES ('$s',
        'dev-2', 'dev-2', 'CN=dev-2', 'CN=ca', 'AB', '2026-01-01T00:00:00Z',
        '2027-01-01T00:00:00Z', 'valid', '2026-01-01T00:00:00Z')"
done
assert_eq 200 "$(admjson POST /certificates/0AA00001/revoke '{}')" "revoke 0AA00001"
rm -f "$WORK/held" "$WORK/release" "$WORK/committed"
{
    echo 'BEGIN IMMEDIATE;'
    echo ".system touch $WORK/held"
    while [ ! -e "$WORK/release" ]; do sleep 0.02; done
    echo "UPDATE certificates SET status = 'revoked', revoked_at = 1700000000 WHERE serial = '0BB00001';"
    echo "UPDATE meta SET value = value + 1 WHERE key = 'revocations';"
    echo 'COMMIT;'
    echo ".system touch $WORK/committed"
} | sqlite3 "$DATA/provd.db" &
LOCKER=$!
while [ ! -e "$WORK/held" ]; do sleep 0.02; done
curl -sS --cacert "$CA" -o "$WORK/a.der" "$DEV/crl" &
FETCH=$!
sleep 2 # provd A is waiting for the lock
touch "$WORK/release"
while [ ! -e "$WORK/committed" ]; do sleep 0.01; done
curl -sSf --cacert "$CA" -o "$WORK/b.der" "$DEV2/crl" || fail "GET /crl from the second provd"
wait "$FETCH" || fail "GET /crl from the first provd"
wait "$LOCKER"
# number FILE / serials FILE: a CRL's number in decimal, and its serials.
number() { hex "$(openssl crl -inform DER -in "$1" -noout -crlnumber | sed 's/.*=//')"; }
serials() { openssl crl -inform DER -in "$1" -noout -text | sed -n 's/ *Serial Number: //p'; }
if [ "$(number "$WORK/a.der")" -gt "$(number "$WORK/b.der")" ]; then
    high=$WORK/a.der low=$WORK/b.der
else
    high=$WORK/b.der low=$WORK/a.der
fi
missing=$(comm -23 <(serials "$low" | sort) <(serials "$high" | sort))
[ -z "$missing" ] || fail "CRL $(number "$high") lacks $missing, which CRL $(number "$low") lists"
provd_stop_second

provd_stop || fail "provd did not stop cleanly"
echo "PASS: crl"
