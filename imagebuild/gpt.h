/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* The system disk's layout: GPT, BIOS boot 1-2 MiB, ESP, root to the last whole MiB. */
#define ESP_SIZE_MIB 128
#define BIOS_BOOT_START_MIB 1
#define BIOS_BOOT_END_MIB 2

/* Partitions the disk image file RAW with libparted (a fresh GPT: bios-boot, esp, root). */
int disk_partition(const char *raw);

/* The GUID ("what" = "disk" or a partition's name) derived from seed, as RFC 4122
 * version 4 bytes in GPT's on-disk order. */
void gpt_guid_derive(const char *seed, const char *what, uint8_t ret[16]);
/* GPT's on-disk GUID bytes as text, the way sgdisk and blkid print it (uppercase). */
void gpt_guid_format(const uint8_t g[16], char ret[static 37]);

/* Replaces the random disk GUID and partition GUIDs libparted wrote into RAW's GPT by
 * ones derived from seed (the disk's by "disk", each partition's by its name), in the
 * primary and the backup header and entry array, with their CRC32s, so identical inputs
 * give identical disks. */
int gpt_derive_guids(const char *raw, const char *seed);
