#!/usr/bin/env bash
# X.509 identities, with the openssl command line and curl on the client side: certificates
# issued from a device's CSR at registration (and the CSRs refused), X.509 attestation over
# mutual TLS (an individual enrollment's certificate or thumbprint, a group's CA), revocation
# with provctl and the CRL the device listener serves.
source "$(dirname "$0")/lib.sh"

provd_init --id-scope 0ne00X50901
provd_start
cp "$WORK/ports.json" "$DATA/provd.ports"
endpoint_add hub.example.com
O=$WORK/o
mkdir -p "$O"

# pc ARGS...: provctl on the data directory, output in $WORK/out; fails the test on an error.
pc() {
    "$BIN/provctl" --data-dir "$DATA" "$@" >"$WORK/out" 2>"$WORK/err" ||
        fail "provctl $*: $(cat "$WORK/err")"
}

# register_mtls REGID CERT KEY [BODY]: PUT register with a client certificate and no
# Authorization header; body to $WORK/body, headers to $WORK/headers, status on stdout.
register_mtls() {
    local regid=$1 cert=$2 key=$3 body=${4:-"{\"registrationId\":\"$1\"}"}
    devreq PUT "/$SCOPE/registrations/$regid/register?$API" --cert "$cert" --key "$key" \
        -H 'Content-Type: application/json' --data-binary "$body"
}

# register_sas REGID AUTH BODY: PUT register with a SAS token, headers kept for assert_error.
register_sas() {
    devreq PUT "/$SCOPE/registrations/$1/register?$API" -H "Authorization: $2" \
        -H 'Content-Type: application/json' --data-binary "$3"
}

# last_audit SUBJECT: the last audit record about SUBJECT, compact JSON.
last_audit() {
    audit_all "&subject=$1" | tail -n 1
}

# assert_refused_401 REGID WHAT REASON: the last answer is 401/401002 and the audit record says
# REASON (a substring).
assert_refused_401() {
    assert_error 401 401002 "$st" "$2"
    local rec
    rec=$(last_audit "$1")
    assert_eq refused "$(jq -r .outcome <<<"$rec")" "$2: audit outcome"
    assert_eq 401002 "$(jq -r .errorCode <<<"$rec")" "$2: audit code"
    grep -qF -- "$3" <<<"$(jq -r .reason <<<"$rec")" ||
        fail "$2: audit reason '$(jq -r .reason <<<"$rec")' does not say '$3'"
}

# sym_enrollment REGID KEY [EXTRA_JSON]: an individual symmetric-key enrollment.
sym_enrollment() {
    local st
    st=$(admjson PUT "/enrollments/$1" "{\"registrationId\":\"$1\",\"attestation\":{\"type\":
        \"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$2\",\"secondaryKey\":\"$2\"}},
        \"iotHubHostName\":\"hub.example.com\"${3:-}}")
    assert_eq 200 "$st" "PUT /enrollments/$1: $(cat "$WORK/body")"
}

# csr_b64 CN KEYSPEC OUT: a key (OUT.key) and a CSR for CN, printed as base64 DER.
csr_b64() {
    openssl req -new -newkey "$2" -nodes -keyout "$3.key" -subj "/CN=$1" -outform DER \
        -out "$3.der" 2>/dev/null
    base64 -w0 "$3.der"
}

# csr_register REGID AUTH OUT: registers REGID (Authorization AUTH) with a CSR for a new key
# OUT.key, and writes its certificate and the issuing CA's into OUT.pem.
csr_register() {
    local st i
    st=$(register "$1" "$2" "{\"registrationId\":\"$1\",\"csr\":\"$(csr_b64 "$1" \
        ec:<(openssl ecparam -name prime256v1) "$3")\"}")
    assert_eq 200 "$st" "register $1 with a CSR: $(cat "$WORK/body")"
    for i in 0 1; do
        jb ".registrationState.issuedCertificateChain[$i]" | base64 -d | openssl x509 -inform DER
    done >"$3.pem"
}

# cert_count REGID: how many certificates provctl lists for REGID.
cert_count() {
    pc --json cert list --registration "$1"
    jq length "$WORK/out"
}

# crl_number PEM: the number of a CRL, in decimal.
crl_number() {
    local n
    n=$(openssl crl -in "$1" -noout -crlnumber | sed 's/.*=//; s/^0x//')
    echo $((16#$n))
}

# ---- A certificate from a CSR, the device attested by its symmetric key ----
KEY=$(new_key)
sym_enrollment dev-csr "$KEY" ',"certificateValidityDays":30'
CSR=$(csr_b64 dev-csr ec:<(openssl ecparam -name prime256v1) "$O/dev")
st=$(register dev-csr "$(sas_token "$KEY" dev-csr)" \
    "{\"registrationId\":\"dev-csr\",\"csr\":\"$CSR\"}")
assert_eq 200 "$st" "register with a CSR: $(cat "$WORK/body")"
assert_eq assigned "$(jb .status)" "register with a CSR: status"
assert_eq 3 "$(jb '.registrationState.issuedCertificateChain | length')" "chain length"
for i in 0 1 2; do
    jb ".registrationState.issuedCertificateChain[$i]" | base64 -d |
        openssl x509 -inform DER -out "$O/chain$i.pem"
done
assert_eq "$O/chain0.pem: OK" \
    "$(openssl verify -CAfile "$O/chain2.pem" -untrusted "$O/chain1.pem" "$O/chain0.pem")" \
    "openssl verify of the issued chain"
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
assert_eq "$(fp "$DATA/ca/root.pem")" "$(fp "$O/chain2.pem")" "the chain ends at the root"
assert_eq "$(fp "$DATA/ca/issuing.pem")" "$(fp "$O/chain1.pem")" "the chain's issuing CA"
text=$(openssl x509 -in "$O/chain0.pem" -noout -text)
assert_eq "subject=CN = dev-csr" "$(openssl x509 -in "$O/chain0.pem" -noout -subject)" "leaf CN"
grep -q "URI:urn:provd:device:dev-csr" <<<"$text" || fail "leaf SAN"
grep -q "CA:FALSE" <<<"$text" || fail "leaf is not CA:FALSE"
grep -A1 "X509v3 Key Usage: critical" <<<"$text" | grep -q "Digital Signature" ||
    fail "leaf key usage"
grep -A1 "X509v3 Extended Key Usage" <<<"$text" | grep -q "TLS Web Client Authentication" ||
    fail "leaf extended key usage"
SERIAL=$(openssl x509 -in "$O/chain0.pem" -noout -serial)
assert_match '^serial=[0-9A-F]{32}$' "$SERIAL" "leaf serial is 128 bits"
# certificateValidityDays 30: valid for 29 days more, not 31.
openssl x509 -in "$O/chain0.pem" -noout -checkend $((29 * 86400)) >/dev/null ||
    fail "leaf valid < 29 days"
if openssl x509 -in "$O/chain0.pem" -noout -checkend $((31 * 86400)) >/dev/null; then
    fail "leaf valid > 31 days"
fi
# The store recorded it with the registration; the audit record names it.
assert_eq 1 "$(cert_count dev-csr)" "certificates of dev-csr"
assert_eq "${SERIAL#serial=}" "$(jq -r '.[0].serialNumber' "$WORK/out")" "listed serial"
assert_eq valid "$(jq -r '.[0].status' "$WORK/out")" "listed status"
assert_eq "$(fp "$O/chain0.pem" | sed 's/.*=//; s/://g')" \
    "$(jq -r '.[0].sha256Thumbprint' "$WORK/out")" "listed thumbprint"
grep -q "certificate issued, serial ${SERIAL#serial=}" <<<"$(last_audit dev-csr | jq -r .reason)" ||
    fail "the audit record names the certificate"
pc cert show "${SERIAL,,}"
grep -q "Registration ID: *dev-csr" "$WORK/out" || fail "cert show (lower case, serial=)"

# Base64 wrapped in lines, as `openssl base64` writes it by default, is read too.
KEYW=$(new_key)
sym_enrollment dev-wrap "$KEYW"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/wrap.key" \
    -subj /CN=dev-wrap -outform DER -out "$O/wrap.der" 2>/dev/null
st=$(register dev-wrap "$(sas_token "$KEYW" dev-wrap)" "$(jq -nc --rawfile c <(openssl base64 \
    -in "$O/wrap.der") '{registrationId: "dev-wrap", csr: $c}')")
assert_eq 200 "$st" "register with a CSR in lines: $(cat "$WORK/body")"
assert_eq 3 "$(jb '.registrationState.issuedCertificateChain | length')" "chain of a CSR in lines"
for i in 0 1; do
    jb ".registrationState.issuedCertificateChain[$i]" | base64 -d | openssl x509 -inform DER
done >"$O/wrap.pem"
# A second certificate: the first no longer attests the device, and the refusal says why.
st=$(register dev-wrap "$(sas_token "$KEYW" dev-wrap)" "$(jq -nc --rawfile c <(openssl base64 \
    -in "$O/wrap.der") '{registrationId: "dev-wrap", csr: $c}')")
assert_eq 200 "$st" "register again with a CSR: $(cat "$WORK/body")"
st=$(register_mtls dev-wrap "$O/wrap.pem" "$O/wrap.key")
assert_refused_401 dev-wrap "the certificate before the last" "has issued this device a newer"

# ---- CSRs refused: each with its code, nothing issued or stored, the refusal audited ----
KEYB=$(new_key)
sym_enrollment dev-bad "$KEYB"
TOK=$(sas_token "$KEYB" dev-bad)
refuse_csr() { # CSR_B64 CODE WHAT
    st=$(register_sas dev-bad "$TOK" "{\"registrationId\":\"dev-bad\",\"csr\":\"$1\"}")
    assert_error 400 "$2" "$st" "$3"
    local rec
    rec=$(last_audit dev-bad)
    assert_eq "$2" "$(jq -r .errorCode <<<"$rec")" "$3: audit code"
    assert_eq refused "$(jq -r .outcome <<<"$rec")" "$3: audit outcome"
}
refuse_csr 'not*base64' 400022 "CSR that is not base64"
refuse_csr "$(printf 'not a CSR at all' | base64 -w0)" 400024 "CSR that is not DER"
refuse_csr "$(csr_b64 someone-else ec:<(openssl ecparam -name prime256v1) "$O/cn")" 400032 \
    "CSR with another CN"
grep -qF "is not \"dev-bad\"" <<<"$(last_audit dev-bad | jq -r .reason)" || fail "wrong-CN reason"
refuse_csr "$(csr_b64 dev-bad rsa:1024 "$O/small")" 400027 "CSR with an RSA-1024 key"
# A CSR whose signature does not verify: the last byte of an RSA signature flipped.
csr_b64 dev-bad rsa:2048 "$O/sig" >/dev/null
last=$(($(stat -c %s "$O/sig.der") - 1))
byte=$(od -An -tu1 -j "$last" -N1 "$O/sig.der" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
    dd of="$O/sig.der" bs=1 seek="$last" conv=notrunc 2>/dev/null
refuse_csr "$(base64 -w0 "$O/sig.der")" 400029 "CSR with a bad signature"
# Keys with which a signature proves nothing, or encoded otherwise than a certificate carries them
# (tests/data/csr/bad-keys.py): refused as malformed, before their CN (device-0001) is looked at.
while read -r f why; do
    refuse_csr "$(cat "$(dirname "$0")/../data/csr/$f.b64")" 400025 "CSR $f"
    grep -qF "$why" <<<"$(last_audit dev-bad | jq -r .reason)" || fail "CSR $f: reason"
done <<'EOF'
rsa-e1 RSA key whose public exponent is not odd, above 2^16 and below 2^256
rsa-key-trailing the CSR's public key is malformed
rsa-x500-oid key algorithm 2.5.8.1.1 is not allowed here
p256-hybrid the CSR's public key is malformed
EOF
st=$(register_sas dev-bad "$TOK" '{"registrationId":"dev-bad","csr":42}')
assert_error 400 400002 "$st" "csr that is not a string"
assert_eq 0 "$(cert_count dev-bad)" "no certificate stored for refused CSRs"
st=$(admreq GET /registrations/dev-bad)
assert_error 404 404004 "$st" "no registration stored for refused CSRs"
# A disabled enrollment answers as disabled whatever the CSR.
KEYD=$(new_key)
sym_enrollment dev-off "$KEYD" ',"provisioningStatus":"disabled"'
st=$(register_sas dev-off "$(sas_token "$KEYD" dev-off)" \
    '{"registrationId":"dev-off","csr":"not*base64"}')
assert_eq 200 "$st" "a bad CSR for a disabled enrollment: $(cat "$WORK/body")"
assert_eq failed "$(jb .status)" "a bad CSR for a disabled enrollment: status"
assert_eq 403001 "$(jb .registrationState.errorCode)" "a bad CSR for a disabled enrollment: code"
# tpm is still refused.
st=$(register_sas dev-bad "$TOK" '{"registrationId":"dev-bad","tpm":{}}')
assert_error 400 400001 "$st" "tpm registration"

# ---- X.509 attestation, individual enrollments ----
selfsigned() { # CN OUT: a self-signed P-256 device certificate OUT.pem with key OUT.key
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2.key" \
        -out "$2.pem" -subj "/CN=$1" -days 30 2>/dev/null
}
selfsigned dev-x1 "$O/x1"
selfsigned dev-x1 "$O/x1other"
selfsigned dev-x2 "$O/x2"
doc=$(jq -nc --rawfile c "$O/x1.pem" '{registrationId:"dev-x1",iotHubHostName:"hub.example.com",
    attestation:{type:"x509",x509:{clientCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollments/dev-x1 "$doc")
assert_eq 200 "$st" "PUT an x509 enrollment: $(cat "$WORK/body")"
assert_eq "CN=dev-x1" \
    "$(jb .attestation.x509.clientCertificates.primary.info.subjectName)" "enrolled info"
# The thumbprint as `openssl x509 -fingerprint -sha256` prints it, the whole line.
TP2=$(fp "$O/x2.pem")
st=$(admjson PUT /enrollments/dev-x2 "{\"registrationId\":\"dev-x2\",\"iotHubHostName\":
    \"hub.example.com\",\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":
    {\"primary\":{\"info\":{\"sha256Thumbprint\":\"$TP2\"}}}}}}")
assert_eq 200 "$st" "PUT an x509 enrollment by thumbprint: $(cat "$WORK/body")"
# provctl shows the enrolled certificate (or thumbprint), and no keys for an X.509 enrollment.
pc enrollment show dev-x1 --show-keys
grep -qE "^Primary certificate: +CN=dev-x1, SHA-256 $(fp "$O/x1.pem" | sed 's/.*=//; s/://g')$" \
    "$WORK/out" || fail "enrollment show of dev-x1: $(cat "$WORK/out")"
! grep -q "key" "$WORK/out" || fail "enrollment show of dev-x1 speaks of keys: $(cat "$WORK/out")"
pc enrollment show dev-x2
grep -qE "^Primary certificate: +SHA-256 $(fp "$O/x2.pem" | sed 's/.*=//; s/://g')$" \
    "$WORK/out" || fail "enrollment show of dev-x2: $(cat "$WORK/out")"
st=$(admjson PUT /enrollments/dev-x3 '{"registrationId":"dev-x3","attestation":{"type":"x509",
    "x509":{"clientCertificates":{"primary":{"certificate":"not a certificate"}}}}}')
assert_error 400 400006 "$st" "x509 enrollment with a malformed certificate"

st=$(register_mtls dev-x1 "$O/x1.pem" "$O/x1.key")
assert_eq 200 "$st" "mTLS register with the enrolled certificate: $(cat "$WORK/body")"
assert_eq assigned "$(jb .status)" "mTLS register status"
assert_eq "$(fp "$O/x1.pem" | sed 's/.*=//; s/://g')" \
    "$(jb .registrationState.x509.certificateInfo.sha256Thumbprint)" "registrationState.x509"
assert_eq "CN=dev-x1" "$(jb .registrationState.x509.certificateInfo.subjectName)" "x509 subject"
assert_eq null "$(jb .registrationState.symmetricKey)" "no symmetricKey for x509"
assert_eq null "$(jb .registrationState.x509.enrollmentGroupId)" "no group for an individual"
st=$(register_mtls dev-x2 "$O/x2.pem" "$O/x2.key")
assert_eq 200 "$st" "mTLS register with the enrolled thumbprint: $(cat "$WORK/body")"
# mTLS with a CSR: a certificate is issued too.
CSRX=$(csr_b64 dev-x2 ec:<(openssl ecparam -name prime256v1) "$O/x2csr")
st=$(register_mtls dev-x2 "$O/x2.pem" "$O/x2.key" \
    "{\"registrationId\":\"dev-x2\",\"csr\":\"$CSRX\"}")
assert_eq 200 "$st" "mTLS register with a CSR"
assert_eq 3 "$(jb '.registrationState.issuedCertificateChain | length')" "mTLS + CSR chain"

st=$(register_mtls dev-x1 "$O/x1other.pem" "$O/x1other.key")
# Credentials that prove nothing are answered in the same words whether the registration ID has
# an individual enrollment (of either kind) or none; only the audit record says what was found.
nothing=$(jb .message)
assert_refused_401 dev-x1 "another certificate with the right CN" "is not the enrolled certificate"
selfsigned dev-none "$O/none"
st=$(register_mtls dev-none "$O/none.pem" "$O/none.key")
assert_error 401 401002 "$st" "a self-made certificate of no enrollment"
assert_eq "$nothing" "$(jb .message)" \
    "the same answer: another certificate of an X.509 enrollment, and one of no enrollment"
selfsigned dev-csr "$O/selfcsr"
st=$(register_mtls dev-csr "$O/selfcsr.pem" "$O/selfcsr.key")
assert_eq "$nothing" "$(jb .message)" \
    "the same answer: a certificate for a symmetric-key enrollment, and one of no enrollment"
assert_refused_401 dev-csr "a certificate for a symmetric-key enrollment" \
    "the enrollment uses symmetric-key attestation"
NOKEY=$(new_key)
st=$(register_sas dev-none "$(sas_token "$NOKEY" dev-none)" '{"registrationId":"dev-none"}')
assert_error 401 401002 "$st" "a SAS token of no enrollment"
nothing=$(jb .message)
st=$(register_sas dev-x1 "$(sas_token "$NOKEY" dev-x1)" '{"registrationId":"dev-x1"}')
assert_eq "$nothing" "$(jb .message)" \
    "the same answer: a SAS token for an X.509 enrollment, and one of no enrollment"
assert_refused_401 dev-x1 "a SAS token for an X.509 enrollment" "uses X.509 attestation"
st=$(register_mtls dev-x2 "$O/x1.pem" "$O/x1.key")
assert_refused_401 dev-x2 "a certificate of another device" "is not the registration ID"
# A CN quoted in the log cannot end its field there and add others.
selfsigned 'x" outcome=accepted reason="ok' "$O/quote"
st=$(register_mtls dev-x2 "$O/quote.pem" "$O/quote.key")
assert_refused_401 dev-x2 "a CN with quotes" "is not the registration ID"
grep -F 'subject=dev-x2 outcome=refused' "$WORK/provd.log" | tail -n 1 | grep -qF \
    'its CN \"x\" outcome=accepted reason=\"ok\" is not the registration ID"' ||
    fail "the quotes of a CN are escaped in the log: $(grep -F dev-x2 "$WORK/provd.log" | tail -n 1)"
selfsigned 'dev-x2/CN=dev-x2' "$O/twocn"
st=$(register_mtls dev-x2 "$O/twocn.pem" "$O/twocn.key")
assert_refused_401 dev-x2 "a certificate with two CNs" "no single CN of 1 to 128 characters"
st=$(devreq PUT "/$SCOPE/registrations/dev-x1/register?$API" -H 'Content-Type: application/json' \
    --data-binary '{"registrationId":"dev-x1"}')
assert_refused_401 dev-x1 "neither token nor certificate" "missing SAS token or client certificate"
st=$(register_sas dev-x1 "$(sas_token "$KEY" dev-x1)" '{"registrationId":"dev-x1"}')
assert_refused_401 dev-x1 "a SAS token for an x509 enrollment" "uses X.509 attestation"

# ---- X.509 attestation, a group's CA: root -> intermediate -> device ----
cat >"$O/ext.cnf" <<'EOF'
[v3ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[v3leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[v3issuing]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
EOF
mkca() { # NAME: a self-signed root NAME.pem / NAME.key
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$1.key" \
        -out "$O/$1.pem" -subj "/CN=$1" -days 30 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
sign() { # CN OUT ISSUER EXT: OUT.pem / OUT.key signed by ISSUER.pem / ISSUER.key
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$2.key" \
        -subj "/CN=$1" -out "$O/$2.csr" 2>/dev/null
    openssl x509 -req -in "$O/$2.csr" -CA "$O/$3.pem" -CAkey "$O/$3.key" -CAcreateserial \
        -days 30 -extfile "$O/ext.cnf" -extensions "$4" -out "$O/$2.pem" 2>/dev/null
}
mkca groot
sign "Fleet Intermediate" gint groot v3ca
sign dev-g1 g1 gint v3leaf
cat "$O/g1.pem" "$O/gint.pem" >"$O/g1chain.pem"
mkca other
sign dev-g2 g2 other v3leaf
doc=$(jq -nc --rawfile c "$O/groot.pem" '{enrollmentGroupId:"grp-x",iotHubHostName:
    "hub.example.com",attestation:{type:"x509",
    x509:{signingCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollmentGroups/grp-x "$doc")
assert_eq 200 "$st" "PUT an x509 group: $(cat "$WORK/body")"
doc=$(jq -nc --rawfile c "$O/g1.pem" '{enrollmentGroupId:"grp-bad",attestation:{type:"x509",
    x509:{signingCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollmentGroups/grp-bad "$doc")
assert_error 400 400006 "$st" "group whose signing certificate is not a CA"
grep -q "not a CA certificate" <<<"$(jb .message)" || fail "the CA refusal says why"

st=$(register_mtls dev-g1 "$O/g1chain.pem" "$O/g1.key")
assert_eq 200 "$st" "mTLS register with a chain to the group's CA: $(cat "$WORK/body")"
assert_eq grp-x "$(jb .registrationState.x509.enrollmentGroupId)" "attesting group"
st=$(admjson POST /registrations/grp-x/query '{"query":"*"}')
assert_eq dev-g1 "$(jb '.[0].registrationId')" "the group's registrations"
# A resumed TLS session still has the intermediates: curl resumes the first connection's session
# for the second (TLS 1.3, and TLS 1.2 where a ticket would hold the leaf alone).
for tls in "--tlsv1.3" "--tlsv1.2 --tls-max 1.2"; do
    # shellcheck disable=SC2086 # two words of options
    codes=$(curl -sS --cacert "$CA" $tls --cert "$O/g1chain.pem" --key "$O/g1.key" -X PUT \
        -H 'Content-Type: application/json' -H 'Connection: close' \
        --data-binary '{"registrationId":"dev-g1"}' -o /dev/null -o /dev/null -w '%{http_code} ' \
        "$DEV/$SCOPE/registrations/dev-g1/register?$API" \
        "$DEV/$SCOPE/registrations/dev-g1/register?$API")
    assert_eq "200 200 " "$codes" "mTLS register on a new connection resuming the session ($tls)"
done
# Without the intermediate the chain does not reach the group's root.
st=$(register_mtls dev-g1 "$O/g1.pem" "$O/g1.key")
assert_refused_401 dev-g1 "a leaf without its intermediate" "unable to get local issuer"
st=$(register_mtls dev-g2 "$O/g2.pem" "$O/g2.key")
assert_refused_401 dev-g2 "a certificate of another CA" "client certificate refused"
# A certificate the group's CA issued for another purpose is refused for that reason, also when
# a group of another fleet (whose CA did not issue it) is tried after grp-x.
sign dev-g3 g3 gint v3server
cat "$O/gint.pem" >>"$O/g3.pem"
st=$(register_mtls dev-g3 "$O/g3.pem" "$O/g3.key")
assert_refused_401 dev-g3 "a server certificate" "unsuitable certificate purpose"
doc=$(jq -nc --rawfile c "$O/other.pem" '{enrollmentGroupId:"grp-z",attestation:{type:"x509",
    x509:{signingCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollmentGroups/grp-z "$doc")
assert_eq 200 "$st" "PUT a second x509 group: $(cat "$WORK/body")"
st=$(register_mtls dev-g3 "$O/g3.pem" "$O/g3.key")
assert_refused_401 dev-g3 "a server certificate, two groups" "unsuitable certificate purpose"
st=$(admreq DELETE /enrollmentGroups/grp-z)
assert_eq 204 "$st" "DELETE grp-z"
# Expired and not yet valid certificates, from `openssl ca` with explicit dates.
openssl_ca "$O"
cat >>"$O/ca.cnf" <<EOF
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF
dated() { # CN OUT START END
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$2.key" \
        -subj "/CN=$1" -out "$O/$2.csr" 2>/dev/null
    openssl ca -batch -config "$O/ca.cnf" -cert "$O/gint.pem" -keyfile "$O/gint.key" \
        -in "$O/$2.csr" -out "$O/$2.pem" -startdate "$3" -enddate "$4" -extensions leaf \
        -notext 2>/dev/null
    cat "$O/gint.pem" >>"$O/$2.pem"
}
dated dev-old old 20200101000000Z 20210101000000Z
st=$(register_mtls dev-old "$O/old.pem" "$O/old.key")
assert_refused_401 dev-old "an expired certificate" "it has expired"
dated dev-new new 20990101000000Z 20991231000000Z
st=$(register_mtls dev-new "$O/new.pem" "$O/new.key")
assert_refused_401 dev-new "a certificate not yet valid" "it is not yet valid"

# ---- Revocation and the CRL ----
# The device presents its provd certificate: it attests for the enrollment it registered with.
st=$(register_mtls dev-csr "$O/chain0.pem" "$O/dev.key")
assert_eq 200 "$st" "mTLS with the device's own provd certificate: $(cat "$WORK/body")"
st=$(devreq GET /crl)
assert_eq 200 "$st" "GET /crl"
assert_eq application/pkix-crl "$(header content-type)" "CRL content type"
openssl crl -inform DER -in "$WORK/body" -out "$O/crl-before.pem"
n_before=$(crl_number "$O/crl-before.pem")
cat "$O/chain2.pem" "$O/chain1.pem" >"$O/cas.pem"
assert_eq "$O/chain0.pem: OK" "$(openssl verify -crl_check -CRLfile "$O/crl-before.pem" \
    -CAfile "$O/chain2.pem" -untrusted "$O/chain1.pem" "$O/chain0.pem")" "valid before revocation"

pc cert revoke "serial=${SERIAL#serial=}" --reason keyCompromise
grep -q "Revoked certificate ${SERIAL#serial=}" "$WORK/out" || fail "cert revoke output"
pc --json cert show "${SERIAL#serial=}"
assert_eq revoked "$(jq -r .status "$WORK/out")" "status after revocation"
assert_eq keyCompromise "$(jq -r .revocationReason "$WORK/out")" "revocation reason"
grep -q "revoked (keyCompromise)" <<<"$(last_audit dev-csr | jq -r .reason)" ||
    fail "the revocation is audited"
st=$(admreq POST "/certificates/${SERIAL#serial=}/revoke")
assert_error 409 409011 "$st" "revoking twice"
st=$(admreq GET /certificates/00FF)
assert_error 404 404012 "$st" "unknown certificate"
st=$(admreq GET /certificates/xyz)
assert_error 400 400001 "$st" "malformed serial"
st=$(admreq GET /certificates/ABC)
assert_error 400 400001 "$st" "serial of an odd number of digits"
assert_match 'an even number of 2 to 40 hex digits' "$(jb .message)" "odd serial: message"
# /certificates/revoke is a path of its own (POST), not a malformed serial.
st=$(admreq GET /certificates/revoke)
assert_error 405 405001 "$st" "GET /certificates/revoke"
assert_eq POST "$(header allow)" "GET /certificates/revoke: Allow"

st=$(devreq GET /crl.pem)
assert_eq 200 "$st" "GET /crl.pem"
cp "$WORK/body" "$O/crl.pem"
n_after=$(crl_number "$O/crl.pem")
[ "$n_after" -gt "$n_before" ] || fail "the CRL number grew ($n_before -> $n_after)"
openssl crl -in "$O/crl.pem" -noout -text | grep -q "Serial Number: ${SERIAL#serial=}" ||
    fail "the CRL lists the revoked serial"
openssl crl -in "$O/crl.pem" -noout -text | grep -q "Key Compromise" || fail "CRL reason"
assert_eq "verify OK" "$(openssl crl -in "$O/crl.pem" -noout -CAfile "$O/cas.pem" 2>&1)" \
    "the CRL is signed by the issuing CA"
if openssl verify -crl_check -CRLfile "$O/crl.pem" -CAfile "$O/chain2.pem" \
    -untrusted "$O/chain1.pem" "$O/chain0.pem" >"$WORK/verify" 2>&1; then
    fail "openssl verify -crl_check accepts the revoked certificate"
fi
grep -q "certificate revoked" "$WORK/verify" || fail "verify says revoked: $(cat "$WORK/verify")"
st=$(register_mtls dev-csr "$O/chain0.pem" "$O/dev.key")
assert_refused_401 dev-csr "mTLS with a revoked provd certificate" "is revoked"
# A certificate of another CA carrying the revoked serial and the issuing CA's name is not
# provd's: nothing is said about the certificate provd issued with that serial.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/fakeca.key" \
    -out "$O/fakeca.pem" -subj "$(openssl x509 -in "$DATA/ca/issuing.pem" -noout -subject \
    -nameopt compat | sed 's/^subject=//')" -days 30 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/fake.key" \
    -subj /CN=dev-csr -out "$O/fake.csr" 2>/dev/null
openssl x509 -req -in "$O/fake.csr" -CA "$O/fakeca.pem" -CAkey "$O/fakeca.key" \
    -set_serial "0x${SERIAL#serial=}" -days 30 -out "$O/fake.pem" 2>/dev/null
assert_eq "$(openssl x509 -in "$O/chain0.pem" -noout -serial -issuer)" \
    "$(openssl x509 -in "$O/fake.pem" -noout -serial -issuer)" "the copy has the serial and issuer"
st=$(register_mtls dev-csr "$O/fake.pem" "$O/fake.key")
assert_refused_401 dev-csr "a copy of a revoked certificate's serial and issuer" \
    "the enrollment uses symmetric-key attestation"
# provd's certificates attest only the registration they were issued to, also where a group
# trusts provd's own root and another registration ID equals their CN (a device ID).
KEYA=$(new_key)
sym_enrollment dev-alice "$KEYA" ',"deviceId":"dev-bob"'
csr_register dev-alice "$(sas_token "$KEYA" dev-alice)" "$O/alice"
doc=$(jq -nc --rawfile c "$DATA/ca/root.pem" '{enrollmentGroupId:"grp-provd",attestation:{
    type:"x509",x509:{signingCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollmentGroups/grp-provd "$doc")
assert_eq 200 "$st" "PUT a group whose CA is provd's root: $(cat "$WORK/body")"
st=$(register_mtls dev-bob "$O/alice.pem" "$O/alice.key")
assert_refused_401 dev-bob "dev-alice's certificate (CN dev-bob) for dev-bob" \
    "provd issued it to another registration"
st=$(admreq DELETE /enrollmentGroups/grp-provd)
assert_eq 204 "$st" "DELETE grp-provd"

# A second provd serving the same store: the CRL it serves lists a revocation made through the
# first one.
provd_start_second
curl -sSf --cacert "$CA" -o "$O/crl-second-before.pem" "$DEV2/crl.pem" ||
    fail "GET /crl.pem from a second provd: $(cat "$WORK/provd2.log")"

# The CRL is signed when asked for after a change, once however many revocations came.
st=$(devreq GET /crl)
assert_eq 200 "$st" "GET /crl"
openssl crl -inform DER -in "$WORK/body" -out "$O/crl1.pem"
st=$(devreq GET /crl)
openssl crl -inform DER -in "$WORK/body" -out "$O/crl1-again.pem"
assert_eq "$(crl_number "$O/crl1.pem")" "$(crl_number "$O/crl1-again.pem")" \
    "no new CRL without a revocation"

# Every certificate of a device at once: dev-x2 has one (issued over mTLS above). A member of
# another type than a string is refused, not taken as absent.
for body in '{"deviceId":5,"registrationId":"dev-x2"}' '{"registrationId":"dev-x2","deviceId":{}}'; do
    st=$(admjson POST /certificates/revoke "$body")
    assert_error 400 400001 "$st" "bulk revocation with $body"
done
assert_eq 1 "$(cert_count dev-x2)" "dev-x2's certificate"
assert_eq valid "$(jq -r '.[0].status' "$WORK/out")" "dev-x2's certificate after refused revocations"
pc cert revoke --device dev-x2
assert_eq "Revoked 1 certificate(s) of dev-x2." "$(cat "$WORK/out")" "cert revoke --device"
st=$(admreq POST /registrations/dev-x2/revokeCertificates)
assert_eq 200 "$st" "revokeCertificates with none left"
assert_eq 0 "$(jb .revoked)" "revokeCertificates count"
pc cert list
assert_eq 2 "$(grep -c revoked "$WORK/out")" "cert list shows the revoked ones"
assert_match '^SERIAL +REGISTRATION ID +DEVICE ID +STATUS +ISSUED +NOT AFTER$' \
    "$(head -n 1 "$WORK/out")" "cert list columns"
# A device ID two registrations share: the revocation is audited about each of them.
KEYS=$(new_key)
for r in shared-a shared-b; do
    sym_enrollment "$r" "$KEYS" ',"deviceId":"shared-device"'
    st=$(register "$r" "$(sas_token "$KEYS" "$r")" \
        "{\"registrationId\":\"$r\",\"csr\":\"$(csr_b64 "$r" ec:<(openssl ecparam \
            -name prime256v1) "$O/$r")\"}")
    assert_eq 200 "$st" "register $r with a CSR: $(cat "$WORK/body")"
done
pc cert revoke --device shared-device --reason superseded
assert_eq "Revoked 2 certificate(s) of shared-device." "$(cat "$WORK/out")" \
    "cert revoke --device for two registrations"
for r in shared-a shared-b; do
    rec=$(last_audit "$r")
    assert_eq certificate.revoke "$(jq -r .event <<<"$rec")" "the revocation is audited about $r"
    assert_eq "certificates of device shared-device revoked (superseded)" \
        "$(jq -r .reason <<<"$rec")" "the revocation's reason for $r"
done
st=$(devreq GET /crl.pem)
cp "$WORK/body" "$O/crl2.pem"
# CRL numbers come from the store: the second provd took one as it started.
last=$(crl_number "$O/crl1.pem")
[ "$(crl_number "$O/crl-second-before.pem")" -lt "$last" ] ||
    last=$(crl_number "$O/crl-second-before.pem")
assert_eq $((last + 1)) "$(crl_number "$O/crl2.pem")" \
    "one CRL for the two revocations since the last"
pc --json cert list
assert_eq "$(jq -r '.[] | select(.status == "revoked") | .serialNumber' "$WORK/out" | sort)" \
    "$(openssl crl -in "$O/crl2.pem" -noout -text | sed -n 's/ *Serial Number: //p' | sort)" \
    "the CRL lists every revoked certificate"
curl -sSf --cacert "$CA" -o "$O/crl-second.pem" "$DEV2/crl.pem" || fail "GET /crl.pem (second)"
assert_eq "$(jq -r '.[] | select(.status == "revoked") | .serialNumber' "$WORK/out" | sort)" \
    "$(openssl crl -in "$O/crl-second.pem" -noout -text | sed -n 's/ *Serial Number: //p' |
        sort)" "the second provd's CRL lists the revocations made through the first"
provd_stop_second

# ---- A client certificate chain over 32 KiB is refused in the handshake ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$O/junk.key" -out "$O/junk0.pem" \
    -subj /CN=junk-0 -days 1 2>/dev/null
cp "$O/g1chain.pem" "$O/huge-chain.pem"
for i in $(seq 1 80); do
    openssl req -x509 -key "$O/junk.key" -subj "/CN=junk-$i" -days 1 2>/dev/null \
        >>"$O/huge-chain.pem"
done
[ "$(wc -c <"$O/huge-chain.pem")" -gt 80000 ] || fail "the huge chain is not that large"
rc=0
curl -sS --cacert "$CA" --cert "$O/huge-chain.pem" --key "$O/g1.key" -o /dev/null \
    "$DEV/healthz" 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] || fail "an 80 KB client certificate chain was taken"
st=$(curl -sS --cacert "$CA" --cert "$O/g1chain.pem" --key "$O/g1.key" -o /dev/null \
    -w '%{http_code}' "$DEV/healthz")
assert_eq 200 "$st" "a client certificate chain of normal size"

# A device of a group comes back with its provd certificate while its registration and the
# group exist; without either, the refusal says which is gone.
GKG=$(new_key)
for g in grp-gone-a grp-gone-b; do
    st=$(admjson PUT "/enrollmentGroups/$g" "{\"enrollmentGroupId\":\"$g\",
        \"iotHubHostName\":\"hub.example.com\",\"attestation\":{\"type\":\"symmetricKey\",
        \"symmetricKey\":{\"primaryKey\":\"$GKG\"}}}")
    assert_eq 200 "$st" "PUT group $g: $(cat "$WORK/body")"
done
for d in dev-ga dev-gb; do
    csr_register "$d" "$(sas_token "$(b64_hmac "$GKG" "$d")" "$d")" "$O/$d"
    st=$(register_mtls "$d" "$O/$d.pem" "$O/$d.key")
    assert_eq 200 "$st" "$d comes back with its provd certificate: $(cat "$WORK/body")"
done
# Both are registered under grp-gone-a, the first group in ID order that their keys attest.
st=$(admreq DELETE /registrations/dev-ga)
assert_eq 204 "$st" "DELETE the registration of dev-ga"
st=$(register_mtls dev-ga "$O/dev-ga.pem" "$O/dev-ga.key")
assert_refused_401 dev-ga "a group device's certificate after its registration was deleted" \
    "registers again with the group's credentials"
st=$(admreq DELETE /enrollmentGroups/grp-gone-a)
assert_eq 204 "$st" "DELETE group grp-gone-a"
st=$(register_mtls dev-gb "$O/dev-gb.pem" "$O/dev-gb.key")
assert_refused_401 dev-gb "a group device's certificate after its group was deleted" \
    "the enrollment group the device is registered under no longer exists"

# ---- A CA replaced: the certificates of the old one keep their records ----
# A group trusting provd's old root, and a device of a symmetric-key group whose provd
# certificate is revoked: once provd has another issuing CA (provd ca import), that certificate
# no longer verifies up to provd's root, but it is still the one provd revoked.
GKR=$(new_key)
st=$(admjson PUT /enrollmentGroups/grp-sym-r "{\"enrollmentGroupId\":\"grp-sym-r\",
    \"iotHubHostName\":\"hub.example.com\",\"attestation\":{\"type\":\"symmetricKey\",
    \"symmetricKey\":{\"primaryKey\":\"$GKR\"}}}")
assert_eq 200 "$st" "PUT group grp-sym-r: $(cat "$WORK/body")"
DKR=$(b64_hmac "$GKR" dev-r)
csr_register dev-r "$(sas_token "$DKR" dev-r)" "$O/r"
st=$(admreq POST /registrations/dev-r/revokeCertificates)
assert_eq 200 "$st" "revoke dev-r's certificate"
st=$(admreq DELETE /registrations/dev-r)
assert_eq 204 "$st" "DELETE the registration of dev-r"
doc=$(jq -nc --rawfile c "$DATA/ca/root.pem" '{enrollmentGroupId:"grp-old-root",
    iotHubHostName:"hub.example.com",attestation:{type:"x509",
    x509:{signingCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollmentGroups/grp-old-root "$doc")
assert_eq 200 "$st" "PUT a group trusting provd's root"
st=$(register_mtls dev-r "$O/r.pem" "$O/r.key")
assert_refused_401 dev-r "a revoked provd certificate" "is revoked"
provd_stop
mkca newroot
sign "New Issuing" newissuing newroot v3issuing
"$BIN/provd" ca import --data-dir "$DATA" --cert "$O/newissuing.pem" --key "$O/newissuing.key" \
    --chain "$O/newroot.pem" --force >/dev/null 2>"$WORK/err" ||
    fail "ca import of another CA: $(cat "$WORK/err")"
provd_start
st=$(register_mtls dev-r "$O/r.pem" "$O/r.key")
assert_refused_401 dev-r "a revoked certificate of the CA provd had before" "is revoked"

# ---- provd refuses to start without an issuing CA, naming the fix ----
provd_stop
mv "$DATA/ca/issuing.pem" "$DATA/ca/issuing.pem.away"
if "$BIN/provd" serve --data-dir "$DATA" --device-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 >"$WORK/nostart.log" 2>&1; then
    fail "provd started without an issuing CA"
fi
grep -q "provd ca import" "$WORK/nostart.log" || fail "no fix named: $(cat "$WORK/nostart.log")"
grep -q -- "--force" "$WORK/nostart.log" || fail "init --force not named"
mv "$DATA/ca/issuing.pem.away" "$DATA/ca/issuing.pem"
echo "x509: OK"
