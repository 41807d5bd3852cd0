/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the image spec parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "imagespec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct image_spec *s = NULL;
        struct diag d = {};

        if (image_spec_parse_string((const char *)data, size, "fuzz.yaml", "/base", &s, &d) >= 0)
                image_spec_free(s);
        diag_clear(&d);
        return 0;
}
