/* SPDX-License-Identifier: MIT */
/* firstboot discover */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "config.h"
#include "discover.h"
#include "log.h"
#include "util.h"

static void discover_help(void) {
        printf("Usage: firstboot [-c CONFIG] discover [--until-formed] [--timeout S] [--json]\n"
               "                                    [--state-dir DIR] [--machine-id-file F]\n"
               "                                    [--reset]\n"
               "\n"
               "Find the peers of this cluster over sealed multicast, agree on one plan\n"
               "(propose, lock, commit), hand out the cluster secrets, and keep welcoming late\n"
               "joiners. Runs until SIGTERM unless --until-formed.\n"
               "\n"
               "      --until-formed       exit 0 once every member committed and holds the\n"
               "                           secrets; print the plan\n"
               "      --timeout S          give up after S seconds (exit 1)\n"
               "      --json               print the plan as JSON\n"
               "      --state-dir DIR      where the lock, plan and secrets are kept\n"
               "                           (default /var/lib/rainboot)\n"
               "      --machine-id-file F  node identity (default /etc/machine-id)\n"
               "      --reset              release a stuck lock (a member died between lock\n"
               "                           and commit); refused once any node committed\n"
               "  -h, --help               this text\n");
}

int cmd_discover(const struct ctx *ctx, int argc, char **argv) {
        enum { ARG_UNTIL = 0x100, ARG_TIMEOUT, ARG_JSON, ARG_STATE, ARG_MID, ARG_RESET };
        static const struct option options[] = {
                { "until-formed", no_argument, NULL, ARG_UNTIL },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "json", no_argument, NULL, ARG_JSON },
                { "state-dir", required_argument, NULL, ARG_STATE },
                { "machine-id-file", required_argument, NULL, ARG_MID },
                { "reset", no_argument, NULL, ARG_RESET },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct discover_opts o = { .state_dir = "/var/lib/rainboot",
                                   .machine_id_path = "/etc/machine-id" };
        _cleanup_config_ struct config *cfg = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_UNTIL:
                        o.until_formed = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);

                        if (!*optarg || *end || v == 0 || v > 86400) {
                                log_error("--timeout: '%s' is not a number of seconds (1..86400)", optarg);
                                return 2;
                        }
                        o.timeout_s = (unsigned)v;
                        break;
                }
                case ARG_JSON:
                        o.json = true;
                        break;
                case ARG_STATE:
                        o.state_dir = optarg;
                        break;
                case ARG_MID:
                        o.machine_id_path = optarg;
                        break;
                case ARG_RESET:
                        o.reset = true;
                        break;
                case 'h':
                        discover_help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot discover --help'.\n");
                        return 2;
                }
        }
        if (optind != argc) {
                log_error("discover: unexpected argument '%s'", argv[optind]);
                return 2;
        }
        r = ctx_load_config(ctx, NULL, &cfg);
        if (r < 0)
                return r;
        r = discover_run(cfg, &o);
        return r < 0 ? 1 : 0;
}
