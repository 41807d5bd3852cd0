/* SPDX-License-Identifier: MIT */
/* Cluster PKI: the CA derived from the seed (same bytes every time, in every process;
 * another seed or cluster another CA), leaves that chain to their CA and not to another,
 * exact SANs, key/cert pairing, seed errors; and the pki step rendered, checked and
 * applied under a temporary root (idempotent: a second run issues nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <grp.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "elect.h"
#include "pki.h"
#include "steps.h"
#include "util.h"
#include "view_json.h"

static const char *const base_yaml = "kubernetes:\n"
                                     "  distribution: kubeadm\n"
                                     "cluster:\n"
                                     "  name: t\n"
                                     "  token: test-token-0123456789\n"
                                     "  expected_nodes: 3\n"
                                     "vip:\n"
                                     "  address: 192.0.2.100/24\n"
                                     "  router_id: 61\n";

#include "step_fixture.h"

#define SEED_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void seed_of(const char *hex, uint8_t seed[PKI_SEED_LEN]) {
        assert_int_equal(pki_seed_from_hex(hex, seed), 0);
}

static char *ca_pem_for(const char *hex, const char *cluster) {
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL;
        uint8_t seed[PKI_SEED_LEN];
        char *pem = NULL;

        seed_of(hex, seed);
        assert_int_equal(pki_ca_derive(seed, cluster, &ca), 0);
        assert_int_equal(pki_ca_pem(ca, &pem), 0);
        return pem;
}

static X509 *parse(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

        BIO_free(b);
        assert_non_null(x);
        return x;
}

static void test_ca_deterministic(void **state _unused_) {
        _cleanup_free_ char *a = ca_pem_for(SEED_HEX, "prod"), *b = ca_pem_for(SEED_HEX, "prod");
        _cleanup_free_ char *child = NULL;
        int fds[2];
        pid_t pid;
        size_t size;

        assert_string_equal(a, b);
        /* Another process (fresh library state, other random stream) derives the same. */
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *pem = ca_pem_for(SEED_HEX, "prod");
                ssize_t n = write(fds[1], pem, strlen(pem));

                free(pem);
                _exit(n > 0 ? 0 : 1);
        }
        close(fds[1]);
        {
                _cleanup_fclose_ FILE *f = fdopen(fds[0], "r");
                char buf[8192];

                assert_non_null(f);
                size = fread(buf, 1, sizeof buf - 1, f);
                buf[size] = 0;
                child = strdup(buf);
        }
        {
                int status;

                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        assert_string_equal(a, child);
}

/* The bytes themselves, pinned: every node must derive the same certificate even when
 * built against another libcrypto release, so any change in encoding shows up here. */
static void test_ca_golden(void **state _unused_) {
        _cleanup_free_ char *pem = ca_pem_for(SEED_HEX, "prod");
        uint8_t h[crypto_hash_sha256_BYTES];
        char hex[2 * sizeof h + 1];

        crypto_hash_sha256(h, (const uint8_t *)pem, strlen(pem));
        hex_encode(h, sizeof h, hex);
        assert_string_equal(hex, "6fab4a120f579f149f425202044ac718b475b5a18bf468d1049cc7e8504fb182");
}

static void test_ca_differs(void **state _unused_) {
        _cleanup_free_ char *a = ca_pem_for(SEED_HEX, "prod");
        _cleanup_free_ char *b = ca_pem_for(
                "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "prod");
        _cleanup_free_ char *c = ca_pem_for(SEED_HEX, "staging");

        assert_string_not_equal(a, b);
        assert_string_not_equal(a, c);
}

static void test_ca_fields(void **state _unused_) {
        _cleanup_free_ char *pem = ca_pem_for(SEED_HEX, "prod");
        X509 *x = parse(pem);
        char cn[128];
        const ASN1_OCTET_STRING *ski;
        BASIC_CONSTRAINTS *bc;
        int crit = -1;

        assert_int_equal(X509_get_version(x), X509_VERSION_3);
        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                              sizeof cn) > 0);
        assert_string_equal(cn, "rainboot cluster CA prod");
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
        assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_ED25519);
        bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
        assert_non_null(bc);
        assert_true(bc->ca);
        assert_int_equal(crit, 1);
        BASIC_CONSTRAINTS_free(bc);
        assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        ski = X509_get0_subject_key_id(x);
        assert_non_null(ski);
        assert_int_equal(ASN1_STRING_length(ski), 20);
        /* Positive serial of 16 bytes, taken from the seed. */
        assert_int_equal(ASN1_STRING_length(X509_get0_serialNumber(x)), 16);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), (time_t)4102444800), 1);
        assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
        X509_free(x);
}

static char **sans_list(void) {
        char **l = NULL;

        assert_int_equal(strv_push(&l, "DNS:node1"), 0);
        assert_int_equal(strv_push(&l, "DNS:localhost"), 0);
        assert_int_equal(strv_push(&l, "IP:192.0.2.11"), 0);
        assert_int_equal(strv_push(&l, "IP:127.0.0.1"), 0);
        return l;
}

static void test_leaf(void **state _unused_) {
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL, *other = NULL;
        _cleanup_free_ char *ca_pem = NULL, *other_pem = NULL, *crt = NULL, *key = NULL;
        _cleanup_free_ char *crt2 = NULL, *key2 = NULL;
        _cleanup_strv_free_ char **want = sans_list(), **have = NULL, **fewer = NULL;
        uint8_t seed[PKI_SEED_LEN];
        const char *why = NULL;

        seed_of(SEED_HEX, seed);
        assert_int_equal(pki_ca_derive(seed, "prod", &ca), 0);
        seed[0] ^= 1;
        assert_int_equal(pki_ca_derive(seed, "prod", &other), 0);
        assert_int_equal(pki_ca_pem(ca, &ca_pem), 0);
        assert_int_equal(pki_ca_pem(other, &other_pem), 0);
        assert_int_equal(pki_issue(ca, "etcd node1", want, &crt, &key), 0);
        assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));

        assert_int_equal(pki_verify(ca_pem, crt, key, want, 30, &why), 1);
        assert_null(why);
        /* Another CA: X509_verify_cert finds no issuer. */
        assert_int_equal(pki_verify(other_pem, crt, key, want, 30, &why), 0);
        assert_non_null(why);
        assert_non_null(strstr(why, "issuer"));
        /* Exactly the SANs asked for, in that order. */
        assert_int_equal(pki_cert_sans(crt, &have), 0);
        assert_int_equal(strv_length(have), 4);
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(have[i], want[i]);
        assert_int_equal(strv_push(&fewer, "DNS:node1"), 0);
        assert_int_equal(pki_verify(ca_pem, crt, key, fewer, 30, &why), 0);
        assert_non_null(strstr(why, "alternative names"));
        /* Ten-year leaves: not valid for 4000 more days. */
        assert_int_equal(pki_verify(ca_pem, crt, key, want, 4000, &why), 0);
        assert_string_equal(why, "expires soon");
        /* Another key: not this certificate's. */
        assert_int_equal(pki_issue(ca, "etcd node1", want, &crt2, &key2), 0);
        assert_string_not_equal(key, key2);
        assert_int_equal(pki_verify(ca_pem, crt, key2, want, 30, &why), 0);
        assert_non_null(strstr(why, "key"));
        assert_int_equal(pki_verify(ca_pem, crt2, key2, NULL, 30, NULL), 1);
        /* Not PEM at all: an error, not a "no". */
        assert_int_equal(pki_verify(ca_pem, "garbage", NULL, NULL, 0, NULL), -EBADMSG);
}

static void test_leaf_x509_store(void **state _unused_) {
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL;
        _cleanup_free_ char *ca_pem = NULL, *crt = NULL, *key = NULL;
        _cleanup_strv_free_ char **want = sans_list();
        uint8_t seed[PKI_SEED_LEN];
        X509 *cax, *leaf;
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();

        seed_of(SEED_HEX, seed);
        assert_int_equal(pki_ca_derive(seed, "prod", &ca), 0);
        assert_int_equal(pki_ca_pem(ca, &ca_pem), 0);
        assert_int_equal(pki_issue(ca, "registry node1", want, &crt, &key), 0);
        cax = parse(ca_pem);
        leaf = parse(crt);
        /* Plain X509_verify_cert, as a TLS client verifying a server would, and as a
         * server verifying a client. */
        assert_int_equal(X509_STORE_add_cert(store, cax), 1);
        for (int purpose = X509_PURPOSE_SSL_CLIENT; purpose <= X509_PURPOSE_SSL_SERVER; purpose++) {
                assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
                assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
                assert_int_equal(X509_verify_cert(ctx), 1);
                X509_STORE_CTX_cleanup(ctx);
        }
        assert_int_equal(X509_check_host(leaf, "node1", 0, 0, NULL), 1);
        assert_int_equal(X509_check_ip_asc(leaf, "192.0.2.11", 0), 1);
        assert_int_equal(X509_check_ip_asc(leaf, "192.0.2.12", 0), 0);
        assert_int_equal(X509_check_ca(leaf), 0);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(cax);
        X509_free(leaf);
}

static void test_bad_seed(void **state _unused_) {
        uint8_t seed[PKI_SEED_LEN] = { 7 };
        _cleanup_strv_free_ char **bad = NULL;
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL;
        char *crt = NULL, *key = NULL;

        assert_int_equal(pki_seed_from_hex("0011", seed), -EINVAL);
        assert_int_equal(pki_seed_from_hex(SEED_HEX "00", seed), -EINVAL);
        assert_int_equal(pki_seed_from_hex(
                                 "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                 seed),
                         -EINVAL);
        assert_int_equal(pki_seed_from_hex(NULL, seed), -EINVAL);
        /* Untouched on failure. */
        assert_int_equal(seed[0], 7);
        assert_int_equal(pki_ca_derive(seed, "", &ca), -EINVAL);
        assert_null(ca);
        assert_int_equal(pki_ca_derive(seed, "prod", &ca), 0);
        /* A SAN OpenSSL's syntax would split: refused, nothing returned. */
        assert_int_equal(strv_push(&bad, "DNS:a,IP:1.2.3.4"), 0);
        assert_int_equal(pki_issue(ca, "x", bad, &crt, &key), -EINVAL);
        assert_null(crt);
        assert_null(key);
}

/* ---- the step ---- */

static char *state_with_seed(const struct fixture *f, const char *seed_line) {
        _cleanup_free_ char *dir = NULL, *env = NULL;
        char *state = NULL;

        assert_int_equal(asprintf_safe(&state, "%s/state", f->root), 0);
        assert_int_equal(asprintf_safe(&dir, "%s/secrets", state), 0);
        assert_int_equal(mkdir_parents(dir, 0700), 0);
        assert_int_equal(asprintf_safe(&env, "%s/cluster.env", dir), 0);
        if (seed_line)
                assert_int_equal(write_file_atomic(env, seed_line, strlen(seed_line), 0600), 0);
        return state;
}

static void test_sans_for(void **state _unused_) {
        struct fixture f = {};
        struct step_ctx c;
        _cleanup_strv_free_ char **etcd = NULL, **reg = NULL, **api = NULL;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, 0, &c);
        assert_int_equal(pki_sans_for(&c, "etcd", &etcd), 0);
        assert_int_equal(pki_sans_for(&c, "registry", &reg), 0);
        assert_int_equal(pki_sans_for(&c, "apiserver", &api), 0);
        assert_int_equal(pki_sans_for(&c, "nginx", &api), -EINVAL);
        {
                _cleanup_free_ char *host = NULL, *ip = NULL;
                char addr[INET_ADDRSTRLEN];

                inet_ntop(AF_INET, &c.self_info->addrs[0], addr, sizeof addr);
                assert_int_equal(asprintf_safe(&host, "DNS:%s", c.self->hostname), 0);
                assert_int_equal(asprintf_safe(&ip, "IP:%s", addr), 0);
                assert_true(strv_contains(etcd, host));
                assert_true(strv_contains(etcd, ip));
        }
        assert_true(strv_contains(etcd, "DNS:localhost"));
        assert_true(strv_contains(etcd, "IP:127.0.0.1"));
        assert_true(strv_contains(etcd, "IP:192.0.2.100"));
        assert_false(strv_contains(etcd, "DNS:goodrain.me"));
        assert_int_equal(strv_length(etcd), 2 + c.self_info->n_addrs + 2);
        assert_true(strv_contains(reg, "DNS:goodrain.me"));
        assert_int_equal(strv_length(reg), strv_length(etcd) + 1);
        assert_true(strv_contains(api, "DNS:kubernetes.default.svc.cluster.local"));
        assert_true(strv_contains(api, "DNS:kubernetes"));
        assert_int_equal(strv_length(api), strv_length(etcd) + 4);
        fixture_done(&f);
}

static char *read_text(const char *path) {
        char *s = NULL;
        size_t n;

        assert_int_equal(read_full_file(path, &s, &n), 0);
        return s;
}

static void test_step(void **state _unused_) {
        static const char *const services[] = PKI_SERVICES;
        _cleanup_free_ char *st = NULL, *ca_path = NULL, *ca1 = NULL, *ca2 = NULL;
        _cleanup_free_ char *crt_path = NULL, *key_path = NULL, *key_before = NULL;
        _cleanup_free_ char *key_after = NULL, *crt_text = NULL;
        struct fixture f = {};
        struct step_ctx c;
        struct stat sb;

        fixture_load(&f, "three-nodes.json", NULL);
        st = state_with_seed(&f, "join_token=x\nca_seed=" SEED_HEX "\n");
        ctx_for(&f, 0, &c);
        c.state_dir = st;
        c.supervisor = SVCMGR_DIRECT;
        assert_null(step_pki.skip_reason(&c));
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct cmd_failure fail = {};

                assert_int_equal(step_pki.render(&c, &r), 0);
                /* Direct supervisor: the host's trust store is left alone. */
                assert_int_equal(r.n_commands, 0);
                assert_int_equal(r.n_files, 1 + 2 * ELEMENTSOF(services));
                assert_int_equal(step_pki.check(&c, &r), 0);
                assert_int_equal(step_pki.apply(&c, &r, false, &fail), 0);
                assert_int_equal(step_pki.check(&c, &r), 1);
                cmd_failure_done(&fail);
        }
        assert_int_equal(pki_ca_path(&c, &ca_path), 0);
        ca1 = read_text(ca_path);
        assert_int_equal(stat(ca_path, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0644);
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
                _cleanup_free_ char *cp = NULL, *kp = NULL, *crt = NULL, *key = NULL;
                _cleanup_strv_free_ char **want = NULL;

                assert_int_equal(pki_paths(&c, services[i], &cp, &kp), 0);
                assert_int_equal(stat(kp, &sb), 0);
                assert_int_equal(sb.st_mode & 07777, 0600);
                assert_int_equal(stat(cp, &sb), 0);
                assert_int_equal(sb.st_mode & 07777, 0644);
                crt = read_text(cp);
                key = read_text(kp);
                assert_int_equal(pki_sans_for(&c, services[i], &want), 0);
                assert_int_equal(pki_verify(ca1, crt, key, want, 30, NULL), 1);
        }

        /* A second run: nothing re-issued. */
        assert_int_equal(pki_paths(&c, "etcd", &crt_path, &key_path), 0);
        key_before = read_text(key_path);
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct cmd_failure fail = {};

                assert_int_equal(step_pki.render(&c, &r), 0);
                assert_int_equal(step_pki.check(&c, &r), 1);
                assert_int_equal(step_pki.apply(&c, &r, true, &fail), 0);
                cmd_failure_done(&fail);
        }
        key_after = read_text(key_path);
        assert_string_equal(key_before, key_after);

        /* Another node of the cluster: the same CA, byte for byte; its own leaves. */
        {
                struct step_ctx c2;
                _cleanup_(step_render_done) struct step_render r = {};

                ctx_for(&f, 1, &c2);
                c2.state_dir = st;
                c2.supervisor = SVCMGR_DIRECT;
                assert_int_equal(step_pki.render(&c2, &r), 0);
                assert_string_equal(find_file(&r, "/pki/ca.crt")->content, ca1);
                /* Its SANs differ from what node 0's files carry. */
                assert_int_equal(step_pki.check(&c2, &r), 0);
        }

        /* A damaged certificate is issued again, the others kept. */
        assert_int_equal(write_file_atomic(crt_path, "junk\n", 5, 0644), 0);
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct cmd_failure fail = {};

                assert_int_equal(step_pki.render(&c, &r), 0);
                assert_int_equal(step_pki.check(&c, &r), 0);
                assert_int_equal(step_pki.apply(&c, &r, false, &fail), 0);
                assert_int_equal(step_pki.check(&c, &r), 1);
                cmd_failure_done(&fail);
        }
        free(key_after);
        key_after = read_text(key_path);
        assert_string_not_equal(key_before, key_after);
        ca2 = read_text(ca_path);
        assert_string_equal(ca1, ca2);
        crt_text = read_text(crt_path);
        assert_non_null(strstr(crt_text, "BEGIN CERTIFICATE"));
        fixture_done(&f);
}

static void test_step_systemd_mysql_group(void **state _unused_) {
        _cleanup_free_ char *st = NULL, *kp = NULL;
        struct fixture f = {};
        struct step_ctx c;
        struct stat sb;
        struct group *g = getgrnam("mysql");

        if (!g || geteuid() != 0)
                skip();
        fixture_load(&f, "three-nodes.json", NULL);
        st = state_with_seed(&f, "ca_seed=" SEED_HEX "\n");
        ctx_for(&f, 0, &c);
        c.state_dir = st;
        c.supervisor = SVCMGR_SYSTEMD;
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct cmd_failure fail = {};

                assert_int_equal(step_pki.render(&c, &r), 0);
                /* The trust store under the root, and no program run for it. */
                assert_int_equal(r.n_commands, 0);
                assert_non_null(find_file(&r, "rainboot-ca.crt"));
                assert_int_equal(find_file(&r, "/pki/mysql.key")->mode, 0640);
                assert_int_equal(find_file(&r, "/pki/etcd.key")->mode, 0600);
                assert_int_equal(step_pki.apply(&c, &r, false, &fail), 0);
                assert_int_equal(step_pki.check(&c, &r), 1);
                cmd_failure_done(&fail);
        }
        assert_int_equal(pki_paths(&c, "mysql", NULL, &kp), 0);
        assert_int_equal(stat(kp, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0640);
        assert_int_equal(sb.st_gid, g->gr_gid);
        fixture_done(&f);
}

static void test_step_appliance_trust(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *st = NULL;
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, "three-nodes.json", NULL);
        st = state_with_seed(&f, "ca_seed=" SEED_HEX "\n");
        ctx_for(&f, 0, &c);
        c.state_dir = st;
        c.supervisor = SVCMGR_SYSTEMD;
        c.root = "";
        /* Rendered only: applying would change this machine's trust store. */
        assert_int_equal(step_pki.render(&c, &r), 0);
        assert_non_null(find_file(&r, PKI_SYSTEM_TRUST));
        assert_string_equal(find_file(&r, PKI_SYSTEM_TRUST)->path, PKI_SYSTEM_TRUST);
        assert_string_equal(find_file(&r, PKI_SYSTEM_TRUST)->content,
                            find_file(&r, "/pki/ca.crt")->content);
        /* No update-ca-certificates: ~900 programs, two minutes under emulation. */
        assert_int_equal(r.n_commands, 0);
        assert_string_equal(find_file(&r, PKI_SYSTEM_BUNDLE)->path, PKI_SYSTEM_BUNDLE);
        assert_string_equal(find_file(&r, "/pki/etcd.crt")->path, "/etc/rainboot/pki/etcd.crt");
        fixture_done(&f);
}

/* Counts the certificates in a PEM text and those equal to pem. */
static void count_certs(const char *text, const char *pem, int *ret_all, int *ret_same) {
        X509 *want = parse(pem);
        BIO *b = BIO_new_mem_buf(text, -1);
        X509 *x;

        *ret_all = *ret_same = 0;
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
                (*ret_all)++;
                *ret_same += X509_cmp(x, want) == 0;
                X509_free(x);
        }
        BIO_free(b);
        X509_free(want);
}

static void test_bundle_with_ca(void **state _unused_) {
        _cleanup_free_ char *ca = ca_pem_for(SEED_HEX, "t"), *old = NULL, *other = NULL;
        _cleanup_free_ char *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL, *in = NULL;
        char *untouched = (char *)"unchanged";
        int all, same;

        old = ca_pem_for("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "t");
        /* Not a cluster CA: some CA of the distribution's bundle. */
        {
                EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
                X509 *x = X509_new();
                BIO *b = BIO_new(BIO_s_mem());
                char *data;
                long n;

                assert_non_null(k);
                X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                           (const unsigned char *)"Some Root CA", -1, -1, 0);
                X509_set_issuer_name(x, X509_get_subject_name(x));
                X509_gmtime_adj(X509_getm_notBefore(x), 0);
                X509_gmtime_adj(X509_getm_notAfter(x), 3600);
                X509_set_pubkey(x, k);
                assert_true(X509_sign(x, k, NULL) > 0);
                assert_true(PEM_write_bio_X509(b, x));
                n = BIO_get_mem_data(b, &data);
                other = strndup(data, (size_t)n);
                BIO_free(b);
                X509_free(x);
                EVP_PKEY_free(k);
        }

        /* No bundle yet: just the CA. */
        assert_int_equal(pki_bundle_with_ca(NULL, ca, &b1), 1);
        assert_string_equal(b1, ca);
        /* Already there once: nothing to do. */
        assert_int_equal(pki_bundle_with_ca(b1, ca, &untouched), 0);
        assert_string_equal(untouched, "unchanged");

        /* Appended after the others, which stay byte for byte (no final newline either). */
        assert_int_equal(asprintf_safe(&in, "# a comment\n%.*s", (int)strlen(other) - 1, other), 0);
        assert_int_equal(pki_bundle_with_ca(in, ca, &b2), 1);
        assert_true(startswith(b2, in));
        assert_int_equal(b2[strlen(in)], '\n');
        assert_string_equal(b2 + strlen(in) + 1, ca);

        /* The CA of an earlier seed is replaced, a duplicate dropped, the rest kept. */
        free(in);
        assert_int_equal(asprintf_safe(&in, "%s%s%s%s", other, old, ca, ca), 0);
        assert_int_equal(pki_bundle_with_ca(in, ca, &b3), 1);
        count_certs(b3, ca, &all, &same);
        assert_int_equal(all, 2);
        assert_int_equal(same, 1);
        count_certs(b3, old, &all, &same);
        assert_int_equal(same, 0);
        assert_true(startswith(b3, other));
        assert_int_equal(pki_bundle_with_ca(b3, ca, &b4), 0);
        assert_null(b4);
}

/* The CA installed into the trust store of a root the way update-ca-certificates would:
 * links and bundle, idempotent, and what `openssl x509 -subject_hash` names. */
static void test_step_trust_under_root(void **state _unused_) {
        _cleanup_free_ char *st = NULL, *dir = NULL, *bundle = NULL, *link = NULL;
        _cleanup_free_ char *text = NULL, *text2 = NULL, *cmd = NULL, *out = NULL;
        _cleanup_free_ char *hash_link = NULL, *ca = NULL;
        char target[PATH_MAX];
        unsigned long hash;
        struct fixture f = {};
        struct step_ctx c;
        ssize_t n;
        int all, same;

        fixture_load(&f, "three-nodes.json", NULL);
        st = state_with_seed(&f, "ca_seed=" SEED_HEX "\n");
        ctx_for(&f, 0, &c);
        c.state_dir = st;
        c.supervisor = SVCMGR_SYSTEMD;
        assert_int_equal(asprintf_safe(&dir, "%s" PKI_SYSTEM_CERTS_DIR, f.root), 0);
        assert_int_equal(asprintf_safe(&bundle, "%s" PKI_SYSTEM_BUNDLE, f.root), 0);
        assert_int_equal(asprintf_safe(&link, "%s" PKI_SYSTEM_TRUST_LINK, f.root), 0);
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        /* The distribution's bundle, and a foreign certificate holding the hash's .0. */
        assert_int_equal(write_file_atomic(bundle, "# distro\n", 9, 0644), 0);
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct cmd_failure fail = {};

                assert_int_equal(step_pki.render(&c, &r), 0);
                ca = strdup(find_file(&r, "/pki/ca.crt")->content);
                assert_int_equal(pki_subject_hash(ca, &hash), 0);
                assert_int_equal(asprintf_safe(&hash_link, "%s/%08lx.0", dir, hash), 0);
                assert_int_equal(symlink("/nonexistent/other.pem", hash_link), 0);
                free(hash_link);
                assert_int_equal(asprintf_safe(&hash_link, "%s/%08lx.1", dir, hash), 0);

                assert_int_equal(step_pki.check(&c, &r), 0);
                assert_int_equal(step_pki.apply(&c, &r, false, &fail), 0);
                assert_int_equal(step_pki.check(&c, &r), 1);
                cmd_failure_done(&fail);
        }
        n = readlink(link, target, sizeof target - 1);
        assert_true(n > 0);
        target[n] = 0;
        assert_string_equal(target, PKI_SYSTEM_TRUST);
        n = readlink(hash_link, target, sizeof target - 1);
        assert_true(n > 0);
        target[n] = 0;
        assert_string_equal(target, "rainboot-ca.pem");
        text = read_text(bundle);
        assert_true(startswith(text, "# distro\n"));
        count_certs(text, ca, &all, &same);
        assert_int_equal(all, 1);
        assert_int_equal(same, 1);
        /* The hash OpenSSL's own tool computes. */
        assert_int_equal(asprintf_safe(&cmd, "openssl x509 -noout -subject_hash -in '%s/etc/rainboot/pki/ca.crt'",
                                       f.root), 0);
        {
                char *argv[] = { (char *)"sh", (char *)"-c", cmd, NULL };
                char want[32];

                assert_int_equal(run_command(argv, &out), 0);
                snprintf(want, sizeof want, "%08lx\n", hash);
                assert_string_equal(out, want);
        }
        /* A second run changes nothing. */
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct cmd_failure fail = {};

                assert_int_equal(step_pki.render(&c, &r), 0);
                assert_int_equal(step_pki.check(&c, &r), 1);
                assert_int_equal(step_pki.apply(&c, &r, true, &fail), 0);
                cmd_failure_done(&fail);
        }
        text2 = read_text(bundle);
        assert_string_equal(text, text2);
        fixture_done(&f);
}

static void test_step_skips_and_errors(void **state _unused_) {
        _cleanup_free_ char *st = NULL, *env = NULL;
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, "three-nodes.json", NULL);
        st = state_with_seed(&f, NULL);
        ctx_for(&f, 0, &c);
        c.state_dir = st;
        assert_non_null(strstr(step_pki.skip_reason(&c), "no sealed secrets"));
        assert_int_equal(asprintf_safe(&env, "%s/secrets/cluster.env", st), 0);
        /* Secrets without a seed, then with a damaged one: clear errors, no render. */
        assert_int_equal(write_file_atomic(env, "join_token=x\n", 13, 0600), 0);
        assert_null(step_pki.skip_reason(&c));
        {
                _cleanup_(step_render_done) struct step_render r = {};

                assert_int_equal(step_pki.render(&c, &r), -ENOENT);
        }
        assert_int_equal(write_file_atomic(env, "ca_seed=abcd\n", 13, 0600), 0);
        {
                _cleanup_(step_render_done) struct step_render r = {};

                assert_int_equal(step_pki.render(&c, &r), -EINVAL);
        }
        fixture_done(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ca_deterministic),
                cmocka_unit_test(test_ca_golden),
                cmocka_unit_test(test_ca_differs),
                cmocka_unit_test(test_ca_fields),
                cmocka_unit_test(test_leaf),
                cmocka_unit_test(test_leaf_x509_store),
                cmocka_unit_test(test_bad_seed),
                cmocka_unit_test(test_sans_for),
                cmocka_unit_test(test_step),
                cmocka_unit_test(test_step_systemd_mysql_group),
                cmocka_unit_test(test_step_appliance_trust),
                cmocka_unit_test(test_bundle_with_ca),
                cmocka_unit_test(test_step_trust_under_root),
                cmocka_unit_test(test_step_skips_and_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
