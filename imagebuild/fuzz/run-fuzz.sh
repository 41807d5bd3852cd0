#!/bin/bash
# Builds imagebuild's libFuzzer targets (clang, ASan + UBSan) and runs each for SECONDS.
# Usage: run-fuzz.sh SECONDS [imagespec|manifest]...   Env: FUZZ_BUILD (default
# build/fuzz-imagebuild) keeps corpora and artifacts/. Exits non-zero on any finding.
set -euo pipefail
seconds=${1:?usage: run-fuzz.sh SECONDS [imagespec|manifest]...}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(imagespec manifest)
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build/fuzz-imagebuild}
cd "$root"
warn=$(sed -n 's/^WARN := //p' Makefile)
pkgs=$(sed -n 's/^PKGS := //p' Makefile)
mkdir -p "$build/artifacts"
rc=0
for t in "${targets[@]}"; do
        mkdir -p "$build/corpus-$t"
        case $t in
        imagespec) cp configs/image*.yaml "$build/corpus-$t/" ;;
        manifest) printf '{"version":1,"artifacts":[{"name":"a","kind":"binary","file":"a","size":1,"sha256":"%064d"}]}' 0 \
                        > "$build/corpus-$t/seed.json" ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
        esac
        # shellcheck disable=SC2086
        clang -std=gnu11 -g -O1 $warn -D_GNU_SOURCE \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -Iimagebuild -Ifirstboot $(pkg-config --cflags $pkgs) \
                -o "$build/fuzz_$t" "imagebuild/fuzz/fuzz_$t.c" imagebuild/imagespec.c \
                imagebuild/bundle.c imagebuild/diag.c firstboot/config.c firstboot/util.c \
                firstboot/log.c firstboot/json_util.c $(pkg-config --libs $pkgs)
        "$build/fuzz_$t" -max_total_time="$seconds" -max_len=4096 \
                -artifact_prefix="$build/artifacts/$t-" "$build/corpus-$t" 2>&1 | tail -n 3 || rc=1
        if [ -n "$(find "$build/artifacts" -type f -name "$t-*")" ]; then
                echo "$t: FAILED, inputs in $build/artifacts" >&2
                rc=1
        else
                echo "$t: no crash in ${seconds}s"
        fi
done
exit $rc
