/* SPDX-License-Identifier: MIT */
/* Formation state machine: several instances driven by hand with synthetic views and a
 * fake clock, then a randomized simulation of lossy, reordering clusters with crashes
 * and restarts that checks the property the Promela model checks. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formation.h"
#include "util.h"

#define SETTLE 1000

struct hash_ctx {
        unsigned calls;
        int fail; /* returned instead of a digest when < 0 */
};

/* Stand-in for elect(): a digest of the member ids only. */
static int fake_digest(const struct view *members, void *userdata, uint8_t ret[DIGEST_LEN]) {
        struct hash_ctx *ctx = userdata;
        uint64_t h = 0xcbf29ce484222325ULL;

        if (ctx) {
                ctx->calls++;
                if (ctx->fail < 0)
                        return ctx->fail;
        }
        for (size_t k = 0; k < members->n; k++) {
                assert_int_equal(members->nodes[k].state, NODE_DISCOVERING);
                for (size_t b = 0; b < NODE_ID_LEN; b++)
                        h = (h ^ members->nodes[k].id[b]) * 0x100000001b3ULL;
        }
        for (size_t b = 0; b < DIGEST_LEN; b++) {
                h = (h ^ b) * 0x100000001b3ULL;
                ret[b] = (uint8_t)(h >> 56);
        }
        return 0;
}

static void mkid(unsigned k, uint8_t id[NODE_ID_LEN]) {
        memset(id, 0, NODE_ID_LEN);
        id[0] = 0x10;
        id[NODE_ID_LEN - 1] = (uint8_t)k;
}

/* Digest of the plan of nodes given as a bit mask of ids 0..7. */
static void digest_of(unsigned mask, uint8_t ret[DIGEST_LEN]) {
        struct node_info nodes[8] = {};
        size_t n = 0;

        for (unsigned k = 0; k < 8; k++)
                if (mask & (1u << k))
                        mkid(k, nodes[n++].id);
        assert_int_equal(fake_digest(&(struct view){.nodes = nodes, .n = n}, NULL, ret), 0);
}

/* A synthetic live view: entries are (id, state, digest mask of the announced plan). */
struct entry {
        unsigned id;
        enum node_state state;
        unsigned plan; /* bit mask of the plan the digest is for; 0: none */
};

struct live {
        struct node_info nodes[8];
        struct view v;
};

static const struct view *mkview(struct live *l, const struct entry *e, size_t n) {
        memset(l, 0, sizeof(*l));
        for (size_t k = 0; k < n; k++) {
                struct node_info *ni = &l->nodes[k];
                mkid(e[k].id, ni->id);
                ni->cpus = (uint16_t)(e[k].id + 1);
                ni->state = e[k].state;
                if (e[k].plan)
                        digest_of(e[k].plan, ni->digest);
        }
        l->v = (struct view){.nodes = l->nodes, .n = n};
        return &l->v;
}
#define VIEW(l, ...)                                                                               \
        mkview((l), (const struct entry[]){__VA_ARGS__},                                           \
               sizeof((const struct entry[]){__VA_ARGS__}) / sizeof(struct entry))

static struct formation *mk(unsigned self, unsigned expected, struct hash_ctx *ctx) {
        struct formation_params p = {.expected_nodes = expected, .settle_ms = SETTLE};
        struct formation *f = NULL;
        uint8_t id[NODE_ID_LEN];

        mkid(self, id);
        assert_int_equal(formation_new(id, &p, fake_digest, ctx, &f), 0);
        assert_non_null(f);
        return f;
}

static void assert_digest(const struct formation *f, unsigned plan) {
        uint8_t d[DIGEST_LEN];

        digest_of(plan, d);
        assert_non_null(formation_digest(f));
        assert_memory_equal(formation_digest(f), d, DIGEST_LEN);
}

static unsigned members_mask(const struct formation *f) {
        const struct view *m = formation_members(f);
        unsigned mask = 0;

        assert_non_null(m);
        for (size_t k = 0; k < m->n; k++)
                mask |= 1u << m->nodes[k].id[NODE_ID_LEN - 1];
        return mask;
}

#define D NODE_DISCOVERING
#define P NODE_PROPOSING
#define L NODE_LOCKED
#define C NODE_COMMITTED

/* Every node of `n` sees all the others, with instant delivery. */
static void round_all(struct formation **f, size_t n, uint64_t now) {
        struct node_info nodes[8] = {};

        for (size_t k = 0; k < n; k++) {
                mkid((unsigned)k, nodes[k].id);
                nodes[k].state = formation_state(f[k]);
                if (formation_digest(f[k]))
                        memcpy(nodes[k].digest, formation_digest(f[k]), DIGEST_LEN);
        }
        for (size_t k = 0; k < n; k++)
                assert_in_range(formation_step(f[k], &(struct view){.nodes = nodes, .n = n}, now),
                                0, 1);
}

static void test_three_converge(void **state) {
        (void)state;
        struct formation *f[3];
        uint64_t now = 0;

        for (unsigned k = 0; k < 3; k++)
                f[k] = mk(k, 3, NULL);
        for (; now < SETTLE; now += 100) {
                round_all(f, 3, now);
                for (unsigned k = 0; k < 3; k++)
                        assert_int_equal(formation_state(f[k]), D);
        }
        for (int rounds = 0; rounds < 5; rounds++, now += 100)
                round_all(f, 3, now);
        for (unsigned k = 0; k < 3; k++) {
                assert_int_equal(formation_state(f[k]), C);
                assert_digest(f[k], 0x7);
                assert_int_equal(members_mask(f[k]), 0x7);
                /* the node facts recorded at proposal time are kept */
                assert_int_equal(formation_members(f[k])->nodes[0].state, D);
                formation_free(f[k]);
        }
}

static void test_below_expected(void **state) {
        (void)state;
        struct formation *f[2] = {mk(0, 3, NULL), mk(1, 3, NULL)};

        for (uint64_t now = 0; now < 100 * SETTLE; now += 250)
                round_all(f, 2, now);
        for (unsigned k = 0; k < 2; k++) {
                assert_int_equal(formation_state(f[k]), D);
                assert_null(formation_digest(f[k]));
                assert_null(formation_members(f[k]));
                formation_free(f[k]);
        }
}

static void test_settle_and_repropose(void **state) {
        (void)state;
        struct hash_ctx ctx = {};
        struct formation *a = mk(0, 3, &ctx);
        struct live l;

        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), 0), 0);
        /* peers changing what they announce is not a membership change */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, P, 0x3}, {2, D, 0}), 600), 0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, P, 0x3}, {2, D, 0}), 999), 0);
        assert_int_equal(formation_state(a), D);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, P, 0x3}, {2, D, 0}), 1000), 1);
        assert_int_equal(formation_state(a), P);
        assert_digest(a, 0x7);
        assert_int_equal(ctx.calls, 1);
        /* settled and unchanged: nothing to announce, no new election */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), 1500), 0);
        assert_int_equal(ctx.calls, 1);

        /* a fourth node appears before anyone locked: unsettled, then a new plan */
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}, {3, D, 0}), 1600), 1);
        assert_int_equal(formation_state(a), D);
        assert_null(formation_digest(a));
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}, {3, D, 0}), 2599), 0);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}, {3, D, 0}), 2600), 1);
        assert_int_equal(formation_state(a), P);
        assert_digest(a, 0xf);

        /* back to three members: proposes that plan again after settling */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {2, D, 0}, {3, D, 0}), 3000), 1);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {2, D, 0}, {3, D, 0}), 4000), 1);
        assert_digest(a, 0xd);
        /* dropping below expected_nodes never proposes */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {2, D, 0}), 4100), 1);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {2, D, 0}), 90000), 0);
        assert_int_equal(formation_state(a), D);
        formation_free(a);
}

/* Node 0 proposes {0,1,2} and locks it once 1 and 2 announce it. */
static struct formation *locked_on_012(struct hash_ctx *ctx) {
        struct formation *a = mk(0, 3, ctx);
        struct live l;

        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), 0), 0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), SETTLE), 1);
        /* one member still proposing something else: no lock */
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, P, 0x7}, {1, P, 0x7}, {2, P, 0xf}), SETTLE + 100),
                0);
        assert_int_equal(formation_state(a), P);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, P, 0x7}, {1, P, 0x7}, {2, L, 0x7}), SETTLE + 200),
                1);
        assert_int_equal(formation_state(a), L);
        assert_digest(a, 0x7);
        return a;
}

static void test_locked_keeps_digest(void **state) {
        (void)state;
        struct formation *a = locked_on_012(NULL);
        struct live l;

        /* membership changes, a member vanishes, others propose other plans: still d */
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, L, 0x7}, {1, P, 0xb}, {2, L, 0x7}, {3, P, 0xb}),
                               5000),
                0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, L, 0x7}, {2, L, 0x7}, {3, P, 0xd}), 6000),
                         0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, L, 0x7}, {2, L, 0x7}, {3, P, 0xd}), 60000),
                         0);
        /* a member announcing the digest only as proposing does not let it commit */
        assert_int_equal(formation_step(a, VIEW(&l, {0, L, 0x7}, {1, P, 0x7}, {2, L, 0x7}), 61000),
                         0);
        assert_int_equal(formation_state(a), L);
        assert_digest(a, 0x7);
        assert_int_equal(members_mask(a), 0x7);
        /* every member locked: commit */
        assert_int_equal(formation_step(a, VIEW(&l, {0, L, 0x7}, {1, L, 0x7}, {2, C, 0x7}), 62000),
                         1);
        assert_int_equal(formation_state(a), C);
        assert_digest(a, 0x7);
        formation_free(a);
}

/* Node 0 proposed {0,1,2}, then {0,1,2,3}: both are in its history. */
static struct formation *proposed_twice(void) {
        struct formation *a = mk(0, 3, NULL);
        struct live l;

        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), 0), 0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), SETTLE), 1);
        assert_digest(a, 0x7);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}, {3, D, 0}), 1100), 1);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}, {3, D, 0}), 2100), 1);
        assert_digest(a, 0xf);
        return a;
}

static void test_join_rule(void **state) {
        (void)state;
        struct formation *a = proposed_twice(), *fresh = mk(0, 3, NULL);
        struct live lm, l;
        uint8_t d[DIGEST_LEN];

        /* an earlier proposal merely proposed by a peer: no lock */
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, P, 0xf}, {1, P, 0x7}, {2, P, 0x7}, {3, P, 0xf}),
                               2200),
                0);
        assert_int_equal(formation_state(a), P);
        /* a peer locked a plan never proposed here: no lock */
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, P, 0xf}, {1, L, 0xe}, {2, P, 0x7}, {3, P, 0xf}),
                               2300),
                0);
        assert_int_equal(formation_state(a), P);
        /* a peer locked a plan from our history that names us: join it */
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, P, 0xf}, {1, L, 0x7}, {2, P, 0x7}, {3, P, 0xf}),
                               2400),
                1);
        assert_int_equal(formation_state(a), L);
        assert_digest(a, 0x7);
        assert_int_equal(members_mask(a), 0x7);
        /* its members as recorded at proposal time, node facts included */
        assert_int_equal(formation_members(a)->nodes[2].cpus, 3);

        /* a node that never proposed {0,1,2} does not join it, even knowing the plan */
        assert_int_equal(formation_step(fresh, VIEW(&l, {0, D, 0}, {1, L, 0x7}, {2, L, 0x7}), 0),
                         0);
        assert_int_equal(formation_state(fresh), D);
        digest_of(0x7, d);
        assert_int_equal(formation_learn_plan(fresh, d, VIEW(&lm, {0, D, 0}, {1, D, 0}, {2, D, 0})),
                         0);
        assert_int_equal(formation_step(fresh, VIEW(&l, {0, D, 0}, {1, L, 0x7}, {2, L, 0x7}), 100),
                         0);
        assert_int_equal(formation_state(fresh), D);
        formation_free(fresh);
        formation_free(a);
}

static void test_adopt_from_history(void **state) {
        (void)state;
        struct formation *a = proposed_twice();
        struct live l;

        assert_int_equal(
                formation_step(a, VIEW(&l, {0, P, 0xf}, {1, C, 0x7}, {2, P, 0xf}, {3, P, 0xf}),
                               2200),
                1);
        assert_int_equal(formation_state(a), C);
        assert_digest(a, 0x7);
        assert_int_equal(members_mask(a), 0x7);
        formation_free(a);
}

static void test_adopt_learned_plan(void **state) {
        (void)state;
        struct formation *a = mk(0, 3, NULL);
        struct live lm, l;
        uint8_t d[DIGEST_LEN];

        /* committed plan unknown here: nothing to adopt */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, C, 0xb}, {3, C, 0xb}), 0), 0);
        assert_int_equal(formation_state(a), D);

        /* learned, but it does not name us: still nothing */
        digest_of(0xe, d);
        assert_int_equal(formation_learn_plan(a, d, VIEW(&lm, {1, D, 0}, {2, D, 0}, {3, D, 0})), 0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, C, 0xe}, {3, C, 0xe}), 100), 0);
        assert_int_equal(formation_state(a), D);

        /* learned and naming us: adopt it, with the learned member ids */
        digest_of(0xb, d);
        assert_int_equal(formation_learn_plan(a, d, VIEW(&lm, {0, D, 0}, {1, D, 0}, {3, D, 0})), 0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, C, 0xb}, {3, C, 0xb}), 200), 1);
        assert_int_equal(formation_state(a), C);
        assert_digest(a, 0xb);
        assert_int_equal(members_mask(a), 0xb);
        /* committed is final */
        assert_int_equal(formation_step(a, VIEW(&l, {0, C, 0xb}, {1, D, 0}, {2, C, 0xe}), 300), 0);
        assert_digest(a, 0xb);

        /* malformed member lists are refused */
        assert_int_equal(formation_learn_plan(a, d, VIEW(&lm, {1, D, 0}, {0, D, 0})), -EINVAL);
        assert_int_equal(formation_learn_plan(a, d, VIEW(&lm, {1, D, 0}, {1, D, 0})), -EINVAL);
        assert_int_equal(formation_learn_plan(a, d, &(struct view){}), -EINVAL);
        formation_free(a);
}

static void test_locked_never_adopts_other(void **state) {
        (void)state;
        struct formation *a = locked_on_012(NULL);
        struct live lm, l;
        uint8_t d[DIGEST_LEN];

        /* {0,1,3} names us and is known, but we are locked on {0,1,2} */
        digest_of(0xb, d);
        assert_int_equal(formation_learn_plan(a, d, VIEW(&lm, {0, D, 0}, {1, D, 0}, {3, D, 0})), 0);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, L, 0x7}, {1, C, 0xb}, {2, L, 0x7}, {3, C, 0xb}),
                               3000),
                0);
        assert_int_equal(formation_state(a), L);
        assert_digest(a, 0x7);
        /* COMMITTED of our own lock from a member counts for the commit */
        assert_int_equal(formation_step(a, VIEW(&l, {0, L, 0x7}, {1, C, 0x7}, {2, L, 0x7}), 3100),
                         1);
        assert_int_equal(formation_state(a), C);
        formation_free(a);
}

static void test_reset(void **state) {
        (void)state;
        struct formation *a = locked_on_012(NULL), *b = mk(1, 3, NULL);
        struct live l;

        /* not locked: nothing to release */
        assert_int_equal(formation_reset(b, VIEW(&l, {1, D, 0}, {2, D, 0})), 0);
        formation_free(b);

        /* member 1 is gone for good; a peer announces COMMITTED: refused */
        assert_int_equal(formation_reset(a, VIEW(&l, {0, L, 0x7}, {2, L, 0x7}, {3, C, 0xd})),
                         -EBUSY);
        assert_int_equal(formation_state(a), L);
        assert_int_equal(formation_reset(a, VIEW(&l, {0, L, 0x7}, {2, L, 0x7}, {3, D, 0})), 1);
        assert_int_equal(formation_state(a), D);
        assert_null(formation_digest(a));

        /* the old lock is forgotten: member 2 still announcing it does not pull us back,
         * and the settle timer starts again */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {2, L, 0x7}, {3, D, 0}), 10000), 0);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {2, L, 0x7}, {3, D, 0}), 10000 + SETTLE - 1),
                0);
        assert_int_equal(formation_state(a), D);
        assert_int_equal(
                formation_step(a, VIEW(&l, {0, D, 0}, {2, L, 0x7}, {3, D, 0}), 10000 + SETTLE), 1);
        assert_int_equal(formation_state(a), P);
        assert_digest(a, 0xd);

        /* once committed, reset is refused */
        assert_int_equal(formation_step(a, VIEW(&l, {0, P, 0xd}, {2, P, 0xd}, {3, P, 0xd}), 12000),
                         1);
        assert_int_equal(formation_state(a), L);
        assert_int_equal(formation_step(a, VIEW(&l, {0, L, 0xd}, {2, L, 0xd}, {3, L, 0xd}), 12100),
                         1);
        assert_int_equal(formation_state(a), C);
        assert_int_equal(formation_reset(a, VIEW(&l, {0, C, 0xd}, {2, L, 0xd}, {3, L, 0xd})),
                         -EBUSY);
        assert_int_equal(formation_state(a), C);
        formation_free(a);
}

static void test_save_load(void **state) {
        (void)state;
        struct formation *a = locked_on_012(NULL), *b, *c;
        _cleanup_free_ char *text = NULL, *text2 = NULL, *text3 = NULL;
        struct live l;

        assert_int_equal(formation_save(a, &text), 0);
        assert_true(startswith(text, "rainboot-formation 1\nstate locked\ndigest "));
        assert_non_null(strstr(text, "\nmembers 3\nmember 10000000000000000000000000000000\n"));

        /* a restart: the lock survives, member ids only */
        b = mk(0, 3, NULL);
        assert_int_equal(formation_load(b, text), 0);
        assert_int_equal(formation_state(b), L);
        assert_digest(b, 0x7);
        assert_int_equal(members_mask(b), 0x7);
        assert_int_equal(formation_members(b)->nodes[1].cpus, 0);
        assert_int_equal(formation_save(b, &text2), 0);
        assert_string_equal(text, text2);
        /* it does not propose the new membership, and commits its lock */
        assert_int_equal(formation_step(b,
                                        VIEW(&l, {0, D, 0}, {1, P, 0xf}, {2, L, 0x7}, {3, P, 0xf}),
                                        50000),
                         0);
        assert_int_equal(formation_step(b,
                                        VIEW(&l, {0, D, 0}, {1, P, 0xf}, {2, L, 0x7}, {3, P, 0xf}),
                                        90000),
                         0);
        assert_int_equal(formation_state(b), L);
        assert_int_equal(
                formation_step(b, VIEW(&l, {0, L, 0x7}, {1, L, 0x7}, {2, L, 0x7}, {3, P, 0xf}),
                               90100),
                1);
        assert_int_equal(formation_state(b), C);
        /* loading once stepped, or on top of a lock, is refused */
        assert_int_equal(formation_load(b, text), -EBUSY);
        assert_int_equal(formation_load(a, text), -EBUSY);

        assert_int_equal(formation_save(b, &text3), 0);
        assert_true(startswith(text3, "rainboot-formation 1\nstate committed\n"));
        c = mk(0, 3, NULL);
        assert_int_equal(formation_load(c, text3), 0);
        assert_int_equal(formation_state(c), C);
        assert_digest(c, 0x7);
        formation_free(c);

        /* an unlocked node saves no plan; loading that leaves it discovering */
        c = mk(0, 3, NULL);
        free(text3);
        assert_int_equal(formation_save(c, &text3), 0);
        assert_string_equal(text3, "rainboot-formation 1\nstate discovering\n");
        assert_int_equal(formation_load(c, text3), 0);
        assert_int_equal(formation_state(c), D);
        formation_free(c);

        formation_free(b);
        formation_free(a);
}

static void test_load_rejects_garbage(void **state) {
        (void)state;
        static const char *const bad[] = {
                "",
                "\n",
                "garbage",
                "rainboot-formation 2\nstate discovering\n",
                "rainboot-formation 1\nstate discovering",
                "rainboot-formation 1\nstate discovering\nextra\n",
                "rainboot-formation 1\nstate proposing\n",
                "rainboot-formation 1\nstate  locked\n",
                "rainboot-formation 1\nstate locked\n",
                "rainboot-formation 1\nstate locked\ndigest 00\nmembers 1\nmember "
                "10000000000000000000000000000000\n",
                "rainboot-formation 1\nstate locked\ndigest "
                "zz00000000000000000000000000000000000000000000000000000000000000\nmembers 1\n"
                "member 10000000000000000000000000000000\n",
                /* self (…00) is not a member */
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 1\n"
                "member 10000000000000000000000000000001\n",
                /* count does not match */
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 2\n"
                "member 10000000000000000000000000000000\n",
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 0\n",
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 01\n"
                "member 10000000000000000000000000000000\n",
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 1025\n",
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers -1\n",
                /* unsorted, then duplicate */
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 2\n"
                "member 10000000000000000000000000000001\nmember "
                "10000000000000000000000000000000\n",
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 2\n"
                "member 10000000000000000000000000000000\nmember "
                "10000000000000000000000000000000\n",
                /* trailing data */
                "rainboot-formation 1\nstate locked\ndigest "
                "0000000000000000000000000000000000000000000000000000000000000000\nmembers 1\n"
                "member 10000000000000000000000000000000\n\n",
        };
        struct formation *a = locked_on_012(NULL), *b;
        _cleanup_free_ char *text = NULL;
        size_t len;

        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                b = mk(0, 3, NULL);
                if (formation_load(b, bad[k]) != -EINVAL)
                        fail_msg("accepted bad text #%zu", k);
                assert_int_equal(formation_state(b), D);
                formation_free(b);
        }

        /* every proper prefix of a valid lock is refused */
        assert_int_equal(formation_save(a, &text), 0);
        len = strlen(text);
        for (size_t cut = 0; cut < len; cut++) {
                _cleanup_free_ char *prefix = strndup(text, cut);
                assert_non_null(prefix);
                b = mk(0, 3, NULL);
                if (formation_load(b, prefix) != -EINVAL)
                        fail_msg("accepted a save cut at %zu bytes", cut);
                assert_int_equal(formation_state(b), D);
                formation_free(b);
        }
        b = mk(0, 3, NULL);
        assert_int_equal(formation_load(b, text), 0);
        formation_free(b);
        formation_free(a);
}

static void test_bad_input(void **state) {
        (void)state;
        struct formation_params p0 = {.expected_nodes = 0};
        struct hash_ctx ctx = {.fail = -EIO};
        struct formation *a = mk(0, 3, &ctx), *x = NULL;
        uint8_t id[NODE_ID_LEN];
        struct live l;

        mkid(0, id);
        assert_int_equal(formation_new(id, &p0, fake_digest, NULL, &x), -EINVAL);
        assert_null(x);
        /* unsorted, duplicate, without self */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {2, D, 0}, {1, D, 0}), 0), -EINVAL);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {1, D, 0}), 0), -EINVAL);
        assert_int_equal(formation_step(a, VIEW(&l, {1, D, 0}, {2, D, 0}, {3, D, 0}), 0), -EINVAL);
        assert_int_equal(formation_reset(a, VIEW(&l, {1, D, 0}, {2, D, 0})), -EINVAL);

        /* the digest function's error is returned, and nothing is proposed */
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), 0), 0);
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), SETTLE),
                         -EIO);
        assert_int_equal(formation_state(a), D);
        ctx.fail = 0;
        assert_int_equal(formation_step(a, VIEW(&l, {0, D, 0}, {1, D, 0}, {2, D, 0}), SETTLE + 1),
                         1);
        assert_digest(a, 0x7);
        formation_free(a);
}

/* ---- randomized simulation ----------------------------------------------------------- */

#define SIM_MAX   6
#define SIM_TICK  100 /* ms per tick: the announce interval */
#define SIM_QUEUE 4096

struct rng {
        uint64_t s;
};

static uint64_t rnd(struct rng *r) {
        r->s ^= r->s << 13;
        r->s ^= r->s >> 7;
        r->s ^= r->s << 17;
        return r->s;
}

static unsigned rnd_below(struct rng *r, unsigned n) {
        return (unsigned)(rnd(r) % n);
}

static bool chance(struct rng *r, unsigned per_mille) {
        return rnd_below(r, 1000) < per_mille;
}

struct sim_msg {
        unsigned from, to;
        uint64_t seq, at;
        enum node_state state;
        uint8_t digest[DIGEST_LEN];
};

struct sim_peer {
        bool heard;
        uint64_t at, seq;
        enum node_state state;
        uint8_t digest[DIGEST_LEN];
};

struct sim_node {
        struct formation *f;
        uint8_t id[NODE_ID_LEN];
        unsigned start; /* tick it boots */
        bool crashed;
        uint64_t seq;
        struct sim_peer peer[SIM_MAX];
        char *saved; /* what it persisted: its lock or commit */
        bool locked; /* ever locked in this run (there is no reset here) */
        uint8_t lock[DIGEST_LEN];
};

struct sim {
        uint64_t seed;
        struct rng rng;
        unsigned n;
        unsigned expiry; /* ticks without a message before a peer leaves the view */
        unsigned drop, reorder, crash, restart, cut, heal, mute; /* per mille */
        unsigned mute_len;
        bool link_down[SIM_MAX][SIM_MAX]; /* [from][to]: one-way partitions */
        uint64_t mute_until[SIM_MAX];     /* a node whose datagrams all vanish */
        struct sim_node node[SIM_MAX];
        struct sim_msg q[SIM_QUEUE];
        size_t nq;
};

static struct formation *sim_boot(struct sim_node *sn) {
        struct formation_params p = {.expected_nodes = 3, .settle_ms = 5 * SIM_TICK};
        struct formation *f = NULL;

        assert_int_equal(formation_new(sn->id, &p, fake_digest, NULL, &f), 0);
        if (sn->saved)
                assert_int_equal(formation_load(f, sn->saved), 0);
        return f;
}

static void sim_deliver(struct sim *s, uint64_t tick) {
        size_t k = 0;

        /* due messages in random order: swap a random due one to the front each time */
        while (k < s->nq) {
                size_t pick = k + rnd_below(&s->rng, (unsigned)(s->nq - k));
                struct sim_msg m = s->q[pick];
                struct sim_node *to;
                struct sim_peer *pe;

                if (m.at > tick) {
                        /* not yet: keep it, look at the next one */
                        s->q[pick] = s->q[k];
                        s->q[k++] = m;
                        continue;
                }
                s->q[pick] = s->q[--s->nq];
                to = &s->node[m.to];
                if (to->crashed || tick < to->start)
                        continue;
                pe = &to->peer[m.from];
                /* The daemon keeps the highest counter; a lossy run also lets an older
                 * datagram through now and then, as a worst case. */
                if (pe->heard && m.seq < pe->seq && !chance(&s->rng, s->reorder))
                        continue;
                pe->heard = true;
                pe->at = tick;
                pe->seq = m.seq;
                pe->state = m.state;
                memcpy(pe->digest, m.digest, DIGEST_LEN);
        }
}

static void sim_links(struct sim *s, uint64_t tick) {
        for (unsigned a = 0; a < s->n; a++) {
                for (unsigned b = 0; b < s->n; b++)
                        if (chance(&s->rng, s->link_down[a][b] ? s->heal : s->cut))
                                s->link_down[a][b] = !s->link_down[a][b];
                if (s->mute_until[a] == tick)
                        memset(s->link_down[a], 0, sizeof(s->link_down[a]));
                if (s->mute_until[a] <= tick && chance(&s->rng, s->mute)) {
                        s->mute_until[a] = tick + 1 + rnd_below(&s->rng, s->mute_len);
                        memset(s->link_down[a], 1, sizeof(s->link_down[a]));
                }
        }
}

static int cmp_node_info(const void *a, const void *b) {
        return node_id_cmp(((const struct node_info *)a)->id, ((const struct node_info *)b)->id);
}

/* Some PLAN datagram from a committed peer reaches this node. */
static void sim_learn(struct sim *s, unsigned k, const struct sim_peer *pe, unsigned from) {
        const struct view *m = formation_members(s->node[from].f);

        if (pe->state != NODE_COMMITTED || !m || !chance(&s->rng, 300))
                return;
        if (formation_state(s->node[from].f) != NODE_COMMITTED ||
            memcmp(formation_digest(s->node[from].f), pe->digest, DIGEST_LEN) != 0)
                return;
        assert_int_equal(formation_learn_plan(s->node[k].f, pe->digest, m), 0);
}

static void sim_step(struct sim *s, unsigned k, uint64_t tick) {
        struct sim_node *sn = &s->node[k];
        struct node_info nodes[SIM_MAX] = {};
        size_t n = 0;
        int r;

        memcpy(nodes[n++].id, sn->id, NODE_ID_LEN);
        for (unsigned j = 0; j < s->n; j++) {
                struct sim_peer *pe = &sn->peer[j];

                if (j == k || !pe->heard)
                        continue;
                if (tick - pe->at > s->expiry) {
                        pe->heard = false;
                        continue;
                }
                sim_learn(s, k, pe, j);
                memcpy(nodes[n].id, s->node[j].id, NODE_ID_LEN);
                nodes[n].state = pe->state;
                memcpy(nodes[n].digest, pe->digest, DIGEST_LEN);
                n++;
        }
        qsort(nodes, n, sizeof(nodes[0]), cmp_node_info);
        r = formation_step(sn->f, &(struct view){.nodes = nodes, .n = n}, tick * SIM_TICK);
        assert_in_range(r, 0, 1);
        if (r == 1 && formation_state(sn->f) >= NODE_LOCKED) {
                /* persisted before it is announced */
                free(sn->saved);
                sn->saved = NULL;
                assert_int_equal(formation_save(sn->f, &sn->saved), 0);
        }
        if (sn->locked) {
                /* a lock never changes or goes away, restarts included */
                assert_in_range(formation_state(sn->f), NODE_LOCKED, NODE_COMMITTED);
                assert_memory_equal(formation_digest(sn->f), sn->lock, DIGEST_LEN);
        } else if (formation_state(sn->f) >= NODE_LOCKED) {
                sn->locked = true;
                memcpy(sn->lock, formation_digest(sn->f), DIGEST_LEN);
        }
}

static void sim_send(struct sim *s, unsigned k, uint64_t tick) {
        struct sim_node *sn = &s->node[k];

        sn->seq++;
        for (unsigned j = 0; j < s->n; j++) {
                struct sim_msg *m;

                if (j == k || s->link_down[k][j] || chance(&s->rng, s->drop) || s->nq == SIM_QUEUE)
                        continue;
                m = &s->q[s->nq++];
                *m = (struct sim_msg){.from = k,
                                      .to = j,
                                      .seq = sn->seq,
                                      .at = tick + rnd_below(&s->rng, 4),
                                      .state = formation_state(sn->f)};
                if (formation_digest(sn->f))
                        memcpy(m->digest, formation_digest(sn->f), DIGEST_LEN);
        }
}

/* The safety property of the model: two different committed plans share no node. Also
 * every committed node is named by its plan. Checked over crashed nodes too. */
static void sim_check(const struct sim *s) {
        for (unsigned a = 0; a < s->n; a++) {
                const struct formation *fa = s->node[a].f;
                const struct view *ma;

                if (formation_state(fa) != NODE_COMMITTED)
                        continue;
                ma = formation_members(fa);
                assert_non_null(ma);
                bool named = false;
                for (size_t x = 0; x < ma->n; x++)
                        named = named || node_id_cmp(ma->nodes[x].id, s->node[a].id) == 0;
                assert_true(named);
                for (unsigned b = a + 1; b < s->n; b++) {
                        const struct formation *fb = s->node[b].f;
                        const struct view *mb;

                        if (formation_state(fb) != NODE_COMMITTED ||
                            memcmp(formation_digest(fa), formation_digest(fb), DIGEST_LEN) == 0)
                                continue;
                        mb = formation_members(fb);
                        for (size_t x = 0; x < ma->n; x++)
                                for (size_t y = 0; y < mb->n; y++)
                                        if (node_id_cmp(ma->nodes[x].id, mb->nodes[y].id) == 0)
                                                fail_msg("seed %" PRIu64
                                                         ": nodes %u and %u committed "
                                                         "different plans sharing a node",
                                                         s->seed, a, b);
                }
        }
}

/* Some plan is committed by every one of its members. */
static bool sim_formed(const struct sim *s) {
        for (unsigned a = 0; a < s->n; a++) {
                const struct formation *fa = s->node[a].f;
                const struct view *m;
                bool all = true;

                if (formation_state(fa) != NODE_COMMITTED)
                        continue;
                m = formation_members(fa);
                for (size_t x = 0; x < m->n && all; x++) {
                        unsigned j = m->nodes[x].id[NODE_ID_LEN - 1];
                        all = j < s->n && formation_state(s->node[j].f) == NODE_COMMITTED &&
                              memcmp(formation_digest(s->node[j].f), formation_digest(fa),
                                     DIGEST_LEN) == 0;
                }
                if (all)
                        return true;
        }
        return false;
}

/* One run; returns whether it formed. */
static bool sim_run(uint64_t seed, bool lossy) {
        struct sim *s = calloc(1, sizeof(*s));
        unsigned ticks = 600;
        bool formed;

        assert_non_null(s);
        s->seed = seed;
        s->rng.s = seed * 0x9e3779b97f4a7c15ULL + 1;
        s->n = 3 + rnd_below(&s->rng, SIM_MAX - 2);
        s->expiry = 10;
        if (lossy) {
                static const unsigned drops[] = {20, 50, 200, 500};
                s->drop = drops[rnd_below(&s->rng, ELEMENTSOF(drops))];
                s->expiry = 2 + rnd_below(&s->rng, 9);
                s->reorder = 300;
                s->crash = 2;
                s->restart = 3;
                if (chance(&s->rng, 500)) {
                        s->cut = 10 + rnd_below(&s->rng, 50);
                        s->heal = 50 + rnd_below(&s->rng, 200);
                }
                /* A node that hears but is not heard is what splits a careless protocol:
                 * it sees the others agree while they move on without it. */
                s->mute = rnd_below(&s->rng, 50);
                s->mute_len = 1 + rnd_below(&s->rng, 40);
        }
        for (unsigned k = 0; k < s->n; k++) {
                mkid(k, s->node[k].id);
                s->node[k].start = rnd_below(&s->rng, 30);
                s->node[k].f = sim_boot(&s->node[k]);
        }

        for (uint64_t tick = 0; tick < ticks; tick++) {
                sim_links(s, tick);
                sim_deliver(s, tick);
                for (unsigned k = 0; k < s->n; k++) {
                        struct sim_node *sn = &s->node[k];

                        if (sn->crashed || tick < sn->start)
                                continue;
                        if (chance(&s->rng, s->crash)) {
                                sn->crashed = true; /* for good: it keeps its last state */
                                continue;
                        }
                        if (chance(&s->rng, s->restart)) {
                                formation_free(sn->f);
                                sn->f = sim_boot(sn);
                                memset(sn->peer, 0, sizeof(sn->peer));
                        }
                        sim_step(s, k, tick);
                        sim_send(s, k, tick);
                }
                sim_check(s);
        }

        formed = sim_formed(s);
        if (!lossy && !formed)
                fail_msg("seed %" PRIu64 ": %u nodes, no loss, no crash, and no plan committed "
                         "by all its members",
                         seed, s->n);
        for (unsigned k = 0; k < s->n; k++) {
                formation_free(s->node[k].f);
                free(s->node[k].saved);
        }
        free(s);
        return formed;
}

static void test_simulation_lossless(void **state) {
        (void)state;
        for (uint64_t seed = 1; seed <= 300; seed++)
                assert_true(sim_run(seed, false));
}

static void test_simulation_lossy(void **state) {
        (void)state;
        unsigned formed = 0, runs = 2000;

        for (uint64_t seed = 1000; seed < 1000 + runs; seed++)
                formed += sim_run(seed, true);
        /* not vacuous: most lossy runs still commit */
        print_message("# %u of %u lossy runs formed\n", formed, runs);
        assert_true(formed > runs / 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_three_converge),
                cmocka_unit_test(test_below_expected),
                cmocka_unit_test(test_settle_and_repropose),
                cmocka_unit_test(test_locked_keeps_digest),
                cmocka_unit_test(test_join_rule),
                cmocka_unit_test(test_adopt_from_history),
                cmocka_unit_test(test_adopt_learned_plan),
                cmocka_unit_test(test_locked_never_adopts_other),
                cmocka_unit_test(test_reset),
                cmocka_unit_test(test_save_load),
                cmocka_unit_test(test_load_rejects_garbage),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_simulation_lossless),
                cmocka_unit_test(test_simulation_lossy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
