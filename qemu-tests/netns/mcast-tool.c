/* SPDX-License-Identifier: MIT */
/* Test tool for the netns harness: record multicast datagrams off the wire, and replay
 * them later from another namespace (to prove that replays are dropped).
 *
 *   mcast-tool record IFADDR GROUP PORT COUNT TIMEOUT_MS FILE
 *   mcast-tool replay IFADDR GROUP PORT FILE
 *
 * Records are stored as a 2-byte little-endian length followed by the datagram. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what) {
        fprintf(stderr, "mcast-tool: %s: %s\n", what, strerror(errno));
        return 1;
}

static int open_socket(const char *ifaddr, const char *group, int port, struct sockaddr_in *dst) {
        struct ip_mreq mreq;
        int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, ttl = 1, zero = 0;

        memset(dst, 0, sizeof *dst);
        dst->sin_family = AF_INET;
        dst->sin_port = htons((uint16_t)port);
        if (fd < 0 || inet_pton(AF_INET, group, &dst->sin_addr) != 1 ||
            inet_pton(AF_INET, group, &mreq.imr_multiaddr) != 1 ||
            inet_pton(AF_INET, ifaddr, &mreq.imr_interface) != 1)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)dst, sizeof *dst) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq.imr_interface,
                       sizeof mreq.imr_interface) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero) < 0)
                return -1;
        return fd;
}

static long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
        struct sockaddr_in dst;
        uint8_t buf[65536];
        int fd;

        if (argc == 8 && strcmp(argv[1], "record") == 0) {
                long deadline = now_ms() + atol(argv[6]);
                int want = atoi(argv[5]), got = 0;
                FILE *f;

                fd = open_socket(argv[2], argv[3], atoi(argv[4]), &dst);
                if (fd < 0)
                        return die("socket");
                f = fopen(argv[7], "w");
                if (!f)
                        return die(argv[7]);
                while (got < want && now_ms() < deadline) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        ssize_t n;

                        if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
                                continue;
                        n = recv(fd, buf, sizeof buf, 0);
                        if (n <= 0)
                                continue;
                        fputc((int)(n & 0xff), f);
                        fputc((int)(n >> 8), f);
                        fwrite(buf, 1, (size_t)n, f);
                        got++;
                }
                fclose(f);
                printf("%d\n", got);
                return got == want ? 0 : 1;
        }
        if (argc == 6 && strcmp(argv[1], "replay") == 0) {
                FILE *f = fopen(argv[5], "r");
                int sent = 0, lo, hi;

                fd = open_socket(argv[2], argv[3], atoi(argv[4]), &dst);
                if (fd < 0 || !f)
                        return die("setup");
                while ((lo = fgetc(f)) != EOF && (hi = fgetc(f)) != EOF) {
                        size_t n = (size_t)lo | (size_t)hi << 8;

                        if (fread(buf, 1, n, f) != n)
                                break;
                        if (sendto(fd, buf, n, 0, (struct sockaddr *)&dst, sizeof dst) < 0)
                                return die("sendto");
                        sent++;
                }
                fclose(f);
                printf("%d\n", sent);
                return 0;
        }
        fprintf(stderr, "usage: mcast-tool record IFADDR GROUP PORT COUNT TIMEOUT_MS FILE\n"
                        "       mcast-tool replay IFADDR GROUP PORT FILE\n");
        return 2;
}
