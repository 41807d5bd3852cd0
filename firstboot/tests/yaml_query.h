/* SPDX-License-Identifier: MIT */
/* Read rendered YAML back with libyaml, so tests check what a consumer (RKE2, kubeadm,
 * Helm) would parse rather than the text. Paths separate keys with '/', because keys such
 * as "goodrain.me:5000" hold dots; a number selects a sequence item: "tls-san/0". */
#pragma once

#include <yaml.h>

#define YQ_MAX_DOCS 4

struct yq {
        yaml_document_t docs[YQ_MAX_DOCS];
        size_t n;
};

static inline void yq_load(struct yq *q, const char *text) {
        yaml_parser_t p;

        *q = (struct yq){};
        assert_true(yaml_parser_initialize(&p));
        yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
        for (;;) {
                yaml_document_t d;

                if (!yaml_parser_load(&p, &d))
                        fail_msg("not valid YAML (%s, line %zu):\n%s", p.problem,
                                 p.problem_mark.line + 1, text);
                if (!yaml_document_get_root_node(&d)) {
                        yaml_document_delete(&d);
                        break;
                }
                assert_true(q->n < YQ_MAX_DOCS);
                q->docs[q->n++] = d;
        }
        yaml_parser_delete(&p);
}

static inline void yq_done(struct yq *q) {
        for (size_t i = 0; i < q->n; i++)
                yaml_document_delete(&q->docs[i]);
        q->n = 0;
}

/* The document whose top-level "kind" is kind. */
static inline yaml_document_t *yq_kind(struct yq *q, const char *kind);

static inline yaml_node_t *yq_node(yaml_document_t *d, const char *path) {
        yaml_node_t *n = yaml_document_get_root_node(d);
        _cleanup_free_ char *copy = strdup(path);
        char *save = NULL;

        assert_non_null(copy);
        for (char *k = strtok_r(copy, "/", &save); n && k; k = strtok_r(NULL, "/", &save)) {
                yaml_node_t *next = NULL;

                if (n->type == YAML_MAPPING_NODE) {
                        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
                             pr < n->data.mapping.pairs.top; pr++) {
                                yaml_node_t *key = yaml_document_get_node(d, pr->key);

                                if (key->type == YAML_SCALAR_NODE &&
                                    streq((const char *)key->data.scalar.value, k)) {
                                        next = yaml_document_get_node(d, pr->value);
                                        break;
                                }
                        }
                } else if (n->type == YAML_SEQUENCE_NODE) {
                        char *end;
                        long i = strtol(k, &end, 10);
                        long len = n->data.sequence.items.top - n->data.sequence.items.start;

                        if (!*end && i >= 0 && i < len)
                                next = yaml_document_get_node(d, n->data.sequence.items.start[i]);
                }
                n = next;
        }
        return n;
}

/* The scalar at path, or NULL when there is none. */
static inline const char *yq_str(yaml_document_t *d, const char *path) {
        yaml_node_t *n = yq_node(d, path);

        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Items of the sequence or pairs of the mapping at path; -1 when absent or a scalar. */
static inline long yq_len(yaml_document_t *d, const char *path) {
        yaml_node_t *n = yq_node(d, path);

        if (!n)
                return -1;
        if (n->type == YAML_SEQUENCE_NODE)
                return n->data.sequence.items.top - n->data.sequence.items.start;
        if (n->type == YAML_MAPPING_NODE)
                return n->data.mapping.pairs.top - n->data.mapping.pairs.start;
        return -1;
}

/* The keys of the mapping at path ("" for the root) joined with ",", in their order:
 * tests compare the exact set of fields. Caller frees. */
static inline char *yq_keys(yaml_document_t *d, const char *path) {
        yaml_node_t *n = *path ? yq_node(d, path) : yaml_document_get_root_node(d);
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_non_null(n);
        assert_int_equal(n->type, YAML_MAPPING_NODE);
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++)
                fprintf(f, "%s%s", pr == n->data.mapping.pairs.start ? "" : ",",
                        (const char *)yaml_document_get_node(d, pr->key)->data.scalar.value);
        assert_int_equal(fclose(f), 0);
        return buf;
}

/* Every scalar of the sequence at path joined with ",". Caller frees. */
static inline char *yq_list(yaml_document_t *d, const char *path) {
        yaml_node_t *n = yq_node(d, path);
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        if (!n || n->type != YAML_SEQUENCE_NODE)
                fail_msg("%s: not a sequence", path);
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
                yaml_node_t *v = yaml_document_get_node(d, *it);

                assert_int_equal(v->type, YAML_SCALAR_NODE);
                fprintf(f, "%s%s", it == n->data.sequence.items.start ? "" : ",",
                        (const char *)v->data.scalar.value);
        }
        assert_int_equal(fclose(f), 0);
        return buf;
}

static inline yaml_document_t *yq_kind(struct yq *q, const char *kind) {
        for (size_t i = 0; i < q->n; i++) {
                const char *k = yq_str(&q->docs[i], "kind");

                if (k && streq(k, kind))
                        return &q->docs[i];
        }
        fail_msg("no document of kind %s", kind);
        return NULL;
}

#define assert_yq(d, path, want)                                                              \
        do {                                                                                  \
                const char *_got = yq_str((d), (path));                                       \
                if (!_got)                                                                    \
                        fail_msg("%s: missing", (path));                                      \
                if (!streq(_got, (want)))                                                     \
                        fail_msg("%s: '%s', want '%s'", (path), _got, (want));                \
        } while (0)

#define assert_yq_keys(d, path, want)                                                         \
        do {                                                                                  \
                _cleanup_free_ char *_k = yq_keys((d), (path));                               \
                if (!streq(_k, (want)))                                                       \
                        fail_msg("keys of '%s': %s, want %s", (path), _k, (want));            \
        } while (0)

#define assert_yq_list(d, path, want)                                                         \
        do {                                                                                  \
                _cleanup_free_ char *_l = yq_list((d), (path));                               \
                if (!streq(_l, (want)))                                                       \
                        fail_msg("%s: [%s], want [%s]", (path), _l, (want));                  \
        } while (0)
