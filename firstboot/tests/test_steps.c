/* SPDX-License-Identifier: MIT */
/* The step engine with fixture steps: dependency order, journal and resume (also after a
 * real kill -9 in the middle of a step), bounded retries reporting the failing command,
 * the default apply's atomic files, plan.json parsing, and both service managers (systemd
 * through a recording runner, the direct supervisor with real processes). Writes only
 * under temporary directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "steps.h"
#include "util.h"
#include "view_json.h"

/* Test doubles count through statics: the engine passes steps only the ctx. */
static unsigned applied[4], checked[4];
static unsigned fail_first; /* step 1's apply fails this many times */
static bool crash_in_b;
static char recorded[2048];

static void reset_counters(void) {
        memset(applied, 0, sizeof applied);
        memset(checked, 0, sizeof checked);
        fail_first = 0;
        crash_in_b = false;
        recorded[0] = 0;
}

static int recording_runner(void *userdata, char *const argv[], char **ret_output) {
        const int *status = userdata;
        _cleanup_free_ char *s = NULL;

        assert_int_equal(argv_to_string(argv, &s), 0);
        strncat(recorded, s, sizeof recorded - strlen(recorded) - 2);
        strcat(recorded, "\n");
        if (ret_output)
                *ret_output = strdup(status && *status ? "boom: it broke" : "");
        return status ? *status : 0;
}

static int render_marker(const struct step_ctx *c, struct step_render *ret, const char *name) {
        _cleanup_free_ char *path = NULL, *rel = NULL;

        assert_int_equal(asprintf_safe(&rel, "/etc/%s.conf", name), 0);
        assert_int_equal(step_path(c, rel, &path), 0);
        return step_render_add_file(ret, path, strdup(c->cfg ? "changed\n" : "v1\n"), 0600);
}

static int render_a(const struct step_ctx *c, struct step_render *r) { return render_marker(c, r, "a"); }
static int render_b(const struct step_ctx *c, struct step_render *r) { return render_marker(c, r, "b"); }
static int render_c(const struct step_ctx *c, struct step_render *r) {
        int k = render_marker(c, r, "c");

        return k < 0 ? k : step_render_add_command(r, "validate-c", "--strict", NULL);
}

static int check_a(const struct step_ctx *c, const struct step_render *r) {
        checked[0]++;
        return step_check_default(c, r);
}
static int check_b(const struct step_ctx *c, const struct step_render *r) {
        checked[1]++;
        return step_check_default(c, r);
}

static int apply_a(const struct step_ctx *c, const struct step_render *r, bool resumed,
                   struct cmd_failure *f) {
        applied[0]++;
        return step_apply_default(c, r, resumed, f);
}
static int apply_b(const struct step_ctx *c, const struct step_render *r, bool resumed,
                   struct cmd_failure *f) {
        applied[1]++;
        if (crash_in_b) {
                /* Half the work, then die like kill -9 would. */
                assert_int_equal(step_apply_default(c, r, resumed, f), 0);
                raise(SIGKILL);
        }
        if (applied[1] <= fail_first) {
                char *argv[] = { (char *)"flaky-tool", (char *)"--go", NULL };

                cmd_failure_set(f, argv, 3, "transient");
                return -EIO;
        }
        return step_apply_default(c, r, resumed, f);
}

static const char *skip_never(const struct step_ctx *c _unused_) { return NULL; }
static const char *skip_always(const struct step_ctx *c _unused_) { return "not for this node"; }

static const char *const after_a[] = { "a", NULL };
static const char *const after_b[] = { "b", NULL };
static const struct step sa = { .name = "a", .render = render_a, .check = check_a, .apply = apply_a };
static const struct step sb = { .name = "b", .after = after_a, .skip_reason = skip_never,
                                .render = render_b, .check = check_b, .apply = apply_b };
static const struct step sc = { .name = "c", .after = after_b, .render = render_c };
static const struct step sd = { .name = "d", .skip_reason = skip_always, .render = render_a };

struct tmp {
        char dir[64];
        char state[128];
        char root[128];
};

static void tmp_make(struct tmp *t) {
        strcpy(t->dir, "/tmp/test-steps.XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        snprintf(t->state, sizeof t->state, "%s/state", t->dir);
        snprintf(t->root, sizeof t->root, "%s/root", t->dir);
}

static void tmp_remove(struct tmp *t) {
        _cleanup_free_ char *cmd = NULL;

        assert_int_equal(asprintf_safe(&cmd, "rm -rf '%s'", t->dir), 0);
        assert_int_equal(system(cmd), 0);
}

static void ctx_make(const struct tmp *t, struct step_ctx *c, int *status) {
        *c = (struct step_ctx){ .root = t->root, .state_dir = t->state, .run = recording_runner,
                                .run_userdata = status };
}

static enum step_state state_of(const struct journal *j, const char *name) {
        struct journal_entry *e = journal_find(j, name);

        assert_non_null(e);
        return e->state;
}

static void test_order(void **state _unused_) {
        const struct step *in[] = { &sc, &sd, &sb, &sa };
        _cleanup_free_ const struct step **out = NULL;
        static const char *const after_x[] = { "nope", NULL };
        static const char *const after_self[] = { "loop", NULL };
        const struct step unknown = { .name = "x", .after = after_x, .render = render_a };
        const struct step loop = { .name = "loop", .after = after_self, .render = render_a };
        const struct step *bad1[] = { &sa, &unknown }, *bad2[] = { &loop };
        const struct step **none = NULL;

        assert_int_equal(steps_order(in, 4, &out), 0);
        /* d has no dependencies and comes first among the ready ones in input order. */
        assert_string_equal(out[0]->name, "d");
        assert_string_equal(out[1]->name, "a");
        assert_string_equal(out[2]->name, "b");
        assert_string_equal(out[3]->name, "c");
        assert_int_equal(steps_order(bad1, 2, &none), -ENOENT);
        assert_int_equal(steps_order(bad2, 1, &none), -ELOOP);
        assert_null(none);
}

static void test_run_and_resume_from_journal(void **state _unused_) {
        const struct step *steps[] = { &sc, &sd, &sb, &sa };
        struct step_opts o = { .max_attempts = 2 };
        _cleanup_(journal_done) struct journal j = {};
        _cleanup_free_ char *content = NULL, *path = NULL;
        struct step_ctx c;
        struct stat st;
        struct tmp t;

        reset_counters();
        tmp_make(&t);
        ctx_make(&t, &c, NULL);
        assert_int_equal(steps_run(steps, 4, &c, &o), 0);
        assert_int_equal(applied[0], 1);
        assert_int_equal(applied[1], 1);
        assert_string_equal(recorded, "validate-c --strict\n");
        assert_int_equal(asprintf_safe(&path, "%s/etc/b.conf", t.root), 0);
        assert_int_equal(read_full_file(path, &content, NULL), 0);
        assert_string_equal(content, "v1\n");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        assert_int_equal(journal_load(t.state, &j), 0);
        assert_int_equal(j.n, 4);
        assert_int_equal(state_of(&j, "a"), STEP_DONE);
        assert_int_equal(state_of(&j, "b"), STEP_DONE);
        assert_int_equal(state_of(&j, "c"), STEP_DONE);
        assert_int_equal(state_of(&j, "d"), STEP_SKIPPED);
        assert_string_equal(journal_find(&j, "d")->note, "not for this node");
        journal_done(&j);

        /* A rerun trusts the journal: nothing is checked or applied again. */
        reset_counters();
        assert_int_equal(steps_run(steps, 4, &c, &o), 0);
        assert_int_equal(applied[0] + applied[1] + checked[0] + checked[1], 0);
        assert_string_equal(recorded, "");

        /* --recheck runs the checks, which pass: still nothing applied. */
        o.recheck = true;
        assert_int_equal(steps_run(steps, 4, &c, &o), 0);
        assert_int_equal(checked[0], 1);
        assert_int_equal(applied[0] + applied[1], 0);

        /* A file changed behind our back is put back by check + apply. */
        o.recheck = true;
        assert_int_equal(write_file_atomic(path, "tampered\n", 9, 0600), 0);
        assert_int_equal(steps_run(steps, 4, &c, &o), 0);
        assert_int_equal(applied[1], 1);
        free(content);
        content = NULL;
        assert_int_equal(read_full_file(path, &content, NULL), 0);
        assert_string_equal(content, "v1\n");
        tmp_remove(&t);
}

static void test_changed_render_reapplies(void **state _unused_) {
        const struct step *steps[] = { &sa };
        struct step_opts o = {};
        struct config dummy = {};
        struct step_ctx c;
        struct tmp t;

        reset_counters();
        tmp_make(&t);
        ctx_make(&t, &c, NULL);
        assert_int_equal(steps_run(steps, 1, &c, &o), 0);
        assert_int_equal(applied[0], 1);
        /* New inputs render new content: the journal's hash no longer matches. */
        c.cfg = &dummy;
        assert_int_equal(steps_run(steps, 1, &c, &o), 0);
        assert_int_equal(applied[0], 2);
        tmp_remove(&t);
}

static void test_retries_then_success(void **state _unused_) {
        const struct step *steps[] = { &sa, &sb };
        struct step_opts o = { .max_attempts = 3, .backoff_ms = 1 };
        _cleanup_(journal_done) struct journal j = {};
        struct step_ctx c;
        struct tmp t;

        reset_counters();
        fail_first = 2;
        tmp_make(&t);
        ctx_make(&t, &c, NULL);
        assert_int_equal(steps_run(steps, 2, &c, &o), 0);
        assert_int_equal(applied[1], 3);
        assert_int_equal(journal_load(t.state, &j), 0);
        assert_int_equal(state_of(&j, "b"), STEP_DONE);
        assert_int_equal(journal_find(&j, "b")->attempts, 3);
        assert_null(journal_find(&j, "b")->failure.command);
        tmp_remove(&t);
}

static void test_failure_is_bounded_and_reported(void **state _unused_) {
        const struct step *steps[] = { &sa, &sb, &sc };
        struct step_opts o = { .max_attempts = 3, .backoff_ms = 1 };
        _cleanup_(journal_done) struct journal j = {};
        struct step_ctx c;
        struct tmp t;
        int status = 2;

        /* b fails for good: three attempts, then c is never started. */
        reset_counters();
        fail_first = 100;
        tmp_make(&t);
        ctx_make(&t, &c, &status);
        assert_int_equal(steps_run(steps, 3, &c, &o), -EIO);
        assert_int_equal(applied[1], 3);
        assert_int_equal(journal_load(t.state, &j), 0);
        assert_int_equal(state_of(&j, "b"), STEP_FAILED);
        assert_string_equal(journal_find(&j, "b")->failure.command, "flaky-tool --go");
        assert_int_equal(journal_find(&j, "b")->failure.status, 3);
        assert_string_equal(journal_find(&j, "b")->failure.output, "transient");
        assert_null(journal_find(&j, "c"));
        journal_done(&j);

        /* c's own command fails: the command line and its output are kept. */
        fail_first = 0;
        reset_counters();
        assert_int_equal(steps_run(steps, 3, &c, &o), -EIO);
        assert_int_equal(journal_load(t.state, &j), 0);
        assert_int_equal(state_of(&j, "b"), STEP_DONE);
        assert_int_equal(state_of(&j, "c"), STEP_FAILED);
        assert_string_equal(journal_find(&j, "c")->failure.command, "validate-c --strict");
        assert_int_equal(journal_find(&j, "c")->failure.status, 2);
        assert_string_equal(journal_find(&j, "c")->failure.output, "boom: it broke");
        assert_string_equal(recorded, "validate-c --strict\nvalidate-c --strict\nvalidate-c --strict\n");
        tmp_remove(&t);
}

static void test_kill9_mid_step_resumes(void **state _unused_) {
        const struct step *steps[] = { &sa, &sb, &sc };
        struct step_opts o = {};
        _cleanup_(journal_done) struct journal j = {};
        struct step_ctx c;
        struct tmp t;
        pid_t pid;
        int status;

        reset_counters();
        tmp_make(&t);
        ctx_make(&t, &c, NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                crash_in_b = true;
                (void)steps_run(steps, 3, &c, &o);
                _exit(0); /* not reached: b kills the process */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(journal_load(t.state, &j), 0);
        assert_int_equal(state_of(&j, "a"), STEP_DONE);
        assert_int_equal(state_of(&j, "b"), STEP_RUNNING);
        assert_null(journal_find(&j, "c"));
        journal_done(&j);

        /* The rerun skips a, applies b again without trusting its check, then runs c. */
        assert_int_equal(steps_run(steps, 3, &c, &o), 0);
        assert_int_equal(applied[0], 0);
        assert_int_equal(checked[0], 0);
        assert_int_equal(applied[1], 1);
        assert_int_equal(journal_load(t.state, &j), 0);
        assert_int_equal(state_of(&j, "b"), STEP_DONE);
        assert_int_equal(journal_find(&j, "b")->attempts, 2);
        assert_int_equal(state_of(&j, "c"), STEP_DONE);
        assert_string_equal(recorded, "validate-c --strict\n");
        tmp_remove(&t);
}

/* A writer killed between creating its temporary file and renaming it leaves the
 * temporary behind; the next write of the same path removes it, but never the temporary
 * of a writer that is still alive, nor files that merely look similar. */
static void test_atomic_write_removes_dead_temps(void **state _unused_) {
        _cleanup_free_ char *path = NULL, *dead = NULL, *live = NULL, *other = NULL,
                            *text = NULL;
        struct tmp t;
        struct stat st;
        pid_t pid;
        int status;

        tmp_make(&t);
        assert_int_equal(asprintf_safe(&path, "%s/f.conf", t.dir), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(asprintf_safe(&dead, "%s.tmp.%d.AbC123", path, (int)pid), 0);
        assert_int_equal(asprintf_safe(&live, "%s.tmp.%d.XyZ789", path, (int)getppid()), 0);
        assert_int_equal(asprintf_safe(&other, "%s.tmp.notapid", path), 0);
        assert_int_equal(write_file_atomic(dead, "x", 1, 0600), 0);
        assert_int_equal(write_file_atomic(live, "y", 1, 0600), 0);
        assert_int_equal(write_file_atomic(other, "z", 1, 0600), 0);

        assert_int_equal(write_file_atomic(path, "hello\n", 6, 0640), 0);
        assert_int_equal(stat(dead, &st), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(stat(live, &st), 0);
        assert_int_equal(stat(other, &st), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(read_full_file(path, &text, NULL), 0);
        assert_string_equal(text, "hello\n");
        tmp_remove(&t);
}

static void test_plan_json_roundtrip(void **state _unused_) {
        _cleanup_(view_done) struct view v = {};
        _cleanup_role_plan_ struct role_plan *p = NULL, *q = NULL, *bad = NULL;
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_free_ char *text = NULL, *err = NULL;
        char *at;

        static const char yaml[] = "cluster: {name: t, token: test-token-0123456789, expected_nodes: 5}\n"
                                   "vip: {address: 192.0.2.100/24}\n";
        struct diag d = {};

        assert_int_equal(config_parse_string(yaml, strlen(yaml), "t.yaml", &cfg, &d), 0);
        diag_clear(&d);
        assert_int_equal(view_from_json_file("data/views/five-nodes.json", &v, &err), 0);
        assert_int_equal(elect(&v, cfg, &p), 0);
        assert_int_equal(role_plan_to_json(p, &text), 0);
        assert_int_equal(role_plan_from_json(text, "plan.json", &q), 0);
        assert_int_equal(q->n, p->n);
        assert_memory_equal(q->digest, p->digest, DIGEST_LEN);
        for (size_t i = 0; i < p->n; i++) {
                assert_int_equal(q->nodes[i].roles, p->nodes[i].roles);
                assert_int_equal(q->nodes[i].vrrp_priority, p->nodes[i].vrrp_priority);
                assert_string_equal(q->nodes[i].hostname, p->nodes[i].hostname);
        }
        /* A changed priority no longer matches the digest. */
        at = strstr(text, "\"vrrp_priority\": 250");
        assert_non_null(at);
        memcpy(at + strlen("\"vrrp_priority\": "), "151", 3);
        assert_int_equal(role_plan_from_json(text, "plan.json", &bad), -EBADMSG);
        assert_null(bad);
}

static void test_systemd_commands(void **state _unused_) {
        _cleanup_svcmgr_ struct svcmgr *m = NULL;
        _cleanup_(cmd_failure_done) struct cmd_failure f = {};
        char *argv[] = { (char *)"kd", NULL };
        struct svc_spec s = { .name = "kd", .unit = "kd.service", .argv = argv };
        int inactive = 3, failing = 1;

        reset_counters();
        assert_int_equal(svcmgr_new(SVCMGR_SYSTEMD, NULL, NULL, recording_runner, &inactive, &m), 0);
        /* is-active says 3 (inactive), is-enabled 3 (disabled), so start enables it; then
         * enable "fails" too. */
        assert_int_equal(svcmgr_start(m, &s, &f), -EIO);
        assert_string_equal(recorded, "systemctl is-active --quiet kd.service\n"
                                      "systemctl is-enabled --quiet kd.service\n"
                                      "systemctl enable --now kd.service\n");
        assert_string_equal(f.command, "systemctl enable --now kd.service");
        assert_int_equal(f.status, 3);
        svcmgr_free(m);
        m = NULL;

        reset_counters();
        failing = 0;
        assert_int_equal(svcmgr_new(SVCMGR_SYSTEMD, NULL, NULL, recording_runner, &failing, &m), 0);
        assert_int_equal(svcmgr_start(m, &s, &f), 1); /* active: nothing to do */
        assert_int_equal(svcmgr_reload(m, &s, &f), 0);
        assert_int_equal(svcmgr_stop(m, &s, &f), 0);
        assert_string_equal(recorded, "systemctl is-active --quiet kd.service\n"
                                      "systemctl is-active --quiet kd.service\n"
                                      "systemctl reload-or-restart kd.service\n"
                                      "systemctl is-active --quiet kd.service\n"
                                      "systemctl stop kd.service\n");
}

/* An enabled unit (as Debian's packages leave theirs) is only started: `enable` would run
 * systemd-sysv-install and three daemon-reloads (25 s under TCG) for nothing. */
static int enabled_runner(void *userdata, char *const argv[], char **ret_output) {
        int r = recording_runner(userdata, argv, ret_output);

        return streq(argv[1], "is-active") ? 3 : r;
}

static void test_systemd_start_enabled(void **state _unused_) {
        _cleanup_svcmgr_ struct svcmgr *m = NULL;
        _cleanup_(cmd_failure_done) struct cmd_failure f = {};
        char *argv[] = { (char *)"kd", NULL };
        struct svc_spec s = { .name = "kd", .unit = "kd.service", .argv = argv };
        int ok = 0;

        reset_counters();
        assert_int_equal(svcmgr_new(SVCMGR_SYSTEMD, NULL, NULL, enabled_runner, &ok, &m), 0);
        assert_int_equal(svcmgr_start(m, &s, &f), 0);
        assert_string_equal(recorded, "systemctl is-active --quiet kd.service\n"
                                      "systemctl is-enabled --quiet kd.service\n"
                                      "systemctl start kd.service\n");
}

static void test_direct_supervisor(void **state _unused_) {
        _cleanup_svcmgr_ struct svcmgr *m = NULL;
        _cleanup_(cmd_failure_done) struct cmd_failure f = {};
        _cleanup_free_ char *run = NULL, *logd = NULL, *pidfile = NULL, *log = NULL;
        char *sleeper[] = { (char *)"sleep", (char *)"30", NULL };
        char *talker[] = { (char *)"sh", (char *)"-c", (char *)"echo bad config line 3; exit 1", NULL };
        char *missing[] = { (char *)"/nonexistent/daemon", NULL };
        struct svc_spec s = { .name = "sleeper", .unit = "x", .argv = sleeper };
        struct svc_spec bad = { .name = "talker", .unit = "x", .argv = talker };
        struct svc_spec gone = { .name = "gone", .unit = "x", .argv = missing };
        pid_t pid = 0, pid2 = 0;
        struct tmp t;

        tmp_make(&t);
        assert_int_equal(asprintf_safe(&run, "%s/run", t.dir), 0);
        assert_int_equal(asprintf_safe(&logd, "%s/log", t.dir), 0);
        assert_int_equal(svcmgr_new(SVCMGR_DIRECT, run, logd, NULL, NULL, &m), 0);
        m->stop_timeout_ms = 5000;

        assert_int_equal(svcmgr_is_running(m, &s, NULL), 0);
        assert_int_equal(svcmgr_start(m, &s, &f), 0);
        assert_int_equal(svcmgr_is_running(m, &s, &pid), 1);
        assert_true(pid > 0);
        assert_int_equal(asprintf_safe(&pidfile, "%s/sleeper.pid", run), 0);
        assert_int_equal(access(pidfile, F_OK), 0);
        /* Idempotent: a second start finds it running. */
        assert_int_equal(svcmgr_start(m, &s, &f), 1);
        /* Reload without a reload signal restarts: a new pid. */
        assert_int_equal(svcmgr_reload(m, &s, &f), 0);
        assert_int_equal(svcmgr_is_running(m, &s, &pid2), 1);
        assert_true(pid2 != pid);
        assert_int_equal(svcmgr_stop(m, &s, &f), 0);
        assert_int_equal(svcmgr_is_running(m, &s, NULL), 0);
        assert_int_equal(access(pidfile, F_OK), -1);

        /* A daemon that dies at once: the failure carries its log. */
        assert_int_equal(svcmgr_start(m, &bad, &f), -ECHILD);
        assert_non_null(strstr(f.output, "bad config line 3"));
        assert_non_null(strstr(f.command, "echo bad config line 3"));
        assert_int_equal(asprintf_safe(&log, "%s/talker.log", logd), 0);
        assert_int_equal(access(log, F_OK), 0);

        /* A missing program: the exec error. */
        assert_int_equal(svcmgr_start(m, &gone, &f), -ENOENT);
        assert_string_equal(f.command, "/nonexistent/daemon");
        tmp_remove(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order),
                cmocka_unit_test(test_run_and_resume_from_journal),
                cmocka_unit_test(test_changed_render_reapplies),
                cmocka_unit_test(test_retries_then_success),
                cmocka_unit_test(test_failure_is_bounded_and_reported),
                cmocka_unit_test(test_kill9_mid_step_resumes),
                cmocka_unit_test(test_atomic_write_removes_dead_temps),
                cmocka_unit_test(test_plan_json_roundtrip),
                cmocka_unit_test(test_systemd_commands),
                cmocka_unit_test(test_systemd_start_enabled),
                cmocka_unit_test(test_direct_supervisor),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
