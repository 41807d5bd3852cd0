/* SPDX-License-Identifier: MIT */
/* The inventory for people (inventory_print) and for programs (inventory_to_json, whose
 * schema other tools and tests parse: change it only by adding keys). */
#include "inventory.h"

#include <json-c/json.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "json_util.h"
#include "util.h"

static int partition_to_json(const struct partition *p, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = json_add_str(o, "name", p->name)) < 0 ||
            (r = json_add_str(o, "path", p->path)) < 0 ||
            (r = json_add_u64(o, "number", p->number)) < 0 ||
            (r = json_add_u64(o, "size_bytes", p->size_bytes)) < 0 ||
            (r = json_add_str_or_null(o, "partlabel", p->partlabel)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int signature_to_json(const struct signature *s, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = json_add_str(o, "type", s->type)) < 0 ||
            (r = json_add_str(o, "usage", sig_usage_to_string(s->usage))) < 0 ||
            (r = json_add_str(o, "where", s->where)) < 0 ||
            (r = json_add_str_or_null(o, "label", s->label)) < 0 ||
            (r = json_add_str_or_null(o, "uuid", s->uuid)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int disk_to_json(const struct disk *d, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *parts = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *sigs = json_object_new_array();
        int r;

        if (!o || !parts || !sigs)
                return -ENOMEM;
        if ((r = json_add_str(o, "name", d->name)) < 0 ||
            (r = json_add_str(o, "path", d->path)) < 0 ||
            (r = json_add_str_or_null(o, "by_id", d->by_id)) < 0 ||
            (r = json_add_str(o, "devnum", d->devnum)) < 0 ||
            (r = json_add_u64(o, "size_bytes", d->size_bytes)) < 0 ||
            (r = json_add_u64(o, "logical_sector_size", d->logical_sector)) < 0 ||
            (r = json_add_u64(o, "physical_sector_size", d->physical_sector)) < 0 ||
            (r = json_add_bool(o, "rotational", d->rotational)) < 0 ||
            (r = json_add_bool(o, "ssd", !d->rotational)) < 0 ||
            (r = json_add_bool(o, "removable", d->removable)) < 0 ||
            (r = json_add_bool(o, "readonly", d->readonly)) < 0 ||
            (r = json_add_str_or_null(o, "transport", d->transport)) < 0 ||
            (r = json_add_str_or_null(o, "model", d->model)) < 0 ||
            (r = json_add_str_or_null(o, "serial", d->serial)) < 0 ||
            (r = json_add_str_or_null(o, "pttype", d->pttype)) < 0)
                return r;

        for (size_t i = 0; i < d->n_parts; i++) {
                struct json_object *p;

                r = partition_to_json(&d->parts[i], &p);
                if (r < 0)
                        return r;
                r = json_append(parts, p);
                if (r < 0)
                        return r;
        }
        r = json_add(o, "partitions", TAKE_PTR(parts));
        if (r < 0)
                return r;

        for (size_t i = 0; i < d->n_sigs; i++) {
                struct json_object *s;

                r = signature_to_json(&d->sigs[i], &s);
                if (r < 0)
                        return r;
                r = json_append(sigs, s);
                if (r < 0)
                        return r;
        }
        r = json_add(o, "signatures", TAKE_PTR(sigs));
        if (r < 0)
                return r;

        if ((r = json_add_bool(o, "holds_system", d->holds_system)) < 0 ||
            (r = json_add_bool(o, "boot_medium", d->boot_medium)) < 0 ||
            (r = json_add_str_or_null(o, "in_use", d->in_use)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static const char *family_to_string(int family) {
        return family == AF_INET6 ? "inet6" : "inet";
}

static int nic_to_json(const struct nic *n, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *addrs = json_object_new_array();
        char mac[18];
        int r;

        if (!o || !addrs)
                return -ENOMEM;
        format_mac(n->mac, mac);
        if ((r = json_add_str(o, "name", n->name)) < 0 ||
            (r = json_add_int(o, "ifindex", n->ifindex)) < 0 ||
            (r = json_add_str_or_null(o, "mac", n->has_mac ? mac : NULL)) < 0 ||
            (r = json_add_u64(o, "mtu", n->mtu)) < 0 ||
            (r = json_add_str(o, "operstate", n->operstate ?: "unknown")) < 0 ||
            (r = json_add_bool(o, "carrier", n->carrier)) < 0 ||
            (r = json_add_str_or_null(o, "kind", n->kind)) < 0 ||
            (r = json_add_bool(o, "loopback", n->loopback)) < 0 ||
            (r = json_add_bool(o, "virtual", n->is_virtual)) < 0 ||
            (r = json_add_bool(o, "default_route", n->default_route)) < 0)
                return r;

        for (size_t i = 0; i < n->n_addrs; i++) {
                _cleanup_(json_object_putp) struct json_object *a = json_object_new_object();

                if (!a)
                        return -ENOMEM;
                if ((r = json_add_str(a, "family", family_to_string(n->addrs[i].family))) < 0 ||
                    (r = json_add_str(a, "cidr", n->addrs[i].cidr)) < 0)
                        return r;
                r = json_append(addrs, TAKE_PTR(a));
                if (r < 0)
                        return r;
        }
        r = json_add(o, "addresses", TAKE_PTR(addrs));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int inventory_to_json(const struct inventory *inv, bool all_nics, char **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *disks = json_object_new_array();
        _cleanup_(json_object_putp) struct json_object *nics = json_object_new_array();
        int r;

        if (!o || !disks || !nics)
                return -ENOMEM;
        if ((r = json_add_str(o, "hostname", inv->hostname)) < 0 ||
            (r = json_add_u64(o, "cpus", inv->cpus)) < 0 ||
            (r = json_add_u64(o, "memory_bytes", inv->memory_bytes)) < 0)
                return r;

        for (size_t i = 0; i < inv->n_disks; i++) {
                struct json_object *d;

                r = disk_to_json(&inv->disks[i], &d);
                if (r < 0)
                        return r;
                r = json_append(disks, d);
                if (r < 0)
                        return r;
        }
        r = json_add(o, "disks", TAKE_PTR(disks));
        if (r < 0)
                return r;

        for (size_t i = 0; i < inv->n_nics; i++) {
                struct json_object *n;

                if (!all_nics && inv->nics[i].is_virtual)
                        continue;
                r = nic_to_json(&inv->nics[i], &n);
                if (r < 0)
                        return r;
                r = json_append(nics, n);
                if (r < 0)
                        return r;
        }
        r = json_add(o, "nics", TAKE_PTR(nics));
        if (r < 0)
                return r;

        return json_to_string(o, ret);
}

static void print_disk(const struct disk *d, FILE *f) {
        char size[16];
        bool first;

        fprintf(f, "  %s  %s  %s", d->path, format_bytes(d->size_bytes, size),
                d->rotational ? "HDD" : "SSD");
        if (d->transport)
                fprintf(f, "  %s", d->transport);
        if (d->model)
                fprintf(f, "  \"%s\"", d->model);
        if (d->serial)
                fprintf(f, "  serial %s", d->serial);
        if (d->removable)
                fprintf(f, "  removable");
        if (d->readonly)
                fprintf(f, "  read-only");
        fputc('\n', f);
        if (d->by_id)
                fprintf(f, "      id: %s\n", d->by_id);

        fprintf(f, "      table: %s", d->pttype ?: "none");
        for (size_t i = 0; i < d->n_parts; i++) {
                const struct partition *p = &d->parts[i];

                fprintf(f, "%s%s %s", i == 0 ? ", partitions: " : ", ", p->name,
                        format_bytes(p->size_bytes, size));
                if (p->partlabel)
                        fprintf(f, " \"%s\"", p->partlabel);
        }
        fputc('\n', f);

        fprintf(f, "      signatures:");
        first = true;
        for (size_t i = 0; i < d->n_sigs; i++) {
                const struct signature *s = &d->sigs[i];

                if (s->usage == SIG_PTABLE)
                        continue; /* shown as the table above */
                fprintf(f, "%s %s (%s) on %s", first ? "" : ",", s->type,
                        sig_usage_to_string(s->usage), s->where);
                if (s->label)
                        fprintf(f, " label \"%s\"", s->label);
                first = false;
        }
        fprintf(f, "%s\n", first ? " none" : "");

        if (d->holds_system || d->boot_medium || d->in_use) {
                fprintf(f, "      flags:");
                if (d->holds_system)
                        fprintf(f, " SYSTEM");
                if (d->boot_medium)
                        fprintf(f, " BOOT MEDIUM");
                if (d->in_use)
                        fprintf(f, " in use (%s)", d->in_use);
                fputc('\n', f);
        }
}

static void print_nic(const struct nic *n, FILE *f) {
        char mac[18];

        format_mac(n->mac, mac);
        fprintf(f, "  %-12s %-17s  mtu %-5u  %s%s", n->name, n->has_mac ? mac : "-", n->mtu,
                n->operstate ?: "unknown", n->carrier ? ", carrier" : ", no carrier");
        if (n->kind)
                fprintf(f, "  (%s)", n->kind);
        for (size_t i = 0; i < n->n_addrs; i++)
                fprintf(f, "%s%s", i == 0 ? "  " : ", ", n->addrs[i].cidr);
        if (n->default_route)
                fprintf(f, "  default route");
        fputc('\n', f);
}

void inventory_print(const struct inventory *inv, bool all_nics, FILE *f) {
        char mem[16];
        size_t shown = 0;

        fprintf(f, "Host: %s, %u CPU%s, %s memory\n", inv->hostname ?: "(unknown)", inv->cpus,
                inv->cpus == 1 ? "" : "s", format_bytes(inv->memory_bytes, mem));

        fprintf(f, "\nDisks:\n");
        for (size_t i = 0; i < inv->n_disks; i++)
                print_disk(&inv->disks[i], f);
        if (inv->n_disks == 0)
                fprintf(f, "  (none)\n");

        fprintf(f, "\nNICs:\n");
        for (size_t i = 0; i < inv->n_nics; i++) {
                if (!all_nics && inv->nics[i].is_virtual)
                        continue;
                print_nic(&inv->nics[i], f);
                shown++;
        }
        if (shown == 0)
                fprintf(f, "  (none%s)\n", all_nics ? "" : "; --all shows virtual ones");
}
