/* SPDX-License-Identifier: MIT */
/* json-c helpers shared by every --json output: ownership-taking adders that turn
 * json-c's NULL-on-allocation-failure into -ENOMEM, and one output format. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

static inline void json_object_putp(struct json_object **o) {
        if (*o)
                json_object_put(*o);
}

/* Take ownership of v (freed on failure); v == NULL means allocation failed. */
int json_add(struct json_object *o, const char *key, struct json_object *v);
int json_append(struct json_object *array, struct json_object *v);
int json_add_null(struct json_object *o, const char *key);
int json_add_str(struct json_object *o, const char *key, const char *s);
int json_add_str_or_null(struct json_object *o, const char *key, const char *s);
int json_add_u64(struct json_object *o, const char *key, uint64_t v);
int json_add_int(struct json_object *o, const char *key, int64_t v);
int json_add_bool(struct json_object *o, const char *key, bool v);
int json_add_strv(struct json_object *o, const char *key, char *const *l);
/* Lowercase hex string of n bytes (n <= 64). */
struct json_object *json_new_hex(const uint8_t *b, size_t n);

/* Pretty-printed, "key": value, slashes unescaped; caller frees. */
int json_to_string(struct json_object *o, char **ret);
