/* SPDX-License-Identifier: MIT */
/* The cluster PKI (issue 4 item 2). The CA is a pure function of the sealed ca_seed and
 * the cluster name: every node, late joiners too, derives a byte-identical ca.crt and the
 * same signing key, so nothing but the seed travels and the CA key never touches a disk.
 * Ed25519 makes that possible: its key is 32 bytes taken from the seed and its signatures
 * are deterministic. Leaf keys (ECDSA P-256) are random per node and service.
 *
 * SANs are written as OpenSSL spells them: "DNS:name" or "IP:a.b.c.d". */
#pragma once

#include <stdint.h>

#include "steps.h"

#define PKI_SEED_LEN 32
#define PKI_DIR "/etc/rainboot/pki"
/* Where the appliance's system trust picks the CA up (update-ca-certificates). */
#define PKI_SYSTEM_TRUST "/usr/local/share/ca-certificates/rainboot-ca.crt"
/* What update-ca-certificates makes of it; the pki step makes the same link itself. */
#define PKI_SYSTEM_TRUST_LINK "/etc/ssl/certs/rainboot-ca.pem"
/* The hashed directory (OpenSSL's CApath) and the bundle (CAfile; Go reads it first). */
#define PKI_SYSTEM_CERTS_DIR "/etc/ssl/certs"
#define PKI_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
/* Every cluster CA's subject starts so (pki_ca_derive). */
#define PKI_CA_CN_PREFIX "rainboot cluster CA "

/* The services the pki step issues a certificate for, on every node holding the
 * secrets: PKI_DIR/<name>.crt and .key. */
#define PKI_SERVICES { "etcd", "registry", "mysql", "apiserver" }

struct pki_ca;

/* 64 hex digits -> 32 bytes. -EINVAL (logged, naming the fix) otherwise. */
int pki_seed_from_hex(const char *hex, uint8_t ret[PKI_SEED_LEN]);
/* The CA of the cluster, from its seed. */
int pki_ca_derive(const uint8_t seed[PKI_SEED_LEN], const char *cluster_name, struct pki_ca **ret);
struct pki_ca *pki_ca_free(struct pki_ca *ca);
static inline void pki_ca_freep(struct pki_ca **ca) { pki_ca_free(*ca); }
/* The CA certificate, PEM. */
int pki_ca_pem(const struct pki_ca *ca, char **ret);
/* A new P-256 key and a certificate for it signed by ca: serverAuth + clientAuth, exactly
 * the SANs given (NULL-terminated, at least one). cn is the subject's common name. */
int pki_issue(const struct pki_ca *ca, const char *cn, char *const *sans, char **ret_cert_pem,
              char **ret_key_pem);
/* 1 when cert_pem chains to ca_pem (X509_verify_cert, TLS server purpose, valid now and
 * for at least min_days more), carries clientAuth too, has exactly the SANs in want (any
 * order; NULL: not compared) and, when key_pem is given, is that key's certificate. 0 when
 * not, with the reason in ret_why if given (static text). Negative errno when a PEM is
 * unreadable. */
int pki_verify(const char *ca_pem, const char *cert_pem, const char *key_pem, char *const *want,
               unsigned min_days, const char **ret_why);
/* The OpenSSL subject name hash of a PEM certificate (`openssl x509 -subject_hash`): its
 * link in a hashed directory is "%08lx.N". -EBADMSG when unreadable. */
int pki_subject_hash(const char *cert_pem, unsigned long *ret);
/* bundle (concatenated PEM certificates; NULL or "" = none) with ca_pem in it exactly once
 * and no other rainboot cluster CA (a stale one of an earlier seed, a duplicate); every
 * other byte is kept. 1 with the new text in ret when that differs from bundle, 0 (ret
 * untouched) when bundle is already so. */
int pki_bundle_with_ca(const char *bundle, const char *ca_pem, char **ret);
/* The SANs of a certificate, in its order. */
int pki_cert_sans(const char *cert_pem, char ***ret);

/* <root>/etc/rainboot/pki/ca.crt */
int pki_ca_path(const struct step_ctx *c, char **ret);
/* <root>/etc/rainboot/pki/<service>.crt and .key; -EINVAL for a service not in
 * PKI_SERVICES. Either out-parameter may be NULL. */
int pki_paths(const struct step_ctx *c, const char *service, char **ret_crt, char **ret_key);
/* What this node's certificate for service carries: its hostname and addresses,
 * localhost and 127.0.0.1, the VIP (or the external load balancer), plus goodrain.me for
 * the registry and the in-cluster names of the Kubernetes API for apiserver. */
int pki_sans_for(const struct step_ctx *c, const char *service, char ***ret);
