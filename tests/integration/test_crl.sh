#!/usr/bin/env bash
# The CRL as time passes (docs/device-api.md, "GET /crl"): with crl_next_update_s at its least,
# 60 seconds, a CRL asked for again within half of that is the same one, served from memory;
# asked for past half of it, a new one is signed, so that a client holding one never has to keep
# it past its nextUpdate. (Revocations and the CRL are covered by test_x509.sh.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

provd_init
jq '.crl_next_update_s = 60' "$DATA/provd.json" >"$WORK/provd.json"
mv "$WORK/provd.json" "$DATA/provd.json"
provd_start

# crl_field FIELD: a field of the CRL just fetched (openssl crl -FIELD), its value only.
crl_field() { openssl crl -inform DER -in "$WORK/body" -noout "-$1" | sed 's/^[^=]*=//'; }
epoch() { date -u -d "$1" +%s; }

assert_eq 200 "$(devreq GET /crl)" "GET /crl"
first=$(crl_field crlnumber)
this=$(epoch "$(crl_field lastupdate)")
assert_eq 60 $(($(epoch "$(crl_field nextupdate)") - this)) "nextUpdate 60 s after thisUpdate"
assert_eq 200 "$(devreq GET /crl)" "GET /crl again"
assert_eq "$first" "$(crl_field crlnumber)" "the same CRL within half its validity"

# Past half of the first CRL's validity (thisUpdate + 30 s, to the second).
sleep $((this + 31 - $(date -u +%s)))
assert_eq 200 "$(devreq GET /crl)" "GET /crl past half its validity"
second=$(crl_field crlnumber)
[ $((16#${second#0x})) -gt $((16#${first#0x})) ] ||
    fail "a new CRL past half the validity of the first ($first, then $second)"
[ "$(epoch "$(crl_field lastupdate)")" -ge $((this + 30)) ] ||
    fail "the new CRL's thisUpdate is its own"

provd_stop || fail "provd did not stop cleanly"
echo "PASS: crl"
