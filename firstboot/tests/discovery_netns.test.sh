#!/bin/bash
# Discovery and formation between real `firstboot discover` processes, each in a network
# namespace of its own on a bridge inside the harness's namespace (qemu-tests/netns).
# Root. Every wait is bounded; every namespace and process is removed on exit.
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../qemu-tests/netns/harness.sh"
: "${MCAST_TOOL:?set by run-tests.sh}"

# Each case gets its own harness (namespaces named after the case).
case_begin() {
        HN_ID="rb$$$1"
        HN_HUB="${HN_ID}-hub"
        HN_DIR=$(mktemp -d "$_tmp/$1.XXXX")
        HN_PID=()
        hn_init
}
# Stop every node (SIGTERM: the clean exit path), then check that no sanitizer spoke.
case_end() {
        local i
        for i in "${!HN_PID[@]}"; do hn_stop "$i" TERM; done
        check "case $HN_ID: clean exits, no sanitizer report" bash -c \
                '! grep -l "Sanitizer\|runtime error" "$@"' _ "$HN_DIR"/node*/firstboot.log
        hn_teardown
}
on_exit 'hn_teardown'
WAIT=${DISCOVERY_WAIT:-40}

same_digest() {  # nodes...: every listed node committed the same non-empty digest
        local first d i
        first=$(hn_digest "$1")
        [ -n "$first" ] || return 1
        for i in "$@"; do
                d=$(hn_digest "$i")
                [ "$d" = "$first" ] || return 1
        done
}

form_n() {  # N: N nodes, expected N, all form with one digest
        local n=$1 i nodes=()
        case_begin "f$n"
        for ((i = 1; i <= n; i++)); do
                hn_add_node "$i" && hn_config "$i" "$n" && nodes+=("$i")
        done
        for i in "${nodes[@]}"; do hn_start "$i"; done
        if hn_wait_formed "$WAIT" "${nodes[@]}"; then
                ok "$n nodes commit a plan"
        else
                not_ok "$n nodes commit a plan within ${WAIT}s"
                for i in "${nodes[@]}"; do tail -3 "$(hn_log "$i")" | sed "s/^/# node$i: /"; done
        fi
        check "$n nodes: identical digests" same_digest "${nodes[@]}"
        check "$n nodes: the plan names all $n" \
                [ "$(jq '.nodes | length' "$(hn_state 1)/plan.json" 2>/dev/null)" = "$n" ]
        check "$n nodes: exactly one bootstrap" \
                [ "$(jq '[.nodes[] | select(.roles | index("bootstrap"))] | length' "$(hn_state 1)/plan.json" 2>/dev/null)" = 1 ]
        check "$n nodes: every node holds the secrets, 0600" bash -c '
                for d in "$@"; do
                        f=$d/secrets/cluster.env
                        [ -s "$f" ] && [ "$(stat -c %a "$f")" = 600 ] || exit 1
                        grep -q "^join_token=[a-z0-9]\{6\}\.[a-z0-9]\{16\}$" "$f" || exit 1
                done
                [ "$(sort -u < <(for d in "$@"; do md5sum < "$d/secrets/cluster.env"; done) | wc -l)" = 1 ]' \
                _ $(for i in "${nodes[@]}"; do hn_state "$i"; done)
        case_end
}

# 1. three nodes; then 5 and 9
form_n 3
form_n 5
form_n 9

# 2. expected 3, only 2 running: never forms; the third makes it form.
case_begin q
for i in 1 2 3; do hn_add_node $i; hn_config $i 3; done
hn_start 1; hn_start 2
if hn_wait_formed 6 1 || hn_wait_formed 1 2; then
        not_ok "2 of 3 nodes formed a plan"
else
        ok "2 of expected 3 nodes do not form in 6 s"
fi
check "2 of 3: no lock taken either" bash -c "! grep -q locked '$(hn_state 1)/formation' 2>/dev/null"
hn_start 3
check "the third node arriving forms the cluster" hn_wait_formed "$WAIT" 1 2 3
check "3 of 3: identical digests" same_digest 1 2 3
case_end

# 3. a node with the wrong token is ignored and learns nothing; replays are dropped.
case_begin w
for i in 1 2 3 4; do hn_add_node $i; done
for i in 1 2 3; do hn_config $i 3; done
hn_config 4 3 "a-different-token-0123456789"
hn_add_node 9  # the spy: no firstboot, only the recorder
"$MCAST_TOOL" record 2>/dev/null  # usage check only
hn_exec 9 "$MCAST_TOOL" record "$HN_SUBNET.19" 239.255.77.77 7788 20 8000 "$HN_DIR/capture" > "$HN_DIR/captured" 2>&1 &
spy=$!
for i in 1 2 3 4; do hn_start $i; done
check "3 right-token nodes form" hn_wait_formed "$WAIT" 1 2 3
wait "$spy"
check "spy captured 20 datagrams" [ "$(cat "$HN_DIR/captured")" = 20 ]
check "plan names 3 nodes, not the wrong-token node" bash -c "
        [ -s '$(hn_state 1)/plan.json' ] && [ \"\$(jq '.nodes | length' '$(hn_state 1)/plan.json')\" = 3 ] &&
        ! jq -r '.nodes[].id' '$(hn_state 1)/plan.json' | grep -q '$(hn_id 4)'"
sleep 1
check "wrong-token node never learns a plan" [ ! -e "$(hn_state 4)/plan.json" ]
check "wrong-token node holds no secrets" [ ! -e "$(hn_state 4)/secrets/cluster.env" ]
check "wrong-token node counted auth drops" [ "$(hn_wire 4 auth)" -gt 0 ]
check "members counted the wrong-token node's datagrams as auth drops" [ "$(hn_wire 1 auth)" -gt 0 ]
check "wrong-token node accepted nothing" [ "$(hn_wire 4 accepted)" = 0 ]
before=$(hn_wire 1 replay)
hn_exec 9 "$MCAST_TOOL" replay "$HN_SUBNET.19" 239.255.77.77 7788 "$HN_DIR/capture" >/dev/null
sleep 1.5
after=$(hn_wire 1 replay)
check "replayed datagrams are dropped as replays ($before -> $after)" [ "$after" -gt "$before" ]
check "replays changed nobody's plan" same_digest 1 2 3
case_end

# 4. a fourth node after formation joins as worker; nobody else's role changes.
case_begin l
for i in 1 2 3 4; do hn_add_node $i; hn_config $i 3; done
for i in 1 2 3; do hn_start $i; done
check "3 nodes form" hn_wait_formed "$WAIT" 1 2 3
declare -A before_roles
for i in 1 2 3; do before_roles[$i]=$(hn_roles 1 "$(hn_id $i)"); done
check "members have roles before the late joiner" bash -c '[ -n "$1" ] && [ -n "$2" ] && [ -n "$3" ]' _ "${before_roles[1]}" "${before_roles[2]}" "${before_roles[3]}"
hn_start 4
deadline=$((SECONDS + WAIT))
while ((SECONDS < deadline)); do
        [ -n "$(hn_roles 4 "$(hn_id 4)")" ] && [ -n "$(hn_roles 1 "$(hn_id 4)")" ] && break
        sleep 0.3
done
check "late joiner is in the plan as worker" [ "$(hn_roles 4 "$(hn_id 4)")" = worker ]
check "members agree on the late joiner's role" [ "$(hn_roles 1 "$(hn_id 4)")" = worker ]
check "plan epoch is 1 after the late joiner" [ "$(jq .epoch "$(hn_state 1)/plan.json")" = 1 ]
for i in 1 2 3; do
        check "node$i keeps its roles (${before_roles[$i]})" [ "$(hn_roles 1 "$(hn_id $i)")" = "${before_roles[$i]}" ]
done
check "late joiner got the secrets" [ -s "$(hn_state 4)/secrets/cluster.env" ]
check "late joiner wrote the members' facts apply needs (view.json: 4 nodes)" \
        [ "$(jq '.nodes | length' "$(hn_state 4)/view.json" 2>/dev/null)" = 4 ]
# The bootstrap node made the secrets; once it is gone, the other holders hand them on.
boot=
for i in 1 2 3; do [[ ,$(hn_roles 1 "$(hn_id $i)"), == *,bootstrap,* ]] && boot=$i; done
check "one of the first three is the bootstrap node (node${boot:-none})" [ -n "$boot" ]
[ -n "$boot" ] && hn_stop "$boot" KILL
hn_add_node 5; hn_config 5 3; hn_start 5
deadline=$((SECONDS + WAIT))
while ((SECONDS < deadline)) && [ ! -s "$(hn_state 5)/secrets/cluster.env" ]; do sleep 0.3; done
check "a joiner after the bootstrap node died still got the secrets" \
        [ -s "$(hn_state 5)/secrets/cluster.env" ]
[ -s "$(hn_state 5)/secrets/cluster.env" ] || tail -20 "$(hn_log 5)" | sed 's/^/# node5: /'
check "... the same secrets" cmp -s "$(hn_state 1)/secrets/cluster.env" "$(hn_state 5)/secrets/cluster.env"
# Its plan names the dead bootstrap node, which it never heard: apply still needs that
# member's facts (addresses), which the live members relay.
view_has_plan() {
        local v=$(hn_state 5)/view.json p=$(hn_state 5)/plan.json
        [ -s "$p" ] && [ -s "$v" ] &&
                [ "$(jq -r '[.nodes[].id] | sort | join(",")' "$p")" = \
                  "$(jq -r '[.nodes[].id] | sort | join(",")' "$v")" ]
}
deadline=$((SECONDS + WAIT))
while ((SECONDS < deadline)) && ! view_has_plan; do sleep 0.3; done
check "the joiner's view.json has every plan member, the dead node$boot too" view_has_plan
[ -n "$boot" ] && check "... with node$boot's address" \
        jq -e --arg id "$(hn_id "$boot")" '.nodes[] | select(.id == $id) | .addresses | length > 0' \
        "$(hn_state 5)/view.json"
case_end

# 5. a node killed before commit: the others wait for the view to settle again.
case_begin k
HN_SETTLE_MS=2500
for i in 1 2 3 4; do hn_add_node $i; hn_config $i 3; done
for i in 1 2 3 4; do hn_start $i; done
# kill node4 once node1 has heard it, inside the settle window (so before any proposal)
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
        [ "$(jq '.peers | length' "$(hn_state 1)/status.json" 2>/dev/null)" = 3 ] && break
        sleep 0.1
done
check "node1 heard all 3 peers before the kill" [ "$(jq '.peers | length' "$(hn_state 1)/status.json" 2>/dev/null)" = 3 ]
hn_stop 4 KILL
check "after the kill, the other 3 commit" hn_wait_formed "$WAIT" 1 2 3
check "the killed node is not in the plan" bash -c "[ -s '$(hn_state 1)/plan.json' ] && ! jq -r '.nodes[].id' '$(hn_state 1)/plan.json' | grep -q '$(hn_id 4)'"
check "3 survivors: identical digests" same_digest 1 2 3
check "survivors logged the expiry" grep -q "expired" "$(hn_log 1)"
HN_SETTLE_MS=
case_end

# stale_lock I: node I's state dir holds a lock (formation.c's saved form) on a plan of
# itself and a node that does not exist.
stale_lock() {
        { printf 'rainboot-formation 1\nstate locked\ndigest %064d\nmembers 2\n' 7
          printf 'member %s\n' "$(hn_id "$1")" "$(printf %032d 9)" | sort; } > "$(hn_state "$1")/formation"
}

# 6. a stale lock blocks formation until the operator releases it with --reset; --reset is
#    refused once the others have committed.
case_begin r
for i in 1 2 3 4; do hn_add_node $i; hn_config $i 3; done
# node1 restarts holding a lock on a plan nobody else will ever propose
stale_lock 1
for i in 1 2 3; do hn_start $i; done
if hn_wait_formed 6 1 2 3; then not_ok "a stale lock did not block formation"; else ok "a stale lock blocks formation"; fi
check "the stale lock is still held" grep -q "state locked" "$(hn_state 1)/formation"
hn_stop 1 TERM
hn_start 1 --reset
check "--reset releases it and the cluster forms" hn_wait_formed "$WAIT" 1 2 3
check "--reset warned" grep -q "warning: lock released by --reset" "$(hn_log 1)"
check "after --reset: identical digests" same_digest 1 2 3
stale_lock 4
hn_start 4 --reset
deadline=$((SECONDS + 15))
while ((SECONDS < deadline)) && ! grep -q "reset refused" "$(hn_log 4)"; do sleep 0.3; done
check "--reset is refused once peers committed" grep -q "reset refused" "$(hn_log 4)"
check "the refused node keeps its lock" grep -q "state locked" "$(hn_state 4)/formation"
case_end

# 7. scripts: --until-formed exits 0 with the plan once all hold the secrets; --timeout
#    exits 1 and says why.
case_begin u
for i in 1 2 3; do hn_add_node $i; hn_config $i 3; done
for i in 1 2 3; do hn_start $i --until-formed --timeout 60 --json; done
rcs=()
for i in 1 2 3; do wait "${HN_PID[$i]}"; rcs+=($?); unset "HN_PID[$i]"; done
check "--until-formed: all three exit 0 (${rcs[*]})" [ "${rcs[*]}" = "0 0 0" ]
check "--until-formed --json prints the plan with its digest" \
        grep -q "\"digest\": \"$(hn_digest 1)\"" "$(hn_log 2)"
hn_add_node 4; hn_add_node 5
hn_config 4 3; hn_config 5 3
hn_start 4 --until-formed --timeout 3
hn_start 5 --until-formed --timeout 3
wait "${HN_PID[4]}"; rc4=$?; unset "HN_PID[4]"
wait "${HN_PID[5]}"; unset "HN_PID[5]"
check "--timeout: 2 of 3 exit 1" [ "$rc4" = 1 ]
check "--timeout says what it saw" grep -q "not formed within 3 s: state discovering, 1 peers heard, expecting 3 nodes" "$(hn_log 4)"
case_end
