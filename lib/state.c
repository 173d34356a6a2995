/* The device's state directory: identity.json written atomically and read back with every field
 * checked, so that a crash mid-write or a damaged file is noticed instead of being taken for
 * "never provisioned". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#include "rand.h"

/* What marks the temporary file of an atomic write: ".NAME" TEMP_MARK "XXXXXX". */
#define TEMP_MARK ".tmp-"

#define STATE_VERSION 1
/* A state file holds one result; twice the largest answer is more than any honest one needs. */
#define STATE_MAX ((off_t)PROV_MAX_RESPONSE_BODY * 2)

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;

    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* dir + "/" + name, freed by the caller; NULL when out of memory. */
static char *path_in(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);

    if (p != NULL)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Syncs the directory that holds dir, so that a directory just created survives a crash with
 * the files written into it. Returns 0, or -1 with errbuf set. */
static int sync_parent(const char *dir, char *errbuf, size_t errlen) {
    char *parent = strdup(dir), *slash;
    int fd, rc = -1;

    if (parent == NULL) {
        set_err(errbuf, errlen, "out of memory");
        return -1;
    }
    /* "a/b/" names the same directory as "a/b": its parent is what precedes the last component. */
    for (slash = parent + strlen(parent); slash > parent + 1 && slash[-1] == '/'; slash--)
        slash[-1] = '\0';
    slash = strrchr(parent, '/');
    if (slash == NULL)
        strcpy(parent, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        set_err(errbuf, errlen, "cannot sync %s after creating %s: %s", parent, dir,
                strerror(errno));
    else
        rc = 0;
    if (fd >= 0)
        close(fd);
    free(parent);
    return rc;
}

/* Opens dir, which must exist, as a state directory may be opened: not through a symbolic link
 * in its last component, and only when it belongs to this process's effective user. Another
 * user who owns the directory, or who can replace the link, could swap the files written there
 * (a CA chain, a key) or read them. Returns the directory's descriptor, or -1 with errbuf set
 * and errno that of the failed open (ENOENT for a missing directory). */
static int open_own_dir(const char *dir, char *errbuf, size_t errlen) {
    char *path = strdup(dir), *end, *base;
    struct stat st;
    int fd = -1, err;

    if (path == NULL) {
        set_err(errbuf, errlen, "out of memory");
        errno = ENOMEM;
        return -1;
    }
    /* "link/", "link/." and "link/./" would be followed whatever the flags say: the last
     * component is what precedes the trailing slashes and "." components. */
    for (end = path + strlen(path); end > path + 1;) {
        if (end[-1] == '/' || (end[-1] == '.' && end[-2] == '/'))
            *--end = '\0';
        else
            break;
    }
    /* "x/.." is the parent of whatever x is, a link's target as well. */
    base = strrchr(path, '/');
    if (strcmp(base != NULL ? base + 1 : path, "..") == 0) {
        set_err(errbuf, errlen, "%s ends in \"..\": a state directory must be named itself", dir);
        free(path);
        errno = EINVAL;
        return -1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            set_err(errbuf, errlen,
                    "%s is a symbolic link: a state directory must be a directory itself", dir);
        else
            set_err(errbuf, errlen, "cannot open %s: %s", dir, strerror(err));
        errno = err;
    } else if (fstat(fd, &st) != 0) {
        err = errno;
        set_err(errbuf, errlen, "cannot stat %s: %s", dir, strerror(err));
        close(fd);
        fd = -1;
        errno = err;
    } else if (st.st_uid != geteuid()) {
        set_err(errbuf, errlen,
                "%s belongs to another user (uid %lu, not %lu): a state directory must be its "
                "user's own",
                dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
        close(fd);
        fd = -1;
        errno = EPERM;
    }
    free(path);
    return fd;
}

/* Creates dir (mode 0700) when missing and opens it (open_own_dir); tightens a wider mode to
 * 0700. Returns the directory's descriptor or -1 with errbuf set. */
static int open_state_dir(const char *dir, char *errbuf, size_t errlen) {
    struct stat st;
    int fd;

    if (mkdir(dir, 0700) == 0) {
        if (sync_parent(dir, errbuf, errlen) != 0)
            return -1;
    } else if (errno != EEXIST) {
        set_err(errbuf, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if ((fd = open_own_dir(dir, errbuf, errlen)) < 0)
        return -1;
    if (fstat(fd, &st) != 0 || ((st.st_mode & 077) != 0 && fchmod(fd, 0700) != 0)) {
        set_err(errbuf, errlen, "cannot make %s private (mode 0700): %s", dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The state document: {"version": 1, <the result's JSON>}, indented, with a final newline.
 * Freed by the caller; NULL with *err set on failure. */
static char *state_text(const prov_result *r, prov_err *err) {
    json_t *doc = NULL, *fields = result_to_json_object(r, err);
    char *text = NULL;

    if (fields == NULL)
        return NULL;
    *err = PROV_ERR_NOMEM;
    doc = json_pack("{s:i}", "version", STATE_VERSION);
    if (doc != NULL && json_object_update(doc, fields) == 0)
        text = json_dumps(doc, JSON_INDENT(2));
    if (text != NULL) {
        size_t len = strlen(text);
        char *grown = realloc(text, len + 2);

        if (grown == NULL) {
            free(text);
            text = NULL;
        } else {
            text = grown;
            memcpy(text + len, "\n", 2);
            *err = PROV_OK;
        }
    }
    json_decref(doc);
    json_decref(fields);
    return text;
}

/* Removes name from the directory open as dirfd (named dir in errors) when it is there, then
 * syncs the directory so that the removal survives a crash. Returns PROV_OK or PROV_ERR_IO with
 * errbuf set. */
static prov_err remove_at(int dirfd, const char *dir, const char *name, char *errbuf,
                          size_t errlen) {
    if (unlinkat(dirfd, name, 0) != 0) {
        if (errno == ENOENT)
            return PROV_OK;
        set_err(errbuf, errlen, "cannot remove %s/%s: %s", dir, name, strerror(errno));
        return PROV_ERR_IO;
    }
    if (fsync(dirfd) != 0) {
        set_err(errbuf, errlen, "cannot sync %s after removing %s: %s", dir, name, strerror(errno));
        return PROV_ERR_IO;
    }
    return PROV_OK;
}

/* Removes dir/name when it is there (remove_at), dir being opened as a state directory is
 * (open_own_dir). Returns PROV_OK, PROV_ERR_IO or PROV_ERR_NOMEM with errbuf set. */
static prov_err remove_synced(const char *dir, const char *name, char *errbuf, size_t errlen) {
    prov_err rc;
    int dirfd;

    if ((dirfd = open_own_dir(dir, errbuf, errlen)) < 0) {
        if (errno != ENOENT)
            return errno == ENOMEM ? PROV_ERR_NOMEM : PROV_ERR_IO;
        /* No directory at all: nothing to remove and nothing to sync. */
        set_err(errbuf, errlen, "%s", "");
        return PROV_OK;
    }
    rc = remove_at(dirfd, dir, name, errbuf, errlen);
    close(dirfd);
    return rc;
}

/* Creates a new temporary file for name in the directory open as dirfd: ".NAME" TEMP_MARK and
 * six random letters or digits, mode 0600, never through a link. Returns its descriptor with
 * the name in tmpname (tmplen bytes), or -1 with errno set. */
static int create_temporary(int dirfd, const char *name, char *tmpname, size_t tmplen) {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    char suffix[7];
    int tries, fd = -1, i;

    /* A name another process took meanwhile is passed over, as mkstemp does. */
    for (tries = 0; tries < 100 && fd < 0; tries++) {
        if (rand_bytes(r, sizeof(r)) != 0) {
            errno = EAGAIN;
            return -1;
        }
        for (i = 0; i < 6; i++)
            suffix[i] = chars[r[i] % (sizeof(chars) - 1)];
        suffix[6] = '\0';
        if ((size_t)snprintf(tmpname, tmplen, ".%s" TEMP_MARK "%s", name, suffix) >= tmplen) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = openat(dirfd, tmpname, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
    return fd;
}

static int nonempty(const char *s) {
    return s != NULL && s[0] != '\0';
}

/* Writes len bytes of data as name (mode 0600) atomically in the directory open as dirfd
 * (named dir in errors). The new file is complete and on disk before its name replaces the old
 * one, and the rename is on disk before success is reported: a crash leaves the old file or the
 * new, at worst with a stray temporary file beside it. Every step acts on the directory's
 * descriptor, so that what was checked of the directory is where the file goes. Returns
 * PROV_OK, PROV_ERR_IO or PROV_ERR_NOMEM with errbuf set. */
static prov_err write_at(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                         char *errbuf, size_t errlen) {
    size_t tlen = strlen(name) + sizeof("." TEMP_MARK "XXXXXX");
    char *tmp = malloc(tlen);
    int fd = -1, created = 0;
    prov_err rc = PROV_ERR_IO;

    if (tmp == NULL) {
        set_err(errbuf, errlen, "out of memory");
        return PROV_ERR_NOMEM;
    }
    if ((fd = create_temporary(dirfd, name, tmp, tlen)) < 0) {
        set_err(errbuf, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        goto out;
    }
    created = 1;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        set_err(errbuf, errlen, "cannot write %s/%s: %s", dir, tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(errbuf, errlen, "cannot write %s/%s: %s", dir, tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        set_err(errbuf, errlen, "cannot rename %s/%s to %s: %s", dir, tmp, name, strerror(errno));
        goto out;
    }
    created = 0; /* renamed: nothing left to remove */
    if (fsync(dirfd) != 0) {
        set_err(errbuf, errlen, "cannot sync %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = PROV_OK;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlinkat(dirfd, tmp, 0);
    free(tmp);
    return rc;
}

/* write_at in dir, created when missing and opened as a state directory (open_state_dir). */
static prov_err write_atomic(const char *dir, const char *name, const void *data, size_t len,
                             char *errbuf, size_t errlen) {
    prov_err rc;
    int dirfd;

    if ((dirfd = open_state_dir(dir, errbuf, errlen)) < 0)
        return PROV_ERR_IO;
    rc = write_at(dirfd, dir, name, data, len, errbuf, errlen);
    close(dirfd);
    return rc;
}

prov_err prov_state_prepare(const char *dir, char *errbuf, size_t errlen) {
    char probe[sizeof("." PROV_STATE_FILE TEMP_MARK "XXXXXX")];
    int dirfd = -1, fd = -1;
    prov_err rc = PROV_ERR_IO;

    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0') {
        set_err(errbuf, errlen, "no state directory");
        return PROV_ERR_INVALID_ARG;
    }
    if ((dirfd = open_state_dir(dir, errbuf, errlen)) < 0)
        return PROV_ERR_IO;
    /* Creating a file is what every write needs of the directory; the file stays empty and is
     * not synced, since a crash that leaves it is cleaned up like any other temporary file. */
    if ((fd = create_temporary(dirfd, PROV_STATE_FILE, probe, sizeof(probe))) < 0) {
        set_err(errbuf, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        goto out;
    }
    close(fd);
    if (unlinkat(dirfd, probe, 0) != 0) {
        set_err(errbuf, errlen, "cannot remove %s/%s: %s", dir, probe, strerror(errno));
        goto out;
    }
    rc = PROV_OK;
out:
    close(dirfd);
    return rc;
}

/* A name write_atomic may use inside a state directory: one path component, not hidden (the
 * temporary files are), not empty. */
static int plain_name(const char *name) {
    return name != NULL && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

prov_err prov_state_write_file(const char *dir, const char *name, const void *data, size_t len,
                               char *errbuf, size_t errlen) {
    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0' || !plain_name(name) || (data == NULL && len > 0)) {
        set_err(errbuf, errlen, "no state directory, no plain file name or no data");
        return PROV_ERR_INVALID_ARG;
    }
    return write_atomic(dir, name, data, len, errbuf, errlen);
}

prov_err prov_state_save(const char *dir, const prov_result *result, char *errbuf, size_t errlen) {
    char *text = NULL;
    prov_err rc = PROV_ERR_INVALID_ARG;

    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0' || result == NULL) {
        set_err(errbuf, errlen, "no state directory or no result");
        goto out;
    }
    if (result->status == NULL || strcmp(result->status, "assigned") != 0 ||
        !nonempty(result->registration_id) || !nonempty(result->device_id) ||
        !nonempty(result->assigned_hub)) {
        set_err(errbuf, errlen,
                "only an assigned result with registration ID, device ID and "
                "assigned hub is kept as state");
        goto out;
    }
    text = state_text(result, &rc);
    if (text == NULL) {
        set_err(errbuf, errlen, "cannot render the state: %s", prov_strerror(rc));
        goto out;
    }
    rc = write_atomic(dir, PROV_STATE_FILE, text, strlen(text), errbuf, errlen);
out:
    free(text);
    return rc;
}

prov_err prov_state_save_key(const char *dir, const prov_client *client, char *errbuf,
                             size_t errlen) {
    char *pem = NULL;
    prov_err rc;

    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0') {
        set_err(errbuf, errlen, "no state directory");
        return PROV_ERR_INVALID_ARG;
    }
    if ((rc = prov_client_get_key_pem(client, &pem)) != PROV_OK) {
        set_err(errbuf, errlen, "%s",
                rc == PROV_ERR_INVALID_ARG ? "the client holds no key" : "cannot render the key");
        return rc;
    }
    rc = write_atomic(dir, PROV_STATE_KEY_FILE, pem, strlen(pem), errbuf, errlen);
    request_free_secret(pem);
    return rc;
}

prov_err prov_state_save_certificates(const char *dir, const prov_result *result, char *errbuf,
                                      size_t errlen) {
    prov_err rc;
    int dirfd;

    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0' || result == NULL || result->issued_chain_pem == NULL) {
        set_err(errbuf, errlen, "no state directory or no issued certificate");
        return PROV_ERR_INVALID_ARG;
    }
    /* The directory is checked once, before anything is removed or written there. */
    if ((dirfd = open_state_dir(dir, errbuf, errlen)) < 0)
        return PROV_ERR_IO;
    /* The chain file first: device.pem is what names the device's certificate, and it is never
     * beside a chain file of another issue for long. */
    if (result->issued_ca_pem != NULL)
        rc = write_at(dirfd, dir, PROV_STATE_CHAIN_FILE, result->issued_ca_pem,
                      strlen(result->issued_ca_pem), errbuf, errlen);
    else
        rc = remove_at(dirfd, dir, PROV_STATE_CHAIN_FILE, errbuf, errlen);
    if (rc == PROV_OK)
        rc = write_at(dirfd, dir, PROV_STATE_CERT_FILE, result->issued_chain_pem,
                      strlen(result->issued_chain_pem), errbuf, errlen);
    close(dirfd);
    return rc;
}

prov_err prov_state_remove_file(const char *dir, const char *name, char *errbuf, size_t errlen) {
    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0' || !plain_name(name)) {
        set_err(errbuf, errlen, "no state directory or no plain file name");
        return PROV_ERR_INVALID_ARG;
    }
    return remove_synced(dir, name, errbuf, errlen);
}

/* 1 when name is one of write_atomic's temporary files: "." + a plain name + TEMP_MARK + the six
 * random letters or digits of create_temporary (the mark keeps an operator's ".x.backup" out). */
static int temporary_name(const char *name) {
    size_t len = strlen(name), i, mark = sizeof(TEMP_MARK) - 1;

    if (len < 2 + mark + 6 || name[0] != '.' || name[1] == '.' ||
        memcmp(name + len - 6 - mark, TEMP_MARK, mark) != 0)
        return 0;
    for (i = len - 6; i < len; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            return 0;
    }
    return 1;
}

prov_err prov_state_clean(const char *dir, char *errbuf, size_t errlen) {
    struct dirent *e;
    struct stat st;
    DIR *d = NULL;
    int removed = 0, fd;
    prov_err rc = PROV_ERR_IO;

    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0') {
        set_err(errbuf, errlen, "no state directory");
        return PROV_ERR_INVALID_ARG;
    }
    /* A directory reached through a link, or another user's, is not the state's: what looks
     * like a temporary file of ours there is someone else's file. */
    if ((fd = open_own_dir(dir, errbuf, errlen)) < 0) {
        if (errno != ENOENT)
            return errno == ENOMEM ? PROV_ERR_NOMEM : PROV_ERR_IO;
        set_err(errbuf, errlen, "%s", "");
        return PROV_OK;
    }
    if ((d = fdopendir(fd)) == NULL) {
        set_err(errbuf, errlen, "cannot open %s: %s", dir, strerror(errno));
        close(fd);
        return PROV_ERR_IO;
    }
    for (;;) {
        errno = 0;
        if ((e = readdir(d)) == NULL)
            break;
        /* Only regular files: a directory or a link that happens to match is not ours. */
        if (!temporary_name(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT) {
            set_err(errbuf, errlen, "cannot remove %s/%s: %s", dir, e->d_name, strerror(errno));
            goto out;
        }
        removed = 1;
    }
    if (errno != 0) {
        set_err(errbuf, errlen, "cannot read %s: %s", dir, strerror(errno));
        goto out;
    }
    if (removed && fsync(dirfd(d)) != 0) {
        set_err(errbuf, errlen, "cannot sync %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = PROV_OK;
out:
    closedir(d);
    return rc;
}

prov_err prov_state_check_key(const char *dir, char *errbuf, size_t errlen) {
    static const char *const names[] = {PROV_STATE_KEY_FILE, PROV_STATE_CERT_FILE};
    char *paths[2] = {NULL, NULL}, why[ERRMSG_MAX];
    struct stat st;
    size_t i;
    int mismatch = 0;
    prov_err rc = PROV_ERR_INVALID_ARG;

    set_err(errbuf, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0') {
        set_err(errbuf, errlen, "no state directory");
        return PROV_ERR_INVALID_ARG;
    }
    for (i = 0; i < 2; i++) {
        if ((paths[i] = path_in(dir, names[i])) == NULL) {
            rc = PROV_ERR_NOMEM;
            set_err(errbuf, errlen, "out of memory");
            goto out;
        }
        if (stat(paths[i], &st) != 0) {
            rc = errno == ENOENT ? PROV_ERR_STATE_NOT_FOUND : PROV_ERR_IO;
            set_err(errbuf, errlen, "cannot read %s: %s", paths[i], strerror(errno));
            goto out;
        }
    }
    why[0] = '\0';
    rc = csr_check_cert_pair(paths[1], paths[0], &mismatch, why, sizeof(why));
    /* Files that are there but hold no usable key or certificate are corrupt, like a damaged
     * identity.json. A usable key and a usable certificate of two different provisionings are
     * a pair that does not match, PROV_ERR_CRYPTO as for prov_client_set_client_cert: the
     * caller can tell a damaged file from files mixed up. */
    if (rc == PROV_ERR_CRYPTO && !mismatch)
        rc = PROV_ERR_STATE_CORRUPT;
    if (rc != PROV_OK)
        set_err(errbuf, errlen, "%s", why[0] != '\0' ? why : prov_strerror(rc));
out:
    free(paths[0]);
    free(paths[1]);
    return rc;
}

/* Reads the whole regular file at path (at most STATE_MAX bytes). Returns PROV_OK with *data
 * (NUL-terminated, caller frees) and *len, or an error with errbuf set. */
static prov_err read_file(const char *path, char **data, size_t *len, char *errbuf, size_t errlen) {
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd;
    prov_err rc = PROV_ERR_IO;

    /* O_NONBLOCK: a FIFO in place of the file must fail the check below, not wait for a
     * writer. A regular file reads the same with it. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_err(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? PROV_ERR_STATE_NOT_FOUND : PROV_ERR_IO;
    }
    if (fstat(fd, &st) != 0) {
        set_err(errbuf, errlen, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    rc = PROV_ERR_STATE_CORRUPT;
    if (!S_ISREG(st.st_mode)) {
        set_err(errbuf, errlen, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > STATE_MAX) {
        set_err(errbuf, errlen, "%s is larger than a state file can be", path);
        goto out;
    }
    rc = PROV_ERR_NOMEM;
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        goto out;
    rc = PROV_ERR_IO;
    /* Read to the end rather than trusting st_size, which a concurrent writer could change. */
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(errbuf, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
    rc = PROV_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

/* Sets *slot to a copy of s (NULL stays NULL); -1 when out of memory. */
static int copy_opt(char **slot, const char *s) {
    if (s == NULL)
        return 0;
    *slot = strdup(s);
    return *slot != NULL ? 0 : -1;
}

prov_err prov_state_load(const char *dir, prov_result **result, char *errbuf, size_t errlen) {
    const char *regid = NULL, *devid = NULL, *hub = NULL, *status = NULL, *substatus = NULL;
    const char *created = NULL, *updated = NULL, *etag = NULL, *opid = NULL, *group = NULL;
    json_int_t version = 0;
    json_t *doc = NULL, *payload = NULL;
    json_error_t jerr;
    prov_result *r = NULL;
    char *path = NULL, *data = NULL;
    size_t len = 0;
    prov_err rc = PROV_ERR_INVALID_ARG;

    set_err(errbuf, errlen, "%s", "");
    if (result == NULL || dir == NULL || dir[0] == '\0') {
        set_err(errbuf, errlen, "no state directory or no place for the result");
        return PROV_ERR_INVALID_ARG;
    }
    *result = NULL;
    rc = PROV_ERR_NOMEM;
    if ((path = path_in(dir, PROV_STATE_FILE)) == NULL)
        goto out;
    if ((rc = read_file(path, &data, &len, errbuf, errlen)) != PROV_OK)
        goto out;

    rc = PROV_ERR_STATE_CORRUPT;
    if (len == 0) {
        set_err(errbuf, errlen, "%s is empty", path);
        goto out;
    }
    doc = json_loadb(data, len, 0, &jerr);
    if (doc == NULL) {
        set_err(errbuf, errlen, "%s is not valid JSON: %s (line %d, column %d)", path, jerr.text,
                jerr.line, jerr.column);
        goto out;
    }
    if (json_unpack_ex(doc, &jerr, 0,
                       "{s:I, s:s, s:s, s:s, s:s, s?s, s?s, s?s, s?s, s?s, s?s, s?o}", "version",
                       &version, "registrationId", &regid, "deviceId", &devid, "assignedHub", &hub,
                       "status", &status, "substatus", &substatus, "createdDateTimeUtc", &created,
                       "lastUpdatedDateTimeUtc", &updated, "etag", &etag, "operationId", &opid,
                       "enrollmentGroupId", &group, "payload", &payload) != 0) {
        set_err(errbuf, errlen, "%s: %s", path, jerr.text);
        goto out;
    }
    if (version != STATE_VERSION) {
        set_err(errbuf, errlen, "%s: unknown version %lld", path, (long long)version);
        goto out;
    }
    if (strcmp(status, "assigned") != 0 || !nonempty(regid) || !nonempty(devid) || !nonempty(hub)) {
        set_err(errbuf, errlen,
                "%s: not an assigned identity (status, registrationId, deviceId "
                "or assignedHub wrong)",
                path);
        goto out;
    }

    rc = PROV_ERR_NOMEM;
    if ((r = calloc(1, sizeof(*r))) == NULL || copy_opt(&r->registration_id, regid) != 0 ||
        copy_opt(&r->device_id, devid) != 0 || copy_opt(&r->assigned_hub, hub) != 0 ||
        copy_opt(&r->status, status) != 0 || copy_opt(&r->substatus, substatus) != 0 ||
        copy_opt(&r->created_at, created) != 0 || copy_opt(&r->updated_at, updated) != 0 ||
        copy_opt(&r->etag, etag) != 0 || copy_opt(&r->operation_id, opid) != 0 ||
        copy_opt(&r->enrollment_group_id, group) != 0 ||
        (payload != NULL &&
         ((r->payload = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL ||
          result_payload_fields(r, payload) != 0)))
        goto out;
    *result = r;
    r = NULL;
    rc = PROV_OK;
out:
    if (rc == PROV_ERR_NOMEM)
        set_err(errbuf, errlen, "out of memory");
    prov_result_free(r);
    json_decref(doc);
    free(data);
    free(path);
    return rc;
}
