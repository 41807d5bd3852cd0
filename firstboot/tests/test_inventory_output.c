/* SPDX-License-Identifier: MIT */
/* inventory_to_json and inventory_print on a fixture inventory: the JSON schema other
 * tools parse (keys, types, nulls, NIC filtering) and what the text shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "inventory.h"
#include "util.h"

static struct inventory *fixture(void) {
        struct inventory *inv = calloc(1, sizeof *inv);
        struct disk *d;
        struct nic *n;

        assert_non_null(inv);
        inv->hostname = strdup("node-1");
        inv->cpus = 8;
        inv->memory_bytes = 16ULL << 30;

        inv->n_disks = 2;
        inv->disks = calloc(2, sizeof *inv->disks);
        d = &inv->disks[0];
        d->name = strdup("sda");
        d->path = strdup("/dev/sda");
        d->by_id = strdup("/dev/disk/by-id/ata-Fast_SSD_S123");
        d->devnum = strdup("8:0");
        d->size_bytes = 480103981056ULL;
        d->logical_sector = 512;
        d->physical_sector = 4096;
        d->rotational = false;
        d->transport = strdup("sata");
        d->model = strdup("Fast SSD");
        d->serial = strdup("S123");
        d->pttype = strdup("gpt");
        d->n_parts = 1;
        d->parts = calloc(1, sizeof *d->parts);
        d->parts[0] = (struct partition){strdup("sda1"), strdup("/dev/sda1"), 1, 1ULL << 30,
                                         strdup("root")};
        d->n_sigs = 2;
        d->sigs = calloc(2, sizeof *d->sigs);
        d->sigs[0] = (struct signature){strdup("gpt"), SIG_PTABLE, strdup("disk"), NULL,
                                        strdup("0c8f-uuid")};
        d->sigs[1] = (struct signature){strdup("linux_raid_member"), SIG_RAID, strdup("sda1"),
                                        strdup("node-1:0"), NULL};
        d->holds_system = true;
        d->in_use = strdup("member of md0");

        d = &inv->disks[1];
        d->name = strdup("sdb");
        d->path = strdup("/dev/sdb");
        d->devnum = strdup("8:16");
        d->size_bytes = 4000787030016ULL;
        d->logical_sector = d->physical_sector = 512;
        d->rotational = true;

        inv->n_nics = 2;
        inv->nics = calloc(2, sizeof *inv->nics);
        n = &inv->nics[0];
        n->name = strdup("eno1");
        n->ifindex = 2;
        memcpy(n->mac, (uint8_t[]){0x52, 0x54, 0x00, 0xab, 0x0c, 0x01}, 6);
        n->has_mac = true;
        n->mtu = 9000;
        n->operstate = strdup("up");
        n->carrier = true;
        n->default_route = true;
        n->n_addrs = 2;
        n->addrs = calloc(2, sizeof *n->addrs);
        n->addrs[0] = (struct nic_addr){AF_INET, strdup("192.0.2.5/24")};
        n->addrs[1] = (struct nic_addr){AF_INET6, strdup("2001:db8::5/64")};
        n = &inv->nics[1];
        n->name = strdup("lo");
        n->ifindex = 1;
        n->mtu = 65536;
        n->operstate = strdup("unknown");
        n->loopback = true;
        n->is_virtual = true;
        return inv;
}

static struct json_object *to_json(const struct inventory *inv, bool all) {
        _cleanup_free_ char *s = NULL;
        struct json_object *o;

        assert_int_equal(inventory_to_json(inv, all, &s), 0);
        assert_non_null(s);
        o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static struct json_object *get(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        assert_true(json_object_object_get_ex(o, key, &v));
        return v;
}

static void assert_str(struct json_object *o, const char *key, const char *want) {
        struct json_object *v = get(o, key);

        if (!want) {
                assert_null(v);
                return;
        }
        assert_true(json_object_is_type(v, json_type_string));
        assert_string_equal(json_object_get_string(v), want);
}

static void assert_bool(struct json_object *o, const char *key, bool want) {
        struct json_object *v = get(o, key);

        assert_true(json_object_is_type(v, json_type_boolean));
        assert_int_equal(json_object_get_boolean(v), want);
}

static void assert_u64(struct json_object *o, const char *key, uint64_t want) {
        struct json_object *v = get(o, key);

        assert_true(json_object_is_type(v, json_type_int));
        assert_true(json_object_get_uint64(v) == want);
}

static void assert_keys(struct json_object *o, const char *const *keys, size_t n) {
        assert_int_equal(json_object_object_length(o), n);
        for (size_t i = 0; i < n; i++)
                if (!json_object_object_get_ex(o, keys[i], NULL))
                        fail_msg("missing key %s", keys[i]);
}

static void test_json_schema(void **state) {
        static const char *const top[] = {"hostname", "cpus", "memory_bytes", "disks", "nics"};
        static const char *const disk[] = {
                "name",
                "path",
                "by_id",
                "devnum",
                "size_bytes",
                "logical_sector_size",
                "physical_sector_size",
                "rotational",
                "ssd",
                "removable",
                "readonly",
                "transport",
                "model",
                "serial",
                "pttype",
                "partitions",
                "signatures",
                "holds_system",
                "boot_medium",
                "in_use",
        };
        static const char *const part[] = {"name", "path", "number", "size_bytes", "partlabel"};
        static const char *const sig[] = {"type", "usage", "where", "label", "uuid"};
        static const char *const nic[] = {"name",      "ifindex",       "mac",      "mtu",
                                          "operstate", "carrier",       "kind",     "loopback",
                                          "virtual",   "default_route", "addresses"};
        _cleanup_inventory_ struct inventory *inv = fixture();
        struct json_object *o = to_json(inv, true), *d;

        (void)state;
        assert_keys(o, top, ELEMENTSOF(top));
        d = json_object_array_get_idx(get(o, "disks"), 0);
        assert_keys(d, disk, ELEMENTSOF(disk));
        assert_keys(json_object_array_get_idx(get(d, "partitions"), 0), part, ELEMENTSOF(part));
        assert_keys(json_object_array_get_idx(get(d, "signatures"), 0), sig, ELEMENTSOF(sig));
        assert_keys(json_object_array_get_idx(get(o, "nics"), 0), nic, ELEMENTSOF(nic));
        json_object_put(o);
}

static void test_json_values(void **state) {
        _cleanup_inventory_ struct inventory *inv = fixture();
        struct json_object *o = to_json(inv, false), *d, *p, *s, *n, *a;

        (void)state;
        assert_str(o, "hostname", "node-1");
        assert_u64(o, "cpus", 8);
        assert_u64(o, "memory_bytes", 16ULL << 30);
        assert_int_equal(json_object_array_length(get(o, "disks")), 2);

        d = json_object_array_get_idx(get(o, "disks"), 0);
        assert_str(d, "path", "/dev/sda");
        assert_str(d, "by_id", "/dev/disk/by-id/ata-Fast_SSD_S123");
        assert_str(d, "devnum", "8:0");
        assert_u64(d, "size_bytes", 480103981056ULL);
        assert_u64(d, "physical_sector_size", 4096);
        assert_bool(d, "rotational", false);
        assert_bool(d, "ssd", true);
        assert_str(d, "transport", "sata");
        assert_str(d, "model", "Fast SSD");
        assert_str(d, "pttype", "gpt");
        assert_bool(d, "holds_system", true);
        assert_bool(d, "boot_medium", false);
        assert_str(d, "in_use", "member of md0");
        p = json_object_array_get_idx(get(d, "partitions"), 0);
        assert_str(p, "name", "sda1");
        assert_u64(p, "number", 1);
        assert_u64(p, "size_bytes", 1ULL << 30);
        assert_str(p, "partlabel", "root");
        s = json_object_array_get_idx(get(d, "signatures"), 0);
        assert_str(s, "type", "gpt");
        assert_str(s, "usage", "ptable");
        assert_str(s, "label", NULL);
        s = json_object_array_get_idx(get(d, "signatures"), 1);
        assert_str(s, "usage", "raid");
        assert_str(s, "where", "sda1");
        assert_str(s, "label", "node-1:0");
        assert_str(s, "uuid", NULL);

        /* Optional strings are JSON null, not "" or missing. */
        d = json_object_array_get_idx(get(o, "disks"), 1);
        assert_bool(d, "ssd", false);
        assert_str(d, "by_id", NULL);
        assert_str(d, "transport", NULL);
        assert_str(d, "model", NULL);
        assert_str(d, "serial", NULL);
        assert_str(d, "pttype", NULL);
        assert_str(d, "in_use", NULL);
        assert_int_equal(json_object_array_length(get(d, "partitions")), 0);
        assert_int_equal(json_object_array_length(get(d, "signatures")), 0);

        /* Without all_nics the loopback (virtual) is left out. */
        assert_int_equal(json_object_array_length(get(o, "nics")), 1);
        n = json_object_array_get_idx(get(o, "nics"), 0);
        assert_str(n, "name", "eno1");
        assert_str(n, "mac", "52:54:00:ab:0c:01");
        assert_u64(n, "mtu", 9000);
        assert_str(n, "kind", NULL);
        assert_bool(n, "virtual", false);
        assert_bool(n, "default_route", true);
        a = get(n, "addresses");
        assert_int_equal(json_object_array_length(a), 2);
        assert_str(json_object_array_get_idx(a, 0), "family", "inet");
        assert_str(json_object_array_get_idx(a, 1), "family", "inet6");
        assert_str(json_object_array_get_idx(a, 1), "cidr", "2001:db8::5/64");
        json_object_put(o);

        o = to_json(inv, true);
        assert_int_equal(json_object_array_length(get(o, "nics")), 2);
        n = json_object_array_get_idx(get(o, "nics"), 1);
        assert_str(n, "mac", NULL);
        assert_bool(n, "loopback", true);
        assert_bool(n, "virtual", true);
        json_object_put(o);
}

static char *print(const struct inventory *inv, bool all) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        inventory_print(inv, all, f);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_print(void **state) {
        _cleanup_inventory_ struct inventory *inv = fixture();
        _cleanup_free_ char *t = print(inv, false), *all = print(inv, true);

        (void)state;
        assert_non_null(strstr(t, "Host: node-1, 8 CPUs, 16 GiB memory"));
        assert_non_null(strstr(t, "/dev/sda  447 GiB  SSD  sata  \"Fast SSD\"  serial S123"));
        assert_non_null(strstr(t, "table: gpt, partitions: sda1 1 GiB \"root\""));
        assert_non_null(strstr(t, "linux_raid_member (raid) on sda1 label \"node-1:0\""));
        assert_non_null(strstr(t, "flags: SYSTEM in use (member of md0)"));
        assert_non_null(strstr(t, "/dev/sdb  3.6 TiB  HDD"));
        assert_non_null(strstr(t, "table: none\n      signatures: none\n"));
        assert_non_null(strstr(t, "eno1"));
        assert_non_null(strstr(t, "52:54:00:ab:0c:01"));
        assert_non_null(strstr(t, "192.0.2.5/24, 2001:db8::5/64  default route"));
        assert_null(strstr(t, "lo "));
        assert_non_null(strstr(all, "  lo "));
}

static void test_empty(void **state) {
        struct inventory inv = {0};
        _cleanup_free_ char *t = print(&inv, false);
        _cleanup_free_ char *s = NULL;

        (void)state;
        assert_non_null(strstr(t, "Disks:\n  (none)"));
        assert_int_equal(inventory_to_json(&inv, false, &s), 0);
        assert_non_null(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_schema),
                cmocka_unit_test(test_json_values),
                cmocka_unit_test(test_print),
                cmocka_unit_test(test_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
