/* SPDX-License-Identifier: MIT */
/* The discovery socket: IPv4 UDP multicast on one interface, TTL 1, no loopback. */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

int mcast_open(int ifindex, struct in_addr local, struct in_addr group, uint16_t port,
               int *ret_fd);
int mcast_send(int fd, struct in_addr group, uint16_t port, const void *buf, size_t len);
