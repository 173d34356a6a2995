#!/usr/bin/env python3
"""Writes the requests of tests/data/csr whose public key is invalid or badly encoded, each signed
so that its signature verifies with that key whenever OpenSSL 3.0 can verify it (README.md).

usage: bad-keys.py DIR   (needs python3-cryptography; the keys are thrown away)

The DER is assembled here, since no library makes these requests: that is the point of them."""
import base64
import hashlib
import math
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b


def tlv(tag, value):
    return bytes([tag]) + length(len(value)) + value


def seq(*items):
    return tlv(0x30, b''.join(items))


def integer(n):
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, 'big'))


def oid(text):
    arcs = [int(x) for x in text.split('.')]
    out = bytes([40 * arcs[0] + arcs[1]])
    for v in arcs[2:]:
        enc = [v & 0x7f]
        v >>= 7
        while v:
            enc.insert(0, 0x80 | (v & 0x7f))
            v >>= 7
        out += bytes(enc)
    return tlv(0x06, out)


NULL = b'\x05\x00'
RSA_ENCRYPTION = '1.2.840.113549.1.1.1'
SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), NULL)


def bits(b):
    return tlv(0x03, b'\x00' + b)


def info(spki):
    name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, b'device-0001'))))
    return seq(integer(0), name, spki, b'\xa0\x00')


def request(inf, sig_alg, sig):
    return seq(inf, sig_alg, bits(sig))


def rsa_spki(n, e, alg=RSA_ENCRYPTION, junk=b''):
    return seq(seq(oid(alg), NULL), bits(seq(integer(n), integer(e)) + junk))


def pkcs1_sign(inf, n, d):
    """An RSASSA-PKCS1-v1_5 SHA-256 signature of inf by the raw exponent d modulo n."""
    k = (n.bit_length() + 7) // 8
    digest_info = bytes.fromhex('3031300d060960864801650304020105000420') + hashlib.sha256(inf).digest()
    em = b'\x00\x01' + b'\xff' * (k - 3 - len(digest_info)) + b'\x00' + digest_info
    return pow(int.from_bytes(em, 'big'), d, n).to_bytes(k, 'big')


def rsa_raw(n, e, d):
    inf = info(rsa_spki(n, e))
    return request(inf, SHA256_WITH_RSA, pkcs1_sign(inf, n, d))


def rsa_key(e, size):
    return rsa.generate_private_key(e, size).private_numbers()


def e1():
    """Exponent 1: the "signature" is the padded digest itself, which anyone can write."""
    return rsa_raw(rsa_key(65537, 2048).public_numbers.n, 1, 1)


def e3():
    """A real key, but with the exponent 3, below the 65537 of FIPS 186-5 and SP 800-89."""
    k = rsa_key(3, 2048)
    return rsa_raw(k.public_numbers.n, 3, k.d)


def even_modulus():
    """Twice a 2047-bit modulus: a key of 2048 bits that is not an RSA modulus."""
    k = rsa_key(65537, 2047)
    lam = math.lcm(k.p - 1, k.q - 1)
    return rsa_raw(2 * k.p * k.q, 65537, pow(65537, -1, lam))


def rsa_signed(spki_of):
    k = rsa.generate_private_key(65537, 2048)
    inf = info(spki_of(k.public_key().public_numbers().n))
    return request(inf, SHA256_WITH_RSA, k.sign(inf, padding.PKCS1v15(), hashes.SHA256()))


def trailing():
    """A valid key with bytes after the RSAPublicKey, inside the BIT STRING."""
    return rsa_signed(lambda n: rsa_spki(n, 65537, junk=b'JUNKJUNK'))


def x500_oid():
    """A valid key labelled id-ea-rsa (2.5.8.1.1) rather than rsaEncryption."""
    return rsa_signed(lambda n: rsa_spki(n, 65537, alg='2.5.8.1.1'))


def hybrid():
    """A P-256 point in hybrid form (0x06 or 0x07), which RFC 5480 does not allow."""
    k = ec.generate_private_key(ec.SECP256R1())
    nums = k.public_key().public_numbers()
    point = bytes([6 | (nums.y & 1)]) + nums.x.to_bytes(32, 'big') + nums.y.to_bytes(32, 'big')
    spki = seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), bits(point))
    inf = info(spki)
    return request(inf, seq(oid('1.2.840.10045.4.3.2')), k.sign(inf, ec.ECDSA(hashes.SHA256())))


def ed25519_identity():
    """The Ed25519 identity point as the key: R the identity and S = 0 verify for any message."""
    identity = b'\x01' + bytes(31)
    ed25519 = seq(oid('1.3.101.112'))
    inf = info(seq(ed25519, bits(identity)))
    return request(inf, ed25519, identity + bytes(32))


FIXTURES = {
    'rsa-e1': e1,
    'rsa-e3': e3,
    'rsa-even-modulus': even_modulus,
    'rsa-key-trailing': trailing,
    'rsa-x500-oid': x500_oid,
    'p256-hybrid': hybrid,
    'ed25519-identity': ed25519_identity,
}

if __name__ == '__main__':
    for name, make in FIXTURES.items():
        with open(os.path.join(sys.argv[1], name + '.b64'), 'w') as f:
            f.write(base64.b64encode(make()).decode())
