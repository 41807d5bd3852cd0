/* SPDX-License-Identifier: MIT */
/* Streamed SHA-256 of files (libsodium), shared by imagebuild's bundle checks and the
 * bring-up's check of the offline images before they are pushed. */
#pragma once

#include <stdint.h>

/* SHA-256 of a regular file as lowercase hex; if copy_fd >= 0 the bytes are also written
 * there. -EBADF when path is not a regular file. */
int sha256_file(const char *path, int copy_fd, char ret_hex[static 65], uint64_t *ret_size);
