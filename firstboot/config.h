/* SPDX-License-Identifier: MIT */
/* The cluster configuration: one YAML file parsed once (libyaml) into struct config,
 * validated, then overridden by rainboot.* kernel command-line keys. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* Roles a pin may name. Names follow Rainbond's installer where it has one. */
enum role {
        ROLE_MASTER = 1u << 0,   /* "master": Kubernetes control plane */
        ROLE_ETCD = 1u << 1,     /* "etcd" */
        ROLE_WORKER = 1u << 2,   /* "worker" */
        ROLE_GATEWAY = 1u << 3,  /* "rbd-gateway" (alias "gateway"): holds the VIP */
        ROLE_BUILDER = 1u << 4,  /* "rbd-chaos" (alias "builder"): source builds */
        ROLE_REGISTRY = 1u << 5, /* "registry" */
        ROLE_MYSQL = 1u << 6,    /* "mysql": primary or replica, decided by election */
};
#define ROLE_ALL 0x7fu

/* Returns the role bit for a name (canonical or alias), or 0. */
unsigned role_from_name(const char *name);
/* Canonical name of a single role bit. */
const char *role_to_name(unsigned role);

enum wipe_policy {
        WIPE_NEVER,        /* use no data disks at all: everything stays on the system disk */
        WIPE_EMPTY_ONLY,   /* use only disks with no partition table and no signature */
        WIPE_FORCE_LISTED, /* also overwrite disks named in disks.devices */
};
const char *wipe_policy_to_string(enum wipe_policy w);

enum k8s_distribution { K8S_RKE2, K8S_KUBEADM };

struct ipv4_cidr {
        struct in_addr addr;
        unsigned prefix; /* 0..32 */
};

struct pin {
        char *hostname;        /* exactly one of hostname / mac is set */
        uint8_t mac[6];
        bool has_mac;
        unsigned roles;        /* bitmask of enum role */
        unsigned line;         /* where it was written, for messages */
};

struct external_lb {
        struct in_addr address; /* the LB's address: what clients and Rainbond use */
        uint16_t api_port;      /* Kubernetes API on the LB (default 6443) */
};

struct external_registry {
        char *domain;    /* host[:port] */
        char *namespace;
        char *username;
        char *password;  /* secret */
        char *ca;        /* path to PEM CA bundle, may be NULL if publicly trusted */
};

struct external_mysql {
        char *host;
        uint16_t port;
        char *username;
        char *password;  /* secret */
        char *console_database;  /* default "console" */
        char *region_database;   /* default "region" */
};

struct config_origin;

struct config {
        char *path;                 /* file it came from, for messages */

        char *cluster_name;
        char *token;                /* secret: "file:/abs/path", "env:NAME" or literal */
        unsigned expected_nodes;

        struct in_addr discovery_group;
        uint16_t discovery_port;
        char *discovery_interface;  /* "auto" or an interface name */
        unsigned settle_ms;
        unsigned interval_ms;

        bool has_vip;
        struct ipv4_cidr vip;
        char *vip_interface;        /* "auto" or an interface name */
        unsigned vip_router_id;

        unsigned masters, gateways, builders;
        struct pin *pins;
        size_t n_pins;

        struct external_lb *ext_lb;             /* NULL: keepalived VIP */
        struct external_registry *ext_registry; /* NULL: registry in the cluster */
        struct external_mysql *ext_mysql;       /* NULL: MariaDB/MySQL in the cluster */

        char *data_mount;           /* /opt/rainbond */
        char *cache_mount;          /* build cache, default <data_mount>/cache */
        char *services_mount;       /* etcd/mysql/registry storage */
        enum wipe_policy wipe;
        char **disk_devices;        /* NULL-terminated; disks.devices */
        bool force_members;         /* allow overwriting RAID/LVM members that are listed */

        enum k8s_distribution k8s;

        /* Private to config.c: where each key was set (file line:column, kernel command line
         * or default), so checks after overrides can still point at it. NULL in a config
         * built by hand; config_free() releases it. */
        struct config_origin *origin;
};

/* Collected, formatted error messages ("file:line:col: key: problem"). */
struct diag {
        char **msgs;
        size_t n;
};
void diag_clear(struct diag *d);

struct config *config_free(struct config *c);
static inline void config_freep(struct config **c) { config_free(*c); }
#define _cleanup_config_ __attribute__((cleanup(config_freep)))

/* Defaults for every key: a valid single-section skeleton that parsing fills in. */
int config_new_default(struct config **ret);

/* Parse and validate YAML. name is used in messages. On error returns -EINVAL with
 * every problem found appended to diag. */
int config_parse_string(const char *buf, size_t len, const char *name, struct config **ret,
                        struct diag *diag);
int config_parse_file(const char *path, struct config **ret, struct diag *diag);

/* Apply rainboot.<key>=value overrides from a kernel command line (the content of
 * /proc/cmdline). Keys: token, expected_nodes, vip, interface, cluster, wipe.
 * Unknown rainboot.* keys are errors. Re-validates. */
int config_apply_cmdline(struct config *c, const char *cmdline, struct diag *diag);
int config_apply_cmdline_file(struct config *c, const char *path, struct diag *diag);

/* Whole-config validation (cross-key rules). Called by the parsers. */
int config_validate(const struct config *c, struct diag *diag);

/* Effective configuration as YAML, secrets replaced with "<redacted>" unless they are
 * references (file:/env:), which are shown as written. Caller frees. */
int config_format(const struct config *c, char **ret);

/* Resolve the token source into the secret itself (reads file:/env:). */
int config_resolve_token(const struct config *c, char **ret);
