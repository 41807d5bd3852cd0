/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the bundle manifest parser (JSON) on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct bundle *b = NULL;
        struct diag d = {};
        char *text = malloc(size + 1);

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;
        if (bundle_parse("/bundle", text, size, &b, &d) >= 0)
                bundle_free(b);
        diag_clear(&d);
        free(text);
        return 0;
}
