/* SPDX-License-Identifier: MIT */
/* The offline bundle: a directory of artifacts (OCI archives, binaries, Helm charts, .debs)
 * with a manifest, DIR/manifest.json, naming each one with its kind and SHA-256:
 *
 *   { "version": 1,
 *     "artifacts": [ { "name": "busybox", "kind": "oci-archive",
 *                      "file": "images/busybox.tar", "size": 1234,
 *                      "sha256": "<64 lowercase hex digits>" } ] }
 *
 * "file" is relative to DIR and stays inside it. Names and files are unique. */
#pragma once

#include <stdint.h>

#include "config.h" /* struct diag */
#include "sha256.h"   /* sha256_file(), moved to firstboot/ for the bring-up */

#define BUNDLE_MANIFEST "manifest.json"

enum bundle_kind { KIND_OCI_ARCHIVE, KIND_BINARY, KIND_CHART, KIND_DEB, _KIND_MAX };
const char *bundle_kind_to_string(enum bundle_kind k);
int bundle_kind_from_string(const char *s); /* enum bundle_kind or -EINVAL */

struct bundle_item {
        char *name;
        enum bundle_kind kind;
        char *file;       /* relative to the bundle directory */
        uint64_t size;
        char sha256[65];  /* lowercase hex */
};

struct bundle {
        char *dir;
        char *manifest;   /* DIR/manifest.json, for messages */
        struct bundle_item *items;
        size_t n_items;
};

struct bundle *bundle_free(struct bundle *b);
static inline void bundle_freep(struct bundle **b) { bundle_free(*b); }
#define _cleanup_bundle_ __attribute__((cleanup(bundle_freep)))

/* Reads and checks DIR/manifest.json (structure, kinds, hashes' syntax, unique names and
 * files, paths inside DIR). Problems go to diag, each naming the manifest; -EINVAL. */
int bundle_load(const char *dir, struct bundle **ret, struct diag *diag);
/* The same from manifest text (text[size] must be NUL); dir names the bundle. */
int bundle_parse(const char *dir, const char *text, size_t size, struct bundle **ret,
                 struct diag *diag);

/* Every artifact exists, is a regular file, and has the size and SHA-256 the manifest
 * says. Each problem names the file; returns -EINVAL if there was any. */
int bundle_verify(const struct bundle *b, struct diag *diag);

/* Adds FILE (inside DIR) to DIR/manifest.json, or updates the entry of the same name,
 * creating the manifest if needed; written atomically. name NULL: FILE's base name. */
int bundle_add(const char *dir, const char *file, enum bundle_kind kind, const char *name,
               struct diag *diag);

/* Copies every artifact to dest_dir/<file>, hashing while copying, and fails (naming the
 * file) if the copy's hash differs from the manifest: the image carries exactly what was
 * verified. Writes dest_dir/../bundle.json, the manifest. */
int bundle_install(const struct bundle *b, const char *dest_dir, const char *manifest_dest,
                   struct diag *diag);

/* Manifest text (sorted by name, pretty-printed). */
int bundle_format(const struct bundle *b, char **ret);
