/* Endpoint protocols. See protocol.h. */
#include "protocol.h"

#include <stddef.h>
#include <strings.h>

static const struct {
    const char *name;
    int port;
} PROTOCOLS[] = {
    {"mqtts", 8883}, {"mqtt", 1883},  {"https", 443}, {"http", 80}, {"amqps", 5671},
    {"amqp", 5672},  {"coaps", 5684}, {"coap", 5683}, {"wss", 443}, {"ws", 80},
};

const char *protocol_find(const char *protocol, int *port) {
    for (size_t i = 0; protocol && i < sizeof(PROTOCOLS) / sizeof(PROTOCOLS[0]); i++) {
        if (strcasecmp(protocol, PROTOCOLS[i].name) == 0) {
            *port = PROTOCOLS[i].port;
            return PROTOCOLS[i].name;
        }
    }
    return NULL;
}
