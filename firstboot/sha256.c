/* SPDX-License-Identifier: MIT */
#include "sha256.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

#include "util.h"

#define CHUNK (1 << 20)

int sha256_file(const char *path, int copy_fd, char ret_hex[static 65], uint64_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        crypto_hash_sha256_state st;
        uint8_t digest[crypto_hash_sha256_BYTES];
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t size = 0;
        struct stat s;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &s) < 0)
                return -errno;
        if (!S_ISREG(s.st_mode))
                return -EBADF;
        buf = malloc(CHUNK);
        if (!buf)
                return -ENOMEM;
        crypto_hash_sha256_init(&st);
        for (;;) {
                ssize_t n = read(fd, buf, CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
                size += (uint64_t)n;
                for (ssize_t w = 0; copy_fd >= 0 && w < n;) {
                        ssize_t k = write(copy_fd, buf + w, (size_t)(n - w));

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return -errno;
                        w += k;
                }
        }
        crypto_hash_sha256_final(&st, digest);
        hex_encode(digest, sizeof digest, ret_hex);
        if (ret_size)
                *ret_size = size;
        return 0;
}
