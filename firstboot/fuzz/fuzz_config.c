/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the cluster config: the same bytes go to the YAML parser and, as a
 * kernel command line, to the rainboot.* override parser. Whatever is accepted must format
 * to YAML that parses back and formats to the same text (a fixed point), else abort. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_yaml[] = "cluster: {name: fuzz, token: env:T, expected_nodes: 3}\n"
                                "vip: {address: 192.0.2.100/24}\n";

static void check_fixed_point(const struct config *c) {
        _cleanup_config_ struct config *again = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct diag d = {};

        /* A literal token is printed as <redacted>, which is no token: nothing to compare. */
        if (!startswith(c->token, "file:") && !startswith(c->token, "env:"))
                return;
        if (config_format(c, &a) < 0)
                abort();
        if (config_parse_string(a, strlen(a), "formatted", &again, &d) < 0) {
                for (size_t i = 0; i < d.n; i++)
                        fprintf(stderr, "%s\n", d.msgs[i]);
                fprintf(stderr, "---- formatted config that does not parse back:\n%s", a);
                abort();
        }
        diag_clear(&d);
        if (config_format(again, &b) < 0 || !streq(a, b)) {
                fprintf(stderr, "---- first:\n%s---- second:\n%s", a, b ? b : "(null)\n");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_config_ struct config *c = NULL, *base = NULL;
        _cleanup_free_ char *cmdline = NULL;
        struct diag d = {};

        if (config_parse_string((const char *)data, size, "fuzz", &c, &d) >= 0)
                check_fixed_point(c);
        diag_clear(&d);

        cmdline = strndup((const char *)data, size);
        if (!cmdline)
                return 0;
        if (config_parse_string(base_yaml, strlen(base_yaml), "base", &base, &d) < 0)
                abort();
        if (config_apply_cmdline(base, cmdline, &d) >= 0)
                check_fixed_point(base);
        diag_clear(&d);
        return 0;
}
