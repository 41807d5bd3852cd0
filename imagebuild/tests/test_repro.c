/* SPDX-License-Identifier: MIT */
/* Byte-identical disks: the GPT libparted writes with derived GUIDs (valid for sgdisk and
 * sfdisk, the GUIDs expected, two runs identical) and ext4 inode change times set by
 * debugfs after mkfs.ext4 -d (two file systems from trees written at different times are
 * identical). Works on image files in a temporary directory; no root needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ext4time.h"
#include "gpt.h"
#include "tmpdir_fixture.h"
#include "util.h"

#define EPOCH 1700000000
#define UUID "0f8b2a51-3c7e-4d0a-9d5e-6a1b2c3d4e5f"

static int setup(void **state) {
        return tmpdir_setup(state, "test_repro");
}

static int teardown(void **state) {
        return tmpdir_teardown(state);
}

static _printf_(2, 3) int sh(char **ret_out, const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = run_command((char *[]){ "sh", "-c", cmd, NULL }, &out);
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        return r;
}

static void make_file(const char *path, uint64_t size) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        close(fd);
}

static void partition(const char *dir, const char *name, const char *seed) {
        _cleanup_free_ char *p = NULL;

        assert_true(asprintf_safe(&p, "%s/%s", dir, name) >= 0);
        make_file(p, 256ull << 20);
        assert_int_equal(disk_partition(p), 0);
        if (seed)
                assert_int_equal(gpt_derive_guids(p, seed), 0);
}

static void test_gpt_guids(void **state) {
        const char *dir = *state;
        _cleanup_free_ char *out = NULL;
        uint8_t g[16];
        char want[37];

        partition(dir, "a.raw", "seed-1");
        partition(dir, "b.raw", "seed-1");
        partition(dir, "c.raw", "seed-2");
        partition(dir, "r1.raw", NULL);
        partition(dir, "r2.raw", NULL);
        /* libparted alone: random GUIDs. */
        assert_int_not_equal(sh(NULL, "cmp -s %s/r1.raw %s/r2.raw", dir, dir), 0);
        /* Derived: two runs identical, another seed differs. */
        assert_int_equal(sh(NULL, "cmp %s/a.raw %s/b.raw", dir, dir), 0);
        assert_int_not_equal(sh(NULL, "cmp -s %s/a.raw %s/c.raw", dir, dir), 0);
        /* A valid table for both tools (both headers and arrays, CRCs). */
        assert_int_equal(sh(&out, "sgdisk -v %s/a.raw", dir), 0);
        assert_non_null(strstr(out, "No problems found"));
        free(out);
        assert_int_equal(sh(&out, "sfdisk --verify %s/a.raw 2>&1", dir), 0);
        assert_non_null(strstr(out, "No errors detected"));
        free(out);
        /* The GUIDs expected, as the tools read them. */
        gpt_guid_derive("seed-1", "disk", g);
        gpt_guid_format(g, want);
        assert_int_equal(sh(&out, "sgdisk -p %s/a.raw", dir), 0);
        assert_non_null(strstr(out, want));
        free(out);
        gpt_guid_derive("seed-1", "partition root", g);
        gpt_guid_format(g, want);
        assert_int_equal(sh(&out, "sgdisk -i 3 %s/a.raw", dir), 0);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "'root'"));
        free(out);
        gpt_guid_derive("seed-1", "partition esp", g);
        gpt_guid_format(g, want);
        assert_int_equal(sh(&out, "sgdisk -i 2 %s/a.raw", dir), 0);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "EFI system partition"));
        free(out);
        /* The backup alone is valid too (the primary header wiped). */
        assert_int_equal(sh(NULL, "dd if=/dev/zero of=%s/a.raw bs=512 seek=1 count=1 "
                            "conv=notrunc status=none", dir), 0);
        assert_int_equal(sh(&out, "sgdisk -v %s/a.raw 2>&1", dir), 0);
        gpt_guid_derive("seed-1", "disk", g);
        gpt_guid_format(g, want);
        free(out);
        assert_int_equal(sh(&out, "sgdisk -p %s/a.raw 2>&1", dir), 0);
        assert_non_null(strstr(out, want));
        /* Not a GPT: refused, file untouched. */
        partition(dir, "r3.raw", NULL);
        assert_int_equal(sh(NULL, "dd if=/dev/zero of=%s/r3.raw bs=512 count=34 conv=notrunc "
                            "status=none", dir), 0);
        {
                _cleanup_free_ char *p = NULL;

                assert_true(asprintf_safe(&p, "%s/r3.raw", dir) >= 0);
                assert_int_equal(gpt_derive_guids(p, "seed-1"), -EBADMSG);
        }
}

/* A tree the way a build writes one: now, so its ctimes are now. */
static void write_tree(const char *dir, const char *name) {
        assert_int_equal(sh(NULL, "cd %s && rm -rf %s && mkdir -p %s/etc/sub && "
                            "echo hi > %s/etc/sub/f && echo x > '%s/a b\"c' && "
                            "ln -s /etc/sub/f %s/etc/link && ln %s/etc/sub/f %s/hard && "
                            "touch -h -d @%d %s/etc/sub/f %s/etc/link '%s/a b\"c' %s/etc/sub "
                            "%s/etc %s", dir, name, name, name, name, name, name, name, EPOCH,
                            name, name, name, name, name, name), 0);
}

static void make_fs(const char *dir, const char *img, const char *tree) {
        assert_int_equal(sh(NULL, "cd %s && truncate -s 32M %s && E2FSPROGS_FAKE_TIME=%d "
                            "mkfs.ext4 -q -F -T default -U " UUID " -E hash_seed=" UUID
                            ",offset=1048576,root_owner=0:0 -d %s %s 16M", dir, img, EPOCH,
                            tree, img), 0);
}

static void test_ext4_times(void **state) {
        const char *dir = *state;
        _cleanup_free_ char *img1 = NULL, *img2 = NULL, *tree = NULL, *out = NULL;
        size_t n = 0;

        assert_true(asprintf_safe(&img1, "%s/1.img", dir) >= 0);
        assert_true(asprintf_safe(&img2, "%s/2.img", dir) >= 0);
        assert_true(asprintf_safe(&tree, "%s/t", dir) >= 0);
        write_tree(dir, "t");
        make_fs(dir, "1.img", "t");
        /* The same tree written again a second later: other ctimes; its directories
         * read, which moves their atimes. */
        sleep(1);
        write_tree(dir, "t");
        assert_int_equal(sh(NULL, "ls -R %s/t >/dev/null", dir), 0);
        make_fs(dir, "2.img", "t");
        assert_int_not_equal(sh(NULL, "cmp -s %s %s", img1, img2), 0);

        assert_int_equal(ext4_set_times(img1, 1048576, tree, EPOCH, &n), 0);
        assert_int_equal(n, 7);
        assert_int_equal(ext4_set_times(img2, 1048576, tree, EPOCH, NULL), 0);
        assert_int_equal(sh(NULL, "cmp %s %s", img1, img2), 0);
        /* Every inode's ctime and atime, the symlink's own included, and still a clean
         * file system. */
        assert_int_equal(sh(&out, "for p in / /etc /etc/sub /etc/sub/f /etc/link "
                            "'\"/a b\"\"c\"'; do debugfs -R \"stat $p\" '%s?offset=1048576' "
                            "2>/dev/null | grep -E ' (c|a)time:'; done", img1), 0);
        assert_int_equal(sh(NULL, "test $(echo '%s' | grep -c 0x6553f100:00000000) = 12", out),
                         0);
        assert_int_equal(sh(NULL, "cd %s && dd if=1.img of=fs.img bs=1M skip=1 status=none && "
                            "e2fsck -fn fs.img", dir), 0);

        /* A file the file system lacks: the failure is reported, not swallowed. */
        assert_int_equal(sh(NULL, "echo new > %s/t/etc/not-in-fs", dir), 0);
        assert_int_equal(ext4_set_times(img1, 1048576, tree, EPOCH, NULL), -EIO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_gpt_guids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ext4_times, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
