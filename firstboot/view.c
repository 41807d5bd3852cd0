/* SPDX-License-Identifier: MIT */
#include "view.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

const char *node_state_to_string(enum node_state s) {
        static const char *const names[] = {
                [NODE_DISCOVERING] = "discovering",
                [NODE_PROPOSING] = "proposing",
                [NODE_LOCKED] = "locked",
                [NODE_COMMITTED] = "committed",
        };
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "unknown";
}

int node_id_cmp(const uint8_t a[NODE_ID_LEN], const uint8_t b[NODE_ID_LEN]) {
        return memcmp(a, b, NODE_ID_LEN);
}

void node_id_to_hex(const uint8_t id[NODE_ID_LEN], char out[2 * NODE_ID_LEN + 1]) {
        for (size_t i = 0; i < NODE_ID_LEN; i++)
                snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int node_id_from_hex(const char *hex, uint8_t ret[NODE_ID_LEN]) {
        uint8_t id[NODE_ID_LEN];

        if (strlen(hex) != 2 * NODE_ID_LEN)
                return -EINVAL;
        for (size_t i = 0; i < NODE_ID_LEN; i++) {
                int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                id[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, id, NODE_ID_LEN);
        return 0;
}
