#!/usr/bin/env bash
# provd's CA as an operator meets it: the root and issuing CA `provd init` makes (files, modes,
# profile, each --ca-key-type), `provd ca import` of a CA made with the openssl command line and
# its refusals, the TLS listeners still trusted through root.pem, the CA in GET /info, and an
# issuing CA whose time is over: provd starts and refuses only certificates.
source "$(dirname "$0")/lib.sh"

mode() { stat -c %a "$1"; }
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
# The SHA-256 of a key's public half, from a certificate or a private key file.
pub_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl sha256; }
pub_of_key() { openssl pkey -in "$1" -pubout | openssl sha256; }
ext_value() { openssl x509 -in "$1" -noout -ext "$2" | sed -n 2p | tr -d ' '; }

# Help and usage errors.
"$BIN/provd" --help | grep -q "  ca " || fail "provd --help does not list ca"
"$BIN/provd" init --help | grep -q -- "--ca-key-type" || fail "provd init --help"
"$BIN/provd" ca --help | grep -q "usage: provd ca import" || fail "provd ca --help"
"$BIN/provd" ca import --help | grep -q -- "--chain" || fail "provd ca import --help"
set +e
"$BIN/provd" init --data-dir "$WORK/bad" --ca-key-type ed25519 2>"$WORK/err"
assert_eq 2 $? "init with an unknown --ca-key-type"
grep -q "p256, p384, rsa2048 or rsa3072" "$WORK/err" ||
    fail "the --ca-key-type refusal lists the types"
[ ! -e "$WORK/bad" ] || fail "a refused init made its data directory"
"$BIN/provd" ca 2>/dev/null; assert_eq 2 $? "provd ca without a command"
"$BIN/provd" ca frobnicate 2>"$WORK/err"; assert_eq 2 $? "provd ca with an unknown command"
grep -q 'unknown command "frobnicate"' "$WORK/err" || fail "provd ca unknown command message"
"$BIN/provd" ca import --data-dir "$WORK/x" --key k 2>"$WORK/err"
assert_eq 2 $? "ca import without --cert"
grep -q -- "--cert is required" "$WORK/err" || fail "ca import without --cert message"
# A key an init that did not finish left (no provd.json): init names --force, writes nothing.
mkdir -p "$WORK/half/ca"
echo left >"$WORK/half/ca/root.key"
"$BIN/provd" init --data-dir "$WORK/half" >/dev/null 2>"$WORK/err"
assert_eq 1 $? "init over a key left behind"
grep -qF "half/ca/root.key exists (left by an init that did not finish?): use --force" \
    "$WORK/err" || fail "init over a key left behind: $(cat "$WORK/err")"
assert_eq "ca" "$(ls "$WORK/half")" "init over a key left behind made nothing"
assert_eq "root.key" "$(ls "$WORK/half/ca")" "init over a key left behind wrote no key"
"$BIN/provd" init --data-dir "$WORK/half" --force >/dev/null 2>&1
assert_eq 0 $? "init --force over a key left behind"
set -e

# ---- provd init: the default (P-256) CA ----
provd_init --id-scope 0ne00CA0001
C=$DATA/ca
grep -q "device CA .*chain.pem (p256)" "$WORK/init.out" || fail "init summary names the device CA"
for f in root.key issuing.key; do assert_eq 600 "$(mode "$C/$f")" "ca/$f mode"; done
for f in root.pem issuing.pem chain.pem; do assert_eq 644 "$(mode "$C/$f")" "ca/$f mode"; done
assert_eq 700 "$(mode "$C")" "ca directory mode"
assert_eq "$C/issuing.pem: OK" "$(openssl verify -CAfile "$C/root.pem" "$C/issuing.pem")" \
    "openssl verify of the issuing CA"

text=$(openssl x509 -in "$C/issuing.pem" -noout -text)
grep -q "X509v3 Basic Constraints: critical" <<<"$text" ||
    fail "issuing basicConstraints not critical"
grep -q "CA:TRUE, pathlen:0" <<<"$text" || fail "issuing CA is not CA:TRUE, pathlen:0"
grep -q "X509v3 Key Usage: critical" <<<"$text" || fail "issuing keyUsage not critical"
assert_eq "Certificate Sign, CRL Sign" \
    "$(grep -A1 'X509v3 Key Usage' <<<"$text" | sed -n '2s/^ *//p')" "issuing key usage"
grep -q "ASN1 OID: prime256v1" <<<"$text" || fail "issuing CA key is not P-256"
grep -q "Signature Algorithm: ecdsa-with-SHA256" <<<"$text" ||
    fail "issuing CA not signed with SHA-256"
assert_eq "subject=CN = provd issuing CA 0ne00CA0001" \
    "$(openssl x509 -in "$C/issuing.pem" -noout -subject)" "issuing subject"
assert_eq "issuer=CN = provd root CA 0ne00CA0001" \
    "$(openssl x509 -in "$C/issuing.pem" -noout -issuer)" "issuing issuer"
# Long ID scopes alike in their first 60 characters still name different CAs.
long=0ne-fleet-production-europe-west-datacenter-frankfurt-region
for s in A B; do
    "$BIN/provd" init --data-dir "$WORK/long$s" --id-scope "$long-$s" >/dev/null 2>&1 ||
        fail "init with a long ID scope"
done
for ca in root issuing; do
    a=$(openssl x509 -in "$WORK/longA/ca/$ca.pem" -noout -subject)
    b=$(openssl x509 -in "$WORK/longB/ca/$ca.pem" -noout -subject)
    [ "$a" != "$b" ] || fail "two long ID scopes give the $ca CA the same name: $a"
    assert_match "^subject=CN = provd $ca CA 0ne-fleet-production-europe-west-[a-z-]*-[0-9a-f]{8}\$" \
        "$a" "the $ca CA of a long ID scope"
    [ ${#a} -le $((64 + 13)) ] || fail "the $ca CA's CN is over 64 characters: $a"
done
# Random 128-bit serials: 32 hex digits.
openssl x509 -in "$C/issuing.pem" -noout -serial | grep -Eq '^serial=[0-9A-F]{32}$' ||
    fail "issuing serial is not 128 bits"
# AKI of the issuing CA = SKI of the root.
ski=$(ext_value "$C/root.pem" subjectKeyIdentifier)
[ -n "$ski" ] || fail "root has no subject key identifier"
[ -n "$(ext_value "$C/issuing.pem" subjectKeyIdentifier)" ] || fail "issuing has no SKI"
aki=$(ext_value "$C/issuing.pem" authorityKeyIdentifier)
assert_eq "$ski" "${aki#keyid:}" "issuing AKI = root SKI"
# Validity: issuing CA 10 years, root 20 (both expire after 9 and 19 years, before 11 and 21).
year=$((365 * 86400))
valid_for() { openssl x509 -in "$1" -noout -checkend "$2" >/dev/null; }
valid_for "$C/issuing.pem" $((9 * year)) || fail "issuing CA < 9 years"
if valid_for "$C/issuing.pem" $((11 * year)); then fail "issuing CA > 11 years"; fi
valid_for "$C/root.pem" $((19 * year)) || fail "root < 19 years"
if valid_for "$C/root.pem" $((21 * year)); then fail "root > 21 years"; fi
# chain.pem: issuing CA, then root.
assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$C/chain.pem")" "certificates in chain.pem"
openssl x509 -in "$C/chain.pem" -out "$WORK/first.pem"
awk '/BEGIN CERT/{n++} n==2' "$C/chain.pem" >"$WORK/second.pem"
assert_eq "$(fingerprint "$C/issuing.pem")" "$(fingerprint "$WORK/first.pem")" "chain.pem first"
assert_eq "$(fingerprint "$C/root.pem")" "$(fingerprint "$WORK/second.pem")" "chain.pem second"
# Each key belongs to its certificate, and the root signs the TLS certificate.
assert_eq "$(pub_of_cert "$C/issuing.pem")" "$(pub_of_key "$C/issuing.key")" "issuing key"
assert_eq "$(pub_of_cert "$C/root.pem")" "$(pub_of_key "$C/root.key")" "root key"
openssl verify -CAfile "$C/root.pem" "$DATA/tls/server.pem" >/dev/null ||
    fail "the TLS certificate does not chain to root.pem"

# ---- Each --ca-key-type ----
declare -A want_key=([p256]="ASN1 OID: prime256v1" [p384]="ASN1 OID: secp384r1"
                     [rsa2048]="Public-Key: (2048 bit)" [rsa3072]="Public-Key: (3072 bit)")
declare -A want_sig=([p256]=ecdsa-with-SHA256 [p384]=ecdsa-with-SHA384
                     [rsa2048]=sha256WithRSAEncryption [rsa3072]=sha256WithRSAEncryption)
for t in p256 p384 rsa2048 rsa3072; do
    d=$WORK/kt-$t
    "$BIN/provd" init --data-dir "$d" --ca-key-type "$t" >"$WORK/kt.out" 2>/dev/null
    grep -q "($t)" "$WORK/kt.out" || fail "$t: init summary"
    for c in root issuing; do
        openssl x509 -in "$d/ca/$c.pem" -noout -text >"$WORK/kt.txt"
        grep -q "${want_key[$t]}" "$WORK/kt.txt" || fail "$t: $c key is not ${want_key[$t]}"
        assert_eq "$(pub_of_cert "$d/ca/$c.pem")" "$(pub_of_key "$d/ca/$c.key")" "$t: $c key file"
    done
    # The issuing CA is signed by the root's key type and digest.
    openssl x509 -in "$d/ca/issuing.pem" -noout -text |
        grep -q "Signature Algorithm: ${want_sig[$t]}" ||
        fail "$t: issuing CA signature is not ${want_sig[$t]}"
    for c in ca/issuing tls/server; do
        openssl verify -CAfile "$d/ca/root.pem" "$d/$c.pem" >/dev/null ||
            fail "$t: $c does not verify"
    done
    # The TLS key stays P-256 whatever the CA.
    openssl x509 -in "$d/tls/server.pem" -noout -text | grep -q "ASN1 OID: prime256v1" ||
        fail "$t: TLS key is not P-256"
done

# ---- provd ca import: an operator's CA made with the openssl command line ----
O=$WORK/operator
mkdir -p "$O"
cat >"$O/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
cat >"$O/leaf.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$O/root.key" \
    -out "$O/root.pem" -subj "/O=Example/CN=Example Root" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/issuing.key" \
    -out "$O/issuing.csr" -subj "/O=Example/CN=Example Devices" 2>/dev/null
# ca_sign CSR EXT OUT [ISSUER KEY]: OUT.pem, CSR.csr signed for 5 years with the extensions of
# EXT.ext by ISSUER.pem and its key KEY.key (the root by default).
ca_sign() {
    openssl x509 -req -in "$O/$1.csr" -CA "$O/${4:-root}.pem" -CAkey "$O/${5:-root}.key" \
        -CAcreateserial -days 1825 -extfile "$O/$2.ext" -out "$O/$3.pem" 2>/dev/null
}
ca_sign issuing ca issuing
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/leaf.key" \
    -out "$O/leaf.csr" -subj "/CN=not-a-ca" 2>/dev/null
openssl x509 -req -in "$O/leaf.csr" -CA "$O/root.pem" -CAkey "$O/root.key" -CAcreateserial \
    -days 30 -extfile "$O/leaf.ext" -out "$O/leaf.pem" 2>/dev/null
openssl pkey -in "$O/issuing.key" -aes256 -passout pass:secret -out "$O/encrypted.key"
# The same CA without a subject key identifier, and one limited to TLS servers.
grep -v subjectKeyIdentifier "$O/ca.ext" >"$O/noski.ext"
echo "subjectKeyIdentifier = none" >>"$O/noski.ext"
ca_sign issuing noski noski
cp "$O/ca.ext" "$O/server.ext"
echo "extendedKeyUsage = serverAuth" >>"$O/server.ext"
ca_sign issuing server serveronly

before=$(sha256sum "$C"/*)
import() { "$BIN/provd" ca import --data-dir "$DATA" "$@" >"$WORK/out" 2>"$WORK/err"; }
# refused IMPORT_ARGS... -- EXPECTED_MESSAGE: exit 1, the message on stderr, nothing changed.
refused() {
    local args=() msg
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    msg=$2
    set +e
    import "${args[@]}"
    local rc=$?
    set -e
    assert_eq 1 "$rc" "ca import ${args[*]}: exit status"
    grep -qF -- "$msg" "$WORK/err" ||
        fail "ca import ${args[*]}: expected '$msg', got: $(cat "$WORK/err")"
    assert_eq "$before" "$(sha256sum "$C"/*)" "ca/ after a refused import"
}
refused --cert "$O/issuing.pem" --key "$O/issuing.key" --chain "$O/root.pem" -- \
    "already has an issuing CA"
refused --cert "$O/issuing.pem" --key "$O/issuing.key" --chain "$O/root.pem" -- "--force"
refused --cert "$O/issuing.pem" --key "$O/root.key" --chain "$O/root.pem" --force -- \
    "the private key does not belong to the CA certificate"
refused --cert "$O/leaf.pem" --key "$O/leaf.key" --chain "$O/root.pem" --force -- \
    "is not a CA certificate"
refused --cert "$O/issuing.pem" --key "$O/issuing.key" --force -- \
    "the chain holds no root certificate"
refused --cert "$O/issuing.pem" --key "$O/issuing.key" --chain "$C/root.pem" --force -- \
    "does not chain to the root"
refused --cert "$O/root.pem" --key "$O/root.key" --chain "$O/root.pem" --force -- \
    "is a self-signed root"
refused --cert "$O/issuing.pem" --key "$O/encrypted.key" --chain "$O/root.pem" --force -- \
    "the key is encrypted"
refused --cert "$O/missing.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force -- \
    "missing.pem: No such file or directory"
refused --cert "$O/noski.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force -- \
    "no subjectKeyIdentifier"
refused --cert "$O/serveronly.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force -- \
    "does not allow TLS clients"
# An issuing CA without a subject: device certificates and CRLs would have no issuer name.
openssl req -new -key "$O/issuing.key" -subj / -out "$O/nosubject.csr" 2>/dev/null
ca_sign nosubject ca nosubject
refused --cert "$O/nosubject.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force -- \
    "the CA certificate's subject is empty"
# Name constraints a device certificate's names (its urn:provd:device: URI) break: the CA
# verifies, the certificates it would issue would not.
cp "$O/ca.ext" "$O/nc.ext"
echo "nameConstraints = critical, permitted;URI:.example.com" >>"$O/nc.ext"
ca_sign issuing nc nc
refused --cert "$O/nc.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force -- \
    "a device certificate the CA issues would not verify"
# A root allowing no CA below it: the issuing CA verifies, its device certificates would not.
openssl req -x509 -key "$O/root.key" -out "$O/root0.pem" -subj "/O=Example/CN=Example Root 0" \
    -days 3650 -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
ca_sign issuing ca under0 root0 root
refused --cert "$O/under0.pem" --key "$O/issuing.key" --chain "$O/root0.pem" --force -- \
    "path length constraint of CN=Example Root 0,O=Example (pathlen:0) allows fewer CA"
# A self-issued certificate (a root's new key, signed by its old one) does not count against a
# path length constraint (RFC 5280, 4.2.1.9): root (pathlen:1) -> new root key -> issuing CA.
openssl req -x509 -key "$O/root.key" -out "$O/rollroot.pem" -subj "/CN=Rollover Root" \
    -days 3650 -addext "basicConstraints=critical,CA:TRUE,pathlen:1" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/rollnew.key" \
    -out "$O/rollnew.csr" -subj "/CN=Rollover Root" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\n' \
    >"$O/roll.ext"
printf 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n' >>"$O/roll.ext"
ca_sign rollnew roll rollnew rollroot root
openssl x509 -req -in "$O/issuing.csr" -CA "$O/rollnew.pem" -CAkey "$O/rollnew.key" \
    -CAcreateserial -days 1000 -extfile "$O/ca.ext" -out "$O/rollissuing.pem" 2>/dev/null
cat "$O/rollnew.pem" "$O/rollroot.pem" >"$O/rollchain.pem"
"$BIN/provd" init --data-dir "$WORK/roll" >/dev/null 2>&1
"$BIN/provd" ca import --data-dir "$WORK/roll" --cert "$O/rollissuing.pem" \
    --key "$O/issuing.key" --chain "$O/rollchain.pem" --force >/dev/null 2>"$WORK/err" ||
    fail "ca import under a root whose key rolled over: $(cat "$WORK/err")"

root_before=$(sha256sum "$C/root.pem" "$C/root.key")
import --cert "$O/issuing.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force ||
    fail "ca import: $(cat "$WORK/err")"
grep -q "imported the issuing CA" "$WORK/out" || fail "ca import says what it did"
assert_eq "$(fingerprint "$O/issuing.pem")" "$(fingerprint "$C/issuing.pem")" "imported issuing.pem"
assert_eq "$(pub_of_cert "$O/issuing.pem")" "$(pub_of_key "$C/issuing.key")" "imported issuing.key"
assert_eq 600 "$(mode "$C/issuing.key")" "imported issuing.key mode"
assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$C/chain.pem")" "certificates in the imported chain.pem"
openssl x509 -in "$C/chain.pem" -out "$WORK/first.pem"
awk '/BEGIN CERT/{n++} n==2' "$C/chain.pem" >"$WORK/second.pem"
assert_eq "$(fingerprint "$O/issuing.pem")" "$(fingerprint "$WORK/first.pem")" "imported chain 1st"
assert_eq "$(fingerprint "$O/root.pem")" "$(fingerprint "$WORK/second.pem")" "imported chain 2nd"
# provd's own root, which signs the TLS certificate, is kept.
assert_eq "$root_before" "$(sha256sum "$C/root.pem" "$C/root.key")" "root.pem after an import"

# A chain file may hold certificates outside the path, whatever their extendedKeyUsage.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/srvroot.key" \
    -out "$O/srvroot.pem" -subj "/CN=Some Server Root" -days 30 \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
cat "$O/root.pem" "$O/srvroot.pem" >"$O/withother.pem"
import --cert "$O/issuing.pem" --key "$O/issuing.key" --chain "$O/withother.pem" --force ||
    fail "ca import with a certificate outside the path: $(cat "$WORK/err")"
assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$C/chain.pem")" "chain.pem holds the path only"
# The chain may also follow the certificate in the --cert file.
cat "$O/issuing.pem" "$O/root.pem" >"$O/bundle.pem"
import --cert "$O/bundle.pem" --key "$O/issuing.key" --force ||
    fail "ca import of a bundle: $(cat "$WORK/err")"
assert_eq "$(fingerprint "$O/issuing.pem")" "$(fingerprint "$C/issuing.pem")" "bundle issuing.pem"

# ---- The TLS listeners still answer, trusted through root.pem ----
provd_start
for url in "$DEV/healthz" "$ADM/healthz"; do
    assert_eq '{"status":"ok"}' "$(curl -sS --cacert "$CA" "$url")" "healthz at $url"
done
st=$(admreq GET /info)
assert_eq 200 "$st" "GET /info"
assert_eq "CN=Example Devices,O=Example|true|null" \
    "$(jb '[.ca.subject, .ca.canIssue, .ca.reason] | map(tostring) | join("|")')" \
    "the CA in GET /info"
assert_eq "$(date -u -d "$(openssl x509 -in "$O/issuing.pem" -noout -enddate | cut -d= -f2)" \
    +%Y-%m-%dT%H:%M:%S.0000000Z)" "$(jb .ca.notAfter)" "the CA's end in GET /info"
provd_stop

# ---- An issuing CA whose time is over ----
# `provd ca import` refuses one. One that expires while installed does not keep provd from
# starting: it serves everything but certificates, which it refuses with 503 / 503004.
openssl_ca "$O"
openssl ca -batch -config "$O/ca.cnf" -cert "$O/root.pem" -keyfile "$O/root.key" \
    -in "$O/issuing.csr" -out "$O/expired.pem" -startdate 20200101000000Z \
    -enddate 20210101000000Z -extfile "$O/ca.ext" -notext 2>/dev/null
before=$(sha256sum "$C"/*)
refused --cert "$O/expired.pem" --key "$O/issuing.key" --chain "$O/root.pem" --force -- \
    "the CA certificate is expired"
cp "$O/expired.pem" "$C/issuing.pem"
cat "$O/expired.pem" "$O/root.pem" >"$C/chain.pem"
provd_start
grep -q "provd's CA chain expired at 2021-01-01T00:00:00.0000000Z: certificate requests are" \
    "$WORK/provd.log" || fail "the start-up error about the expired CA: $(cat "$WORK/provd.log")"
st=$(admreq GET /info)
assert_eq "false|provd's CA chain expired at 2021-01-01T00:00:00.0000000Z" \
    "$(jb '[.ca.canIssue, .ca.reason] | map(tostring) | join("|")')" "an expired CA in GET /info"
endpoint_add hub.example.com
KEY=$(new_key)
st=$(admjson PUT /enrollments/late "{\"registrationId\":\"late\",\"attestation\":{\"type\":
    \"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY\"}},
    \"iotHubHostName\":\"hub.example.com\"}")
assert_eq 200 "$st" "PUT /enrollments/late: $(cat "$WORK/body")"
# register_late BODY: device "late" registers with its SAS token.
register_late() {
    devreq PUT "/$SCOPE/registrations/late/register?$API" \
        -H "Authorization: $(sas_token "$KEY" late)" -H 'Content-Type: application/json' \
        --data-binary "$1"
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/late.key" \
    -subj /CN=late -outform DER -out "$O/late.der" 2>/dev/null
st=$(register_late "{\"registrationId\":\"late\",\"csr\":\"$(base64 -w0 "$O/late.der")\"}")
assert_error 503 503004 "$st" "a CSR while the CA is expired"
assert_eq "provd's CA chain expired at 2021-01-01T00:00:00.0000000Z" "$(jb .message)" \
    "the refusal says why"
assert_eq 2 "$(header retry-after)" "Retry-After of the refusal"
st=$(devreq POST /.well-known/est/simpleenroll --user "late:$KEY" \
    -H 'Content-Type: application/pkcs10' --data-binary "$(base64 -w0 "$O/late.der")")
assert_eq 503 "$st" "EST simpleenroll while the CA is expired: $(cat "$WORK/body")"
assert_eq 2 "$(header retry-after)" "Retry-After of the EST refusal"
st=$(register_late '{"registrationId":"late"}')
assert_eq 200 "$st" "a registration without a CSR while the CA is expired: $(cat "$WORK/body")"
assert_eq assigned "$(jb .registrationState.status)" "registered without a certificate"
provd_stop
echo "ok"
