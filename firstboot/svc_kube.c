/* SPDX-License-Identifier: MIT */
/* Kubernetes on every master and worker (DESIGN.md section 5), RKE2 or kubeadm v1beta4.
 * The binaries come from the offline bundle; a node whose bundle lacks them skips the
 * step, so a cluster without Kubernetes still brings the other services up.
 *
 * RKE2: servers and agents register at the VIP's port 9345 (haproxy forwards it to the
 * masters), except the bootstrap master, which starts the cluster. kubeadm: the bootstrap
 * master runs `kubeadm init --upload-certs`; the others join through the VIP, pinning a CA
 * they can compute in advance (kube_ca_hash()). Init and join run once: a node holding
 * KUBE_KUBELET_CONF is in the cluster already, and a rerun only rewrites files. */
#include "svc_kube.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <json-c/json.h>
#include <libgen.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

#include "json_util.h"
#include "log.h"
#include "util.h"

/* Bounded wait for the API to answer /readyz after start: image import and etcd
 * formation take minutes on slow disks. */
#define KUBE_READY_TIMEOUT_S 600
#define KUBE_READY_INTERVAL_MS 2000
#define KUBE_CA_DAYS 3650
/* Domain separation: the seed also derives the Ed25519 cluster CA (pki.c). */
#define KUBE_CA_KDF_CONTEXT "rainboot kubeadm-ca v1"

/* ---- the offline bundle ---- */

static int bundle_load(const struct step_ctx *c, struct json_object **ret_artifacts,
                       struct json_object **ret_root) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        struct json_object *root, *arts;
        int r;

        if ((r = step_path(c, KUBE_BUNDLE_MANIFEST, &path)) < 0)
                return r;
        r = read_full_file(path, &text, NULL);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return log_error_errno(r, "Cannot read the offline bundle manifest %s: %m", path);
        root = json_tokener_parse(text);
        if (!root || !json_object_object_get_ex(root, "artifacts", &arts) ||
            !json_object_is_type(arts, json_type_array)) {
                if (root)
                        json_object_put(root);
                return log_error_errno(-EBADMSG, "%s: not a bundle manifest (no \"artifacts\" "
                                                 "array); rebuild the image with a valid bundle",
                                       path);
        }
        *ret_artifacts = arts;
        *ret_root = root;
        return 0;
}

static const char *item_str(struct json_object *it, const char *key) {
        struct json_object *v;

        if (!json_object_object_get_ex(it, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Artifacts of kind whose name equals name (prefix false) or starts with it. */
static int bundle_select(const struct step_ctx *c, const char *kind, const char *name, bool prefix,
                         char ***ret_paths) {
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        struct json_object *arts = NULL;
        int r;

        r = bundle_load(c, &arts, &root);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(arts); i++) {
                struct json_object *it = json_object_array_get_idx(arts, i);
                const char *k = item_str(it, "kind"), *n = item_str(it, "name"),
                           *file = item_str(it, "file");
                _cleanup_free_ char *rel = NULL, *p = NULL;

                if (!k || !n || !file || !streq(k, kind) ||
                    !(prefix ? startswith(n, name) : streq(n, name)))
                        continue;
                /* bundle_load() in imagebuild refused paths leaving the bundle; a damaged
                 * manifest must not point the install elsewhere either. */
                if (file[0] == '/' || strstr(file, ".."))
                        return log_error_errno(-EBADMSG, "%s: artifact '%s' has the file '%s' "
                                                         "outside the bundle directory",
                                               KUBE_BUNDLE_MANIFEST, n, file);
                if ((r = asprintf_safe(&rel, "%s/%s", KUBE_BUNDLE_DIR, file)) < 0 ||
                    (r = step_path(c, rel, &p)) < 0 || (r = strv_push(&paths, p)) < 0)
                        return r;
        }
        /* An empty list rather than NULL: callers iterate it. */
        if (!paths && !(paths = calloc(1, sizeof *paths)))
                return -ENOMEM;
        *ret_paths = TAKE_PTR(paths);
        return 0;
}

int kube_bundle_find(const struct step_ctx *c, const char *kind, const char *name, char **ret_path) {
        _cleanup_strv_free_ char **paths = NULL;
        char *p;
        int r;

        r = bundle_select(c, kind, name, false, &paths);
        if (r < 0)
                return r;
        if (!paths[0])
                return 0;
        p = strdup(paths[0]);
        if (!p)
                return -ENOMEM;
        *ret_path = p;
        return 1;
}

int kube_bundle_list(const struct step_ctx *c, const char *kind, const char *prefix, char ***ret_paths) {
        return bundle_select(c, kind, prefix, true, ret_paths);
}

/* Static text: the journal keeps it as the skip note. */
const char *kube_bundle_missing(const struct step_ctx *c) {
        static const char *const rke2[] = { "rke2", NULL };
        static const char *const kubeadm[] = { "kubeadm", "kubelet", NULL };
        static const char *const why[] = {
                "no rke2 binary in the offline bundle (" KUBE_BUNDLE_MANIFEST ")",
                "no kubeadm binary in the offline bundle (" KUBE_BUNDLE_MANIFEST ")",
                "no kubelet binary in the offline bundle (" KUBE_BUNDLE_MANIFEST ")",
        };
        const char *const *need = c->cfg->k8s == K8S_RKE2 ? rke2 : kubeadm;

        for (size_t i = 0; need[i]; i++) {
                _cleanup_free_ char *p = NULL;
                int r = kube_bundle_find(c, "binary", need[i], &p);

                if (r == -ENOENT)
                        return "no offline bundle in this image (" KUBE_BUNDLE_MANIFEST " is missing)";
                if (r == 0)
                        return why[c->cfg->k8s == K8S_RKE2 ? 0 : 1 + i];
        }
        return NULL;
}

/* ---- identities ---- */

void kube_node_name(const struct node_plan *np, char buf[static KUBE_NODE_NAME_MAX]) {
        if (np->hostname[0])
                strcpy(buf, np->hostname);
        else
                node_id_to_hex(np->id, buf);
}

int kube_node_address(const struct step_ctx *c, const struct node_plan *np,
                      char buf[static INET_ADDRSTRLEN]) {
        const struct node_info *ni = np == c->self && c->self_info ? c->self_info
                                                                   : step_node_info(c, np->id);
        char hex[2 * NODE_ID_LEN + 1];

        if (!ni || ni->n_addrs == 0) {
                node_id_to_hex(np->id, hex);
                return log_error_errno(-EADDRNOTAVAIL, "The committed view has no address for node "
                                                       "%s: the peers could not reach it.", hex);
        }
        inet_ntop(AF_INET, &ni->addrs[0], buf, INET_ADDRSTRLEN);
        return 0;
}

static int front_address(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]) {
        if (c->cfg->ext_lb)
                inet_ntop(AF_INET, &c->cfg->ext_lb->address, buf, INET_ADDRSTRLEN);
        else if (c->cfg->has_vip)
                inet_ntop(AF_INET, &c->cfg->vip.addr, buf, INET_ADDRSTRLEN);
        else
                return log_error_errno(-EINVAL, "Kubernetes needs a fixed address for its API: set "
                                                "vip.address or external.load_balancer in %s.",
                                       c->cfg->path ? c->cfg->path : "the config");
        return 0;
}

int kube_api_endpoint(const struct step_ctx *c, char **ret) {
        char addr[INET_ADDRSTRLEN];
        int r = front_address(c, addr);

        if (r < 0)
                return r;
        return asprintf_safe(ret, "%s:%u", addr,
                             c->cfg->ext_lb ? c->cfg->ext_lb->api_port : KUBE_API_VIP_PORT);
}

int kube_kubeconfig(const struct step_ctx *c, char **ret) {
        return step_path(c, c->cfg->k8s == K8S_RKE2 ? KUBE_RKE2_KUBECONFIG : KUBE_KUBEADM_KUBECONFIG,
                         ret);
}

int kube_yaml_quote(FILE *f, const char *s) {
        fputc('\'', f);
        for (const char *p = s; *p; p++) {
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return -EINVAL;
                if (*p == '\'')
                        fputc('\'', f);
                fputc(*p, f);
        }
        fputc('\'', f);
        return 0;
}

/* buf is the open_memstream() variable: fclose() sets it. */
static int memstream_close(FILE *f, char **bufp, int r, char **ret) {
        char *buf;

        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        buf = *bufp;
        *bufp = NULL;
        if (r < 0) {
                if (buf)
                        explicit_bzero(buf, strlen(buf));
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

/* "- 'x'" list items at indent, one per line. */
static int yaml_item(FILE *f, const char *indent, const char *s) {
        fprintf(f, "%s- ", indent);
        if (kube_yaml_quote(f, s) < 0)
                return -EINVAL;
        fputc('\n', f);
        return 0;
}

/* Labels that tell Rainbond's schedulers what the plan made of this node. kubelets may
 * not set node-role.kubernetes.io labels themselves (NodeRestriction), hence our own prefix. */
static int node_labels(const struct node_plan *np, char ***ret) {
        const char *names[PLAN_ROLE_NAMES_MAX];
        size_t n = node_plan_role_names(np, names);
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *s = NULL;

                if (streq(names[i], "bootstrap"))
                        continue;
                if ((r = asprintf_safe(&s, "rainbond.io/%s=true", names[i])) < 0 ||
                    (r = strv_push(&l, s)) < 0)
                        return r;
        }
        if (!l && (r = strv_push(&l, "rainbond.io/node=true")) < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

/* The addresses and names the API certificate must carry: the fixed address and every
 * master's hostname and address, so any master can serve behind the VIP. */
static int api_sans(const struct step_ctx *c, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        char addr[INET_ADDRSTRLEN], name[KUBE_NODE_NAME_MAX];
        int r;

        if ((r = front_address(c, addr)) < 0 || (r = strv_push(&l, addr)) < 0)
                return r;
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];

                if (!(np->roles & ROLE_MASTER))
                        continue;
                kube_node_name(np, name);
                if ((r = kube_node_address(c, np, addr)) < 0)
                        return r;
                if ((!strv_contains(l, name) && (r = strv_push(&l, name)) < 0) ||
                    (!strv_contains(l, addr) && (r = strv_push(&l, addr)) < 0))
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- RKE2 ---- */

static bool is_bootstrap(const struct step_ctx *c) {
        return c->self->flags & PLAN_BOOTSTRAP;
}

static bool is_master(const struct step_ctx *c) {
        return c->self->roles & ROLE_MASTER;
}

int kube_render_rke2_config(const struct step_ctx *c, const char *token, char **ret) {
        _cleanup_strv_free_ char **sans = NULL, **labels = NULL;
        char addr[INET_ADDRSTRLEN], front[INET_ADDRSTRLEN], name[KUBE_NODE_NAME_MAX];
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = kube_node_address(c, c->self, addr)) < 0 || (r = front_address(c, front)) < 0 ||
            (r = node_labels(c->self, &labels)) < 0 ||
            (is_master(c) && (r = api_sans(c, &sans)) < 0))
                return r;
        kube_node_name(c->self, name);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# Rendered by firstboot (RKE2 %s%s); `firstboot apply` rewrites it.\n",
                is_master(c) ? "server" : "agent", is_bootstrap(c) ? ", bootstrap" : "");
        /* The bootstrap server starts the cluster; everyone else registers through the
         * fixed address, so no single master is needed for a node to (re)join. */
        if (!is_bootstrap(c))
                fprintf(f, "server: 'https://%s:%u'\n", front,
                        c->cfg->ext_lb ? KUBE_RKE2_REGISTRATION_PORT : KUBE_RKE2_VIP_REGISTRATION_PORT);
        fputs("token: ", f);
        r = kube_yaml_quote(f, token);
        fputs("\nnode-name: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, name);
        fprintf(f, "\nnode-ip: '%s'\nnode-label:\n", addr);
        for (size_t i = 0; r >= 0 && labels[i]; i++)
                r = yaml_item(f, "  ", labels[i]);
        if (is_master(c)) {
                fputs("tls-san:\n", f);
                for (size_t i = 0; r >= 0 && sans[i]; i++)
                        r = yaml_item(f, "  ", sans[i]);
                /* Rainbond's gateway owns 80/443 on the gateway nodes. */
                fputs("disable:\n"
                      "  - 'rke2-ingress-nginx'\n"
                      "write-kubeconfig-mode: '0600'\n", f);
        }
        return memstream_close(f, &buf, r, ret);
}

int kube_render_rke2_registries(const struct step_ctx *c, const char *password, char **ret) {
        const struct external_registry *x = c->cfg->ext_registry;
        _cleanup_free_ char *ca = NULL, *ext_endpoint = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = step_path(c, "/etc/rainboot/pki/ca.crt", &ca)) < 0)
                return r;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        /* containerd's mirror syntax via RKE2: the cluster registry (goodrain.me resolves
         * to the VIP) trusted through the cluster CA, with the registry's credentials. */
        fprintf(f,
                "# Rendered by firstboot; `firstboot apply` rewrites it.\n"
                "mirrors:\n"
                "  '%s':\n"
                "    endpoint:\n"
                "      - 'https://%s'\n",
                REGISTRY_HOST, REGISTRY_HOST);
        if (x) {
                fputs("  ", f);
                r = kube_yaml_quote(f, x->domain);
                fputs(":\n    endpoint:\n      - ", f);
                if (r >= 0 && (r = asprintf_safe(&ext_endpoint, "https://%s", x->domain)) >= 0)
                        r = kube_yaml_quote(f, ext_endpoint);
                fputc('\n', f);
        }
        fprintf(f,
                "configs:\n"
                "  '%s':\n"
                "    auth:\n"
                "      username: '%s'\n"
                "      password: ",
                REGISTRY_HOST, REGISTRY_USER);
        if (r >= 0)
                r = kube_yaml_quote(f, password);
        fputs("\n    tls:\n      ca_file: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, ca);
        fputc('\n', f);
        if (x && r >= 0) {
                fputs("  ", f);
                r = kube_yaml_quote(f, x->domain);
                fputs(":\n    auth:\n      username: ", f);
                if (r >= 0)
                        r = kube_yaml_quote(f, x->username ? x->username : "");
                fputs("\n      password: ", f);
                if (r >= 0)
                        r = kube_yaml_quote(f, x->password ? x->password : "");
                fputc('\n', f);
                if (x->ca && r >= 0) {
                        fputs("    tls:\n      ca_file: ", f);
                        r = kube_yaml_quote(f, x->ca);
                        fputc('\n', f);
                }
        }
        if (r == -EINVAL)
                log_error("The registry credentials hold control characters: they cannot go into "
                          "%s; change external.registry in the config.", KUBE_RKE2_REGISTRIES);
        return memstream_close(f, &buf, r, ret);
}

/* ---- kubeadm ---- */

int kube_version_from_name(const char *s, char **ret) {
        for (const char *p = s; (p = strchr(p, 'v')); p++) {
                const char *q = p + 1;
                char *v;

                for (int part = 0; part < 3; part++) {
                        if (!isdigit((unsigned char)*q))
                                break;
                        while (isdigit((unsigned char)*q))
                                q++;
                        if (part < 2) {
                                if (*q != '.')
                                        break;
                                q++;
                        } else
                                goto found;
                }
                continue;
        found:
                /* A pre-release or build suffix belongs to it: v1.31.4-rc.1, v1.31.4+rke2r1;
                 * a dot ends it unless more of the suffix follows (".tar" does not). */
                if (*q == '-' || *q == '+')
                        while (*q && (isalnum((unsigned char)*q) || *q == '-' || *q == '+' ||
                                      (*q == '.' && isdigit((unsigned char)q[1]))))
                                q++;
                v = strndup(p, (size_t)(q - p));
                if (!v)
                        return -ENOMEM;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

static int kubeadm_node_registration(FILE *f, const struct node_plan *np, const char *name,
                                     const char *addr, char *const *labels) {
        int r;

        fputs("nodeRegistration:\n  name: ", f);
        r = kube_yaml_quote(f, name);
        fprintf(f, "\n  criSocket: '%s'\n", KUBE_CONTAINERD_SOCKET);
        /* kubeadm taints control-plane nodes NoSchedule; a master the plan also gives
         * workloads (worker, Rainbond gateway or builder: every node of a 3-node cluster)
         * must stay schedulable. */
        if ((np->roles & ROLE_MASTER) && (np->roles & (ROLE_WORKER | ROLE_GATEWAY | ROLE_BUILDER)))
                fputs("  taints: []\n", f);
        fprintf(f,
                "  kubeletExtraArgs:\n"
                "    - name: 'node-ip'\n"
                "      value: '%s'\n"
                "    - name: 'node-labels'\n"
                "      value: '",
                addr);
        for (size_t i = 0; labels[i]; i++)
                fprintf(f, "%s%s", i ? "," : "", labels[i]);
        fputs("'\n", f);
        return r;
}

int kube_render_kubeadm_config(const struct step_ctx *c, const char *token, const char *cert_key,
                               const char *ca_hash, const char *version, char **ret) {
        _cleanup_strv_free_ char **labels = NULL, **sans = NULL;
        _cleanup_free_ char *endpoint = NULL, *ca = NULL, *crt = NULL, *key = NULL;
        char addr[INET_ADDRSTRLEN], name[KUBE_NODE_NAME_MAX];
        char *buf = NULL;
        size_t size = 0, n_etcd = 0;
        FILE *f;
        int r;

        if ((r = kube_node_address(c, c->self, addr)) < 0 || (r = kube_api_endpoint(c, &endpoint)) < 0 ||
            (r = node_labels(c->self, &labels)) < 0 ||
            (r = step_path(c, "/etc/rainboot/pki/ca.crt", &ca)) < 0 ||
            (r = step_path(c, "/etc/rainboot/pki/etcd.crt", &crt)) < 0 ||
            (r = step_path(c, "/etc/rainboot/pki/etcd.key", &key)) < 0)
                return r;
        /* kubeadm's own syntax checks would catch these later, less clearly. */
        for (const char *p = token; *p; p++)
                if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.'))
                        return log_error_errno(-EINVAL, "The join token is not a kubeadm bootstrap "
                                                        "token ([a-z0-9]{6}.[a-z0-9]{16}): the "
                                                        "secrets file is damaged; rerun discovery.");
        for (const char *p = cert_key; *p; p++)
                if (!isxdigit((unsigned char)*p))
                        return log_error_errno(-EINVAL, "The certificate key is not hex: the "
                                                        "secrets file is damaged; rerun discovery.");
        kube_node_name(c->self, name);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("# Rendered by firstboot (kubeadm v1beta4); `firstboot apply` rewrites it.\n", f);
        if (is_bootstrap(c)) {
                if ((r = api_sans(c, &sans)) < 0) {
                        fclose(f);
                        free(buf);
                        return r;
                }
                /* ttl 0s: late joiners arrive any time after formation and bring only the
                 * sealed token. The token never leaves sealed messages and 0600 files. */
                fprintf(f,
                        "apiVersion: kubeadm.k8s.io/v1beta4\n"
                        "kind: InitConfiguration\n"
                        "bootstrapTokens:\n"
                        "  - token: '%s'\n"
                        "    ttl: '0s'\n"
                        "    usages: ['signing', 'authentication']\n"
                        "    groups: ['system:bootstrappers:kubeadm:default-node-token']\n"
                        "certificateKey: '%s'\n",
                        token, cert_key);
                r = kubeadm_node_registration(f, c->self, name, addr, labels);
                fprintf(f,
                        "localAPIEndpoint:\n"
                        "  advertiseAddress: '%s'\n"
                        "  bindPort: %u\n"
                        "---\n"
                        "apiVersion: kubeadm.k8s.io/v1beta4\n"
                        "kind: ClusterConfiguration\n"
                        "clusterName: ",
                        addr, KUBE_API_PORT);
                if (r >= 0)
                        r = kube_yaml_quote(f, c->cfg->cluster_name ? c->cfg->cluster_name : "kubernetes");
                /* ECDSA like the CA: kubeadm signs its leaf certificates in kind. */
                fprintf(f,
                        "\nkubernetesVersion: '%s'\n"
                        "controlPlaneEndpoint: '%s'\n"
                        "imageRepository: '%s/%s'\n"
                        "encryptionAlgorithm: 'ECDSA-P256'\n"
                        "etcd:\n"
                        "  external:\n"
                        "    endpoints:\n",
                        version, endpoint, REGISTRY_HOST, KUBE_REGISTRY_NAMESPACE);
                for (size_t i = 0; r >= 0 && i < c->plan->n; i++) {
                        char e[INET_ADDRSTRLEN];

                        if (!(c->plan->nodes[i].roles & ROLE_ETCD))
                                continue;
                        if ((r = kube_node_address(c, &c->plan->nodes[i], e)) < 0)
                                break;
                        fprintf(f, "      - 'https://%s:2379'\n", e);
                        n_etcd++;
                }
                if (r >= 0 && n_etcd == 0)
                        r = log_error_errno(-EINVAL, "The plan has no etcd member for kubeadm's "
                                                     "external etcd.");
                fputs("    caFile: ", f);
                if (r >= 0)
                        r = kube_yaml_quote(f, ca);
                fputs("\n    certFile: ", f);
                if (r >= 0)
                        r = kube_yaml_quote(f, crt);
                fputs("\n    keyFile: ", f);
                if (r >= 0)
                        r = kube_yaml_quote(f, key);
                fputs("\napiServer:\n  certSANs:\n", f);
                for (size_t i = 0; r >= 0 && sans[i]; i++)
                        r = yaml_item(f, "    ", sans[i]);
                return memstream_close(f, &buf, r, ret);
        }
        fprintf(f,
                "apiVersion: kubeadm.k8s.io/v1beta4\n"
                "kind: JoinConfiguration\n"
                "discovery:\n"
                "  bootstrapToken:\n"
                "    apiServerEndpoint: '%s'\n"
                "    token: '%s'\n"
                "    caCertHashes:\n"
                "      - '%s'\n",
                endpoint, token, ca_hash);
        r = kubeadm_node_registration(f, c->self, name, addr, labels);
        if (is_master(c))
                fprintf(f,
                        "controlPlane:\n"
                        "  localAPIEndpoint:\n"
                        "    advertiseAddress: '%s'\n"
                        "    bindPort: %u\n"
                        "  certificateKey: '%s'\n",
                        addr, KUBE_API_PORT, cert_key);
        return memstream_close(f, &buf, r, ret);
}

/* ---- kubeadm's CA, derived from ca_seed ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

static int ca_key_derive(const char *seed_hex, const char *cluster_name, EVP_PKEY **ret) {
        uint8_t seed[32], wide[64], pub[65];
        crypto_generichash_state st;
        const char *ctx_str = KUBE_CA_KDF_CONTEXT;
        EC_GROUP *group = NULL;
        EC_POINT *point = NULL;
        BIGNUM *d = NULL, *order = NULL, *one = NULL;
        BN_CTX *bn = NULL;
        OSSL_PARAM_BLD *bld = NULL;
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        EVP_PKEY *pkey = NULL;
        int r = -EIO;

        if (strlen(seed_hex) != 64 || hex_decode(seed_hex, seed, sizeof seed) < 0)
                return log_error_errno(-EINVAL, "ca_seed in the secrets is not 64 hex digits: the "
                                                "secrets file is damaged; rerun discovery.");
        /* A 512-bit hash reduced modulo the order: bias below 2^-256. */
        crypto_generichash_init(&st, seed, sizeof seed, sizeof wide);
        crypto_generichash_update(&st, (const uint8_t *)ctx_str, strlen(ctx_str) + 1);
        crypto_generichash_update(&st, (const uint8_t *)cluster_name, strlen(cluster_name));
        crypto_generichash_final(&st, wide, sizeof wide);
        sodium_memzero(seed, sizeof seed);

        group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        bn = BN_CTX_new();
        d = BN_secure_new();
        order = BN_new();
        one = BN_new();
        if (!group || !bn || !d || !order || !one)
                goto out;
        point = EC_POINT_new(group);
        /* d = wide mod (n - 1) + 1, never 0. */
        if (!point || !EC_GROUP_get_order(group, order, bn) || !BN_one(one) ||
            !BN_sub(order, order, one) || !BN_bin2bn(wide, sizeof wide, d) ||
            !BN_mod(d, d, order, bn) || !BN_add(d, d, one) ||
            !EC_POINT_mul(group, point, d, NULL, NULL, bn) ||
            EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, bn) !=
                    sizeof pub)
                goto out;
        bld = OSSL_PARAM_BLD_new();
        if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
                goto out;
        params = OSSL_PARAM_BLD_to_param(bld);
        pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!params || !pctx || EVP_PKEY_fromdata_init(pctx) <= 0 ||
            EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0)
                goto out;
        *ret = pkey;
        r = 0;
out:
        sodium_memzero(wide, sizeof wide);
        EVP_PKEY_CTX_free(pctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_clear_free(d);
        BN_free(order);
        BN_free(one);
        BN_CTX_free(bn);
        EC_POINT_free(point);
        EC_GROUP_free(group);
        if (r < 0)
                log_error("Cannot derive kubeadm's CA key: OpenSSL failed (libcrypto 3 with P-256 "
                          "is needed).");
        return r;
}

static int spki_hash(EVP_PKEY *pkey, char ret[static KUBE_CA_HASH_LEN]) {
        unsigned char *der = NULL;
        uint8_t h[crypto_hash_sha256_BYTES];
        int n = i2d_PUBKEY(pkey, &der);

        if (n <= 0)
                return -EIO;
        crypto_hash_sha256(h, der, (unsigned long long)n);
        OPENSSL_free(der);
        memcpy(ret, "sha256:", 7);
        hex_encode(h, sizeof h, ret + 7);
        return 0;
}

int kube_ca_hash(const char *ca_seed_hex, const char *cluster_name, char ret[static KUBE_CA_HASH_LEN]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        int r = ca_key_derive(ca_seed_hex, cluster_name ? cluster_name : "", &pkey);

        if (r < 0)
                return r;
        return spki_hash(pkey, ret);
}

static int bio_text(BIO *b, char **ret) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        char *s;

        if (n <= 0)
                return -EIO;
        s = strndup(data, (size_t)n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int ca_pem(EVP_PKEY *pkey, char **ret_crt, char **ret_key) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_(BIO_freep) BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_secmem());
        _cleanup_free_ char *crt = NULL;
        X509_NAME *name;
        X509V3_CTX v3;
        static const struct { int nid; const char *value; } exts[] = {
                { NID_basic_constraints, "critical,CA:TRUE" },
                { NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign" },
                { NID_subject_key_identifier, "hash" },
        };
        int r;

        if (!x || !bc || !bk || !X509_set_version(x, 2) ||
            !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), (long)KUBE_CA_DAYS * 86400) ||
            !X509_set_pubkey(x, pkey) || !(name = X509_get_subject_name(x)) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kubernetes",
                                        -1, -1, 0) ||
            !X509_set_issuer_name(x, name))
                return -EIO;
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);

                if (!e)
                        return -EIO;
                r = X509_add_ext(x, e, -1);
                X509_EXTENSION_free(e);
                if (!r)
                        return -EIO;
        }
        if (!X509_sign(x, pkey, EVP_sha256()) || !PEM_write_bio_X509(bc, x) ||
            !PEM_write_bio_PrivateKey(bk, pkey, NULL, NULL, 0, NULL, NULL))
                return -EIO;
        if ((r = bio_text(bc, &crt)) < 0 || (r = bio_text(bk, ret_key)) < 0)
                return r;
        *ret_crt = TAKE_PTR(crt);
        return 0;
}

/* The hash of the CA certificate at path, or -ENOENT. */
static int file_ca_hash(const char *path, char ret[static KUBE_CA_HASH_LEN]) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(BIO_freep) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        int r = read_full_file(path, &text, NULL);

        if (r < 0)
                return r;
        b = BIO_new_mem_buf(text, -1);
        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        return spki_hash(X509_get0_pubkey(x), ret);
}

int kube_ca_write(const struct step_ctx *c, const char *ca_seed_hex) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_free_ char *dir = NULL, *crt_path = NULL, *key_path = NULL, *crt = NULL, *key = NULL;
        char want[KUBE_CA_HASH_LEN], have[KUBE_CA_HASH_LEN];
        int r;

        if ((r = step_path(c, KUBE_KUBEADM_PKI, &dir)) < 0 ||
            (r = asprintf_safe(&crt_path, "%s/ca.crt", dir)) < 0 ||
            (r = asprintf_safe(&key_path, "%s/ca.key", dir)) < 0)
                return r;
        r = ca_key_derive(ca_seed_hex, c->cfg->cluster_name ? c->cfg->cluster_name : "", &pkey);
        if (r < 0)
                return r;
        if ((r = spki_hash(pkey, want)) < 0)
                return r;
        /* The certificate's signature is randomized: keep the one written first, so a rerun
         * leaves kubeadm's PKI alone. */
        if (file_ca_hash(crt_path, have) == 0 && streq(have, want) && access(key_path, F_OK) == 0)
                return 0;
        r = ca_pem(pkey, &crt, &key);
        if (r < 0)
                return log_error_errno(r, "Cannot make kubeadm's CA certificate: %m");
        r = mkdir_parents(dir, 0755);
        if (r >= 0)
                r = write_file_atomic(key_path, key, strlen(key), 0600);
        explicit_bzero(key, strlen(key));
        if (r >= 0)
                r = write_file_atomic(crt_path, crt, strlen(crt), 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write kubeadm's CA to %s: %m", dir);
        log_info("Wrote kubeadm's CA (%s) to %s", want, dir);
        return 0;
}

/* ---- the step ---- */

const char *kube_secrets_missing(const struct step_ctx *c) {
        _cleanup_free_ char *path = NULL;

        /* Sealed by discovery; a node given a plan by hand (`firstboot plan --steps` on a
         * build host, the namespace harness) has none, and nothing to join with. */
        if (c->state_dir && asprintf_safe(&path, "%s/" STEP_SECRETS_FILE, c->state_dir) >= 0 &&
            access(path, F_OK) < 0)
                return "no sealed secrets (" STEP_SECRETS_FILE ") in the state directory";
        return NULL;
}

static const char *kube_skip(const struct step_ctx *c) {
        if (!(c->self->roles & (ROLE_MASTER | ROLE_WORKER)))
                return "neither a master nor a worker";
        return kube_secrets_missing(c) ?: kube_bundle_missing(c);
}

static int add_file(struct step_render *rd, const struct step_ctx *c, const char *path,
                    char *content, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        int r = step_path(c, path, &p);

        if (r < 0) {
                free(content);
                return r;
        }
        return step_render_add_file(rd, p, content, mode);
}

/* install -D -m MODE <bundle file> <root><dest>; *ret_dest gets the installed path. */
static int add_install(struct step_render *rd, const struct step_ctx *c, const char *src,
                       const char *dest, const char *mode, char **ret_dest) {
        _cleanup_free_ char *d = NULL;
        int r = step_path(c, dest, &d);

        if (r < 0 || (r = step_render_add_command(rd, "install", "-D", "-m", mode, src, d, NULL)) < 0)
                return r;
        if (ret_dest)
                *ret_dest = TAKE_PTR(d);
        return 0;
}

/* A binary the bundle must have (kube_skip() checked); installed under KUBE_BIN_DIR. */
static int install_binary(struct step_render *rd, const struct step_ctx *c, const char *name,
                          bool required, char **ret_dest) {
        _cleanup_free_ char *src = NULL, *dest = NULL;
        int r = kube_bundle_find(c, "binary", name, &src);

        if (r < 0)
                return r;
        if (r == 0) {
                if (required)
                        return log_error_errno(-ENOENT, "No %s binary in the offline bundle "
                                                        "(%s): add it to the image's bundle.",
                                               name, KUBE_BUNDLE_MANIFEST);
                return 0;
        }
        if ((r = asprintf_safe(&dest, KUBE_BIN_DIR "/%s", name)) < 0)
                return r;
        return add_install(rd, c, src, dest, "0755", ret_dest);
}

static int secret(const struct step_ctx *c, const char *key, char **ret) {
        int r = step_secret(c, key, ret);

        if (r == -ENOENT)
                return log_error_errno(r, "The cluster secrets lack %s: rerun discovery so the "
                                          "bootstrap node hands them out again.", key);
        return r;
}

static void secret_freep(char **s) {
        if (*s) {
                explicit_bzero(*s, strlen(*s));
                free(*s);
        }
}
#define _cleanup_secret_ _cleanup_(secret_freep)

static int rke2_unit(const char *bin, const char *mode, char **ret) {
        /* Upstream's unit, bounded: TimeoutStartSec=0 would let `systemctl enable --now`
         * (Type=notify) block firstboot forever on a server that never becomes ready. */
        return asprintf_safe(ret,
                             "# Rendered by firstboot: RKE2 %s from the offline bundle.\n"
                             "[Unit]\n"
                             "Description=Rancher Kubernetes Engine v2 (%s)\n"
                             "Wants=network-online.target\n"
                             "After=network-online.target\n"
                             "Conflicts=rke2-%s.service\n"
                             "\n"
                             "[Service]\n"
                             "Type=notify\n"
                             "EnvironmentFile=-/etc/default/rke2-%s\n"
                             "KillMode=process\n"
                             "Delegate=yes\n"
                             "LimitNOFILE=1048576\n"
                             "LimitNPROC=infinity\n"
                             "LimitCORE=infinity\n"
                             "TasksMax=infinity\n"
                             "TimeoutStartSec=15min\n"
                             "Restart=always\n"
                             "RestartSec=5s\n"
                             "ExecStartPre=-/sbin/modprobe br_netfilter\n"
                             "ExecStartPre=-/sbin/modprobe overlay\n"
                             "ExecStart=%s %s\n"
                             "\n"
                             "[Install]\n"
                             "WantedBy=multi-user.target\n",
                             mode, mode, streq(mode, "server") ? "agent" : "server", mode, bin, mode);
}

static int render_rke2(const struct step_ctx *c, struct step_render *rd) {
        _cleanup_secret_ char *token = NULL, *password = NULL, *conf = NULL, *regs = NULL;
        _cleanup_free_ char *bin = NULL, *unit = NULL, *unit_path = NULL, *cfg_path = NULL, *name = NULL;
        _cleanup_strv_free_ char **images = NULL, **argv = NULL;
        const char *mode = is_master(c) ? "server" : "agent";
        int r;

        if ((r = secret(c, "join_token", &token)) < 0)
                return r;
        r = step_secret(c, "registry_password", &password);
        if (r == -ENOENT)
                password = strdup("");
        else if (r < 0)
                return r;
        if (!password)
                return -ENOMEM;
        if ((r = kube_render_rke2_config(c, token, &conf)) < 0 ||
            (r = kube_render_rke2_registries(c, password, &regs)) < 0 ||
            (r = add_file(rd, c, KUBE_RKE2_CONFIG, TAKE_PTR(conf), 0600)) < 0 ||
            (r = add_file(rd, c, KUBE_RKE2_REGISTRIES, TAKE_PTR(regs), 0600)) < 0)
                return r;
        if ((r = install_binary(rd, c, "rke2", true, &bin)) < 0 ||
            (r = install_binary(rd, c, "kubectl", false, NULL)) < 0 ||
            (r = kube_bundle_list(c, "oci-archive", "rke2-images", &images)) < 0)
                return r;
        /* Airgap: RKE2 imports every tarball in this directory before pulling anything. */
        for (size_t i = 0; images[i]; i++) {
                _cleanup_free_ char *dest = NULL, *copy = strdup(images[i]);

                if (!copy || (r = asprintf_safe(&dest, KUBE_RKE2_IMAGES_DIR "/%s", basename(copy))) < 0 ||
                    (r = add_install(rd, c, images[i], dest, "0644", NULL)) < 0)
                        return r < 0 ? r : -ENOMEM;
        }
        if ((r = rke2_unit(bin, mode, &unit)) < 0 ||
            (r = asprintf_safe(&unit_path, "/etc/systemd/system/rke2-%s.service", mode)) < 0 ||
            (r = add_file(rd, c, unit_path, TAKE_PTR(unit), 0644)) < 0)
                return r;
        if (c->supervisor == SVCMGR_SYSTEMD &&
            (r = step_render_add_command(rd, "systemctl", "daemon-reload", NULL)) < 0)
                return r;
        if ((r = step_path(c, KUBE_RKE2_CONFIG, &cfg_path)) < 0 || (r = strv_push(&argv, bin)) < 0 ||
            (r = strv_push(&argv, mode)) < 0 || (r = strv_push(&argv, "--config")) < 0 ||
            (r = strv_push(&argv, cfg_path)) < 0)
                return r;
        free(unit_path);
        if ((r = asprintf_safe(&name, "rke2-%s", mode)) < 0 ||
            (r = asprintf_safe(&unit_path, "rke2-%s.service", mode)) < 0)
                return r;
        return step_render_add_service(rd, name, unit_path, 0, TAKE_PTR(argv));
}

static int kubelet_files(const struct step_ctx *c, struct step_render *rd, const char *bin) {
        _cleanup_free_ char *unit = NULL, *dropin = NULL;
        int r;

        if ((r = asprintf_safe(&unit,
                               "# Rendered by firstboot: the kubelet from the offline bundle.\n"
                               "[Unit]\n"
                               "Description=kubelet: The Kubernetes Node Agent\n"
                               "Wants=network-online.target containerd.service\n"
                               "After=network-online.target containerd.service\n"
                               "\n"
                               "[Service]\n"
                               "ExecStart=%s\n"
                               "Restart=always\n"
                               "StartLimitInterval=0\n"
                               "RestartSec=10\n"
                               "\n"
                               "[Install]\n"
                               "WantedBy=multi-user.target\n", bin)) < 0 ||
            /* kubeadm writes kubeadm-flags.env and config.yaml during init/join; the kubelet
             * crash-loops until then, as upstream's packages do. */
            (r = asprintf_safe(&dropin,
                               "# Rendered by firstboot: how kubeadm runs the kubelet.\n"
                               "[Service]\n"
                               "Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n"
                               "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
                               "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
                               "EnvironmentFile=-/etc/default/kubelet\n"
                               "ExecStart=\n"
                               "ExecStart=%s $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n",
                               bin)) < 0)
                return r;
        if ((r = add_file(rd, c, "/etc/systemd/system/kubelet.service", TAKE_PTR(unit), 0644)) < 0)
                return r;
        return add_file(rd, c, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                        TAKE_PTR(dropin), 0644);
}

/* containerd for the kubelet: Debian's containerd runs without a config file, so CRI would
 * ignore the registry's certs.d (config_path is empty in 1.6), pull its sandbox image from
 * the internet and drive cgroupfs while kubeadm's kubelet drives systemd. */
static int containerd_config(const struct step_ctx *c, struct step_render *rd) {
        _cleanup_free_ char *certs = NULL, *text = NULL;
        int r;

        if ((r = step_path(c, "/etc/containerd/certs.d", &certs)) < 0 ||
            (r = asprintf_safe(&text,
                               "# Rendered by firstboot for kubeadm's kubelet; `firstboot apply` rewrites it.\n"
                               "version = 2\n"
                               "\n"
                               "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
                               "  sandbox_image = \"%s/%s/pause:%s\"\n"
                               "\n"
                               "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
                               "  runtime_type = \"io.containerd.runc.v2\"\n"
                               "\n"
                               "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
                               "  SystemdCgroup = true\n"
                               "\n"
                               "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
                               "  config_path = \"%s\"\n",
                               REGISTRY_HOST, KUBE_REGISTRY_NAMESPACE, KUBE_PAUSE_VERSION, certs)) < 0)
                return r;
        return add_file(rd, c, KUBE_CONTAINERD_CONFIG, TAKE_PTR(text), 0644);
}

static int render_kubeadm(const struct step_ctx *c, struct step_render *rd) {
        _cleanup_secret_ char *token = NULL, *cert_key = NULL, *seed = NULL, *conf = NULL;
        _cleanup_free_ char *kubeadm = NULL, *kubelet = NULL, *src = NULL, *version = NULL;
        _cleanup_free_ char *conf_path = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        char hash[KUBE_CA_HASH_LEN];
        int r;

        if ((r = secret(c, "join_token", &token)) < 0 || (r = secret(c, "cert_key", &cert_key)) < 0 ||
            (r = secret(c, "ca_seed", &seed)) < 0 ||
            (r = kube_ca_hash(seed, c->cfg->cluster_name, hash)) < 0)
                return r;
        r = kube_bundle_find(c, "binary", "kubeadm", &src);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        r = kube_version_from_name(src, &version);
        if (r == -ENOENT)
                return log_error_errno(r, "The offline bundle's kubeadm file (%s) does not name its "
                                          "Kubernetes version: name it like bin/kubeadm-v1.31.4 "
                                          "in the bundle.", src);
        if (r < 0)
                return r;
        if ((r = kube_render_kubeadm_config(c, token, cert_key, hash, version, &conf)) < 0 ||
            (r = add_file(rd, c, KUBE_KUBEADM_CONFIG, TAKE_PTR(conf), 0600)) < 0)
                return r;
        if ((r = install_binary(rd, c, "kubeadm", true, &kubeadm)) < 0 ||
            (r = install_binary(rd, c, "kubelet", true, &kubelet)) < 0 ||
            (r = install_binary(rd, c, "kubectl", false, NULL)) < 0 ||
            (r = kubelet_files(c, rd, kubelet)) < 0 || (r = containerd_config(c, rd)) < 0)
                return r;
        /* kubeadm needs containerd on the new config before it pulls anything. */
        if (c->supervisor == SVCMGR_SYSTEMD &&
            ((r = step_render_add_command(rd, "systemctl", "daemon-reload", NULL)) < 0 ||
             (r = step_render_add_command(rd, "systemctl", "restart", "containerd.service", NULL)) < 0 ||
             (r = step_render_add_command(rd, "systemctl", "enable", "kubelet.service", NULL)) < 0))
                return r;
        if ((r = step_path(c, KUBE_KUBEADM_CONFIG, &conf_path)) < 0)
                return r;
        if (is_bootstrap(c))
                r = step_render_add_command(rd, kubeadm, "init", "--config", conf_path,
                                            "--upload-certs", NULL);
        else
                r = step_render_add_command(rd, kubeadm, "join", "--config", conf_path, NULL);
        if (r < 0)
                return r;
        if ((r = strv_push(&argv, kubelet)) < 0)
                return r;
        return step_render_add_service(rd, "kubelet", "kubelet.service", 0, TAKE_PTR(argv));
}

static int kube_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        int r;

        r = c->cfg->k8s == K8S_RKE2 ? render_rke2(c, &rd) : render_kubeadm(c, &rd);
        if (r < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static bool is_join_command(char *const *argv) {
        return endswith(argv[0], "/kubeadm") && argv[1] &&
               (streq(argv[1], "init") || streq(argv[1], "join"));
}

static int joined(const struct step_ctx *c) {
        _cleanup_free_ char *p = NULL;
        int r = step_path(c, KUBE_KUBELET_CONF, &p);

        if (r < 0)
                return r;
        return access(p, F_OK) == 0;
}

static int kube_check(const struct step_ctx *c, const struct step_render *r) {
        int k;

        if (c->cfg->k8s == K8S_KUBEADM && (k = joined(c)) <= 0)
                return k;
        return step_check_default(c, r);
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int wait_ready(const struct step_ctx *c, struct cmd_failure *f) {
        _cleanup_free_ char *kubectl = NULL, *kubeconfig = NULL;
        char *argv[7];
        struct timespec start, now;
        int r;

        if ((r = step_path(c, KUBE_BIN_DIR "/kubectl", &kubectl)) < 0 ||
            (r = kube_kubeconfig(c, &kubeconfig)) < 0)
                return r;
        /* RKE2 unpacks its own kubectl; kubeadm has none unless the bundle brings one,
         * and init/join already waited for the local API then. */
        if (access(kubectl, X_OK) < 0) {
                if (c->cfg->k8s != K8S_RKE2) {
                        log_info("No kubectl in the offline bundle: not waiting for /readyz "
                                 "(kubeadm itself waited for the API server).");
                        return 0;
                }
                free(kubectl);
                if ((r = step_path(c, "/var/lib/rancher/rke2/bin/kubectl", &kubectl)) < 0)
                        return r;
        }
        argv[0] = kubectl;
        argv[1] = (char *)"--kubeconfig";
        argv[2] = kubeconfig;
        argv[3] = (char *)"get";
        argv[4] = (char *)"--raw";
        argv[5] = (char *)"/readyz";
        argv[6] = NULL;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                _cleanup_free_ char *out = NULL;

                r = (c->run ? c->run : cmd_runner_default)(c->run_userdata, argv, &out);
                if (r == 0)
                        return 0;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= KUBE_READY_TIMEOUT_S) {
                        cmd_failure_set(f, argv, r, out);
                        return log_error_errno(-ETIMEDOUT, "The Kubernetes API did not become ready "
                                                           "within %d s; see `%s` and the "
                                                           "service's journal.",
                                               KUBE_READY_TIMEOUT_S, argv[0]);
                }
                sleep_ms(KUBE_READY_INTERVAL_MS);
        }
}

static int kube_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                      struct cmd_failure *f) {
        _cleanup_free_ char ***cmds = NULL;
        struct step_render once = *r;
        int k;

        if (c->cfg->k8s == K8S_KUBEADM) {
                k = joined(c);
                if (k < 0)
                        return k;
                /* Init and join happen once per node; later runs only refresh files. */
                if (k > 0) {
                        cmds = calloc(r->n_commands + 1, sizeof *cmds);
                        if (!cmds)
                                return -ENOMEM;
                        once.commands = cmds;
                        once.n_commands = 0;
                        for (size_t i = 0; i < r->n_commands; i++)
                                if (!is_join_command(r->commands[i]))
                                        cmds[once.n_commands++] = r->commands[i];
                } else if (is_bootstrap(c)) {
                        _cleanup_secret_ char *seed = NULL;

                        if ((k = secret(c, "ca_seed", &seed)) < 0 ||
                            (k = kube_ca_write(c, seed)) < 0)
                                return k;
                }
        }
        k = step_apply_default(c, &once, resumed, f);
        if (k < 0)
                return k;
        if (!is_master(c))
                return 0;
        return wait_ready(c, f);
}

const struct step step_kubernetes = {
        .name = "kubernetes",
        .after = (const char *const[]){ "etcd", "pki", "registry-trust", "images", "haproxy", NULL },
        .skip_reason = kube_skip,
        .render = kube_render,
        .check = kube_check,
        .apply = kube_apply,
};
