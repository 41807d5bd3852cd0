#!/bin/bash
# `make bench`, VIP part: failover time of the keepalived VIP, from the holder dropping
# off the network (`ip link set eth0 down` inside its namespace) to the first TCP answer
# on the VIP from a client namespace, in ms (median, min, max of RUNS). Three gateway
# nodes brought up by `firstboot apply --supervisor direct` (the product's rendering,
# svc_keepalived.c), a socat listener on port 80 of each answering with its name, and a
# 4th namespace as client polling connect() every few ms (vip-probe.c, CLOCK_MONOTONIC).
#   shipped: the rendered keepalived.conf as is (VRRPv3, advert_int 0.1);
#   anchor:  the same file with `vrrp_version 3` -> 2 and `advert_int 0.1` -> 1 (sed),
#            keepalived's own defaults, restarted with the product's command line.
# Figures, not assertions. Usage: bench-vip.sh BUILD_DIR   (root)
set -u
build=$(cd "${1:?build dir}" && pwd)
export FIRSTBOOT=$build/firstboot
PROBE=$build/tools/vip-probe
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-10}
PORT=80
TARGET_MS=300
[ "$(id -u)" -eq 0 ] || { echo "bench-vip: needs root" >&2; exit 1; }
for t in keepalived haproxy socat jq "$PROBE"; do
        command -v "$t" >/dev/null || { echo "bench-vip: $t missing (make deps; make bench builds vip-probe)" >&2; exit 1; }
done
HN_ID=rbbv$$
. "$here/harness.sh"
PIDS=()
cleanup() {
        local p
        for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
        hn_teardown
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench-vip: $*" >&2; exit 1; }

VIP=$HN_SUBNET.100
hn_init || die "harness namespaces"
for i in 1 2 3 4; do hn_add_node "$i"; done
view=$HN_DIR/view.json
hn_write_view "$view" 3
for i in 1 2 3; do
        hn_config "$i" 3
        cp "$view" "$(hn_state "$i")/view.json"
        "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" plan --explain --json \
                --view "$view" >"$(hn_state "$i")/plan.json" || die "plan"
        ip netns exec "$(hn_ns "$i")" socat "TCP-LISTEN:$PORT,fork,reuseaddr" "SYSTEM:echo node$i" \
                2>/dev/null &
        PIDS+=($!)
        disown $!
done
for i in 1 2 3; do
        # The other steps may fail here (no secrets, no bundle): only keepalived matters.
        hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$i/machine-id" --backoff-ms 200 \
                >>"$HN_DIR/node$i/apply.log" 2>&1
        kill -0 "$(cat "$(hn_state "$i")/run/keepalived.pid" 2>/dev/null)" 2>/dev/null ||
                { cat "$HN_DIR/node$i/apply.log" >&2; die "node$i: keepalived did not start"; }
done

conf() { echo "$HN_DIR/node$1/root/etc/keepalived/keepalived.conf"; }
klog() { echo "$(hn_state "$1")/log/keepalived.log"; }
holds_vip() { hn_exec "$1" ip -4 -o addr show dev eth0 | grep -q " $VIP/"; }
holders() { local i; for i in 1 2 3; do holds_vip "$i" && echo "$i"; done; }
# Last VRRP state a node's keepalived entered.
kstate() { grep -o 'Entering [A-Z]* STATE' "$(klog "$1")" 2>/dev/null | tail -1 | awk '{ print $2 }'; }
# settled TIMEOUT: one holder, answering on the VIP, the two others BACKUP; echoes it.
settled() {
        local deadline=$((SECONDS + $1)) h i ok
        while ((SECONDS < deadline)); do
                h=$(holders)
                ok=0
                if [ "$(wc -w <<<"$h")" -eq 1 ]; then
                        ok=1
                        for i in 1 2 3; do
                                [ "$i" = "$h" ] || [ "$(kstate "$i")" = BACKUP ] || ok=0
                        done
                        [ "$(hn_exec 4 socat -T 1 - "TCP:$VIP:$PORT,connect-timeout=1" </dev/null 2>/dev/null)" = "node$h" ] || ok=0
                fi
                ((ok)) && { echo "$h"; return 0; }
                sleep 0.2
        done
        return 1
}

# trials NAME: RUNS failovers; one time in ms per line in $HN_DIR/NAME.ms.
trials() {
        local name=$1 r h out
        : >"$HN_DIR/$name.ms"
        for ((r = 0; r < RUNS; r++)); do
                h=$(settled 30) || { echo "bench-vip: $name: no settled VIP holder" >&2; continue; }
                sleep 1 # adverts of the backups' own, after the last change, well established
                out=$(hn_exec 4 "$PROBE" "$VIP" "$PORT" "node$h" 5 20000 -- \
                        ip -n "$(hn_ns "$h")" link set eth0 down)
                ip -n "$(hn_ns "$h")" link set eth0 up
                case $out in
                timeout | "") echo "bench-vip: $name run $r: no answer within 20 s" >&2 ;;
                *) echo "${out%% *}" >>"$HN_DIR/$name.ms"
                   echo "# $name run $((r + 1)): node$h down, ${out#* } answered after ${out%% *} ms" >&2 ;;
                esac
        done
}
stats() {  # FILE: median min max count
        sort -n "$1" | awk '{ v[NR] = $1 } END { if (!NR) { print "- - - 0"; exit }
                m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.0f %.0f %.0f %d\n", m, v[1], v[NR], NR }'
}

trials shipped

# The anchor: keepalived's defaults in the same rendered file, same command line.
declare -A CMD
for i in 1 2 3; do
        pid=$(cat "$(hn_state "$i")/run/keepalived.pid")
        CMD[$i]=$(tr '\0' '\n' <"/proc/$pid/cmdline" | base64 -w0)
        kill -TERM "$pid"
        for ((n = 0; n < 100; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        sed -i 's/^\(\s*\)vrrp_version 3$/\1vrrp_version 2/; s/^\(\s*\)advert_int 0\.1$/\1advert_int 1/' "$(conf "$i")"
        grep -q 'vrrp_version 2' "$(conf "$i")" && grep -q 'advert_int 1$' "$(conf "$i")" ||
                die "node$i: the sed for the anchor did not apply to $(conf "$i")"
        keepalived --config-test -f "$(conf "$i")" || die "node$i: anchor config refused"
done
for i in 1 2 3; do
        mapfile -t argv < <(base64 -d <<<"${CMD[$i]}")
        ip netns exec "$(hn_ns "$i")" setsid "${argv[@]}" >>"$(klog "$i")" 2>&1 </dev/null &
        PIDS+=($!)
        disown $!
        echo "${PIDS[-1]}" >"$(hn_state "$i")/run/keepalived.pid"
done
trials anchor

row() { printf '| %-46s | %7s | %7s | %7s | %4s | %-9s | %-7s |\n' "$@"; }
echo
row "VIP failover: link down -> first TCP answer" median min max runs target verdict
row --- --- --- --- --- --- ---
read -r med min max n < <(stats "$HN_DIR/shipped.ms")
verdict=$(awk -v m="$med" -v t="$TARGET_MS" 'BEGIN { print (m != "-" && m <= t) ? "PASS" : "MISS" }')
row "shipped: VRRPv3, advert_int 0.1 (rendered)" "$med ms" "$min ms" "$max ms" "$n" "<= $TARGET_MS ms" "$verdict"
read -r med min max n < <(stats "$HN_DIR/anchor.ms")
row "anchor: VRRPv2, advert_int 1 (keepalived dflt)" "$med ms" "$min ms" "$max ms" "$n" "-" "info"
