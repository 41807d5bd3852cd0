/* SPDX-License-Identifier: MIT */
#include "inventory.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

void disk_done(struct disk *d) {
        if (!d)
                return;
        free(d->name);
        free(d->path);
        free(d->by_id);
        free(d->devnum);
        free(d->transport);
        free(d->model);
        free(d->serial);
        free(d->pttype);
        for (size_t i = 0; i < d->n_parts; i++) {
                free(d->parts[i].name);
                free(d->parts[i].path);
                free(d->parts[i].partlabel);
        }
        free(d->parts);
        for (size_t i = 0; i < d->n_sigs; i++) {
                free(d->sigs[i].type);
                free(d->sigs[i].where);
                free(d->sigs[i].label);
                free(d->sigs[i].uuid);
        }
        free(d->sigs);
        free(d->in_use);
        memset(d, 0, sizeof *d);
}

void nic_done(struct nic *n) {
        if (!n)
                return;
        free(n->name);
        free(n->operstate);
        free(n->kind);
        for (size_t i = 0; i < n->n_addrs; i++)
                free(n->addrs[i].cidr);
        free(n->addrs);
        memset(n, 0, sizeof *n);
}

struct inventory *inventory_free(struct inventory *inv) {
        if (!inv)
                return NULL;
        for (size_t i = 0; i < inv->n_disks; i++)
                disk_done(&inv->disks[i]);
        free(inv->disks);
        for (size_t i = 0; i < inv->n_nics; i++)
                nic_done(&inv->nics[i]);
        free(inv->nics);
        free(inv->hostname);
        free(inv);
        return NULL;
}

int inventory_collect(const struct disk_filter *f, struct inventory **ret) {
        _cleanup_inventory_ struct inventory *inv = calloc(1, sizeof *inv);
        int r;

        if (!inv)
                return -ENOMEM;
        r = inventory_probe_host(inv);
        if (r < 0)
                return r;
        r = inventory_probe_disks(inv, f);
        if (r < 0)
                return r;
        r = inventory_probe_nics(inv);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(inv);
        return 0;
}

bool disk_has_usage(const struct disk *d, enum sig_usage u) {
        for (size_t i = 0; i < d->n_sigs; i++)
                if (d->sigs[i].usage == u)
                        return true;
        return false;
}

const char *sig_usage_to_string(enum sig_usage u) {
        static const char *const s[] = {
                [SIG_FILESYSTEM] = "filesystem", [SIG_RAID] = "raid",   [SIG_LVM] = "lvm",
                [SIG_CRYPTO] = "crypto",         [SIG_PTABLE] = "ptable", [SIG_OTHER] = "other",
        };
        return (unsigned)u < ELEMENTSOF(s) ? s[u] : "other";
}
