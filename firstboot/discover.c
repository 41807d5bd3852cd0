/* SPDX-License-Identifier: MIT */
/* The discovery daemon (DESIGN.md section 3). Everything that decides is elsewhere and
 * pure: formation.c (propose/lock/commit), elect.c (roles), wire.c (sealing). This file
 * owns the sockets, timers, peer table, persistence under the state directory, the
 * secrets hand-out and the welcome of late joiners. */
#include "discover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>

#include <sodium.h>

#include "elect.h"
#include "formation.h"
#include "inventory.h"
#include "json_util.h"
#include "log.h"
#include "mcast.h"
#include "node_self.h"
#include "util.h"
#include "view_json.h"
#include "wire.h"

/* A peer is gone after this many announce intervals without a datagram. */
#define PEER_EXPIRY_INTERVALS 10
#define PEERS_MAX 1024
/* After reaching the formed state, keep announcing a little so that peers see our final
 * state before we stop (they expire us only after PEER_EXPIRY_INTERVALS). */
#define LINGER_TICKS 5
/* The committed plan is re-sent every this many ticks (every tick while late joiners or
 * members without it are around). */
#define PLAN_EVERY_TICKS 8
/* Formation is re-evaluated this often between announce ticks until committed. */
#define STEP_MS 50

struct peer {
        struct node_info info;
        uint64_t last_seen_ms;   /* monotonic */
};

struct daemon {
        const struct config *cfg;
        const struct discover_opts *opts;

        struct wire_keys *keys;
        struct wire_rx *rx;
        struct wire_sender sender;
        struct cluster_iface ifc;
        struct node_info self;
        uint8_t *box_sk;                 /* sodium_malloc'd */

        int sock, tfd, sfd, epfd;
        int stepfd;                      /* fine-grained formation steps until committed */
        uint64_t interval_ms;
        uint64_t ticks;

        struct peer *peers;
        size_t n_peers;

        struct formation *form;
        struct role_plan *plan0;         /* the plan formation committed (epoch 0) */
        struct role_plan *plan;          /* current: plan0 plus late joiners */
        struct role_plan *received[8];   /* valid PLANs heard, newest first */
        bool late;                       /* a committed plan exists that does not name us */

        struct cluster_secrets *secrets; /* sodium_malloc'd; NULL until held */
        struct node_info *facts;         /* last facts of every node heard or relayed */
        size_t n_facts;
        int linger;                      /* ticks left before exit once formed, -1 = not yet */
        bool reset_done;
        bool react_needed;               /* a peer's state or digest changed */
        uint64_t start_ms;
};

static uint64_t now_mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int state_path(const struct daemon *d, const char *name, char **ret) {
        return asprintf_safe(ret, "%s/%s", d->opts->state_dir, name);
}

static int write_state(const struct daemon *d, const char *name, const void *buf, size_t len,
                       mode_t mode) {
        _cleanup_free_ char *p = NULL;
        int r;

        if (state_path(d, name, &p) < 0)
                return -ENOMEM;
        r = write_file_atomic(p, buf, len, mode);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", p);
        return 0;
}

/* ---- plans ------------------------------------------------------------------------ */

static int plan_to_wire(const struct role_plan *p, struct wire_plan *w) {
        if (p->n > WIRE_PLAN_MAX)
                return -E2BIG;
        memset(w, 0, sizeof *w);
        memcpy(w->digest, p->digest, DIGEST_LEN);
        w->epoch = p->epoch;
        w->n = (uint16_t)p->n;
        for (size_t i = 0; i < p->n; i++) {
                memcpy(w->entries[i].id, p->nodes[i].id, NODE_ID_LEN);
                w->entries[i].roles = p->nodes[i].roles;
                w->entries[i].flags = p->nodes[i].flags;
                w->entries[i].vrrp_priority = p->nodes[i].vrrp_priority;
        }
        return 0;
}

/* Rebuild a plan from a PLAN payload and check that it hashes to the digest it claims. */
static int plan_from_wire(const struct wire_plan *w, struct role_plan **ret) {
        _cleanup_role_plan_ struct role_plan *p = NULL;
        int r;

        r = role_plan_new(w->epoch, w->n, &p);
        if (r < 0)
                return r;
        for (size_t i = 0; i < w->n; i++) {
                memcpy(p->nodes[i].id, w->entries[i].id, NODE_ID_LEN);
                p->nodes[i].roles = w->entries[i].roles;
                p->nodes[i].flags = w->entries[i].flags;
                p->nodes[i].vrrp_priority = w->entries[i].vrrp_priority;
        }
        r = role_plan_finalize(p);
        if (r < 0)
                return r;
        if (memcmp(p->digest, w->digest, DIGEST_LEN) != 0)
                return -EBADMSG;
        *ret = TAKE_PTR(p);
        return 0;
}

static int plan_copy(const struct role_plan *src, struct role_plan **ret) {
        struct wire_plan *w = malloc(sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        r = plan_to_wire(src, w);
        if (r >= 0)
                r = plan_from_wire(w, ret);
        free(w);
        return r;
}

/* Every entry of base appears unchanged in ext: the members' roles never change. */
static bool plan_extends(const struct role_plan *ext, const struct role_plan *base) {
        if (ext->epoch <= base->epoch || ext->n < base->n)
                return false;
        for (size_t i = 0; i < base->n; i++) {
                const struct node_plan *a = &base->nodes[i], *b = role_plan_find(ext, a->id);

                if (!b || a->roles != b->roles || a->flags != b->flags ||
                    a->vrrp_priority != b->vrrp_priority)
                        return false;
        }
        return true;
}

/* Persist a plan: binary (the PLAN wire encoding) to reload after a restart, JSON for
 * people and scripts. */
static int save_plan(struct daemon *d, const struct role_plan *p, const char *bin_name,
                     const char *json_name) {
        _cleanup_free_ struct wire_plan *w = malloc(sizeof *w);
        _cleanup_free_ uint8_t *buf = malloc(WIRE_PLAN_SIZE(WIRE_PLAN_MAX));
        _cleanup_free_ char *json = NULL;
        size_t len;
        int r;

        if (!w || !buf)
                return -ENOMEM;
        if ((r = plan_to_wire(p, w)) < 0 ||
            (r = wire_encode_plan(w, buf, WIRE_PLAN_SIZE(WIRE_PLAN_MAX), &len)) < 0)
                return log_error_errno(r, "Cannot encode the plan: %m");
        r = write_state(d, bin_name, buf, len, 0644);
        if (r < 0 || !json_name)
                return r;
        r = role_plan_to_json(p, &json);
        if (r < 0)
                return log_error_errno(r, "Cannot format the plan: %m");
        return write_state(d, json_name, json, strlen(json), 0644);
}

static int load_plan(struct daemon *d, const char *bin_name, struct role_plan **ret) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_free_ struct wire_plan *w = malloc(sizeof *w);
        size_t len;
        int r;

        if (!w || state_path(d, bin_name, &path) < 0)
                return -ENOMEM;
        r = read_full_file(path, &buf, &len);
        if (r < 0)
                return r;
        if (wire_decode_plan(buf, len, w) < 0 || plan_from_wire(w, ret) < 0)
                return log_error_errno(-EBADMSG, "%s is damaged; refusing to guess a plan. "
                                                 "Remove the state directory to start over.",
                                       path);
        return 0;
}

/* ---- secrets ---------------------------------------------------------------------- */

static void random_string(char *out, size_t len, const char *alphabet) {
        size_t n = strlen(alphabet);

        for (size_t i = 0; i < len; i++)
                out[i] = alphabet[randombytes_uniform((uint32_t)n)];
        out[len] = 0;
}

static int secrets_generate(struct cluster_secrets *s) {
        static const char lower[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        static const char hex[] = "0123456789abcdef";
        static const char pw[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        memset(s, 0, sizeof *s);
        /* kubeadm's bootstrap token format: [a-z0-9]{6}.[a-z0-9]{16} */
        random_string(s->join_token, 6, lower);
        s->join_token[6] = '.';
        random_string(s->join_token + 7, 16, lower);
        /* kubeadm's certificate key: 32 bytes as hex */
        random_string(s->cert_key, 64, hex);
        random_string(s->mysql_replication_password, 32, pw);
        random_string(s->registry_password, 32, pw);
        random_string(s->mysql_rainbond_password, 32, pw);
        randombytes_buf(s->ca_seed, sizeof s->ca_seed);
        return 0;
}

static int save_secrets(struct daemon *d) {
        _cleanup_free_ char *dir = NULL;
        char hexseed[2 * 32 + 1], *text;
        size_t len;
        int r;

        if (state_path(d, "secrets", &dir) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Cannot create %s: %m", dir);
        sodium_bin2hex(hexseed, sizeof hexseed, d->secrets->ca_seed, sizeof d->secrets->ca_seed);
        len = 6 * 80 + 5 * WIRE_SECRET_STR_MAX + sizeof hexseed;
        text = sodium_malloc(len);
        if (!text)
                return -ENOMEM;
        snprintf(text, len,
                 "join_token=%s\ncert_key=%s\nmysql_replication_password=%s\n"
                 "registry_password=%s\nmysql_rainbond_password=%s\nca_seed=%s\n",
                 d->secrets->join_token, d->secrets->cert_key,
                 d->secrets->mysql_replication_password, d->secrets->registry_password,
                 d->secrets->mysql_rainbond_password, hexseed);
        r = write_state(d, "secrets/cluster.env", text, strlen(text), 0600);
        sodium_memzero(hexseed, sizeof hexseed);
        sodium_free(text);
        return r;
}

static int load_secrets(struct daemon *d) {
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        struct cluster_secrets *s;
        int r, found = 0;

        if (state_path(d, "secrets/cluster.env", &path) < 0)
                return -ENOMEM;
        r = read_full_file(path, &text, NULL);
        if (r < 0)
                return r == -ENOENT ? 0 : log_error_errno(r, "Cannot read %s: %m", path);
        s = sodium_malloc(sizeof *s);
        if (!s) {
                sodium_memzero(text, strlen(text));
                free(text);
                return -ENOMEM;
        }
        memset(s, 0, sizeof *s);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                char *eq = strchr(line, '=');
                const char *v;

                if (!eq)
                        continue;
                *eq = 0;
                v = eq + 1;
                if (streq(line, "ca_seed")) {
                        found += sodium_hex2bin(s->ca_seed, sizeof s->ca_seed, v, strlen(v), NULL,
                                                NULL, NULL) == 0;
                        continue;
                }
#define FIELD(f)                                                                       \
        if (streq(line, #f) && strlen(v) <= WIRE_SECRET_STR_MAX) {                     \
                snprintf(s->f, sizeof s->f, "%s", v);                                  \
                found++;                                                               \
        }
                FIELD(join_token)
                FIELD(cert_key)
                FIELD(mysql_replication_password)
                FIELD(registry_password)
                FIELD(mysql_rainbond_password)
#undef FIELD
        }
        sodium_memzero(text, strlen(text));
        free(text);
        if (found != 6) {
                sodium_free(s);
                return log_error_errno(-EBADMSG, "%s is incomplete; remove it to receive the "
                                                 "secrets again.", path);
        }
        d->secrets = s;
        d->self.flags |= NODE_F_HAS_SECRETS;
        return 1;
}

/* ---- peers and views ---------------------------------------------------------------- */

static struct peer *peer_find(struct daemon *d, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; i < d->n_peers; i++)
                if (node_id_cmp(d->peers[i].info.id, id) == 0)
                        return &d->peers[i];
        return NULL;
}

static const struct node_info *node_lookup(struct daemon *d, const uint8_t id[NODE_ID_LEN]) {
        struct peer *p;

        if (node_id_cmp(id, d->self.id) == 0)
                return &d->self;
        p = peer_find(d, id);
        return p ? &p->info : NULL;
}

static const struct node_info *facts_find(const struct daemon *d, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; i < d->n_facts; i++)
                if (node_id_cmp(d->facts[i].id, id) == 0)
                        return &d->facts[i];
        return NULL;
}

/* Keeps the facts of a node after it stops announcing: a late joiner needs the addresses
 * of every plan member, also of one that is down when it arrives. 1 when new. */
static int facts_remember(struct daemon *d, const struct node_info *n) {
        struct node_info *f = (struct node_info *)facts_find(d, n->id), *nf;

        if (!n->cpus)
                return 0; /* no facts: nothing to keep */
        if (f) {
                *f = *n;
                return 0;
        }
        if (d->n_facts >= PEERS_MAX)
                return 0;
        nf = realloc(d->facts, (d->n_facts + 1) * sizeof *d->facts);
        if (!nf)
                return -ENOMEM;
        d->facts = nf;
        d->facts[d->n_facts++] = *n;
        return 1;
}

static void peers_expire(struct daemon *d, uint64_t now) {
        uint64_t limit = PEER_EXPIRY_INTERVALS * d->interval_ms;

        for (size_t i = 0; i < d->n_peers;) {
                if (now - d->peers[i].last_seen_ms > limit) {
                        char hex[2 * NODE_ID_LEN + 1];

                        node_id_to_hex(d->peers[i].info.id, hex);
                        log_info("peer %.12s (%s) silent for %llu ms: expired", hex,
                                 d->peers[i].info.hostname, (unsigned long long)limit);
                        d->peers[i] = d->peers[--d->n_peers];
                        continue;
                }
                i++;
        }
}

static int cmp_info(const void *a, const void *b) {
        return node_id_cmp(((const struct node_info *)a)->id, ((const struct node_info *)b)->id);
}

/* Self plus every live peer, sorted by id. Caller frees v->nodes. */
static int live_view(struct daemon *d, struct view *v) {
        v->nodes = calloc(d->n_peers + 1, sizeof *v->nodes);
        if (!v->nodes)
                return -ENOMEM;
        v->nodes[0] = d->self;
        for (size_t i = 0; i < d->n_peers; i++)
                v->nodes[i + 1] = d->peers[i].info;
        v->n = d->n_peers + 1;
        qsort(v->nodes, v->n, sizeof *v->nodes, cmp_info);
        return 0;
}

static int digest_of_members(const struct view *members, void *userdata, uint8_t ret[DIGEST_LEN]) {
        struct daemon *d = userdata;
        _cleanup_role_plan_ struct role_plan *p = NULL;
        int r = elect(members, d->cfg, &p);

        if (r < 0)
                return r;
        memcpy(ret, p->digest, DIGEST_LEN);
        return 0;
}

/* ---- sending ------------------------------------------------------------------------ */

static int send_sealed(struct daemon *d, enum wire_type type, const void *payload, size_t len) {
        uint8_t pkt[WIRE_MAX_DATAGRAM];
        size_t n;
        int r;

        r = wire_seal(d->keys, type, &d->sender, wire_clock_ms(), payload, len, pkt, sizeof pkt, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot seal a %s datagram: %m", wire_type_to_string(type));
        r = mcast_send(d->sock, d->cfg->discovery_group, d->cfg->discovery_port, pkt, n);
        if (r < 0)
                log_debug_errno(r, "send on %s: %m", d->ifc.name);
        return 0;
}

static int send_announce(struct daemon *d) {
        uint8_t buf[WIRE_ANNOUNCE_MAX];
        size_t n;
        int r = wire_encode_announce(&d->self, buf, sizeof buf, &n);

        if (r < 0)
                return log_error_errno(r, "Cannot encode our announcement: %m");
        return send_sealed(d, WIRE_ANNOUNCE, buf, n);
}

static int send_plan(struct daemon *d, const struct role_plan *p) {
        _cleanup_free_ struct wire_plan *w = malloc(sizeof *w);
        _cleanup_free_ uint8_t *buf = malloc(WIRE_PLAN_SIZE(WIRE_PLAN_MAX));
        size_t n;
        int r;

        if (!w || !buf)
                return -ENOMEM;
        if ((r = plan_to_wire(p, w)) < 0 ||
            (r = wire_encode_plan(w, buf, WIRE_PLAN_SIZE(WIRE_PLAN_MAX), &n)) < 0)
                return log_error_errno(r, "Cannot encode the plan: %m");
        return send_sealed(d, WIRE_PLAN, buf, n);
}

static void send_secrets_to_members(struct daemon *d) {
        for (size_t i = 0; d->plan && i < d->plan->n; i++) {
                const struct node_info *n = node_lookup(d, d->plan->nodes[i].id);
                uint8_t buf[WIRE_SECRETS_PAYLOAD_LEN];
                size_t len;

                if (!n || n == &d->self || (n->flags & NODE_F_HAS_SECRETS))
                        continue;
                if (wire_seal_secrets(d->keys, n->id, n->box_pk, d->secrets, buf, sizeof buf,
                                      &len) < 0)
                        continue;
                send_sealed(d, WIRE_SECRETS, buf, len);
                sodium_memzero(buf, sizeof buf);
        }
}

/* The facts of plan members not heard now (down), for late joiners: they need every
 * member's addresses and cannot hear those members themselves. */
static void send_absent_facts(struct daemon *d) {
        for (size_t i = 0; d->plan && i < d->plan->n; i++) {
                const uint8_t *id = d->plan->nodes[i].id;
                const struct node_info *f;
                uint8_t buf[WIRE_ANNOUNCE_MAX];
                size_t n;

                if (node_lookup(d, id) || !(f = facts_find(d, id)))
                        continue;
                if (wire_encode_announce(f, buf, sizeof buf, &n) >= 0)
                        send_sealed(d, WIRE_FACTS, buf, n);
        }
}

/* ---- receiving ---------------------------------------------------------------------- */

static void remember_plan(struct daemon *d, struct role_plan *p) {
        for (size_t i = 0; i < ELEMENTSOF(d->received); i++)
                if (d->received[i] && memcmp(d->received[i]->digest, p->digest, DIGEST_LEN) == 0) {
                        role_plan_free(p);
                        return;
                }
        role_plan_free(d->received[ELEMENTSOF(d->received) - 1]);
        memmove(d->received + 1, d->received,
                (ELEMENTSOF(d->received) - 1) * sizeof d->received[0]);
        d->received[0] = p;
}

static const struct role_plan *received_plan(struct daemon *d, const uint8_t digest[DIGEST_LEN]) {
        for (size_t i = 0; i < ELEMENTSOF(d->received); i++)
                if (d->received[i] && memcmp(d->received[i]->digest, digest, DIGEST_LEN) == 0)
                        return d->received[i];
        return NULL;
}

/* view.json for a node welcomed late: it never committed a formation, so nothing wrote the
 * members' facts that apply needs (their addresses). Members heard now give theirs; one
 * not heard (down) comes from the facts other members relayed (FACTS), or keeps what the
 * previous view.json said of it. */
static int save_late_view(struct daemon *d) {
        _cleanup_free_ char *path = NULL, *text = NULL, *err = NULL;
        struct view old = {}, v = {};
        int r;

        if (state_path(d, "view.json", &path) < 0)
                return -ENOMEM;
        (void) view_from_json_file(path, &old, &err); /* none yet: fine */
        v.nodes = calloc(d->plan->n ? d->plan->n : 1, sizeof *v.nodes);
        if (!v.nodes) {
                view_done(&old);
                return -ENOMEM;
        }
        for (size_t i = 0; i < d->plan->n; i++) {
                const struct node_info *n = node_lookup(d, d->plan->nodes[i].id);

                if (!n || !n->cpus)
                        n = facts_find(d, d->plan->nodes[i].id);
                for (size_t k = 0; (!n || !n->cpus) && k < old.n; k++)
                        if (node_id_cmp(old.nodes[k].id, d->plan->nodes[i].id) == 0)
                                n = &old.nodes[k];
                if (n && n->cpus)
                        v.nodes[v.n++] = *n;
        }
        qsort(v.nodes, v.n, sizeof *v.nodes, cmp_info);
        r = view_to_json(&v, false, &text);
        if (r >= 0)
                r = write_state(d, "view.json", text, strlen(text), 0644);
        free(v.nodes);
        view_done(&old);
        if (r < 0)
                return log_error_errno(r, "Cannot write the view of the plan's members: %m");
        return 0;
}

static int adopt_current(struct daemon *d, const struct role_plan *p, const char *why) {
        struct role_plan *copy;
        int r = plan_copy(p, &copy);

        if (r < 0)
                return r;
        /* The PLAN encoding carries no hostnames: fill them in for people. */
        for (size_t i = 0; i < copy->n; i++) {
                const struct node_info *n = node_lookup(d, copy->nodes[i].id);

                if (n)
                        snprintf(copy->nodes[i].hostname, sizeof copy->nodes[i].hostname, "%s",
                                 n->hostname);
        }
        role_plan_free(d->plan);
        d->plan = copy;
        log_info("plan epoch %u with %zu nodes adopted (%s)", p->epoch, p->n, why);
        r = save_plan(d, d->plan, "plan.bin", "plan.json");
        if (r < 0 || !d->late)
                return r;
        return save_late_view(d);
}

static int handle_plan(struct daemon *d, const struct wire_plan *w) {
        struct role_plan *p = NULL;
        int r = plan_from_wire(w, &p);

        if (r < 0) {
                log_debug("PLAN whose content does not hash to its digest: dropped");
                return 0;
        }
        if (p->epoch == 0 && !d->plan0 && !d->late &&
            formation_state(d->form) != NODE_COMMITTED) {
                struct view members = { .nodes = calloc(p->n, sizeof *members.nodes), .n = p->n };

                if (!members.nodes) {
                        role_plan_free(p);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < p->n; i++)
                        memcpy(members.nodes[i].id, p->nodes[i].id, NODE_ID_LEN);
                r = formation_learn_plan(d->form, p->digest, &members);
                free(members.nodes);
                if (r < 0)
                        log_debug_errno(r, "formation did not take the plan: %m");
                if (!role_plan_find(p, d->self.id)) {
                        /* Its members are committed to it for good: we can only join them. */
                        log_info("a cluster of %zu nodes has formed without us: joining it late",
                                 p->n);
                        d->late = true;
                        d->self.flags |= NODE_F_LATE;
                }
        }
        /* A newer plan that keeps every member's roles: take it (late joiners added). At
         * equal epoch two welcomers raced: the smaller digest wins everywhere. */
        if (d->plan && (plan_extends(p, d->plan) ||
                        (p->epoch == d->plan->epoch && p->n >= d->plan->n &&
                         memcmp(p->digest, d->plan->digest, DIGEST_LEN) < 0 && d->plan0 &&
                         plan_extends(p, d->plan0))))
                adopt_current(d, p, "extended by a member");
        else if (d->late && !d->plan && role_plan_find(p, d->self.id))
                adopt_current(d, p, "welcomed as a late joiner");
        remember_plan(d, p);
        return 0;
}

static void handle_announce(struct daemon *d, const struct node_info *n, uint64_t now) {
        struct peer *p = peer_find(d, n->id);

        if (!p) {
                char hex[2 * NODE_ID_LEN + 1], a[INET_ADDRSTRLEN] = "?";

                if (d->n_peers >= PEERS_MAX)
                        return;
                p = &d->peers[d->n_peers++];
                node_id_to_hex(n->id, hex);
                if (n->n_addrs)
                        inet_ntop(AF_INET, &n->addrs[0], a, sizeof a);
                log_info("peer %.12s (%s, %s) joined the view", hex, n->hostname, a);
        } else if (p->info.state != n->state || memcmp(p->info.digest, n->digest, DIGEST_LEN) != 0)
                d->react_needed = true;
        p->info = *n;
        p->last_seen_ms = now;
        (void) facts_remember(d, n);
}

static int handle_secrets(struct daemon *d, const void *payload, size_t len) {
        struct cluster_secrets *s;
        int r;

        if (d->secrets)
                return 0;
        s = sodium_malloc(sizeof *s);
        if (!s)
                return -ENOMEM;
        r = wire_open_secrets(d->keys, d->self.id, d->self.box_pk, d->box_sk, payload, len, s);
        if (r < 0) {
                sodium_free(s);
                return 0; /* addressed to another node, or not for our key pair */
        }
        d->secrets = s;
        d->self.flags |= NODE_F_HAS_SECRETS;
        log_info("cluster secrets received from a member");
        return save_secrets(d);
}

/* Relayed facts fill only gaps: a node heard directly speaks for itself. */
static int handle_facts(struct daemon *d, const void *payload, size_t len) {
        struct node_info info;
        int r;

        if (wire_decode_announce(payload, len, &info) < 0 ||
            node_id_cmp(info.id, d->self.id) == 0 || node_lookup(d, info.id) ||
            facts_find(d, info.id))
                return 0;
        r = facts_remember(d, &info);
        if (r <= 0)
                return r;
        if (d->late && d->plan && role_plan_find(d->plan, info.id)) {
                char hex[2 * NODE_ID_LEN + 1];

                node_id_to_hex(info.id, hex);
                log_info("facts of member %.12s (%s, not heard now) relayed by a member",
                         hex, info.hostname);
                return save_late_view(d);
        }
        return 0;
}

static int receive(struct daemon *d) {
        for (;;) {
                uint8_t pkt[WIRE_MAX_DATAGRAM + 1], payload[WIRE_MAX_PAYLOAD];
                struct wire_header hdr;
                size_t len;
                ssize_t n = recv(d->sock, pkt, sizeof pkt, MSG_TRUNC);
                int r;

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return log_error_errno(-errno, "recv: %m");
                }
                /* MSG_TRUNC gives the real length: an oversized datagram is malformed,
                 * and wire_open counts it as such. */
                r = wire_open(d->keys, d->rx, wire_clock_ms(), pkt,
                              (size_t)n > sizeof pkt ? sizeof pkt : (size_t)n, &hdr, payload,
                              sizeof payload, &len);
                if (r < 0)
                        continue;
                switch (hdr.type) {
                case WIRE_ANNOUNCE: {
                        struct node_info info;

                        if (wire_decode_announce(payload, len, &info) < 0 ||
                            node_id_cmp(info.id, hdr.sender_id) != 0)
                                continue; /* a node speaks only for itself */
                        handle_announce(d, &info, now_mono_ms());
                        break;
                }
                case WIRE_PLAN: {
                        _cleanup_free_ struct wire_plan *w = malloc(sizeof *w);

                        if (w && wire_decode_plan(payload, len, w) >= 0)
                                handle_plan(d, w);
                        break;
                }
                case WIRE_SECRETS:
                        r = handle_secrets(d, payload, len);
                        if (r < 0)
                                return r;
                        break;
                case WIRE_FACTS:
                        r = handle_facts(d, payload, len);
                        if (r < 0)
                                return r;
                        break;
                }
        }
}

/* ---- the tick ----------------------------------------------------------------------- */

static int arm_timer(struct daemon *d) {
        /* ±20 % jitter: nodes booted together do not announce in lock-step. */
        uint64_t ms = d->interval_ms * 8 / 10 + randombytes_uniform((uint32_t)(d->interval_ms * 4 / 10 + 1));
        struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ms / 1000),
                                                .tv_nsec = (long)(ms % 1000) * 1000000 } };

        return timerfd_settime(d->tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

static int on_committed(struct daemon *d) {
        const uint8_t *digest = formation_digest(d->form);
        const struct view *members = formation_members(d->form);
        const struct role_plan *heard = received_plan(d, digest);
        struct role_plan *p = NULL;
        char *text = NULL;
        int r;

        /* The members' facts are known when we proposed the plan ourselves; after an
         * adoption only the PLAN message tells the roles. Either way the digest must be
         * the committed one. */
        if (heard)
                r = plan_copy(heard, &p);
        else {
                r = elect(members, d->cfg, &p);
                if (r >= 0 && memcmp(p->digest, digest, DIGEST_LEN) != 0)
                        r = -EBADMSG;
        }
        if (r < 0) {
                role_plan_free(p);
                return log_error_errno(r, "Committed, but cannot rebuild the plan: %m");
        }
        d->plan0 = p;
        r = save_plan(d, d->plan0, "plan0.bin", NULL);
        if (r < 0)
                return r;
        if (members && members->n && members->nodes[0].cpus) {
                r = view_to_json(members, false, &text);
                if (r < 0)
                        log_warning_errno(r, "Cannot write the committed view: %m");
                else {
                        write_state(d, "view.json", text, strlen(text), 0644);
                        free(text);
                }
        } else
                log_debug("committed view not written: members' facts unknown here (adopted plan)");
        r = adopt_current(d, d->plan0, "formation committed");
        if (r < 0)
                return r;
        role_plan_explain(d->plan, NULL, stderr);
        return 0;
}

static int save_formation(struct daemon *d) {
        _cleanup_free_ char *text = NULL;
        int r = formation_save(d->form, &text);

        if (r < 0)
                return log_error_errno(r, "Cannot save the formation state: %m");
        return write_state(d, "formation", text, strlen(text), 0644);
}

/* The lowest-id committed member we hear (or we) welcomes late joiners: one decider at a
 * time, so epochs rarely race (and races converge, see handle_plan). */
static bool am_welcomer(struct daemon *d) {
        for (size_t i = 0; i < d->plan->n; i++) {
                const struct node_info *n = node_lookup(d, d->plan->nodes[i].id);

                if (n && (n == &d->self || n->state == NODE_COMMITTED))
                        return n == &d->self;
        }
        return false;
}

static int welcome_late_joiners(struct daemon *d) {
        _cleanup_free_ struct node_info *late = calloc(d->n_peers ? d->n_peers : 1, sizeof *late);
        _cleanup_role_plan_ struct role_plan *next = NULL;
        size_t n = 0;
        int r;

        if (!late)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_peers; i++)
                if ((d->peers[i].info.flags & NODE_F_LATE) && !role_plan_find(d->plan, d->peers[i].info.id))
                        late[n++] = d->peers[i].info;
        if (n == 0 || !am_welcomer(d))
                return 0;
        qsort(late, n, sizeof *late, cmp_info);
        r = elect_late_joiners(d->plan, late, n, d->cfg, &next);
        if (r < 0)
                return log_error_errno(r, "Cannot place the late joiners: %m");
        for (size_t i = 0; i < n; i++) {
                const char *names[PLAN_ROLE_NAMES_MAX];
                size_t k = node_plan_role_names(role_plan_find(next, late[i].id), names);
                char hex[2 * NODE_ID_LEN + 1];

                node_id_to_hex(late[i].id, hex);
                log_info("welcoming late joiner %.12s (%s) as %s%s", hex, late[i].hostname,
                         k ? names[0] : "worker", k > 1 ? " and more" : "");
        }
        r = adopt_current(d, next, "late joiners welcomed");
        if (r < 0)
                return r;
        return send_plan(d, d->plan);
}

static bool everyone_formed(struct daemon *d) {
        if (!d->plan || !d->secrets)
                return false;
        for (size_t i = 0; i < d->plan->n; i++) {
                const struct node_info *n = node_lookup(d, d->plan->nodes[i].id);

                if (!n)
                        return false;
                if (n != &d->self &&
                    (n->state != NODE_COMMITTED || !(n->flags & NODE_F_HAS_SECRETS)))
                        return false;
        }
        return true;
}

static int write_status(struct daemon *d) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        struct json_object *peers = json_object_new_array(), *wire = json_object_new_object();
        _cleanup_free_ char *text = NULL;
        int r;

        if (!o || (r = json_add(o, "id", json_new_hex(d->self.id, NODE_ID_LEN))) < 0 ||
            (r = json_add_str(o, "hostname", d->self.hostname)) < 0 ||
            (r = json_add_str(o, "state", node_state_to_string(d->self.state))) < 0 ||
            (r = json_add_bool(o, "late", d->late)) < 0 ||
            (r = json_add_bool(o, "has_secrets", d->secrets != NULL)) < 0 ||
            (r = json_add_int(o, "epoch", d->plan ? (int64_t)d->plan->epoch : -1)) < 0 ||
            (r = json_add(o, "peers", peers)) < 0 || (r = json_add(o, "wire", wire)) < 0 ||
            (r = json_add_u64(wire, "accepted", d->rx->stats.accepted)) < 0)
                return -ENOMEM;
        for (int k = WIRE_DROP_MALFORMED; k < WIRE_DROP_MAX_; k++)
                if ((r = json_add_u64(wire, wire_drop_to_string(k), d->rx->stats.dropped[k])) < 0)
                        return r;
        for (size_t i = 0; i < d->n_peers; i++) {
                struct json_object *p = json_object_new_object();

                if ((r = json_append(peers, p)) < 0 ||
                    (r = json_add(p, "id", json_new_hex(d->peers[i].info.id, NODE_ID_LEN))) < 0 ||
                    (r = json_add_str(p, "hostname", d->peers[i].info.hostname)) < 0 ||
                    (r = json_add_str(p, "state", node_state_to_string(d->peers[i].info.state))) < 0)
                        return r;
        }
        r = json_to_string(o, &text);
        if (r < 0)
                return r;
        return write_state(d, "status.json", text, strlen(text), 0644);
}

/* Run the formation rules on the live view; persist a lock or commit before it is
 * announced. Returns 1 if what we announce changed. */
static int formation_progress(struct daemon *d, const struct view *live, uint64_t now) {
        int r, changed;

        changed = formation_step(d->form, live, now);
        if (changed < 0)
                return log_error_errno(changed, "Formation step failed: %m");
        if (changed > 0) {
                enum node_state st = formation_state(d->form);
                const uint8_t *dg = formation_digest(d->form);
                char hexd[2 * DIGEST_LEN + 1] = "-";

                if (dg)
                        sodium_bin2hex(hexd, sizeof hexd, dg, DIGEST_LEN);
                log_info("formation: %s %.16s (view of %zu, expecting %u)",
                         node_state_to_string(st), hexd, live->n, d->cfg->expected_nodes);
                /* A lock or commit is on disk before anyone hears of it. */
                if (st == NODE_LOCKED || st == NODE_COMMITTED) {
                        r = save_formation(d);
                        if (r < 0)
                                return r;
                }
                if (st == NODE_COMMITTED && (r = on_committed(d)) < 0)
                        return r;
        }
        d->self.state = formation_state(d->form);
        if (formation_digest(d->form))
                memcpy(d->self.digest, formation_digest(d->form), DIGEST_LEN);
        else
                memset(d->self.digest, 0, DIGEST_LEN);
        return changed;
}

/* A peer changed its formation state or digest: step now and answer at once instead of
 * at the next tick, so each phase costs a round trip rather than an announce interval.
 * Bounded: a node changes state a few times per membership change, and membership
 * changes wait for settle_ms. */
static int react(struct daemon *d) {
        struct view live = {};
        int r;

        if (d->late || formation_state(d->form) == NODE_COMMITTED)
                return 0;
        r = live_view(d, &live);
        if (r < 0)
                return r;
        r = formation_progress(d, &live, now_mono_ms());
        free(live.nodes);
        if (r > 0) {
                if (formation_state(d->form) == NODE_COMMITTED && d->plan0)
                        send_plan(d, d->plan0);
                return send_announce(d);
        }
        return r;
}

static int tick(struct daemon *d) {
        uint64_t now = now_mono_ms();
        struct view live = {};
        enum node_state before = formation_state(d->form);
        int r;

        d->ticks++;
        peers_expire(d, now);
        r = live_view(d, &live);
        if (r < 0)
                return r;

        if (d->opts->reset && !d->reset_done && d->ticks >= 3 * PEER_EXPIRY_INTERVALS / 2) {
                d->reset_done = true;
                r = formation_reset(d->form, &live);
                if (r == -EBUSY)
                        log_error("--reset refused: a node already committed a plan. Releasing "
                                  "the lock now could split the cluster.");
                else if (r > 0) {
                        log_warning("lock released by --reset: this node will propose again. "
                                    "Do this only when no node ever committed.");
                        save_formation(d);
                } else if (r == 0)
                        log_info("--reset: no lock was held");
        }

        if (!d->late && before != NODE_COMMITTED) {
                r = formation_progress(d, &live, now);
                if (r < 0) {
                        free(live.nodes);
                        return r;
                }
        } else if (d->late && d->plan) {
                /* welcomed: announce the committed plan we are now part of */
                d->self.state = NODE_COMMITTED;
                d->self.flags &= ~NODE_F_LATE;
                if (!d->plan0)
                        for (size_t i = 0; i < ELEMENTSOF(d->received); i++)
                                if (d->received[i] && d->received[i]->epoch == 0) {
                                        memcpy(d->self.digest, d->received[i]->digest, DIGEST_LEN);
                                        break;
                                }
        }
        free(live.nodes);

        /* A welcomed late joiner has a plan but no plan0 of its own; it still welcomes
         * the next joiners when it is the lowest-id member heard (am_welcomer), and hands
         * on the secrets, or nobody would once the original members are gone. */
        if (d->plan) {
                const struct node_plan *me = d->plan0 ? role_plan_find(d->plan0, d->self.id) : NULL;

                if (me && (me->flags & PLAN_BOOTSTRAP) && !d->secrets) {
                        d->secrets = sodium_malloc(sizeof *d->secrets);
                        if (!d->secrets)
                                return -ENOMEM;
                        secrets_generate(d->secrets);
                        d->self.flags |= NODE_F_HAS_SECRETS;
                        log_info("bootstrap node: cluster secrets generated");
                        if ((r = save_secrets(d)) < 0)
                                return r;
                }
                if ((r = welcome_late_joiners(d)) < 0)
                        return r;
                if (d->ticks % PLAN_EVERY_TICKS == 0 || !everyone_formed(d)) {
                        if (d->plan0)
                                send_plan(d, d->plan0);
                        if (d->plan->epoch > 0)
                                send_plan(d, d->plan);
                }
                /* Every member holding the secrets hands them on, not just the bootstrap
                 * node: a late joiner must still get them once that node is gone. */
                if (d->secrets)
                        send_secrets_to_members(d);
                if (d->ticks % PLAN_EVERY_TICKS == 0 || !everyone_formed(d))
                        send_absent_facts(d);
        }
        r = send_announce(d);
        if (r < 0)
                return r;
        if (d->ticks % 5 == 0 || d->linger >= 0)
                write_status(d);
        if (d->opts->until_formed && d->linger < 0 && everyone_formed(d)) {
                log_info("formed: every member committed and holds the secrets");
                d->linger = LINGER_TICKS;
        }
        return arm_timer(d);
}

/* ---- setup -------------------------------------------------------------------------- */

static int daemon_setup(struct daemon *d) {
        _cleanup_inventory_ struct inventory *inv = NULL;
        _cleanup_free_ char *token = NULL;
        uint8_t id[NODE_ID_LEN], boot[NODE_ID_LEN];
        struct formation_params fp = { .expected_nodes = d->cfg->expected_nodes,
                                       .settle_ms = d->cfg->settle_ms };
        struct disk_filter filter = {};
        sigset_t mask;
        int r;

        if (sodium_init() < 0)
                return log_error_errno(-EIO, "libsodium failed to initialise");
        r = mkdir_parents(d->opts->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the state directory %s: %m", d->opts->state_dir);
        r = read_machine_id(d->opts->machine_id_path, id);
        if (r < 0)
                return r;
        read_boot_id(boot);
        r = inventory_collect(&filter, &inv);
        if (r < 0)
                return log_error_errno(r, "Inventory failed: %m");
        r = pick_cluster_iface(inv, d->cfg->discovery_interface, &d->ifc);
        if (r < 0)
                return r;
        r = node_info_from_inventory(inv, d->cfg, &d->ifc, id, boot, &d->self);
        if (r < 0)
                return r;
        d->box_sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
        if (!d->box_sk)
                return -ENOMEM;
        crypto_box_keypair(d->self.box_pk, d->box_sk);

        r = config_resolve_token(d->cfg, &token);
        if (r < 0)
                return log_error_errno(r, "Cannot read the cluster token: %m");
        r = wire_keys_derive(token, strlen(token), d->cfg->cluster_name, &d->keys);
        sodium_memzero(token, strlen(token));
        if (r < 0)
                return log_error_errno(r, "Cannot derive the cluster keys: %m");
        r = wire_rx_new(id, 0, &d->rx);
        if (r < 0)
                return r;
        memcpy(d->sender.id, id, NODE_ID_LEN);
        memcpy(d->sender.boot_id, boot, NODE_ID_LEN);

        r = formation_new(id, &fp, digest_of_members, d, &d->form);
        if (r < 0)
                return r;
        {
                /* A restarted member still knows the members it committed with, also
                 * those that are down now, and can relay their facts. */
                _cleanup_free_ char *vpath = NULL, *err = NULL;
                _cleanup_(view_done) struct view saved = {};

                if (state_path(d, "view.json", &vpath) < 0)
                        return -ENOMEM;
                if (view_from_json_file(vpath, &saved, &err) >= 0)
                        for (size_t i = 0; i < saved.n; i++)
                                if (node_id_cmp(saved.nodes[i].id, id) != 0 &&
                                    (r = facts_remember(d, &saved.nodes[i])) < 0)
                                        return r;
        }
        {
                _cleanup_free_ char *path = NULL, *text = NULL;

                if (state_path(d, "formation", &path) < 0)
                        return -ENOMEM;
                r = read_full_file(path, &text, NULL);
                if (r >= 0) {
                        r = formation_load(d->form, text);
                        if (r < 0)
                                return log_error_errno(r, "%s cannot be loaded; refusing to "
                                                          "forget a lock: %m", path);
                        log_info("formation state restored: %s",
                                 node_state_to_string(formation_state(d->form)));
                } else if (r != -ENOENT)
                        return log_error_errno(r, "Cannot read %s: %m", path);
        }
        if (formation_state(d->form) == NODE_COMMITTED) {
                if ((r = load_plan(d, "plan0.bin", &d->plan0)) < 0 ||
                    (r = load_plan(d, "plan.bin", &d->plan)) < 0)
                        return r;
        }
        d->self.state = formation_state(d->form);
        if (formation_digest(d->form))
                memcpy(d->self.digest, formation_digest(d->form), DIGEST_LEN);
        r = load_secrets(d);
        if (r < 0)
                return r;

        r = mcast_open(d->ifc.ifindex, d->ifc.addr, d->cfg->discovery_group,
                       d->cfg->discovery_port, &d->sock);
        if (r < 0)
                return r;
        d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        /* The settle time elapses between announce ticks: look every 50 ms until
         * committed, so a proposal is not held back by up to a whole interval. */
        d->stepfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (d->stepfd >= 0) {
                struct itimerspec its = { .it_interval = { .tv_nsec = STEP_MS * 1000000L },
                                          .it_value = { .tv_nsec = STEP_MS * 1000000L } };
                timerfd_settime(d->stepfd, 0, &its, NULL);
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        d->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        d->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (d->tfd < 0 || d->stepfd < 0 || d->sfd < 0 || d->epfd < 0)
                return log_error_errno(-errno, "Cannot set up the event loop: %m");
        {
                struct epoll_event ev = { .events = EPOLLIN };
                ev.data.fd = d->sock;
                epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sock, &ev);
                ev.data.fd = d->tfd;
                epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->tfd, &ev);
                ev.data.fd = d->sfd;
                epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sfd, &ev);
                ev.data.fd = d->stepfd;
                epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->stepfd, &ev);
        }
        {
                char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], hex[2 * NODE_ID_LEN + 1];

                inet_ntop(AF_INET, &d->ifc.addr, a, sizeof a);
                inet_ntop(AF_INET, &d->cfg->discovery_group, g, sizeof g);
                node_id_to_hex(id, hex);
                log_info("node %.12s (%s) discovering cluster '%s' on %s (%s) via %s:%u, "
                         "expecting %u nodes",
                         hex, d->self.hostname, d->cfg->cluster_name, d->ifc.name, a, g,
                         d->cfg->discovery_port, d->cfg->expected_nodes);
        }
        return 0;
}

static void daemon_done(struct daemon *d) {
        closep(&d->sock);
        closep(&d->tfd);
        closep(&d->stepfd);
        closep(&d->sfd);
        closep(&d->epfd);
        wire_keys_free(d->keys);
        wire_rx_free(d->rx);
        sodium_free(d->box_sk);
        if (d->secrets)
                sodium_free(d->secrets);
        formation_free(d->form);
        role_plan_free(d->plan0);
        role_plan_free(d->plan);
        for (size_t i = 0; i < ELEMENTSOF(d->received); i++)
                role_plan_free(d->received[i]);
        free(d->peers);
        free(d->facts);
}

static void print_result(struct daemon *d) {
        if (d->opts->json) {
                _cleanup_free_ char *s = NULL;

                if (role_plan_to_json(d->plan, &s) >= 0)
                        puts(s);
                return;
        }
        {
                struct view v = {};

                if (live_view(d, &v) >= 0) {
                        role_plan_explain(d->plan, &v, stdout);
                        free(v.nodes);
                }
        }
}

int discover_run(const struct config *cfg, const struct discover_opts *o) {
        struct daemon d = { .cfg = cfg, .opts = o, .sock = -1, .tfd = -1, .sfd = -1,
                            .epfd = -1, .stepfd = -1, .linger = -1 };
        uint64_t deadline;
        int r;

        d.interval_ms = cfg->interval_ms ? cfg->interval_ms : 250;
        d.peers = calloc(PEERS_MAX, sizeof *d.peers);
        if (!d.peers)
                return -ENOMEM;
        r = daemon_setup(&d);
        if (r < 0)
                goto out;
        d.start_ms = now_mono_ms();
        deadline = o->timeout_s ? d.start_ms + (uint64_t)o->timeout_s * 1000 : UINT64_MAX;
        r = arm_timer(&d);
        if (r < 0)
                goto out;
        send_announce(&d);

        for (;;) {
                struct epoll_event ev[4];
                uint64_t now = now_mono_ms();
                int n, wait_ms = deadline == UINT64_MAX ? -1 : (int)(deadline > now ? deadline - now : 0);

                if (now >= deadline) {
                        r = log_error_errno(-ETIMEDOUT,
                                            "not formed within %u s: state %s, %zu peers heard, "
                                            "expecting %u nodes",
                                            o->timeout_s, node_state_to_string(d.self.state),
                                            d.n_peers, cfg->expected_nodes);
                        write_status(&d);
                        goto out;
                }
                n = epoll_wait(d.epfd, ev, ELEMENTSOF(ev), wait_ms);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_error_errno(-errno, "epoll_wait: %m");
                        goto out;
                }
                for (int i = 0; i < n; i++) {
                        int fd = ev[i].data.fd;

                        if (fd == d.sock) {
                                r = receive(&d);
                                if (r >= 0 && d.react_needed) {
                                        d.react_needed = false;
                                        r = react(&d);
                                }
                        } else if (fd == d.stepfd) {
                                uint64_t exp;

                                if (read(d.stepfd, &exp, sizeof exp) < 0 && errno != EAGAIN) {
                                        r = -errno;
                                        goto out;
                                }
                                if (d.late || formation_state(d.form) == NODE_COMMITTED)
                                        timerfd_settime(d.stepfd, 0, &(struct itimerspec){}, NULL);
                                else
                                        r = react(&d);
                        } else if (fd == d.tfd) {
                                uint64_t exp;

                                if (read(d.tfd, &exp, sizeof exp) < 0 && errno != EAGAIN) {
                                        r = -errno;
                                        goto out;
                                }
                                r = tick(&d);
                                if (r >= 0 && d.linger >= 0 && d.linger-- == 0) {
                                        write_status(&d);
                                        print_result(&d);
                                        r = 0;
                                        goto out;
                                }
                        } else {
                                struct signalfd_siginfo si;

                                if (read(d.sfd, &si, sizeof si) == sizeof si) {
                                        log_info("signal %u: stopping", si.ssi_signo);
                                        write_status(&d);
                                        r = 0;
                                        goto out;
                                }
                        }
                        if (r < 0)
                                goto out;
                }
        }
out:
        daemon_done(&d);
        return r;
}
