/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>

#include "build.h"
#include "bundle.h"
#include "diag.h"
#include "imagespec.h"
#include "log.h"
#include "util.h"

#define IMAGEBUILD_VERSION "0.1.0"

static void help(FILE *f) {
        fprintf(f,
                "Usage: imagebuild [-v|-q] COMMAND [ARGS]\n"
                "\n"
                "Builds rainboot's bootable images (ISO for BIOS+UEFI, qcow2 system disk)\n"
                "from an image spec (configs/image.yaml).\n"
                "\n"
                "Commands:\n"
                "  check SPEC                  validate the spec, its files and its bundle\n"
                "  build SPEC -o DIR [--firstboot BIN] [--cache DIR] [--work DIR]\n"
                "                              build the outputs the spec lists into DIR;\n"
                "                              root filesystem cache: DIR/cache; scratch\n"
                "                              space: a new directory in /var/tmp\n"
                "  bundle add DIR FILE --kind KIND [--name NAME]\n"
                "                              add or update FILE in DIR/manifest.json;\n"
                "                              KIND: oci-archive, binary, chart, deb\n"
                "  bundle verify DIR           check every artifact against the manifest\n"
                "  packages SPEC               print the image's full package list, one a\n"
                "                              line (for building the same set elsewhere)\n"
                "\n"
                "Options:\n"
                "  -v, --verbose   debug logging\n"
                "  -q, --quiet     errors only\n"
                "  -h, --help      this text\n"
                "      --version   print the version\n");
}

static int cmd_check(int argc, char **argv) {
        _cleanup_image_spec_ struct image_spec *s = NULL;
        struct diag d = {};
        int r;

        if (argc != 2) {
                log_error("Usage: imagebuild check SPEC");
                return 2;
        }
        r = image_spec_parse_file(argv[1], &s, &d);
        if (r >= 0)
                r = image_spec_check_files(s, &d);
        diag_log(&d);
        diag_clear(&d);
        if (r < 0)
                return r;
        printf("%s: ok (image '%s', Debian %s, %zu extra packages, outputs:%s%s)\n", argv[1],
               s->name, s->suite, strv_length(s->packages),
               s->outputs & OUTPUT_ISO ? " iso" : "", s->outputs & OUTPUT_QCOW2 ? " qcow2" : "");
        return 0;
}

static int cmd_bundle_add(int argc, char **argv) {
        static const struct option options[] = {
                { "kind", required_argument, NULL, 'k' },
                { "name", required_argument, NULL, 'n' },
                {},
        };
        const char *name = NULL;
        struct diag d = {};
        int kind = -1, c, r;

        while ((c = getopt_long(argc, argv, "k:n:", options, NULL)) >= 0) {
                switch (c) {
                case 'k':
                        kind = bundle_kind_from_string(optarg);
                        if (kind < 0) {
                                log_error("Unknown kind '%s': expected oci-archive, binary, "
                                          "chart or deb.", optarg);
                                return 2;
                        }
                        break;
                case 'n':
                        name = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (argc - optind != 2 || kind < 0) {
                log_error("Usage: imagebuild bundle add DIR FILE --kind KIND [--name NAME]");
                return 2;
        }
        r = bundle_add(argv[optind], argv[optind + 1], (enum bundle_kind)kind, name, &d);
        diag_log(&d);
        diag_clear(&d);
        return r;
}

static int cmd_bundle_verify(int argc, char **argv) {
        _cleanup_bundle_ struct bundle *b = NULL;
        struct diag d = {};
        int r;

        if (argc != 2) {
                log_error("Usage: imagebuild bundle verify DIR");
                return 2;
        }
        r = bundle_load(argv[1], &b, &d);
        if (r >= 0)
                r = bundle_verify(b, &d);
        diag_log(&d);
        diag_clear(&d);
        if (r < 0)
                return r;
        printf("%s: %zu artifacts verified\n", b->manifest, b->n_items);
        return 0;
}

static int cmd_bundle(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "add"))
                return cmd_bundle_add(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "verify"))
                return cmd_bundle_verify(argc - 1, argv + 1);
        log_error("Usage: imagebuild bundle add|verify ...");
        return 2;
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} commands[] = {
        { "check", cmd_check },
        { "build", cmd_build },
        { "bundle", cmd_bundle },
        { "packages", cmd_packages },
};

int main(int argc, char **argv) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "verbose", no_argument, NULL, 'v' },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        log_set_program("imagebuild");
        while ((c = getopt_long(argc, argv, "+vqh", options, NULL)) >= 0) {
                switch (c) {
                case 'v':
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case 'q':
                        log_set_max_level(LOG_LEVEL_ERR);
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_VERSION:
                        printf("imagebuild %s\n", IMAGEBUILD_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'imagebuild --help'.\n");
                        return 2;
                }
        }
        if (optind >= argc) {
                help(stderr);
                return 2;
        }
        if (sodium_init() < 0) {
                log_error("libsodium failed to initialise");
                return 1;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (streq(argv[optind], commands[i].name)) {
                        int first = optind, r;

                        optind = 0;
                        r = commands[i].run(argc - first, argv + first);
                        return r < 0 ? 1 : r;
                }
        }
        log_error("Unknown command '%s'. Try 'imagebuild --help'.", argv[optind]);
        return 2;
}
