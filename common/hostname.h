/* Host name rules for the endpoints devices are assigned to (RFC 1123): 1-253 characters in
 * labels of 1-63 letters, digits and hyphens separated by dots, no label starting or ending with
 * a hyphen. Dotted IPv4 addresses follow the same rules. Compared without regard to case and
 * stored lower-cased (regid_lower does that). */
#ifndef PROV_COMMON_HOSTNAME_H
#define PROV_COMMON_HOSTNAME_H

#define HOSTNAME_MAX 253

/* Returns 0 when s is a valid host name, else -1 with *why (when not NULL) set to a static
 * reason naming the rule broken. */
int hostname_check(const char *s, const char **why);

#endif
