/* A UI method that counts OpenSSL's passphrase prompts and gives no passphrase. */
#include "prompts.h"

#include <stdlib.h>

#include <openssl/ui.h>

static int prompts;
static const UI_METHOD *saved;
static UI_METHOD *counting;

static int count_prompt(UI *ui, UI_STRING *uis) {
    (void)ui;
    (void)uis;
    prompts++;
    return 0;
}

void prompts_watch(void) {
    if (!(counting = UI_create_method("counting")) ||
        UI_method_set_reader(counting, count_prompt) != 0)
        abort();
    saved = UI_get_default_method();
    UI_set_default_method(counting);
    prompts = 0;
}

int prompts_unwatch(void) {
    UI_set_default_method(saved);
    UI_destroy_method(counting);
    counting = NULL;
    return prompts;
}
