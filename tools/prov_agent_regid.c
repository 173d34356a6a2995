/* Registration IDs a device can find on itself, for fleets that do not write one per device:
 * the systemd machine ID, the host name, or the MAC address of its first network interface. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "prov_agent.h"

#define MACHINE_ID_FILE "/etc/machine-id"
#define SYS_NET         "/sys/class/net"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Reads the first line of path (without its newline) into buf. Returns 0, or -1 with errno. */
static int read_line(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "re");
    int rc = -1;

    if (f == NULL)
        return -1;
    if (fgets(buf, (int)len, f) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        rc = 0;
    } else {
        errno = EIO;
    }
    fclose(f);
    return rc;
}

/* The machine ID: 32 hexadecimal digits, used as they are (lower-cased). */
static char *from_machine_id(char *err, size_t errlen) {
    char line[64];
    size_t i;

    if (read_line(MACHINE_ID_FILE, line, sizeof(line)) != 0) {
        set_err(err, errlen, "cannot read %s: %s", MACHINE_ID_FILE, strerror(errno));
        return NULL;
    }
    for (i = 0; line[i] != '\0'; i++) {
        if (!is_hex(line[i]))
            break;
        line[i] = lower(line[i]);
    }
    if (i != 32 || line[i] != '\0') {
        set_err(err, errlen, "%s does not hold a machine ID (32 hexadecimal digits)",
                MACHINE_ID_FILE);
        return NULL;
    }
    return strdup(line);
}

/* The host names every device may have: they name no device in particular. Compared without
 * regard to case, as host names are. */
static int generic_hostname(const char *name) {
    static const char *const generic[] = {"localhost", "localhost.localdomain", "(none)"};
    size_t i;

    if (name[0] == '\0')
        return 1;
    for (i = 0; i < sizeof(generic) / sizeof(generic[0]); i++) {
        if (strcasecmp(name, generic[i]) == 0)
            return 1;
    }
    return 0;
}

/* The host name, which must name this device rather than any device. */
static char *from_hostname(char *err, size_t errlen) {
    char name[256];

    if (gethostname(name, sizeof(name)) != 0) {
        set_err(err, errlen, "cannot get the host name: %s", strerror(errno));
        return NULL;
    }
    name[sizeof(name) - 1] = '\0';
    if (generic_hostname(name)) {
        set_err(err, errlen, "the host name \"%s\" does not identify this device", name);
        return NULL;
    }
    return strdup(name);
}

/* Parses "aa:bb:cc:dd:ee:ff" into 12 lower-case hex digits in out. Returns 0 for a usable
 * address (six bytes, not all zero), else -1. */
static int mac_digits(const char *addr, char out[13]) {
    int i, nonzero = 0;

    if (strlen(addr) != 17)
        return -1;
    for (i = 0; i < 6; i++) {
        const char *p = addr + i * 3;

        if (!is_hex(p[0]) || !is_hex(p[1]) || (i < 5 && p[2] != ':'))
            return -1;
        out[i * 2] = lower(p[0]);
        out[i * 2 + 1] = lower(p[1]);
        nonzero |= p[0] != '0' || p[1] != '0';
    }
    out[12] = '\0';
    return nonzero ? 0 : -1;
}

/* Orders interface names by bytes, whatever the locale, so that "first" means the same on
 * every device. */
static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* The MAC address of the first interface by name other than the loopback, whose address is
 * a real one (interfaces without a hardware address, such as tunnels, are skipped). */
static char *from_mac(char *err, size_t errlen) {
    struct dirent **names = NULL;
    char path[512], addr[64], digits[13];
    int n, i, found = 0;

    n = scandir(SYS_NET, &names, NULL, by_name);
    if (n < 0) {
        set_err(err, errlen, "cannot list %s: %s", SYS_NET, strerror(errno));
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const char *ifname = names[i]->d_name;

        if (found || ifname[0] == '.' || strcmp(ifname, "lo") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s/address", SYS_NET, ifname);
        if (read_line(path, addr, sizeof(addr)) == 0 && mac_digits(addr, digits) == 0)
            found = 1;
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!found) {
        set_err(err, errlen, "no network interface with a MAC address in %s", SYS_NET);
        return NULL;
    }
    return strdup(digits);
}

char *agent_regid_from(const char *source, char *err, size_t errlen) {
    char *id;

    err[0] = '\0';
    if (strcmp(source, "machine-id") == 0)
        id = from_machine_id(err, errlen);
    else if (strcmp(source, "hostname") == 0)
        id = from_hostname(err, errlen);
    else if (strcmp(source, "mac") == 0)
        id = from_mac(err, errlen);
    else {
        set_err(err, errlen, "registration-id-from must be machine-id, hostname or mac, not \"%s\"",
                source);
        return NULL;
    }
    if (id == NULL && err[0] == '\0')
        set_err(err, errlen, "out of memory");
    return id;
}
