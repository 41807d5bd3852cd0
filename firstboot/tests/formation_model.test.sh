#!/bin/bash
# Model-checks the formation rules (../model/formation.pml) with spin: safety under loss,
# duplication, reordering and crashes; liveness with no loss and growing views; and the
# variants that must fail, which prove the checks can fail. See ../model/README.md.
# FULL=1 also runs the safety check with every node allowed to crash (about 2-3 min).
. "$(dirname "$0")/lib.sh"

model=$TESTS_DIR/../model/formation.pml
command -v spin >/dev/null || { not_ok "spin is not installed (make deps)"; exit 1; }
[ -r "$model" ] || { not_ok "$model missing"; exit 1; }
cd "$_tmp" || exit 1

# pan NAME "spin -D flags" "cc flags" "pan flags": builds and runs one verifier, leaves its
# report in NAME.out, prints the figures as TAP comments, and echoes the error count.
pan() {
        local name=$1 sflags=$2 cflags=$3 pflags=$4 errors
        mkdir -p "$name" && cd "$name" || return 1
        cp "$model" formation.pml
        # shellcheck disable=SC2086
        if ! spin $sflags -a formation.pml >spin.out 2>&1 ||
                ! gcc -O2 -w -DMEMLIM=1024 $cflags -o pan pan.c >cc.out 2>&1; then
                cat spin.out cc.out | sed 's/^/# /' >&2
                cd .. && echo build-failed
                return 0
        fi
        # shellcheck disable=SC2086
        timeout 300 ./pan $pflags >"../$name.out" 2>&1
        cd .. || return 1
        grep -E "State-vector|states, stored|total actual memory|elapsed time|violated|cycle" \
                "$name.out" | head -6 | cut -c1-160 | sed "s/^/# $name: /" >&2
        if grep -qE "max search depth too small|out of memory|memory limit" "$name.out"; then
                echo incomplete
                return 0
        fi
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$name.out" | tail -1)
        echo "${errors:-none}"
}

expect() { # description, wanted ("0" or "found"), result of pan
        local d=$1 want=$2 got=$3
        if [ "$want" = 0 ] && [ "$got" = 0 ]; then
                ok "$d"
        elif [ "$want" = found ] && [[ "$got" =~ ^[1-9][0-9]*$ ]]; then
                ok "$d"
        else
                not_ok "$d (pan errors: $got)"
        fi
}

safe_c="-DSAFETY -DCOLLAPSE"
expect "safety: no two different plans commit, loss/duplication/reordering, 1 crash, exhaustive" \
        0 "$(pan safety "" "$safe_c" "-m100000 -w24")"
expect "liveness: no loss, no crash, growing views: every end state has formed" \
        0 "$(pan live "-DLIVE" "$safe_c" "-m100000 -w20")"
expect "liveness: no infinite run (non-progress cycles)" \
        0 "$(pan termination "-DLIVE -DTERMINATION" "-DNP -DCOLLAPSE" "-l -m100000 -w20")"
expect "sanity: runs where a plan is committed by all its members exist" \
        found "$(pan reach "-DREACH" "$safe_c" "-m100000 -w20")"
expect "broken variant: lock released when no COMMITTED is heard -> split found" \
        found "$(pan broken_unlock "-DBROKEN_UNLOCK" "$safe_c" "-m100000 -w20")"
expect "broken variant: commit without waiting for every lock -> split found" \
        found "$(pan broken_onephase "-DBROKEN_ONEPHASE" "$safe_c" "-m100000 -w20")"
expect "known limit: a view that shrinks can leave a stuck split lock (needs --reset)" \
        found "$(pan shrink "-DLIVE -DSHRINK" "$safe_c" "-m100000 -w20")"
if [ "${FULL:-0}" = 1 ]; then
        expect "safety with every node allowed to crash (minimized automaton)" \
                0 "$(pan safety_full "-DMAX_CRASH=4" "-DSAFETY -DMA=60" "-m100000")"
fi
