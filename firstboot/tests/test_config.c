/* SPDX-License-Identifier: MIT */
/* Unit tests of the cluster configuration: shipped configs, defaults, every refused input
 * with its message and line, kernel command-line overrides, redaction, round trip, token
 * resolution, and the `firstboot config` CLI (through $FIRSTBOOT). Run with cwd
 * firstboot/tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/stat.h>

#include "config.h"
#include "util.h"

#define CONFIGS "../../configs/"
#define FIXTURES "data/config/"

#define CLUSTER                                                                                \
        "cluster:\n"                                                                           \
        "  name: prod-a\n"                                                                     \
        "  token: file:/etc/rainboot/token\n"                                                  \
        "  expected_nodes: 3\n"
#define VIP                                                                                    \
        "vip:\n"                                                                               \
        "  address: 192.0.2.100/24\n"

static void dump_diag(const struct diag *d) {
        for (size_t i = 0; i < d->n; i++)
                print_message("#   %s\n", d->msgs[i]);
}

static bool diag_has(const struct diag *d, const char *prefix, const char *sub) {
        for (size_t i = 0; i < d->n; i++)
                if ((!prefix || startswith(d->msgs[i], prefix)) && strstr(d->msgs[i], sub))
                        return true;
        return false;
}

static struct config *parse_ok(const char *yaml) {
        struct config *c = NULL;
        struct diag d = {};
        int r = config_parse_string(yaml, strlen(yaml), "t.yaml", &c, &d);

        if (r < 0)
                dump_diag(&d);
        assert_int_equal(r, 0);
        assert_non_null(c);
        assert_int_equal(d.n, 0);
        return c;
}

static struct config *parse_file_ok(const char *path) {
        struct config *c = NULL;
        struct diag d = {};
        int r = config_parse_file(path, &c, &d);

        if (r < 0)
                dump_diag(&d);
        assert_int_equal(r, 0);
        assert_int_equal(d.n, 0);
        return c;
}

static void assert_addr(struct in_addr a, const char *want) {
        char buf[INET_ADDRSTRLEN];

        assert_string_equal(inet_ntop(AF_INET, &a, buf, sizeof buf), want);
}

/* ---- shipped configs and defaults ---- */

static void test_shipped_default(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");

        (void)state;
        assert_string_equal(c->cluster_name, "prod-a");
        assert_string_equal(c->token, "file:/etc/rainboot/token");
        assert_int_equal(c->expected_nodes, 3);
        assert_true(c->has_vip);
        assert_addr(c->vip.addr, "192.0.2.100");
        assert_int_equal(c->vip.prefix, 24);
        assert_int_equal(c->masters, 3);
        assert_int_equal(c->wipe, WIPE_EMPTY_ONLY);
        assert_null(c->ext_lb);
        assert_null(c->ext_registry);
        assert_null(c->ext_mysql);
}

static void test_shipped_single_node(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "single-node.yaml");

        (void)state;
        assert_int_equal(c->expected_nodes, 1);
        assert_false(c->has_vip);
        assert_int_equal(c->masters, 1);
        assert_int_equal(c->gateways, 1);
        assert_int_equal(c->builders, 1);
}

static void test_shipped_external(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "external-services.yaml");

        (void)state;
        assert_int_equal(c->expected_nodes, 5);
        assert_false(c->has_vip);
        assert_non_null(c->ext_lb);
        assert_addr(c->ext_lb->address, "198.51.100.10");
        assert_int_equal(c->ext_lb->api_port, 6443);
        assert_non_null(c->ext_registry);
        assert_string_equal(c->ext_registry->domain, "registry.example.com:5000");
        assert_string_equal(c->ext_registry->ca, "/etc/rainboot/registry-ca.pem");
        assert_non_null(c->ext_registry->username);
        assert_non_null(c->ext_registry->password);
        assert_non_null(c->ext_mysql);
        assert_string_equal(c->ext_mysql->host, "db.example.com");
        assert_int_equal(c->ext_mysql->port, 3306);
        assert_string_equal(c->ext_mysql->console_database, "console");
        assert_string_equal(c->ext_mysql->region_database, "region");
        assert_int_equal(c->n_pins, 2);
        assert_string_equal(c->pins[0].hostname, "node-1");
        assert_int_equal(c->pins[0].roles, ROLE_MASTER | ROLE_GATEWAY);
        assert_true(c->pins[1].has_mac);
        assert_int_equal(c->pins[1].mac[5], 0x05);
        assert_int_equal(c->pins[1].roles, ROLE_WORKER | ROLE_BUILDER);
}

static void test_defaults(void **state) {
        _cleanup_config_ struct config *c = parse_ok(CLUSTER VIP);
        _cleanup_config_ struct config *five = NULL, *two = NULL, *moved = NULL;

        (void)state;
        assert_addr(c->discovery_group, "239.255.77.77");
        assert_int_equal(c->discovery_port, 7788);
        assert_string_equal(c->discovery_interface, "auto");
        assert_int_equal(c->settle_ms, 1500);
        assert_int_equal(c->interval_ms, 250);
        assert_string_equal(c->vip_interface, "auto");
        assert_int_equal(c->vip_router_id, 51);
        assert_int_equal(c->masters, 3);
        assert_int_equal(c->gateways, 3); /* all masters in a 3-node cluster */
        assert_int_equal(c->builders, 1);
        assert_int_equal(c->n_pins, 0);
        assert_string_equal(c->data_mount, "/opt/rainbond");
        assert_string_equal(c->cache_mount, "/opt/rainbond/cache");
        assert_string_equal(c->services_mount, "/var/lib/rainboot/data");
        assert_int_equal(c->wipe, WIPE_EMPTY_ONLY);
        assert_int_equal(strv_length(c->disk_devices), 0);
        assert_false(c->force_members);
        assert_int_equal(c->k8s, K8S_RKE2);
        assert_string_equal(c->path, "t.yaml");

        five = parse_ok("cluster: {name: a, token: env:T, expected_nodes: 5}\n" VIP);
        assert_int_equal(five->masters, 3);
        assert_int_equal(five->gateways, 2);
        two = parse_ok("cluster: {name: a, token: env:T, expected_nodes: 2}\n" VIP);
        assert_int_equal(two->masters, 1);
        assert_int_equal(two->gateways, 1);
        /* The cache follows the data mount unless it is written. */
        moved = parse_ok(CLUSTER VIP "disks:\n  data_mount: /srv/rb\n");
        assert_string_equal(moved->cache_mount, "/srv/rb/cache");
}

static void test_full_fixture(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(FIXTURES "full.yaml");
        const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x01 };

        (void)state;
        assert_string_equal(c->token, "env:RAINBOOT_TOKEN");
        assert_addr(c->discovery_group, "239.1.2.3");
        assert_int_equal(c->discovery_port, 17788);
        assert_string_equal(c->discovery_interface, "enp1s0");
        assert_int_equal(c->vip.prefix, 26);
        assert_int_equal(c->vip_router_id, 200);
        assert_int_equal(c->masters, 5);
        assert_int_equal(c->n_pins, 3);
        assert_memory_equal(c->pins[0].mac, mac, 6);
        assert_int_equal(c->pins[0].roles, ROLE_MASTER | ROLE_ETCD | ROLE_GATEWAY);
        assert_int_equal(c->pins[0].line, 21);
        assert_int_equal(c->pins[1].roles, ROLE_BUILDER | ROLE_REGISTRY | ROLE_MYSQL);
        assert_null(c->ext_lb);
        assert_string_equal(c->ext_registry->namespace, "team/rainbond");
        assert_null(c->ext_registry->username);
        assert_null(c->ext_mysql);
        assert_int_equal(c->wipe, WIPE_FORCE_LISTED);
        assert_int_equal(strv_length(c->disk_devices), 2);
        assert_string_equal(c->disk_devices[1], "/dev/sdc");
        assert_true(c->force_members);
        assert_int_equal(c->k8s, K8S_KUBEADM);
}

static void test_flow_style(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(FIXTURES "flow-style.yaml");

        (void)state;
        assert_string_equal(c->cluster_name, "flow");
        assert_int_equal(c->n_pins, 1);
        assert_int_equal(c->pins[0].roles, ROLE_BUILDER);
        assert_int_equal(c->wipe, WIPE_NEVER);
}

/* ---- refused inputs: each names its own problem, at its own line ---- */

struct bad_case {
        const char *name;
        const char *yaml;
        unsigned line;
        const char *msg;
        size_t n; /* messages expected */
};

/* One message expected unless said otherwise. */
#define BAD(name, yaml, line, msg) { name, yaml, line, msg, 1 }

static const struct bad_case bad_cases[] = {
        BAD("unknown key", CLUSTER "  colour: blue\n" VIP, 5,
          "cluster.colour: unknown key; valid keys under cluster: name, token, expected_nodes"),
        BAD("unknown top-level key", CLUSTER VIP "network: {}\n", 7,
          "network: unknown key; valid keys at the top level: cluster, discovery, vip"),
        BAD("duplicate key", CLUSTER "  name: prod-b\n" VIP, 5,
          "cluster.name: duplicate key (first at line 2)"),
        BAD("duplicate section", CLUSTER VIP "vip:\n  address: 192.0.2.9/24\n", 7,
          "vip: duplicate key (first at line 5)"),
        BAD("bad CIDR", CLUSTER "vip:\n  address: 192.0.2.300/24\n", 6,
          "vip.address: '192.0.2.300/24' is not an IPv4 address with prefix (like "
          "192.0.2.100/24)"),
        BAD("CIDR without prefix", CLUSTER "vip:\n  address: 192.0.2.30\n", 6,
          "'192.0.2.30' is not an IPv4 address with prefix"),
        BAD("VIP on network address", CLUSTER "vip:\n  address: 192.0.2.0/24\n", 6,
          "vip.address: '192.0.2.0/24' is the network address of its subnet"),
        BAD("VIP on broadcast address", CLUSTER "vip:\n  address: 192.0.2.255/24\n", 6,
          "'192.0.2.255/24' is the broadcast address of its subnet"),
        BAD("VIP prefix too short", CLUSTER "vip:\n  address: 10.0.0.1/4\n", 6,
          "/4 is too short"),
        BAD("VIP loopback", CLUSTER "vip:\n  address: 127.0.0.5/8\n", 6, "is a loopback address"),
        BAD("VIP multicast", CLUSTER "vip:\n  address: 239.0.0.5/24\n", 6,
          "is a multicast address"),
        BAD("VIP mapping without address", CLUSTER "vip:\n  router_id: 7\n", 6,
          "vip.address: missing; give the virtual IP"),
        BAD("VIP missing for 3 nodes", CLUSTER, 1,
          "vip: a cluster of 3 nodes needs a virtual IP for its gateways"),
        BAD("router_id 256", CLUSTER VIP "  router_id: 256\n", 7,
          "vip.router_id: 256 is out of range; use 1 to 255"),
        BAD("non-multicast group", CLUSTER VIP "discovery:\n  group: 192.0.2.1\n", 8,
          "discovery.group: '192.0.2.1' is not an IPv4 multicast group (224.0.0.0/4)"),
        BAD("link-local control group", CLUSTER VIP "discovery:\n  group: 224.0.0.5\n", 8,
          "reserved for link-local control traffic"),
        BAD("port 0", CLUSTER VIP "discovery:\n  port: 0\n", 8,
          "discovery.port: 0 is out of range; use 1 to 65535"),
        BAD("port 70000", CLUSTER VIP "discovery:\n  port: 70000\n", 8,
          "discovery.port: 70000 is out of range; use 1 to 65535"),
        BAD("interface with slash", CLUSTER VIP "discovery:\n  interface: eth0/1\n", 8,
          "discovery.interface: 'eth0/1' is not a valid interface name"),
        BAD("interface over 15 chars", CLUSTER "vip:\n  address: 192.0.2.100/24\n"
          "  interface: averyveryverylongname\n", 7,
          "vip.interface: 'averyveryverylongname' is not a valid interface name"),
        BAD("settle shorter than two intervals", CLUSTER VIP "discovery:\n  settle_ms: 400\n", 8,
          "discovery.settle_ms: settle_ms 400 is less than twice interval_ms 250"),
        BAD("expected_nodes 0",
          "cluster:\n  name: prod-a\n  token: file:/x\n  expected_nodes: 0\n" VIP, 4,
          "cluster.expected_nodes: 0 is out of range; use 1 to 1000"),
        BAD("integer overflow",
          "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: 99999999999999999999999\n"
          VIP, 4, "99999999999999999999999 is out of range; use 1 to 1000"),
        BAD("integer with suffix", "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: 3x\n"
          VIP, 4, "'3x' is not a whole number"),
        BAD("negative integer", "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: -1\n"
          VIP, 4, "'-1' is not a whole number"),
        BAD("exponent integer", "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: 1e3\n"
          VIP, 4, "'1e3' is not a whole number"),
        BAD("octal-looking integer",
          "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: 03\n" VIP, 4,
          "'03' has a leading zero"),
        BAD("quoted integer", "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: \"3\"\n"
          VIP, 4, "\"3\" is quoted, so YAML reads a string"),
        BAD("wrong type: list for scalar",
          "cluster:\n  name: [prod-a]\n  token: file:/x\n  expected_nodes: 3\n" VIP, 2,
          "cluster.name: expected a string, found a list"),
        BAD("wrong type: mapping for number",
          "cluster:\n  name: a\n  token: file:/x\n  expected_nodes: {n: 3}\n" VIP, 4,
          "cluster.expected_nodes: expected a whole number, found a mapping"),
        BAD("section is a scalar", "cluster: prod-a\n" VIP, 1,
          "cluster: expected a mapping of keys, found a single value"),
        BAD("masters even", CLUSTER VIP "roles:\n  masters: 2\n", 8,
          "roles.masters: 2 is even; etcd needs an odd number"),
        BAD("masters > expected_nodes", CLUSTER VIP "roles:\n  masters: 5\n", 8,
          "roles.masters: 5 masters are more than the 3 expected nodes"),
        BAD("gateways > expected_nodes", CLUSTER VIP "roles:\n  gateways: 4\n", 8,
          "roles.gateways: 4 gateways are more than the 3 expected nodes"),
        BAD("relative file: token",
          "cluster:\n  name: a\n  token: file:etc/token\n  expected_nodes: 3\n" VIP, 3,
          "cluster.token: 'file:etc/token': the path is not an absolute path"),
        BAD("short literal token",
          "cluster:\n  name: a\n  token: tooshort\n  expected_nodes: 3\n" VIP, 3,
          "cluster.token: a literal token must be at least 16 characters (this one has 8)"),
        BAD("bad env: token", "cluster:\n  name: a\n  token: env:9x\n  expected_nodes: 3\n" VIP, 3,
          "'env:9x' does not name an environment variable"),
        BAD("missing cluster.name", "cluster:\n  token: file:/x\n  expected_nodes: 3\n" VIP, 2,
          "cluster.name: missing; name the cluster"),
        { "missing cluster section", VIP, 1, "cluster.token: missing", 3 },
        BAD("cluster name not a DNS label", "cluster:\n  name: Prod_A\n  token: file:/x\n"
          "  expected_nodes: 3\n" VIP, 2, "'Prod_A' is not a DNS label"),
        BAD("cluster name with trailing dash", "cluster:\n  name: prod-\n  token: file:/x\n"
          "  expected_nodes: 3\n" VIP, 2, "'prod-' starts or ends with '-'"),
        BAD("bad role name in pin",
          CLUSTER VIP "roles:\n  pins:\n    - match: {hostname: node-1}\n"
          "      roles: [master, boss]\n", 10,
          "roles.pins[0].roles[1]: unknown role 'boss'; valid roles: master, etcd"),
        BAD("pin with both mac and hostname",
          CLUSTER VIP "roles:\n  pins:\n    - match: {hostname: node-1, mac: "
          "\"52:54:00:00:00:01\"}\n      roles: [worker]\n", 9,
          "roles.pins[0].match: give exactly one of mac or hostname"),
        BAD("pin without roles",
          CLUSTER VIP "roles:\n  pins:\n    - match: {hostname: node-1}\n", 9,
          "roles.pins[0]: roles is missing"),
        BAD("pin with empty roles",
          CLUSTER VIP "roles:\n  pins:\n    - match: {hostname: node-1}\n      roles: []\n", 10,
          "found an empty list"),
        BAD("bad MAC", CLUSTER VIP "roles:\n  pins:\n    - match: {mac: \"52:54:00:00:01\"}\n"
          "      roles: [worker]\n", 9,
          "roles.pins[0].match.mac: '52:54:00:00:01' is not a MAC address"),
        BAD("multicast MAC", CLUSTER VIP "roles:\n  pins:\n    - match: {mac: \"01:00:5e:00:00:01\"}\n"
          "      roles: [worker]\n", 9, "is a multicast or broadcast MAC"),
        BAD("duplicate pin",
          CLUSTER VIP "roles:\n  pins:\n    - match: {hostname: node-1}\n"
          "      roles: [worker]\n    - match: {hostname: NODE-1}\n      roles: [builder]\n", 11,
          "roles.pins[1]: pins the same node as roles.pins[0] (line 9)"),
        BAD("more master pins than masters",
          CLUSTER VIP "roles:\n  masters: 1\n  pins:\n    - match: {hostname: a}\n"
          "      roles: [master]\n    - match: {hostname: b}\n      roles: [master]\n", 12,
          "roles.pins[1]: one pin with role master too many: roles.masters is 1"),
        BAD("wipe unknown", CLUSTER VIP "disks:\n  wipe: sometimes\n", 8,
          "disks.wipe: 'sometimes' is not a wipe policy; use never, empty-only or "
          "force-listed"),
        BAD("force-listed with no devices", CLUSTER VIP "disks:\n  wipe: force-listed\n", 8,
          "disks.wipe: force-listed needs disks.devices"),
        BAD("force_members without force-listed", CLUSTER VIP "disks:\n  force_members: true\n", 8,
          "disks.force_members: true only matters with disks.wipe: force-listed"),
        BAD("device outside /dev",
          CLUSTER VIP "disks:\n  wipe: force-listed\n  devices: [/dev/sdb, /tmp/disk.img]\n", 9,
          "disks.devices[1]: '/tmp/disk.img' is not a device path under /dev"),
        BAD("device listed twice",
          CLUSTER VIP "disks:\n  wipe: force-listed\n  devices:\n    - /dev/sdb\n    - /dev/sdb\n",
          11, "disks.devices[1]: '/dev/sdb' is listed twice"),
        BAD("relative data_mount", CLUSTER VIP "disks:\n  data_mount: opt/rainbond\n", 8,
          "disks.data_mount: 'opt/rainbond' is not an absolute path"),
        BAD("data_mount with ..", CLUSTER VIP "disks:\n  data_mount: /opt/../rainbond\n", 8,
          "contains a '.' or '..' component"),
        BAD("data_mount with a YAML line break (NEL)",
            CLUSTER VIP "disks:\n  data_mount: \"/opt/r\\Nb\"\n", 8,
            "contains whitespace, control or non-ASCII characters"),
        BAD("data_mount is /", CLUSTER VIP "disks:\n  data_mount: /\n", 8,
          "'/' is the root directory"),
        BAD("data_mount with trailing slash", CLUSTER VIP "disks:\n  data_mount: /opt/rb/\n", 8,
          "'/opt/rb/' ends with '/'"),
        BAD("same mount twice",
          CLUSTER VIP "disks:\n  data_mount: /srv/data\n  services_mount: /srv/data\n", 9,
          "disks.services_mount: '/srv/data' is used by both disks.data_mount and "
          "disks.services_mount"),
        BAD("load_balancer: true", CLUSTER "external:\n  load_balancer: true\n", 6,
          "external.load_balancer: true alone is not enough: give the load balancer's "
          "address"),
        BAD("load_balancer without address",
          CLUSTER "external:\n  load_balancer: {api_port: 16443}\n", 6,
          "external.load_balancer: address is missing"),
        BAD("load_balancer api_port on a gateway port",
          CLUSTER "external:\n  load_balancer:\n    address: 198.51.100.10\n    api_port: 443\n",
          8, "api_port 443 is one of the Rainbond gateway ports"),
        BAD("vip and load_balancer",
          CLUSTER VIP "external:\n  load_balancer: {address: 198.51.100.10}\n", 6,
          "vip: is set, but external.load_balancer replaces the VIP"),
        BAD("registry password without username",
          CLUSTER VIP "external:\n  registry:\n    domain: registry.example.com\n"
          "    password: s3cret\n", 10,
          "external.registry: password without username; give both or neither"),
        BAD("registry without domain", CLUSTER VIP "external:\n  registry:\n    namespace: rb\n",
          9, "external.registry: domain is missing"),
        BAD("registry bad domain",
          CLUSTER VIP "external:\n  registry:\n    domain: registry.example.com:0\n", 9,
          "is not host[:port]"),
        BAD("registry relative ca",
          CLUSTER VIP "external:\n  registry:\n    domain: r.example.com\n    ca: ca.pem\n", 10,
          "external.registry.ca: 'ca.pem' is not an absolute path; give the absolute path of "
          "the CA's PEM file"),
        BAD("mysql without password",
          CLUSTER VIP "external:\n  mysql:\n    host: db.example.com\n    username: rb\n", 9,
          "external.mysql: missing password; an external MySQL needs host, username and "
          "password"),
        BAD("mysql same databases",
          CLUSTER VIP "external:\n  mysql:\n    host: db\n    username: rb\n    password: pw\n"
          "    console_database: rb\n    region_database: rb\n", 13,
          "both 'rb'; Rainbond needs two databases"),
        BAD("boolean on", CLUSTER VIP "disks:\n  wipe: force-listed\n  devices: [/dev/sdb]\n"
          "  force_members: on\n", 10, "disks.force_members: 'on' is not a boolean"),
        BAD("kubernetes distribution", CLUSTER VIP "kubernetes:\n  distribution: k3s\n", 8,
          "kubernetes.distribution: 'k3s' is not a supported distribution"),
        BAD("yaml syntax error", "cluster:\n  name: prod-a\n   token: x\n", 3,
          "invalid YAML: mapping values are not allowed in this context"),
        BAD("yaml tab indentation", "cluster:\n\tname: prod-a\n", 2,
          "invalid YAML: found character that cannot start any token"),
        BAD("yaml unclosed flow", CLUSTER "vip: {address: 192.0.2.100/24\n", 6, "invalid YAML"),
        BAD("not UTF-8", "cluster:\n  name: \xff\xfe\n", 2, "not valid YAML text"),
        BAD("NUL in a value", "cluster:\n  name: \"pro\\0d\"\n  token: file:/x\n"
          "  expected_nodes: 1\n", 2, "cluster.name: contains a NUL character"),
        BAD("alias", CLUSTER "vip: &v\n  address: 192.0.2.100/24\ndiscovery: *v\n", 7,
          "aliases (*name) are not supported"),
        BAD("two documents", CLUSTER VIP "---\ncluster: {}\n", 7, "a second YAML document"),
        BAD("empty file", "", 1, "the config is empty"),
        BAD("comments only", "# nothing here\n\n", 1, "the config is empty"),
        BAD("top level is a list", "- cluster\n- vip\n", 1,
          "expected a mapping of sections (cluster:, discovery:, vip:, ...), found a list"),
        BAD("complex key", CLUSTER VIP "? [a, b]\n: c\n", 7, "a key must be a single word"),
        BAD("nesting too deep",
          CLUSTER VIP "roles: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
          7, "nested deeper than 32 levels"),
};

static void test_bad_case(void **state) {
        const struct bad_case *t = *state;
        struct config *c = NULL;
        struct diag d = {};
        char prefix[64];
        size_t want = t->n;
        int r;

        r = config_parse_string(t->yaml, strlen(t->yaml), "t.yaml", &c, &d);
        snprintf(prefix, sizeof prefix, "t.yaml:%u:", t->line);
        if (r != -EINVAL || c || !diag_has(&d, prefix, t->msg) || d.n != want) {
                print_message("# %s: r=%d, %zu message(s), want %zu at line %u with '%s':\n",
                              t->name, r, d.n, want, t->line, t->msg);
                dump_diag(&d);
                diag_clear(&d);
                config_free(c);
                fail();
        }
        diag_clear(&d);
}

static void test_secret_not_echoed(void **state) {
        static const char yaml[] = "cluster:\n  name: a\n  token: sesame-7\n  expected_nodes: 1\n"
                                   "external:\n  registry:\n    domain: r.example.com\n"
                                   "    username: \"bad user\"\n    password: \"pw\\x01x\"\n";
        struct config *c = NULL;
        struct diag d = {};

        (void)state;
        assert_int_equal(config_parse_string(yaml, strlen(yaml), "t.yaml", &c, &d), -EINVAL);
        assert_null(c);
        assert_true(diag_has(&d, "t.yaml:3:", "at least 16 characters"));
        assert_true(diag_has(&d, "t.yaml:9:", "contains control characters"));
        for (size_t i = 0; i < d.n; i++) {
                assert_null(strstr(d.msgs[i], "sesame"));
                assert_null(strstr(d.msgs[i], "pw"));
        }
        diag_clear(&d);
}

static void test_many_problems_collected(void **state) {
        struct config *c = NULL;
        struct diag d = {};
        static const struct {
                const char *at, *msg;
        } want[] = {
                { "data/config/many-problems.yaml:3:9: cluster.name:", "not a DNS label" },
                { "data/config/many-problems.yaml:4:10: cluster.token:", "not an absolute path" },
                { "data/config/many-problems.yaml:6:3: cluster.colour:", "unknown key" },
                { "data/config/many-problems.yaml:8:9: discovery.port:", "out of range" },
                { "data/config/many-problems.yaml:10:12: vip.address:", "broadcast address" },
                { "data/config/many-problems.yaml:12:12: roles.masters:", "is even" },
                { "data/config/many-problems.yaml:14:9: disks.wipe:", "not a wipe policy" },
        };

        (void)state;
        assert_int_equal(config_parse_file(FIXTURES "many-problems.yaml", &c, &d), -EINVAL);
        assert_null(c);
        if (d.n != ELEMENTSOF(want))
                dump_diag(&d);
        assert_int_equal(d.n, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                if (!diag_has(&d, want[i].at, want[i].msg))
                        dump_diag(&d);
                assert_true(diag_has(&d, want[i].at, want[i].msg));
        }
        diag_clear(&d);
}

static void test_diag_cap(void **state) {
        _cleanup_free_ char *yaml = NULL;
        struct config *c = NULL;
        struct diag d = {};
        size_t size = 0;
        FILE *f = open_memstream(&yaml, &size);

        (void)state;
        assert_non_null(f);
        fputs(CLUSTER VIP "roles:\n", f);
        for (int i = 0; i < 80; i++)
                fprintf(f, "  k%d: 1\n", i);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(config_parse_string(yaml, size, "t.yaml", &c, &d), -EINVAL);
        assert_int_equal(d.n, 51);
        assert_true(diag_has(&d, "t.yaml:8:", "roles.k0: unknown key"));
        assert_non_null(strstr(d.msgs[50], "more problems"));
        assert_null(d.msgs[51]);
        diag_clear(&d);
        assert_int_equal(d.n, 0);
        assert_null(d.msgs);
}

static void test_missing_file(void **state) {
        struct config *c = NULL;
        struct diag d = {};

        (void)state;
        assert_int_equal(config_parse_file("data/config/no-such.yaml", &c, &d), -ENOENT);
        assert_null(c);
        assert_int_equal(d.n, 1);
        assert_true(diag_has(&d, "data/config/no-such.yaml: ", "cannot read the config"));
        diag_clear(&d);
}

/* ---- kernel command line ---- */

static void test_cmdline_each_key(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");
        struct diag d = {};
        int r;

        (void)state;
        r = config_apply_cmdline(c,
                                 "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet "
                                 "rainboot.token=file:/run/rainboot/token "
                                 "rainboot.expected_nodes=5 rainboot.vip=198.51.100.7/25 "
                                 "rainboot.interface=eno1 rainboot.cluster=prod-b "
                                 "rainboot.wipe=never console=ttyS0,115200\n",
                                 &d);
        if (r < 0)
                dump_diag(&d);
        assert_int_equal(r, 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c->token, "file:/run/rainboot/token");
        assert_int_equal(c->expected_nodes, 5);
        assert_true(c->has_vip);
        assert_addr(c->vip.addr, "198.51.100.7");
        assert_int_equal(c->vip.prefix, 25);
        assert_string_equal(c->discovery_interface, "eno1");
        assert_string_equal(c->vip_interface, "eno1");
        assert_string_equal(c->cluster_name, "prod-b");
        assert_int_equal(c->wipe, WIPE_NEVER);
        assert_int_equal(c->masters, 3); /* written in the file: kept */
}

static void test_cmdline_defaults_follow(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "single-node.yaml");
        struct diag d = {};

        (void)state;
        assert_int_equal(c->masters, 1);
        assert_int_equal(config_apply_cmdline(c, "rainboot.expected_nodes=3 "
                                                 "rainboot.vip=192.0.2.50/24", &d), 0);
        assert_int_equal(c->masters, 3);
        assert_int_equal(c->gateways, 3);
}

static void test_cmdline_revalidates(void **state) {
        _cleanup_config_ struct config *single = parse_file_ok(CONFIGS "single-node.yaml");
        _cleanup_config_ struct config *dflt = parse_file_ok(CONFIGS "default.yaml");
        struct diag d = {};

        (void)state;
        assert_int_equal(config_apply_cmdline(single, "rainboot.expected_nodes=3", &d), -EINVAL);
        assert_int_equal(d.n, 1);
        assert_true(diag_has(&d, "kernel command line: rainboot.expected_nodes: ",
                             "a cluster of 3 nodes needs a virtual IP"));
        diag_clear(&d);

        assert_int_equal(config_apply_cmdline(dflt, "rainboot.expected_nodes=1", &d), -EINVAL);
        assert_true(diag_has(&d, "kernel command line: rainboot.expected_nodes: ",
                             "3 masters are more than the 1 expected nodes (set on the kernel "
                             "command line)"));
        diag_clear(&d);
}

static void test_cmdline_quoting(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");
        struct diag d = {};
        int r;

        (void)state;
        r = config_apply_cmdline(c, "quiet rainboot.token=\"a literal token with spaces\" "
                                    "\"rainboot.cluster=whole-param-quoted\" "
                                    "opts=\"x rainboot.wipe=never y\"", &d);
        if (r < 0)
                dump_diag(&d);
        assert_int_equal(r, 0);
        assert_string_equal(c->token, "a literal token with spaces");
        assert_string_equal(c->cluster_name, "whole-param-quoted");
        /* rainboot.wipe= was inside another parameter's quotes: not a key of ours. */
        assert_int_equal(c->wipe, WIPE_EMPTY_ONLY);
}

static void test_cmdline_unknown_key(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");
        struct diag d = {};

        (void)state;
        assert_int_equal(config_apply_cmdline(c, "quiet rainboot.colour=blue", &d), -EINVAL);
        assert_int_equal(d.n, 1);
        assert_true(diag_has(&d, "kernel command line: rainboot.colour: ",
                             "unknown key; valid keys: rainboot.token"));
        diag_clear(&d);
}

static void test_cmdline_bad_values(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");
        struct diag d = {};

        (void)state;
        assert_int_equal(config_apply_cmdline(c, "rainboot.vip=192.0.2.300/24 "
                                                 "rainboot.expected_nodes=0 rainboot.wipe "
                                                 "rainboot.token=hunter2 "
                                                 "rainboot.interface=a:b "
                                                 "rainboot.cluster=-x", &d),
                         -EINVAL);
        if (d.n != 6)
                dump_diag(&d);
        assert_int_equal(d.n, 6);
        assert_true(diag_has(&d, "kernel command line: rainboot.vip: ",
                             "'192.0.2.300/24' is not an IPv4 address with prefix"));
        assert_true(diag_has(&d, "kernel command line: rainboot.expected_nodes: ",
                             "0 is out of range; use 1 to 1000"));
        assert_true(diag_has(&d, "kernel command line: rainboot.wipe: ", "needs a value"));
        assert_true(diag_has(&d, "kernel command line: rainboot.token: ", "at least 16"));
        assert_true(diag_has(&d, "kernel command line: rainboot.interface: ",
                             "not a valid interface name"));
        assert_true(diag_has(&d, "kernel command line: rainboot.cluster: ", "starts or ends"));
        for (size_t i = 0; i < d.n; i++)
                assert_null(strstr(d.msgs[i], "hunter2"));
        diag_clear(&d);
}

static void test_cmdline_ignores_others(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct diag d = {};

        (void)state;
        assert_int_equal(config_format(c, &before), 0);
        assert_int_equal(config_apply_cmdline(c, "  root=UUID=1234 rainbootx.vip=1 rainboot=1 "
                                                 "rainboot_token=x rb.rainboot.vip=2 \"quoted "
                                                 "arg\" novalue --  \n", &d),
                         0);
        assert_int_equal(d.n, 0);
        assert_int_equal(config_format(c, &after), 0);
        assert_string_equal(before, after);
        assert_int_equal(config_apply_cmdline(c, "", &d), 0);
}

static void test_cmdline_file(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(CONFIGS "default.yaml");
        char dir[] = "/tmp/test_config.XXXXXX", path[64];
        struct diag d = {};
        FILE *f;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/cmdline", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("quiet rainboot.expected-nodes=5 rainboot.vip=192.0.2.77/24\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(config_apply_cmdline_file(c, path, &d), 0);
        assert_int_equal(c->expected_nodes, 5);
        assert_addr(c->vip.addr, "192.0.2.77");

        f = fopen(path, "we");
        assert_non_null(f);
        fputs("rainboot.vip=192.0.2.0/24\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(config_apply_cmdline_file(c, path, &d), -EINVAL);
        assert_int_equal(d.n, 1);
        assert_true(diag_has(&d, "kernel command line (/tmp/test_config.", "network address"));
        assert_non_null(strstr(d.msgs[0], "/cmdline): rainboot.vip: '192.0.2.0/24'"));
        diag_clear(&d);
        assert_int_equal(unlink(path), 0);

        assert_int_equal(config_apply_cmdline_file(c, path, &d), -ENOENT);
        assert_true(diag_has(&d, "kernel command line (/tmp/test_config.", "cannot read"));
        diag_clear(&d);
        assert_int_equal(rmdir(dir), 0);
}

/* full.yaml has wipe: force-listed with force_members: the kernel command line may lower
 * the policy, and the effective config must stay valid on its own. */
static void test_cmdline_lowers_wipe(void **state) {
        _cleanup_config_ struct config *c = parse_file_ok(FIXTURES "full.yaml");
        _cleanup_config_ struct config *again = NULL;
        _cleanup_free_ char *text = NULL;
        struct diag d = {};

        (void)state;
        assert_true(c->force_members);
        assert_int_equal(config_apply_cmdline(c, "rainboot.wipe=empty-only", &d), 0);
        assert_int_equal(c->wipe, WIPE_EMPTY_ONLY);
        assert_false(c->force_members);
        assert_int_equal(config_format(c, &text), 0);
        again = parse_ok(text);
        assert_int_equal(again->wipe, WIPE_EMPTY_ONLY);
}

static void test_cmdline_hand_built(void **state) {
        _cleanup_config_ struct config *c = NULL;
        struct diag d = {};

        (void)state;
        assert_int_equal(config_new_default(&c), 0);
        c->cluster_name = strdup("hand");
        c->token = strdup("env:TOKEN");
        c->expected_nodes = 1;
        assert_int_equal(config_validate(c, &d), 0);
        assert_int_equal(config_apply_cmdline(c, "rainboot.wipe=never", &d), 0);
        assert_int_equal(c->wipe, WIPE_NEVER);
        c->masters = 2;
        assert_int_equal(config_validate(c, &d), -EINVAL);
        assert_true(diag_has(&d, "config: roles.masters: ", "2 is even"));
        diag_clear(&d);
}

/* ---- output ---- */

static void test_format_redacts(void **state) {
        static const char yaml[] =
                "cluster:\n  name: a\n  token: Literal-Token-Secret-0123\n  expected_nodes: 1\n"
                "external:\n"
                "  registry: {domain: r.example.com, username: u, password: Registry-Pass-1}\n"
                "  mysql: {host: db, username: u, password: Mysql-Pass-2}\n";
        _cleanup_config_ struct config *c = parse_ok(yaml);
        _cleanup_config_ struct config *ref = parse_file_ok(CONFIGS "default.yaml");
        _cleanup_free_ char *out = NULL, *out_ref = NULL;
        size_t n = 0;

        (void)state;
        assert_int_equal(config_format(c, &out), 0);
        assert_null(strstr(out, "Literal-Token-Secret"));
        assert_null(strstr(out, "Registry-Pass"));
        assert_null(strstr(out, "Mysql-Pass"));
        for (const char *p = out; (p = strstr(p, "\"<redacted>\"")); p++)
                n++;
        assert_int_equal(n, 3);
        assert_non_null(strstr(out, "  token: \"<redacted>\"\n"));

        /* References are not secrets: shown as written. */
        assert_int_equal(config_format(ref, &out_ref), 0);
        assert_non_null(strstr(out_ref, "  token: file:/etc/rainboot/token\n"));
        assert_null(strstr(out_ref, "<redacted>"));
}

static bool str_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && streq(a, b));
}

static void assert_config_equal(const struct config *a, const struct config *b) {
        assert_true(str_eq(a->cluster_name, b->cluster_name));
        assert_true(str_eq(a->token, b->token));
        assert_int_equal(a->expected_nodes, b->expected_nodes);
        assert_int_equal(a->discovery_group.s_addr, b->discovery_group.s_addr);
        assert_int_equal(a->discovery_port, b->discovery_port);
        assert_true(str_eq(a->discovery_interface, b->discovery_interface));
        assert_int_equal(a->settle_ms, b->settle_ms);
        assert_int_equal(a->interval_ms, b->interval_ms);
        assert_int_equal(a->has_vip, b->has_vip);
        assert_int_equal(a->vip.addr.s_addr, b->vip.addr.s_addr);
        assert_int_equal(a->vip.prefix, b->vip.prefix);
        assert_true(str_eq(a->vip_interface, b->vip_interface));
        assert_int_equal(a->vip_router_id, b->vip_router_id);
        assert_int_equal(a->masters, b->masters);
        assert_int_equal(a->gateways, b->gateways);
        assert_int_equal(a->builders, b->builders);
        assert_int_equal(a->n_pins, b->n_pins);
        for (size_t i = 0; i < a->n_pins; i++) {
                assert_true(str_eq(a->pins[i].hostname, b->pins[i].hostname));
                assert_int_equal(a->pins[i].has_mac, b->pins[i].has_mac);
                assert_memory_equal(a->pins[i].mac, b->pins[i].mac, 6);
                assert_int_equal(a->pins[i].roles, b->pins[i].roles);
        }
        assert_int_equal(!a->ext_lb, !b->ext_lb);
        if (a->ext_lb) {
                assert_int_equal(a->ext_lb->address.s_addr, b->ext_lb->address.s_addr);
                assert_int_equal(a->ext_lb->api_port, b->ext_lb->api_port);
        }
        assert_int_equal(!a->ext_registry, !b->ext_registry);
        if (a->ext_registry) {
                assert_true(str_eq(a->ext_registry->domain, b->ext_registry->domain));
                assert_true(str_eq(a->ext_registry->namespace, b->ext_registry->namespace));
                assert_true(str_eq(a->ext_registry->username, b->ext_registry->username));
                assert_int_equal(!a->ext_registry->password, !b->ext_registry->password);
                assert_true(str_eq(a->ext_registry->ca, b->ext_registry->ca));
        }
        assert_int_equal(!a->ext_mysql, !b->ext_mysql);
        if (a->ext_mysql) {
                assert_true(str_eq(a->ext_mysql->host, b->ext_mysql->host));
                assert_int_equal(a->ext_mysql->port, b->ext_mysql->port);
                assert_true(str_eq(a->ext_mysql->username, b->ext_mysql->username));
                assert_true(str_eq(a->ext_mysql->console_database,
                                   b->ext_mysql->console_database));
                assert_true(str_eq(a->ext_mysql->region_database, b->ext_mysql->region_database));
        }
        assert_true(str_eq(a->data_mount, b->data_mount));
        assert_true(str_eq(a->cache_mount, b->cache_mount));
        assert_true(str_eq(a->services_mount, b->services_mount));
        assert_int_equal(a->wipe, b->wipe);
        assert_int_equal(strv_length(a->disk_devices), strv_length(b->disk_devices));
        for (size_t i = 0; i < strv_length(a->disk_devices); i++)
                assert_string_equal(a->disk_devices[i], b->disk_devices[i]);
        assert_int_equal(a->force_members, b->force_members);
        assert_int_equal(a->k8s, b->k8s);
}

static void test_round_trip(void **state) {
        static const char *const files[] = {
                CONFIGS "default.yaml",
                CONFIGS "single-node.yaml",
                CONFIGS "external-services.yaml",
                FIXTURES "full.yaml",
                FIXTURES "flow-style.yaml",
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_config_ struct config *a = parse_file_ok(files[i]);
                _cleanup_config_ struct config *b = NULL;
                _cleanup_free_ char *text = NULL, *again = NULL;

                /* Only references survive redaction; a literal token would not parse back. */
                if (!startswith(a->token, "file:") && !startswith(a->token, "env:")) {
                        free(a->token);
                        a->token = strdup("file:/etc/rainboot/token");
                }
                assert_int_equal(config_format(a, &text), 0);
                b = parse_ok(text);
                assert_config_equal(a, b);
                assert_int_equal(config_format(b, &again), 0);
                assert_string_equal(text, again);
        }
}

static void test_format_quotes(void **state) {
        static const char yaml[] = CLUSTER VIP
                "roles:\n  pins:\n    - match: {hostname: yes}\n      roles: [worker]\n"
                "external:\n  registry: {domain: \"on\", namespace: null}\n";
        _cleanup_config_ struct config *c = parse_ok(yaml);
        _cleanup_config_ struct config *b = NULL;
        _cleanup_free_ char *text = NULL;

        (void)state;
        assert_string_equal(c->pins[0].hostname, "yes");
        assert_int_equal(config_format(c, &text), 0);
        assert_non_null(strstr(text, "{hostname: \"yes\"}"));
        assert_non_null(strstr(text, "domain: \"on\""));
        b = parse_ok(text);
        assert_config_equal(c, b);
}

/* ---- token ---- */

static void test_resolve_token(void **state) {
        _cleanup_config_ struct config *c = NULL;
        char dir[] = "/tmp/test_config.XXXXXX", path[64];
        _cleanup_free_ char *t1 = NULL, *t2 = NULL, *t3 = NULL, *ref = NULL;
        char *t = NULL;
        FILE *f;

        (void)state;
        assert_int_equal(config_new_default(&c), 0);
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/token", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("0123456789abcdef-from-file\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, 0600), 0);

        assert_int_equal(asprintf(&ref, "file:%s", path) >= 0, true);
        c->token = strdup(ref);
        assert_int_equal(config_resolve_token(c, &t1), 0);
        assert_string_equal(t1, "0123456789abcdef-from-file");

        free(c->token);
        c->token = strdup("env:RAINBOOT_TEST_TOKEN");
        assert_int_equal(setenv("RAINBOOT_TEST_TOKEN", "0123456789abcdef-from-env", 1), 0);
        assert_int_equal(config_resolve_token(c, &t2), 0);
        assert_string_equal(t2, "0123456789abcdef-from-env");
        assert_int_equal(unsetenv("RAINBOOT_TEST_TOKEN"), 0);
        assert_int_equal(config_resolve_token(c, &t), -ENOKEY);
        assert_null(t);

        free(c->token);
        c->token = strdup("0123456789abcdef-literal");
        assert_int_equal(config_resolve_token(c, &t3), 0);
        assert_string_equal(t3, "0123456789abcdef-literal");

        /* A file too short to be a secret, then no file at all. */
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("short\n", f);
        assert_int_equal(fclose(f), 0);
        free(c->token);
        c->token = strdup(ref);
        assert_int_equal(config_resolve_token(c, &t), -EINVAL);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(config_resolve_token(c, &t), -ENOENT);
        assert_null(t);
        assert_int_equal(rmdir(dir), 0);
}

/* ---- names ---- */

static void test_names(void **state) {
        (void)state;
        assert_int_equal(role_from_name("master"), ROLE_MASTER);
        assert_int_equal(role_from_name("gateway"), ROLE_GATEWAY);
        assert_int_equal(role_from_name("rbd-gateway"), ROLE_GATEWAY);
        assert_int_equal(role_from_name("builder"), ROLE_BUILDER);
        assert_int_equal(role_from_name("rbd-chaos"), ROLE_BUILDER);
        assert_int_equal(role_from_name("Master"), 0);
        assert_int_equal(role_from_name(NULL), 0);
        assert_string_equal(role_to_name(ROLE_GATEWAY), "rbd-gateway");
        assert_string_equal(role_to_name(ROLE_MYSQL), "mysql");
        assert_null(role_to_name(ROLE_MASTER | ROLE_ETCD));
        for (unsigned b = 1; b & ROLE_ALL; b <<= 1)
                assert_int_equal(role_from_name(role_to_name(b)), b);
        assert_string_equal(wipe_policy_to_string(WIPE_FORCE_LISTED), "force-listed");
        assert_null(wipe_policy_to_string((enum wipe_policy)7));
}

/* ---- the CLI ---- */

static int run_fb(char **out, const char *cmdline, const char *verb, const char *file) {
        const char *fb = getenv("FIRSTBOOT");
        char *argv[] = { (char *)fb, (char *)"--cmdline", (char *)cmdline, (char *)"config",
                         (char *)verb, (char *)file, NULL };

        return run_command(argv, out);
}

static void test_cli(void **state) {
        char dir[] = "/tmp/test_config.XXXXXX", cmdline[64];
        _cleanup_free_ char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *o5 = NULL,
                            *o6 = NULL, *o7 = NULL;
        FILE *f;

        (void)state;
        if (!getenv("FIRSTBOOT"))
                skip();
        assert_int_equal(run_fb(&o1, "", "check", CONFIGS "default.yaml"), 0);
        assert_string_equal(o1, CONFIGS "default.yaml: ok (cluster prod-a, 3 nodes)\n");

        assert_int_equal(run_fb(&o2, "", "check", FIXTURES "many-problems.yaml"), 1);
        assert_non_null(strstr(o2, "many-problems.yaml:12:12: roles.masters: 4 is even"));
        assert_non_null(strstr(o2, "many-problems.yaml:3:9: cluster.name:"));

        assert_non_null(mkdtemp(dir));
        snprintf(cmdline, sizeof cmdline, "%s/cmdline", dir);
        f = fopen(cmdline, "we");
        assert_non_null(f);
        fputs("quiet rainboot.token=Cmdline-Literal-Secret rainboot.expected_nodes=5\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(run_fb(&o3, cmdline, "show", CONFIGS "default.yaml"), 0);
        assert_non_null(strstr(o3, "  token: \"<redacted>\"\n"));
        assert_non_null(strstr(o3, "  expected_nodes: 5\n"));
        assert_null(strstr(o3, "Cmdline-Literal-Secret"));
        assert_int_equal(run_fb(&o4, cmdline, "check", CONFIGS "default.yaml"), 0);
        assert_non_null(strstr(o4, "ok (cluster prod-a, 5 nodes)"));
        assert_int_equal(unlink(cmdline), 0);
        assert_int_equal(rmdir(dir), 0);

        assert_int_equal(run_fb(&o5, "", "frobnicate", NULL), 2);
        assert_non_null(strstr(o5, "unknown verb 'frobnicate'"));
        assert_int_equal(run_fb(&o6, "", "--help", NULL), 0);
        assert_non_null(strstr(o6, "config check [FILE]"));
        assert_int_equal(run_fb(&o7, "", "check", "/nonexistent/cluster.yaml"), 1);
        assert_non_null(strstr(o7, "/nonexistent/cluster.yaml: cannot read the config"));
}

static void test_cli_default_path(void **state) {
        const char *fb = getenv("FIRSTBOOT");
        _cleanup_free_ char *out = NULL, *out2 = NULL;
        char *argv[] = { (char *)fb, (char *)"--cmdline", (char *)"", (char *)"-c",
                         (char *)CONFIGS "single-node.yaml", (char *)"config", (char *)"check",
                         NULL };
        char *argv2[] = { (char *)fb, (char *)"config", (char *)"check", (char *)"a",
                          (char *)"b", NULL };

        (void)state;
        if (!fb)
                skip();
        assert_int_equal(run_command(argv, &out), 0);
        assert_string_equal(out, CONFIGS "single-node.yaml: ok (cluster single, 1 node)\n");
        assert_int_equal(run_command(argv2, &out2), 2);
        assert_non_null(strstr(out2, "too many arguments"));
}

int main(void) {
        const struct CMUnitTest fixed[] = {
                cmocka_unit_test(test_shipped_default),
                cmocka_unit_test(test_shipped_single_node),
                cmocka_unit_test(test_shipped_external),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full_fixture),
                cmocka_unit_test(test_flow_style),
                cmocka_unit_test(test_secret_not_echoed),
                cmocka_unit_test(test_many_problems_collected),
                cmocka_unit_test(test_diag_cap),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_cmdline_each_key),
                cmocka_unit_test(test_cmdline_defaults_follow),
                cmocka_unit_test(test_cmdline_revalidates),
                cmocka_unit_test(test_cmdline_quoting),
                cmocka_unit_test(test_cmdline_unknown_key),
                cmocka_unit_test(test_cmdline_bad_values),
                cmocka_unit_test(test_cmdline_ignores_others),
                cmocka_unit_test(test_cmdline_file),
                cmocka_unit_test(test_cmdline_lowers_wipe),
                cmocka_unit_test(test_cmdline_hand_built),
                cmocka_unit_test(test_format_redacts),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_format_quotes),
                cmocka_unit_test(test_resolve_token),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_cli),
                cmocka_unit_test(test_cli_default_path),
        };
        struct CMUnitTest tests[ELEMENTSOF(fixed) + ELEMENTSOF(bad_cases)];
        char names[ELEMENTSOF(bad_cases)][96];

        memcpy(tests, fixed, sizeof fixed);
        /* One TAP line per refused input, named after it. */
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                snprintf(names[i], sizeof names[i], "refuses %s", bad_cases[i].name);
                tests[ELEMENTSOF(fixed) + i] = (struct CMUnitTest){
                        .name = names[i],
                        .test_func = test_bad_case,
                        .initial_state = (void *)&bad_cases[i],
                };
        }
        return _cmocka_run_group_tests("test_config", tests, ELEMENTSOF(tests), NULL, NULL);
}
