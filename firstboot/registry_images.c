/* SPDX-License-Identifier: MIT */
/* Step "images" on the registry node: the oci-archives of the offline bundle the image
 * carries (imagebuild's bundle_install(): <root>/usr/share/rainboot/bundle.json and the
 * files under bundle/) are checked against their SHA-256 first, all of them, and only then
 * pushed with skopeo, each as goodrain.me:5000/<its name>. A rerun pushes nothing that the
 * registry already has with the same manifest digest. */
#include <fcntl.h>
#include <json-c/json.h>
#include <sodium.h>

#include "json_util.h"
#include "log.h"
#include "registry.h"
#include "sha256.h"
#include "util.h"

#define MANIFEST_MAX (16 * 1024 * 1024)
#define INDEX_MAX (1024 * 1024)
#define READY_TIMEOUT_MS 60000

struct oci_item {
        char *name;
        char *path; /* absolute, under the root */
        char *ref;  /* <ns>/<name>:<tag> */
        char sha256[65];
};

struct oci_list {
        char *manifest;
        struct oci_item *items;
        size_t n;
};

static void oci_list_done(struct oci_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].name);
                free(l->items[i].path);
                free(l->items[i].ref);
        }
        free(l->items);
        free(l->manifest);
        *l = (struct oci_list){};
}

/* ---- image references ---- */

/* A path component of the distribution reference grammar:
 * [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool component_valid(const char *s, size_t l) {
        size_t i = 0;

        for (;;) {
                size_t run = 0, sep;

                while (i < l && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
                        i++, run++;
                if (run == 0)
                        return false;
                if (i == l)
                        return true;
                sep = 0;
                if (s[i] == '.')
                        sep = 1;
                else if (s[i] == '_')
                        sep = i + 1 < l && s[i + 1] == '_' ? 2 : 1;
                else
                        while (i + sep < l && s[i + sep] == '-')
                                sep++;
                if (sep == 0)
                        return false;
                i += sep;
        }
}

static bool tag_valid(const char *s) {
        size_t l = strlen(s);

        if (l == 0 || l > 128 || *s == '.' || *s == '-')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
                        return false;
        return true;
}

int registry_image_ref(const char *name, char **ret) {
        const char *path = name, *slash = strchr(name, '/'), *colon;
        _cleanup_free_ char *repo = NULL;
        const char *tag = "latest";

        if (strchr(name, '@'))
                return -EINVAL;
        /* A first component with '.' or ':', or "localhost", is a registry host (docker's
         * rule): the image moves to ours. */
        if (slash && (memchr(name, '.', (size_t)(slash - name)) ||
                      memchr(name, ':', (size_t)(slash - name)) ||
                      (slash - name == 9 && strncmp(name, "localhost", 9) == 0)))
                path = slash + 1;
        colon = strrchr(path, ':');
        if (colon && strchr(colon, '/'))
                colon = NULL;
        repo = strndup(path, colon ? (size_t)(colon - path) : strlen(path));
        if (!repo)
                return -ENOMEM;
        if (colon)
                tag = colon + 1;
        if (!tag_valid(tag) || strlen(repo) > 255)
                return -EINVAL;
        for (const char *c = repo;;) {
                size_t l = strcspn(c, "/");

                if (!component_valid(c, l))
                        return -EINVAL;
                if (!c[l])
                        break;
                c += l + 1;
        }
        return asprintf_safe(ret, "%s:%s", repo, tag);
}

/* ---- the OCI archive's own manifest digest ---- */

static int read_exact(int fd, void *buf, size_t n) {
        for (size_t got = 0; got < n;) {
                ssize_t k = read(fd, (uint8_t *)buf + got, n - got);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EBADMSG;
                got += (size_t)k;
        }
        return 0;
}

static uint64_t tar_size(const uint8_t h[512]) {
        uint64_t v = 0;

        /* GNU base-256 for large sizes: high bit of the first byte. */
        if (h[124] & 0x80) {
                for (size_t i = 1; i < 12; i++)
                        v = (v << 8) | h[124 + i];
        } else
                for (size_t i = 0; i < 12 && h[124 + i] >= '0' && h[124 + i] <= '7'; i++)
                        v = (v << 3) | (uint64_t)(h[124 + i] - '0');
        return v;
}

static int index_digest(const char *text, char ret[static 72]) {
        _cleanup_(json_object_putp) struct json_object *o = json_tokener_parse(text);
        struct json_object *m, *d;
        const char *s;

        if (!o || !json_object_object_get_ex(o, "manifests", &m) ||
            !json_object_is_type(m, json_type_array) || json_object_array_length(m) != 1 ||
            !json_object_object_get_ex(json_object_array_get_idx(m, 0), "digest", &d) ||
            !json_object_is_type(d, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(d);
        if (!startswith(s, "sha256:") || strlen(s) != 71)
                return -EBADMSG;
        for (const char *c = s + 7; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return -EBADMSG;
        memcpy(ret, s, 72);
        return 0;
}

int oci_archive_digest(const char *path, char ret[static 72]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        uint8_t h[512];
        int r;

        if (fd < 0)
                return -errno;
        /* Walk the tar headers, seeking over the content, to index.json. */
        for (;;) {
                char name[101];
                uint64_t size;
                bool zero = true;

                r = read_exact(fd, h, sizeof h);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < sizeof h && zero; i++)
                        zero = h[i] == 0;
                if (zero)
                        return -EBADMSG;
                memcpy(name, h, 100);
                name[100] = 0;
                size = tar_size(h);
                if ((h[156] == '0' || h[156] == 0) &&
                    (streq(name, "index.json") || streq(name, "./index.json"))) {
                        _cleanup_free_ char *text = NULL;

                        if (size > INDEX_MAX)
                                return -EBADMSG;
                        text = malloc(size + 1);
                        if (!text)
                                return -ENOMEM;
                        r = read_exact(fd, text, size);
                        if (r < 0)
                                return r;
                        text[size] = 0;
                        return index_digest(text, ret);
                }
                if (lseek(fd, (off_t)((size + 511) / 512 * 512), SEEK_CUR) < 0)
                        return -errno;
        }
}

/* ---- the bundle the image carries ---- */

/* Relative, no "." or ".." component: stays inside the bundle. ':' would end the path
 * in skopeo's oci-archive:PATH[:REF]. */
static bool file_valid(const char *s) {
        if (!*s || *s == '/' || strchr(s, ':'))
                return false;
        for (const char *c = s;;) {
                size_t n = strcspn(c, "/");

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!c[n])
                        return true;
                c += n + 1;
        }
}

static const char *str_field(struct json_object *o, const char *key) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* The oci-archive artifacts of the manifest (imagebuild checked it when it built the
 * image; this reads only what the push needs, and refuses what would escape the bundle).
 * -ENOENT when the image carries no bundle. */
static int bundle_images_load(const struct step_ctx *c, struct oci_list *ret) {
        _cleanup_(oci_list_done) struct oci_list l = {};
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_free_ char *dir = NULL, *text = NULL;
        struct json_object *arts;
        size_t size = 0, n;
        int r;

        if ((r = step_path(c, REGISTRY_BUNDLE_MANIFEST, &l.manifest)) < 0 ||
            (r = step_path(c, REGISTRY_BUNDLE_DIR, &dir)) < 0)
                return r;
        r = read_full_file(l.manifest, &text, &size);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return log_error_errno(r, "Cannot read the offline bundle's manifest %s: %m",
                                       l.manifest);
        o = size <= MANIFEST_MAX ? json_tokener_parse(text) : NULL;
        if (!o || !json_object_object_get_ex(o, "artifacts", &arts) ||
            !json_object_is_type(arts, json_type_array))
                return log_error_errno(-EBADMSG, "%s: not a bundle manifest (no artifacts list); "
                                                 "rebuild the image with imagebuild.", l.manifest);
        n = json_object_array_length(arts);
        l.items = calloc(n ? n : 1, sizeof *l.items);
        if (!l.items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *a = json_object_array_get_idx(arts, i);
                const char *kind = str_field(a, "kind"), *name = str_field(a, "name"),
                           *file = str_field(a, "file"), *sha = str_field(a, "sha256");
                struct oci_item *it = &l.items[l.n];

                if (!kind || !streq(kind, "oci-archive"))
                        continue;
                /* RKE2's airgap tarballs (many images each): svc_kube.c hands them to RKE2. */
                if (name && startswith(name, "rke2-images"))
                        continue;
                if (!name || !file || !sha || strlen(sha) != 64 || !file_valid(file))
                        return log_error_errno(-EBADMSG, "%s: artifacts[%zu]: an oci-archive needs "
                                                         "a name, a file inside the bundle and a "
                                                         "sha256; rebuild the image.",
                                               l.manifest, i);
                r = registry_image_ref(name, &it->ref);
                if (r == -EINVAL)
                        return log_error_errno(r, "%s: artifact '%s': not an image reference "
                                                  "([host/]ns/name[:tag], lowercase path): name it "
                                                  "as it should be pulled, e.g. "
                                                  "rainbond/rbd-chaos:v6.", l.manifest, name);
                if (r < 0)
                        return r;
                l.n++;
                it->name = strdup(name);
                if (!it->name || asprintf_safe(&it->path, "%s/%s", dir, file) < 0)
                        return -ENOMEM;
                memcpy(it->sha256, sha, 65);
        }
        *ret = l;
        l = (struct oci_list){};
        return 0;
}

/* ---- the step ---- */

static const char *images_skip(const struct step_ctx *c) {
        _cleanup_free_ char *manifest = NULL;

        if (c->cfg->ext_registry)
                return "external.registry is set: the offline images go there by hand";
        if (!(c->self->roles & ROLE_REGISTRY))
                return "not a registry node";
        if (step_path(c, REGISTRY_BUNDLE_MANIFEST, &manifest) >= 0 && access(manifest, F_OK) < 0)
                return "the image carries no offline bundle (" REGISTRY_BUNDLE_MANIFEST ")";
        return registry_secrets_missing(c, true);
}

struct push_paths {
        char addr[INET_ADDRSTRLEN]; /* this node's: the pushes go to its registry */
        char *auth, *certs, *host;  /* host: <addr>:5000 */
};

static void push_paths_done(struct push_paths *p) {
        free(p->auth);
        free(p->certs);
        free(p->host);
}

static int push_paths_get(const struct step_ctx *c, struct push_paths *ret) {
        _cleanup_(push_paths_done) struct push_paths p = {};
        int r;

        if ((r = registry_self_address(c, p.addr)) < 0 ||
            (r = asprintf_safe(&p.auth, "%s/" REGISTRY_AUTH_FILE, c->state_dir)) < 0 ||
            (r = step_path(c, REGISTRY_CERTS_DIR, &p.certs)) < 0 ||
            (r = asprintf_safe(&p.host, "%s:%u", p.addr, REGISTRY_PORT)) < 0)
                return r;
        *ret = p;
        p = (struct push_paths){};
        return 0;
}

/* containers-auth.json(5), for this node's address and for goodrain.me:5000. */
static int render_auth(const char *host, const char *password, char **ret) {
        _cleanup_free_ char *plain = NULL, *b64 = NULL;
        size_t n;
        int r;

        if ((r = asprintf_safe(&plain, REGISTRY_USER ":%s", password)) < 0)
                return r;
        n = sodium_base64_encoded_len(strlen(plain), sodium_base64_VARIANT_ORIGINAL);
        b64 = malloc(n);
        if (!b64) {
                explicit_bzero(plain, strlen(plain));
                return -ENOMEM;
        }
        sodium_bin2base64(b64, n, (const uint8_t *)plain, strlen(plain),
                          sodium_base64_VARIANT_ORIGINAL);
        explicit_bzero(plain, strlen(plain));
        r = asprintf_safe(ret,
                          "{\n"
                          "  \"auths\": {\n"
                          "    \"%s\": { \"auth\": \"%s\" },\n"
                          "    \"" REGISTRY_HOST "\": { \"auth\": \"%s\" }\n"
                          "  }\n"
                          "}\n",
                          host, b64, b64);
        explicit_bzero(b64, n);
        return r;
}

static int images_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_(push_paths_done) struct push_paths p = {};
        _cleanup_(oci_list_done) struct oci_list l = {};
        _cleanup_free_ char *pw = NULL, *auth = NULL;
        int r;

        if ((r = push_paths_get(c, &p)) < 0)
                return r;
        r = bundle_images_load(c, &l);
        if (r == -ENOENT)
                return log_error_errno(r, "The offline bundle's manifest went away: %s", l.manifest);
        if (r < 0)
                return r;
        r = step_secret(c, "registry_password", &pw);
        if (r < 0)
                return log_error_errno(r, "No registry_password in %s/" STEP_SECRETS_FILE ".",
                                       c->state_dir);
        r = render_auth(p.host, pw, &auth);
        explicit_bzero(pw, strlen(pw));
        if (r < 0 || (r = step_render_add_file(&rd, p.auth, TAKE_PTR(auth), 0600)) < 0)
                return r;
        /* Straight to this node's registry, not through goodrain.me: the repository is the
         * same, and the push needs neither the VIP nor haproxy up yet. */
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_free_ char *src = NULL, *dest = NULL;

                if ((r = asprintf_safe(&src, "oci-archive:%s", l.items[i].path)) < 0 ||
                    (r = asprintf_safe(&dest, "docker://%s/%s", p.host, l.items[i].ref)) < 0)
                        return r;
                /* --preserve-digests: the registry serves the manifest the bundle was
                 * checked with, so the digest compared on a rerun is that one. */
                r = step_render_add_command(&rd, "skopeo", "copy", "--quiet", "--preserve-digests",
                                            "--dest-authfile", p.auth, "--dest-cert-dir", p.certs,
                                            src, dest, NULL);
                if (r < 0)
                        return r;
        }
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static int run(const struct step_ctx *c, char *const argv[], char **ret_output) {
        return c->run ? c->run(c->run_userdata, argv, ret_output) : run_command(argv, ret_output);
}

/* The manifest digest the registry serves for ref: 1 and ret filled, 0 when it has none
 * (or does not answer). */
static int remote_digest(const struct step_ctx *c, const struct push_paths *p, const char *ref,
                         char ret[static 72]) {
        _cleanup_free_ char *dest = NULL, *out = NULL;
        int r;

        if ((r = asprintf_safe(&dest, "docker://%s/%s", p->host, ref)) < 0)
                return r;
        char *argv[] = { (char *)"skopeo", (char *)"inspect", (char *)"--authfile", p->auth,
                         (char *)"--cert-dir", p->certs, (char *)"--format", (char *)"{{.Digest}}",
                         dest, NULL };
        if (run(c, argv, &out) != 0 || !out)
                return 0;
        /* Warnings may share the output: take the line that is a digest. */
        for (char *line = out; line && *line;) {
                size_t l = strcspn(line, "\n");

                if (l == 71 && startswith(line, "sha256:")) {
                        memcpy(ret, line, 71);
                        ret[71] = 0;
                        return 1;
                }
                line += l;
                if (*line)
                        line++;
        }
        return 0;
}

/* Every archive against the manifest, before anything is pushed: one bad file stops all. */
static int verify_all(const struct oci_list *l, struct cmd_failure *f) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *m;
        int r;

        /* The failure record reads `sha256sum FILE...` with what differs. */
        if ((r = strv_push(&argv, "sha256sum")) < 0)
                return r;
        m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                char hex[65];
                int k = sha256_file(l->items[i].path, -1, hex, NULL);

                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0)
                        fprintf(m, "%s: cannot read (artifact '%s'): %s\n", l->items[i].path,
                                l->items[i].name, strerror(-k));
                else if (!streq(hex, l->items[i].sha256))
                        fprintf(m, "%s: sha256 mismatch (artifact '%s'): expected %s (from %s), "
                                   "actual %s\n", l->items[i].path, l->items[i].name,
                                l->items[i].sha256, l->manifest, hex);
                else
                        continue;
                if ((r = strv_push(&argv, l->items[i].path)) < 0)
                        break;
        }
        if (fclose(m) != 0)
                return -ENOMEM;
        if (r < 0)
                return r;
        if (strv_length(argv) == 1)
                return 0;
        (void)cmd_failure_set(f, argv, 1, buf);
        return log_error_errno(-EBADMSG, "The offline bundle is damaged; nothing was pushed:\n%s"
                                         "Rebuild the image (or restore the files) from a bundle "
                                         "that `imagebuild bundle verify` accepts.", buf);
}

static int images_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                        struct cmd_failure *f) {
        _cleanup_(push_paths_done) struct push_paths p = {};
        _cleanup_(oci_list_done) struct oci_list l = {};
        struct step_render files_only = *r;
        unsigned pushed = 0;
        int k;

        files_only.n_commands = 0;
        k = step_apply_default(c, &files_only, resumed, f);
        if (k < 0)
                return k;
        if ((k = push_paths_get(c, &p)) < 0 || (k = bundle_images_load(c, &l)) < 0)
                return k;
        if (l.n != r->n_commands)
                return log_error_errno(-ESTALE, "%s changed during the step; run it again.",
                                       l.manifest);
        k = verify_all(&l, f);
        if (k < 0)
                return k;
        k = registry_wait_ready(p.addr, REGISTRY_PORT, READY_TIMEOUT_MS);
        if (k < 0)
                return log_error_errno(k, "The registry at %s does not answer: is the registry "
                                          "step done?", p.host);
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_free_ char *out = NULL;
                char want[72], have[72];

                k = oci_archive_digest(l.items[i].path, want);
                if (k < 0)
                        return log_error_errno(k, "%s (artifact '%s'): not an OCI archive with one "
                                                  "image: %m", l.items[i].path, l.items[i].name);
                if (remote_digest(c, &p, l.items[i].ref, have) > 0 && streq(have, want)) {
                        log_info("%s/%s: already in the registry (%s)", REGISTRY_HOST,
                                 l.items[i].ref, want);
                        continue;
                }
                k = run(c, r->commands[i], &out);
                if (k != 0) {
                        (void)cmd_failure_set(f, r->commands[i], k, out);
                        return log_error_errno(k < 0 ? k : -EIO, "Pushing %s as %s/%s failed:\n%s",
                                               l.items[i].path, REGISTRY_HOST, l.items[i].ref,
                                               out ?: "");
                }
                log_info("Pushed %s/%s (%s)", REGISTRY_HOST, l.items[i].ref, want);
                pushed++;
        }
        log_info("Offline images: %zu in the bundle, %u pushed now.", l.n, pushed);
        return 0;
}

static int images_check(const struct step_ctx *c, const struct step_render *r) {
        _cleanup_(push_paths_done) struct push_paths p = {};
        _cleanup_(oci_list_done) struct oci_list l = {};
        int k;

        k = step_check_default(c, r);
        if (k <= 0)
                return k;
        if ((k = push_paths_get(c, &p)) < 0 || (k = bundle_images_load(c, &l)) < 0)
                return k;
        for (size_t i = 0; i < l.n; i++) {
                char want[72], have[72];

                if (oci_archive_digest(l.items[i].path, want) < 0 ||
                    remote_digest(c, &p, l.items[i].ref, have) <= 0 || !streq(want, have))
                        return 0;
        }
        return 1;
}

static const char *const images_after[] = { "registry", "registry-trust", NULL };

const struct step step_images = {
        .name = "images",
        .after = images_after,
        .skip_reason = images_skip,
        .render = images_render,
        .check = images_check,
        .apply = images_apply,
};
