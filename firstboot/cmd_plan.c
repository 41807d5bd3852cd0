/* SPDX-License-Identifier: MIT */
/* `firstboot plan`: what the cluster would do, without doing it: the role plan with its
 * reasons (--explain), and per node every file and command of the bring-up steps
 * (--steps). Read-only. */
#include <arpa/inet.h>
#include <getopt.h>

#include "commands.h"
#include "config.h"
#include "elect.h"
#include "log.h"
#include "steps.h"
#include "util.h"
#include "view_json.h"

#define DEFAULT_STATE_DIR "/var/lib/rainboot"

struct plan_opts {
        bool explain;
        bool steps;
        bool content;
        bool json;
        enum svcmgr_kind supervisor;
        const char *root;
        const char *view_path; /* NULL: <state_dir>/view.json */
        const char *state_dir;
};

static void plan_help(FILE *f) {
        fprintf(f, "Usage: firstboot [-c CONFIG] plan --explain|--steps [--view FILE] "
                   "[--state-dir DIR] [--json]\n"
                   "\n"
                   "Elect the roles of every node from a view (the agreed node list) and the\n"
                   "config, and print why each node got each role. Nothing is written.\n"
                   "\n"
                   "      --explain        print each node's roles with the reason for each\n"
                   "      --steps          print per node every file and command of the bring-up\n"
                   "      --content        with --steps: also the content of every file\n"
                   "      --supervisor KIND  with --steps: systemd (default) or direct\n"
                   "      --root DIR       with --steps: files go under DIR\n"
                   "      --view FILE      view JSON (default: STATE-DIR/view.json, the view\n"
                   "                       committed at formation)\n"
                   "      --state-dir DIR  state directory (default " DEFAULT_STATE_DIR ")\n"
                   "      --json           the plan as JSON instead of text\n"
                   "  -h, --help           this text\n");
}

/* Returns 0 to go on, or the exit code: 2 for usage errors, 0 with *ret_done after --help. */
static int parse_opts(int argc, char **argv, struct plan_opts *o, bool *ret_done) {
        enum { ARG_EXPLAIN = 0x100, ARG_JSON, ARG_VIEW, ARG_STATE_DIR, ARG_STEPS, ARG_CONTENT,
               ARG_SUPERVISOR, ARG_ROOT };
        static const struct option options[] = {
                {"explain", no_argument, NULL, ARG_EXPLAIN},
                {"steps", no_argument, NULL, ARG_STEPS},
                {"content", no_argument, NULL, ARG_CONTENT},
                {"supervisor", required_argument, NULL, ARG_SUPERVISOR},
                {"root", required_argument, NULL, ARG_ROOT},
                {"json", no_argument, NULL, ARG_JSON},
                {"view", required_argument, NULL, ARG_VIEW},
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_EXPLAIN:
                        o->explain = true;
                        break;
                case ARG_STEPS:
                        o->steps = true;
                        break;
                case ARG_CONTENT:
                        o->content = true;
                        break;
                case ARG_SUPERVISOR:
                        if (svcmgr_kind_from_string(optarg, &o->supervisor) < 0) {
                                log_error("plan: --supervisor: '%s' is neither systemd nor direct.",
                                          optarg);
                                return 2;
                        }
                        break;
                case ARG_ROOT:
                        o->root = optarg;
                        break;
                case ARG_JSON:
                        o->json = true;
                        break;
                case ARG_VIEW:
                        o->view_path = optarg;
                        break;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case 'h':
                        plan_help(stdout);
                        *ret_done = true;
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot plan --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                log_error("plan: unexpected argument '%s'. Try 'firstboot plan --help'.",
                          argv[optind]);
                return 2;
        }
        if (!o->explain && !o->steps) {
                log_error("plan: say what to print: --explain and/or --steps. Try 'firstboot "
                          "plan --help'.");
                return 2;
        }
        if (o->steps && o->json) {
                log_error("plan: --steps has no JSON form yet.");
                return 2;
        }
        return 0;
}

static int load_view(const struct plan_opts *o, struct view *ret) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        int r;

        if (o->view_path)
                path = strdup(o->view_path);
        else if (asprintf(&path, "%s/view.json", o->state_dir) < 0)
                path = NULL;
        if (!path)
                return log_error_errno(-ENOMEM, "Out of memory");

        r = view_from_json_file(path, ret, &error);
        if (r == -ENOENT && !o->view_path)
                return log_error_errno(r,
                                       "No view at %s: this node has not formed a cluster yet. "
                                       "Pass --view FILE to plan from a view of your own.",
                                       path);
        if (r == -EINVAL && error)
                return log_error_errno(r, "%s", error);
        if (r < 0)
                return log_error_errno(r, "Failed to read the view %s: %m", path);
        if (ret->n == 0)
                return log_error_errno(
                        -EINVAL, "%s: nodes: the view is empty; it needs at least one node.", path);
        return 0;
}

/* Every node in turn as "self": rendering is pure, so this shows what `firstboot apply`
 * would write and run there. */
static int print_steps(const struct plan_opts *o, const struct config *cfg,
                       const struct role_plan *plan, const struct view *v) {
        size_t n;
        const struct step *const *steps = steps_all(&n);
        int r;

        for (size_t i = 0; i < plan->n; i++) {
                struct bringup_state s = {.plan = (struct role_plan *)plan, .view = *v,
                                          .self = &plan->nodes[i]};
                _cleanup_free_ char *iface = NULL;
                char hex[2 * NODE_ID_LEN + 1], addr[INET_ADDRSTRLEN] = "no address";
                struct step_ctx c;

                for (size_t k = 0; k < v->n; k++)
                        if (node_id_cmp(v->nodes[k].id, plan->nodes[i].id) == 0)
                                s.self_info = &v->nodes[k];
                if (s.self_info && s.self_info->n_addrs)
                        inet_ntop(AF_INET, &s.self_info->addrs[0], addr, sizeof addr);
                r = vip_iface_resolve(cfg, NULL, &iface);
                if (r >= 0 && !iface)
                        r = asprintf_safe(&iface, "<the interface holding %s>", addr);
                if (r < 0)
                        return log_error_errno(r, "Out of memory");
                node_id_to_hex(plan->nodes[i].id, hex);
                printf("%s%s (%.12s) %s\n", i ? "\n" : "", plan->nodes[i].hostname, hex, addr);
                step_ctx_init(&c, cfg, &s, o->root, o->state_dir);
                c.vip_iface = iface;
                c.supervisor = o->supervisor;
                r = steps_print_plan(steps, n, &c, o->content, stdout);
                if (r < 0)
                        return log_error_errno(r, "Cannot render the steps of %s: %m",
                                               plan->nodes[i].hostname);
        }
        return 0;
}

int cmd_plan(const struct ctx *ctx, int argc, char **argv) {
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_role_plan_ struct role_plan *plan = NULL;
        struct plan_opts o = {.state_dir = DEFAULT_STATE_DIR};
        _cleanup_(view_done) struct view v = {};
        bool done = false;
        int r;

        r = parse_opts(argc, argv, &o, &done);
        if (r != 0 || done)
                return r;

        r = ctx_load_config(ctx, NULL, &cfg);
        if (r < 0)
                return r;
        r = load_view(&o, &v);
        if (r < 0)
                return r;
        r = elect(&v, cfg, &plan);
        if (r == -E2BIG)
                log_error("The view has %zu nodes; an election handles at most %d.", v.n,
                          ELECT_MAX_NODES);
        else if (r < 0)
                log_error_errno(r, "Election failed: %m");
        if (r < 0)
                return r;

        if (o.steps) {
                if (o.explain) {
                        role_plan_explain(plan, &v, stdout);
                        putchar('\n');
                }
                r = print_steps(&o, cfg, plan, &v);
                if (r < 0)
                        return r;
        } else if (o.json) {
                _cleanup_free_ char *s = NULL;

                r = role_plan_to_json(plan, &s);
                if (r < 0)
                        return log_error_errno(r, "Failed to format the plan as JSON: %m");
                puts(s);
        } else
                role_plan_explain(plan, &v, stdout);
        if (fflush(stdout) != 0)
                return log_error_errno(-errno, "Failed to write the plan: %m");
        return 0;
}
