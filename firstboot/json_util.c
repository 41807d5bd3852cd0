/* SPDX-License-Identifier: MIT */
#include "json_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int json_add(struct json_object *o, const char *key, struct json_object *v) {
        if (!v)
                return -ENOMEM;
        /* json-c 0.16 does not take ownership when adding fails: free here. */
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_append(struct json_object *array, struct json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(array, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_add_null(struct json_object *o, const char *key) {
        return json_object_object_add(o, key, NULL) < 0 ? -ENOMEM : 0;
}

int json_add_str(struct json_object *o, const char *key, const char *s) {
        return json_add(o, key, json_object_new_string(s ? s : ""));
}

int json_add_str_or_null(struct json_object *o, const char *key, const char *s) {
        return s ? json_add_str(o, key, s) : json_add_null(o, key);
}

int json_add_u64(struct json_object *o, const char *key, uint64_t v) {
        return json_add(o, key, json_object_new_uint64(v));
}

int json_add_int(struct json_object *o, const char *key, int64_t v) {
        return json_add(o, key, json_object_new_int64(v));
}

int json_add_bool(struct json_object *o, const char *key, bool v) {
        return json_add(o, key, json_object_new_boolean(v));
}

int json_add_strv(struct json_object *o, const char *key, char *const *l) {
        struct json_object *a = json_object_new_array();
        int r;

        if (!a)
                return -ENOMEM;
        for (; l && *l; l++) {
                r = json_append(a, json_object_new_string(*l));
                if (r < 0) {
                        json_object_put(a);
                        return r;
                }
        }
        return json_add(o, key, a);
}

struct json_object *json_new_hex(const uint8_t *b, size_t n) {
        char hex[2 * 64 + 1];

        if (n > 64)
                return NULL;
        hex_encode(b, n, hex);
        return json_object_new_string_len(hex, (int)(2 * n));
}

int json_to_string(struct json_object *o, char **ret) {
        const char *s = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *copy = s ? strdup(s) : NULL;

        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}
