/* SPDX-License-Identifier: MIT */
/* The image spec: one YAML file (libyaml) describing what imagebuild puts into an image
 * and which outputs it writes. Relative paths are resolved against the spec's directory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h" /* struct diag */

enum image_output {
        OUTPUT_ISO = 1u << 0,
        OUTPUT_QCOW2 = 1u << 1,
};

struct image_spec {
        char *path;             /* the spec file, for messages */
        char *name;             /* image name: file names of the outputs */
        char *suite;            /* Debian suite, e.g. bookworm */
        char **packages;        /* extra packages, NULL-terminated, sorted, unique */
        char *overlays;         /* absolute directory, copied over the root filesystem */
        char *bundle;           /* absolute offline bundle directory, or NULL */
        char *cluster_config;   /* absolute path embedded as /etc/rainboot/cluster.yaml */
        char *kernel_cmdline;   /* appended to every boot entry */
        uint64_t disk_size;     /* qcow2 virtual size, bytes */
        unsigned outputs;       /* enum image_output bits */
};

struct image_spec *image_spec_free(struct image_spec *s);
static inline void image_spec_freep(struct image_spec **s) { image_spec_free(*s); }
#define _cleanup_image_spec_ __attribute__((cleanup(image_spec_freep)))

/* Parse and validate. base_dir resolves relative paths (NULL: the current directory).
 * Every problem is appended to diag as "name:line:col: key: problem"; returns -EINVAL
 * when there was any. Does not look at the file system. */
int image_spec_parse_string(const char *buf, size_t len, const char *name, const char *base_dir,
                            struct image_spec **ret, struct diag *diag);
int image_spec_parse_file(const char *path, struct image_spec **ret, struct diag *diag);

/* Checks against the file system: overlays is a directory, cluster_config parses as a
 * firstboot config, the bundle directory has a manifest that verifies. */
int image_spec_check_files(const struct image_spec *s, struct diag *diag);

/* "4G", "512M", "2GiB", "1073741824" -> bytes. */
int parse_size(const char *s, uint64_t *ret);

/* Debian package name rules (policy 5.6.7). */
bool package_name_valid(const char *s);
