#!/bin/bash
# The cluster PKI against the real TLS peers that use it: one node (a network namespace
# of qemu-tests/netns/harness.sh) runs `firstboot apply --only pki` with a sealed ca_seed,
# then serves its registry.crt from Debian's docker-registry (Go) and its mysql.crt from
# MariaDB (OpenSSL), and clients verify them against ca.crt: curl, skopeo (a pushed and
# inspected image) and the mariadb client with --ssl-verify-server-cert. The same clients
# refuse the servers without the CA. This is what shows an Ed25519-signed chain is
# accepted by Go's crypto/x509 and by OpenSSL. Needs root. Every process is started by
# this test inside its namespace and killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in jq openssl curl skopeo docker-registry mariadbd mariadb-install-db mariadb sha256sum; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done

HN_ID=rbp$$
HN_DIR=$_tmp/netns
mkdir -p "$HN_DIR"
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown
pids=()
on_exit 'for p in "${pids[@]}"; do kill -KILL "$p"; done'

hn_init || { not_ok "harness namespaces"; exit 1; }
hn_add_node 1
addr=$HN_SUBNET.11
view=$_tmp/view.json
hn_write_view "$view" 1
state=$(hn_state 1)
root=$HN_DIR/node1/root
pki=$root/etc/rainboot/pki
cat >"$HN_DIR/node1/cluster.yaml" <<YAML
cluster:
  name: tls
  token: "netns-test-token-0123456789"
  expected_nodes: 1
discovery:
  interface: eth0
external:
  load_balancer: {address: $HN_SUBNET.100}
YAML
cp "$view" "$state/view.json"
"$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node1/cluster.yaml" plan --explain --json --view "$view" \
        >"$state/plan.json"
mkdir -m 0700 -p "$state/secrets"
printf 'ca_seed=%s\n' "$(openssl rand -hex 32)" >"$state/secrets/cluster.env"
chmod 0600 "$state/secrets/cluster.env"
hn_exec 1 "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node1/cluster.yaml" apply --state-dir "$state" \
        --root "$root" --supervisor direct --machine-id-file "$HN_DIR/node1/machine-id" \
        --only pki >"$_tmp/apply.log" 2>&1
rc=$?
check "firstboot apply --only pki exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { sed 's/^/# /' "$_tmp/apply.log"; exit 1; }
for s in registry mysql apiserver; do
        check "$s.crt verifies against ca.crt (openssl verify)" \
                openssl verify -CAfile "$pki/ca.crt" "$pki/$s.crt"
done
check "registry.crt names goodrain.me" bash -c \
        "openssl x509 -in '$pki/registry.crt' -noout -ext subjectAltName | grep -q 'DNS:goodrain.me'"
check "apiserver.crt names kubernetes.default.svc.cluster.local" bash -c \
        "openssl x509 -in '$pki/apiserver.crt' -noout -ext subjectAltName | grep -q 'DNS:kubernetes.default.svc.cluster.local'"

# wait_until SECONDS CMD...: bounded retries.
# ---- docker-registry (Go) with registry.crt
mkdir -p "$_tmp/registry"
cat >"$_tmp/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $_tmp/registry}
http:
  addr: $addr:5000
  tls: {certificate: $pki/registry.crt, key: $pki/registry.key}
YAML
# ip netns exec execs the server: $! is its PID (a backgrounded function would be a subshell).
ip netns exec "$(hn_ns 1)" docker-registry serve "$_tmp/registry.yml" >"$_tmp/registry.log" 2>&1 &
pids+=($!)
v2() { hn_exec 1 curl -sS --max-time 5 --cacert "$pki/ca.crt" -o /dev/null "$@"; }
wait_until 30 v2 "https://$addr:5000/v2/"
check "curl trusts the registry by ca.crt at its address" v2 -f "https://$addr:5000/v2/"
check "curl trusts the registry as goodrain.me:5000" \
        v2 -f --resolve "goodrain.me:5000:$addr" "https://goodrain.me:5000/v2/"
check "curl without the CA refuses the registry" bash -c \
        "! ip netns exec $(hn_ns 1) curl -sS --max-time 5 https://$addr:5000/v2/ 2>/dev/null"

# A one-layer OCI image made by hand, pushed with skopeo trusting the CA (--dest-cert-dir
# holds ca.crt, as containerd's certs.d does).
img=$_tmp/oci
mkdir -p "$img/blobs/sha256" "$_tmp/certs" "$_tmp/layer"
cp "$pki/ca.crt" "$_tmp/certs/ca.crt"
echo "hello $$" >"$_tmp/layer/hello.txt"
tar -C "$_tmp/layer" -cf "$_tmp/layer.tar" hello.txt
blob() {  # FILE: store as a blob, echo its digest and size
        local d
        d=$(sha256sum "$1" | cut -d' ' -f1)
        cp "$1" "$img/blobs/sha256/$d"
        echo "$d $(stat -c %s "$1")"
}
read -r ldig lsize < <(blob "$_tmp/layer.tar")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}' \
        "$ldig" >"$_tmp/config.json"
read -r cdig csize < <(blob "$_tmp/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$cdig" "$csize" "$ldig" "$lsize" >"$_tmp/manifest.json"
read -r mdig msize < <(blob "$_tmp/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' \
        "$mdig" "$msize" >"$img/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$img/oci-layout"
check "skopeo pushes to the registry trusting ca.crt" \
        hn_exec 1 skopeo copy --quiet --dest-cert-dir "$_tmp/certs" "oci:$img:1" \
        "docker://$addr:5000/test/hello:1"
out=$(hn_exec 1 skopeo inspect --cert-dir "$_tmp/certs" "docker://$addr:5000/test/hello:1" 2>&1)
# skopeo compresses the layer on the way: its digest changes, its count and the tag do not.
check "skopeo inspects the pushed image over TLS" \
        [ "$(jq -r '"\(.RepoTags[0]) \(.Layers | length) \(.Architecture)"' <<<"$out" 2>/dev/null)" = "1 1 amd64" ]
out=$(hn_exec 1 skopeo inspect "docker://$addr:5000/test/hello:1" 2>&1)
check "skopeo without the CA refuses the registry (x509: unknown authority)" \
        grep -q "certificate signed by unknown authority" <<<"$out"

# ---- MariaDB (OpenSSL) with mysql.crt
db=$_tmp/db
mkdir -p "$db/data" "$db/run"
cat >"$db/my.cnf" <<CNF
[mysqld]
user = root
datadir = $db/data
socket = $db/run/mysqld.sock
pid_file = $db/run/mysqld.pid
port = 3306
bind_address = $addr
skip_name_resolve = ON
ssl_cert = $pki/mysql.crt
ssl_key = $pki/mysql.key
ssl_ca = $pki/ca.crt
CNF
hn_exec 1 mariadb-install-db --defaults-file="$db/my.cnf" --auth-root-authentication-method=socket \
        --skip-test-db >"$_tmp/install-db.log" 2>&1
check "mariadb-install-db" [ $? -eq 0 ]
ip netns exec "$(hn_ns 1)" mariadbd --defaults-file="$db/my.cnf" >"$_tmp/mariadbd.log" 2>&1 &
pids+=($!)
sock() { hn_exec 1 mariadb --defaults-file="$db/my.cnf" --socket="$db/run/mysqld.sock" --batch --skip-column-names -e "$1"; }
wait_until 120 sock "SELECT 1"
check "MariaDB answers on its socket" bash -c "[ \"\$(ip netns exec $(hn_ns 1) mariadb --defaults-file='$db/my.cnf' --socket='$db/run/mysqld.sock' --batch --skip-column-names -e 'SELECT 1')\" = 1 ]"
sock "CREATE USER 'tls'@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL" >/dev/null
tcp() { hn_exec 1 mariadb --no-defaults -h "$addr" -u tls -ptls-pw --batch --skip-column-names "$@"; }
cipher=$(tcp --ssl-ca="$pki/ca.crt" --ssl-verify-server-cert -e "SHOW STATUS LIKE 'Ssl_cipher'" 2>&1)
check "mariadb client verifies the server's mysql.crt by ca.crt (cipher: $cipher)" \
        grep -q "^Ssl_cipher[[:space:]]\+[A-Z]" <<<"$cipher"
check "mariadb client with a CA of another seed refuses the server" bash -c "
        openssl req -x509 -new -newkey ed25519 -nodes -keyout '$_tmp/o.key' -subj '/CN=other' -days 1 \
                -out '$_tmp/o.crt' 2>/dev/null &&
        ! ip netns exec $(hn_ns 1) mariadb --no-defaults -h $addr -u tls -ptls-pw --ssl-ca='$_tmp/o.crt' \
                --ssl-verify-server-cert -e 'SELECT 1' >/dev/null 2>&1"
