/* SPDX-License-Identifier: MIT */
/* The pki step (issue 4 item 2): on every node holding the sealed secrets, the cluster
 * CA certificate (derived from ca_seed, the same bytes on every node) and, for each
 * service in PKI_SERVICES, a key made here with a certificate the CA signs for this
 * node's names. Keys are random, so the default content comparison would re-issue on
 * every run: check() instead asks whether what is on disk chains to the CA and names
 * what is wanted now, and apply() issues only what fails that. */
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"
#include "util.h"

/* Rendered in place of a leaf's content, which only apply() makes (`firstboot plan`
 * shows this text). */
#define LEAF_MARK "# Made by `firstboot apply` on this node"
/* A leaf this close to its end is issued anew on the next run. */
#define RENEW_DAYS 30
/* The MySQL server reads its key as this group's member on the appliance. */
#define MYSQL_GROUP "mysql"

static const char *pki_skip(const struct step_ctx *c) {
        _cleanup_free_ char *path = NULL;

        /* The seed is sealed by discovery; a node given a plan by hand has none. */
        if (c->state_dir && asprintf_safe(&path, "%s/" STEP_SECRETS_FILE, c->state_dir) >= 0 &&
            access(path, F_OK) < 0)
                return "no sealed secrets (" STEP_SECRETS_FILE ") in the state directory";
        return NULL;
}

/* The system's trust store (under the root) gets the CA where systemd runs the services:
 * the appliance. The direct supervisor of the test harness runs on a shared host. */
static bool installs_trust(const struct step_ctx *c) {
        return c->supervisor == SVCMGR_SYSTEMD;
}

static mode_t key_mode(const struct step_ctx *c, const char *service) {
        return c->supervisor == SVCMGR_SYSTEMD && streq(service, "mysql") ? 0640 : 0600;
}

static int derive_ca(const struct step_ctx *c, struct pki_ca **ret) {
        _cleanup_free_ char *hex = NULL;
        uint8_t seed[PKI_SEED_LEN];
        int r;

        r = step_secret(c, "ca_seed", &hex);
        if (r == -ENOENT)
                return log_error_errno(r, "No ca_seed in %s/" STEP_SECRETS_FILE ": the secrets "
                                          "were sealed by an older firstboot; run discovery again "
                                          "on this node to receive them.", c->state_dir);
        if (r < 0)
                return r;
        r = pki_seed_from_hex(hex, seed);
        explicit_bzero(hex, strlen(hex));
        if (r < 0)
                return r;
        r = pki_ca_derive(seed, c->cfg->cluster_name, ret);
        explicit_bzero(seed, sizeof seed);
        if (r < 0)
                return log_error_errno(r, "Cannot derive the cluster CA: %m");
        return 0;
}

static int leaf_placeholders(const struct step_ctx *c, const char *service, char **ret_crt,
                             char **ret_key) {
        _cleanup_strv_free_ char **sans = NULL;
        _cleanup_free_ char *list = NULL, *crt = NULL;
        int r;

        if ((r = pki_sans_for(c, service, &sans)) < 0 || (r = argv_to_string(sans, &list)) < 0 ||
            (r = asprintf_safe(&crt,
                               LEAF_MARK ": the certificate for %s, signed by the cluster CA\n"
                               "# (serverAuth, clientAuth) for: %s\n",
                               service, list)) < 0 ||
            (r = asprintf_safe(ret_key, LEAF_MARK ": an ECDSA P-256 private key for %s\n",
                               service)) < 0)
                return r;
        *ret_crt = TAKE_PTR(crt);
        return 0;
}

static int pki_render(const struct step_ctx *c, struct step_render *ret) {
        static const char *const services[] = PKI_SERVICES;
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL;
        _cleanup_free_ char *pem = NULL, *ca_path = NULL;
        int r;

        if ((r = derive_ca(c, &ca)) < 0)
                return r;
        if ((r = pki_ca_pem(ca, &pem)) < 0 || (r = pki_ca_path(c, &ca_path)) < 0)
                return r;
        if (installs_trust(c)) {
                _cleanup_free_ char *trust = NULL, *bundle = NULL;
                char *copy = strdup(pem), *note = NULL;

                if (!copy)
                        return -ENOMEM;
                /* Where update-ca-certificates looks, so a later run of it keeps the CA.
                 * It is not run here: it rebuilds every link and the bundle (some 900
                 * programs started, two minutes under emulation); apply adds just this
                 * CA to the store the way it would. */
                if ((r = step_path(c, PKI_SYSTEM_TRUST, &trust)) < 0 ||
                    (r = step_render_add_file(&rd, trust, copy, 0644)) < 0 ||
                    (r = step_path(c, PKI_SYSTEM_BUNDLE, &bundle)) < 0 ||
                    (r = asprintf_safe(&note,
                                       LEAF_MARK ": the system CA bundle with the cluster CA "
                                       "added once, and the links " PKI_SYSTEM_TRUST_LINK
                                       " and " PKI_SYSTEM_CERTS_DIR "/<subject hash>.N\n")) < 0 ||
                    (r = step_render_add_file(&rd, bundle, note, 0644)) < 0)
                        return r;
        }
        if ((r = step_render_add_file(&rd, ca_path, TAKE_PTR(pem), 0644)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
                _cleanup_free_ char *crt_path = NULL, *key_path = NULL, *crt = NULL, *key = NULL;

                if ((r = pki_paths(c, services[i], &crt_path, &key_path)) < 0 ||
                    (r = leaf_placeholders(c, services[i], &crt, &key)) < 0 ||
                    (r = step_render_add_file(&rd, key_path, TAKE_PTR(key),
                                              key_mode(c, services[i]))) < 0 ||
                    (r = step_render_add_file(&rd, crt_path, TAKE_PTR(crt), 0644)) < 0)
                        return r;
        }
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static bool is_leaf(const struct step_file *f) {
        return startswith(f->content, LEAF_MARK);
}

/* 1 when path holds exactly content with mode (the CA files). */
static int file_current(const char *path, const char *content, mode_t mode) {
        _cleanup_free_ char *have = NULL;
        struct stat st;
        size_t size;
        int r;

        if (stat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if ((st.st_mode & 07777) != mode)
                return 0;
        r = read_full_file(path, &have, &size);
        if (r < 0)
                return r;
        return size == strlen(content) && memcmp(have, content, size) == 0;
}

/* The group the key should have; (gid_t)-1 when it stays root's. */
static gid_t key_group(const struct step_ctx *c, const char *service) {
        struct group *g;

        if (key_mode(c, service) != 0640)
                return (gid_t)-1;
        g = getgrnam(MYSQL_GROUP);
        return g ? g->gr_gid : (gid_t)-1;
}

/* 1 when service's key and certificate are in place, chain to ca_pem and name what is
 * wanted now. */
static int leaf_current(const struct step_ctx *c, const char *service, const char *ca_pem,
                        const char **ret_why) {
        _cleanup_free_ char *crt_path = NULL, *key_path = NULL, *crt = NULL, *key = NULL;
        _cleanup_strv_free_ char **sans = NULL;
        gid_t gid = key_group(c, service);
        const char *why = NULL;
        struct stat st;
        size_t size;
        int r;

        if ((r = pki_paths(c, service, &crt_path, &key_path)) < 0 ||
            (r = pki_sans_for(c, service, &sans)) < 0)
                return r;
        /* Read before anything is decided, as the default check reads every file: the
         * crash test stops apply at a FIFO put in a file's place. */
        r = read_full_file(crt_path, &crt, &size);
        if (r < 0 && r != -ENOENT)
                return r;
        r = 0;
        if (stat(key_path, &st) < 0) {
                if (errno != ENOENT)
                        return -errno;
                why = "missing";
        } else if ((st.st_mode & 07777) != key_mode(c, service) ||
                   (gid != (gid_t)-1 && st.st_gid != gid))
                why = "the key has another mode or group than wanted";
        else if ((r = read_full_file(key_path, &key, &size)) < 0) {
                if (r != -ENOENT)
                        return r;
                why = "missing";
        }
        if (!why && !crt)
                why = "missing";
        if (!why) {
                r = pki_verify(ca_pem, crt, key, sans, RENEW_DAYS, &why);
                if (r == -EBADMSG)
                        why = "unreadable PEM";
                else if (r < 0)
                        why = NULL;
        }
        if (key)
                explicit_bzero(key, strlen(key));
        if (r < 0 && r != -EBADMSG)
                return r;
        *ret_why = why;
        return !why;
}

/* ---- the system trust store ---- */

struct trust_paths {
        char *link, *dir, *bundle;
};

static void trust_paths_done(struct trust_paths *t) {
        free(t->link);
        free(t->dir);
        free(t->bundle);
}

static int trust_paths_get(const struct step_ctx *c, struct trust_paths *ret) {
        struct trust_paths t = {};
        int r;

        if ((r = step_path(c, PKI_SYSTEM_TRUST_LINK, &t.link)) < 0 ||
            (r = step_path(c, PKI_SYSTEM_CERTS_DIR, &t.dir)) < 0 ||
            (r = step_path(c, PKI_SYSTEM_BUNDLE, &t.bundle)) < 0) {
                trust_paths_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

/* 1 when path is a symlink to target. */
static int link_is(const char *path, const char *target) {
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof buf - 1);

        if (n < 0)
                return errno == ENOENT || errno == EINVAL ? 0 : -errno;
        buf[n] = 0;
        return streq(buf, target);
}

/* The OpenSSL hash link of the CA ("<hash>.N" -> rainboot-ca.pem, as `openssl rehash`
 * names it): 1 and its index when there, else 0 and the first free index. */
static int hash_link_find(const char *dir, unsigned long hash, unsigned *ret_index) {
        const char *base = strrchr(PKI_SYSTEM_TRUST_LINK, '/') + 1;

        /* Another certificate may have the same subject hash: OpenSSL tries .0, .1, ... */
        for (unsigned i = 0; i < 16; i++) {
                _cleanup_free_ char *path = NULL;
                int r;

                if (asprintf_safe(&path, "%s/%08lx.%u", dir, hash, i) < 0)
                        return -ENOMEM;
                struct stat st;

                r = link_is(path, base);
                if (r < 0)
                        return r;
                if (r == 0 && lstat(path, &st) == 0)
                        continue;
                if (r == 0 && errno != ENOENT)
                        return -errno;
                *ret_index = i;
                return r;
        }
        return -ENOSPC;
}

/* 1 when the CA is in the system store: the link update-ca-certificates makes, its hash
 * link, and the bundle holds it once (and no other cluster CA). */
static int trust_current(const struct step_ctx *c, const char *ca_pem) {
        _cleanup_(trust_paths_done) struct trust_paths t = {};
        _cleanup_free_ char *have = NULL, *want = NULL;
        unsigned long hash;
        unsigned idx;
        bool ok;
        int r;

        if ((r = trust_paths_get(c, &t)) < 0 || (r = pki_subject_hash(ca_pem, &hash)) < 0)
                return r;
        r = link_is(t.link, PKI_SYSTEM_TRUST);
        if (r < 0)
                return r;
        ok = r > 0;
        r = hash_link_find(t.dir, hash, &idx);
        if (r < 0)
                return r;
        ok = ok && r > 0;
        r = read_full_file(t.bundle, &have, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        r = pki_bundle_with_ca(have, ca_pem, &want);
        if (r < 0)
                return r;
        return ok && r == 0;
}

/* Replaces path by a symlink to target, atomically (a new link renamed over it). */
static int symlink_atomic(const char *target, const char *path) {
        _cleanup_free_ char *tmp = NULL;

        if (asprintf_safe(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
                return -ENOMEM;
        (void)unlink(tmp);
        if (symlink(target, tmp) < 0)
                return log_error_errno(-errno, "Cannot create the link %s: %m", tmp);
        if (rename(tmp, path) < 0) {
                int r = -errno;

                (void)unlink(tmp);
                return log_error_errno(r, "Cannot rename %s to %s: %m", tmp, path);
        }
        return 0;
}

/* What update-ca-certificates would do for this one CA: link it into the hashed
 * directory and add it to the bundle, atomically and once. */
static int trust_install(const struct step_ctx *c, const char *ca_pem) {
        _cleanup_(trust_paths_done) struct trust_paths t = {};
        _cleanup_free_ char *have = NULL, *want = NULL, *hash_path = NULL;
        unsigned long hash;
        unsigned idx;
        int r;

        if ((r = trust_paths_get(c, &t)) < 0 || (r = pki_subject_hash(ca_pem, &hash)) < 0)
                return r;
        r = mkdir_parents(t.dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", t.dir);
        r = link_is(t.link, PKI_SYSTEM_TRUST);
        if (r < 0)
                return log_error_errno(r, "Cannot read the link %s: %m", t.link);
        if (r == 0 && (r = symlink_atomic(PKI_SYSTEM_TRUST, t.link)) < 0)
                return r;
        r = hash_link_find(t.dir, hash, &idx);
        if (r < 0)
                return log_error_errno(r, "Cannot find a free hash link %08lx.N in %s: %m", hash,
                                       t.dir);
        if (r == 0) {
                if (asprintf_safe(&hash_path, "%s/%08lx.%u", t.dir, hash, idx) < 0)
                        return -ENOMEM;
                r = symlink_atomic(strrchr(PKI_SYSTEM_TRUST_LINK, '/') + 1, hash_path);
                if (r < 0)
                        return r;
        }
        r = read_full_file(t.bundle, &have, NULL);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read %s: %m", t.bundle);
        r = pki_bundle_with_ca(have, ca_pem, &want);
        if (r < 0)
                return log_error_errno(r, "Cannot parse the cluster CA: %m");
        if (r > 0) {
                r = write_file_atomic(t.bundle, want, strlen(want), 0644);
                if (r < 0)
                        return log_error_errno(r, "Cannot write %s: %m", t.bundle);
                log_info("Added the cluster CA to %s", t.bundle);
        }
        return 0;
}

static const char *ca_pem_of(const struct step_ctx *c, const struct step_render *r) {
        _cleanup_free_ char *ca_path = NULL;

        if (pki_ca_path(c, &ca_path) < 0)
                return NULL;
        for (size_t i = 0; i < r->n_files; i++)
                if (streq(r->files[i].path, ca_path))
                        return r->files[i].content;
        return NULL;
}

static int pki_check(const struct step_ctx *c, const struct step_render *r) {
        static const char *const services[] = PKI_SERVICES;
        const char *ca_pem = ca_pem_of(c, r);
        int k;

        if (!ca_pem)
                return -EINVAL;
        for (size_t i = 0; i < r->n_files; i++) {
                if (is_leaf(&r->files[i]))
                        continue;
                k = file_current(r->files[i].path, r->files[i].content, r->files[i].mode);
                if (k <= 0)
                        return k;
        }
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
                const char *why;

                k = leaf_current(c, services[i], ca_pem, &why);
                if (k <= 0)
                        return k;
        }
        if (installs_trust(c))
                return trust_current(c, ca_pem);
        return 1;
}

static int write_file(const char *path, const char *content, mode_t mode) {
        _cleanup_free_ char *dir = strdup(path);
        int r;

        if (!dir)
                return -ENOMEM;
        r = mkdir_parents(dirname(dir), 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the directory of %s: %m", path);
        r = write_file_atomic(path, content, strlen(content), mode);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        log_info("Wrote %s", path);
        return 0;
}

static int issue(const struct step_ctx *c, const struct pki_ca *ca, const char *service,
                 const char *why) {
        _cleanup_free_ char *crt_path = NULL, *key_path = NULL, *crt = NULL, *key = NULL;
        _cleanup_free_ char *cn = NULL;
        _cleanup_strv_free_ char **sans = NULL;
        const char *hn = c->self->hostname[0] ? c->self->hostname : "node";
        gid_t gid = key_group(c, service);
        int r;

        if ((r = pki_paths(c, service, &crt_path, &key_path)) < 0 ||
            (r = pki_sans_for(c, service, &sans)) < 0 ||
            (r = asprintf_safe(&cn, "%s %s", service, hn)) < 0)
                return r;
        r = pki_issue(ca, cn, sans, &crt, &key);
        if (r < 0)
                return log_error_errno(r, "Cannot issue the %s certificate: %m", service);
        /* Key first: a crash before the certificate leaves a pair that does not match,
         * which the next check re-issues. */
        r = write_file(key_path, key, 0600);
        explicit_bzero(key, strlen(key));
        if (r < 0)
                return r;
        if (key_mode(c, service) != 0600) {
                if (gid == (gid_t)-1)
                        log_warning("No group " MYSQL_GROUP " on this node: %s stays readable by "
                                    "root only (install the MySQL server first).", key_path);
                else if (chown(key_path, (uid_t)-1, gid) < 0)
                        return log_error_errno(-errno, "Cannot give %s to group " MYSQL_GROUP ": %m",
                                               key_path);
                if (chmod(key_path, key_mode(c, service)) < 0)
                        return log_error_errno(-errno, "Cannot set the mode of %s: %m", key_path);
        }
        r = write_file(crt_path, crt, 0644);
        if (r < 0)
                return r;
        log_info("Issued %s (the one before: %s)", crt_path, why);
        return 0;
}

static int pki_apply(const struct step_ctx *c, const struct step_render *r, bool resumed _unused_,
                     struct cmd_failure *f) {
        static const char *const services[] = PKI_SERVICES;
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL;
        const char *ca_pem = ca_pem_of(c, r);
        int k;

        if (!ca_pem)
                return -EINVAL;
        for (size_t i = 0; i < r->n_files; i++) {
                const struct step_file *sf = &r->files[i];

                if (is_leaf(sf))
                        continue;
                k = file_current(sf->path, sf->content, sf->mode);
                if (k < 0)
                        return log_error_errno(k, "Cannot read %s: %m", sf->path);
                if (k == 0 && (k = write_file(sf->path, sf->content, sf->mode)) < 0)
                        return k;
        }
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
                const char *why = NULL;

                k = leaf_current(c, services[i], ca_pem, &why);
                if (k < 0)
                        return log_error_errno(k, "Cannot check the %s certificate: %m",
                                               services[i]);
                if (k > 0)
                        continue;
                if (!ca && (k = derive_ca(c, &ca)) < 0)
                        return k;
                if ((k = issue(c, ca, services[i], why)) < 0)
                        return k;
        }
        if (installs_trust(c) && (k = trust_install(c, ca_pem)) < 0)
                return k;
        for (size_t i = 0; i < r->n_commands; i++) {
                _cleanup_free_ char *out = NULL;

                k = (c->run ? c->run : cmd_runner_default)(c->run_userdata, r->commands[i], &out);
                if (k != 0) {
                        cmd_failure_set(f, r->commands[i], k, out);
                        return k < 0 ? k : -EIO;
                }
        }
        return 0;
}

const struct step step_pki = {
        .name = "pki",
        .skip_reason = pki_skip,
        .render = pki_render,
        .check = pki_check,
        .apply = pki_apply,
};
