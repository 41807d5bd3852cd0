#!/bin/bash
# `make bench-cluster`: power-on to cluster-ready for N VMs (default 3), split by stage, as
# a table. Stages come from the phases each VM reports on its status port (sampled every
# 2 s by the host) and from the step durations in its bring-up journal:
#   boot       power-on until the status port speaks (BIOS, kernel, systemd)
#   discovery  until the node proposes a plan (network, inventory, peers, view stable)
#   formation  until the plan is committed (propose, lock, commit, secrets handed out)
#   <step>     each bring-up step (journal: first attempt to done)
#   bring-up   committed plan until every step is done or skipped
# Runs under the accelerator the probe picks (KVM when it works, else TCG); ACCEL=tcg or
# ACCEL=kvm forces one. Root. Bounded by BENCH_TIMEOUT (default 1800 s).
set -u
cd "$(dirname "$0")/.."
. qemu-tests/cluster-lib.sh

N=${N:-3}
CL_DIR=${BENCH_DIR:-build/cluster/bench}
CL_NS=rbbench-$$
CL_INSTALL=qcow2
CL_QCOW2=${CL_QCOW2:-build/cluster/image-out/rainboot-cluster.qcow2}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}

nodes=$(seq 1 "$N")
ready=yes
if [ -n "${BENCH_FROM:-}" ]; then
        # The table only, from a kept run directory (e.g. E2E_KEEP=1 make e2e).
        CL_DIR=$BENCH_FROM
        cl_load_env || { echo "bench-cluster: no run in $CL_DIR" >&2; exit 1; }
        # The saved env names the directory the run had; the one given wins (moved runs).
        CL_DIR=$BENCH_FROM
        for i in $nodes; do [ -s "$CL_DIR/node$i.final.json" ] || cl_status "$i" > "$CL_DIR/node$i.final.json"; done
        grep -q "ready" "$CL_DIR/events" || ready=no
else
        trap 'cl_down; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$CL_DIR"' EXIT
        trap 'exit 130' INT TERM
        [ "$(id -u)" = 0 ] || { echo "bench-cluster: needs root" >&2; exit 2; }
        rm -rf "$CL_DIR"
        mkdir -p "$CL_DIR"
        cl_up "$N" || exit 1
        cl_wait_ready "$BENCH_TIMEOUT" $nodes > "$CL_DIR/wait.log" 2>&1 || ready=no
        cl_record $nodes
        for i in $nodes; do cl_status "$i" > "$CL_DIR/node$i.final.json"; done
fi

echo
echo "rainboot cluster bring-up, N=$N, $CL_ACCEL, $(nproc) host CPUs (shared), ${CL_MEM} MiB per VM, $(date -u +%Y-%m-%dT%H:%MZ)"
[ "$ready" = yes ] || echo "NOT READY after ${BENCH_TIMEOUT}s: figures below are partial"
# events: "unix-time nodeI phase"; poweron: nodeI.poweron. Phase ranks give the first
# time a node was at or past each stage.
awk -v n="$N" -v dir="$CL_DIR" '
function rank(p) {
        return p == "starting" ? 1 : p == "discovering" ? 2 : p == "agreeing" ? 3 :
               p == "formed" ? 4 : (p == "bringing-up" || p == "failed") ? 5 : p == "ready" ? 6 : 0
}
function at(i, k,   r) { for (r = k; r <= 6; r++) if ((i, r) in first) return first[i, r]; return "" }
function d(a, b) { return (a == "" || b == "") ? "-" : sprintf("%.0f", b - a) }
BEGIN {
        for (i = 1; i <= n; i++) {
                getline t < (dir "/node" i ".poweron"); on[i] = t
                if (min == "" || t < min) min = t
        }
}
{
        i = substr($2, 5) + 0; r = rank($3)
        for (k = 1; k <= r; k++) if (!((i, k) in first)) first[i, k] = $1
}
END {
        printf "%-28s", "stage (seconds)"
        for (i = 1; i <= n; i++) printf " %7s", "node" i
        printf " %8s\n", "cluster"
        split("boot discovery formation", names, " ")
        split("0 1 3 4", ks, " ")
        for (s = 1; s <= 3; s++) {
                printf "%-28s", names[s]
                worst = ""
                for (i = 1; i <= n; i++) {
                        a = s == 1 ? on[i] : at(i, ks[s]); b = at(i, ks[s + 1])
                        v = d(a, b); printf " %7s", v
                        if (v != "-" && (worst == "" || v + 0 > worst + 0)) worst = v
                }
                printf " %8s\n", worst == "" ? "-" : worst
        }
        print "@STEPS"
        for (i = 1; i <= n; i++) { fo[i] = at(i, 4); re[i] = at(i, 6) }
        printf "%-28s", "bring-up (formed to ready)"
        for (i = 1; i <= n; i++) printf " %7s", d(fo[i], re[i])
        print ""
        printf "%-28s", "power-on to ready"
        last = ""
        for (i = 1; i <= n; i++) {
                printf " %7s", d(on[i], re[i])
                if (re[i] == "") bad = 1; else if (last == "" || re[i] > last) last = re[i]
        }
        printf " %8s\n", bad ? "-" : d(min, last)
}' "$CL_DIR/events" > "$CL_DIR/table"
sed '/^@STEPS/,$d' "$CL_DIR/table"
# Per-step durations from each node's journal (what the node measured itself).
steps=$(jq -r '.steps[]?.name' "$CL_DIR/node1.final.json" 2>/dev/null)
for s in $steps; do
        printf '%-28s' "  step $s"
        for i in $nodes; do
                printf ' %7s' "$(jq -r --arg s "$s" '[.steps[]? | select(.name == $s)][0] |
                        if .state == "skipped" then "skip" elif .duration == null then "-" else .duration end' \
                        "$CL_DIR/node$i.final.json" 2>/dev/null)"
        done
        echo
done
sed '1,/^@STEPS/d' "$CL_DIR/table"
echo "target under TCG: power-on to ready under 180 s for N=3"
if [ "$CL_ACCEL" = tcg ]; then
        echo "KVM: not used (the probe found /dev/kvm missing or the kernel not starting under it)"
fi
