/* SPDX-License-Identifier: MIT */
/* firstboot disks plan|apply */
#include <getopt.h>
#include <stdio.h>

#include "commands.h"
#include "config.h"
#include "diskplan.h"
#include "log.h"
#include "util.h"

static void disks_help(void) {
        printf("Usage: firstboot [-c CONFIG] disks plan [--json] [--disk PATH]...\n"
               "       firstboot [-c CONFIG] disks apply [--root DIR] [--disk PATH]...\n"
               "\n"
               "plan   choose the disks for the data mount, the build cache and service\n"
               "       storage, with a reason for every disk; writes nothing.\n"
               "apply  carry the plan out: re-check each disk, GPT + one aligned partition\n"
               "       (libparted), ext4, and /etc/fstab by UUID (atomically).\n"
               "\n"
               "Options:\n"
               "      --json             plan as JSON\n"
               "      --disk PATH        consider only this disk (repeatable)\n"
               "      --include-virtual  consider loop, md, dm, zram devices too\n"
               "      --root DIR         write fstab and mount points under DIR\n"
               "  -h, --help             this text\n"
               "\n"
               "Safety: the system disk and boot medium are never written. A disk with a\n"
               "partition table or any signature is written only if disks.devices lists it\n"
               "and disks.wipe is force-listed; RAID/LVM members also need\n"
               "disks.force_members: true.\n");
}

int cmd_disks(const struct ctx *ctx, int argc, char **argv) {
        enum { ARG_JSON = 0x100, ARG_DISK, ARG_VIRTUAL, ARG_ROOT };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "disk", required_argument, NULL, ARG_DISK },
                { "include-virtual", no_argument, NULL, ARG_VIRTUAL },
                { "root", required_argument, NULL, ARG_ROOT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_inventory_ struct inventory *inv = NULL;
        _cleanup_disk_plan_ struct disk_plan *plan = NULL;
        _cleanup_strv_free_ char **only = NULL;
        struct disk_filter filter = {};
        const char *root = NULL, *verb;
        bool json = false, apply;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_DISK:
                        if (strv_push(&only, optarg) < 0)
                                return log_error_errno(-ENOMEM, "Out of memory");
                        break;
                case ARG_VIRTUAL:
                        filter.include_virtual = true;
                        break;
                case ARG_ROOT:
                        root = optarg;
                        break;
                case 'h':
                        disks_help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot disks --help'.\n");
                        return 2;
                }
        }
        if (optind + 1 != argc) {
                log_error("disks: expected exactly one of 'plan' or 'apply'. Try 'firstboot disks --help'.");
                return 2;
        }
        verb = argv[optind];
        if (!streq(verb, "plan") && !streq(verb, "apply")) {
                log_error("disks: unknown action '%s'; expected 'plan' or 'apply'.", verb);
                return 2;
        }
        apply = streq(verb, "apply");
        if (!apply && root) {
                log_error("disks plan: --root only applies to 'disks apply'.");
                return 2;
        }
        if (apply && json) {
                log_error("disks apply: --json only applies to 'disks plan'.");
                return 2;
        }
        filter.only = only;

        r = ctx_load_config(ctx, NULL, &cfg);
        if (r < 0)
                return r;
        inv = calloc(1, sizeof *inv);
        if (!inv)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = inventory_probe_disks(inv, &filter);
        if (r < 0)
                return log_error_errno(r, "Disk inventory failed: %m");
        r = disk_plan_compute(inv, cfg, &plan);
        if (r < 0)
                return log_error_errno(r, "Disk planning failed: %m");

        if (json) {
                _cleanup_free_ char *s = NULL;

                r = disk_plan_to_json(plan, inv, &s);
                if (r < 0)
                        return log_error_errno(r, "Cannot format the plan: %m");
                puts(s);
                return 0;
        }
        disk_plan_print(plan, inv, stdout);
        if (!apply)
                return 0;
        fflush(stdout);
        r = disk_plan_apply(plan, inv, cfg, &(struct apply_options){ .root = root });
        if (r < 0)
                return log_error_errno(r, "disks apply: stopped; nothing was added to fstab. "
                                          "Fix the problem above and run it again: finished "
                                          "disks are kept.");
        log_info("disks apply: done");
        return 0;
}
