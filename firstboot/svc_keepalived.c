/* SPDX-License-Identifier: MIT */
/* keepalived on the gateway nodes: the VIP floats among them by VRRPv3 (DESIGN.md
 * section 5). Pure rendering from the plan; the engine writes, validates and starts. */
#include <arpa/inet.h>
#include <signal.h>

#include "log.h"
#include "steps.h"
#include "util.h"

#define KEEPALIVED_CONF "/etc/keepalived/keepalived.conf"
#define KEEPALIVED_CHECK "/etc/keepalived/rainboot-check-gateway"
/* VRRPv3 allows centisecond adverts: master-down = 3 x 0.1 s + skew, about 0.36 s.
 * Lower risks false failovers when a node is briefly busy. */
#define ADVERT_INT "0.1"
/* Re-announce the VIP's MAC now and then: switches and peers that missed the first
 * gratuitous ARP (or flushed their tables) find the holder again. */
#define GARP_MASTER_REFRESH_S 60

static const char *keepalived_skip(const struct step_ctx *c) {
        if (c->cfg->ext_lb)
                return "external.load_balancer is set: the external load balancer fronts the "
                       "cluster, no VIP here";
        if (!c->cfg->has_vip)
                return "no vip.address in the config";
        if (!(c->self->roles & ROLE_GATEWAY) || c->self->vrrp_priority == 0)
                return "not a gateway node";
        return NULL;
}

static int self_address(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]) {
        char hex[2 * NODE_ID_LEN + 1];

        if (!c->self_info || c->self_info->n_addrs == 0) {
                node_id_to_hex(c->self->id, hex);
                return log_error_errno(-EADDRNOTAVAIL,
                                       "The committed view has no address for this node (%s): "
                                       "VRRP needs one as unicast source.", hex);
        }
        inet_ntop(AF_INET, &c->self_info->addrs[0], buf, INET_ADDRSTRLEN);
        return 0;
}

static int render_check_script(const struct step_ctx *c, char **ret) {
        static const unsigned ports[] = GATEWAY_PORTS;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "#!/bin/bash\n"
                "# Rendered by firstboot: keepalived's track script. Exit 0 when this node can\n"
                "# serve what the VIP fronts: the Kubernetes API frontend of haproxy always, and\n"
                "# the Rainbond gateway ports once the gateway is installed (the marker file\n"
                "# exists). Before that nothing listens on them, and the VIP is needed anyway.\n"
                "# A subshell, not `timeout bash -c`: spawning two programs per port took\n"
                "# seconds on a busy node and failed the check. A local connect answers at\n"
                "# once (or hangs only when the listener is swamped: keepalived's timeout).\n"
                "port_open() {\n"
                "        (exec 3<>\"/dev/tcp/127.0.0.1/$1\") 2>/dev/null\n"
                "}\n"
                "port_open %u || exit 1\n"
                "[ -e '%s/gateway-ready' ] || exit 0\n"
                "for p in",
                KUBE_API_VIP_PORT, c->state_dir);
        for (size_t i = 0; i < ELEMENTSOF(ports); i++)
                fprintf(f, " %u", ports[i]);
        fprintf(f, "; do\n"
                   "        port_open \"$p\" || exit 1\n"
                   "done\n"
                   "exit 0\n");
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

static int render_conf(const struct step_ctx *c, const char *check_path, const char *iface,
                       char **ret) {
        char self[INET_ADDRSTRLEN], vip[INET_ADDRSTRLEN], digest[2 * DIGEST_LEN + 1];
        char *buf = NULL;
        size_t size = 0, n_peers = 0;
        FILE *f;
        int r;

        r = self_address(c, self);
        if (r < 0)
                return r;
        inet_ntop(AF_INET, &c->cfg->vip.addr, vip, sizeof vip);
        hex_encode(c->plan->digest, DIGEST_LEN, digest);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot from plan %.16s (epoch %u); `firstboot apply` rewrites it.\n"
                "# VRRPv3 has no authentication: the cluster segment is trusted (see README).\n"
                "global_defs {\n"
                "    router_id %s\n"
                "    vrrp_version 3\n"
                "    script_user root\n"
                "    enable_script_security\n"
                "}\n"
                "\n"
                "vrrp_script rainboot_gateway {\n"
                "    script \"%s\"\n"
                "    interval 2\n"
                "    timeout 5\n"
                "    fall 2\n"
                "    rise 2\n"
                "}\n"
                "\n"
                "# Every node starts BACKUP; priorities follow the plan. nopreempt rather than\n"
                "# preempt_delay: a node that comes back never takes the VIP back, so a failure\n"
                "# moves the VIP once instead of twice (each move breaks open connections),\n"
                "# and a node that flaps cannot drag the VIP along. A failing track script puts\n"
                "# the instance in FAULT (no weight), which releases the VIP even with nopreempt.\n"
                "vrrp_instance rainboot_vip {\n"
                "    state BACKUP\n"
                "    interface %s\n"
                "    virtual_router_id %u\n"
                "    priority %u\n"
                "    advert_int " ADVERT_INT "\n"
                "    nopreempt\n",
                digest, c->plan->epoch, c->self->hostname[0] ? c->self->hostname : self,
                check_path, iface, c->cfg->vip_router_id, c->self->vrrp_priority);
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];
                const struct node_info *ni;
                char peer[INET_ADDRSTRLEN];

                if (np == c->self || !(np->roles & ROLE_GATEWAY) || np->vrrp_priority == 0)
                        continue;
                ni = step_node_info(c, np->id);
                if (!ni || ni->n_addrs == 0) {
                        char hex[2 * NODE_ID_LEN + 1];

                        fclose(f);
                        free(buf);
                        node_id_to_hex(np->id, hex);
                        return log_error_errno(-EADDRNOTAVAIL,
                                               "The committed view has no address for gateway %s.",
                                               hex);
                }
                inet_ntop(AF_INET, &ni->addrs[0], peer, sizeof peer);
                /* A lone gateway has no peer: keepalived rejects unicast_src_ip without
                 * unicast peers, and multicast adverts would go nowhere useful anyway. */
                if (n_peers++ == 0)
                        fprintf(f, "    unicast_src_ip %s\n    unicast_peer {\n", self);
                fprintf(f, "        %s\n", peer);
        }
        if (n_peers > 0)
                fputs("    }\n", f);
        fprintf(f,
                "    garp_master_delay 1\n"
                "    garp_master_refresh %u\n"
                "    virtual_ipaddress {\n"
                "        %s/%u dev %s\n"
                "    }\n"
                "    track_script {\n"
                "        rainboot_gateway\n"
                "    }\n"
                "}\n",
                GARP_MASTER_REFRESH_S, vip, c->cfg->vip.prefix, iface);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

static int keepalived_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_free_ char *conf_path = NULL, *check_path = NULL, *run_dir = NULL;
        _cleanup_free_ char *conf = NULL, *script = NULL, *p_main = NULL, *p_vrrp = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_(step_render_done) struct step_render rd = {};
        int r;

        if (!c->vip_iface)
                return log_error_errno(-ENODEV, "No interface holds this node's address, so the "
                                                "VIP has nowhere to go: set vip.interface.");

        if ((r = step_path(c, KEEPALIVED_CONF, &conf_path)) < 0 ||
            (r = step_path(c, KEEPALIVED_CHECK, &check_path)) < 0 ||
            (r = step_run_dir(c, &run_dir)) < 0 ||
            (r = asprintf_safe(&p_main, "%s/keepalived-main.pid", run_dir)) < 0 ||
            (r = asprintf_safe(&p_vrrp, "%s/keepalived-vrrp.pid", run_dir)) < 0)
                return r;
        if ((r = render_check_script(c, &script)) < 0 ||
            (r = render_conf(c, check_path, c->vip_iface, &conf)) < 0)
                return r;
        /* The script first: the config names it, and `keepalived -t` checks it exists. */
        if ((r = step_render_add_file(&rd, check_path, TAKE_PTR(script), 0755)) < 0 ||
            (r = step_render_add_file(&rd, conf_path, TAKE_PTR(conf), 0644)) < 0 ||
            (r = step_render_add_command(&rd, "keepalived", "--config-test", "-f", conf_path,
                                         NULL)) < 0)
                return r;
        /* Direct mode: in the foreground (-n) so the supervisor's pid is keepalived's own,
         * VRRP only, logging to the console (the log file), and pidfiles of its own so
         * several instances can share a host in the namespace harness. */
        static const char *const args[] = { "keepalived", "--dont-fork", "--vrrp", "--log-console",
                                            "--log-detail", "--no-syslog" };
        for (size_t i = 0; i < ELEMENTSOF(args); i++)
                if ((r = strv_push(&argv, args[i])) < 0)
                        return r;
        if ((r = strv_push(&argv, "-f")) < 0 || (r = strv_push(&argv, conf_path)) < 0 ||
            (r = strv_push(&argv, "-p")) < 0 || (r = strv_push(&argv, p_main)) < 0 ||
            (r = strv_push(&argv, "-r")) < 0 || (r = strv_push(&argv, p_vrrp)) < 0)
                return r;
        r = step_render_add_service(&rd, "keepalived", "keepalived.service", SIGHUP,
                                    TAKE_PTR(argv));
        if (r < 0 || (r = strv_push(&rd.services[0].stale_files, p_main)) < 0 ||
            (r = strv_push(&rd.services[0].stale_files, p_vrrp)) < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static const char *const keepalived_after[] = { "haproxy", NULL };

const struct step step_keepalived = {
        .name = "keepalived",
        .after = keepalived_after,
        .skip_reason = keepalived_skip,
        .render = keepalived_render,
};
