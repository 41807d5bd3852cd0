/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The only mutable global: it mirrors the parsed -v/-q command-line flags. */
static enum log_level max_level = LOG_LEVEL_INFO;

/* Set once by a program that links this library under another name (imagebuild). */
static const char *program = "firstboot";

void log_set_max_level(enum log_level l) { max_level = l; }
void log_set_program(const char *name) { program = name; }
enum log_level log_get_max_level(void) { return max_level; }

int log_internal(enum log_level level, int error, const char *fmt, ...) {
        static const char *const prefix[] = {
                [LOG_LEVEL_ERR] = "error: ",
                [LOG_LEVEL_WARNING] = "warning: ",
                [LOG_LEVEL_INFO] = "",
                [LOG_LEVEL_DEBUG] = "debug: ",
        };
        int e = error < 0 ? -error : error;

        if (level <= max_level) {
                va_list ap;
                int saved = errno;

                /* glibc's %m prints strerror(errno): make it name the error we were given. */
                if (e)
                        errno = e;
                fputs(program, stderr);
                fputs(": ", stderr);
                fputs(prefix[level], stderr);
                va_start(ap, fmt);
                vfprintf(stderr, fmt, ap);
                va_end(ap);
                fputc('\n', stderr);
                errno = saved;
        }
        return -e;
}
