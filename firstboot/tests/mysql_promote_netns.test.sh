#!/bin/bash
# `firstboot db status|promote` and the mysql-external step, with real MariaDB servers in
# network namespaces (qemu-tests/netns/harness.sh), TLS from the pki step.
#  - external.mysql: a standalone mariadbd in node 4 plays the external server; the
#    mysql-external step of a one-node cluster creates console/region there in utf8mb4;
#    a wrong password fails with the host, port and the server's message, no password.
#  - 3 nodes brought up by `firstboot apply --supervisor direct`; rows written on the
#    primary reach both replicas, a replica refuses the Rainbond user's write.
#  - promote is refused while the primary answers, and when only this node (cut off from
#    the primary by a route) says the primary is gone while the other replica still
#    replicates from it (no quorum); nothing changes then.
#  - replica C stopped, more rows on the primary (only B has them), the primary's
#    mariadbd killed by PID, C's replication restarted (it cannot reach the primary):
#    `db promote` (run on C) picks B, points C at B, C catches up with every row.
#  - the old primary, rerun through `firstboot apply` while it cannot reach the others,
#    refuses to start as primary; once it can, it comes back as a read-only replica of B
#    with every row; apply reruns on B and C keep B primary.
# Needs root. Every process it starts is killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in mariadbd mariadb mariadb-install-db jq openssl; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done

HN_ID=rbp$$
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown

PW='repl-Pw_0123456789'
RB_PW='rainbond-Pw_9876543210'
SEED=0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100f
EXT_PW='ext-"Pw\x_42'

hn_init || { not_ok "harness namespaces"; exit 1; }
for i in 1 2 3 4; do hn_add_node "$i"; done

addr() { echo "$HN_SUBNET.$((10 + $1))"; }

# ---- external.mysql ----
ext=$HN_DIR/ext
mkdir -p "$ext/data" "$ext/state" "$ext/root"
mariadb-install-db --no-defaults --datadir="$ext/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$ext/install.log" 2>&1
hn_exec 4 mariadbd --no-defaults --user=root --datadir="$ext/data" --socket="$ext/sock" \
        --pid-file="$ext/pid" --port=3306 --bind-address="$(addr 4)" --skip-name-resolve \
        --character-set-server=latin1 --collation-server=latin1_swedish_ci \
        >"$ext/server.log" 2>&1 &
ext_pid=$!
on_exit "kill -KILL $ext_pid"
extsql() { mariadb --no-defaults -S "$ext/sock" -u root -N -B -e "$1" 2>&1; }
for ((n = 0; n < 300; n++)); do extsql 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
check "the external server answers" [ "$(extsql 'SELECT 1')" = 1 ]
extsql "CREATE USER 'ext'@'%' IDENTIFIED BY 'ext-\"Pw\\\\x_42'; GRANT ALL ON *.* TO 'ext'@'%'"

ext_view=$_tmp/ext-view.json
hn_write_view "$ext_view" 1
cp "$ext_view" "$ext/state/view.json"
ext_yaml() {  # PASSWORD
        cat >"$ext/cluster.yaml" <<YAML
cluster:
  name: netns-ext
  token: "netns-test-token-0123456789"
  expected_nodes: 1
discovery:
  interface: eth0
external:
  load_balancer: {address: $HN_SUBNET.100}
  mysql:
    host: $(addr 4)
    username: ext
    password: '$1'
    console_database: rb_console
YAML
}
ext_yaml "$EXT_PW"
"$FIRSTBOOT" --cmdline "" -c "$ext/cluster.yaml" plan --explain --json --view "$ext_view" \
        >"$ext/state/plan.json"
ext_apply() {
        hn_exec 1 "$FIRSTBOOT" --cmdline "" -c "$ext/cluster.yaml" apply --state-dir "$ext/state" \
                --root "$ext/root" --supervisor direct --machine-id-file "$HN_DIR/node1/machine-id" \
                --attempts 1 >"$ext/apply.log" 2>&1
}
step_state() { jq -r --arg s "$2" '.steps[] | select(.name == $s) | .state' "$1/journal.json" 2>/dev/null; }

ext_yaml 'wrong-Secret_77'
ext_apply
check "external, wrong password: apply fails" [ "$(step_state "$ext/state" mysql-external)" = failed ]
check "external, wrong password: the error names host and port" \
        grep -q "external MySQL server at $(addr 4) port 3306 as user 'ext'" "$ext/apply.log"
check "external, wrong password: ... and the server's message" grep -q "Access denied for user 'ext'" "$ext/apply.log"
check "external, wrong password: no password in the log or journal" \
        bash -c "! grep -rqe 'wrong-Secret_77' '$ext/apply.log' '$ext/state/journal.json'"
check "external, wrong password: nothing created" \
        [ "$(extsql "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('rb_console', 'region')")" = 0 ]
ext_yaml "$EXT_PW"
ext_apply
check "external: the mysql-external step is done" [ "$(step_state "$ext/state" mysql-external)" = done ]
check "external: the cluster's own mysql step is skipped" [ "$(step_state "$ext/state" mysql)" = skipped ]
check "external: the log names the server's version" grep -q "version 10\.11.*MariaDB" "$ext/apply.log"
check "external: rb_console and region exist in utf8mb4 (the server's default is latin1)" \
        [ "$(extsql "SELECT GROUP_CONCAT(SCHEMA_NAME, '=', DEFAULT_CHARACTER_SET_NAME, '/', DEFAULT_COLLATION_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('rb_console', 'region')")" = "rb_console=utf8mb4/utf8mb4_unicode_ci,region=utf8mb4/utf8mb4_unicode_ci" ]
check "external: no password in the log or journal" \
        bash -c "! grep -rqF -e '$EXT_PW' '$ext/apply.log' '$ext/state/journal.json'"
{ kill -KILL "$ext_pid"; wait "$ext_pid"; } 2>/dev/null

# ---- the cluster ----
view=$_tmp/view.json
hn_write_view "$view" 3
for i in 1 2 3; do
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
                "$PW" "$RB_PW" "$SEED" >"$(hn_state "$i")/secrets/cluster.env"
        chmod 0600 "$(hn_state "$i")/secrets/cluster.env"
done

roles() { hn_roles 1 "$(hn_id "$1")"; }
A=
replicas=()
for i in 1 2 3; do
        case ",$(roles "$i")," in
        *,mysql-primary,*) A=$i ;;
        *,mysql-replica,*) replicas+=("$i") ;;
        esac
done
[ -n "$A" ] && [ "${#replicas[@]}" -eq 2 ] || { not_ok "the plan has one MySQL primary and two replicas"; exit 1; }
B=${replicas[0]}
C=${replicas[1]}

cnf() { echo "$HN_DIR/node$1/root/etc/mysql/mariadb.conf.d/60-rainboot.cnf"; }
sql() { hn_exec "$1" mariadb --defaults-file="$(cnf "$1")" -N -B -e "$2" 2>&1; }
as_rainbond() {
        hn_exec "$1" mariadb --no-defaults -h "$(addr "$1")" -u rainbond -p"$RB_PW" -N -B -e "$2" 2>&1
}
apply() {
        hn_exec "$1" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$1/cluster.yaml" apply \
                --state-dir "$(hn_state "$1")" --root "$HN_DIR/node$1/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$1/machine-id" --backoff-ms 500 --attempts 2 \
                >>"$HN_DIR/node$1/apply.log" 2>&1
}
db() {  # NODE VERB ARGS...
        local i=$1
        shift
        hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" db "$@" \
                --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" \
                --machine-id-file "$HN_DIR/node$i/machine-id" 2>&1
}
# member NODE_RUNNING FIELD OF_NODE: one field of `db status --json` about a member.
member() {
        db "$1" status --json 2>/dev/null | jq -r --arg a "$(addr "$3")" \
                ".members[] | select(.address == \$a) | .$2"
}
wait_for() {  # TIMEOUT NODE SQL WANT
        local deadline=$((SECONDS + $1)) got
        while ((SECONDS < deadline)); do
                got=$(sql "$2" "$3")
                [ "$got" = "$4" ] && return 0
                sleep 0.2
        done
        echo "# node$2: got '$got', want '$4'" >&2
        return 1
}
wait_member() {  # TIMEOUT NODE FIELD OF_NODE WANT_REGEX
        local deadline=$((SECONDS + $1)) got
        while ((SECONDS < deadline)); do
                got=$(member "$2" "$3" "$4")
                [[ "$got" =~ $5 ]] && return 0
                sleep 0.5
        done
        echo "# $3 of node$4 seen from node$2: '$got'" >&2
        return 1
}

for i in "$A" "$B" "$C"; do
        apply "$i"
        st=$(step_state "$(hn_state "$i")" mysql)
        check "node$i: the mysql step is done (state: ${st:-none})" [ "$st" = done ]
        [ "$st" = done ] || { cat "$HN_DIR/node$i/apply.log" >&2; exit 1; }
done

sql "$A" "CREATE TABLE console.t (id INT PRIMARY KEY, v VARCHAR(32)); INSERT INTO console.t VALUES (1, 'a'), (2, 'b')"
for r in "$B" "$C"; do
        check "node$r: the primary's rows arrived" wait_for 30 "$r" "SELECT COUNT(*) FROM console.t" 2
        out=$(as_rainbond "$r" "INSERT INTO console.t VALUES (99, 'x')" | tail -1)
        check "node$r: the Rainbond user cannot write on a replica ($out)" grep -q "read-only" <<<"$out"
done

out=$(db "$B" status)
echo "$out" | sed 's/^/# /'
check "db status: three members, all reachable" [ "$(db "$B" status --json | jq '[.members[] | select(.reachable)] | length')" = 3 ]
check "db status: node$A is the primary, writable" \
        [ "$(member "$B" role "$A")/$(member "$B" read_only "$A")" = primary/false ]
check "db status: node$C is a read-only replica with both threads running" \
        [ "$(member "$B" role "$C")/$(member "$B" read_only "$C")/$(member "$B" io_thread "$C")/$(member "$B" sql_thread "$C")" = replica/true/Yes/Yes ]
check "db status: GTID positions shown" [ -n "$(member "$B" gtid "$C")" ]

# ---- refusals ----
out=$(db "$B" promote)
check "promote is refused while the primary answers" [ $? -ne 0 ]
check "... saying so ($(tail -1 <<<"$out"))" grep -q "primary node$A answers" <<<"$out"

# B cut off from A (its packets to A are rejected); C still replicates from A.
hn_exec "$B" ip route add unreachable "$(addr "$A")/32"
out=$(db "$B" promote)
rc=$?
hn_exec "$B" ip route del unreachable "$(addr "$A")/32"
check "promote without quorum (only node$B says the primary is gone) is refused" [ "$rc" -ne 0 ]
check "... naming the count ($(tail -1 <<<"$out"))" grep -q "only 1 of the 3 MySQL members agree" <<<"$out"
check "... and nothing changed: node$B read-only, node$C still follows node$A" \
        [ "$(sql "$B" 'SELECT @@read_only')/$(member "$C" source "$C")" = "1/$(addr "$A")" ]
check "... no promotion recorded" [ ! -e "$(hn_state "$B")/mysql-promotion.json" ]
check "node$B replicates from node$A again" wait_member 60 "$B" io_thread "$B" '^Yes$'

# ---- promotion ----
sql "$C" 'STOP SLAVE'
sql "$A" "INSERT INTO console.t VALUES (3, 'c'), (4, 'd'); INSERT INTO console.t VALUES (5, 'e')"
check "node$B has the rows written while node$C was stopped" wait_for 30 "$B" "SELECT COUNT(*) FROM console.t" 5
check "node$C does not" [ "$(sql "$C" 'SELECT COUNT(*) FROM console.t')" = 2 ]
want_gtid=$(sql "$A" 'SELECT @@gtid_binlog_pos')
pid=$(cat "$(hn_state "$A")/run/mysql.pid")
kill -KILL "$pid" 2>/dev/null
for ((n = 0; n < 100; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "the primary's mariadbd (pid $pid) is gone" bash -c "! kill -0 $pid 2>/dev/null"
sql "$C" 'START SLAVE'
check "node$C reports it cannot reach the primary" wait_member 60 "$C" io_errno "$C" '^[1-9]'
check "node$B reports it cannot reach the primary" wait_member 60 "$C" io_errno "$B" '^[1-9]'

out=$(db "$C" promote)
rc=$?
echo "$out" | sed 's/^/# /'
check "db promote on node$C succeeds" [ "$rc" -eq 0 ]
check "... and picks node$B, the most advanced replica" grep -q "Promoting node$B " <<<"$out"
check "node$B is writable, without a replication source" \
        [ "$(sql "$B" 'SELECT @@read_only')/$(sql "$B" 'SHOW SLAVE STATUS' | wc -l)" = 0/0 ]
check "node$B applied everything node$A committed ($want_gtid)" \
        wait_for 30 "$B" "SELECT @@gtid_slave_pos" "$want_gtid"
check "node$C now replicates from node$B" wait_member 30 "$C" source "$C" "^$(addr "$B")\$"
check "node$C caught up: every committed row is there" wait_for 30 "$C" "SELECT GROUP_CONCAT(id ORDER BY id) FROM console.t" "1,2,3,4,5"
check "the promotion is recorded in node$C's state directory" \
        [ "$(jq -r .primary "$(hn_state "$C")/mysql-promotion.json" 2>/dev/null)" = "$(hn_id "$B")" ]
check "... and in node$B's rainboot.promotion table, replicated to node$C" \
        wait_for 30 "$C" "SELECT generation, primary_id FROM rainboot.promotion" "$(printf '1\t%s' "$(hn_id "$B")")"
out=$(as_rainbond "$B" "INSERT INTO console.t VALUES (6, 'after-promotion')")
check "the Rainbond user writes on node$B ($out)" [ -z "$out" ]
check "node$C gets that row" wait_for 30 "$C" "SELECT v FROM console.t WHERE id = 6" after-promotion
out=$(db "$B" promote)
check "a second promote is refused: the new primary answers" grep -q "primary node$B answers" <<<"$out"

# ---- the old primary comes back ----
hn_exec "$A" ip route add unreachable "$(addr "$B")/32"
hn_exec "$A" ip route add unreachable "$(addr "$C")/32"
apply "$A"
check "node$A cut off from the others: apply refuses to start it as primary" \
        grep -q "Not starting it as primary" "$HN_DIR/node$A/apply.log"
check "... and its mariadbd is not running" \
        bash -c "! kill -0 \$(cat '$(hn_state "$A")/run/mysql.pid') 2>/dev/null"
hn_exec "$A" ip route del unreachable "$(addr "$B")/32"
hn_exec "$A" ip route del unreachable "$(addr "$C")/32"
apply "$A"
check "node$A: apply done once it reaches the others" [ "$(step_state "$(hn_state "$A")" mysql)" = done ]
check "node$A learned the promotion" \
        [ "$(jq -r .primary "$(hn_state "$A")/mysql-promotion.json" 2>/dev/null)" = "$(hn_id "$B")" ]
check "node$A is read-only, not a second primary" [ "$(sql "$A" 'SELECT @@read_only')" = 1 ]
check "node$A replicates from node$B" wait_member 30 "$A" source "$A" "^$(addr "$B")\$"
check "node$A has every row, the one written on node$B too" \
        wait_for 30 "$A" "SELECT GROUP_CONCAT(id ORDER BY id) FROM console.t" "1,2,3,4,5,6"
out=$(as_rainbond "$A" "INSERT INTO console.t VALUES (7, 'x')" | tail -1)
check "node$A refuses the Rainbond user's write ($out)" grep -q "read-only" <<<"$out"

for i in "$B" "$C"; do
        apply "$i"
        check "node$i: apply rerun done" [ "$(step_state "$(hn_state "$i")" mysql)" = done ]
done
check "after the reruns node$B is still the writable primary" \
        [ "$(sql "$B" 'SELECT @@read_only')/$(sql "$B" 'SHOW SLAVE STATUS' | wc -l)" = 0/0 ]
check "... node$C still follows node$B" wait_member 30 "$C" source "$C" "^$(addr "$B")\$"
check "db status agrees: node$B primary, node$A replica" \
        [ "$(member "$A" role "$B")/$(member "$A" role "$A")" = primary/replica ]
sql "$B" "INSERT INTO console.t VALUES (8, 'last')"
for i in "$A" "$C"; do
        check "node$i gets a row written on node$B after the reruns" \
                wait_for 30 "$i" "SELECT COUNT(*) FROM console.t WHERE id = 8" 1
done
