/* SPDX-License-Identifier: MIT */
/* Formation state machine (rules: firstboot/PROTOCOL.md, "Formation").
 * Interim implementation written by the lead to integrate the daemon; the formation
 * engineer's version (with its unit tests and the randomized simulation) replaces this
 * file, keeping formation.h. */
#include "formation.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct plan_rec {
        uint8_t digest[DIGEST_LEN];
        struct view members;
};

struct formation {
        uint8_t self[NODE_ID_LEN];
        struct formation_params p;
        plan_digest_fn fn;
        void *ud;
        enum node_state state;
        struct plan_rec cur;
        struct plan_rec hist[FORMATION_HISTORY_MAX];
        size_t n_hist;
        struct plan_rec learned[FORMATION_LEARNED_MAX];
        size_t n_learned;
        uint8_t (*ids)[NODE_ID_LEN];
        size_t n_ids;
        uint64_t changed_ms;
        bool started;
};

static void rec_done(struct plan_rec *r) {
        free(r->members.nodes);
        memset(r, 0, sizeof *r);
}

static int rec_set(struct plan_rec *r, const uint8_t d[DIGEST_LEN], const struct view *v) {
        struct node_info *n = calloc(v->n ? v->n : 1, sizeof *n);

        if (!n)
                return -ENOMEM;
        memcpy(n, v->nodes, v->n * sizeof *n);
        for (size_t i = 0; i < v->n; i++) {
                n[i].state = NODE_DISCOVERING;
                memset(n[i].digest, 0, DIGEST_LEN);
        }
        rec_done(r);
        memcpy(r->digest, d, DIGEST_LEN);
        r->members.nodes = n;
        r->members.n = v->n;
        return 0;
}

static bool rec_names(const struct plan_rec *r, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; i < r->members.n; i++)
                if (node_id_cmp(r->members.nodes[i].id, id) == 0)
                        return true;
        return false;
}

int formation_new(const uint8_t self_id[NODE_ID_LEN], const struct formation_params *params,
                  plan_digest_fn fn, void *userdata, struct formation **ret) {
        struct formation *f = calloc(1, sizeof *f);

        if (!f)
                return -ENOMEM;
        memcpy(f->self, self_id, NODE_ID_LEN);
        f->p = *params;
        f->fn = fn;
        f->ud = userdata;
        *ret = f;
        return 0;
}

struct formation *formation_free(struct formation *f) {
        if (!f)
                return NULL;
        rec_done(&f->cur);
        for (size_t i = 0; i < FORMATION_HISTORY_MAX; i++)
                rec_done(&f->hist[i]);
        for (size_t i = 0; i < FORMATION_LEARNED_MAX; i++)
                rec_done(&f->learned[i]);
        free(f->ids);
        free(f);
        return NULL;
}

static const struct plan_rec *known_plan(const struct formation *f, const uint8_t d[DIGEST_LEN]) {
        if (f->state != NODE_DISCOVERING && memcmp(f->cur.digest, d, DIGEST_LEN) == 0)
                return &f->cur;
        for (size_t i = 0; i < f->n_hist; i++)
                if (memcmp(f->hist[i].digest, d, DIGEST_LEN) == 0)
                        return &f->hist[i];
        for (size_t i = 0; i < f->n_learned; i++)
                if (memcmp(f->learned[i].digest, d, DIGEST_LEN) == 0)
                        return &f->learned[i];
        return NULL;
}

static const struct node_info *find(const struct view *v, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; i < v->n; i++)
                if (node_id_cmp(v->nodes[i].id, id) == 0)
                        return &v->nodes[i];
        return NULL;
}

/* every member other than self announces a state >= min with digest d */
static bool all_members(const struct formation *f, const struct plan_rec *r, const struct view *live,
                        enum node_state min) {
        for (size_t i = 0; i < r->members.n; i++) {
                const struct node_info *n;

                if (node_id_cmp(r->members.nodes[i].id, f->self) == 0)
                        continue;
                n = find(live, r->members.nodes[i].id);
                if (!n || n->state < min || memcmp(n->digest, r->digest, DIGEST_LEN) != 0)
                        return false;
        }
        return true;
}

static int take(struct formation *f, enum node_state st, const struct plan_rec *r) {
        if (r != &f->cur) {
                int e = rec_set(&f->cur, r->digest, &r->members);
                if (e < 0)
                        return e;
        }
        f->state = st;
        return 1;
}

int formation_step(struct formation *f, const struct view *live, uint64_t now_ms) {
        bool changed_membership = !f->started || live->n != f->n_ids;
        int r;

        if (!find(live, f->self))
                return -EINVAL;
        for (size_t i = 0; !changed_membership && i < live->n; i++)
                changed_membership = node_id_cmp(live->nodes[i].id, f->ids[i]) != 0;
        if (changed_membership) {
                void *n = realloc(f->ids, (live->n ? live->n : 1) * NODE_ID_LEN);
                if (!n)
                        return -ENOMEM;
                f->ids = n;
                for (size_t i = 0; i < live->n; i++)
                        memcpy(f->ids[i], live->nodes[i].id, NODE_ID_LEN);
                f->n_ids = live->n;
                f->changed_ms = now_ms;
                f->started = true;
        }
        if (f->state == NODE_COMMITTED)
                return 0;

        /* adoption of a committed plan that names us */
        for (size_t i = 0; i < live->n; i++) {
                const struct node_info *n = &live->nodes[i];
                const struct plan_rec *k;

                if (n->state != NODE_COMMITTED || node_id_cmp(n->id, f->self) == 0)
                        continue;
                k = known_plan(f, n->digest);
                if (!k || !rec_names(k, f->self))
                        continue;
                if (f->state == NODE_LOCKED && memcmp(f->cur.digest, n->digest, DIGEST_LEN) != 0)
                        continue;
                return take(f, NODE_COMMITTED, k);
        }
        if (f->state == NODE_LOCKED) {
                if (all_members(f, &f->cur, live, NODE_LOCKED))
                        return take(f, NODE_COMMITTED, &f->cur);
                return 0;
        }
        /* join rule */
        for (size_t i = 0; i < live->n; i++) {
                const struct node_info *n = &live->nodes[i];
                const struct plan_rec *k;

                if (n->state != NODE_LOCKED || node_id_cmp(n->id, f->self) == 0)
                        continue;
                for (size_t h = 0; h < f->n_hist; h++) {
                        k = &f->hist[h];
                        if (memcmp(k->digest, n->digest, DIGEST_LEN) == 0 && rec_names(k, f->self))
                                return take(f, NODE_LOCKED, k);
                }
        }
        if (live->n >= f->p.expected_nodes && now_ms - f->changed_ms >= f->p.settle_ms) {
                int changed = 0;

                if (f->state != NODE_PROPOSING || changed_membership || f->cur.members.n != live->n) {
                        uint8_t d[DIGEST_LEN];
                        struct view m = { .nodes = calloc(live->n, sizeof *m.nodes), .n = live->n };

                        if (!m.nodes)
                                return -ENOMEM;
                        memcpy(m.nodes, live->nodes, live->n * sizeof *m.nodes);
                        for (size_t i = 0; i < m.n; i++) {
                                m.nodes[i].state = NODE_DISCOVERING;
                                memset(m.nodes[i].digest, 0, DIGEST_LEN);
                        }
                        r = f->fn(&m, f->ud, d);
                        if (r >= 0 && (f->state != NODE_PROPOSING || memcmp(d, f->cur.digest, DIGEST_LEN) != 0)) {
                                r = rec_set(&f->cur, d, &m);
                                if (r >= 0 && !known_plan(f, d)) {
                                        size_t slot = f->n_hist < FORMATION_HISTORY_MAX ? f->n_hist++ : (size_t)(now_ms % FORMATION_HISTORY_MAX);
                                        r = rec_set(&f->hist[slot], d, &m);
                                }
                                f->state = NODE_PROPOSING;
                                changed = 1;
                        }
                        free(m.nodes);
                        if (r < 0)
                                return r;
                }
                if (f->state == NODE_PROPOSING && all_members(f, &f->cur, live, NODE_PROPOSING))
                        return take(f, NODE_LOCKED, &f->cur);
                return changed;
        }
        if (f->state == NODE_PROPOSING) {
                f->state = NODE_DISCOVERING;
                return 1;
        }
        return 0;
}

enum node_state formation_state(const struct formation *f) { return f->state; }
const uint8_t *formation_digest(const struct formation *f) {
        return f->state == NODE_DISCOVERING ? NULL : f->cur.digest;
}
const struct view *formation_members(const struct formation *f) {
        return f->state == NODE_DISCOVERING ? NULL : &f->cur.members;
}

int formation_learn_plan(struct formation *f, const uint8_t digest[DIGEST_LEN], const struct view *members) {
        size_t slot;

        if (known_plan(f, digest))
                return 0;
        slot = f->n_learned < FORMATION_LEARNED_MAX ? f->n_learned++ : 0;
        return rec_set(&f->learned[slot], digest, members);
}

int formation_reset(struct formation *f, const struct view *live) {
        if (f->state == NODE_COMMITTED)
                return -EBUSY;
        for (size_t i = 0; i < live->n; i++)
                if (live->nodes[i].state == NODE_COMMITTED && node_id_cmp(live->nodes[i].id, f->self) != 0)
                        return -EBUSY;
        if (f->state != NODE_LOCKED)
                return 0;
        f->state = NODE_DISCOVERING;
        for (size_t i = 0; i < FORMATION_HISTORY_MAX; i++)
                rec_done(&f->hist[i]);
        f->n_hist = 0;
        return 1;
}

int formation_save(const struct formation *f, char **ret_text) {
        char *buf = NULL, hex[2 * DIGEST_LEN + 1];
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (!m)
                return -ENOMEM;
        fprintf(m, "state %s\n", node_state_to_string(f->state));
        if (f->state == NODE_LOCKED || f->state == NODE_COMMITTED) {
                hex_encode(f->cur.digest, DIGEST_LEN, hex);
                fprintf(m, "digest %s\n", hex);
                for (size_t i = 0; i < f->cur.members.n; i++) {
                        hex_encode(f->cur.members.nodes[i].id, NODE_ID_LEN, hex);
                        fprintf(m, "member %s\n", hex);
                }
        }
        if (fclose(m) != 0)
                return -ENOMEM;
        *ret_text = buf;
        return 0;
}

int formation_load(struct formation *f, const char *text) {
        _cleanup_free_ char *copy = strdup(text);
        enum node_state st = NODE_DISCOVERING;
        uint8_t d[DIGEST_LEN];
        bool have_d = false;
        struct view v = {};
        int r = 0;

        if (!copy)
                return -ENOMEM;
        if (f->state == NODE_LOCKED || f->state == NODE_COMMITTED)
                return -EBUSY;
        for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
                if (startswith(line, "state ")) {
                        const char *s = line + 6;
                        if (streq(s, "locked"))
                                st = NODE_LOCKED;
                        else if (streq(s, "committed"))
                                st = NODE_COMMITTED;
                        else if (!streq(s, "discovering") && !streq(s, "proposing"))
                                r = -EINVAL;
                } else if (startswith(line, "digest ")) {
                        r = hex_decode(line + 7, d, DIGEST_LEN);
                        have_d = r >= 0;
                } else if (startswith(line, "member ")) {
                        struct node_info *n = realloc(v.nodes, (v.n + 1) * sizeof *n);
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        v.nodes = n;
                        memset(&v.nodes[v.n], 0, sizeof *n);
                        r = hex_decode(line + 7, v.nodes[v.n].id, NODE_ID_LEN);
                        v.n++;
                } else
                        r = -EINVAL;
                if (r < 0)
                        break;
        }
        if (r >= 0 && st != NODE_DISCOVERING && (!have_d || v.n == 0))
                r = -EINVAL;
        if (r >= 0 && st != NODE_DISCOVERING) {
                r = rec_set(&f->cur, d, &v);
                if (r >= 0)
                        f->state = st;
        }
        free(v.nodes);
        return r < 0 ? r : 0;
}
