/* SPDX-License-Identifier: MIT */
/* NIC inventory over rtnetlink (libnl-route): links, their addresses, and which of them
 * carry a default route. Read-only: three dumps on one socket. */
#include "inventory.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);

/* A dump that raced with a change (NLM_F_DUMP_INTR) is simply taken again; a host whose
 * links churn faster than this is not one we can inventory anyway. */
#define DUMP_ATTEMPTS 3

struct nic_array {
        struct nic *v;
        size_t n;
};

static void nic_array_done(struct nic_array *a) {
        for (size_t i = 0; i < a->n; i++)
                nic_done(&a->v[i]);
        free(a->v);
        a->v = NULL;
        a->n = 0;
}

static int nl_error_to_errno(int nlerr) {
        switch (abs(nlerr)) {
        case NLE_INTR:
                return -EINTR;
        case NLE_BAD_SOCK:
                return -EBADF;
        case NLE_AGAIN:
                return -EAGAIN;
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_RANGE:
                return -ERANGE;
        case NLE_MSGSIZE:
        case NLE_MSG_TRUNC:
        case NLE_MSG_OVERFLOW:
                return -EMSGSIZE;
        case NLE_OPNOTSUPP:
        case NLE_MSGTYPE_NOSUPPORT:
                return -EOPNOTSUPP;
        case NLE_AF_NOSUPPORT:
                return -EAFNOSUPPORT;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV:
                return -ENODEV;
        case NLE_NOADDR:
                return -EADDRNOTAVAIL;
        case NLE_BUSY:
                return -EBUSY;
        case NLE_NOACCESS:
                return -EACCES;
        case NLE_PERM:
                return -EPERM;
        case NLE_DUMP_INTR:
                return -EAGAIN;
        case NLE_SEQ_MISMATCH:
        case NLE_PROTO_MISMATCH:
        case NLE_MSG_TOOSHORT:
        case NLE_PARSE_ERR:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

static int nl_fail(int nlerr, const char *what) {
        log_debug("%s: %s", what, nl_geterror(nlerr));
        return nl_error_to_errno(nlerr);
}

/* Every *_alloc_cache below is one full dump; retried only when the kernel says the
 * dump was inconsistent. */
#define DUMP(call, what)                                                               \
        ({                                                                             \
                int _r = 0;                                                            \
                for (int _i = 0; _i < DUMP_ATTEMPTS; _i++) {                           \
                        _r = (call);                                                   \
                        if (_r != -NLE_DUMP_INTR)                                      \
                                break;                                                 \
                        log_debug("%s: dump interrupted, retrying", what);             \
                }                                                                      \
                _r < 0 ? nl_fail(_r, what) : 0;                                        \
        })

/* IF_OPER_* (RFC 2863 ifOperStatus as the kernel reports it in IFLA_OPERSTATE). */
static const char *operstate_to_string(uint8_t s) {
        static const char *const t[] = {
                "unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up",
        };
        return s < ELEMENTSOF(t) ? t[s] : "unknown";
}

/* Plumbing that container runtimes, hypervisors and tunnels create by the dozen; hidden
 * without --all. dummy, bond, team, vlan and macvlan are deliberately not listed: an
 * operator builds those on purpose, and a node may well carry its cluster address on one. */
static bool kind_is_virtual(const char *kind) {
        static const char *const kinds[] = {
                "bridge", "veth",      "tun",     "tap",       "openvswitch", "vxlan",
                "geneve", "ipip",      "sit",     "gre",       "gretap",      "ip6gre",
                "ip6gretap", "ip6tnl", "vti",     "vti6",      "erspan",      "ip6erspan",
                "wireguard", "macvtap", "ipvtap", "ifb",       "nlmon",       "vcan",
                "vxcan",  "bareudp",   "xfrm",
        };
        if (!kind)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(kind, kinds[i]))
                        return true;
        return false;
}

/* A link without an rtnl kind but also without a backing device (old-style tun, some
 * out-of-tree drivers) is still software. Only trusted when /sys shows this namespace:
 * under `unshare -n` without a sysfs remount it describes the host's links instead. */
static bool sysfs_says_virtual(const char *name, int ifindex) {
        _cleanup_free_ char *p = NULL;
        uint64_t idx;

        if (asprintf_safe(&p, "/sys/class/net/%s/ifindex", name) < 0)
                return false;
        if (read_u64_file(p, &idx) < 0 || idx != (uint64_t)ifindex)
                return false;
        free(p);
        p = NULL;
        if (asprintf_safe(&p, "/sys/class/net/%s/device", name) < 0)
                return false;
        return access(p, F_OK) < 0 && errno == ENOENT;
}

static int nic_fill_from_link(struct nic *n, struct rtnl_link *link) {
        struct nl_addr *lladdr = rtnl_link_get_addr(link);
        unsigned arptype = rtnl_link_get_arptype(link);
        const char *name = rtnl_link_get_name(link);
        const char *kind = rtnl_link_get_type(link);

        n->ifindex = rtnl_link_get_ifindex(link);
        n->name = strdup(name ? name : "");
        n->operstate = strdup(operstate_to_string(rtnl_link_get_operstate(link)));
        n->kind = xstrdup_or_null(kind);
        if (!n->name || !n->operstate || (kind && !n->kind))
                return -ENOMEM;
        n->mtu = rtnl_link_get_mtu(link);
        n->carrier = rtnl_link_get_carrier(link) != 0;
        n->loopback = (rtnl_link_get_flags(link) & IFF_LOOPBACK) != 0;

        /* Only Ethernet-style 6-byte hardware addresses: tunnels report their IPv4/IPv6
         * endpoint here, loopback an all-zero one. */
        if (lladdr && nl_addr_get_len(lladdr) == 6 &&
            (arptype == ARPHRD_ETHER || arptype == ARPHRD_EETHER || arptype == ARPHRD_IEEE802)) {
                memcpy(n->mac, nl_addr_get_binary_addr(lladdr), 6);
                n->has_mac = true;
        }

        n->is_virtual = n->loopback || kind_is_virtual(kind) ||
                        (!kind && sysfs_says_virtual(n->name, n->ifindex));
        return 0;
}

static int nic_cmp(const void *a, const void *b) {
        const struct nic *x = a, *y = b;
        return (x->ifindex > y->ifindex) - (x->ifindex < y->ifindex);
}

static struct nic *find_nic(const struct nic_array *a, int ifindex) {
        struct nic key = { .ifindex = ifindex };
        return bsearch(&key, a->v, a->n, sizeof *a->v, nic_cmp);
}

static int nic_add_addr(struct nic *n, int family, const void *bin, unsigned prefixlen) {
        char buf[INET6_ADDRSTRLEN];
        _cleanup_free_ char *cidr = NULL;
        struct nic_addr *na;

        if (!inet_ntop(family, bin, buf, sizeof buf))
                return -errno;
        if (asprintf_safe(&cidr, "%s/%u", buf, prefixlen) < 0)
                return -ENOMEM;
        na = realloc(n->addrs, (n->n_addrs + 1) * sizeof *na);
        if (!na)
                return -ENOMEM;
        n->addrs = na;
        n->addrs[n->n_addrs++] = (struct nic_addr){ .family = family, .cidr = TAKE_PTR(cidr) };
        return 0;
}

static int fill_addrs(struct nic_array *a, struct nl_cache *addrs) {
        for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
                struct rtnl_addr *ra = (struct rtnl_addr *)o;
                int family = rtnl_addr_get_family(ra);
                struct nl_addr *local = rtnl_addr_get_local(ra);
                struct nic *n;
                unsigned len;
                int r;

                if (family != AF_INET && family != AF_INET6)
                        continue;
                if (!local)
                        continue;
                len = nl_addr_get_len(local);
                if (len != (family == AF_INET ? 4u : 16u))
                        continue;
                /* Added after the link dump: it shows up on the next run. */
                n = find_nic(a, rtnl_addr_get_ifindex(ra));
                if (!n)
                        continue;
                r = nic_add_addr(n, family, nl_addr_get_binary_addr(local),
                                 (unsigned)rtnl_addr_get_prefixlen(ra));
                if (r < 0)
                        return r;
        }
        return 0;
}

static void mark_default_routes(struct nic_array *a, struct nl_cache *routes) {
        for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
                struct rtnl_route *rt = (struct rtnl_route *)o;
                struct nl_addr *dst = rtnl_route_get_dst(rt);
                int family = rtnl_route_get_family(rt);
                int nh = rtnl_route_get_nnexthops(rt);

                if (family != AF_INET && family != AF_INET6)
                        continue;
                if (rtnl_route_get_table(rt) != RT_TABLE_MAIN)
                        continue;
                /* unreachable/blackhole/prohibit defaults carry no traffic out. */
                if (rtnl_route_get_type(rt) != RTN_UNICAST)
                        continue;
                if (dst && nl_addr_get_prefixlen(dst) != 0)
                        continue;
                for (int i = 0; i < nh; i++) {
                        struct rtnl_nexthop *hop = rtnl_route_nexthop_n(rt, i);
                        struct nic *n = hop ? find_nic(a, rtnl_route_nh_get_ifindex(hop)) : NULL;

                        if (n)
                                n->default_route = true;
                }
        }
}

int inventory_probe_nics(struct inventory *inv) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *links = NULL, *addrs = NULL, *routes = NULL;
        _cleanup_(nic_array_done) struct nic_array a = {};
        struct nic *merged;
        int r, nitems;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nl_fail(r, "Failed to connect rtnetlink socket");

        r = DUMP(rtnl_link_alloc_cache(sk, AF_UNSPEC, &links), "Failed to dump links");
        if (r < 0)
                return r;
        r = DUMP(rtnl_addr_alloc_cache(sk, &addrs), "Failed to dump addresses");
        if (r < 0)
                return r;
        r = DUMP(rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes), "Failed to dump routes");
        if (r < 0)
                return r;

        nitems = nl_cache_nitems(links);
        if (nitems > 0) {
                a.v = calloc((size_t)nitems, sizeof *a.v);
                if (!a.v)
                        return -ENOMEM;
        }
        for (struct nl_object *o = nl_cache_get_first(links); o && a.n < (size_t)nitems;
             o = nl_cache_get_next(o)) {
                /* Counted before filling so a failure frees this entry too. */
                a.n++;
                r = nic_fill_from_link(&a.v[a.n - 1], (struct rtnl_link *)o);
                if (r < 0)
                        return r;
        }
        if (a.n > 1)
                qsort(a.v, a.n, sizeof *a.v, nic_cmp);

        r = fill_addrs(&a, addrs);
        if (r < 0)
                return r;
        mark_default_routes(&a, routes);

        /* +1: realloc(p, 0) may return NULL, which would read as out of memory. */
        merged = realloc(inv->nics, (inv->n_nics + a.n + 1) * sizeof *merged);
        if (!merged)
                return -ENOMEM;
        inv->nics = merged;
        if (a.n > 0)
                memcpy(inv->nics + inv->n_nics, a.v, a.n * sizeof *a.v);
        inv->n_nics += a.n;
        a.n = 0; /* members now belong to inv */
        if (inv->n_nics > 1)
                qsort(inv->nics, inv->n_nics, sizeof *inv->nics, nic_cmp);
        log_debug("Found %zu network links", inv->n_nics);
        return 0;
}
