/* Registration ID rules (DESIGN.md): 1-128 characters of a-z A-Z 0-9 - . _ : that neither start
 * nor end with one of the special characters. Stored lower-cased. */
#ifndef PROV_COMMON_REGID_H
#define PROV_COMMON_REGID_H

#define REGID_MAX 128

/* Returns 0 when id is a valid registration ID, else -1 with *why (when not NULL) set to a
 * static reason naming the rule broken. */
int regid_check(const char *id, const char **why);

/* Lower-cases id in place (ASCII only; valid IDs are ASCII). */
void regid_lower(char *id);

#endif
