/* Certificate serial numbers as operators and the admin API write them: the hex digits
 * `openssl x509 -serial` prints, one pair per octet, upper-case. */
#ifndef PROV_CERTSERIAL_H
#define PROV_CERTSERIAL_H

#define CERT_SERIAL_MAX 41 /* 20 octets in hex and the NUL */

/* Reads a serial number as typed: hex digits of 1 to 20 octets (an even count), in any case,
 * optionally after "serial=" (what `openssl x509 -serial` prints, any case). Writes the digits
 * upper-case into out. Returns 0, or -1 when in is not such a serial number. */
int cert_serial_parse(const char *in, char out[CERT_SERIAL_MAX]);

#endif
