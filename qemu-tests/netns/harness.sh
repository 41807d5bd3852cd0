# rainboot netns cluster harness. Source it from a test (bash); it needs root.
#
# One namespace of the harness's own ("hub") holds a bridge; every node is a further
# namespace joined to that bridge by a veth pair, with eth0 = 203.0.113.<10+i>/24
# (documentation range, reachable only inside these namespaces). Nothing touches the
# host's own interfaces. Every namespace and every process started here is removed by
# hn_teardown, which the caller must run on exit (hn_init installs an EXIT trap if the
# caller has none; lib.sh users register it with on_exit).
#
#   hn_init                      create the hub namespace and bridge
#   hn_add_node I                namespace for node I (1-based), veth, address, lo up
#   hn_config I FILE             write node I's cluster.yaml from FILE (default template)
#   hn_start I ARGS...           start `firstboot ... discover ARGS` in node I, background
#   hn_stop I [SIG]              signal node I's firstboot (by PID), wait for it
#   hn_wait_formed TIMEOUT I...  wait until each listed node has written plan.json
#   hn_digest I                  the committed digest of node I
#   hn_exec I CMD...             run a command inside node I's namespace
#   hn_teardown                  stop everything, delete namespaces

HN_ID=${HN_ID:-rb$$}
HN_HUB="${HN_ID}-hub"
HN_DIR=${HN_DIR:-$(mktemp -d "/tmp/rainboot-netns.${HN_ID}.XXXXXX")}
# Documentation range, distinct from anything the host itself uses (its eth0 may sit in
# 192.0.2.0/24); reachable only inside these namespaces.
HN_SUBNET=${HN_SUBNET:-203.0.113}
declare -A HN_PID

hn_ns() { echo "${HN_ID}-n$1"; }
hn_state() { echo "$HN_DIR/node$1/state"; }
hn_log() { echo "$HN_DIR/node$1/firstboot.log"; }

hn_init() {
        ip netns add "$HN_HUB" || return 1
        ip -n "$HN_HUB" link set lo up
        ip -n "$HN_HUB" link add br0 type bridge
        # Multicast snooping off: no querier exists on this private segment, and the
        # bridge must flood discovery datagrams to every port from the first one.
        ip -n "$HN_HUB" link set br0 type bridge mcast_snooping 0
        ip -n "$HN_HUB" link set br0 up
}

hn_add_node() {
        local i=$1 ns
        ns=$(hn_ns "$i")
        mkdir -p "$HN_DIR/node$i/state"
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up
        # As the image's sysctl.d does: haproxy binds the VIP where it is not held.
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_nonlocal_bind=1
        ip -n "$ns" link add eth0 type veth peer name "p$i" netns "$HN_HUB"
        ip -n "$ns" link set eth0 address "52:54:00:00:01:$(printf %02x "$i")"
        ip -n "$ns" addr add "$HN_SUBNET.$((10 + i))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$HN_HUB" link set "p$i" master br0
        ip -n "$HN_HUB" link set "p$i" up
        # A fake machine-id per node: distinct, stable for the test run.
        echo "rainboot-netns-node$i" | md5sum | cut -c1-32 > "$HN_DIR/node$i/machine-id"
}

# hn_config I [EXPECTED] [TOKEN] [EXTRA_YAML]
hn_config() {
        local i=$1 expected=${2:-3} token=${3:-netns-test-token-0123456789}
        cat > "$HN_DIR/node$i/cluster.yaml" <<YAML
cluster:
  name: netns
  token: "$token"
  expected_nodes: $expected
discovery:
  interface: eth0
  settle_ms: ${HN_SETTLE_MS:-800}
  interval_ms: ${HN_INTERVAL_MS:-100}
vip:
  address: $HN_SUBNET.100/24
  interface: eth0
${4:-}
YAML
}

hn_start() {
        local i=$1
        shift
        # Own UTS namespace: each node has its own hostname (node1, node2, ...). Every
        # step execs, so $! is firstboot itself.
        ip netns exec "$(hn_ns "$i")" unshare --uts sh -c 'hostname "$0" && exec "$@"' \
                "node$i" "$FIRSTBOOT" -c "$HN_DIR/node$i/cluster.yaml" --cmdline "" \
                discover --state-dir "$(hn_state "$i")" \
                --machine-id-file "$HN_DIR/node$i/machine-id" "$@" \
                >> "$(hn_log "$i")" 2>&1 &
        HN_PID[$i]=$!
}

hn_running() { [ -n "${HN_PID[$1]:-}" ] && kill -0 "${HN_PID[$1]}" 2>/dev/null; }

hn_stop() {
        local i=$1 sig=${2:-TERM} pid=${HN_PID[$1]:-} n
        [ -n "$pid" ] || return 0
        kill "-$sig" "$pid" 2>/dev/null
        for ((n = 0; n < 100; n++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        unset "HN_PID[$i]"
}

# Bounded wait for plan.json in each listed node's state dir. Returns 1 on timeout.
hn_wait_formed() {
        local timeout=$1 deadline i all
        shift
        deadline=$((SECONDS + timeout))
        while ((SECONDS < deadline)); do
                all=1
                for i in "$@"; do
                        [ -s "$(hn_state "$i")/plan.json" ] || all=0
                done
                ((all)) && return 0
                sleep 0.2
        done
        return 1
}

hn_digest() { jq -r '.digest // empty' "$(hn_state "$1")/plan.json" 2>/dev/null; }
# hn_wire I COUNTER: a drop/accept counter from node I's status.json (0 if absent).
hn_wire() { jq -r --arg c "$2" '.wire[$c] // 0' "$(hn_state "$1")/status.json" 2>/dev/null || echo 0; }
# hn_roles I ID_OF_J: role names node I's plan gives node J (by machine id), one line.
hn_roles() { jq -r --arg id "$2" '.nodes[] | select(.id == $id) | .roles | join(",")' "$(hn_state "$1")/plan.json" 2>/dev/null; }
hn_id() { tr -d '\n' < "$HN_DIR/node$1/machine-id"; }

# hn_write_view FILE N: a view.json of nodes 1..N as hn_add_node made them (ids, hostnames,
# addresses, MACs), for tests that drive `firstboot apply` without running discovery.
hn_write_view() {
        local file=$1 n=$2 i
        {
                echo '{"version": 1, "nodes": ['
                for ((i = 1; i <= n; i++)); do
                        [ "$i" -gt 1 ] && echo ,
                        printf '{"id": "%s", "hostname": "node%d", "addresses": ["%s.%d"], "cpus": 4, "memory_bytes": 8589934592, "nics": [{"mac": "52:54:00:00:01:%02x", "up": true}]}\n' \
                                "$(hn_id "$i")" "$i" "$HN_SUBNET" $((10 + i)) "$i"
                done
                echo ']}'
        } >"$file"
}

hn_exec() {
        local i=$1
        shift
        ip netns exec "$(hn_ns "$i")" "$@"
}

hn_teardown() {
        local i ns f
        for i in "${!HN_PID[@]}"; do
                hn_stop "$i" TERM
        done
        # Daemons that `firstboot apply --supervisor direct` started in the nodes: by the
        # PIDs in their pidfiles.
        for f in "$HN_DIR"/node*/state/run/*.pid; do
                [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
        done
        for ns in $(ip netns list | awk '{print $1}' | grep "^${HN_ID}-"); do
                ip netns delete "$ns" 2>/dev/null
        done
        if [ -n "${HN_KEEP:-}" ]; then
                echo "# harness files kept in $HN_DIR"
        else
                rm -rf "$HN_DIR"
        fi
}
