/* The passphrase prompts OpenSSL makes, counted and never answered: a test watches around a call
 * that must not ask anyone for a passphrase. */
#ifndef PROV_TEST_PROMPTS_H
#define PROV_TEST_PROMPTS_H

/* Makes OpenSSL's prompts go to a counter from now on, at zero. */
void prompts_watch(void);

/* Puts OpenSSL's own prompting back and returns how many prompts were made since prompts_watch. */
int prompts_unwatch(void);

#endif
