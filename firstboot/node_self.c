/* SPDX-License-Identifier: MIT */
#include "node_self.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "util.h"

int read_machine_id(const char *path, uint8_t ret[NODE_ID_LEN]) {
        _cleanup_free_ char *s = NULL;
        int r = read_one_line_file(path, &s);

        if (r < 0)
                return log_error_errno(r, "Cannot read machine id %s: %m", path);
        r = node_id_from_hex(s, ret);
        if (r < 0)
                return log_error_errno(r, "%s: not a machine id (32 hex digits expected)", path);
        return 0;
}

int read_boot_id(uint8_t ret[NODE_ID_LEN]) {
        _cleanup_free_ char *s = NULL;
        size_t j = 0;

        if (read_one_line_file("/proc/sys/kernel/random/boot_id", &s) >= 0) {
                /* uuid form: strip the dashes */
                for (size_t i = 0; s[i] && j < 2 * NODE_ID_LEN; i++)
                        if (s[i] != '-')
                                s[j++] = s[i];
                s[j] = 0;
                if (node_id_from_hex(s, ret) >= 0)
                        return 0;
        }
        randombytes_buf(ret, NODE_ID_LEN);
        return 0;
}

static bool nic_ipv4(const struct nic *n, struct in_addr *ret) {
        for (size_t i = 0; i < n->n_addrs; i++) {
                char buf[64], *slash;

                if (n->addrs[i].family != AF_INET)
                        continue;
                snprintf(buf, sizeof buf, "%s", n->addrs[i].cidr);
                slash = strchr(buf, '/');
                if (slash)
                        *slash = 0;
                if (inet_pton(AF_INET, buf, ret) == 1)
                        return true;
        }
        return false;
}

static int take_iface(const struct nic *n, struct cluster_iface *ret) {
        struct in_addr a;

        if (!nic_ipv4(n, &a))
                return -EADDRNOTAVAIL;
        snprintf(ret->name, sizeof ret->name, "%s", n->name);
        ret->ifindex = n->ifindex;
        ret->addr = a;
        return 0;
}

int pick_cluster_iface(const struct inventory *inv, const char *wanted, struct cluster_iface *ret) {
        struct in_addr a;

        if (wanted && !streq(wanted, "auto")) {
                for (size_t i = 0; i < inv->n_nics; i++)
                        if (streq(inv->nics[i].name, wanted)) {
                                if (take_iface(&inv->nics[i], ret) < 0)
                                        return log_error_errno(-EADDRNOTAVAIL,
                                                               "Interface %s has no IPv4 address; discovery needs one.",
                                                               wanted);
                                return 0;
                        }
                return log_error_errno(-ENODEV, "Interface %s (discovery.interface) does not exist.", wanted);
        }
        for (size_t i = 0; i < inv->n_nics; i++)
                if (inv->nics[i].default_route && !inv->nics[i].loopback &&
                    take_iface(&inv->nics[i], ret) >= 0)
                        return 0;
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < inv->n_nics; i++) {
                        const struct nic *n = &inv->nics[i];

                        if (n->loopback || n->is_virtual != (pass == 1) || !n->operstate ||
                            (!streq(n->operstate, "up") && !streq(n->operstate, "unknown")))
                                continue;
                        if (nic_ipv4(n, &a) && take_iface(n, ret) >= 0)
                                return 0;
                }
        return log_error_errno(-ENODEV, "No interface for discovery: none is up with an IPv4 "
                                        "address. Set discovery.interface or rainboot.interface=.");
}

unsigned pinned_roles_for(const struct config *cfg, const char *hostname, const struct nic *nics,
                          size_t n_nics) {
        unsigned roles = 0;

        for (size_t p = 0; p < cfg->n_pins; p++) {
                const struct pin *pin = &cfg->pins[p];
                bool match = false;

                if (pin->hostname)
                        match = hostname && streq(pin->hostname, hostname);
                else if (pin->has_mac)
                        for (size_t i = 0; i < n_nics && !match; i++)
                                match = nics[i].has_mac && memcmp(nics[i].mac, pin->mac, 6) == 0;
                if (match)
                        roles |= pin->roles;
        }
        return roles;
}

int node_info_from_inventory(const struct inventory *inv, const struct config *cfg,
                             const struct cluster_iface *ifc, const uint8_t id[NODE_ID_LEN],
                             const uint8_t boot_id[NODE_ID_LEN], struct node_info *ret) {
        struct node_info n = {};

        memcpy(n.id, id, NODE_ID_LEN);
        memcpy(n.boot_id, boot_id, NODE_ID_LEN);
        snprintf(n.hostname, sizeof n.hostname, "%s", inv->hostname ? inv->hostname : "");
        n.addrs[n.n_addrs++] = ifc->addr;
        for (size_t i = 0; i < inv->n_nics && n.n_addrs < NODE_ADDRS_MAX; i++) {
                struct in_addr a;

                if (inv->nics[i].loopback || inv->nics[i].ifindex == ifc->ifindex)
                        continue;
                if (nic_ipv4(&inv->nics[i], &a))
                        n.addrs[n.n_addrs++] = a;
        }
        n.cpus = (uint16_t)(inv->cpus > UINT16_MAX ? UINT16_MAX : inv->cpus);
        n.memory_bytes = inv->memory_bytes;
        for (size_t i = 0; i < inv->n_disks && n.n_disks < NODE_DISKS_MAX; i++) {
                const struct disk *d = &inv->disks[i];

                if (d->holds_system || d->boot_medium || d->readonly)
                        continue;
                n.disks[n.n_disks++] = (struct hw_disk){ .size_bytes = d->size_bytes,
                                                         .ssd = !d->rotational };
        }
        for (size_t i = 0; i < inv->n_nics && n.n_nics < NODE_NICS_MAX; i++) {
                const struct nic *c = &inv->nics[i];

                /* the cluster interface counts even when virtual (veth in namespaces) */
                if (c->loopback || (c->is_virtual && c->ifindex != ifc->ifindex))
                        continue;
                memcpy(n.nics[n.n_nics].mac, c->mac, 6);
                n.nics[n.n_nics].up = c->carrier && c->operstate &&
                                      (streq(c->operstate, "up") || streq(c->operstate, "unknown"));
                n.n_nics++;
        }
        n.pinned_roles = pinned_roles_for(cfg, n.hostname, inv->nics, inv->n_nics);
        *ret = n;
        return 0;
}
