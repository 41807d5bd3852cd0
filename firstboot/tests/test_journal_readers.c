/* SPDX-License-Identifier: MIT */
/* Readers of the journal (`firstboot status --watch`, the tty1 dashboard) never touch
 * apply's files: loading the journal once unlinked every journal.json.tmp.*, so a status
 * poll between apply's creating its temporary file and renaming it failed the journal
 * write ("Cannot write the journal ...: No such file or directory"), apply exited, and
 * its restart redid the step it had just finished (pki, two minutes, in the e2e run). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "steps.h"
#include "util.h"

static void test_load_keeps_live_writers_temp(void **state _unused_) {
        _cleanup_free_ char *tmp = NULL, *cmd = NULL;
        _cleanup_(journal_done) struct journal j = {}, back = {};
        char dir[] = "/tmp/test-journal.XXXXXX";
        struct stat st;

        assert_non_null(mkdtemp(dir));
        j.entries = calloc(1, sizeof *j.entries);
        assert_non_null(j.entries);
        j.n = 1;
        strcpy(j.entries[0].name, "pki");
        j.entries[0].state = STEP_RUNNING;
        assert_int_equal(journal_save(&j, dir), 0);
        /* What write_file_atomic() of a live apply has open at this instant. */
        assert_int_equal(asprintf_safe(&tmp, "%s/journal.json.tmp.%d.AbC123", dir, (int)getpid()),
                         0);
        assert_int_equal(write_file_atomic(tmp, "{}", 2, 0644), 0);

        assert_int_equal(journal_load(dir, &back), 0);
        assert_int_equal(back.n, 1);
        assert_string_equal(back.entries[0].name, "pki");
        assert_int_equal(stat(tmp, &st), 0);

        assert_int_equal(asprintf_safe(&cmd, "rm -rf '%s'", dir), 0);
        assert_int_equal(system(cmd), 0);
}

/* A reader polling as fast as it can while apply records a step many times: every
 * write succeeds. */
static void test_saves_survive_a_polling_reader(void **state _unused_) {
        _cleanup_free_ char *cmd = NULL;
        _cleanup_(journal_done) struct journal j = {};
        char dir[] = "/tmp/test-journal.XXXXXX";
        unsigned failed = 0;
        pid_t reader;
        int status;

        assert_non_null(mkdtemp(dir));
        j.entries = calloc(1, sizeof *j.entries);
        assert_non_null(j.entries);
        j.n = 1;
        strcpy(j.entries[0].name, "pki");
        assert_int_equal(journal_save(&j, dir), 0);
        reader = fork();
        assert_true(reader >= 0);
        if (reader == 0) {
                time_t end = time(NULL) + 60;

                /* Bounded, and gone with the test whatever happens to it. */
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                while (time(NULL) < end) {
                        struct journal r = {};

                        (void)journal_load(dir, &r);
                        journal_done(&r);
                }
                _exit(0);
        }
        for (unsigned i = 0; i < 2000; i++) {
                j.entries[0].attempts = i;
                failed += journal_save(&j, dir) < 0;
        }
        assert_int_equal(kill(reader, SIGKILL), 0);
        assert_int_equal(waitpid(reader, &status, 0), reader);
        assert_int_equal(failed, 0);
        assert_int_equal(asprintf_safe(&cmd, "rm -rf '%s'", dir), 0);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_keeps_live_writers_temp),
                cmocka_unit_test(test_saves_survive_a_polling_reader),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
