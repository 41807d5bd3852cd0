#!/bin/bash
# Fuzzes the config parser (firstboot/fuzz/run-fuzz.sh config) for 20 s, TAP output. ok if
# the target builds, libFuzzer exits 0 and no crashing input was written. Its build
# directory is private to this run, so parallel `make check`s do not collide.
. ./lib.sh

command -v clang >/dev/null || { not_ok "clang is installed (make deps)"; exit 1; }
export FUZZ_BUILD="$_tmp/fuzz"
log="$_tmp/fuzz.log"
rc=0
../fuzz/run-fuzz.sh 20 config >"$log" 2>&1 || rc=$?
tail -n 12 "$log" | sed 's/^/# /'

check "fuzz_config builds and libFuzzer exits 0 after 20 s" test "$rc" -eq 0
check "libFuzzer ran fuzz_config to its time limit" grep -qE "^Done [0-9]+ runs in" "$log"
check "no crash, leak or timeout input was written" \
        test -z "$(find "$FUZZ_BUILD/artifacts" -type f 2>/dev/null)"
