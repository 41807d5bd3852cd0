#!/bin/bash
# `make bench`, MySQL part: replication lag of the cluster `firstboot apply` brings up (3
# MariaDB servers in namespaces, GTID, semi-sync, TLS from the pki step) under a steady
# insert load on the primary: RATE inserts/s for SECONDS s, one autocommit row each.
# Lag = time from the insert on the primary (NOW(6) in the row) to the row being applied
# on a replica (SYSDATE(6), the real time, not the event's, written by a trigger the
# replica runs for replicated rows: slave_run_triggers_for_rbr), every row on both replicas; one host clock for all.
# Figures, not assertions. Usage: bench-mysql.sh BUILD_DIR   (root)
set -u
build=$(cd "${1:?build dir}" && pwd)
export FIRSTBOOT=$build/firstboot
here=$(cd "$(dirname "$0")" && pwd)
RATE=${RATE:-50}
SECONDS_LOAD=${SECONDS_LOAD:-10}
[ "$(id -u)" -eq 0 ] || { echo "bench-mysql: needs root" >&2; exit 1; }
for t in mariadbd mariadb jq; do
        command -v "$t" >/dev/null || { echo "bench-mysql: $t missing (make deps)" >&2; exit 1; }
done
HN_ID=rbbm$$
. "$here/harness.sh"
trap 'hn_teardown' EXIT
trap 'exit 130' INT TERM

row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
die() { echo "bench-mysql: $*" >&2; exit 1; }

hn_init || die "namespaces"
view=$HN_DIR/view.json
for i in 1 2 3; do hn_add_node "$i" || die "node $i"; done
hn_write_view "$view" 3
for i in 1 2 3; do
        cat >"$HN_DIR/node$i/cluster.yaml" <<YAML
cluster:
  name: bench
  token: "netns-bench-token-0123456789"
  expected_nodes: 3
discovery:
  interface: eth0
external:
  load_balancer: {address: $HN_SUBNET.100}
  registry: {domain: "registry.example.com:5000", namespace: rainbond}
YAML
        cp "$view" "$(hn_state "$i")/view.json"
        "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" plan --explain --json \
                --view "$view" >"$(hn_state "$i")/plan.json" || die "plan"
        mkdir -m 0700 -p "$(hn_state "$i")/secrets"
        printf 'mysql_replication_password=bench-repl-0123456789\nmysql_rainbond_password=bench-rb-0123456789\nca_seed=%s\n' \
                "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$(hn_state "$i")/secrets/cluster.env"
        chmod 0600 "$(hn_state "$i")/secrets/cluster.env"
done
# One ca_seed for all: the CA must be the same on every node.
for i in 2 3; do cp "$(hn_state 1)/secrets/cluster.env" "$(hn_state "$i")/secrets/cluster.env"; done

primary=
replicas=()
for i in 1 2 3; do
        case ",$(hn_roles 1 "$(hn_id "$i")")," in
        *,mysql-primary,*) primary=$i ;;
        *,mysql-replica,*) replicas+=("$i") ;;
        esac
done
[ -n "$primary" ] && [ "${#replicas[@]}" -eq 2 ] || die "no primary and two replicas in the plan"
sql() { hn_exec "$1" mariadb --defaults-file="$HN_DIR/node$1/root/etc/mysql/mariadb.conf.d/60-rainboot.cnf" -N -B -e "$2"; }
for i in "$primary" "${replicas[@]}"; do
        hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$i/machine-id" --backoff-ms 500 \
                >"$HN_DIR/node$i/apply.log" 2>&1
        [ "$(jq -r '.steps[] | select(.name == "mysql") | .state' "$(hn_state "$i")/journal.json")" = done ] ||
                die "node$i: mysql step not done (see $HN_DIR/node$i/apply.log)"
done

sql "$primary" "CREATE TABLE console.lag (id INT PRIMARY KEY, ins DATETIME(6) NOT NULL)" || die "create"
for r in "${replicas[@]}"; do
        for ((n = 0; n < 100; n++)); do
                [ "$(sql "$r" "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'lag'")" = 1 ] && break
                sleep 0.1
        done
        # Local only (not binlogged): a replica may have extra trailing columns under ROW
        # replication, and runs its own triggers for replicated rows with this setting.
        sql "$r" "SET SESSION sql_log_bin = 0;
                  ALTER TABLE console.lag ADD COLUMN seen DATETIME(6);
                  CREATE TRIGGER console.lag_seen BEFORE INSERT ON console.lag FOR EACH ROW SET NEW.seen = SYSDATE(6);
                  SET GLOBAL slave_run_triggers_for_rbr = YES;" || die "node$r: trigger"
done

total=$((RATE * SECONDS_LOAD))
# One client session; statements paced on an absolute schedule so a slow one does not
# lower the rate.
{
        start=${EPOCHREALTIME/./}
        for ((k = 1; k <= total; k++)); do
                echo "INSERT INTO console.lag (id, ins) VALUES ($k, NOW(6));"
                now=${EPOCHREALTIME/./}
                us=$((start + k * 1000000 / RATE - now))
                ((us > 0)) && sleep "$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))"
        done
} | hn_exec "$primary" mariadb --defaults-file="$HN_DIR/node$primary/root/etc/mysql/mariadb.conf.d/60-rainboot.cnf" \
        -N -B 2>"$HN_DIR/load.err" >/dev/null
sql "$primary" 'SELECT 1' >/dev/null
load_s=$(sql "$primary" "SELECT ROUND(TIMESTAMPDIFF(MICROSECOND, MIN(ins), MAX(ins)) / 1e6, 1) FROM console.lag")
for r in "${replicas[@]}"; do
        for ((n = 0; n < 300; n++)); do
                [ "$(sql "$r" 'SELECT COUNT(*) FROM console.lag')" = "$total" ] && break
                sleep 0.1
        done
        sql "$r" "SELECT TIMESTAMPDIFF(MICROSECOND, ins, seen) / 1000 FROM console.lag WHERE seen IS NOT NULL"
done >"$HN_DIR/lags"
got=$(wc -l <"$HN_DIR/lags")
stats=$(sort -n "$HN_DIR/lags" | awk '{ v[NR] = $1 } END {
        if (!NR) { print "- - -"; exit }
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = v[int(NR * 0.95 + 0.999999)]
        printf "%.2f %.2f %.2f", m, p, v[NR] }')
read -r med p95 max <<<"$stats"
echo
row benchmark "median / p95 / max" "" target verdict
row --- --- --- --- ---
row "MySQL replication lag, $RATE inserts/s for ${load_s:-?} s, 2 semi-sync replicas over TLS ($got of $((2 * total)) rows)" \
        "$med / $p95 / $max ms" "" "-" info
echo
