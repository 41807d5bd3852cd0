/* SPDX-License-Identifier: MIT */
/* The discovery daemon: one thread, epoll over the multicast socket, a timerfd for the
 * jittered announce tick and a signalfd. It keeps the peer table, drives formation,
 * hands out the cluster secrets and welcomes late joiners. */
#pragma once

#include <stdbool.h>

#include "config.h"

struct discover_opts {
        const char *state_dir;        /* /var/lib/rainboot */
        const char *machine_id_path;  /* /etc/machine-id */
        bool until_formed;            /* exit 0 once every member committed and holds secrets */
        unsigned timeout_s;           /* 0: none; else exit 1 if not formed by then */
        bool reset;                   /* release a stuck lock once peers were heard */
        bool json;                    /* print the plan as JSON when formed */
};

/* Returns 0 when formed (with until_formed) or on SIGTERM/SIGINT, -ETIMEDOUT on timeout,
 * another -errno on failure (logged). */
int discover_run(const struct config *cfg, const struct discover_opts *o);
