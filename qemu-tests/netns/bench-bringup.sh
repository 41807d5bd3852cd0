#!/bin/bash
# `make bench`, bring-up part: 3 nodes in namespaces run discovery with the shipped
# settings (`firstboot discover --until-formed`: committed plan and sealed secrets), then
# `firstboot apply --supervisor direct` on every node in parallel (real keepalived,
# haproxy, MariaDB, etcd, and whatever further steps this build has). Reported: commit
# time (last discover start -> every plan.json committed), each step's duration per node
# as the journal shows it (journal.json polled every 20 ms; a step's duration runs from
# the previous step's end, or apply's start, to its own done/skipped), apply's total per
# node, and commit -> every node ready. Times from /proc/uptime (monotonic, 10 ms).
# Figures, not assertions. Usage: bench-bringup.sh BUILD_DIR   (root)
set -u
build=$(cd "${1:?build dir}" && pwd)
export FIRSTBOOT=$build/firstboot
here=$(cd "$(dirname "$0")" && pwd)
N=3
[ "$(id -u)" -eq 0 ] || { echo "bench-bringup: needs root" >&2; exit 1; }
for t in keepalived haproxy mariadbd etcd jq; do
        command -v "$t" >/dev/null || { echo "bench-bringup: $t missing (make deps)" >&2; exit 1; }
done
HN_ID=rbbb$$
# Discovery as shipped (settle 1500 ms, interval 250 ms).
HN_SETTLE_MS=1500
HN_INTERVAL_MS=250
. "$here/harness.sh"
trap 'hn_teardown' EXIT
trap 'exit 130' INT TERM
die() { echo "bench-bringup: $*" >&2; exit 1; }
now() { local u _; read -r u _ </proc/uptime; echo "$u"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

hn_init || die "harness namespaces"
for ((i = 1; i <= N; i++)); do
        hn_add_node "$i"
        # kubeadm: etcd is a step of ours (RKE2 would embed its own).
        hn_config "$i" "$N" "" "kubernetes:
  distribution: kubeadm"
done

t_start=
for ((i = 1; i <= N; i++)); do
        hn_start "$i" --until-formed --timeout 120
        t_start=$(now)
done
for ((i = 1; i <= N; i++)); do
        wait "${HN_PID[$i]}" || die "node$i: discovery did not form (see $(hn_log "$i"))"
        unset "HN_PID[$i]"
done
t_formed=$(now)
# plan.json's mtime is wall-clock; convert through the offset between the two clocks.
off=$(awk -v u="$(now)" -v w="$EPOCHREALTIME" 'BEGIN { printf "%.3f", w - u }')
t_commit=$(for ((i = 1; i <= N; i++)); do stat -c %.3Y "$(hn_state "$i")/plan.json"; done |
        sort -n | tail -1 | awk -v o="$off" '{ printf "%.2f", $1 - o }')
for ((i = 1; i <= N; i++)); do
        [ -s "$(hn_state "$i")/secrets/cluster.env" ] || die "node$i: no sealed secrets after formation"
done

# watch NODE APPLY_PID T0: journal transitions to a final state, "step state time" lines.
watch_journal() {
        local i=$1 pid=$2 line name st n
        local j=$(hn_state "$i")/journal.json out=$HN_DIR/node$i/times
        declare -A seen=()
        : >"$out"
        local alive=1
        for ((n = 0; n < 30000 && alive; n++)); do  # 600 s; one last look after apply ends
                kill -0 "$pid" 2>/dev/null || alive=0
                if [ -f "$j" ]; then
                        name=
                        while read -r line; do
                                if [[ $line =~ \"name\":\ *\"([^\"]+)\" ]]; then
                                        name=${BASH_REMATCH[1]}
                                elif [[ $line =~ \"state\":\ *\"(done|skipped|failed)\" ]] &&
                                     [ -n "$name" ] && [ -z "${seen[$name]:-}" ]; then
                                        seen[$name]=1
                                        echo "$name ${BASH_REMATCH[1]} $(now)" >>"$out"
                                fi
                        done <"$j"
                fi
                sleep 0.02
        done
}

declare -A APID T0 T1 RC
for ((i = 1; i <= N; i++)); do
        T0[$i]=$(now)
        # A private TMPDIR: each mariadbd deletes the '#sql*' files in its tmpdir at start,
        # which breaks another node's mariadb-install-db on a shared /tmp.
        mkdir -p "$HN_DIR/node$i/tmp"
        (
                hn_exec "$i" env TMPDIR="$HN_DIR/node$i/tmp" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                        --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" \
                        --supervisor direct --machine-id-file "$HN_DIR/node$i/machine-id" \
                        >"$HN_DIR/node$i/apply.log" 2>&1
                echo "$? $(now)" >"$HN_DIR/node$i/end"
        ) &
        APID[$i]=$!
        watch_journal "$i" "${APID[$i]}" &
        WPID[$i]=$!
done
for ((i = 1; i <= N; i++)); do
        wait "${APID[$i]}"
        wait "${WPID[$i]}"
        read -r RC[$i] T1[$i] <"$HN_DIR/node$i/end" || { RC[$i]=-1; T1[$i]=$(now); }
done

# Table: one row per step (journal order of node 1, then any other), a column per node.
steps=$(for ((i = 1; i <= N; i++)); do jq -r '.steps[].name' "$(hn_state "$i")/journal.json" 2>/dev/null; done |
        awk '!seen[$0]++')
declare -A DUR
for ((i = 1; i <= N; i++)); do
        prev=${T0[$i]}
        while read -r name st t; do
                [ -n "$name" ] || continue
                DUR[$i,$name]=$(sub "$prev" "$t")
                [ "$st" = done ] || DUR[$i,$name]+=" ($st)"
                prev=$t
        done <"$HN_DIR/node$i/times"
done
hdr="| %-42s"
for ((i = 1; i <= N; i++)); do hdr+=" | %-16s"; done
hdr+=" | %-8s |\n"
# shellcheck disable=SC2059
row() { printf "$hdr" "$@"; }
maxof() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -n | tail -1; }
echo
cols=()
for ((i = 1; i <= N; i++)); do cols+=("node$i"); done
row "bring-up (seconds)" "${cols[@]}" max
dash=()
for ((i = 1; i <= N; i++)); do dash+=(---); done
row --- "${dash[@]}" ---
row "discovery: last start -> all committed" $(for ((i = 1; i <= N; i++)); do echo "-"; done) "$(sub "$t_start" "$t_commit")"
row "discovery: last start -> all hold secrets" $(for ((i = 1; i <= N; i++)); do echo "-"; done) "$(sub "$t_start" "$t_formed")"
for s in $steps; do
        vals=()
        for ((i = 1; i <= N; i++)); do vals+=("${DUR[$i,$s]:--}"); done
        row "step $s" "${vals[@]}" "$(for v in "${vals[@]}"; do echo "${v%% *}"; done | maxof)"
done
vals=()
for ((i = 1; i <= N; i++)); do
        v=$(sub "${T0[$i]}" "${T1[$i]}")
        [ "${RC[$i]}" -eq 0 ] || v="$v (exit ${RC[$i]})"
        vals+=("$v")
done
row "apply total" "${vals[@]}" "$(for v in "${vals[@]}"; do echo "${v%% *}"; done | maxof)"
last=$(for ((i = 1; i <= N; i++)); do echo "${T1[$i]}"; done | sort -n | tail -1)
row "plan commit -> all services ready" $(for ((i = 1; i <= N; i++)); do echo "-"; done) "$(sub "$t_commit" "$last")"
for ((i = 1; i <= N; i++)); do
        [ "${RC[$i]}" -eq 0 ] || { echo "node$i: apply failed:"; tail -5 "$HN_DIR/node$i/apply.log"; }
done
