/* SPDX-License-Identifier: MIT */
/* The sealed wire protocol: key derivation, seal/open of every type with every field
 * checked, every corruption of a valid datagram rejected with its reason, replay window,
 * clock window, and the payload decoders on malformed input (buffers are allocated at
 * their exact size, so ASan catches any read past the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "config.h"
#include "util.h"
#include "wire.h"

/* Argon2id at its minimum: the protocol's cost is exercised once in test_keys_default. */
#define TEST_OPS crypto_pwhash_OPSLIMIT_MIN
#define TEST_MEM crypto_pwhash_MEMLIMIT_MIN
#define NOW      UINT64_C(1764100000000)

struct fx {
        struct wire_keys *keys;  /* token "correct horse", cluster "prod-a" */
        struct wire_keys *wrong; /* token "wrong horse", cluster "prod-a" */
        struct wire_keys *other; /* token "correct horse", cluster "prod-b" */
};

static struct wire_keys *derive(const char *token, const char *name) {
        struct wire_keys *k = NULL;

        assert_int_equal(wire_keys_derive_cost(token, strlen(token), name, TEST_OPS, TEST_MEM, &k),
                         0);
        assert_non_null(k);
        return k;
}

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);

        if (!f)
                return -1;
        f->keys = derive("correct horse", "prod-a");
        f->wrong = derive("wrong horse", "prod-a");
        f->other = derive("correct horse", "prod-b");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;

        wire_keys_free(f->keys);
        wire_keys_free(f->wrong);
        wire_keys_free(f->other);
        free(f);
        return 0;
}

static void fill_id(uint8_t id[NODE_ID_LEN], uint8_t v) {
        for (size_t i = 0; i < NODE_ID_LEN; i++)
                id[i] = (uint8_t)(v + i);
}

static struct wire_sender sender(uint8_t v) {
        struct wire_sender s = {.counter = 1};

        fill_id(s.id, v);
        fill_id(s.boot_id, (uint8_t)(v + 0x80));
        return s;
}

static struct wire_rx *rx_for(uint8_t self) {
        struct wire_rx *rx = NULL;
        uint8_t id[NODE_ID_LEN];

        fill_id(id, self);
        assert_int_equal(wire_rx_new(id, 0, &rx), 0);
        return rx;
}

/* A node_info with every field set to something distinctive and at its maximum count. */
static void full_node(struct node_info *n, const struct wire_sender *s) {
        memset(n, 0, sizeof *n);
        memcpy(n->id, s->id, NODE_ID_LEN);
        memcpy(n->boot_id, s->boot_id, NODE_ID_LEN);
        memset(n->hostname, 'h', NODE_HOSTNAME_MAX);
        memcpy(n->hostname, "node-ä.example", strlen("node-ä.example"));
        n->n_addrs = NODE_ADDRS_MAX;
        for (size_t i = 0; i < NODE_ADDRS_MAX; i++)
                n->addrs[i].s_addr = htonl(0xc0000200u + (uint32_t)i);
        n->cpus = 0xfedc;
        n->memory_bytes = UINT64_C(0x0123456789abcdef);
        n->n_disks = NODE_DISKS_MAX;
        for (size_t i = 0; i < NODE_DISKS_MAX; i++) {
                n->disks[i].size_bytes = (UINT64_C(1) << 40) * (i + 1) + i;
                n->disks[i].ssd = i % 3 == 0;
        }
        n->n_nics = NODE_NICS_MAX;
        for (size_t i = 0; i < NODE_NICS_MAX; i++) {
                uint8_t mac[6] = {0x52, 0x54, 0x00, 0xaa, (uint8_t)i, (uint8_t)(0xf0 + i)};
                memcpy(n->nics[i].mac, mac, 6);
                n->nics[i].up = i % 2 == 1;
        }
        n->pinned_roles = ROLE_MASTER | ROLE_GATEWAY | ROLE_MYSQL;
        n->state = NODE_LOCKED;
        for (size_t i = 0; i < DIGEST_LEN; i++)
                n->digest[i] = (uint8_t)(0xd0 ^ i);
        for (size_t i = 0; i < 32; i++)
                n->box_pk[i] = (uint8_t)(0x40 + 3 * i);
        n->flags = NODE_F_HAS_SECRETS | NODE_F_LATE;
}

static void assert_node_equal(const struct node_info *a, const struct node_info *b) {
        assert_memory_equal(a->id, b->id, NODE_ID_LEN);
        assert_memory_equal(a->boot_id, b->boot_id, NODE_ID_LEN);
        assert_string_equal(a->hostname, b->hostname);
        assert_int_equal(a->n_addrs, b->n_addrs);
        for (size_t i = 0; i < a->n_addrs; i++)
                assert_int_equal(a->addrs[i].s_addr, b->addrs[i].s_addr);
        assert_int_equal(a->cpus, b->cpus);
        assert_int_equal(a->memory_bytes, b->memory_bytes);
        assert_int_equal(a->n_disks, b->n_disks);
        for (size_t i = 0; i < a->n_disks; i++) {
                assert_int_equal(a->disks[i].size_bytes, b->disks[i].size_bytes);
                assert_int_equal(a->disks[i].ssd, b->disks[i].ssd);
        }
        assert_int_equal(a->n_nics, b->n_nics);
        for (size_t i = 0; i < a->n_nics; i++) {
                assert_memory_equal(a->nics[i].mac, b->nics[i].mac, 6);
                assert_int_equal(a->nics[i].up, b->nics[i].up);
        }
        assert_int_equal(a->pinned_roles, b->pinned_roles);
        assert_int_equal(a->state, b->state);
        assert_memory_equal(a->digest, b->digest, DIGEST_LEN);
        assert_memory_equal(a->box_pk, b->box_pk, 32);
        assert_int_equal(a->flags, b->flags);
}

/* Seal an announce of s (its own node_info) at time now. */
static size_t seal_announce_buf(const struct wire_keys *k, struct wire_sender *s, uint64_t now,
                                uint8_t *pkt, size_t max) {
        uint8_t buf[WIRE_ANNOUNCE_MAX];
        struct node_info n;
        size_t len, pkt_len;

        full_node(&n, s);
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), 0);
        assert_int_equal(wire_seal(k, WIRE_ANNOUNCE, s, now, buf, len, pkt, max, &pkt_len), 0);
        return pkt_len;
}
#define seal_announce(k, s, now, pkt) seal_announce_buf(k, s, now, pkt, sizeof(pkt))

/* Open into sentinel-filled outputs; on a drop they must be untouched. */
static int open_pkt(const struct wire_keys *k, struct wire_rx *rx, uint64_t now, const void *pkt,
                    size_t len) {
        uint8_t payload[WIRE_MAX_PAYLOAD], before[WIRE_MAX_PAYLOAD];
        struct wire_header h, hb;
        size_t plen = 0x5a5a;
        int r;

        memset(&h, 0xa5, sizeof h);
        memset(payload, 0xa5, sizeof payload);
        hb = h;
        memcpy(before, payload, sizeof payload);
        r = wire_open(k, rx, now, pkt, len, &h, payload, sizeof payload, &plen);
        if (r < 0) {
                assert_memory_equal(&h, &hb, sizeof h);
                assert_memory_equal(payload, before, sizeof payload);
                assert_int_equal(plen, 0x5a5a);
        }
        return r;
}

static void test_keys(void **state) {
        struct fx *f = *state;
        struct wire_keys *again = derive("correct horse", "prod-a");
        struct wire_keys *k = NULL;

        /* Deterministic. */
        assert_memory_equal(again->aead, f->keys->aead, sizeof again->aead);
        assert_memory_equal(again->secrets, f->keys->secrets, sizeof again->secrets);
        assert_memory_equal(again->tag, f->keys->tag, WIRE_TAG_LEN);
        /* Another token: other keys, same tag (the tag depends on the name only). */
        assert_memory_not_equal(f->wrong->aead, f->keys->aead, sizeof again->aead);
        assert_memory_not_equal(f->wrong->secrets, f->keys->secrets, sizeof again->secrets);
        assert_memory_equal(f->wrong->tag, f->keys->tag, WIRE_TAG_LEN);
        /* Another name: other keys and tag. */
        assert_memory_not_equal(f->other->aead, f->keys->aead, sizeof again->aead);
        assert_memory_not_equal(f->other->tag, f->keys->tag, WIRE_TAG_LEN);
        /* Subkeys are independent of each other. */
        assert_memory_not_equal(f->keys->aead, f->keys->secrets, sizeof again->aead);
        wire_keys_free(again);

        assert_int_equal(wire_keys_derive_cost("", 0, "prod-a", TEST_OPS, TEST_MEM, &k), -EINVAL);
        assert_int_equal(wire_keys_derive_cost("t", 1, "", TEST_OPS, TEST_MEM, &k), -EINVAL);
        assert_null(k);
        assert_null(wire_keys_free(NULL));
}

static void test_keys_default(void **state) {
        struct fx *f = *state;
        struct wire_keys *a = NULL, *b = NULL;

        /* The protocol's Argon2id cost, once: deterministic, and not the test-cost keys. */
        assert_int_equal(wire_keys_derive("correct horse", 13, "prod-a", &a), 0);
        assert_int_equal(wire_keys_derive("correct horse", 13, "prod-a", &b), 0);
        assert_memory_equal(a->aead, b->aead, sizeof a->aead);
        assert_memory_equal(a->secrets, b->secrets, sizeof a->secrets);
        assert_memory_not_equal(a->aead, f->keys->aead, sizeof a->aead);
        assert_memory_equal(a->tag, f->keys->tag, WIRE_TAG_LEN);
        wire_keys_free(a);
        wire_keys_free(b);
}

static void test_announce_roundtrip(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t pkt[WIRE_MAX_DATAGRAM], payload[WIRE_MAX_PAYLOAD];
        struct node_info sent, got;
        struct wire_header h;
        size_t len, plen;

        s.counter = UINT64_C(0x1122334455667788);
        full_node(&sent, &s);
        len = seal_announce(f->keys, &s, NOW, pkt);
        assert_int_equal(s.counter, UINT64_C(0x1122334455667789));
        assert_memory_equal(pkt, "RBT", 3);
        assert_int_equal(pkt[3], WIRE_VERSION);
        assert_int_equal(pkt[4], WIRE_ANNOUNCE);
        assert_memory_equal(pkt + 5, f->keys->tag, WIRE_TAG_LEN);

        assert_int_equal(
                wire_open(f->keys, rx, NOW + 1234, pkt, len, &h, payload, sizeof payload, &plen),
                0);
        assert_int_equal(h.type, WIRE_ANNOUNCE);
        assert_memory_equal(h.sender_id, s.id, NODE_ID_LEN);
        assert_memory_equal(h.boot_id, s.boot_id, NODE_ID_LEN);
        assert_int_equal(h.counter, UINT64_C(0x1122334455667788));
        assert_int_equal(h.sent_ms, NOW);
        assert_int_equal(len, WIRE_OVERHEAD + plen);
        assert_int_equal(wire_decode_announce(payload, plen, &got), 0);
        assert_node_equal(&sent, &got);
        assert_int_equal(rx->stats.accepted, 1);

        /* Minimal node: empty hostname and lists. */
        memset(&sent, 0, sizeof sent);
        memcpy(sent.id, s.id, NODE_ID_LEN);
        memcpy(sent.boot_id, s.boot_id, NODE_ID_LEN);
        assert_int_equal(wire_encode_announce(&sent, payload, sizeof payload, &plen), 0);
        assert_int_equal(wire_decode_announce(payload, plen, &got), 0);
        assert_node_equal(&sent, &got);
        wire_rx_free(rx);
}

static void full_plan(struct wire_plan *p, uint16_t n) {
        memset(p, 0, sizeof *p);
        for (size_t i = 0; i < DIGEST_LEN; i++)
                p->digest[i] = (uint8_t)(0x99 + i);
        p->epoch = 0xa1b2c3d4u;
        p->n = n;
        for (size_t i = 0; i < n; i++) {
                struct wire_plan_entry *e = &p->entries[i];

                fill_id(e->id, 0);
                e->id[0] = (uint8_t)i;
                e->id[1] = (uint8_t)(i >> 8);
                e->roles = (uint32_t)(i * 7) & ROLE_ALL;
                e->vrrp_priority = (uint8_t)(255 - i);
        }
        if (n > 0)
                p->entries[0].flags = PLAN_BOOTSTRAP;
        if (n > 1)
                p->entries[n - 1].flags = PLAN_MYSQL_PRIMARY;
}

static void test_plan_roundtrip(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t pkt[WIRE_MAX_DATAGRAM], payload[WIRE_MAX_PAYLOAD];
        struct wire_plan *sent = malloc(sizeof *sent), *got = malloc(sizeof *got);
        static const uint16_t sizes[] = {0, 1, 3, WIRE_PLAN_MAX};
        struct wire_header h;
        size_t len, plen;

        assert_non_null(sent);
        assert_non_null(got);
        for (size_t t = 0; t < ELEMENTSOF(sizes); t++) {
                full_plan(sent, sizes[t]);
                assert_int_equal(wire_encode_plan(sent, payload, sizeof payload, &plen), 0);
                assert_int_equal(plen, WIRE_PLAN_SIZE(sizes[t]));
                assert_int_equal(wire_seal(f->keys, WIRE_PLAN, &s, NOW, payload, plen, pkt,
                                           sizeof pkt, &len),
                                 0);
                memset(payload, 0, sizeof payload);
                assert_int_equal(
                        wire_open(f->keys, rx, NOW, pkt, len, &h, payload, sizeof payload, &plen),
                        0);
                assert_int_equal(h.type, WIRE_PLAN);
                memset(got, 0x77, sizeof *got);
                assert_int_equal(wire_decode_plan(payload, plen, got), 0);
                assert_memory_equal(got->digest, sent->digest, DIGEST_LEN);
                assert_int_equal(got->epoch, sent->epoch);
                assert_int_equal(got->n, sent->n);
                for (size_t i = 0; i < sent->n; i++) {
                        assert_memory_equal(got->entries[i].id, sent->entries[i].id, NODE_ID_LEN);
                        assert_int_equal(got->entries[i].roles, sent->entries[i].roles);
                        assert_int_equal(got->entries[i].flags, sent->entries[i].flags);
                        assert_int_equal(got->entries[i].vrrp_priority,
                                         sent->entries[i].vrrp_priority);
                }
        }
        free(sent);
        free(got);
        wire_rx_free(rx);
}

static void fill_secrets(struct cluster_secrets *c) {
        memset(c, 0, sizeof *c);
        strcpy(c->join_token, "abcdef.0123456789abcdef");
        memset(c->cert_key, 'f', WIRE_SECRET_STR_MAX); /* maximum length */
        strcpy(c->mysql_replication_password, "r3pl!cation pass");
        /* registry_password empty */
        for (size_t i = 0; i < sizeof c->ca_seed; i++)
                c->ca_seed[i] = (uint8_t)(i * 5 + 1);
}

static void test_secrets(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t b_pk[32], b_sk[32], c_pk[32], c_sk[32], b_id[NODE_ID_LEN], c_id[NODE_ID_LEN];
        uint8_t payload[WIRE_MAX_PAYLOAD], pkt[WIRE_MAX_DATAGRAM], got_payload[WIRE_MAX_PAYLOAD];
        struct cluster_secrets sent, got, untouched;
        struct wire_header h;
        size_t plen, len, glen;

        fill_id(b_id, 0x20);
        fill_id(c_id, 0x30);
        crypto_box_keypair(b_pk, b_sk);
        crypto_box_keypair(c_pk, c_sk);
        fill_secrets(&sent);

        assert_int_equal(
                wire_seal_secrets(f->keys, b_id, b_pk, &sent, payload, sizeof payload, &plen), 0);
        assert_int_equal(plen, WIRE_SECRETS_PAYLOAD_LEN);
        assert_int_equal(
                wire_seal(f->keys, WIRE_SECRETS, &s, NOW, payload, plen, pkt, sizeof pkt, &len), 0);
        assert_int_equal(
                wire_open(f->keys, rx, NOW, pkt, len, &h, got_payload, sizeof got_payload, &glen),
                0);
        assert_int_equal(h.type, WIRE_SECRETS);
        assert_int_equal(glen, plen);

        /* Only the recipient, with its key pair, learns the secrets. */
        memset(&got, 0, sizeof got);
        assert_int_equal(wire_open_secrets(f->keys, b_id, b_pk, b_sk, got_payload, glen, &got), 0);
        assert_string_equal(got.join_token, sent.join_token);
        assert_string_equal(got.cert_key, sent.cert_key);
        assert_string_equal(got.mysql_replication_password, sent.mysql_replication_password);
        assert_string_equal(got.registry_password, "");
        assert_memory_equal(got.ca_seed, sent.ca_seed, sizeof sent.ca_seed);

        memset(&got, 0x33, sizeof got);
        untouched = got;
        /* Another node: not addressed to it. */
        assert_int_equal(wire_open_secrets(f->keys, c_id, c_pk, c_sk, got_payload, glen, &got),
                         -ENOENT);
        /* Another node claiming the recipient's id: its key pair does not open the box. */
        assert_int_equal(wire_open_secrets(f->keys, b_id, c_pk, c_sk, got_payload, glen, &got),
                         -EBADMSG);
        /* The recipient's key pair but another cluster's token. */
        assert_int_equal(wire_open_secrets(f->wrong, b_id, b_pk, b_sk, got_payload, glen, &got),
                         -EBADMSG);
        /* Any flipped byte of the sealed part. */
        for (size_t i = NODE_ID_LEN; i < glen; i++) {
                got_payload[i] ^= 0x01;
                assert_int_equal(
                        wire_open_secrets(f->keys, b_id, b_pk, b_sk, got_payload, glen, &got),
                        -EBADMSG);
                got_payload[i] ^= 0x01;
        }
        assert_int_equal(wire_open_secrets(f->keys, b_id, b_pk, b_sk, got_payload, glen - 1, &got),
                         -EBADMSG);
        assert_memory_equal(&got, &untouched, sizeof got);

        /* A box sealed to C's key but labelled for B (AD binds the addressee). */
        assert_int_equal(
                wire_seal_secrets(f->keys, c_id, c_pk, &sent, payload, sizeof payload, &plen), 0);
        memcpy(payload, b_id, NODE_ID_LEN);
        assert_int_equal(wire_open_secrets(f->keys, b_id, c_pk, c_sk, payload, plen, &got),
                         -EBADMSG);

        /* Bad input to the sealer. */
        assert_int_equal(wire_seal_secrets(f->keys, b_id, b_pk, &sent, payload, plen - 1, &plen),
                         -EMSGSIZE);
        sent.join_token[3] = '\n';
        assert_int_equal(
                wire_seal_secrets(f->keys, b_id, b_pk, &sent, payload, sizeof payload, &plen),
                -EINVAL);
        memset(sent.join_token, 'x', sizeof sent.join_token); /* no NUL */
        assert_int_equal(
                wire_seal_secrets(f->keys, b_id, b_pk, &sent, payload, sizeof payload, &plen),
                -EINVAL);
        sodium_memzero(&sent, sizeof sent);
        sodium_memzero(&got, sizeof got);
        sodium_memzero(b_sk, sizeof b_sk);
        sodium_memzero(c_sk, sizeof c_sk);
        wire_rx_free(rx);
}

static void test_secrets_blob_malformed(void **state) {
        struct cluster_secrets c, got;
        uint8_t blob[WIRE_SECRETS_BLOB_LEN], bad[WIRE_SECRETS_BLOB_LEN];
        (void)state;

        fill_secrets(&c);
        assert_int_equal(wire_encode_secrets(&c, blob), 0);
        assert_int_equal(wire_decode_secrets(blob, &got), 0);
        assert_string_equal(got.cert_key, c.cert_key);

        memcpy(bad, blob, sizeof bad);
        bad[0] = WIRE_SECRET_STR_MAX + 1; /* length past the field */
        assert_int_equal(wire_decode_secrets(bad, &got), -EBADMSG);
        memcpy(bad, blob, sizeof bad);
        bad[1 + WIRE_SECRET_STR_MAX - 1] = 'x'; /* padding not zero */
        assert_int_equal(wire_decode_secrets(bad, &got), -EBADMSG);
        memcpy(bad, blob, sizeof bad);
        bad[2] = 0; /* NUL inside the string */
        assert_int_equal(wire_decode_secrets(bad, &got), -EBADMSG);
        memcpy(bad, blob, sizeof bad);
        bad[3 * (1 + WIRE_SECRET_STR_MAX) + 1] = 0x1b; /* control char, last string */
        bad[3 * (1 + WIRE_SECRET_STR_MAX)] = 1;
        assert_int_equal(wire_decode_secrets(bad, &got), -EBADMSG);
        sodium_memzero(&got, sizeof got);
}

/* Every single-byte change at every position is dropped with the reason of the check that
 * sees it first; the replay table and the caller's buffers stay untouched. */
static void test_every_byte_flip(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t pkt[WIRE_MAX_DATAGRAM];
        uint64_t expect[WIRE_DROP_MAX_] = {};
        size_t len = seal_announce(f->keys, &s, NOW, pkt);

        for (size_t i = 0; i < len; i++)
                for (unsigned x = 1; x < 256; x++) {
                        _cleanup_free_ uint8_t *p = malloc(len);
                        enum wire_drop want;
                        uint8_t v;

                        assert_non_null(p);
                        memcpy(p, pkt, len);
                        p[i] ^= (uint8_t)x;
                        v = p[i];
                        if (i < 3)
                                want = WIRE_DROP_MALFORMED;
                        else if (i == 3)
                                want = WIRE_DROP_VERSION;
                        else if (i == 4)
                                want = v >= WIRE_ANNOUNCE && v <= WIRE_FACTS
                                               ? WIRE_DROP_AUTH
                                               : WIRE_DROP_MALFORMED;
                        else if (i < 5 + WIRE_TAG_LEN)
                                want = WIRE_DROP_OTHER_CLUSTER;
                        else
                                want = WIRE_DROP_AUTH;
                        if (open_pkt(f->keys, rx, NOW, p, len) != -(int)want)
                                fail_msg("byte %zu ^ 0x%02x: expected %s", i, x,
                                         wire_drop_to_string(want));
                        expect[want]++;
                }
        assert_memory_equal(rx->stats.dropped, expect, sizeof expect);
        assert_int_equal(rx->stats.accepted, 0);
        assert_int_equal(rx->n_replay, 0);
        /* The original still opens: nothing was learned from the forgeries. */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), 0);
        wire_rx_free(rx);
}

static void test_truncated_and_long(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t pkt[WIRE_MAX_DATAGRAM + 1], big[WIRE_MAX_PAYLOAD + 1] = {};
        size_t len = seal_announce(f->keys, &s, NOW, pkt), blen;

        for (size_t l = 0; l < len; l++) {
                /* Exact-size copy: any read past l is an ASan error. */
                _cleanup_free_ uint8_t *p = malloc(l ? l : 1);

                assert_non_null(p);
                memcpy(p, pkt, l);
                assert_int_equal(open_pkt(f->keys, rx, NOW, p, l),
                                 l < WIRE_MIN_DATAGRAM ? -WIRE_DROP_MALFORMED : -WIRE_DROP_AUTH);
        }
        /* Extended by one byte: the MAC no longer matches. */
        pkt[len] = 0;
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len + 1), -WIRE_DROP_AUTH);

        /* The largest payload seals to exactly WIRE_MAX_DATAGRAM; one more byte does not. */
        assert_int_equal(wire_seal(f->keys, WIRE_PLAN, &s, NOW, big, WIRE_MAX_PAYLOAD + 1, pkt,
                                   sizeof pkt, &blen),
                         -EMSGSIZE);
        assert_int_equal(wire_seal(f->keys, WIRE_PLAN, &s, NOW, big, WIRE_MAX_PAYLOAD, pkt,
                                   WIRE_MAX_DATAGRAM - 1, &blen),
                         -EMSGSIZE);
        assert_int_equal(wire_seal(f->keys, WIRE_PLAN, &s, NOW, big, WIRE_MAX_PAYLOAD, pkt,
                                   sizeof pkt, &blen),
                         0);
        assert_int_equal(blen, WIRE_MAX_DATAGRAM);
        /* Opens, but zeros are not a plan. */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, blen), -WIRE_DROP_MALFORMED);
        /* Over the limit: dropped before any decryption. */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, WIRE_MAX_DATAGRAM + 1),
                         -WIRE_DROP_MALFORMED);
        assert_int_equal(wire_seal(f->keys, 0, &s, NOW, big, 1, pkt, sizeof pkt, &blen), -EINVAL);
        assert_int_equal(wire_seal(f->keys, 5, &s, NOW, big, 1, pkt, sizeof pkt, &blen), -EINVAL);
        s.counter = UINT64_MAX;
        assert_int_equal(wire_seal(f->keys, WIRE_PLAN, &s, NOW, big, 1, pkt, sizeof pkt, &blen),
                         -EOVERFLOW);
        assert_int_equal(rx->stats.accepted, 0);
        wire_rx_free(rx);
}

static void test_replay(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t pkts[301][600];
        size_t lens[301];

        assert_true(WIRE_OVERHEAD + WIRE_ANNOUNCE_MAX <= sizeof pkts[0]);
        s.counter = 0;
        for (size_t c = 0; c <= 300; c++)
                lens[c] = seal_announce(f->keys, &s, NOW, pkts[c]); /* counter c */

#define OPEN(c) open_pkt(f->keys, rx, NOW, pkts[c], lens[c])
        assert_int_equal(OPEN(100), 0);
        assert_int_equal(OPEN(100), -WIRE_DROP_REPLAY); /* the same datagram again */
        assert_int_equal(OPEN(36), -WIRE_DROP_REPLAY);  /* 64 behind: out of the window */
        assert_int_equal(OPEN(37), 0);                  /* 63 behind, unseen: accepted once */
        assert_int_equal(OPEN(37), -WIRE_DROP_REPLAY);
        assert_int_equal(OPEN(99), 0);
        assert_int_equal(OPEN(50), 0);
        assert_int_equal(OPEN(50), -WIRE_DROP_REPLAY);
        assert_int_equal(OPEN(101), 0);
        assert_int_equal(OPEN(37), -WIRE_DROP_REPLAY); /* slid out of the window */
        assert_int_equal(OPEN(99), -WIRE_DROP_REPLAY); /* still in, already seen */
        assert_int_equal(OPEN(300), 0);                /* a jump past the window */
        assert_int_equal(OPEN(237), 0);
        assert_int_equal(OPEN(236), -WIRE_DROP_REPLAY);
        assert_int_equal(OPEN(101), -WIRE_DROP_REPLAY);
        assert_int_equal(OPEN(300), -WIRE_DROP_REPLAY);
        assert_int_equal(OPEN(299), 0);
#undef OPEN
        assert_int_equal(rx->stats.accepted, 8);
        assert_int_equal(rx->stats.dropped[WIRE_DROP_REPLAY], 9);
        assert_int_equal(rx->n_replay, 1);
        wire_rx_free(rx);
}

static void test_reboot_and_eviction(void **state) {
        struct fx *f = *state;
        struct wire_sender a = sender(0x10), a2 = sender(0x10), b = sender(0x30), c = sender(0x50);
        struct wire_rx *rx = NULL;
        uint8_t self[NODE_ID_LEN], pa[600], pa2[600], pb[600], pc[600], pa_new[600];
        size_t la, la2, lb, lc, la_new;

        fill_id(self, 0x70);
        assert_int_equal(wire_rx_new(self, 2, &rx), 0);
        fill_id(a2.boot_id, 0xee); /* a after a reboot: new boot id, counter from 1 again */
        la = seal_announce(f->keys, &a, NOW, pa);
        la2 = seal_announce(f->keys, &a2, NOW, pa2);
        lb = seal_announce(f->keys, &b, NOW, pb);
        lc = seal_announce(f->keys, &c, NOW, pc);

        assert_int_equal(open_pkt(f->keys, rx, NOW, pa, la), 0);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pa2, la2), 0); /* new boot, same counter */
        /* The previous boot is still remembered: its replay is caught. */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pa, la), -WIRE_DROP_REPLAY);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pa2, la2), -WIRE_DROP_REPLAY);
        /* Full (2 entries): b evicts the least recently accepted, a's first boot. */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pb, lb), 0);
        assert_int_equal(rx->n_replay, 2);
        la_new = seal_announce(f->keys, &a2, NOW, pa_new);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pa_new, la_new), 0); /* a2 most recent */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pc, lc), 0);         /* evicts b */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pa2, la2), -WIRE_DROP_REPLAY);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pc, lc), -WIRE_DROP_REPLAY);
        /* b was forgotten: only the clock window guards it now (PROTOCOL.md). */
        assert_int_equal(open_pkt(f->keys, rx, NOW, pb, lb), 0);
        assert_int_equal(rx->n_replay, 2);
        wire_rx_free(rx);
}

static void test_wrong_token_other_cluster(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t pkt[WIRE_MAX_DATAGRAM];
        size_t len;

        /* Same cluster name, wrong token: the tag matches, the AEAD does not open. */
        len = seal_announce(f->wrong, &s, NOW, pkt);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), -WIRE_DROP_AUTH);
        /* Another cluster: dropped on the tag, before any decryption. */
        len = seal_announce(f->other, &s, NOW, pkt);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), -WIRE_DROP_OTHER_CLUSTER);
        assert_int_equal(rx->stats.dropped[WIRE_DROP_AUTH], 1);
        assert_int_equal(rx->stats.dropped[WIRE_DROP_OTHER_CLUSTER], 1);
        assert_int_equal(rx->n_replay, 0);
        wire_rx_free(rx);
}

static void test_clock_self(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10);
        struct wire_rx *rx = rx_for(0x20), *me = rx_for(0x10);
        uint8_t pkt[WIRE_MAX_DATAGRAM];
        const uint64_t w = WIRE_CLOCK_WINDOW_MS_DEFAULT;
        size_t len = seal_announce(f->keys, &s, NOW, pkt);
        char *txt = NULL;

        assert_int_equal(rx->clock_window_ms, 300000);
        assert_int_equal(open_pkt(f->keys, rx, NOW + w + 1, pkt, len), -WIRE_DROP_CLOCK);
        assert_int_equal(open_pkt(f->keys, rx, NOW - w - 1, pkt, len), -WIRE_DROP_CLOCK);
        rx->clock_window_ms = 1000;
        assert_int_equal(open_pkt(f->keys, rx, NOW - 1001, pkt, len), -WIRE_DROP_CLOCK);
        assert_int_equal(open_pkt(f->keys, rx, NOW + 1000, pkt, len), 0); /* at the edge */
        assert_int_equal(rx->n_replay, 1);

        /* Our own datagram looped back. */
        len = seal_announce(f->keys, &s, NOW, pkt);
        assert_int_equal(open_pkt(f->keys, me, NOW, pkt, len), -WIRE_DROP_SELF);
        assert_int_equal(me->n_replay, 0);

        assert_int_equal(wire_stats_format(&rx->stats, &txt), 0);
        assert_string_equal(txt, "accepted=1 malformed=0 version=0 other_cluster=0 auth=0 self=0 "
                                 "clock=3 replay=0");
        free(txt);
        assert_string_equal(wire_drop_to_string(WIRE_DROP_SELF), "self");
        assert_string_equal(wire_drop_to_string(0), "unknown");
        assert_string_equal(wire_type_to_string(WIRE_SECRETS), "secrets");
        assert_string_equal(wire_type_to_string(WIRE_FACTS), "facts");
        wire_rx_free(rx);
        wire_rx_free(me);
}

/* Sealed with the right key but with contents that must not be believed. */
static void test_sealed_but_malformed(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10), other = sender(0x40);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t buf[WIRE_ANNOUNCE_MAX], pkt[WIRE_MAX_DATAGRAM], small[8];
        struct wire_header h;
        struct node_info n;
        size_t len, plen, got = 99;

        /* An announce about another node than the sender. */
        full_node(&n, &other);
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &plen), 0);
        assert_int_equal(
                wire_seal(f->keys, WIRE_ANNOUNCE, &s, NOW, buf, plen, pkt, sizeof pkt, &len), 0);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), -WIRE_DROP_MALFORMED);
        /* A secrets payload of the wrong size; an empty announce. */
        assert_int_equal(wire_seal(f->keys, WIRE_SECRETS, &s, NOW, buf, 10, pkt, sizeof pkt, &len),
                         0);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), -WIRE_DROP_MALFORMED);
        assert_int_equal(wire_seal(f->keys, WIRE_ANNOUNCE, &s, NOW, buf, 0, pkt, sizeof pkt, &len),
                         0);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), -WIRE_DROP_MALFORMED);
        /* A payload larger than the caller's buffer. */
        len = seal_announce(f->keys, &s, NOW, pkt);
        assert_int_equal(wire_open(f->keys, rx, NOW, pkt, len, &h, small, sizeof small, &got),
                         -WIRE_DROP_MALFORMED);
        assert_int_equal(got, 99);
        assert_int_equal(rx->stats.dropped[WIRE_DROP_MALFORMED], 4);
        assert_int_equal(rx->n_replay, 0);
        wire_rx_free(rx);
}

/* FACTS relay another node's announcement: accepted about another node, refused about the
 * sender itself (which speaks for itself in ANNOUNCE). */
static void test_facts(void **state) {
        struct fx *f = *state;
        struct wire_sender s = sender(0x10), other = sender(0x40);
        struct wire_rx *rx = rx_for(0x20);
        uint8_t buf[WIRE_ANNOUNCE_MAX], pkt[WIRE_MAX_DATAGRAM], payload[WIRE_MAX_PAYLOAD];
        struct node_info n, got;
        struct wire_header h;
        size_t len, plen, glen;

        full_node(&n, &other);
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &plen), 0);
        assert_int_equal(wire_seal(f->keys, WIRE_FACTS, &s, NOW, buf, plen, pkt, sizeof pkt, &len),
                         0);
        assert_int_equal(wire_open(f->keys, rx, NOW, pkt, len, &h, payload, sizeof payload, &glen),
                         0);
        assert_int_equal(h.type, WIRE_FACTS);
        assert_memory_equal(h.sender_id, s.id, NODE_ID_LEN);
        assert_int_equal(wire_decode_announce(payload, glen, &got), 0);
        assert_memory_equal(got.id, other.id, NODE_ID_LEN);
        assert_string_equal(got.hostname, n.hostname);

        full_node(&n, &s);
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &plen), 0);
        assert_int_equal(wire_seal(f->keys, WIRE_FACTS, &s, NOW, buf, plen, pkt, sizeof pkt, &len),
                         0);
        assert_int_equal(open_pkt(f->keys, rx, NOW, pkt, len), -WIRE_DROP_MALFORMED);
        assert_int_equal(rx->stats.accepted, 1);
        wire_rx_free(rx);
}

static int decode_exact(const uint8_t *p, size_t len, struct node_info *ret) {
        _cleanup_free_ uint8_t *copy = malloc(len ? len : 1);

        assert_non_null(copy);
        memcpy(copy, p, len);
        return wire_decode_announce(copy, len, ret);
}

/* Announce bytes written by hand from the layout in PROTOCOL.md, with any counts. */
struct shape {
        uint8_t hl, n_addrs, n_disks, n_nics, disk_flags, nic_flags, state;
        uint32_t roles;
        char hchar;
        uint32_t flags;
};

static size_t build_announce(const struct shape *sh, uint8_t *out) {
        uint8_t *q = out;

        memset(q, 0x11, 2 * NODE_ID_LEN), q += 2 * NODE_ID_LEN;
        *q++ = sh->hl;
        memset(q, sh->hchar, sh->hl), q += sh->hl;
        *q++ = sh->n_addrs;
        memset(q, 10, 4u * sh->n_addrs), q += 4u * sh->n_addrs;
        *q++ = 4, *q++ = 0;                /* cpus */
        memset(q, 0, 8), q[4] = 1, q += 8; /* memory */
        *q++ = sh->n_disks;
        for (unsigned i = 0; i < sh->n_disks; i++) {
                memset(q, 0, 8), q[5] = 2, q += 8;
                *q++ = sh->disk_flags;
        }
        *q++ = sh->n_nics;
        for (unsigned i = 0; i < sh->n_nics; i++) {
                memset(q, 0x52, 6), q += 6;
                *q++ = sh->nic_flags;
        }
        for (unsigned i = 0; i < 4; i++)
                *q++ = (uint8_t)(sh->roles >> (8 * i));
        *q++ = sh->state;
        memset(q, 0xdd, DIGEST_LEN + 32), q += DIGEST_LEN + 32;
        for (unsigned i = 0; i < 4; i++)
                *q++ = (uint8_t)(sh->flags >> (8 * i));
        return (size_t)(q - out);
}

static void test_announce_malformed(void **state) {
        struct wire_sender s = sender(0x10);
        uint8_t buf[WIRE_ANNOUNCE_MAX + 1], bad[WIRE_ANNOUNCE_MAX + 64];
        struct node_info n, got, sentinel;
        size_t len, hl_off = 2 * NODE_ID_LEN;
        (void)state;

        full_node(&n, &s);
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), 0);
        assert_int_equal(len, WIRE_ANNOUNCE_MAX);
        memset(&got, 0x6b, sizeof got);
        sentinel = got;

        /* Every truncation, and one byte too many. */
        for (size_t l = 0; l < len; l++)
                assert_int_equal(decode_exact(buf, l, &got), -EBADMSG);
        buf[len] = 0;
        assert_int_equal(decode_exact(buf, len + 1, &got), -EBADMSG);

        /* An independent encoder (PROTOCOL.md's table) agrees with ours... */
        struct shape base = {.hl = 3,
                             .n_addrs = 1,
                             .n_disks = 2,
                             .n_nics = 1,
                             .state = 3,
                             .roles = ROLE_ALL,
                             .disk_flags = 1,
                             .nic_flags = 1,
                             .hchar = 'a',
                             .flags = NODE_F_HAS_SECRETS};
        size_t blen = build_announce(&base, bad);
        assert_int_equal(decode_exact(bad, blen, &got), 0);
        assert_string_equal(got.hostname, "aaa");
        assert_int_equal(got.n_disks, 2);
        assert_true(got.disks[1].ssd);
        assert_int_equal(got.state, NODE_COMMITTED);
        assert_int_equal(got.pinned_roles, ROLE_ALL);
        assert_int_equal(got.flags, NODE_F_HAS_SECRETS);
        got = sentinel;

        /* ...and each count or length one above its limit (with that many items following),
         * each unknown bit, each bad character is refused. */
        struct shape cases[13];
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                cases[i] = base;
        cases[0].hl = NODE_HOSTNAME_MAX + 1;
        cases[1].n_addrs = NODE_ADDRS_MAX + 1;
        cases[2].n_disks = NODE_DISKS_MAX + 1;
        cases[3].n_nics = NODE_NICS_MAX + 1;
        cases[4].disk_flags = 0x02;
        cases[5].nic_flags = 0x80;
        cases[6].roles = ROLE_ALL + 1;
        cases[7].roles = 1u << 31;
        cases[8].state = NODE_COMMITTED + 1;
        cases[9].hchar = '\n';
        cases[10].hchar = 0x7f;
        cases[11].hchar = '\0';
        cases[12].flags = 1u << 5;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                blen = build_announce(&cases[i], bad);
                if (decode_exact(bad, blen, &got) != -EBADMSG)
                        fail_msg("case %zu decoded", i);
        }
        assert_memory_equal(&got, &sentinel, sizeof got);

        /* A count in range but larger than what follows. */
        memcpy(bad, buf, len);
        bad[hl_off + 1 + NODE_HOSTNAME_MAX] = 2;
        assert_int_equal(decode_exact(bad, len, &got), -EBADMSG);

        /* The encoder refuses what the decoder would refuse. */
        n.n_addrs = NODE_ADDRS_MAX + 1;
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), -EINVAL);
        full_node(&n, &s);
        n.hostname[5] = '\t';
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), -EINVAL);
        full_node(&n, &s);
        n.state = 7;
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), -EINVAL);
        full_node(&n, &s);
        n.pinned_roles = 1u << 20;
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), -EINVAL);
        full_node(&n, &s);
        n.flags = 1u << 9;
        assert_int_equal(wire_encode_announce(&n, buf, sizeof buf, &len), -EINVAL);
        full_node(&n, &s);
        for (size_t l = 0; l < WIRE_ANNOUNCE_MAX; l++)
                assert_int_equal(wire_encode_announce(&n, buf, l, &len), -EMSGSIZE);
}

static int decode_plan_exact(const uint8_t *p, size_t len, struct wire_plan *ret) {
        _cleanup_free_ uint8_t *copy = malloc(len ? len : 1);

        assert_non_null(copy);
        memcpy(copy, p, len);
        return wire_decode_plan(copy, len, ret);
}

static void test_plan_malformed(void **state) {
        struct wire_plan *p = malloc(sizeof *p), *got = malloc(sizeof *got);
        uint8_t buf[WIRE_PLAN_SIZE(WIRE_PLAN_MAX) + WIRE_PLAN_ENTRY_LEN], bad[sizeof buf];
        const size_t e0 = WIRE_PLAN_SIZE(0), n_off = DIGEST_LEN + 4;
        size_t len, l2;
        (void)state;

        assert_non_null(p);
        assert_non_null(got);
        full_plan(p, 4);
        assert_int_equal(wire_encode_plan(p, buf, sizeof buf, &len), 0);
        memset(got, 0x6b, sizeof *got);

        for (size_t l = 0; l < len; l++)
                assert_int_equal(decode_plan_exact(buf, l, got), -EBADMSG);
        buf[len] = 0;
        assert_int_equal(decode_plan_exact(buf, len + 1, got), -EBADMSG);

        memcpy(bad, buf, len);
        bad[n_off] = 5; /* count says more than there is */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);
        memcpy(bad, buf, len);
        bad[n_off] = 3; /* count says less */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);
        memcpy(bad, buf, len);
        bad[n_off] = 0xff, bad[n_off + 1] = 0xff; /* far above the limit */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);
        memcpy(bad, buf, len);
        memcpy(bad + e0 + WIRE_PLAN_ENTRY_LEN, bad + e0, NODE_ID_LEN); /* duplicate id */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);
        memcpy(bad, buf, len);
        bad[e0 + WIRE_PLAN_ENTRY_LEN + NODE_ID_LEN + 4] = PLAN_BOOTSTRAP; /* two bootstraps */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);
        memcpy(bad, buf, len);
        bad[e0 + NODE_ID_LEN + 4] |= 0x04; /* unknown flag */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);
        memcpy(bad, buf, len);
        bad[e0 + NODE_ID_LEN + 3] = 0x01; /* role bit 24 */
        assert_int_equal(decode_plan_exact(bad, len, got), -EBADMSG);

        /* 257 entries, with a length to match: above WIRE_PLAN_MAX. */
        full_plan(p, WIRE_PLAN_MAX);
        assert_int_equal(wire_encode_plan(p, buf, sizeof buf, &len), 0);
        memcpy(buf + len, buf + e0, WIRE_PLAN_ENTRY_LEN);
        buf[len] ^= 0xff;
        l2 = len + WIRE_PLAN_ENTRY_LEN;
        buf[n_off] = (WIRE_PLAN_MAX + 1) & 0xff, buf[n_off + 1] = (WIRE_PLAN_MAX + 1) >> 8;
        assert_int_equal(decode_plan_exact(buf, l2, got), -EBADMSG);

        /* Nothing was written on failure. */
        for (size_t i = 0; i < sizeof *got; i++)
                assert_int_equal(((uint8_t *)got)[i], 0x6b);

        /* The encoder refuses bad plans and small buffers. */
        full_plan(p, 3);
        p->entries[1].flags = PLAN_BOOTSTRAP;
        assert_int_equal(wire_encode_plan(p, buf, sizeof buf, &len), -EINVAL);
        full_plan(p, 3);
        memcpy(p->entries[2].id, p->entries[0].id, NODE_ID_LEN);
        assert_int_equal(wire_encode_plan(p, buf, sizeof buf, &len), -EINVAL);
        full_plan(p, 3);
        p->n = WIRE_PLAN_MAX + 1;
        assert_int_equal(wire_encode_plan(p, buf, sizeof buf, &len), -EINVAL);
        full_plan(p, 3);
        assert_int_equal(wire_encode_plan(p, buf, WIRE_PLAN_SIZE(3) - 1, &len), -EMSGSIZE);
        free(p);
        free(got);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_keys_default),
                cmocka_unit_test(test_announce_roundtrip),
                cmocka_unit_test(test_plan_roundtrip),
                cmocka_unit_test(test_secrets),
                cmocka_unit_test(test_secrets_blob_malformed),
                cmocka_unit_test(test_every_byte_flip),
                cmocka_unit_test(test_truncated_and_long),
                cmocka_unit_test(test_replay),
                cmocka_unit_test(test_reboot_and_eviction),
                cmocka_unit_test(test_wrong_token_other_cluster),
                cmocka_unit_test(test_clock_self),
                cmocka_unit_test(test_sealed_but_malformed),
                cmocka_unit_test(test_facts),
                cmocka_unit_test(test_announce_malformed),
                cmocka_unit_test(test_plan_malformed),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
