/* SPDX-License-Identifier: MIT */
/* firstboot install: write a raw system image (imagebuild's disk) to a disk chosen with the
 * disk planner's own safety rules. The planner is asked, not re-implemented: a config with
 * wipe: empty-only (or force-listed for the one disk named with --force) is planned, and
 * only disks the planner would format are acceptable. */
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "commands.h"
#include "config.h"
#include "diskplan.h"
#include "inventory.h"
#include "log.h"
#include "util.h"

#define COPY_CHUNK (4u << 20)

static void install_help(void) {
        printf("Usage: firstboot install --image FILE[.zst] [--disk PATH]... [--force] [--dry-run]\n"
               "                         [--include-virtual] [--reboot] [--root DIR --root-uuid UUID]\n"
               "\n"
               "Write the raw system image FILE to a disk. Without --disk the smallest blank\n"
               "disk that holds the image is chosen (larger disks stay free for data).\n"
               "\n"
               "Safety (the disk planner's rules): the running system and the boot medium\n"
               "are never written; a disk with a partition table or any signature is refused\n"
               "unless named with --disk and --force; RAID/LVM members are always refused.\n"
               "\n"
               "Options:\n"
               "      --image FILE       raw disk image (imagebuild's system disk), or its\n"
               "                         zstd compression (FILE.zst)\n"
               "      --disk PATH        consider only this disk (repeatable)\n"
               "      --force            overwrite the --disk disks even if they hold data\n"
               "      --include-virtual  consider loop, md, dm devices too\n"
               "      --dry-run          say which disk would be written, write nothing\n"
               "      --reboot           reboot after a successful install\n"
               "      --root DIR         then make the image's \"root\" GPT partition an ext4\n"
               "                         holding DIR (the ISO's live root: the ISO carries the\n"
               "                         system once, FILE only the boot area)\n"
               "      --root-uuid UUID   that file system's UUID (the one GRUB and fstab name)\n"
               "  -h, --help             this text\n");
}

/* Content size from a zstd frame header (RFC 8878 3.1.1.1): the zstd tool records it when
 * it compresses a file, and the installer needs it before writing a byte. */
static int zstd_content_size(int fd, uint64_t *ret) {
        static const unsigned dict_len[] = { 0, 1, 2, 4 }, fcs_len[] = { 1, 2, 4, 8 };
        uint8_t h[18];
        ssize_t n = pread(fd, h, sizeof h, 0);
        unsigned fhd, single, off, len;
        uint64_t v = 0;

        if (n < 6 || h[0] != 0x28 || h[1] != 0xb5 || h[2] != 0x2f || h[3] != 0xfd)
                return -EBADMSG;
        fhd = h[4];
        single = (fhd >> 5) & 1;
        if ((fhd >> 6) == 0 && !single)
                return -ENODATA; /* size not recorded */
        off = 5 + (single ? 0 : 1) + dict_len[fhd & 3];
        len = (fhd >> 6) == 0 ? 1 : fcs_len[fhd >> 6];
        if ((size_t)n < off + len)
                return -EBADMSG;
        for (unsigned i = 0; i < len; i++)
                v |= (uint64_t)h[off + i] << (8 * i);
        if (len == 2)
                v += 256;
        *ret = v;
        return 0;
}

static int image_size(const char *path, uint64_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char magic[4];
        struct stat st;
        int r;

        if (fd < 0)
                return log_error_errno(errno, "install: cannot open the image %s: %m", path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "install: cannot stat %s: %m", path);
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                return log_error_errno(-EINVAL, "install: %s is not a non-empty regular file",
                                       path);
        if (read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
            memcmp(magic, "QFI\xfb", 4) == 0)
                return log_error_errno(-EINVAL, "install: %s is a qcow2 image; convert it "
                                       "first: qemu-img convert -O raw %s system.img",
                                       path, path);
        if (endswith(path, ".zst")) {
                r = zstd_content_size(fd, ret);
                if (r < 0)
                        return log_error_errno(r, "install: %s: %s", path,
                                               r == -ENODATA ? "the zstd frame does not record "
                                                               "the image size; compress it "
                                                               "with the zstd tool from a file"
                                                             : "not a zstd image");
                return 0;
        }
        *ret = (uint64_t)st.st_size;
        return 0;
}

/* The image's bytes: the file itself, or `zstd -dc` of it. */
static int open_image(const char *image, pid_t *ret_pid) {
        int pipefd[2];
        pid_t pid;

        *ret_pid = 0;
        if (!endswith(image, ".zst")) {
                int fd = open(image, O_RDONLY | O_CLOEXEC);
                return fd < 0 ? -errno : fd;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int e = errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return -e;
        }
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                execlp("zstd", "zstd", "-dcq", "--", image, (char *)NULL);
                dprintf(STDERR_FILENO, "cannot execute zstd: %s\n", strerror(errno));
                _exit(127);
        }
        close(pipefd[1]);
        *ret_pid = pid;
        return pipefd[0];
}

static int reap(pid_t pid, const char *image) {
        int status;

        if (pid <= 0)
                return 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return log_error_errno(-EIO, "install: 'zstd -dc %s' failed", image);
        return 0;
}

/* A config the planner judges disks with: nothing but the disk rules matter. */
static int install_config(char **disks, bool force, struct config **ret) {
        _cleanup_config_ struct config *c = NULL;
        int r;

        r = config_new_default(&c);
        if (r < 0)
                return r;
        c->wipe = force ? WIPE_FORCE_LISTED : WIPE_EMPTY_ONLY;
        c->force_members = false;
        strv_free(c->disk_devices);
        c->disk_devices = NULL;
        for (size_t i = 0; force && disks && disks[i]; i++)
                if ((r = strv_push(&c->disk_devices, disks[i])) < 0)
                        return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int copy_all(int in, int out, const char *image, const char *disk, uint64_t size,
                    char *buf) {
        uint64_t done = 0;
        unsigned last = 0;

        for (;;) {
                ssize_t n = read(in, buf, COPY_CHUNK);
                unsigned pct;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(errno, "install: reading %s: %m", image);
                if (n == 0)
                        break;
                if ((uint64_t)n > size - done)
                        return log_error_errno(-EFBIG, "install: %s is larger than its "
                                               "recorded size", image);
                for (ssize_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, (size_t)(n - w));

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return log_error_errno(errno, "install: writing %s: %m", disk);
                        w += k;
                }
                done += (uint64_t)n;
                pct = (unsigned)(done * 100 / size);
                if (pct / 10 != last / 10) {
                        log_info("install: %u%%", pct);
                        last = pct;
                }
        }
        if (done != size)
                return log_error_errno(-EIO, "install: %s ended after %llu of %llu bytes",
                                       image, (unsigned long long)done,
                                       (unsigned long long)size);
        return 0;
}

static int write_image(const char *image, const struct disk *d, uint64_t size) {
        _cleanup_close_ int in = -1, out = -1;
        _cleanup_free_ char *buf = malloc(COPY_CHUNK);
        pid_t pid = 0;
        int r, k;

        if (!buf)
                return -ENOMEM;
        in = open_image(image, &pid);
        if (in < 0)
                return log_error_errno(in, "install: cannot read %s: %m", image);
        /* O_EXCL on a block device fails if anything holds it (mounted, in an array):
         * the kernel's own last word after the planner's. */
        out = open(d->path, O_WRONLY | O_EXCL | O_CLOEXEC);
        if (out < 0)
                r = log_error_errno(errno, "install: cannot open %s exclusively: %m", d->path);
        else
                r = copy_all(in, out, image, d->path, size, buf);
        close(TAKE_FD(in));
        if (r < 0 && pid > 0)
                kill(pid, SIGTERM);
        k = reap(pid, image);
        if (r < 0)
                return r;
        if (k < 0)
                return k;
        if (fsync(out) < 0)
                return log_error_errno(errno, "install: flushing %s: %m", d->path);
        /* New partition table: tell the kernel; a failure only delays it to the reboot. */
        if (ioctl(out, BLKRRPART, 0) < 0)
                log_debug_errno(errno, "install: re-reading the partition table of %s: %m",
                                d->path);
        return 0;
}

static uint64_t get_le(const uint8_t *p, size_t n) {
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

/* The byte range of the GPT partition named "root" on the disk just written (512-byte
 * sectors, as imagebuild writes them). */
static int find_root_partition(int fd, const char *disk, uint64_t *ret_offset,
                               uint64_t *ret_size) {
        static const char name[] = "root";
        uint8_t h[512], e[128];
        uint64_t lba;
        uint32_t n, esz;

        if (pread(fd, h, sizeof h, 512) != (ssize_t)sizeof h || memcmp(h, "EFI PART", 8) != 0)
                return log_error_errno(-EBADMSG, "install: %s: no GPT after writing the image; "
                                       "is it imagebuild's boot image?", disk);
        lba = get_le(h + 72, 8);
        n = (uint32_t)get_le(h + 80, 4);
        esz = (uint32_t)get_le(h + 84, 4);
        for (uint32_t i = 0; i < n && i < 128 && esz >= sizeof e; i++) {
                bool match = true;
                uint64_t first, last;

                if (pread(fd, e, sizeof e, (off_t)(lba * 512 + (uint64_t)i * esz)) !=
                    (ssize_t)sizeof e)
                        return log_error_errno(-EIO, "install: %s: cannot read the GPT", disk);
                for (size_t k = 0; k <= strlen(name); k++)
                        if (e[56 + 2 * k] != (uint8_t)name[k] || e[57 + 2 * k] != 0)
                                match = false;
                if (!match)
                        continue;
                first = get_le(e + 32, 8);
                last = get_le(e + 40, 8);
                if (last < first)
                        break;
                *ret_offset = first * 512;
                *ret_size = (last - first + 1) * 512;
                return 0;
        }
        return log_error_errno(-ENOENT, "install: %s: the image has no GPT partition named "
                               "\"root\"; is it imagebuild's boot image?", disk);
}

/* The root file system made in place from the live root: mke2fs writes at the
 * partition's offset, so no partition device node has to appear first. */
static int write_root(const char *disk, const char *root, const char *uuid) {
        _cleanup_free_ char *opts = NULL, *size = NULL, *out = NULL;
        _cleanup_close_ int fd = open(disk, O_RDONLY | O_CLOEXEC);
        uint64_t off = 0, sz = 0;
        int r;

        if (fd < 0)
                return log_error_errno(errno, "install: cannot open %s: %m", disk);
        r = find_root_partition(fd, disk, &off, &sz);
        if (r < 0)
                return r;
        if (asprintf_safe(&opts, "offset=%llu,nodiscard", (unsigned long long)off) < 0 ||
            asprintf_safe(&size, "%lluk", (unsigned long long)(sz / 1024)) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        log_info("install: copying the system from %s into the root partition", root);
        char *argv[] = { "mkfs.ext4", "-q", "-F", "-L", "rainboot-root", "-U", (char *)uuid,
                         "-E", opts, "-d", (char *)root, (char *)disk, size, NULL };
        r = run_command(argv, &out);
        if (r != 0)
                return log_error_errno(-EIO, "install: mkfs.ext4 -d %s on %s failed: %s", root,
                                       disk, out ? out : "");
        if (fsync(fd) < 0)
                return log_error_errno(errno, "install: flushing %s: %m", disk);
        return 0;
}

/* Refused only for its contents, which --force may overwrite; the system, the boot
 * medium and busy or read-only disks stay refused whatever the options. */
static bool only_data_in_the_way(const struct disk *d) {
        return (d->n_sigs > 0 || d->pttype) && !d->holds_system && !d->boot_medium &&
               !d->in_use && !d->readonly;
}

int cmd_install(const struct ctx *ctx, int argc, char **argv) {
        enum { ARG_IMAGE = 0x100, ARG_DISK, ARG_FORCE, ARG_VIRTUAL, ARG_DRY_RUN, ARG_REBOOT,
               ARG_ROOT, ARG_ROOT_UUID };
        static const struct option options[] = {
                { "image", required_argument, NULL, ARG_IMAGE },
                { "disk", required_argument, NULL, ARG_DISK },
                { "force", no_argument, NULL, ARG_FORCE },
                { "include-virtual", no_argument, NULL, ARG_VIRTUAL },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "reboot", no_argument, NULL, ARG_REBOOT },
                { "root", required_argument, NULL, ARG_ROOT },
                { "root-uuid", required_argument, NULL, ARG_ROOT_UUID },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_inventory_ struct inventory *inv = NULL;
        _cleanup_disk_plan_ struct disk_plan *plan = NULL;
        _cleanup_strv_free_ char **only = NULL;
        struct disk_filter filter = {};
        const char *image = NULL, *root = NULL, *root_uuid = NULL;
        bool force = false, dry_run = false, reboot = false;
        const struct disk *target = NULL;
        uint64_t size = 0;
        char sz[16], tsz[16];
        int c, r;

        (void)ctx;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_IMAGE:
                        image = optarg;
                        break;
                case ARG_DISK:
                        if (strv_push(&only, optarg) < 0)
                                return log_error_errno(-ENOMEM, "Out of memory");
                        break;
                case ARG_FORCE:
                        force = true;
                        break;
                case ARG_VIRTUAL:
                        filter.include_virtual = true;
                        break;
                case ARG_DRY_RUN:
                        dry_run = true;
                        break;
                case ARG_REBOOT:
                        reboot = true;
                        break;
                case ARG_ROOT:
                        root = optarg;
                        break;
                case ARG_ROOT_UUID:
                        root_uuid = optarg;
                        break;
                case 'h':
                        install_help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot install --help'.\n");
                        return 2;
                }
        }
        if (optind != argc || !image) {
                log_error("install: --image FILE is required. Try 'firstboot install --help'.");
                return 2;
        }
        if (force && !only) {
                log_error("install: --force needs --disk PATH: name the disk to overwrite.");
                return 2;
        }
        if (!root != !root_uuid) {
                log_error("install: --root and --root-uuid go together: the root's UUID is "
                          "the one the image's GRUB and fstab name.");
                return 2;
        }
        if (root && access(root, R_OK | X_OK) < 0)
                return log_error_errno(errno, "install: cannot read the root tree %s: %m", root);
        r = image_size(image, &size);
        if (r < 0)
                return r;
        r = install_config(only, force, &cfg);
        if (r < 0)
                return log_error_errno(r, "install: %m");
        filter.only = only;
        inv = calloc(1, sizeof *inv);
        if (!inv)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = inventory_probe_disks(inv, &filter);
        if (r < 0)
                return log_error_errno(r, "install: disk inventory failed: %m");
        r = disk_plan_compute(inv, cfg, &plan);
        if (r < 0)
                return log_error_errno(r, "install: disk planning failed: %m");

        for (size_t i = 0; i < plan->n_disks; i++) {
                const struct disk_choice *ch = &plan->disks[i];
                const struct disk *d = &inv->disks[ch->disk];

                if (ch->verdict == DISK_REFUSED) {
                        log_info("install: not %s: %s%s", d->path, ch->reason,
                                 !force && only_data_in_the_way(d)
                                         ? " (install --force --disk to overwrite it)"
                                         : "");
                        continue;
                }
                if (ch->verdict == DISK_REUSE) {
                        log_info("install: not %s: holds rainboot data (%s)", d->path,
                                 ch->reason);
                        continue;
                }
                if (d->size_bytes < size) {
                        log_info("install: not %s: %s is smaller than the image", d->path,
                                 format_bytes(d->size_bytes, sz));
                        continue;
                }
                if (!target || d->size_bytes < target->size_bytes ||
                    (d->size_bytes == target->size_bytes && strcmp(d->path, target->path) < 0))
                        target = d;
        }
        if (!target)
                return log_error_errno(-EBUSY, "install: no disk may be written (reasons "
                                       "above); nothing was changed");
        log_info("install: writing %s (%s) to %s (%s%s%s)%s", image, format_bytes(size, sz),
                 target->path, format_bytes(target->size_bytes, tsz),
                 target->model ? " " : "", target->model ? target->model : "",
                 dry_run ? ": dry run, nothing written" : "");
        if (dry_run)
                return 0;
        r = write_image(image, target, size);
        if (r >= 0 && root)
                r = write_root(target->path, root, root_uuid);
        if (r < 0)
                return r;
        log_info("install: done; the root filesystem grows to fill %s on its first boot",
                 target->path);
        if (reboot) {
                char *args[] = { "systemctl", "reboot", NULL };

                r = run_command(args, NULL);
                if (r != 0)
                        return log_error_errno(-EIO, "install: 'systemctl reboot' failed");
        }
        return 0;
}
