#!/bin/bash
# `firstboot status`: the node dashboard (text, --json, --watch) before and after
# formation, with step durations, the VIP holder and the last error. Three real
# `firstboot discover` processes in namespaces (qemu-tests/netns harness) make the
# committed plan; the journal is then written by hand with one step of each state.
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../qemu-tests/netns/harness.sh"
HN_ID="rbst$$"
HN_HUB="${HN_ID}-hub"
HN_DIR=$(mktemp -d "$_tmp/st.XXXX")
on_exit 'hn_teardown'
hn_init

jqt() { jq -e "$@" >/dev/null; }
status() {  # I ARGS...: firstboot status of node I
        local i=$1
        shift
        hn_exec "$i" "$FIRSTBOOT" -c "$HN_DIR/node$i/cluster.yaml" --cmdline "" status \
                --state-dir "$(hn_state "$i")" --machine-id-file "$HN_DIR/node$i/machine-id" "$@"
}

for i in 1 2 3; do hn_add_node "$i"; hn_config "$i" 3; done
out=$(status 1 --json 2>&1)
check "before discovery: exit 0, phase starting" jqt '.phase == "starting" and .plan == null' <<<"$out"
check "and the VIP from the config, not held here" \
        jqt '.vip.address == "203.0.113.100/24" and .vip.here == false' <<<"$out"

hn_start 1
for ((k = 0; k < 50; k++)); do [ -s "$(hn_state 1)/status.json" ] && break; sleep 0.1; done
out=$(status 1 --json 2>&1)
check "one node discovering: phase discovering, no plan, no steps" \
        jqt '.phase == "discovering" and .plan == null and (.steps | length) == 0' <<<"$out"
out=$(status 1 2>&1)
check "text: the dashboard says discovering and that steps come after formation" \
        eval 'grep -q "\[discovering\]" <<<"$out" && grep -q "steps: after formation" <<<"$out"'

hn_start 2
hn_start 3
check "3 nodes form" hn_wait_formed 40 1 2 3
for i in 1 2 3; do hn_stop "$i"; done

out=$(status 1 --json 2>&1)
check "formed, nothing applied: phase formed, 2 peers with roles, every known step pending" \
        jqt '.phase == "formed" and (.peers | length) == 2 and (.peers[0].roles | length) > 0 and
               (.steps | length) > 0 and ([.steps[] | select(.state != "pending")] | length) == 0' <<<"$out"

now=$(date +%s)
cat > "$(hn_state 1)/journal.json" <<EOF
{"version": 1, "steps": [
 {"name": "keepalived", "state": "done", "attempts": 1, "hash": "x", "updated": $((now - 10)), "started": $((now - 17)), "note": null},
 {"name": "haproxy", "state": "running", "attempts": 2, "hash": "", "updated": $((now - 1)), "started": $((now - 5)), "note": null},
 {"name": "mysql", "state": "failed", "attempts": 3, "hash": "", "updated": $((now - 2)), "started": $((now - 9)), "note": "failed after 3 attempts: Protocol error",
  "failure": {"command": "mysql -e SELECT 1", "status": 1, "output": "ERROR 2002: cannot connect\nsecond line"}}
]}
EOF
out=$(status 1 --json 2>&1)
check "journal: phase failed, keepalived done in 7 s, haproxy running for about 5 s" \
        jqt '.phase == "failed" and ([.steps[] | select(.name == "keepalived")][0].duration == 7) and
               ([.steps[] | select(.name == "haproxy")][0] | .state == "running" and .duration >= 5)' <<<"$out"
check "last_error names the step, the command, its status and output" \
        jqt '.last_error.step == "mysql" and .last_error.command == "mysql -e SELECT 1" and
               .last_error.status == 1 and (.last_error.output | startswith("ERROR 2002"))' <<<"$out"
check "the keys of the old format are still there (node, plan, peers, steps)" \
        jqt '.node.hostname == "node1" and (.plan.digest | length) == 64 and .plan.members == 3' <<<"$out"
out=$(status 1 2>&1)
check "text: roles, peers, steps with durations and attempts, the last error with its output" \
        eval 'grep -q "^roles: " <<<"$out" && grep -q "^  node2 " <<<"$out" &&
              grep -Eq "^  keepalived +done +7s" <<<"$out" && grep -q "attempt 2" <<<"$out" &&
              grep -q "^last error: step mysql" <<<"$out" && grep -q "| ERROR 2002" <<<"$out"'
echo "$out" | sed 's/^/# /'

hn_exec 1 ip addr add 203.0.113.100/24 dev eth0
out=$(status 1 --json 2>&1)
check "VIP on this node's eth0: vip.here, interface eth0" \
        jqt '.vip.here == true and .vip.interface == "eth0"' <<<"$out"
check "text: held by this node" eval 'status 1 | grep -q "held by this node (eth0)"'

out=$(timeout 2 ip netns exec "$(hn_ns 1)" "$FIRSTBOOT" -c "$HN_DIR/node1/cluster.yaml" --cmdline "" \
        status --state-dir "$(hn_state 1)" --machine-id-file "$HN_DIR/node1/machine-id" \
        --json --watch --interval 200 2>&1)
check "--json --watch: one compact JSON line per change, each valid" \
        eval '[ "$(wc -l <<<"$out")" -ge 1 ] && jq -e -c .phase <<<"$out" >/dev/null &&
              ! grep -q "^ " <<<"$out"'
check "--interval below 100 ms is refused (exit 2)" eval 'status 1 --watch --interval 5 >/dev/null 2>&1; [ $? -eq 2 ]'
check "no sanitizer report" bash -c '! grep -l "Sanitizer\|runtime error" "$@"' _ "$HN_DIR"/node*/firstboot.log
