/* SPDX-License-Identifier: MIT */
/* Role election (DESIGN.md section 4): a pure function from the agreed view and the
 * config to a role plan, with a one-sentence reason for every role, and a digest that
 * nodes compare during formation. No I/O except the explicit output functions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "view.h"

/* The wire PLAN message carries at most this many entries. */
#define ELECT_MAX_NODES 256
/* Version of the byte encoding the digest is computed over; bump on any change. */
#define PLAN_DIGEST_VERSION 1

/* Per-node flags; they travel in the PLAN message next to the role bits. */
enum plan_flag {
        PLAN_MYSQL_PRIMARY = 1u << 0, /* with ROLE_MYSQL: primary; without: replica */
        PLAN_BOOTSTRAP = 1u << 1,     /* runs kubeadm init / first RKE2 server, makes the CA */
};

/* VRRP priorities of gateways in plan order: 250, 240, ... never below 50. High, because
 * a backup waits 3 adverts plus (256 - priority)/256 of one before it takes over: at
 * 0.1 s adverts 240 adds 6 ms where 140 added 45 ms to every failover. */
#define VRRP_PRIORITY_FIRST 250
#define VRRP_PRIORITY_STEP  10
#define VRRP_PRIORITY_MIN   50

struct plan_reason {
        const char *role; /* static output role name ("master", "mysql-replica"...), or
                           * NULL for a remark about a role the node does not have */
        bool warning;
        char *text; /* one sentence, without the role name */
};

struct node_plan {
        uint8_t id[NODE_ID_LEN];
        char hostname[NODE_HOSTNAME_MAX + 1]; /* for people only: not in the digest */
        uint32_t roles;                       /* enum role bits */
        uint8_t flags;                        /* enum plan_flag bits */
        uint8_t vrrp_priority;                /* 0: no keepalived instance on this node */
        struct plan_reason *reasons;
        size_t n_reasons;
};

struct role_plan {
        uint32_t epoch;          /* 0 at formation, +1 for every late joiner added */
        struct node_plan *nodes; /* sorted by id */
        size_t n;
        char **warnings; /* NULL-terminated, may be NULL */
        char **notes;    /* NULL-terminated, may be NULL: cluster-wide remarks */
        uint8_t digest[DIGEST_LEN];
};

struct role_plan *role_plan_free(struct role_plan *p);
static inline void role_plan_freep(struct role_plan **p) {
        role_plan_free(*p);
}
#define _cleanup_role_plan_ __attribute__((cleanup(role_plan_freep)))

/* Pure and deterministic: the same set of nodes (in any order) and the same config give
 * the same plan and digest. Ignores node_info.state/digest/box_pk/boot_id. -EINVAL for
 * an empty view or duplicate ids, -E2BIG above ELECT_MAX_NODES. */
int elect(const struct view *v, const struct config *cfg, struct role_plan **ret);

/* Add a node that arrived after formation: the members' roles never change; the newcomer
 * fills a missing gateway, then builder (first if it has an SSD), then MySQL replica,
 * else it is a worker. Masters/etcd are never filled late. Returns a new plan with epoch
 * + 1 and a new digest. -EEXIST if the node is already in the plan. */
int elect_late_joiner(const struct role_plan *committed, const struct node_info *newcomer,
                      const struct config *cfg, struct role_plan **ret);
/* Several newcomers: added one by one in id order (epoch + n). */
int elect_late_joiners(const struct role_plan *committed, const struct node_info *newcomers,
                       size_t n, const struct config *cfg, struct role_plan **ret);

/* Rebuild a plan from bare entries (e.g. a received PLAN message): allocate n zeroed
 * nodes, let the caller fill id/roles/flags/vrrp_priority, then role_plan_finalize()
 * sorts them, rejects duplicate ids (-EINVAL) and computes the digest. */
int role_plan_new(uint32_t epoch, size_t n, struct role_plan **ret);
int role_plan_finalize(struct role_plan *p);

/* BLAKE2b-256 over PLAN_DIGEST_VERSION, epoch and, per node in id order, id, role bits,
 * flags and VRRP priority. Nodes must be sorted by id. */
void role_plan_digest(const struct role_plan *p, uint8_t ret[DIGEST_LEN]);

const struct node_plan *role_plan_find(const struct role_plan *p, const uint8_t id[NODE_ID_LEN]);

/* Output role names of a node in a fixed order: etcd, master, worker, rbd-gateway,
 * rbd-chaos, registry, mysql-primary|mysql-replica, bootstrap. Returns the count. */
#define PLAN_ROLE_NAMES_MAX 8
size_t node_plan_role_names(const struct node_plan *np, const char *ret[PLAN_ROLE_NAMES_MAX]);

/* Per node: hostname, id prefix, addresses (from v, which may be NULL or lack a node),
 * each role with its reason; then warnings. */
void role_plan_explain(const struct role_plan *p, const struct view *v, FILE *f);
int role_plan_to_json(const struct role_plan *p, char **ret);
