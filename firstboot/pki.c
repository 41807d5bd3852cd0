/* SPDX-License-Identifier: MIT */
/* Cluster CA derived from the sealed seed, and leaf certificates it signs (pki.h). Only
 * libcrypto; no file I/O here except the step-path helpers' names. */
#include <arpa/inet.h>
#include <ctype.h>
#include <sodium.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pki.h"
#include "util.h"

/* Fixed, so the certificate is the same bytes on every node whenever it is derived. The
 * start lies well before any first boot; the end is RFC 5280's "no well-defined
 * expiration" (4.1.2.5): the CA lives as long as the cluster, and replacing it means a
 * new seed for every member anyway. */
#define CA_NOT_BEFORE "20200101000000Z"
#define CA_NOT_AFTER "99991231235959Z"
/* Leaves: ten years from issue. Nodes' clocks may differ a little at first boot: a leaf
 * is valid from one day before it was made. */
#define LEAF_DAYS 3650
#define LEAF_BACKDATE_SECONDS (24 * 3600)
/* Domain separation: each value taken from the seed has its own label. */
#define LABEL_KEY "rainboot ca v1: ed25519 private key"
#define LABEL_SERIAL "rainboot ca v1: serial"

struct pki_ca {
        EVP_PKEY *key;
        X509 *cert;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_TIME *, ASN1_TIME_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free);

int pki_seed_from_hex(const char *hex, uint8_t ret[PKI_SEED_LEN]) {
        if (!hex || strlen(hex) != 2 * PKI_SEED_LEN || hex_decode(hex, ret, PKI_SEED_LEN) < 0)
                return log_error_errno(-EINVAL,
                                       "ca_seed in the sealed secrets must be %d hex digits, it is "
                                       "%zu characters%s: the secrets file is damaged; take it "
                                       "again from a member (rerun discovery on this node)",
                                       2 * PKI_SEED_LEN, hex ? strlen(hex) : 0,
                                       hex && strlen(hex) == 2 * PKI_SEED_LEN ? " but not hex" : "");
        return 0;
}

struct pki_ca *pki_ca_free(struct pki_ca *ca) {
        if (!ca)
                return NULL;
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        free(ca);
        return NULL;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        X509V3_CTX v3;

        X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
        if (!ext || !X509_add_ext(cert, ext, -1))
                return log_debug_errno(-EINVAL, "Cannot add extension %s = %s", OBJ_nid2sn(nid),
                                       value);
        return 0;
}

static int set_name(X509_NAME *n, const char *cn) {
        return X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                          -1, 0)
                       ? 0
                       : -EINVAL;
}

int pki_ca_derive(const uint8_t seed[PKI_SEED_LEN], const char *cluster_name, struct pki_ca **ret) {
        _cleanup_(pki_ca_freep) struct pki_ca *ca = NULL;
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        _cleanup_free_ char *cn = NULL;
        uint8_t priv[32], serial[16];
        X509_NAME *name;
        int r;

        if (!cluster_name || !*cluster_name)
                return -EINVAL;
        ca = calloc(1, sizeof *ca);
        if (!ca)
                return -ENOMEM;
        /* Keyed BLAKE2b: the seed is the key, the label the message. */
        crypto_generichash(priv, sizeof priv, (const uint8_t *)LABEL_KEY, strlen(LABEL_KEY), seed,
                           PKI_SEED_LEN);
        crypto_generichash(serial, sizeof serial, (const uint8_t *)LABEL_SERIAL,
                           strlen(LABEL_SERIAL), seed, PKI_SEED_LEN);
        ca->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, sizeof priv);
        sodium_memzero(priv, sizeof priv);
        if (!ca->key)
                return -ENOMEM;
        /* RFC 5280: positive, at most 20 octets, not zero. */
        serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
        if (asprintf_safe(&cn, PKI_CA_CN_PREFIX "%s", cluster_name) < 0 ||
            !(ca->cert = X509_new()) || !(bn = BN_bin2bn(serial, sizeof serial, NULL)))
                return -ENOMEM;
        name = X509_get_subject_name(ca->cert);
        if (!X509_set_version(ca->cert, X509_VERSION_3) ||
            !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(ca->cert)) || set_name(name, cn) < 0 ||
            !X509_set_issuer_name(ca->cert, name) ||
            !ASN1_TIME_set_string_X509(X509_getm_notBefore(ca->cert), CA_NOT_BEFORE) ||
            !ASN1_TIME_set_string_X509(X509_getm_notAfter(ca->cert), CA_NOT_AFTER) ||
            !X509_set_pubkey(ca->cert, ca->key))
                return -ENOMEM;
        if ((r = add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
            (r = add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
            (r = add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash")) < 0)
                return r;
        /* Ed25519 takes no digest; its signature depends only on key and message. */
        if (X509_sign(ca->cert, ca->key, NULL) <= 0)
                return log_debug_errno(-EINVAL, "Cannot sign the CA certificate");
        *ret = TAKE_PTR(ca);
        return 0;
}

static int bio_to_string(BIO *b, char **ret) {
        char *data, *s;
        long n = BIO_get_mem_data(b, &data);

        if (n < 0 || !(s = strndup(data, (size_t)n)))
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int cert_to_pem(X509 *cert, char **ret) {
        _cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());

        if (!b || !PEM_write_bio_X509(b, cert))
                return -ENOMEM;
        return bio_to_string(b, ret);
}

int pki_ca_pem(const struct pki_ca *ca, char **ret) {
        return cert_to_pem(ca->cert, ret);
}

static bool san_valid(const char *s) {
        const char *v;

        if (startswith(s, "IP:")) {
                struct in_addr a;

                return inet_pton(AF_INET, s + 3, &a) == 1;
        }
        if (!startswith(s, "DNS:") || !s[4])
                return false;
        /* No separators of OpenSSL's SAN syntax, no spaces. */
        for (v = s + 4; *v; v++)
                if (!isalnum((unsigned char)*v) && *v != '.' && *v != '-' && *v != '_' && *v != '*')
                        return false;
        return true;
}

int pki_issue(const struct pki_ca *ca, const char *cn, char *const *sans, char **ret_cert_pem,
              char **ret_key_pem) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(BIO_freep) BIO *kb = NULL;
        _cleanup_free_ char *san = NULL, *cert_pem = NULL, *key_pem = NULL;
        uint8_t serial[16];
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        size_t len = 0;
        int r;

        if (!sans || !sans[0])
                return -EINVAL;
        for (char *const *s = sans; *s; s++) {
                if (!san_valid(*s))
                        return log_debug_errno(-EINVAL, "Not a SAN: '%s'", *s);
                len += strlen(*s) + 1;
        }
        san = malloc(len);
        if (!san)
                return -ENOMEM;
        san[0] = 0;
        for (char *const *s = sans; *s; s++) {
                if (s != sans)
                        strcat(san, ",");
                strcat(san, *s);
        }
        key = EVP_EC_gen("P-256");
        randombytes_buf(serial, sizeof serial);
        serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
        if (!key || !(cert = X509_new()) || !(bn = BN_bin2bn(serial, sizeof serial, NULL)))
                return -ENOMEM;
        if (!X509_set_version(cert, X509_VERSION_3) ||
            !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) ||
            set_name(X509_get_subject_name(cert), cn) < 0 ||
            !X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) ||
            !X509_gmtime_adj(X509_getm_notBefore(cert), -LEAF_BACKDATE_SECONDS) ||
            !X509_time_adj_ex(X509_getm_notAfter(cert), LEAF_DAYS, 0, NULL) ||
            !X509_set_pubkey(cert, key))
                return -ENOMEM;
        if ((r = add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature")) < 0 ||
            (r = add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth")) < 0 ||
            (r = add_ext(cert, ca->cert, NID_subject_key_identifier, "hash")) < 0 ||
            (r = add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always")) < 0 ||
            (r = add_ext(cert, ca->cert, NID_subject_alt_name, san)) < 0)
                return r;
        if (X509_sign(cert, ca->key, NULL) <= 0)
                return log_debug_errno(-EINVAL, "Cannot sign the certificate for %s", cn);
        kb = BIO_new(BIO_s_mem());
        if (!kb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL))
                return -ENOMEM;
        if ((r = cert_to_pem(cert, &cert_pem)) < 0 || (r = bio_to_string(kb, &key_pem)) < 0)
                return r;
        *ret_cert_pem = TAKE_PTR(cert_pem);
        *ret_key_pem = TAKE_PTR(key_pem);
        return 0;
}

static int pem_to_cert(const char *pem, X509 **ret) {
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x;

        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

static int cert_sans(X509 *cert, char ***ret) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens =
                X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                _cleanup_free_ char *s = NULL;

                if (g->type == GEN_DNS) {
                        const ASN1_IA5STRING *d = g->d.dNSName;

                        r = asprintf_safe(&s, "DNS:%.*s", ASN1_STRING_length(d),
                                          (const char *)ASN1_STRING_get0_data(d));
                } else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4) {
                        char buf[INET_ADDRSTRLEN];

                        inet_ntop(AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), buf, sizeof buf);
                        r = asprintf_safe(&s, "IP:%s", buf);
                } else
                        r = asprintf_safe(&s, "other:%d", g->type);
                if (r < 0 || (r = strv_push(&l, s)) < 0)
                        return r;
        }
        /* An empty list rather than NULL: callers iterate it. */
        if (!l && !(l = calloc(1, sizeof *l)))
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

int pki_cert_sans(const char *cert_pem, char ***ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        int r;

        r = pem_to_cert(cert_pem, &cert);
        if (r < 0)
                return r;
        return cert_sans(cert, ret);
}

int pki_subject_hash(const char *cert_pem, unsigned long *ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        int r;

        r = pem_to_cert(cert_pem, &cert);
        if (r < 0)
                return r;
        *ret = X509_subject_name_hash(cert);
        return 0;
}

/* 1 when cert is a rainboot cluster CA (by its subject: every seed's CA has the prefix). */
static bool is_cluster_ca(X509 *cert) {
        const X509_NAME *n = X509_get_subject_name(cert);
        int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
        const ASN1_STRING *v;

        if (i < 0)
                return false;
        v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
        return (size_t)ASN1_STRING_length(v) > strlen(PKI_CA_CN_PREFIX) &&
               memcmp(ASN1_STRING_get0_data(v), PKI_CA_CN_PREFIX, strlen(PKI_CA_CN_PREFIX)) == 0;
}

/* 1 when the base64 text in [b, e) (line breaks allowed, up to its "-----END") decodes to
 * bytes containing needle. */
static bool der_mentions(const char *b, const char *e, const char *needle) {
        _cleanup_free_ unsigned char *der = NULL;
        EVP_ENCODE_CTX *ctx;
        int n = 0, m = 0;
        const char *end = memmem(b, (size_t)(e - b), "-----", 5);
        bool found = false;

        if (!end)
                return false;
        der = malloc((size_t)(end - b) + 4);
        ctx = EVP_ENCODE_CTX_new();
        if (der && ctx) {
                EVP_DecodeInit(ctx);
                if (EVP_DecodeUpdate(ctx, der, &n, (const unsigned char *)b, (int)(end - b)) >= 0 &&
                    EVP_DecodeFinal(ctx, der + n, &m) >= 0)
                        found = memmem(der, (size_t)(n + m), needle, strlen(needle)) != NULL;
                else
                        found = true; /* let the parser decide */
        } else
                found = true;
        EVP_ENCODE_CTX_free(ctx);
        return found;
}

int pki_bundle_with_ca(const char *bundle, const char *ca_pem, char **ret) {
        static const char begin[] = "-----BEGIN CERTIFICATE-----",
                          end[] = "-----END CERTIFICATE-----";
        _cleanup_(X509_freep) X509 *ca = NULL;
        _cleanup_free_ char *buf = NULL;
        const char *p = bundle ? bundle : "";
        bool have = false, changed = false;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = pem_to_cert(ca_pem, &ca)) < 0)
                return r;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (;;) {
                const char *b = strstr(p, begin), *e = b ? strstr(b, end) : NULL;
                _cleanup_(X509_freep) X509 *x = NULL;
                _cleanup_(BIO_freep) BIO *bio = NULL;

                if (!e) {
                        fputs(p, f);
                        break;
                }
                e += strlen(end);
                if (*e == '\n')
                        e++;
                fwrite(p, 1, (size_t)(b - p), f);
                /* Parsed only when its DER names a cluster CA: parsing each of the ~150
                 * certificates of the distribution's bundle took 2.5 s under emulation. */
                if (der_mentions(b + strlen(begin), e, PKI_CA_CN_PREFIX)) {
                        bio = BIO_new_mem_buf(b, (int)(e - b));
                        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
                        ERR_clear_error();
                }
                /* Kept: anything else, and the first copy of this CA. */
                if (!x || !is_cluster_ca(x) || (X509_cmp(x, ca) == 0 && !have)) {
                        if (x && X509_cmp(x, ca) == 0)
                                have = true;
                        fwrite(b, 1, (size_t)(e - b), f);
                } else
                        changed = true;
                p = e;
        }
        if (!have) {
                /* fflush() makes buf and size what was written so far. */
                if (fflush(f) == 0 && size > 0 && buf[size - 1] != '\n')
                        fputc('\n', f);
                fputs(ca_pem, f);
                changed = true;
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        if (!changed)
                return 0;
        *ret = TAKE_PTR(buf);
        return 1;
}

static bool same_set(char *const *a, char *const *b) {
        for (char *const *s = a; *s; s++)
                if (!strv_contains(b, *s))
                        return false;
        for (char *const *s = b; *s; s++)
                if (!strv_contains(a, *s))
                        return false;
        return true;
}

int pki_verify(const char *ca_pem, const char *cert_pem, const char *key_pem, char *const *want,
               unsigned min_days, const char **ret_why) {
        _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
        _cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_strv_free_ char **have = NULL;
        _cleanup_(ASN1_TIME_freep) ASN1_TIME *horizon = NULL;
        const char *why = NULL;
        int r;

        if ((r = pem_to_cert(ca_pem, &ca)) < 0 || (r = pem_to_cert(cert_pem, &cert)) < 0)
                return r;
        if (key_pem) {
                _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(key_pem, -1);

                if (!b)
                        return -ENOMEM;
                key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
                if (!key)
                        return -EBADMSG;
        }
        store = X509_STORE_new();
        ctx = X509_STORE_CTX_new();
        if (!store || !ctx || !X509_STORE_add_cert(store, ca) ||
            !X509_STORE_CTX_init(ctx, store, cert, NULL) ||
            !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER))
                return -ENOMEM;
        horizon = X509_time_adj_ex(NULL, (int)min_days, 0, NULL);
        if (!horizon)
                return -ENOMEM;
        if (X509_verify_cert(ctx) != 1)
                why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
        else if (!(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT))
                why = "no clientAuth extended key usage";
        else if (ASN1_TIME_compare(X509_get0_notAfter(cert), horizon) < 0)
                why = "expires soon";
        else if (key && X509_check_private_key(cert, key) != 1)
                why = "the key does not belong to the certificate";
        if (!why && want) {
                if ((r = cert_sans(cert, &have)) < 0)
                        return r;
                if (!same_set(have, want))
                        why = "other subject alternative names than wanted";
        }
        ERR_clear_error();
        if (ret_why)
                *ret_why = why;
        return !why;
}

/* ---- paths and names on a node ---- */

static bool service_known(const char *service) {
        static const char *const services[] = PKI_SERVICES;

        for (size_t i = 0; i < ELEMENTSOF(services); i++)
                if (streq(services[i], service))
                        return true;
        return false;
}

int pki_ca_path(const struct step_ctx *c, char **ret) {
        return step_path(c, PKI_DIR "/ca.crt", ret);
}

int pki_paths(const struct step_ctx *c, const char *service, char **ret_crt, char **ret_key) {
        _cleanup_free_ char *base = NULL, *crt = NULL, *key = NULL;
        int r;

        if (!service_known(service))
                return -EINVAL;
        if ((r = asprintf_safe(&base, PKI_DIR "/%s", service)) < 0 ||
            (r = step_path(c, base, &key)) < 0 || (r = asprintf_safe(&crt, "%s.crt", key)) < 0)
                return r;
        free(base);
        base = TAKE_PTR(key);
        if ((r = asprintf_safe(&key, "%s.key", base)) < 0)
                return r;
        if (ret_crt)
                *ret_crt = TAKE_PTR(crt);
        if (ret_key)
                *ret_key = TAKE_PTR(key);
        return 0;
}

static int push_unique(char ***l, const char *s) {
        return strv_contains(*l, s) ? 0 : strv_push(l, s);
}

static int push_ip(char ***l, struct in_addr a) {
        char buf[3 + INET_ADDRSTRLEN] = "IP:";

        inet_ntop(AF_INET, &a, buf + 3, INET_ADDRSTRLEN);
        return push_unique(l, buf);
}

int pki_sans_for(const struct step_ctx *c, const char *service, char ***ret) {
        static const char *const kube[] = { "kubernetes", "kubernetes.default",
                                            "kubernetes.default.svc",
                                            "kubernetes.default.svc.cluster.local" };
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *host = NULL;
        const char *hn = c->self->hostname[0] ? c->self->hostname
                         : c->self_info      ? c->self_info->hostname
                                             : "";
        struct in_addr lo = { .s_addr = htonl(INADDR_LOOPBACK) };
        int r;

        if (!service_known(service))
                return -EINVAL;
        if (*hn) {
                if ((r = asprintf_safe(&host, "DNS:%s", hn)) < 0)
                        return r;
                /* A hostname OpenSSL's SAN syntax cannot carry is left out, not fatal:
                 * clients reach the node by address. */
                if (san_valid(host) && (r = push_unique(&l, host)) < 0)
                        return r;
        }
        if ((r = push_unique(&l, "DNS:localhost")) < 0)
                return r;
        if (streq(service, "registry") && (r = push_unique(&l, "DNS:goodrain.me")) < 0)
                return r;
        if (streq(service, "apiserver"))
                for (size_t i = 0; i < ELEMENTSOF(kube); i++) {
                        _cleanup_free_ char *d = NULL;

                        if ((r = asprintf_safe(&d, "DNS:%s", kube[i])) < 0 ||
                            (r = push_unique(&l, d)) < 0)
                                return r;
                }
        for (size_t i = 0; c->self_info && i < c->self_info->n_addrs; i++)
                if ((r = push_ip(&l, c->self_info->addrs[i])) < 0)
                        return r;
        if ((r = push_ip(&l, lo)) < 0)
                return r;
        if (c->cfg->has_vip && (r = push_ip(&l, c->cfg->vip.addr)) < 0)
                return r;
        if (c->cfg->ext_lb && (r = push_ip(&l, c->cfg->ext_lb->address)) < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}
