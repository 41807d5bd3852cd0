#!/bin/bash
# `make e2e`: the built cluster image, end to end, as TAP ending in "N passed, N failed".
# Three VMs (node1 with an SSD) in a network namespace of their own form one cluster;
# then, from a client on the cluster segment and over SSH into the VMs: identical plans,
# the SSD VM builds, the VIP answers on the gateway ports, MariaDB replicates a row, the
# registry serves the bundle's image over HTTPS via goodrain.me and the cluster CA, etcd
# has 3 healthy members; the VIP holder's VM is killed: the VIP moves and etcd keeps 2;
# a 4th VM joins as a worker. Every wait is bounded; the VMs and the namespace are
# removed on any exit (E2E_KEEP=1 keeps the run directory with consoles and status logs).
set -u
cd "$(dirname "$0")/.."
. qemu-tests/cluster-lib.sh

CL_DIR=${E2E_DIR:-build/cluster/e2e}
CL_NS=rbe2e-$$
CL_INSTALL=qcow2
CL_QCOW2=${CL_QCOW2:-build/cluster/image-out/rainboot-cluster.qcow2}
READY_TIMEOUT=${READY_TIMEOUT:-1500}
JOIN_TIMEOUT=${JOIN_TIMEOUT:-1200}

T=0 PASS=0 FAIL=0
ok() { T=$((T + 1)) PASS=$((PASS + 1)); echo "ok $T - $1"; }
not_ok() { T=$((T + 1)) FAIL=$((FAIL + 1)); echo "not ok $T - $1"; }
check() {
        local d=$1
        shift
        if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d"; fi
}
diag() { sed 's/^/# /'; }

finish() {
        local rc=$?
        trap - EXIT INT TERM
        ((rc != 0 && rc != 1)) && not_ok "e2e.sh stopped early with status $rc (see above)"
        if ((FAIL)) && [ -d "$CL_DIR" ]; then
                echo "# last status of each node:"
                for i in $(cl_nodes); do echo "node$i: $(cl_status "$i" | cut -c1-600)" | diag; done
        fi
        # The VMs' journals of the bring-up and its services, kept with the consoles.
        if ((FAIL)) && [ -n "${E2E_KEEP:-}" ] && [ -d "$CL_DIR" ]; then
                for i in $(cl_nodes); do
                        cl_running "$i" || continue
                        cl_ssh "$i" journalctl -b --no-pager -o short-monotonic -u rainboot-apply \
                                -u keepalived -u haproxy -u mariadb -u etcd -u docker-registry \
                                -u gw-standin > "$CL_DIR/node$i.journal" 2>&1
                done
        fi
        cl_down
        if [ -n "${E2E_KEEP:-}" ]; then echo "# run directory kept: $CL_DIR"; else rm -rf "$CL_DIR"; fi
        echo "1..$T"
        echo "$PASS passed, $FAIL failed"
        ((FAIL == 0 && rc == 0)) || exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { not_ok "runs as root (network namespace, taps)"; exit 1; }
[ -r "$CL_QCOW2" ] || { not_ok "the cluster image exists ($CL_QCOW2; make e2e builds it)"; exit 1; }
rm -rf "$CL_DIR"
mkdir -p "$CL_DIR"

t0=$SECONDS
# Not in a pipeline: cl_up sets CL_ACCEL and CL_DIR for the rest of the test.
cl_up 3 > "$CL_DIR/up.log" 2>&1
diag < "$CL_DIR/up.log"
check "3 VMs powered on in namespace $CL_NS (2 NICs, system + data disk each, SSD on node1)" \
        eval 'cl_running 1 && cl_running 2 && cl_running 3'
echo "# accelerator: $CL_ACCEL"

if cl_wait_ready "$READY_TIMEOUT" 1 2 3 > "$CL_DIR/wait.log" 2>&1; then
        ok "cluster ready: 3 nodes formed, every bring-up step done or skipped ($((SECONDS - t0)) s)"
else
        not_ok "cluster ready within ${READY_TIMEOUT}s"
        cl_table 1 2 3 | diag
fi
cl_table 1 2 3 | diag
# For `BENCH_FROM=DIR qemu-tests/bench-cluster.sh`: each node's status when it was ready.
for i in 1 2 3; do cl_status "$i" > "$CL_DIR/node$i.final.json"; done

st() { cl_status "$1"; }
digests=$(for i in 1 2 3; do jq -r '.plan.digest // "none"' <<<"$(st "$i")"; done | sort -u)
check "the 3 nodes committed one identical plan of 3 members" \
        eval '[ "$(wc -l <<<"$digests")" -eq 1 ] && [ "$digests" != none ] &&
              [ "$(jq -r ".plan.members" <<<"$(st 1)")" = 3 ]'
roles() { jq -r '(.node.roles // []) | join(",")' <<<"$(st "$1")"; }
has_role() { [[ ",$(roles "$1")," == *",$2,"* ]]; }
check "the SSD VM (node1) is the build node (rbd-chaos): $(roles 1)" has_role 1 rbd-chaos
nodes_with() { local i; for i in 1 2 3; do has_role "$i" "$ROLE" && echo "$i"; done; }

check "SSH into node1 with the per-run key from fw_cfg" cl_ssh 1 true
out=$(cl_ssh 1 firstboot status 2>&1)
check "firstboot status on node1 shows node, roles, peers and steps" \
        eval 'grep -q "^node:  node1" <<<"$out" && grep -q "^peers:" <<<"$out" && grep -q "^steps:" <<<"$out"'
echo "$out" | diag
out=$(cl_ssh 1 cat /dev/vcs1 2>&1 | fold -w 80)
check "the tty1 dashboard shows the same (read from /dev/vcs1)" \
        eval 'grep -q "node:  node1" <<<"$out" && grep -q "steps:" <<<"$out"'

# --- VIP on the gateway ports. The Rainbond gateway cannot run without Kubernetes: each
# gateway node gets a stand-in (haproxy answering its own name on every gateway port), and
# the marker that tells keepalived's track script the gateway is installed.
ROLE=rbd-gateway
gws=$(nodes_with)
for i in $gws; do
        cl_ssh "$i" "cat > /run/gw-standin.cfg <<EOF
defaults
    mode http
    timeout client 10s
    timeout server 10s
    timeout connect 5s
frontend gw
    bind :80
    bind :443
    bind :6060
    bind :7070
    bind :8443
    http-request return status 200 content-type text/plain string node$i
EOF
systemctl is-active -q gw-standin || systemd-run --unit=gw-standin haproxy -db -f /run/gw-standin.cfg
# The marker turns on the track script's gateway-port checks: only once the stand-in
# listens on every port, or keepalived would fault this node while haproxy starts (TCG).
for k in \$(seq 60); do
        ok=1
        for p in $GATEWAY_PORTS; do (exec 3<>/dev/tcp/127.0.0.1/\$p) 2>/dev/null || ok=; done
        [ -n \"\$ok\" ] && break
        sleep 1
done
[ -n \"\$ok\" ] && touch /var/lib/rainboot/gateway-ready" >/dev/null 2>&1
        echo "# gateway stand-in on node$i: $(cl_ssh "$i" 'systemctl is-active gw-standin; ls /var/lib/rainboot/gateway-ready' 2>&1 | tr '\n' ' ')"
done
ask() { cl_client curl -s --max-time 5 "http://$CL_VIP:$1/" 2>/dev/null; }
# Let keepalived see the marker (track script: interval 2 s, rise/fall 2) before asking.
sleep 10
holder=""
for ((k = 0; k < 60; k++)); do holder=$(cl_vip_holder 1 2 3); [ -n "$holder" ] && break; sleep 3; done
check "one node holds the VIP $CL_VIP (node${holder:-none}, gateways: $(echo $gws))" [ -n "$holder" ]
for p in $GATEWAY_PORTS; do
        a=""
        for ((k = 0; k < 10; k++)); do a=$(ask "$p"); [ -n "$a" ] && break; sleep 3; done
        # The holder as its status reports it now (the VIP may have moved since).
        h=$(cl_vip_holder 1 2 3)
        check "a client in the namespace reaches VIP:$p (answered by ${a:-nobody}, VIP holder node${h:-none})" \
                eval '[ -n "$a" ] && [ "$a" = "node$h" ]'
done
check "VIP:16443 (Kubernetes API frontend, haproxy) accepts connections" \
        cl_client timeout 5 bash -c "exec 3<>/dev/tcp/$CL_VIP/16443"

# --- MariaDB: a row written on the primary reaches every replica.
ROLE=mysql-primary
primary=$(nodes_with | head -n1)
ROLE=mysql-replica
replicas=$(nodes_with)
echo "# mysql primary: node${primary:-?}, replicas: $(echo $replicas)"
mark="e2e-$$-$RANDOM"
if [ -n "$primary" ]; then
        cl_ssh "$primary" mysql -e "\"CREATE DATABASE IF NOT EXISTS e2e; CREATE TABLE IF NOT EXISTS e2e.t (id INT PRIMARY KEY, v VARCHAR(64)); REPLACE INTO e2e.t VALUES (1, '$mark')\"" 2>&1 | diag
fi
check "the row was written on the primary (node${primary:-none})" \
        eval '[ -n "$primary" ] && [ "$(cl_ssh "$primary" mysql -N -e "\"SELECT v FROM e2e.t WHERE id = 1\"" 2>/dev/null)" = "$mark" ]'
[ -n "$replicas" ] || not_ok "the plan names MariaDB replicas"
for i in $replicas; do
        got=""
        for ((k = 0; k < 30; k++)); do
                got=$(cl_ssh "$i" mysql -N -e "\"SELECT v FROM e2e.t WHERE id = 1\"" 2>/dev/null)
                [ "$got" = "$mark" ] && break
                sleep 2
        done
        check "the row reached replica node$i" [ "$got" = "$mark" ]
done

# --- Registry: the bundle's image over HTTPS at goodrain.me:5000 (the VIP), trusted
# through the cluster CA only.
check "goodrain.me resolves to the VIP on node1" \
        eval '[ "$(cl_ssh 1 getent hosts goodrain.me | cut -d" " -f1)" = "$CL_VIP" ]'
cl_ssh 1 cat /etc/rainboot/pki/ca.crt > "$CL_DIR/ca.crt" 2>/dev/null
check "node1 has the cluster CA (/etc/rainboot/pki/ca.crt)" \
        eval 'openssl x509 -noout -in "$CL_DIR/ca.crt"'
# The registry wants basic auth (user admin, the cluster secret registry_password); the
# client gets the password like an operator would, from a node's secrets.
regpw=$(cl_ssh 1 sed -n "'s/^registry_password=//p'" /var/lib/rainboot/secrets/cluster.env 2>/dev/null)
(umask 077; printf 'user = "admin:%s"\n' "$regpw" > "$CL_DIR/registry.curlrc")
reg() { cl_client curl -sf --max-time 10 -K "$CL_DIR/registry.curlrc" --cacert "$CL_DIR/ca.crt" --resolve "goodrain.me:5000:$CL_VIP" "https://goodrain.me:5000$1"; }
catalog=$(reg /v2/_catalog 2>/dev/null)
echo "# registry catalog: ${catalog:-none}"
repo=$(jq -r '.repositories[]? | select(test("busybox"))' <<<"$catalog" 2>/dev/null | head -n1)
check "the registry lists the offline image over HTTPS via goodrain.me ($repo)" [ -n "$repo" ]
tag=$(reg "/v2/$repo/tags/list" 2>/dev/null | jq -r '.tags[0] // empty' 2>/dev/null)
check "and serves its manifest ($repo:${tag:-?})" \
        eval '[ -n "$tag" ] && cl_client curl -sf --max-time 10 -K "$CL_DIR/registry.curlrc" --cacert "$CL_DIR/ca.crt" --resolve "goodrain.me:5000:$CL_VIP" \
              -H "Accept: application/vnd.oci.image.manifest.v1+json" -H "Accept: application/vnd.docker.distribution.manifest.v2+json" \
              "https://goodrain.me:5000/v2/$repo/manifests/$tag" -o /dev/null'

# --- etcd: 3 healthy members, then 2 once a VM is gone.
ROLE=etcd
masters=$(nodes_with)
# Asked from the client in the namespace with the etcd client certificate of a master (the
# pki step issues serverAuth + clientAuth), over every member's client URL.
etcd_healthy() {
        local eps="" i
        for i in $masters; do eps+="${eps:+,}https://$(cl_ip "$i"):2379"; done
        ETCDCTL_API=3 cl_client etcdctl --endpoints="$eps" --cacert="$CL_DIR/ca.crt" \
                --cert="$CL_DIR/etcd.crt" --key="$CL_DIR/etcd.key" --dial-timeout=3s \
                --command-timeout=5s endpoint health -w json 2>/dev/null |
                jq '[.[] | select(.health == true)] | length' 2>/dev/null
}
m1=$(head -n1 <<<"$masters")
cl_ssh "${m1:-1}" cat /etc/rainboot/pki/etcd.crt > "$CL_DIR/etcd.crt" 2>/dev/null
cl_ssh "${m1:-1}" cat /etc/rainboot/pki/etcd.key > "$CL_DIR/etcd.key" 2>/dev/null
h=""
for ((k = 0; k < 10; k++)); do h=$(etcd_healthy); [ "$h" = 3 ] && break; sleep 3; done
check "etcd reports 3 healthy members (etcdctl endpoint health from the client: ${h:-none})" [ "$h" = 3 ]

# --- Failover: the VIP holder's VM is killed (SIGKILL by PID, like a power cut).
holder=$(cl_vip_holder 1 2 3)
if [ -n "$holder" ]; then
        tk=$(date +%s.%N)
        cl_stop "$holder"
        moved=""
        for ((k = 0; k < 300; k++)); do
                a=$(cl_client curl -s --max-time 1 "http://$CL_VIP:80/" 2>/dev/null)
                if [ -n "$a" ] && [ "$a" != "node$holder" ]; then moved=$a; break; fi
                sleep 0.1
        done
        took=$(awk -v a="$tk" -v b="$(date +%s.%N)" "BEGIN { printf \"%.1f\", b - a }")
        check "VM node$holder (VIP holder) killed: the VIP answers from $moved (after ${took}s; keepalived master-down is ~0.4 s plus host polling)" [ -n "$moved" ]
else
        not_ok "VIP holder found to kill"
fi
h=""
for ((k = 0; k < 20; k++)); do h=$(etcd_healthy); [ "$h" = 2 ] && break; sleep 3; done
check "etcd reports 2 healthy members of 3 after one VM stopped (${h:-none})" [ "$h" = 2 ]
ok_put=""
for ((k = 0; k < 10; k++)); do
        ETCDCTL_API=3 cl_client etcdctl --endpoints="$(for i in $masters; do cl_running "$i" && printf 'https://%s:2379,' "$(cl_ip "$i")"; done | sed 's/,$//')" \
                --cacert="$CL_DIR/ca.crt" --cert="$CL_DIR/etcd.crt" --key="$CL_DIR/etcd.key" \
                --dial-timeout=3s --command-timeout=5s put e2e "$mark" >/dev/null 2>&1 && { ok_put=1; break; }
        sleep 3
done
check "etcd still takes writes with 2 members" [ -n "$ok_put" ]

# --- A late 4th VM joins as a worker.
cl_boot 4 > "$CL_DIR/boot4.log" 2>&1
diag < "$CL_DIR/boot4.log"
got=""
deadline=$((SECONDS + JOIN_TIMEOUT))
while ((SECONDS < deadline)); do
        s=$(st 4)
        got=$(jq -r '(.node.roles // []) | join(",")' <<<"$s")
        ph=$(jq -r '.phase // ""' <<<"$s")
        [ -n "$got" ] && { [ "$ph" = ready ] || [ "$ph" = failed ]; } && break
        sleep 5
done
check "a 4th VM booted later joined with the role worker only (roles: ${got:-none}, phase ${ph:-none})" [ "$got" = worker ]
check "the 4th VM's bring-up finished (phase ${ph:-none})" [ "$ph" = ready ]
