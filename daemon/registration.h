/* Registration states as the admin API and the device API show them. */
#ifndef PROVD_REGISTRATION_H
#define PROVD_REGISTRATION_H

#include <jansson.h>

#include "store.h"

/* Builds the DPS DeviceRegistrationState of r: registrationId, deviceId, assignedHub (when
 * assigned), status, substatus, errorCode and errorMessage (when set), createdDateTimeUtc,
 * lastUpdatedDateTimeUtc and etag (when stored). The device API adds its own members (payload,
 * symmetricKey) to the result. Returns a new reference, or NULL when out of memory. */
json_t *registration_view(const struct store_registration *r);

#endif
