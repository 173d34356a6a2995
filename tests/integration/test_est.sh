#!/usr/bin/env bash
# EST (RFC 7030, RFC 8951; docs/est.md) with curl and the openssl command line as the client:
# cacerts, csrattrs, simpleenroll by HTTP Basic (individual and group-derived keys) and by a
# manufacturer certificate, simplereenroll with the provd certificate (and a revoked one),
# serverkeygen, the refusals, the audit records and the stored certificates.
source "$(dirname "$0")/lib.sh"

provd_init --id-scope 0ne00E57001
provd_start
endpoint_add hub.example.com
O=$WORK/o
mkdir -p "$O"
EST=/.well-known/est

# est METHOD OP [CURL_ARGS...]: a request to $EST/OP (OP may hold a label: "grp/simpleenroll").
est() {
    local method=$1 op=$2
    shift 2
    devreq "$method" "$EST/$op" "$@"
}

# csr NAME CN [SUBJ]: a P-256 key NAME.key and a CSR for CN, base64 DER with line breaks, in
# NAME.b64.
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/$1.key" \
        -subj "${3:-/CN=$2}" -outform DER -out "$O/$1.der" 2>/dev/null
    openssl base64 -in "$O/$1.der" -out "$O/$1.b64"
}

# enroll OP NAME [CURL_ARGS...]: POSTs NAME.b64 as application/pkcs10 to OP.
enroll() {
    local op=$1 name=$2
    shift 2
    est POST "$op" -H 'Content-Type: application/pkcs10' --data-binary "@$O/$name.b64" "$@"
}

# leaf OUT: the certificate of the last answer (base64 certs-only PKCS#7) into OUT.pem.
leaf() {
    openssl base64 -d -A -in "$WORK/body" | openssl pkcs7 -inform DER -print_certs -out "$O/$1.pem"
    assert_eq 1 "$(grep -c 'BEGIN CERTIFICATE' "$O/$1.pem")" "$1: one certificate in the PKCS#7"
}

# verified NAME CN: NAME.pem chains to provd's root and names CN.
verified() {
    assert_eq "$O/$1.pem: OK" \
        "$(openssl verify -CAfile "$CA" -untrusted "$DATA/ca/issuing.pem" "$O/$1.pem")" \
        "$1: openssl verify"
    assert_eq "subject=CN = $2" "$(openssl x509 -in "$O/$1.pem" -noout -subject)" "$1: subject"
}

# refused STATUS WHAT: the last answer is STATUS with a plain-text reason.
refused() {
    assert_eq "$1" "$st" "$2: HTTP status ($(cat "$WORK/body"))"
    assert_eq "text/plain; charset=utf-8" "$(header content-type)" "$2: Content-Type"
    [ -s "$WORK/body" ] || fail "$2: no reason in the body"
}

# audit_has EVENT SUBJECT OUTCOME: an audit record with that event, subject and outcome exists.
audit_has() {
    audit_all "&subject=$2" | jq -e -s --arg e "$1" --arg o "$3" \
        'any(.[]; .event == $e and .outcome == $o)' >/dev/null ||
        fail "no audit record $1 $2 $3"
}

serial() { openssl x509 -in "$O/$1.pem" -noout -serial | sed 's/serial=//'; }

# ---- cacerts and csrattrs ----
# A query string EST does not take is ignored, a malformed one refused in EST's own form.
st=$(est GET 'cacerts?x=1')
assert_eq 200 "$st" "cacerts with a query parameter"
st=$(est GET 'cacerts?x')
refused 400 "cacerts with a malformed query string"
assert_match 'malformed query string' "$(cat "$WORK/body")" "malformed query: reason"
st=$(est GET cacerts)
assert_eq 200 "$st" "cacerts"
assert_eq application/pkcs7-mime "$(header content-type)" "cacerts: Content-Type"
openssl base64 -d -A -in "$WORK/body" | openssl pkcs7 -inform DER -print_certs -out "$O/cacerts.pem"
subjects=$(grep '^subject=' "$O/cacerts.pem")
grep -qF "$(openssl x509 -in "$DATA/ca/issuing.pem" -noout -subject)" <<<"$subjects" ||
    fail "cacerts lacks the issuing CA: $subjects"
grep -qF "$(openssl x509 -in "$DATA/ca/root.pem" -noout -subject)" <<<"$subjects" ||
    fail "cacerts lacks the root"
assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$O/cacerts.pem")" "cacerts: issuing and root"
st=$(est GET csrattrs)
assert_eq 200 "$st" "csrattrs"
assert_eq application/csrattrs "$(header content-type)" "csrattrs: Content-Type"
attrs=$(openssl base64 -d -A -in "$WORK/body" | openssl asn1parse -inform DER)
for want in id-ecPublicKey prime256v1 secp384r1 rsaEncryption; do
    grep -q "$want" <<<"$attrs" || fail "csrattrs lacks $want: $attrs"
done
# HEAD: the headers of GET with its Content-Length, and no body, so that the next request on the
# connection is answered.
attrs_len=$(wc -c <"$WORK/body")
st=$(curl -sS --cacert "$CA" --head -o /dev/null -o /dev/null -D "$WORK/headers" \
    -w '%{http_code} %{num_connects} ' "$DEV$EST/cacerts" "$DEV$EST/csrattrs")
assert_eq "200 1 200 0 " "$st" "HEAD cacerts, then csrattrs on the same connection"
assert_eq "$attrs_len" "$(header content-length)" "HEAD csrattrs: Content-Length"
st=$(est POST cacerts)
refused 405 "POST cacerts"
assert_eq "GET, HEAD" "$(header allow)" "405: Allow"
st=$(est GET nosuchop)
refused 404 "unknown EST operation"

# ---- simpleenroll by HTTP Basic, individual symmetric-key enrollment ----
KEY=$(new_key)
st=$(admjson PUT /enrollments/est-dev1 "{\"registrationId\":\"est-dev1\",\"attestation\":
    {\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY\"}}}")
assert_eq 200 "$st" "PUT enrollment est-dev1: $(cat "$WORK/body")"
csr d1 est-dev1
[ "$(wc -l <"$O/d1.b64")" -gt 1 ] || fail "the CSR body should hold line breaks"
st=$(enroll simpleenroll d1 -u "est-dev1:$KEY")
assert_eq 200 "$st" "simpleenroll (Basic): $(cat "$WORK/body")"
assert_eq "application/pkcs7-mime; smime-type=certs-only" "$(header content-type)" \
    "simpleenroll: Content-Type"
leaf d1
verified d1 est-dev1
# Text after a NUL is not ignored: the body is not valid base64.
{ cat "$O/d1.b64"; printf '\0junk'; } >"$O/d1nul.b64"
st=$(enroll simpleenroll d1nul -u "est-dev1:$KEY")
refused 400 "a CSR followed by a NUL and more"
grep -q "not valid base64" "$WORK/body" || fail "a NUL in the CSR: $(cat "$WORK/body")"
# The certificate is for the CSR's key.
assert_eq "$(openssl pkey -in "$O/d1.key" -pubout)" "$(openssl x509 -in "$O/d1.pem" -noout -pubkey)" \
    "simpleenroll: the certificate holds the CSR's key"
audit_has est.simpleenroll est-dev1 accepted
S1=$(serial d1)
st=$(admreq GET "/certificates?registrationId=est-dev1")
assert_eq 200 "$st" "GET /certificates"
assert_eq "$S1" "$(jb '.certificates[0].serialNumber')" "the store has the certificate"
st=$(admreq GET /registrations/est-dev1)
assert_eq assigned "$(jb .status)" "the registration is stored"
# Content-Transfer-Encoding is accepted when sent.
st=$(enroll simpleenroll d1 -u "est-dev1:$KEY" -H 'Content-Transfer-Encoding: base64')
assert_eq 200 "$st" "simpleenroll with Content-Transfer-Encoding"
# A PEM request, which some clients send, is taken too.
openssl req -new -key "$O/d1.key" -subj /CN=est-dev1 -out "$O/d1pem.b64" 2>/dev/null
st=$(enroll simpleenroll d1pem -u "est-dev1:$KEY")
assert_eq 200 "$st" "simpleenroll with a PEM request: $(cat "$WORK/body")"

# The refusals.
st=$(enroll simpleenroll d1 -u "est-dev1:$(new_key)")
refused 401 "wrong password"
assert_eq 'Basic realm="provd EST", charset="UTF-8"' "$(header www-authenticate)" \
    "wrong password: WWW-Authenticate"
audit_has est.simpleenroll est-dev1 refused
if grep -qF "$KEY" "$WORK/provd.log"; then fail "the password is in the log"; fi
st=$(enroll simpleenroll d1)
refused 401 "no credentials"
assert_match '^Basic realm=' "$(header www-authenticate)" "no credentials: WWW-Authenticate"
st=$(enroll simpleenroll d1 -H 'Authorization: Basic !!!')
refused 401 "malformed Basic"
st=$(enroll simpleenroll d1 -u "est dev1:$KEY")
refused 401 "a user name that is no registration ID"
assert_match '^the HTTP Basic user name is not a registration ID: ' "$(cat "$WORK/body")" \
    "a user name that is no registration ID: reason"
csr wrongcn someone-else
st=$(enroll simpleenroll wrongcn -u "est-dev1:$KEY")
refused 400 "CSR with another CN"
st=$(est POST simpleenroll -u "est-dev1:$KEY" -H 'Content-Type: application/json' \
    --data-binary "@$O/d1.b64")
refused 415 "wrong content type"
st=$(est POST simpleenroll -u "est-dev1:$KEY" -H 'Content-Type: application/pkcs10' \
    --data-binary 'this is not base64 at all!')
refused 400 "garbage body"
st=$(est POST simpleenroll -u "est-dev1:$KEY" -H 'Content-Type: application/pkcs10' \
    --data-binary "$(printf 'not a CSR' | openssl base64)")
refused 400 "base64 of something else"
st=$(admjson PUT /enrollments/est-dev1 "{\"registrationId\":\"est-dev1\",\"attestation\":
    {\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY\"}},
    \"provisioningStatus\":\"disabled\"}")
assert_eq 200 "$st" "disable est-dev1"
st=$(enroll simpleenroll d1 -u "est-dev1:$KEY")
refused 403 "disabled enrollment"
# The audit record has the status answered.
audit_all "&subject=est-dev1" | tail -n 1 | jq -e '.event == "est.simpleenroll" and
    .outcome == "refused" and .httpStatus == 403 and .errorCode == 403001' >/dev/null ||
    fail "audit record of the disabled enrollment: $(audit_all "&subject=est-dev1" | tail -n 1)"
st=$(enroll nosuchgroup/simpleenroll d1 -u "est-dev1:$KEY")
refused 404 "unknown label"
st=$(est GET nosuchgroup/cacerts)
refused 404 "unknown label (cacerts)"
st=$(est POST nosuchgroup/cacerts)
refused 404 "unknown label, with a method its operation does not take"

# ---- simpleenroll by HTTP Basic with a group-derived key, the label naming the group ----
GK=$(new_key)
st=$(admjson PUT /enrollmentGroups/est-sym "{\"enrollmentGroupId\":\"est-sym\",\"attestation\":
    {\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$GK\"}}}")
assert_eq 200 "$st" "PUT group est-sym: $(cat "$WORK/body")"
DK=$(b64_hmac "$GK" est-g1)
csr g1 est-g1
st=$(enroll est-sym/simpleenroll g1 -u "est-g1:$DK")
assert_eq 200 "$st" "simpleenroll with the label and a derived key: $(cat "$WORK/body")"
leaf g1
verified g1 est-g1
st=$(admjson POST /registrations/est-sym/query '{"query":"*"}')
assert_eq est-g1 "$(jb '.[0].registrationId')" "the group's registrations"
st=$(enroll est-sym/simpleenroll g1 -u "est-g1:$KEY")
refused 401 "a key the group did not derive"
st=$(est GET est-sym/cacerts)
assert_eq 200 "$st" "cacerts with a label"

# ---- simpleenroll with a manufacturer certificate chaining to an X.509 group's CA ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/mroot.key" \
    -out "$O/mroot.pem" -subj "/CN=Manufacturer Root" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/m1.key" \
    -subj "/CN=est-m1" -out "$O/m1.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
    >"$O/leaf.cnf"
openssl x509 -req -in "$O/m1.csr" -CA "$O/mroot.pem" -CAkey "$O/mroot.key" -CAcreateserial \
    -days 30 -extfile "$O/leaf.cnf" -out "$O/m1.pem" 2>/dev/null
doc=$(jq -nc --rawfile c "$O/mroot.pem" '{enrollmentGroupId:"est-x509",attestation:{type:"x509",
    x509:{signingCertificates:{primary:{certificate:$c}}}}}')
st=$(admjson PUT /enrollmentGroups/est-x509 "$doc")
assert_eq 200 "$st" "PUT group est-x509: $(cat "$WORK/body")"
csr m1new est-m1
st=$(enroll est-x509/simpleenroll m1new --cert "$O/m1.pem" --key "$O/m1.key")
assert_eq 200 "$st" "simpleenroll with a manufacturer certificate: $(cat "$WORK/body")"
leaf m1new
verified m1new est-m1
audit_has est.simpleenroll est-m1 accepted
st=$(enroll est-sym/simpleenroll m1new --cert "$O/m1.pem" --key "$O/m1.key")
refused 401 "manufacturer certificate with the label of another group"
st=$(enroll simpleenroll m1new --cert "$O/m1.pem" --key "$O/m1.key")
assert_eq 200 "$st" "simpleenroll with a manufacturer certificate, no label"
cp "$O/m1new.pem" "$O/m1old.pem"
leaf m1new
# A certificate with two CNs names no registration ID, and the answer says what one needs.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/m2cn.key" \
    -subj "/CN=est-m1/CN=est-m2" -out "$O/m2cn.csr" 2>/dev/null
openssl x509 -req -in "$O/m2cn.csr" -CA "$O/mroot.pem" -CAkey "$O/mroot.key" -CAcreateserial \
    -days 30 -extfile "$O/leaf.cnf" -out "$O/m2cn.pem" 2>/dev/null
st=$(enroll est-x509/simpleenroll m1new --cert "$O/m2cn.pem" --key "$O/m2cn.key")
refused 401 "manufacturer certificate with two CNs"
assert_match 'no single CN of 1 to 128 characters of text' "$(cat "$WORK/body")" "two CNs: reason"

# ---- an individual enrollment takes precedence over a label ----
# est-dev1 has an individual enrollment: the key est-sym derives for it does not enroll it.
csr d1sym est-dev1
st=$(enroll est-sym/simpleenroll d1sym -u "est-dev1:$(b64_hmac "$GK" est-dev1)")
refused 403 "a label naming a group, for a device with an individual enrollment"
assert_match 'individual enrollment' "$(cat "$WORK/body")" "label refusal: reason"
audit_has est.simpleenroll est-dev1 refused
# So is its own key; but credentials that prove nothing learn nothing: 401, as for a device
# without any enrollment.
st=$(enroll est-sym/simpleenroll d1sym -u "est-dev1:$KEY")
refused 403 "a label, for a device with an individual enrollment, its own key"
for id in est-dev1 est-nobody; do
    st=$(enroll est-sym/simpleenroll d1sym -u "$id:$(new_key)")
    refused 401 "a label and a wrong key for $id"
    assert_match 'no enrollment or enrollment group key' "$(cat "$WORK/body")" \
        "a label and a wrong key for $id: reason"
    # A certificate of the device's own making, with the label of an X.509 group.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/self-$id.key" \
        -out "$O/self-$id.pem" -subj "/CN=$id" -days 1 2>/dev/null
    csr "selfcsr-$id" "$id"
    st=$(enroll est-x509/simpleenroll "selfcsr-$id" --cert "$O/self-$id.pem" \
        --key "$O/self-$id.key")
    refused 401 "a label and a self-made certificate for $id"
    cp "$WORK/body" "$WORK/self-$id.reason"
done
assert_eq "$(cat "$WORK/self-est-nobody.reason")" "$(cat "$WORK/self-est-dev1.reason")" \
    "a label and a self-made certificate: the same reason with or without an enrollment"

# ---- simplereenroll with the provd certificate ----
csr g1re est-g1
st=$(enroll simplereenroll g1re --cert "$O/g1.pem" --key "$O/g1.key")
assert_eq 200 "$st" "simplereenroll: $(cat "$WORK/body")"
leaf g1re
verified g1re est-g1
[ "$(serial g1)" != "$(serial g1re)" ] || fail "simplereenroll: the serial did not change"
audit_has est.simplereenroll est-g1 accepted
csr g1other est-g1 "/CN=est-g1/O=Other"
st=$(enroll simplereenroll g1other --cert "$O/g1re.pem" --key "$O/g1re.key")
refused 400 "simplereenroll with another subject"
# The same subject, other names: RFC 7030 (4.2.2) wants the subjectAltName kept too.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/g1san.key" \
    -subj /CN=est-g1 -addext "subjectAltName=URI:urn:provd:device:someone-else" -outform DER \
    -out "$O/g1san.der" 2>/dev/null
openssl base64 -in "$O/g1san.der" -out "$O/g1san.b64"
st=$(enroll simplereenroll g1san --cert "$O/g1re.pem" --key "$O/g1re.key")
refused 400 "simplereenroll with another subjectAltName"
grep -q "subjectAltName is not the one of the current certificate" "$WORK/body" ||
    fail "simplereenroll with another subjectAltName: $(cat "$WORK/body")"
st=$(enroll simplereenroll g1re --cert "$O/m1new.pem" --key "$O/m1new.key")
refused 400 "simplereenroll with the CSR of another device"
csr m1re est-m1
st=$(enroll simplereenroll m1re --cert "$O/m1.pem" --key "$O/m1.key")
refused 403 "simplereenroll with the manufacturer certificate"
st=$(enroll simplereenroll g1re -u "est-g1:$DK")
refused 401 "simplereenroll with HTTP Basic"
# Only the certificate issued last attests the device: not g1, which g1re replaced, nor the
# first certificate of est-m1.
st=$(enroll simplereenroll g1re --cert "$O/g1.pem" --key "$O/g1.key")
refused 403 "simplereenroll with the certificate the device had before"
st=$(enroll simpleenroll g1re --cert "$O/g1.pem" --key "$O/g1.key")
refused 401 "simpleenroll with the certificate the device had before"
st=$(enroll simplereenroll m1re --cert "$O/m1old.pem" --key "$O/m1new.key")
refused 403 "simplereenroll with est-m1's first certificate"
# est-g1 is registered under est-sym: the label of another group is refused for it.
st=$(enroll est-x509/simplereenroll g1re --cert "$O/g1re.pem" --key "$O/g1re.key")
refused 403 "simplereenroll with the label of a group the device is not registered under"
assert_match 'registered under another enrollment' "$(cat "$WORK/body")" \
    "simplereenroll with another group's label: reason"
st=$(admreq POST "/certificates/$(serial g1re)/revoke" -H 'Content-Type: application/json' \
    --data-binary '{"reason":"keyCompromise"}')
assert_eq 200 "$st" "revoke the re-enrolled certificate: $(cat "$WORK/body")"
st=$(enroll simplereenroll g1re --cert "$O/g1re.pem" --key "$O/g1re.key")
refused 401 "simplereenroll with a revoked certificate"
audit_has est.simplereenroll est-g1 refused

# ---- a device whose device ID is not its registration ID re-enrolls ----
# Its certificate's CN is the device ID; provd knows the certificate, so it attests the device.
KEY7=$(new_key)
st=$(admjson PUT /enrollments/est-dev7 "{\"registrationId\":\"est-dev7\",\"deviceId\":\"dev-seven\",
    \"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY7\"}}}")
assert_eq 200 "$st" "PUT enrollment est-dev7"
csr d7 est-dev7
st=$(enroll simpleenroll d7 -u "est-dev7:$KEY7")
assert_eq 200 "$st" "simpleenroll est-dev7: $(cat "$WORK/body")"
leaf d7
assert_match 'CN ?= ?dev-seven' "$(openssl x509 -in "$O/d7.pem" -noout -subject)" "est-dev7: CN"
csr d7re dev-seven
st=$(enroll simplereenroll d7re --cert "$O/d7.pem" --key "$O/d7.key")
assert_eq 200 "$st" "simplereenroll est-dev7 with CN dev-seven: $(cat "$WORK/body")"
leaf d7re
verified d7re dev-seven
audit_has est.simplereenroll est-dev7 accepted
st=$(enroll simplereenroll d7re --cert "$O/d7.pem" --key "$O/d7.key")
refused 403 "simplereenroll with the certificate est-dev7 had before"
st=$(devreq PUT "/$SCOPE/registrations/est-dev7/register?$API" --cert "$O/d7re.pem" \
    --key "$O/d7re.key" -H 'Content-Type: application/json' \
    --data-binary '{"registrationId":"est-dev7"}')
assert_eq 200 "$st" "DPS register of est-dev7 with its certificate: $(cat "$WORK/body")"
assert_eq dev-seven "$(jb .registrationState.deviceId)" "est-dev7: device ID"
st=$(devreq PUT "/$SCOPE/registrations/dev-seven/register?$API" --cert "$O/d7re.pem" \
    --key "$O/d7re.key" -H 'Content-Type: application/json' \
    --data-binary '{"registrationId":"dev-seven"}')
assert_eq 401 "$st" "DPS register as dev-seven with est-dev7's certificate"

# Two re-enrollments with the same current certificate at once (a device that retried): the
# second is decided again after the first is stored, and its certificate, current when it came,
# still attests it. The sqlite3 shell holds the write lock until both are decided.
if command -v sqlite3 >/dev/null; then
    decided="est.simplereenroll subject=est-dev7 outcome=accepted"
    n0=$(grep -c -- "$decided" "$WORK/provd.log" || true)
    hold_write_lock
    declare -A pids
    for n in a b; do
        csr "d7$n" dev-seven
        curl -s --cacert "$CA" -o "$WORK/re-$n.b64" -w '%{http_code}' --cert "$O/d7re.pem" \
            --key "$O/d7re.key" -H 'Content-Type: application/pkcs10' \
            --data-binary "@$O/d7$n.b64" "$DEV/.well-known/est/simplereenroll" \
            >"$WORK/re-$n.status" &
        pids[$n]=$!
    done
    wait_decisions $((n0 + 2)) "$decided"
    release_write_lock
    for n in a b; do
        wait "${pids[$n]}" || true
        assert_eq 200 "$(cat "$WORK/re-$n.status")" \
            "simplereenroll $n at the same time: $(cat "$WORK/re-$n.b64")"
    done
fi
# A device whose individual enrollment was deleted: its certificate no longer attests it.
KEY8=$(new_key)
st=$(admjson PUT /enrollments/est-dev8 "{\"registrationId\":\"est-dev8\",\"attestation\":
    {\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY8\"}}}")
assert_eq 200 "$st" "PUT enrollment est-dev8"
csr d8 est-dev8
st=$(enroll simpleenroll d8 -u "est-dev8:$KEY8")
assert_eq 200 "$st" "simpleenroll est-dev8: $(cat "$WORK/body")"
leaf d8
st=$(admreq DELETE /enrollments/est-dev8)
assert_eq 204 "$st" "DELETE enrollment est-dev8"
st=$(enroll simplereenroll d8 --cert "$O/d8.pem" --key "$O/d8.key")
refused 401 "simplereenroll after the enrollment was deleted"
assert_match 'neither an individual enrollment nor a registration' "$(cat "$WORK/body")" \
    "simplereenroll after the enrollment was deleted: reason"
# Revoking by device ID is audited about the registration ID.
st=$(admreq POST /certificates/revoke -H 'Content-Type: application/json' \
    --data-binary '{"deviceId":"dev-seven"}')
assert_eq 200 "$st" "revoke dev-seven's certificates: $(cat "$WORK/body")"
audit_has certificate.revoke est-dev7 accepted

# ---- serverkeygen ----
csr k1 est-dev2
KEY2=$(new_key)
st=$(admjson PUT /enrollments/est-dev2 "{\"registrationId\":\"est-dev2\",\"attestation\":
    {\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"$KEY2\"}}}")
assert_eq 200 "$st" "PUT enrollment est-dev2"
st=$(enroll serverkeygen k1 -u "est-dev2:$KEY2")
assert_eq 200 "$st" "serverkeygen: $(cat "$WORK/body")"
ct=$(header content-type)
assert_match '^multipart/mixed; boundary=' "$ct" "serverkeygen: Content-Type"
B=${ct#*boundary=}
# part N: the body of the Nth part (headers up to the first empty line dropped).
part() {
    tr -d '\r' <"$WORK/body" | awk -v b="--$B" -v n="$1" '
        $0 == b || $0 == b "--" { i++; inhdr = 1; next }
        i == n && inhdr && $0 == "" { inhdr = 0; next }
        i == n && inhdr { print > "/dev/stderr"; next }
        i == n { print }'
}
part 1 2>"$O/p1.hdr" | tr -d '\n' | openssl base64 -d -A -out "$O/k1srv.der"
part 2 2>"$O/p2.hdr" | tr -d '\n' | openssl base64 -d -A | openssl pkcs7 -inform DER -print_certs -out "$O/k1.pem"
grep -qi '^Content-Type: application/pkcs8$' "$O/p1.hdr" || fail "part 1 type: $(cat "$O/p1.hdr")"
grep -qi '^Content-Type: application/pkcs7-mime; smime-type=certs-only$' "$O/p2.hdr" ||
    fail "part 2 type: $(cat "$O/p2.hdr")"
tail -c 40 "$WORK/body" | tr -d '\r' | grep -qx -- "--$B--" || fail "closing boundary"
verified k1 est-dev2
openssl pkey -inform DER -in "$O/k1srv.der" -out "$O/k1srv.pem"
grep -q "ASN1 OID: prime256v1" <<<"$(openssl pkey -in "$O/k1srv.pem" -noout -text)" ||
    fail "serverkeygen: not a P-256 key"
assert_eq "$(openssl pkey -in "$O/k1srv.pem" -pubout)" \
    "$(openssl x509 -in "$O/k1.pem" -noout -pubkey)" "serverkeygen: the key is the certificate's"
[ "$(openssl pkey -in "$O/k1.key" -pubout)" != "$(openssl x509 -in "$O/k1.pem" -noout -pubkey)" ] ||
    fail "serverkeygen certified the CSR's key"
audit_has est.serverkeygen est-dev2 accepted
# mem_count PID TEXT: the lines of process PID's writable memory holding TEXT (mappings over
# 256 MiB, such as a sanitizer's shadow memory, are left out).
mem_count() {
    local n=0 c range perms lo hi
    while read -r range perms _; do
        [[ $perms == rw* ]] || continue
        lo=$((16#${range%-*}))
        hi=$((16#${range#*-}))
        [ $((hi - lo)) -le $((256 << 20)) ] || continue
        c=$(dd if="/proc/$1/mem" bs=4096 skip=$((lo / 4096)) count=$(((hi - lo) / 4096)) \
            2>/dev/null | grep -a -c -F -- "$2") || true
        n=$((n + c))
    done <"/proc/$1/maps"
    echo "$n"
}
# provd keeps no copy of the key it made once the answer is sent and the connection closed.
if [ -r "/proc/$PROVD_PID/mem" ]; then
    # Characters of the private key itself: those before are the same for every P-256 key.
    needle=$(openssl base64 -A -in "$O/k1srv.der" | cut -c 61-108)
    [ ${#needle} -eq 48 ] || fail "serverkeygen: no key to look for ($needle)"
    for _ in $(seq 30); do
        [ "$(mem_count "$PROVD_PID" "$needle")" -eq 0 ] && break
        sleep 0.1
    done
    assert_eq 0 "$(mem_count "$PROVD_PID" "$needle")" "serverkeygen: the key left in provd's memory"
else
    echo "note: provd's memory cannot be read here; the serverkeygen wipe is not checked"
fi
st=$(admreq GET "/certificates?registrationId=est-dev2")
assert_eq "$(serial k1)" "$(jb '.certificates[0].serialNumber')" "serverkeygen: stored"
st=$(enroll serverkeygen wrongcn -u "est-dev2:$KEY2")
refused 400 "serverkeygen with another CN"
st=$(enroll serverkeygen k1 -u "est-dev2:$KEY")
refused 401 "serverkeygen with a wrong password"
# The device is authenticated before its CSR is looked at (or a key pair made for it).
st=$(enroll serverkeygen wrongcn -u "est-dev2:$KEY")
refused 401 "serverkeygen with a wrong password and a CSR of another CN"

echo "PASS: EST"
