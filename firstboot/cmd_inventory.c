/* SPDX-License-Identifier: MIT */
/* `firstboot inventory`: what this node has, as text or JSON. Read-only. */
#include <getopt.h>

#include "commands.h"
#include "inventory.h"
#include "log.h"
#include "util.h"

static void inventory_help(FILE *f) {
        fprintf(f,
                "Usage: firstboot inventory [--json] [--all] [--include-virtual] [--disk PATH]...\n"
                "\n"
                "Print this node's disks, NICs, CPUs and memory. Nothing is written.\n"
                "\n"
                "      --json             machine-readable output\n"
                "      --all              also show virtual NICs (loopback, bridges, veth, ...)\n"
                "      --include-virtual  also show loop, ram, zram, dm and md disks\n"
                "      --disk PATH        probe exactly this whole-disk device (repeatable)\n"
                "  -h, --help             this text\n");
}

int cmd_inventory(const struct ctx *ctx, int argc, char **argv) {
        enum { ARG_JSON = 0x100, ARG_ALL, ARG_INCLUDE_VIRTUAL, ARG_DISK };
        static const struct option options[] = {
                {"json", no_argument, NULL, ARG_JSON},
                {"all", no_argument, NULL, ARG_ALL},
                {"include-virtual", no_argument, NULL, ARG_INCLUDE_VIRTUAL},
                {"disk", required_argument, NULL, ARG_DISK},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_strv_free_ char **only = NULL;
        _cleanup_inventory_ struct inventory *inv = NULL;
        struct disk_filter filter = {};
        bool json = false, all = false;
        int c, r;

        (void)ctx;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_ALL:
                        all = true;
                        break;
                case ARG_INCLUDE_VIRTUAL:
                        filter.include_virtual = true;
                        break;
                case ARG_DISK:
                        r = strv_push(&only, optarg);
                        if (r < 0)
                                return log_error_errno(r, "Failed to parse --disk: %m");
                        break;
                case 'h':
                        inventory_help(stdout);
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot inventory --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                log_error("Unexpected argument '%s'. Try 'firstboot inventory --help'.",
                          argv[optind]);
                return 2;
        }
        filter.only = only;

        /* Disk probes name the device at fault themselves; host and NIC probes log only
         * at debug level, so say here that the command as a whole failed. */
        r = inventory_collect(&filter, &inv);
        if (r < 0)
                return log_error_errno(r, "Failed to collect the inventory: %m");

        if (json) {
                _cleanup_free_ char *s = NULL;

                r = inventory_to_json(inv, all, &s);
                if (r < 0)
                        return log_error_errno(r, "Failed to format the inventory as JSON: %m");
                puts(s);
        } else
                inventory_print(inv, all, stdout);
        if (fflush(stdout) != 0)
                return log_error_errno(-errno, "Failed to write the inventory: %m");
        return 0;
}
