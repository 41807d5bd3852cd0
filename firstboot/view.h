/* SPDX-License-Identifier: MIT */
/* What nodes know about each other: the facts one node announces about itself, and the
 * membership view that formation agrees on. Plain data shared by the wire codec
 * (wire.c), the pure election (elect.c) and formation (formation.c). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_ID_LEN 16     /* /etc/machine-id is 128 bits */
#define DIGEST_LEN 32      /* BLAKE2b-256 */
#define NODE_HOSTNAME_MAX 63
#define NODE_ADDRS_MAX 8
#define NODE_DISKS_MAX 16
#define NODE_NICS_MAX 8

/* Formation state a node announces (DESIGN.md section 3). */
enum node_state {
        NODE_DISCOVERING = 0, /* no proposal yet */
        NODE_PROPOSING = 1,   /* announces propose(digest) */
        NODE_LOCKED = 2,      /* announces lock(digest); never proposes anything else */
        NODE_COMMITTED = 3,   /* announces committed(digest) */
};
const char *node_state_to_string(enum node_state s);

struct hw_disk {
        uint64_t size_bytes;
        bool ssd;
};

struct hw_nic {
        uint8_t mac[6];
        bool up;              /* operstate up with carrier */
};

struct node_info {
        uint8_t id[NODE_ID_LEN];       /* from /etc/machine-id */
        uint8_t boot_id[NODE_ID_LEN];  /* changes every boot */
        char hostname[NODE_HOSTNAME_MAX + 1];
        struct in_addr addrs[NODE_ADDRS_MAX]; /* IPv4; the cluster interface's first */
        uint8_t n_addrs;
        uint16_t cpus;
        uint64_t memory_bytes;
        struct hw_disk disks[NODE_DISKS_MAX]; /* disks usable for data (not system/boot) */
        uint8_t n_disks;
        struct hw_nic nics[NODE_NICS_MAX];    /* non-virtual NICs */
        uint8_t n_nics;
        uint32_t pinned_roles;         /* enum role bits from config pins matching this node */
        enum node_state state;
        uint8_t digest[DIGEST_LEN];    /* plan digest for PROPOSING/LOCKED/COMMITTED */
        uint8_t box_pk[32];            /* per-boot X25519 public key: secrets are sealed to it */
        uint32_t flags;                /* NODE_F_* */
};

#define NODE_F_HAS_SECRETS (1u << 0)   /* holds the cluster secrets (hand-out acknowledged) */
#define NODE_F_LATE (1u << 1)          /* not named by the committed plan: asks to be welcomed */
#define NODE_F_ALL (NODE_F_HAS_SECRETS | NODE_F_LATE)

/* A set of nodes, kept sorted by id (memcmp order) so every node iterates it alike. */
struct view {
        struct node_info *nodes;
        size_t n;
};

int node_id_cmp(const uint8_t a[NODE_ID_LEN], const uint8_t b[NODE_ID_LEN]);
/* "3f2a…" lowercase hex, 32 chars + NUL. */
void node_id_to_hex(const uint8_t id[NODE_ID_LEN], char out[2 * NODE_ID_LEN + 1]);
int node_id_from_hex(const char *hex, uint8_t ret[NODE_ID_LEN]);
