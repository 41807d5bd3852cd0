#!/bin/bash
# NIC inventory inside a network namespace of the test's own: kinds, MAC, MTU, addresses,
# default route, operstate and carrier as `firstboot inventory` reports them.
# Needs root (namespaces, one small loop device). The host's interfaces are never touched.
. ./lib.sh
need_root "network namespace and loop device"

ns=rbnics$$
out=$_tmp/inv.json

nsip() { ip -n "$ns" "$@"; }
# Bounded wait for the kernel (linkwatch) to settle a state we just asked for.
wait_for() {
        local i
        for ((i = 0; i < 50; i++)); do
                "$@" && return 0
                sleep 0.1
        done
        return 1
}
has_link_local() { nsip -6 addr show dev "$1" scope link | grep -q 'inet6 fe80::'; }
operstate_is() { [ "$(nsip -j link show dev "$1" | jq -r '.[0].operstate')" = "$2" ]; }

# inventory ARGS...: run firstboot in the namespace, disk probing limited to our loop
# device so the test does not depend on the host's disks.
inventory() {
        ip netns exec "$ns" "$FIRSTBOOT" --cmdline "" inventory "$@" --disk "$disk"
}
# nic NAME FILTER: FILTER (jq, applied to that NIC's object) holds in $out.
nic() {
        jq -e --arg n "$1" ".nics[] | select(.name == \$n) | $2" "$out" >/dev/null
}
jqe() { jq -e "$@" >/dev/null; }
snapshot() { rm -f "$out"; inventory --json "$@" >"$out"; }

setup() {
        mknetns "$ns" || return 1
        # Not $(mkloop ...): in a command substitution subshell its on_exit (the
        # losetup -d) would be registered in the subshell and lost.
        mkloop 16M >"$_tmp/disk" || return 1
        disk=$(<"$_tmp/disk")
        nsip link set lo up || return 1
        nsip link add veth0 type veth peer name veth1 || return 1
        # Kernels built without the dummy driver (CONFIG_DUMMY) get a macvlan instead:
        # also a link kind an operator configures on purpose, so also not "virtual".
        if nsip link add dum0 type dummy 2>/dev/null; then
                dumkind=dummy
        else
                echo "# no dummy driver in this kernel: dum0 is a macvlan on veth low0"
                dumkind=macvlan
                nsip link add low0 type veth peer name low1 || return 1
                nsip link set low1 up && nsip link set low0 up || return 1
                nsip link add dum0 link low0 type macvlan mode bridge || return 1
        fi
        nsip link set dev dum0 address 02:00:00:00:00:10 mtu 1400 || return 1
        nsip link set dum0 up || return 1
        nsip addr add 198.51.100.10/24 dev dum0 || return 1
        nsip -6 addr add 2001:db8::5/64 dev dum0 nodad || return 1
        # veth1 stays down, so veth0 is up without carrier.
        nsip link set veth0 up || return 1
        nsip addr add 203.0.113.5/24 dev veth0 || return 1
        nsip link add br0 type bridge || return 1
        nsip route add default via 198.51.100.1 dev dum0 || return 1
}

if ! setup; then
        not_ok "namespace $ns with veth0/veth1, dum0, br0 set up"
        exit 1
fi
ok "namespace $ns with veth0/veth1, dum0 ($dumkind), br0 set up"
# The kernel adds dum0's IPv6 link-local address once the link is ready.
wait_for has_link_local dum0 || echo "# no IPv6 link-local address on dum0 after 5 s"

check "inventory --json --all runs in the namespace" snapshot --all
check "output is JSON with a nics array" jqe '.nics | type == "array"' "$out"
check "NICs sorted by ifindex" jqe '[.nics[].ifindex] as $i | $i == ($i | sort)' "$out"
check "lo, veth0, veth1, dum0, br0 all listed" \
        jqe '(["lo", "veth0", "veth1", "dum0", "br0"] - [.nics[].name]) == []' "$out"

check "dum0: kind $dumkind" nic dum0 ".kind == \"$dumkind\""
check "dum0: mtu 1400" nic dum0 '.mtu == 1400'
check "dum0: mac 02:00:00:00:00:10" nic dum0 '.mac == "02:00:00:00:00:10"'
check "dum0: 198.51.100.10/24 and 2001:db8::5/64" \
        nic dum0 'any(.addresses[]; . == {family: "inet", cidr: "198.51.100.10/24"}) and
                  any(.addresses[]; . == {family: "inet6", cidr: "2001:db8::5/64"})'
check "dum0: IPv6 link-local address listed too" nic dum0 '[.addresses[].cidr | select(startswith("fe80::"))] | length == 1'
check "dum0: carries the default route" nic dum0 '.default_route == true'
check "dum0: not virtual" nic dum0 '.virtual == false'
check "dum0: not loopback" nic dum0 '.loopback == false'

check "veth0: kind veth" nic veth0 '.kind == "veth"'
check "veth0: virtual" nic veth0 '.virtual == true'
check "veth0: no default route" nic veth0 '.default_route == false'
check "veth0: 203.0.113.5/24" nic veth0 'any(.addresses[]; .cidr == "203.0.113.5/24")'
check "veth0: peer down, so no carrier" nic veth0 '.carrier == false'
check "veth0: peer down, so lowerlayerdown" nic veth0 '.operstate == "lowerlayerdown"'
check "veth0: a 6-byte MAC" nic veth0 '.mac | test("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")'

check "lo: loopback" nic lo '.loopback == true'
check "lo: virtual" nic lo '.virtual == true'
check "lo: no MAC (not Ethernet)" nic lo '.mac == null'
check "lo: 127.0.0.1/8 and ::1/128" nic lo '[.addresses[].cidr] | sort == ["127.0.0.1/8", "::1/128"]'

check "br0: kind bridge" nic br0 '.kind == "bridge"'
check "br0: operstate down" nic br0 '.operstate == "down"'
check "br0: virtual" nic br0 '.virtual == true'

check "inventory --json (no --all) runs" snapshot
check "without --all: dum0 present" nic dum0 '.name == "dum0"'
check "without --all: lo, veth0, veth1, br0 absent" \
        jqe '[.nics[].name | select(IN("lo", "veth0", "veth1", "br0"))] == []' "$out"

inventory --all >"$_tmp/inv.txt" 2>&1
check "text output lists dum0" grep -qw dum0 "$_tmp/inv.txt"
check "text output lists 198.51.100.10/24" grep -qF 198.51.100.10/24 "$_tmp/inv.txt"

# Peer up: veth0 gains carrier and goes up.
nsip link set veth1 up
wait_for operstate_is veth0 UP || echo "# kernel did not report veth0 UP in 5 s"
snapshot --all
check "veth0: peer up, so carrier" nic veth0 '.carrier == true'
check "veth0: peer up, so operstate up" nic veth0 '.operstate == "up"'

nsip link set veth0 down
wait_for operstate_is veth0 DOWN || echo "# kernel did not report veth0 DOWN in 5 s"
snapshot --all
check "veth0: set down, operstate down" nic veth0 '.operstate == "down"'

# Last: taking dum0 down also drops its default route and IPv6 addresses.
nsip link set dum0 down
wait_for operstate_is dum0 DOWN || echo "# kernel did not report dum0 DOWN in 5 s"
snapshot --all
check "dum0: set down, operstate down" nic dum0 '.operstate == "down"'
check "dum0: down, so no default route any more" nic dum0 '.default_route == false'
