/* SPDX-License-Identifier: MIT */
/* Disk inventory: whole disks from libudev (falling back to sysfs when the udev database
 * is empty, as in an early boot or a container), signatures and partitions from a
 * read-only libblkid probe, and what the running system uses each disk for (mounts,
 * swap, md/dm devices stacked on it). Nothing here opens a device for writing. */
#include "inventory.h"

#include <blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <libudev.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct udev *, udev_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct udev_enumerate *, udev_enumerate_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct udev_device *, udev_device_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe);

static inline void disk_donep(struct disk *d) {
        disk_done(d);
}

/* The label prefix of rainboot's own ISO (imagebuild sets the volume id). */
#define BOOT_MEDIUM_LABEL_PREFIX "RAINBOOT"

/* A device carries a handful of signatures; the bound only guards against a library bug. */
#define MAX_SIGNATURES_PER_DEVICE 64
/* md on dm on partition is about as deep as real stacks get. */
#define MAX_STACK_DEPTH 16

static const char *const system_mounts[] = {"/", "/usr", "/boot", "/boot/efi"};
static const char *const boot_medium_mounts[] = {
        "/run/live/medium",
        "/lib/live/mount/medium",
        "/cdrom",
};

struct mount_entry {
        dev_t devnum;
        char *target;
};

/* What the running system has mounted and swapping, keyed by device number. */
struct system_usage {
        struct mount_entry *mounts;
        size_t n_mounts;
        dev_t *swaps;
        size_t n_swaps;
};

static void system_usage_done(struct system_usage *s) {
        for (size_t i = 0; i < s->n_mounts; i++)
                free(s->mounts[i].target);
        free(s->mounts);
        free(s->swaps);
        memset(s, 0, sizeof *s);
}

static bool str_in(const char *s, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(s, list[i]))
                        return true;
        return false;
}

/* /proc/self/mountinfo and /proc/swaps escape space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = 0;
}

static int parse_devnum(const char *s, dev_t *ret) {
        unsigned maj, min;
        char extra;

        if (sscanf(s, "%u:%u%c", &maj, &min, &extra) != 2)
                return -EINVAL;
        *ret = makedev(maj, min);
        return 0;
}

static int system_usage_add_mount(struct system_usage *s, dev_t devnum, const char *target) {
        struct mount_entry *m;
        char *t = strdup(target);

        if (!t)
                return -ENOMEM;
        m = realloc(s->mounts, (s->n_mounts + 1) * sizeof *m);
        if (!m) {
                free(t);
                return -ENOMEM;
        }
        s->mounts = m;
        s->mounts[s->n_mounts++] = (struct mount_entry){.devnum = devnum, .target = t};
        return 0;
}

static int system_usage_load_mounts(struct system_usage *s) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t size = 0;

        if (!f)
                return log_error_errno(-errno, "Failed to open /proc/self/mountinfo: %m");
        while (getline(&line, &size, f) > 0) {
                char *p = line, *field[5], *tok;
                dev_t devnum;
                size_t i;
                int r;

                line[strcspn(line, "\n")] = 0;
                /* id parent major:minor root mountpoint options [optional...] - fstype source */
                for (i = 0; i < ELEMENTSOF(field); i++)
                        if (!(field[i] = strsep(&p, " ")))
                                break;
                if (i < ELEMENTSOF(field) || parse_devnum(field[2], &devnum) < 0)
                        continue;
                if (major(devnum) == 0) {
                        struct stat st;

                        /* btrfs and friends show an anonymous device number; the mount
                         * source still names the block device behind it. */
                        while ((tok = strsep(&p, " ")) && !streq(tok, "-"))
                                ;
                        if (!tok || !strsep(&p, " ") || !(tok = strsep(&p, " ")) ||
                            !startswith(tok, "/dev/"))
                                continue;
                        unescape_octal(tok);
                        if (stat(tok, &st) < 0 || !S_ISBLK(st.st_mode))
                                continue;
                        devnum = st.st_rdev;
                }
                unescape_octal(field[4]);
                r = system_usage_add_mount(s, devnum, field[4]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int system_usage_load_swaps(struct system_usage *s) {
        _cleanup_fclose_ FILE *f = fopen("/proc/swaps", "re");
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        bool header = true;

        if (!f) {
                if (errno == ENOENT) /* kernel without swap support */
                        return 0;
                return log_error_errno(-errno, "Failed to open /proc/swaps: %m");
        }
        while (getline(&line, &size, f) > 0) {
                struct stat st;
                dev_t *n;

                if (header) {
                        header = false;
                        continue;
                }
                line[strcspn(line, " \t\n")] = 0;
                unescape_octal(line);
                if (stat(line, &st) < 0)
                        continue;
                n = realloc(s->swaps, (s->n_swaps + 1) * sizeof *n);
                if (!n)
                        return -ENOMEM;
                s->swaps = n;
                /* A swap file lives on the filesystem of the device st_dev names. */
                s->swaps[s->n_swaps++] = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
        }
        return 0;
}

static bool devnum_is_system(const struct system_usage *s, dev_t devnum) {
        for (size_t i = 0; i < s->n_swaps; i++)
                if (s->swaps[i] == devnum)
                        return true;
        for (size_t i = 0; i < s->n_mounts; i++)
                if (s->mounts[i].devnum == devnum &&
                    str_in(s->mounts[i].target, system_mounts, ELEMENTSOF(system_mounts)))
                        return true;
        return false;
}

static bool devnum_is_boot_medium(const struct system_usage *s, dev_t devnum) {
        for (size_t i = 0; i < s->n_mounts; i++)
                if (s->mounts[i].devnum == devnum &&
                    str_in(s->mounts[i].target, boot_medium_mounts, ELEMENTSOF(boot_medium_mounts)))
                        return true;
        return false;
}

static char *strv_join(char *const *l, const char *sep) {
        size_t len = 1, seplen = strlen(sep);
        char *s, *p;

        for (size_t i = 0; l && l[i]; i++)
                len += strlen(l[i]) + seplen;
        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = 0;
        for (size_t i = 0; l && l[i]; i++) {
                if (i > 0)
                        p = stpcpy(p, sep);
                p = stpcpy(p, l[i]);
        }
        return s;
}

/* Strip blanks at both ends; sysfs model strings are space-padded. NULL if empty. */
static char *strdup_trimmed(const char *s) {
        size_t n;

        if (!s)
                return NULL;
        s += strspn(s, " \t\n");
        n = strlen(s);
        while (n > 0 && strchr(" \t\n", s[n - 1]))
                n--;
        return n > 0 ? strndup(s, n) : NULL;
}

/* Decode udev's ID_*_ENC escaping ("\x20" for a blank). */
static char *udev_decode(const char *s) {
        _cleanup_free_ char *d = NULL;
        char *w;

        if (!s)
                return NULL;
        d = w = malloc(strlen(s) + 1);
        if (!d)
                return NULL;
        while (*s) {
                unsigned v;

                if (s[0] == '\\' && s[1] == 'x' && isxdigit((unsigned char)s[2]) &&
                    isxdigit((unsigned char)s[3]) && sscanf(s + 2, "%2x", &v) == 1 && v > 0) {
                        *w++ = (char)v;
                        s += 4;
                } else
                        *w++ = *s++;
        }
        *w = 0;
        return strdup_trimmed(d);
}

static int sysfs_read(const char *name, const char *attr, char **ret) {
        _cleanup_free_ char *p = NULL;
        int r;

        r = asprintf_safe(&p, "/sys/class/block/%s/%s", name, attr);
        if (r < 0)
                return r;
        return read_one_line_file(p, ret);
}

static int sysfs_read_u64(const char *name, const char *attr, uint64_t *ret) {
        _cleanup_free_ char *p = NULL;
        int r;

        r = asprintf_safe(&p, "/sys/class/block/%s/%s", name, attr);
        if (r < 0)
                return r;
        return read_u64_file(p, ret);
}

static int sysfs_devnum(const char *name, dev_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = sysfs_read(name, "dev", &s);
        if (r < 0)
                return r;
        return parse_devnum(s, ret);
}

/* Kernel names of the partitions the kernel knows on a disk ("sda1", "loop0p1"). */
static int sysfs_partitions(const char *disk, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int r;

        r = asprintf_safe(&dir, "/sys/class/block/%s", disk);
        if (r < 0)
                return r;
        d = opendir(dir);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;

                if (!startswith(de->d_name, disk))
                        continue;
                r = asprintf_safe(&p, "%s/%s/partition", dir, de->d_name);
                if (r < 0)
                        return r;
                if (access(p, F_OK) < 0)
                        continue;
                r = strv_push(&l, de->d_name);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* The name the kernel gives partition `partno` of `disk`: "sda" + 1, "nvme0n1" + "p1". */
static int partition_name(const char *disk, char *const *kernel_parts, int partno, char **ret) {
        for (size_t i = 0; kernel_parts && kernel_parts[i]; i++) {
                uint64_t n;

                if (sysfs_read_u64(kernel_parts[i], "partition", &n) >= 0 &&
                    n == (uint64_t)partno) {
                        char *s = strdup(kernel_parts[i]);

                        if (!s)
                                return -ENOMEM;
                        *ret = s;
                        return 0;
                }
        }
        return asprintf_safe(ret, "%s%s%d", disk,
                             disk[0] && strchr("0123456789", disk[strlen(disk) - 1]) ? "p" : "",
                             partno);
}

/* `name` and, recursively, every device the kernel lists as holding it (md, dm). */
static int collect_holders(const char *name, unsigned depth, char ***names) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int r;

        if (strv_contains(*names, name) || depth > MAX_STACK_DEPTH)
                return 0;
        r = strv_push(names, name);
        if (r < 0)
                return r;
        r = asprintf_safe(&dir, "/sys/class/block/%s/holders", name);
        if (r < 0)
                return r;
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                r = collect_holders(de->d_name, depth + 1, names);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int holder_description(const char *holder, char **ret) {
        _cleanup_free_ char *dm_name = NULL;

        if (sysfs_read(holder, "dm/name", &dm_name) >= 0 && *dm_name)
                return asprintf_safe(ret, "member of %s (%s)", dm_name, holder);
        return asprintf_safe(ret, "member of %s", holder);
}

static int push_unique(char ***l, const char *s) {
        return strv_contains(*l, s) ? 0 : strv_push(l, s);
}

/* holds_system, boot_medium and in_use from the mounts and swaps of the disk, its
 * partitions and everything stacked on them. */
static int disk_assess_usage(struct disk *d, const struct system_usage *su) {
        _cleanup_strv_free_ char **parts = NULL, **stack = NULL, **reasons = NULL;
        int r;

        r = sysfs_partitions(d->name, &parts);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to list the partitions of %s: %m", d->path);
        r = collect_holders(d->name, 0, &stack);
        for (size_t i = 0; r >= 0 && parts && parts[i]; i++)
                r = collect_holders(parts[i], 0, &stack);
        if (r < 0)
                return r;

        /* Direct holders only: "member of md0" says why; deeper layers follow from it. */
        for (size_t i = 0; stack[i]; i++) {
                _cleanup_strv_free_ char **holders = NULL;
                _cleanup_free_ char *dir = NULL;
                _cleanup_(closedirp) DIR *dh = NULL;
                struct dirent *de;

                if (!streq(stack[i], d->name) && !strv_contains(parts, stack[i]))
                        continue;
                r = asprintf_safe(&dir, "/sys/class/block/%s/holders", stack[i]);
                if (r < 0)
                        return r;
                dh = opendir(dir);
                while (dh && (de = readdir(dh))) {
                        _cleanup_free_ char *why = NULL;

                        if (de->d_name[0] == '.')
                                continue;
                        r = holder_description(de->d_name, &why);
                        if (r < 0)
                                return r;
                        r = push_unique(&reasons, why);
                        if (r < 0)
                                return r;
                }
        }

        for (size_t i = 0; stack[i]; i++) {
                dev_t devnum;

                if (sysfs_devnum(stack[i], &devnum) < 0)
                        continue;
                if (devnum_is_system(su, devnum)) {
                        d->holds_system = true;
                        /* Other mounts of it are bind mounts of the system filesystem. */
                        continue;
                }
                if (devnum_is_boot_medium(su, devnum)) {
                        d->boot_medium = true;
                        continue;
                }
                for (size_t m = 0; m < su->n_mounts; m++) {
                        _cleanup_free_ char *why = NULL;

                        if (su->mounts[m].devnum != devnum)
                                continue;
                        if (streq(stack[i], d->name))
                                r = asprintf_safe(&why, "mounted at %s", su->mounts[m].target);
                        else
                                r = asprintf_safe(&why, "%s mounted at %s", stack[i],
                                                  su->mounts[m].target);
                        if (r < 0)
                                return r;
                        r = push_unique(&reasons, why);
                        if (r < 0)
                                return r;
                }
        }

        for (size_t i = 0; i < d->n_sigs; i++)
                if (streq(d->sigs[i].type, "iso9660") && d->sigs[i].label &&
                    startswith(d->sigs[i].label, BOOT_MEDIUM_LABEL_PREFIX))
                        d->boot_medium = true;

        if (reasons) {
                char *s = strv_join(reasons, ", ");

                if (!s)
                        return -ENOMEM;
                free(d->in_use);
                d->in_use = s;
        }
        return 0;
}

static enum sig_usage usage_from_blkid(const char *type, const char *usage) {
        /* blkid files LVM physical volumes under "raid"; the planner tells them apart. */
        if (startswith(type, "LVM") && endswith(type, "_member"))
                return SIG_LVM;
        if (!usage)
                return SIG_OTHER;
        if (streq(usage, "filesystem"))
                return SIG_FILESYSTEM;
        if (streq(usage, "raid"))
                return SIG_RAID;
        if (streq(usage, "crypto"))
                return SIG_CRYPTO;
        return SIG_OTHER;
}

static int disk_add_sig(struct disk *d, const char *type, enum sig_usage usage, const char *where,
                        const char *label, const char *uuid) {
        struct signature s = {
                .type = strdup(type),
                .usage = usage,
                .where = strdup(where),
                .label = xstrdup_or_null(label),
                .uuid = xstrdup_or_null(uuid),
        };
        struct signature *n;

        if (!s.type || !s.where || (label && !s.label) || (uuid && !s.uuid))
                goto oom;
        n = realloc(d->sigs, (d->n_sigs + 1) * sizeof *n);
        if (!n)
                goto oom;
        d->sigs = n;
        d->sigs[d->n_sigs++] = s;
        return 0;
oom:
        free(s.type);
        free(s.where);
        free(s.label);
        free(s.uuid);
        return -ENOMEM;
}

static const char *probe_value(blkid_probe pr, const char *name) {
        const char *v = NULL;

        if (blkid_probe_lookup_value(pr, name, &v, NULL) < 0 || !v || !*v)
                return NULL;
        return v;
}

/* Every signature blkid recognises, not just the one a safe probe would pick: a disk
 * that carries an md superblock over an old filesystem must show both, and an ambivalent
 * result is exactly the case where guessing is dangerous. */
static int probe_signatures(blkid_probe pr, bool whole_disk, const char *where, struct disk *d) {
        int r;

        if (blkid_probe_enable_superblocks(pr, 1) < 0 ||
            blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL |
                                                          BLKID_SUBLKS_UUID | BLKID_SUBLKS_USAGE) <
                    0 ||
            blkid_probe_enable_partitions(pr, whole_disk) < 0)
                return -EINVAL;

        for (unsigned i = 0; i < MAX_SIGNATURES_PER_DEVICE; i++) {
                const char *pttype, *type;

                errno = 0;
                r = blkid_do_probe(pr);
                if (r == 1)
                        return 0;
                if (r < 0)
                        return errno > 0 ? -errno : -EIO;

                pttype = probe_value(pr, "PTTYPE");
                type = probe_value(pr, "TYPE");
                if (pttype) {
                        r = disk_add_sig(d, pttype, SIG_PTABLE, where, NULL,
                                         probe_value(pr, "PTUUID"));
                        if (r >= 0 && whole_disk && !d->pttype && !(d->pttype = strdup(pttype)))
                                r = -ENOMEM;
                } else if (type)
                        r = disk_add_sig(d, type, usage_from_blkid(type, probe_value(pr, "USAGE")),
                                         where, probe_value(pr, "LABEL"), probe_value(pr, "UUID"));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Probe one partition, through its device node when the kernel made one, else through
 * the disk at the partition's offset (a table the kernel has not re-read yet). */
static int probe_partition(struct disk *d, const struct partition *p, uint64_t start_bytes) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (stat(p->path, &st) >= 0 && S_ISBLK(st.st_mode)) {
                errno = 0;
                pr = blkid_new_probe_from_filename(p->path);
                if (!pr)
                        return errno > 0 ? -errno : -EIO;
        } else {
                fd = open(d->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0)
                        return -errno;
                pr = blkid_new_probe();
                if (!pr)
                        return -ENOMEM;
                if (blkid_probe_set_device(pr, fd, (blkid_loff_t)start_bytes,
                                           (blkid_loff_t)p->size_bytes) < 0)
                        return -EIO;
        }
        return probe_signatures(pr, false, p->name, d);
}

static int disk_probe_partitions(struct disk *d, blkid_probe pr) {
        _cleanup_strv_free_ char **kernel_parts = NULL;
        blkid_partlist ls;
        int n, r;

        ls = blkid_probe_get_partitions(pr);
        n = ls ? blkid_partlist_numof_partitions(ls) : 0;
        if (n <= 0)
                return 0;
        r = sysfs_partitions(d->name, &kernel_parts);
        if (r < 0 && r != -ENOENT)
                return r;

        d->parts = calloc((size_t)n, sizeof *d->parts);
        if (!d->parts)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                blkid_partition par = blkid_partlist_get_partition(ls, i);
                struct partition *p = &d->parts[d->n_parts];
                const char *label;

                if (!par)
                        continue;
                d->n_parts++;
                p->number = (unsigned)blkid_partition_get_partno(par);
                p->size_bytes = (uint64_t)blkid_partition_get_size(par) * 512;
                label = blkid_partition_get_name(par);
                if (label && *label && !(p->partlabel = strdup(label)))
                        return -ENOMEM;
                r = partition_name(d->name, kernel_parts, blkid_partition_get_partno(par),
                                   &p->name);
                if (r < 0)
                        return r;
                r = asprintf_safe(&p->path, "/dev/%s", p->name);
                if (r < 0)
                        return r;

                /* An extended partition only holds the chain of logical ones. */
                if (blkid_partition_is_extended(par))
                        continue;
                r = probe_partition(d, p, (uint64_t)blkid_partition_get_start(par) * 512);
                if (r < 0)
                        return log_error_errno(r, "Failed to probe partition %s of %s: %m", p->path,
                                               d->path);
        }
        return 0;
}

static int disk_probe_blkid(struct disk *d) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        int r;

        /* blkid opens the device O_RDONLY: probing never writes. */
        errno = 0;
        pr = blkid_new_probe_from_filename(d->path);
        if (!pr)
                return errno > 0 ? -errno : -EIO;
        r = probe_signatures(pr, true, "disk", d);
        if (r < 0)
                return r;
        return disk_probe_partitions(d, pr);
}

static const char *transport_from_udev(struct udev_device *dev) {
        static const struct {
                const char *bus, *transport;
        } buses[] = {
                {"ata", "sata"},  {"usb", "usb"}, {"nvme", "nvme"},
                {"scsi", "scsi"}, {"mmc", "mmc"}, {"virtio", "virtio"},
        };
        const char *bus = udev_device_get_property_value(dev, "ID_BUS");
        const char *path = udev_device_get_property_value(dev, "ID_PATH");

        for (size_t i = 0; bus && i < ELEMENTSOF(buses); i++)
                if (streq(bus, buses[i].bus))
                        return buses[i].transport;
        if (path) {
                if (strstr(path, "-usb-"))
                        return "usb";
                if (strstr(path, "-nvme-"))
                        return "nvme";
                if (strstr(path, "-ata-"))
                        return "sata";
                if (strstr(path, "-scsi-"))
                        return "scsi";
        }
        return NULL;
}

/* Without udev properties: the buses the device hangs off, as sysfs shows them. */
static const char *transport_from_sysfs(struct udev_device *dev) {
        bool usb = false, nvme = false, mmc = false, scsi = false, virtio = false;
        const char *syspath = udev_device_get_syspath(dev);
        const char *name = udev_device_get_sysname(dev);

        if (startswith(name, "loop"))
                return "loop";
        for (struct udev_device *p = udev_device_get_parent(dev); p;
             p = udev_device_get_parent(p)) {
                const char *s = udev_device_get_subsystem(p);

                if (!s)
                        continue;
                usb |= streq(s, "usb");
                nvme |= streq(s, "nvme");
                mmc |= streq(s, "mmc");
                scsi |= streq(s, "scsi");
                virtio |= streq(s, "virtio");
        }
        if (usb)
                return "usb";
        if (nvme || startswith(name, "nvme"))
                return "nvme";
        if (mmc)
                return "mmc";
        /* libata ports have no subsystem link; their directories are named ataN. */
        if (syspath && strstr(syspath, "/ata"))
                return "sata";
        if (scsi)
                return "scsi";
        if (virtio || startswith(name, "vd"))
                return "virtio";
        return NULL;
}

static bool devlink_is_stable_id(const char *link) {
        return startswith(link, "/dev/disk/by-id/") && !strstr(link, "/wwn-") &&
               !strstr(link, "/nvme-eui.");
}

/* The by-id link to show: a stable, readable one (bus-model-serial) when there is one. */
static int disk_find_by_id(struct disk *d, struct udev_device *dev) {
        _cleanup_(closedirp) DIR *dir = NULL;
        const char *best = NULL, *any = NULL;
        struct udev_list_entry *e;
        struct dirent *de;

        udev_list_entry_foreach(e, udev_device_get_devlinks_list_entry(dev)) {
                const char *l = udev_list_entry_get_name(e);

                if (!startswith(l, "/dev/disk/by-id/"))
                        continue;
                if (!any || strcmp(l, any) < 0)
                        any = l;
                if (devlink_is_stable_id(l) && (!best || strcmp(l, best) < 0))
                        best = l;
        }
        if (best || any) {
                d->by_id = strdup(best ? best : any);
                return d->by_id ? 0 : -ENOMEM;
        }

        /* No udev database: read the links udev made before (or a static /dev). */
        dir = opendir("/dev/disk/by-id");
        if (!dir)
                return 0;
        while ((de = readdir(dir))) {
                _cleanup_free_ char *link = NULL, *target = NULL;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf_safe(&link, "/dev/disk/by-id/%s", de->d_name) < 0)
                        return -ENOMEM;
                target = realpath(link, NULL);
                if (!target || !streq(target, d->path))
                        continue;
                if (!d->by_id || (devlink_is_stable_id(link) && !devlink_is_stable_id(d->by_id)) ||
                    (devlink_is_stable_id(link) == devlink_is_stable_id(d->by_id) &&
                     strcmp(link, d->by_id) < 0)) {
                        free(d->by_id);
                        d->by_id = TAKE_PTR(link);
                }
        }
        return 0;
}

static int disk_fill_identity(struct disk *d, struct udev_device *dev) {
        _cleanup_free_ char *s = NULL;
        const char *v, *transport;
        dev_t devnum = udev_device_get_devnum(dev);
        uint64_t u;

        if (!(d->name = strdup(udev_device_get_sysname(dev))))
                return -ENOMEM;
        v = udev_device_get_devnode(dev);
        if (v ? !(d->path = strdup(v)) : asprintf_safe(&d->path, "/dev/%s", d->name) < 0)
                return -ENOMEM;
        if (asprintf_safe(&d->devnum, "%u:%u", major(devnum), minor(devnum)) < 0)
                return -ENOMEM;

        if (sysfs_read_u64(d->name, "size", &u) >= 0)
                d->size_bytes = u * 512; /* sysfs counts 512-byte units whatever the sector size */
        d->logical_sector =
                sysfs_read_u64(d->name, "queue/logical_block_size", &u) >= 0 ? (unsigned)u : 512;
        d->physical_sector = sysfs_read_u64(d->name, "queue/physical_block_size", &u) >= 0
                                     ? (unsigned)u
                                     : d->logical_sector;
        d->rotational = sysfs_read_u64(d->name, "queue/rotational", &u) >= 0 && u != 0;
        d->removable = sysfs_read_u64(d->name, "removable", &u) >= 0 && u != 0;
        d->readonly = sysfs_read_u64(d->name, "ro", &u) >= 0 && u != 0;

        transport = transport_from_udev(dev);
        if (!transport)
                transport = transport_from_sysfs(dev);
        if (transport && !(d->transport = strdup(transport)))
                return -ENOMEM;

        d->model = udev_decode(udev_device_get_property_value(dev, "ID_MODEL_ENC"));
        if (!d->model && sysfs_read(d->name, "device/model", &s) >= 0)
                d->model = strdup_trimmed(s);
        if (!d->model)
                d->model = strdup_trimmed(udev_device_get_property_value(dev, "ID_MODEL"));

        d->serial = strdup_trimmed(udev_device_get_property_value(dev, "ID_SERIAL_SHORT"));
        free(s);
        s = NULL;
        if (!d->serial && (sysfs_read(d->name, "device/serial", &s) >= 0 ||
                           sysfs_read(d->name, "serial", &s) >= 0))
                d->serial = strdup_trimmed(s);

        return disk_find_by_id(d, dev);
}

static bool disk_is_virtual(const char *name, uint64_t size_bytes) {
        static const char *const prefixes[] = {"loop", "ram", "zram", "dm-", "md", "fd"};

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (startswith(name, prefixes[i]))
                        return true;
        /* nbd and optical drives without a connection or a medium. */
        return (startswith(name, "nbd") || startswith(name, "sr")) && size_bytes == 0;
}

static int inventory_add_disk(struct inventory *inv, struct disk *d) {
        struct disk *n = realloc(inv->disks, (inv->n_disks + 1) * sizeof *n);

        if (!n)
                return -ENOMEM;
        inv->disks = n;
        inv->disks[inv->n_disks++] = *d;
        memset(d, 0, sizeof *d);
        return 0;
}

/* strict: a disk the caller named; failing to read it is an error, not a remark. */
static int probe_one(struct inventory *inv, struct udev_device *dev, const struct system_usage *su,
                     bool strict) {
        _cleanup_(disk_donep) struct disk d = {};
        int r;

        r = disk_fill_identity(&d, dev);
        if (r < 0)
                return log_error_errno(r, "Failed to read the identity of %s: %m",
                                       udev_device_get_sysname(dev));

        if (d.size_bytes > 0) {
                r = disk_probe_blkid(&d);
                if (r < 0) {
                        if (strict)
                                return log_error_errno(
                                        r, "Failed to probe %s for partitions and signatures: %m%s",
                                        d.path, r == -EACCES ? " (run as root)" : "");
                        /* Unreadable is not empty: mark it busy so nothing plans to wipe it. */
                        log_warning_errno(r, "Cannot probe %s, treating it as in use: %m", d.path);
                        if (asprintf_safe(&d.in_use, "could not be probed: %s", strerror(-r)) < 0)
                                return -ENOMEM;
                }
        }

        r = disk_assess_usage(&d, su);
        if (r < 0)
                return r;
        return inventory_add_disk(inv, &d);
}

static int probe_listed(struct inventory *inv, struct udev *udev, char *const *only,
                        const struct system_usage *su) {
        _cleanup_free_ dev_t *seen = NULL;
        size_t n_seen = 0;
        int r;

        seen = calloc(strv_length(only) + 1, sizeof *seen);
        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; only[i]; i++) {
                _cleanup_(udev_device_unrefp) struct udev_device *dev = NULL;
                const char *devtype;
                bool dup = false;
                struct stat st;

                if (stat(only[i], &st) < 0)
                        return log_error_errno(-errno,
                                               "Cannot inventory %s: %m. Pass an existing "
                                               "whole-disk block device, e.g. /dev/sdb.",
                                               only[i]);
                if (!S_ISBLK(st.st_mode))
                        return log_error_errno(-ENOTBLK,
                                               "Cannot inventory %s: not a block device. Pass a "
                                               "whole-disk block device, e.g. /dev/sdb.",
                                               only[i]);
                errno = 0;
                dev = udev_device_new_from_devnum(udev, 'b', st.st_rdev);
                if (!dev)
                        return log_error_errno(
                                errno > 0 ? -errno : -ENODEV,
                                "Cannot inventory %s: the kernel has no block device %u:%u: %m",
                                only[i], major(st.st_rdev), minor(st.st_rdev));
                devtype = udev_device_get_devtype(dev);
                if (!devtype || !streq(devtype, "disk")) {
                        struct udev_device *parent =
                                udev_device_get_parent_with_subsystem_devtype(dev, "block", "disk");
                        const char *pnode = parent ? udev_device_get_devnode(parent) : NULL;

                        if (pnode)
                                return log_error_errno(
                                        -EINVAL,
                                        "Cannot inventory %s: it is a partition, not a whole disk. "
                                        "Pass the disk it belongs to, %s.",
                                        only[i], pnode);
                        return log_error_errno(-EINVAL,
                                               "Cannot inventory %s: it is not a whole disk "
                                               "(device type %s). Pass a whole-disk block device.",
                                               only[i], devtype ?: "unknown");
                }

                for (size_t j = 0; j < n_seen; j++)
                        dup |= seen[j] == st.st_rdev;
                if (dup)
                        continue;
                seen[n_seen++] = st.st_rdev;

                r = probe_one(inv, dev, su, true);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int probe_all(struct inventory *inv, struct udev *udev, bool include_virtual,
                     const struct system_usage *su) {
        _cleanup_(udev_enumerate_unrefp) struct udev_enumerate *e = NULL;
        struct udev_list_entry *le;
        int r;

        e = udev_enumerate_new(udev);
        if (!e)
                return log_error_errno(-ENOMEM, "Failed to enumerate block devices: %m");
        r = udev_enumerate_add_match_subsystem(e, "block");
        if (r >= 0)
                r = udev_enumerate_scan_devices(e);
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate block devices: %m");

        udev_list_entry_foreach(le, udev_enumerate_get_list_entry(e)) {
                _cleanup_(udev_device_unrefp) struct udev_device *dev = NULL;
                const char *devtype, *name;
                uint64_t size = 0;

                dev = udev_device_new_from_syspath(udev, udev_list_entry_get_name(le));
                if (!dev)
                        continue; /* vanished while we looked */
                devtype = udev_device_get_devtype(dev);
                name = udev_device_get_sysname(dev);
                if (!devtype || !streq(devtype, "disk") || !name)
                        continue;
                if (sysfs_read_u64(name, "size", &size) >= 0)
                        size *= 512;
                /* Even when asked for virtual devices, an unattached loop or an
                 * unconfigured zram has nothing to show. */
                if (disk_is_virtual(name, size) && (!include_virtual || size == 0))
                        continue;
                r = probe_one(inv, dev, su, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

int inventory_probe_disks(struct inventory *inv, const struct disk_filter *f) {
        _cleanup_(udev_unrefp) struct udev *udev = NULL;
        _cleanup_(system_usage_done) struct system_usage su = {};
        int r;

        udev = udev_new();
        if (!udev)
                return log_error_errno(-ENOMEM, "Failed to initialise libudev: %m");
        r = system_usage_load_mounts(&su);
        if (r < 0)
                return r;
        r = system_usage_load_swaps(&su);
        if (r < 0)
                return r;

        if (f && f->only && f->only[0])
                return probe_listed(inv, udev, f->only, &su);
        return probe_all(inv, udev, f && f->include_virtual, &su);
}
