/* SPDX-License-Identifier: MIT */
/* cmocka group fixture shared by imagebuild's tests: a scratch directory under /tmp,
 * removed with everything in it afterwards. */
#pragma once

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline int tmpdir_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        return remove(p);
}

/* *state becomes "/tmp/NAME.XXXXXX" (made). */
static inline int tmpdir_setup(void **state, const char *name) {
        char *dir = NULL;

        if (asprintf(&dir, "/tmp/%s.XXXXXX", name) < 0)
                return -1;
        if (!mkdtemp(dir)) {
                free(dir);
                return -1;
        }
        *state = dir;
        return 0;
}

static inline int tmpdir_teardown(void **state) {
        nftw(*state, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(*state);
        return 0;
}
