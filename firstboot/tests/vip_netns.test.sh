#!/bin/bash
# keepalived VIP + haproxy brought up by `firstboot apply --supervisor direct` on 3 nodes
# (network namespaces on a bridge, qemu-tests/netns/harness.sh) with a 4th namespace as
# client: the VIP answers on a gateway port and on the Kubernetes API port; the holder's
# keepalived is killed by PID and the VIP moves and answers again; it is brought back by
# `firstboot apply` and the VIP stays where it is (nopreempt: no flapping). Needs root.
# Everything runs inside namespaces this test creates; every process it starts is killed
# by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in keepalived haproxy socat jq; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done

HN_ID=rbv$$
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown
PIDS=()
on_exit 'for p in "${PIDS[@]}"; do kill -KILL "$p"; done'

VIP=$HN_SUBNET.100
GW_PORTS="80 443 6060 7070 8443"

hn_init || { not_ok "harness namespaces"; exit 1; }
for i in 1 2 3 4; do hn_add_node "$i"; done

# The committed state discovery would leave: view.json and plan.json, the same on every node.
view=$_tmp/view.json
hn_write_view "$view" 3
for i in 1 2 3; do
        hn_config "$i" 3
        cp "$view" "$(hn_state "$i")/view.json"
        "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" plan --explain --json \
                --view "$view" >"$(hn_state "$i")/plan.json"
        # The Rainbond gateway is "installed": the track script checks its ports too.
        touch "$(hn_state "$i")/gateway-ready"
done
check "all three nodes are gateways with distinct VRRP priorities" \
        [ "$(jq '[.nodes[] | select(.roles | index("rbd-gateway")) | .vrrp_priority] | unique | length' "$(hn_state 1)/plan.json")" -eq 3 ]

# Stand-ins for the Rainbond gateway (every gateway port) and the apiserver (6443): each
# answers with its node's name.
for i in 1 2 3; do
        for p in $GW_PORTS 6443; do
                # Not through hn_exec: a backgrounded function would make $! a subshell.
                ip netns exec "$(hn_ns "$i")" socat "TCP-LISTEN:$p,fork,reuseaddr" \
                        "SYSTEM:echo node$i-$p" 2>>"$HN_DIR/node$i/listeners.log" &
                PIDS+=($!)
        done
done

apply() {  # NODE ARGS...
        local i=$1
        shift
        hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$i/machine-id" --backoff-ms 200 "$@" \
                >>"$HN_DIR/node$i/apply.log" 2>&1
}
for i in 1 2 3; do
        apply "$i"
        check "node$i: firstboot apply exits 0" [ $? -eq 0 ]
        check "node$i: journal has haproxy and keepalived done" \
                [ "$(jq -r '[.steps[] | select(.state == "done") | .name] | sort | join(",")' "$(hn_state "$i")/journal.json")" = "haproxy,keepalived" ]
        check "node$i: rendered keepalived.conf passes keepalived -t" \
                keepalived -t -f "$HN_DIR/node$i/root/etc/keepalived/keepalived.conf"
        check "node$i: rendered haproxy.cfg passes haproxy -c" \
                haproxy -c -q -f "$HN_DIR/node$i/root/etc/haproxy/haproxy.cfg"
done

holds_vip() { hn_exec "$1" ip -4 -o addr show dev eth0 | grep -q " $VIP/"; }
holders() { local i; for i in 1 2 3; do holds_vip "$i" && echo "$i"; done; }
# wait_single_holder TIMEOUT [NOT]: until exactly one node (other than NOT) holds the VIP.
wait_single_holder() {
        local deadline=$((SECONDS + $1)) h
        while ((SECONDS < deadline)); do
                h=$(holders)
                if [ "$(wc -w <<<"$h")" -eq 1 ] && [ "$h" != "${2:-}" ]; then
                        echo "$h"
                        return 0
                fi
                sleep 0.1
        done
        return 1
}
# ask PORT: one TCP exchange with the VIP from the client namespace.
ask() { hn_exec 4 socat -T 2 - "TCP:$VIP:$1,connect-timeout=2" </dev/null 2>/dev/null; }
# ask_until TIMEOUT PORT EXPECTED_REGEX: bounded retries until the answer matches.
ask_until() {
        local deadline=$((SECONDS + $1)) a
        while ((SECONDS < deadline)); do
                a=$(ask "$2")
                [[ "$a" =~ $3 ]] && { echo "$a"; return 0; }
                sleep 0.2
        done
        echo "$a"
        return 1
}

holder=$(wait_single_holder 15)
check "exactly one node holds the VIP" [ -n "$holder" ]
[ -n "$holder" ] || exit 1
ans=$(ask_until 10 80 "^node$holder-80\$")
check "client reaches the VIP on port 80, served by the holder (node$holder)" [ "$ans" = "node$holder-80" ]
ans=$(ask_until 10 16443 '^node[123]-6443$')
check "client reaches the Kubernetes API on VIP:16443 through haproxy ($ans)" \
        grep -qE '^node[123]-6443$' <<<"$ans"

# A rerun resumes from the journal: nothing is restarted.
kpid=$(cat "$(hn_state "$holder")/run/keepalived.pid")
apply "$holder"
check "rerun of apply exits 0" [ $? -eq 0 ]
check "rerun takes the steps from the journal" grep -q "Step keepalived: done (journal)" "$HN_DIR/node$holder/apply.log"
check "rerun leaves keepalived running with the same pid" \
        [ "$(cat "$(hn_state "$holder")/run/keepalived.pid")" = "$kpid" ]

st=$(hn_exec "$holder" "$FIRSTBOOT" status --json --state-dir "$(hn_state "$holder")" \
        --machine-id-file "$HN_DIR/node$holder/machine-id")
check "status --json: this node, 2 peers, keepalived done" \
        jq -e --arg h "node$holder" '.node.hostname == $h and (.peers | length) == 2 and
                ([.steps[] | select(.name == "keepalived")][0].state == "done")' <<<"$st"

# Crash of the holder's keepalived: SIGKILL by PID, its VRRP child too (as an OOM kill
# of the whole service would). Nothing removes the VIP from the dead node's interface,
# so the test looks for a new holder among the others; the client follows the new
# holder's gratuitous ARP. The VIP must answer again from there.
vpid=$(cat "$(hn_state "$holder")/run/keepalived-vrrp.pid" 2>/dev/null)
kill -KILL "$kpid" ${vpid:+"$vpid"}
old=$holder
others() { local i; for i in 1 2 3; do [ "$i" != "$old" ] && holds_vip "$i" && echo "$i"; done; }
holder=
for ((n = 0; n < 150; n++)); do
        h=$(others)
        [ "$(wc -w <<<"$h")" -eq 1 ] && { holder=$h; break; }
        sleep 0.1
done
check "after killing node$old's keepalived, the VIP moved (to node${holder:-none})" [ -n "$holder" ]
ans=$(ask_until 10 80 "^node${holder:-x}-80\$")
check "the VIP answers again on port 80, from node${holder:-none}" [ "$ans" = "node$holder-80" ]

# Bring it back the way an operator (or a reboot) would: firstboot apply checks the step,
# finds keepalived not running, and starts it.
apply "$old" --recheck
check "apply --recheck on node$old exits 0" [ $? -eq 0 ]
check "node$old's keepalived started at the first attempt (its stale pidfiles cleared)" \
        [ "$(jq '.steps[] | select(.name == "keepalived") | .attempts' "$(hn_state "$old")/journal.json")" -eq 2 ]
check "node$old's keepalived runs again" \
        kill -0 "$(cat "$(hn_state "$old")/run/keepalived.pid")"
flaps=0
for ((n = 0; n < 40; n++)); do  # 4 s: many times the 0.36 s master-down interval
        h=$(holders)
        [ "$h" = "$holder" ] || flaps=$((flaps + 1))
        sleep 0.1
done
check "no flapping: node$holder keeps the VIP after node$old returns" [ "$flaps" -eq 0 ]
check "node$old came back as BACKUP" grep -q "Entering BACKUP STATE" "$(hn_state "$old")/log/keepalived.log"
not() { ! "$@"; }
check "node$old dropped the VIP its killed keepalived left behind" not holds_vip "$old"
ans=$(ask 80)
check "the VIP still answers from node$holder" [ "$ans" = "node$holder-80" ]

# Track script: the holder's gateway goes away (its port-80 listener is killed), the
# holder goes to FAULT and gives the VIP up, even with nopreempt.
idx=$(( (holder - 1) * 6 ))  # PIDS holds 6 listeners per node, port 80 first
kill -KILL "${PIDS[$idx]}"
moved=$(wait_single_holder 15 "$holder")
check "gateway down on node$holder: the track script moves the VIP (to node${moved:-none})" [ -n "$moved" ]
