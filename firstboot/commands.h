/* SPDX-License-Identifier: MIT */
/* Subcommands. Each parses its own options (getopt_long, argv[0] = subcommand name) and
 * returns 0 on success, a positive exit code (1 failed check, 2 usage), or -errno after
 * logging (exit 1). */
#pragma once

#include <stdbool.h>

/* Options parsed by main before the subcommand; the only global state is these. */
struct ctx {
        const char *config_path;   /* --config, default /etc/rainboot/cluster.yaml */
        const char *cmdline_path;  /* --cmdline, default /proc/cmdline; "" = none */
};

int cmd_config(const struct ctx *ctx, int argc, char **argv);
int cmd_inventory(const struct ctx *ctx, int argc, char **argv);
int cmd_disks(const struct ctx *ctx, int argc, char **argv);
int cmd_plan(const struct ctx *ctx, int argc, char **argv);
int cmd_discover(const struct ctx *ctx, int argc, char **argv);
int cmd_install(const struct ctx *ctx, int argc, char **argv);
int cmd_apply(const struct ctx *ctx, int argc, char **argv);
int cmd_status(const struct ctx *ctx, int argc, char **argv);
int cmd_db(const struct ctx *ctx, int argc, char **argv);

/* Load --config, apply --cmdline overrides, print every problem. Shared by commands. */
struct config;
int ctx_load_config(const struct ctx *ctx, const char *path_override, struct config **ret);
