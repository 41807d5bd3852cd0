/* SPDX-License-Identifier: MIT */
/* Payload codecs of the wire protocol: field by field, little-endian, every count and
 * length bounded, one canonical encoding accepted (PROTOCOL.md, "Payloads"). */
#include "wire.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "config.h"
#include "util.h"
#include "wire_bytes.h"

#define DISK_F_SSD 0x01u
#define NIC_F_UP   0x01u

/* Names end up on consoles and in logs: no control characters, no NUL inside. */
static bool text_ok(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

int wire_encode_announce(const struct node_info *n, void *out, size_t out_max, size_t *ret_len) {
        struct wbuf w = {.p = out, .size = out_max};
        size_t hl = strnlen(n->hostname, sizeof n->hostname);

        if (hl > NODE_HOSTNAME_MAX || !text_ok(n->hostname, hl) || n->n_addrs > NODE_ADDRS_MAX ||
            n->n_disks > NODE_DISKS_MAX || n->n_nics > NODE_NICS_MAX ||
            (n->pinned_roles & ~ROLE_ALL) || (unsigned)n->state > NODE_COMMITTED ||
            (n->flags & ~NODE_F_ALL))
                return -EINVAL;

        wbuf_put(&w, n->id, NODE_ID_LEN);
        wbuf_put(&w, n->boot_id, NODE_ID_LEN);
        wbuf_u8(&w, (uint8_t)hl);
        wbuf_put(&w, n->hostname, hl);
        wbuf_u8(&w, n->n_addrs);
        for (size_t i = 0; i < n->n_addrs; i++)
                wbuf_put(&w, &n->addrs[i].s_addr, 4); /* network byte order, as on the wire */
        wbuf_u16(&w, n->cpus);
        wbuf_u64(&w, n->memory_bytes);
        wbuf_u8(&w, n->n_disks);
        for (size_t i = 0; i < n->n_disks; i++) {
                wbuf_u64(&w, n->disks[i].size_bytes);
                wbuf_u8(&w, n->disks[i].ssd ? DISK_F_SSD : 0);
        }
        wbuf_u8(&w, n->n_nics);
        for (size_t i = 0; i < n->n_nics; i++) {
                wbuf_put(&w, n->nics[i].mac, 6);
                wbuf_u8(&w, n->nics[i].up ? NIC_F_UP : 0);
        }
        wbuf_u32(&w, n->pinned_roles);
        wbuf_u8(&w, (uint8_t)n->state);
        wbuf_put(&w, n->digest, DIGEST_LEN);
        wbuf_put(&w, n->box_pk, sizeof n->box_pk);
        wbuf_u32(&w, n->flags);
        if (w.overflow)
                return -EMSGSIZE;
        *ret_len = w.len;
        return 0;
}

int wire_decode_announce(const void *p, size_t len, struct node_info *ret) {
        struct rbuf r = {.p = p, .len = len};
        struct node_info n = {};
        uint8_t hl, state;

        rbuf_get(&r, n.id, NODE_ID_LEN);
        rbuf_get(&r, n.boot_id, NODE_ID_LEN);
        hl = rbuf_u8(&r);
        if (hl > NODE_HOSTNAME_MAX)
                return -EBADMSG;
        rbuf_get(&r, n.hostname, hl);
        if (!text_ok(n.hostname, hl))
                return -EBADMSG;
        n.n_addrs = rbuf_u8(&r);
        if (n.n_addrs > NODE_ADDRS_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n.n_addrs; i++)
                rbuf_get(&r, &n.addrs[i].s_addr, 4);
        n.cpus = rbuf_u16(&r);
        n.memory_bytes = rbuf_u64(&r);
        n.n_disks = rbuf_u8(&r);
        if (n.n_disks > NODE_DISKS_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n.n_disks; i++) {
                uint8_t f;

                n.disks[i].size_bytes = rbuf_u64(&r);
                f = rbuf_u8(&r);
                if (f & ~DISK_F_SSD)
                        return -EBADMSG;
                n.disks[i].ssd = f & DISK_F_SSD;
        }
        n.n_nics = rbuf_u8(&r);
        if (n.n_nics > NODE_NICS_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n.n_nics; i++) {
                uint8_t f;

                rbuf_get(&r, n.nics[i].mac, 6);
                f = rbuf_u8(&r);
                if (f & ~NIC_F_UP)
                        return -EBADMSG;
                n.nics[i].up = f & NIC_F_UP;
        }
        n.pinned_roles = rbuf_u32(&r);
        if (n.pinned_roles & ~ROLE_ALL)
                return -EBADMSG;
        state = rbuf_u8(&r);
        if (state > NODE_COMMITTED)
                return -EBADMSG;
        n.state = (enum node_state)state;
        rbuf_get(&r, n.digest, DIGEST_LEN);
        rbuf_get(&r, n.box_pk, sizeof n.box_pk);
        n.flags = rbuf_u32(&r);
        if (n.flags & ~NODE_F_ALL)
                return -EBADMSG;
        if (!rbuf_done(&r))
                return -EBADMSG;
        *ret = n;
        return 0;
}

/* The same rules for what we send and what we accept. */
static bool plan_ok(const struct wire_plan *p) {
        unsigned seen_flags = 0;

        if (p->n > WIRE_PLAN_MAX)
                return false;
        for (size_t i = 0; i < p->n; i++) {
                const struct wire_plan_entry *e = &p->entries[i];

                if ((e->roles & ~ROLE_ALL) || (e->flags & ~WIRE_PLAN_FLAGS) ||
                    (e->flags & seen_flags))
                        return false;
                seen_flags |= e->flags;
                for (size_t j = 0; j < i; j++)
                        if (node_id_cmp(p->entries[j].id, e->id) == 0)
                                return false;
        }
        return true;
}

int wire_encode_plan(const struct wire_plan *p, void *out, size_t out_max, size_t *ret_len) {
        struct wbuf w = {.p = out, .size = out_max};

        if (!plan_ok(p))
                return -EINVAL;
        wbuf_put(&w, p->digest, DIGEST_LEN);
        wbuf_u32(&w, p->epoch);
        wbuf_u16(&w, p->n);
        for (size_t i = 0; i < p->n; i++) {
                wbuf_put(&w, p->entries[i].id, NODE_ID_LEN);
                wbuf_u32(&w, p->entries[i].roles);
                wbuf_u8(&w, p->entries[i].flags);
                wbuf_u8(&w, p->entries[i].vrrp_priority);
        }
        if (w.overflow)
                return -EMSGSIZE;
        *ret_len = w.len;
        return 0;
}

int wire_decode_plan(const void *p, size_t len, struct wire_plan *ret) {
        struct rbuf r = {.p = p, .len = len};
        _cleanup_free_ struct wire_plan *t = NULL;

        /* Checked before reading entries, so a huge count costs nothing. */
        if (len < WIRE_PLAN_SIZE(0) || len > WIRE_PLAN_SIZE(WIRE_PLAN_MAX))
                return -EBADMSG;
        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        rbuf_get(&r, t->digest, DIGEST_LEN);
        t->epoch = rbuf_u32(&r);
        t->n = rbuf_u16(&r);
        if (t->n > WIRE_PLAN_MAX || len != WIRE_PLAN_SIZE(t->n))
                return -EBADMSG;
        for (size_t i = 0; i < t->n; i++) {
                rbuf_get(&r, t->entries[i].id, NODE_ID_LEN);
                t->entries[i].roles = rbuf_u32(&r);
                t->entries[i].flags = rbuf_u8(&r);
                t->entries[i].vrrp_priority = rbuf_u8(&r);
        }
        if (!rbuf_done(&r) || !plan_ok(t))
                return -EBADMSG;
        memcpy(ret, t, sizeof *t);
        return 0;
}

static const size_t secret_offsets[] = {
        offsetof(struct cluster_secrets, join_token),
        offsetof(struct cluster_secrets, cert_key),
        offsetof(struct cluster_secrets, mysql_replication_password),
        offsetof(struct cluster_secrets, registry_password),
        offsetof(struct cluster_secrets, mysql_rainbond_password),
};

int wire_encode_secrets(const struct cluster_secrets *s, uint8_t out[WIRE_SECRETS_BLOB_LEN]) {
        uint8_t *q = out;

        for (size_t i = 0; i < ELEMENTSOF(secret_offsets); i++) {
                const char *str = (const char *)s + secret_offsets[i];
                size_t l = strnlen(str, WIRE_SECRET_STR_MAX + 1);

                if (l > WIRE_SECRET_STR_MAX || !text_ok(str, l))
                        return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(secret_offsets); i++) {
                const char *str = (const char *)s + secret_offsets[i];
                size_t l = strlen(str);

                /* Padded to the maximum: the ciphertext length tells nothing. */
                *q++ = (uint8_t)l;
                memcpy(q, str, l);
                memset(q + l, 0, WIRE_SECRET_STR_MAX - l);
                q += WIRE_SECRET_STR_MAX;
        }
        memcpy(q, s->ca_seed, sizeof s->ca_seed);
        return 0;
}

int wire_decode_secrets(const uint8_t in[WIRE_SECRETS_BLOB_LEN], struct cluster_secrets *ret) {
        struct cluster_secrets t = {};
        const uint8_t *q = in;
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(secret_offsets); i++) {
                char *str = (char *)&t + secret_offsets[i];
                size_t l = *q++;

                if (l > WIRE_SECRET_STR_MAX) {
                        r = -EBADMSG;
                        break;
                }
                memcpy(str, q, l);
                str[l] = '\0';
                for (size_t k = l; k < WIRE_SECRET_STR_MAX; k++)
                        if (q[k] != 0)
                                r = -EBADMSG;
                if (!text_ok(str, l))
                        r = -EBADMSG;
                if (r < 0)
                        break;
                q += WIRE_SECRET_STR_MAX;
        }
        if (r == 0) {
                memcpy(t.ca_seed, q, sizeof t.ca_seed);
                memcpy(ret, &t, sizeof t);
        }
        sodium_memzero(&t, sizeof t);
        return r;
}
