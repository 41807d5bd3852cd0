/* SPDX-License-Identifier: MIT */
#include "util.h"
#include "log.h"

#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

int strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char *c = strdup(s);
        char **nl;

        if (!c)
                return -ENOMEM;
        nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl) {
                free(c);
                return -ENOMEM;
        }
        nl[n] = c;
        nl[n + 1] = NULL;
        *l = nl;
        return 0;
}

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

char *xstrdup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int asprintf_safe(char **ret, const char *fmt, ...) {
        va_list ap;
        char *p;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&p, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int read_full_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;

                if (alloc - size < 4096) {
                        char *nb;

                        if (alloc > 64 * 1024 * 1024)
                                return -EFBIG;
                        alloc = alloc ? alloc * 2 : 8192;
                        nb = realloc(buf, alloc + 1);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                n = read(fd, buf + size, alloc - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t)n;
        }
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int read_one_line_file(const char *path, char **ret) {
        char *buf;
        int r = read_full_file(path, &buf, NULL);

        if (r < 0)
                return r;
        buf[strcspn(buf, "\n")] = 0;
        *ret = buf;
        return 0;
}

int read_u64_file(const char *path, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        char *end;
        unsigned long long v;
        int r = read_one_line_file(path, &s);

        if (r < 0)
                return r;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int fsync_directory_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

/* A kill -9 between creating the temporary file and renaming it leaves the temporary
 * behind. Its name carries the writer's PID, so the next writer of the same path removes
 * the ones whose writer is gone (and never a live writer's). */
void write_file_atomic_cleanup(const char *path) {
        _cleanup_free_ char *copy = strdup(path), *prefix = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        const char *dir, *base;
        struct dirent *de;
        size_t plen;

        if (!copy)
                return;
        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        dir = dirname(copy);
        if (asprintf_safe(&prefix, "%s.tmp.", base) < 0)
                return;
        plen = strlen(prefix);
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end;
                unsigned long pid;

                if (strncmp(de->d_name, prefix, plen) != 0)
                        continue;
                errno = 0;
                pid = strtoul(de->d_name + plen, &end, 10);
                if (errno != 0 || end == de->d_name + plen || *end != '.' || pid == 0 ||
                    pid > INT_MAX)
                        continue;
                if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        log_debug("Removed %s/%s, left by an interrupted write", dir,
                                  de->d_name);
        }
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        const char *p = data;
        int r;

        write_file_atomic_cleanup(path);
        if (asprintf_safe(&tmp, "%s.tmp.%d.XXXXXX", path, (int)getpid()) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* Set the final mode before any byte is written, so a secret is never readable
         * by others, not even for an instant. */
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }
        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                p += n;
                size -= (size_t)n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        return fsync_directory_of(path);
fail:
        unlink(tmp);
        return r;
}

int run_command_stream(char *const argv[], void (*on_output)(void *userdata, const char *buf, size_t n),
                       void *userdata) {
        int pipefd[2], status;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int e = errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return -e;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        dup2(devnull, STDIN_FILENO);
                dup2(pipefd[1], STDOUT_FILENO);
                dup2(pipefd[1], STDERR_FILENO);
                signal(SIGPIPE, SIG_DFL);
                execvp(argv[0], argv);
                dprintf(STDERR_FILENO, "cannot execute %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(pipefd[1]);
        for (;;) {
                char buf[4096];
                ssize_t n = read(pipefd[0], buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (on_output)
                        on_output(userdata, buf, (size_t)n);
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

struct collected {
        char *buf;
        size_t size, cap;
};

static void collect(void *userdata, const char *buf, size_t n) {
        struct collected *c = userdata;
        size_t k;

        if (!c->buf || c->size >= c->cap)
                return;
        k = n < c->cap - c->size ? n : c->cap - c->size;
        memcpy(c->buf + c->size, buf, k);
        c->size += k;
}

int run_command(char *const argv[], char **ret_output) {
        struct collected c = { .cap = 64 * 1024 };
        int r;

        c.buf = malloc(c.cap + 1);
        r = run_command_stream(argv, collect, &c);
        if (c.buf)
                c.buf[c.size] = 0;
        if (r >= 0 && ret_output)
                *ret_output = TAKE_PTR(c.buf);
        free(c.buf);
        return r;
}

const char *format_bytes(uint64_t bytes, char buf[static 16]) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double)bytes;
        size_t u = 0;

        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, 16, "%llu B", (unsigned long long)bytes);
        else if (v < 10.0 && v != (double)(uint64_t)v)
                snprintf(buf, 16, "%.1f %s", v, units[u]);
        else
                snprintf(buf, 16, "%.0f %s", v, units[u]);
        return buf;
}

void hex_encode(const uint8_t *b, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[b[i] >> 4];
                out[2 * i + 1] = digits[b[i] & 15];
        }
        out[2 * n] = 0;
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)(c | 0x20);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int hex_decode(const char *s, uint8_t *ret, size_t n) {
        _cleanup_free_ uint8_t *buf = malloc(n ? n : 1);

        if (!buf)
                return -ENOMEM;
        if (strlen(s) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                buf[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, buf, n);
        return 0;
}

int parse_mac(const char *s, uint8_t ret[6]) {
        uint8_t mac[6];

        if (strlen(s) != 17)
                return -EINVAL;
        for (size_t i = 0; i < 6; i++) {
                int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

                if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
                        return -EINVAL;
                mac[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, mac, 6);
        return 0;
}

const char *format_mac(const uint8_t mac[6], char buf[static 18]) {
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                 mac[5]);
        return buf;
}
