/* SPDX-License-Identifier: MIT */
#include "bundle.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "diag.h"
#include "json_util.h"
#include "log.h"
#include "util.h"

#define MANIFEST_MAX_SIZE (16 * 1024 * 1024)
#define MANIFEST_VERSION 1

static const char *const kind_names[_KIND_MAX] = {
        [KIND_OCI_ARCHIVE] = "oci-archive",
        [KIND_BINARY] = "binary",
        [KIND_CHART] = "chart",
        [KIND_DEB] = "deb",
};

const char *bundle_kind_to_string(enum bundle_kind k) {
        return (unsigned)k < _KIND_MAX ? kind_names[k] : NULL;
}

int bundle_kind_from_string(const char *s) {
        for (int k = 0; k < _KIND_MAX; k++)
                if (streq(s, kind_names[k]))
                        return k;
        return -EINVAL;
}

static void item_done(struct bundle_item *i) {
        free(i->name);
        free(i->file);
}

struct bundle *bundle_free(struct bundle *b) {
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n_items; i++)
                item_done(&b->items[i]);
        free(b->items);
        free(b->dir);
        free(b->manifest);
        free(b);
        return NULL;
}

static int bundle_new(const char *dir, struct bundle **ret) {
        _cleanup_bundle_ struct bundle *b = calloc(1, sizeof *b);

        if (!b)
                return -ENOMEM;
        b->dir = strdup(dir);
        if (!b->dir || asprintf_safe(&b->manifest, "%s/%s", dir, BUNDLE_MANIFEST) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(b);
        return 0;
}

static bool sha256_hex_valid(const char *s) {
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

/* Relative, no "." or ".." component, no empty component: stays inside the bundle. */
static bool rel_path_valid(const char *s) {
        const char *c = s;

        if (!*s || *s == '/' || strlen(s) > PATH_MAX / 2)
                return false;
        for (;;) {
                size_t n = strcspn(c, "/");

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!c[n])
                        return true;
                c += n + 1;
        }
}

/* '/' is allowed: an oci-archive's name is the image reference it is pushed as
 * ("rainbond/rbd-chaos:v6"); names are labels, never paths. */
static bool name_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 128)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

static int item_from_json(const struct bundle *b, size_t idx, struct json_object *o,
                          struct bundle_item *ret, struct diag *diag) {
        static const char *const fields[] = { "name", "kind", "file", "size", "sha256" };
        struct json_object *v[ELEMENTSOF(fields)] = {};
        struct bundle_item it = {};
        int k, bad = 0;

        if (!json_object_is_type(o, json_type_object))
                return diag_push(diag, "%s: artifacts[%zu]: expected an object", b->manifest,
                                 idx);
        json_object_object_foreach(o, key, val) {
                size_t f;

                for (f = 0; f < ELEMENTSOF(fields); f++)
                        if (streq(key, fields[f]))
                                break;
                if (f == ELEMENTSOF(fields))
                        bad = diag_push(diag, "%s: artifacts[%zu]: unknown key '%s'; known: "
                                        "name, kind, file, size, sha256", b->manifest, idx, key);
                else
                        v[f] = val;
        }
        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                bool is_size = streq(fields[f], "size");

                if (!v[f] || !json_object_is_type(v[f], is_size ? json_type_int : json_type_string))
                        bad = diag_push(diag, "%s: artifacts[%zu]: '%s' is missing or not a %s",
                                        b->manifest, idx, fields[f], is_size ? "number" : "string");
        }
        if (bad)
                return bad;

        const char *name = json_object_get_string(v[0]), *kind = json_object_get_string(v[1]),
                   *file = json_object_get_string(v[2]), *sha = json_object_get_string(v[4]);
        int64_t size = json_object_get_int64(v[3]);

        if (!name_valid(name))
                bad = diag_push(diag, "%s: artifacts[%zu]: invalid name '%s'", b->manifest, idx,
                                name);
        k = bundle_kind_from_string(kind);
        if (k < 0)
                bad = diag_push(diag, "%s: artifact '%s': unknown kind '%s': expected "
                                "oci-archive, binary, chart or deb", b->manifest, name, kind);
        if (!rel_path_valid(file))
                bad = diag_push(diag, "%s: artifact '%s': file '%s' must be a path inside the "
                                "bundle directory, without '.' or '..'", b->manifest, name, file);
        if (!sha256_hex_valid(sha))
                bad = diag_push(diag, "%s: artifact '%s': sha256 must be 64 lowercase hex "
                                "digits", b->manifest, name);
        if (size < 0)
                bad = diag_push(diag, "%s: artifact '%s': negative size", b->manifest, name);
        if (bad)
                return bad;
        it.name = strdup(name);
        it.file = strdup(file);
        if (!it.name || !it.file) {
                item_done(&it);
                return -ENOMEM;
        }
        it.kind = (enum bundle_kind)k;
        it.size = (uint64_t)size;
        memcpy(it.sha256, sha, 65);
        *ret = it;
        return 0;
}

static int parse_manifest(struct bundle *b, const char *text, struct diag *diag) {
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        struct json_object *version, *arts;
        enum json_tokener_error jerr;
        size_t n;
        int bad = 0;

        root = json_tokener_parse_verbose(text, &jerr);
        if (!root)
                return diag_push(diag, "%s: not valid JSON: %s", b->manifest,
                                 json_tokener_error_desc(jerr));
        if (!json_object_is_type(root, json_type_object))
                return diag_push(diag, "%s: expected a JSON object", b->manifest);
        json_object_object_foreach(root, key, val) {
                (void)val;
                if (!streq(key, "version") && !streq(key, "artifacts"))
                        bad = diag_push(diag, "%s: unknown key '%s'; known: version, artifacts",
                                        b->manifest, key);
        }
        if (!json_object_object_get_ex(root, "version", &version) ||
            !json_object_is_type(version, json_type_int) ||
            json_object_get_int(version) != MANIFEST_VERSION)
                bad = diag_push(diag, "%s: 'version' must be %d", b->manifest, MANIFEST_VERSION);
        if (!json_object_object_get_ex(root, "artifacts", &arts) ||
            !json_object_is_type(arts, json_type_array))
                bad = diag_push(diag, "%s: 'artifacts' must be a list", b->manifest);
        if (bad)
                return bad;

        n = json_object_array_length(arts);
        b->items = calloc(n ? n : 1, sizeof *b->items);
        if (!b->items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct bundle_item it;
                int r = item_from_json(b, i, json_object_array_get_idx(arts, i), &it, diag);

                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        bad = r;
                        continue;
                }
                for (size_t j = 0; j < b->n_items; j++) {
                        if (streq(b->items[j].name, it.name))
                                r = diag_push(diag, "%s: duplicate name '%s' (artifacts[%zu] "
                                              "and another entry); names must be unique",
                                              b->manifest, it.name, i);
                        else if (streq(b->items[j].file, it.file))
                                r = diag_push(diag, "%s: file '%s' is listed twice ('%s' and "
                                              "'%s')", b->manifest, it.file, b->items[j].name,
                                              it.name);
                }
                if (r < 0) {
                        bad = r;
                        item_done(&it);
                        continue;
                }
                b->items[b->n_items++] = it;
        }
        return bad;
}

int bundle_parse(const char *dir, const char *text, size_t size, struct bundle **ret,
                 struct diag *diag) {
        _cleanup_bundle_ struct bundle *b = NULL;
        int r;

        r = bundle_new(dir, &b);
        if (r < 0)
                return r;
        if (size > MANIFEST_MAX_SIZE || strnlen(text, size) != size)
                return diag_push(diag, "%s: not a manifest (too large or binary)", b->manifest);
        r = parse_manifest(b, text, diag);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

int bundle_load(const char *dir, struct bundle **ret, struct diag *diag) {
        _cleanup_free_ char *manifest = NULL, *text = NULL;
        size_t size;
        int r;

        if (asprintf_safe(&manifest, "%s/%s", dir, BUNDLE_MANIFEST) < 0)
                return -ENOMEM;
        r = read_full_file(manifest, &text, &size);
        if (r < 0)
                return diag_push(diag, "%s: cannot read the bundle manifest: %s%s", manifest,
                                 strerror(-r),
                                 r == -ENOENT ? "; create it with 'imagebuild bundle add'" : "");
        return bundle_parse(dir, text, size, ret, diag);
}

static int verify_item(const struct bundle *b, const struct bundle_item *it, int copy_fd,
                       struct diag *diag) {
        _cleanup_free_ char *path = NULL;
        char hex[65];
        uint64_t size;
        int r;

        if (asprintf_safe(&path, "%s/%s", b->dir, it->file) < 0)
                return -ENOMEM;
        r = sha256_file(path, copy_fd, hex, &size);
        if (r == -ENOENT)
                return diag_push(diag, "%s: missing: listed in %s as '%s'", path, b->manifest,
                                 it->name);
        if (r == -EBADF)
                return diag_push(diag, "%s: not a regular file (artifact '%s')", path, it->name);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return diag_push(diag, "%s: cannot read: %s", path, strerror(-r));
        if (size != it->size)
                return diag_push(diag, "%s: size %" PRIu64 " differs from the manifest's %" PRIu64
                                 " (artifact '%s'); rebuild the entry with 'imagebuild bundle "
                                 "add' if the change is intended", path, size, it->size,
                                 it->name);
        if (!streq(hex, it->sha256))
                return diag_push(diag, "%s: sha256 mismatch (artifact '%s'): manifest says %s, "
                                 "file has %s", path, it->name, it->sha256, hex);
        return 0;
}

int bundle_verify(const struct bundle *b, struct diag *diag) {
        int ret = 0;

        for (size_t i = 0; i < b->n_items; i++) {
                int r = verify_item(b, &b->items[i], -1, diag);

                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;
        }
        return ret;
}

static int cmp_item(const void *a, const void *b) {
        return strcmp(((const struct bundle_item *)a)->name, ((const struct bundle_item *)b)->name);
}

int bundle_format(const struct bundle *b, char **ret) {
        _cleanup_(json_object_putp) struct json_object *root = json_object_new_object();
        _cleanup_free_ struct bundle_item *sorted = NULL;
        struct json_object *arts = json_object_new_array();
        char *s;
        int r;

        r = json_add(root, "version", json_object_new_int(MANIFEST_VERSION));
        if (r >= 0)
                r = json_add(root, "artifacts", arts);
        else
                json_object_put(arts);
        if (r < 0 || !root)
                return -ENOMEM;
        sorted = malloc((b->n_items ? b->n_items : 1) * sizeof *sorted);
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, b->items, b->n_items * sizeof *sorted);
        qsort(sorted, b->n_items, sizeof *sorted, cmp_item);
        for (size_t i = 0; i < b->n_items; i++) {
                struct json_object *o = json_object_new_object();
                const struct bundle_item *it = &sorted[i];

                r = json_append(arts, o);
                if (r >= 0)
                        r = json_add_str(o, "name", it->name);
                if (r >= 0)
                        r = json_add_str(o, "kind", bundle_kind_to_string(it->kind));
                if (r >= 0)
                        r = json_add_str(o, "file", it->file);
                if (r >= 0)
                        r = json_add_u64(o, "size", it->size);
                if (r >= 0)
                        r = json_add_str(o, "sha256", it->sha256);
                if (r < 0)
                        return r;
        }
        r = json_to_string(root, &s);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

/* FILE as a path relative to DIR, refusing anything outside it. */
static int relative_to(const char *dir, const char *file, char **ret) {
        _cleanup_free_ char *rdir = realpath(dir, NULL), *rfile = NULL;
        size_t n;

        if (!rdir)
                return -errno;
        rfile = realpath(file, NULL);
        if (!rfile)
                return -errno;
        n = strlen(rdir);
        if (strncmp(rfile, rdir, n) != 0 || rfile[n] != '/')
                return -EXDEV;
        *ret = strdup(rfile + n + 1);
        return *ret ? 0 : -ENOMEM;
}

int bundle_add(const char *dir, const char *file, enum bundle_kind kind, const char *name,
               struct diag *diag) {
        _cleanup_bundle_ struct bundle *b = NULL;
        _cleanup_free_ char *rel = NULL, *path = NULL, *text = NULL;
        struct bundle_item it = {};
        size_t idx;
        int r;

        r = relative_to(dir, file, &rel);
        if (r == -EXDEV)
                return diag_push(diag, "%s: not inside the bundle directory %s; copy it there "
                                 "first", file, dir);
        if (r < 0)
                return diag_push(diag, "%s: %s", r == -ENOENT ? file : dir, strerror(-r));
        if (asprintf_safe(&path, "%s/%s", dir, rel) < 0)
                return -ENOMEM;
        if (!rel_path_valid(rel) || streq(rel, BUNDLE_MANIFEST))
                return diag_push(diag, "%s: cannot be a bundle artifact", file);
        if (!name) {
                const char *slash = strrchr(rel, '/');
                name = slash ? slash + 1 : rel;
        }
        if (!name_valid(name))
                return diag_push(diag, "invalid artifact name '%s'", name);

        {
                _cleanup_free_ char *m = NULL;

                if (asprintf_safe(&m, "%s/%s", dir, BUNDLE_MANIFEST) < 0)
                        return -ENOMEM;
                r = access(m, F_OK) >= 0 ? bundle_load(dir, &b, diag) : bundle_new(dir, &b);
                if (r < 0)
                        return r;
        }
        r = sha256_file(path, -1, it.sha256, &it.size);
        if (r == -EBADF)
                return diag_push(diag, "%s: not a regular file", file);
        if (r < 0)
                return r == -ENOMEM ? r : diag_push(diag, "%s: %s", file, strerror(-r));

        for (idx = 0; idx < b->n_items; idx++)
                if (streq(b->items[idx].name, name))
                        break;
        for (size_t j = 0; j < b->n_items; j++)
                if (j != idx && streq(b->items[j].file, rel))
                        return diag_push(diag, "%s: already listed as '%s' in %s", file,
                                         b->items[j].name, b->manifest);
        if (idx == b->n_items) {
                struct bundle_item *l = realloc(b->items, (b->n_items + 1) * sizeof *l);
                if (!l)
                        return -ENOMEM;
                b->items = l;
                memset(&b->items[idx], 0, sizeof *l);
                b->n_items++;
        }
        it.name = strdup(name);
        it.file = TAKE_PTR(rel);
        it.kind = kind;
        if (!it.name) {
                item_done(&it);
                return -ENOMEM;
        }
        item_done(&b->items[idx]);
        b->items[idx] = it;

        r = bundle_format(b, &text);
        if (r < 0)
                return r;
        r = write_file_atomic(b->manifest, text, strlen(text), 0644);
        if (r < 0)
                return diag_push(diag, "%s: cannot write: %s", b->manifest, strerror(-r));
        return 0;
}

int bundle_install(const struct bundle *b, const char *dest_dir, const char *manifest_dest,
                   struct diag *diag) {
        _cleanup_free_ char *text = NULL;
        int r;

        for (size_t i = 0; i < b->n_items; i++) {
                _cleanup_free_ char *dest = NULL;
                _cleanup_close_ int fd = -1;
                char *slash;

                if (asprintf_safe(&dest, "%s/%s", dest_dir, b->items[i].file) < 0)
                        return -ENOMEM;
                slash = strrchr(dest, '/');
                *slash = 0;
                r = mkdir_parents(dest, 0755);
                *slash = '/';
                if (r < 0)
                        return diag_push(diag, "%s: cannot create its directory: %s", dest,
                                         strerror(-r));
                fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0)
                        return diag_push(diag, "%s: cannot create: %m", dest);
                r = verify_item(b, &b->items[i], fd, diag);
                if (r < 0) {
                        unlink(dest);
                        return r;
                }
        }
        r = bundle_format(b, &text);
        if (r < 0)
                return r;
        r = write_file_atomic(manifest_dest, text, strlen(text), 0644);
        if (r < 0)
                return diag_push(diag, "%s: cannot write: %s", manifest_dest, strerror(-r));
        return 0;
}
