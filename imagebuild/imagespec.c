/* SPDX-License-Identifier: MIT */
/* The image spec, read with libyaml's document API (every node keeps its mark, so each
 * problem points at file:line:col) and walked against a table of keys. */
#include "imagespec.h"

#include <ctype.h>
#include <limits.h>
#include <sys/stat.h>
#include <yaml.h>

#include "bundle.h"
#include "diag.h"
#include "log.h"
#include "util.h"

#define SPEC_MAX_SIZE (1024 * 1024)
#define DISK_SIZE_MIN (1ULL << 30)
#define DISK_SIZE_MAX (1ULL << 44)
#define DISK_SIZE_DEFAULT (4ULL << 30)
#define CMDLINE_MAX 1024

struct parser {
        const char *name;
        const char *base_dir;
        yaml_document_t *doc;
        struct diag *diag;
        unsigned problems;
        bool oom;
};

static _printf_(4, 5) void perr(struct parser *p, const yaml_node_t *n, const char *key,
                                const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        p->problems++;
        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0) {
                p->oom = true;
                return;
        }
        if (key)
                r = diag_push(p->diag, "%s:%zu:%zu: %s: %s", p->name, n->start_mark.line + 1,
                              n->start_mark.column + 1, key, m);
        else
                r = diag_push(p->diag, "%s:%zu:%zu: %s", p->name, n->start_mark.line + 1,
                              n->start_mark.column + 1, m);
        if (r == -ENOMEM)
                p->oom = true;
}

/* A scalar's text, or NULL (reported) when the node is not a scalar. */
static const char *scalar(struct parser *p, const yaml_node_t *n, const char *key) {
        if (n->type != YAML_SCALAR_NODE) {
                perr(p, n, key, "expected a single value, got a %s",
                     n->type == YAML_MAPPING_NODE ? "mapping" : "list");
                return NULL;
        }
        return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n) {
        const char *v;

        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *)n->data.scalar.value;
        return streq(v, "") || streq(v, "~") || streq(v, "null");
}

bool package_name_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 2 || n > 128 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
                return false;
        for (const char *c = s; *c; c++)
                if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && !strchr("+-.", *c))
                        return false;
        return true;
}

static bool name_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
                        return false;
        return true;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                { "", 0 },     { "K", 10 },   { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
                { "G", 30 },   { "GiB", 30 }, { "T", 40 },   { "TiB", 40 },
        };
        unsigned long long v;
        char *end;

        if (!isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (!streq(end, units[i].suffix))
                        continue;
                if (v > (UINT64_MAX >> units[i].shift))
                        return -ERANGE;
                *ret = (uint64_t)v << units[i].shift;
                return 0;
        }
        return -EINVAL;
}

static int set_string(char **field, const char *v) {
        char *c = strdup(v);

        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

static int resolve_path(struct parser *p, const char *v, char **ret) {
        char *r;

        if (v[0] == '/' || !p->base_dir)
                r = strdup(v);
        else if (asprintf(&r, "%s/%s", p->base_dir, v) < 0)
                r = NULL;
        if (!r)
                return -ENOMEM;
        free(*ret);
        *ret = r;
        return 0;
}

/* ---- one handler per key ---- */

static int h_name(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        const char *v = scalar(p, n, key);

        if (!v)
                return 0;
        if (!name_valid(v)) {
                perr(p, n, key, "'%s' is not a valid image name: use letters, digits, '.', "
                     "'_' and '-' (at most 64), not starting with '.' or '-'", v);
                return 0;
        }
        return set_string(&s->name, v);
}

static int h_suite(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        const char *v = scalar(p, n, key);

        if (!v)
                return 0;
        if (!package_name_valid(v)) {
                perr(p, n, key, "'%s' is not a Debian suite name (e.g. bookworm)", v);
                return 0;
        }
        return set_string(&s->suite, v);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int h_packages(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        _cleanup_strv_free_ char **l = NULL;
        size_t k;
        int r;

        if (is_null(n))
                return 0;
        if (n->type != YAML_SEQUENCE_NODE) {
                perr(p, n, key, "expected a list of Debian package names");
                return 0;
        }
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++) {
                yaml_node_t *e = yaml_document_get_node(p->doc, *i);
                const char *v = e ? scalar(p, e, key) : NULL;

                if (!v)
                        continue;
                if (!package_name_valid(v)) {
                        perr(p, e, key, "'%s' is not a valid Debian package name", v);
                        continue;
                }
                if (strv_contains(l, v)) {
                        perr(p, e, key, "'%s' is listed twice", v);
                        continue;
                }
                r = strv_push(&l, v);
                if (r < 0)
                        return r;
        }
        k = strv_length(l);
        /* Sorted so the cache key does not change when the list is only reordered. */
        if (k > 1)
                qsort(l, k, sizeof(char *), cmp_str);
        strv_free(s->packages);
        s->packages = TAKE_PTR(l);
        return 0;
}

static int h_path(struct parser *p, yaml_node_t *n, const char *key, bool nullable, char **field) {
        const char *v;

        if (nullable && is_null(n)) {
                free(*field);
                *field = NULL;
                return 0;
        }
        v = scalar(p, n, key);
        if (!v)
                return 0;
        if (!*v) {
                perr(p, n, key, "empty path");
                return 0;
        }
        return resolve_path(p, v, field);
}

static int h_overlays(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        return h_path(p, n, key, true, &s->overlays);
}

static int h_bundle(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        return h_path(p, n, key, true, &s->bundle);
}

static int h_cluster_config(struct parser *p, struct image_spec *s, yaml_node_t *n,
                            const char *key) {
        return h_path(p, n, key, true, &s->cluster_config);
}

static int h_kernel_cmdline(struct parser *p, struct image_spec *s, yaml_node_t *n,
                            const char *key) {
        const char *v;

        if (is_null(n))
                return set_string(&s->kernel_cmdline, "");
        v = scalar(p, n, key);
        if (!v)
                return 0;
        if (strlen(v) > CMDLINE_MAX) {
                perr(p, n, key, "longer than %d characters", CMDLINE_MAX);
                return 0;
        }
        for (const char *c = v; *c; c++)
                /* GRUB would read a quote or newline as the end of the entry. */
                if (*c == '\n' || *c == '"' || *c == '\'' || *c == '\\' || *c == '$' ||
                    *c == ';') {
                        perr(p, n, key, "must not contain newlines, quotes, '\\', '$' or ';'");
                        return 0;
                }
        return set_string(&s->kernel_cmdline, v);
}

static int h_disk_size(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        char buf[2][16];
        const char *v = scalar(p, n, key);
        uint64_t sz;

        if (!v)
                return 0;
        if (parse_size(v, &sz) < 0) {
                perr(p, n, key, "'%s' is not a size: digits with an optional K, M, G or T "
                     "suffix (binary units), e.g. 4G", v);
                return 0;
        }
        if (sz < DISK_SIZE_MIN || sz > DISK_SIZE_MAX) {
                perr(p, n, key, "%s is out of range: between %s and %s", v,
                     format_bytes(DISK_SIZE_MIN, buf[0]), format_bytes(DISK_SIZE_MAX, buf[1]));
                return 0;
        }
        s->disk_size = sz;
        return 0;
}

static int h_outputs(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key) {
        unsigned outputs = 0;

        if (n->type != YAML_SEQUENCE_NODE) {
                perr(p, n, key, "expected a list: [iso, qcow2]");
                return 0;
        }
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++) {
                yaml_node_t *e = yaml_document_get_node(p->doc, *i);
                const char *v = e ? scalar(p, e, key) : NULL;
                unsigned o;

                if (!v)
                        continue;
                if (streq(v, "iso"))
                        o = OUTPUT_ISO;
                else if (streq(v, "qcow2"))
                        o = OUTPUT_QCOW2;
                else {
                        perr(p, e, key, "unknown output '%s': expected iso or qcow2", v);
                        continue;
                }
                if (outputs & o) {
                        perr(p, e, key, "'%s' is listed twice", v);
                        continue;
                }
                outputs |= o;
        }
        if (!outputs) {
                perr(p, n, key, "no output: list at least one of iso, qcow2");
                return 0;
        }
        s->outputs = outputs;
        return 0;
}

static const struct {
        const char *key;
        int (*handler)(struct parser *p, struct image_spec *s, yaml_node_t *n, const char *key);
} handlers[] = {
        { "name", h_name },
        { "suite", h_suite },
        { "packages", h_packages },
        { "overlays", h_overlays },
        { "bundle", h_bundle },
        { "cluster_config", h_cluster_config },
        { "kernel_cmdline", h_kernel_cmdline },
        { "disk_size", h_disk_size },
        { "outputs", h_outputs },
};

static int walk(struct parser *p, struct image_spec *s, yaml_node_t *root) {
        bool seen[ELEMENTSOF(handlers)] = {};

        if (root->type != YAML_MAPPING_NODE) {
                perr(p, root, NULL, "an image spec is a mapping of keys (name, suite, packages, "
                     "...)");
                return 0;
        }
        for (yaml_node_pair_t *i = root->data.mapping.pairs.start;
             i < root->data.mapping.pairs.top; i++) {
                yaml_node_t *k = yaml_document_get_node(p->doc, i->key);
                yaml_node_t *v = yaml_document_get_node(p->doc, i->value);
                const char *key;
                size_t h;
                int r;

                if (!k || !v)
                        continue;
                key = scalar(p, k, NULL);
                if (!key)
                        continue;
                for (h = 0; h < ELEMENTSOF(handlers); h++)
                        if (streq(key, handlers[h].key))
                                break;
                if (h == ELEMENTSOF(handlers)) {
                        perr(p, k, key, "unknown key; known keys: name, suite, packages, "
                             "overlays, bundle, cluster_config, kernel_cmdline, disk_size, "
                             "outputs");
                        continue;
                }
                if (seen[h]) {
                        perr(p, k, key, "written twice");
                        continue;
                }
                seen[h] = true;
                r = handlers[h].handler(p, s, v, key);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct image_spec *image_spec_free(struct image_spec *s) {
        if (!s)
                return NULL;
        free(s->path);
        free(s->name);
        free(s->suite);
        strv_free(s->packages);
        free(s->overlays);
        free(s->bundle);
        free(s->cluster_config);
        free(s->kernel_cmdline);
        free(s);
        return NULL;
}

static void yaml_parser_deletep(yaml_parser_t *yp) { yaml_parser_delete(yp); }
static void yaml_document_deletep(yaml_document_t *d) {
        if (d->nodes.start)
                yaml_document_delete(d);
}

int image_spec_parse_string(const char *buf, size_t len, const char *name, const char *base_dir,
                            struct image_spec **ret, struct diag *diag) {
        _cleanup_(yaml_parser_deletep) yaml_parser_t yp = {};
        _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
        _cleanup_(yaml_document_deletep) yaml_document_t doc2 = {};
        _cleanup_image_spec_ struct image_spec *s = NULL;
        struct parser p = { .name = name, .base_dir = base_dir, .doc = &doc, .diag = diag };
        yaml_node_t *root;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->path = strdup(name);
        s->name = strdup("rainboot");
        s->suite = strdup("bookworm");
        s->kernel_cmdline = strdup("");
        if (!s->path || !s->name || !s->suite || !s->kernel_cmdline)
                return -ENOMEM;
        s->disk_size = DISK_SIZE_DEFAULT;
        s->outputs = OUTPUT_ISO | OUTPUT_QCOW2;

        if (!yaml_parser_initialize(&yp))
                return -ENOMEM;
        yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
        if (!yaml_parser_load(&yp, &doc)) {
                if (yp.error == YAML_MEMORY_ERROR)
                        return -ENOMEM;
                return diag_push(diag, "%s:%zu:%zu: invalid YAML: %s%s%s", name,
                                 yp.problem_mark.line + 1, yp.problem_mark.column + 1,
                                 yp.problem ? yp.problem : "syntax error",
                                 yp.context ? " " : "", yp.context ? yp.context : "");
        }
        root = yaml_document_get_root_node(&doc);
        if (!root)
                return diag_push(diag, "%s: empty image spec", name);
        if (!yaml_parser_load(&yp, &doc2) || yaml_document_get_root_node(&doc2))
                perr(&p, root, NULL, "more than one YAML document; a spec is one document");
        r = walk(&p, s, root);
        if (r < 0)
                return r;
        if (p.oom)
                return -ENOMEM;
        if (p.problems > 0)
                return -EINVAL;
        *ret = TAKE_PTR(s);
        return 0;
}

static int dirname_of(const char *path, char **ret) {
        const char *slash = strrchr(path, '/');
        char *d;

        if (!slash)
                d = strdup(".");
        else if (slash == path)
                d = strdup("/");
        else
                d = strndup(path, (size_t)(slash - path));
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

int image_spec_parse_file(const char *path, struct image_spec **ret, struct diag *diag) {
        _cleanup_free_ char *buf = NULL, *dir = NULL;
        size_t size;
        int r;

        r = read_full_file(path, &buf, &size);
        if (r < 0)
                return diag_push(diag, "%s: cannot read the image spec: %s", path, strerror(-r));
        if (size > SPEC_MAX_SIZE)
                return diag_push(diag, "%s: larger than %d bytes; not an image spec", path,
                                 SPEC_MAX_SIZE);
        r = dirname_of(path, &dir);
        if (r < 0)
                return r;
        return image_spec_parse_string(buf, size, path, dir, ret, diag);
}

static int check_dir(const char *what, const char *path, struct diag *diag) {
        struct stat st;

        if (stat(path, &st) < 0)
                return diag_push(diag, "%s: %s %s: %m", what, what, path);
        if (!S_ISDIR(st.st_mode))
                return diag_push(diag, "%s: %s is not a directory", what, path);
        return 0;
}

int image_spec_check_files(const struct image_spec *s, struct diag *diag) {
        int r, ret = 0;

        if (s->overlays) {
                r = check_dir("overlays", s->overlays, diag);
                if (r < 0)
                        ret = r;
        }
        if (s->cluster_config) {
                _cleanup_config_ struct config *c = NULL;
                struct diag cd = {};

                r = config_parse_file(s->cluster_config, &c, &cd);
                if (r < 0) {
                        ret = diag_push(diag, "cluster_config: %s is not a valid cluster "
                                        "config:", s->cluster_config);
                        for (size_t i = 0; i < cd.n; i++)
                                diag_push(diag, "  %s", cd.msgs[i]);
                }
                diag_clear(&cd);
        }
        if (s->bundle) {
                _cleanup_bundle_ struct bundle *b = NULL;

                r = check_dir("bundle", s->bundle, diag);
                if (r >= 0)
                        r = bundle_load(s->bundle, &b, diag);
                if (r >= 0)
                        r = bundle_verify(b, diag);
                if (r < 0)
                        ret = r;
        }
        return ret;
}
