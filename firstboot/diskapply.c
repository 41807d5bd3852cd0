/* SPDX-License-Identifier: MIT */
/* The only code in firstboot that writes to a disk. Every disk is re-probed right
 * before it is written, and refused if it no longer looks as it did when planned. */
#include <blkid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <parted/parted.h>
#include <sys/stat.h>
#include <time.h>

#include "diskplan.h"
#include "log.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe)

/* libparted is loaded only when a disk is about to be partitioned. Linked normally, its
 * constructors run in every firstboot command (Debian's even spawns dmidecode through
 * sh), costing ~3 ms and ~1.5 MiB for inventory and discovery that never use it. */
static struct {
        void *dl;
        PedDevice *(*device_get)(const char *);
        PedDiskType *(*disk_type_get)(const char *);
        PedDisk *(*disk_new_fresh)(PedDevice *, const PedDiskType *);
        PedConstraint *(*device_get_optimal_aligned_constraint)(const PedDevice *);
        PedConstraint *(*device_get_constraint)(const PedDevice *);
        PedFileSystemType *(*file_system_type_get)(const char *);
        PedPartition *(*partition_new)(const PedDisk *, PedPartitionType,
                                       const PedFileSystemType *, PedSector, PedSector);
        int (*disk_add_partition)(PedDisk *, PedPartition *, const PedConstraint *);
        void (*partition_destroy)(PedPartition *);
        int (*partition_set_name)(PedPartition *, const char *);
        int (*disk_commit)(PedDisk *);
        char *(*partition_get_path)(const PedPartition *);
        void (*disk_destroy)(PedDisk *);
        void (*constraint_destroy)(PedConstraint *);
        void (*exception_set_handler)(PedExceptionHandler *);
} parted;

static int parted_load(void) {
        static const struct {
                const char *name;
                size_t offset;
        } syms[] = {
#define SYM(f) { "ped_" #f, offsetof(__typeof__(parted), f) }
                SYM(device_get), SYM(disk_type_get), SYM(disk_new_fresh),
                SYM(device_get_optimal_aligned_constraint), SYM(device_get_constraint),
                SYM(file_system_type_get), SYM(partition_new), SYM(disk_add_partition),
                SYM(partition_destroy), SYM(partition_set_name), SYM(disk_commit),
                SYM(partition_get_path), SYM(disk_destroy), SYM(constraint_destroy),
                SYM(exception_set_handler),
#undef SYM
        };

        if (parted.dl)
                return 0;
        parted.dl = dlopen("libparted.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!parted.dl)
                return log_error_errno(-EOPNOTSUPP, "Cannot load libparted (install libparted2): %s",
                                       dlerror());
        for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
                void *f = dlsym(parted.dl, syms[i].name);

                if (!f) {
                        dlclose(parted.dl);
                        parted.dl = NULL;
                        return log_error_errno(-EOPNOTSUPP, "libparted lacks %s", syms[i].name);
                }
                memcpy((char *)&parted + syms[i].offset, &f, sizeof f);
        }
        return 0;
}

static inline void ped_disk_destroyp(PedDisk **d) {
        if (*d)
                parted.disk_destroy(*d);
}
static inline void ped_constraint_destroyp(PedConstraint **c) {
        if (*c)
                parted.constraint_destroy(*c);
}

/* libparted reports problems through a process-wide exception handler. We answer
 * every question with "cancel" (never let the library "fix" a disk on its own) and keep
 * the text so the caller can log it once with context. */
static char parted_message[512];

static PedExceptionOption parted_handler(PedException *ex) {
        snprintf(parted_message, sizeof parted_message, "%s", ex->message);
        log_debug("libparted: %s", ex->message);
        if (ex->options & PED_EXCEPTION_CANCEL)
                return PED_EXCEPTION_CANCEL;
        if (ex->options & PED_EXCEPTION_NO)
                return PED_EXCEPTION_NO;
        return PED_EXCEPTION_UNHANDLED;
}

static bool same_signatures(const struct disk *a, const struct disk *b) {
        if (a->n_sigs != b->n_sigs)
                return false;
        for (size_t i = 0; i < a->n_sigs; i++) {
                bool found = false;
                for (size_t j = 0; j < b->n_sigs && !found; j++)
                        found = streq(a->sigs[i].type, b->sigs[j].type) &&
                                streq(a->sigs[i].where ? a->sigs[i].where : "",
                                      b->sigs[j].where ? b->sigs[j].where : "");
                if (!found)
                        return false;
        }
        return true;
}

/* Probe the disk again, now. */
static int reprobe(const struct disk *planned, struct inventory **ret) {
        _cleanup_inventory_ struct inventory *now = calloc(1, sizeof *now);
        char *only[] = { planned->path, NULL };
        struct disk_filter f = { .only = only, .include_virtual = true };
        const struct disk *d;
        int r;

        if (!now)
                return -ENOMEM;
        r = inventory_probe_disks(now, &f);
        if (r < 0)
                return log_error_errno(r, "%s: cannot probe it again before writing: %m",
                                       planned->path);
        if (now->n_disks != 1)
                return log_error_errno(-ENODEV, "%s: disappeared since the plan was made",
                                       planned->path);
        d = &now->disks[0];
        if (d->size_bytes != planned->size_bytes || d->holds_system || d->boot_medium ||
            d->in_use || !same_signatures(d, planned))
                return log_error_errno(-EBUSY,
                                       "%s: changed since the plan was made (size, contents or "
                                       "use); refusing to write it. Run 'firstboot disks plan' "
                                       "again.",
                                       planned->path);
        *ret = TAKE_PTR(now);
        return 0;
}

/* Erase every signature blkid can see on one device node (magic bytes only), so no old
 * RAID superblock or filesystem reappears inside the new partition. */
static int wipe_signatures(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_EXCL);
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        int n = 0;

        if (fd < 0)
                return log_error_errno(-errno, "%s: cannot open for wiping: %m", path);
        pr = blkid_new_probe();
        if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0)
                return log_error_errno(-ENOMEM, "%s: cannot set up a blkid probe", path);
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_TYPE);
        blkid_probe_enable_partitions(pr, 1);
        blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
        while (blkid_do_probe(pr) == 0) {
                const char *type = NULL;

                if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) < 0)
                        blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL);
                if (blkid_do_wipe(pr, 0) < 0)
                        return log_error_errno(-EIO, "%s: failed to erase the %s signature",
                                               path, type ? type : "unknown");
                log_info("%s: erased %s signature", path, type ? type : "unknown");
                n++;
        }
        if (fsync(fd) < 0)
                return log_error_errno(-errno, "%s: fsync after wiping: %m", path);
        return n;
}

static int wait_for_node(const char *path) {
        /* The kernel adds the partition through BLKPG; devtmpfs creates the node shortly
         * after. Bounded wait, no udev needed. */
        for (int i = 0; i < 200; i++) {
                struct stat st;
                if (stat(path, &st) == 0 && S_ISBLK(st.st_mode))
                        return 0;
                nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
        }
        return log_error_errno(-ETIMEDOUT, "%s: partition device did not appear within 10 s",
                               path);
}

/* Fresh GPT with one partition from 1 MiB to the end, named rainboot-<target>, created
 * in memory and committed once. Returns the partition's device path. */
static int partition_disk(const char *path, enum target t, char **ret_part) {
        _cleanup_(ped_disk_destroyp) PedDisk *disk = NULL;
        _cleanup_(ped_constraint_destroyp) PedConstraint *constraint = NULL;
        _cleanup_free_ char *name = NULL;
        PedDevice *dev;
        PedPartition *part;
        PedSector start;
        char *part_path;
        int r;

        r = parted_load();
        if (r < 0)
                return r;
        parted.exception_set_handler(parted_handler);
        parted_message[0] = 0;
        dev = parted.device_get(path);
        if (!dev)
                return log_error_errno(-EIO, "%s: libparted cannot open it: %s", path,
                                       parted_message);
        disk = parted.disk_new_fresh(dev, parted.disk_type_get("gpt"));
        if (!disk)
                return log_error_errno(-EIO, "%s: cannot create a GPT: %s", path, parted_message);
        constraint = parted.device_get_optimal_aligned_constraint(dev);
        if (!constraint)
                constraint = parted.device_get_constraint(dev);
        start = (1024 * 1024) / dev->sector_size;
        part = parted.partition_new(disk, PED_PARTITION_NORMAL, parted.file_system_type_get("ext4"),
                                 start, dev->length - 1);
        if (!part)
                return log_error_errno(-EIO, "%s: cannot create a partition: %s", path,
                                       parted_message);
        if (!parted.disk_add_partition(disk, part, constraint)) {
                parted.partition_destroy(part);
                return log_error_errno(-EIO, "%s: cannot place the partition: %s", path,
                                       parted_message);
        }
        if (asprintf_safe(&name, "rainboot-%s", target_to_string(t)) < 0)
                return -ENOMEM;
        if (!parted.partition_set_name(part, name))
                return log_error_errno(-EIO, "%s: cannot name the partition: %s", path,
                                       parted_message);
        if (!parted.disk_commit(disk))
                return log_error_errno(-EIO, "%s: writing the partition table failed: %s", path,
                                       parted_message);
        log_info("%s: GPT written, partition %s from sector %lld, %lld sectors", path, name,
                 (long long)part->geom.start, (long long)part->geom.length);
        part_path = parted.partition_get_path(part);
        if (!part_path)
                return -ENOMEM;
        *ret_part = part_path;
        return 0;
}

static int read_uuid(const char *path, char **ret) {
        _cleanup_(blkid_free_probep) blkid_probe pr = blkid_new_probe_from_filename(path);
        const char *uuid = NULL;

        if (!pr)
                return log_error_errno(-errno ?: -EIO, "%s: cannot probe: %m", path);
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE);
        if (blkid_do_safeprobe(pr) != 0 || blkid_probe_lookup_value(pr, "UUID", &uuid, NULL) < 0)
                return log_error_errno(-ENOENT, "%s: no filesystem UUID found after mkfs", path);
        *ret = strdup(uuid);
        return *ret ? 0 : -ENOMEM;
}

static int format_disk(const struct disk *d, enum target t, bool overwrites, char **ret_uuid) {
        _cleanup_inventory_ struct inventory *now = NULL;
        _cleanup_free_ char *part = NULL, *output = NULL, *label = NULL;
        int r;

        r = reprobe(d, &now);
        if (r < 0)
                return r;
        if (overwrites) {
                /* Partitions first: their nodes vanish once the table is replaced. */
                for (size_t i = 0; i < now->disks[0].n_parts; i++)
                        if ((r = wipe_signatures(now->disks[0].parts[i].path)) < 0)
                                return r;
                if ((r = wipe_signatures(d->path)) < 0)
                        return r;
        }
        r = partition_disk(d->path, t, &part);
        if (r < 0)
                return r;
        r = wait_for_node(part);
        if (r < 0)
                return r;
        /* A previous interrupted run or an old filesystem may have left magic at the
         * partition's start; mkfs -F overwrites it, but a RAID superblock at the end would
         * survive: clear whatever blkid finds in the new partition first. */
        r = wipe_signatures(part);
        if (r < 0)
                return r;
        if (asprintf_safe(&label, "rb-%s", target_to_string(t)) < 0)
                return -ENOMEM;
        log_info("%s: making an ext4 filesystem (label %s)", part, label);
        r = run_command((char *[]){ "mkfs.ext4", "-q", "-F", "-m", "1", "-L", label, "-E",
                                    "lazy_itable_init=1,lazy_journal_init=1", part, NULL },
                        &output);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -EIO, "mkfs.ext4 %s failed (status %d): %s",
                                       part, r, output ? output : "");
        return read_uuid(part, ret_uuid);
}

static const char *existing_uuid(const struct disk *d) {
        for (size_t i = 0; i < d->n_sigs; i++)
                if (d->sigs[i].usage == SIG_FILESYSTEM && d->sigs[i].uuid)
                        return d->sigs[i].uuid;
        return NULL;
}

/* Rewrite <root>/etc/fstab: other lines kept as they are, ours (tagged x-rainboot.*)
 * replaced. Written atomically. */
static int write_fstab(const char *root, const struct disk_plan *p, char *const uuids[]) {
        _cleanup_free_ char *path = NULL, *old = NULL, *dir = NULL, *buf = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (asprintf_safe(&dir, "%s/etc", root) < 0 || asprintf_safe(&path, "%s/fstab", dir) < 0)
                return -ENOMEM;
        r = read_full_file(path, &old, NULL);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read %s: %m", path);
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        for (char *line = old, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (!strstr(line, "x-rainboot."))
                        fprintf(f, "%s\n", line);
                if (!next)
                        break;
        }
        for (int t = 0; t < _TARGET_MAX; t++) {
                const struct target_choice *tc = &p->targets[t];

                if (tc->disk >= 0)
                        /* No nofail: if the data disk is missing, boot must stop rather
                         * than let Rainbond fill the system disk's mount point. */
                        fprintf(f, "UUID=%s %s ext4 defaults,x-systemd.device-timeout=90s,x-rainboot.target=%s 0 2\n",
                                uuids[t], tc->mount, target_to_string(t));
                else if (tc->shares >= 0) {
                        const char *host = p->targets[tc->shares].mount;

                        if (startswith(tc->mount, host) && tc->mount[strlen(host)] == '/')
                                continue; /* already inside the host's filesystem */
                        fprintf(f, "%s/.rainboot/%s %s none bind,x-systemd.requires-mounts-for=%s,x-rainboot.target=%s 0 0\n",
                                host, target_to_string(t), tc->mount, host, target_to_string(t));
                }
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        r = mkdir_parents(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", dir);
        r = write_file_atomic(path, buf, len, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        log_info("%s: written", path);
        return 0;
}

int disk_plan_apply(const struct disk_plan *p, const struct inventory *inv,
                    const struct config *cfg, const struct apply_options *o) {
        const char *root = o && o->root && !streq(o->root, "/") ? o->root : "";
        char *uuids[_TARGET_MAX] = {};
        int r = 0;

        (void)cfg;
        for (int t = 0; t < _TARGET_MAX && r >= 0; t++) {
                const struct target_choice *tc = &p->targets[t];
                const struct disk_choice *dc;
                const struct disk *d;

                if (tc->disk < 0)
                        continue;
                d = &inv->disks[tc->disk];
                dc = &p->disks[tc->disk]; /* choices are kept in inventory order */
                if (dc->verdict == DISK_REUSE) {
                        const char *u = existing_uuid(d);
                        if (!u) {
                                r = log_error_errno(-ENOENT, "%s: prepared earlier but has no filesystem UUID", d->path);
                                break;
                        }
                        log_info("%s: already prepared for %s, keeping it", d->path, target_to_string(t));
                        uuids[t] = strdup(u);
                        if (!uuids[t])
                                r = -ENOMEM;
                        continue;
                }
                if (dc->verdict != DISK_FORMAT) {
                        r = log_error_errno(-EINVAL, "%s: plan is inconsistent (%s)", d->path, disk_verdict_to_string(dc->verdict));
                        break;
                }
                r = format_disk(d, (enum target)t, dc->overwrites, &uuids[t]);
        }
        /* fstab only once every disk is ready: an interrupted run leaves no entry for a
         * disk that has no filesystem, and the next run resumes (REUSE / re-format). */
        if (r >= 0) {
                for (int t = 0; t < _TARGET_MAX && r >= 0; t++) {
                        _cleanup_free_ char *mp = NULL;

                        if (p->targets[t].disk < 0 && p->targets[t].shares < 0)
                                continue;
                        if (asprintf_safe(&mp, "%s%s", root, p->targets[t].mount) < 0)
                                r = -ENOMEM;
                        else if ((r = mkdir_parents(mp, 0755)) < 0)
                                log_error_errno(r, "Cannot create mount point %s: %m", mp);
                }
                if (r >= 0)
                        r = write_fstab(root, p, uuids);
        }
        for (int t = 0; t < _TARGET_MAX; t++)
                free(uuids[t]);
        return r;
}
