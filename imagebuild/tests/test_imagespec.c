/* SPDX-License-Identifier: MIT */
/* Unit tests of the image spec parser: the shipped specs, defaults, every refused input
 * with its file:line:col, file checks, and `imagebuild check` through the binary. Run
 * with cwd firstboot/tests (run-tests.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "imagespec.h"
#include "util.h"

#define CONFIGS "../../configs/"

static bool diag_has(const struct diag *d, const char *sub) {
        for (size_t i = 0; i < d->n; i++)
                if (strstr(d->msgs[i], sub))
                        return true;
        for (size_t i = 0; i < d->n; i++)
                print_message("#   got: %s\n", d->msgs[i]);
        return false;
}

static struct image_spec *parse_ok(const char *yaml) {
        struct image_spec *s = NULL;
        struct diag d = {};
        int r = image_spec_parse_string(yaml, strlen(yaml), "t.yaml", "/base", &s, &d);

        for (size_t i = 0; i < d.n; i++)
                print_message("#   %s\n", d.msgs[i]);
        assert_int_equal(r, 0);
        assert_int_equal(d.n, 0);
        diag_clear(&d);
        return s;
}

/* Parses yaml, expects a refusal with a message containing `want`. */
static void parse_bad(const char *yaml, const char *want) {
        _cleanup_image_spec_ struct image_spec *s = NULL;
        struct diag d = {};
        int r = image_spec_parse_string(yaml, strlen(yaml), "t.yaml", "/base", &s, &d);

        assert_int_equal(r, -EINVAL);
        assert_null(s);
        assert_true(diag_has(&d, want));
        diag_clear(&d);
}

static void test_shipped_specs(void **state) {
        static const char *const files[] = { CONFIGS "image.yaml", CONFIGS "image-test.yaml" };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_image_spec_ struct image_spec *s = NULL;
                struct diag d = {};
                int r = image_spec_parse_file(files[i], &s, &d);

                if (r >= 0)
                        r = image_spec_check_files(s, &d);
                for (size_t j = 0; j < d.n; j++)
                        print_message("#   %s\n", d.msgs[j]);
                assert_int_equal(r, 0);
                assert_true(endswith(s->overlays, "configs/../overlays/rootfs"));
                assert_non_null(s->cluster_config);
                assert_int_equal(s->outputs, OUTPUT_ISO | OUTPUT_QCOW2);
                diag_clear(&d);
        }
}

static void test_full(void **state) {
        _cleanup_image_spec_ struct image_spec *s = parse_ok(
                "name: edge-1\n"
                "suite: trixie\n"
                "packages: [keepalived, haproxy, etcd-server, g++]\n"
                "overlays: ov\n"
                "bundle: /srv/bundle\n"
                "cluster_config: c/cluster.yaml\n"
                "kernel_cmdline: console=ttyS0,115200 quiet\n"
                "disk_size: 16G\n"
                "outputs: [qcow2]\n");

        (void)state;
        assert_string_equal(s->name, "edge-1");
        assert_string_equal(s->suite, "trixie");
        /* sorted: the cache key ignores order */
        assert_int_equal(strv_length(s->packages), 4);
        assert_string_equal(s->packages[0], "etcd-server");
        assert_string_equal(s->packages[1], "g++");
        assert_string_equal(s->packages[3], "keepalived");
        assert_string_equal(s->overlays, "/base/ov");
        assert_string_equal(s->bundle, "/srv/bundle");
        assert_string_equal(s->cluster_config, "/base/c/cluster.yaml");
        assert_string_equal(s->kernel_cmdline, "console=ttyS0,115200 quiet");
        assert_true(s->disk_size == 16ULL << 30);
        assert_int_equal(s->outputs, OUTPUT_QCOW2);
}

static void test_defaults(void **state) {
        _cleanup_image_spec_ struct image_spec *s = parse_ok("name: x\n");

        (void)state;
        assert_string_equal(s->suite, "bookworm");
        assert_null(s->packages);
        assert_null(s->overlays);
        assert_null(s->bundle);
        assert_null(s->cluster_config);
        assert_string_equal(s->kernel_cmdline, "");
        assert_true(s->disk_size == 4ULL << 30);
        assert_int_equal(s->outputs, OUTPUT_ISO | OUTPUT_QCOW2);
}

static void test_unknown_key(void **state) {
        (void)state;
        parse_bad("name: x\nmirror: http://deb.debian.org/debian\n",
                  "t.yaml:2:1: mirror: unknown key");
        parse_bad("name: x\nname: y\n", "t.yaml:2:1: name: written twice");
}

static void test_bad_values(void **state) {
        (void)state;
        parse_bad("name: 'a b'\n", "t.yaml:1:7: name: 'a b' is not a valid image name");
        parse_bad("suite: Bookworm\n", "t.yaml:1:8: suite: 'Bookworm' is not a Debian suite");
        parse_bad("packages:\n  - ok-pkg\n  - Bad_Pkg\n",
                  "t.yaml:3:5: packages: 'Bad_Pkg' is not a valid Debian package name");
        parse_bad("packages: [a1, a1]\n", "t.yaml:1:16: packages: 'a1' is listed twice");
        parse_bad("packages: vim\n", "t.yaml:1:11: packages: expected a list");
        parse_bad("disk_size: 4X\n", "t.yaml:1:12: disk_size: '4X' is not a size");
        parse_bad("disk_size: 100M\n", "disk_size: 100M is out of range");
        parse_bad("disk_size: 99999999999999999999999G\n", "is not a size");
        parse_bad("outputs: [iso, vmdk]\n", "t.yaml:1:16: outputs: unknown output 'vmdk'");
        parse_bad("outputs: [iso, iso]\n", "outputs: 'iso' is listed twice");
        parse_bad("outputs: []\n", "outputs: no output");
        parse_bad("kernel_cmdline: \"a\\nb\"\n", "kernel_cmdline: must not contain newlines");
        parse_bad("kernel_cmdline: 'x;reboot'\n", "kernel_cmdline: must not contain");
        parse_bad("overlays: {a: b}\n", "t.yaml:1:11: overlays: expected a single value");
        parse_bad("overlays: ''\n", "overlays: empty path");
}

static void test_bad_yaml(void **state) {
        (void)state;
        parse_bad("name: [x\n", "t.yaml:2:1: invalid YAML");
        parse_bad("- a\n- b\n", "t.yaml:1:1: an image spec is a mapping");
        parse_bad("", "t.yaml: empty image spec");
        parse_bad("name: a\n---\nname: b\n", "more than one YAML document");
}

static void test_sizes(void **state) {
        uint64_t v;

        (void)state;
        assert_int_equal(parse_size("4G", &v), 0);
        assert_true(v == 4ULL << 30);
        assert_int_equal(parse_size("512MiB", &v), 0);
        assert_true(v == 512ULL << 20);
        assert_int_equal(parse_size("1073741824", &v), 0);
        assert_true(v == 1ULL << 30);
        assert_int_equal(parse_size("-1G", &v), -EINVAL);
        assert_int_equal(parse_size("G", &v), -EINVAL);
        assert_int_equal(parse_size("1g", &v), -EINVAL);
        assert_int_equal(parse_size("17179869184T", &v), -ERANGE);
}

static void test_check_files(void **state) {
        _cleanup_image_spec_ struct image_spec *s = NULL;
        struct diag d = {};
        static const char yaml[] = "overlays: /nonexistent-overlays\n"
                                   "cluster_config: ../../configs/image.yaml\n"
                                   "bundle: /nonexistent-bundle\n";

        (void)state;
        assert_int_equal(image_spec_parse_string(yaml, strlen(yaml), "t.yaml", NULL, &s, &d), 0);
        assert_int_equal(image_spec_check_files(s, &d), -EINVAL);
        assert_true(diag_has(&d, "overlays: overlays /nonexistent-overlays: No such file"));
        /* an image spec is not a cluster config: its keys are unknown there */
        assert_true(diag_has(&d, "cluster_config: ../../configs/image.yaml is not a valid"));
        assert_true(diag_has(&d, "bundle: bundle /nonexistent-bundle: No such file"));
        diag_clear(&d);
}

static int run(const char *cmd) {
        int st = system(cmd);

        assert_true(WIFEXITED(st));
        return WEXITSTATUS(st);
}

static void test_cli(void **state) {
        (void)state;
        assert_int_equal(run(IMAGEBUILD_BIN " --help >/dev/null"), 0);
        assert_int_equal(run(IMAGEBUILD_BIN " check " CONFIGS "image.yaml >/dev/null"), 0);
        assert_int_equal(run(IMAGEBUILD_BIN " check /nonexistent.yaml 2>/dev/null"), 1);
        assert_int_equal(run(IMAGEBUILD_BIN " check " CONFIGS "default.yaml 2>&1 | "
                                            "grep -q 'default.yaml:[0-9]*:[0-9]*: cluster: "
                                            "unknown key'"),
                         0);
        assert_int_equal(run(IMAGEBUILD_BIN " frobnicate 2>/dev/null"), 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shipped_specs), cmocka_unit_test(test_full),
                cmocka_unit_test(test_defaults),      cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_bad_values),    cmocka_unit_test(test_bad_yaml),
                cmocka_unit_test(test_sizes),         cmocka_unit_test(test_check_files),
                cmocka_unit_test(test_cli),
        };

        return cmocka_run_group_tests_name("imagespec", tests, NULL, NULL);
}
