/* SPDX-License-Identifier: MIT */
/* Service manager seam of the bring-up steps: systemd units on the appliance, or a direct
 * supervisor (fork/exec, pidfile, log file) for the namespace harness where there is no
 * systemd and several "nodes" share one host. Every command it runs goes through a
 * runner, so tests can record the sequence instead of running it. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

enum svcmgr_kind { SVCMGR_SYSTEMD, SVCMGR_DIRECT };
/* "systemd" / "direct"; parse returns -EINVAL for anything else. */
const char *svcmgr_kind_to_string(enum svcmgr_kind k);
int svcmgr_kind_from_string(const char *s, enum svcmgr_kind *ret);

/* Runs argv, captures stdout+stderr; same contract as run_command() in util.h. */
typedef int (*cmd_runner_fn)(void *userdata, char *const argv[], char **ret_output);
int cmd_runner_default(void *userdata, char *const argv[], char **ret_output);

/* What failed, for the journal and the operator: the command line, its exit status and
 * its output (for a direct service that died at once: the tail of its log). */
struct cmd_failure {
        char *command;
        int status; /* exit status, 128+signal, or -errno if it could not run */
        char *output;
};
void cmd_failure_done(struct cmd_failure *f);
/* Fill f (replacing what it held) from argv. */
int cmd_failure_set(struct cmd_failure *f, char *const argv[], int status, const char *output);
/* argv joined with spaces, arguments with blanks or quotes single-quoted. */
int argv_to_string(char *const argv[], char **ret);

struct svc_spec {
        const char *name;  /* "keepalived": names the pidfile and log of the direct mode */
        const char *unit;  /* "keepalived.service" */
        char **argv;       /* direct mode: the daemon in the foreground, NULL-terminated */
        int reload_signal; /* direct mode: signal that rereads the config; 0 = restart */
        /* Direct mode: the daemon's own pidfiles. After a kill -9 they name a dead (or
         * zombie, where nothing reaps) process and the daemon refuses to start, so they
         * are removed before starting it when it is not running. NULL-terminated or NULL. */
        char **stale_files;
};

struct svcmgr {
        enum svcmgr_kind kind;
        char *run_dir; /* direct: <run_dir>/<name>.pid */
        char *log_dir; /* direct: <log_dir>/<name>.log */
        cmd_runner_fn run;
        void *run_userdata;
        unsigned stop_timeout_ms; /* direct: SIGTERM, then SIGKILL after this long */
};

/* run_dir/log_dir are used by the direct mode only (created on first start). */
int svcmgr_new(enum svcmgr_kind kind, const char *run_dir, const char *log_dir, cmd_runner_fn run,
               void *run_userdata, struct svcmgr **ret);
struct svcmgr *svcmgr_free(struct svcmgr *m);
static inline void svcmgr_freep(struct svcmgr **m) {
        svcmgr_free(*m);
}
#define _cleanup_svcmgr_ __attribute__((cleanup(svcmgr_freep)))

/* Start (and with systemd, enable unless enabled) unless already running. 0 started, 1 was
 * running. */
int svcmgr_start(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f);
/* Make a running service pick up new config (reload signal or restart), or start it. */
int svcmgr_reload(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f);
/* Stop; 0 if it was not running. */
int svcmgr_stop(struct svcmgr *m, const struct svc_spec *s, struct cmd_failure *f);
/* 1 running, 0 not; direct mode fills ret_pid (may be NULL) when running. */
int svcmgr_is_running(struct svcmgr *m, const struct svc_spec *s, pid_t *ret_pid);

enum svc_action { SVC_START, SVC_RELOAD, SVC_STOP };
/* The command line an action amounts to, for `firstboot plan`. */
int svcmgr_describe(enum svcmgr_kind kind, const char *run_dir, const char *log_dir,
                    const struct svc_spec *s, enum svc_action a, char **ret);
