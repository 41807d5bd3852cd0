/* SPDX-License-Identifier: MIT */
/* firstboot config check|show [FILE] */
#include <getopt.h>
#include <stdio.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "util.h"

static void help(FILE *f) {
        fprintf(f,
                "Usage: firstboot [OPTIONS] config check [FILE]\n"
                "       firstboot [OPTIONS] config show [FILE]\n"
                "\n"
                "check  validate the cluster config and print every problem found\n"
                "       (exit 0 if valid, 1 if not)\n"
                "show   print the effective config as YAML: defaults filled in, kernel\n"
                "       command-line overrides (--cmdline) applied, secrets redacted\n"
                "\n"
                "FILE defaults to --config (/etc/rainboot/cluster.yaml). Both apply the\n"
                "rainboot.* keys of --cmdline (default /proc/cmdline; --cmdline \"\" for none).\n");
}

static int verb_check(const struct ctx *ctx, const char *path) {
        _cleanup_config_ struct config *c = NULL;
        int r;

        r = ctx_load_config(ctx, path, &c);
        if (r == -ENOMEM)
                return log_error_errno(r, "Out of memory.");
        if (r < 0)
                return 1;
        printf("%s: ok (cluster %s, %u node%s)\n", path ? path : ctx->config_path,
               c->cluster_name, c->expected_nodes, c->expected_nodes == 1 ? "" : "s");
        return 0;
}

static int verb_show(const struct ctx *ctx, const char *path) {
        _cleanup_config_ struct config *c = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        r = ctx_load_config(ctx, path, &c);
        if (r == -ENOMEM)
                return log_error_errno(r, "Out of memory.");
        if (r < 0)
                return 1;
        r = config_format(c, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to format the config: %m");
        fputs(text, stdout);
        return fflush(stdout) == 0 ? 0 : log_error_errno(-errno, "Failed to write: %m");
}

int cmd_config(const struct ctx *ctx, int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const struct {
                const char *name;
                int (*run)(const struct ctx *ctx, const char *path);
        } verbs[] = {
                { "check", verb_check },
                { "show", verb_show },
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot config --help'.\n");
                        return 2;
                }
        }
        if (optind >= argc) {
                log_error("config: missing verb, check or show. Try 'firstboot config --help'.");
                return 2;
        }
        if (argc - optind > 2) {
                log_error("config %s: too many arguments; give at most one FILE.", argv[optind]);
                return 2;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].run(ctx, argc - optind == 2 ? argv[optind + 1] : NULL);
        log_error("config: unknown verb '%s'; use check or show. Try 'firstboot config --help'.",
                  argv[optind]);
        return 2;
}
