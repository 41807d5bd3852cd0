/* SPDX-License-Identifier: MIT */
/* `firstboot apply`: bring this node's services up from the committed plan, step by
 * step, journaled under the state directory. */
#include <arpa/inet.h>
#include <getopt.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "node_self.h"
#include "steps.h"
#include "util.h"

#define DEFAULT_STATE_DIR "/var/lib/rainboot"
#define DEFAULT_MACHINE_ID "/etc/machine-id"
#define BACKOFF_MS_DEFAULT 2000

static void apply_help(FILE *f) {
        fprintf(f,
                "Usage: firstboot [-c CONFIG] apply [OPTIONS]\n"
                "\n"
                "Bring up this node's services from the plan committed at formation, in\n"
                "dependency order. Each step is recorded in STATE-DIR/journal.json; a rerun\n"
                "resumes at the first unfinished step.\n"
                "\n"
                "      --state-dir DIR         state directory (default " DEFAULT_STATE_DIR ")\n"
                "      --root DIR              write rendered files under DIR (default /)\n"
                "      --supervisor KIND       systemd (default) or direct (fork/exec, pidfile\n"
                "                              and log under STATE-DIR, for namespace tests)\n"
                "      --machine-id-file FILE  this node's id (default " DEFAULT_MACHINE_ID ")\n"
                "      --attempts N            tries per step before giving up (default 3)\n"
                "      --backoff-ms MS         wait before the 2nd try, doubled after (default %d)\n"
                "      --recheck               check steps the journal has as done, too\n"
                "      --only STEP             run just STEP, leave the others as they are\n"
                "                              (contract tests, repair)\n"
                "  -h, --help                  this text\n",
                BACKOFF_MS_DEFAULT);
}

struct apply_opts {
        const char *state_dir;
        const char *root;
        const char *machine_id;
        enum svcmgr_kind supervisor;
        struct step_opts step;
};

static int parse_uint(const char *s, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || *s == '-' || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

static int parse_opts(int argc, char **argv, struct apply_opts *o, bool *ret_done) {
        enum { ARG_STATE_DIR = 0x100, ARG_ROOT, ARG_SUPERVISOR, ARG_MACHINE_ID, ARG_ATTEMPTS,
               ARG_BACKOFF, ARG_RECHECK, ARG_ONLY };
        static const struct option options[] = {
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "root", required_argument, NULL, ARG_ROOT },
                { "supervisor", required_argument, NULL, ARG_SUPERVISOR },
                { "machine-id-file", required_argument, NULL, ARG_MACHINE_ID },
                { "attempts", required_argument, NULL, ARG_ATTEMPTS },
                { "backoff-ms", required_argument, NULL, ARG_BACKOFF },
                { "recheck", no_argument, NULL, ARG_RECHECK },
                { "only", required_argument, NULL, ARG_ONLY },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_ROOT:
                        o->root = optarg;
                        break;
                case ARG_SUPERVISOR:
                        if (svcmgr_kind_from_string(optarg, &o->supervisor) < 0) {
                                log_error("apply: --supervisor: '%s' is neither systemd nor direct.",
                                          optarg);
                                return 2;
                        }
                        break;
                case ARG_MACHINE_ID:
                        o->machine_id = optarg;
                        break;
                case ARG_ATTEMPTS:
                        if (parse_uint(optarg, 100, &o->step.max_attempts) < 0 ||
                            o->step.max_attempts == 0) {
                                log_error("apply: --attempts: expected 1..100, got '%s'.", optarg);
                                return 2;
                        }
                        break;
                case ARG_BACKOFF:
                        if (parse_uint(optarg, 600000, &o->step.backoff_ms) < 0) {
                                log_error("apply: --backoff-ms: expected 0..600000, got '%s'.",
                                          optarg);
                                return 2;
                        }
                        break;
                case ARG_RECHECK:
                        o->step.recheck = true;
                        break;
                case ARG_ONLY: {
                        size_t n;
                        const struct step *const *all = steps_all(&n);
                        bool known = false;

                        for (size_t i = 0; i < n && !known; i++)
                                known = streq(all[i]->name, optarg);
                        if (!known) {
                                log_error("apply: --only: no step is named '%s'; `firstboot plan "
                                          "--steps` lists them.", optarg);
                                return 2;
                        }
                        o->step.only = optarg;
                        break;
                }
                case 'h':
                        apply_help(stdout);
                        *ret_done = true;
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot apply --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                log_error("apply: unexpected argument '%s'. Try 'firstboot apply --help'.",
                          argv[optind]);
                return 2;
        }
        return 0;
}

int cmd_apply(const struct ctx *ctx, int argc, char **argv) {
        struct apply_opts o = {
                .state_dir = DEFAULT_STATE_DIR,
                .root = "",
                .machine_id = DEFAULT_MACHINE_ID,
                .supervisor = SVCMGR_SYSTEMD,
                .step = { .backoff_ms = BACKOFF_MS_DEFAULT },
        };
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_(bringup_state_done) struct bringup_state s = {};
        _cleanup_svcmgr_ struct svcmgr *svc = NULL;
        _cleanup_free_ char *iface = NULL, *run_dir = NULL, *log_dir = NULL;
        uint8_t id[NODE_ID_LEN];
        struct step_ctx c;
        size_t n;
        const struct step *const *steps = steps_all(&n);
        bool done = false;
        int r;

        r = parse_opts(argc, argv, &o, &done);
        if (r != 0 || done)
                return r;
        r = ctx_load_config(ctx, NULL, &cfg);
        if (r < 0)
                return r;
        r = read_machine_id(o.machine_id, id);
        if (r < 0)
                return r;
        r = bringup_state_load(o.state_dir, id, &s);
        if (r < 0)
                return r;
        r = vip_iface_resolve(cfg, s.self_info && s.self_info->n_addrs ? &s.self_info->addrs[0]
                                                                      : NULL,
                              &iface);
        if (r < 0)
                return log_error_errno(r, "Cannot list the network interfaces: %m");

        step_ctx_init(&c, cfg, &s, o.root, o.state_dir);
        c.vip_iface = iface;
        c.supervisor = o.supervisor;
        if ((r = step_run_dir(&c, &run_dir)) < 0 || (r = step_log_dir(&c, &log_dir)) < 0)
                return log_error_errno(r, "Out of memory");
        r = svcmgr_new(o.supervisor, run_dir, log_dir, NULL, NULL, &svc);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the service manager: %m");
        c.svc = svc;

        r = steps_run(steps, n, &c, &o.step);
        if (r < 0)
                return r;
        log_info("Bring-up complete: every step is done or skipped (journal %s/journal.json).",
                 o.state_dir);
        return 0;
}
