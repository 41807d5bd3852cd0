/* SPDX-License-Identifier: MIT */
/* Role election on fixture views: determinism, the rules of DESIGN.md section 4, late
 * joiners, the digest, explain output and the view JSON format. No I/O but fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <json-c/json.h>

#include "elect.h"
#include "util.h"
#include "view_json.h"

#define GiB (1ULL << 30)

/* ---- Fixtures ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void) {
        /* xorshift64*: reproducible across runs and platforms, unlike rand(). */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

/* Ids are scrambled so id order differs from creation order. */
static struct node_info mknode(unsigned i, unsigned mem_gib, unsigned cpus, unsigned nics_up,
                               unsigned disk_gib, bool ssd) {
        struct node_info ni = {
                .cpus = (uint16_t)cpus,
                .memory_bytes = mem_gib * GiB,
                .n_addrs = 1,
                .n_nics = (uint8_t)(nics_up + 1),
        };

        ni.id[0] = (uint8_t)(i * 167 + 13);
        ni.id[1] = (uint8_t)i;
        ni.id[15] = 0x42;
        snprintf(ni.hostname, sizeof ni.hostname, "n%u", i);
        ni.addrs[0].s_addr = htonl(0xc0000200u + i); /* 192.0.2.i */
        for (unsigned k = 0; k < ni.n_nics; k++) {
                uint8_t mac[6] = {0x52, 0x54, 0, 0, (uint8_t)i, (uint8_t)k};

                memcpy(ni.nics[k].mac, mac, 6);
                ni.nics[k].up = k < nics_up; /* one NIC down on every node */
        }
        if (disk_gib) {
                ni.n_disks = 1;
                ni.disks[0] = (struct hw_disk){.size_bytes = disk_gib * GiB, .ssd = ssd};
        }
        return ni;
}

static struct node_info *random_nodes(size_t n, uint64_t seed) {
        struct node_info *nodes = calloc(n, sizeof *nodes);

        assert_non_null(nodes);
        rng_state = seed;
        for (size_t i = 0; i < n; i++)
                /* Few distinct values, so ties on memory/CPUs/NICs are common. */
                nodes[i] = mknode((unsigned)i, 8u << (rng() % 3), 4u << (rng() % 2), 1 + rng() % 2,
                                  (unsigned)(rng() % 3) * 500, rng() % 4 == 0);
        return nodes;
}

static struct config base_config(void) {
        return (struct config){
                .expected_nodes = 3,
                .masters = 3,
                .gateways = 2,
                .builders = 1,
                .has_vip = true,
        };
}

static struct role_plan *do_elect(struct node_info *nodes, size_t n, const struct config *cfg) {
        struct view v = {.nodes = nodes, .n = n};
        struct role_plan *p = NULL;

        assert_int_equal(elect(&v, cfg, &p), 0);
        assert_non_null(p);
        return p;
}

static const struct node_plan *find_host(const struct role_plan *p, const char *hostname) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->nodes[i].hostname, hostname))
                        return &p->nodes[i];
        fail_msg("no node %s in the plan", hostname);
        return NULL;
}

static size_t count_role(const struct role_plan *p, uint32_t role) {
        size_t k = 0;

        for (size_t i = 0; i < p->n; i++)
                k += !!(p->nodes[i].roles & role);
        return k;
}

static bool has_reason(const struct node_plan *np, const char *role) {
        for (size_t i = 0; i < np->n_reasons; i++)
                if (np->reasons[i].role && streq(np->reasons[i].role, role) &&
                    np->reasons[i].text[0])
                        return true;
        return false;
}

static bool has_warning_reason(const struct node_plan *np, const char *role) {
        for (size_t i = 0; i < np->n_reasons; i++)
                if (np->reasons[i].warning && np->reasons[i].role &&
                    streq(np->reasons[i].role, role))
                        return true;
        return false;
}

static bool warnings_mention(const struct role_plan *p, const char *s) {
        for (char **l = p->warnings; l && *l; l++)
                if (strstr(*l, s))
                        return true;
        return false;
}

/* Invariants every plan without pins must hold. */
static void check_plan(const struct role_plan *p, size_t n, const struct config *cfg,
                       size_t masters, size_t gateways) {
        const struct node_plan *bootstrap = NULL, *primary = NULL;
        size_t replicas = 0, registries = 0;
        uint8_t d[DIGEST_LEN];

        assert_int_equal(p->n, n);
        assert_int_equal(count_role(p, ROLE_MASTER), masters);
        assert_int_equal(count_role(p, ROLE_ETCD), masters);
        assert_int_equal(count_role(p, ROLE_GATEWAY), gateways);
        assert_int_equal(count_role(p, ROLE_BUILDER), cfg->builders < n ? cfg->builders : n);
        for (size_t i = 0; i < n; i++) {
                const struct node_plan *np = &p->nodes[i];
                const char *names[PLAN_ROLE_NAMES_MAX];
                size_t k = node_plan_role_names(np, names);

                if (i > 0)
                        assert_true(node_id_cmp(p->nodes[i - 1].id, np->id) < 0);
                assert_true(np->roles != 0);
                assert_int_equal(!!(np->roles & ROLE_MASTER), !!(np->roles & ROLE_ETCD));
                /* Rule 7: small clusters run workloads everywhere. */
                if (n <= 3)
                        assert_true(np->roles & ROLE_WORKER);
                else
                        assert_int_equal(!!(np->roles & ROLE_WORKER), !(np->roles & ROLE_MASTER));
                if (np->flags & PLAN_BOOTSTRAP) {
                        assert_null(bootstrap);
                        bootstrap = np;
                }
                if (np->roles & ROLE_MYSQL) {
                        if (np->flags & PLAN_MYSQL_PRIMARY) {
                                assert_null(primary);
                                primary = np;
                        } else
                                replicas++;
                } else
                        assert_false(np->flags & PLAN_MYSQL_PRIMARY);
                if (np->roles & ROLE_REGISTRY) {
                        registries++;
                        assert_true(np->roles & ROLE_GATEWAY);
                }
                if ((np->roles & ROLE_GATEWAY) && cfg->has_vip && !cfg->ext_lb) {
                        assert_in_range(np->vrrp_priority, VRRP_PRIORITY_MIN, VRRP_PRIORITY_FIRST);
                        for (size_t j = 0; j < i; j++)
                                if (p->nodes[j].roles & ROLE_GATEWAY && gateways <= 11)
                                        assert_int_not_equal(p->nodes[j].vrrp_priority,
                                                             np->vrrp_priority);
                } else
                        assert_int_equal(np->vrrp_priority, 0);
                /* Every role comes with its reason. */
                for (size_t j = 0; j < k; j++)
                        if (!has_reason(np, names[j]))
                                fail_msg("%s has role %s without a reason", np->hostname, names[j]);
        }
        /* Bootstrap: exactly one, the master with the lowest id. */
        assert_non_null(bootstrap);
        assert_true(bootstrap->roles & ROLE_MASTER);
        for (size_t i = 0; i < n && &p->nodes[i] != bootstrap; i++)
                assert_false(p->nodes[i].roles & ROLE_MASTER);
        if (cfg->ext_mysql) {
                assert_null(primary);
                assert_int_equal(replicas, 0);
        } else {
                assert_non_null(primary);
                assert_true(primary->roles & ROLE_MASTER);
                assert_int_equal(replicas, n > 2 ? 2 : n - 1);
        }
        assert_int_equal(registries, cfg->ext_registry ? 0 : 1);
        role_plan_digest(p, d);
        assert_memory_equal(d, p->digest, DIGEST_LEN);
}

static void assert_same_plan(const struct role_plan *a, const struct role_plan *b) {
        assert_int_equal(a->n, b->n);
        assert_memory_equal(a->digest, b->digest, DIGEST_LEN);
        for (size_t i = 0; i < a->n; i++) {
                const struct node_plan *x = &a->nodes[i], *y = &b->nodes[i];

                assert_memory_equal(x->id, y->id, NODE_ID_LEN);
                assert_int_equal(x->roles, y->roles);
                assert_int_equal(x->flags, y->flags);
                assert_int_equal(x->vrrp_priority, y->vrrp_priority);
                assert_int_equal(x->n_reasons, y->n_reasons);
                for (size_t j = 0; j < x->n_reasons; j++)
                        assert_string_equal(x->reasons[j].text, y->reasons[j].text);
        }
}

static char *explain_text(const struct role_plan *p, const struct view *v) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        role_plan_explain(p, v, f);
        assert_int_equal(fclose(f), 0);
        return buf;
}

/* ---- Determinism and the digest ----------------------------------------------- */

static void test_shuffle_determinism(void **state) {
        (void)state;
        struct config cfg = base_config();

        static const size_t sizes[] = {1, 2, 3, 5, 7, 20, 24};

        for (size_t s = 0; s < ELEMENTSOF(sizes); s++) {
                size_t n = sizes[s];
                struct node_info *nodes = random_nodes(n, 0x5eed + n);
                struct role_plan *ref = do_elect(nodes, n, &cfg);

                for (int round = 0; round < 200; round++) {
                        struct role_plan *p;

                        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
                                size_t j = rng() % i;
                                struct node_info t = nodes[i - 1];

                                nodes[i - 1] = nodes[j];
                                nodes[j] = t;
                        }
                        p = do_elect(nodes, n, &cfg);
                        assert_same_plan(ref, p);
                        role_plan_free(p);
                }
                role_plan_free(ref);
                free(nodes);
        }
}

static void test_digest_ignores_runtime_fields(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info *nodes = random_nodes(7, 7);
        struct role_plan *a = do_elect(nodes, 7, &cfg), *b;

        for (size_t i = 0; i < 7; i++) {
                nodes[i].state = (enum node_state)(rng() % 4);
                for (size_t k = 0; k < DIGEST_LEN; k++)
                        nodes[i].digest[k] = (uint8_t)rng();
                for (size_t k = 0; k < sizeof nodes[i].box_pk; k++)
                        nodes[i].box_pk[k] = (uint8_t)rng();
                for (size_t k = 0; k < NODE_ID_LEN; k++)
                        nodes[i].boot_id[k] = (uint8_t)rng();
                /* Hostnames are for people: without pins they change nothing either. */
                snprintf(nodes[i].hostname, sizeof nodes[i].hostname, "renamed-%zu", i);
        }
        b = do_elect(nodes, 7, &cfg);
        assert_same_plan(a, b);
        role_plan_free(a);
        role_plan_free(b);
        free(nodes);
}

static void test_config_changes_digest(void **state) {
        (void)state;
        struct config cfg = base_config(), one = base_config(), ext = base_config();
        struct external_mysql mysql = {.host = "db.example.com", .port = 3306};
        struct external_lb lb = {.api_port = 6443};
        struct node_info *nodes = random_nodes(5, 5);
        struct role_plan *a = do_elect(nodes, 5, &cfg), *b, *c, *d;

        one.masters = 1;
        b = do_elect(nodes, 5, &one);
        assert_memory_not_equal(a->digest, b->digest, DIGEST_LEN);
        ext.ext_mysql = &mysql;
        c = do_elect(nodes, 5, &ext);
        assert_memory_not_equal(a->digest, c->digest, DIGEST_LEN);
        /* An external LB changes no role bit, only the VRRP priorities: still seen. */
        ext = base_config();
        ext.ext_lb = &lb;
        d = do_elect(nodes, 5, &ext);
        assert_memory_not_equal(a->digest, d->digest, DIGEST_LEN);
        role_plan_free(a);
        role_plan_free(b);
        role_plan_free(c);
        role_plan_free(d);
        free(nodes);
}

static void test_digest_from_entries(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info *nodes = random_nodes(5, 11);
        struct role_plan *p = do_elect(nodes, 5, &cfg), *q = NULL;

        /* What a node rebuilds from a PLAN message (ids, bits, flags, priorities) in any
         * order hashes to the digest the electing node computed. */
        assert_int_equal(role_plan_new(0, 5, &q), 0);
        for (size_t i = 0; i < 5; i++) {
                const struct node_plan *s = &p->nodes[4 - i];

                memcpy(q->nodes[i].id, s->id, NODE_ID_LEN);
                q->nodes[i].roles = s->roles;
                q->nodes[i].flags = s->flags;
                q->nodes[i].vrrp_priority = s->vrrp_priority;
        }
        assert_int_equal(role_plan_finalize(q), 0);
        assert_memory_equal(p->digest, q->digest, DIGEST_LEN);
        /* One priority changed: another digest. */
        q->nodes[2].vrrp_priority ^= 1;
        assert_int_equal(role_plan_finalize(q), 0);
        assert_memory_not_equal(p->digest, q->digest, DIGEST_LEN);
        /* Duplicate ids are refused. */
        memcpy(q->nodes[1].id, q->nodes[0].id, NODE_ID_LEN);
        assert_int_equal(role_plan_finalize(q), -EINVAL);
        role_plan_free(p);
        role_plan_free(q);
        free(nodes);
}

static void test_bad_views(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info nodes[2] = {mknode(1, 8, 4, 1, 0, false), mknode(1, 16, 4, 1, 0, false)};
        struct view v = {.nodes = nodes, .n = 0};
        struct role_plan *p = NULL;

        assert_int_equal(elect(&v, &cfg, &p), -EINVAL);
        v.n = 2;
        assert_int_equal(elect(&v, &cfg, &p), -EINVAL); /* same id twice */
        v.n = ELECT_MAX_NODES + 1;
        assert_int_equal(elect(&v, &cfg, &p), -E2BIG);
        assert_null(p);
}

/* ---- The rules ----------------------------------------------------------------- */

static void test_cluster_sizes(void **state) {
        (void)state;
        static const struct {
                size_t n, masters, gateways;
        } cases[] = {{1, 1, 1}, {2, 1, 2}, {3, 3, 2}, {5, 3, 2}, {7, 3, 2}, {20, 3, 2}};
        struct config cfg = base_config();

        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                struct node_info *nodes = random_nodes(cases[c].n, 100 + c);
                struct role_plan *p = do_elect(nodes, cases[c].n, &cfg);

                check_plan(p, cases[c].n, &cfg, cases[c].masters, cases[c].gateways);
                role_plan_free(p);
                free(nodes);
        }
}

static void test_two_nodes_odd_masters(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info nodes[2] = {mknode(1, 8, 4, 1, 100, false),
                                     mknode(2, 16, 4, 1, 100, false)};
        struct role_plan *p = do_elect(nodes, 2, &cfg);

        assert_int_equal(count_role(p, ROLE_MASTER), 1);
        assert_true(find_host(p, "n2")->roles & ROLE_MASTER); /* more memory */
        assert_true(warnings_mention(p, "odd number"));
        role_plan_free(p);
}

static void test_masters_by_memory_cpu_id(void **state) {
        (void)state;
        struct config cfg = base_config();
        /* Ids (mknode scrambles them): n3 < n4 < n1. */
        struct node_info nodes[6] = {
                mknode(0, 8, 64, 1, 0, false), /* most CPUs but least memory: not a master */
                mknode(1, 16, 8, 1, 0, false), /* 16 GiB, more CPUs than n3/n4, highest id */
                mknode(2, 32, 4, 1, 0, false), /* most memory */
                mknode(3, 16, 4, 1, 0, false), /* ties with n4 on memory and CPUs: lower id */
                mknode(4, 16, 4, 1, 0, false), mknode(5, 8, 4, 1, 0, false),
        };
        struct role_plan *p;

        assert_true(node_id_cmp(nodes[3].id, nodes[4].id) < 0);
        assert_true(node_id_cmp(nodes[4].id, nodes[1].id) < 0);
        p = do_elect(nodes, 6, &cfg);
        check_plan(p, 6, &cfg, 3, 2);
        assert_true(find_host(p, "n2")->roles & ROLE_MASTER);
        assert_true(find_host(p, "n1")->roles & ROLE_MASTER);
        assert_true(find_host(p, "n3")->roles & ROLE_MASTER);
        assert_false(find_host(p, "n4")->roles & ROLE_MASTER);
        assert_false(find_host(p, "n0")->roles & ROLE_MASTER);
        assert_non_null(
                strstr(find_host(p, "n1")->reasons[0].text, "2nd of 3 by memory (16 GiB), CPUs 8"));
        /* MySQL primary = the first master in election order (most memory). */
        assert_true(find_host(p, "n2")->flags & PLAN_MYSQL_PRIMARY);
        /* Replicas: the other masters first. */
        assert_true(find_host(p, "n1")->roles & ROLE_MYSQL);
        assert_true(find_host(p, "n3")->roles & ROLE_MYSQL);
        role_plan_free(p);
}

static void test_gateways_by_nics(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info nodes[5] = {
                mknode(0, 8, 4, 1, 0, false), mknode(1, 8, 4, 3, 0, false),
                mknode(2, 8, 4, 1, 0, false), mknode(3, 8, 4, 2, 100, false),
                mknode(4, 8, 4, 1, 0, false),
        };
        struct role_plan *p = do_elect(nodes, 5, &cfg);

        check_plan(p, 5, &cfg, 3, 2);
        assert_true(find_host(p, "n1")->roles & ROLE_GATEWAY);
        assert_int_equal(find_host(p, "n1")->vrrp_priority, VRRP_PRIORITY_FIRST);
        assert_true(find_host(p, "n3")->roles & ROLE_GATEWAY);
        assert_int_equal(find_host(p, "n3")->vrrp_priority, VRRP_PRIORITY_FIRST - VRRP_PRIORITY_STEP);
        /* Registry: the first gateway with a data disk, though it comes second. */
        assert_true(find_host(p, "n3")->roles & ROLE_REGISTRY);
        assert_false(find_host(p, "n1")->roles & ROLE_REGISTRY);
        role_plan_free(p);

        /* No gateway has a data disk: the first gateway, with a warning. */
        nodes[3].n_disks = 0;
        p = do_elect(nodes, 5, &cfg);
        assert_true(find_host(p, "n1")->roles & ROLE_REGISTRY);
        assert_true(has_warning_reason(find_host(p, "n1"), "registry"));
        role_plan_free(p);
}

static void test_ssd_builder(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info nodes[5] = {
                mknode(0, 64, 16, 1, 4000, false), mknode(1, 64, 16, 1, 8000, false),
                mknode(2, 8, 4, 1, 120, true), /* small, but an SSD */
                mknode(3, 8, 4, 1, 0, false),      mknode(4, 8, 4, 1, 2000, false),
        };
        struct role_plan *p = do_elect(nodes, 5, &cfg);

        check_plan(p, 5, &cfg, 3, 2);
        assert_int_equal(count_role(p, ROLE_BUILDER), 1);
        assert_true(find_host(p, "n2")->roles & ROLE_BUILDER);
        assert_false(has_warning_reason(find_host(p, "n2"), "rbd-chaos"));
        role_plan_free(p);

        /* Without any SSD: most disk space, with a warning-level reason. */
        nodes[2].disks[0].ssd = false;
        p = do_elect(nodes, 5, &cfg);
        assert_true(find_host(p, "n1")->roles & ROLE_BUILDER);
        assert_true(has_warning_reason(find_host(p, "n1"), "rbd-chaos"));
        role_plan_free(p);
}

static void test_pins(void **state) {
        (void)state;
        struct node_info nodes[5] = {
                mknode(0, 64, 16, 3, 100, false), mknode(1, 64, 16, 3, 100, false),
                mknode(2, 64, 16, 3, 100, false), mknode(3, 64, 16, 3, 100, false),
                mknode(4, 4, 2, 1, 0, false), /* the weakest node: elected to nothing */
        };
        struct pin pins[3] = {
                {.hostname = "N4", .roles = ROLE_MASTER | ROLE_GATEWAY | ROLE_REGISTRY},
                {.has_mac = true, .mac = {0x52, 0x54, 0, 0, 4, 1}, .roles = ROLE_BUILDER},
                {.hostname = "n3", .roles = ROLE_WORKER},
        };
        struct config cfg = base_config();
        struct role_plan *p = do_elect(nodes, 5, &cfg);
        const struct node_plan *n4;

        assert_int_equal(find_host(p, "n4")->roles, ROLE_WORKER);
        role_plan_free(p);

        cfg.pins = pins;
        cfg.n_pins = ELEMENTSOF(pins);
        p = do_elect(nodes, 5, &cfg);
        assert_int_equal(count_role(p, ROLE_MASTER), 3);
        assert_int_equal(count_role(p, ROLE_GATEWAY), 2);
        assert_int_equal(count_role(p, ROLE_REGISTRY), 1);
        n4 = find_host(p, "n4");
        /* By hostname (case-insensitive), and by the MAC of its second NIC. */
        assert_true(n4->roles & ROLE_MASTER);
        assert_true(n4->roles & ROLE_ETCD);
        assert_true(n4->roles & ROLE_GATEWAY);
        assert_true(n4->roles & ROLE_REGISTRY);
        assert_true(n4->roles & ROLE_BUILDER);
        assert_int_equal(n4->vrrp_priority, VRRP_PRIORITY_FIRST); /* pins come first in the VRRP order */
        assert_non_null(strstr(n4->reasons[0].text, "hostname N4"));
        assert_true(has_reason(n4, "rbd-chaos"));
        /* A pinned worker that is a master stays a worker too. */
        if (find_host(p, "n3")->roles & ROLE_MASTER)
                assert_true(find_host(p, "n3")->roles & ROLE_WORKER);
        role_plan_free(p);

        /* Pins the node announces for itself count as well. */
        cfg.pins = NULL;
        cfg.n_pins = 0;
        nodes[4].pinned_roles = ROLE_ETCD;
        p = do_elect(nodes, 5, &cfg);
        assert_true(find_host(p, "n4")->roles & ROLE_MASTER);
        assert_non_null(strstr(find_host(p, "n4")->reasons[0].text, "own config"));
        role_plan_free(p);
}

static void test_conflicting_pins(void **state) {
        (void)state;
        struct node_info nodes[5];
        struct config cfg = base_config();
        struct role_plan *p;
        size_t pinned_masters = 0, first_refused = SIZE_MAX;

        for (unsigned i = 0; i < 5; i++) {
                nodes[i] = mknode(i, 8, 4, 1, 0, false);
                if (i != 2)
                        nodes[i].pinned_roles = ROLE_MASTER;
        }
        nodes[2].memory_bytes = 512 * GiB;
        p = do_elect(nodes, 5, &cfg);
        assert_int_equal(count_role(p, ROLE_MASTER), 3);
        assert_false(find_host(p, "n2")->roles & ROLE_MASTER); /* pins win over memory */
        /* The first three pinned nodes in id order win; the fourth is refused. */
        for (size_t i = 0; i < p->n; i++) {
                if (streq(p->nodes[i].hostname, "n2"))
                        continue;
                if (pinned_masters < 3)
                        assert_true(p->nodes[i].roles & ROLE_MASTER);
                else {
                        assert_false(p->nodes[i].roles & ROLE_MASTER);
                        first_refused = i;
                }
                pinned_masters++;
        }
        assert_int_not_equal(first_refused, SIZE_MAX);
        assert_true(warnings_mention(p, p->nodes[first_refused].hostname));
        assert_true(warnings_mention(p, "pin ignored"));
        role_plan_free(p);
}

static void test_external_services(void **state) {
        (void)state;
        struct external_lb lb = {.api_port = 6443};
        struct external_registry reg = {.domain = "registry.example.com"};
        struct external_mysql mysql = {.host = "db.example.com", .port = 3306};
        struct config cfg = base_config();
        struct node_info *nodes = random_nodes(5, 3);
        struct role_plan *p;
        char *text;

        inet_pton(AF_INET, "192.0.2.200", &lb.address);
        cfg.ext_lb = &lb;
        cfg.ext_registry = &reg;
        cfg.ext_mysql = &mysql;
        p = do_elect(nodes, 5, &cfg);
        check_plan(p, 5, &cfg, 3, 2); /* also: priorities 0, no registry, no MySQL */
        assert_int_equal(count_role(p, ROLE_MYSQL), 0);
        assert_int_equal(count_role(p, ROLE_REGISTRY), 0);
        assert_int_equal(count_role(p, ROLE_GATEWAY), 2);
        text = explain_text(p, NULL);
        assert_non_null(strstr(text, "external load balancer at 192.0.2.200"));
        assert_non_null(strstr(text, "no VRRP"));
        assert_non_null(strstr(text, "registry.example.com"));
        assert_non_null(strstr(text, "db.example.com"));
        free(text);
        role_plan_free(p);
        free(nodes);
}

/* ---- Explain and JSON ---------------------------------------------------------- */

static void test_explain_mentions_every_role(void **state) {
        (void)state;
        struct config cfg = base_config();

        for (size_t n = 1; n <= 7; n += 2) {
                struct node_info *nodes = random_nodes(n, 40 + n);
                struct view v = {.nodes = nodes, .n = n};
                struct role_plan *p = do_elect(nodes, n, &cfg);
                char *text = explain_text(p, &v);

                for (size_t i = 0; i < p->n; i++) {
                        const struct node_plan *np = &p->nodes[i];
                        const char *names[PLAN_ROLE_NAMES_MAX];
                        size_t k = node_plan_role_names(np, names);
                        char head[128], id[2 * NODE_ID_LEN + 1], *section, *end;

                        node_id_to_hex(np->id, id);
                        snprintf(head, sizeof head, "\n%s (%.12s) 192.0.2.", np->hostname, id);
                        section = strstr(text, head);
                        assert_non_null(section);
                        end = strstr(section + 1, "\n\n");
                        if (end)
                                *end = '\0';
                        for (size_t j = 0; j < k; j++) {
                                char line[64], warning[64];

                                snprintf(line, sizeof line, "\n  %s: ", names[j]);
                                snprintf(warning, sizeof warning, "\n  warning: %s: ", names[j]);
                                if (!strstr(section, line) && !strstr(section, warning))
                                        fail_msg("explain of %s lacks role %s:\n%s", np->hostname,
                                                 names[j], section);
                        }
                        if (end)
                                *end = '\n';
                }
                free(text);
                role_plan_free(p);
                free(nodes);
        }
}

static void test_plan_json(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info *nodes = random_nodes(5, 9);
        struct role_plan *p = do_elect(nodes, 5, &cfg);
        char *s = NULL, hex[2 * DIGEST_LEN + 1];
        struct json_object *o, *jn, *d;

        assert_int_equal(role_plan_to_json(p, &s), 0);
        o = json_tokener_parse(s);
        assert_non_null(o);
        for (size_t i = 0; i < DIGEST_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", p->digest[i]);
        assert_true(json_object_object_get_ex(o, "digest", &d));
        assert_string_equal(json_object_get_string(d), hex);
        assert_true(json_object_object_get_ex(o, "nodes", &jn));
        assert_int_equal(json_object_array_length(jn), 5);
        for (size_t i = 0; i < 5; i++) {
                struct json_object *roles;
                const char *names[PLAN_ROLE_NAMES_MAX];
                size_t k = node_plan_role_names(&p->nodes[i], names);

                assert_true(json_object_object_get_ex(json_object_array_get_idx(jn, i), "roles",
                                                      &roles));
                assert_int_equal(json_object_array_length(roles), k);
                for (size_t j = 0; j < k; j++)
                        assert_string_equal(
                                json_object_get_string(json_object_array_get_idx(roles, j)),
                                names[j]);
        }
        json_object_put(o);
        free(s);
        role_plan_free(p);
        free(nodes);
}

/* ---- Late joiners -------------------------------------------------------------- */

static void assert_members_unchanged(const struct role_plan *before,
                                     const struct role_plan *after) {
        for (size_t i = 0; i < before->n; i++) {
                const struct node_plan *a = &before->nodes[i], *b = role_plan_find(after, a->id);

                assert_non_null(b);
                assert_int_equal(a->roles, b->roles);
                assert_int_equal(a->flags, b->flags);
                assert_int_equal(a->vrrp_priority, b->vrrp_priority);
        }
}

static void test_late_joiner_fills_gateway(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info first = mknode(1, 16, 8, 1, 100, false),
                         late = mknode(2, 64, 32, 2, 0, false);
        struct role_plan *p = do_elect(&first, 1, &cfg), *q = NULL;
        const struct node_plan *np;
        uint8_t d[DIGEST_LEN];

        assert_int_equal(count_role(p, ROLE_GATEWAY), 1);
        assert_int_equal(elect_late_joiner(p, &late, &cfg, &q), 0);
        assert_int_equal(q->n, 2);
        assert_int_equal(q->epoch, p->epoch + 1);
        assert_memory_not_equal(q->digest, p->digest, DIGEST_LEN);
        role_plan_digest(q, d);
        assert_memory_equal(d, q->digest, DIGEST_LEN);
        assert_members_unchanged(p, q);
        np = role_plan_find(q, late.id);
        assert_non_null(np);
        assert_int_equal(np->roles, ROLE_WORKER | ROLE_GATEWAY);
        assert_int_equal(np->vrrp_priority, VRRP_PRIORITY_FIRST - VRRP_PRIORITY_STEP);
        /* More memory than the master, but etcd membership is fixed at formation. */
        assert_false(np->roles & ROLE_MASTER);
        assert_int_equal(count_role(q, ROLE_MASTER), 1);
        assert_int_equal(elect_late_joiner(q, &late, &cfg, &p), -EEXIST);
        role_plan_free(p);
        role_plan_free(q);
}

static void test_late_joiner_worker(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info nodes[3] = {mknode(1, 16, 8, 1, 100, true),
                                     mknode(2, 16, 8, 1, 100, false),
                                     mknode(3, 16, 8, 1, 100, false)};
        struct node_info late = mknode(4, 128, 64, 4, 4000, true);
        struct role_plan *p = do_elect(nodes, 3, &cfg), *q = NULL;

        /* Every gap is filled (2 gateways, 1 builder, 2 replicas): a plain worker. */
        assert_int_equal(elect_late_joiner(p, &late, &cfg, &q), 0);
        assert_members_unchanged(p, q);
        assert_int_equal(role_plan_find(q, late.id)->roles, ROLE_WORKER);
        assert_int_equal(role_plan_find(q, late.id)->vrrp_priority, 0);
        role_plan_free(q);

        /* Two builders wanted: the newcomer with an SSD fills the gap. */
        cfg.builders = 2;
        assert_int_equal(elect_late_joiner(p, &late, &cfg, &q), 0);
        assert_members_unchanged(p, q);
        assert_int_equal(role_plan_find(q, late.id)->roles, ROLE_WORKER | ROLE_BUILDER);
        role_plan_free(q);
        role_plan_free(p);
}

static void test_late_joiners_in_id_order(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct node_info first = mknode(1, 16, 8, 1, 100, false);
        struct node_info late[3] = {mknode(7, 8, 4, 1, 0, false), mknode(5, 8, 4, 1, 0, false),
                                    mknode(6, 8, 4, 1, 0, false)};
        struct node_info swapped[3] = {late[2], late[0], late[1]};
        struct role_plan *p = do_elect(&first, 1, &cfg), *a = NULL, *b = NULL;
        size_t gateways = 0;

        assert_int_equal(elect_late_joiners(p, late, 3, &cfg, &a), 0);
        assert_int_equal(elect_late_joiners(p, swapped, 3, &cfg, &b), 0);
        assert_same_plan(a, b);
        assert_int_equal(a->epoch, 3);
        assert_members_unchanged(p, a);
        /* One newcomer filled the gateway gap, another a MySQL replica. */
        for (size_t i = 0; i < 3; i++)
                gateways += !!(role_plan_find(a, late[i].id)->roles & ROLE_GATEWAY);
        assert_int_equal(gateways, 1);
        assert_int_equal(count_role(a, ROLE_MYSQL), 3);
        role_plan_free(a);
        role_plan_free(b);
        role_plan_free(p);
}

/* ---- View JSON ----------------------------------------------------------------- */

static void test_view_fixtures(void **state) {
        (void)state;
        static const char *const files[] = {"data/views/single-node.json",
                                            "data/views/three-nodes.json",
                                            "data/views/five-nodes.json"};
        struct config cfg = base_config();

        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                struct view v = {}, w = {};
                struct role_plan *p = NULL, *q = NULL;
                char *err = NULL, *s = NULL;

                assert_int_equal(view_from_json_file(files[f], &v, &err), 0);
                assert_null(err);
                assert_true(v.n >= 1);
                assert_int_equal(elect(&v, &cfg, &p), 0);
                check_plan(p, v.n, &cfg, v.n >= 3 ? 3 : 1, v.n >= 2 ? 2 : 1);
                /* Round trip: written and read back, the same view and plan. */
                assert_int_equal(view_to_json(&v, true, &s), 0);
                assert_int_equal(view_from_json(s, strlen(s), "roundtrip", &w, &err), 0);
                assert_int_equal(v.n, w.n);
                assert_memory_equal(v.nodes, w.nodes, v.n * sizeof *v.nodes);
                assert_int_equal(elect(&w, &cfg, &q), 0);
                assert_same_plan(p, q);
                free(s);
                role_plan_free(p);
                role_plan_free(q);
                view_done(&v);
                view_done(&w);
        }
}

static void test_five_node_fixture(void **state) {
        (void)state;
        struct config cfg = base_config();
        struct view v = {};
        struct role_plan *p = NULL;

        assert_int_equal(view_from_json_file("data/views/five-nodes.json", &v, NULL), 0);
        assert_int_equal(elect(&v, &cfg, &p), 0);
        assert_int_equal(find_host(p, "node-1")->roles & (ROLE_MASTER | ROLE_GATEWAY | ROLE_MYSQL),
                         ROLE_MASTER | ROLE_GATEWAY | ROLE_MYSQL);
        assert_true(find_host(p, "node-1")->flags & PLAN_BOOTSTRAP);
        assert_true(find_host(p, "node-1")->roles & ROLE_REGISTRY); /* gateway with a data disk */
        assert_true(find_host(p, "node-5")->roles & ROLE_BUILDER);  /* the SSD, and pinned */
        assert_int_equal(v.nodes[4].pinned_roles, ROLE_BUILDER);
        assert_true(find_host(p, "node-3")->roles & ROLE_MASTER); /* 32 GiB beats 16 GiB */
        role_plan_free(p);
        view_done(&v);
}

static void test_view_json_errors(void **state) {
        (void)state;
        static const struct {
                const char *json, *message;
        } cases[] = {
                {"{\"nodes\": [", "invalid JSON at line 1"},
                {"{\"nodes\": []} x", "line 1 column 15"},
                {"[]", "top level: expected an object"},
                {"{\"version\": 2, \"nodes\": []}", "version: unsupported version 2"},
                {"{\"nodez\": []}", "nodez: unknown key"},
                {"{}", "nodes: missing required key"},
                {"{\"nodes\": [{\"id\": \"00\"}]}", "nodes[0].hostname: missing required key"},
#define NODE(extra)                                                                                \
        "{\"id\": \"000102030405060708090a0b0c0d0e0f\", \"hostname\": \"a\", \"cpus\": 2, "        \
        "\"memory_bytes\": 1" extra "}"
                {"{\"nodes\": [" NODE("") ", " NODE(", \"colour\": 1") "]}",
                 "nodes[1].colour: unknown key"},
                {"{\"nodes\": [" NODE(", \"cpus\": -4") "]}",
                 "nodes[0].cpus: expected an integer >= 0"},
                {"{\"nodes\": [" NODE(", \"cpus\": 70000") "]}",
                 "nodes[0].cpus: 70000 is out of range"},
                {"{\"nodes\": [" NODE(", \"cpus\": \"8\"") "]}",
                 "nodes[0].cpus: expected an integer, got a string"},
                {"{\"nodes\": [" NODE(", \"memory_bytes\": 1.5") "]}",
                 "nodes[0].memory_bytes: expected an integer, got a number"},
                {"{\"nodes\": [" NODE(", \"addresses\": [\"192.0.2.300\"]") "]}",
                 "nodes[0].addresses[0]: '192.0.2.300' is not an IPv4"},
                {"{\"nodes\": [" NODE(", \"nics\": [{\"mac\": \"52:54:00:00:00\"}]") "]}",
                 "nodes[0].nics[0].mac: '52:54:00:00:00' is not a MAC"},
                {"{\"nodes\": [" NODE(", \"nics\": [{\"mac\": \"52-54-00-00-00-01\"}]") "]}",
                 "nodes[0].nics[0].mac: '52-54-00-00-00-01' is not a MAC"},
                {"{\"nodes\": [" NODE(", \"nics\": [{\"up\": true}]") "]}",
                 "nodes[0].nics[0]: missing key mac"},
                {"{\"nodes\": [" NODE(", \"disks\": [{\"size_bytes\": 1, \"ssd\": 1}]") "]}",
                 "nodes[0].disks[0].ssd: expected a boolean"},
                {"{\"nodes\": [" NODE(
                         ", \"disks\": [{\"size_bytes\": 1}, {\"size_bytes\": 1}, {\"size_bytes\": "
                         "1}, {\"size_bytes\": 1}, {\"size_bytes\": 1}, {\"size_bytes\": 1}, "
                         "{\"size_bytes\": 1}, {\"size_bytes\": 1}, {\"size_bytes\": 1}, "
                         "{\"size_bytes\": 1}, {\"size_bytes\": 1}, {\"size_bytes\": 1}, "
                         "{\"size_bytes\": 1}, {\"size_bytes\": 1}, {\"size_bytes\": 1}, "
                         "{\"size_bytes\": 1}, {\"size_bytes\": 1}]") "]}",
                 "nodes[0].disks: has 17 entries, at most 16"},
                {"{\"nodes\": [" NODE(", \"pinned_roles\": [\"boss\"]") "]}",
                 "nodes[0].pinned_roles[0]: unknown role 'boss'"},
                {"{\"nodes\": [" NODE(", \"state\": \"happy\"") "]}",
                 "nodes[0].state: unknown state 'happy'"},
                {"{\"nodes\": [" NODE(", \"digest\": \"abcd\"") "]}",
                 "nodes[0].digest: expected 64 hexadecimal digits"},
                {"{\"nodes\": [" NODE(", \"id\": \"000102030405060708090a0b0c0d0e0g\"") "]}",
                 "nodes[0].id: expected 32 hexadecimal digits"},
                {"{\"nodes\": [" NODE(", \"hostname\": \"\"") "]}",
                 "nodes[0].hostname: must be 1 to 63 characters"},
                {"{\"nodes\": [" NODE("") ", " NODE("") "]}",
                 "nodes[1].id: duplicate of nodes[0].id"},
                {"{\"nodes\": [7]}", "nodes[0]: expected an object, got an integer"},
#undef NODE
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct view v = {.n = 99};
                char *err = NULL;

                assert_int_equal(
                        view_from_json(cases[i].json, strlen(cases[i].json), "t.json", &v, &err),
                        -EINVAL);
                assert_non_null(err);
                if (!strstr(err, cases[i].message) || !startswith(err, "t.json: "))
                        fail_msg("case %zu: expected '%s' in '%s'", i, cases[i].message, err);
                assert_int_equal(v.n, 99); /* untouched on failure */
                free(err);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shuffle_determinism),
                cmocka_unit_test(test_digest_ignores_runtime_fields),
                cmocka_unit_test(test_config_changes_digest),
                cmocka_unit_test(test_digest_from_entries),
                cmocka_unit_test(test_bad_views),
                cmocka_unit_test(test_cluster_sizes),
                cmocka_unit_test(test_two_nodes_odd_masters),
                cmocka_unit_test(test_masters_by_memory_cpu_id),
                cmocka_unit_test(test_gateways_by_nics),
                cmocka_unit_test(test_ssd_builder),
                cmocka_unit_test(test_pins),
                cmocka_unit_test(test_conflicting_pins),
                cmocka_unit_test(test_external_services),
                cmocka_unit_test(test_explain_mentions_every_role),
                cmocka_unit_test(test_plan_json),
                cmocka_unit_test(test_late_joiner_fills_gateway),
                cmocka_unit_test(test_late_joiner_worker),
                cmocka_unit_test(test_late_joiners_in_id_order),
                cmocka_unit_test(test_view_fixtures),
                cmocka_unit_test(test_five_node_fixture),
                cmocka_unit_test(test_view_json_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
