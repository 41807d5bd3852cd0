/* SPDX-License-Identifier: MIT */
/* Host facts: the /proc/meminfo parser on fixtures, then the real probe against
 * independent sources (uname, get_nprocs, sysinfo). Read-only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include "inventory.h"
#include "util.h"

#define SENTINEL UINT64_C(0xdeadbeef)

static void test_meminfo_ok(void **state) {
        uint64_t v = 0;
        (void)state;

        assert_int_equal(meminfo_parse_total("MemTotal:       24684096 kB\nMemFree: 1 kB\n", &v), 0);
        assert_int_equal(v, UINT64_C(24684096) * 1024);

        /* Not the first line, tabs, no trailing newline. */
        assert_int_equal(meminfo_parse_total("MemFree: 5 kB\nMemTotal:\t2048 kB", &v), 0);
        assert_int_equal(v, UINT64_C(2048) * 1024);

        /* A bare number is bytes. */
        assert_int_equal(meminfo_parse_total("MemTotal: 4096\n", &v), 0);
        assert_int_equal(v, 4096);

        /* Only a key at the start of a line counts. */
        assert_int_equal(meminfo_parse_total("XMemTotal: 1 kB\nMemTotal: 3 kB\n", &v), 0);
        assert_int_equal(v, 3072);
}

static void test_meminfo_bad(void **state) {
        static const struct {
                const char *text;
                int error;
        } cases[] = {
                { "", -ENODATA },
                { "MemFree: 5 kB\n", -ENODATA },
                { "MemTotalX: 5 kB\n", -ENODATA },
                { "MemTotal:\n", -EBADMSG },
                { "MemTotal: kB\n", -EBADMSG },
                { "MemTotal: -5 kB\n", -EBADMSG },
                { "MemTotal: 0 kB\n", -EBADMSG },
                { "MemTotal: 12 MB\n", -EBADMSG },
                { "MemTotal: 12 kB junk\n", -EBADMSG },
                { "MemTotal: 99999999999999999999 kB\n", -ERANGE },
                /* Fits in 64 bits as kB, not once multiplied by 1024. */
                { "MemTotal: 18014398509481984 kB\n", -ERANGE },
        };
        (void)state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = SENTINEL;

                print_message("# case %zu\n", i);
                assert_int_equal(meminfo_parse_total(cases[i].text, &v), cases[i].error);
                assert_int_equal(v, SENTINEL); /* untouched on failure */
        }
}

static void test_probe_host(void **state) {
        struct inventory inv = {};
        struct utsname u;
        struct sysinfo si;
        (void)state;

        assert_int_equal(inventory_probe_host(&inv), 0);
        assert_non_null(inv.hostname);
        assert_int_equal(uname(&u), 0);
        assert_string_equal(inv.hostname, u.nodename);

        assert_true(inv.cpus >= 1);
        assert_int_equal(inv.cpus, (unsigned)get_nprocs());

        assert_true(inv.memory_bytes > 0);
        assert_int_equal(sysinfo(&si), 0);
        assert_int_equal(inv.memory_bytes, (uint64_t)si.totalram * si.mem_unit);

        /* Probing again replaces, and frees, the earlier hostname. */
        assert_int_equal(inventory_probe_host(&inv), 0);
        assert_string_equal(inv.hostname, u.nodename);
        free(inv.hostname);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_meminfo_ok),
                cmocka_unit_test(test_meminfo_bad),
                cmocka_unit_test(test_probe_host),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
