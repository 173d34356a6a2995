/* Unit tests for common/protocol.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol.h"

static void test_find(void **state) {
    (void)state;
    int port = 0;
    assert_string_equal(protocol_find("mqtts", &port), "mqtts");
    assert_int_equal(port, 8883);
    assert_string_equal(protocol_find("AMQPS", &port), "amqps");
    assert_int_equal(port, 5671);
    assert_string_equal(protocol_find("Ws", &port), "ws");
    assert_int_equal(port, 80);
    port = 7;
    assert_null(protocol_find("gopher", &port));
    assert_null(protocol_find("mqtts ", &port));
    assert_null(protocol_find("", &port));
    assert_null(protocol_find(NULL, &port));
    assert_int_equal(port, 7);
}

/* Every protocol PROTOCOL_NAMES lists is known, with a port. */
static void test_names(void **state) {
    (void)state;
    char names[] = PROTOCOL_NAMES;
    int n = 0;
    for (char *save = NULL, *p = strtok_r(names, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        int port = 0;
        if (!protocol_find(p, &port) || port < 1)
            fail_msg("%s is not known", p);
        n++;
    }
    assert_int_equal(n, 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
