/* SPDX-License-Identifier: MIT */
/* Sealed datagrams (PROTOCOL.md): keys from the cluster token, seal/open with
 * XChaCha20-Poly1305, replay table, drop counters, and the secrets hand-out. */
#include "wire.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "wire_bytes.h"

static_assert(sizeof(((struct wire_keys *)0)->aead) == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
              "AEAD key size");
static_assert(sizeof(((struct wire_keys *)0)->secrets) ==
                      crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
              "secrets key size");
static_assert(WIRE_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
static_assert(WIRE_MAC_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "MAC size");
static_assert(crypto_box_SEALBYTES == 48, "sealed box overhead in WIRE_SECRETS_PAYLOAD_LEN");
static_assert(crypto_box_PUBLICKEYBYTES == 32 && crypto_box_SECRETKEYBYTES == 32, "box keys");
static_assert(WIRE_KDF_OPSLIMIT == crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE &&
                      WIRE_KDF_MEMLIMIT == crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
              "KDF cost is libsodium's INTERACTIVE");
static_assert(WIRE_PLAN_SIZE(WIRE_PLAN_MAX) <= WIRE_MAX_PAYLOAD, "a full plan fits");
static_assert(WIRE_ANNOUNCE_MAX <= WIRE_MAX_PAYLOAD, "an announce fits");
static_assert(WIRE_SECRETS_PAYLOAD_LEN <= WIRE_MAX_PAYLOAD, "secrets fit");

#define MAGIC       "RBT"
#define OFF_VERSION 3
#define OFF_TYPE    4
#define OFF_TAG     5
#define OFF_NONCE   (OFF_TAG + WIRE_TAG_LEN)
#define DOMAIN      "rainboot-v1"
#define KDF_CONTEXT "rainboot" /* crypto_kdf_CONTEXTBYTES: exactly 8 */
enum { SUBKEY_AEAD = 1, SUBKEY_SECRETS = 2 };

struct wire_replay_entry {
        uint8_t id[NODE_ID_LEN];
        uint8_t boot_id[NODE_ID_LEN];
        uint64_t top;    /* highest counter accepted */
        uint64_t bitmap; /* bit i: counter top - i accepted */
        uint64_t used;   /* rx->tick when last accepted, for LRU eviction */
};

const char *wire_type_to_string(enum wire_type t) {
        switch (t) {
        case WIRE_ANNOUNCE:
                return "announce";
        case WIRE_PLAN:
                return "plan";
        case WIRE_SECRETS:
                return "secrets";
        case WIRE_FACTS:
                return "facts";
        }
        return "unknown";
}

static bool type_ok(unsigned t) {
        return t == WIRE_ANNOUNCE || t == WIRE_PLAN || t == WIRE_SECRETS || t == WIRE_FACTS;
}

const char *wire_drop_to_string(enum wire_drop d) {
        static const char *const names[WIRE_DROP_MAX_] = {
                [WIRE_DROP_MALFORMED] = "malformed",
                [WIRE_DROP_VERSION] = "version",
                [WIRE_DROP_OTHER_CLUSTER] = "other_cluster",
                [WIRE_DROP_AUTH] = "auth",
                [WIRE_DROP_SELF] = "self",
                [WIRE_DROP_CLOCK] = "clock",
                [WIRE_DROP_REPLAY] = "replay",
        };
        return (unsigned)d < WIRE_DROP_MAX_ && names[d] ? names[d] : "unknown";
}

int wire_stats_format(const struct wire_stats *s, char **ret) {
        /* Each item is at most " other_cluster=" and 20 digits. */
        char buf[WIRE_DROP_MAX_ * 40];
        size_t off;
        char *t;

        off = (size_t)snprintf(buf, sizeof buf, "accepted=%llu", (unsigned long long)s->accepted);
        for (unsigned d = WIRE_DROP_MALFORMED; d < WIRE_DROP_MAX_ && off < sizeof buf; d++)
                off += (size_t)snprintf(buf + off, sizeof buf - off, " %s=%llu",
                                        wire_drop_to_string(d), (unsigned long long)s->dropped[d]);
        t = strdup(buf);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

uint64_t wire_clock_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sodium_freep(void *p) {
        sodium_free(*(void **)p);
}

int wire_keys_derive_cost(const void *token, size_t token_len, const char *cluster_name,
                          uint64_t opslimit, size_t memlimit, struct wire_keys **ret) {
        _cleanup_(sodium_freep) uint8_t *master = NULL;
        _cleanup_wire_keys_ struct wire_keys *k = NULL;
        uint8_t salt[crypto_pwhash_SALTBYTES], tag[16];
        crypto_generichash_state st;

        static_assert(sizeof salt == 16, "BLAKE2b-128 salt");
        if (!token || token_len == 0 || !cluster_name || !*cluster_name)
                return -EINVAL;
        if (sodium_init() < 0)
                return -EIO;

        crypto_generichash_init(&st, NULL, 0, sizeof salt);
        crypto_generichash_update(&st, (const uint8_t *)DOMAIN, strlen(DOMAIN));
        crypto_generichash_update(&st, (const uint8_t *)cluster_name, strlen(cluster_name));
        crypto_generichash_final(&st, salt, sizeof salt);
        /* The tag comes from the name, not the token: a node with the right name and a
         * wrong token then shows up as "auth" drops, which is the operator's clue, while
         * other clusters' traffic is still dropped before any decryption. Keyed BLAKE2b
         * keeps it apart from the salt. */
        crypto_generichash(tag, sizeof tag, (const uint8_t *)cluster_name, strlen(cluster_name),
                           (const uint8_t *)DOMAIN "/tag", strlen(DOMAIN "/tag"));

        master = sodium_malloc(crypto_kdf_KEYBYTES);
        k = sodium_malloc(sizeof *k);
        if (!master || !k)
                return -ENOMEM;
        /* Fails only for lack of memory or a cost outside Argon2's limits. */
        if (crypto_pwhash(master, crypto_kdf_KEYBYTES, token, token_len, salt, opslimit, memlimit,
                          crypto_pwhash_ALG_ARGON2ID13) != 0)
                return -ENOMEM;
        crypto_kdf_derive_from_key(k->aead, sizeof k->aead, SUBKEY_AEAD, KDF_CONTEXT, master);
        crypto_kdf_derive_from_key(k->secrets, sizeof k->secrets, SUBKEY_SECRETS, KDF_CONTEXT,
                                   master);
        memcpy(k->tag, tag, WIRE_TAG_LEN);
        sodium_mprotect_readonly(k);
        *ret = TAKE_PTR(k);
        return 0;
}

int wire_keys_derive(const void *token, size_t token_len, const char *cluster_name,
                     struct wire_keys **ret) {
        return wire_keys_derive_cost(token, token_len, cluster_name, WIRE_KDF_OPSLIMIT,
                                     WIRE_KDF_MEMLIMIT, ret);
}

struct wire_keys *wire_keys_free(struct wire_keys *k) {
        sodium_free(k); /* makes it writable, wipes, unmaps; accepts NULL */
        return NULL;
}

int wire_seal(const struct wire_keys *keys, enum wire_type type, struct wire_sender *s,
              uint64_t now_ms, const void *payload, size_t payload_len, void *out, size_t out_max,
              size_t *ret_len) {
        uint8_t body[WIRE_BODY_PREFIX_LEN + WIRE_MAX_PAYLOAD];
        struct wbuf w = {.p = body, .size = sizeof body};
        uint8_t *o = out;

        if (!type_ok(type))
                return -EINVAL;
        if (payload_len > WIRE_MAX_PAYLOAD || WIRE_OVERHEAD + payload_len > out_max)
                return -EMSGSIZE;
        if (s->counter == UINT64_MAX)
                return -EOVERFLOW;

        wbuf_put(&w, s->id, NODE_ID_LEN);
        wbuf_put(&w, s->boot_id, NODE_ID_LEN);
        wbuf_u64(&w, s->counter);
        wbuf_u64(&w, now_ms);
        wbuf_put(&w, payload, payload_len);
        assert(!w.overflow);

        memcpy(o, MAGIC, 3);
        o[OFF_VERSION] = WIRE_VERSION;
        o[OFF_TYPE] = (uint8_t)type;
        memcpy(o + OFF_TAG, keys->tag, WIRE_TAG_LEN);
        randombytes_buf(o + OFF_NONCE, WIRE_NONCE_LEN);
        crypto_aead_xchacha20poly1305_ietf_encrypt(o + WIRE_HEADER_LEN, NULL, body, w.len, o,
                                                   WIRE_HEADER_LEN, NULL, o + OFF_NONCE,
                                                   keys->aead);
        *ret_len = WIRE_OVERHEAD + payload_len;
        s->counter++;
        return 0;
}

int wire_rx_new(const uint8_t self_id[NODE_ID_LEN], size_t max_replay, struct wire_rx **ret) {
        _cleanup_free_ struct wire_rx *rx = NULL;

        rx = calloc(1, sizeof *rx);
        if (!rx)
                return -ENOMEM;
        memcpy(rx->self_id, self_id, NODE_ID_LEN);
        rx->clock_window_ms = WIRE_CLOCK_WINDOW_MS_DEFAULT;
        rx->max_replay = max_replay > 0 ? max_replay : WIRE_REPLAY_MAX_DEFAULT;
        rx->replay = calloc(rx->max_replay, sizeof *rx->replay);
        if (!rx->replay)
                return -ENOMEM;
        *ret = TAKE_PTR(rx);
        return 0;
}

struct wire_rx *wire_rx_free(struct wire_rx *rx) {
        if (rx) {
                free(rx->replay);
                free(rx);
        }
        return NULL;
}

static struct wire_replay_entry *replay_find(struct wire_rx *rx, const uint8_t id[NODE_ID_LEN],
                                             const uint8_t boot_id[NODE_ID_LEN]) {
        for (size_t i = 0; i < rx->n_replay; i++)
                if (memcmp(rx->replay[i].id, id, NODE_ID_LEN) == 0 &&
                    memcmp(rx->replay[i].boot_id, boot_id, NODE_ID_LEN) == 0)
                        return &rx->replay[i];
        return NULL;
}

/* Sliding window of RFC 4303 section 3.4.3: newer than the highest is fine, older within
 * the window is fine once, anything else is a replay. */
static bool replay_ok(const struct wire_replay_entry *e, uint64_t counter) {
        uint64_t behind;

        if (!e || counter > e->top)
                return true;
        behind = e->top - counter;
        return behind < WIRE_REPLAY_WINDOW && !(e->bitmap & (UINT64_C(1) << behind));
}

static void replay_record(struct wire_rx *rx, struct wire_replay_entry *e,
                          const struct wire_header *h) {
        if (!e) {
                /* A new boot of a known sender gets an entry of its own: the previous
                 * boot's entry stays (until evicted) so that its packets, replayed within
                 * the clock window, are still caught. */
                if (rx->n_replay < rx->max_replay)
                        e = &rx->replay[rx->n_replay++];
                else {
                        e = &rx->replay[0];
                        for (size_t i = 1; i < rx->n_replay; i++)
                                if (rx->replay[i].used < e->used)
                                        e = &rx->replay[i];
                }
                memcpy(e->id, h->sender_id, NODE_ID_LEN);
                memcpy(e->boot_id, h->boot_id, NODE_ID_LEN);
                e->top = h->counter;
                e->bitmap = 1;
        } else if (h->counter > e->top) {
                uint64_t shift = h->counter - e->top;

                e->bitmap = shift >= WIRE_REPLAY_WINDOW ? 1 : e->bitmap << shift | 1;
                e->top = h->counter;
        } else
                e->bitmap |= UINT64_C(1) << (e->top - h->counter);
        e->used = ++rx->tick;
}

/* The type's payload decodes; an announce speaks for its sender only. */
static bool payload_ok(const struct wire_header *h, const uint8_t *p, size_t len) {
        switch (h->type) {
        case WIRE_ANNOUNCE: {
                struct node_info n;

                return wire_decode_announce(p, len, &n) == 0 &&
                       memcmp(n.id, h->sender_id, NODE_ID_LEN) == 0 &&
                       memcmp(n.boot_id, h->boot_id, NODE_ID_LEN) == 0;
        }
        case WIRE_PLAN: {
                _cleanup_free_ struct wire_plan *plan = malloc(sizeof *plan);

                return plan && wire_decode_plan(p, len, plan) == 0;
        }
        case WIRE_SECRETS:
                return len == WIRE_SECRETS_PAYLOAD_LEN;
        case WIRE_FACTS: {
                struct node_info n;

                /* Facts are always about another node: the sender speaks for itself in
                 * ANNOUNCE. */
                return wire_decode_announce(p, len, &n) == 0 &&
                       memcmp(n.id, h->sender_id, NODE_ID_LEN) != 0;
        }
        }
        return false;
}

static int open_checked(const struct wire_keys *keys, struct wire_rx *rx, uint64_t now_ms,
                        const uint8_t *pkt, size_t len, struct wire_header *ret_hdr, void *payload,
                        size_t payload_max, size_t *ret_payload_len) {
        uint8_t body[WIRE_BODY_PREFIX_LEN + WIRE_MAX_PAYLOAD];
        unsigned long long body_len;
        struct wire_replay_entry *e;
        struct wire_header h = {};
        struct rbuf r;
        uint64_t skew;
        size_t plen;

        /* Cheap checks on the clear header first, each with its own counter. */
        if (len < WIRE_MIN_DATAGRAM || len > WIRE_MAX_DATAGRAM || memcmp(pkt, MAGIC, 3) != 0)
                return -WIRE_DROP_MALFORMED;
        if (pkt[OFF_VERSION] != WIRE_VERSION)
                return -WIRE_DROP_VERSION;
        if (!type_ok(pkt[OFF_TYPE]))
                return -WIRE_DROP_MALFORMED;
        if (memcmp(pkt + OFF_TAG, keys->tag, WIRE_TAG_LEN) != 0)
                return -WIRE_DROP_OTHER_CLUSTER;

        if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &body_len, NULL, pkt + WIRE_HEADER_LEN,
                                                       len - WIRE_HEADER_LEN, pkt, WIRE_HEADER_LEN,
                                                       pkt + OFF_NONCE, keys->aead) != 0)
                return -WIRE_DROP_AUTH;

        r = (struct rbuf){.p = body, .len = body_len};
        h.type = pkt[OFF_TYPE];
        rbuf_get(&r, h.sender_id, NODE_ID_LEN);
        rbuf_get(&r, h.boot_id, NODE_ID_LEN);
        h.counter = rbuf_u64(&r);
        h.sent_ms = rbuf_u64(&r);
        if (r.bad) /* cannot happen past the length check; kept for the reader's sake */
                return -WIRE_DROP_MALFORMED;
        plen = body_len - r.off;
        if (plen > payload_max || !payload_ok(&h, body + r.off, plen))
                return -WIRE_DROP_MALFORMED;

        if (memcmp(h.sender_id, rx->self_id, NODE_ID_LEN) == 0)
                return -WIRE_DROP_SELF;
        skew = h.sent_ms > now_ms ? h.sent_ms - now_ms : now_ms - h.sent_ms;
        if (skew > rx->clock_window_ms)
                return -WIRE_DROP_CLOCK;
        e = replay_find(rx, h.sender_id, h.boot_id);
        if (!replay_ok(e, h.counter))
                return -WIRE_DROP_REPLAY;

        replay_record(rx, e, &h);
        if (plen > 0)
                memcpy(payload, body + r.off, plen);
        *ret_payload_len = plen;
        *ret_hdr = h;
        return 0;
}

int wire_open(const struct wire_keys *keys, struct wire_rx *rx, uint64_t now_ms, const void *pkt,
              size_t len, struct wire_header *ret_hdr, void *payload, size_t payload_max,
              size_t *ret_payload_len) {
        int r = open_checked(keys, rx, now_ms, pkt, len, ret_hdr, payload, payload_max,
                             ret_payload_len);

        if (r < 0)
                rx->stats.dropped[-r]++;
        else
                rx->stats.accepted++;
        return r;
}

/* Binds the secrets to their addressee: a blob sealed for one node cannot be passed off
 * as another's, and nobody without the token can make one (crypto_box_seal alone is
 * anonymous: anyone who learned a box_pk could seal forged secrets to it). */
#define SECRETS_AD_LEN (sizeof(DOMAIN "/secrets") - 1 + NODE_ID_LEN + 32)
static void secrets_ad(const uint8_t id[NODE_ID_LEN], const uint8_t pk[32],
                       uint8_t ad[SECRETS_AD_LEN]) {
        size_t l = strlen(DOMAIN "/secrets");

        memcpy(ad, DOMAIN "/secrets", l);
        memcpy(ad + l, id, NODE_ID_LEN);
        memcpy(ad + l + NODE_ID_LEN, pk, 32);
}

#define INNER_LEN (WIRE_NONCE_LEN + WIRE_SECRETS_BLOB_LEN + WIRE_MAC_LEN)
static_assert(WIRE_SECRETS_PAYLOAD_LEN == NODE_ID_LEN + crypto_box_SEALBYTES + INNER_LEN,
              "secrets payload layout");

int wire_seal_secrets(const struct wire_keys *keys, const uint8_t recipient_id[NODE_ID_LEN],
                      const uint8_t recipient_box_pk[32], const struct cluster_secrets *s,
                      void *out, size_t out_max, size_t *ret_len) {
        uint8_t blob[WIRE_SECRETS_BLOB_LEN], inner[INNER_LEN], ad[SECRETS_AD_LEN];
        uint8_t *o = out;
        int r;

        if (out_max < WIRE_SECRETS_PAYLOAD_LEN)
                return -EMSGSIZE;
        r = wire_encode_secrets(s, blob);
        if (r < 0)
                return r;
        secrets_ad(recipient_id, recipient_box_pk, ad);
        randombytes_buf(inner, WIRE_NONCE_LEN);
        crypto_aead_xchacha20poly1305_ietf_encrypt(inner + WIRE_NONCE_LEN, NULL, blob, sizeof blob,
                                                   ad, sizeof ad, NULL, inner, keys->secrets);
        sodium_memzero(blob, sizeof blob);
        /* Fails for a public key that is not a usable curve point. */
        if (crypto_box_seal(o + NODE_ID_LEN, inner, sizeof inner, recipient_box_pk) != 0)
                return -EINVAL;
        memcpy(o, recipient_id, NODE_ID_LEN);
        *ret_len = WIRE_SECRETS_PAYLOAD_LEN;
        return 0;
}

int wire_open_secrets(const struct wire_keys *keys, const uint8_t self_id[NODE_ID_LEN],
                      const uint8_t box_pk[32], const uint8_t box_sk[32], const void *payload,
                      size_t len, struct cluster_secrets *ret) {
        uint8_t blob[WIRE_SECRETS_BLOB_LEN], inner[INNER_LEN], ad[SECRETS_AD_LEN];
        const uint8_t *p = payload;
        int r = -EBADMSG;

        if (len != WIRE_SECRETS_PAYLOAD_LEN)
                return -EBADMSG;
        if (memcmp(p, self_id, NODE_ID_LEN) != 0)
                return -ENOENT;
        secrets_ad(self_id, box_pk, ad);
        if (crypto_box_seal_open(inner, p + NODE_ID_LEN, len - NODE_ID_LEN, box_pk, box_sk) == 0 &&
            crypto_aead_xchacha20poly1305_ietf_decrypt(blob, NULL, NULL, inner + WIRE_NONCE_LEN,
                                                       sizeof inner - WIRE_NONCE_LEN, ad, sizeof ad,
                                                       inner, keys->secrets) == 0 &&
            wire_decode_secrets(blob, ret) == 0)
                r = 0;
        sodium_memzero(inner, sizeof inner);
        sodium_memzero(blob, sizeof blob);
        return r;
}
