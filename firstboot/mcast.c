/* SPDX-License-Identifier: MIT */
#include "mcast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int mcast_open(int ifindex, struct in_addr local, struct in_addr group, uint16_t port,
               int *ret_fd) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = group };
        struct ip_mreqn mreq = { .imr_multiaddr = group, .imr_address = local, .imr_ifindex = ifindex };
        int one = 1, zero = 0, ttl = 1;
        char g[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &group, g, sizeof g);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot create the discovery socket: %m");
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return log_error_errno(-errno, "SO_REUSEADDR: %m");
        /* Bound to the group address, so unicast datagrams to the port are not taken. */
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return log_error_errno(-errno, "Cannot bind %s:%u: %m", g, port);
        if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
                return log_error_errno(-errno, "Cannot join %s on interface %d: %m", g, ifindex);
        /* Only this interface, only this link (TTL 1), never our own datagrams back. */
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero) < 0)
                return log_error_errno(-errno, "Cannot set multicast options: %m");
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) < 0)
                log_debug_errno(-errno, "IP_MULTICAST_ALL: %m");
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int mcast_send(int fd, struct in_addr group, uint16_t port, const void *buf, size_t len) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = group };
        ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof sa);

        if (n < 0)
                return -errno;
        return n == (ssize_t)len ? 0 : -EMSGSIZE;
}
