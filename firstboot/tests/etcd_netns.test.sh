#!/bin/bash
# etcd on 3 masters brought up by `firstboot apply --supervisor direct` (network namespaces
# on a bridge, qemu-tests/netns/harness.sh), each member with its own data dir under the
# test's temporary directory: all members healthy, a key written on one member is read
# from each, one member killed by PID -> writes still succeed on the other two and
# endpoint health shows exactly 2 healthy. TLS on both sides with the cluster PKI that the
# pki step derives from the sealed ca_seed: the same ca.crt on every node, each member's
# certificate verified by `openssl verify`, clients without a certificate of the cluster
# CA (or over plain http) refused. Needs root. Everything runs inside namespaces this test creates; every process it
# starts is killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in etcd etcdctl jq openssl curl; do
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
# The seed discovery would seal to every member.
seed=$(openssl rand -hex 32)
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
        mkdir -m 0700 -p "$(hn_state "$i")/secrets"
        printf 'join_token=abcdef.0123456789abcdef\nca_seed=%s\n' "$seed" \
                >"$(hn_state "$i")/secrets/cluster.env"
        chmod 0600 "$(hn_state "$i")/secrets/cluster.env"
done
check "all three nodes are etcd members" \
        [ "$(jq '[.nodes[] | select(.roles | index("etcd"))] | length' "$(hn_state 1)/plan.json")" = 3 ]

# The secrets would also bring up MySQL on its nodes: only the two steps under test run.
apply() {  # NODE
        local i=$1 s
        for s in pki etcd; do
                hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                        --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" \
                        --supervisor direct --machine-id-file "$HN_DIR/node$i/machine-id" \
                        --backoff-ms 200 --only "$s" >>"$HN_DIR/node$i/apply.log" 2>&1 || return 1
        done
}
for i in 1 2 3; do
        apply "$i"
        rc=$?
        check "node$i: firstboot apply exits 0" [ $rc -eq 0 ]
        [ $rc -eq 0 ] || tail -n 30 "$HN_DIR/node$i/apply.log" | sed 's/^/# /'
        for s in pki etcd; do
                check "node$i: journal has $s done" \
                        [ "$(jq -r --arg s "$s" '.steps[] | select(.name == $s) | .state' "$(hn_state "$i")/journal.json")" = done ]
        done
        check "node$i: etcd's data dir is on the services mount under the node's root" \
                [ -d "$HN_DIR/node$i/root/var/lib/rainboot/data/etcd" ]
done
[ -f "$(hn_state 1)/journal.json" ] || { cat "$HN_DIR"/node1/apply.log; exit 1; }

pki() { echo "$HN_DIR/node$1/root/etc/rainboot/pki"; }
for i in 2 3; do
        check "node$i's ca.crt is byte-identical to node1's" cmp -s "$(pki 1)/ca.crt" "$(pki "$i")/ca.crt"
done
for i in 1 2 3; do
        check "node$i: openssl verify accepts etcd.crt against the cluster CA" \
                openssl verify -CAfile "$(pki "$i")/ca.crt" -purpose sslserver "$(pki "$i")/etcd.crt"
        check "node$i: openssl verify accepts etcd.crt as a TLS client too" \
                openssl verify -CAfile "$(pki "$i")/ca.crt" -purpose sslclient "$(pki "$i")/etcd.crt"
        text=$(openssl x509 -in "$(pki "$i")/etcd.crt" -noout -text)
        check "node$i: etcd.crt names node$i, its address, localhost, 127.0.0.1 and the LB" \
                grep -q "DNS:node$i, DNS:localhost, IP Address:$HN_SUBNET.$((10 + i)), IP Address:127.0.0.1, IP Address:$HN_SUBNET.100\$" <<<"$text"
        check "node$i: etcd.key is 0600" [ "$(stat -c %a "$(pki "$i")/etcd.key")" = 600 ]
        check "node$i: the key is the certificate's" [ "$(openssl pkey -in "$(pki "$i")/etcd.key" -pubout)" = "$(openssl x509 -in "$(pki "$i")/etcd.crt" -noout -pubkey)" ]
done
check "the CA is Ed25519, CA:TRUE (critical), keyCertSign + cRLSign" bash -c "
        t=\$(openssl x509 -in '$(pki 1)/ca.crt' -noout -text)
        grep -q 'Public Key Algorithm: ED25519' <<<\"\$t\" &&
        grep -A1 'Basic Constraints: critical' <<<\"\$t\" | grep -q 'CA:TRUE' &&
        grep -A1 'Key Usage: critical' <<<\"\$t\" | grep -q 'Certificate Sign, CRL Sign' &&
        grep -q 'Subject: CN = rainboot cluster CA netns' <<<\"\$t\""
check "node2's etcd.crt does not verify against a CA of another seed" bash -c "
        openssl genpkey -algorithm ed25519 -out '$_tmp/other.key' 2>/dev/null &&
        openssl req -x509 -new -key '$_tmp/other.key' -subj '/CN=rainboot cluster CA netns' -days 1 -out '$_tmp/other.crt' &&
        ! openssl verify -CAfile '$_tmp/other.crt' '$(pki 2)/etcd.crt' >/dev/null 2>&1"

ep() { echo "https://$HN_SUBNET.$((10 + $1)):2379"; }
tls() { local p; p=$(pki "$1"); echo --cacert "$p/ca.crt" --cert "$p/etcd.crt" --key "$p/etcd.key"; }
ctl() {  # NODE ARGS...: etcdctl inside node NODE's namespace against its own member
        local i=$1
        shift
        # shellcheck disable=SC2046
        hn_exec "$i" env ETCDCTL_API=3 etcdctl --endpoints "$(ep "$i")" $(tls "$i") \
                --dial-timeout 2s --command-timeout 5s "$@"
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
check "members advertise https peer and client URLs only" \
        [ "$(ctl 1 member list -w json | jq -r '[.members[] | .peerURLs[], .clientURLs[]] | map(startswith("https://")) | all')" = true ]

# Who gets in: a client certificate of the cluster CA is required, plain http is refused.
check "curl with the cluster CA and node1's etcd certificate: healthy" bash -c \
        "ip netns exec $(hn_ns 1) curl -sS --max-time 5 --cacert '$(pki 1)/ca.crt' --cert '$(pki 1)/etcd.crt' --key '$(pki 1)/etcd.key' $(ep 1)/health | grep -q '\"health\":\"true\"'"
check "curl without a client certificate is refused" bash -c \
        "! ip netns exec $(hn_ns 1) curl -sS --max-time 5 --cacert '$(pki 1)/ca.crt' $(ep 1)/health"
check "a client certificate from another CA is refused" bash -c "
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '$_tmp/rogue.key' \
                -subj /CN=rogue -days 1 -addext extendedKeyUsage=clientAuth -out '$_tmp/rogue.crt' 2>/dev/null &&
        ! ip netns exec $(hn_ns 1) curl -sS --max-time 5 --cacert '$(pki 1)/ca.crt' \
                --cert '$_tmp/rogue.crt' --key '$_tmp/rogue.key' $(ep 1)/health"
check "plain http on the client port is refused" bash -c \
        "! ip netns exec $(hn_ns 1) env ETCDCTL_API=3 etcdctl --endpoints http://$HN_SUBNET.11:2379 --dial-timeout 2s --command-timeout 3s put /rainboot/plain x"
check "the member's loopback listener is TLS too (node1's certificate names 127.0.0.1)" \
        hn_exec 1 env ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:2379 $(tls 1) \
        --dial-timeout 2s --command-timeout 5s endpoint health

# A rerun takes the step from the journal: the member is not restarted.
epid=$(cat "$(hn_state 1)/run/etcd.pid")
apply 1
check "rerun of apply on node1 exits 0" [ $? -eq 0 ]
check "rerun takes etcd from the journal" grep -q "Step etcd: done (journal)" "$HN_DIR/node1/apply.log"
check "rerun takes pki from the journal" grep -q "Step pki: done (journal)" "$HN_DIR/node1/apply.log"
check "rerun issued no certificate again" [ "$(grep -c "Issued .*/etcd.crt" "$HN_DIR/node1/apply.log")" = 1 ]
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
# shellcheck disable=SC2046
h=$(hn_exec 1 env ETCDCTL_API=3 etcdctl --endpoints "$all" $(tls 1) --dial-timeout 2s \
        --command-timeout 5s endpoint health 2>&1)
check "endpoint health over all three: 2 healthy" [ "$(grep -c "is healthy" <<<"$h")" -eq 2 ]
check "endpoint health over all three: node2 unhealthy" grep -q "$(ep 2) is unhealthy" <<<"$h"

