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
        hex_encode(id, NODE_ID_LEN, out);
}

int node_id_from_hex(const char *hex, uint8_t ret[NODE_ID_LEN]) {
        return hex_decode(hex, ret, NODE_ID_LEN);
}
