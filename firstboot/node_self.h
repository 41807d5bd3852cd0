/* SPDX-License-Identifier: MIT */
/* This node as its peers see it: identity, the cluster interface, and the facts it
 * announces, built from the inventory and the config. */
#pragma once

#include <net/if.h>

#include "config.h"
#include "inventory.h"
#include "view.h"

struct cluster_iface {
        char name[IF_NAMESIZE];
        int ifindex;
        struct in_addr addr;   /* first IPv4 address: source of our datagrams */
};

/* Reads a 32-hex-digit machine-id file (/etc/machine-id format). */
int read_machine_id(const char *path, uint8_t ret[NODE_ID_LEN]);
/* /proc/sys/kernel/random/boot_id, or random bytes when unavailable. */
int read_boot_id(uint8_t ret[NODE_ID_LEN]);

/* Pick the interface for discovery: the configured name, or with "auto" the NIC that
 * carries the default route, else the first up non-loopback NIC with IPv4 (hardware
 * before virtual). Error names the interfaces seen. */
int pick_cluster_iface(const struct inventory *inv, const char *wanted, struct cluster_iface *ret);

/* Roles pinned to this node by the config (hostname or any MAC). */
unsigned pinned_roles_for(const struct config *cfg, const char *hostname, const struct nic *nics,
                          size_t n_nics);

/* Fill everything but state, digest, box_pk and flags. */
int node_info_from_inventory(const struct inventory *inv, const struct config *cfg,
                             const struct cluster_iface *ifc, const uint8_t id[NODE_ID_LEN],
                             const uint8_t boot_id[NODE_ID_LEN], struct node_info *ret);
