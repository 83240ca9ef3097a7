/* fileio.c - whole-file reads with a size cap and atomic whole-file writes. */

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

sl_err_t sl_fileio_read(const char *path, size_t max_size, uint8_t **data, size_t *len,
                        char *errstr, size_t errstr_size) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sl_errstr_set(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return SL_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sl_errstr_set(errstr, errstr_size, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return SL_ERR_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        sl_errstr_set(errstr, errstr_size, "%s: is a directory", path);
        close(fd);
        return SL_ERR_IO;
    }
    /* Regular files announce their size; pipes and the like are read until
     * EOF, with the same cap. */
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max_size) {
        sl_errstr_set(errstr, errstr_size, "%s: %lld bytes is over the limit of %zu bytes", path,
                      (long long)st.st_size, max_size);
        close(fd);
        return SL_ERR_TOO_BIG;
    }
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    if (cap > max_size + 1)
        cap = max_size + 1;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        sl_errstr_set(errstr, errstr_size, "%s: out of memory for %zu bytes", path, cap);
        return SL_ERR_NOMEM;
    }
    size_t used = 0;
    for (;;) {
        if (used == cap - 1) {
            /* Full: one more byte decides between EOF and growing. */
            uint8_t probe;
            ssize_t r = read(fd, &probe, 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                break;
            if (r < 0 || used >= max_size) {
                if (r < 0)
                    sl_errstr_set(errstr, errstr_size, "%s: read failed: %s", path,
                                  strerror(errno));
                else
                    sl_errstr_set(errstr, errstr_size, "%s: over the limit of %zu bytes", path,
                                  max_size);
                free(buf);
                close(fd);
                return r < 0 ? SL_ERR_IO : SL_ERR_TOO_BIG;
            }
            size_t ncap = cap <= max_size / 2 ? cap * 2 : max_size + 1;
            uint8_t *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                close(fd);
                sl_errstr_set(errstr, errstr_size, "%s: out of memory for %zu bytes", path, ncap);
                return SL_ERR_NOMEM;
            }
            buf = nbuf;
            cap = ncap;
            buf[used++] = probe;
            continue;
        }
        ssize_t r = read(fd, buf + used, cap - 1 - used);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            sl_errstr_set(errstr, errstr_size, "%s: read failed: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return SL_ERR_IO;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    close(fd);
    buf[used] = 0;
    *data = buf;
    *len = used;
    return SL_OK;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates a fresh temporary next to `path` with O_EXCL and mode 0644, so the
 * umask applies as for any new file (mkstemp would force 0600). */
static int open_temp(const char *path, char *tmp, size_t tmp_size) {
    static _Atomic unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, tmp_size, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

sl_err_t sl_fileio_write_atomic(const char *path, const void *data, size_t len, char *errstr,
                                size_t errstr_size) {
    size_t tmp_size = strlen(path) + 48;
    char *tmp = malloc(tmp_size);
    if (!tmp) {
        sl_errstr_set(errstr, errstr_size, "%s: out of memory", path);
        return SL_ERR_NOMEM;
    }
    int fd = open_temp(path, tmp, tmp_size);
    if (fd < 0) {
        sl_errstr_set(errstr, errstr_size, "%s: cannot create a temporary file: %s", path,
                      strerror(errno));
        free(tmp);
        return SL_ERR_IO;
    }
    const char *what = NULL;
    int saved = 0;
    if (write_all(fd, data, len) != 0)
        what = "write";
    else if (fsync(fd) != 0)
        what = "fsync";
    if (what)
        saved = errno;
    if (close(fd) != 0 && !what) {
        what = "close";
        saved = errno;
    }
    if (!what && rename(tmp, path) != 0) {
        what = "rename";
        saved = errno;
    }
    if (what) {
        unlink(tmp);
        free(tmp);
        sl_errstr_set(errstr, errstr_size, "%s: %s failed: %s", path, what, strerror(saved));
        return SL_ERR_IO;
    }
    free(tmp);
    return SL_OK;
}
