/* SPDX-License-Identifier: MIT */
/* mkfs.ext4 -d (e2fsprogs 1.47.0) copies each source file's inode change time, which is
 * the time the build wrote it and cannot be set, and its access time, which the build's
 * own reads of its directories move: debugfs sets both in the new file system
 * afterwards, by path (mkfs.ext4's inode numbers are its own). */
#include "ext4time.h"

#include <fcntl.h>
#include <fts.h>

#include "log.h"
#include "util.h"

/* debugfs's argument syntax: double quotes, a quote doubled inside them. */
static int fputs_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '\n')
                        return -EINVAL;
                if (*s == '"')
                        fputc('"', f);
                fputc(*s, f);
        }
        fputc('"', f);
        return 0;
}

static int write_commands(FILE *f, const char *tree, time_t epoch, size_t *ret_n) {
        char *paths[] = { (char *)tree, NULL };
        size_t skip = strlen(tree), n = 0;
        FTS *fts;
        FTSENT *e;
        int r = 0;

        fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_NOSTAT, NULL);
        if (!fts)
                return log_error_errno(errno, "cannot walk %s: %m", tree);
        while ((e = fts_read(fts))) {
                const char *rel = e->fts_path + skip;

                if (e->fts_info == FTS_DP)
                        continue;
                if (e->fts_info == FTS_DNR || e->fts_info == FTS_ERR) {
                        r = log_error_errno(-e->fts_errno, "cannot read %s: %m", e->fts_path);
                        break;
                }
                for (size_t k = 0; k < 2; k++) {
                        fputs("sif ", f);
                        if (fputs_quoted(f, rel[0] ? rel : "/") < 0) {
                                r = log_error_errno(-EINVAL, "%s: a file name with a newline "
                                                    "cannot be given to debugfs; rename it",
                                                    e->fts_path);
                                break;
                        }
                        fprintf(f, " %s @%lld\n", k ? "atime" : "ctime", (long long)epoch);
                }
                if (r < 0)
                        break;
                n++;
        }
        fts_close(fts);
        if (r >= 0)
                *ret_n = n;
        return r;
}

struct dfs_output {
        char line[512];
        size_t len;
        unsigned errors;
        char first[512];
};

/* debugfs exits 0 whatever its commands do: anything on its stderr but its banner is
 * a command that failed. */
static void on_output(void *userdata, const char *buf, size_t n) {
        struct dfs_output *o = userdata;

        for (size_t i = 0; i < n; i++) {
                if (buf[i] != '\n') {
                        if (o->len < sizeof o->line - 1)
                                o->line[o->len++] = buf[i];
                        continue;
                }
                o->line[o->len] = 0;
                o->len = 0;
                if (o->line[0] == 0 || startswith(o->line, "debugfs "))
                        continue;
                if (o->errors++ == 0)
                        snprintf(o->first, sizeof o->first, "%s", o->line);
        }
}

int ext4_set_times(const char *image, uint64_t offset, const char *tree, time_t epoch,
                    size_t *ret_n) {
        _cleanup_free_ char *cmds = NULL, *dev = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        struct dfs_output o = {};
        size_t n = 0;
        int fd, r;

        if (asprintf_safe(&cmds, "%s.ctimes.XXXXXX", image) < 0 ||
            asprintf_safe(&dev, "%s?offset=%llu", image, (unsigned long long)offset) < 0)
                return -ENOMEM;
        fd = mkostemp(cmds, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "cannot create %s: %m", cmds);
        f = fdopen(fd, "w");
        if (!f) {
                r = log_error_errno(errno, "cannot open %s: %m", cmds);
                close(fd);
                unlink(cmds);
                return r;
        }
        r = write_commands(f, tree, epoch, &n);
        if (r >= 0 && fflush(f) != 0)
                r = log_error_errno(errno, "cannot write %s: %m", cmds);
        if (r >= 0) {
                /* Its stdout only echoes the commands (tens of thousands of them). */
                char *argv[] = { "sh", "-c", "exec debugfs -w -f \"$1\" \"$2\" >/dev/null", "sh",
                                 cmds, dev, NULL };

                r = run_command_stream(argv, on_output, &o);
                if (r < 0)
                        r = log_error_errno(r, "cannot run debugfs: %m");
                else if (r > 0)
                        r = log_error_errno(-EIO, "debugfs -w -f %s %s failed with exit status "
                                            "%d: %s", cmds, dev, r, o.first);
                else if (o.errors > 0)
                        r = log_error_errno(-EIO, "debugfs could not set %u inode times in "
                                            "%s, the first: %s", o.errors, dev,
                                            o.first);
        }
        unlink(cmds);
        if (r < 0)
                return r;
        if (ret_n)
                *ret_n = n;
        return 0;
}
