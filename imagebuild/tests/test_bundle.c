/* SPDX-License-Identifier: MIT */
/* Unit tests of the offline bundle manifest: good, missing file, wrong hash, wrong size,
 * unknown kind, duplicate name, paths escaping the bundle, `bundle add` creating and
 * updating, verified copy into an image, and the CLI. Each test works in its own
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bundle.h"
#include "tmpdir_fixture.h"
#include "util.h"

/* sha256("hello\n") */
#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static int setup(void **state) {
        return tmpdir_setup(state, "test_bundle");
}

static int teardown(void **state) {
        return tmpdir_teardown(state);
}

static void put(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *p = NULL;

        assert_int_equal(asprintf_safe(&p, "%s/%s", dir, name), 0);
        assert_int_equal(write_file_atomic(p, content, strlen(content), 0644), 0);
}

static void manifest(const char *dir, const char *artifacts) {
        _cleanup_free_ char *m = NULL;

        assert_int_equal(asprintf_safe(&m, "{ \"version\": 1, \"artifacts\": [ %s ] }", artifacts),
                         0);
        put(dir, BUNDLE_MANIFEST, m);
}

static bool diag_has(const struct diag *d, const char *sub) {
        for (size_t i = 0; i < d->n; i++)
                if (strstr(d->msgs[i], sub))
                        return true;
        for (size_t i = 0; i < d->n; i++)
                print_message("#   got: %s\n", d->msgs[i]);
        return false;
}

#define ENTRY(name, kind, file, size, sha)                                                     \
        "{\"name\":\"" name "\",\"kind\":\"" kind "\",\"file\":\"" file "\",\"size\":" #size   \
        ",\"sha256\":\"" sha "\"}"

/* Loads and verifies; returns the first failing step's result. */
static int load_verify(const char *dir, struct diag *d) {
        _cleanup_bundle_ struct bundle *b = NULL;
        int r = bundle_load(dir, &b, d);

        if (r < 0) {
                assert_null(b);
                return r;
        }
        return bundle_verify(b, d);
}

static void test_good(void **state) {
        const char *dir = *state;
        _cleanup_bundle_ struct bundle *b = NULL;
        struct diag d = {};

        put(dir, "hello.bin", "hello\n");
        manifest(dir, ENTRY("hello", "binary", "hello.bin", 6, HELLO_SHA));
        assert_int_equal(bundle_load(dir, &b, &d), 0);
        assert_int_equal(b->n_items, 1);
        assert_string_equal(b->items[0].name, "hello");
        assert_int_equal(b->items[0].kind, KIND_BINARY);
        assert_int_equal(bundle_verify(b, &d), 0);
        assert_int_equal(d.n, 0);
}

static void test_missing_file(void **state) {
        const char *dir = *state;
        struct diag d = {};

        manifest(dir, ENTRY("hello", "binary", "sub/hello.bin", 6, HELLO_SHA));
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "/sub/hello.bin: missing: listed in"));
        assert_true(diag_has(&d, "as 'hello'"));
        diag_clear(&d);
}

static void test_wrong_hash(void **state) {
        const char *dir = *state;
        struct diag d = {};

        put(dir, "hello.bin", "hellO\n");
        manifest(dir, ENTRY("hello", "binary", "hello.bin", 6, HELLO_SHA));
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "/hello.bin: sha256 mismatch (artifact 'hello'): manifest "
                                 "says " HELLO_SHA ", file has "));
        diag_clear(&d);

        put(dir, "hello.bin", "hello, world\n");
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "/hello.bin: size 13 differs from the manifest's 6"));
        diag_clear(&d);
}

static void test_unknown_kind(void **state) {
        const char *dir = *state;
        struct diag d = {};

        put(dir, "hello.bin", "hello\n");
        manifest(dir, ENTRY("hello", "rpm", "hello.bin", 6, HELLO_SHA));
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "manifest.json: artifact 'hello': unknown kind 'rpm'"));
        diag_clear(&d);
}

static void test_duplicate_name(void **state) {
        const char *dir = *state;
        struct diag d = {};

        put(dir, "a.bin", "hello\n");
        put(dir, "b.bin", "hello\n");
        manifest(dir, ENTRY("hello", "binary", "a.bin", 6, HELLO_SHA) ","
                      ENTRY("hello", "binary", "b.bin", 6, HELLO_SHA));
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "manifest.json: duplicate name 'hello' (artifacts[1]"));
        diag_clear(&d);

        manifest(dir, ENTRY("a", "binary", "a.bin", 6, HELLO_SHA) ","
                      ENTRY("b", "binary", "a.bin", 6, HELLO_SHA));
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "file 'a.bin' is listed twice ('a' and 'b')"));
        diag_clear(&d);
}

static void test_bad_manifest(void **state) {
        const char *dir = *state;
        struct diag d = {};

        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "manifest.json: cannot read the bundle manifest: No such file"));
        diag_clear(&d);

        put(dir, BUNDLE_MANIFEST, "{ \"version\": 1, \"artifacts\": [ ");
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "manifest.json: not valid JSON"));
        diag_clear(&d);

        put(dir, BUNDLE_MANIFEST, "{ \"version\": 2, \"artifacts\": [], \"extra\": 1 }");
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "manifest.json: 'version' must be 1"));
        assert_true(diag_has(&d, "manifest.json: unknown key 'extra'"));
        diag_clear(&d);

        manifest(dir, ENTRY("up", "binary", "../etc/passwd", 6, HELLO_SHA) ","
                      ENTRY("abs", "binary", "/etc/passwd", 6, HELLO_SHA) ","
                      ENTRY("short", "binary", "x", 6, "abc") ","
                      "{\"name\":\"n\",\"kind\":\"deb\",\"file\":\"y\",\"sha256\":\"" HELLO_SHA
                      "\",\"size\":1,\"colour\":\"red\"}");
        assert_int_equal(load_verify(dir, &d), -EINVAL);
        assert_true(diag_has(&d, "artifact 'up': file '../etc/passwd' must be a path inside"));
        assert_true(diag_has(&d, "artifact 'abs': file '/etc/passwd' must be a path inside"));
        assert_true(diag_has(&d, "artifact 'short': sha256 must be 64 lowercase hex"));
        assert_true(diag_has(&d, "artifacts[3]: unknown key 'colour'"));
        diag_clear(&d);
}

static void test_add_and_update(void **state) {
        const char *dir = *state;
        _cleanup_bundle_ struct bundle *b = NULL;
        _cleanup_free_ char *file = NULL, *sub = NULL, *outside = NULL;
        struct diag d = {};

        assert_int_equal(asprintf_safe(&sub, "%s/images", dir), 0);
        assert_int_equal(mkdir(sub, 0755), 0);
        put(dir, "images/app.tar", "hello\n");
        assert_int_equal(asprintf_safe(&file, "%s/images/app.tar", dir), 0);
        assert_int_equal(bundle_add(dir, file, KIND_OCI_ARCHIVE, NULL, &d), 0);
        put(dir, "z.deb", "deb");
        assert_int_equal(asprintf_safe(&outside, "%s/z.deb", dir), 0);
        assert_int_equal(bundle_add(dir, outside, KIND_DEB, "a-deb", &d), 0);
        assert_int_equal(bundle_load(dir, &b, &d), 0);
        assert_int_equal(b->n_items, 2);
        /* sorted by name */
        assert_string_equal(b->items[0].name, "a-deb");
        assert_string_equal(b->items[1].name, "app.tar");
        assert_string_equal(b->items[1].file, "images/app.tar");
        assert_string_equal(b->items[1].sha256, HELLO_SHA);
        assert_int_equal(bundle_verify(b, &d), 0);
        b = bundle_free(b);

        /* changed content, same name: the entry is updated, not duplicated */
        put(dir, "images/app.tar", "hello, world\n");
        assert_int_equal(bundle_add(dir, file, KIND_OCI_ARCHIVE, NULL, &d), 0);
        assert_int_equal(bundle_load(dir, &b, &d), 0);
        assert_int_equal(b->n_items, 2);
        assert_int_equal(b->items[1].size, 13);
        assert_int_equal(bundle_verify(b, &d), 0);

        /* the same file under a second name is refused */
        assert_int_equal(bundle_add(dir, file, KIND_OCI_ARCHIVE, "other", &d), -EINVAL);
        assert_true(diag_has(&d, "already listed as 'app.tar'"));
        diag_clear(&d);
        /* outside the bundle */
        assert_int_equal(bundle_add(dir, "/etc/hostname", KIND_BINARY, NULL, &d), -EINVAL);
        assert_true(diag_has(&d, "/etc/hostname: not inside the bundle directory"));
        diag_clear(&d);
}

static void test_install(void **state) {
        const char *dir = *state;
        _cleanup_bundle_ struct bundle *b = NULL;
        _cleanup_free_ char *dest = NULL, *json = NULL, *copied = NULL, *text = NULL;
        struct diag d = {};

        put(dir, "hello.bin", "hello\n");
        manifest(dir, ENTRY("hello", "binary", "hello.bin", 6, HELLO_SHA));
        assert_int_equal(bundle_load(dir, &b, &d), 0);
        assert_int_equal(asprintf_safe(&dest, "%s/root/bundle", dir), 0);
        assert_int_equal(asprintf_safe(&json, "%s/root/bundle.json", dir), 0);
        assert_int_equal(bundle_install(b, dest, json, &d), 0);
        assert_int_equal(asprintf_safe(&copied, "%s/hello.bin", dest), 0);
        assert_int_equal(read_full_file(copied, &text, NULL), 0);
        assert_string_equal(text, "hello\n");
        free(text);
        assert_int_equal(read_full_file(json, &text, NULL), 0);
        assert_non_null(strstr(text, HELLO_SHA));

        /* changed after loading: the copy is refused and removed */
        put(dir, "hello.bin", "HELLO\n");
        assert_int_equal(bundle_install(b, dest, json, &d), -EINVAL);
        assert_true(diag_has(&d, "hello.bin: sha256 mismatch"));
        assert_int_equal(access(copied, F_OK), -1);
        diag_clear(&d);
}

static _printf_(1, 0) int run(const char *fmt, const char *dir) {
        _cleanup_free_ char *cmd = NULL;
        int st;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        assert_int_equal(asprintf_safe(&cmd, fmt, dir, dir, dir), 0);
#pragma GCC diagnostic pop
        st = system(cmd);
        assert_true(WIFEXITED(st));
        return WEXITSTATUS(st);
}

static void test_cli(void **state) {
        const char *dir = *state;

        put(dir, "hello.bin", "hello\n");
        assert_int_equal(run(IMAGEBUILD_BIN " bundle add %s %s/hello.bin --kind binary", dir), 0);
        assert_int_equal(run(IMAGEBUILD_BIN " bundle verify %s >/dev/null", dir), 0);
        assert_int_equal(run(IMAGEBUILD_BIN " bundle add %s %s/hello.bin --kind rpm 2>/dev/null",
                             dir),
                         2);
        put(dir, "hello.bin", "hellO\n");
        assert_int_equal(run(IMAGEBUILD_BIN " bundle verify %s 2>&1 | grep -q "
                             "'%s/hello.bin: sha256 mismatch'",
                             dir),
                         0);
        assert_int_equal(run(IMAGEBUILD_BIN " bundle verify %s 2>/dev/null", dir), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_good, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_hash, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_kind, setup, teardown),
                cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_manifest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_and_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_install, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
        };

        return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
