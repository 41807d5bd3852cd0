/* SPDX-License-Identifier: MIT */
/* Disk plan: a pure function from (inventory, config) to which disk carries the data
 * mount, the build cache and service storage, with a human reason for every disk used
 * or refused. disk_plan_apply() is the only code in firstboot that writes to a disk. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "inventory.h"

enum target { TARGET_DATA, TARGET_CACHE, TARGET_SERVICES, _TARGET_MAX };
const char *target_to_string(enum target t);

enum disk_verdict {
        DISK_REFUSED, /* must not be touched; reason says why */
        DISK_SPARE,   /* could be used, but no target needs it */
        DISK_FORMAT,  /* will get a fresh GPT, one partition and a filesystem */
        DISK_REUSE,   /* already prepared by rainboot for this target: mount only */
};
const char *disk_verdict_to_string(enum disk_verdict v);

struct disk_choice {
        size_t disk;            /* index into inventory->disks */
        enum disk_verdict verdict;
        int target;             /* enum target, or -1 */
        bool overwrites;        /* FORMAT of a disk that held a table or signature */
        char *reason;
};

struct target_choice {
        enum target target;
        char *mount;            /* absolute mount point */
        int disk;               /* index into inventory->disks of its own disk, or -1 */
        int shares;             /* -1: root filesystem; else the target whose fs hosts it */
        char *reason;
};

struct disk_plan {
        struct disk_choice *disks;
        size_t n_disks;
        struct target_choice targets[_TARGET_MAX];
        char **warnings;        /* NULL-terminated */
};

struct disk_plan *disk_plan_free(struct disk_plan *p);
static inline void disk_plan_freep(struct disk_plan **p) { disk_plan_free(*p); }
#define _cleanup_disk_plan_ __attribute__((cleanup(disk_plan_freep)))

/* Pure: no I/O. */
int disk_plan_compute(const struct inventory *inv, const struct config *cfg,
                      struct disk_plan **ret);

void disk_plan_print(const struct disk_plan *p, const struct inventory *inv, FILE *f);
int disk_plan_to_json(const struct disk_plan *p, const struct inventory *inv, char **ret);

struct apply_options {
        const char *root;       /* prefix for /etc/fstab and mount points; "" or "/" = real */
};

/* Carry the plan out: re-probe every disk to be written and refuse if anything changed
 * since planning, partition with libparted (GPT, aligned, committed once), mkfs, write
 * <root>/etc/fstab atomically by UUID. Idempotent: REUSE disks are only mounted. */
int disk_plan_apply(const struct disk_plan *p, const struct inventory *inv,
                    const struct config *cfg, const struct apply_options *o);
