/* SPDX-License-Identifier: MIT */
/* The image registry (issue 4 item 4): Debian's docker-registry on the registry node at
 * its cluster address:5000 ("registry"), and on every node the trust in it and the name
 * goodrain.me on the VIP ("registry-trust"). The offline images are pushed by the
 * "images" step (registry_images.c). */
#include <crypt.h>
#include <netinet/in.h>
#include <sodium.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "pki.h"
#include "registry.h"
#include "util.h"

/* bcrypt cost of the htpasswd line, what `htpasswd -B` uses. The registry checks it on
 * every request of a push; the password is 32 random characters (about 190 bits), so a
 * higher cost would slow pushes without making guessing any harder. */
#define BCRYPT_COST 5
#define READY_TIMEOUT_MS 60000
#define HTTP_SECRET_CONTEXT "rainboot registry http.secret"

bool registry_in_cluster(const struct step_ctx *c) {
        if (c->cfg->ext_registry)
                return false;
        for (size_t i = 0; i < c->plan->n; i++)
                if (c->plan->nodes[i].roles & ROLE_REGISTRY)
                        return true;
        return false;
}

const char *registry_secrets_missing(const struct step_ctx *c, bool password) {
        _cleanup_free_ char *path = NULL, *pw = NULL;
        int r;

        /* Sealed by discovery; a node given a plan by hand (the VIP harness) has none. */
        if (c->state_dir && asprintf_safe(&path, "%s/" STEP_SECRETS_FILE, c->state_dir) >= 0 &&
            access(path, F_OK) < 0)
                return "no sealed secrets (" STEP_SECRETS_FILE ") in the state directory";
        if (!password || !c->state_dir)
                return NULL;
        r = step_secret(c, "registry_password", &pw);
        if (pw)
                explicit_bzero(pw, strlen(pw));
        /* Other errors are the render's to report. */
        return r == -ENOENT ? "the sealed secrets carry no registry_password" : NULL;
}

int registry_self_address(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]) {
        char hex[2 * NODE_ID_LEN + 1];

        if (!c->self_info || c->self_info->n_addrs == 0) {
                node_id_to_hex(c->self->id, hex);
                return log_error_errno(-EADDRNOTAVAIL,
                                       "The committed view has no address for this node (%s): "
                                       "the registry listens on it.", hex);
        }
        inet_ntop(AF_INET, &c->self_info->addrs[0], buf, INET_ADDRSTRLEN);
        return 0;
}

int registry_vip(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]) {
        if (c->cfg->has_vip)
                inet_ntop(AF_INET, &c->cfg->vip.addr, buf, INET_ADDRSTRLEN);
        else if (c->cfg->ext_lb)
                inet_ntop(AF_INET, &c->cfg->ext_lb->address, buf, INET_ADDRSTRLEN);
        else
                return -ENOENT;
        return 0;
}

static int finish_memstream(FILE *f, char **buf, char **ret) {
        if (fclose(f) != 0) {
                free(*buf);
                return -ENOMEM;
        }
        *ret = *buf;
        return 0;
}

int registry_render_config(const struct step_ctx *c, const char *http_secret, char **ret) {
        _cleanup_free_ char *crt = NULL, *key = NULL, *htpasswd = NULL, *storage = NULL;
        char self[INET_ADDRSTRLEN], digest[2 * DIGEST_LEN + 1];
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = registry_self_address(c, self)) < 0)
                return r;
        if ((r = pki_paths(c, "registry", &crt, &key)) < 0 ||
            (r = step_path(c, REGISTRY_HTPASSWD, &htpasswd)) < 0 ||
            (r = asprintf_safe(&storage, "%s%s/registry", c->root ? c->root : "",
                               c->cfg->services_mount)) < 0)
                return r;
        hex_encode(c->plan->digest, DIGEST_LEN, digest);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot from plan %.16s (epoch %u); `firstboot apply` rewrites it.\n"
                "version: 0.1\n"
                "log:\n"
                "  level: info\n"
                "  fields:\n"
                "    service: registry\n"
                "storage:\n"
                "  filesystem:\n"
                "    rootdirectory: '%s'\n"
                "  # Images come from the offline bundle and Rainbond's builds; nothing is deleted\n"
                "  # through the API (a deleted tag another node still pulls breaks it).\n"
                "  delete:\n"
                "    enabled: false\n"
                "  cache:\n"
                "    blobdescriptor: inmemory\n"
                "http:\n"
                "  addr: '%s:%u'\n"
                "  # The same on every registry node: an upload started on one may go on on another.\n"
                "  secret: '%s'\n"
                "  tls:\n"
                "    certificate: '%s'\n"
                "    key: '%s'\n"
                "  headers:\n"
                "    X-Content-Type-Options: [nosniff]\n"
                "auth:\n"
                "  htpasswd:\n"
                "    realm: rainboot-registry\n"
                "    path: '%s'\n"
                "health:\n"
                "  storagedriver:\n"
                "    enabled: true\n"
                "    interval: 10s\n"
                "    threshold: 3\n",
                digest, c->plan->epoch, storage, self, REGISTRY_PORT, http_secret, crt, key,
                htpasswd);
        return finish_memstream(f, &buf, ret);
}

int registry_htpasswd_line(const char *user, const char *password, const char *current,
                           char **ret) {
        _cleanup_free_ struct crypt_data *cd = calloc(1, sizeof *cd);
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        size_t ul = strlen(user);
        const char *h;
        int r;

        if (!cd)
                return -ENOMEM;
        for (const char *p = current; p && *p;) {
                size_t l = strcspn(p, "\n");

                if (l > ul && strncmp(p, user, ul) == 0 && p[ul] == ':') {
                        _cleanup_free_ char *old = strndup(p + ul + 1, l - ul - 1);

                        if (!old)
                                return -ENOMEM;
                        h = crypt_rn(password, old, cd, sizeof *cd);
                        /* Kept when it still matches: a new salt every run would rewrite
                         * the file and restart the registry on every apply. */
                        if (h && h[0] != '*' && streq(h, old)) {
                                r = asprintf_safe(ret, "%s:%s\n", user, old);
                                explicit_bzero(cd, sizeof *cd);
                                return r;
                        }
                        break;
                }
                p += l;
                if (*p)
                        p++;
        }
        /* $2y$ is what `htpasswd -B` writes; Go's bcrypt (the registry's) accepts it. */
        if (!crypt_gensalt_rn("$2y$", BCRYPT_COST, NULL, 0, salt, sizeof salt))
                return errno > 0 ? -errno : -EINVAL;
        h = crypt_rn(password, salt, cd, sizeof *cd);
        if (!h || h[0] == '*') {
                explicit_bzero(cd, sizeof *cd);
                return -EINVAL;
        }
        r = asprintf_safe(ret, "%s:%s\n", user, h);
        explicit_bzero(cd, sizeof *cd);
        return r;
}

int registry_render_hosts_toml(const char *ca_path, char **ret) {
        return asprintf_safe(ret,
                             "# Rendered by firstboot: containerd trusts the cluster's registry.\n"
                             "server = \"https://" REGISTRY_HOST "\"\n"
                             "\n"
                             "[host.\"https://" REGISTRY_HOST "\"]\n"
                             "  capabilities = [\"pull\", \"resolve\", \"push\"]\n"
                             "  ca = \"%s\"\n",
                             ca_path);
}

static bool is_domain(const char *s, size_t l) {
        return l == strlen(REGISTRY_DOMAIN) && strncasecmp(s, REGISTRY_DOMAIN, l) == 0;
}

/* line, without the domain among its names (another address for it would shadow the
 * VIP); dropped when no name is left. */
static void hosts_line(FILE *f, const char *line) {
        const char *hash = strchr(line, '#'), *end = hash ? hash : line + strlen(line);
        const char *addr = line + strspn(line, " \t"), *names;
        size_t al = strcspn(addr, " \t#"), n_other = 0;
        bool named = false;

        names = addr + al;
        for (const char *q = names; q < end;) {
                size_t l;

                q += strspn(q, " \t");
                l = strcspn(q, " \t#");
                if (l == 0)
                        break;
                if (is_domain(q, l))
                        named = true;
                else
                        n_other++;
                q += l;
        }
        if (!named) {
                fprintf(f, "%s\n", line);
                return;
        }
        if (n_other == 0)
                return;
        fprintf(f, "%.*s", (int)al, addr);
        for (const char *q = names; q < end;) {
                size_t l;

                q += strspn(q, " \t");
                l = strcspn(q, " \t#");
                if (l == 0)
                        break;
                if (!is_domain(q, l))
                        fprintf(f, " %.*s", (int)l, q);
                q += l;
        }
        if (hash)
                fprintf(f, " %s", hash);
        fputc('\n', f);
}

int registry_hosts_rewrite(const char *current, const char *vip, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        bool placed = false;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        for (const char *p = current; p && *p;) {
                size_t l = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, l);

                p += l;
                if (*p)
                        p++;
                if (!line) {
                        fclose(f);
                        free(buf);
                        return -ENOMEM;
                }
                /* Kept in place, so a rerun renders the same bytes. */
                if (strstr(line, REGISTRY_HOSTS_MARK)) {
                        if (!placed)
                                fprintf(f, "%s %s %s\n", vip, REGISTRY_DOMAIN, REGISTRY_HOSTS_MARK);
                        placed = true;
                        continue;
                }
                hosts_line(f, line);
        }
        if (!placed)
                fprintf(f, "%s %s %s\n", vip, REGISTRY_DOMAIN, REGISTRY_HOSTS_MARK);
        return finish_memstream(f, &buf, ret);
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int registry_wait_ready(const char *addr, unsigned port, unsigned timeout_ms) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        uint64_t deadline = now_ms() + timeout_ms;

        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return -EINVAL;
        for (;;) {
                _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct timeval tv = { .tv_sec = 1 };
                struct timespec pause = { .tv_nsec = 200 * 1000000L };

                if (fd < 0)
                        return -errno;
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                        return 0;
                if (now_ms() >= deadline)
                        return -ETIMEDOUT;
                nanosleep(&pause, NULL);
        }
}

/* ---- step "registry" ---- */

static const char *registry_skip(const struct step_ctx *c) {
        if (c->cfg->ext_registry)
                return "external.registry is set: the images live there";
        if (!(c->self->roles & ROLE_REGISTRY))
                return "not a registry node";
        return registry_secrets_missing(c, true);
}

static int http_secret(const char *password, char ret[static 65]) {
        uint8_t h[32];

        if (crypto_generichash(h, sizeof h, (const uint8_t *)password, strlen(password),
                               (const uint8_t *)HTTP_SECRET_CONTEXT,
                               strlen(HTTP_SECRET_CONTEXT)) < 0)
                return -EINVAL;
        hex_encode(h, sizeof h, ret);
        sodium_memzero(h, sizeof h);
        return 0;
}

static int registry_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_free_ char *conf_path = NULL, *htpasswd_path = NULL, *dropin_path = NULL;
        _cleanup_free_ char *pw = NULL, *current = NULL, *line = NULL, *conf = NULL;
        _cleanup_free_ char *dropin = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        char secret[65];
        size_t size = 0;
        int r;

        if ((r = step_path(c, REGISTRY_CONFIG, &conf_path)) < 0 ||
            (r = step_path(c, REGISTRY_HTPASSWD, &htpasswd_path)) < 0 ||
            (r = step_path(c, REGISTRY_DROPIN, &dropin_path)) < 0)
                return r;
        r = step_secret(c, "registry_password", &pw);
        if (r == -ENOENT)
                return log_error_errno(r, "No registry_password in %s/" STEP_SECRETS_FILE ": the "
                                          "secrets were sealed by an older firstboot; rerun "
                                          "discovery.", c->state_dir);
        if (r < 0)
                return r;
        r = read_full_file(htpasswd_path, &current, &size);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read %s: %m", htpasswd_path);
        r = registry_htpasswd_line(REGISTRY_USER, pw, current, &line);
        if (r >= 0)
                r = http_secret(pw, secret);
        explicit_bzero(pw, strlen(pw));
        if (r < 0)
                return log_error_errno(r, "Cannot hash the registry password: %m");
        if ((r = registry_render_config(c, secret, &conf)) < 0)
                return r;
        explicit_bzero(secret, sizeof secret);
        /* root, as for etcd: the TLS key from the pki step and the services mount belong
         * to root, and Debian's unit would run it as docker-registry. */
        if ((r = asprintf_safe(&dropin, "# Rendered by firstboot: the registry reads the "
                                        "cluster's TLS key and storage.\n"
                                        "[Service]\n"
                                        "User=root\n")) < 0)
                return r;
        if ((r = step_render_add_file(&rd, htpasswd_path, TAKE_PTR(line), 0600)) < 0 ||
            (r = step_render_add_file(&rd, conf_path, TAKE_PTR(conf), 0600)) < 0 ||
            (r = step_render_add_file(&rd, dropin_path, TAKE_PTR(dropin), 0644)) < 0)
                return r;
        if (c->supervisor == SVCMGR_SYSTEMD &&
            (r = step_render_add_command(&rd, "systemctl", "daemon-reload", NULL)) < 0)
                return r;
        if ((r = strv_push(&argv, "docker-registry")) < 0 || (r = strv_push(&argv, "serve")) < 0 ||
            (r = strv_push(&argv, conf_path)) < 0)
                return r;
        /* It rereads nothing on a signal: a changed config means a restart. */
        r = step_render_add_service(&rd, "docker-registry", "docker-registry.service", 0,
                                    TAKE_PTR(argv));
        if (r < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static int registry_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                          struct cmd_failure *f) {
        char self[INET_ADDRSTRLEN];
        int k;

        k = step_apply_default(c, r, resumed, f);
        if (k < 0)
                return k;
        if ((k = registry_self_address(c, self)) < 0)
                return k;
        /* The images step pushes next: wait until it listens. */
        k = registry_wait_ready(self, REGISTRY_PORT, READY_TIMEOUT_MS);
        if (k < 0)
                return log_error_errno(k, "docker-registry does not accept connections on %s:%u "
                                          "after it was started: see its log.", self,
                                       REGISTRY_PORT);
        return 0;
}

static const char *const registry_after[] = { "pki", NULL };

const struct step step_registry = {
        .name = "registry",
        .after = registry_after,
        .skip_reason = registry_skip,
        .render = registry_render,
        .apply = registry_apply,
};

/* ---- step "registry-trust" ---- */

static const char *trust_skip(const struct step_ctx *c) {
        if (c->cfg->ext_registry)
                return "external.registry is set: nodes pull from it with its own CA";
        if (!registry_in_cluster(c))
                return "the plan has no registry node";
        if (!c->cfg->has_vip && !c->cfg->ext_lb)
                return "no vip.address and no external.load_balancer for goodrain.me to resolve to";
        return registry_secrets_missing(c, false);
}

static int trust_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_free_ char *ca = NULL, *toml_path = NULL, *toml = NULL, *hosts_path = NULL;
        _cleanup_free_ char *current = NULL, *hosts = NULL;
        char vip[INET_ADDRSTRLEN];
        size_t size = 0;
        int r;

        if ((r = registry_vip(c, vip)) < 0)
                return log_error_errno(r, "Neither vip.address nor external.load_balancer is "
                                          "set: goodrain.me has no address to resolve to.");
        if ((r = pki_ca_path(c, &ca)) < 0 ||
            (r = step_path(c, REGISTRY_CONTAINERD_HOSTS, &toml_path)) < 0 ||
            (r = step_path(c, REGISTRY_HOSTS_FILE, &hosts_path)) < 0 ||
            (r = registry_render_hosts_toml(ca, &toml)) < 0)
                return r;
        r = read_full_file(hosts_path, &current, &size);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read %s: %m", hosts_path);
        if ((r = registry_hosts_rewrite(current, vip, &hosts)) < 0)
                return r;
        if ((r = step_render_add_file(&rd, toml_path, TAKE_PTR(toml), 0644)) < 0 ||
            (r = step_render_add_file(&rd, hosts_path, TAKE_PTR(hosts), 0644)) < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

/* The CA copy for skopeo and podman: its content is the pki step's, read at apply time
 * (`firstboot plan` renders before any CA exists). */
static int ca_copy_paths(const struct step_ctx *c, char **ret_src, char **ret_dest) {
        _cleanup_free_ char *src = NULL, *dest = NULL;
        int r;

        if ((r = pki_ca_path(c, &src)) < 0 || (r = step_path(c, REGISTRY_CERTS_DIR "/ca.crt", &dest)) < 0)
                return r;
        *ret_src = TAKE_PTR(src);
        *ret_dest = TAKE_PTR(dest);
        return 0;
}

static int trust_check(const struct step_ctx *c, const struct step_render *r) {
        _cleanup_free_ char *src = NULL, *dest = NULL, *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        int k;

        k = step_check_default(c, r);
        if (k <= 0)
                return k;
        if ((k = ca_copy_paths(c, &src, &dest)) < 0)
                return k;
        if (read_full_file(src, &a, &na) < 0 || read_full_file(dest, &b, &nb) < 0)
                return 0;
        return na == nb && memcmp(a, b, na) == 0;
}

static int trust_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                       struct cmd_failure *f) {
        _cleanup_free_ char *src = NULL, *dest = NULL, *pem = NULL, *dir = NULL;
        size_t size = 0;
        int k;

        k = step_apply_default(c, r, resumed, f);
        if (k < 0)
                return k;
        if ((k = ca_copy_paths(c, &src, &dest)) < 0 ||
            (k = step_path(c, REGISTRY_CERTS_DIR, &dir)) < 0)
                return k;
        k = read_full_file(src, &pem, &size);
        if (k == -ENOENT)
                return log_error_errno(k, "No cluster CA at %s: the pki step makes it on every "
                                          "node holding the sealed secrets; run it first.", src);
        if (k < 0)
                return log_error_errno(k, "Cannot read %s: %m", src);
        if ((k = mkdir_parents(dir, 0755)) < 0)
                return log_error_errno(k, "Cannot create %s: %m", dir);
        k = write_file_atomic(dest, pem, size, 0644);
        if (k < 0)
                return log_error_errno(k, "Cannot write %s: %m", dest);
        log_info("Wrote %s", dest);
        return 0;
}

static const char *const trust_after[] = { "pki", NULL };

const struct step step_registry_trust = {
        .name = "registry-trust",
        .after = trust_after,
        .skip_reason = trust_skip,
        .render = trust_render,
        .check = trust_check,
        .apply = trust_apply,
};
