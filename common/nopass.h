/* The passphrase callback of OpenSSL's PEM readers, for text that is never encrypted. */
#ifndef PROV_COMMON_NOPASS_H
#define PROV_COMMON_NOPASS_H

/* Gives no passphrase, so that a PEM block with encryption headers fails to load: without a
 * callback, OpenSSL asks for one on the terminal or standard input, which blocks the thread of an
 * unattended program. Returns -1. */
int pem_no_passphrase(char *buf, int size, int rwflag, void *u);

#endif
