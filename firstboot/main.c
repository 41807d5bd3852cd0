/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "util.h"

#define FIRSTBOOT_VERSION "0.1.0"

static const struct {
        const char *name;
        int (*run)(const struct ctx *ctx, int argc, char **argv);
        const char *args, *help;
} commands[] = {
        { "config", cmd_config, "check|show FILE", "validate or print the cluster config" },
        { "inventory", cmd_inventory, "[--json] [--all]", "disks, NICs, CPUs and memory" },
        { "disks", cmd_disks, "plan|apply", "choose and prepare the data disks" },
        { "discover", cmd_discover, "[--until-formed]", "find the peers, agree on one plan" },
        { "plan", cmd_plan, "--explain|--steps", "roles of every node and why; what apply would do" },
        { "apply", cmd_apply, "[--supervisor KIND]", "bring up this node's services" },
        { "status", cmd_status, "[--json]", "node, roles, peers, step states" },
        { "db", cmd_db, "status|promote", "MySQL members; promote a replica" },
        { "install", cmd_install, "--image FILE", "write the system to a safe disk" },
};

static void help(FILE *f) {
        fprintf(f,
                "Usage: firstboot [OPTIONS] COMMAND [ARGS]\n"
                "\n"
                "First-boot agent of rainboot: inventories this node, plans its disks and\n"
                "forms a Rainbond cluster with its peers.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-10s %-20s %s\n", commands[i].name, commands[i].args,
                        commands[i].help);
        fprintf(f,
                "\n"
                "Options:\n"
                "  -c, --config FILE   cluster config (default /etc/rainboot/cluster.yaml)\n"
                "      --cmdline FILE  kernel command line with rainboot.* overrides\n"
                "                      (default /proc/cmdline; \"\" for none)\n"
                "  -v, --verbose       debug logging\n"
                "  -q, --quiet         errors only\n"
                "  -h, --help          this text; COMMAND --help for a command\n"
                "      --version       print the version\n");
}

int ctx_load_config(const struct ctx *ctx, const char *path_override, struct config **ret) {
        const char *path = path_override ? path_override : ctx->config_path;
        _cleanup_config_ struct config *c = NULL;
        struct diag d = { 0 };
        int r;

        r = config_parse_file(path, &c, &d);
        if (r >= 0 && ctx->cmdline_path && *ctx->cmdline_path)
                r = config_apply_cmdline_file(c, ctx->cmdline_path, &d);
        for (size_t i = 0; i < d.n; i++)
                log_error("%s", d.msgs[i]);
        diag_clear(&d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int main(int argc, char **argv) {
        enum { ARG_VERSION = 0x100, ARG_CMDLINE };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "verbose", no_argument, NULL, 'v' },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        struct ctx ctx = {
                .config_path = "/etc/rainboot/cluster.yaml",
                .cmdline_path = "/proc/cmdline",
        };
        int c;

        /* '+': stop at the subcommand; its options are its own. */
        while ((c = getopt_long(argc, argv, "+c:vqh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        ctx.config_path = optarg;
                        break;
                case ARG_CMDLINE:
                        ctx.cmdline_path = optarg;
                        break;
                case 'v':
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case 'q':
                        log_set_max_level(LOG_LEVEL_ERR);
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_VERSION:
                        printf("firstboot %s\n", FIRSTBOOT_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot --help'.\n");
                        return 2;
                }
        }
        if (optind >= argc) {
                help(stderr);
                return 2;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (streq(argv[optind], commands[i].name)) {
                        int first = optind, r;

                        optind = 0; /* glibc: fully re-initialise getopt for the subcommand */
                        r = commands[i].run(&ctx, argc - first, argv + first);
                        /* < 0: failure already logged; > 0: the command's own exit code. */
                        return r < 0 ? 1 : r;
                }
        }
        log_error("Unknown command '%s'. Try 'firstboot --help'.", argv[optind]);
        return 2;
}
