/* SPDX-License-Identifier: MIT */
#include "formation.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SAVE_HEADER "rainboot-formation 1"

struct plan_rec {
        uint8_t digest[DIGEST_LEN];
        struct view members; /* owned, sorted by id */
};

struct formation {
        uint8_t self[NODE_ID_LEN];
        struct formation_params params;
        plan_digest_fn digest_fn;
        void *userdata;

        enum node_state state;
        struct plan_rec plan; /* proposed, locked or committed; empty while DISCOVERING */

        /* Ids of the live view and when they last changed: the settle timer. */
        uint8_t (*membership)[NODE_ID_LEN];
        size_t n_membership;
        bool membership_known;
        uint64_t membership_since;
        bool proposed; /* already proposed for this membership */
        bool stepped;

        struct plan_rec history[FORMATION_HISTORY_MAX]; /* ring: the oldest is overwritten */
        size_t n_history, history_next;
        struct plan_rec learned[FORMATION_LEARNED_MAX];
        size_t n_learned, learned_next;
};

static void plan_rec_clear(struct plan_rec *r) {
        free(r->members.nodes);
        *r = (struct plan_rec){};
}

/* Copy of src's members with the announcement fields cleared, so a plan never depends
 * on what the members happened to announce when it was recorded. */
static int plan_rec_make(const uint8_t digest[DIGEST_LEN], const struct view *members,
                         struct plan_rec *ret) {
        struct node_info *nodes;

        nodes = calloc(members->n ?: 1, sizeof(*nodes));
        if (!nodes)
                return -ENOMEM;
        if (members->n > 0)
                memcpy(nodes, members->nodes, members->n * sizeof(*nodes));
        for (size_t k = 0; k < members->n; k++) {
                nodes[k].state = NODE_DISCOVERING;
                memset(nodes[k].digest, 0, DIGEST_LEN);
        }
        plan_rec_clear(ret);
        memcpy(ret->digest, digest, DIGEST_LEN);
        ret->members = (struct view){.nodes = nodes, .n = members->n};
        return 0;
}

static int plan_rec_copy(const struct plan_rec *src, struct plan_rec *ret) {
        return plan_rec_make(src->digest, &src->members, ret);
}

/* Sorted by id with no duplicates, and naming `self` when given. */
static int view_validate(const struct view *v, const uint8_t *self) {
        bool has_self = !self;

        if (!v || (v->n > 0 && !v->nodes))
                return -EINVAL;
        for (size_t k = 0; k < v->n; k++) {
                if (k > 0 && node_id_cmp(v->nodes[k - 1].id, v->nodes[k].id) >= 0)
                        return -EINVAL;
                if (self && node_id_cmp(v->nodes[k].id, self) == 0)
                        has_self = true;
        }
        return has_self ? 0 : -EINVAL;
}

static const struct node_info *view_find(const struct view *v, const uint8_t id[NODE_ID_LEN]) {
        size_t lo = 0, hi = v->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = node_id_cmp(v->nodes[mid].id, id);
                if (c == 0)
                        return &v->nodes[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static bool digest_eq(const uint8_t a[DIGEST_LEN], const uint8_t b[DIGEST_LEN]) {
        return memcmp(a, b, DIGEST_LEN) == 0;
}

static bool plan_names(const struct plan_rec *r, const uint8_t id[NODE_ID_LEN]) {
        return view_find(&r->members, id) != NULL;
}

static bool is_self(const struct formation *f, const struct node_info *n) {
        return node_id_cmp(n->id, f->self) == 0;
}

/* Every member of the plan but us announces its digest in a state >= min_state. */
static bool all_members_announce(const struct formation *f, const struct view *live,
                                 enum node_state min_state) {
        for (size_t k = 0; k < f->plan.members.n; k++) {
                const struct node_info *m = &f->plan.members.nodes[k], *p;

                if (is_self(f, m))
                        continue;
                p = view_find(live, m->id);
                if (!p || p->state < min_state || !digest_eq(p->digest, f->plan.digest))
                        return false;
        }
        return true;
}

static const struct plan_rec *history_find(const struct formation *f,
                                           const uint8_t digest[DIGEST_LEN]) {
        for (size_t k = 0; k < f->n_history; k++)
                if (digest_eq(f->history[k].digest, digest))
                        return &f->history[k];
        return NULL;
}

/* A plan we can commit to: our own proposal, lock or history, or a learned PLAN. */
static const struct plan_rec *known_plan(const struct formation *f,
                                         const uint8_t digest[DIGEST_LEN]) {
        const struct plan_rec *r;

        if (f->state != NODE_DISCOVERING && digest_eq(f->plan.digest, digest))
                return &f->plan;
        r = history_find(f, digest);
        if (r)
                return r;
        for (size_t k = 0; k < f->n_learned; k++)
                if (digest_eq(f->learned[k].digest, digest))
                        return &f->learned[k];
        return NULL;
}

static int ring_add(struct plan_rec *ring, size_t max, size_t *n, size_t *next,
                    const struct plan_rec *r) {
        int e = plan_rec_copy(r, &ring[*next]);

        if (e < 0)
                return e;
        *next = (*next + 1) % max;
        if (*n < max)
                (*n)++;
        return 0;
}

static void forget_plans(struct formation *f) {
        for (size_t k = 0; k < FORMATION_HISTORY_MAX; k++)
                plan_rec_clear(&f->history[k]);
        f->n_history = f->history_next = 0;
        plan_rec_clear(&f->plan);
}

int formation_new(const uint8_t self_id[NODE_ID_LEN], const struct formation_params *params,
                  plan_digest_fn fn, void *userdata, struct formation **ret) {
        struct formation *f;

        if (!self_id || !params || params->expected_nodes < 1 || !fn || !ret)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        memcpy(f->self, self_id, NODE_ID_LEN);
        f->params = *params;
        f->digest_fn = fn;
        f->userdata = userdata;
        f->state = NODE_DISCOVERING;
        *ret = f;
        return 0;
}

struct formation *formation_free(struct formation *f) {
        if (!f)
                return NULL;
        forget_plans(f);
        for (size_t k = 0; k < FORMATION_LEARNED_MAX; k++)
                plan_rec_clear(&f->learned[k]);
        free(f->membership);
        free(f);
        return NULL;
}

static bool membership_equal(const struct formation *f, const struct view *live) {
        if (!f->membership_known || f->n_membership != live->n)
                return false;
        for (size_t k = 0; k < live->n; k++)
                if (node_id_cmp(f->membership[k], live->nodes[k].id) != 0)
                        return false;
        return true;
}

/* A new membership restarts the settle timer, and an unlocked node stops proposing the
 * plan of the old one. The peers' announcements do not count as a change. */
static int track_membership(struct formation *f, const struct view *live, uint64_t now_ms) {
        uint8_t(*ids)[NODE_ID_LEN];

        if (membership_equal(f, live))
                return 0;
        ids = calloc(live->n, sizeof(*ids));
        if (!ids)
                return -ENOMEM;
        for (size_t k = 0; k < live->n; k++)
                memcpy(ids[k], live->nodes[k].id, NODE_ID_LEN);
        free(f->membership);
        f->membership = ids;
        f->n_membership = live->n;
        f->membership_known = true;
        f->membership_since = now_ms;
        f->proposed = false;
        if (f->state == NODE_PROPOSING) {
                plan_rec_clear(&f->plan);
                f->state = NODE_DISCOVERING;
        }
        return 0;
}

static int maybe_propose(struct formation *f, const struct view *live, uint64_t now_ms) {
        static const uint8_t unknown[DIGEST_LEN];
        struct plan_rec rec = {};
        int r;

        if (f->proposed || live->n < f->params.expected_nodes || now_ms < f->membership_since ||
            now_ms - f->membership_since < f->params.settle_ms)
                return 0;

        r = plan_rec_make(unknown, live, &rec);
        if (r < 0)
                return r;
        r = f->digest_fn(&rec.members, f->userdata, rec.digest);
        if (r >= 0 && !history_find(f, rec.digest))
                r = ring_add(f->history, FORMATION_HISTORY_MAX, &f->n_history, &f->history_next,
                             &rec);
        if (r < 0) {
                plan_rec_clear(&rec);
                return r;
        }
        plan_rec_clear(&f->plan);
        f->plan = rec;
        f->state = NODE_PROPOSING;
        f->proposed = true;
        return 0;
}

/* Move to `state` on plan `r` (which may be f->plan itself). */
static int enter(struct formation *f, enum node_state state, const struct plan_rec *r) {
        if (r != &f->plan) {
                struct plan_rec copy = {};
                int k = plan_rec_copy(r, &copy);
                if (k < 0)
                        return k;
                plan_rec_clear(&f->plan);
                f->plan = copy;
        }
        f->state = state;
        return 0;
}

/* Adoption: COMMITTED(d) from a peer, for a plan we know that names us. Never while
 * locked on another plan: that plan's members may still commit it. */
static int try_adopt(struct formation *f, const struct view *live) {
        for (size_t k = 0; k < live->n; k++) {
                const struct node_info *p = &live->nodes[k];
                const struct plan_rec *r;

                if (is_self(f, p) || p->state != NODE_COMMITTED)
                        continue;
                if (f->state == NODE_LOCKED && !digest_eq(p->digest, f->plan.digest))
                        continue;
                r = known_plan(f, p->digest);
                if (r && plan_names(r, f->self))
                        return enter(f, NODE_COMMITTED, r);
        }
        return 0;
}

/* Join: LOCKED(d) or COMMITTED(d) from a peer for a plan we proposed in this boot. */
static int try_join(struct formation *f, const struct view *live) {
        for (size_t k = 0; k < live->n; k++) {
                const struct node_info *p = &live->nodes[k];
                const struct plan_rec *r;

                if (is_self(f, p) || p->state < NODE_LOCKED)
                        continue;
                r = history_find(f, p->digest);
                if (r && plan_names(r, f->self))
                        return enter(f, NODE_LOCKED, r);
        }
        return 0;
}

int formation_step(struct formation *f, const struct view *live, uint64_t now_ms) {
        enum node_state old_state;
        uint8_t old_digest[DIGEST_LEN];
        int r;

        if (!f)
                return -EINVAL;
        r = view_validate(live, f->self);
        if (r < 0)
                return r;
        old_state = f->state;
        memcpy(old_digest, f->plan.digest, DIGEST_LEN);
        f->stepped = true;

        r = track_membership(f, live, now_ms);
        if (r < 0)
                return r;
        if (f->state != NODE_COMMITTED) {
                r = try_adopt(f, live);
                if (r < 0)
                        return r;
        }
        if (f->state <= NODE_PROPOSING) {
                r = try_join(f, live);
                if (r < 0)
                        return r;
        }
        if (f->state <= NODE_PROPOSING) {
                r = maybe_propose(f, live, now_ms);
                if (r < 0)
                        return r;
                if (f->state == NODE_PROPOSING && all_members_announce(f, live, NODE_PROPOSING))
                        f->state = NODE_LOCKED;
        }
        if (f->state == NODE_LOCKED && all_members_announce(f, live, NODE_LOCKED))
                f->state = NODE_COMMITTED;

        return f->state != old_state ||
               (f->state != NODE_DISCOVERING && !digest_eq(f->plan.digest, old_digest));
}

enum node_state formation_state(const struct formation *f) {
        return f->state;
}

const uint8_t *formation_digest(const struct formation *f) {
        return f->state == NODE_DISCOVERING ? NULL : f->plan.digest;
}

const struct view *formation_members(const struct formation *f) {
        return f->state == NODE_DISCOVERING ? NULL : &f->plan.members;
}

int formation_learn_plan(struct formation *f, const uint8_t digest[DIGEST_LEN],
                         const struct view *members) {
        struct plan_rec rec = {};
        int r;

        if (!f || !digest)
                return -EINVAL;
        r = view_validate(members, NULL);
        if (r < 0)
                return r;
        if (members->n == 0)
                return -EINVAL;
        if (known_plan(f, digest))
                return 0;
        r = plan_rec_make(digest, members, &rec);
        if (r < 0)
                return r;
        r = ring_add(f->learned, FORMATION_LEARNED_MAX, &f->n_learned, &f->learned_next, &rec);
        plan_rec_clear(&rec);
        return r;
}

int formation_reset(struct formation *f, const struct view *live) {
        int r;

        if (!f)
                return -EINVAL;
        r = view_validate(live, f->self);
        if (r < 0)
                return r;
        if (f->state == NODE_COMMITTED)
                return -EBUSY;
        for (size_t k = 0; k < live->n; k++)
                if (!is_self(f, &live->nodes[k]) && live->nodes[k].state == NODE_COMMITTED)
                        return -EBUSY;
        if (f->state != NODE_LOCKED)
                return 0;

        /* Forget the history too: with it the join rule would lock the old plan again as
         * soon as a peer still announces it. */
        forget_plans(f);
        f->state = NODE_DISCOVERING;
        f->membership_known = false;
        f->proposed = false;
        return 1;
}

int formation_save(const struct formation *f, char **ret_text) {
        char *text, *p;
        size_t size;

        if (!f || !ret_text)
                return -EINVAL;
        if (f->state < NODE_LOCKED)
                return asprintf_safe(ret_text, SAVE_HEADER "\nstate %s\n",
                                     node_state_to_string(NODE_DISCOVERING));

        size = sizeof(SAVE_HEADER) + 64 + 2 * DIGEST_LEN +
               f->plan.members.n * (8 + 2 * NODE_ID_LEN);
        text = malloc(size);
        if (!text)
                return -ENOMEM;
        p = text + sprintf(text, SAVE_HEADER "\nstate %s\ndigest ", node_state_to_string(f->state));
        hex_encode(f->plan.digest, DIGEST_LEN, p);
        p += 2 * DIGEST_LEN;
        p += sprintf(p, "\nmembers %zu\n", f->plan.members.n);
        for (size_t k = 0; k < f->plan.members.n; k++) {
                p += sprintf(p, "member ");
                hex_encode(f->plan.members.nodes[k].id, NODE_ID_LEN, p);
                p += 2 * NODE_ID_LEN;
                *p++ = '\n';
        }
        *p = '\0';
        *ret_text = text;
        return 0;
}

/* The next '\n'-terminated line of *cursor, which must be "<key> <value>"; the value
 * is returned in place, without the newline. */
static int next_field(const char **cursor, const char *key, const char **ret_value,
                      size_t *ret_len) {
        const char *s = *cursor, *nl;
        size_t klen = strlen(key);

        nl = strchr(s, '\n');
        if (!nl || (size_t)(nl - s) < klen + 1 || strncmp(s, key, klen) != 0 || s[klen] != ' ')
                return -EINVAL;
        *ret_value = s + klen + 1;
        *ret_len = (size_t)(nl - *ret_value);
        *cursor = nl + 1;
        return 0;
}

static int field_hex(const char *s, size_t len, uint8_t *out, size_t n) {
        char buf[2 * DIGEST_LEN + 1];

        if (len != 2 * n || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return hex_decode(buf, out, n);
}

static int parse_count(const char *s, size_t len, size_t max, size_t *ret) {
        size_t v = 0;

        if (len == 0 || len > 7 || (s[0] == '0' && len > 1))
                return -EINVAL;
        for (size_t k = 0; k < len; k++) {
                if (s[k] < '0' || s[k] > '9')
                        return -EINVAL;
                v = v * 10 + (size_t)(s[k] - '0');
        }
        if (v < 1 || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int formation_load(struct formation *f, const char *text) {
        _cleanup_free_ struct node_info *nodes = NULL;
        struct plan_rec rec = {};
        const char *cursor = text, *v;
        enum node_state state;
        uint8_t digest[DIGEST_LEN];
        size_t len, n;
        int r;

        if (!f || !text)
                return -EINVAL;
        if (f->stepped || f->state != NODE_DISCOVERING)
                return -EBUSY;

        if (!startswith(cursor, SAVE_HEADER "\n"))
                return -EINVAL;
        cursor += strlen(SAVE_HEADER "\n");
        if (next_field(&cursor, "state", &v, &len) < 0)
                return -EINVAL;
        if (len == strlen("discovering") && strncmp(v, "discovering", len) == 0)
                return *cursor == '\0' ? 0 : -EINVAL;
        if (len == strlen("locked") && strncmp(v, "locked", len) == 0)
                state = NODE_LOCKED;
        else if (len == strlen("committed") && strncmp(v, "committed", len) == 0)
                state = NODE_COMMITTED;
        else
                return -EINVAL;

        if (next_field(&cursor, "digest", &v, &len) < 0 ||
            field_hex(v, len, digest, DIGEST_LEN) < 0)
                return -EINVAL;
        if (next_field(&cursor, "members", &v, &len) < 0 ||
            parse_count(v, len, FORMATION_MEMBERS_MAX, &n) < 0)
                return -EINVAL;
        nodes = calloc(n, sizeof(*nodes));
        if (!nodes)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                if (next_field(&cursor, "member", &v, &len) < 0 ||
                    field_hex(v, len, nodes[k].id, NODE_ID_LEN) < 0)
                        return -EINVAL;
        if (*cursor != '\0')
                return -EINVAL;
        /* Sorted, unique, and naming us: the only plans this node can have locked. */
        r = view_validate(&(struct view){.nodes = nodes, .n = n}, f->self);
        if (r < 0)
                return r;

        r = plan_rec_make(digest, &(struct view){.nodes = nodes, .n = n}, &rec);
        if (r < 0)
                return r;
        plan_rec_clear(&f->plan);
        f->plan = rec;
        f->state = state;
        return 0;
}
