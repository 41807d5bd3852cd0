#!/bin/bash
# etcd on 3 masters brought up by `firstboot apply --supervisor direct` (network namespaces
# on a bridge, qemu-tests/netns/harness.sh), each member with its own data dir under the
# test's temporary directory: all members healthy, a key written on one member is read
# from each, one member killed by PID -> writes still succeed on the other two and
# endpoint health shows exactly 2 healthy. Plain http: the cluster PKI is not written yet.
# Needs root. Everything runs inside namespaces this test creates; every process it
# starts is killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in etcd etcdctl jq; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done

HN_ID=rbe$$
HN_DIR=$_tmp/netns
mkdir -p "$HN_DIR"
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown

hn_init || { not_ok "harness namespaces"; exit 1; }
for i in 1 2 3; do hn_add_node "$i"; done

view=$_tmp/view.json
hn_write_view "$view" 3
for i in 1 2 3; do
        # An external load balancer instead of the VIP: this test is about etcd alone
        # (keepalived and haproxy skip themselves). kubeadm: RKE2 would embed its own etcd.
        cat >"$HN_DIR/node$i/cluster.yaml" <<YAML
cluster:
  name: netns
  token: "netns-test-token-0123456789"
  expected_nodes: 3
discovery:
  interface: eth0
external:
  load_balancer: {address: $HN_SUBNET.100}
kubernetes:
  distribution: kubeadm
YAML
        cp "$view" "$(hn_state "$i")/view.json"
        "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" plan --explain --json \
                --view "$view" >"$(hn_state "$i")/plan.json"
done
check "all three nodes are etcd members" \
        [ "$(jq '[.nodes[] | select(.roles | index("etcd"))] | length' "$(hn_state 1)/plan.json")" = 3 ]

apply() {  # NODE
        local i=$1
        hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$i/machine-id" --backoff-ms 200 \
                >>"$HN_DIR/node$i/apply.log" 2>&1
}
for i in 1 2 3; do
        apply "$i"
        check "node$i: firstboot apply exits 0" [ $? -eq 0 ]
        check "node$i: journal has etcd done" \
                [ "$(jq -r '.steps[] | select(.name == "etcd") | .state' "$(hn_state "$i")/journal.json")" = done ]
        check "node$i: etcd's data dir is on the services mount under the node's root" \
                [ -d "$HN_DIR/node$i/root/var/lib/rainboot/data/etcd" ]
done
[ -f "$(hn_state 1)/journal.json" ] || { cat "$HN_DIR"/node1/apply.log; exit 1; }

ep() { echo "http://$HN_SUBNET.$((10 + $1)):2379"; }
ctl() {  # NODE ARGS...: etcdctl inside node NODE's namespace against its own member
        local i=$1
        shift
        hn_exec "$i" env ETCDCTL_API=3 etcdctl --endpoints "$(ep "$i")" --dial-timeout 2s \
                --command-timeout 5s "$@"
}
# healthy_until TIMEOUT NODE: bounded retries of endpoint health on NODE's member.
healthy_until() {
        local deadline=$((SECONDS + $1))
        while ((SECONDS < deadline)); do
                ctl "$2" endpoint health >/dev/null 2>&1 && return 0
                sleep 0.5
        done
        return 1
}
for i in 1 2 3; do
        healthy_until 60 "$i"
        check "node$i: etcdctl endpoint health is healthy" [ $? -eq 0 ]
done
check "the cluster has 3 members named after the hostnames" \
        [ "$(ctl 1 member list -w json | jq -r '[.members[].name] | sort | join(",")')" = node1,node2,node3 ]

# A rerun takes the step from the journal: the member is not restarted.
epid=$(cat "$(hn_state 1)/run/etcd.pid")
apply 1
check "rerun of apply on node1 exits 0" [ $? -eq 0 ]
check "rerun takes etcd from the journal" grep -q "Step etcd: done (journal)" "$HN_DIR/node1/apply.log"
check "rerun leaves etcd running with the same pid" [ "$(cat "$(hn_state 1)/run/etcd.pid")" = "$epid" ]

ctl 1 put /rainboot/test "hello-$$" >/dev/null
check "put on node1 succeeds" [ $? -eq 0 ]
for i in 1 2 3; do
        v=$(ctl "$i" get --print-value-only /rainboot/test)
        check "node$i reads the key written on node1 ($v)" [ "$v" = "hello-$$" ]
done

# One member dies: kill its PID (the direct supervisor's pidfile).
pid=$(cat "$(hn_state 2)/run/etcd.pid")
kill -KILL "$pid"
for ((n = 0; n < 50; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "node2's etcd is gone" bash -c "! kill -0 $pid 2>/dev/null"
# If node2 led the cluster, the other two first elect a new leader (election timeout
# 1 s, longer on a loaded machine): a write may time out until then. Bounded retry.
ctl_retry() {
        local n
        for ((n = 0; n < 15; n++)); do
                ctl "$@" >/dev/null 2>&1 && return 0
                sleep 1
        done
        return 1
}
check "put on node1 succeeds with node2 down" ctl_retry 1 put /rainboot/after "still-$$"
check "put on node3 succeeds with node2 down" ctl_retry 3 put /rainboot/after3 "also-$$"
v=$(ctl 3 get --print-value-only /rainboot/after)
check "node3 reads the write made on node1 after the failure ($v)" [ "$v" = "still-$$" ]
all="$(ep 1),$(ep 2),$(ep 3)"
h=$(hn_exec 1 env ETCDCTL_API=3 etcdctl --endpoints "$all" --dial-timeout 2s \
        --command-timeout 5s endpoint health 2>&1)
check "endpoint health over all three: 2 healthy" [ "$(grep -c "is healthy" <<<"$h")" -eq 2 ]
check "endpoint health over all three: node2 unhealthy" grep -q "$(ep 2) is unhealthy" <<<"$h"

