#!/bin/bash
# rainboot QEMU cluster: `make cluster`, `make cluster-down`, and a shell into a node.
#
#   cluster.sh up [N]        boot N VMs (default 3) in a namespace of their own, show a live
#                            table until the cluster is ready, then how to reach it
#   cluster.sh down          stop exactly the VMs `up` started (by PID), remove the namespace
#   cluster.sh status        the table, once
#   cluster.sh add           boot one more VM (a late joiner)
#   cluster.sh stop I        power off VM I (SIGTERM, then SIGKILL, by PID)
#   cluster.sh ssh I [CMD]   a root shell (or CMD) on VM I, over SSH inside the namespace
#   cluster.sh console I     the serial console of VM I (socat; Ctrl-] leaves)
#   cluster.sh exec CMD...   run CMD inside the namespace (a client on the cluster segment)
#
# Environment: CL_DIR (run directory, default build/cluster/run), CL_QCOW2 / CL_ISO (the
# image), INSTALL=iso (install every VM from the ISO instead of qcow2 overlays), ACCEL
# (kvm|tcg; default: probe), CL_MEM (MiB per VM, default 2048), READY_TIMEOUT (seconds,
# default 1200).
set -u
. "$(dirname "$0")/cluster-lib.sh"

CL_INSTALL=${INSTALL:-qcow2}
CL_QCOW2=${CL_QCOW2:-build/cluster/image-out/rainboot-cluster.qcow2}
CL_ISO=${CL_ISO:-build/cluster/image-out-iso/rainboot-cluster.iso}
READY_TIMEOUT=${READY_TIMEOUT:-1200}

need_root() { [ "$(id -u)" = 0 ] || { cl_log "needs root (network namespace, taps)"; exit 2; }; }

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

summary() {
        local holder
        holder=$(cl_vip_holder $(cl_nodes))
        cat <<EOF

rainboot cluster '$CL_NS' is ready ($CL_ACCEL).
  VIP            $CL_VIP (gateway ports $GATEWAY_PORTS, Kubernetes API 16443)${holder:+, held by node$holder}
  nodes          $(for i in $(cl_nodes); do printf 'node%s=%s ' "$i" "$(cl_ip "$i")"; done)
  shell          qemu-tests/cluster.sh ssh 1          (root, per-run key $CL_DIR/id_ed25519)
  node status    qemu-tests/cluster.sh ssh 1 firstboot status
  serial console qemu-tests/cluster.sh console 1      (socket $CL_DIR/node1.serial, log node1.console)
  client         qemu-tests/cluster.sh exec curl http://$CL_VIP/
  stop           make cluster-down
The cluster is reachable only inside the network namespace (ip netns exec $CL_NS ...).
EOF
}

cmd=${1:-}
shift || true
case "$cmd" in
up)
        need_root
        n=${1:-${N:-3}}
        # The previous run's env only answers "does it still run?": loaded in a subshell,
        # or its CL_INSTALL, CL_ISO, ... would replace this run's.
        if (cl_load_env 2>/dev/null || exit 1
            for i in $(cl_nodes); do cl_running "$i" && exit 0; done
            exit 1); then
                cl_log "a cluster already runs from $CL_DIR: make cluster-down first"
                exit 1
        fi
        rm -rf "$CL_DIR"
        CL_NS=${CL_NS:-rainboot-cluster}
        if ip netns list | grep -qw "^$CL_NS"; then
                cl_log "namespace $CL_NS exists but no VM of ours runs: removing it"
                ip netns delete "$CL_NS"
        fi
        img=$CL_QCOW2
        [ "$CL_INSTALL" = iso ] && img=$CL_ISO
        [ -r "$img" ] || { cl_log "no image at $img (make cluster builds it)"; exit 1; }
        cl_up "$n" || { cl_log "boot failed; cleaning up"; cl_down; exit 1; }
        if cl_wait_ready "$READY_TIMEOUT" $(seq 1 "$n"); then
                summary
        else
                cl_table $(seq 1 "$n")
                cl_log "not ready after ${READY_TIMEOUT}s; the VMs keep running (make cluster-down stops them)."
                cl_log "consoles: $CL_DIR/node*.console; status lines: $CL_DIR/node*.status"
                exit 1
        fi
        ;;
down)
        need_root
        if ! cl_load_env; then cl_log "no cluster in $CL_DIR"; exit 0; fi
        cl_down
        cl_log "stopped the VMs of $CL_DIR and removed namespace $CL_NS"
        ;;
status)
        cl_load_env || { cl_log "no cluster in $CL_DIR"; exit 1; }
        cl_table $(cl_nodes)
        ;;
add)
        need_root
        cl_load_env || { cl_log "no cluster in $CL_DIR"; exit 1; }
        i=$(( $(cl_nodes | tail -n1) + 1 ))
        cl_boot "$i" && cl_log "node$i powered on ($(cl_ip "$i"))"
        ;;
stop)
        need_root
        cl_load_env || exit 1
        cl_stop "${1:?node number}"
        ;;
ssh)
        cl_load_env || exit 1
        i=${1:?node number}
        shift
        if [ $# -eq 0 ]; then
                exec ip netns exec "$CL_NS" ssh -t "${CL_SSH_OPTS[@]}" -i "$CL_DIR/id_ed25519" "root@$(cl_ip "$i")"
        fi
        cl_ssh "$i" "$@"
        ;;
console)
        cl_load_env || exit 1
        exec socat -,raw,echo=0,escape=0x1d "UNIX-CONNECT:$CL_DIR/node${1:?node number}.serial"
        ;;
exec)
        cl_load_env || exit 1
        exec ip netns exec "$CL_NS" "$@"
        ;;
*)
        usage
        [ -z "$cmd" ] || [ "$cmd" = help ] || exit 2
        ;;
esac
