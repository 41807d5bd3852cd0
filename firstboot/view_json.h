/* SPDX-License-Identifier: MIT */
/* A view as JSON: fixtures, `firstboot plan --view FILE`, and the committed view kept
 * under the state directory. Schema (version 1):
 *   {"version": 1, "nodes": [{"id": "<32 hex>", "hostname": "node-1",
 *     "addresses": ["192.0.2.11"], "cpus": 8, "memory_bytes": 17179869184,
 *     "disks": [{"size_bytes": 214748364800, "ssd": true}],
 *     "nics": [{"mac": "52:54:00:00:00:01", "up": true}],
 *     "pinned_roles": ["master"],
 *     "boot_id": "<32 hex>", "box_pk": "<64 hex>", "state": "committed", "digest": "<64 hex>"}]}
 * id, hostname, cpus and memory_bytes are required; the arrays default to empty; the last
 * four (per-boot and formation data) are optional and written only on request. Unknown
 * keys, wrong types, out-of-range values and duplicate ids are errors. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "view.h"

/* Frees v->nodes and empties v. */
void view_done(struct view *v);

/* with_runtime: also write boot_id, box_pk, state and digest. */
int view_to_json(const struct view *v, bool with_runtime, char **ret);

/* Parse text (len bytes, need not be NUL-terminated). The nodes come back sorted by id.
 * On -EINVAL, *ret_error (if ret_error is not NULL) gets a message naming `name`, the node
 * index and the field: "view.json: nodes[2].memory_bytes: expected an integer >= 0". */
int view_from_json(const char *text, size_t len, const char *name, struct view *ret,
                   char **ret_error);
/* Same for a file; -errno if it cannot be read (no message then: the caller names it). */
int view_from_json_file(const char *path, struct view *ret, char **ret_error);
