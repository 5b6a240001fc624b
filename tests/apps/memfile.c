/* Test application for `?file` (tests/files.rs, tests/container.rs): reads
 * the in-memory files that envseal made and tries to change them.
 *
 *   memfile VAR...
 *
 * For each VAR, one line, never the contents:
 *
 *   VAR unset
 *   VAR path=PATH len=N fnv=HEX fd=READ wronly=OPEN/WRITE rdwr=OPEN/WRITE trunc=OPEN
 *
 * len and fnv (FNV-1a, 64 bits, in hex) are of the contents read through
 * open(PATH); fd= says whether the descriptor named by PATH is open in this
 * process and reads the same bytes from offset 0 (same/differs/ERRNO);
 * wronly= and rdwr= are the results of open(PATH, O_WRONLY / O_RDWR) and of
 * writing one byte through it (ok or an errno name); trunc= of
 * open(PATH, O_WRONLY|O_TRUNC). Exits 0. Built static for the empty root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *err_name(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EROFS: return "EROFS";
    case EBUSY: return "EBUSY";
    default: return "other";
    }
}

/* Reads all of fd from offset 0 with pread; returns the length or -errno. */
static long read_all(int fd, unsigned char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0 || len + (size_t)n == cap)
            return (long)(len + (size_t)n);
        len += (size_t)n;
    }
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* open(path, flags) then, if asked, write one byte: "OPEN/WRITE" names. */
static void try_write(const char *path, int flags, int do_write, char *out, size_t cap) {
    int fd = open(path, flags);
    if (fd < 0) {
        snprintf(out, cap, "%s", err_name(errno));
        return;
    }
    if (!do_write) {
        snprintf(out, cap, "ok");
        close(fd);
        return;
    }
    ssize_t n = write(fd, "x", 1);
    snprintf(out, cap, "ok/%s", n == 1 ? "ok" : err_name(errno));
    close(fd);
}

int main(int argc, char **argv) {
    static unsigned char a[16 << 20], b[16 << 20];
    for (int i = 1; i < argc; i++) {
        const char *var = argv[i];
        const char *path = getenv(var);
        if (!path) {
            printf("%s unset\n", var);
            continue;
        }
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            printf("%s path=%s open=%s\n", var, path, err_name(errno));
            continue;
        }
        long len = read_all(fd, a, sizeof a);
        close(fd);
        if (len < 0) {
            printf("%s path=%s read=%s\n", var, path, err_name((int)-len));
            continue;
        }
        char fd_state[32] = "none";
        const char *prefix = "/proc/self/fd/";
        if (strncmp(path, prefix, strlen(prefix)) == 0) {
            int inherited = atoi(path + strlen(prefix));
            long len2 = read_all(inherited, b, sizeof b);
            if (len2 < 0)
                snprintf(fd_state, sizeof fd_state, "%s", err_name((int)-len2));
            else
                snprintf(fd_state, sizeof fd_state, "%s",
                         len2 == len && memcmp(a, b, (size_t)len) == 0 ? "same" : "differs");
        }
        char wronly[32], rdwr[32], trunc[32];
        try_write(path, O_WRONLY, 1, wronly, sizeof wronly);
        try_write(path, O_RDWR, 1, rdwr, sizeof rdwr);
        try_write(path, O_WRONLY | O_TRUNC, 0, trunc, sizeof trunc);
        printf("%s path=%s len=%ld fnv=%016llx fd=%s wronly=%s rdwr=%s trunc=%s\n", var, path,
               len, (unsigned long long)fnv1a(a, (size_t)len), fd_state, wronly, rdwr, trunc);
    }
    return 0;
}
