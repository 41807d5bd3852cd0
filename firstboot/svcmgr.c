/* SPDX-License-Identifier: MIT */
#include "svcmgr.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define STOP_TIMEOUT_MS_DEFAULT 10000
/* A daemon that dies on a bad config usually does so within this long: report it at
 * start instead of as a mysterious "not running" later. */
#define START_SETTLE_MS 300
#define LOG_TAIL_MAX 4096

const char *svcmgr_kind_to_string(enum svcmgr_kind k) {
        return k == SVCMGR_DIRECT ? "direct" : "systemd";
}

int svcmgr_kind_from_string(const char *s, enum svcmgr_kind *ret) {
        if (streq(s, "systemd"))
                *ret = SVCMGR_SYSTEMD;
        else if (streq(s, "direct"))
                *ret = SVCMGR_DIRECT;
        else
                return -EINVAL;
        return 0;
}

int cmd_runner_default(void *userdata _unused_, char *const argv[], char **ret_output) {
        return run_command(argv, ret_output);
}

void cmd_failure_done(struct cmd_failure *f) {
        free(f->command);
        free(f->output);
        *f = (struct cmd_failure){};
}

static bool needs_quotes(const char *s) {
        return !*s || strpbrk(s, " \t\n'\"\\$`;&|<>*?()") != NULL;
}

int argv_to_string(char *const argv[], char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; argv[i]; i++) {
                if (i > 0)
                        fputc(' ', f);
                if (!needs_quotes(argv[i])) {
                        fputs(argv[i], f);
                        continue;
                }
                fputc('\'', f);
                for (const char *p = argv[i]; *p; p++)
                        if (*p == '\'')
                                fputs("'\\''", f);
                        else
                                fputc(*p, f);
                fputc('\'', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

int cmd_failure_set(struct cmd_failure *f, char *const argv[], int status, const char *output) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        int r;

        if (!f)
                return 0;
        r = argv_to_string(argv, &cmd);
        if (r < 0)
                return r;
        out = strdup(output ? output : "");
        if (!out)
                return -ENOMEM;
        cmd_failure_done(f);
        f->command = TAKE_PTR(cmd);
        f->output = TAKE_PTR(out);
        f->status = status;
        return 0;
}

int svcmgr_new(enum svcmgr_kind kind, const char *run_dir, const char *log_dir, cmd_runner_fn run,
               void *run_userdata, struct svcmgr **ret) {
        struct svcmgr *m = calloc(1, sizeof *m);

        if (!m)
                return -ENOMEM;
        m->kind = kind;
        m->run = run ? run : cmd_runner_default;
        m->run_userdata = run_userdata;
        m->stop_timeout_ms = STOP_TIMEOUT_MS_DEFAULT;
        m->run_dir = xstrdup_or_null(run_dir);
        m->log_dir = xstrdup_or_null(log_dir);
        if ((run_dir && !m->run_dir) || (log_dir && !m->log_dir)) {
                svcmgr_free(m);
                return -ENOMEM;
        }
        if (kind == SVCMGR_DIRECT && (!run_dir || !log_dir)) {
                svcmgr_free(m);
                return -EINVAL;
        }
        *ret = m;
        return 0;
}

struct svcmgr *svcmgr_free(struct svcmgr *m) {
        if (!m)
                return NULL;
        free(m->run_dir);
        free(m->log_dir);
        free(m);
        return NULL;
}

/* ---- systemd ---- */

static int systemctl(struct svcmgr *m, struct cmd_failure *f, const char *verb, const char *extra,
                     const char *unit) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = { (char *)"systemctl", (char *)verb, (char *)extra, (char *)unit, NULL };
        int r;

        if (!extra) { /* no option: close the gap */
                argv[2] = (char *)unit;
                argv[3] = NULL;
        }
        r = m->run(m->run_userdata, argv, &out);
        if (r != 0)
                cmd_failure_set(f, argv, r, out);
        if (r < 0)
                return r;
        return r == 0 ? 0 : -EIO;
}

/* `systemctl is-active|is-enabled --quiet UNIT`: 1 yes, 0 no, negative errno when it
 * cannot run. */
static int systemd_query(struct svcmgr *m, const char *verb, const struct svc_spec *s) {
        char *argv[] = { (char *)"systemctl", (char *)verb, (char *)"--quiet", (char *)s->unit,
                         NULL };
        _cleanup_free_ char *out = NULL;
        int r = m->run(m->run_userdata, argv, &out);

        if (r < 0)
                return r;
        return r == 0;
}

static int systemd_is_active(struct svcmgr *m, const struct svc_spec *s) {
        return systemd_query(m, "is-active", s);
}

static int systemd_is_enabled(struct svcmgr *m, const struct svc_spec *s) {
        return systemd_query(m, "is-enabled", s);
}

/* ---- direct supervisor ---- */

static int pidfile_path(const struct svcmgr *m, const struct svc_spec *s, char **ret) {
        return asprintf_safe(ret, "%s/%s.pid", m->run_dir, s->name);
}

static int logfile_path(const char *log_dir, const struct svc_spec *s, char **ret) {
        return asprintf_safe(ret, "%s/%s.log", log_dir, s->name);
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Alive and still the program we started: a pid left in a pidfile across a reboot may
 * belong to anything by now. A zombie counts as dead (its parent may never reap it). */
static bool pid_is_service(pid_t pid, const struct svc_spec *s) {
        _cleanup_free_ char *path = NULL, *stat = NULL, *cmdline = NULL;
        const char *want, *got, *state;
        size_t size;

        if (pid <= 0 || kill(pid, 0) < 0)
                return false;
        if (asprintf_safe(&path, "/proc/%d/stat", (int)pid) < 0 ||
            read_one_line_file(path, &stat) < 0)
                return false;
        state = strrchr(stat, ')');
        if (!state || state[1] != ' ' || state[2] == 'Z' || state[2] == 'X')
                return false;
        free(path);
        path = NULL;
        if (asprintf_safe(&path, "/proc/%d/cmdline", (int)pid) < 0 ||
            read_full_file(path, &cmdline, &size) < 0 || size == 0)
                return false;
        want = strrchr(s->argv[0], '/');
        want = want ? want + 1 : s->argv[0];
        got = strrchr(cmdline, '/');
        got = got ? got + 1 : cmdline;
        return streq(want, got);
}

static int direct_pid(struct svcmgr *m, const struct svc_spec *s, pid_t *ret) {
        _cleanup_free_ char *path = NULL, *line = NULL;
        char *end;
        long v;
        int r;

        r = pidfile_path(m, s, &path);
        if (r < 0)
                return r;
        r = read_one_line_file(path, &line);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        errno = 0;
        v = strtol(line, &end, 10);
        if (errno || end == line || *end || v <= 0 || v > INT32_MAX)
                return 0; /* garbage: as good as no pidfile */
        if (!pid_is_service((pid_t)v, s))
                return 0;
        *ret = (pid_t)v;
        return 1;
}

static int log_tail(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = read_full_file(path, &buf, &size);

        if (r < 0)
                return r;
        if (size > LOG_TAIL_MAX)
                memmove(buf, buf + size - LOG_TAIL_MAX, LOG_TAIL_MAX + 1);
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Double fork: the daemon is re-parented away from firstboot, so it outlives `firstboot
 * apply` (and a kill -9 of it) like a unit outlives systemctl. An exec failure comes
 * back through a close-on-exec pipe. */
static int direct_spawn(const char *log_path, const char *pid_path, char *const argv[],
                        pid_t *ret_pid) {
        int pidpipe[2], errpipe[2], status;
        pid_t child, daemon_pid = 0;
        int exec_errno = 0;
        ssize_t n;

        if (pipe2(pidpipe, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(errpipe, O_CLOEXEC) < 0) {
                int e = errno;
                close(pidpipe[0]);
                close(pidpipe[1]);
                return -e;
        }
        child = fork();
        if (child < 0) {
                int e = errno;
                close(pidpipe[0]);
                close(pidpipe[1]);
                close(errpipe[0]);
                close(errpipe[1]);
                return -e;
        }
        if (child == 0) {
                pid_t gc;
                int devnull, logfd;

                close(pidpipe[0]);
                close(errpipe[0]);
                setsid();
                gc = fork();
                if (gc < 0)
                        _exit(1);
                if (gc > 0) {
                        (void)!write(pidpipe[1], &gc, sizeof gc);
                        _exit(0);
                }
                devnull = open("/dev/null", O_RDONLY);
                logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
                if (devnull < 0 || logfd < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
                    dup2(logfd, STDOUT_FILENO) < 0 || dup2(logfd, STDERR_FILENO) < 0) {
                        int e = errno;
                        (void)!write(errpipe[1], &e, sizeof e);
                        _exit(127);
                }
                signal(SIGPIPE, SIG_DFL);
                /* The daemon's pid is on disk before the daemon runs: if firstboot is
                 * killed from here on, the rerun finds it instead of starting a second
                 * one (which would fail on its ports or take the datadir twice). */
                {
                        char pidtext[16];
                        int len = snprintf(pidtext, sizeof pidtext, "%d\n", (int)getpid());

                        int k = write_file_atomic(pid_path, pidtext, (size_t)len, 0644);

                        if (k < 0) {
                                int e = -k;
                                (void)!write(errpipe[1], &e, sizeof e);
                                _exit(127);
                        }
                }
                execvp(argv[0], argv);
                exec_errno = errno;
                (void)!write(errpipe[1], &exec_errno, sizeof exec_errno);
                _exit(127);
        }
        close(pidpipe[1]);
        close(errpipe[1]);
        do
                n = read(pidpipe[0], &daemon_pid, sizeof daemon_pid);
        while (n < 0 && errno == EINTR);
        close(pidpipe[0]);
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        if (n != (ssize_t)sizeof daemon_pid || daemon_pid <= 0) {
                close(errpipe[0]);
                return -ECHILD;
        }
        do
                n = read(errpipe[0], &exec_errno, sizeof exec_errno);
        while (n < 0 && errno == EINTR);
        close(errpipe[0]);
        if (n == (ssize_t)sizeof exec_errno)
                return -(exec_errno ?: EIO);
        *ret_pid = daemon_pid;
        return 0;
}

static int direct_start(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f) {
        _cleanup_free_ char *pidpath = NULL, *logpath = NULL, *tail = NULL;
        pid_t pid = 0;
        int r;

        r = direct_pid(m, s, &pid);
        if (r != 0)
                return r; /* 1: already running */
        if ((r = mkdir_parents(m->run_dir, 0755)) < 0 || (r = mkdir_parents(m->log_dir, 0755)) < 0)
                return log_debug_errno(r, "Cannot create %s or %s: %m", m->run_dir, m->log_dir);
        if ((r = pidfile_path(m, s, &pidpath)) < 0 || (r = logfile_path(m->log_dir, s, &logpath)) < 0)
                return r;
        for (char **p = s->stale_files; p && *p; p++)
                if (unlink(*p) < 0 && errno != ENOENT)
                        return log_debug_errno(-errno, "Cannot remove %s: %m", *p);
        r = direct_spawn(logpath, pidpath, s->argv, &pid);
        if (r < 0) {
                char msg[128];

                snprintf(msg, sizeof msg, "cannot execute %s: %s", s->argv[0], strerror(-r));
                cmd_failure_set(f, s->argv, r, msg);
                return r;
        }
        sleep_ms(START_SETTLE_MS);
        if (!pid_is_service(pid, s)) {
                (void)log_tail(logpath, &tail);
                cmd_failure_set(f, s->argv, -ECHILD, tail);
                unlink(pidpath);
                return -ECHILD;
        }
        log_debug("Started %s, pid %d, log %s", s->name, (int)pid, logpath);
        return 0;
}

static int direct_stop(struct svcmgr *m, const struct svc_spec *s) {
        _cleanup_free_ char *pidpath = NULL;
        pid_t pid = 0;
        int r;

        r = direct_pid(m, s, &pid);
        if (r <= 0)
                return r;
        if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
                return -errno;
        for (unsigned waited = 0; pid_is_service(pid, s); waited += 50) {
                if (waited >= m->stop_timeout_ms) {
                        kill(pid, SIGKILL);
                        break;
                }
                sleep_ms(50);
        }
        r = pidfile_path(m, s, &pidpath);
        if (r < 0)
                return r;
        unlink(pidpath);
        return 1;
}

/* ---- interface ---- */

int svcmgr_is_running(struct svcmgr *m, const struct svc_spec *s, pid_t *ret_pid) {
        pid_t pid = 0;
        int r;

        if (m->kind == SVCMGR_SYSTEMD)
                return systemd_is_active(m, s);
        r = direct_pid(m, s, &pid);
        if (r > 0 && ret_pid)
                *ret_pid = pid;
        return r;
}

int svcmgr_start(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f) {
        int r;

        if (m->kind == SVCMGR_DIRECT)
                return direct_start(m, s, f);
        r = systemd_is_active(m, s);
        if (r != 0)
                return r;
        /* Debian's packages enable their units already. `enable` would sync the SysV
         * script too (update-rc.d) and reload systemd three times: 25 s under TCG. */
        r = systemd_is_enabled(m, s);
        if (r < 0)
                return r;
        if (r > 0)
                return systemctl(m, f, "start", NULL, s->unit);
        return systemctl(m, f, "enable", "--now", s->unit);
}

int svcmgr_reload(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f) {
        pid_t pid = 0;
        int r;

        if (m->kind == SVCMGR_SYSTEMD) {
                r = systemd_is_active(m, s);
                if (r < 0)
                        return r;
                if (r == 0)
                        return svcmgr_start(m, s, f);
                return systemctl(m, f, "reload-or-restart", NULL, s->unit);
        }
        r = direct_pid(m, s, &pid);
        if (r < 0)
                return r;
        if (r > 0 && s->reload_signal > 0) {
                if (kill(pid, s->reload_signal) < 0)
                        return -errno;
                return 0;
        }
        if (r > 0) {
                r = direct_stop(m, s);
                if (r < 0)
                        return r;
        }
        return direct_start(m, s, f);
}

int svcmgr_stop(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f) {
        int r;

        if (m->kind == SVCMGR_DIRECT) {
                r = direct_stop(m, s);
                return r < 0 ? r : 0;
        }
        r = systemd_is_active(m, s);
        if (r <= 0)
                return r;
        return systemctl(m, f, "stop", NULL, s->unit);
}

int svcmgr_describe(enum svcmgr_kind kind, const char *run_dir, const char *log_dir,
                    const struct svc_spec *s, enum svc_action a, char **ret) {
        _cleanup_free_ char *cmd = NULL, *logpath = NULL;
        int r;

        if (kind == SVCMGR_SYSTEMD) {
                static const char *const verbs[] = {
                        [SVC_START] = "enable --now",
                        [SVC_RELOAD] = "reload-or-restart",
                        [SVC_STOP] = "stop",
                };
                return asprintf_safe(ret, "systemctl %s %s", verbs[a], s->unit);
        }
        if (a == SVC_STOP)
                return asprintf_safe(ret, "kill -TERM $(cat %s/%s.pid)", run_dir, s->name);
        if (a == SVC_RELOAD && s->reload_signal > 0)
                return asprintf_safe(ret, "kill -%s $(cat %s/%s.pid)", sigabbrev_np(s->reload_signal),
                                     run_dir, s->name);
        r = argv_to_string(s->argv, &cmd);
        if (r < 0)
                return r;
        r = logfile_path(log_dir, s, &logpath);
        if (r < 0)
                return r;
        return asprintf_safe(ret, "%s%s >>%s 2>&1 & echo $! >%s/%s.pid",
                             a == SVC_RELOAD ? "(stop, then) " : "", cmd, logpath, run_dir, s->name);
}
