/* Text that must be UTF-8: messages that quote what a client, a webhook or an operator sent go
 * into JSON, which can hold nothing else. */
#ifndef PROV_UTF8_H
#define PROV_UTF8_H

/* Turns into '?' every byte of the NUL-terminated s that is not part of a well-formed UTF-8
 * character (a stray or truncated sequence, an overlong form, a surrogate, a code point past
 * U+10FFFF), so that a quote cut inside a character, or bytes that were never text, still make
 * a valid string. */
void utf8_repair(char *s);

#endif
