#!/bin/bash
# `make bench`, discovery part: time from the last node's start to every node having
# committed, for N nodes in namespaces (median of RUNS), and the steady state of a formed
# 3-node cluster: CPU per node, bytes per second per node on the wire, RSS.
# Figures, not assertions. Usage: bench-discovery.sh BUILD_DIR   (root)
set -u
build=$(cd "${1:?build dir}" && pwd)
export FIRSTBOOT=$build/firstboot
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-5}
SIZES=${SIZES:-3 8 16 32}
[ "$(id -u)" -eq 0 ] || { echo "bench-discovery: needs root" >&2; exit 1; }
. "$here/harness.sh"
trap 'hn_teardown' EXIT
trap 'exit 130' INT TERM
tmp=$(mktemp -d /tmp/rainboot-bench-disc.XXXXXX)
trap 'hn_teardown; rm -rf "$tmp"' EXIT

row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit } printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Default settings (settle 1500 ms, interval 250 ms), as shipped.
HN_SETTLE_MS=1500
HN_INTERVAL_MS=250

# One formation of N nodes; prints seconds from the last start to the last commit.
form_once() {
        local n=$1 i last t_commit
        HN_ID="rbb$$n$n"
        HN_HUB="${HN_ID}-hub"
        HN_DIR=$(mktemp -d "$tmp/n$n.XXXX")
        HN_PID=()
        hn_init || return 1
        for ((i = 1; i <= n; i++)); do
                hn_add_node "$i" && hn_config "$i" "$n"
        done
        for ((i = 1; i <= n; i++)); do hn_start "$i"; done
        last=$EPOCHREALTIME
        if hn_wait_formed 120 $(seq 1 "$n"); then
                t_commit=$(for ((i = 1; i <= n; i++)); do stat -c %.9Y "$(hn_state "$i")/plan.json"; done | sort -n | tail -1)
                awk -v a="$last" -v b="$t_commit" 'BEGIN { printf "%.3f\n", b - a }'
        fi
        if [ "$n" = 3 ] && [ ! -e "$tmp/steady" ]; then steady; fi
        hn_teardown
}

# Steady state of the formed 3-node cluster over 10 s.
steady() {
        local pid=${HN_PID[1]} t0 t1 b0 b1 hz
        hz=$(getconf CLK_TCK)
        t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        b0=$(ip -n "$HN_HUB" -s -j link show p1 | jq '.[0].stats64.rx.bytes')
        sleep 10
        t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        b1=$(ip -n "$HN_HUB" -s -j link show p1 | jq '.[0].stats64.rx.bytes')
        awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.2f\n", (b - a) / hz / 10 * 100 }' > "$tmp/cpu"
        echo $(((b1 - b0) / 10)) > "$tmp/bps"
        grep VmRSS "/proc/$pid/status" | awk '{ print $2 }' > "$tmp/rss"
        grep VmHWM "/proc/$pid/status" | awk '{ print $2 }' > "$tmp/hwm"
        touch "$tmp/steady"
}

echo
row benchmark median "" target verdict
row --- --- --- --- ---
for n in $SIZES; do
        : > "$tmp/times"
        for ((r = 0; r < RUNS; r++)); do
                form_once "$n" >> "$tmp/times"
        done
        med=$(median < "$tmp/times")
        got=$(wc -l < "$tmp/times")
        case $n in
        3) target="<= 2.0 s (settle + 0.5 s)"; ok=$(awk -v m="$med" 'BEGIN { print (m != "-" && m <= 2.0) ? "PASS" : "MISS" }') ;;
        32) target="< 4 s"; ok=$(awk -v m="$med" 'BEGIN { print (m != "-" && m < 4) ? "PASS" : "MISS" }') ;;
        *) target="-"; ok=info ;;
        esac
        [ "$got" -lt "$RUNS" ] && ok="$ok ($((RUNS - got)) of $RUNS runs did not form)"
        row "discovery: last start to all committed, N=$n" "$med s" "" "$target" "$ok"
done
if [ -e "$tmp/steady" ]; then
        cpu=$(cat "$tmp/cpu")
        row "steady state, formed N=3: CPU per node" "$cpu %" "" "< 1 %" \
                "$(awk -v c="$cpu" 'BEGIN { print c < 1 ? "PASS" : "MISS" }')"
        row "steady state, formed N=3: bytes/s per node on the wire" "$(cat "$tmp/bps") B/s" "" "-" info
        row "steady state: RSS now / peak (Argon2id KDF at start)" "$(cat "$tmp/rss") / $(cat "$tmp/hwm") KiB" "" "< 4 MiB" \
                "$(awk -v k="$(cat "$tmp/rss")" 'BEGIN { print k < 4096 ? "PASS (now)" : "MISS" }')"
fi
echo
echo "median of $RUNS runs; settle_ms 1500, interval_ms 250 (shipped defaults); firstboot $(basename "$build") build"
