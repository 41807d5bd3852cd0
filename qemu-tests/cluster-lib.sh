# rainboot QEMU cluster library (bash; root). Sourced by cluster.sh, e2e.sh and
# bench-cluster.sh.
#
# A cluster lives in one run directory ($CL_DIR) and one network namespace of its own
# ($CL_NS). Inside the namespace: bridge br0 (10.77.0.1/24, default route and DHCP from
# dnsmasq), bridge br1 (10.78.0.1/24, DHCP, no route) and two taps per VM. Nothing is
# attached to the host's interfaces. Each VM boots a copy-on-write overlay of the image's
# qcow2 and gets, through QEMU fw_cfg, its hostname, the run's cluster.yaml and a per-run
# SSH public key (overlays: rainboot-fwcfg.service). Each VM's `firstboot status --json
# --watch` arrives on a virtio-serial port written to $CL_DIR/nodeI.status (one JSON line
# per change); its serial console is a unix socket, logged to $CL_DIR/nodeI.console.
# VMs are stopped by the PID QEMU wrote (-pidfile), never by name.

CL_DIR=${CL_DIR:-build/cluster/run}
CL_SUBNET=10.77.0
CL_SUBNET2=10.78.0
CL_VIP=$CL_SUBNET.100
CL_MEM=${CL_MEM:-2048}
GATEWAY_PORTS="80 443 6060 7070 8443"

cl_log() { echo "cluster: $*" >&2; }
cl_ip() { echo "$CL_SUBNET.$((10 + $1))"; }
cl_pid() { cat "$CL_DIR/node$1.pid" 2>/dev/null; }
cl_running() { local p; p=$(cl_pid "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
cl_nodes() { local f; for f in "$CL_DIR"/node*.pid; do [ -e "$f" ] && basename "$f" .pid | tr -dc 0-9 && echo; done | sort -n; }

# Saved by cl_up so later commands (down, ssh, add) find the same cluster.
cl_load_env() {
        [ -r "$CL_DIR/env" ] || return 1
        # shellcheck disable=SC1091
        . "$CL_DIR/env"
}

# KVM if the image's kernel starts under it within a few seconds, else TCG. Nested KVM
# can hang (here SeaBIOS runs but the boot loader never gets further), so the probe boots
# a throw-away overlay of the real image and waits for "Linux version" on the serial
# console, then kills QEMU by PID. Prints "kvm CPU" or "tcg".
cl_probe_accel() {
        local tmp pid n cpu ok=""
        if [ -n "${ACCEL:-}" ]; then echo "$ACCEL ${KVM_CPU:-host}"; return; fi
        if [ ! -w /dev/kvm ] || [ "$CL_INSTALL" = iso ]; then echo tcg; return; fi
        tmp=$(mktemp -d)
        qemu-img create -q -f qcow2 -F qcow2 -b "$(realpath "$CL_QCOW2")" "$tmp/o.qcow2" || { echo tcg; return; }
        for cpu in host qemu64; do
                : > "$tmp/con"
                qemu-system-x86_64 -accel kvm -cpu "$cpu" -machine q35 -m 512 -display none \
                        -nodefaults -drive "file=$tmp/o.qcow2,if=virtio,snapshot=on" \
                        -serial "file:$tmp/con" >/dev/null 2>&1 &
                pid=$!
                for ((n = 0; n < 60; n++)); do
                        grep -qa "Linux version" "$tmp/con" && { ok=$cpu; break; }
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.25
                done
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                [ -n "$ok" ] && break
        done
        rm -rf "$tmp"
        if [ -n "$ok" ]; then echo "kvm $ok"; else echo tcg; fi
}

cl_net_up() {
        ip netns add "$CL_NS" || return 1
        ip -n "$CL_NS" link set lo up
        local b
        for b in br0 br1; do
                ip -n "$CL_NS" link add "$b" type bridge
                # No multicast querier on this segment: flood discovery to every port.
                ip -n "$CL_NS" link set "$b" type bridge mcast_snooping 0
                ip -n "$CL_NS" link set "$b" up
        done
        ip -n "$CL_NS" addr add "$CL_SUBNET.1/24" dev br0
        ip -n "$CL_NS" addr add "$CL_SUBNET2.1/24" dev br1
        local hosts=() i
        for ((i = 1; i <= 16; i++)); do
                hosts+=("--dhcp-host=52:54:00:77:00:$(printf %02x "$i"),$(cl_ip "$i"),node$i"
                        "--dhcp-host=52:54:00:78:00:$(printf %02x "$i"),$CL_SUBNET2.$((10 + i))")
        done
        ip netns exec "$CL_NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
                --bind-interfaces --interface=br0 --interface=br1 --except-interface=lo \
                --dhcp-range=set:a,$CL_SUBNET.50,$CL_SUBNET.99,255.255.255.0,12h \
                --dhcp-range=set:b,$CL_SUBNET2.50,$CL_SUBNET2.99,255.255.255.0,12h \
                --dhcp-option=tag:a,option:router,$CL_SUBNET.1 --dhcp-option=tag:b,option:router \
                --dhcp-leasefile="$CL_DIR/dnsmasq.leases" --log-facility="$CL_DIR/dnsmasq.log" \
                --log-dhcp "${hosts[@]}" >/dev/null 2>&1 &
        echo $! > "$CL_DIR/dnsmasq.pid"
}

# cl_boot I [ssd]: power on VM I (its disks are made on first use).
cl_boot() {
        local i=$1 ssd=${2:-} mac tap a accel_opts boot_drive
        local d=$CL_DIR
        local install=()
        if [ "$CL_INSTALL" = iso ] && [ ! -e "$d/node$i.installed" ]; then
                # The ISO's "install rainboot to disk" entry, by direct kernel boot (no
                # menu to drive): the installer writes the blank system disk and reboots,
                # which ends this QEMU (-no-reboot); cl_up then boots the disk.
                [ -e "$d/node$i-sys.qcow2" ] || qemu-img create -q -f qcow2 "$d/node$i-sys.qcow2" 8G
                install=(-kernel "$d/vmlinuz" -initrd "$d/initrd.img" -no-reboot
                         -append "boot=live components rainboot.install console=ttyS0,115200"
                         -drive "file=$CL_ISO,if=none,id=cd,media=cdrom,readonly=on"
                         -device ide-cd,drive=cd)
        fi
        # bootindex: SeaBIOS would otherwise try the blank SCSI SSD first.
        [ -e "$d/node$i-sys.qcow2" ] ||
                qemu-img create -q -f qcow2 -F qcow2 -b "$(realpath "$CL_QCOW2")" "$d/node$i-sys.qcow2"
        # Direct kernel boot (the installer) takes boot index 0 itself.
        boot_drive=(-drive "file=$d/node$i-sys.qcow2,if=none,id=sys,format=qcow2"
                    -device "virtio-blk-pci,drive=sys,bootindex=$((${#install[@]} ? 1 : 0))"
                    "${install[@]}")
        [ -e "$d/node$i-data.qcow2" ] || qemu-img create -q -f qcow2 "$d/node$i-data.qcow2" 20G
        local extra=()
        if [ -n "$ssd" ]; then
                [ -e "$d/node$i-ssd.qcow2" ] || qemu-img create -q -f qcow2 "$d/node$i-ssd.qcow2" 10G
                extra+=(-device virtio-scsi-pci,id=scsi0
                        -drive "file=$d/node$i-ssd.qcow2,if=none,id=ssd0,format=qcow2"
                        -device scsi-hd,drive=ssd0,bus=scsi0.0,rotation_rate=1,serial=rainboot-ssd)
        fi
        local nics=()
        for a in a b; do
                tap="t${i}${a}"
                mac="52:54:00:$([ $a = a ] && echo 77 || echo 78):00:$(printf %02x "$i")"
                ip -n "$CL_NS" link del "$tap" 2>/dev/null
                ip -n "$CL_NS" tuntap add dev "$tap" mode tap || return 1
                ip -n "$CL_NS" link set "$tap" master "br$([ $a = a ] && echo 0 || echo 1)"
                ip -n "$CL_NS" link set "$tap" up
                nics+=(-netdev "tap,id=n$a,ifname=$tap,script=no,downscript=no"
                       -device "virtio-net-pci,netdev=n$a,mac=$mac")
        done
        if [ "$CL_ACCEL" = kvm ]; then accel_opts=(-accel kvm -cpu "$CL_KVM_CPU"); else accel_opts=(-accel tcg -cpu max); fi
        # Boot time: no ICH9 devices a headless VM does not use (the kernel probes each,
        # udev loads its driver): SMBus, PS/2, VMware port, and the AHCI controller unless
        # the installer's CD hangs on it.
        # CL_MACHINE overrides (e.g. CL_MACHINE=q35 to compare).
        local machine=q35,smbus=off,i8042=off,vmport=off
        [ ${#install[@]} -gt 0 ] || machine+=,sata=off
        machine=${CL_MACHINE:-$machine}
        echo "node$i" > "$d/node$i.hostname"
        : > "$d/node$i.status"
        date +%s.%N > "$d/node$i.poweron"
        ip netns exec "$CL_NS" qemu-system-x86_64 -name "rainboot-node$i" -machine "$machine" \
                "${accel_opts[@]}" -smp 1 -m "$CL_MEM" -nodefaults -display none -vga none \
                "${boot_drive[@]}" -drive "file=$d/node$i-data.qcow2,if=virtio,format=qcow2" \
                "${extra[@]}" "${nics[@]}" \
                -device virtio-serial-pci \
                -chardev "file,id=st,path=$d/node$i.status" \
                -device virtserialport,chardev=st,name=org.rainboot.status \
                -chardev "socket,id=ser,path=$d/node$i.serial,server=on,wait=off,logfile=$d/node$i.console" \
                -serial chardev:ser \
                -fw_cfg "name=opt/rainboot/hostname,file=$d/node$i.hostname" \
                -fw_cfg "name=opt/rainboot/cluster.yaml,file=$d/cluster.yaml" \
                -fw_cfg "name=opt/rainboot/authorized_keys,file=$d/id_ed25519.pub" \
                -pidfile "$d/node$i.pid" -daemonize 2>"$d/node$i.qemu.log" ||
                { cl_log "node$i: QEMU failed: $(cat "$d/node$i.qemu.log")"; return 1; }
}

# cl_up N: network, keys, config, N VMs (node1 has the SSD).
cl_up() {
        local n=$1 i
        mkdir -p "$CL_DIR"
        CL_DIR=$(realpath "$CL_DIR")
        read -r CL_ACCEL CL_KVM_CPU <<<"$(cl_probe_accel 2>/dev/null)"
        cat > "$CL_DIR/env" <<EOF
CL_NS=$CL_NS
CL_DIR=$CL_DIR
CL_ACCEL=$CL_ACCEL
CL_KVM_CPU=$CL_KVM_CPU
CL_INSTALL=$CL_INSTALL
CL_QCOW2=$(realpath "$CL_QCOW2" 2>/dev/null)
CL_ISO=$(realpath "${CL_ISO:-/nonexistent}" 2>/dev/null)
CL_N=$n
EOF
        rm -f "$CL_DIR/id_ed25519" "$CL_DIR/id_ed25519.pub"
        ssh-keygen -q -t ed25519 -N "" -C "rainboot-cluster-$(date +%s)" -f "$CL_DIR/id_ed25519" || return 1
        cat > "$CL_DIR/cluster.yaml" <<EOF
# Written by qemu-tests/cluster.sh for this run; handed to every VM through fw_cfg.
cluster:
  name: qemu
  token: "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  expected_nodes: $n
discovery:
  interface: auto
vip:
  address: $CL_VIP/24
  interface: auto
  router_id: 51
roles:
  builders: 1
# etcd as its own 3-member cluster (rke2 would embed it); kubeadm itself is not in the
# image's bundle, so the kubernetes step has nothing to install.
kubernetes:
  distribution: kubeadm
EOF
        chmod 600 "$CL_DIR/cluster.yaml"
        cl_net_up || return 1
        cl_log "namespace $CL_NS, $n VMs, accelerator $CL_ACCEL, ${CL_MEM} MiB each, run dir $CL_DIR"
        [ "$CL_INSTALL" = iso ] && { cl_install_all "$n" || return 1; }
        for ((i = 1; i <= n; i++)); do
                cl_boot "$i" $([ "$i" = 1 ] && echo ssd) || return 1
        done
}

# INSTALL=iso: every VM installs itself from the ISO first, all at once, bounded.
cl_install_all() {
        local n=$1 i k left
        xorriso -osirrox on -indev "$CL_ISO" -extract /live/vmlinuz "$CL_DIR/vmlinuz" \
                -extract /live/initrd.img "$CL_DIR/initrd.img" >/dev/null 2>&1 ||
                { cl_log "cannot extract the kernel from $CL_ISO"; return 1; }
        for ((i = 1; i <= n; i++)); do
                cl_boot "$i" $([ "$i" = 1 ] && echo ssd) || return 1
        done
        cl_log "installing from the ISO on $n VMs (bounded by ${INSTALL_TIMEOUT:-1800}s)"
        for ((k = 0; k < ${INSTALL_TIMEOUT:-1800}; k += 5)); do
                left=0
                for ((i = 1; i <= n; i++)); do cl_running "$i" && left=$((left + 1)); done
                ((left == 0)) && break
                sleep 5
        done
        for ((i = 1; i <= n; i++)); do
                cl_running "$i" && { cl_log "node$i: the installer did not finish"; return 1; }
                rm -f "$CL_DIR/node$i.pid"
                mv "$CL_DIR/node$i.console" "$CL_DIR/node$i.install.console"
                touch "$CL_DIR/node$i.installed"
        done
}

# Stop VM I: ACPI would be kinder, but tests want a crash; SIGKILL by PID.
cl_stop() {
        local i=$1 pid n
        pid=$(cl_pid "$i") || return 0
        [ -n "$pid" ] || return 0
        kill -TERM "$pid" 2>/dev/null
        for ((n = 0; n < 50; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        rm -f "$CL_DIR/node$i.pid"
}

cl_down() {
        local i pid
        for i in $(cl_nodes); do cl_stop "$i"; done
        pid=$(cat "$CL_DIR/dnsmasq.pid" 2>/dev/null)
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
        rm -f "$CL_DIR/dnsmasq.pid"
        [ -n "${CL_NS:-}" ] && ip netns delete "$CL_NS" 2>/dev/null
        return 0
}

# The last complete JSON line a node wrote to its status port ("{}" when none yet).
cl_status() {
        local s
        s=$(tail -c 200000 "$CL_DIR/node$1.status" 2>/dev/null | jq -cR 'fromjson? // empty' 2>/dev/null | tail -n 1)
        echo "${s:-{\}}"
}

# ConnectTimeout covers the banner exchange too: a TCG VM busy with its bring-up took
# more than 30 s to answer (e2e: "Connection timed out during banner exchange").
CL_SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
             -o ConnectTimeout=60 -o LogLevel=ERROR -o ServerAliveInterval=10 -o ServerAliveCountMax=6)
# cl_ssh I CMD...: run a command as root on VM I, over SSH from inside the namespace.
# Status 255 is ssh's own failure (no connection): tried again, 3 times at most; callers
# only send commands that are safe to repeat.
cl_ssh() {
        local i=$1 n rc
        shift
        for ((n = 0; n < 3; n++)); do
                timeout 180 ip netns exec "$CL_NS" ssh "${CL_SSH_OPTS[@]}" -i "$CL_DIR/id_ed25519" \
                        "root@$(cl_ip "$i")" "$@"
                rc=$?
                ((rc == 255)) || return "$rc"
                cl_running "$i" || return "$rc"
                sleep 2
        done
        return "$rc"
}
# cl_client CMD...: a command in the namespace (the "client" on the cluster's segment).
cl_client() { ip netns exec "$CL_NS" "$@"; }

# One line per node: name ip phase steps roles vip.
cl_table() {
        local i s
        printf '%-7s %-11s %-12s %-7s %-6s %s\n' NODE ADDRESS PHASE STEPS VIP ROLES
        for i in "$@"; do
                s=$(cl_status "$i")
                printf '%-7s %-11s %-12s %-7s %-6s %s\n' "node$i" "$(cl_ip "$i")" \
                        "$(cl_running "$i" && jq -r '.phase // "booting"' <<<"$s" || echo stopped)" \
                        "$(jq -r '(.steps // []) as $s | "\([$s[] | select(.state == "done" or .state == "skipped")] | length)/\($s | length)"' <<<"$s")" \
                        "$(jq -r 'if .vip.here then "yes" else "-" end' <<<"$s")" \
                        "$(jq -r '(.node.roles // []) | join(",")' <<<"$s")"
                jq -r '.last_error | select(. != null) | "        last error: \(.step): \(.note // "") \(.command // "")"' <<<"$s"
        done
}

# Phase transitions as "seconds-since-power-on node phase" lines, for the bench.
cl_record() {
        local i s ph
        for i in "$@"; do
                s=$(cl_status "$i")
                ph=$(jq -r '.phase // "booting"' <<<"$s")
                if [ "$ph" != "$(cat "$CL_DIR/node$i.phase" 2>/dev/null)" ]; then
                        echo "$ph" > "$CL_DIR/node$i.phase"
                        echo "$(date +%s.%N) node$i $ph" >> "$CL_DIR/events"
                fi
        done
}

# cl_all_ready I...: every listed node ready, all on one plan digest.
cl_all_ready() {
        local i s digests=()
        for i in "$@"; do
                s=$(cl_status "$i")
                [ "$(jq -r '.phase // ""' <<<"$s")" = ready ] || return 1
                digests+=("$(jq -r '.plan.digest // ""' <<<"$s")")
        done
        [ "$(printf '%s\n' "${digests[@]}" | sort -u | wc -l)" -eq 1 ]
}

# cl_wait_ready TIMEOUT I...: live table until ready (0) or timeout (1). Bounded.
cl_wait_ready() {
        local timeout=$1 deadline last="" t
        shift
        deadline=$((SECONDS + timeout))
        while ((SECONDS < deadline)); do
                cl_record "$@"
                t=$(cl_table "$@")
                if [ -t 1 ]; then
                        printf '\033[H\033[2J%s\n\n%ds elapsed (limit %ds)\n' "$t" "$((SECONDS + timeout - deadline))" "$timeout"
                elif [ "$t" != "$last" ]; then
                        printf '%s\n[%ds]\n' "$t" "$((SECONDS + timeout - deadline))"
                fi
                last=$t
                cl_all_ready "$@" && return 0
                sleep 2
        done
        return 1
}

# Which node holds the VIP, by its own report (empty if none says so).
cl_vip_holder() {
        local i
        for i in "$@"; do
                cl_running "$i" || continue
                [ "$(jq -r '.vip.here // false' <<<"$(cl_status "$i")")" = true ] && { echo "$i"; return; }
        done
}
