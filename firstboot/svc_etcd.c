/* SPDX-License-Identifier: MIT */
/* etcd on the masters (issue 4 item 6): a static bootstrap of every plan member with the
 * etcd role, rendered as etcd's own YAML config file. The direct supervisor runs the
 * binary with --config-file; under systemd a drop-in points Debian's etcd.service at the
 * same binary and file. Only for kubeadm, which uses it as external etcd: RKE2 embeds its
 * own.
 *
 * TLS on both sides with the cluster PKI (the pki step): clients and peers must present
 * a certificate the cluster CA signed, so only the cluster's own nodes reach the data
 * Kubernetes keeps there. */
#include <arpa/inet.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"
#include "steps.h"
#include "svc_kube.h"
#include "util.h"

#define ETCD_CONF "/etc/rainboot/etcd.conf.yml"
#define ETCD_DROPIN "/etc/systemd/system/etcd.service.d/rainboot.conf"
/* kubeadm 1.31+ wants etcd >= 3.5.11 and Debian 12 ships 3.4: the offline bundle's binary
 * named "etcd" wins when it is there. */
#define ETCD_DEBIAN_BIN "/usr/bin/etcd"
#define ETCD_CLIENT_PORT 2379
#define ETCD_PEER_PORT 2380
#define NAME_BUF (2 * NODE_ID_LEN + 1 > NODE_HOSTNAME_MAX + 1 ? 2 * NODE_ID_LEN + 1 : NODE_HOSTNAME_MAX + 1)

static const char *etcd_skip(const struct step_ctx *c) {
        _cleanup_free_ char *secrets = NULL;

        /* Two etcd clusters on one node would fight over 2379/2380. */
        if (c->cfg->k8s == K8S_RKE2)
                return "kubernetes.distribution is rke2: its servers run their own embedded etcd";
        if (!(c->self->roles & ROLE_ETCD))
                return "not an etcd member (etcd runs on the masters)";
        /* No seed, no certificates (the pki step skips too): etcd would not start. */
        if (c->state_dir && asprintf_safe(&secrets, "%s/" STEP_SECRETS_FILE, c->state_dir) >= 0 &&
            access(secrets, F_OK) < 0)
                return "no sealed secrets (" STEP_SECRETS_FILE "): no cluster certificates for its TLS";
        return NULL;
}

/* The member name: the hostname, or the node id where discovery saw none. */
static void member_name(const struct node_plan *np, char buf[static NAME_BUF]) {
        if (np->hostname[0])
                strcpy(buf, np->hostname);
        else
                node_id_to_hex(np->id, buf);
}

static int member_address(const struct step_ctx *c, const struct node_plan *np,
                          char buf[static INET_ADDRSTRLEN]) {
        const struct node_info *ni = np == c->self ? c->self_info : step_node_info(c, np->id);
        char hex[2 * NODE_ID_LEN + 1];

        if (!ni || ni->n_addrs == 0) {
                node_id_to_hex(np->id, hex);
                return log_error_errno(-EADDRNOTAVAIL,
                                       "The committed view has no address for etcd member %s: "
                                       "the peers could not reach it.", hex);
        }
        inet_ntop(AF_INET, &ni->addrs[0], buf, INET_ADDRSTRLEN);
        return 0;
}

static int render_conf(const struct step_ctx *c, const char *data_dir, char **ret) {
        _cleanup_free_ char *ca = NULL, *crt = NULL, *key = NULL;
        char self[INET_ADDRSTRLEN], name[NAME_BUF], digest[2 * DIGEST_LEN + 1];
        char *buf = NULL;
        size_t size = 0, n_members = 0;
        FILE *f;
        int r;

        r = member_address(c, c->self, self);
        if (r < 0)
                return r;
        member_name(c->self, name);
        if ((r = pki_ca_path(c, &ca)) < 0 || (r = pki_paths(c, "etcd", &crt, &key)) < 0)
                return r;
        hex_encode(c->plan->digest, DIGEST_LEN, digest);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        /* The token comes from the plan digest: two clusters formed on one segment never
         * accept each other's members, and every member derives the same one. */
        fprintf(f,
                "# Rendered by firstboot from plan %.16s (epoch %u); `firstboot apply` rewrites it.\n"
                "name: '%s'\n"
                "data-dir: '%s'\n"
                "listen-client-urls: 'https://%s:%u,https://127.0.0.1:%u'\n"
                "advertise-client-urls: 'https://%s:%u'\n"
                "listen-peer-urls: 'https://%s:%u'\n"
                "initial-advertise-peer-urls: 'https://%s:%u'\n"
                "client-transport-security:\n"
                "  cert-file: '%s'\n"
                "  key-file: '%s'\n"
                "  trusted-ca-file: '%s'\n"
                "  client-cert-auth: true\n"
                "peer-transport-security:\n"
                "  cert-file: '%s'\n"
                "  key-file: '%s'\n"
                "  trusted-ca-file: '%s'\n"
                "  client-cert-auth: true\n"
                "initial-cluster-token: 'rainboot-%.32s'\n"
                "initial-cluster-state: 'new'\n"
                "initial-cluster: '",
                digest, c->plan->epoch, name, data_dir, self, ETCD_CLIENT_PORT,
                ETCD_CLIENT_PORT, self, ETCD_CLIENT_PORT, self, ETCD_PEER_PORT, self,
                ETCD_PEER_PORT, crt, key, ca, crt, key, ca, digest);
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];
                char addr[INET_ADDRSTRLEN], peer[NAME_BUF];

                if (!(np->roles & ROLE_ETCD))
                        continue;
                r = member_address(c, np, addr);
                if (r < 0) {
                        fclose(f);
                        free(buf);
                        return r;
                }
                member_name(np, peer);
                fprintf(f, "%s%s=https://%s:%u", n_members++ ? "," : "", peer, addr,
                        ETCD_PEER_PORT);
        }
        fputs("'\n", f);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

static int etcd_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_free_ char *conf_path = NULL, *dropin_path = NULL, *data_dir = NULL;
        _cleanup_free_ char *bundle = NULL, *conf = NULL, *dropin = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_(step_render_done) struct step_render rd = {};
        const char *bin;
        int r;

        if ((r = step_path(c, ETCD_CONF, &conf_path)) < 0 ||
            (r = step_path(c, ETCD_DROPIN, &dropin_path)) < 0)
                return r;
        /* Looked up by name like every bundle artifact; no manifest means no bundle. */
        r = kube_bundle_find(c, "binary", "etcd", &bundle);
        if (r < 0 && r != -ENOENT)
                return r;
        bin = r > 0 && access(bundle, X_OK) == 0 ? bundle : ETCD_DEBIAN_BIN;
        r = asprintf_safe(&data_dir, "%s%s/etcd", c->root, c->cfg->services_mount);
        if (r < 0)
                return r;
        /* The config file wins over the unit's ETCD_NAME/ETCD_DATA_DIR. root rather than
         * Debian's etcd user: the services mount belongs to root, and the bundle's binary
         * comes without that user (kubeadm's own etcd runs as root too). */
        if ((r = render_conf(c, data_dir, &conf)) < 0 ||
            (r = asprintf_safe(&dropin,
                               "# Rendered by firstboot: run the chosen etcd on its config file.\n"
                               "[Service]\n"
                               "User=root\n"
                               "ExecStart=\n"
                               "ExecStart=%s --config-file %s\n", bin, conf_path)) < 0)
                return r;
        if ((r = step_render_add_file(&rd, conf_path, TAKE_PTR(conf), 0644)) < 0 ||
            (r = step_render_add_file(&rd, dropin_path, TAKE_PTR(dropin), 0644)) < 0)
                return r;
        if (c->supervisor == SVCMGR_SYSTEMD &&
            (r = step_render_add_command(&rd, "systemctl", "daemon-reload", NULL)) < 0)
                return r;
        if ((r = strv_push(&argv, bin)) < 0 || (r = strv_push(&argv, "--config-file")) < 0 ||
            (r = strv_push(&argv, conf_path)) < 0)
                return r;
        /* etcd rereads nothing on a signal: a changed config means a restart. */
        r = step_render_add_service(&rd, "etcd", "etcd.service", 0, TAKE_PTR(argv));
        if (r < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static const char *const etcd_after[] = { "pki", NULL };

const struct step step_etcd = {
        .name = "etcd",
        .after = etcd_after,
        .skip_reason = etcd_skip,
        .render = etcd_render,
};
