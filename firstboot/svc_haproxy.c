/* SPDX-License-Identifier: MIT */
/* haproxy on the gateway nodes: the Kubernetes API on the VIP, TCP, health checked, to
 * every master's apiserver (DESIGN.md section 5). Pure rendering from the plan. */
#include <arpa/inet.h>

#include "log.h"
#include "steps.h"
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

static int render_cfg(const struct step_ctx *c, char **ret) {
        char digest[2 * DIGEST_LEN + 1];
        char *buf = NULL;
        size_t size = 0, n_servers = 0;
        FILE *f;

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
