/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the wire protocol. The first byte picks a path:
 *   0  the bytes are a datagram: wire_open() with a fixed key (header checks, AEAD);
 *   1  the bytes are sealed as a payload of some type, then opened: the decoders behind a
 *      valid MAC, which raw bytes never reach;
 *   2  the bytes go to each payload decoder directly, and to wire_open_secrets();
 *   3  the bytes drive a sequence of sealed datagrams (sender, boot, counter) against a
 *      reference model of the replay window.
 * Whatever decodes must re-encode to the same bytes (one canonical encoding), else abort.
 * With FUZZ_WIRE_SEEDS=DIR set, writes one valid input per path into DIR and exits. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW UINT64_C(1764100000000)

static struct wire_keys *keys;
static uint8_t box_pk[32], box_sk[32];
static const uint8_t self_id[NODE_ID_LEN] = {0x5e, 0x1f};

static void check(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "fuzz_wire: %s\n", what);
                abort();
        }
}

static void sender_init(struct wire_sender *s, uint8_t who, uint8_t boot, uint64_t counter) {
        memset(s, 0, sizeof *s);
        s->id[0] = who;
        s->boot_id[0] = boot;
        s->counter = counter;
}

/* decode(x) succeeded: encode must give x back. */
static void check_announce(const uint8_t *p, size_t len) {
        uint8_t again[WIRE_ANNOUNCE_MAX];
        struct node_info n;
        size_t l;

        if (wire_decode_announce(p, len, &n) < 0)
                return;
        check(wire_encode_announce(&n, again, sizeof again, &l) == 0, "announce re-encode");
        check(l == len && memcmp(again, p, len) == 0, "announce not canonical");
}

static void check_plan(const uint8_t *p, size_t len) {
        _cleanup_free_ struct wire_plan *plan = malloc(sizeof *plan);
        _cleanup_free_ uint8_t *again = malloc(WIRE_PLAN_SIZE(WIRE_PLAN_MAX));
        size_t l;

        if (!plan || !again || wire_decode_plan(p, len, plan) < 0)
                return;
        check(wire_encode_plan(plan, again, WIRE_PLAN_SIZE(WIRE_PLAN_MAX), &l) == 0,
              "plan re-encode");
        check(l == len && memcmp(again, p, len) == 0, "plan not canonical");
}

static void check_secrets_blob(const uint8_t *p, size_t len) {
        uint8_t blob[WIRE_SECRETS_BLOB_LEN], again[WIRE_SECRETS_BLOB_LEN];
        struct cluster_secrets s;

        if (len < sizeof blob)
                return;
        memcpy(blob, p, sizeof blob); /* the decoder takes a fixed-size array */
        if (wire_decode_secrets(blob, &s) < 0)
                return;
        check(wire_encode_secrets(&s, again) == 0, "secrets re-encode");
        check(memcmp(again, blob, sizeof blob) == 0, "secrets not canonical");
}

static void check_payload(enum wire_type t, const uint8_t *p, size_t len) {
        struct cluster_secrets s;

        switch (t) {
        case WIRE_ANNOUNCE:
        case WIRE_FACTS: /* the same layout, about another node */
                check_announce(p, len);
                break;
        case WIRE_PLAN:
                check_plan(p, len);
                break;
        case WIRE_SECRETS:
                (void)wire_open_secrets(keys, self_id, box_pk, box_sk, p, len, &s);
                break;
        }
}

static void open_raw(const uint8_t *data, size_t size) {
        _cleanup_(wire_rx_freep) struct wire_rx *rx = NULL;
        uint8_t payload[WIRE_MAX_PAYLOAD];
        struct wire_header h;
        uint64_t counted;
        size_t plen;

        if (wire_rx_new(self_id, 4, &rx) < 0)
                return;
        if (wire_open(keys, rx, NOW, data, size, &h, payload, sizeof payload, &plen) == 0)
                check_payload(h.type, payload, plen);
        counted = rx->stats.accepted;
        for (size_t i = 0; i < WIRE_DROP_MAX_; i++)
                counted += rx->stats.dropped[i];
        check(counted == 1, "one datagram, one count");
}

static void seal_then_open(const uint8_t *data, size_t size) {
        _cleanup_(wire_rx_freep) struct wire_rx *rx = NULL;
        uint8_t pkt[WIRE_MAX_DATAGRAM], payload[WIRE_MAX_PAYLOAD];
        struct wire_sender s;
        struct wire_header h;
        enum wire_type t;
        size_t len, plen;
        int r;

        if (size < 1 || wire_rx_new(self_id, 4, &rx) < 0)
                return;
        t = (enum wire_type)(1 + data[0] % 4);
        sender_init(&s, 0x42, 1, 7);
        if (wire_seal(keys, t, &s, NOW, data + 1, size - 1, pkt, sizeof pkt, &len) < 0)
                return;
        r = wire_open(keys, rx, NOW, pkt, len, &h, payload, sizeof payload, &plen);
        check(r == 0 || r == -WIRE_DROP_MALFORMED, "a sealed datagram opens or is malformed");
        if (r < 0)
                return;
        check(h.type == t && h.counter == 7 && h.sent_ms == NOW && plen == size - 1 &&
                      memcmp(payload, data + 1, plen) == 0,
              "open returns what was sealed");
        check_payload(t, payload, plen);
        check(wire_open(keys, rx, NOW, pkt, len, &h, payload, sizeof payload, &plen) ==
                      -WIRE_DROP_REPLAY,
              "second open is a replay");
}

static void decode_direct(const uint8_t *data, size_t size) {
        struct cluster_secrets s;

        check_announce(data, size);
        check_plan(data, size);
        check_secrets_blob(data, size);
        (void)wire_open_secrets(keys, self_id, box_pk, box_sk, data, size, &s);
}

/* Three senders x two boots, counters 0..255: the replay table (no eviction: 8 entries)
 * must accept exactly what the sliding-window rule says. */
static void replay_model(const uint8_t *data, size_t size) {
        _cleanup_(wire_rx_freep) struct wire_rx *rx = NULL;
        struct {
                bool any;
                unsigned top;
                bool seen[256];
        } model[3][2] = {};
        struct node_info n = {};
        uint8_t buf[WIRE_ANNOUNCE_MAX], pkt[WIRE_MAX_DATAGRAM], payload[WIRE_MAX_PAYLOAD];
        struct wire_header h;
        size_t len, plen, blen;

        if (wire_rx_new(self_id, 8, &rx) < 0)
                return;
        for (size_t i = 0; i + 3 <= size && i < 3 * 512; i += 3) {
                unsigned who = data[i] % 3, boot = data[i + 1] % 2, c = data[i + 2];
                struct wire_sender s;
                bool expect;
                int r;

                sender_init(&s, (uint8_t)(who + 1), (uint8_t)(boot + 1), c);
                memcpy(n.id, s.id, NODE_ID_LEN);
                memcpy(n.boot_id, s.boot_id, NODE_ID_LEN);
                check(wire_encode_announce(&n, buf, sizeof buf, &blen) == 0, "encode announce");
                check(wire_seal(keys, WIRE_ANNOUNCE, &s, NOW, buf, blen, pkt, sizeof pkt, &len) ==
                              0,
                      "seal announce");
                expect = !model[who][boot].any || (!model[who][boot].seen[c] &&
                                                   (c > model[who][boot].top ||
                                                    model[who][boot].top - c < WIRE_REPLAY_WINDOW));
                r = wire_open(keys, rx, NOW, pkt, len, &h, payload, sizeof payload, &plen);
                check(r == 0 || r == -WIRE_DROP_REPLAY, "only replays are dropped");
                check((r == 0) == expect, "replay window disagrees with the model");
                if (r == 0) {
                        model[who][boot].seen[c] = true;
                        if (!model[who][boot].any || c > model[who][boot].top)
                                model[who][boot].top = c;
                        model[who][boot].any = true;
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        switch (data[0] % 4) {
        case 0:
                open_raw(data + 1, size - 1);
                break;
        case 1:
                seal_then_open(data + 1, size - 1);
                break;
        case 2:
                decode_direct(data + 1, size - 1);
                break;
        case 3:
                replay_model(data + 1, size - 1);
                break;
        }
        return 0;
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const void *p, size_t len) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                abort();
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        check(fd >= 0 && write(fd, &mode, 1) == 1 && write(fd, p, len) == (ssize_t)len,
              "write seed");
}

static void write_seeds(const char *dir) {
        static uint8_t plan_buf[WIRE_PLAN_SIZE(4)];
        struct wire_plan *plan = calloc(1, sizeof *plan);
        uint8_t buf[WIRE_ANNOUNCE_MAX + 1], pkt[WIRE_MAX_DATAGRAM];
        uint8_t sec[WIRE_SECRETS_PAYLOAD_LEN], blob[WIRE_SECRETS_BLOB_LEN], replay[60];
        struct cluster_secrets cs = {.join_token = "abcdef.0123456789abcdef"};
        struct node_info n = {.hostname = "node-1",
                              .n_addrs = 1,
                              .cpus = 4,
                              .n_disks = 1,
                              .n_nics = 1,
                              .state = NODE_PROPOSING};
        struct wire_sender s;
        size_t len, plen;

        check(plan != NULL, "allocate");
        sender_init(&s, 0x42, 1, 1);
        memcpy(n.id, s.id, NODE_ID_LEN);
        memcpy(n.boot_id, s.boot_id, NODE_ID_LEN);
        n.disks[0].size_bytes = UINT64_C(1) << 40;
        n.disks[0].ssd = true;
        n.nics[0].up = true;

        check(wire_encode_announce(&n, buf + 1, sizeof buf - 1, &len) == 0, "seed announce");
        check(wire_seal(keys, WIRE_ANNOUNCE, &s, NOW, buf + 1, len, pkt, sizeof pkt, &plen) == 0,
              "seed seal");
        write_seed(dir, "datagram-announce", 0, pkt, plen);
        buf[0] = WIRE_ANNOUNCE - 1; /* seal_then_open: type = 1 + byte % 3 */
        write_seed(dir, "sealed-announce", 1, buf, len + 1);
        write_seed(dir, "decode-announce", 2, buf + 1, len);

        plan->n = 4;
        for (uint8_t i = 0; i < 4; i++) {
                plan->entries[i].id[0] = i;
                plan->entries[i].roles = 1u << i;
        }
        plan->entries[0].flags = PLAN_BOOTSTRAP | PLAN_MYSQL_PRIMARY;
        check(wire_encode_plan(plan, plan_buf + 0, sizeof plan_buf, &len) == 0, "seed plan");
        write_seed(dir, "decode-plan", 2, plan_buf, len);
        memmove(buf + 1, plan_buf, len);
        buf[0] = WIRE_PLAN - 1;
        write_seed(dir, "sealed-plan", 1, buf, len + 1);

        check(wire_encode_secrets(&cs, blob) == 0, "seed secrets");
        write_seed(dir, "decode-secrets-blob", 2, blob, sizeof blob);
        check(wire_seal_secrets(keys, self_id, box_pk, &cs, sec, sizeof sec, &len) == 0,
              "seed seal secrets");
        write_seed(dir, "decode-secrets", 2, sec, len);

        for (size_t i = 0; i < sizeof replay; i++)
                replay[i] = (uint8_t)(i % 3 == 2 ? 200 - 7 * i : i);
        write_seed(dir, "replay", 3, replay, sizeof replay);
        free(plan);
        sodium_memzero(&cs, sizeof cs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *seeds = getenv("FUZZ_WIRE_SEEDS");
        (void)argc;
        (void)argv;

        /* Argon2id at its minimum cost: the fuzzer exercises what comes after the KDF. */
        check(wire_keys_derive_cost("fuzz token", 10, "fuzz", crypto_pwhash_OPSLIMIT_MIN,
                                    crypto_pwhash_MEMLIMIT_MIN, &keys) == 0,
              "derive keys");
        crypto_box_keypair(box_pk, box_sk);
        if (seeds) {
                write_seeds(seeds);
                exit(0);
        }
        return 0;
}
