/* SPDX-License-Identifier: MIT */
/* `imagebuild build`: spec -> rootfs (mmdebstrap, cached by a hash of its inputs) ->
 * overlay (overlays, firstboot, cluster config, bundle) -> ISO (squashfs live root,
 * grub-mkrescue) and qcow2 (libparted GPT, ext4 root by UUID, GRUB for BIOS and UEFI).
 * Every external command's output goes to DIR/build.log; a failure names the stage and
 * the command. */
#include "build.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <fts.h>
#include <glob.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "bundle.h"
#include "diag.h"
#include "ext4time.h"
#include "gpt.h"
#include "imagespec.h"
#include "log.h"
#include "util.h"

/* Always in the root filesystem: boot, live boot, the installer's tools, and the shared
 * libraries the firstboot binary links (Debian 12 names). */
static const char *const base_packages[] = {
        "linux-image-amd64", "systemd", "systemd-sysv", "udev", "kmod", "live-boot",
        "iproute2", "grub-pc-bin", "grub-efi-amd64-bin", "grub2-common", "e2fsprogs",
        "dosfstools", "cloud-guest-utils", "zstd", "libyaml-0-2", "libnl-3-200", "libnl-route-3-200",
        "libjson-c5", "libsodium23", "libparted2", "libblkid1", "libudev1",
};

struct build {
        const struct image_spec *spec;
        const char *out;
        const char *cache;
        const char *firstboot;
        char *work;
        char *root;
        char *log_path;
        int log_fd;
        unsigned stage;
        unsigned n_stages;
        const char *stage_name;
        struct timespec stage_start;
        bool reproducible;      /* SOURCE_DATE_EPOCH is set */
        time_t epoch;
        char key[65];           /* rootfs cache key */
        const char *scratch;    /* --work: scratch space, and the unpacked bases */
        char *base;             /* the unpacked rootfs: the lower layer */
        char *top;              /* what this build adds: the upper layer */
        char *ovl_work;
        char *base_sq;          /* cached squashfs of base */
        bool ovl_mounted;       /* root = overlay of top on base */
        char root_uuid[37];
        double stage_secs[16];
        const char *stage_names[16];
};

static double elapsed(const struct timespec *t0) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static _printf_(2, 3) void blog(struct build *b, const char *fmt, ...) {
        va_list ap;

        if (b->log_fd < 0)
                return;
        va_start(ap, fmt);
        vdprintf(b->log_fd, fmt, ap);
        va_end(ap);
}

static void stage_begin(struct build *b, const char *name) {
        b->stage++;
        b->stage_name = name;
        clock_gettime(CLOCK_MONOTONIC, &b->stage_start);
        log_info("[%u/%u] %s", b->stage, b->n_stages, name);
        blog(b, "==== stage %u/%u: %s\n", b->stage, b->n_stages, name);
}

static void stage_end(struct build *b) {
        if (b->stage > 0 && b->stage <= ELEMENTSOF(b->stage_secs)) {
                b->stage_secs[b->stage - 1] = elapsed(&b->stage_start);
                b->stage_names[b->stage - 1] = b->stage_name;
        }
        log_info("[%u/%u] %s: done in %.1f s", b->stage, b->n_stages, b->stage_name,
                 elapsed(&b->stage_start));
        blog(b, "==== %s: done in %.1f s\n", b->stage_name, elapsed(&b->stage_start));
}

static char *argv_join(char *const argv[]) {
        size_t n = 1;
        char *s, *p;

        for (size_t i = 0; argv[i]; i++)
                n += strlen(argv[i]) + 1;
        s = malloc(n);
        if (!s)
                return NULL;
        p = s;
        for (size_t i = 0; argv[i]; i++)
                p = stpcpy(stpcpy(p, i ? " " : ""), argv[i]);
        *p = 0;
        return s;
}

/* The last "NN%" in a line of tool output, or -1. */
static int percent_in(const char *line) {
        int pct = -1;

        for (const char *p = strchr(line, '%'); p; p = strchr(p + 1, '%')) {
                const char *d = p;
                int v = 0, mul = 1;

                while (d > line && d[-1] >= '0' && d[-1] <= '9' && mul <= 100) {
                        d--;
                        v += (d[0] - '0') * mul;
                        mul *= 10;
                }
                /* "40.45% of ..." and "(45.00/100%)" are not progress. */
                if (d < p && v <= 100 && !(d > line && (d[-1] == '.' || d[-1] == '/')))
                        pct = v;
        }
        return pct;
}

struct run_output {
        struct build *b;
        const char *tool;
        char line[4096];
        size_t len;
        int last_pct;
};

/* Command output goes to the build log; percentages in it are shown as progress. */
static void on_run_output(void *userdata, const char *buf, size_t n) {
        struct run_output *o = userdata;

        if (o->b->log_fd >= 0 && write(o->b->log_fd, buf, n) < 0)
                log_debug_errno(errno, "build log: %m");
        for (size_t i = 0; i < n; i++) {
                int pct;

                if (buf[i] != '\n' && buf[i] != '\r' && o->len < sizeof o->line - 1) {
                        o->line[o->len++] = buf[i];
                        continue;
                }
                o->line[o->len] = 0;
                o->len = 0;
                pct = percent_in(o->line);
                if (pct >= 0 && pct / 10 != o->last_pct / 10) {
                        log_info("[%u/%u] %s: %s %d%%", o->b->stage, o->b->n_stages,
                                 o->b->stage_name, o->tool, pct);
                        o->last_pct = pct;
                }
        }
}

/* Runs argv; returns 0, or -EIO after naming the stage and the command. */
static int run(struct build *b, char *const argv[]) {
        _cleanup_free_ char *cmd = argv_join(argv);
        struct run_output o = { .b = b, .tool = argv[0], .last_pct = -1 };
        int r;

        if (!cmd)
                return -ENOMEM;
        blog(b, "$ %s\n", cmd);
        log_debug("$ %s", cmd);
        r = run_command_stream(argv, on_run_output, &o);
        if (r == 0)
                return 0;
        if (r < 0)
                return log_error_errno(r, "stage %s: cannot run %s: %m", b->stage_name, cmd);
        log_error("stage %s: command failed with exit status %d: %s (output in %s)",
                  b->stage_name, r, cmd, b->log_path);
        return -EIO;
}

#define RUN(b, ...) run((b), (char *const[]){ __VA_ARGS__, NULL })

/* ---- rootfs: mmdebstrap with the host's own apt sources ---- */

static int host_apt_sources(char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (access("/etc/apt/sources.list", R_OK) >= 0) {
                _cleanup_free_ char *s = NULL;
                bool any = false;

                if (read_full_file("/etc/apt/sources.list", &s, NULL) >= 0)
                        for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
                                if (startswith(line + strspn(line, " \t"), "deb"))
                                        any = true;
                if (any && (r = strv_push(&l, "/etc/apt/sources.list")) < 0)
                        return r;
        }
        for (size_t k = 0; k < 2; k++) {
                glob_t g = {};

                if (glob(k == 0 ? "/etc/apt/sources.list.d/*.list"
                                : "/etc/apt/sources.list.d/*.sources",
                         0, NULL, &g) != 0) {
                        globfree(&g);
                        continue;
                }
                for (size_t i = 0; i < g.gl_pathc; i++)
                        if ((r = strv_push(&l, g.gl_pathv[i])) < 0) {
                                globfree(&g);
                                return r;
                        }
                globfree(&g);
        }
        if (!l)
                return log_error_errno(-ENOENT, "stage rootfs: the build host has no apt "
                                       "sources (/etc/apt/sources.list, sources.list.d/); "
                                       "imagebuild uses the host's own mirrors");
        *ret = TAKE_PTR(l);
        return 0;
}

/* True if a "deb URI SUITE ..." line or a deb822 "Suites:" field names suite: mmdebstrap
 * takes the sources as they are, so another suite would be built silently. */
static bool sources_provide(char *const *sources, const char *suite) {
        for (size_t i = 0; sources[i]; i++) {
                _cleanup_free_ char *text = NULL;
                char *save = NULL;

                if (read_full_file(sources[i], &text, NULL) < 0)
                        continue;
                for (char *line = strtok_r(text, "\n", &save); line;
                     line = strtok_r(NULL, "\n", &save)) {
                        char *w, *wsave = NULL;
                        int word = 0;
                        bool deb822;

                        line += strspn(line, " \t");
                        deb822 = startswith(line, "Suites:");
                        if (!deb822 && !startswith(line, "deb "))
                                continue;
                        for (w = strtok_r(line + (deb822 ? 7 : 0), " \t", &wsave); w;
                             w = strtok_r(NULL, " \t", &wsave), word++) {
                                /* deb [options] URI SUITE: skip the bracketed options. */
                                if (!deb822 && w[0] == '[') {
                                        while (w && !strchr(w, ']'))
                                                w = strtok_r(NULL, " \t", &wsave);
                                        word--;
                                        if (!w)
                                                break;
                                        continue;
                                }
                                if ((deb822 || word == 2) && streq(w, suite))
                                        return true;
                        }
                }
        }
        return false;
}

static bool host_accepts_expired_release(void) {
        char *argv[] = { "apt-config", "dump", "Acquire::Check-Valid-Until", NULL };
        _cleanup_free_ char *out = NULL;

        return run_command(argv, &out) == 0 && out &&
               strstr(out, "Acquire::Check-Valid-Until \"false\";");
}

/* Hash of everything the root filesystem depends on: a rebuild after changing only
 * firstboot or the overlays reuses it. */
static int rootfs_key(const struct image_spec *s, char *const *sources, char **packages,
                      char ret[static 65]) {
        crypto_hash_sha256_state st;
        uint8_t d[crypto_hash_sha256_BYTES];
        const char *epoch = getenv("SOURCE_DATE_EPOCH");

        crypto_hash_sha256_init(&st);
#define H(str) crypto_hash_sha256_update(&st, (const uint8_t *)(str), strlen(str) + 1)
        H("rainboot-rootfs-v1");
        H(s->suite);
        H(epoch ? epoch : "");
        for (size_t i = 0; packages[i]; i++)
                H(packages[i]);
        for (size_t i = 0; sources[i]; i++) {
                _cleanup_free_ char *text = NULL;
                int r = read_full_file(sources[i], &text, NULL);

                if (r < 0)
                        return log_error_errno(r, "stage rootfs: cannot read %s: %m", sources[i]);
                H(sources[i]);
                H(text);
        }
#undef H
        crypto_hash_sha256_final(&st, d);
        hex_encode(d, sizeof d, ret);
        return 0;
}

static int all_packages(const struct image_spec *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(base_packages); i++)
                if ((r = strv_push(&l, base_packages[i])) < 0)
                        return r;
        for (size_t i = 0; s->packages && s->packages[i]; i++)
                if (!strv_contains(l, s->packages[i]) && (r = strv_push(&l, s->packages[i])) < 0)
                        return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int cmd_packages(int argc, char **argv) {
        _cleanup_image_spec_ struct image_spec *spec = NULL;
        _cleanup_strv_free_ char **pkgs = NULL;
        struct diag d = {};
        int r;

        if (argc != 2) {
                log_error("Usage: imagebuild packages SPEC");
                return 2;
        }
        r = image_spec_parse_file(argv[1], &spec, &d);
        diag_log(&d);
        diag_clear(&d);
        if (r < 0)
                return r;
        r = all_packages(spec, &pkgs);
        if (r < 0)
                return log_error_errno(r, "packages: %m");
        for (size_t i = 0; pkgs[i]; i++)
                printf("%s\n", pkgs[i]);
        return 0;
}

static int stage_rootfs(struct build *b, char **ret_tar) {
        _cleanup_strv_free_ char **sources = NULL, **pkgs = NULL, **argv = NULL;
        _cleanup_free_ char *tar = NULL, *tmp = NULL, *include = NULL;
        struct stat st;
        char key[65];
        size_t n = 0;
        int r;

        stage_begin(b, "rootfs");
        r = host_apt_sources(&sources);
        if (r < 0)
                return r;
        if (!sources_provide(sources, b->spec->suite))
                return log_error_errno(-ENOENT, "stage rootfs: the build host's apt sources "
                                       "(/etc/apt/sources.list, sources.list.d/) do not provide "
                                       "suite '%s'; imagebuild builds from the host's own "
                                       "mirrors: use a suite they list", b->spec->suite);
        r = all_packages(b->spec, &pkgs);
        if (r < 0)
                return r;
        r = rootfs_key(b->spec, sources, pkgs, key);
        if (r < 0)
                return r;
        memcpy(b->key, key, sizeof key);
        key[16] = 0;
        if (asprintf_safe(&tar, "%s/rootfs-%s-%s.tar", b->cache, b->spec->suite, key) < 0)
                return -ENOMEM;
        if (stat(tar, &st) >= 0 && S_ISREG(st.st_mode)) {
                log_info("[%u/%u] rootfs: cached %s", b->stage, b->n_stages, tar);
                blog(b, "cached: %s\n", tar);
                stage_end(b);
                *ret_tar = TAKE_PTR(tar);
                return 0;
        }
        r = mkdir_parents(b->cache, 0755);
        if (r < 0)
                return log_error_errno(r, "stage rootfs: cannot create cache %s: %m", b->cache);
        for (size_t i = 0; pkgs[i]; i++)
                n += strlen(pkgs[i]) + 1;
        include = calloc(1, n + 16);
        if (!include)
                return -ENOMEM;
        strcpy(include, "--include=");
        for (size_t i = 0; pkgs[i]; i++) {
                if (i)
                        strcat(include, ",");
                strcat(include, pkgs[i]);
        }
        /* mmdebstrap picks the output format from the extension: keep ".tar". */
        if (asprintf_safe(&tmp, "%s/rootfs-%s-%s.partial.tar", b->cache, b->spec->suite, key) < 0)
                return -ENOMEM;
        /* force-unsafe-io: no fsync per unpacked file; the result is a tar renamed into
         * place only when mmdebstrap succeeded, so a crash loses nothing of value. */
        const char *fixed[] = { "mmdebstrap", "--variant=apt", "--mode=root", "--components=main",
                                "--dpkgopt=force-unsafe-io", include };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if ((r = strv_push(&argv, fixed[i])) < 0)
                        return r;
        /* The host's policy too: its mirrors may be snapshots whose Release files have
         * expired, which its own apt is told to accept. */
        if (host_accepts_expired_release() &&
            (r = strv_push(&argv, "--aptopt=Acquire::Check-Valid-Until \"false\"")) < 0)
                return r;
        if ((r = strv_push(&argv, b->spec->suite)) < 0 || (r = strv_push(&argv, tmp)) < 0)
                return r;
        for (size_t i = 0; sources[i]; i++)
                if ((r = strv_push(&argv, sources[i])) < 0)
                        return r;
        r = run(b, argv);
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        if (rename(tmp, tar) < 0)
                return log_error_errno(errno, "stage rootfs: cannot rename %s: %m", tmp);
        stage_end(b);
        *ret_tar = TAKE_PTR(tar);
        return 0;
}

/* ---- overlay ---- */

static int clamp_times(struct build *b, const char *dir, bool atimes);

/* No file newer than SOURCE_DATE_EPOCH: files written by this build (firstboot, overlays
 * as checked out, manifests) would otherwise carry the build's own time. */
static int clamp_mtimes(struct build *b, const char *dir) {
        return clamp_times(b, dir, false);
}

/* And every access time SOURCE_DATE_EPOCH (mkfs.ext4 -d copies them), in the base: its
 * files are never read through a path that marks them accessed again. */
static int clamp_base_times(struct build *b, const char *dir) {
        return clamp_times(b, dir, true);
}

/* With SOURCE_DATE_EPOCH: mtimes clamped to it, atimes too or set to it. */
static int clamp_times(struct build *b, const char *dir, bool atimes) {
        char *paths[] = { (char *)dir, NULL };
        FTS *fts;
        FTSENT *e;
        int r = 0;

        if (!b->reproducible)
                return 0;
        fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
        if (!fts)
                return log_error_errno(errno, "stage %s: cannot walk %s: %m", b->stage_name, dir);
        while ((e = fts_read(fts))) {
                struct timespec ts[2] = { { b->epoch, 0 }, { b->epoch, 0 } };

                if (e->fts_info == FTS_DP || !e->fts_statp || e->fts_info == FTS_NS)
                        continue;
                /* Through an overlay, touching a lower file would copy it up: leave
                 * alone what is already clamped. */
                if (!atimes && e->fts_statp->st_mtime <= b->epoch)
                        continue;
                if (e->fts_statp->st_mtime < b->epoch)
                        ts[1] = e->fts_statp->st_mtim;
                if (utimensat(AT_FDCWD, e->fts_path, ts, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = log_error_errno(errno, "stage %s: cannot set the time of %s: %m",
                                            b->stage_name, e->fts_path);
                        break;
                }
        }
        fts_close(fts);
        return r;
}

static int copy_file(const char *from, const char *to, mode_t mode) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(from, &data, &size);
        if (r < 0)
                return r;
        return write_file_atomic(to, data, size, mode);
}

/* Whatever differs between two mmdebstrap runs of the same inputs, or is per node, leaves
 * the shared base: logs, caches, host keys (made on first boot), the machine id. */
static int base_fixups(struct build *b) {
        static const char *const remove_globs[] = {
                "etc/apt/apt.conf.d/99mmdebstrap", "etc/ssh/ssh_host_*", "var/log/*.log",
                "var/log/apt/*", "var/cache/ldconfig/aux-cache", "var/cache/apt/*.bin",
                "var/lib/dbus/machine-id", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
                "etc/*-", "var/lib/systemd/random-seed",
        };
        _cleanup_free_ char *p = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(remove_globs); i++) {
                _cleanup_free_ char *pat = NULL;
                glob_t g = {};

                if (asprintf_safe(&pat, "%s/%s", b->base, remove_globs[i]) < 0)
                        return -ENOMEM;
                if (glob(pat, 0, NULL, &g) == 0)
                        for (size_t k = 0; k < g.gl_pathc; k++)
                                if (unlink(g.gl_pathv[k]) < 0 && errno != ENOENT &&
                                    errno != EISDIR) {
                                        r = -errno;
                                        globfree(&g);
                                        return log_error_errno(r, "stage base: cannot remove "
                                                               "%s: %m", pat);
                                }
                globfree(&g);
        }
        /* Empty: every node makes its own on first boot (its discovery node id). */
        if (asprintf_safe(&p, "%s/etc/machine-id", b->base) < 0)
                return -ENOMEM;
        r = write_file_atomic(p, "", 0, 0444);
        if (r < 0)
                return log_error_errno(r, "stage base: cannot write %s: %m", p);
        return clamp_base_times(b, b->base);
}

/* The base squashfs's compression (the ISO's live root): zstd decompresses fast under
 * emulation too and compresses a cold build's base in seconds rather than xz's minutes;
 * the ISO stays well under live-build's. Part of the cache key. */
static const char *const base_sq_comp[] = {
        "-comp", "zstd", "-Xcompression-level", "9", "-b", "1M",
};

static void key_of(const char *what, const char *const *args, size_t n_args, const char *key,
                   char ret[static 17]) {
        crypto_hash_sha256_state st;
        uint8_t d[crypto_hash_sha256_BYTES];
        char hex[65];

        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const uint8_t *)what, strlen(what));
        for (size_t i = 0; i < n_args; i++)
                crypto_hash_sha256_update(&st, (const uint8_t *)args[i], strlen(args[i]) + 1);
        crypto_hash_sha256_update(&st, (const uint8_t *)key, strlen(key));
        crypto_hash_sha256_final(&st, d);
        hex_encode(d, sizeof d, hex);
        memcpy(ret, hex, 16);
        ret[16] = 0;
}

/* The base layer: the cached rootfs unpacked and made reproducible, and, when an ISO is
 * wanted, its squashfs cached next to the tar, so a rebuild compresses only what the
 * build itself adds. */
static int stage_base(struct build *b, const char *tar) {
        _cleanup_free_ char *tmp = NULL, *dir = NULL, *partial = NULL;
        char dir_key[17], sq_key[17];
        struct stat sst;
        int r;

        stage_begin(b, "base");
        /* The unpacked base's key still names xz: it named the squashfs's compression too
         * once, and keeping it keeps existing unpacked bases valid. */
        key_of("rainboot-base-v1 xz bcj x86\n", NULL, 0, b->key, dir_key);
        key_of("rainboot-base-squashfs-v2\n", base_sq_comp, ELEMENTSOF(base_sq_comp), b->key,
               sq_key);
        /* The unpacked base is kept in the scratch directory's parent, not under OUT (its
         * "*.d" directories), and only ever read: it is the overlay's lower layer, so a
         * rebuild neither unpacks nor deletes it, and two builds read the very same inodes
         * (times included). */
        if (asprintf_safe(&b->base_sq, "%s/base-%s-%s.squashfs", b->cache, b->spec->suite,
                          sq_key) < 0 ||
            asprintf_safe(&tmp, "%s.partial", b->base_sq) < 0 ||
            asprintf_safe(&dir, "%s/imagebuild-base-%s-%s", b->scratch, b->spec->suite,
                          dir_key) < 0 ||
            asprintf_safe(&partial, "%s.partial.XXXXXX", dir) < 0)
                return -ENOMEM;
        free(b->base);
        b->base = NULL;
        if (stat(dir, &sst) >= 0 && S_ISDIR(sst.st_mode)) {
                log_info("[%u/%u] base: unpacked %s", b->stage, b->n_stages, dir);
                blog(b, "cached: %s\n", dir);
                b->base = TAKE_PTR(dir);
        } else {
                if (!mkdtemp(partial))
                        return log_error_errno(errno, "stage base: cannot create %s: %m", partial);
                b->base = strdup(partial);
                if (!b->base)
                        return -ENOMEM;
                r = RUN(b, "tar", "-C", b->base, "--numeric-owner", "-xpf", (char *)tar);
                if (r >= 0)
                        r = base_fixups(b);
                if (r >= 0 && chmod(b->base, 0755) < 0)
                        r = log_error_errno(errno, "stage base: chmod %s: %m", b->base);
                if (r >= 0 && rename(partial, dir) < 0 && errno != ENOTEMPTY && errno != EEXIST)
                        r = log_error_errno(errno, "stage base: cannot rename %s: %m", partial);
                if (r < 0) {
                        (void)RUN(b, "rm", "-rf", "--one-file-system", partial);
                        return r;
                }
                /* Another build may have finished the same base first: use that one. */
                if (access(partial, F_OK) >= 0)
                        (void)RUN(b, "rm", "-rf", "--one-file-system", partial);
                free(b->base);
                b->base = TAKE_PTR(dir);
        }
        /* A disk-only build never reads it. */
        if (!(b->spec->outputs & OUTPUT_ISO)) {
                stage_end(b);
                return 0;
        }
        if (stat(b->base_sq, &sst) >= 0 && S_ISREG(sst.st_mode)) {
                log_info("[%u/%u] base: cached %s", b->stage, b->n_stages, b->base_sq);
                blog(b, "cached: %s\n", b->base_sq);
                stage_end(b);
                return 0;
        }
        {
                _cleanup_strv_free_ char **argv = NULL;
                static const char *const head[] = { "mksquashfs", NULL, NULL, "-noappend" };
                static const char *const tail[] = { "-wildcards", "-e", "proc/*", "sys/*",
                                                    "dev/*", "run/*", "tmp/*" };

                for (size_t i = 0; i < ELEMENTSOF(head); i++)
                        if ((r = strv_push(&argv, i == 1 ? b->base : i == 2 ? tmp : head[i])) < 0)
                                return r;
                for (size_t i = 0; i < ELEMENTSOF(base_sq_comp); i++)
                        if ((r = strv_push(&argv, base_sq_comp[i])) < 0)
                                return r;
                for (size_t i = 0; i < ELEMENTSOF(tail); i++)
                        if ((r = strv_push(&argv, tail[i])) < 0)
                                return r;
                r = run(b, argv);
        }
        /* It read every file, which marked them accessed. */
        if (r >= 0)
                r = clamp_base_times(b, b->base);
        if (r >= 0 && rename(tmp, b->base_sq) < 0)
                r = log_error_errno(errno, "stage base: cannot rename %s: %m", tmp);
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        stage_end(b);
        return 0;
}

static int ovl_umount(struct build *b) {
        if (!b->ovl_mounted)
                return 0;
        if (umount(b->root) < 0)
                return log_error_errno(errno, "cannot unmount %s: %m", b->root);
        b->ovl_mounted = false;
        return 0;
}

/* The base's initramfs was made by the rootfs stage, before the overlays: when they carry
 * initramfs-tools settings (etc/initramfs-tools: hooks, conf.d), make it again with them.
 * Its hooks want /dev, /proc and /sys: mounted in a mount namespace of the command's own,
 * so nothing stays mounted, whatever happens. */
static int overlay_initramfs(struct build *b) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (asprintf_safe(&p, "%s/etc/initramfs-tools", b->spec->overlays) < 0)
                return -ENOMEM;
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                return 0;
        return RUN(b, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                   "mount --rbind /dev \"$1/dev\" && mount -t proc proc \"$1/proc\" && "
                   "mount -t sysfs sysfs \"$1/sys\" && exec chroot \"$1\" update-initramfs -u -k all",
                   "sh", b->root);
}

static int stage_overlay(struct build *b) {
        _cleanup_free_ char *p = NULL, *src = NULL, *opts = NULL;
        int r;

        stage_begin(b, "overlay");
        /* Everything below lands in top: the ISO's second layer, a few MiB. */
        r = mkdir_parents(b->root, 0755);
        if (r >= 0)
                r = mkdir_parents(b->top, 0755);
        if (r >= 0)
                r = mkdir_parents(b->ovl_work, 0755);
        if (r < 0)
                return log_error_errno(r, "stage overlay: cannot create %s: %m", b->work);
        if (asprintf_safe(&opts, "lowerdir=%s,upperdir=%s,workdir=%s", b->base, b->top,
                          b->ovl_work) < 0)
                return -ENOMEM;
        if (mount("rainboot-image", b->root, "overlay", 0, opts) < 0)
                return log_error_errno(errno, "stage overlay: cannot mount an overlay on %s "
                                       "(%s): %m; the build host's kernel needs overlayfs",
                                       b->root, opts);
        b->ovl_mounted = true;
        if (b->spec->overlays) {
                if (asprintf_safe(&src, "%s/.", b->spec->overlays) < 0)
                        return -ENOMEM;
                r = RUN(b, "cp", "-rT", "--preserve=mode,timestamps", "--no-preserve=ownership",
                        src, b->root);
                if (r >= 0)
                        r = overlay_initramfs(b);
                if (r < 0)
                        return r;
        }
        if (asprintf_safe(&p, "%s/usr/sbin/firstboot", b->root) < 0)
                return -ENOMEM;
        r = copy_file(b->firstboot, p, 0755);
        if (r < 0)
                return log_error_errno(r, "stage overlay: cannot install %s as %s: %m",
                                       b->firstboot, p);
        free(p);
        if (asprintf_safe(&p, "%s/etc/rainboot", b->root) < 0)
                return -ENOMEM;
        r = mkdir_parents(p, 0755);
        if (r < 0)
                return log_error_errno(r, "stage overlay: cannot create %s: %m", p);
        if (b->spec->cluster_config) {
                free(p);
                if (asprintf_safe(&p, "%s/etc/rainboot/cluster.yaml", b->root) < 0)
                        return -ENOMEM;
                r = copy_file(b->spec->cluster_config, p, 0600);
                if (r < 0)
                        return log_error_errno(r, "stage overlay: cannot copy %s: %m",
                                               b->spec->cluster_config);
        }
        r = RUN(b, "systemctl", "--root", b->root, "enable", "firstboot.service",
                "rainboot-install.service", "systemd-networkd.service", "rainboot-growroot.service",
                "rainboot-ssh-keygen.service");
        if (r < 0)
                return r;

        stage_end(b);
        return 0;
}

/* The verified bundle, and /usr/share/rainboot/bundle.json saying what the image carries. */
static int stage_bundle(struct build *b) {
        _cleanup_free_ char *p = NULL;
        struct diag d = {};
        int r;

        stage_begin(b, "bundle");
        if (asprintf_safe(&p, "%s/usr/share/rainboot", b->root) < 0)
                return -ENOMEM;
        r = mkdir_parents(p, 0755);
        if (r < 0)
                return log_error_errno(r, "stage bundle: cannot create %s: %m", p);
        free(p);
        if (asprintf_safe(&p, "%s/usr/share/rainboot/bundle.json", b->root) < 0)
                return -ENOMEM;
        if (b->spec->bundle) {
                _cleanup_bundle_ struct bundle *bu = NULL;
                _cleanup_free_ char *dest = NULL;

                if (asprintf_safe(&dest, "%s/usr/share/rainboot/bundle", b->root) < 0)
                        return -ENOMEM;
                r = bundle_load(b->spec->bundle, &bu, &d);
                if (r >= 0)
                        r = bundle_install(bu, dest, p, &d);
                if (r >= 0)
                        log_info("[%u/%u] bundle: %zu artifacts verified and copied", b->stage,
                                 b->n_stages, bu->n_items);
        } else {
                static const char empty[] = "{\n  \"version\": 1,\n  \"artifacts\": []\n}\n";
                r = write_file_atomic(p, empty, strlen(empty), 0644);
                if (r < 0)
                        diag_push(&d, "%s: cannot write: %s", p, strerror(-r));
        }
        if (r < 0) {
                for (size_t i = 0; i < d.n; i++)
                        log_error("stage bundle: %s", d.msgs[i]);
                diag_clear(&d);
                return r;
        }
        r = clamp_mtimes(b, b->root);
        if (r < 0)
                return r;
        stage_end(b);
        return 0;
}

/* ---- boot files ---- */

static int find_one(const char *root, const char *pattern, char **ret) {
        _cleanup_free_ char *pat = NULL;
        glob_t g = {};
        int r = 0;

        if (asprintf_safe(&pat, "%s/%s", root, pattern) < 0)
                return -ENOMEM;
        if (glob(pat, 0, NULL, &g) != 0 || g.gl_pathc == 0)
                r = -ENOENT;
        else if (!(*ret = strdup(g.gl_pathv[g.gl_pathc - 1])))
                r = -ENOMEM;
        globfree(&g);
        return r;
}

static int write_text(const char *path, const char *text, mode_t mode) {
        return write_file_atomic(path, text, strlen(text), mode);
}

/* Serial and screen both, so the same image works headless and on a monitor. */
#define GRUB_HEAD                                                                              \
        "serial --unit=0 --speed=115200\n"                                                     \
        "terminal_input console serial\n"                                                      \
        "terminal_output console serial\n"                                                     \
        "set timeout=3\n"

static int stage_iso(struct build *b) {
        _cleanup_free_ char *iso = NULL, *live = NULL, *kernel = NULL, *initrd = NULL,
                            *p = NULL, *cfg = NULL, *out = NULL;
        const char *cmdline = b->spec->kernel_cmdline;
        int r;

        stage_begin(b, "squashfs");
        if (asprintf_safe(&iso, "%s/iso", b->work) < 0 || asprintf_safe(&live, "%s/live", iso) < 0)
                return -ENOMEM;
        if (access(iso, F_OK) >= 0 && (r = RUN(b, "rm", "-rf", iso)) < 0)
                return r;
        r = mkdir_parents(live, 0755);
        if (r >= 0) {
                free(p);
                p = NULL;
                if (asprintf_safe(&p, "%s/boot/grub", iso) < 0)
                        return -ENOMEM;
                r = mkdir_parents(p, 0755);
        }
        if (r < 0)
                return log_error_errno(r, "stage squashfs: cannot create %s: %m", iso);
        /* The installer's part: the boot area (GPT, BIOS boot, ESP), the disk-only files
         * (GRUB's modules and config, fstab) and the root's UUID; the system itself it
         * takes from the live layers, so the ISO carries it once. */
        {
                _cleanup_free_ char *from = NULL, *dir = NULL, *to = NULL, *env = NULL,
                                    *extra = NULL, *esq = NULL;

                if (asprintf_safe(&from, "%s/boot.img.zst", b->work) < 0 ||
                    asprintf_safe(&dir, "%s/install", iso) < 0 ||
                    asprintf_safe(&to, "%s/boot.img.zst", dir) < 0 ||
                    asprintf_safe(&env, "%s/root.env", dir) < 0 ||
                    asprintf_safe(&extra, "%s/extra", b->work) < 0 ||
                    asprintf_safe(&esq, "%s/disk.squashfs", dir) < 0)
                        return -ENOMEM;
                r = mkdir_parents(dir, 0755);
                if (r >= 0 && rename(from, to) < 0)
                        r = -errno;
                if (r < 0)
                        return log_error_errno(r, "stage squashfs: cannot move %s to %s: %m",
                                               from, to);
                free(p);
                if (asprintf_safe(&p, "ROOT_UUID=%s\n", b->root_uuid) < 0)
                        return -ENOMEM;
                r = write_text(env, p, 0644);
                if (r < 0)
                        return log_error_errno(r, "stage squashfs: cannot write %s: %m", env);
                /* Level 9, not mksquashfs's 15: GRUB's modules come out half a MiB
                 * larger in a ninth of the time (1.7 s vs 15 s loaded), on every build. */
                r = RUN(b, "mksquashfs", extra, esq, "-noappend", "-comp", "zstd",
                        "-Xcompression-level", "9", "-quiet");
                if (r < 0)
                        return r;
        }
        /* Read through the overlay, whose lower layers are never marked accessed: the
         * base's access times stay what the next build copies into its ext4. */
        if (find_one(b->root, "boot/vmlinuz-*", &kernel) < 0 ||
            find_one(b->root, "boot/initrd.img-*", &initrd) < 0)
                return log_error_errno(-ENOENT, "stage squashfs: no kernel or initrd in "
                                       "%s/boot; is linux-image-amd64 installed?", b->root);
        free(p);
        if (asprintf_safe(&p, "%s/vmlinuz", live) < 0)
                return -ENOMEM;
        r = copy_file(kernel, p, 0644);
        if (r >= 0) {
                free(p);
                if (asprintf_safe(&p, "%s/initrd.img", live) < 0)
                        return -ENOMEM;
                r = copy_file(initrd, p, 0644);
        }
        if (r < 0)
                return log_error_errno(r, "stage squashfs: cannot copy the kernel: %m");
        r = ovl_umount(b);
        if (r < 0)
                return r;
        {
                _cleanup_free_ char *base_to = NULL, *top_sq = NULL;

                if (asprintf_safe(&base_to, "%s/filesystem.squashfs", live) < 0 ||
                    asprintf_safe(&top_sq, "%s/rainboot.squashfs", live) < 0)
                        return -ENOMEM;
                /* live-boot stacks live/ *.squashfs in name order, the last on top. */
                if (link(b->base_sq, base_to) < 0 &&
                    (r = RUN(b, "cp", "--reflink=auto", b->base_sq, base_to)) < 0)
                        return r;
                r = RUN(b, "mksquashfs", b->top, top_sq, "-noappend", "-comp", "zstd",
                        "-Xcompression-level", "9", "-quiet", "-no-xattrs");
                if (r < 0)
                        return r;
        }
        stage_end(b);

        stage_begin(b, "iso");
        if (asprintf_safe(&cfg,
                          GRUB_HEAD
                          "menuentry \"rainboot (live)\" {\n"
                          "  linux /live/vmlinuz boot=live components %s\n"
                          "  initrd /live/initrd.img\n"
                          "}\n"
                          "menuentry \"install rainboot to disk\" {\n"
                          "  linux /live/vmlinuz boot=live components rainboot.install %s\n"
                          "  initrd /live/initrd.img\n"
                          "}\n",
                          cmdline, cmdline) < 0)
                return -ENOMEM;
        free(p);
        if (asprintf_safe(&p, "%s/boot/grub/grub.cfg", iso) < 0)
                return -ENOMEM;
        r = write_text(p, cfg, 0644);
        if (r < 0)
                return log_error_errno(r, "stage iso: cannot write %s: %m", p);
        if (asprintf_safe(&out, "%s/%s.iso", b->out, b->spec->name) < 0)
                return -ENOMEM;
        r = clamp_mtimes(b, iso);
        if (r < 0)
                return r;
        if (b->reproducible) {
                /* grub-mkrescue dates the ISO (and names it by that date in the GRUB
                 * images it embeds) and its efi.img from its own clock: stop the clock at
                 * SOURCE_DATE_EPOCH for it (xorriso reads SOURCE_DATE_EPOCH itself). */
                char when[32];
                struct tm tm;

                if (!gmtime_r(&b->epoch, &tm) ||
                    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                        return log_error_errno(-EINVAL, "stage iso: cannot format "
                                               "SOURCE_DATE_EPOCH");
                if (setenv("TZ", "UTC", 1) < 0)
                        return log_error_errno(errno, "stage iso: setenv: %m");
                r = RUN(b, "faketime", "-f", when, "grub-mkrescue", "-o", out, iso, "--",
                        "-volid", "RAINBOOT");
        } else
                r = RUN(b, "grub-mkrescue", "-o", out, iso, "--", "-volid", "RAINBOOT");
        if (r < 0)
                return r;
        log_info("[%u/%u] iso: wrote %s", b->stage, b->n_stages, out);
        stage_end(b);
        return 0;
}

/* ---- qcow2 ---- */

struct loopdisk {
        struct build *b;
        char *dev;      /* /dev/loopN we attached, or NULL */
        char *mnt;      /* mounted root, or NULL */
};

static void loopdisk_release(struct loopdisk *l) {
        if (l->mnt && umount(l->mnt) < 0)
                log_warning_errno(errno, "cannot unmount %s: %m", l->mnt);
        if (l->dev)
                (void)RUN(l->b, "losetup", "-d", l->dev);
        free(l->dev);
        free(l->mnt);
        *l = (struct loopdisk){};
}

static int wait_for(const char *path, unsigned tenths) {
        /* Partition nodes appear asynchronously after losetup --partscan. */
        for (unsigned i = 0; i < tenths; i++) {
                if (access(path, F_OK) >= 0)
                        return 0;
                usleep(100 * 1000);
        }
        return -ETIMEDOUT;
}

/* Random, or with SOURCE_DATE_EPOCH derived from the inputs, so identical inputs give
 * identical disks. */
static int make_uuid(const struct build *b, const char *what, char ret[static 37]) {
        uint8_t u[crypto_hash_sha256_BYTES];

        if (b->reproducible) {
                _cleanup_free_ char *seed = NULL;

                if (asprintf_safe(&seed, "rainboot-%s\n%s\n%s\n%lld", what, b->spec->name,
                                  b->key, (long long)b->epoch) < 0)
                        return -ENOMEM;
                crypto_hash_sha256(u, (const uint8_t *)seed, strlen(seed));
        } else
                randombytes_buf(u, 16);
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                 u[13], u[14], u[15]);
        return 0;
}

/* UEFI GRUB without mounting anything FAT (the build host may lack vfat): an EFI image
 * whose early config finds the root by UUID (its modules live on the root), placed with
 * mtools in an ESP image at the removable-media path \EFI\BOOT\BOOTX64.EFI, which
 * firmware boots without NVRAM entries; the ESP image is then written into the disk. */
static int make_esp(struct build *b, const char *raw, const char *uuid, const char *esp_id) {
        _cleanup_free_ char *early = NULL, *early_path = NULL, *efi = NULL, *esp = NULL,
                            *kib = NULL, *of = NULL, *seek = NULL;
        int r;

        if (asprintf_safe(&early,
                          "search --no-floppy --fs-uuid --set=root %s\n"
                          "set prefix=($root)/boot/grub\n",
                          uuid) < 0 ||
            asprintf_safe(&early_path, "%s/grub-early.cfg", b->work) < 0 ||
            asprintf_safe(&efi, "%s/BOOTX64.EFI", b->work) < 0 ||
            asprintf_safe(&esp, "%s/esp.img", b->work) < 0 ||
            asprintf_safe(&kib, "%d", ESP_SIZE_MIB * 1024) < 0 ||
            asprintf_safe(&of, "of=%s", raw) < 0 ||
            asprintf_safe(&seek, "seek=%d", BIOS_BOOT_END_MIB) < 0)
                return -ENOMEM;
        r = write_text(early_path, early, 0644);
        if (r < 0)
                return log_error_errno(r, "stage disk: cannot write %s: %m", early_path);
        unlink(esp);
        r = RUN(b, "grub-mkimage", "-O", "x86_64-efi", "-o", efi, "-p", "/boot/grub", "-c",
                early_path, "part_gpt", "ext2", "fat", "search", "search_fs_uuid", "normal",
                "configfile", "linux", "serial", "terminal", "efi_gop", "all_video", "gzio",
                "echo", "test");
        if (r >= 0)
                /* --invariant: the label entry's time (mtools itself honours
                 * SOURCE_DATE_EPOCH). */
                r = RUN(b, "mkfs.vfat", b->reproducible ? "--invariant" : "-v", "-C", "-F", "32",
                        "-n", "EFI", "-i", (char *)esp_id, esp, kib);
        if (r >= 0)
                r = RUN(b, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT");
        if (r >= 0)
                r = RUN(b, "mcopy", "-i", esp, efi, "::/EFI/BOOT/BOOTX64.EFI");
        if (r >= 0) {
                _cleanup_free_ char *in = NULL;

                if (asprintf_safe(&in, "if=%s", esp) < 0)
                        return -ENOMEM;
                r = RUN(b, "dd", in, of, "bs=1M", seek, "conv=notrunc,fsync", "status=none");
        }
        unlink(esp);
        return r;
}

static int copy_range(int in, int out, uint64_t off, uint64_t len) {
        loff_t o_in = (loff_t)off, o_out = (loff_t)off;

        while (len > 0) {
                ssize_t n = copy_file_range(in, &o_in, out, &o_out, len, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                len -= (uint64_t)n;
        }
        return 0;
}

/* The disk without its root file system's contents, for the ISO's installer (which makes
 * the root from the live layers): a few MiB once compressed; zstd records its size. */
static int make_boot_image(struct build *b, const char *raw) {
        _cleanup_free_ char *hpath = NULL, *tpath = NULL, *zst = NULL, *mid = NULL,
                            *total = NULL, *tbuf = NULL;
        _cleanup_close_ int in = -1, out = -1;
        uint64_t size = b->spec->disk_size, head = (uint64_t)(BIOS_BOOT_END_MIB + ESP_SIZE_MIB) << 20,
                 tail = 1u << 20;
        ssize_t n;
        int r = 0;

        if (asprintf_safe(&hpath, "%s/boot-head.img", b->work) < 0 ||
            asprintf_safe(&tpath, "%s/boot-tail.img", b->work) < 0 ||
            asprintf_safe(&zst, "%s/boot.img.zst", b->work) < 0 ||
            asprintf_safe(&mid, "%llu", (unsigned long long)(size - head - tail)) < 0 ||
            asprintf_safe(&total, "--stream-size=%llu", (unsigned long long)size) < 0 ||
            !(tbuf = malloc(tail)))
                return -ENOMEM;
        in = open(raw, O_RDONLY | O_CLOEXEC);
        out = open(hpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (in < 0 || out < 0)
                return log_error_errno(errno, "stage install-image: cannot open %s: %m",
                                       in < 0 ? raw : hpath);
        /* The root partition starts after the ESP and ends before the backup GPT's MiB. */
        if (ftruncate(out, (off_t)head) < 0 || (r = copy_range(in, out, 0, head)) < 0 ||
            (n = pread(in, tbuf, tail, (off_t)(size - tail))) != (ssize_t)tail ||
            (r = write_file_atomic(tpath, tbuf, tail, 0644)) < 0)
                return log_error_errno(r < 0 ? r : -EIO, "stage install-image: cannot copy "
                                       "the boot area of %s: %m", raw);
        close(TAKE_FD(out));
        /* The disk-sized image is all holes but these few MiB: streamed with the zeros
         * from /dev/zero, not read from a sparse file, whose holes the kernel would fill
         * into the page cache first (20 s for 8 GiB here); --stream-size records the
         * size, which the installer reads. */
        r = RUN(b, "sh", "-c", "{ cat \"$1\" && head -c \"$2\" /dev/zero && cat \"$3\"; } | "
                "zstd -q -f -3 \"$4\" -o \"$5\"", "sh", hpath, mid, tpath, total, zst);
        unlink(hpath);
        unlink(tpath);
        return r;
}

/* Root partition of a disk of SIZE bytes as disk_partition() lays it out. */
static void root_extent(uint64_t size, uint64_t *ret_offset, uint64_t *ret_size) {
        uint64_t mib_s = 2048, last = (size / 512 - 34) / mib_s * mib_s - 1,
                 first = (uint64_t)(BIOS_BOOT_END_MIB + ESP_SIZE_MIB) * mib_s;

        *ret_offset = first * 512;
        *ret_size = (last - first + 1) * 512;
}

static int copy_at(const char *from, const char *to, uint64_t off, uint64_t len) {
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC),
                            out = open(to, O_WRONLY | O_CLOEXEC);

        if (in < 0 || out < 0)
                return -errno;
        return copy_range(in, out, off, len);
}

/* GRUB for BIOS without mounting the disk's root (a mounted ext4 records mount times and
 * journal traffic, which no two builds share): grub-install runs on a small scratch disk
 * with the same layout and a root file system of the same UUID; its boot code (MBR, core
 * image in the BIOS boot partition) is copied into the disk, and its files under
 * /boot/grub join the disk-only layer EXTRA, which mkfs.ext4 -d then lays over the root. */
static int make_bios_boot(struct build *b, const char *raw, const char *uuid, const char *extra) {
        _cleanup_(loopdisk_release) struct loopdisk l = { .b = b };
        _cleanup_free_ char *scratch = NULL, *p3 = NULL, *out_text = NULL, *dir = NULL,
                            *grub = NULL, *efi = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf_safe(&scratch, "%s/grub-scratch.raw", b->work) < 0 ||
            asprintf_safe(&dir, "--boot-directory=%s/mnt/boot", b->work) < 0 ||
            asprintf_safe(&grub, "%s/mnt/boot/grub", b->work) < 0 ||
            asprintf_safe(&efi, "%s/boot/grub/", extra) < 0 ||
            asprintf_safe(&l.mnt, "%s/mnt", b->work) < 0)
                return -ENOMEM;
        fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, 256 << 20) < 0)
                return log_error_errno(errno, "stage bootloader: cannot create %s: %m", scratch);
        close(TAKE_FD(fd));
        r = disk_partition(scratch);
        if (r < 0)
                return log_error_errno(r, "stage bootloader: libparted could not partition "
                                       "%s: %m", scratch);
        {
                char *argv[] = { "losetup", "--find", "--show", "--partscan", scratch, NULL };
                char *nl;

                blog(b, "$ losetup --find --show --partscan %s\n", scratch);
                r = run_command(argv, &out_text);
                if (r != 0 || !out_text || !startswith(out_text, "/dev/loop")) {
                        free(l.mnt);
                        l.mnt = NULL;
                        return log_error_errno(-EIO, "stage bootloader: command failed: losetup "
                                               "--find --show --partscan %s: %s", scratch,
                                               out_text ? out_text : "");
                }
                nl = strchr(out_text, '\n');
                if (nl)
                        *nl = 0;
                l.dev = strdup(out_text);
                if (!l.dev)
                        return -ENOMEM;
        }
        if (asprintf_safe(&p3, "%sp3", l.dev) < 0)
                return -ENOMEM;
        if (wait_for(p3, 20) < 0) {
                /* Some kernels (containers, no GPT partition parser) do not scan loop
                 * devices; partx adds the partitions with BLKPG from libblkid's reading. */
                r = RUN(b, "partx", "--add", l.dev);
                if (r < 0)
                        return r;
        }
        if (wait_for(p3, 100) < 0)
                return log_error_errno(-ETIMEDOUT, "stage bootloader: partitions of %s did "
                                       "not appear", l.dev);
        r = RUN(b, "mkfs.ext4", "-q", "-F", "-U", (char *)uuid, p3);
        if (r < 0)
                return r;
        r = mkdir_parents(l.mnt, 0755);
        if (r < 0)
                return log_error_errno(r, "stage bootloader: cannot create %s: %m", l.mnt);
        if (mount(p3, l.mnt, "ext4", 0, NULL) < 0) {
                r = log_error_errno(errno, "stage bootloader: cannot mount %s on %s: %m", p3,
                                    l.mnt);
                free(l.mnt);
                l.mnt = NULL;
                return r;
        }
        r = RUN(b, "grub-install", "--target=i386-pc", dir, "--modules=part_gpt ext2", l.dev);
        if (r >= 0)
                r = RUN(b, "cp", "-aT", grub, efi);
        if (r >= 0)
                r = RUN(b, "cp", "-r", "/usr/lib/grub/x86_64-efi", efi);
        if (r < 0)
                return r;
        loopdisk_release(&l);
        /* Boot code up to the MBR's disk signature; the BIOS boot partition whole. */
        r = copy_at(scratch, raw, 0, 440);
        if (r >= 0)
                r = copy_at(scratch, raw, (uint64_t)BIOS_BOOT_START_MIB << 20,
                            (uint64_t)(BIOS_BOOT_END_MIB - BIOS_BOOT_START_MIB) << 20);
        if (r < 0)
                return log_error_errno(r, "stage bootloader: cannot copy the boot code into "
                                       "%s: %m", raw);
        unlink(scratch);
        return 0;
}

static int stage_disk(struct build *b) {
        _cleanup_free_ char *raw = NULL, *out = NULL, *p = NULL, *cfg = NULL, *fstab = NULL,
                            *ext_opts = NULL, *extra = NULL, *size_arg = NULL, *opts = NULL;
        _cleanup_close_ int fd = -1;
        char uuid[37], esp_uuid[37], esp_id[9];
        uint64_t root_off, root_size;
        int r;

        stage_begin(b, "bootloader");
        if (asprintf_safe(&raw, "%s/disk.raw", b->work) < 0 ||
            asprintf_safe(&extra, "%s/extra", b->work) < 0)
                return -ENOMEM;
        unlink(raw);
        fd = open(raw, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)b->spec->disk_size) < 0)
                return log_error_errno(errno, "stage bootloader: cannot create %s: %m", raw);
        close(TAKE_FD(fd));
        r = disk_partition(raw);
        if (r < 0)
                return log_error_errno(r, "stage bootloader: libparted could not partition "
                                       "%s: %m", raw);
        if (b->reproducible) {
                _cleanup_free_ char *seed = NULL;

                if (asprintf_safe(&seed, "%s\n%s\n%lld", b->spec->name, b->key,
                                  (long long)b->epoch) < 0)
                        return -ENOMEM;
                r = gpt_derive_guids(raw, seed);
                if (r < 0)
                        return log_error_errno(r, "stage bootloader: cannot set derived GUIDs "
                                               "in the GPT libparted wrote to %s: %m", raw);
        }
        if (make_uuid(b, "root", uuid) < 0 || make_uuid(b, "esp", esp_uuid) < 0)
                return -ENOMEM;
        memcpy(b->root_uuid, uuid, sizeof uuid);
        /* FAT volume id: 8 hex digits. */
        snprintf(esp_id, sizeof esp_id, "%.8s", esp_uuid);
        /* Upper case, as blkid and so /dev/disk/by-uuid spell it: fstab's lower-case id
         * named a device that never appeared (a 90 s job, /boot/efi not mounted). */
        for (char *c = esp_id; *c; c++)
                *c = (char)toupper((unsigned char)*c);
        r = make_esp(b, raw, uuid, esp_id);
        if (r < 0)
                return r;
        free(p);
        if (asprintf_safe(&p, "%s/boot/grub", extra) < 0)
                return -ENOMEM;
        r = mkdir_parents(p, 0755);
        if (r >= 0) {
                free(p);
                if (asprintf_safe(&p, "%s/etc", extra) < 0)
                        return -ENOMEM;
                r = mkdir_parents(p, 0755);
        }
        if (r < 0)
                return log_error_errno(r, "stage bootloader: cannot create %s: %m", p);
        r = make_bios_boot(b, raw, uuid, extra);
        if (r < 0)
                return r;
        if (asprintf_safe(&cfg,
                          GRUB_HEAD
                          "insmod part_gpt\n"
                          "insmod ext2\n"
                          "search --no-floppy --fs-uuid --set=root %s\n"
                          "menuentry \"rainboot\" {\n"
                          "  linux /vmlinuz root=UUID=%s ro %s\n"
                          "  initrd /initrd.img\n"
                          "}\n",
                          uuid, uuid, b->spec->kernel_cmdline) < 0)
                return -ENOMEM;
        free(p);
        if (asprintf_safe(&p, "%s/boot/grub/grub.cfg", extra) < 0)
                return -ENOMEM;
        r = write_text(p, cfg, 0644);
        if (r < 0)
                return log_error_errno(r, "stage bootloader: cannot write %s: %m", p);
        if (asprintf_safe(&fstab,
                          "UUID=%s / ext4 errors=remount-ro 0 1\n"
                          "UUID=%.4s-%.4s /boot/efi vfat umask=0077,nofail 0 2\n",
                          uuid, esp_id, esp_id + 4) < 0)
                return -ENOMEM;
        free(p);
        if (asprintf_safe(&p, "%s/etc/fstab", extra) < 0)
                return -ENOMEM;
        r = write_text(p, fstab, 0644);
        if (r < 0)
                return log_error_errno(r, "stage bootloader: cannot write %s: %m", p);
        r = clamp_mtimes(b, extra);
        if (r < 0)
                return r;
        stage_end(b);

        stage_begin(b, "disk");
        /* The installed tree, exactly as the ISO's installer assembles it: the disk-only
         * files over what this build added over the base, read-only. */
        r = ovl_umount(b);
        if (r < 0)
                return r;
        if (asprintf_safe(&opts, "lowerdir=%s:%s:%s", extra, b->top, b->base) < 0)
                return -ENOMEM;
        if (mount("rainboot-image", b->root, "overlay", MS_RDONLY, opts) < 0)
                return log_error_errno(errno, "stage disk: cannot mount an overlay on %s "
                                       "(%s): %m", b->root, opts);
        b->ovl_mounted = true;
        root_extent(b->spec->disk_size, &root_off, &root_size);
        /* No loop device: mkfs.ext4 writes at the partition's offset in the file. */
        if (asprintf_safe(&ext_opts, "hash_seed=%s,offset=%llu,nodiscard,root_owner=0:0", uuid,
                          (unsigned long long)root_off) < 0 ||
            asprintf_safe(&size_arg, "%lluk", (unsigned long long)(root_size / 1024)) < 0)
                return -ENOMEM;
        r = RUN(b, "mkfs.ext4", "-q", "-F", "-T", "default", "-L", "rainboot-root", "-U", uuid,
                "-E", ext_opts, "-d", b->root, raw, size_arg);
        if (r < 0)
                return r;
        if (b->reproducible) {
                size_t n = 0;

                r = ext4_set_times(raw, root_off, b->root, b->epoch, &n);
                if (r < 0)
                        return r;
                blog(b, "inode change and access times of %zu files set to "
                     "SOURCE_DATE_EPOCH\n", n);
        }
        stage_end(b);

        if (b->spec->outputs & OUTPUT_ISO) {
                stage_begin(b, "install-image");
                r = make_boot_image(b, raw);
                if (r < 0)
                        return r;
                stage_end(b);
        }
        if (b->spec->outputs & OUTPUT_QCOW2) {
                stage_begin(b, "qcow2");
                if (asprintf_safe(&out, "%s/%s.qcow2", b->out, b->spec->name) < 0)
                        return -ENOMEM;
                r = RUN(b, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out);
                if (r < 0)
                        return r;
                log_info("[%u/%u] qcow2: wrote %s (root UUID %s)", b->stage, b->n_stages, out,
                         uuid);
                stage_end(b);
        }
        unlink(raw);
        return 0;
}

/* ---- command ---- */

int cmd_build(int argc, char **argv) {
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "firstboot", required_argument, NULL, 'f' },
                { "cache", required_argument, NULL, 'c' },
                { "work", required_argument, NULL, 'w' },
                {},
        };
        _cleanup_image_spec_ struct image_spec *spec = NULL;
        _cleanup_free_ char *tar = NULL, *cache = NULL, *out = NULL, *fb = NULL;
        const char *out_arg = NULL, *fb_arg = "/usr/sbin/firstboot", *cache_arg = NULL,
                   *work_arg = "/var/tmp";
        struct build b = { .log_fd = -1 };
        struct diag d = {};
        struct timespec t0, t_clean;
        int c, r;

        while ((c = getopt_long(argc, argv, "o:f:c:w:", options, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        out_arg = optarg;
                        break;
                case 'f':
                        fb_arg = optarg;
                        break;
                case 'c':
                        cache_arg = optarg;
                        break;
                case 'w':
                        work_arg = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (argc - optind != 1 || !out_arg) {
                log_error("Usage: imagebuild build SPEC -o DIR [--firstboot BIN] [--cache DIR] "
                          "[--work DIR]");
                return 2;
        }
        if (geteuid() != 0)
                return log_error_errno(-EPERM, "build: needs root (mmdebstrap, loop devices, "
                                       "mounts)");
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (getenv("SOURCE_DATE_EPOCH")) {
                const char *e = getenv("SOURCE_DATE_EPOCH");
                char *end;
                long long v;

                errno = 0;
                v = strtoll(e, &end, 10);
                if (errno || end == e || *end || v < 0)
                        return log_error_errno(-EINVAL, "build: SOURCE_DATE_EPOCH='%s' is not "
                                               "a number of seconds", e);
                b.reproducible = true;
                b.epoch = (time_t)v;
                /* mkfs.ext4's own timestamps (superblock, inodes it creates). */
                if (setenv("E2FSPROGS_FAKE_TIME", e, 1) < 0)
                        return log_error_errno(errno, "build: setenv: %m");
        }
        r = image_spec_parse_file(argv[optind], &spec, &d);
        if (r >= 0)
                r = image_spec_check_files(spec, &d);
        for (size_t i = 0; i < d.n; i++)
                log_error("stage check: %s", d.msgs[i]);
        diag_clear(&d);
        if (r < 0)
                return r;
        r = mkdir_parents(out_arg, 0755);
        if (r < 0)
                return log_error_errno(r, "build: cannot create %s: %m", out_arg);
        out = realpath(out_arg, NULL);
        fb = realpath(fb_arg, NULL);
        if (!out || !fb)
                return log_error_errno(errno, "build: %s: %m", out ? fb_arg : out_arg);
        if (cache_arg)
                cache = strdup(cache_arg);
        else
                r = asprintf_safe(&cache, "%s/cache", out);
        if (!cache)
                return -ENOMEM;
        b.spec = spec;
        b.out = out;
        b.cache = cache;
        b.firstboot = fb;
        b.scratch = work_arg;
        /* rootfs, overlay, bundle, disk, bootloader; then per output. */
        b.n_stages = 6 + (spec->outputs & OUTPUT_ISO ? 3 : 0) +
                     (spec->outputs & OUTPUT_QCOW2 ? 1 : 0);
        /* Outside OUT: an unpacked root is full of "*.d" directories, which a Makefile
         * that includes every "*.d" under its build directory would choke on. */
        if (asprintf_safe(&b.work, "%s/imagebuild.XXXXXX", work_arg) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        if (!mkdtemp(b.work)) {
                r = log_error_errno(errno, "build: cannot create a work directory in %s: %m",
                                    work_arg);
                free(b.work);
                b.work = NULL;
                goto finish;
        }
        if (asprintf_safe(&b.root, "%s/root", b.work) < 0 ||
            asprintf_safe(&b.top, "%s/top", b.work) < 0 ||
            asprintf_safe(&b.ovl_work, "%s/ovl-work", b.work) < 0 ||
            asprintf_safe(&b.log_path, "%s/build.log", out) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        b.log_fd = open(b.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (b.log_fd < 0) {
                r = log_error_errno(errno, "build: cannot create %s: %m", b.log_path);
                goto finish;
        }
        log_info("%s -> %s (log: %s)", argv[optind], out, b.log_path);
        r = stage_rootfs(&b, &tar);
        if (r >= 0)
                r = stage_base(&b, tar);
        if (r >= 0)
                r = stage_overlay(&b);
        if (r >= 0)
                r = stage_bundle(&b);
        if (r >= 0)
                r = stage_disk(&b);
        if (r >= 0 && (spec->outputs & OUTPUT_ISO))
                r = stage_iso(&b);
        /* The unpacked root and ISO tree are as large as the outputs: keep them only
         * after a failure, to look at. */
        clock_gettime(CLOCK_MONOTONIC, &t_clean);
        if (r >= 0) {
                b.stage_name = "cleanup";
                r = ovl_umount(&b);
                if (r >= 0)
                        r = RUN(&b, "rm", "-rf", "--one-file-system", b.work);
        }
        if (r >= 0) {
                char times[512];
                size_t n = 0;

                times[0] = 0;
                for (unsigned i = 0; i < b.stage && i < ELEMENTSOF(b.stage_secs); i++)
                        if (b.stage_names[i] && n < sizeof times)
                                n += (size_t)snprintf(times + n, sizeof times - n, "%s%s %.1f s",
                                                      i ? ", " : "", b.stage_names[i],
                                                      b.stage_secs[i]);
                log_info("done in %.1f s (%s; cleanup %.1f s)", elapsed(&t0), times,
                         elapsed(&t_clean));
                blog(&b, "==== done in %.1f s (%s)\n", elapsed(&t0), times);
        }
finish:
        (void)ovl_umount(&b);
        if (r < 0 && b.work)
                log_error("build: the work directory %s is kept to look at; remove it when "
                          "done", b.work);
        if (b.log_fd >= 0)
                close(b.log_fd);
        free(b.work);
        free(b.root);
        free(b.base);
        free(b.top);
        free(b.ovl_work);
        free(b.base_sq);
        free(b.log_path);
        return r;
}
