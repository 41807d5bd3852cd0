/* SPDX-License-Identifier: MIT */
/* Role election: pins, masters (= etcd), gateways, builders, MySQL, registry, bootstrap,
 * workers, in that order, over the nodes sorted by id so the input order never matters. */
#include "elect.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <sodium.h>
#include <strings.h>

#include "json_util.h"
#include "util.h"

/* What the election knows about one node while it runs. */
struct cand {
        const struct node_info *ni;
        struct node_plan *np;
        uint32_t pins;                    /* enum role bits; ROLE_ETCD is folded into ROLE_MASTER */
        char pin_why[128];                /* which pin matched, for reasons */
        char name[NODE_HOSTNAME_MAX + 1]; /* hostname, or id prefix without one: for warnings */
        unsigned nics_up;
        uint64_t disk_bytes, ssd_bytes;
};

struct counts {
        unsigned masters, gateways, builders;
};

static void reason_done(struct plan_reason *r) {
        free(r->text);
}

static void node_plan_done(struct node_plan *np) {
        for (size_t i = 0; i < np->n_reasons; i++)
                reason_done(&np->reasons[i]);
        free(np->reasons);
}

struct role_plan *role_plan_free(struct role_plan *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n; i++)
                node_plan_done(&p->nodes[i]);
        free(p->nodes);
        strv_free(p->warnings);
        strv_free(p->notes);
        free(p);
        return NULL;
}

_printf_(4, 5) static int add_reason(struct node_plan *np, const char *role, bool warning,
                                     const char *fmt, ...) {
        struct plan_reason *n;
        va_list ap;
        char *text;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        n = realloc(np->reasons, (np->n_reasons + 1) * sizeof *n);
        if (!n) {
                free(text);
                return -ENOMEM;
        }
        np->reasons = n;
        np->reasons[np->n_reasons++] =
                (struct plan_reason){.role = role, .warning = warning, .text = text};
        return 0;
}

_printf_(2, 3) static int add_line(char ***l, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0) {
                s = NULL;
                return -ENOMEM;
        }
        return strv_push(l, s);
}

static const char *ordinal(unsigned n, char buf[static 16]) {
        static const char *const suffix[] = {"th", "st", "nd", "rd"};
        unsigned m = n % 100, k = n % 10;

        snprintf(buf, 16, "%u%s", n, (m >= 11 && m <= 13) || k > 3 ? "th" : suffix[k]);
        return buf;
}

/* ---- Pins ---------------------------------------------------------------------- */

static bool pin_matches(const struct pin *pin, const struct node_info *ni) {
        if (pin->hostname)
                return strcasecmp(pin->hostname, ni->hostname) == 0;
        if (!pin->has_mac)
                return false;
        for (size_t i = 0; i < ni->n_nics && i < NODE_NICS_MAX; i++)
                if (memcmp(pin->mac, ni->nics[i].mac, 6) == 0)
                        return true;
        return false;
}

static void collect_pins(struct cand *c, const struct config *cfg) {
        uint32_t pins = 0;

        for (size_t i = 0; i < cfg->n_pins; i++) {
                const struct pin *pin = &cfg->pins[i];

                if (!pin_matches(pin, c->ni))
                        continue;
                if (!c->pin_why[0]) {
                        char what[80], mac[18];

                        if (pin->hostname)
                                snprintf(what, sizeof what, "hostname %s", pin->hostname);
                        else {
                                format_mac(pin->mac, mac);
                                snprintf(what, sizeof what, "MAC %s", mac);
                        }
                        if (pin->line > 0)
                                snprintf(c->pin_why, sizeof c->pin_why,
                                         "pinned by config (%s, line %u)", what, pin->line);
                        else
                                snprintf(c->pin_why, sizeof c->pin_why, "pinned by config (%s)",
                                         what);
                }
                pins |= pin->roles;
        }
        /* A node may match a pin through a MAC it does not announce (NODE_NICS_MAX), so
         * the pins it reports for itself count too. */
        if ((c->ni->pinned_roles & ~pins & ROLE_ALL) && !c->pin_why[0])
                snprintf(c->pin_why, sizeof c->pin_why, "pinned by the node's own config");
        pins |= c->ni->pinned_roles & ROLE_ALL;
        /* Masters are the etcd members (external etcd, stacked on the control plane). */
        if (pins & (ROLE_MASTER | ROLE_ETCD))
                pins = (pins & ~ROLE_ETCD) | ROLE_MASTER;
        c->pins = pins;
}

/* ---- Preference orders: each ends on the id, so the order is total. ------------ */

static int cmp_id(const struct cand *a, const struct cand *b) {
        return node_id_cmp(a->ni->id, b->ni->id);
}

#define CMP_DESC(x, y) ((x) > (y) ? -1 : (x) < (y) ? 1 : 0)

static int cmp_master(const void *pa, const void *pb) {
        const struct cand *a = *(struct cand *const *)pa, *b = *(struct cand *const *)pb;

        return CMP_DESC(a->ni->memory_bytes, b->ni->memory_bytes) ?: CMP_DESC(a->ni->cpus, b->ni->cpus)
                                                                       ?: cmp_id(a, b);
}

static int cmp_gateway(const void *pa, const void *pb) {
        const struct cand *a = *(struct cand *const *)pa, *b = *(struct cand *const *)pb;

        return CMP_DESC(a->nics_up, b->nics_up) ?: cmp_id(a, b);
}

static int cmp_builder(const void *pa, const void *pb) {
        const struct cand *a = *(struct cand *const *)pa, *b = *(struct cand *const *)pb;

        return CMP_DESC(a->ssd_bytes > 0, b->ssd_bytes > 0) ?: CMP_DESC(a->disk_bytes, b->disk_bytes)
                                                                 ?: cmp_id(a, b);
}

static int cmp_replica(const void *pa, const void *pb) {
        const struct cand *a = *(struct cand *const *)pa, *b = *(struct cand *const *)pb;
        bool am = a->np->roles & ROLE_MASTER, bm = b->np->roles & ROLE_MASTER;

        return CMP_DESC(am, bm) ?: CMP_DESC(a->ni->memory_bytes, b->ni->memory_bytes) ?: cmp_id(a, b);
}

static const char *role_label(uint32_t role) {
        switch (role) {
        case ROLE_MASTER:
                return "master";
        case ROLE_ETCD:
                return "etcd";
        case ROLE_WORKER:
                return "worker";
        case ROLE_GATEWAY:
                return "rbd-gateway";
        case ROLE_BUILDER:
                return "rbd-chaos";
        case ROLE_REGISTRY:
                return "registry";
        case ROLE_MYSQL:
                return "mysql";
        default:
                return "?";
        }
}

/* Choose up to `want` nodes for `role`: pinned nodes first in id order (pins beyond
 * `want` are refused with a warning), then the rest in `cmp` order. `chosen` receives
 * the election order; `skip` excludes nodes that already have a role. */
static int choose(struct role_plan *p, struct cand **by_id, size_t n, uint32_t role, unsigned want,
                  int (*cmp)(const void *, const void *), uint32_t skip, struct cand **chosen,
                  size_t *ret_n_chosen, size_t *ret_n_pinned) {
        _cleanup_free_ struct cand **rest = NULL;
        size_t k = 0, n_rest = 0, n_pinned;
        int r;

        rest = calloc(n ?: 1, sizeof *rest);
        if (!rest)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct cand *c = by_id[i];

                if (c->np->roles & skip)
                        continue;
                if (!(c->pins & role)) {
                        rest[n_rest++] = c;
                        continue;
                }
                if (k < want) {
                        chosen[k++] = c;
                        continue;
                }
                r = add_line(&p->warnings,
                             "%s is pinned as %s, but only %u %s node(s) are wanted: pin ignored",
                             c->name, role_label(role), want, role_label(role));
                if (r < 0)
                        return r;
        }
        n_pinned = k;
        qsort(rest, n_rest, sizeof *rest, cmp);
        for (size_t i = 0; i < n_rest && k < want; i++)
                chosen[k++] = rest[i];
        *ret_n_chosen = k;
        if (ret_n_pinned)
                *ret_n_pinned = n_pinned;
        return 0;
}

static unsigned clamp_count(unsigned want, size_t n) {
        return want < n ? want : (unsigned)n;
}

static unsigned default_masters(size_t n) {
        return n >= 3 ? 3 : 1;
}

static unsigned default_gateways(size_t n, unsigned masters) {
        return n <= 3 ? masters : 2;
}

static bool has_vrrp(const struct config *cfg) {
        return cfg->has_vip && !cfg->ext_lb;
}

static const char *vrrp_text(const struct config *cfg, uint8_t prio, char buf[static 64]) {
        if (prio)
                snprintf(buf, 64, "VRRP priority %u", prio);
        else
                snprintf(buf, 64, "no VRRP (%s)",
                         cfg->ext_lb ? "the external load balancer proxies to it"
                                     : "no VIP configured");
        return buf;
}

static uint8_t vrrp_priority(size_t rank) {
        int prio = VRRP_PRIORITY_FIRST - (int)rank * VRRP_PRIORITY_STEP;
        return (uint8_t)(prio < VRRP_PRIORITY_MIN ? VRRP_PRIORITY_MIN : prio);
}

/* ---- The election, one rule at a time ------------------------------------------ */

static int elect_masters(struct role_plan *p, struct cand **by_id, size_t n,
                         const struct config *cfg, struct cand **order, size_t *ret_n) {
        unsigned want = cfg->masters ?: default_masters(n), m = clamp_count(want, n);
        size_t k, n_pinned;
        char buf[16], mem[16];
        int r = 0;

        if (m % 2 == 0)
                m--;
        if (want > n)
                r = add_line(&p->warnings,
                             "roles.masters is %u but there %s only %zu node%s: electing %u%s",
                             want, n == 1 ? "is" : "are", n, n == 1 ? "" : "s", m,
                             m != n ? ", because etcd needs an odd number of members for a quorum"
                                    : "");
        else if (m != want)
                r = add_line(&p->warnings,
                             "roles.masters is %u, an even number: electing %u, because etcd needs "
                             "an odd "
                             "number of members for a quorum",
                             want, m);
        if (r < 0)
                return r;
        r = choose(p, by_id, n, ROLE_MASTER, m, cmp_master, 0, order, &k, &n_pinned);
        if (r < 0)
                return r;
        for (size_t i = 0; i < k; i++) {
                struct cand *c = order[i];

                c->np->roles |= ROLE_MASTER | ROLE_ETCD;
                if (i < n_pinned)
                        r = add_reason(c->np, "master", false, "%s", c->pin_why);
                else
                        r = add_reason(c->np, "master", false, "%s of %zu by memory (%s), CPUs %u",
                                       ordinal((unsigned)i + 1, buf), k,
                                       format_bytes(c->ni->memory_bytes, mem), c->ni->cpus);
                if (r >= 0)
                        r = add_reason(c->np, "etcd", false,
                                       "every master is an etcd member; member %zu of %zu", i + 1,
                                       k);
                if (r < 0)
                        return r;
        }
        *ret_n = k;
        return 0;
}

static int elect_gateways(struct role_plan *p, struct cand **by_id, size_t n,
                          const struct config *cfg, unsigned masters, struct cand **order,
                          size_t *ret_n) {
        unsigned want = cfg->gateways ?: default_gateways(n, masters), g = clamp_count(want, n);
        size_t k, n_pinned;
        char buf[16], prio[64];
        int r;

        if (g != want) {
                r = add_line(&p->warnings,
                             "roles.gateways is %u but there %s only %zu node%s: electing %u", want,
                             n == 1 ? "is" : "are", n, n == 1 ? "" : "s", g);
                if (r < 0)
                        return r;
        }
        r = choose(p, by_id, n, ROLE_GATEWAY, g, cmp_gateway, 0, order, &k, &n_pinned);
        if (r < 0)
                return r;
        for (size_t i = 0; i < k; i++) {
                struct cand *c = order[i];

                c->np->roles |= ROLE_GATEWAY;
                if (has_vrrp(cfg))
                        c->np->vrrp_priority = vrrp_priority(i);
                vrrp_text(cfg, c->np->vrrp_priority, prio);
                if (i < n_pinned)
                        r = add_reason(c->np, "rbd-gateway", false, "%s; %s", c->pin_why, prio);
                else
                        r = add_reason(c->np, "rbd-gateway", false, "%s of %zu by NICs up (%u); %s",
                                       ordinal((unsigned)i + 1, buf), k, c->nics_up, prio);
                if (r < 0)
                        return r;
        }
        *ret_n = k;
        return 0;
}

static int elect_builders(struct role_plan *p, struct cand **by_id, size_t n,
                          const struct config *cfg, struct cand **order) {
        unsigned b = clamp_count(cfg->builders, n);
        size_t k, n_pinned;
        char buf[16], sz[16];
        int r;

        if (b != cfg->builders) {
                r = add_line(&p->warnings,
                             "roles.builders is %u but there %s only %zu node%s: electing %u",
                             cfg->builders, n == 1 ? "is" : "are", n, n == 1 ? "" : "s", b);
                if (r < 0)
                        return r;
        }
        if (b == 0) {
                r = add_line(&p->notes,
                             "roles.builders is 0: no rbd-chaos node, source builds are disabled");
                if (r < 0)
                        return r;
        }
        r = choose(p, by_id, n, ROLE_BUILDER, b, cmp_builder, 0, order, &k, &n_pinned);
        if (r < 0)
                return r;
        for (size_t i = 0; i < k; i++) {
                struct cand *c = order[i];

                c->np->roles |= ROLE_BUILDER;
                if (i < n_pinned)
                        r = add_reason(c->np, "rbd-chaos", false, "%s", c->pin_why);
                else if (c->ssd_bytes > 0)
                        r = add_reason(c->np, "rbd-chaos", false,
                                       "has an SSD (%s); builder %zu of %zu",
                                       format_bytes(c->ssd_bytes, sz), i + 1, k);
                else
                        r = add_reason(c->np, "rbd-chaos", true,
                                       "no SSD node available; %s by data disk space (%s), builder "
                                       "%zu of %zu",
                                       ordinal((unsigned)i + 1, buf),
                                       format_bytes(c->disk_bytes, sz), i + 1, k);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int elect_workers(struct cand **by_id, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct cand *c = by_id[i];
                int r = 0;

                if (n <= 3) {
                        c->np->roles |= ROLE_WORKER;
                        r = add_reason(
                                c->np, "worker", false,
                                "every node runs workloads in a cluster of 3 nodes or fewer");
                } else if (!(c->np->roles & ROLE_MASTER)) {
                        c->np->roles |= ROLE_WORKER;
                        r = add_reason(c->np, "worker", false, "not a master");
                } else if (c->pins & ROLE_WORKER) {
                        c->np->roles |= ROLE_WORKER;
                        r = add_reason(c->np, "worker", false, "%s, although a master", c->pin_why);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int refuse_pins(struct role_plan *p, struct cand **by_id, size_t n, uint32_t role,
                       const char *why) {
        for (size_t i = 0; i < n; i++)
                if (by_id[i]->pins & role) {
                        int r = add_line(&p->warnings, "%s is pinned as %s, but %s: pin ignored",
                                         by_id[i]->name, role_label(role), why);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int elect_mysql(struct role_plan *p, struct cand **by_id, size_t n, const struct config *cfg,
                       struct cand **masters, size_t n_masters, struct cand **order) {
        struct cand *primary = NULL;
        size_t k = 0, n_pinned;
        char mem[16];
        int r;

        if (cfg->ext_mysql) {
                r = add_line(&p->notes, "external MySQL at %s:%u: no MySQL in the cluster",
                             cfg->ext_mysql->host ?: "?", cfg->ext_mysql->port);
                if (r < 0)
                        return r;
                return refuse_pins(p, by_id, n, ROLE_MYSQL, "external.mysql is set");
        }
        for (size_t i = 0; i < n_masters && !primary; i++)
                if (masters[i]->pins & ROLE_MYSQL)
                        primary = masters[i];
        if (primary)
                r = add_reason(primary->np, "mysql-primary", false,
                               "%s; first such master in election order", primary->pin_why);
        else {
                primary = masters[0];
                r = add_reason(primary->np, "mysql-primary", false,
                               "first master in election order");
        }
        if (r < 0)
                return r;
        primary->np->roles |= ROLE_MYSQL;
        primary->np->flags |= PLAN_MYSQL_PRIMARY;

        r = choose(p, by_id, n, ROLE_MYSQL, n > 2 ? 2 : (unsigned)n - 1, cmp_replica, ROLE_MYSQL,
                   order, &k, &n_pinned);
        if (r < 0)
                return r;
        if (k == 0) {
                r = add_line(&p->warnings, "a single node: MySQL runs without a replica");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < k; i++) {
                struct cand *c = order[i];

                c->np->roles |= ROLE_MYSQL;
                if (i < n_pinned)
                        r = add_reason(c->np, "mysql-replica", false, "%s", c->pin_why);
                else if (c->np->roles & ROLE_MASTER)
                        r = add_reason(c->np, "mysql-replica", false, "another master");
                else
                        r = add_reason(c->np, "mysql-replica", false,
                                       "most memory (%s) among the remaining nodes",
                                       format_bytes(c->ni->memory_bytes, mem));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int elect_registry(struct role_plan *p, struct cand **by_id, size_t n,
                          const struct config *cfg, struct cand **gateways, size_t n_gateways) {
        struct cand *reg = NULL;
        char sz[16];
        int r;

        if (cfg->ext_registry) {
                r = add_line(&p->notes, "external registry %s: no registry in the cluster",
                             cfg->ext_registry->domain ?: "?");
                if (r < 0)
                        return r;
                return refuse_pins(p, by_id, n, ROLE_REGISTRY, "external.registry is set");
        }
        for (size_t i = 0; i < n; i++) {
                struct cand *c = by_id[i];

                if (!(c->pins & ROLE_REGISTRY))
                        continue;
                if (!reg) {
                        reg = c;
                        continue;
                }
                r = add_line(
                        &p->warnings,
                        "%s is pinned as registry, but %s already is (one registry): pin ignored",
                        c->name, reg->name);
                if (r < 0)
                        return r;
        }
        if (reg)
                r = add_reason(reg->np, "registry", false, "%s", reg->pin_why);
        else {
                for (size_t i = 0; i < n_gateways && !reg; i++)
                        if (gateways[i]->ni->n_disks > 0)
                                reg = gateways[i];
                if (reg)
                        r = add_reason(reg->np, "registry", false,
                                       "first gateway in election order with a data disk (%s)",
                                       format_bytes(reg->disk_bytes, sz));
                else {
                        reg = gateways[0];
                        r = add_reason(reg->np, "registry", true,
                                       "first gateway; no gateway has a data disk, so images live "
                                       "on its system disk");
                }
        }
        if (r < 0)
                return r;
        reg->np->roles |= ROLE_REGISTRY;
        return 0;
}

static int elect_bootstrap(struct cand **by_id, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (by_id[i]->np->roles & ROLE_MASTER) {
                        by_id[i]->np->flags |= PLAN_BOOTSTRAP;
                        return add_reason(
                                by_id[i]->np, "bootstrap", false,
                                "master with the lowest node id: runs the first Kubernetes server "
                                "and makes the CA and cluster secrets");
                }
        return -EINVAL; /* unreachable: there is always a master */
}

static int cmp_cand_id(const void *a, const void *b) {
        return cmp_id(*(struct cand *const *)a, *(struct cand *const *)b);
}

static void fill_cand(struct cand *c, const struct node_info *ni, struct node_plan *np) {
        *c = (struct cand){.ni = ni, .np = np};
        for (size_t i = 0; i < ni->n_nics && i < NODE_NICS_MAX; i++)
                c->nics_up += ni->nics[i].up;
        for (size_t i = 0; i < ni->n_disks && i < NODE_DISKS_MAX; i++) {
                c->disk_bytes += ni->disks[i].size_bytes;
                if (ni->disks[i].ssd)
                        c->ssd_bytes += ni->disks[i].size_bytes;
        }
        memcpy(np->id, ni->id, NODE_ID_LEN);
        memcpy(np->hostname, ni->hostname, NODE_HOSTNAME_MAX);
        np->hostname[NODE_HOSTNAME_MAX] = '\0';
        if (np->hostname[0])
                memcpy(c->name, np->hostname, sizeof c->name);
        else {
                char hex[2 * NODE_ID_LEN + 1];

                node_id_to_hex(ni->id, hex);
                snprintf(c->name, sizeof c->name, "node %.12s", hex);
        }
}

static int cluster_notes(struct role_plan *p, const struct config *cfg) {
        char addr[INET_ADDRSTRLEN];

        if (cfg->ext_lb) {
                inet_ntop(AF_INET, &cfg->ext_lb->address, addr, sizeof addr);
                return add_line(&p->notes,
                                "external load balancer at %s proxies to the gateways: no VIP, no "
                                "keepalived, "
                                "VRRP priorities are 0",
                                addr);
        }
        if (!cfg->has_vip)
                return add_line(&p->notes,
                                "no VIP configured: no keepalived, VRRP priorities are 0");
        return 0;
}

int elect(const struct view *v, const struct config *cfg, struct role_plan **ret) {
        _cleanup_role_plan_ struct role_plan *p = NULL;
        _cleanup_free_ struct cand *cands = NULL;
        _cleanup_free_ struct cand **by_id = NULL, **masters = NULL, **gateways = NULL,
                                   **scratch = NULL;
        size_t n = v->n, n_masters, n_gateways;
        int r;

        if (n == 0)
                return -EINVAL;
        if (n > ELECT_MAX_NODES)
                return -E2BIG;

        r = role_plan_new(0, n, &p);
        if (r < 0)
                return r;
        cands = calloc(n, sizeof *cands);
        by_id = calloc(n, sizeof *by_id);
        masters = calloc(n, sizeof *masters);
        gateways = calloc(n, sizeof *gateways);
        scratch = calloc(n, sizeof *scratch);
        if (!cands || !by_id || !masters || !gateways || !scratch)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++)
                by_id[i] = &cands[i];
        for (size_t i = 0; i < n; i++)
                cands[i].ni = &v->nodes[i];
        qsort(by_id, n, sizeof *by_id, cmp_cand_id);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && cmp_id(by_id[i - 1], by_id[i]) == 0)
                        return -EINVAL;
                /* p->nodes[i] pairs with by_id[i], so the plan comes out sorted by id. */
                fill_cand(by_id[i], by_id[i]->ni, &p->nodes[i]);
                collect_pins(by_id[i], cfg);
        }

        r = cluster_notes(p, cfg);
        if (r < 0)
                return r;
        r = elect_masters(p, by_id, n, cfg, masters, &n_masters);
        if (r < 0)
                return r;
        r = elect_gateways(p, by_id, n, cfg, (unsigned)n_masters, gateways, &n_gateways);
        if (r < 0)
                return r;
        r = elect_builders(p, by_id, n, cfg, scratch);
        if (r < 0)
                return r;
        r = elect_workers(by_id, n);
        if (r < 0)
                return r;
        r = elect_mysql(p, by_id, n, cfg, masters, n_masters, scratch);
        if (r < 0)
                return r;
        r = elect_registry(p, by_id, n, cfg, gateways, n_gateways);
        if (r < 0)
                return r;
        r = elect_bootstrap(by_id, n);
        if (r < 0)
                return r;

        role_plan_digest(p, p->digest);
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- Plans from entries, digest, lookup ---------------------------------------- */

int role_plan_new(uint32_t epoch, size_t n, struct role_plan **ret) {
        _cleanup_role_plan_ struct role_plan *p = NULL;

        if (n > ELECT_MAX_NODES)
                return -E2BIG;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->epoch = epoch;
        p->nodes = calloc(n ?: 1, sizeof *p->nodes);
        if (!p->nodes)
                return -ENOMEM;
        p->n = n;
        *ret = TAKE_PTR(p);
        return 0;
}

static int cmp_node_plan(const void *a, const void *b) {
        return node_id_cmp(((const struct node_plan *)a)->id, ((const struct node_plan *)b)->id);
}

int role_plan_finalize(struct role_plan *p) {
        qsort(p->nodes, p->n, sizeof *p->nodes, cmp_node_plan);
        for (size_t i = 1; i < p->n; i++)
                if (node_id_cmp(p->nodes[i - 1].id, p->nodes[i].id) == 0)
                        return -EINVAL;
        role_plan_digest(p, p->digest);
        return 0;
}

static void put_le32(uint8_t *b, uint32_t v) {
        for (int i = 0; i < 4; i++)
                b[i] = (uint8_t)(v >> (8 * i));
}

void role_plan_digest(const struct role_plan *p, uint8_t ret[DIGEST_LEN]) {
        static const char domain[] = "rainboot-plan";
        crypto_generichash_state st;
        uint8_t hdr[sizeof domain + 1 + 4 + 4], entry[NODE_ID_LEN + 4 + 1 + 1];

        /* Only what every node derives identically from membership and config goes in:
         * hostnames, hardware and reasons stay out. */
        memcpy(hdr, domain, sizeof domain); /* with its NUL: separates the domain */
        hdr[sizeof domain] = PLAN_DIGEST_VERSION;
        put_le32(hdr + sizeof domain + 1, p->epoch);
        put_le32(hdr + sizeof domain + 5, (uint32_t)p->n);
        crypto_generichash_init(&st, NULL, 0, DIGEST_LEN);
        crypto_generichash_update(&st, hdr, sizeof hdr);
        for (size_t i = 0; i < p->n; i++) {
                const struct node_plan *np = &p->nodes[i];

                memcpy(entry, np->id, NODE_ID_LEN);
                put_le32(entry + NODE_ID_LEN, np->roles);
                entry[NODE_ID_LEN + 4] = np->flags;
                entry[NODE_ID_LEN + 5] = np->vrrp_priority;
                crypto_generichash_update(&st, entry, sizeof entry);
        }
        crypto_generichash_final(&st, ret, DIGEST_LEN);
}

const struct node_plan *role_plan_find(const struct role_plan *p, const uint8_t id[NODE_ID_LEN]) {
        struct node_plan key;

        memcpy(key.id, id, NODE_ID_LEN);
        return bsearch(&key, p->nodes, p->n, sizeof *p->nodes, cmp_node_plan);
}

/* ---- Late joiners -------------------------------------------------------------- */

static int role_plan_copy(const struct role_plan *src, size_t extra, struct role_plan **ret) {
        _cleanup_role_plan_ struct role_plan *p = NULL;
        int r;

        r = role_plan_new(src->epoch, src->n + extra, &p);
        if (r < 0)
                return r;
        p->n = 0;
        for (size_t i = 0; i < src->n; i++) {
                const struct node_plan *s = &src->nodes[i];
                struct node_plan *d = &p->nodes[p->n++];

                memcpy(d->id, s->id, NODE_ID_LEN);
                memcpy(d->hostname, s->hostname, sizeof d->hostname);
                d->roles = s->roles;
                d->flags = s->flags;
                d->vrrp_priority = s->vrrp_priority;
                for (size_t j = 0; j < s->n_reasons; j++) {
                        r = add_reason(d, s->reasons[j].role, s->reasons[j].warning, "%s",
                                       s->reasons[j].text);
                        if (r < 0)
                                return r;
                }
        }
        for (char **l = src->warnings; l && *l; l++)
                if (strv_push(&p->warnings, *l) < 0)
                        return -ENOMEM;
        for (char **l = src->notes; l && *l; l++)
                if (strv_push(&p->notes, *l) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

static int late_roles(const struct role_plan *p, struct cand *c, const struct config *cfg) {
        struct node_plan *np = c->np;
        unsigned masters = 0, gateways = 0, builders = 0, replicas = 0, min_prio = 0;
        bool primary = false;
        unsigned want_masters, want_gateways;
        char sz[16], prio[64];
        int r = 0;

        for (size_t i = 0; i < p->n; i++) {
                const struct node_plan *o = &p->nodes[i];

                masters += !!(o->roles & ROLE_MASTER);
                builders += !!(o->roles & ROLE_BUILDER);
                if (o->roles & ROLE_GATEWAY) {
                        gateways++;
                        if (o->vrrp_priority && (!min_prio || o->vrrp_priority < min_prio))
                                min_prio = o->vrrp_priority;
                }
                if (o->roles & ROLE_MYSQL) {
                        if (o->flags & PLAN_MYSQL_PRIMARY)
                                primary = true;
                        else
                                replicas++;
                }
        }
        want_masters = cfg->masters ?: default_masters(p->n + 1);
        want_gateways = cfg->gateways ?: default_gateways(p->n + 1, masters);

        np->roles = ROLE_WORKER;
        r = add_reason(np, "worker", false, "joined after formation");
        if (r < 0)
                return r;

        if (gateways < want_gateways) {
                np->roles |= ROLE_GATEWAY;
                /* Next below the lowest member gateway: members keep their priorities. */
                if (has_vrrp(cfg) && !min_prio)
                        np->vrrp_priority = VRRP_PRIORITY_FIRST;
                else if (has_vrrp(cfg))
                        np->vrrp_priority =
                                (uint8_t)(min_prio < VRRP_PRIORITY_MIN + VRRP_PRIORITY_STEP
                                                  ? VRRP_PRIORITY_MIN
                                                  : min_prio - VRRP_PRIORITY_STEP);
                vrrp_text(cfg, np->vrrp_priority, prio);
                r = add_reason(np, "rbd-gateway", false,
                               "fills a missing gateway (%u of %u before it joined); %s", gateways,
                               want_gateways, prio);
        } else if (builders < cfg->builders && c->ssd_bytes > 0) {
                np->roles |= ROLE_BUILDER;
                r = add_reason(np, "rbd-chaos", false,
                               "fills a missing builder and has an SSD (%s)",
                               format_bytes(c->ssd_bytes, sz));
        } else if (!cfg->ext_mysql && primary && replicas < 2) {
                np->roles |= ROLE_MYSQL;
                r = add_reason(np, "mysql-replica", false,
                               "fills a missing MySQL replica (%u of 2 before it joined)",
                               replicas);
        } else if (builders < cfg->builders) {
                np->roles |= ROLE_BUILDER;
                r = add_reason(np, "rbd-chaos", true,
                               "fills a missing builder, though it has no SSD");
        }
        if (r < 0)
                return r;

        if (masters < want_masters) {
                r = add_reason(np, NULL, false,
                               "not a master although the plan has %u of %u: etcd membership is "
                               "fixed at formation",
                               masters, want_masters);
                if (r < 0)
                        return r;
        }
        if (c->pins & ~np->roles & ~(uint32_t)ROLE_ETCD) {
                r = add_reason(np, NULL, true,
                               "%s, but a late joiner only fills missing roles: pin not applied",
                               c->pin_why);
                if (r < 0)
                        return r;
        }
        return 0;
}

int elect_late_joiner(const struct role_plan *committed, const struct node_info *newcomer,
                      const struct config *cfg, struct role_plan **ret) {
        _cleanup_role_plan_ struct role_plan *p = NULL;
        struct cand c;
        int r;

        if (role_plan_find(committed, newcomer->id))
                return -EEXIST;
        if (committed->n + 1 > ELECT_MAX_NODES)
                return -E2BIG;
        r = role_plan_copy(committed, 1, &p);
        if (r < 0)
                return r;
        fill_cand(&c, newcomer, &p->nodes[p->n]);
        p->n++;
        collect_pins(&c, cfg);
        r = late_roles(committed, &c, cfg);
        if (r < 0)
                return r;
        p->epoch = committed->epoch + 1;
        r = role_plan_finalize(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

static int cmp_node_info(const void *a, const void *b) {
        return node_id_cmp(((const struct node_info *)a)->id, ((const struct node_info *)b)->id);
}

int elect_late_joiners(const struct role_plan *committed, const struct node_info *newcomers,
                       size_t n, const struct config *cfg, struct role_plan **ret) {
        _cleanup_free_ struct node_info *sorted = NULL;
        _cleanup_role_plan_ struct role_plan *p = NULL;
        int r;

        if (n == 0)
                return -EINVAL;
        sorted = malloc(n * sizeof *sorted);
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, newcomers, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_node_info);
        for (size_t i = 0; i < n; i++) {
                struct role_plan *next = NULL;

                r = elect_late_joiner(p ?: committed, &sorted[i], cfg, &next);
                if (r < 0)
                        return r;
                role_plan_free(p);
                p = next;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- Output -------------------------------------------------------------------- */

size_t node_plan_role_names(const struct node_plan *np, const char *ret[PLAN_ROLE_NAMES_MAX]) {
        size_t k = 0;

        if (np->roles & ROLE_ETCD)
                ret[k++] = "etcd";
        if (np->roles & ROLE_MASTER)
                ret[k++] = "master";
        if (np->roles & ROLE_WORKER)
                ret[k++] = "worker";
        if (np->roles & ROLE_GATEWAY)
                ret[k++] = "rbd-gateway";
        if (np->roles & ROLE_BUILDER)
                ret[k++] = "rbd-chaos";
        if (np->roles & ROLE_REGISTRY)
                ret[k++] = "registry";
        if (np->roles & ROLE_MYSQL)
                ret[k++] = np->flags & PLAN_MYSQL_PRIMARY ? "mysql-primary" : "mysql-replica";
        if (np->flags & PLAN_BOOTSTRAP)
                ret[k++] = "bootstrap";
        return k;
}

static const struct node_info *view_find(const struct view *v, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; v && i < v->n; i++)
                if (node_id_cmp(v->nodes[i].id, id) == 0)
                        return &v->nodes[i];
        return NULL;
}

static bool name_listed(const char *role, const char *names[], size_t k) {
        for (size_t i = 0; role && i < k; i++)
                if (streq(role, names[i]))
                        return true;
        return false;
}

void role_plan_explain(const struct role_plan *p, const struct view *v, FILE *f) {
        char hex[2 * DIGEST_LEN + 1], id[2 * NODE_ID_LEN + 1];

        for (size_t i = 0; i < DIGEST_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", p->digest[i]);
        fprintf(f, "Plan for %zu node%s, epoch %" PRIu32 ", digest %.16s\n", p->n,
                p->n == 1 ? "" : "s", p->epoch, hex);
        for (char **l = p->notes; l && *l; l++)
                fprintf(f, "note: %s\n", *l);

        for (size_t i = 0; i < p->n; i++) {
                const struct node_plan *np = &p->nodes[i];
                const struct node_info *ni = view_find(v, np->id);
                const char *names[PLAN_ROLE_NAMES_MAX];
                size_t k = node_plan_role_names(np, names);

                node_id_to_hex(np->id, id);
                fprintf(f, "\n%s (%.12s)", np->hostname[0] ? np->hostname : "(no hostname)", id);
                for (size_t j = 0; ni && j < ni->n_addrs && j < NODE_ADDRS_MAX; j++) {
                        char a[INET_ADDRSTRLEN];

                        inet_ntop(AF_INET, &ni->addrs[j], a, sizeof a);
                        fprintf(f, "%s%s", j == 0 ? " " : ", ", a);
                }
                fputs("\n  roles:", f);
                for (size_t j = 0; j < k; j++)
                        fprintf(f, " %s", names[j]);
                fputc('\n', f);
                /* Reasons in the order of the roles line, then remarks. */
                for (size_t j = 0; j <= k; j++)
                        for (size_t m = 0; m < np->n_reasons; m++) {
                                const struct plan_reason *r = &np->reasons[m];

                                if (j < k ? !r->role || !streq(r->role, names[j])
                                          : name_listed(r->role, names, k))
                                        continue;
                                fprintf(f, "  %s%s%s%s\n", r->warning ? "warning: " : "",
                                        r->role ?: "",
                                        r->role      ? ": "
                                        : r->warning ? ""
                                                     : "- ",
                                        r->text);
                        }
        }
        if (p->warnings) {
                fputc('\n', f);
                for (char **l = p->warnings; *l; l++)
                        fprintf(f, "warning: %s\n", *l);
        }
}

static int node_plan_to_json(const struct node_plan *np, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *roles = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *reasons = json_object_new_array();
        const char *names[PLAN_ROLE_NAMES_MAX];
        size_t k = node_plan_role_names(np, names);
        int r;

        if (!o || !roles || !reasons)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++) {
                r = json_append(roles, json_object_new_string(names[i]));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < np->n_reasons; i++) {
                _cleanup_(json_object_putp) struct json_object *e = json_object_new_object();
                const struct plan_reason *pr = &np->reasons[i];

                if (!e)
                        return -ENOMEM;
                if (pr->role)
                        r = json_add(e, "role", json_object_new_string(pr->role));
                else
                        r = json_object_object_add(e, "role", NULL) < 0 ? -ENOMEM : 0;
                if (r < 0 ||
                    (r = json_add(e, "warning", json_object_new_boolean(pr->warning))) < 0 ||
                    (r = json_add(e, "text", json_object_new_string(pr->text))) < 0 ||
                    (r = json_append(reasons, TAKE_PTR(e))) < 0)
                        return r;
        }
        if ((r = json_add(o, "id", json_new_hex(np->id, NODE_ID_LEN))) < 0 ||
            (r = json_add(o, "hostname", json_object_new_string(np->hostname))) < 0 ||
            (r = json_add(o, "roles", TAKE_PTR(roles))) < 0 ||
            (r = json_add(o, "role_bits", json_object_new_int64(np->roles))) < 0 ||
            (r = json_add(o, "flags", json_object_new_int64(np->flags))) < 0 ||
            (r = json_add(o, "vrrp_priority", json_object_new_int64(np->vrrp_priority))) < 0 ||
            (r = json_add(o, "reasons", TAKE_PTR(reasons))) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int role_plan_to_json(const struct role_plan *p, char **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *nodes = json_object_new_array();
        int r;

        if (!o || !nodes)
                return -ENOMEM;
        for (size_t i = 0; i < p->n; i++) {
                struct json_object *n;

                r = node_plan_to_json(&p->nodes[i], &n);
                if (r < 0)
                        return r;
                r = json_append(nodes, n);
                if (r < 0)
                        return r;
        }
        if ((r = json_add(o, "version", json_object_new_int(PLAN_DIGEST_VERSION))) < 0 ||
            (r = json_add(o, "epoch", json_object_new_int64(p->epoch))) < 0 ||
            (r = json_add(o, "digest", json_new_hex(p->digest, DIGEST_LEN))) < 0 ||
            (r = json_add_strv(o, "notes", p->notes)) < 0 ||
            (r = json_add_strv(o, "warnings", p->warnings)) < 0 ||
            (r = json_add(o, "nodes", TAKE_PTR(nodes))) < 0)
                return r;
        return json_to_string(o, ret);
}
