/* SPDX-License-Identifier: MIT */
/* haproxy on the gateway nodes: the Kubernetes API on the VIP, TCP, health checked, to
 * every master's apiserver (DESIGN.md section 5). Pure rendering from the plan. */
#include <arpa/inet.h>

#include "log.h"
#include "registry.h"
#include "steps.h"
#include "svc_kube.h"
#include "util.h"

#define HAPROXY_CFG "/etc/haproxy/haproxy.cfg"

static const char *haproxy_skip(const struct step_ctx *c) {
        if (c->cfg->ext_lb)
                return "external.load_balancer is set: it proxies the Kubernetes API";
        if (!c->cfg->has_vip)
                return "no vip.address in the config";
        if (!(c->self->roles & ROLE_GATEWAY) || c->self->vrrp_priority == 0)
                return "not a gateway node";
        return NULL;
}

/* RKE2 servers and agents register at the VIP (svc_kube.h): forwarded to every master's
 * supervisor port, like the API. */
static void render_rke2_registration(const struct step_ctx *c, FILE *f) {
        fprintf(f, "\n"
                "# RKE2's registration address on the VIP: %u, as the masters' own rke2 server holds\n"
                "# %u on every address.\n"
                "frontend rke2-registration\n"
                "    bind :%u\n"
                "    default_backend rke2-registration\n"
                "\n"
                "backend rke2-registration\n"
                "    balance roundrobin\n"
                "    default-server inter 2s fall 3 rise 2\n",
                KUBE_RKE2_VIP_REGISTRATION_PORT, KUBE_RKE2_REGISTRATION_PORT,
                KUBE_RKE2_VIP_REGISTRATION_PORT);
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];
                const struct node_info *ni = step_node_info(c, np->id);
                char addr[INET_ADDRSTRLEN], hex[2 * NODE_ID_LEN + 1];

                if (!(np->roles & ROLE_MASTER) || !ni || ni->n_addrs == 0)
                        continue;
                node_id_to_hex(np->id, hex);
                inet_ntop(AF_INET, &ni->addrs[0], addr, sizeof addr);
                fprintf(f, "    server %s%s%.8s %s:%u check\n", np->hostname,
                        np->hostname[0] ? "-" : "m-", hex, addr, KUBE_RKE2_REGISTRATION_PORT);
        }
}

/* VIP:5000 to every registry node's own address:5000 (registry.h). */
static int render_registry(const struct step_ctx *c, FILE *f) {
        char vip[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &c->cfg->vip.addr, vip, sizeof vip);
        fprintf(f,
                "\n"
                "# The registry: " REGISTRY_HOST " resolves to the VIP on every node. Bound to the\n"
                "# VIP alone, as the registry node (a gateway) serves :%u on its own address;\n"
                "# where the VIP is not held that needs net.ipv4.ip_nonlocal_bind=1 (sysctl.d).\n"
                "frontend registry\n"
                "    bind %s:%u\n"
                "    default_backend registry\n"
                "\n"
                "backend registry\n"
                "    # A push is many requests on several connections: one client, one registry.\n"
                "    balance source\n"
                "    # The registry answers /v2/ with 401 without credentials: it serves. TLS is\n"
                "    # checked end to end by the clients (cluster CA); this is only a probe.\n"
                "    option httpchk GET /v2/\n"
                "    http-check expect rstatus ^(200|401)$\n"
                "    default-server inter 2s fall 3 rise 2 check-ssl verify none\n",
                REGISTRY_PORT, vip, REGISTRY_PORT);
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];
                const struct node_info *ni;
                char addr[INET_ADDRSTRLEN], hex[2 * NODE_ID_LEN + 1];

                if (!(np->roles & ROLE_REGISTRY))
                        continue;
                node_id_to_hex(np->id, hex);
                ni = step_node_info(c, np->id);
                if (!ni || ni->n_addrs == 0)
                        return log_error_errno(-EADDRNOTAVAIL, "The committed view has no address "
                                                               "for registry node %s.", hex);
                inet_ntop(AF_INET, &ni->addrs[0], addr, sizeof addr);
                fprintf(f, "    server %s%s%.8s %s:%u check\n", np->hostname,
                        np->hostname[0] ? "-" : "r-", hex, addr, REGISTRY_PORT);
        }
        return 0;
}

static int render_cfg(const struct step_ctx *c, char **ret) {
        char digest[2 * DIGEST_LEN + 1];
        char *buf = NULL;
        size_t size = 0, n_servers = 0;
        FILE *f;
        int r;

        hex_encode(c->plan->digest, DIGEST_LEN, digest);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot from plan %.16s (epoch %u); `firstboot apply` rewrites it.\n"
                "global\n"
                "    maxconn 4096\n"
                "    log stderr format short local0\n"
                "\n"
                "defaults\n"
                "    mode tcp\n"
                "    log global\n"
                "    option tcplog\n"
                "    timeout connect 3s\n"
                "    timeout check 2s\n"
                "    # kubectl watches and exec sessions stay open for long\n"
                "    timeout client 1h\n"
                "    timeout server 1h\n"
                "\n"
                "# The Kubernetes API on the VIP at %u: 6443 is the apiserver's own port on the\n"
                "# masters, and 80/443/6060/7070/8443 belong to the Rainbond gateway. Bound to every\n"
                "# address, so haproxy runs before keepalived puts the VIP on this node.\n"
                "frontend kube-apiserver\n"
                "    bind :%u\n"
                "    default_backend kube-apiserver\n"
                "\n"
                "backend kube-apiserver\n"
                "    balance roundrobin\n"
                "    default-server inter 2s fall 3 rise 2\n",
                digest, c->plan->epoch, KUBE_API_VIP_PORT, KUBE_API_VIP_PORT);
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];
                const struct node_info *ni;
                char addr[INET_ADDRSTRLEN], hex[2 * NODE_ID_LEN + 1];

                if (!(np->roles & ROLE_MASTER))
                        continue;
                node_id_to_hex(np->id, hex);
                ni = step_node_info(c, np->id);
                if (!ni || ni->n_addrs == 0) {
                        fclose(f);
                        free(buf);
                        return log_error_errno(-EADDRNOTAVAIL,
                                               "The committed view has no address for master %s.",
                                               hex);
                }
                inet_ntop(AF_INET, &ni->addrs[0], addr, sizeof addr);
                /* Hostnames may repeat across nodes; the id prefix keeps names unique. */
                fprintf(f, "    server %s%s%.8s %s:%u check\n", np->hostname,
                        np->hostname[0] ? "-" : "m-", hex, addr, KUBE_API_PORT);
                n_servers++;
        }
        if (c->cfg->k8s == K8S_RKE2)
                render_rke2_registration(c, f);
        if (n_servers > 0 && registry_in_cluster(c)) {
                r = render_registry(c, f);
                if (r < 0) {
                        fclose(f);
                        free(buf);
                        return r;
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (n_servers == 0) {
                free(buf);
                return log_error_errno(-EINVAL, "The plan has no master for haproxy to proxy to.");
        }
        *ret = buf;
        return 0;
}

static int haproxy_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_free_ char *path = NULL, *cfg = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        int r;

        if ((r = step_path(c, HAPROXY_CFG, &path)) < 0 || (r = render_cfg(c, &cfg)) < 0)
                return r;
        if ((r = step_render_add_file(&rd, path, TAKE_PTR(cfg), 0644)) < 0 ||
            (r = step_render_add_command(&rd, "haproxy", "-c", "-q", "-f", path, NULL)) < 0)
                return r;
        /* Direct mode: -db keeps it in the foreground, logging to the log file. */
        if ((r = strv_push(&argv, "haproxy")) < 0 || (r = strv_push(&argv, "-db")) < 0 ||
            (r = strv_push(&argv, "-f")) < 0 || (r = strv_push(&argv, path)) < 0)
                return r;
        r = step_render_add_service(&rd, "haproxy", "haproxy.service", 0, TAKE_PTR(argv));
        if (r < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

const struct step step_haproxy = {
        .name = "haproxy",
        .skip_reason = haproxy_skip,
        .render = haproxy_render,
};
