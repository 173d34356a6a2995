/* Certificate serial numbers typed by operators. */
#include "certserial.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int cert_serial_parse(const char *in, char out[CERT_SERIAL_MAX]) {
    size_t n;

    if (in == NULL)
        return -1;
    if (strncasecmp(in, "serial=", 7) == 0)
        in += 7;
    n = strlen(in);
    if (n < 2 || n > CERT_SERIAL_MAX - 1 || n % 2 != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)in[i]))
            return -1;
        out[i] = (char)toupper((unsigned char)in[i]);
    }
    out[n] = '\0';
    return 0;
}
