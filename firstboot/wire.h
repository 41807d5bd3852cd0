/* SPDX-License-Identifier: MIT */
/* The sealed multicast wire protocol (PROTOCOL.md): key derivation from the cluster
 * token, sealing and opening of datagrams with replay and clock checks, drop counters,
 * and the payload codecs (ANNOUNCE, PLAN, SECRETS). No I/O, no logging, no clock reads
 * except wire_clock_ms().
 *
 * Sending:   wire_encode_announce(&me, buf, ...) then wire_seal(keys, WIRE_ANNOUNCE, &sender,
 *            wire_clock_ms(), buf, len, pkt, sizeof pkt, &pkt_len).
 * Receiving: r = wire_open(keys, rx, wire_clock_ms(), pkt, n, &hdr, buf, sizeof buf, &len);
 *            r < 0: dropped (already counted in rx->stats); else switch on hdr.type and
 *            wire_decode_*() — wire_open has already checked that the payload decodes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elect.h"
#include "view.h"

#define WIRE_VERSION      1
#define WIRE_MAX_DATAGRAM 8192
#define WIRE_TAG_LEN      8
#define WIRE_NONCE_LEN    24
#define WIRE_MAC_LEN      16
/* magic "RBT", version, type, cluster tag, nonce: sent in clear, authenticated as AD */
#define WIRE_HEADER_LEN (3 + 1 + 1 + WIRE_TAG_LEN + WIRE_NONCE_LEN)
/* sender id, boot id, counter, sender clock: first bytes of the sealed body */
#define WIRE_BODY_PREFIX_LEN (NODE_ID_LEN + NODE_ID_LEN + 8 + 8)
#define WIRE_OVERHEAD        (WIRE_HEADER_LEN + WIRE_BODY_PREFIX_LEN + WIRE_MAC_LEN)
#define WIRE_MIN_DATAGRAM    WIRE_OVERHEAD
#define WIRE_MAX_PAYLOAD     (WIRE_MAX_DATAGRAM - WIRE_OVERHEAD)

/* Receive defaults: air-gapped nodes often run without NTP, so clocks may be minutes
 * apart; the window only has to be shorter than a reboot cycle to stop replays of an old
 * boot whose replay state has been forgotten. */
#define WIRE_CLOCK_WINDOW_MS_DEFAULT (300u * 1000u)
#define WIRE_REPLAY_WINDOW           64   /* counters accepted out of order behind the highest */
#define WIRE_REPLAY_MAX_DEFAULT      1024 /* (sender, boot) entries remembered, LRU evicted */

/* Argon2id cost of the token → master key derivation: libsodium's INTERACTIVE (2 passes,
 * 64 MiB, about 0.1-0.2 s once at start). Part of the protocol: every node must use the
 * same values or they derive different keys. */
#define WIRE_KDF_OPSLIMIT 2u
#define WIRE_KDF_MEMLIMIT (64u * 1024u * 1024u)

enum wire_type {
        WIRE_ANNOUNCE = 1, /* payload: node_info of the sender */
        WIRE_PLAN = 2,     /* payload: a committed plan (struct wire_plan) */
        WIRE_SECRETS = 3,  /* payload: cluster secrets sealed to one recipient */
        WIRE_FACTS = 4,    /* payload: node_info of a plan member not heard now, relayed by
                            * another member for late joiners */
};
const char *wire_type_to_string(enum wire_type t);

/* Why wire_open() dropped a datagram, in the order the checks run. */
enum wire_drop {
        WIRE_DROP_MALFORMED = 1, /* size, magic, unknown type, or body/payload encoding */
        WIRE_DROP_VERSION,       /* another protocol version */
        WIRE_DROP_OTHER_CLUSTER, /* cluster tag of another cluster name */
        WIRE_DROP_AUTH,          /* same cluster name, does not open: wrong token or forged */
        WIRE_DROP_SELF,          /* our own datagram looped back */
        WIRE_DROP_CLOCK,         /* sender clock outside the window */
        WIRE_DROP_REPLAY,        /* counter already seen or behind the replay window */
        WIRE_DROP_MAX_,
};
/* "malformed", "version", "other_cluster", "auth", "self", "clock", "replay" */
const char *wire_drop_to_string(enum wire_drop d);

struct wire_stats {
        uint64_t accepted;
        uint64_t dropped[WIRE_DROP_MAX_]; /* indexed by enum wire_drop; [0] unused */
};
/* "accepted=N malformed=N version=N other_cluster=N auth=N self=N clock=N replay=N" */
int wire_stats_format(const struct wire_stats *s, char **ret);

/* Keys of one cluster, in sodium_malloc'd read-only memory, wiped by wire_keys_free(). */
struct wire_keys {
        uint8_t aead[32];          /* XChaCha20-Poly1305 key of every datagram */
        uint8_t secrets[32];       /* authenticates secrets inside the sealed box */
        uint8_t tag[WIRE_TAG_LEN]; /* cluster tag sent in clear (from the name only) */
};
/* Master key = Argon2id(token, salt = BLAKE2b-128("rainboot-v1" || cluster_name)) with
 * WIRE_KDF_*; subkeys via crypto_kdf; tag from the name (PROTOCOL.md, "Keys"). -EINVAL
 * for an empty token or name, -ENOMEM. */
int wire_keys_derive(const void *token, size_t token_len, const char *cluster_name,
                     struct wire_keys **ret);
/* Same with another Argon2id cost: for tests and fuzzers only (keys differ from the
 * protocol's). */
int wire_keys_derive_cost(const void *token, size_t token_len, const char *cluster_name,
                          uint64_t opslimit, size_t memlimit, struct wire_keys **ret);
struct wire_keys *wire_keys_free(struct wire_keys *k);
static inline void wire_keys_freep(struct wire_keys **k) {
        wire_keys_free(*k);
}
#define _cleanup_wire_keys_ __attribute__((cleanup(wire_keys_freep)))

/* Who sends: counter is the next per-boot counter; wire_seal() increments it. */
struct wire_sender {
        uint8_t id[NODE_ID_LEN];
        uint8_t boot_id[NODE_ID_LEN];
        uint64_t counter;
};

/* What wire_open() learned from the sealed body of an accepted datagram. */
struct wire_header {
        enum wire_type type;
        uint8_t sender_id[NODE_ID_LEN];
        uint8_t boot_id[NODE_ID_LEN];
        uint64_t counter;
        uint64_t sent_ms; /* sender's wall clock */
};

/* Wall clock (CLOCK_REALTIME) in ms: what now_ms of seal and open means. */
uint64_t wire_clock_ms(void);

/* Seal payload (at most WIRE_MAX_PAYLOAD bytes) into out. -EMSGSIZE if it does not fit in
 * out_max or the protocol limit, -EINVAL for an unknown type, -EOVERFLOW when the counter
 * is exhausted. On success s->counter is incremented. */
int wire_seal(const struct wire_keys *keys, enum wire_type type, struct wire_sender *s,
              uint64_t now_ms, const void *payload, size_t payload_len, void *out, size_t out_max,
              size_t *ret_len);

struct wire_replay_entry; /* private to wire.c */

/* Receive state of one node: its id, the clock window, the replay table and counters. */
struct wire_rx {
        uint8_t self_id[NODE_ID_LEN];
        uint64_t clock_window_ms; /* WIRE_CLOCK_WINDOW_MS_DEFAULT; caller may change */
        struct wire_stats stats;
        struct wire_replay_entry *replay;
        size_t n_replay, max_replay;
        uint64_t tick;
};
/* max_replay 0 means WIRE_REPLAY_MAX_DEFAULT. */
int wire_rx_new(const uint8_t self_id[NODE_ID_LEN], size_t max_replay, struct wire_rx **ret);
struct wire_rx *wire_rx_free(struct wire_rx *rx);
static inline void wire_rx_freep(struct wire_rx **rx) {
        wire_rx_free(*rx);
}
#define _cleanup_wire_rx_ __attribute__((cleanup(wire_rx_freep)))

/* Open a received datagram. Returns 0 and fills ret_hdr, payload and ret_payload_len, or
 * -WIRE_DROP_* (NOT an errno) leaving them and the replay table untouched. Either way
 * rx->stats counts the outcome. A payload longer than payload_max is MALFORMED: pass a
 * WIRE_MAX_PAYLOAD buffer. The payload is checked to decode for its type. */
int wire_open(const struct wire_keys *keys, struct wire_rx *rx, uint64_t now_ms, const void *pkt,
              size_t len, struct wire_header *ret_hdr, void *payload, size_t payload_max,
              size_t *ret_payload_len);

/* ANNOUNCE payload: every field of node_info. Encoding fails with -EINVAL for a field out
 * of range (counts, hostname length or control characters, unknown role bits or state) and
 * -EMSGSIZE when out_max is too small (WIRE_ANNOUNCE_MAX always fits). Decoding returns
 * -EBADMSG for anything but one well-formed encoding, leaving *ret untouched. */
#define WIRE_ANNOUNCE_MAX                                                                          \
        (2 * NODE_ID_LEN + 1 + NODE_HOSTNAME_MAX + 1 + 4 * NODE_ADDRS_MAX + 2 + 8 + 1 +            \
         9 * NODE_DISKS_MAX + 1 + 7 * NODE_NICS_MAX + 4 + 1 + DIGEST_LEN + 32 + 4)
int wire_encode_announce(const struct node_info *n, void *out, size_t out_max, size_t *ret_len);
int wire_decode_announce(const void *p, size_t len, struct node_info *ret);

/* PLAN payload: a committed plan as bare entries (hostnames are not carried). The
 * receiver rebuilds a role_plan (role_plan_new/finalize) and checks its digest. */
#define WIRE_PLAN_MAX   ELECT_MAX_NODES
#define WIRE_PLAN_FLAGS (PLAN_MYSQL_PRIMARY | PLAN_BOOTSTRAP)
struct wire_plan_entry {
        uint8_t id[NODE_ID_LEN];
        uint32_t roles; /* enum role bits */
        uint8_t flags;  /* enum plan_flag bits; each flag on one entry at most */
        uint8_t vrrp_priority;
};
struct wire_plan {
        uint8_t digest[DIGEST_LEN];
        uint32_t epoch;
        uint16_t n;
        struct wire_plan_entry entries[WIRE_PLAN_MAX]; /* no duplicate ids */
};
#define WIRE_PLAN_ENTRY_LEN (NODE_ID_LEN + 4 + 1 + 1)
#define WIRE_PLAN_SIZE(n)   (DIGEST_LEN + 4 + 2 + (size_t)(n)*WIRE_PLAN_ENTRY_LEN)
/* Same errors as the announce codec; decoding may also return -ENOMEM. */
int wire_encode_plan(const struct wire_plan *p, void *out, size_t out_max, size_t *ret_len);
int wire_decode_plan(const void *p, size_t len, struct wire_plan *ret);

/* Generated by the bootstrap node, handed to each member in a SECRETS datagram. Strings
 * are NUL-terminated, at most 64 bytes, no control characters. Keep instances in
 * sodium_malloc'd memory or wipe them (sodium_memzero) after use. */
#define WIRE_SECRET_STR_MAX 64
struct cluster_secrets {
        char join_token[WIRE_SECRET_STR_MAX + 1];
        char cert_key[WIRE_SECRET_STR_MAX + 1];
        char mysql_replication_password[WIRE_SECRET_STR_MAX + 1];
        char registry_password[WIRE_SECRET_STR_MAX + 1];
        char mysql_rainbond_password[WIRE_SECRET_STR_MAX + 1]; /* console/region user */
        uint8_t ca_seed[32];
};
/* Fixed-size blob (every string padded) so its length reveals nothing. */
#define WIRE_SECRETS_BLOB_LEN (5 * (1 + WIRE_SECRET_STR_MAX) + 32)
int wire_encode_secrets(const struct cluster_secrets *s, uint8_t out[WIRE_SECRETS_BLOB_LEN]);
int wire_decode_secrets(const uint8_t in[WIRE_SECRETS_BLOB_LEN], struct cluster_secrets *ret);

/* SECRETS payload: recipient id in the sealed body, then crypto_box_seal to the
 * recipient's per-boot box_pk of (nonce, AEAD under the secrets key of the blob, bound to
 * the recipient's id and box_pk). Exactly WIRE_SECRETS_PAYLOAD_LEN bytes. */
#define WIRE_SECRETS_PAYLOAD_LEN                                                                   \
        (NODE_ID_LEN + 48 /* crypto_box_SEALBYTES */ + WIRE_NONCE_LEN + WIRE_SECRETS_BLOB_LEN +    \
         WIRE_MAC_LEN)
int wire_seal_secrets(const struct wire_keys *keys, const uint8_t recipient_id[NODE_ID_LEN],
                      const uint8_t recipient_box_pk[32], const struct cluster_secrets *s,
                      void *out, size_t out_max, size_t *ret_len);
/* -ENOENT when addressed to another node (normal: SECRETS are multicast), -EBADMSG when it
 * does not open with our box key pair or is malformed. */
int wire_open_secrets(const struct wire_keys *keys, const uint8_t self_id[NODE_ID_LEN],
                      const uint8_t box_pk[32], const uint8_t box_sk[32], const void *payload,
                      size_t len, struct cluster_secrets *ret);
