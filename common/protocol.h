/* The protocols devices speak to an endpoint, and the port each usually listens on: what provd
 * fills in for an endpoint that names no port, and what provctl compares a stored port with. */
#ifndef PROV_PROTOCOL_H
#define PROV_PROTOCOL_H

/* The protocols, separated by ", ", for messages. */
#define PROTOCOL_NAMES "mqtts, mqtt, https, http, amqps, amqp, coaps, coap, wss, ws"

/* The canonical (lower-case) name of protocol, matched without regard to case, with its usual
 * port in *port; NULL when it is none of PROTOCOL_NAMES. */
const char *protocol_find(const char *protocol, int *port);

#endif
