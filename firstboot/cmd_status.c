/* SPDX-License-Identifier: MIT */
/* `firstboot status [--json]`: this node, its roles, its peers and the state of each
 * bring-up step, from the state directory only (no config needed, nothing written). */
#include <arpa/inet.h>
#include <getopt.h>

#include "commands.h"
#include "json_util.h"
#include "log.h"
#include "node_self.h"
#include "steps.h"
#include "util.h"

#define DEFAULT_STATE_DIR "/var/lib/rainboot"
#define DEFAULT_MACHINE_ID "/etc/machine-id"

struct status_opts {
        const char *state_dir;
        const char *machine_id;
        bool json;
};

static void status_help(FILE *f) {
        fprintf(f, "Usage: firstboot status [--json] [--state-dir DIR] [--machine-id-file FILE]\n"
                   "\n"
                   "Show this node, its roles, its peers and each bring-up step's state.\n"
                   "\n"
                   "      --json                  machine-readable output\n"
                   "      --state-dir DIR         state directory (default " DEFAULT_STATE_DIR ")\n"
                   "      --machine-id-file FILE  this node's id (default " DEFAULT_MACHINE_ID ")\n"
                   "  -h, --help                  this text\n");
}

static int parse_opts(int argc, char **argv, struct status_opts *o, bool *ret_done) {
        enum { ARG_JSON = 0x100, ARG_STATE_DIR, ARG_MACHINE_ID };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "machine-id-file", required_argument, NULL, ARG_MACHINE_ID },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        o->json = true;
                        break;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_MACHINE_ID:
                        o->machine_id = optarg;
                        break;
                case 'h':
                        status_help(stdout);
                        *ret_done = true;
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot status --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                log_error("status: unexpected argument '%s'. Try 'firstboot status --help'.",
                          argv[optind]);
                return 2;
        }
        return 0;
}

static int node_json(const struct node_plan *np, const struct node_info *ni,
                     struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *roles = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *addrs = json_object_new_array();
        const char *names[PLAN_ROLE_NAMES_MAX];
        size_t k = node_plan_role_names(np, names);
        int r;

        if (!o || !roles || !addrs)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++)
                if ((r = json_append(roles, json_object_new_string(names[i]))) < 0)
                        return r;
        for (size_t i = 0; ni && i < ni->n_addrs; i++) {
                char a[INET_ADDRSTRLEN];

                inet_ntop(AF_INET, &ni->addrs[i], a, sizeof a);
                if ((r = json_append(addrs, json_object_new_string(a))) < 0)
                        return r;
        }
        if ((r = json_add(o, "id", json_new_hex(np->id, NODE_ID_LEN))) < 0 ||
            (r = json_add_str(o, "hostname", np->hostname)) < 0 ||
            (r = json_add(o, "addresses", TAKE_PTR(addrs))) < 0 ||
            (r = json_add(o, "roles", TAKE_PTR(roles))) < 0 ||
            (r = json_add_u64(o, "vrrp_priority", np->vrrp_priority)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static const struct node_info *view_find(const struct view *v, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; i < v->n; i++)
                if (node_id_cmp(v->nodes[i].id, id) == 0)
                        return &v->nodes[i];
        return NULL;
}

static int print_json(const struct bringup_state *s, const struct journal *j) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *peers = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *steps = NULL;
        _cleanup_free_ char *jtext = NULL, *out = NULL;
        struct json_object *node = NULL, *plan = NULL, *arr;
        int r;

        if (!o || !peers)
                return -ENOMEM;
        r = node_json(s->self, s->self_info, &node);
        if (r < 0 || (r = json_add(o, "node", node)) < 0)
                return r;
        plan = json_object_new_object();
        if ((r = json_add(o, "plan", plan)) < 0 ||
            (r = json_add(plan, "digest", json_new_hex(s->plan->digest, DIGEST_LEN))) < 0 ||
            (r = json_add_u64(plan, "epoch", s->plan->epoch)) < 0 ||
            (r = json_add_u64(plan, "members", s->plan->n)) < 0)
                return r;
        for (size_t i = 0; i < s->plan->n; i++) {
                struct json_object *p;

                if (&s->plan->nodes[i] == s->self)
                        continue;
                r = node_json(&s->plan->nodes[i], view_find(&s->view, s->plan->nodes[i].id), &p);
                if (r < 0 || (r = json_append(peers, p)) < 0)
                        return r;
        }
        if ((r = json_add(o, "peers", TAKE_PTR(peers))) < 0 || (r = journal_to_json(j, &jtext)) < 0)
                return r;
        steps = json_tokener_parse(jtext);
        if (!steps || !json_object_object_get_ex(steps, "steps", &arr))
                return -ENOMEM;
        if ((r = json_add(o, "steps", json_object_get(arr))) < 0 || (r = json_to_string(o, &out)) < 0)
                return r;
        puts(out);
        return 0;
}

static void print_node_line(const char *label, const struct node_plan *np,
                            const struct node_info *ni) {
        const char *names[PLAN_ROLE_NAMES_MAX];
        size_t k = node_plan_role_names(np, names);
        char hex[2 * NODE_ID_LEN + 1], a[INET_ADDRSTRLEN] = "-";

        node_id_to_hex(np->id, hex);
        if (ni && ni->n_addrs)
                inet_ntop(AF_INET, &ni->addrs[0], a, sizeof a);
        printf("%s%s (%.12s) %s:", label, np->hostname[0] ? np->hostname : "?", hex, a);
        for (size_t i = 0; i < k; i++)
                printf("%s%s", i ? ", " : " ", names[i]);
        putchar('\n');
}

static void print_text(const struct bringup_state *s, const struct journal *j) {
        char digest[2 * DIGEST_LEN + 1];

        hex_encode(s->plan->digest, DIGEST_LEN, digest);
        print_node_line("node:  ", s->self, s->self_info);
        printf("plan:  %.16s, epoch %u, %zu members\n", digest, s->plan->epoch, s->plan->n);
        printf("peers:\n");
        for (size_t i = 0; i < s->plan->n; i++)
                if (&s->plan->nodes[i] != s->self)
                        print_node_line("  ", &s->plan->nodes[i],
                                        view_find(&s->view, s->plan->nodes[i].id));
        printf("steps:%s\n", j->n ? "" : " none run yet (firstboot apply)");
        for (size_t i = 0; i < j->n; i++) {
                const struct journal_entry *e = &j->entries[i];

                printf("  %-12s %-8s attempts %u%s%s\n", e->name, step_state_to_string(e->state),
                       e->attempts, e->note ? "  " : "", e->note ? e->note : "");
                if (e->state == STEP_FAILED && e->failure.command)
                        printf("    `%s` exited with status %d\n", e->failure.command,
                               e->failure.status);
        }
}

int cmd_status(const struct ctx *ctx _unused_, int argc, char **argv) {
        struct status_opts o = { .state_dir = DEFAULT_STATE_DIR, .machine_id = DEFAULT_MACHINE_ID };
        _cleanup_(bringup_state_done) struct bringup_state s = {};
        _cleanup_(journal_done) struct journal j = {};
        uint8_t id[NODE_ID_LEN];
        bool done = false;
        int r;

        r = parse_opts(argc, argv, &o, &done);
        if (r != 0 || done)
                return r;
        r = read_machine_id(o.machine_id, id);
        if (r < 0)
                return r;
        r = bringup_state_load(o.state_dir, id, &s);
        if (r < 0)
                return r;
        r = journal_load(o.state_dir, &j);
        if (r < 0)
                return log_error_errno(r, "Cannot read the journal in %s: %m", o.state_dir);
        if (o.json) {
                r = print_json(&s, &j);
                if (r < 0)
                        return log_error_errno(r, "Cannot format the status as JSON: %m");
        } else
                print_text(&s, &j);
        if (fflush(stdout) != 0)
                return log_error_errno(-errno, "Cannot write the status: %m");
        return 0;
}
