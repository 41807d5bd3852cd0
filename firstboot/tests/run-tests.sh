#!/bin/bash
# Runs every cmocka unit test (TAP output) and every system test script (*.test.sh, TAP),
# streams their output, and ends with one summary line: "N passed, N failed".
# Usage: run-tests.sh BUILD_DIR [NAME_FILTER]
set -u
build=$(cd "${1:?build dir}" && pwd)
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cd "$here"

export CMOCKA_MESSAGE_OUTPUT=TAP
# asan.supp: a heap overread inside libparted's own constructor (see the file).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:suppressions=$here/asan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export FIRSTBOOT="$build/firstboot"
export MCAST_TOOL="$build/tools/mcast-tool"
export TESTS_DIR="$here"

run_one() {  # name, command...
        local name=$1 rc out
        shift
        echo "# ---- $name"
        out=$(mktemp)
        "$@" 2>&1 | tee "$out"
        rc=${PIPESTATUS[0]}
        if [ "$rc" -ne 0 ] && ! grep -q '^not ok ' "$out"; then
                # Crash, sanitizer report or script error outside any check.
                echo "not ok - $name exited with status $rc"
        fi
        rm -f "$out"
}

{
        for t in "$build"/tests/test_*; do
                [ -x "$t" ] && [ -f "$t" ] || continue
                [[ "$t" == *.d ]] && continue
                [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
                run_one "$(basename "$t")" "$t"
        done
        for s in "$here"/*.test.sh; do
                [ -e "$s" ] || continue
                [ -n "$filter" ] && [[ "$s" != *"$filter"* ]] && continue
                run_one "$(basename "$s")" timeout --kill-after=10 600 bash "$s"
        done
} 2>&1 | tee "$log"

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^not ok ' "$log")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
