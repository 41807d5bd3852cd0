/* SPDX-License-Identifier: MIT */
/* View <-> JSON (json-c). The parser is strict because views are also read back from
 * disk and from operators' files: a typo must not silently change an election. */
#include "view_json.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <json-c/json.h>

#include "config.h"
#include "json_util.h"
#include "util.h"

#define VIEW_JSON_VERSION   1
#define VIEW_JSON_MAX_BYTES (4u << 20)
#define VIEW_JSON_MAX_NODES 1024 /* well above a plan's 256; bounds the duplicate check */

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_tokener *, json_tokener_free);

void view_done(struct view *v) {
        free(v->nodes);
        *v = (struct view){};
}

/* ---- Writing ------------------------------------------------------------------- */

static int node_to_json(const struct node_info *ni, bool with_runtime, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *addrs = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *disks = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *nics = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *pins = json_object_new_array();
        int r;

        if (!o || !addrs || !disks || !nics || !pins)
                return -ENOMEM;
        for (size_t i = 0; i < ni->n_addrs && i < NODE_ADDRS_MAX; i++) {
                char a[INET_ADDRSTRLEN];

                inet_ntop(AF_INET, &ni->addrs[i], a, sizeof a);
                r = json_append(addrs, json_object_new_string(a));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ni->n_disks && i < NODE_DISKS_MAX; i++) {
                _cleanup_(json_object_putp) struct json_object *d = json_object_new_object();

                if (!d)
                        return -ENOMEM;
                if ((r = json_add(d, "size_bytes", json_object_new_uint64(ni->disks[i].size_bytes))) <
                            0 ||
                    (r = json_add(d, "ssd", json_object_new_boolean(ni->disks[i].ssd))) < 0 ||
                    (r = json_append(disks, TAKE_PTR(d))) < 0)
                        return r;
        }
        for (size_t i = 0; i < ni->n_nics && i < NODE_NICS_MAX; i++) {
                _cleanup_(json_object_putp) struct json_object *n = json_object_new_object();
                const uint8_t *m = ni->nics[i].mac;
                char mac[18];

                if (!n)
                        return -ENOMEM;
                snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                         m[4], m[5]);
                if ((r = json_add(n, "mac", json_object_new_string(mac))) < 0 ||
                    (r = json_add(n, "up", json_object_new_boolean(ni->nics[i].up))) < 0 ||
                    (r = json_append(nics, TAKE_PTR(n))) < 0)
                        return r;
        }
        for (unsigned bit = 1; bit & ROLE_ALL; bit <<= 1)
                if (ni->pinned_roles & bit) {
                        r = json_append(pins, json_object_new_string(role_to_name(bit)));
                        if (r < 0)
                                return r;
                }

        if ((r = json_add(o, "id", json_new_hex(ni->id, NODE_ID_LEN))) < 0 ||
            (r = json_add(o, "hostname", json_object_new_string(ni->hostname))) < 0 ||
            (r = json_add(o, "addresses", TAKE_PTR(addrs))) < 0 ||
            (r = json_add(o, "cpus", json_object_new_int64(ni->cpus))) < 0 ||
            (r = json_add(o, "memory_bytes", json_object_new_uint64(ni->memory_bytes))) < 0 ||
            (r = json_add(o, "disks", TAKE_PTR(disks))) < 0 ||
            (r = json_add(o, "nics", TAKE_PTR(nics))) < 0 ||
            (r = json_add(o, "pinned_roles", TAKE_PTR(pins))) < 0)
                return r;
        if (with_runtime &&
            ((r = json_add(o, "boot_id", json_new_hex(ni->boot_id, NODE_ID_LEN))) < 0 ||
             (r = json_add(o, "box_pk", json_new_hex(ni->box_pk, sizeof ni->box_pk))) < 0 ||
             (r = json_add(o, "state", json_object_new_string(node_state_to_string(ni->state)))) < 0 ||
             (r = json_add(o, "digest", json_new_hex(ni->digest, DIGEST_LEN))) < 0))
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int view_to_json(const struct view *v, bool with_runtime, char **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *nodes = json_object_new_array();
        int r;

        if (!o || !nodes)
                return -ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
                struct json_object *n;

                r = node_to_json(&v->nodes[i], with_runtime, &n);
                if (r < 0)
                        return r;
                r = json_append(nodes, n);
                if (r < 0)
                        return r;
        }
        if ((r = json_add(o, "version", json_object_new_int(VIEW_JSON_VERSION))) < 0 ||
            (r = json_add(o, "nodes", TAKE_PTR(nodes))) < 0)
                return r;
        return json_to_string(o, ret);
}

/* ---- Parsing ------------------------------------------------------------------- */

struct pctx {
        const char *name;
        char *error;
        char where[64]; /* "nodes[2]." or "" */
};

_printf_(3, 4) static int fail(struct pctx *x, const char *field, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        if (x->error) /* keep the first problem */
                return -EINVAL;
        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        if (asprintf(&x->error, "%s: %s%s: %s", x->name, x->where, field, msg) < 0) {
                x->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static int want_type(struct pctx *x, const char *field, struct json_object *v, enum json_type t) {
        static const char *const what[] = {
                [json_type_null] = "null",        [json_type_boolean] = "a boolean",
                [json_type_double] = "a number",  [json_type_int] = "an integer",
                [json_type_object] = "an object", [json_type_array] = "an array",
                [json_type_string] = "a string",
        };

        if (json_object_get_type(v) == t)
                return 0;
        return fail(x, field, "expected %s, got %s", what[t], what[json_object_get_type(v)]);
}

static int get_uint(struct pctx *x, const char *field, struct json_object *v, uint64_t max,
                    uint64_t *ret) {
        uint64_t u;
        int r;

        r = want_type(x, field, v, json_type_int);
        if (r < 0)
                return r;
        if (json_object_get_int64(v) < 0)
                return fail(x, field, "expected an integer >= 0, got %" PRId64,
                            json_object_get_int64(v));
        u = json_object_get_uint64(v);
        if (u > max)
                return fail(x, field, "%" PRIu64 " is out of range (at most %" PRIu64 ")", u, max);
        *ret = u;
        return 0;
}

static int get_hex(struct pctx *x, const char *field, struct json_object *v, uint8_t *ret,
                   size_t n) {
        int r = want_type(x, field, v, json_type_string);

        if (r < 0)
                return r;
        if (hex_decode(json_object_get_string(v), ret, n) < 0)
                return fail(x, field, "expected %zu hexadecimal digits", 2 * n);
        return 0;
}

static int get_string(struct pctx *x, const char *field, struct json_object *v, const char **ret) {
        int r = want_type(x, field, v, json_type_string);

        if (r < 0)
                return r;
        /* An embedded NUL would make the C string differ from what was written. */
        if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
                return fail(x, field, "contains a NUL character");
        *ret = json_object_get_string(v);
        return 0;
}

static int get_array(struct pctx *x, const char *field, struct json_object *v, size_t max,
                     size_t *ret_n) {
        int r = want_type(x, field, v, json_type_array);

        if (r < 0)
                return r;
        if (json_object_array_length(v) > max)
                return fail(x, field, "has %zu entries, at most %zu are allowed",
                            json_object_array_length(v), max);
        *ret_n = json_object_array_length(v);
        return 0;
}

static int parse_disk(struct pctx *x, size_t i, struct json_object *o, struct hw_disk *ret) {
        struct hw_disk d = {};
        bool have_size = false;
        char field[48];
        int r;

        snprintf(field, sizeof field, "disks[%zu]", i);
        r = want_type(x, field, o, json_type_object);
        if (r < 0)
                return r;
        json_object_object_foreach(o, key, val) {
                snprintf(field, sizeof field, "disks[%zu].%.16s", i, key);
                if (streq(key, "size_bytes")) {
                        r = get_uint(x, field, val, UINT64_MAX, &d.size_bytes);
                        have_size = true;
                } else if (streq(key, "ssd")) {
                        r = want_type(x, field, val, json_type_boolean);
                        d.ssd = json_object_get_boolean(val);
                } else
                        r = fail(x, field, "unknown key (valid: size_bytes, ssd)");
                if (r < 0)
                        return r;
        }
        if (!have_size) {
                snprintf(field, sizeof field, "disks[%zu]", i);
                return fail(x, field, "missing key size_bytes");
        }
        *ret = d;
        return 0;
}

static int parse_nic(struct pctx *x, size_t i, struct json_object *o, struct hw_nic *ret) {
        struct hw_nic n = {};
        bool have_mac = false;
        const char *s;
        char field[48];
        int r;

        snprintf(field, sizeof field, "nics[%zu]", i);
        r = want_type(x, field, o, json_type_object);
        if (r < 0)
                return r;
        json_object_object_foreach(o, key, val) {
                snprintf(field, sizeof field, "nics[%zu].%.16s", i, key);
                if (streq(key, "mac")) {
                        r = get_string(x, field, val, &s);
                        if (r >= 0 && parse_mac(s, n.mac) < 0)
                                r = fail(x, field,
                                         "'%s' is not a MAC address like 52:54:00:00:00:01", s);
                        have_mac = true;
                } else if (streq(key, "up")) {
                        r = want_type(x, field, val, json_type_boolean);
                        n.up = json_object_get_boolean(val);
                } else
                        r = fail(x, field, "unknown key (valid: mac, up)");
                if (r < 0)
                        return r;
        }
        if (!have_mac) {
                snprintf(field, sizeof field, "nics[%zu]", i);
                return fail(x, field, "missing key mac");
        }
        *ret = n;
        return 0;
}

static int parse_state(const char *s, enum node_state *ret) {
        for (enum node_state st = NODE_DISCOVERING; st <= NODE_COMMITTED; st++)
                if (streq(s, node_state_to_string(st))) {
                        *ret = st;
                        return 0;
                }
        return -EINVAL;
}

static int parse_node_field(struct pctx *x, const char *key, struct json_object *val,
                            struct node_info *ni) {
        const char *s;
        uint64_t u;
        size_t n;
        int r;

        if (streq(key, "id"))
                return get_hex(x, key, val, ni->id, NODE_ID_LEN);
        if (streq(key, "hostname")) {
                r = get_string(x, key, val, &s);
                if (r < 0)
                        return r;
                if (!*s || strlen(s) > NODE_HOSTNAME_MAX)
                        return fail(x, key, "must be 1 to %d characters long", NODE_HOSTNAME_MAX);
                strcpy(ni->hostname, s);
                return 0;
        }
        if (streq(key, "addresses")) {
                r = get_array(x, key, val, NODE_ADDRS_MAX, &n);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        char field[48];

                        snprintf(field, sizeof field, "addresses[%zu]", i);
                        r = get_string(x, field, json_object_array_get_idx(val, i), &s);
                        if (r >= 0 && inet_pton(AF_INET, s, &ni->addrs[i]) != 1)
                                r = fail(x, field, "'%s' is not an IPv4 address", s);
                }
                if (r >= 0)
                        ni->n_addrs = (uint8_t)n;
                return r;
        }
        if (streq(key, "cpus")) {
                r = get_uint(x, key, val, UINT16_MAX, &u);
                ni->cpus = (uint16_t)u;
                return r;
        }
        if (streq(key, "memory_bytes"))
                return get_uint(x, key, val, UINT64_MAX, &ni->memory_bytes);
        if (streq(key, "disks")) {
                r = get_array(x, key, val, NODE_DISKS_MAX, &n);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = parse_disk(x, i, json_object_array_get_idx(val, i), &ni->disks[i]);
                if (r >= 0)
                        ni->n_disks = (uint8_t)n;
                return r;
        }
        if (streq(key, "nics")) {
                r = get_array(x, key, val, NODE_NICS_MAX, &n);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = parse_nic(x, i, json_object_array_get_idx(val, i), &ni->nics[i]);
                if (r >= 0)
                        ni->n_nics = (uint8_t)n;
                return r;
        }
        if (streq(key, "pinned_roles")) {
                r = get_array(x, key, val, 32, &n);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        char field[48];
                        unsigned role;

                        snprintf(field, sizeof field, "pinned_roles[%zu]", i);
                        r = get_string(x, field, json_object_array_get_idx(val, i), &s);
                        if (r < 0)
                                break;
                        role = role_from_name(s);
                        if (!role)
                                r = fail(x, field,
                                         "unknown role '%s' (valid: master, etcd, worker, "
                                         "rbd-gateway, rbd-chaos, "
                                         "registry, mysql)",
                                         s);
                        ni->pinned_roles |= role;
                }
                return r;
        }
        if (streq(key, "boot_id"))
                return get_hex(x, key, val, ni->boot_id, NODE_ID_LEN);
        if (streq(key, "box_pk"))
                return get_hex(x, key, val, ni->box_pk, sizeof ni->box_pk);
        if (streq(key, "digest"))
                return get_hex(x, key, val, ni->digest, DIGEST_LEN);
        if (streq(key, "state")) {
                r = get_string(x, key, val, &s);
                if (r >= 0 && parse_state(s, &ni->state) < 0)
                        r = fail(x, key,
                                 "unknown state '%s' (valid: discovering, proposing, locked, "
                                 "committed)",
                                 s);
                return r;
        }
        return fail(x, key,
                    "unknown key (valid: id, hostname, addresses, cpus, memory_bytes, disks, nics, "
                    "pinned_roles, boot_id, box_pk, state, digest)");
}

static int parse_node(struct pctx *x, size_t idx, struct json_object *o, struct node_info *ret) {
        static const char *const required[] = {"id", "hostname", "cpus", "memory_bytes"};
        struct node_info ni = {};
        int r;

        snprintf(x->where, sizeof x->where, "nodes[%zu]", idx);
        r = want_type(x, "", o, json_type_object);
        if (r < 0)
                return r;
        snprintf(x->where, sizeof x->where, "nodes[%zu].", idx);
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!json_object_object_get_ex(o, required[i], NULL))
                        return fail(x, required[i], "missing required key");
        json_object_object_foreach(o, key, val) {
                r = parse_node_field(x, key, val, &ni);
                if (r < 0)
                        return r;
        }
        *ret = ni;
        return 0;
}

static int cmp_node_info(const void *a, const void *b) {
        return node_id_cmp(((const struct node_info *)a)->id, ((const struct node_info *)b)->id);
}

static int parse_view(struct pctx *x, struct json_object *top, struct view *ret) {
        _cleanup_free_ struct node_info *nodes = NULL;
        struct json_object *jn = NULL;
        size_t n = 0;
        uint64_t version;
        int r;

        r = want_type(x, "top level", top, json_type_object);
        if (r < 0)
                return r;
        json_object_object_foreach(top, key, val) {
                if (streq(key, "version")) {
                        r = get_uint(x, key, val, UINT32_MAX, &version);
                        if (r >= 0 && version != VIEW_JSON_VERSION)
                                r = fail(x, key,
                                         "unsupported version %" PRIu64
                                         " (this firstboot reads %d)",
                                         version, VIEW_JSON_VERSION);
                } else if (streq(key, "nodes")) {
                        r = get_array(x, key, val, VIEW_JSON_MAX_NODES, &n);
                        jn = val;
                } else
                        r = fail(x, key, "unknown key (valid: version, nodes)");
                if (r < 0)
                        return r;
        }
        if (!jn)
                return fail(x, "nodes", "missing required key");

        nodes = calloc(n ?: 1, sizeof *nodes);
        if (!nodes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_node(x, i, json_object_array_get_idx(jn, i), &nodes[i]);
                if (r < 0)
                        return r;
        }
        x->where[0] = '\0';
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (node_id_cmp(nodes[i].id, nodes[j].id) == 0) {
                                snprintf(x->where, sizeof x->where, "nodes[%zu].", i);
                                return fail(x, "id", "duplicate of nodes[%zu].id", j);
                        }
        qsort(nodes, n, sizeof *nodes, cmp_node_info);
        ret->nodes = TAKE_PTR(nodes);
        ret->n = n;
        return 0;
}

static void offset_to_line_col(const char *text, size_t off, unsigned *line, unsigned *col) {
        *line = 1;
        *col = 1;
        for (size_t i = 0; i < off; i++) {
                if (text[i] == '\n') {
                        (*line)++;
                        *col = 1;
                } else
                        (*col)++;
        }
}

int view_from_json(const char *text, size_t len, const char *name, struct view *ret,
                   char **ret_error) {
        _cleanup_(json_tokener_freep) struct json_tokener *tok = NULL;
        _cleanup_(json_object_putp) struct json_object *top = NULL;
        struct pctx x = {.name = name ?: "view"};
        struct view v = {};
        size_t end;
        int r;

        if (len > VIEW_JSON_MAX_BYTES) {
                r = fail(&x, "top level", "%zu bytes is too large (at most %u)", len,
                         VIEW_JSON_MAX_BYTES);
                goto out;
        }
        tok = json_tokener_new_ex(16);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        top = json_tokener_parse_ex(tok, text, (int)len);
        end = json_tokener_get_parse_end(tok);
        if (!top || json_tokener_get_error(tok) != json_tokener_success) {
                enum json_tokener_error e = json_tokener_get_error(tok);
                unsigned line, col;

                offset_to_line_col(text, end, &line, &col);
                r = fail(&x, "top level", "invalid JSON at line %u column %u: %s", line, col,
                         e == json_tokener_continue ? "unexpected end of input"
                                                    : json_tokener_error_desc(e));
                goto out;
        }
        for (; end < len; end++)
                if (!strchr(" \t\r\n", text[end]) || !text[end]) {
                        unsigned line, col;

                        offset_to_line_col(text, end, &line, &col);
                        r = fail(&x, "top level", "trailing data at line %u column %u", line, col);
                        goto out;
                }
        r = parse_view(&x, top, &v);
out:
        if (r == -EINVAL && ret_error)
                *ret_error = TAKE_PTR(x.error);
        free(x.error);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int view_from_json_file(const char *path, struct view *ret, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = read_full_file(path, &text, &size);
        if (r < 0)
                return r;
        return view_from_json(text, size, path, ret, ret_error);
}
