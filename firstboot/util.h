/* SPDX-License-Identifier: MIT */
/* Small shared helpers: cleanup attributes, string vectors, atomic files, exec. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

/* Hand a cleanup-owned pointer to someone else: the variable is cleared so the
 * cleanup handler does nothing. */
#define TAKE_PTR(p)                                                            \
        ({                                                                     \
                __typeof__(p) _tp = (p);                                       \
                (p) = NULL;                                                    \
                _tp;                                                           \
        })
#define TAKE_FD(fd)                                                            \
        ({                                                                     \
                int _tfd = (fd);                                               \
                (fd) = -1;                                                     \
                _tfd;                                                          \
        })

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declare a cleanup helper for a library type whose destructor takes the pointer. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                \
        static inline void func##p(type *p) {                                  \
                if (*p)                                                        \
                        func(*p);                                              \
        }
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* NULL-terminated string vectors. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
int strv_push(char ***l, const char *s);  /* copies s */
bool strv_contains(char *const *l, const char *s);
static inline void strv_freep(char ***l) { strv_free(*l); }
#define _cleanup_strv_free_ _cleanup_(strv_freep)

char *xstrdup_or_null(const char *s);
int asprintf_safe(char **ret, const char *fmt, ...) _printf_(2, 3);
bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);

/* Read a small file (sysfs attribute, /proc entry) into a NUL-terminated buffer with the
 * trailing newline removed. */
int read_one_line_file(const char *path, char **ret);
int read_full_file(const char *path, char **ret, size_t *ret_size);
int read_u64_file(const char *path, uint64_t *ret);

/* Write a file atomically: temporary file in the same directory, fsync, rename, fsync of
 * the directory. The reader sees either the old or the new content, never a mix. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* Removes temporaries of write_file_atomic(path) whose writer died (kill -9). */
void write_file_atomic_cleanup(const char *path);

/* mkdir -p */
int mkdir_parents(const char *path, mode_t mode);

/* Run argv (argv[0] searched in PATH) with stdin from /dev/null and stdout+stderr captured
 * (up to 64 KiB kept). Returns the exit status (>= 0), 128+signal if killed, or -errno if
 * it could not be started. */
int run_command(char *const argv[], char **ret_output);
/* The same, handing each chunk of output to on_output as it arrives (progress, logs). */
int run_command_stream(char *const argv[], void (*on_output)(void *userdata, const char *buf, size_t n),
                       void *userdata);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void hex_encode(const uint8_t *b, size_t n, char *out);
/* Exactly 2n hex digits (either case) into n bytes; ret untouched on -EINVAL. */
int hex_decode(const char *s, uint8_t *ret, size_t n);

/* "52:54:00:ab:cd:ef" (either case) <-> 6 bytes. */
int parse_mac(const char *s, uint8_t ret[6]);
const char *format_mac(const uint8_t mac[6], char buf[static 18]);

/* Format a byte count for humans: "512 MiB", "1.8 TiB". buf must hold 16 bytes. */
const char *format_bytes(uint64_t bytes, char buf[static 16]);
