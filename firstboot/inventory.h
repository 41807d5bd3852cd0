/* SPDX-License-Identifier: MIT */
/* Hardware inventory: disks (libudev + libblkid), NICs (libnl), CPUs and memory.
 * Filled by the edge modules inventory_disks.c, inventory_nics.c, inventory_host.c;
 * consumed by pure stages (disk planner, election) as plain data. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sig_usage { SIG_FILESYSTEM, SIG_RAID, SIG_LVM, SIG_CRYPTO, SIG_PTABLE, SIG_OTHER };

struct signature {
        char *type;   /* blkid TYPE/PTTYPE: "ext4", "linux_raid_member", "LVM2_member", "gpt" */
        enum sig_usage usage;
        char *where;  /* "disk" or the partition name ("sdb1") it was found on */
        char *label;  /* filesystem LABEL, may be NULL */
        char *uuid;   /* may be NULL */
};

struct partition {
        char *name;   /* "sdb1", "loop3p1" */
        char *path;   /* /dev/sdb1 */
        unsigned number;
        uint64_t size_bytes;
        char *partlabel; /* GPT partition name, may be NULL */
};

struct disk {
        char *name;            /* sda */
        char *path;            /* /dev/sda */
        char *by_id;           /* /dev/disk/by-id/..., NULL when udev has none */
        char *devnum;          /* "8:0" */
        uint64_t size_bytes;
        unsigned logical_sector, physical_sector;
        bool rotational;       /* SSD = !rotational */
        bool removable;
        bool readonly;
        char *transport;       /* "sata", "nvme", "virtio", "usb", "scsi", "loop", NULL */
        char *model, *serial;  /* may be NULL */
        char *pttype;          /* "gpt", "dos", NULL when none */
        struct partition *parts;
        size_t n_parts;
        struct signature *sigs; /* every signature found on the disk and its partitions */
        size_t n_sigs;
        bool holds_system;     /* backs /, /usr, /boot, /boot/efi or active swap */
        bool boot_medium;      /* the medium we booted from (live ISO/USB) */
        char *in_use;          /* why it is busy (mounted at X, holder md0), NULL if not */
};

struct nic_addr {
        int family;            /* AF_INET or AF_INET6 */
        char *cidr;            /* "192.0.2.5/24" */
};

struct nic {
        char *name;
        int ifindex;
        uint8_t mac[6];
        bool has_mac;
        unsigned mtu;
        char *operstate;       /* "up", "down", "unknown", ... */
        bool carrier;
        char *kind;            /* rtnl link kind: "veth", "bridge", "dummy"; NULL for hardware */
        bool loopback;
        bool is_virtual;       /* loopback, bridge, veth, tun/tap, ... (hidden without --all) */
        bool default_route;    /* carries an IPv4 or IPv6 default route */
        struct nic_addr *addrs;
        size_t n_addrs;
};

struct inventory {
        char *hostname;
        unsigned cpus;
        uint64_t memory_bytes;
        struct disk *disks;
        size_t n_disks;
        struct nic *nics;
        size_t n_nics;
};

/* Which block devices to look at. */
struct disk_filter {
        char **only;           /* NULL-terminated paths: probe exactly these (tests) */
        bool include_virtual;  /* loop, ram, zram, dm, md too */
};

struct inventory *inventory_free(struct inventory *inv);
static inline void inventory_freep(struct inventory **p) { inventory_free(*p); }
#define _cleanup_inventory_ __attribute__((cleanup(inventory_freep)))

void disk_done(struct disk *d);   /* frees members, not d itself */
void nic_done(struct nic *n);

/* Edges. Each appends into inv; they never write to any device. */
int inventory_probe_disks(struct inventory *inv, const struct disk_filter *f);
int inventory_probe_nics(struct inventory *inv);
int inventory_probe_host(struct inventory *inv);
/* MemTotal of a /proc/meminfo text, in bytes (pure; inventory_probe_host uses it). */
int meminfo_parse_total(const char *text, uint64_t *ret_bytes);

/* Everything at once. */
int inventory_collect(const struct disk_filter *f, struct inventory **ret);

bool disk_has_usage(const struct disk *d, enum sig_usage u);
const char *sig_usage_to_string(enum sig_usage u);

/* Output. */
int inventory_to_json(const struct inventory *inv, bool all_nics, char **ret);
void inventory_print(const struct inventory *inv, bool all_nics, FILE *f);
