#!/bin/bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS.
# Usage: run-fuzz.sh SECONDS [TARGET...]   TARGET: config, wire (default: every target)
#   config  the cluster config parser and the rainboot.* command-line overrides
#   wire    the sealed packet opener, payload decoders and replay window (PROTOCOL.md)
# Env: FUZZ_BUILD  build directory (default build/fuzz); it keeps the grown corpora
#                  (corpus/ for config, corpus-wire/ for wire), and artifacts/ gets any
#                  crashing input, named after its target.
# Exits non-zero if a build fails or libFuzzer finds a crash, leak, timeout or OOM.
set -euo pipefail

seconds=${1:?usage: run-fuzz.sh SECONDS [config|wire]...}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config wire)
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build/fuzz}
cd "$root"

# The Makefile's own warning flags and pkg-config packages, so the two builds agree.
warn=$(sed -n 's/^WARN := //p' Makefile)
pkgs=$(sed -n 's/^PKGS := //p' Makefile)
[ -n "$warn" ] && [ -n "$pkgs" ] || { echo "run-fuzz.sh: cannot read WARN/PKGS from the Makefile" >&2; exit 1; }

mkdir -p "$build/artifacts"

build_target() {  # NAME SOURCES-AND-LIBS...
        local name=$1
        shift
        # shellcheck disable=SC2086
        clang -std=gnu11 -g -O1 $warn -D_GNU_SOURCE \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -Ifirstboot $(pkg-config --cflags $pkgs) \
                -o "$build/$name" "$@"
}

verdict() {  # NAME LIBFUZZER-EXIT-CODE
        local found
        found=$(find "$build/artifacts" -type f -name "$1-*" | head -n 5)
        if [ "$2" -ne 0 ] || [ -n "$found" ]; then
                echo "$1: FAILED (libFuzzer exit $2); inputs: ${found:-none}" >&2
                return 1
        fi
        echo "$1: no crash in ${seconds}s"
}

fuzz_config() {
        local rc=0
        mkdir -p "$build/corpus"
        rm -rf "$build/seeds"
        mkdir -p "$build/seeds"

        # Only the sources the target needs: main.c has its own main(), and linking only
        # libyaml keeps other libraries' constructors out of the sanitized process.
        build_target fuzz_config \
                firstboot/fuzz/fuzz_config.c firstboot/config.c firstboot/util.c firstboot/log.c \
                $(pkg-config --libs yaml-0.1) || return 1

        cp configs/*.yaml "$build/seeds/"
        for f in firstboot/tests/data/config/*.yaml; do
                [ -e "$f" ] && cp "$f" "$build/seeds/fixture-$(basename "$f")"
        done
        printf 'quiet rainboot.token="a literal token with spaces" rainboot.expected_nodes=5 rainboot.vip=192.0.2.7/24 rainboot.interface=eno1 rainboot.cluster=prod-b rainboot.wipe=never\n' \
                > "$build/seeds/cmdline"

        echo "fuzz_config: fuzzing for ${seconds}s (corpus $build/corpus)"
        "$build/fuzz_config" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
                -max_len=16384 -dict=firstboot/fuzz/config.dict -print_final_stats=1 \
                -artifact_prefix="$build/artifacts/fuzz_config-" "$build/corpus" "$build/seeds" || rc=$?
        verdict fuzz_config "$rc"
}

fuzz_wire() {
        local rc=0
        mkdir -p "$build/corpus-wire"
        rm -rf "$build/seeds-wire"
        mkdir -p "$build/seeds-wire"

        build_target fuzz_wire \
                firstboot/fuzz/fuzz_wire.c firstboot/wire.c firstboot/wire_codec.c \
                firstboot/view.c firstboot/util.c firstboot/log.c $(pkg-config --libs libsodium) \
                || return 1

        # The target writes its own seeds: valid datagrams need the key it derives.
        FUZZ_WIRE_SEEDS="$build/seeds-wire" "$build/fuzz_wire" || return 1

        echo "fuzz_wire: fuzzing for ${seconds}s (corpus $build/corpus-wire)"
        "$build/fuzz_wire" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
                -max_len=9000 -print_final_stats=1 \
                -artifact_prefix="$build/artifacts/fuzz_wire-" "$build/corpus-wire" "$build/seeds-wire" || rc=$?
        verdict fuzz_wire "$rc"
}

failed=0
for t in "${targets[@]}"; do
        case $t in
        config) fuzz_config || failed=1 ;;
        wire) fuzz_wire || failed=1 ;;
        *) echo "run-fuzz.sh: unknown target '$t' (config, wire)" >&2; exit 2 ;;
        esac
done
exit "$failed"
