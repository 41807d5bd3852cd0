/* SPDX-License-Identifier: MIT */
/* The system disk's partition table: libparted makes it, then (with SOURCE_DATE_EPOCH)
 * its random GUIDs are replaced by derived ones. libparted has no API to set them, so the
 * GPT is rewritten in place: both headers, both entry arrays, their CRC32s. */
#include "gpt.h"

#include <endian.h>
#include <fcntl.h>
#include <parted/parted.h>
#include <sodium.h>

#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(PedDevice *, ped_device_destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(PedDisk *, ped_disk_destroy);

static int add_partition(PedDisk *disk, PedSector start, PedSector end, const char *name,
                         const PedFileSystemType *fs, PedPartitionFlag flag) {
        PedPartition *part = ped_partition_new(disk, PED_PARTITION_NORMAL, fs, start, end);
        PedConstraint *c;
        int ok;

        if (!part)
                return -ENOMEM;
        c = ped_constraint_exact(&part->geom);
        ok = c && ped_disk_add_partition(disk, part, c);
        ped_constraint_destroy(c);
        if (!ok) {
                ped_partition_destroy(part);
                return -EINVAL;
        }
        ped_partition_set_name(part, name);
        if (flag && !ped_partition_set_flag(part, flag, 1))
                return -EINVAL;
        return 0;
}

/* GPT: BIOS boot (GRUB's core.img on a GPT disk), ESP, root to the end. */
int disk_partition(const char *raw) {
        _cleanup_(ped_device_destroyp) PedDevice *dev = NULL;
        _cleanup_(ped_disk_destroyp) PedDisk *disk = NULL;
        PedSector mib, last;
        int r;

        dev = ped_device_get(raw);
        if (!dev)
                return -EIO;
        disk = ped_disk_new_fresh(dev, ped_disk_type_get("gpt"));
        if (!disk)
                return -EIO;
        mib = (1024 * 1024) / dev->sector_size;
        /* GPT's backup header takes the last 33 sectors: stop at the last whole MiB. */
        last = (dev->length - 34) / mib * mib - 1;
        r = add_partition(disk, BIOS_BOOT_START_MIB * mib, BIOS_BOOT_END_MIB * mib - 1,
                          "bios-boot", NULL, PED_PARTITION_BIOS_GRUB);
        if (r >= 0)
                r = add_partition(disk, BIOS_BOOT_END_MIB * mib,
                                  (BIOS_BOOT_END_MIB + ESP_SIZE_MIB) * mib - 1, "esp",
                                  ped_file_system_type_get("fat32"), PED_PARTITION_ESP);
        if (r >= 0)
                r = add_partition(disk, (BIOS_BOOT_END_MIB + ESP_SIZE_MIB) * mib, last, "root",
                                  ped_file_system_type_get("ext4"), 0);
        if (r < 0)
                return r;
        if (!ped_disk_commit_to_dev(disk))
                return -EIO;
        return 0;
}

void gpt_guid_derive(const char *seed, const char *what, uint8_t ret[16]) {
        crypto_hash_sha256_state st;
        uint8_t d[crypto_hash_sha256_BYTES];

        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const uint8_t *)"rainboot-gpt-guid\n", 18);
        crypto_hash_sha256_update(&st, (const uint8_t *)seed, strlen(seed) + 1);
        crypto_hash_sha256_update(&st, (const uint8_t *)what, strlen(what));
        crypto_hash_sha256_final(&st, d);
        /* On disk the first three fields are little-endian: the version is in byte 7. */
        d[7] = (d[7] & 0x0f) | 0x40;
        d[8] = (d[8] & 0x3f) | 0x80;
        memcpy(ret, d, 16);
}

void gpt_guid_format(const uint8_t g[16], char ret[static 37]) {
        snprintf(ret, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
                 g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
                 g[13], g[14], g[15]);
}

/* CRC-32 as GPT (and zlib) define it: reflected 0x04C11DB7, inverted in and out. */
static uint32_t crc32_gpt(const uint8_t *p, size_t n) {
        uint32_t c = 0xffffffffu;

        for (size_t i = 0; i < n; i++) {
                c ^= p[i];
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0xedb88320u & -(c & 1u));
        }
        return ~c;
}

#define GPT_HDR_CRC 16
#define GPT_HDR_MY_LBA 24
#define GPT_HDR_ALT_LBA 32
#define GPT_HDR_DISK_GUID 56
#define GPT_HDR_ENTRIES_LBA 72
#define GPT_HDR_N_ENTRIES 80
#define GPT_HDR_ENTRY_SIZE 84
#define GPT_HDR_ENTRIES_CRC 88
#define GPT_ENTRY_GUID 16
#define GPT_ENTRY_NAME 56

static uint32_t get32(const uint8_t *p) {
        uint32_t v;

        memcpy(&v, p, 4);
        return le32toh(v);
}

static uint64_t get64(const uint8_t *p) {
        uint64_t v;

        memcpy(&v, p, 8);
        return le64toh(v);
}

static void put32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, 4);
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
        ssize_t k = pread(fd, buf, n, (off_t)off);

        if (k < 0)
                return -errno;
        return (size_t)k == n ? 0 : -EIO;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
        ssize_t k = pwrite(fd, buf, n, (off_t)off);

        if (k < 0)
                return -errno;
        return (size_t)k == n ? 0 : -EIO;
}

/* Reads and checks the header at lba (signature, size, CRC). */
static int read_header(int fd, uint64_t lba, uint8_t hdr[static 512], uint32_t *ret_size) {
        uint32_t size, crc;
        int r;

        r = pread_all(fd, hdr, 512, lba * 512);
        if (r < 0)
                return r;
        size = get32(hdr + 12);
        if (memcmp(hdr, "EFI PART", 8) != 0 || size < 92 || size > 512 ||
            get64(hdr + GPT_HDR_MY_LBA) != lba)
                return -EBADMSG;
        crc = get32(hdr + GPT_HDR_CRC);
        put32(hdr + GPT_HDR_CRC, 0);
        if (crc32_gpt(hdr, size) != crc)
                return -EBADMSG;
        *ret_size = size;
        return 0;
}

static int write_header(int fd, uint64_t lba, uint8_t hdr[static 512], uint32_t size,
                        const uint8_t disk_guid[16], uint32_t entries_crc) {
        memcpy(hdr + GPT_HDR_DISK_GUID, disk_guid, 16);
        put32(hdr + GPT_HDR_ENTRIES_CRC, entries_crc);
        put32(hdr + GPT_HDR_CRC, 0);
        put32(hdr + GPT_HDR_CRC, crc32_gpt(hdr, size));
        return pwrite_all(fd, hdr, 512, lba * 512);
}

/* The partition name (UTF-16LE on disk; ours are ASCII) as the GUID's "what". */
static void entry_name(const uint8_t *e, size_t entry_size, char ret[static 37]) {
        size_t i = 0;

        for (; i < 36 && GPT_ENTRY_NAME + 2 * i + 1 < entry_size; i++) {
                uint16_t c = (uint16_t)(e[GPT_ENTRY_NAME + 2 * i] |
                                        e[GPT_ENTRY_NAME + 2 * i + 1] << 8);

                if (c == 0)
                        break;
                ret[i] = c < 0x80 ? (char)c : '?';
        }
        ret[i] = 0;
}

int gpt_derive_guids(const char *raw, const char *seed) {
        _cleanup_close_ int fd = open(raw, O_RDWR | O_CLOEXEC);
        _cleanup_free_ uint8_t *entries = NULL;
        uint8_t hdr[512], bak[512], disk_guid[16];
        uint32_t hdr_size, bak_size, n, esize, crc;
        uint64_t alt, len;
        int r;

        if (fd < 0)
                return -errno;
        /* A disk image file: 512-byte sectors, as libparted made it. */
        r = read_header(fd, 1, hdr, &hdr_size);
        if (r < 0)
                return r;
        n = get32(hdr + GPT_HDR_N_ENTRIES);
        esize = get32(hdr + GPT_HDR_ENTRY_SIZE);
        if (esize < 128 || esize % 8 || n == 0 || n > 1024)
                return -EBADMSG;
        len = (uint64_t)n * esize;
        entries = malloc(len);
        if (!entries)
                return -ENOMEM;
        r = pread_all(fd, entries, len, get64(hdr + GPT_HDR_ENTRIES_LBA) * 512);
        if (r < 0)
                return r;
        if (crc32_gpt(entries, len) != get32(hdr + GPT_HDR_ENTRIES_CRC))
                return -EBADMSG;
        alt = get64(hdr + GPT_HDR_ALT_LBA);
        r = read_header(fd, alt, bak, &bak_size);
        if (r < 0)
                return r;
        if (get32(bak + GPT_HDR_N_ENTRIES) != n || get32(bak + GPT_HDR_ENTRY_SIZE) != esize)
                return -EBADMSG;

        for (uint32_t i = 0; i < n; i++) {
                uint8_t *e = entries + (size_t)i * esize;
                static const uint8_t unused[16];
                char name[37], what[64];

                if (memcmp(e, unused, 16) == 0)
                        continue;
                entry_name(e, esize, name);
                /* Unnamed partitions by their number. */
                if (name[0])
                        snprintf(what, sizeof what, "partition %s", name);
                else
                        snprintf(what, sizeof what, "partition #%u", i + 1);
                gpt_guid_derive(seed, what, e + GPT_ENTRY_GUID);
        }
        gpt_guid_derive(seed, "disk", disk_guid);
        crc = crc32_gpt(entries, len);
        r = pwrite_all(fd, entries, len, get64(hdr + GPT_HDR_ENTRIES_LBA) * 512);
        if (r >= 0)
                r = pwrite_all(fd, entries, len, get64(bak + GPT_HDR_ENTRIES_LBA) * 512);
        if (r >= 0)
                r = write_header(fd, 1, hdr, hdr_size, disk_guid, crc);
        if (r >= 0)
                r = write_header(fd, alt, bak, bak_size, disk_guid, crc);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        return r;
}
