/* SPDX-License-Identifier: MIT */
/* Host facts for the inventory: hostname, online CPUs, installed memory. */
#include "inventory.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int meminfo_parse_total(const char *text, uint64_t *ret_bytes) {
        static const char key[] = "MemTotal:";
        const char *p = text;
        unsigned long long v = 0;

        for (;;) {
                if (startswith(p, key))
                        break;
                p = strchr(p, '\n');
                if (!p)
                        return -ENODATA;
                p++;
        }
        p += sizeof key - 1;
        while (*p == ' ' || *p == '\t')
                p++;
        if (!isdigit((unsigned char)*p))
                return -EBADMSG;
        for (; isdigit((unsigned char)*p); p++)
                if (__builtin_mul_overflow(v, 10u, &v) ||
                    __builtin_add_overflow(v, (unsigned)(*p - '0'), &v))
                        return -ERANGE;
        while (*p == ' ' || *p == '\t')
                p++;
        /* The kernel has always printed "kB" (meaning KiB); a bare number would be bytes. */
        if (startswith(p, "kB")) {
                if (__builtin_mul_overflow(v, 1024u, &v))
                        return -ERANGE;
                p += 2;
        }
        while (*p == ' ' || *p == '\t' || *p == '\r')
                p++;
        if (*p != '\n' && *p != '\0')
                return -EBADMSG;
        if (v == 0)
                return -EBADMSG;
        *ret_bytes = v;
        return 0;
}

int inventory_probe_host(struct inventory *inv) {
        char name[HOST_NAME_MAX + 1] = {};
        _cleanup_free_ char *meminfo = NULL, *hostname = NULL;
        uint64_t mem;
        long cpus;
        int r;

        if (gethostname(name, sizeof name - 1) < 0)
                return log_debug_errno(errno, "gethostname() failed: %m");
        hostname = strdup(name);
        if (!hostname)
                return -ENOMEM;

        errno = 0;
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                return log_debug_errno(errno ? errno : EINVAL, "Cannot count online CPUs: %m");
        if (cpus > UINT_MAX)
                return -ERANGE;

        r = read_full_file("/proc/meminfo", &meminfo, NULL);
        if (r < 0)
                return log_debug_errno(r, "Failed to read /proc/meminfo: %m");
        r = meminfo_parse_total(meminfo, &mem);
        if (r < 0)
                return log_debug_errno(r, "No usable MemTotal in /proc/meminfo: %m");

        free(inv->hostname);
        inv->hostname = TAKE_PTR(hostname);
        inv->cpus = (unsigned)cpus;
        inv->memory_bytes = mem;
        return 0;
}
