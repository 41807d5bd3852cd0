/* SPDX-License-Identifier: MIT */
/* Bounded little-endian writer and reader shared by wire.c and wire_codec.c. Both latch
 * an error instead of touching memory past the buffer, so codecs check once at the end. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wbuf {
        uint8_t *p;
        size_t size, len;
        bool overflow;
};

static inline void wbuf_put(struct wbuf *w, const void *d, size_t n) {
        if (w->overflow || n > w->size - w->len) {
                w->overflow = true;
                return;
        }
        if (n > 0)
                memcpy(w->p + w->len, d, n);
        w->len += n;
}

static inline void wbuf_le(struct wbuf *w, uint64_t v, size_t bytes) {
        uint8_t b[8];
        for (size_t i = 0; i < bytes; i++)
                b[i] = (uint8_t)(v >> (8 * i));
        wbuf_put(w, b, bytes);
}

static inline void wbuf_u8(struct wbuf *w, uint8_t v) {
        wbuf_le(w, v, 1);
}
static inline void wbuf_u16(struct wbuf *w, uint16_t v) {
        wbuf_le(w, v, 2);
}
static inline void wbuf_u32(struct wbuf *w, uint32_t v) {
        wbuf_le(w, v, 4);
}
static inline void wbuf_u64(struct wbuf *w, uint64_t v) {
        wbuf_le(w, v, 8);
}

struct rbuf {
        const uint8_t *p;
        size_t len, off;
        bool bad;
};

/* Next n bytes, or NULL (and the reader latched bad) when fewer remain. */
static inline const uint8_t *rbuf_take(struct rbuf *r, size_t n) {
        const uint8_t *q;

        if (r->bad || n > r->len - r->off) {
                r->bad = true;
                return NULL;
        }
        q = r->p + r->off;
        r->off += n;
        return q;
}

static inline void rbuf_get(struct rbuf *r, void *d, size_t n) {
        const uint8_t *q = rbuf_take(r, n);

        if (q && n > 0)
                memcpy(d, q, n);
        else if (!q)
                memset(d, 0, n);
}

static inline uint64_t rbuf_le(struct rbuf *r, size_t bytes) {
        const uint8_t *q = rbuf_take(r, bytes);
        uint64_t v = 0;

        if (!q)
                return 0;
        for (size_t i = 0; i < bytes; i++)
                v |= (uint64_t)q[i] << (8 * i);
        return v;
}

static inline uint8_t rbuf_u8(struct rbuf *r) {
        return (uint8_t)rbuf_le(r, 1);
}
static inline uint16_t rbuf_u16(struct rbuf *r) {
        return (uint16_t)rbuf_le(r, 2);
}
static inline uint32_t rbuf_u32(struct rbuf *r) {
        return (uint32_t)rbuf_le(r, 4);
}
static inline uint64_t rbuf_u64(struct rbuf *r) {
        return rbuf_le(r, 8);
}

/* Everything read, nothing past the end, nothing left over. */
static inline bool rbuf_done(const struct rbuf *r) {
        return !r->bad && r->off == r->len;
}
