/* SPDX-License-Identifier: MIT */
/* Bring-up steps (DESIGN.md section 5). A step is a module that renders what it needs
 * (files, commands, services) from the committed plan; rendering is pure, so `firstboot
 * plan` can list it for every node without touching anything. The engine runs the
 * wanted steps in dependency order, records each in a journal under the state directory
 * (written atomically), resumes at the first unfinished step after a crash, and retries a
 * failing step with back-off a bounded number of times, keeping the failing command and
 * its output. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config.h"
#include "elect.h"
#include "svcmgr.h"
#include "view.h"

#define STEP_NAME_MAX 32

/* Everything a step may read. Rendering uses all but svc and the runner. */
struct step_ctx {
        const struct config *cfg;
        const struct role_plan *plan;
        const struct view *view;           /* facts of the members: addresses */
        const struct node_plan *self;      /* this node's entry in plan */
        const struct node_info *self_info; /* this node in view; NULL if missing */
        const char *root;                  /* prefix of every rendered path; "" = / */
        const char *state_dir;
        const char *vip_iface;             /* resolved VIP interface, NULL = not known here */
        enum svcmgr_kind supervisor;
        struct svcmgr *svc;                /* NULL when only rendering */
        cmd_runner_fn run;                 /* NULL: run_command() */
        void *run_userdata;
};

struct step_file {
        char *path; /* with ctx->root prefixed: where it is written and read from */
        char *content;
        mode_t mode;
};

/* What a step would do, in order: write files, run commands, then start or reload
 * services (reload when a file changed). */
struct step_render {
        struct step_file *files;
        size_t n_files;
        char ***commands; /* each an argv */
        size_t n_commands;
        struct svc_spec *services; /* owned: name, unit and argv are allocated */
        size_t n_services;
};
void step_render_done(struct step_render *r);
/* Takes ownership of content (freed on failure too). */
int step_render_add_file(struct step_render *r, const char *path, char *content, mode_t mode);
/* NULL-terminated argument list. */
int step_render_add_command(struct step_render *r, const char *arg0, ...)
        __attribute__((sentinel));
int step_render_add_service(struct step_render *r, const char *name, const char *unit,
                            int reload_signal, char **argv);
/* <ctx->root><path> */
int step_path(const struct step_ctx *c, const char *path, char **ret);
/* Where the direct supervisor keeps pidfiles and logs: <state_dir>/run, <state_dir>/log. */
int step_run_dir(const struct step_ctx *c, char **ret);
int step_log_dir(const struct step_ctx *c, char **ret);

struct step {
        const char *name;          /* journal key, at most STEP_NAME_MAX - 1 chars */
        const char *const *after;  /* NULL-terminated names of steps that go first */
        /* NULL if this node runs the step, else why not (static text). */
        const char *(*skip_reason)(const struct step_ctx *c);
        int (*render)(const struct step_ctx *c, struct step_render *ret);
        /* Optional: already done? 1 yes, 0 no. Default: every file has the rendered
         * content and every service runs. */
        int (*check)(const struct step_ctx *c, const struct step_render *r);
        /* Optional: default writes changed files atomically, runs the commands, starts or
         * reloads the services. resumed: an earlier run stopped inside this step, so files
         * may already be new while a service still runs with the old ones. Fills f on
         * failure. */
        int (*apply)(const struct step_ctx *c, const struct step_render *r, bool resumed,
                     struct cmd_failure *f);
};

int step_check_default(const struct step_ctx *c, const struct step_render *r);
int step_apply_default(const struct step_ctx *c, const struct step_render *r, bool resumed,
                       struct cmd_failure *f);

/* The steps this build knows, in no particular order. */
extern const struct step step_haproxy;
extern const struct step step_keepalived;
extern const struct step step_mysql;
extern const struct step step_mysql_external;
extern const struct step step_etcd;
extern const struct step step_pki;
extern const struct step step_registry;
extern const struct step step_registry_trust;
extern const struct step step_images;
extern const struct step step_kubernetes;
extern const struct step step_rainbond;
const struct step *const *steps_all(size_t *ret_n);

/* Dependency order, stable by input order among independent steps. -ELOOP for a cycle,
 * -ENOENT for an unknown name in `after`. ret gets n pointers (caller frees the array). */
int steps_order(const struct step *const *steps, size_t n, const struct step ***ret);

enum step_state {
        STEP_PENDING,
        STEP_RUNNING, /* started, not finished: a crash happened here, or it is running */
        STEP_DONE,
        STEP_FAILED,
        STEP_SKIPPED, /* not for this node */
};
const char *step_state_to_string(enum step_state s);
int step_state_from_string(const char *s, enum step_state *ret);

struct journal_entry {
        char name[STEP_NAME_MAX];
        enum step_state state;
        unsigned attempts;           /* apply calls, over all runs */
        char hash[33];               /* of the rendered output it finished with */
        uint64_t updated;            /* unix seconds */
        uint64_t started;            /* unix seconds: when it left a settled state (duration) */
        char *note;                  /* skip reason or error text */
        struct cmd_failure failure;  /* last failing command, when FAILED */
};

struct journal {
        struct journal_entry *entries;
        size_t n;
};
void journal_done(struct journal *j);
/* <state_dir>/journal.json; a missing file is an empty journal. -EBADMSG if unreadable. */
int journal_load(const char *state_dir, struct journal *ret);
int journal_save(const struct journal *j, const char *state_dir);
int journal_to_json(const struct journal *j, char **ret);
struct journal_entry *journal_find(const struct journal *j, const char *name);

struct step_opts {
        unsigned max_attempts; /* per run; 0 = 3 */
        unsigned backoff_ms;   /* before the 2nd attempt, doubled after each; 0 = none */
        bool recheck;          /* also run check() for steps the journal has as done */
        const char *only;      /* run just this step, the others left as they are (tests,
                                * repair); NULL = all */
};

/* Run the wanted steps in dependency order. Returns 0 when all are done or skipped, or
 * the error of the step that failed after its attempts (logged, with its command and
 * output, and recorded in the journal); later steps are then left pending. */
int steps_run(const struct step *const *steps, size_t n, const struct step_ctx *c,
              const struct step_opts *o);

/* Print every wanted step's files and commands (for `firstboot plan`). */
int steps_print_plan(const struct step *const *steps, size_t n, const struct step_ctx *c,
                     bool with_content, FILE *f);

/* The committed state discovery leaves in the state directory: plan.json (digest
 * checked) and view.json; self is found by id. */
struct bringup_state {
        struct role_plan *plan;
        struct view view;
        const struct node_plan *self;
        const struct node_info *self_info;
};
void bringup_state_done(struct bringup_state *s);
/* Parse role_plan_to_json() output; the digest in it must match the content. */
int role_plan_from_json(const char *text, const char *name, struct role_plan **ret);
/* Errors are logged, naming the file and the fix. */
int bringup_state_load(const char *state_dir, const uint8_t self_id[NODE_ID_LEN],
                       struct bringup_state *ret);
/* The VIP interface: the configured one, else the discovery interface, else the local
 * interface holding `addr` (getifaddrs). NULL when none is found. */
int vip_iface_resolve(const struct config *cfg, const struct in_addr *addr, char **ret);
/* The view's facts about a plan member; NULL if the view lacks it. Its first address is
 * the one on the cluster interface. */
const struct node_info *step_node_info(const struct step_ctx *c, const uint8_t id[NODE_ID_LEN]);
/* Gateway ports the VIP fronts, and the Kubernetes API port haproxy serves on it. */
#define GATEWAY_PORTS { 80, 443, 6060, 7070, 8443 }
#define KUBE_API_PORT 6443
/* Not 6443 (the apiserver's own on masters), nor a gateway port. */
#define KUBE_API_VIP_PORT 16443
/* The cluster secrets discovery sealed to this node, key=value lines (0600) under the
 * state directory. Keys: join_token, cert_key, mysql_replication_password,
 * mysql_rainbond_password, registry_password, ca_seed (64 hex digits). */
#define STEP_SECRETS_FILE "secrets/cluster.env"
/* The value of key; -ENOENT if the file lacks it (or it is empty), other errors logged.
 * The caller wipes (explicit_bzero) and frees it. */
int step_secret(const struct step_ctx *c, const char *key, char **ret);
/* Fill ctx from a loaded state (borrowing everything). */
void step_ctx_init(struct step_ctx *c, const struct config *cfg, const struct bringup_state *s,
                   const char *root, const char *state_dir);
