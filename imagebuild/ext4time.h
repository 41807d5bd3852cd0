/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Sets the inode change and access times of every file of TREE (the directory
 * `mkfs.ext4 -d` copied) in the ext4 at byte offset OFFSET of IMAGE to epoch, with
 * debugfs: mkfs.ext4 -d copies the source files' ctimes, which no tool can set, and their
 * atimes, which reading the build's own directories (readdir) moves. ret_n (may be NULL)
 * gets the number of files set. */
int ext4_set_times(const char *image, uint64_t offset, const char *tree, time_t epoch,
                   size_t *ret_n);
