#!/bin/bash
# MariaDB replication brought up by `firstboot apply --supervisor direct` on 3 nodes
# (network namespaces on a bridge, qemu-tests/netns/harness.sh), each mariadbd with its own
# datadir under the test's directory: a row written on the primary appears on both
# replicas; a write as the Rainbond user on a replica fails (read_only) while the same
# write on the primary succeeds; console/region exist in utf8mb4 everywhere; semi-sync
# and GTID are on; with the pki step's files, replication and the admin account use TLS
# with the certificate checked. Needs root. Every process it starts is killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in mariadbd mariadb mariadb-install-db jq; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done

HN_ID=rbm$$
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown

PW='repl-Pw_0123456789'
RB_PW='rainbond-Pw_9876543210'
SEED=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

hn_init || { not_ok "harness namespaces"; exit 1; }
for i in 1 2 3; do hn_add_node "$i"; done

view=$_tmp/view.json
hn_write_view "$view" 3
for i in 1 2 3; do
        # An external load balancer and registry: keepalived, haproxy and the registry skip,
        # this test is about MariaDB.
        cat >"$HN_DIR/node$i/cluster.yaml" <<YAML
cluster:
  name: netns
  token: "netns-test-token-0123456789"
  expected_nodes: 3
discovery:
  interface: eth0
external:
  load_balancer: {address: $HN_SUBNET.100}
  registry: {domain: "registry.example.com:5000", namespace: rainbond}
YAML
        cp "$view" "$(hn_state "$i")/view.json"
        "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" plan --explain --json \
                --view "$view" >"$(hn_state "$i")/plan.json"
        mkdir -m 0700 -p "$(hn_state "$i")/secrets"
        printf 'join_token=abcdef.0123456789abcdef\nmysql_replication_password=%s\nmysql_rainbond_password=%s\nca_seed=%s\n' \
                "$PW" "$RB_PW" "$SEED" \
                >"$(hn_state "$i")/secrets/cluster.env"
        chmod 0600 "$(hn_state "$i")/secrets/cluster.env"
done

roles() { hn_roles 1 "$(hn_id "$1")"; }
primary=
replicas=()
for i in 1 2 3; do
        case ",$(roles "$i")," in
        *,mysql-primary,*) primary=$i ;;
        *,mysql-replica,*) replicas+=("$i") ;;
        esac
done
check "the plan has one MySQL primary and two replicas ($(roles 1) / $(roles 2) / $(roles 3))" \
        [ -n "$primary" -a "${#replicas[@]}" -eq 2 ]
[ -n "$primary" ] && [ "${#replicas[@]}" -eq 2 ] || exit 1

cnf() { echo "$HN_DIR/node$1/root/etc/mysql/mariadb.conf.d/60-rainboot.cnf"; }
# sql NODE SQL: as root on the node's socket, tab-separated, no headers.
sql() { hn_exec "$1" mariadb --defaults-file="$(cnf "$1")" -N -B -e "$2" 2>&1; }
# as_rainbond NODE SQL: over TCP to the node's address, as the Rainbond user.
as_rainbond() {
        hn_exec "$1" mariadb --no-defaults -h "$HN_SUBNET.$((10 + $1))" -u rainbond -p"$RB_PW" \
                -N -B -e "$2" 2>&1
}
apply() {  # NODE
        hn_exec "$1" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$1/cluster.yaml" apply \
                --state-dir "$(hn_state "$1")" --root "$HN_DIR/node$1/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$1/machine-id" --backoff-ms 500 \
                >>"$HN_DIR/node$1/apply.log" 2>&1
}
mysql_state() { jq -r '.steps[] | select(.name == "mysql") | .state' "$(hn_state "$1")/journal.json" 2>/dev/null; }

for i in "$primary" "${replicas[@]}"; do
        apply "$i"
        st=$(mysql_state "$i")
        check "node$i: the mysql step is done in the journal (state: ${st:-none})" [ "$st" = done ]
        [ "$st" = done ] || { cat "$HN_DIR/node$i/apply.log" >&2; tail -20 "$(hn_state "$i")"/log/mysql.log >&2; exit 1; }
done

ids=$(for i in 1 2 3; do sql "$i" 'SELECT @@server_id'; done | sort -u | wc -l)
check "each server has its own server_id" [ "$ids" -eq 3 ]
check "primary: GTID strict, ROW binlog, semi-sync master, writable" \
        [ "$(sql "$primary" 'SELECT @@gtid_strict_mode, @@binlog_format, @@rpl_semi_sync_master_enabled, @@read_only')" = "$(printf '1\tROW\t1\t0')" ]
for r in "${replicas[@]}"; do
        check "replica node$r: read_only, semi-sync slave, log_slave_updates" \
                [ "$(sql "$r" 'SELECT @@read_only, @@rpl_semi_sync_slave_enabled, @@log_slave_updates')" = "$(printf '1\t1\t1')" ]
done

# Bounded wait: until SQL on NODE prints WANT.
wait_for() {  # TIMEOUT NODE SQL WANT
        local deadline=$((SECONDS + $1)) got
        while ((SECONDS < deadline)); do
                got=$(sql "$2" "$3")
                [ "$got" = "$4" ] && return 0
                sleep 0.2
        done
        echo "node$2: got '$got'" >&2
        return 1
}

check "primary: a row is written" \
        sql "$primary" "CREATE TABLE console.t (id INT PRIMARY KEY, v VARCHAR(32)) CHARACTER SET utf8mb4; INSERT INTO console.t VALUES (1, 'from-primary')"
for r in "${replicas[@]}"; do
        check "replica node$r: the primary's row arrived" \
                wait_for 30 "$r" "SELECT v FROM console.t WHERE id = 1" from-primary
        check "replica node$r: console and region exist in utf8mb4" \
                [ "$(sql "$r" "SELECT GROUP_CONCAT(SCHEMA_NAME, '=', DEFAULT_CHARACTER_SET_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('console', 'region')")" = "console=utf8mb4,region=utf8mb4" ]
        st=$(hn_exec "$r" mariadb --defaults-file="$(cnf "$r")" -e 'SHOW SLAVE STATUS\G' 2>&1)
        check "replica node$r: replication uses GTID (slave_pos)" grep -q "Using_Gtid: Slave_Pos" <<<"$st"
        check "replica node$r: replicates from the primary's address" \
                grep -q "Master_Host: $HN_SUBNET.$((10 + primary))\$" <<<"$st"
        check "replica node$r: replication runs over TLS and checks the primary's certificate" \
                grep -q "Master_SSL_Verify_Server_Cert: Yes" <<<"$st"
        check "replica node$r: ... with the cluster CA from the pki step" \
                grep -q "Master_SSL_CA_File: $HN_DIR/node$r/root/etc/rainboot/pki/ca.crt" <<<"$st"
        pos=$(sql "$primary" 'SELECT @@gtid_binlog_pos')
        check "replica node$r: reaches the primary's GTID position $pos" \
                wait_for 30 "$r" 'SELECT @@gtid_slave_pos' "$pos"
done
check "primary: console and region exist in utf8mb4" \
        [ "$(sql "$primary" "SELECT GROUP_CONCAT(SCHEMA_NAME, '=', DEFAULT_CHARACTER_SET_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('console', 'region')")" = "console=utf8mb4,region=utf8mb4" ]
check "primary: both replicas are semi-sync clients" \
        wait_for 30 "$primary" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'" 2

# TLS: the server offers it with the pki step's certificate; the replication account
# refuses a client without it; the admin account of `firstboot db` uses it.
out=$(hn_exec "${replicas[0]}" mariadb --no-defaults -h "$HN_SUBNET.$((10 + primary))" -u replicator \
        -p"$PW" --skip-ssl -N -B -e 'SELECT 1' 2>&1)
check "the replication account refuses a client without TLS ($out)" grep -q "Access denied" <<<"$out"
out=$(hn_exec "${replicas[0]}" mariadb --defaults-file="$(hn_state "${replicas[0]}")/secrets/mysql-admin.cnf" \
        -h "$HN_SUBNET.$((10 + primary))" -N -B -e "SHOW SESSION STATUS LIKE 'Ssl_version'" 2>&1)
check "the admin account reaches the primary over TLS, certificate checked ($out)" grep -q "TLSv1" <<<"$out"
check "no password of the secrets in the admin client file but the derived one" \
        bash -c "! grep -qe '$PW' -e '$RB_PW' -e '$SEED' '$(hn_state "${replicas[0]}")/secrets/mysql-admin.cnf'"

out=$(as_rainbond "$primary" "INSERT INTO console.t VALUES (2, 'rainbond-on-primary')")
check "the Rainbond user writes on the primary ($out)" [ -z "$out" ]
for r in "${replicas[@]}"; do
        out=$(as_rainbond "$r" "INSERT INTO console.t VALUES (3, 'rainbond-on-replica')" | tail -1)
        check "replica node$r: a write as the Rainbond user is refused: read-only ($out)" \
                grep -q "read-only" <<<"$out"
        check "replica node$r: the Rainbond user's row from the primary arrived" \
                wait_for 30 "$r" "SELECT v FROM console.t WHERE id = 2" rainbond-on-primary
        check "replica node$r: no row 3 anywhere" [ "$(sql "$r" 'SELECT COUNT(*) FROM console.t WHERE id = 3')" = 0 ]
done

# A rerun: the journal (or the check) finds the step done; mariadbd keeps running.
pid=$(cat "$(hn_state "${replicas[0]}")/run/mysql.pid")
apply "${replicas[0]}"
check "rerun on a replica: mysql still done, same mariadbd pid" \
        [ "$(mysql_state "${replicas[0]}")" = done -a "$(cat "$(hn_state "${replicas[0]}")/run/mysql.pid")" = "$pid" ]
check "rerun on a replica: replication still running" \
        wait_for 30 "${replicas[0]}" "SELECT COUNT(*) FROM console.t" 2
