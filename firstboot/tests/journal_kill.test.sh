#!/bin/bash
# Crash safety of the bring-up journal: `firstboot apply --supervisor direct` on a node
# holding every role and the sealed secrets (a network namespace, real keepalived,
# haproxy, MariaDB, etcd and whatever further steps this build has), killed with SIGKILL in
# the middle of each step in turn, then run again: it must finish, the journal must show
# every step done (or skipped as in an uninterrupted run), and the end state must be that
# of an uninterrupted run: same rendered files (hashes), each service running exactly once
# with a valid pidfile, MariaDB users and databases not duplicated, no line doubled.
#
# No hook in the product stops it mid-step; three things the test controls do:
#   F  a FIFO where a step's 2nd (3rd, ...) file goes: the step has written the files
#      before it and blocks in open() reading this one back (wchan wait_for_partner);
#   C  every command a step runs by name goes through a PATH shim that blocks, before the
#      command runs, at the first call of one given command line inside one given step
#      (the running step is read from the journal);
#   S  a service's pidfile appears: the daemon runs, the step has not finished (the
#      supervisor's start-up settle time).
# The kill points come from an uninterrupted reference run (its log, its shim calls, its
# pidfiles); the steps from `firstboot plan --steps` and the journal. As a crash of the
# firstboot service would (systemd kills the unit's cgroup), the kill takes apply and the
# command it was running; daemons it started live on, as units would.
# Needs root. Every wait is bounded; every process it starts is killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in keepalived haproxy mariadbd mariadb mariadb-install-db etcd etcdctl jq md5sum; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done

HN_ID=rbj$$
HN_DIR=$_tmp/netns
mkdir -p "$HN_DIR"
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown
on_exit 'kill_node_procs'
# JK_KEEP=DIR: keep the logs and state there for a post-mortem.
[ -n "${JK_KEEP:-}" ] && on_exit 'rm -rf "$JK_KEEP"; cp -a "$HN_DIR" "$JK_KEEP"'

hn_init || { not_ok "harness namespaces"; exit 1; }
for i in 1 2 3; do hn_add_node "$i"; done

# A 3-node plan, of which the test brings up the node that holds every role (etcd
# member, gateway, MySQL primary, registry, bootstrap), with the sealed secrets. Its peers
# stay idle: VRRP and etcd find no peer there, as at a first boot where this node is
# first. (A 1-node plan would be the natural choice, but keepalived refuses the config
# rendered for a lone gateway: unicast_src_ip without any unicast_peer.)
view=$_tmp/view.json
hn_write_view "$view" 3
hn_config 1 3 "" "kubernetes:
  distribution: kubeadm"
"$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node1/cluster.yaml" plan --explain --json --view "$view" \
        >"$_tmp/plan.json" || { not_ok "plan for three nodes"; exit 1; }
roles_of() { jq -r --arg id "$(hn_id "$1")" '.nodes[] | select(.id == $id) | .roles | join(",")' "$_tmp/plan.json"; }
me=
for i in 1 2 3; do
        case ",$(roles_of "$i")," in
        *,mysql-primary,*) [[ ,$(roles_of "$i"), == *,rbd-gateway,* && ,$(roles_of "$i"), == *,etcd,* ]] && me=$i ;;
        esac
done
check "one node is etcd member, gateway and MySQL primary (node${me:-none}: $(roles_of "${me:-1}"))" [ -n "$me" ]
[ -n "$me" ] || exit 1
hn_config "$me" 3 "" "kubernetes:
  distribution: kubeadm"
ns=$(hn_ns "$me")
root=$HN_DIR/node$me/root
state=$(hn_state "$me")
cfg=$HN_DIR/node$me/cluster.yaml
mid=$HN_DIR/node$me/machine-id
VIP=$HN_SUBNET.100
cp "$view" "$state/view.json"
cp "$_tmp/plan.json" "$state/plan.json"
mkdir -m 0700 -p "$state/secrets"
cat >"$state/secrets/cluster.env" <<EOF
join_token=abcdef.0123456789abcdef
cert_key=$(printf '%064x' 7)
mysql_replication_password=repl-Pw_0123456789
mysql_rainbond_password=rb-Pw_9876543210
registry_password=reg-Pw_5555555555
ca_seed=$(printf '%064x' 42)
EOF
chmod 0600 "$state/secrets/cluster.env"
touch "$state/gateway-ready"
pristine=$_tmp/pristine
cp -a "$state" "$pristine"

# Rendered data the services own (databases, etcd data): compared by content queries, not
# by bytes. Every other file under the root is compared byte for byte.
mounts=$("$FIRSTBOOT" --cmdline "" -c "$cfg" config show | awk '$1 ~ /_mount:$/ { print $2 }')

# ---- the PATH shim ----
ctl=$_tmp/ctl
shim=$_tmp/shim
mkdir -p "$ctl" "$shim"
cat >"$shim/.shim" <<'SH'
#!/bin/bash
# Stands in for a command by name; restores the real PATH, so what the command runs in
# turn (and any daemon) is not shimmed.
n=${0##*/}
export PATH=$JK_REALPATH
real=$(type -P "$n") || { echo "shim: $n not found" >&2; exit 127; }
# A daemon being started (its output goes to its log, not to a pipe): exec at once, the
# supervisor checks soon after that the pid runs the daemon.
[ -p /dev/stdout ] || exec "$real" "$@"
step=$(jq -r 'first(.steps[] | select(.state == "running") | .name) // "-"' \
        "$JK_STATE/journal.json" 2>/dev/null)
if [ "${step:--}" != - ]; then
        sig=$(printf '%s\0' "$n" "$@" | md5sum | cut -c1-12)
        printf '%s %s %s\n' "$step" "$sig" "$n $*" >>"$JK_CTL/calls"
        target=$(cat "$JK_CTL/target" 2>/dev/null)
        if [ "$target" = "C $step $sig" ]; then
                echo $$ >"$JK_CTL/reached"
                sleep 120 # until the test kills apply and this shim
                exit 99
        fi
        if [ "${target% *}" = "M $step $sig" ]; then
                # Let the command run for half its usual time, then have it killed.
                "$real" "$@" &
                c=$!
                sleep "${target##* }"
                if kill -0 "$c" 2>/dev/null; then
                        echo $$ >"$JK_CTL/reached"
                else
                        echo $$ >"$JK_CTL/missed"
                fi
                wait "$c"
                exit
        fi
        t0=$EPOCHREALTIME
        "$real" "$@"
        rc=$?
        echo "$step $sig $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')" \
                >>"$JK_CTL/durations"
        exit "$rc"
fi
exec "$real" "$@"
SH
chmod 0755 "$shim/.shim"

# Every command name the steps run, as `firstboot plan --steps` lists them for
# this node (it prints a section per node, headed by the hostname).
plan_out=$("$FIRSTBOOT" --cmdline "" -c "$cfg" plan --steps --view "$state/view.json" \
        --state-dir "$state" --supervisor direct --root "$root" |
        awk -v h="node$me" '/^[^ ]/ { mine = ($1 == h) } mine')
steps=$(awk '$1 == "step" { sub(/:$/, "", $2); print $2 }' <<<"$plan_out")
for name in $(awk '$1 == "run" { print $2 }' <<<"$plan_out" | sed 's,.*/,,' | sort -u); do
        [ -e "$shim/$name" ] || ln -s .shim "$shim/$name"
done
echo "# steps (plan --steps): $(echo $steps)"

apply_pid=
# apply_bg LOG: start apply in the node's namespace, in the background; $apply_pid.
# TMPDIR: a private one. Every mariadbd deletes the '#sql*' files in its tmpdir when it
# starts: with the /tmp of a host shared by several tests' servers, one's start breaks
# another's mariadb-install-db (an artifact of the harness: one server per appliance).
mkdir -p "$_tmp/tmp"
apply_bg() {
        ip netns exec "$ns" env PATH="$shim:$PATH" JK_REALPATH="$PATH" JK_CTL="$ctl" \
                JK_STATE="$state" TMPDIR="$_tmp/tmp" "$FIRSTBOOT" --cmdline "" -c "$cfg" apply \
                --state-dir "$state" --root "$root" --supervisor direct \
                --machine-id-file "$mid" --backoff-ms 200 >>"$1" 2>&1 &
        apply_pid=$!
}
# apply_fg LOG: run apply to its end (bounded); its exit status.
apply_fg() {
        local n
        apply_bg "$1"
        for ((n = 0; n < 3000; n++)); do  # 300 s
                kill -0 "$apply_pid" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$apply_pid" 2>/dev/null; then
                echo "# apply did not finish in 300 s" >&2
                kill_tree "$apply_pid"
        fi
        wait "$apply_pid"
}
descendants() {
        local c
        for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
                echo "$c"
                descendants "$c"
        done
}
# kill_tree PID: the process and what it is running (not the daemons: re-parented), as
# systemd kills a unit's cgroup. Stopped first, so that nothing forks in between.
kill_tree() {
        local p=$1 all= prev=x n
        for ((n = 0; n < 10; n++)); do
                [ "$all" = "$prev" ] && break
                prev=$all
                all=$(echo "$p" $(descendants "$p") | tr ' ' '\n' | sort -u | tr '\n' ' ')
                kill -STOP $all 2>/dev/null
        done
        kill -KILL $all 2>/dev/null
        wait "$p" 2>/dev/null
        apply_rc=$?
}
# Processes of this node: their command line names the node's directory.
node_procs() {
        grep -lsaF -- "$HN_DIR/node$me/" /proc/[0-9]*/cmdline | awk -F/ -v self=$$ '$3 != self { print $3 }'
}
kill_node_procs() {
        local p
        for p in $(node_procs); do kill -KILL "$p" 2>/dev/null; done
}
# reset: stop every daemon of the node (by PID), drop the VIP, start from the plan again.
reset_node() {
        local n
        kill_node_procs
        for ((n = 0; n < 50; n++)); do [ -z "$(node_procs)" ] && break; sleep 0.1; done
        ip -n "$ns" addr del "$VIP/24" dev eth0 2>/dev/null
        rm -rf "$root" "$state" "$ctl"/*
        cp -a "$pristine" "$state"
}

# ---- the end state ----
# snapshot DIR: what must match an uninterrupted run.
snapshot() {
        local d=$1 f ex=() m p exe
        mkdir -p "$d"
        for m in $mounts; do ex+=(-path "$root$m" -prune -o); done
        # Files: every file under the root but the service data; the state directory's own
        # files but the journal, logs and pidfiles (compared below).
        {
                [ -d "$root" ] && find "$root" "${ex[@]}" -path "$root/run" -prune -o \
                        \( -type f -o -type l \) -printf '%P %m\n'
                find "$state" \( -path "$state/log" -o -path "$state/run" -o -name journal.json \) \
                        -prune -o \( -type f -o -type l \) -printf 'STATE/%P %m\n'
        } | sort >"$d/files"
        : >"$d/hashes"
        : >"$d/duplines"
        while read -r f m; do
                p=$root/$f
                [[ $f == STATE/* ]] && p=$state/${f#STATE/}
                echo "$f $m $(md5sum <"$p" | cut -c1-32)" >>"$d/hashes"
                echo "$f $(grep -v '^[[:space:]]*\(#.*\)\?$' "$p" 2>/dev/null | sort | uniq -d | wc -l)" \
                        >>"$d/duplines"
        done <"$d/files"
        jq -r '.steps[] | "\(.name) \(.state)"' "$state/journal.json" 2>/dev/null | sort >"$d/journal"
        # Services: each pidfile names a live process; the node's processes by program.
        : >"$d/pidfiles"
        for p in "$state"/run/*.pid; do
                [ -f "$p" ] || continue
                exe=$(readlink "/proc/$(cat "$p")/exe" 2>/dev/null)
                echo "${p##*/} ${exe:-DEAD}" >>"$d/pidfiles"
        done
        sort -o "$d/pidfiles" "$d/pidfiles"
        for p in $(node_procs); do
                readlink "/proc/$p/exe" 2>/dev/null
        done | sort | uniq -c >"$d/procs"
        # MariaDB: users and databases, when the step ran.
        local cnf
        cnf=$(find "$root/etc/mysql" -name '60-rainboot.cnf' 2>/dev/null | head -1)
        if [ -n "$cnf" ]; then
                ip netns exec "$ns" mariadb --defaults-file="$cnf" -N -B -e \
                        "SELECT CONCAT('user ', user, '@', host) FROM mysql.user ORDER BY 1;
                         SELECT CONCAT('db ', schema_name) FROM information_schema.schemata ORDER BY 1;" \
                        >"$d/mysql" 2>&1
        fi
        if [ -f "$state/run/etcd.pid" ]; then
                # The membership this member bootstrapped from its data: only this one of
                # the plan's three etcd members runs here, and etcd serves no client before
                # a quorum has seen it publish itself, so etcdctl cannot be asked. A second
                # bootstrap (a new cluster id) or a re-added member shows up as more lines.
                grep -o 'added member [0-9a-f]* \[[^]]*\] to cluster [0-9a-f]*' \
                        "$state/log/etcd.log" 2>/dev/null | sort -u >"$d/etcd"
        fi
}

# ---- two uninterrupted reference runs ----
# Two, so that a file a step renders differently on every run (a fresh key, a timestamp)
# is known as such and compared by its presence and mode only.
ref=$_tmp/ref
for run in a b; do
        reset_node
        apply_fg "$HN_DIR/ref-$run.log"
        rc=$?
        check "reference run $run: apply exits 0" [ "$rc" -eq 0 ]
        [ "$rc" -eq 0 ] || { tail -40 "$HN_DIR/ref-$run.log" | sed 's/^/# /'; exit 1; }
        cp "$ctl/calls" "$_tmp/calls-$run" 2>/dev/null || : >"$_tmp/calls-$run"
        cp "$ctl/durations" "$_tmp/durations-$run" 2>/dev/null || : >"$_tmp/durations-$run"
        ls "$state/run" >"$_tmp/pidfiles-$run"
        snapshot "$ref-$run"
done
jsteps=$(jq -r '.steps[].name' "$state/journal.json")
check "the journal lists the steps plan --steps lists ($(echo $jsteps))" \
        [ "$(sort <<<"$jsteps")" = "$(sort <<<"$steps")" ]
check "the reference run's etcd bootstrapped its three members over https" \
        [ "$(grep -c '^added member .* \[https://' "$ref-a/etcd")" -eq 3 ]
check "every step is done or skipped in the reference run" \
        bash -c "! grep -qv ' \(done\|skipped\)\$' '$ref-a/journal'"
check "two uninterrupted runs end with the same journal states, services and databases" \
        bash -c "cmp -s '$ref-a/journal' '$ref-b/journal' && cmp -s '$ref-a/procs' '$ref-b/procs' &&
                 cmp -s '$ref-a/pidfiles' '$ref-b/pidfiles' &&
                 cmp -s '$ref-a/files' '$ref-b/files' && { [ ! -e '$ref-a/mysql' ] ||
                 cmp -s '$ref-a/mysql' '$ref-b/mysql'; }"
volatile=$(join <(sort "$ref-a/hashes" | awk '{ print $1, $3 }') \
                <(sort "$ref-b/hashes" | awk '{ print $1, $3 }') | awk '$2 != $3 { print $1 }')
[ -n "$volatile" ] && echo "# rendered differently on every run (presence and mode compared): $(echo $volatile)"
# comparable SNAPSHOT_DIR: hashes with the volatile files' hash blanked.
comparable() {
        local v
        awk -v vol="$(echo $volatile)" 'BEGIN { n = split(vol, a, " "); for (i = 1; i <= n; i++) skip[a[i]] = 1 }
                { if ($1 in skip) $3 = "-"; print }' "$1/hashes"
}
cat "$ref-a/procs" | sed 's/^/# service process: /'
[ -e "$ref-a/mysql" ] && check "reference: MariaDB has the rainbond user and the console and region databases" \
        bash -c "grep -q '^user rainbond@%' '$ref-a/mysql' && grep -q '^db console' '$ref-a/mysql' && grep -q '^db region' '$ref-a/mysql'"

# ---- kill points ----
# F: from the reference log, the files each step wrote after its first one.
points=()
cur=
while read -r line; do
        if [[ $line =~ Step\ ([^:]+):\ applying ]]; then
                cur=${BASH_REMATCH[1]}
                nfile=0
        elif [[ $line =~ Step\ [^:]+:\ (done|skipped) ]]; then
                cur=
        elif [ -n "$cur" ] && [[ $line =~ Wrote\ (/.*)$ ]]; then
                nfile=$((nfile + 1))
                ((nfile >= 2)) && points+=("F $cur ${BASH_REMATCH[1]}")
        fi
done <"$HN_DIR/ref-a.log"
# C: the first call of each distinct command line inside each step, in both reference runs.
while read -r st sig; do
        points+=("C $st $sig")
done < <(awk '!seen[$1 " " $2]++ { print $1, $2 }' "$_tmp/calls-a" |
         grep -Fx -f <(awk '{ print $1, $2 }' "$_tmp/calls-b"))
# M: in the middle of each command that took a while (0.5 s or more) in the reference.
while read -r st sig half; do
        points+=("M $st $sig $half")
done < <(awk '$3 >= 0.5 && !seen[$1 " " $2]++ { printf "%s %s %.2f\n", $1, $2, $3 / 2 }' \
         "$_tmp/durations-a" 2>/dev/null)
# S: each service's pidfile, under the step that starts it.
svc_step=$(awk '$1 == "step" { s = $2; sub(/:$/, "", s) } $1 == "service" { sub(/:$/, "", $2); print s, $2 }' <<<"$plan_out")
while read -r st name; do
        [ -n "$name" ] && grep -qx "$name.pid" "$_tmp/pidfiles-a" && points+=("S $st $name")
done <<<"$svc_step"

# J: the journal shows the step running (for a step that offers none of the above).
order=$(sed -n 's/.*Step \([^:]*\): applying.*/\1/p' "$HN_DIR/ref-a.log" | awk '!seen[$0]++')
for st in $order; do points+=("J $st -"); done

# wait_point KIND STEP ARG: bounded wait until apply is at the point: 0 there, 1 apply
# ended first, 2 a command ended before its midpoint.
wait_point() {
        local kind=$1 st=$2 arg=$3 n
        for ((n = 0; n < 12000; n++)); do  # 120 s at 10 ms
                kill -0 "$apply_pid" 2>/dev/null || return 1
                case $kind in
                F) [ "$(cat "/proc/$apply_pid/wchan" 2>/dev/null)" = wait_for_partner ] && return 0 ;;
                C | M) [ -s "$ctl/reached" ] && return 0
                       [ -s "$ctl/missed" ] && return 2 ;;
                S) [ -e "$state/run/$arg.pid" ] && return 0 ;;
                J) [ "$(step_state "$st")" = running ] && return 0 ;;
                esac
                sleep 0.01
        done
        return 1
}
step_state() { jq -r --arg s "$1" '.steps[] | select(.name == $s) | .state' "$state/journal.json" 2>/dev/null; }
label() {  # POINT: for the TAP lines
        local kind st arg
        read -r kind st arg <<<"$1"
        case $kind in
        C | M) echo "$kind $st \`$(awk -v s="$st" -v g="${arg%% *}" '$1 == s && $2 == g { $1 = $2 = ""; print substr($0, 3); exit }' "$_tmp/calls-a" |
                   sed "s,$HN_DIR/node$me/,,g" | cut -c1-80)\`$([ "$kind" = M ] && echo " after ${arg#* } s")" ;;
        *) echo "$kind $st $(basename "$arg")" ;;
        esac
}

# Chains: a fresh bring-up killed once in every step, in the order the steps run, each
# rerun resuming and killed in the next step; the last rerun must finish with the end
# state of the reference. Chain 1 kills each step at its deepest point (the service
# started, else its last command, else a file, else the journal); the next chains take
# each step's other points (the middle of long commands first) while the time budget
# lasts (each chain is a full bring-up, and this machine may be slow).
declare -A PLIST
for st in $order; do
        best=
        for kind in S C F J; do
                for p in "${points[@]}"; do
                        [ "$(cut -d' ' -f1-2 <<<"$p")" = "$kind $st" ] && best=$p
                done
                [ -n "$best" ] && break
        done
        list=$best
        for kind in M F C S J; do
                for p in "${points[@]}"; do
                        [ "$(cut -d' ' -f1-2 <<<"$p")" = "$kind $st" ] && [ "$p" != "$best" ] &&
                                list+=$'\n'$p
                done
        done
        PLIST[$st]=$list
done
nchains=0
for st in $order; do
        n=$(grep -c . <<<"${PLIST[$st]}")
        check "step $st has kill points ($n)" [ "$n" -gt 0 ]
        ((n > nchains)) && nchains=$n
done
BUDGET=${JK_BUDGET:-120}  # seconds for chains after the first (chain 1 always runs)

# interrupt POINT LOG: arm, start apply, kill it at the point; sets $got (step state).
# 0 killed mid-step, 1 apply ended before the point, 2 too late (timing kinds).
interrupt() {
        local kind st arg rc rel
        read -r kind st arg <<<"$1"
        case $kind in
        F) rel=${arg#"$root"/}
           [[ $arg == "$state"/* ]] && rel=STATE/${arg#"$state"/}
           mkdir -p "$(dirname "$arg")"
           mkfifo -m "$(awk -v f="$rel" '$1 == f { print $2 }' "$ref-a/hashes")" "$arg" ;;
        C | M) echo "$kind $st $arg" >"$ctl/target" ;;
        esac
        apply_bg "$2"
        wait_point "$kind" "$st" "$arg"
        rc=$?
        kill_tree "$apply_pid"
        [ -s "$ctl/reached" ] && kill -KILL "$(cat "$ctl/reached")" 2>/dev/null
        got=$(step_state "$st")
        # What the kill left behind is the crash state; the test's scaffolding goes.
        rm -f "$ctl/target" "$ctl/reached" "$ctl/missed"
        [ "$kind" = F ] && [ -p "$arg" ] && rm -f "$arg"
        [ "$rc" -ne 0 ] && return "$rc"
        [ "$got" = running ] && return 0
        return 2
}

k=0
for ((c = 1; c <= nchains; c++)); do
        if ((c > 1 && SECONDS > BUDGET)); then
                echo "# chains $c..$nchains not run: time budget of ${BUDGET} s spent (JK_BUDGET)"
                break
        fi
        chain=()
        for st in $order; do
                p=$(sed -n "${c}p" <<<"${PLIST[$st]}")
                [ -n "$p" ] || continue
                [ -n "${JK_KINDS:-}" ] && [[ $JK_KINDS != *"${p%% *}"* ]] && continue
                chain+=("$p")
        done
        ((${#chain[@]})) || continue
        reset_node
        log=$HN_DIR/chain-$c.log
        echo "# chain $c: ${#chain[@]} kills"
        for p in "${chain[@]}"; do
                k=$((k + 1))
                what=$(label "$p")
                interrupt "$p" "$log"
                case $? in
                0) ok "[$c.$k] $what: apply killed with the step running" ;;
                1) # A file written without being read back, or a step too quick to see
                   # running, cannot be stopped at; apply then ran to its end.
                   if [ "$apply_rc" -ne 0 ]; then
                           not_ok "[$c.$k] $what: the rerun after the previous kill failed (exit $apply_rc)"
                           tail -8 "$log" | sed 's/^/# /'
                   elif [ "${p%% *}" = F ] || [ "${p%% *}" = J ]; then
                           ok "[$c.$k] $what # SKIP apply went past it: the step does not read this file back, or was too quick"
                   else
                           not_ok "[$c.$k] $what: apply reached the kill point"
                           tail -5 "$log" | sed 's/^/# /'
                   fi
                   break ;;
                2) ok "[$c.$k] $what # SKIP the kill came too late (step: ${got:-none}; loaded machine?)" ;;
                esac
        done

        apply_fg "$log"
        rc=$?
        check "chain $c: the last rerun exits 0" [ "$rc" -eq 0 ]
        [ "$rc" -eq 0 ] || tail -15 "$log" | sed 's/^/# /'
        snap=$_tmp/chain-$c
        snapshot "$snap"
        check "chain $c: journal: every step as in the uninterrupted run" cmp -s "$ref-a/journal" "$snap/journal"
        check "chain $c: same rendered files, same hashes" \
                cmp -s <(comparable "$ref-a") <(comparable "$snap")
        cmp -s <(comparable "$ref-a") <(comparable "$snap") ||
                diff <(comparable "$ref-a") <(comparable "$snap") | head -8 | sed 's/^/# /'
        check "chain $c: no line doubled in any file" cmp -s "$ref-a/duplines" "$snap/duplines"
        check "chain $c: pidfiles valid, each service once (no duplicate daemon)" \
                bash -c "cmp -s '$ref-a/pidfiles' '$snap/pidfiles' && cmp -s '$ref-a/procs' '$snap/procs'"
        cmp -s "$ref-a/procs" "$snap/procs" || diff "$ref-a/procs" "$snap/procs" | sed 's/^/# /'
        if [ -e "$ref-a/mysql" ]; then
                check "chain $c: MariaDB users and databases as in the uninterrupted run" \
                        cmp -s "$ref-a/mysql" "$snap/mysql"
        fi
        if [ -e "$ref-a/etcd" ]; then
                check "chain $c: etcd has the same members and cluster id" cmp -s "$ref-a/etcd" "$snap/etcd"
        fi
done
echo "# $k kills in $((c - 1)) chains over the steps: $(echo $order)"
