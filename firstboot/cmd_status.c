/* SPDX-License-Identifier: MIT */
/* `firstboot status [--json] [--watch]`: this node, its roles, its peers, the VIP and the
 * state and duration of each bring-up step, from the state directory only (nothing is
 * written). Before formation it shows what discovery sees. The text form is the node's
 * console dashboard (tty1); `--json --watch` streams one JSON line per change, which the
 * VM host reads from a virtio-serial port. */
#include <arpa/inet.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "json_util.h"
#include "log.h"
#include "node_self.h"
#include "steps.h"
#include "util.h"

#define DEFAULT_STATE_DIR "/var/lib/rainboot"
#define DEFAULT_MACHINE_ID "/etc/machine-id"
#define WATCH_INTERVAL_MS_DEFAULT 2000
/* Lines of a failing command's output the dashboard shows. */
#define ERROR_OUTPUT_LINES 3

struct status_opts {
        const char *state_dir;
        const char *machine_id;
        bool json;
        bool watch;
        unsigned interval_ms;
};

static void status_help(FILE *f) {
        fprintf(f, "Usage: firstboot status [--json] [--watch [--interval MS]] [--state-dir DIR]\n"
                   "                        [--machine-id-file FILE]\n"
                   "\n"
                   "Show this node, its roles, its peers, the VIP and each bring-up step's\n"
                   "state and duration, and the last error. Before formation: what discovery\n"
                   "sees. The phase is one of starting, discovering, agreeing, formed,\n"
                   "bringing-up, ready, failed.\n"
                   "\n"
                   "      --json                  machine-readable output\n"
                   "      --watch                 redraw (text) or print one JSON line (--json)\n"
                   "                              whenever the status changes; runs until killed\n"
                   "      --interval MS           how often --watch looks (default %d)\n"
                   "      --state-dir DIR         state directory (default " DEFAULT_STATE_DIR ")\n"
                   "      --machine-id-file FILE  this node's id (default " DEFAULT_MACHINE_ID ")\n"
                   "  -h, --help                  this text\n",
                WATCH_INTERVAL_MS_DEFAULT);
}

static int parse_opts(int argc, char **argv, struct status_opts *o, bool *ret_done) {
        enum { ARG_JSON = 0x100, ARG_STATE_DIR, ARG_MACHINE_ID, ARG_WATCH, ARG_INTERVAL };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "watch", no_argument, NULL, ARG_WATCH },
                { "interval", required_argument, NULL, ARG_INTERVAL },
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
                case ARG_WATCH:
                        o->watch = true;
                        break;
                case ARG_INTERVAL: {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || *optarg == '-' || v < 100 ||
                            v > 3600000) {
                                log_error("status: --interval: expected 100..3600000 ms, got '%s'.",
                                          optarg);
                                return 2;
                        }
                        o->interval_ms = (unsigned)v;
                        break;
                }
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

static struct json_object *obj_get(struct json_object *o, const char *key) {
        struct json_object *v;

        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *obj_str(struct json_object *o, const char *key) {
        struct json_object *v = obj_get(o, key);

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t obj_int(struct json_object *o, const char *key) {
        struct json_object *v = obj_get(o, key);

        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

/* One step's entry: the journal's fields, plus its duration (so far, when running). */
static int step_json(const struct journal_entry *e, const char *name, uint64_t now,
                     struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_free_ char *text = NULL;
        struct journal one = { .entries = (struct journal_entry *)e, .n = 1 };
        struct json_object *steps;
        int r;

        if (!e) {
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                if ((r = json_add_str(o, "name", name)) < 0 ||
                    (r = json_add_str(o, "state", "pending")) < 0 ||
                    (r = json_add_null(o, "duration")) < 0)
                        return r;
                *ret = TAKE_PTR(o);
                return 0;
        }
        r = journal_to_json(&one, &text);
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        steps = obj_get(o, "steps");
        if (!steps || json_object_array_length(steps) != 1)
                return -ENOMEM;
        steps = json_object_get(json_object_array_get_idx(steps, 0));
        json_object_put(TAKE_PTR(o));
        o = steps;
        if (!e->started || e->state == STEP_PENDING || e->state == STEP_SKIPPED)
                r = json_add_null(o, "duration");
        else if (e->state == STEP_RUNNING)
                r = json_add_u64(o, "duration", now > e->started ? now - e->started : 0);
        else
                r = json_add_u64(o, "duration",
                                 e->updated > e->started ? e->updated - e->started : 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static bool order_has(const struct step **order, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(order[i]->name, name))
                        return true;
        return false;
}

/* Every step this build knows, in run order (pending when not journaled yet), then any
 * journaled step it no longer knows. Sets *ret_phase from the step states. */
static int steps_json(const struct journal *j, uint64_t now, struct json_object *steps,
                      struct json_object **ret_error, const char **ret_phase) {
        _cleanup_free_ const struct step **order = NULL;
        const struct journal_entry *last_failed = NULL;
        size_t n;
        const struct step *const *all = steps_all(&n);
        bool all_settled = true;
        int r;

        r = steps_order(all, n, &order);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n + j->n; i++) {
                const struct journal_entry *e;
                const char *name;
                struct json_object *s;

                if (i < n) {
                        name = order[i]->name;
                        e = journal_find(j, name);
                } else {
                        e = &j->entries[i - n];
                        name = e->name;
                        if (order_has(order, n, name))
                                continue;
                }
                r = step_json(e, name, now, &s);
                if (r < 0 || (r = json_append(steps, s)) < 0)
                        return r;
                if (!e || (e->state != STEP_DONE && e->state != STEP_SKIPPED))
                        all_settled = false;
                if (e && e->state == STEP_FAILED && (!last_failed || e->updated >= last_failed->updated))
                        last_failed = e;
        }
        if (last_failed) {
                _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                if ((r = json_add_str(o, "step", last_failed->name)) < 0 ||
                    (r = json_add_str_or_null(o, "note", last_failed->note)) < 0 ||
                    (r = json_add_str_or_null(o, "command", last_failed->failure.command)) < 0 ||
                    (r = json_add_int(o, "status", last_failed->failure.status)) < 0 ||
                    (r = json_add_str_or_null(o, "output", last_failed->failure.output)) < 0 ||
                    (r = json_add_u64(o, "time", last_failed->updated)) < 0)
                        return r;
                *ret_error = TAKE_PTR(o);
        }
        *ret_phase = last_failed ? "failed" : all_settled ? "ready" : j->n ? "bringing-up" : "formed";
        return 0;
}

struct vip_info {
        bool known;
        struct ipv4_cidr cidr;
};

/* The interface holding the VIP on this node, if any. */
static int vip_json(const struct vip_info *vip, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct ifaddrs *ifa = NULL;
        const char *here = NULL;
        char a[INET_ADDRSTRLEN + 4];
        int r;

        if (!vip->known) {
                *ret = NULL;
                return 0;
        }
        if (getifaddrs(&ifa) == 0) {
                for (struct ifaddrs *i = ifa; i && !here; i = i->ifa_next)
                        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                            ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
                                    vip->cidr.addr.s_addr)
                                here = i->ifa_name;
        }
        inet_ntop(AF_INET, &vip->cidr.addr, a, INET_ADDRSTRLEN);
        snprintf(a + strlen(a), sizeof a - strlen(a), "/%u", vip->cidr.prefix);
        o = json_object_new_object();
        r = o ? 0 : -ENOMEM;
        if (r >= 0 && (r = json_add_str(o, "address", a)) >= 0 &&
            (r = json_add_bool(o, "here", here != NULL)) >= 0)
                r = json_add_str_or_null(o, "interface", here);
        if (ifa)
                freeifaddrs(ifa);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

/* Before formation: this node and the peers discovery sees, from status.json. */
static int discovery_json(struct json_object *disc, const uint8_t id[NODE_ID_LEN],
                          struct json_object *o) {
        _cleanup_(json_object_putp) struct json_object *node = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *peers = json_object_new_array();
        struct json_object *dp = obj_get(disc, "peers");
        char host[NODE_HOSTNAME_MAX + 1] = "";
        const char *state = obj_str(disc, "state");
        int r;

        if (!node || !peers)
                return -ENOMEM;
        if (gethostname(host, sizeof host - 1) < 0)
                host[0] = '\0';
        for (size_t i = 0; dp && json_object_is_type(dp, json_type_array) &&
                           i < json_object_array_length(dp); i++) {
                struct json_object *p = json_object_array_get_idx(dp, i), *q;

                q = json_object_new_object();
                if ((r = json_append(peers, q)) < 0 ||
                    (r = json_add_str_or_null(q, "id", obj_str(p, "id"))) < 0 ||
                    (r = json_add_str_or_null(q, "hostname", obj_str(p, "hostname"))) < 0 ||
                    (r = json_add_str_or_null(q, "state", obj_str(p, "state"))) < 0)
                        return r;
        }
        if ((r = json_add(node, "id", json_new_hex(id, NODE_ID_LEN))) < 0 ||
            (r = json_add_str(node, "hostname", obj_str(disc, "hostname") ?: host)) < 0 ||
            (r = json_add(node, "roles", json_object_new_array())) < 0 ||
            (r = json_add(o, "node", TAKE_PTR(node))) < 0 ||
            (r = json_add_null(o, "plan")) < 0 || (r = json_add(o, "peers", TAKE_PTR(peers))) < 0 ||
            (r = json_add(o, "steps", json_object_new_array())) < 0)
                return r;
        /* discover.c's "proposing"/"locked" are the agreement; "committed" without a plan
         * file yet is about to be formed. */
        return json_add_str(o, "phase", !disc ? "starting" :
                                        state && streq(state, "discovering") ? "discovering" :
                                        "agreeing");
}

static int collect(const struct status_opts *opt, const uint8_t id[NODE_ID_LEN],
                   const struct vip_info *vip, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *disc = NULL;
        _cleanup_(bringup_state_done) struct bringup_state s = {};
        _cleanup_(journal_done) struct journal j = {};
        _cleanup_free_ char *path = NULL, *text = NULL;
        struct json_object *v = NULL, *err = NULL;
        uint64_t now = (uint64_t)time(NULL);
        int r;

        if (!o)
                return -ENOMEM;
        if (asprintf_safe(&path, "%s/status.json", opt->state_dir) < 0)
                return -ENOMEM;
        if (read_full_file(path, &text, NULL) >= 0)
                disc = json_tokener_parse(text);
        free(path);
        if (asprintf_safe(&path, "%s/plan.json", opt->state_dir) < 0)
                return -ENOMEM;
        if (access(path, F_OK) < 0) {
                r = discovery_json(disc, id, o);
        } else {
                _cleanup_(json_object_putp) struct json_object *peers = json_object_new_array();
                _cleanup_(json_object_putp) struct json_object *steps = json_object_new_array();
                struct json_object *node = NULL, *plan = NULL;
                const char *phase = NULL;

                if (!peers || !steps)
                        return -ENOMEM;
                r = bringup_state_load(opt->state_dir, id, &s);
                if (r < 0)
                        return r;
                r = journal_load(opt->state_dir, &j);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the journal in %s: %m",
                                               opt->state_dir);
                r = node_json(s.self, s.self_info, &node);
                if (r < 0 || (r = json_add(o, "node", node)) < 0)
                        return r;
                plan = json_object_new_object();
                if ((r = json_add(o, "plan", plan)) < 0 ||
                    (r = json_add(plan, "digest", json_new_hex(s.plan->digest, DIGEST_LEN))) < 0 ||
                    (r = json_add_u64(plan, "epoch", s.plan->epoch)) < 0 ||
                    (r = json_add_u64(plan, "members", s.plan->n)) < 0)
                        return r;
                for (size_t i = 0; i < s.plan->n; i++) {
                        struct json_object *p;

                        if (&s.plan->nodes[i] == s.self)
                                continue;
                        r = node_json(&s.plan->nodes[i], view_find(&s.view, s.plan->nodes[i].id),
                                      &p);
                        if (r < 0 || (r = json_append(peers, p)) < 0)
                                return r;
                }
                r = steps_json(&j, now, steps, &err, &phase);
                if (r < 0 || (r = json_add(o, "peers", TAKE_PTR(peers))) < 0 ||
                    (r = json_add(o, "steps", TAKE_PTR(steps))) < 0)
                        return r;
                r = json_add_str(o, "phase", phase);
        }
        if (r < 0)
                return r;
        if (err)
                r = json_add(o, "last_error", err);
        else
                r = json_add_null(o, "last_error");
        if (r < 0 || (r = vip_json(vip, &v)) < 0)
                return r;
        if ((r = v ? json_add(o, "vip", v) : json_add_null(o, "vip")) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static void fprint_roles(FILE *f, struct json_object *roles) {
        size_t n = roles && json_object_is_type(roles, json_type_array)
                           ? json_object_array_length(roles) : 0;

        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s", i ? ", " : "",
                        json_object_get_string(json_object_array_get_idx(roles, i)));
        if (!n)
                fputs("-", f);
}

static const char *first_addr(struct json_object *node) {
        struct json_object *a = obj_get(node, "addresses");

        if (!a || !json_object_is_type(a, json_type_array) || !json_object_array_length(a))
                return "-";
        return json_object_get_string(json_object_array_get_idx(a, 0));
}

/* The dashboard, from the same object --json prints. */
static void fprint_text(FILE *f, struct json_object *o) {
        struct json_object *node = obj_get(o, "node"), *plan = obj_get(o, "plan");
        struct json_object *peers = obj_get(o, "peers"), *steps = obj_get(o, "steps");
        struct json_object *vip = obj_get(o, "vip"), *err = obj_get(o, "last_error");
        const char *id = obj_str(node, "id") ?: "";
        bool formed = plan && json_object_is_type(plan, json_type_object);
        size_t n;

        fprintf(f, "node:  %s (%.12s) %s  [%s]\n", obj_str(node, "hostname") ?: "?", id,
                first_addr(node), obj_str(o, "phase") ?: "?");
        fputs("roles: ", f);
        fprint_roles(f, obj_get(node, "roles"));
        fputc('\n', f);
        if (vip && json_object_is_type(vip, json_type_object)) {
                struct json_object *here = obj_get(vip, "here");

                if (here && json_object_get_boolean(here))
                        fprintf(f, "vip:   %s held by this node (%s)\n", obj_str(vip, "address"),
                                obj_str(vip, "interface") ?: "?");
                else
                        fprintf(f, "vip:   %s not on this node\n", obj_str(vip, "address"));
        }
        if (formed)
                fprintf(f, "plan:  %.16s, epoch %" PRId64 ", %" PRId64 " members\n",
                        obj_str(plan, "digest") ?: "", obj_int(plan, "epoch"),
                        obj_int(plan, "members"));
        n = peers && json_object_is_type(peers, json_type_array) ? json_object_array_length(peers) : 0;
        fprintf(f, "peers:%s\n", n ? "" : " none seen yet");
        for (size_t i = 0; i < n; i++) {
                struct json_object *p = json_object_array_get_idx(peers, i);

                fprintf(f, "  %-16s (%.12s) %-15s ", obj_str(p, "hostname") ?: "?",
                        obj_str(p, "id") ?: "", formed ? first_addr(p) : "");
                if (formed)
                        fprint_roles(f, obj_get(p, "roles"));
                else
                        fputs(obj_str(p, "state") ?: "?", f);
                fputc('\n', f);
        }
        n = steps && json_object_is_type(steps, json_type_array) ? json_object_array_length(steps) : 0;
        fprintf(f, "steps:%s\n", n ? "" : formed ? " none" : " after formation");
        for (size_t i = 0; i < n; i++) {
                struct json_object *s = json_object_array_get_idx(steps, i), *d;
                const char *note = obj_str(s, "note");
                char dur[24] = "";

                d = obj_get(s, "duration");
                if (d && json_object_is_type(d, json_type_int))
                        snprintf(dur, sizeof dur, "%" PRId64 "s", json_object_get_int64(d));
                fprintf(f, "  %-15s %-8s %6s", obj_str(s, "name") ?: "?", obj_str(s, "state") ?: "?",
                        dur);
                if (obj_int(s, "attempts") > 1)
                        fprintf(f, "  attempt %" PRId64, obj_int(s, "attempts"));
                if (note && !streq(obj_str(s, "state") ?: "", "failed"))
                        fprintf(f, "  %s", note);
                fputc('\n', f);
        }
        if (err && json_object_is_type(err, json_type_object)) {
                const char *out = obj_str(err, "output"), *cmd = obj_str(err, "command");

                fprintf(f, "last error: step %s: %s\n", obj_str(err, "step") ?: "?",
                        obj_str(err, "note") ?: "failed");
                if (cmd)
                        fprintf(f, "  `%s` exited with status %" PRId64 "\n", cmd,
                                obj_int(err, "status"));
                for (unsigned k = 0; out && *out && k < ERROR_OUTPUT_LINES; k++) {
                        size_t len = strcspn(out, "\n");

                        fprintf(f, "  | %.*s\n", (int)len, out);
                        out += len + (out[len] == '\n');
                }
        }
}

static int render(const struct status_opts *opt, struct json_object *o, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        if (opt->json && !opt->watch)
                return json_to_string(o, ret);
        if (opt->json) {
                const char *s = json_object_to_json_string_ext(
                        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

                if (!s || !(buf = strdup(s)))
                        return -ENOMEM;
                *ret = TAKE_PTR(buf);
                return 0;
        }
        f = open_memstream(&buf, &size);
        if (!f)
                return -errno;
        fprint_text(f, o);
        if (fclose(f) != 0)
                r = -errno;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* A console dashboard must fit its screen: a line that wraps or a screen that scrolls
 * pushes the node's name off the top. */
static void fit_screen(char *text) {
        struct winsize ws = {};
        unsigned row = 0;
        char *out = text;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row < 4 || ws.ws_col < 20)
                ws = (struct winsize){ .ws_row = 25, .ws_col = 80 };
        for (char *line = text; *line && row + 2 < ws.ws_row; row++) {
                size_t len = strcspn(line, "\n"), keep = len < ws.ws_col ? len : ws.ws_col - 1u;

                memmove(out, line, keep);
                out += keep;
                *out++ = '\n';
                line += len + (line[len] == '\n');
        }
        *out = '\0';
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int watch(const struct status_opts *opt, const uint8_t id[NODE_ID_LEN],
                 const struct vip_info *vip) {
        _cleanup_free_ char *last = NULL;
        bool tty = isatty(STDOUT_FILENO);
        int last_err = 0;

        for (;;) {
                _cleanup_(json_object_putp) struct json_object *o = NULL;
                _cleanup_free_ char *text = NULL;
                int r;

                r = collect(opt, id, vip, &o);
                if (r >= 0)
                        r = render(opt, o, &text);
                if (r < 0) {
                        /* Half-written state during formation is normal: say it once. */
                        if (r != last_err)
                                log_warning_errno(r, "status: cannot read the state in %s yet: %m",
                                                  opt->state_dir);
                        last_err = r;
                } else if (!last || !streq(last, text)) {
                        if (opt->json)
                                printf("%s\n", text);
                        else {
                                time_t t = time(NULL);
                                char when[32];

                                if (tty)
                                        fit_screen(text);
                                strftime(when, sizeof when, "%H:%M:%S %Z", localtime(&t));
                                printf("%s%s\nupdated %s%s\n", tty ? "\033[H\033[2J" : "", text, when,
                                       tty ? "    (a login shell is on Alt+F2)" : "");
                        }
                        if (fflush(stdout) != 0)
                                return log_error_errno(-errno, "Cannot write the status: %m");
                        free(last);
                        last = TAKE_PTR(text);
                        last_err = 0;
                }
                sleep_ms(opt->interval_ms);
        }
}

static void load_vip(const struct ctx *ctx, struct vip_info *ret) {
        _cleanup_config_ struct config *cfg = NULL;

        *ret = (struct vip_info){};
        /* Optional: status works from the state directory alone, on any host. */
        if (!ctx->config_path || access(ctx->config_path, R_OK) < 0)
                return;
        if (ctx_load_config(ctx, NULL, &cfg) < 0 || !cfg->has_vip)
                return;
        ret->known = true;
        ret->cidr = cfg->vip;
}

int cmd_status(const struct ctx *ctx, int argc, char **argv) {
        struct status_opts o = { .state_dir = DEFAULT_STATE_DIR, .machine_id = DEFAULT_MACHINE_ID,
                                 .interval_ms = WATCH_INTERVAL_MS_DEFAULT };
        _cleanup_(json_object_putp) struct json_object *st = NULL;
        _cleanup_free_ char *text = NULL;
        struct vip_info vip;
        uint8_t id[NODE_ID_LEN];
        bool done = false;
        int r;

        r = parse_opts(argc, argv, &o, &done);
        if (r != 0 || done)
                return r;
        r = read_machine_id(o.machine_id, id);
        if (r < 0)
                return r;
        load_vip(ctx, &vip);
        if (o.watch)
                return watch(&o, id, &vip);
        r = collect(&o, id, &vip, &st);
        if (r < 0)
                return r;
        r = render(&o, st, &text);
        if (r < 0)
                return log_error_errno(r, "Cannot format the status: %m");
        fputs(text, stdout);
        if (o.json)
                fputc('\n', stdout);
        if (fflush(stdout) != 0)
                return log_error_errno(-errno, "Cannot write the status: %m");
        return 0;
}
