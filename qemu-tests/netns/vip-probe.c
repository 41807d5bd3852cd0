/* SPDX-License-Identifier: MIT */
/* Benchmark tool for the netns harness: run a command that takes the VIP holder off the
 * network, then poll a TCP port on the VIP until a node other than that holder answers,
 * and print the time between the two in milliseconds (CLOCK_MONOTONIC).
 *
 *   vip-probe ADDR PORT OLD_BANNER CONNECT_MS LIMIT_MS -- COMMAND...
 *
 * Each attempt is a fresh non-blocking connect() given CONNECT_MS; an answer counts when
 * the server's first line differs from OLD_BANNER. Output: "<ms> <banner>", or
 * "timeout" (exit 2) after LIMIT_MS. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 1 and the first line in buf when the server answered, 0 when not (yet). */
static int try_once(const struct sockaddr_in *sa, int connect_ms, char *buf, size_t size) {
        struct pollfd p;
        int fd, err = 0, r = 0;
        socklen_t len = sizeof err;
        size_t got = 0;
        double deadline;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 0;
        if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS)
                goto out;
        p = (struct pollfd){ .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, connect_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
            err != 0)
                goto out;
        /* Connected: the banner follows at once; allow it a little longer than a connect. */
        deadline = now_ms() + 10.0 * connect_ms;
        while (got + 1 < size && now_ms() < deadline) {
                ssize_t n;

                p = (struct pollfd){ .fd = fd, .events = POLLIN };
                if (poll(&p, 1, connect_ms) != 1)
                        continue;
                n = read(fd, buf + got, size - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
                if (memchr(buf, '\n', got))
                        break;
        }
        buf[got] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
        r = got > 0;
out:
        close(fd);
        return r;
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        int connect_ms, limit_ms, status;
        double t0;
        pid_t pid;
        char buf[256];

        if (argc < 8 || strcmp(argv[6], "--") != 0) {
                fprintf(stderr, "usage: vip-probe ADDR PORT OLD_BANNER CONNECT_MS LIMIT_MS -- COMMAND...\n");
                return 1;
        }
        if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
                fprintf(stderr, "vip-probe: %s: not an IPv4 address\n", argv[1]);
                return 1;
        }
        sa.sin_port = htons((uint16_t)atoi(argv[2]));
        connect_ms = atoi(argv[4]);
        limit_ms = atoi(argv[5]);
        if (connect_ms <= 0 || limit_ms <= 0) {
                fprintf(stderr, "vip-probe: CONNECT_MS and LIMIT_MS must be positive\n");
                return 1;
        }

        pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                execvp(argv[7], argv + 7);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return 1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "vip-probe: %s failed\n", argv[7]);
                return 1;
        }
        /* The command has returned: the holder is off the network from here on. */
        t0 = now_ms();
        while (now_ms() - t0 < limit_ms) {
                double t = now_ms();

                if (try_once(&sa, connect_ms, buf, sizeof buf) && strcmp(buf, argv[3]) != 0) {
                        printf("%.1f %s\n", now_ms() - t0, buf);
                        return 0;
                }
                /* Refused or unreachable at once: do not spin. */
                if (now_ms() - t < 1.0)
                        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
        }
        printf("timeout\n");
        return 2;
}
