/* SPDX-License-Identifier: MIT */
#include "diag.h"

#include "log.h"

#define DIAG_MAX 100

int diag_push(struct diag *d, const char *fmt, ...) {
        char *msg, **l;
        va_list ap;
        int r;

        if (!d)
                return -EINVAL;
        if (d->n >= DIAG_MAX)
                return -EINVAL;
        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        l = realloc(d->msgs, (d->n + 2) * sizeof(char *));
        if (!l) {
                free(msg);
                return -ENOMEM;
        }
        l[d->n++] = msg;
        l[d->n] = NULL;
        d->msgs = l;
        return -EINVAL;
}

void diag_log(const struct diag *d) {
        for (size_t i = 0; d && i < d->n; i++)
                log_error("%s", d->msgs[i]);
}
