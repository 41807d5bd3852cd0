/* SPDX-License-Identifier: MIT */
/* The disk planner: pure, no I/O. Every disk in the inventory gets a verdict and a
 * sentence a human can check; every target gets a disk or a place on another one. */
#include "diskplan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "util.h"

/* Smaller disks are most likely a stray USB stick or a cloud-init seed, not storage. */
#define MIN_DISK_BYTES (1ULL << 30)

const char *target_to_string(enum target t) {
        static const char *const s[] = {
                [TARGET_DATA] = "data", [TARGET_CACHE] = "cache", [TARGET_SERVICES] = "services"
        };
        return (unsigned)t < ELEMENTSOF(s) ? s[t] : "?";
}

const char *disk_verdict_to_string(enum disk_verdict v) {
        static const char *const s[] = {
                [DISK_REFUSED] = "refused", [DISK_SPARE] = "spare",
                [DISK_FORMAT] = "format",   [DISK_REUSE] = "reuse",
        };
        return (unsigned)v < ELEMENTSOF(s) ? s[v] : "?";
}

struct disk_plan *disk_plan_free(struct disk_plan *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_disks; i++)
                free(p->disks[i].reason);
        free(p->disks);
        for (size_t t = 0; t < _TARGET_MAX; t++) {
                free(p->targets[t].mount);
                free(p->targets[t].reason);
        }
        strv_free(p->warnings);
        free(p);
        return NULL;
}

/* What rainboot itself left on a disk: one GPT partition named rainboot-<target>. */
enum prepared { PREP_NONE, PREP_PARTITIONED, PREP_COMPLETE };

static enum prepared disk_prepared(const struct disk *d, int *ret_target) {
        const struct partition *p;
        size_t n_fs = 0;
        bool fs_on_part = false;

        if (!d->pttype || !streq(d->pttype, "gpt") || d->n_parts != 1)
                return PREP_NONE;
        p = &d->parts[0];
        if (!p->partlabel || !startswith(p->partlabel, "rainboot-"))
                return PREP_NONE;
        for (int t = 0; t < _TARGET_MAX; t++)
                if (streq(p->partlabel + strlen("rainboot-"), target_to_string(t)))
                        *ret_target = t;
        if (*ret_target < 0)
                return PREP_NONE;
        for (size_t i = 0; i < d->n_sigs; i++) {
                const struct signature *s = &d->sigs[i];

                if (s->usage == SIG_PTABLE)
                        continue;
                n_fs++;
                if (s->usage == SIG_FILESYSTEM && streq(s->type, "ext4") && s->where &&
                    streq(s->where, p->name))
                        fs_on_part = true;
        }
        if (n_fs == 0)
                return PREP_PARTITIONED; /* interrupted between partitioning and mkfs */
        return n_fs == 1 && fs_on_part ? PREP_COMPLETE : PREP_NONE;
}

static bool disk_listed(const struct disk *d, const struct config *cfg) {
        for (size_t i = 0; cfg->disk_devices && cfg->disk_devices[i]; i++) {
                const char *e = cfg->disk_devices[i];
                if (streq(e, d->path) || (d->by_id && streq(e, d->by_id)))
                        return true;
        }
        return false;
}

/* "dos partition table, ext4 (label old) on sdb1, linux_raid_member on disk" */
static int describe_signatures(const struct disk *d, char **ret) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_sigs; i++) {
                const struct signature *g = &d->sigs[i];

                if (i > 0)
                        fputs(", ", f);
                if (g->usage == SIG_PTABLE) {
                        fprintf(f, "%s partition table", g->type);
                        continue;
                }
                fputs(g->type, f);
                if (g->label)
                        fprintf(f, " (label %s)", g->label);
                if (g->where && !streq(g->where, "disk"))
                        fprintf(f, " on %s", g->where);
        }
        if (d->n_sigs == 0 && d->pttype)
                fprintf(f, "%s partition table", d->pttype);
        if (fclose(f) != 0) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static const char *first_member_type(const struct disk *d) {
        for (size_t i = 0; i < d->n_sigs; i++)
                if (d->sigs[i].usage == SIG_RAID || d->sigs[i].usage == SIG_LVM)
                        return d->sigs[i].type;
        return NULL;
}

/* Decide whether a disk may be used at all. Returns 0 and sets *ret_candidate, with a
 * reason in *ret_reason either way. */
static int judge_disk(const struct disk *d, const struct config *cfg, bool *ret_candidate,
                      bool *ret_overwrites, int *ret_prepared_target, enum prepared *ret_prep,
                      char **ret_reason) {
        _cleanup_free_ char *sigs = NULL;
        char sz[16];
        bool listed = disk_listed(d, cfg);
        bool has_data = d->n_sigs > 0 || d->pttype;
        int r;

        *ret_candidate = false;
        *ret_overwrites = false;
        *ret_prepared_target = -1;
        *ret_prep = PREP_NONE;

        /* Order matters: the system and the boot medium are refused whatever the
         * config says, before any rule a setting could relax. */
        if (d->holds_system)
                return asprintf_safe(ret_reason, "holds the running system%s",
                                     listed ? " (listed in disks.devices, refused anyway)" : "");
        if (d->boot_medium)
                return asprintf_safe(ret_reason, "is the boot medium%s",
                                     listed ? " (listed in disks.devices, refused anyway)" : "");
        if (d->in_use)
                return asprintf_safe(ret_reason, "in use: %s", d->in_use);
        if (d->readonly)
                return asprintf_safe(ret_reason, "read-only device");
        if (cfg->wipe == WIPE_NEVER)
                return asprintf_safe(ret_reason,
                                     "disks.wipe is 'never': rainboot writes no disk");
        if (cfg->disk_devices && cfg->disk_devices[0] && !listed)
                return asprintf_safe(ret_reason, "not listed in disks.devices");
        if (d->removable && !listed)
                return asprintf_safe(ret_reason,
                                     "removable media; list it in disks.devices to use it");
        if (d->size_bytes < MIN_DISK_BYTES)
                return asprintf_safe(ret_reason, "too small (%s; at least 1 GiB)",
                                     format_bytes(d->size_bytes, sz));

        *ret_prep = disk_prepared(d, ret_prepared_target);
        if (*ret_prep == PREP_COMPLETE) {
                *ret_candidate = true;
                return asprintf_safe(ret_reason, "prepared by rainboot earlier for %s",
                                     target_to_string(*ret_prepared_target));
        }
        if (*ret_prep == PREP_PARTITIONED) {
                /* Our own partition with nothing in it: a previous run stopped before
                 * mkfs. Formatting it again loses nothing. */
                *ret_candidate = true;
                return asprintf_safe(ret_reason,
                                     "partitioned by rainboot for %s, filesystem missing "
                                     "(an earlier run was interrupted)",
                                     target_to_string(*ret_prepared_target));
        }

        if (has_data) {
                const char *member = first_member_type(d);
                bool forced = listed && cfg->wipe == WIPE_FORCE_LISTED;

                r = describe_signatures(d, &sigs);
                if (r < 0)
                        return r;
                if (member && !(forced && cfg->force_members))
                        return asprintf_safe(
                                ret_reason,
                                "holds %s: a member of a RAID array or LVM volume group "
                                "(%s)%s",
                                member, sigs,
                                forced ? "; listed and force-listed, but members also need "
                                         "disks.force_members: true"
                                       : "; never written unless listed in disks.devices "
                                         "with wipe: force-listed and force_members: true");
                if (!forced)
                        return asprintf_safe(ret_reason,
                                             "holds data (%s); never written unless listed in "
                                             "disks.devices with wipe: force-listed",
                                             sigs);
                *ret_candidate = true;
                *ret_overwrites = true;
                return asprintf_safe(ret_reason,
                                     "listed with wipe: force-listed; its contents (%s) will "
                                     "be destroyed",
                                     sigs);
        }
        *ret_candidate = true;
        return asprintf_safe(ret_reason, "blank: no partition table, no signature");
}

struct cand {
        size_t disk;
        const struct disk *d;
        bool overwrites;
        int prepared_target;
        enum prepared prep;
        bool taken;
};

/* Deterministic preference: larger first, then by path, so the same hardware always
 * gives the same plan whatever order the kernel enumerated it in. */
static bool better(const struct cand *a, const struct cand *b, int want_ssd) {
        if (want_ssd >= 0 && a->d->rotational != b->d->rotational)
                return want_ssd ? !a->d->rotational : a->d->rotational;
        if (a->d->size_bytes != b->d->size_bytes)
                return a->d->size_bytes > b->d->size_bytes;
        return strcmp(a->d->path, b->d->path) < 0;
}

/* want_ssd: 1 prefer SSD, 0 prefer HDD, -1 no preference; only_ssd restricts. */
static struct cand *pick(struct cand *c, size_t n, int want_ssd, bool only_ssd) {
        struct cand *best = NULL;

        for (size_t i = 0; i < n; i++) {
                if (c[i].taken || c[i].prep != PREP_NONE)
                        continue;
                if (only_ssd && c[i].d->rotational)
                        continue;
                if (!best || better(&c[i], best, want_ssd))
                        best = &c[i];
        }
        return best;
}

static size_t count_free(const struct cand *c, size_t n) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += !c[i].taken && c[i].prep == PREP_NONE;
        return k;
}

static int assign(struct disk_plan *p, struct cand *c, enum target t, bool reuse,
                  const char *why) {
        struct disk_choice *dc = &p->disks[c->disk];
        char sz[16];
        char *reason;

        c->taken = true;
        dc->verdict = reuse ? DISK_REUSE : DISK_FORMAT;
        dc->target = (int)t;
        dc->overwrites = c->overwrites;
        p->targets[t].disk = (int)c->disk;
        if (asprintf_safe(&reason, "%s: %s (%s, %s), %s", target_to_string(t), c->d->path,
                          c->d->rotational ? "HDD" : "SSD", format_bytes(c->d->size_bytes, sz),
                          why) < 0)
                return -ENOMEM;
        p->targets[t].reason = reason;
        return 0;
}

int disk_plan_compute(const struct inventory *inv, const struct config *cfg,
                      struct disk_plan **ret) {
        struct disk_plan *p = calloc(1, sizeof *p);
        _cleanup_disk_plan_ struct disk_plan *owned = p;
        _cleanup_free_ struct cand *c = NULL;
        size_t nc = 0;
        const char *mounts[_TARGET_MAX];
        struct cand *x;
        int r;

        if (!p)
                return -ENOMEM;
        mounts[TARGET_DATA] = cfg->data_mount;
        mounts[TARGET_CACHE] = cfg->cache_mount;
        mounts[TARGET_SERVICES] = cfg->services_mount;
        for (int t = 0; t < _TARGET_MAX; t++) {
                p->targets[t].target = t;
                p->targets[t].disk = -1;
                p->targets[t].shares = -1;
                p->targets[t].mount = strdup(mounts[t] ? mounts[t] : "");
                if (!p->targets[t].mount)
                        return -ENOMEM;
        }
        p->n_disks = inv->n_disks;
        p->disks = calloc(inv->n_disks ? inv->n_disks : 1, sizeof *p->disks);
        c = calloc(inv->n_disks ? inv->n_disks : 1, sizeof *c);
        if (!p->disks || !c)
                return -ENOMEM;

        for (size_t i = 0; i < inv->n_disks; i++) {
                struct disk_choice *dc = &p->disks[i];
                bool cand, over;
                int pt;
                enum prepared prep;

                dc->disk = i;
                dc->target = -1;
                dc->verdict = DISK_REFUSED;
                r = judge_disk(&inv->disks[i], cfg, &cand, &over, &pt, &prep, &dc->reason);
                if (r < 0)
                        return r;
                if (cand)
                        c[nc++] = (struct cand){ .disk = i, .d = &inv->disks[i],
                                                 .overwrites = over, .prepared_target = pt,
                                                 .prep = prep };
        }

        /* Disks rainboot prepared before keep their target: a re-run after a reboot
         * must mount the same data, never format it again. */
        for (size_t i = 0; i < nc; i++) {
                enum target t = (enum target)c[i].prepared_target;

                if (c[i].prep == PREP_NONE)
                        continue;
                if (p->targets[t].disk >= 0) {
                        struct disk_choice *dc = &p->disks[c[i].disk];
                        free(dc->reason);
                        c[i].taken = true;
                        if (asprintf_safe(&dc->reason,
                                          "also prepared by rainboot for %s, which already has "
                                          "%s; left alone",
                                          target_to_string(t),
                                          inv->disks[p->targets[t].disk].path) < 0)
                                return -ENOMEM;
                        continue;
                }
                r = assign(p, &c[i], t, c[i].prep == PREP_COMPLETE,
                           c[i].prep == PREP_COMPLETE ? "prepared earlier, mounted as it is"
                                                      : "partitioned earlier, formatted again");
                if (r < 0)
                        return r;
        }

        /* The build cache wants an SSD, but only when another disk is left for data:
         * capacity for data comes first. */
        if (p->targets[TARGET_CACHE].disk < 0 &&
            (count_free(c, nc) >= 2 || p->targets[TARGET_DATA].disk >= 0) &&
            (x = pick(c, nc, 1, true)) && (r = assign(p, x, TARGET_CACHE, false,
                                                      "an SSD for the build cache")) < 0)
                return r;
        if (p->targets[TARGET_DATA].disk < 0 && (x = pick(c, nc, 0, false)) &&
            (r = assign(p, x, TARGET_DATA, false,
                        x->d->rotational ? "the largest HDD" : "the largest disk (no HDD)")) < 0)
                return r;
        if (p->targets[TARGET_CACHE].disk < 0 && (x = pick(c, nc, 1, true)) &&
            (r = assign(p, x, TARGET_CACHE, false, "an SSD for the build cache")) < 0)
                return r;
        if (p->targets[TARGET_SERVICES].disk < 0 && (x = pick(c, nc, 1, false)) &&
            (r = assign(p, x, TARGET_SERVICES, false,
                        "for etcd, MySQL and registry storage (SSD preferred)")) < 0)
                return r;

        for (size_t i = 0; i < nc; i++) {
                struct disk_choice *dc = &p->disks[c[i].disk];

                if (c[i].taken || dc->verdict != DISK_REFUSED)
                        continue;
                dc->verdict = DISK_SPARE;
                free(dc->reason);
                if (asprintf_safe(&dc->reason,
                                  "usable, but data, cache and services already have a disk") < 0)
                        return -ENOMEM;
        }

        /* Targets without a disk of their own live on another target's filesystem:
         * services beside the cache when that is an SSD, else on data; data itself
         * falls back to the system disk. */
        for (int t = 0; t < _TARGET_MAX; t++) {
                struct target_choice *tc = &p->targets[t];
                int host = -1;

                if (tc->disk >= 0)
                        continue;
                if (t == TARGET_SERVICES && p->targets[TARGET_CACHE].disk >= 0 &&
                    !inv->disks[p->targets[TARGET_CACHE].disk].rotational)
                        host = TARGET_CACHE;
                else if (t != TARGET_DATA && p->targets[TARGET_DATA].disk >= 0)
                        host = TARGET_DATA;
                tc->shares = host;
                if (host >= 0)
                        r = asprintf_safe(&tc->reason, "%s: no disk of its own; lives on the %s disk (%s)",
                                          target_to_string(t), target_to_string(host),
                                          inv->disks[p->targets[host].disk].path);
                else
                        r = asprintf_safe(&tc->reason, "%s: no usable disk; stays on the system disk",
                                          target_to_string(t));
                if (r < 0)
                        return r;
        }
        if (p->targets[TARGET_DATA].disk < 0) {
                _cleanup_free_ char *w = NULL;

                if (asprintf_safe(&w,
                                  "no data disk: %s stays on the system disk; add a blank disk "
                                  "or list one in disks.devices",
                                  cfg->data_mount) < 0 ||
                    strv_push(&p->warnings, w) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < p->n_disks; i++)
                if (p->disks[i].overwrites) {
                        _cleanup_free_ char *w = NULL;

                        if (asprintf_safe(&w, "%s will be overwritten: %s",
                                          inv->disks[i].path, p->disks[i].reason) < 0 ||
                            strv_push(&p->warnings, w) < 0)
                                return -ENOMEM;
                }

        *ret = TAKE_PTR(owned);
        return 0;
}

void disk_plan_print(const struct disk_plan *p, const struct inventory *inv, FILE *f) {
        char sz[16];

        fputs("Targets:\n", f);
        for (int t = 0; t < _TARGET_MAX; t++) {
                const struct target_choice *tc = &p->targets[t];

                fprintf(f, "  %-9s %-28s %s\n", target_to_string(t), tc->mount, tc->reason);
        }
        fputs("Disks:\n", f);
        if (p->n_disks == 0)
                fputs("  (none found)\n", f);
        for (size_t i = 0; i < p->n_disks; i++) {
                const struct disk_choice *dc = &p->disks[i];
                const struct disk *d = &inv->disks[dc->disk];

                fprintf(f, "  %-14s %9s %-4s %-8s %s%s%s\n", d->path,
                        format_bytes(d->size_bytes, sz), d->rotational ? "HDD" : "SSD",
                        disk_verdict_to_string(dc->verdict),
                        dc->target >= 0 ? target_to_string(dc->target) : "",
                        dc->target >= 0 ? ": " : "", dc->reason);
        }
        for (size_t i = 0; p->warnings && p->warnings[i]; i++)
                fprintf(f, "warning: %s\n", p->warnings[i]);
}

int disk_plan_to_json(const struct disk_plan *p, const struct inventory *inv, char **ret) {
        _cleanup_(json_object_putp) struct json_object *root = json_object_new_object();
        struct json_object *targets = json_object_new_object(), *disks = json_object_new_array();
        int r;

        if (!root || (r = json_add(root, "targets", targets)) < 0 ||
            (r = json_add(root, "disks", disks)) < 0 ||
            (r = json_add_strv(root, "warnings", p->warnings)) < 0)
                return -ENOMEM;
        for (int t = 0; t < _TARGET_MAX; t++) {
                const struct target_choice *tc = &p->targets[t];
                struct json_object *o = json_object_new_object();

                if ((r = json_add(targets, target_to_string(t), o)) < 0 ||
                    (r = json_add_str(o, "mount", tc->mount)) < 0 ||
                    (r = json_add_str_or_null(o, "disk", tc->disk >= 0 ? inv->disks[tc->disk].path : NULL)) < 0 ||
                    (r = json_add_str_or_null(o, "shares", tc->disk < 0 && tc->shares >= 0 ? target_to_string(tc->shares) : NULL)) < 0 ||
                    (r = json_add_str(o, "reason", tc->reason)) < 0)
                        return r;
        }
        for (size_t i = 0; i < p->n_disks; i++) {
                const struct disk_choice *dc = &p->disks[i];
                struct json_object *o = json_object_new_object();

                if ((r = json_append(disks, o)) < 0 ||
                    (r = json_add_str(o, "path", inv->disks[dc->disk].path)) < 0 ||
                    (r = json_add_str(o, "verdict", disk_verdict_to_string(dc->verdict))) < 0 ||
                    (r = json_add_str_or_null(o, "target", dc->target >= 0 ? target_to_string(dc->target) : NULL)) < 0 ||
                    (r = json_add_bool(o, "overwrites", dc->overwrites)) < 0 ||
                    (r = json_add_str(o, "reason", dc->reason)) < 0)
                        return r;
        }
        return json_to_string(root, ret);
}
