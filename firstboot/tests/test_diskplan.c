/* SPDX-License-Identifier: MIT */
/* Disk planner on fixture inventories: no hardware involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "diskplan.h"
#include "util.h"

#define GiB (1ULL << 30)

static struct signature sig_ext4_disk[] = { { .type = "ext4", .usage = SIG_FILESYSTEM, .where = "disk", .label = "old" } };
static struct signature sig_dos_ext4[] = {
        { .type = "dos", .usage = SIG_PTABLE, .where = "disk" },
        { .type = "ext4", .usage = SIG_FILESYSTEM, .where = "sdc1" },
};
static struct signature sig_raid[] = { { .type = "linux_raid_member", .usage = SIG_RAID, .where = "disk" } };
static struct signature sig_lvm[] = { { .type = "LVM2_member", .usage = SIG_LVM, .where = "disk" } };
static struct signature sig_prepared[] = {
        { .type = "gpt", .usage = SIG_PTABLE, .where = "disk" },
        { .type = "ext4", .usage = SIG_FILESYSTEM, .where = "sdb1", .label = "rb-data", .uuid = "1111" },
};
static struct signature sig_half[] = { { .type = "gpt", .usage = SIG_PTABLE, .where = "disk" } };
static struct partition part_prepared[] = { { .name = "sdb1", .path = "/dev/sdb1", .number = 1, .partlabel = "rainboot-data" } };

static struct disk mk(const char *path, uint64_t size, bool rot) {
        return (struct disk){ .path = (char *)path, .name = (char *)path + 5, .size_bytes = size,
                              .rotational = rot, .logical_sector = 512, .physical_sector = 512 };
}

static struct config base_config(void) {
        return (struct config){
                .data_mount = "/opt/rainbond",
                .cache_mount = "/opt/rainbond/cache",
                .services_mount = "/var/lib/rainboot/data",
                .wipe = WIPE_EMPTY_ONLY,
                .expected_nodes = 1,
        };
}

static struct disk_plan *plan(struct disk *disks, size_t n, const struct config *cfg) {
        struct inventory inv = { .disks = disks, .n_disks = n };
        struct disk_plan *p = NULL;

        assert_int_equal(disk_plan_compute(&inv, cfg, &p), 0);
        assert_non_null(p);
        assert_int_equal(p->n_disks, n);
        for (size_t i = 0; i < n; i++)
                assert_non_null(p->disks[i].reason); /* every disk gets a reason */
        for (int t = 0; t < _TARGET_MAX; t++)
                assert_non_null(p->targets[t].reason);
        return p;
}

static const struct disk_choice *choice(const struct disk_plan *p, struct disk *disks, const char *path) {
        for (size_t i = 0; i < p->n_disks; i++)
                if (streq(disks[p->disks[i].disk].path, path))
                        return &p->disks[i];
        fail_msg("no choice for %s", path);
        return NULL;
}

static void test_no_disks(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk_plan *p = plan(NULL, 0, &cfg);

        for (int t = 0; t < _TARGET_MAX; t++) {
                assert_int_equal(p->targets[t].disk, -1);
        }
        assert_int_equal(p->targets[TARGET_DATA].shares, -1);
        assert_non_null(strstr(p->targets[TARGET_DATA].reason, "system disk"));
        assert_non_null(p->warnings);
        assert_non_null(strstr(p->warnings[0], "no data disk"));
        disk_plan_free(p);
}

static void test_only_boot_disk(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/vda", 40 * GiB, true) };
        d[0].holds_system = true;
        struct disk_plan *p = plan(d, 1, &cfg);

        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "running system"));
        assert_int_equal(p->targets[TARGET_DATA].disk, -1);
        disk_plan_free(p);

        /* Listing it and forcing changes nothing. */
        char *devs[] = { "/dev/vda", NULL };
        cfg.disk_devices = devs;
        cfg.wipe = WIPE_FORCE_LISTED;
        cfg.force_members = true;
        p = plan(d, 1, &cfg);
        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "refused anyway"));
        disk_plan_free(p);
}

static void test_boot_medium_refused(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sda", 8 * GiB, true) };
        d[0].boot_medium = true;
        d[0].removable = true;
        struct disk_plan *p = plan(d, 1, &cfg);
        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "boot medium"));
        disk_plan_free(p);
}

static void test_ssd_hdd_mix(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = {
                mk("/dev/vda", 40 * GiB, true),
                mk("/dev/sdb", 500 * GiB, true),
                mk("/dev/nvme0n1", 200 * GiB, false),
        };
        d[0].holds_system = true;
        struct disk_plan *p = plan(d, 3, &cfg);

        assert_int_equal(choice(p, d, "/dev/sdb")->verdict, DISK_FORMAT);
        assert_int_equal(choice(p, d, "/dev/sdb")->target, TARGET_DATA);
        assert_int_equal(choice(p, d, "/dev/nvme0n1")->verdict, DISK_FORMAT);
        assert_int_equal(choice(p, d, "/dev/nvme0n1")->target, TARGET_CACHE);
        assert_non_null(strstr(p->targets[TARGET_CACHE].reason, "SSD"));
        /* services has no disk of its own: it goes beside the cache on the SSD */
        assert_int_equal(p->targets[TARGET_SERVICES].disk, -1);
        assert_int_equal(p->targets[TARGET_SERVICES].shares, TARGET_CACHE);
        assert_null(p->warnings);
        disk_plan_free(p);
}

static void test_single_ssd_goes_to_data(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/nvme0n1", 100 * GiB, false) };
        struct disk_plan *p = plan(d, 1, &cfg);

        assert_int_equal(p->disks[0].target, TARGET_DATA);
        assert_int_equal(p->targets[TARGET_CACHE].shares, TARGET_DATA);
        assert_int_equal(p->targets[TARGET_SERVICES].shares, TARGET_DATA);
        disk_plan_free(p);
}

static void test_old_filesystem(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sdb", 100 * GiB, true), mk("/dev/sdc", 100 * GiB, true) };
        d[0].sigs = sig_ext4_disk;
        d[0].n_sigs = 1;
        d[1].pttype = "dos";
        d[1].sigs = sig_dos_ext4;
        d[1].n_sigs = 2;
        struct disk_plan *p = plan(d, 2, &cfg);

        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "holds data (ext4 (label old))"));
        assert_int_equal(p->disks[1].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[1].reason, "dos partition table, ext4 on sdc1"));
        assert_int_equal(p->targets[TARGET_DATA].disk, -1);
        disk_plan_free(p);

        /* force-listed but not listed: still refused */
        cfg.wipe = WIPE_FORCE_LISTED;
        char *devs[] = { "/dev/sdc", NULL };
        cfg.disk_devices = devs;
        p = plan(d, 2, &cfg);
        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "not listed"));
        assert_int_equal(p->disks[1].verdict, DISK_FORMAT);
        assert_true(p->disks[1].overwrites);
        assert_non_null(strstr(p->disks[1].reason, "will be destroyed"));
        assert_non_null(p->warnings);
        assert_non_null(strstr(p->warnings[0], "/dev/sdc will be overwritten"));
        disk_plan_free(p);

        /* listed, but policy only empty-only: refused */
        cfg.wipe = WIPE_EMPTY_ONLY;
        p = plan(d, 2, &cfg);
        assert_int_equal(p->disks[1].verdict, DISK_REFUSED);
        disk_plan_free(p);
}

static void test_raid_and_lvm_members(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sdb", 100 * GiB, true), mk("/dev/sdc", 100 * GiB, true) };
        d[0].sigs = sig_raid;
        d[0].n_sigs = 1;
        d[1].sigs = sig_lvm;
        d[1].n_sigs = 1;
        char *devs[] = { "/dev/sdb", "/dev/sdc", NULL };
        struct disk_plan *p = plan(d, 2, &cfg);

        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "linux_raid_member"));
        assert_int_equal(p->disks[1].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[1].reason, "LVM2_member"));
        disk_plan_free(p);

        /* listed + force-listed is not enough for members */
        cfg.wipe = WIPE_FORCE_LISTED;
        cfg.disk_devices = devs;
        p = plan(d, 2, &cfg);
        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_int_equal(p->disks[1].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[0].reason, "force_members"));
        disk_plan_free(p);

        /* ... only force_members on top of it */
        cfg.force_members = true;
        p = plan(d, 2, &cfg);
        assert_int_equal(p->disks[0].verdict, DISK_FORMAT);
        assert_int_equal(p->disks[1].verdict, DISK_FORMAT);
        assert_true(p->disks[0].overwrites);
        disk_plan_free(p);
}

static void test_many_disks(void **state) {
        (void)state;
        struct config cfg = base_config();
        char paths[12][16];
        struct disk d[12];

        for (int i = 0; i < 12; i++) {
                snprintf(paths[i], sizeof paths[i], "/dev/sd%c", 'b' + i);
                d[i] = mk(paths[i], (uint64_t)(100 + i) * GiB, i != 5 && i != 9);
        }
        struct disk_plan *p = plan(d, 12, &cfg);
        size_t format = 0, spare = 0;

        for (size_t i = 0; i < 12; i++) {
                format += p->disks[i].verdict == DISK_FORMAT;
                spare += p->disks[i].verdict == DISK_SPARE;
        }
        assert_int_equal(format, 3);
        assert_int_equal(spare, 9);
        /* data: largest HDD (sdm, 111 GiB); cache: largest SSD (sdk, 109 GiB);
         * services: the other SSD (sdg). */
        assert_string_equal(d[p->targets[TARGET_DATA].disk].path, "/dev/sdm");
        assert_string_equal(d[p->targets[TARGET_CACHE].disk].path, "/dev/sdk");
        assert_string_equal(d[p->targets[TARGET_SERVICES].disk].path, "/dev/sdg");
        assert_non_null(strstr(choice(p, d, "/dev/sdb")->reason, "already have a disk"));
        disk_plan_free(p);
}

static void test_deterministic_under_shuffle(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk a[] = { mk("/dev/sdb", 100 * GiB, true), mk("/dev/sdc", 100 * GiB, true),
                            mk("/dev/sdd", 50 * GiB, false), mk("/dev/sde", 50 * GiB, false) };
        struct disk b[] = { a[3], a[1], a[2], a[0] };
        struct disk_plan *p = plan(a, 4, &cfg), *q = plan(b, 4, &cfg);

        for (int t = 0; t < _TARGET_MAX; t++)
                assert_string_equal(a[p->targets[t].disk].path, b[q->targets[t].disk].path);
        assert_string_equal(a[p->targets[TARGET_DATA].disk].path, "/dev/sdb");
        assert_string_equal(a[p->targets[TARGET_CACHE].disk].path, "/dev/sdd");
        disk_plan_free(p);
        disk_plan_free(q);
}

static void test_prepared_disk_reused(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sda", 300 * GiB, true), mk("/dev/sdb", 100 * GiB, true) };
        d[1].pttype = "gpt";
        d[1].parts = part_prepared;
        d[1].n_parts = 1;
        d[1].sigs = sig_prepared;
        d[1].n_sigs = 2;
        struct disk_plan *p = plan(d, 2, &cfg);

        /* the smaller disk keeps data because it already holds it; the blank larger one
         * becomes services storage rather than stealing the data role */
        assert_int_equal(choice(p, d, "/dev/sdb")->verdict, DISK_REUSE);
        assert_int_equal(choice(p, d, "/dev/sdb")->target, TARGET_DATA);
        assert_int_equal(choice(p, d, "/dev/sda")->verdict, DISK_FORMAT);
        assert_int_equal(choice(p, d, "/dev/sda")->target, TARGET_SERVICES);
        disk_plan_free(p);

        /* wipe: never still reuses nothing and writes nothing */
        cfg.wipe = WIPE_NEVER;
        p = plan(d, 2, &cfg);
        assert_int_equal(p->disks[0].verdict, DISK_REFUSED);
        assert_int_equal(p->disks[1].verdict, DISK_REFUSED);
        assert_non_null(strstr(p->disks[1].reason, "never"));
        disk_plan_free(p);
}

static void test_half_prepared_disk_redone(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sdb", 100 * GiB, true) };
        d[0].pttype = "gpt";
        d[0].parts = part_prepared;
        d[0].n_parts = 1;
        d[0].sigs = sig_half;
        d[0].n_sigs = 1;
        struct disk_plan *p = plan(d, 1, &cfg);

        assert_int_equal(p->disks[0].verdict, DISK_FORMAT);
        assert_int_equal(p->disks[0].target, TARGET_DATA);
        assert_false(p->disks[0].overwrites);
        assert_non_null(strstr(p->targets[TARGET_DATA].reason, "formatted again"));
        disk_plan_free(p);
}

static void test_small_removable_in_use_readonly(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sdb", 512ULL << 20, true), mk("/dev/sdc", 32 * GiB, true),
                            mk("/dev/sdd", 32 * GiB, true), mk("/dev/sde", 32 * GiB, true) };
        d[1].removable = true;
        d[2].in_use = "mounted at /mnt/backup";
        d[3].readonly = true;
        struct disk_plan *p = plan(d, 4, &cfg);

        assert_non_null(strstr(p->disks[0].reason, "too small"));
        assert_non_null(strstr(p->disks[1].reason, "removable"));
        assert_non_null(strstr(p->disks[2].reason, "mounted at /mnt/backup"));
        assert_non_null(strstr(p->disks[3].reason, "read-only"));
        for (int i = 0; i < 4; i++)
                assert_int_equal(p->disks[i].verdict, DISK_REFUSED);
        disk_plan_free(p);

        /* a listed removable disk is accepted when blank */
        char *devs[] = { "/dev/sdc", NULL };
        cfg.disk_devices = devs;
        p = plan(d, 4, &cfg);
        assert_int_equal(p->disks[1].verdict, DISK_FORMAT);
        disk_plan_free(p);
}

static void test_json(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct disk d[] = { mk("/dev/sdb", 100 * GiB, true) };
        struct inventory inv = { .disks = d, .n_disks = 1 };
        struct disk_plan *p = plan(d, 1, &cfg);
        char *s = NULL;

        assert_int_equal(disk_plan_to_json(p, &inv, &s), 0);
        assert_non_null(strstr(s, "\"verdict\": \"format\""));
        assert_non_null(strstr(s, "\"mount\": \"/opt/rainbond\""));
        free(s);
        disk_plan_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_disks),
                cmocka_unit_test(test_only_boot_disk),
                cmocka_unit_test(test_boot_medium_refused),
                cmocka_unit_test(test_ssd_hdd_mix),
                cmocka_unit_test(test_single_ssd_goes_to_data),
                cmocka_unit_test(test_old_filesystem),
                cmocka_unit_test(test_raid_and_lvm_members),
                cmocka_unit_test(test_many_disks),
                cmocka_unit_test(test_deterministic_under_shuffle),
                cmocka_unit_test(test_prepared_disk_reused),
                cmocka_unit_test(test_half_prepared_disk_redone),
                cmocka_unit_test(test_small_removable_in_use_readonly),
                cmocka_unit_test(test_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
