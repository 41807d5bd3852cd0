/* SPDX-License-Identifier: MIT */
/* The cluster configuration: YAML read with libyaml's event API into a small tree that keeps
 * every node's line and column, walked against a table of keys (keyword → handler, as
 * keepalived does), then cross-checked as a whole. rainboot.* kernel command-line keys
 * override a few values and go through the same converters and checks.
 *
 * YAML subset, chosen so that a value means the same thing to every YAML tool:
 * - integers are plain (unquoted) decimal digits without sign or leading zero;
 * - booleans are true/false or yes/no (any of lower, Title or UPPER case), unquoted;
 *   on/off/y/n are refused, YAML 1.1 reads them as booleans and YAML 1.2 as strings;
 * - null is an empty value, ~ or null; a quoted "null" is a string;
 * - anchors may be written but aliases (*name) are refused, and one document per file. */
#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stddef.h>
#include <yaml.h>

#include "log.h"
#include "util.h"

#define DIAG_MAX 50
#define CONFIG_MAX_SIZE (1024 * 1024)
/* Our schema nests six levels at most; the bound keeps hostile input from eating the
 * stack when the tree is freed. */
#define YAML_MAX_DEPTH 32
#define TOKEN_MIN_LEN 16
#define TOKEN_MAX_LEN 4096
#define SECRET_MAX_LEN 1024
#define WHY_MAX 512

/* ---- names ---- */

static const struct {
        unsigned role;
        const char *name;
        const char *alias;
} role_names[] = {
        { ROLE_MASTER, "master", NULL },        { ROLE_ETCD, "etcd", NULL },
        { ROLE_WORKER, "worker", NULL },        { ROLE_GATEWAY, "rbd-gateway", "gateway" },
        { ROLE_BUILDER, "rbd-chaos", "builder" }, { ROLE_REGISTRY, "registry", NULL },
        { ROLE_MYSQL, "mysql", NULL },
};

unsigned role_from_name(const char *name) {
        if (!name)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(role_names); i++)
                if (streq(name, role_names[i].name) ||
                    (role_names[i].alias && streq(name, role_names[i].alias)))
                        return role_names[i].role;
        return 0;
}

const char *role_to_name(unsigned role) {
        for (size_t i = 0; i < ELEMENTSOF(role_names); i++)
                if (role_names[i].role == role)
                        return role_names[i].name;
        return NULL;
}

static const char *const wipe_names[] = {
        [WIPE_NEVER] = "never",
        [WIPE_EMPTY_ONLY] = "empty-only",
        [WIPE_FORCE_LISTED] = "force-listed",
};

const char *wipe_policy_to_string(enum wipe_policy w) {
        return (unsigned)w < ELEMENTSOF(wipe_names) ? wipe_names[w] : NULL;
}

static const char *const k8s_names[] = {
        [K8S_RKE2] = "rke2",
        [K8S_KUBEADM] = "kubeadm",
};

/* ---- keys and where they came from ---- */

enum key {
        K_NONE, /* a value inside external.*, tracked by its own object */
        K_ROOT,
        K_CLUSTER, K_CLUSTER_NAME, K_TOKEN, K_EXPECTED_NODES,
        K_DISCOVERY, K_GROUP, K_PORT, K_DISCOVERY_INTERFACE, K_SETTLE_MS, K_INTERVAL_MS,
        K_VIP, K_VIP_ADDRESS, K_VIP_INTERFACE, K_ROUTER_ID,
        K_ROLES, K_MASTERS, K_GATEWAYS, K_BUILDERS, K_PINS,
        K_EXTERNAL, K_LOAD_BALANCER, K_REGISTRY, K_MYSQL,
        K_DISKS, K_DATA_MOUNT, K_CACHE_MOUNT, K_SERVICES_MOUNT, K_WIPE, K_DEVICES,
        K_FORCE_MEMBERS,
        K_KUBERNETES, K_DISTRIBUTION,
        _K_MAX,
};

static const struct {
        const char *path;
        enum key parent;
        const char *cmdline; /* the rainboot.* key that overrides it */
} keys[_K_MAX] = {
        [K_NONE] = { "", K_ROOT, NULL },
        [K_ROOT] = { "", K_ROOT, NULL },
        [K_CLUSTER] = { "cluster", K_ROOT, NULL },
        [K_CLUSTER_NAME] = { "cluster.name", K_CLUSTER, "rainboot.cluster" },
        [K_TOKEN] = { "cluster.token", K_CLUSTER, "rainboot.token" },
        [K_EXPECTED_NODES] = { "cluster.expected_nodes", K_CLUSTER, "rainboot.expected_nodes" },
        [K_DISCOVERY] = { "discovery", K_ROOT, NULL },
        [K_GROUP] = { "discovery.group", K_DISCOVERY, NULL },
        [K_PORT] = { "discovery.port", K_DISCOVERY, NULL },
        [K_DISCOVERY_INTERFACE] = { "discovery.interface", K_DISCOVERY, "rainboot.interface" },
        [K_SETTLE_MS] = { "discovery.settle_ms", K_DISCOVERY, NULL },
        [K_INTERVAL_MS] = { "discovery.interval_ms", K_DISCOVERY, NULL },
        [K_VIP] = { "vip", K_ROOT, "rainboot.vip" },
        [K_VIP_ADDRESS] = { "vip.address", K_VIP, "rainboot.vip" },
        [K_VIP_INTERFACE] = { "vip.interface", K_VIP, "rainboot.interface" },
        [K_ROUTER_ID] = { "vip.router_id", K_VIP, NULL },
        [K_ROLES] = { "roles", K_ROOT, NULL },
        [K_MASTERS] = { "roles.masters", K_ROLES, NULL },
        [K_GATEWAYS] = { "roles.gateways", K_ROLES, NULL },
        [K_BUILDERS] = { "roles.builders", K_ROLES, NULL },
        [K_PINS] = { "roles.pins", K_ROLES, NULL },
        [K_EXTERNAL] = { "external", K_ROOT, NULL },
        [K_LOAD_BALANCER] = { "external.load_balancer", K_EXTERNAL, NULL },
        [K_REGISTRY] = { "external.registry", K_EXTERNAL, NULL },
        [K_MYSQL] = { "external.mysql", K_EXTERNAL, NULL },
        [K_DISKS] = { "disks", K_ROOT, NULL },
        [K_DATA_MOUNT] = { "disks.data_mount", K_DISKS, NULL },
        [K_CACHE_MOUNT] = { "disks.cache_mount", K_DISKS, NULL },
        [K_SERVICES_MOUNT] = { "disks.services_mount", K_DISKS, NULL },
        [K_WIPE] = { "disks.wipe", K_DISKS, "rainboot.wipe" },
        [K_DEVICES] = { "disks.devices", K_DISKS, NULL },
        [K_FORCE_MEMBERS] = { "disks.force_members", K_DISKS, NULL },
        [K_KUBERNETES] = { "kubernetes", K_ROOT, NULL },
        [K_DISTRIBUTION] = { "kubernetes.distribution", K_KUBERNETES, NULL },
};

enum source {
        SRC_DEFAULT, /* not written anywhere: defaults may be recomputed */
        SRC_SET,     /* set by a program (config built by hand), location unknown */
        SRC_FILE,
        SRC_CMDLINE,
        SRC_INVALID, /* written but refused (already reported): checks using it are skipped */
};

struct mark {
        unsigned line, col; /* 1-based; 0: unknown */
};

struct config_origin {
        enum source src[_K_MAX];
        struct mark mark[_K_MAX];
        struct mark *pins; /* parallel to config->pins */
        char *cmdline_path;
};

static struct config_origin *origin_free(struct config_origin *o) {
        if (!o)
                return NULL;
        free(o->pins);
        free(o->cmdline_path);
        free(o);
        return NULL;
}

static void set_source(struct config *c, enum key k, enum source s, unsigned line, unsigned col) {
        if (!c->origin || k == K_NONE)
                return;
        c->origin->src[k] = s;
        c->origin->mark[k] = (struct mark){ line, col };
}

static enum source source_of(const struct config *c, enum key k) {
        return c->origin ? c->origin->src[k] : SRC_SET;
}

/* False when k or a section above it was refused: a check built on it would only repeat
 * the problem already reported. */
static bool usable(const struct config *c, enum key k) {
        for (;;) {
                if (source_of(c, k) == SRC_INVALID)
                        return false;
                if (k == K_ROOT)
                        return true;
                k = keys[k].parent;
        }
}

/* ---- collecting problems ---- */

struct report {
        struct diag *diag; /* NULL: problems are only counted */
        unsigned problems;
        bool oom;
};

void diag_clear(struct diag *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n; i++)
                free(d->msgs[i]);
        free(d->msgs);
        d->msgs = NULL;
        d->n = 0;
}

static void report_take(struct report *rep, char *msg) {
        struct diag *d = rep->diag;
        char **l;

        rep->problems++;
        if (!msg) {
                rep->oom = true;
                return;
        }
        if (!d || d->n > DIAG_MAX) {
                free(msg);
                return;
        }
        if (d->n == DIAG_MAX) {
                free(msg);
                msg = strdup("... and more problems, not listed: fix the ones above first");
                if (!msg) {
                        rep->oom = true;
                        return;
                }
        }
        l = realloc(d->msgs, (d->n + 2) * sizeof(char *));
        if (!l) {
                free(msg);
                rep->oom = true;
                return;
        }
        l[d->n++] = msg;
        l[d->n] = NULL;
        d->msgs = l;
}

static _printf_(3, 0) void report_v(struct report *rep, const char *where, const char *fmt,
                                    va_list ap) {
        _cleanup_free_ char *m = NULL;
        char *msg = NULL;

        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        if (m && asprintf(&msg, "%s: %s", where ? where : "config", m) < 0)
                msg = NULL;
        report_take(rep, msg);
}

static _printf_(3, 4) void report(struct report *rep, const char *where, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        report_v(rep, where, fmt, ap);
        va_end(ap);
}

static int report_result(const struct report *rep) {
        if (rep->oom)
                return -ENOMEM;
        return rep->problems > 0 ? -EINVAL : 0;
}

static char *cmdline_where(const char *cmdline_path, const char *key) {
        char *s = NULL;

        if (cmdline_path && asprintf(&s, "kernel command line (%s): %s", cmdline_path, key) < 0)
                return NULL;
        if (!cmdline_path && asprintf(&s, "kernel command line: %s", key) < 0)
                return NULL;
        return s;
}

/* "FILE:LINE:COL: key.path" at the key, or at the section it belongs in when it was not
 * written; "kernel command line (PATH): rainboot.key" when it came from there. */
static char *where_key(const struct config *c, enum key k) {
        const struct config_origin *o = c->origin;
        const char *name = c->path ? c->path : "config";
        char *s = NULL;

        if (o && o->src[k] == SRC_CMDLINE)
                return cmdline_where(o->cmdline_path, keys[k].cmdline);
        for (enum key m = k; o; m = keys[m].parent) {
                if (o->mark[m].line > 0) {
                        if (asprintf(&s, "%s:%u:%u: %s", name, o->mark[m].line, o->mark[m].col,
                                     keys[k].path) < 0)
                                return NULL;
                        return s;
                }
                if (m == K_ROOT)
                        break;
        }
        if (asprintf(&s, "%s: %s", name, keys[k].path) < 0)
                return NULL;
        return s;
}

static _printf_(4, 5) void kerr(struct report *rep, const struct config *c, enum key k,
                                const char *fmt, ...) {
        _cleanup_free_ char *where = where_key(c, k);
        va_list ap;

        if (!where) {
                report_take(rep, NULL);
                return;
        }
        va_start(ap, fmt);
        report_v(rep, where, fmt, ap);
        va_end(ap);
}

/* The key to name in a message about a and b together: a, unless b came from the kernel
 * command line or only b was written. */
static enum key blame(const struct config *c, enum key a, enum key b) {
        enum source sa = source_of(c, a), sb = source_of(c, b);

        if (sb == SRC_CMDLINE && sa != SRC_CMDLINE)
                return b;
        if (sa == SRC_DEFAULT && sb != SRC_DEFAULT)
                return b;
        return a;
}

/* ---- values: shared by the YAML reader and the kernel command line ---- */

/* Each converter fills why[] with "problem, and the fix" when it refuses a value. */
#define WHY(...) (snprintf(why, WHY_MAX, __VA_ARGS__), false)

/* A user's value, fit for a message: bounded, with control characters masked. */
static const char *shown(const char *s, char buf[static 72]) {
        size_t i;

        for (i = 0; s[i] && i < 64; i++)
                buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (s[i])
                memcpy(buf + i, "...", 4);
        else
                buf[i] = 0;
        return buf;
}

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_lower_alnum(char ch) { return is_digit(ch) || (ch >= 'a' && ch <= 'z'); }
static bool is_alnum(char ch) { return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z'); }
static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static bool conv_uint(const char *s, unsigned min, unsigned max, unsigned *ret,
                      char why[static WHY_MAX]) {
        char b[72];
        uint64_t v = 0;

        if (!*s || strspn(s, "0123456789") != strlen(s))
                return WHY("'%s' is not a whole number; write plain decimal digits, %u to %u",
                           shown(s, b), min, max);
        if (s[0] == '0' && s[1])
                return WHY("'%s' has a leading zero, which YAML 1.1 reads as octal; write it "
                           "without the zero",
                           shown(s, b));
        for (const char *q = s; *q; q++) {
                v = v * 10 + (uint64_t)(*q - '0');
                if (v > max)
                        break;
        }
        if (v < min || v > max)
                return WHY("%s is out of range; use %u to %u", shown(s, b), min, max);
        *ret = (unsigned)v;
        return true;
}

static bool conv_bool(const char *s, bool *ret, char why[static WHY_MAX]) {
        static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES" };
        static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO" };
        char b[72];

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (streq(s, yes[i])) {
                        *ret = true;
                        return true;
                }
                if (streq(s, no[i])) {
                        *ret = false;
                        return true;
                }
        }
        return WHY("'%s' is not a boolean; write true or false (yes/no work too; on/off/y/n do "
                   "not, YAML 1.1 and 1.2 disagree on them)",
                   shown(s, b));
}

static bool parse_ipv4(const char *s, struct in_addr *ret) {
        /* glibc's inet_pton takes exactly four decimal parts without leading zeros. */
        return inet_pton(AF_INET, s, ret) == 1;
}

/* Why an address cannot be a host's unicast address, or NULL. */
static const char *ipv4_not_unicast(struct in_addr a) {
        uint32_t h = ntohl(a.s_addr);

        if (h >> 24 == 0)
                return "is in 0.0.0.0/8, which means \"this network\"";
        if (h >> 24 == 127)
                return "is a loopback address";
        if (h >> 28 == 14)
                return "is a multicast address";
        if (h >> 28 == 15)
                return "is in the reserved range 240.0.0.0/4";
        return NULL;
}

static bool conv_host_ipv4(const char *s, struct in_addr *ret, char why[static WHY_MAX]) {
        struct in_addr a;
        const char *bad;
        char b[72];

        if (!parse_ipv4(s, &a))
                return WHY("'%s' is not an IPv4 address (like 192.0.2.10)", shown(s, b));
        bad = ipv4_not_unicast(a);
        if (bad)
                return WHY("'%s' %s; give the unicast address clients connect to", shown(s, b), bad);
        *ret = a;
        return true;
}

static bool conv_vip(const char *s, struct ipv4_cidr *ret, char why[static WHY_MAX]) {
        const char *slash = strchr(s, '/'), *bad;
        char addr[INET_ADDRSTRLEN], b[72], scratch[WHY_MAX];
        struct ipv4_cidr v;
        uint32_t h, host;

        if (!slash || (size_t)(slash - s) >= sizeof addr ||
            !conv_uint(slash + 1, 0, 32, &v.prefix, scratch))
                return WHY("'%s' is not an IPv4 address with prefix (like 192.0.2.100/24)",
                           shown(s, b));
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = 0;
        if (!parse_ipv4(addr, &v.addr))
                return WHY("'%s' is not an IPv4 address with prefix (like 192.0.2.100/24)",
                           shown(s, b));
        if (v.prefix < 8)
                return WHY("'%s': /%u is too short; give the prefix of the gateways' subnet, "
                           "/8 to /32 (like 192.0.2.100/24)",
                           shown(s, b), v.prefix);
        bad = ipv4_not_unicast(v.addr);
        if (bad)
                return WHY("'%s' %s; the VIP must be a free unicast address in the gateways' "
                           "subnet",
                           shown(s, b), bad);
        /* /31 and /32 have no network or broadcast address (RFC 3021). */
        if (v.prefix <= 30) {
                h = ntohl(v.addr.s_addr);
                host = (1u << (32 - v.prefix)) - 1;
                if ((h & host) == 0)
                        return WHY("'%s' is the network address of its subnet; pick a free "
                                   "host address in it",
                                   shown(s, b));
                if ((h & host) == host)
                        return WHY("'%s' is the broadcast address of its subnet; pick a free "
                                   "host address in it",
                                   shown(s, b));
        }
        *ret = v;
        return true;
}

static bool conv_group(const char *s, struct in_addr *ret, char why[static WHY_MAX]) {
        struct in_addr a;
        uint32_t h;
        char b[72];

        if (!parse_ipv4(s, &a))
                return WHY("'%s' is not an IPv4 multicast group (like 239.255.77.77)",
                           shown(s, b));
        h = ntohl(a.s_addr);
        if (h >> 28 != 14)
                return WHY("'%s' is not an IPv4 multicast group (224.0.0.0/4); use an "
                           "administratively scoped group like 239.255.77.77",
                           shown(s, b));
        if (h >> 8 == 0xe00000)
                return WHY("'%s' is in 224.0.0.0/24, reserved for link-local control traffic "
                           "(routing protocols, IGMP); use a group like 239.255.77.77",
                           shown(s, b));
        *ret = a;
        return true;
}

static int hexval(char ch) {
        if (is_digit(ch))
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

static bool conv_mac(const char *s, uint8_t mac[static 6], char why[static WHY_MAX]) {
        uint8_t m[6];
        char b[72];

        if (strlen(s) != 17)
                goto bad;
        for (size_t i = 0; i < 6; i++) {
                int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

                if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
                        goto bad;
                m[i] = (uint8_t)(hi << 4 | lo);
        }
        if (m[0] & 1)
                return WHY("'%s' is a multicast or broadcast MAC; a NIC's own address is "
                           "unicast",
                           shown(s, b));
        if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
                return WHY("'%s' is the all-zero MAC, which no NIC has", shown(s, b));
        memcpy(mac, m, 6);
        return true;
bad:
        return WHY("'%s' is not a MAC address; write six hex pairs with colons, in quotes, "
                   "like \"52:54:00:00:00:01\"",
                   shown(s, b));
}

static bool conv_wipe(const char *s, enum wipe_policy *ret, char why[static WHY_MAX]) {
        char b[72];

        for (size_t i = 0; i < ELEMENTSOF(wipe_names); i++)
                if (streq(s, wipe_names[i])) {
                        *ret = (enum wipe_policy)i;
                        return true;
                }
        return WHY("'%s' is not a wipe policy; use never, empty-only or force-listed",
                   shown(s, b));
}

static bool conv_distribution(const char *s, enum k8s_distribution *ret,
                              char why[static WHY_MAX]) {
        char b[72];

        for (size_t i = 0; i < ELEMENTSOF(k8s_names); i++)
                if (streq(s, k8s_names[i])) {
                        *ret = (enum k8s_distribution)i;
                        return true;
                }
        return WHY("'%s' is not a supported distribution; use rke2 or kubeadm", shown(s, b));
}

/* String checks: the value is kept as written. */
typedef bool (*check_fn)(const char *s, char why[static WHY_MAX]);

static bool check_dns_label(const char *s, char why[static WHY_MAX]) {
        size_t len = strlen(s);
        char b[72];

        if (len == 0)
                return WHY("is empty; give a DNS label like prod-a");
        if (len > 63)
                return WHY("'%s' is longer than 63 characters, the limit for a DNS label",
                           shown(s, b));
        for (const char *q = s; *q; q++)
                if (!is_lower_alnum(*q) && *q != '-')
                        return WHY("'%s' is not a DNS label; use only a-z, 0-9 and '-', like "
                                   "prod-a",
                                   shown(s, b));
        if (s[0] == '-' || s[len - 1] == '-')
                return WHY("'%s' starts or ends with '-'; a DNS label may not", shown(s, b));
        return true;
}

/* Why p is not a normalized absolute path, or NULL. Whitespace and non-ASCII are refused
 * too: fstab and mount units would need them escaped, and YAML folds some Unicode line
 * breaks (NEL, LS) even inside quotes, so `config show` could not print them back. */
static const char *abs_path_problem(const char *p) {
        if (p[0] != '/')
                return "is not an absolute path";
        if (streq(p, "/"))
                return "is the root directory";
        if (strlen(p) >= PATH_MAX)
                return "is too long";
        if (endswith(p, "/"))
                return "ends with '/'";
        if (strstr(p, "//"))
                return "contains '//'";
        if (strstr(p, "/./") || strstr(p, "/../") || endswith(p, "/.") || endswith(p, "/.."))
                return "contains a '.' or '..' component";
        for (const char *q = p; *q; q++)
                if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
                        return "contains whitespace, control or non-ASCII characters";
        return NULL;
}

static bool check_env_name(const char *s) {
        if (!*s || strlen(s) > 255 || is_digit(*s))
                return false;
        for (; *s; s++)
                if (!is_alnum(*s) && *s != '_')
                        return false;
        return true;
}

/* A literal token is a secret: no message may echo it. */
static bool check_token(const char *s, char why[static WHY_MAX]) {
        const char *bad;
        char b[72];

        if (!*s)
                return WHY("is empty; give file:/ABSOLUTE/PATH, env:NAME or a literal secret of "
                           "at least %d characters",
                           TOKEN_MIN_LEN);
        if (startswith(s, "file:")) {
                bad = abs_path_problem(s + 5);
                if (bad)
                        return WHY("'%s': the path %s; write file:/ABSOLUTE/PATH, like "
                                   "file:/etc/rainboot/token",
                                   shown(s, b), bad);
                return true;
        }
        if (startswith(s, "env:")) {
                if (!check_env_name(s + 4))
                        return WHY("'%s' does not name an environment variable; write env:NAME "
                                   "with NAME made of A-Z, a-z, 0-9 and '_', not starting with "
                                   "a digit",
                                   shown(s, b));
                return true;
        }
        if (has_control(s))
                return WHY("the literal token contains control characters; use a printable "
                           "random secret");
        if (strlen(s) < TOKEN_MIN_LEN)
                return WHY("a literal token must be at least %d characters (this one has %zu); "
                           "use a long random secret (openssl rand -hex 32), or file:/PATH or "
                           "env:NAME",
                           TOKEN_MIN_LEN, strlen(s));
        if (strlen(s) > TOKEN_MAX_LEN)
                return WHY("the literal token is longer than %d characters; use a shorter "
                           "secret",
                           TOKEN_MAX_LEN);
        return true;
}

static bool check_ifname(const char *s, char why[static WHY_MAX]) {
        size_t len = strlen(s);
        char b[72];

        if (streq(s, "auto"))
                return true;
        if (len == 0 || len > 15 || streq(s, ".") || streq(s, ".."))
                goto bad;
        for (const char *q = s; *q; q++)
                if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || *q == '/' ||
                    *q == ':')
                        goto bad;
        return true;
bad:
        return WHY("'%s' is not a valid interface name: 1 to 15 characters without '/', ':' "
                   "or whitespace, or auto",
                   shown(s, b));
}

static bool is_hostname(const char *s) {
        size_t len = strlen(s);

        if (len == 0 || len > 253)
                return false;
        for (const char *label = s;;) {
                size_t n = strcspn(label, ".");

                if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!is_alnum(label[i]) && label[i] != '-')
                                return false;
                if (!label[n])
                        return true;
                label += n + 1;
        }
}

static bool check_hostname(const char *s, char why[static WHY_MAX]) {
        char b[72];

        if (!is_hostname(s))
                return WHY("'%s' is not a host name (letters, digits and '-' in dot-separated "
                           "labels, like node-1 or db.example.com)",
                           shown(s, b));
        return true;
}

static bool check_hostport(const char *s, char why[static WHY_MAX]) {
        char host[254], b[72], scratch[WHY_MAX];
        size_t n = strcspn(s, ":");
        unsigned port;

        if (n < sizeof host) {
                memcpy(host, s, n);
                host[n] = 0;
        }
        if (n >= sizeof host || !is_hostname(host) ||
            (s[n] == ':' && !conv_uint(s + n + 1, 1, 65535, &port, scratch)))
                return WHY("'%s' is not host[:port] (like registry.example.com or "
                           "registry.example.com:5000)",
                           shown(s, b));
        return true;
}

static bool check_namespace(const char *s, char why[static WHY_MAX]) {
        size_t len = strlen(s);
        char b[72];

        if (len == 0 || len > 255 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]) ||
            strstr(s, "//"))
                goto bad;
        for (const char *q = s; *q; q++)
                if (!is_lower_alnum(*q) && !strchr("._-/", *q))
                        goto bad;
        return true;
bad:
        return WHY("'%s' is not a registry namespace: lowercase letters, digits and . _ - /, "
                   "like rainbond",
                   shown(s, b));
}

static bool check_user(const char *s, size_t max, char why[static WHY_MAX]) {
        char b[72];

        if (!*s)
                return WHY("is empty; give the user name");
        if (strlen(s) > max)
                return WHY("'%s' is longer than %zu characters", shown(s, b), max);
        for (const char *q = s; *q; q++)
                if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || *q == ':')
                        return WHY("'%s' contains whitespace, ':', control or non-ASCII "
                                   "characters; they break HTTP basic authentication and the "
                                   "config files it is written to",
                                   shown(s, b));
        return true;
}

static bool check_registry_user(const char *s, char why[static WHY_MAX]) {
        return check_user(s, 255, why);
}

/* MySQL 5.7 and 8.0 both cap user names at 32 characters. */
static bool check_mysql_user(const char *s, char why[static WHY_MAX]) {
        return check_user(s, 32, why);
}

static bool check_secret(const char *s, char why[static WHY_MAX]) {
        if (!*s)
                return WHY("is empty; give the password");
        if (has_control(s))
                return WHY("contains control characters; they do not survive the config files "
                           "it is written to");
        if (strlen(s) > SECRET_MAX_LEN)
                return WHY("is longer than %d characters", SECRET_MAX_LEN);
        return true;
}

static bool check_dbname(const char *s, char why[static WHY_MAX]) {
        size_t len = strlen(s);
        char b[72];

        if (len == 0 || len > 64)
                goto bad;
        for (const char *q = s; *q; q++)
                if (!is_alnum(*q) && *q != '_')
                        goto bad;
        return true;
bad:
        return WHY("'%s' is not a database name: 1 to 64 letters, digits or '_'", shown(s, b));
}

static bool check_mount(const char *s, char why[static WHY_MAX]) {
        const char *bad = abs_path_problem(s);
        char b[72];

        if (bad)
                return WHY("'%s' %s; write a normalized absolute path, like /opt/rainbond",
                           shown(s, b), bad);
        return true;
}

static bool check_ca(const char *s, char why[static WHY_MAX]) {
        const char *bad = abs_path_problem(s);
        char b[72];

        if (bad)
                return WHY("'%s' %s; give the absolute path of the CA's PEM file, like "
                           "/etc/rainboot/registry-ca.pem",
                           shown(s, b), bad);
        return true;
}

static bool check_device(const char *s, char why[static WHY_MAX]) {
        char b[72];

        if (!startswith(s, "/dev/") || abs_path_problem(s))
                return WHY("'%s' is not a device path under /dev (like /dev/sdb or "
                           "/dev/disk/by-id/...)",
                           shown(s, b));
        return true;
}

/* ---- the YAML tree ---- */

enum ynode_type { YN_SCALAR, YN_MAPPING, YN_SEQUENCE };

struct ynode {
        enum ynode_type type;
        unsigned line, col;
        char *value; /* scalars */
        size_t len;
        bool plain; /* written without quotes: only then may it be a number, bool or null */
        struct ynode **items; /* mappings: key, value, key, value... */
        size_t n_items, cap;
};

static struct ynode *ynode_free(struct ynode *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_items; i++)
                ynode_free(n->items[i]);
        free(n->items);
        if (n->value)
                explicit_bzero(n->value, n->len); /* may hold a secret */
        free(n->value);
        free(n);
        return NULL;
}

static void ynode_freep(struct ynode **n) { ynode_free(*n); }

static int ynode_new(const yaml_event_t *ev, enum ynode_type type, struct ynode **ret) {
        struct ynode *n = calloc(1, sizeof *n);

        if (!n)
                return -ENOMEM;
        n->type = type;
        n->line = (unsigned)ev->start_mark.line + 1;
        n->col = (unsigned)ev->start_mark.column + 1;
        if (type == YN_SCALAR) {
                n->len = ev->data.scalar.length;
                n->value = malloc(n->len + 1);
                if (!n->value) {
                        free(n);
                        return -ENOMEM;
                }
                memcpy(n->value, ev->data.scalar.value, n->len);
                n->value[n->len] = 0;
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        }
        *ret = n;
        return 0;
}

static int ynode_append(struct ynode *parent, struct ynode *child) {
        if (parent->n_items == parent->cap) {
                size_t cap = parent->cap ? parent->cap * 2 : 8;
                struct ynode **l = reallocarray(parent->items, cap, sizeof *l);

                if (!l)
                        return -ENOMEM;
                parent->items = l;
                parent->cap = cap;
        }
        parent->items[parent->n_items++] = child;
        return 0;
}

static bool is_null(const struct ynode *n) {
        return n->type == YN_SCALAR && n->plain &&
               (n->len == 0 || streq(n->value, "~") || streq(n->value, "null") ||
                streq(n->value, "Null") || streq(n->value, "NULL"));
}

static const char *kind_name(const struct ynode *n) {
        if (n->type == YN_MAPPING)
                return "a mapping";
        if (n->type == YN_SEQUENCE)
                return "a list";
        return is_null(n) ? "nothing" : "a single value";
}

/* ---- reading YAML against the schema ---- */

struct parser {
        struct report rep;
        const char *name;
        struct config *c;
};

static _printf_(5, 6) int perr_at(struct parser *p, unsigned line, unsigned col,
                                  const char *path, const char *fmt, ...) {
        _cleanup_free_ char *where = NULL;
        bool with_path = path && *path;
        va_list ap;

        if (asprintf(&where, "%s:%u:%u%s%s", p->name, line, col, with_path ? ": " : "",
                     with_path ? path : "") < 0) {
                report_take(&p->rep, NULL);
                return -EINVAL;
        }
        va_start(ap, fmt);
        report_v(&p->rep, where, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

#define perr(p, node, path, ...) perr_at((p), (node)->line, (node)->col, (path), __VA_ARGS__)

/* The text of a scalar ("" for null), or NULL after reporting what was expected. */
static const char *scalar(struct parser *p, const struct ynode *v, const char *path,
                          const char *expected) {
        if (v->type != YN_SCALAR) {
                perr(p, v, path, "expected %s, found %s", expected, kind_name(v));
                return NULL;
        }
        if (strlen(v->value) != v->len) {
                perr(p, v, path, "contains a NUL character; remove it");
                return NULL;
        }
        return is_null(v) ? "" : v->value;
}

static void free_secret(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
}

static int get_str(struct parser *p, const struct ynode *v, const char *path, check_fn check,
                   char **dst) {
        char why[WHY_MAX], *copy;
        const char *s = scalar(p, v, path, "a string");

        if (!s)
                return -EINVAL;
        if (!check(s, why))
                return perr(p, v, path, "%s", why);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free_secret(*dst);
        *dst = copy;
        return 0;
}

static int get_opt_str(struct parser *p, const struct ynode *v, const char *path,
                       check_fn check, char **dst) {
        if (is_null(v)) {
                free_secret(*dst);
                *dst = NULL;
                return 0;
        }
        return get_str(p, v, path, check, dst);
}

/* Text of a scalar that must be written plain: a number or a boolean. */
static const char *plain_scalar(struct parser *p, const struct ynode *v, const char *path,
                                const char *expected) {
        const char *s = scalar(p, v, path, expected);
        char b[72];

        if (!s)
                return NULL;
        if (is_null(v)) {
                perr(p, v, path, "has no value; write %s", expected);
                return NULL;
        }
        if (!v->plain) {
                perr(p, v, path, "\"%s\" is quoted, so YAML reads a string; write %s without "
                     "quotes", shown(s, b), expected);
                return NULL;
        }
        return s;
}

static int get_uint(struct parser *p, const struct ynode *v, const char *path, unsigned min,
                    unsigned max, unsigned *ret) {
        char why[WHY_MAX];
        const char *s = plain_scalar(p, v, path, "a whole number");

        if (!s)
                return -EINVAL;
        if (!conv_uint(s, min, max, ret, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

static int get_bool(struct parser *p, const struct ynode *v, const char *path, bool *ret) {
        char why[WHY_MAX];
        const char *s = plain_scalar(p, v, path, "true or false");

        if (!s)
                return -EINVAL;
        if (!conv_bool(s, ret, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

enum field_type { F_STRING, F_OPT_STRING, F_UINT, F_U16, F_BOOL, F_SECTION, F_CUSTOM };

struct field {
        const char *name;
        enum key key; /* K_NONE: not a struct config key */
        enum field_type type;
        size_t offset; /* of the member in the object being filled */
        unsigned min, max;
        check_fn check;
        int (*parse)(struct parser *p, const struct ynode *v, const char *path, void *obj);
        const struct field *fields;
        size_t n_fields;
};

#define SECTION(n, k, f) { .name = n, .key = k, .type = F_SECTION, .fields = f, .n_fields = ELEMENTSOF(f) }

static int walk_mapping(struct parser *p, const struct ynode *m, const char *path,
                        const struct field *fields, size_t n_fields, void *obj);

static int parse_field(struct parser *p, const struct field *f, const struct ynode *v,
                       const char *path, void *obj) {
        void *dst = (char *)obj + f->offset;
        unsigned u;
        int r;

        switch (f->type) {
        case F_STRING:
                return get_str(p, v, path, f->check, dst);
        case F_OPT_STRING:
                return get_opt_str(p, v, path, f->check, dst);
        case F_UINT:
                return get_uint(p, v, path, f->min, f->max, dst);
        case F_U16:
                r = get_uint(p, v, path, f->min, f->max, &u);
                if (r >= 0)
                        *(uint16_t *)dst = (uint16_t)u;
                return r;
        case F_BOOL:
                return get_bool(p, v, path, dst);
        case F_SECTION:
                /* An empty section ("discovery:") keeps every default. */
                if (is_null(v))
                        return 0;
                if (v->type != YN_MAPPING)
                        return perr(p, v, path, "expected a mapping of keys, found %s",
                                    kind_name(v));
                return walk_mapping(p, v, path, f->fields, f->n_fields, obj);
        case F_CUSTOM:
                return f->parse(p, v, path, obj);
        }
        return -EINVAL;
}

static const struct ynode *mapping_get(const struct ynode *m, const char *key) {
        for (size_t i = 0; m->type == YN_MAPPING && i + 1 < m->n_items; i += 2)
                if (m->items[i]->type == YN_SCALAR && streq(m->items[i]->value, key))
                        return m->items[i + 1];
        return NULL;
}

/* Fills obj from mapping m. A value that is refused is reported and skipped, so every
 * problem is found in one pass; only -ENOMEM stops the walk. */
static int walk_mapping(struct parser *p, const struct ynode *m, const char *path,
                        const struct field *fields, size_t n_fields, void *obj) {
        for (size_t i = 0; i + 1 < m->n_items; i += 2) {
                const struct ynode *k = m->items[i], *v = m->items[i + 1];
                const struct field *f = NULL;
                char sub[512], b[72];
                bool dup = false;
                int r;

                if (k->type != YN_SCALAR || strlen(k->value) != k->len) {
                        perr(p, k, path, "a key must be a single word, found %s", kind_name(k));
                        continue;
                }
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", shown(k->value, b));
                for (size_t j = 0; j < i && !dup; j += 2)
                        if (m->items[j]->type == YN_SCALAR && streq(m->items[j]->value, k->value)) {
                                perr(p, k, sub, "duplicate key (first at line %u); keep only one",
                                     m->items[j]->line);
                                dup = true;
                        }
                if (dup)
                        continue;
                for (size_t j = 0; j < n_fields && !f; j++)
                        if (streq(fields[j].name, k->value))
                                f = &fields[j];
                if (!f) {
                        char list[256] = "";

                        for (size_t j = 0; j < n_fields; j++) {
                                if (j > 0)
                                        strncat(list, ", ", sizeof list - strlen(list) - 1);
                                strncat(list, fields[j].name, sizeof list - strlen(list) - 1);
                        }
                        perr(p, k, sub, "unknown key; valid keys %s%s: %s",
                             *path ? "under " : "at the top level", path, list);
                        continue;
                }
                r = parse_field(p, f, v, sub, obj);
                if (r == -ENOMEM)
                        return r;
                set_source(p->c, f->key, r < 0 ? SRC_INVALID : SRC_FILE, v->line, v->col);
        }
        return 0;
}

static int parse_group(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        struct config *c = obj;
        char why[WHY_MAX];
        const char *s = scalar(p, v, path, "a multicast group");

        if (!s)
                return -EINVAL;
        if (!conv_group(s, &c->discovery_group, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

static int parse_vip_address(struct parser *p, const struct ynode *v, const char *path,
                             void *obj) {
        struct config *c = obj;
        char why[WHY_MAX];
        const char *s = scalar(p, v, path, "an address with prefix");

        if (!s)
                return -EINVAL;
        if (!conv_vip(s, &c->vip, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

static const struct field vip_fields[] = {
        { .name = "address", .key = K_VIP_ADDRESS, .type = F_CUSTOM, .parse = parse_vip_address },
        { .name = "interface", .key = K_VIP_INTERFACE, .type = F_STRING,
          .offset = offsetof(struct config, vip_interface), .check = check_ifname },
        { .name = "router_id", .key = K_ROUTER_ID, .type = F_UINT,
          .offset = offsetof(struct config, vip_router_id), .min = 1, .max = 255 },
};

static int parse_vip(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        struct config *c = obj;
        int r;

        c->has_vip = false;
        if (is_null(v))
                return 0;
        if (v->type != YN_MAPPING)
                return perr(p, v, path, "expected a mapping like {address: 192.0.2.100/24}, or "
                            "null, found %s", kind_name(v));
        r = walk_mapping(p, v, path, vip_fields, ELEMENTSOF(vip_fields), c);
        if (r < 0)
                return r;
        switch (source_of(c, K_VIP_ADDRESS)) {
        case SRC_FILE:
                c->has_vip = true;
                return 0;
        case SRC_INVALID:
                return -EINVAL;
        default:
                return perr(p, v, "vip.address", "missing; give the virtual IP with its prefix, "
                            "like address: 192.0.2.100/24");
        }
}

struct pin_parse {
        struct pin pin;
        bool has_match;
};

static int parse_pin_mac(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        struct pin_parse *pp = obj;
        char why[WHY_MAX];
        const char *s = scalar(p, v, path, "a MAC address");

        if (!s)
                return -EINVAL;
        if (!conv_mac(s, pp->pin.mac, why))
                return perr(p, v, path, "%s", why);
        pp->pin.has_mac = true;
        return 0;
}

static const struct field match_fields[] = {
        { .name = "mac", .type = F_CUSTOM, .parse = parse_pin_mac },
        { .name = "hostname", .type = F_STRING, .check = check_hostname,
          .offset = offsetof(struct pin_parse, pin.hostname) },
};

static int parse_pin_match(struct parser *p, const struct ynode *v, const char *path,
                           void *obj) {
        struct pin_parse *pp = obj;
        unsigned before = p->rep.problems;
        int r;

        if (v->type != YN_MAPPING)
                return perr(p, v, path, "expected a mapping like {mac: \"52:54:00:00:00:01\"} "
                            "or {hostname: node-1}, found %s", kind_name(v));
        r = walk_mapping(p, v, path, match_fields, ELEMENTSOF(match_fields), pp);
        if (r < 0)
                return r;
        if (p->rep.problems > before)
                return -EINVAL;
        if (pp->pin.has_mac == !!pp->pin.hostname)
                return perr(p, v, path, "give exactly one of mac or hostname, like {mac: "
                            "\"52:54:00:00:00:01\"} or {hostname: node-1}");
        pp->has_match = true;
        return 0;
}

static int parse_pin_roles(struct parser *p, const struct ynode *v, const char *path,
                           void *obj) {
        struct pin_parse *pp = obj;
        unsigned roles = 0;
        bool bad = false;

        if (v->type != YN_SEQUENCE || v->n_items == 0)
                return perr(p, v, path, "expected a non-empty list of roles like [master, "
                            "gateway], found %s", v->type == YN_SEQUENCE ? "an empty list" :
                            kind_name(v));
        for (size_t i = 0; i < v->n_items; i++) {
                const struct ynode *item = v->items[i];
                const char *s;
                char sub[512], b[72];
                unsigned role;

                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                s = scalar(p, item, sub, "a role name");
                if (!s) {
                        bad = true;
                        continue;
                }
                role = role_from_name(s);
                if (!role) {
                        perr(p, item, sub, "unknown role '%s'; valid roles: master, etcd, "
                             "worker, rbd-gateway (or gateway), rbd-chaos (or builder), "
                             "registry, mysql", shown(s, b));
                        bad = true;
                        continue;
                }
                roles |= role;
        }
        if (bad)
                return -EINVAL;
        pp->pin.roles = roles;
        return 0;
}

static const struct field pin_fields[] = {
        { .name = "match", .type = F_CUSTOM, .parse = parse_pin_match },
        { .name = "roles", .type = F_CUSTOM, .parse = parse_pin_roles },
};

static int pin_append(struct config *c, struct pin *pin, const struct ynode *v) {
        struct pin *l = reallocarray(c->pins, c->n_pins + 1, sizeof *l);

        if (!l)
                return -ENOMEM;
        c->pins = l;
        if (c->origin) {
                struct mark *m = reallocarray(c->origin->pins, c->n_pins + 1, sizeof *m);

                if (!m)
                        return -ENOMEM;
                c->origin->pins = m;
                m[c->n_pins] = (struct mark){ v->line, v->col };
        }
        c->pins[c->n_pins++] = *pin;
        *pin = (struct pin){};
        return 0;
}

static int parse_pin(struct parser *p, const struct ynode *v, const char *path,
                     struct config *c) {
        struct pin_parse pp = {};
        unsigned before = p->rep.problems;
        int r;

        if (v->type != YN_MAPPING)
                return perr(p, v, path, "expected a mapping with match: and roles:, found %s",
                            kind_name(v));
        r = walk_mapping(p, v, path, pin_fields, ELEMENTSOF(pin_fields), &pp);
        if (r >= 0 && p->rep.problems == before) {
                if (!pp.has_match)
                        r = perr(p, v, path, "match is missing; add match: {mac: ...} or "
                                 "match: {hostname: ...}");
                else if (!pp.pin.roles)
                        r = perr(p, v, path, "roles is missing; add roles: [...]");
                else {
                        pp.pin.line = v->line;
                        r = pin_append(c, &pp.pin, v);
                }
        } else if (r >= 0)
                r = -EINVAL;
        free(pp.pin.hostname);
        return r;
}

static int parse_pins(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        bool bad = false;
        int r;

        if (is_null(v))
                return 0;
        if (v->type != YN_SEQUENCE)
                return perr(p, v, path, "expected a list of pins (- match: {...} with roles: "
                            "[...]), found %s", kind_name(v));
        for (size_t i = 0; i < v->n_items; i++) {
                char sub[512];

                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                r = parse_pin(p, v->items[i], sub, obj);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        bad = true;
        }
        return bad ? -EINVAL : 0;
}

static const struct field roles_fields[] = {
        { .name = "masters", .key = K_MASTERS, .type = F_UINT,
          .offset = offsetof(struct config, masters), .min = 1, .max = 1000 },
        { .name = "gateways", .key = K_GATEWAYS, .type = F_UINT,
          .offset = offsetof(struct config, gateways), .min = 1, .max = 1000 },
        { .name = "builders", .key = K_BUILDERS, .type = F_UINT,
          .offset = offsetof(struct config, builders), .min = 0, .max = 1000 },
        { .name = "pins", .key = K_PINS, .type = F_CUSTOM, .parse = parse_pins },
};

static struct external_registry *registry_free(struct external_registry *r) {
        if (!r)
                return NULL;
        free(r->domain);
        free(r->namespace);
        free(r->username);
        free_secret(r->password);
        free(r->ca);
        free(r);
        return NULL;
}

static void registry_freep(struct external_registry **r) { registry_free(*r); }

static struct external_mysql *mysql_free(struct external_mysql *m) {
        if (!m)
                return NULL;
        free(m->host);
        free(m->username);
        free_secret(m->password);
        free(m->console_database);
        free(m->region_database);
        free(m);
        return NULL;
}

static void mysql_freep(struct external_mysql **m) { mysql_free(*m); }

/* Plain false (or no) as "none", for the external services. */
static bool is_false(const struct ynode *v) {
        bool b;
        char why[WHY_MAX];

        return v->type == YN_SCALAR && v->plain && conv_bool(v->value, &b, why) && !b;
}

static int parse_lb_address(struct parser *p, const struct ynode *v, const char *path,
                            void *obj) {
        struct external_lb *lb = obj;
        char why[WHY_MAX];
        const char *s = scalar(p, v, path, "an IPv4 address");

        if (!s)
                return -EINVAL;
        if (!conv_host_ipv4(s, &lb->address, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

static const struct field lb_fields[] = {
        { .name = "address", .type = F_CUSTOM, .parse = parse_lb_address },
        { .name = "api_port", .type = F_U16, .offset = offsetof(struct external_lb, api_port),
          .min = 1, .max = 65535 },
};

static int parse_load_balancer(struct parser *p, const struct ynode *v, const char *path,
                               void *obj) {
        static const uint16_t gateway_ports[] = { 80, 443, 6060, 7070, 8443 };
        struct config *c = obj;
        _cleanup_free_ struct external_lb *lb = NULL;
        const struct ynode *port;
        unsigned before = p->rep.problems;
        bool b;
        char why[WHY_MAX];
        int r;

        if (is_null(v) || is_false(v)) {
                free(c->ext_lb);
                c->ext_lb = NULL;
                return 0;
        }
        if (v->type == YN_SCALAR && v->plain && conv_bool(v->value, &b, why))
                return perr(p, v, path, "true alone is not enough: give the load balancer's "
                            "address, like load_balancer: {address: 192.0.2.10}");
        if (v->type != YN_MAPPING)
                return perr(p, v, path, "expected false or a mapping like {address: "
                            "192.0.2.10, api_port: 6443}, found %s", kind_name(v));
        lb = calloc(1, sizeof *lb);
        if (!lb)
                return -ENOMEM;
        lb->api_port = 6443;
        r = walk_mapping(p, v, path, lb_fields, ELEMENTSOF(lb_fields), lb);
        if (r < 0)
                return r;
        if (p->rep.problems > before)
                return -EINVAL;
        if (!mapping_get(v, "address"))
                return perr(p, v, path, "address is missing; give the load balancer's IPv4 "
                            "address, like address: 192.0.2.10");
        port = mapping_get(v, "api_port");
        for (size_t i = 0; i < ELEMENTSOF(gateway_ports); i++)
                if (lb->api_port == gateway_ports[i])
                        return perr(p, port ? port : v, path, "api_port %u is one of the "
                                    "Rainbond gateway ports the load balancer forwards (80, "
                                    "443, 6060, 7070, 8443); use another, like 6443",
                                    lb->api_port);
        free(c->ext_lb);
        c->ext_lb = TAKE_PTR(lb);
        return 0;
}

static const struct field registry_fields[] = {
        { .name = "domain", .type = F_STRING, .check = check_hostport,
          .offset = offsetof(struct external_registry, domain) },
        { .name = "namespace", .type = F_OPT_STRING, .check = check_namespace,
          .offset = offsetof(struct external_registry, namespace) },
        { .name = "username", .type = F_OPT_STRING, .check = check_registry_user,
          .offset = offsetof(struct external_registry, username) },
        { .name = "password", .type = F_OPT_STRING, .check = check_secret,
          .offset = offsetof(struct external_registry, password) },
        { .name = "ca", .type = F_OPT_STRING, .check = check_ca,
          .offset = offsetof(struct external_registry, ca) },
};

static int parse_registry(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        struct config *c = obj;
        _cleanup_(registry_freep) struct external_registry *reg = NULL;
        unsigned before = p->rep.problems;
        int r;

        if (is_null(v) || is_false(v)) {
                c->ext_registry = registry_free(c->ext_registry);
                return 0;
        }
        if (v->type != YN_MAPPING)
                return perr(p, v, path, "expected null or a mapping like {domain: "
                            "registry.example.com, ...}, found %s", kind_name(v));
        reg = calloc(1, sizeof *reg);
        if (!reg)
                return -ENOMEM;
        r = walk_mapping(p, v, path, registry_fields, ELEMENTSOF(registry_fields), reg);
        if (r < 0)
                return r;
        if (p->rep.problems > before)
                return -EINVAL;
        if (!reg->domain)
                return perr(p, v, path, "domain is missing; give the registry's host[:port], "
                            "like domain: registry.example.com");
        if (reg->password && !reg->username)
                return perr(p, mapping_get(v, "password"), path, "password without username; "
                            "give both or neither");
        if (reg->username && !reg->password)
                return perr(p, mapping_get(v, "username"), path, "username without password; "
                            "give both or neither");
        registry_free(c->ext_registry);
        c->ext_registry = TAKE_PTR(reg);
        return 0;
}

static const struct field mysql_fields[] = {
        { .name = "host", .type = F_STRING, .check = check_hostname,
          .offset = offsetof(struct external_mysql, host) },
        { .name = "port", .type = F_U16, .offset = offsetof(struct external_mysql, port),
          .min = 1, .max = 65535 },
        { .name = "username", .type = F_STRING, .check = check_mysql_user,
          .offset = offsetof(struct external_mysql, username) },
        { .name = "password", .type = F_STRING, .check = check_secret,
          .offset = offsetof(struct external_mysql, password) },
        { .name = "console_database", .type = F_STRING, .check = check_dbname,
          .offset = offsetof(struct external_mysql, console_database) },
        { .name = "region_database", .type = F_STRING, .check = check_dbname,
          .offset = offsetof(struct external_mysql, region_database) },
};

static int parse_mysql(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        static const char *const required[] = { "host", "username", "password" };
        struct config *c = obj;
        _cleanup_(mysql_freep) struct external_mysql *m = NULL;
        char missing[64] = "";
        unsigned before = p->rep.problems;
        int r;

        if (is_null(v) || is_false(v)) {
                c->ext_mysql = mysql_free(c->ext_mysql);
                return 0;
        }
        if (v->type != YN_MAPPING)
                return perr(p, v, path, "expected null or a mapping like {host: "
                            "db.example.com, username: ..., password: ...}, found %s",
                            kind_name(v));
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->port = 3306;
        m->console_database = strdup("console");
        m->region_database = strdup("region");
        if (!m->console_database || !m->region_database)
                return -ENOMEM;
        r = walk_mapping(p, v, path, mysql_fields, ELEMENTSOF(mysql_fields), m);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!mapping_get(v, required[i])) {
                        if (*missing)
                                strcat(missing, ", ");
                        strcat(missing, required[i]);
                }
        if (*missing)
                perr(p, v, path, "missing %s; an external MySQL needs host, username and "
                     "password", missing);
        if (p->rep.problems > before)
                return -EINVAL;
        if (streq(m->console_database, m->region_database))
                return perr(p, mapping_get(v, "region_database") ?: v, path,
                            "console_database and region_database are both '%s'; Rainbond "
                            "needs two databases", m->region_database);
        mysql_free(c->ext_mysql);
        c->ext_mysql = TAKE_PTR(m);
        return 0;
}

static const struct field external_fields[] = {
        { .name = "load_balancer", .key = K_LOAD_BALANCER, .type = F_CUSTOM,
          .parse = parse_load_balancer },
        { .name = "registry", .key = K_REGISTRY, .type = F_CUSTOM, .parse = parse_registry },
        { .name = "mysql", .key = K_MYSQL, .type = F_CUSTOM, .parse = parse_mysql },
};

static int parse_wipe(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        struct config *c = obj;
        char why[WHY_MAX];
        const char *s = scalar(p, v, path, "a wipe policy");

        if (!s)
                return -EINVAL;
        if (!conv_wipe(s, &c->wipe, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

static int parse_devices(struct parser *p, const struct ynode *v, const char *path, void *obj) {
        struct config *c = obj;
        _cleanup_strv_free_ char **l = NULL;
        bool bad = false;

        if (!is_null(v) && v->type != YN_SEQUENCE)
                return perr(p, v, path, "expected a list of device paths like [/dev/sdb], "
                            "found %s", kind_name(v));
        for (size_t i = 0; !is_null(v) && i < v->n_items; i++) {
                const struct ynode *item = v->items[i];
                char sub[512], why[WHY_MAX];
                const char *s;

                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                s = scalar(p, item, sub, "a device path");
                if (!s) {
                        bad = true;
                        continue;
                }
                if (!check_device(s, why)) {
                        perr(p, item, sub, "%s", why);
                        bad = true;
                        continue;
                }
                if (strv_contains(l, s)) {
                        perr(p, item, sub, "'%s' is listed twice; list each disk once", s);
                        bad = true;
                        continue;
                }
                if (strv_push(&l, s) < 0)
                        return -ENOMEM;
        }
        if (bad)
                return -EINVAL;
        strv_free(c->disk_devices);
        c->disk_devices = TAKE_PTR(l);
        return 0;
}

static const struct field disks_fields[] = {
        { .name = "data_mount", .key = K_DATA_MOUNT, .type = F_STRING, .check = check_mount,
          .offset = offsetof(struct config, data_mount) },
        { .name = "cache_mount", .key = K_CACHE_MOUNT, .type = F_STRING, .check = check_mount,
          .offset = offsetof(struct config, cache_mount) },
        { .name = "services_mount", .key = K_SERVICES_MOUNT, .type = F_STRING,
          .check = check_mount, .offset = offsetof(struct config, services_mount) },
        { .name = "wipe", .key = K_WIPE, .type = F_CUSTOM, .parse = parse_wipe },
        { .name = "devices", .key = K_DEVICES, .type = F_CUSTOM, .parse = parse_devices },
        { .name = "force_members", .key = K_FORCE_MEMBERS, .type = F_BOOL,
          .offset = offsetof(struct config, force_members) },
};

static int parse_distribution(struct parser *p, const struct ynode *v, const char *path,
                              void *obj) {
        struct config *c = obj;
        char why[WHY_MAX];
        const char *s = scalar(p, v, path, "a distribution name");

        if (!s)
                return -EINVAL;
        if (!conv_distribution(s, &c->k8s, why))
                return perr(p, v, path, "%s", why);
        return 0;
}

static const struct field kubernetes_fields[] = {
        { .name = "distribution", .key = K_DISTRIBUTION, .type = F_CUSTOM,
          .parse = parse_distribution },
};

static const struct field cluster_fields[] = {
        { .name = "name", .key = K_CLUSTER_NAME, .type = F_STRING, .check = check_dns_label,
          .offset = offsetof(struct config, cluster_name) },
        { .name = "token", .key = K_TOKEN, .type = F_STRING, .check = check_token,
          .offset = offsetof(struct config, token) },
        { .name = "expected_nodes", .key = K_EXPECTED_NODES, .type = F_UINT,
          .offset = offsetof(struct config, expected_nodes), .min = 1, .max = 1000 },
};

static const struct field discovery_fields[] = {
        { .name = "group", .key = K_GROUP, .type = F_CUSTOM, .parse = parse_group },
        { .name = "port", .key = K_PORT, .type = F_U16,
          .offset = offsetof(struct config, discovery_port), .min = 1, .max = 65535 },
        { .name = "interface", .key = K_DISCOVERY_INTERFACE, .type = F_STRING,
          .check = check_ifname, .offset = offsetof(struct config, discovery_interface) },
        { .name = "settle_ms", .key = K_SETTLE_MS, .type = F_UINT,
          .offset = offsetof(struct config, settle_ms), .min = 100, .max = 600000 },
        { .name = "interval_ms", .key = K_INTERVAL_MS, .type = F_UINT,
          .offset = offsetof(struct config, interval_ms), .min = 20, .max = 10000 },
};

static const struct field root_fields[] = {
        SECTION("cluster", K_CLUSTER, cluster_fields),
        SECTION("discovery", K_DISCOVERY, discovery_fields),
        { .name = "vip", .key = K_VIP, .type = F_CUSTOM, .parse = parse_vip },
        SECTION("roles", K_ROLES, roles_fields),
        SECTION("external", K_EXTERNAL, external_fields),
        SECTION("disks", K_DISKS, disks_fields),
        SECTION("kubernetes", K_KUBERNETES, kubernetes_fields),
};

/* ---- YAML events → tree ---- */

static void offset_to_mark(const char *buf, size_t len, size_t offset, unsigned *line,
                           unsigned *col) {
        *line = 1;
        *col = 1;
        for (size_t i = 0; i < offset && i < len; i++) {
                if (buf[i] == '\n') {
                        (*line)++;
                        *col = 1;
                } else
                        (*col)++;
        }
}

static int report_yaml_error(struct parser *p, const yaml_parser_t *yp, const char *buf,
                             size_t len) {
        const char *problem = yp->problem ? yp->problem : "syntax error";
        unsigned line, col;

        if (yp->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        if (yp->error == YAML_READER_ERROR) {
                offset_to_mark(buf, len, yp->problem_offset, &line, &col);
                return perr_at(p, line, col, NULL, "not valid YAML text: %s; the file "
                               "must be UTF-8", problem);
        }
        line = (unsigned)yp->problem_mark.line + 1;
        col = (unsigned)yp->problem_mark.column + 1;
        if (yp->context)
                return perr_at(p, line, col, NULL, "invalid YAML: %s %s (line %u, "
                               "column %u); check the indentation and quoting here",
                               problem, yp->context, (unsigned)yp->context_mark.line + 1,
                               (unsigned)yp->context_mark.column + 1);
        return perr_at(p, line, col, NULL, "invalid YAML: %s; check the indentation "
                       "and quoting here", problem);
}

static void yaml_parser_deletep(yaml_parser_t *yp) { yaml_parser_delete(yp); }

/* Builds the tree of the one document in buf. Returns 0 with *ret NULL for an empty
 * stream, -EINVAL after reporting a syntax error. */
static int yaml_load(struct parser *p, const char *buf, size_t len, struct ynode **ret) {
        _cleanup_(yaml_parser_deletep) yaml_parser_t yp = {};
        _cleanup_(ynode_freep) struct ynode *root = NULL;
        struct ynode *stack[YAML_MAX_DEPTH];
        size_t depth = 0;
        unsigned docs = 0;

        if (!yaml_parser_initialize(&yp))
                return -ENOMEM;
        yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
        for (;;) {
                yaml_event_t ev;
                struct ynode *n = NULL;
                enum ynode_type type;
                int r = 0;

                if (!yaml_parser_parse(&yp, &ev))
                        return report_yaml_error(p, &yp, buf, len);
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        yaml_event_delete(&ev);
                        *ret = TAKE_PTR(root);
                        return 0;
                case YAML_DOCUMENT_START_EVENT:
                        if (++docs > 1)
                                r = perr_at(p, (unsigned)ev.start_mark.line + 1,
                                            (unsigned)ev.start_mark.column + 1, NULL,
                                            "a second YAML document; a config is one "
                                            "document, remove the second '---'");
                        break;
                case YAML_ALIAS_EVENT:
                        r = perr_at(p, (unsigned)ev.start_mark.line + 1,
                                    (unsigned)ev.start_mark.column + 1, NULL,
                                    "aliases (*name) are not supported; write the value out");
                        break;
                case YAML_SCALAR_EVENT:
                case YAML_MAPPING_START_EVENT:
                case YAML_SEQUENCE_START_EVENT:
                        type = ev.type == YAML_SCALAR_EVENT           ? YN_SCALAR
                               : ev.type == YAML_MAPPING_START_EVENT ? YN_MAPPING
                                                                      : YN_SEQUENCE;
                        if (type != YN_SCALAR && depth == YAML_MAX_DEPTH) {
                                r = perr_at(p, (unsigned)ev.start_mark.line + 1,
                                            (unsigned)ev.start_mark.column + 1, NULL,
                                            "nested deeper than %d levels; no rainboot key is "
                                            "that deep", YAML_MAX_DEPTH);
                                break;
                        }
                        r = ynode_new(&ev, type, &n);
                        if (r < 0)
                                break;
                        if (depth == 0 && !root)
                                root = n;
                        else if (depth > 0) {
                                r = ynode_append(stack[depth - 1], n);
                                if (r < 0) {
                                        ynode_free(n);
                                        break;
                                }
                        } else {
                                ynode_free(n); /* cannot happen: one root per document */
                                break;
                        }
                        if (type != YN_SCALAR)
                                stack[depth++] = n;
                        break;
                case YAML_MAPPING_END_EVENT:
                case YAML_SEQUENCE_END_EVENT:
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
                if (r < 0)
                        return r;
        }
}

/* ---- defaults and whole-config checks ---- */

/* Defaults that follow other keys are computed after the file and again after kernel
 * command-line overrides, as long as the key itself was not written. */
static int apply_derived_defaults(struct config *c) {
        if (!c->origin)
                return 0;
        if (source_of(c, K_MASTERS) == SRC_DEFAULT)
                c->masters = c->expected_nodes >= 3 ? 3 : 1;
        if (source_of(c, K_GATEWAYS) == SRC_DEFAULT) {
                /* In a cluster of up to three nodes every master is a gateway too. */
                if (c->expected_nodes <= 3)
                        c->gateways = c->masters < c->expected_nodes || !c->expected_nodes
                                              ? c->masters
                                              : c->expected_nodes;
                else
                        c->gateways = 2;
        }
        if (source_of(c, K_CACHE_MOUNT) == SRC_DEFAULT && c->data_mount) {
                char *s;

                if (asprintf(&s, "%s/cache", c->data_mount) < 0)
                        return -ENOMEM;
                free(c->cache_mount);
                c->cache_mount = s;
        }
        return 0;
}

static const char *cmdline_note(const struct config *c, enum key k) {
        return source_of(c, k) == SRC_CMDLINE ? " (set on the kernel command line)" : "";
}

static char *pin_where(const struct config *c, size_t i) {
        const char *name = c->path ? c->path : "config";
        char *s = NULL;

        if (c->origin && c->origin->pins) {
                if (asprintf(&s, "%s:%u:%u: roles.pins[%zu]", name, c->origin->pins[i].line,
                             c->origin->pins[i].col, i) < 0)
                        return NULL;
        } else if (asprintf(&s, "%s: roles.pins[%zu]", name, i) < 0)
                return NULL;
        return s;
}

static bool pin_same_node(const struct pin *a, const struct pin *b) {
        if (a->has_mac && b->has_mac)
                return memcmp(a->mac, b->mac, 6) == 0;
        return a->hostname && b->hostname && strcasecmp(a->hostname, b->hostname) == 0;
}

static void validate_pins(const struct config *c, struct report *rep) {
        unsigned master_pins = 0;

        if (!usable(c, K_PINS))
                return;
        for (size_t i = 0; i < c->n_pins; i++) {
                _cleanup_free_ char *where = NULL;

                for (size_t j = 0; j < i; j++)
                        if (pin_same_node(&c->pins[i], &c->pins[j])) {
                                where = pin_where(c, i);
                                report(rep, where, "pins the same node as roles.pins[%zu] (line "
                                       "%u); merge their roles into one pin", j,
                                       c->pins[j].line);
                                break;
                        }
                if (!(c->pins[i].roles & ROLE_MASTER) || !usable(c, K_MASTERS))
                        continue;
                if (++master_pins == c->masters + 1) {
                        free(where);
                        where = pin_where(c, i);
                        report(rep, where, "one pin with role master too many: roles.masters "
                               "is %u; unpin a master or raise roles.masters", c->masters);
                }
        }
}

static void validate_mounts(const struct config *c, struct report *rep) {
        const struct {
                enum key key;
                const char *path;
        } m[] = {
                { K_DATA_MOUNT, c->data_mount },
                { K_CACHE_MOUNT, c->cache_mount },
                { K_SERVICES_MOUNT, c->services_mount },
        };

        for (size_t i = 0; i < ELEMENTSOF(m); i++)
                for (size_t j = i + 1; j < ELEMENTSOF(m); j++) {
                        if (!m[i].path || !m[j].path || !streq(m[i].path, m[j].path) ||
                            !usable(c, m[i].key) || !usable(c, m[j].key))
                                continue;
                        kerr(rep, c, blame(c, m[j].key, m[i].key), "'%s' is used by both %s "
                             "and %s; each needs its own directory", m[i].path,
                             keys[m[i].key].path, keys[m[j].key].path);
                }
}

static void validate(const struct config *c, struct report *rep) {
        bool nodes_ok = c->expected_nodes > 0 && usable(c, K_EXPECTED_NODES);

        if (!c->cluster_name && usable(c, K_CLUSTER_NAME))
                kerr(rep, c, K_CLUSTER_NAME, "missing; name the cluster with a DNS label, like "
                     "name: prod-a");
        if (!c->token && usable(c, K_TOKEN))
                kerr(rep, c, K_TOKEN, "missing; give the shared secret: file:/etc/rainboot/"
                     "token, env:NAME, or a literal of at least %d characters", TOKEN_MIN_LEN);
        if (c->expected_nodes == 0 && usable(c, K_EXPECTED_NODES))
                kerr(rep, c, K_EXPECTED_NODES, "missing; give the number of nodes that form the "
                     "cluster, like expected_nodes: 3");

        if (nodes_ok && c->expected_nodes > 1 && !c->has_vip && !c->ext_lb &&
            usable(c, K_VIP) && usable(c, K_LOAD_BALANCER))
                kerr(rep, c, source_of(c, K_EXPECTED_NODES) == SRC_CMDLINE ? K_EXPECTED_NODES : K_VIP,
                     "a cluster of %u nodes needs a "
                     "virtual IP for its gateways (vip: {address: 192.0.2.100/24}, or "
                     "rainboot.vip=), or an existing load balancer (external.load_balancer)",
                     c->expected_nodes);
        if (c->has_vip && c->ext_lb && usable(c, K_VIP) && usable(c, K_LOAD_BALANCER))
                kerr(rep, c, K_VIP, "is set, but external.load_balancer replaces the VIP (no "
                     "keepalived runs); remove one of them");

        if (usable(c, K_MASTERS) && c->masters % 2 == 0)
                kerr(rep, c, K_MASTERS, "%u is even; etcd needs an odd number of members to keep "
                     "a majority, use 1, 3 or 5", c->masters);
        else if (nodes_ok && usable(c, K_MASTERS) && c->masters > c->expected_nodes)
                kerr(rep, c, blame(c, K_MASTERS, K_EXPECTED_NODES), "%u masters are more than the %u "
                     "expected nodes%s; use an odd number of masters up to the node count", c->masters, c->expected_nodes,
                     cmdline_note(c, K_EXPECTED_NODES));
        if (nodes_ok && usable(c, K_GATEWAYS) && c->gateways > c->expected_nodes)
                kerr(rep, c, blame(c, K_GATEWAYS, K_EXPECTED_NODES), "%u gateways are more than the "
                     "%u expected nodes%s", c->gateways, c->expected_nodes,
                     cmdline_note(c, K_EXPECTED_NODES));
        if (nodes_ok && usable(c, K_BUILDERS) && c->builders > c->expected_nodes)
                kerr(rep, c, blame(c, K_BUILDERS, K_EXPECTED_NODES), "%u builders are more than the "
                     "%u expected nodes%s", c->builders, c->expected_nodes,
                     cmdline_note(c, K_EXPECTED_NODES));
        validate_pins(c, rep);

        if (usable(c, K_SETTLE_MS) && usable(c, K_INTERVAL_MS) &&
            c->settle_ms < 2 * c->interval_ms)
                kerr(rep, c, blame(c, K_SETTLE_MS, K_INTERVAL_MS), "settle_ms %u is less than twice "
                     "interval_ms %u: a view cannot be called stable before every peer was "
                     "heard twice; raise settle_ms to at least %u", c->settle_ms, c->interval_ms,
                     2 * c->interval_ms);

        validate_mounts(c, rep);
        if (c->wipe == WIPE_FORCE_LISTED && strv_length(c->disk_devices) == 0 &&
            usable(c, K_WIPE) && usable(c, K_DEVICES))
                kerr(rep, c, K_WIPE, "force-listed needs disks.devices: list the disks that may "
                     "be overwritten, like devices: [/dev/sdb]");
        if (c->force_members && c->wipe != WIPE_FORCE_LISTED && usable(c, K_WIPE) &&
            usable(c, K_FORCE_MEMBERS))
                kerr(rep, c, K_FORCE_MEMBERS, "true only matters with disks.wipe: force-listed; "
                     "remove it or set wipe: force-listed");
}

int config_validate(const struct config *c, struct diag *diag) {
        struct report rep = { .diag = diag };

        if (!c)
                return -EINVAL;
        validate(c, &rep);
        return report_result(&rep);
}

/* ---- construction, parsing, freeing ---- */

struct config *config_free(struct config *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->cluster_name);
        free_secret(c->token);
        free(c->discovery_interface);
        free(c->vip_interface);
        for (size_t i = 0; i < c->n_pins; i++)
                free(c->pins[i].hostname);
        free(c->pins);
        free(c->ext_lb);
        registry_free(c->ext_registry);
        mysql_free(c->ext_mysql);
        free(c->data_mount);
        free(c->cache_mount);
        free(c->services_mount);
        strv_free(c->disk_devices);
        origin_free(c->origin);
        free(c);
        return NULL;
}

int config_new_default(struct config **ret) {
        _cleanup_config_ struct config *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        c->origin = calloc(1, sizeof *c->origin);
        c->discovery_group.s_addr = htonl(0xefff4d4d); /* 239.255.77.77 */
        c->discovery_port = 7788;
        c->discovery_interface = strdup("auto");
        c->settle_ms = 1500;
        c->interval_ms = 250;
        c->vip_interface = strdup("auto");
        c->vip_router_id = 51;
        c->masters = c->gateways = c->builders = 1;
        c->data_mount = strdup("/opt/rainbond");
        c->cache_mount = strdup("/opt/rainbond/cache");
        c->services_mount = strdup("/var/lib/rainboot/data");
        c->wipe = WIPE_EMPTY_ONLY;
        c->k8s = K8S_RKE2;
        if (!c->origin || !c->discovery_interface || !c->vip_interface || !c->data_mount ||
            !c->cache_mount || !c->services_mount)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_parse_string(const char *buf, size_t len, const char *name, struct config **ret,
                        struct diag *diag) {
        _cleanup_config_ struct config *c = NULL;
        _cleanup_(ynode_freep) struct ynode *root = NULL;
        struct parser p = { .rep.diag = diag, .name = name ? name : "config" };
        int r;

        r = config_new_default(&c);
        if (r < 0)
                return r;
        c->path = strdup(p.name);
        if (!c->path)
                return -ENOMEM;
        p.c = c;
        if (len > CONFIG_MAX_SIZE)
                return perr_at(&p, 1, 1, NULL, "larger than %d bytes; this is not a "
                               "cluster config", CONFIG_MAX_SIZE);
        r = yaml_load(&p, buf, len, &root);
        if (r < 0)
                return r == -ENOMEM ? r : report_result(&p.rep);
        if (!root || is_null(root)) {
                perr_at(&p, 1, 1, NULL, "the config is empty; it needs at least cluster: "
                        "with name, token and expected_nodes");
                return report_result(&p.rep);
        }
        if (root->type != YN_MAPPING) {
                perr(&p, root, NULL, "expected a mapping of sections (cluster:, discovery:, "
                     "vip:, ...), found %s", kind_name(root));
                return report_result(&p.rep);
        }
        set_source(c, K_ROOT, SRC_FILE, root->line, root->col);
        r = walk_mapping(&p, root, "", root_fields, ELEMENTSOF(root_fields), c);
        if (r < 0)
                return r;
        r = apply_derived_defaults(c);
        if (r < 0)
                return r;
        validate(c, &p.rep);
        r = report_result(&p.rep);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_parse_file(const char *path, struct config **ret, struct diag *diag) {
        struct report rep = { .diag = diag };
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        r = read_full_file(path, &buf, &size);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                report(&rep, path, "cannot read the config: %s", strerror(-r));
                return rep.oom ? -ENOMEM : r;
        }
        r = config_parse_string(buf, size, path, ret, diag);
        explicit_bzero(buf, size); /* may hold a literal token or passwords */
        return r;
}

/* ---- kernel command line ---- */

static struct config_origin *origin_for_override(struct config *c) {
        if (!c->origin) {
                /* A config built by hand: its values are deliberate, not defaults. */
                c->origin = calloc(1, sizeof *c->origin);
                if (!c->origin)
                        return NULL;
                for (size_t k = 0; k < _K_MAX; k++)
                        c->origin->src[k] = SRC_SET;
        }
        return c->origin;
}

static int override_string(char **dst, const char *value) {
        char *s = strdup(value);

        if (!s)
                return -ENOMEM;
        free_secret(*dst);
        *dst = s;
        return 0;
}

static int cmdline_token(struct config *c, const char *value, char why[static WHY_MAX]) {
        if (!check_token(value, why))
                return -EINVAL;
        return override_string(&c->token, value);
}

static int cmdline_expected_nodes(struct config *c, const char *value,
                                  char why[static WHY_MAX]) {
        return conv_uint(value, 1, 1000, &c->expected_nodes, why) ? 0 : -EINVAL;
}

static int cmdline_vip(struct config *c, const char *value, char why[static WHY_MAX]) {
        if (!conv_vip(value, &c->vip, why))
                return -EINVAL;
        c->has_vip = true;
        return 0;
}

static int cmdline_interface(struct config *c, const char *value, char why[static WHY_MAX]) {
        int r;

        if (!check_ifname(value, why))
                return -EINVAL;
        r = override_string(&c->discovery_interface, value);
        if (r < 0)
                return r;
        return override_string(&c->vip_interface, value);
}

static int cmdline_cluster(struct config *c, const char *value, char why[static WHY_MAX]) {
        if (!check_dns_label(value, why))
                return -EINVAL;
        return override_string(&c->cluster_name, value);
}

static int cmdline_wipe(struct config *c, const char *value, char why[static WHY_MAX]) {
        if (!conv_wipe(value, &c->wipe, why))
                return -EINVAL;
        /* It only ever matters with force-listed: keep the effective config consistent. */
        if (c->wipe != WIPE_FORCE_LISTED)
                c->force_members = false;
        return 0;
}

static const struct {
        const char *name; /* after "rainboot." */
        const char *example;
        enum key keys[2];
        int (*apply)(struct config *c, const char *value, char why[static WHY_MAX]);
} cmdline_keys[] = {
        { "token", "rainboot.token=file:/etc/rainboot/token", { K_TOKEN }, cmdline_token },
        { "expected_nodes", "rainboot.expected_nodes=3", { K_EXPECTED_NODES },
          cmdline_expected_nodes },
        { "vip", "rainboot.vip=192.0.2.100/24", { K_VIP, K_VIP_ADDRESS }, cmdline_vip },
        { "interface", "rainboot.interface=eth0",
          { K_DISCOVERY_INTERFACE, K_VIP_INTERFACE }, cmdline_interface },
        { "cluster", "rainboot.cluster=prod-a", { K_CLUSTER_NAME }, cmdline_cluster },
        { "wipe", "rainboot.wipe=empty-only", { K_WIPE }, cmdline_wipe },
};

static bool is_space(char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }

/* Splits the next parameter off a kernel command line in place, as the kernel's next_arg()
 * does: double quotes group spaces, and are dropped around a value or a whole parameter. */
static char *next_arg(char *args, char **ret_param, char **ret_val) {
        bool in_quote = false, quoted = false;
        size_t i, equals = 0;

        if (*args == '"') {
                args++;
                in_quote = quoted = true;
        }
        for (i = 0; args[i]; i++) {
                if (is_space(args[i]) && !in_quote)
                        break;
                if (equals == 0 && args[i] == '=')
                        equals = i;
                if (args[i] == '"')
                        in_quote = !in_quote;
        }
        *ret_param = args;
        *ret_val = NULL;
        if (equals) {
                args[equals] = 0;
                *ret_val = args + equals + 1;
                if (**ret_val == '"') {
                        (*ret_val)++;
                        if (args[i - 1] == '"')
                                args[i - 1] = 0;
                }
        }
        if (quoted && i > 0 && args[i - 1] == '"')
                args[i - 1] = 0;
        if (args[i]) {
                args[i] = 0;
                args += i + 1;
        } else
                args += i;
        while (is_space(*args))
                args++;
        return args;
}

/* The kernel treats '-' and '_' in parameter names alike; so do we. */
static bool param_eq(const char *a, const char *b) {
        for (; *a && *b; a++, b++)
                if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
                        return false;
        return *a == *b;
}

static int apply_cmdline(struct config *c, const char *cmdline, const char *path,
                         struct diag *diag) {
        struct report rep = { .diag = diag };
        struct config_origin *o;
        char *copy, *a;
        size_t len;
        int r = 0;

        if (!c || !cmdline)
                return -EINVAL;
        o = origin_for_override(c);
        if (!o)
                return -ENOMEM;
        free(o->cmdline_path);
        o->cmdline_path = NULL;
        if (path && !(o->cmdline_path = strdup(path)))
                return -ENOMEM;
        len = strlen(cmdline);
        copy = strdup(cmdline);
        if (!copy)
                return -ENOMEM;
        for (a = copy; is_space(*a); a++)
                ;
        while (*a && r >= 0) {
                _cleanup_free_ char *where = NULL;
                char *param, *value, why[WHY_MAX], b[72];
                size_t k;

                a = next_arg(a, &param, &value);
                if (!startswith(param, "rainboot."))
                        continue;
                for (k = 0; k < ELEMENTSOF(cmdline_keys); k++)
                        if (param_eq(param + strlen("rainboot."), cmdline_keys[k].name))
                                break;
                where = cmdline_where(path, k < ELEMENTSOF(cmdline_keys) ?
                                      keys[cmdline_keys[k].keys[0]].cmdline : shown(param, b));
                if (!where) {
                        r = -ENOMEM;
                        break;
                }
                if (k == ELEMENTSOF(cmdline_keys)) {
                        report(&rep, where, "unknown key; valid keys: rainboot.token, "
                               "rainboot.expected_nodes, rainboot.vip, rainboot.interface, "
                               "rainboot.cluster, rainboot.wipe");
                        continue;
                }
                if (!value) {
                        report(&rep, where, "needs a value, like %s", cmdline_keys[k].example);
                        continue;
                }
                r = cmdline_keys[k].apply(c, value, why);
                if (r == -ENOMEM)
                        break;
                if (r < 0)
                        report(&rep, where, "%s", why);
                for (size_t i = 0; i < ELEMENTSOF(cmdline_keys[k].keys); i++)
                        set_source(c, cmdline_keys[k].keys[i], r < 0 ? SRC_INVALID : SRC_CMDLINE,
                                   0, 0);
                r = 0;
        }
        explicit_bzero(copy, len); /* may hold rainboot.token */
        free(copy);
        if (r < 0)
                return r;
        r = apply_derived_defaults(c);
        if (r < 0)
                return r;
        validate(c, &rep);
        return report_result(&rep);
}

int config_apply_cmdline(struct config *c, const char *cmdline, struct diag *diag) {
        return apply_cmdline(c, cmdline, NULL, diag);
}

int config_apply_cmdline_file(struct config *c, const char *path, struct diag *diag) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        if (!c || !path)
                return -EINVAL;
        r = read_full_file(path, &buf, &size);
        if (r < 0) {
                struct report rep = { .diag = diag };
                _cleanup_free_ char *where = cmdline_where(path, "cannot read");

                if (r == -ENOMEM || !where)
                        return -ENOMEM;
                report(&rep, where, "%s", strerror(-r));
                return rep.oom ? -ENOMEM : r;
        }
        r = apply_cmdline(c, buf, path, diag);
        explicit_bzero(buf, size);
        return r;
}

/* ---- output ---- */

/* Plain when no YAML reader could take it for anything but this string. */
static bool plain_ok(const char *s) {
        static const char *const reserved[] = { "true", "false", "yes", "no", "on",
                                                "off", "y",     "n",  "null" };

        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '/'))
                return false;
        for (const char *q = s; *q; q++)
                if (!is_alnum(*q) && !strchr("._/-:", *q))
                        return false;
        if (endswith(s, ":"))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strcasecmp(s, reserved[i]) == 0)
                        return false;
        return true;
}

static void emit_str(FILE *f, const char *s) {
        if (!s) {
                fputs("null", f);
                return;
        }
        if (plain_ok(s)) {
                fputs(s, f);
                return;
        }
        fputc('"', f);
        for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
                if (*q == '"' || *q == '\\')
                        fprintf(f, "\\%c", *q);
                else if (*q < 0x20 || *q == 0x7f)
                        fprintf(f, "\\x%02x", *q);
                else
                        fputc(*q, f);
        }
        fputc('"', f);
}

static void emit_kv(FILE *f, int indent, const char *key, const char *value) {
        fprintf(f, "%*s%s: ", indent, "", key);
        emit_str(f, value);
        fputc('\n', f);
}

static const char *redact(const char *secret) { return secret ? "<redacted>" : NULL; }

static void emit_token(FILE *f, const char *token) {
        if (token && (startswith(token, "file:") || startswith(token, "env:")))
                emit_kv(f, 2, "token", token);
        else
                emit_kv(f, 2, "token", redact(token));
}

static void emit_pins(FILE *f, const struct config *c) {
        if (c->n_pins == 0) {
                fputs("  pins: []\n", f);
                return;
        }
        fputs("  pins:\n", f);
        for (size_t i = 0; i < c->n_pins; i++) {
                const struct pin *pin = &c->pins[i];
                bool first = true;

                if (pin->has_mac)
                        fprintf(f, "    - match: {mac: \"%02x:%02x:%02x:%02x:%02x:%02x\"}\n",
                                pin->mac[0], pin->mac[1], pin->mac[2], pin->mac[3],
                                pin->mac[4], pin->mac[5]);
                else {
                        fputs("    - match: {hostname: ", f);
                        emit_str(f, pin->hostname);
                        fputs("}\n", f);
                }
                fputs("      roles: [", f);
                for (size_t b = 0; b < ELEMENTSOF(role_names); b++)
                        if (pin->roles & role_names[b].role) {
                                fprintf(f, "%s%s", first ? "" : ", ", role_names[b].name);
                                first = false;
                        }
                fputs("]\n", f);
        }
}

static void emit_external(FILE *f, const struct config *c) {
        char a[INET_ADDRSTRLEN];

        fputs("external:\n", f);
        if (c->ext_lb)
                fprintf(f, "  load_balancer:\n    address: %s\n    api_port: %u\n",
                        inet_ntop(AF_INET, &c->ext_lb->address, a, sizeof a),
                        c->ext_lb->api_port);
        else
                fputs("  load_balancer: false\n", f);
        if (c->ext_registry) {
                const struct external_registry *r = c->ext_registry;

                fputs("  registry:\n", f);
                emit_kv(f, 4, "domain", r->domain);
                if (r->namespace)
                        emit_kv(f, 4, "namespace", r->namespace);
                if (r->username)
                        emit_kv(f, 4, "username", r->username);
                if (r->password)
                        emit_kv(f, 4, "password", redact(r->password));
                if (r->ca)
                        emit_kv(f, 4, "ca", r->ca);
        } else
                fputs("  registry: null\n", f);
        if (c->ext_mysql) {
                const struct external_mysql *m = c->ext_mysql;

                fputs("  mysql:\n", f);
                emit_kv(f, 4, "host", m->host);
                fprintf(f, "    port: %u\n", m->port);
                emit_kv(f, 4, "username", m->username);
                emit_kv(f, 4, "password", redact(m->password));
                emit_kv(f, 4, "console_database", m->console_database);
                emit_kv(f, 4, "region_database", m->region_database);
        } else
                fputs("  mysql: null\n", f);
}

int config_format(const struct config *c, char **ret) {
        _cleanup_free_ char *buf = NULL;
        char a[INET_ADDRSTRLEN];
        size_t size = 0;
        FILE *f;
        int r;

        if (!c || !ret)
                return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("# Effective rainboot configuration: defaults filled in, kernel command-line\n"
              "# overrides applied, secrets redacted.\n", f);
        fputs("cluster:\n", f);
        emit_kv(f, 2, "name", c->cluster_name);
        emit_token(f, c->token);
        fprintf(f, "  expected_nodes: %u\n", c->expected_nodes);

        fprintf(f, "discovery:\n  group: %s\n  port: %u\n",
                inet_ntop(AF_INET, &c->discovery_group, a, sizeof a), c->discovery_port);
        emit_kv(f, 2, "interface", c->discovery_interface);
        fprintf(f, "  settle_ms: %u\n  interval_ms: %u\n", c->settle_ms, c->interval_ms);

        if (c->has_vip) {
                fprintf(f, "vip:\n  address: %s/%u\n",
                        inet_ntop(AF_INET, &c->vip.addr, a, sizeof a), c->vip.prefix);
                emit_kv(f, 2, "interface", c->vip_interface);
                fprintf(f, "  router_id: %u\n", c->vip_router_id);
        } else
                fputs("vip: null\n", f);

        fprintf(f, "roles:\n  masters: %u\n  gateways: %u\n  builders: %u\n", c->masters,
                c->gateways, c->builders);
        emit_pins(f, c);
        emit_external(f, c);

        fputs("disks:\n", f);
        emit_kv(f, 2, "data_mount", c->data_mount);
        emit_kv(f, 2, "cache_mount", c->cache_mount);
        emit_kv(f, 2, "services_mount", c->services_mount);
        emit_kv(f, 2, "wipe", wipe_policy_to_string(c->wipe));
        if (strv_length(c->disk_devices) == 0)
                fputs("  devices: []\n", f);
        else {
                fputs("  devices:\n", f);
                for (char **d = c->disk_devices; *d; d++) {
                        fputs("    - ", f);
                        emit_str(f, *d);
                        fputc('\n', f);
                }
        }
        fprintf(f, "  force_members: %s\n", c->force_members ? "true" : "false");
        fprintf(f, "kubernetes:\n  distribution: %s\n",
                (unsigned)c->k8s < ELEMENTSOF(k8s_names) ? k8s_names[c->k8s] : "rke2");

        r = ferror(f) ? -ENOMEM : 0;
        if (fclose(f) != 0 || r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- the token itself ---- */

int config_resolve_token(const struct config *c, char **ret) {
        const char *source;
        char *t = NULL;
        size_t size;
        int r;

        if (!c || !c->token)
                return log_error_errno(-EINVAL, "No cluster token configured (cluster.token).");
        source = c->token;
        if (startswith(source, "file:")) {
                r = read_full_file(source + 5, &t, &size);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the cluster token from %s: %m",
                                               source + 5);
                if (memchr(t, 0, size)) {
                        explicit_bzero(t, size);
                        free(t);
                        return log_error_errno(-EINVAL, "The cluster token file %s contains a "
                                               "NUL byte; write the token as text.",
                                               source + 5);
                }
                /* Files usually end with a newline that is not part of the secret. */
                while (size > 0 && (t[size - 1] == '\n' || t[size - 1] == '\r'))
                        t[--size] = 0;
        } else if (startswith(source, "env:")) {
                const char *v = getenv(source + 4);

                if (!v)
                        return log_error_errno(-ENOKEY, "The environment variable %s, named by "
                                               "cluster.token, is not set.", source + 4);
                t = strdup(v);
                source = "the environment";
        } else {
                t = strdup(source);
                source = "the config";
        }
        if (!t)
                return -ENOMEM;
        size = strlen(t);
        if (size < TOKEN_MIN_LEN) {
                explicit_bzero(t, size);
                free(t);
                return log_error_errno(-EINVAL, "The cluster token from %s has %zu characters; "
                                       "it needs at least %d.",
                                       startswith(c->token, "file:") ? c->token + 5 : source,
                                       size, TOKEN_MIN_LEN);
        }
        *ret = t;
        return 0;
}
