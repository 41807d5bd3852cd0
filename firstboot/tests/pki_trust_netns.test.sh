#!/bin/bash
# The pki step's system trust (appliance mode, --supervisor systemd) without
# update-ca-certificates: after `firstboot apply --only pki` on a test root whose
# /etc/ssl/certs is a copy of this host's, curl, openssl s_client and skopeo trust the
# node's registry (Debian's docker-registry serving registry.crt) through the root's
# system store alone (no --cacert), while the host's own store still refuses it. Then a
# real update-ca-certificates run on that store keeps the CA (exactly once), the clients
# still trust it, and the step finds nothing to do. Clients see the root's store through
# bind mounts in a mount namespace of their own (unshare -m inside the test's network
# namespace); nothing outside the test's directories is written. Needs root.
. ./lib.sh
need_root "network and mount namespaces"
for t in jq openssl curl skopeo umoci docker-registry update-ca-certificates unshare; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done
[ -d /usr/local/share/ca-certificates ] && [ -f /etc/ssl/certs/ca-certificates.crt ] ||
        skip_all "no Debian trust store on this host (ca-certificates)"

HN_ID=rbt$$
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
store=$root/etc/ssl/certs
# The image's trust store before the step: the distribution's, as on this host.
mkdir -p "$root/etc/ssl" "$root/usr/local/share/ca-certificates" "$_tmp/hooks"
cp -a /etc/ssl/certs "$root/etc/ssl/"
cat >"$HN_DIR/node1/cluster.yaml" <<YAML
cluster:
  name: trust
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
apply() {
        hn_exec 1 "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node1/cluster.yaml" apply \
                --state-dir "$state" --root "$root" --supervisor systemd \
                --machine-id-file "$HN_DIR/node1/machine-id" --only pki "$@" >>"$_tmp/apply.log" 2>&1
}
apply
rc=$?
check "firstboot apply --only pki (systemd mode, test root) exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { sed 's/^/# /' "$_tmp/apply.log"; exit 1; }
check "no update-ca-certificates was run (the step links and appends itself)" \
        bash -c "! grep -q update-ca-certificates '$_tmp/apply.log'"
hash=$(openssl x509 -noout -subject_hash -in "$pki/ca.crt")
check "rainboot-ca.pem links to the local CA file" \
        [ "$(readlink "$store/rainboot-ca.pem")" = /usr/local/share/ca-certificates/rainboot-ca.crt ]
check "the OpenSSL hash link $hash.0 names rainboot-ca.pem" \
        [ "$(readlink "$store/$hash.0")" = rainboot-ca.pem ]
count_ca() {  # how many times the CA is in the root's bundle
        local d=$_tmp/split fp f n=0
        rm -rf "$d" && mkdir -p "$d"
        awk -v d="$d" '/BEGIN CERT/ {i++} i {print > (d "/" i ".pem")} /END CERT/ {close(d "/" i ".pem")}' \
                "$store/ca-certificates.crt"
        fp=$(openssl x509 -noout -fingerprint -sha256 -in "$pki/ca.crt")
        for f in "$d"/*.pem; do
                [ "$(openssl x509 -noout -fingerprint -sha256 -in "$f" 2>/dev/null)" = "$fp" ] &&
                        n=$((n + 1))
        done
        echo "$n"
}
n_before=$(grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt)
check "the bundle holds the CA exactly once" [ "$(count_ca)" = 1 ]
check "the bundle keeps every distribution CA ($n_before) and adds one" \
        [ "$(grep -c "BEGIN CERTIFICATE" "$store/ca-certificates.crt")" = $((n_before + 1)) ]

# in_store CMD...: CMD in the node's namespace, seeing the root's trust store as the system's.
in_store() {
        ip netns exec "$(hn_ns 1)" unshare -m --propagation private sh -c '
                mount --bind "$1/etc/ssl/certs" /etc/ssl/certs &&
                mount --bind "$1/usr/local/share/ca-certificates" /usr/local/share/ca-certificates &&
                shift && exec "$@"' sh "$root" "$@"
}
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
ip netns exec "$(hn_ns 1)" docker-registry serve "$_tmp/registry.yml" >"$_tmp/registry.log" 2>&1 &
pids+=($!)
wait_until 30 hn_exec 1 curl -sS --max-time 5 --cacert "$pki/ca.crt" -o /dev/null "https://$addr:5000/v2/"

s_client_ok() {
        local out
        out=$(in_store openssl s_client -connect "$addr:5000" -servername goodrain.me \
                -verify_hostname goodrain.me -verify_return_error </dev/null 2>&1)
        grep -q 'Verify return code: 0 (ok)' <<<"$out"
}
skopeo_ok() {  # TAG: pushed and inspected, trusting the system store only
        local out
        in_store skopeo copy -q "oci-archive:$_tmp/img.tar" "docker://$addr:5000/test/img:$1" ||
                return 1
        out=$(in_store skopeo inspect "docker://$addr:5000/test/img:$1" 2>&1)
        [ "$(jq -r '.Architecture' <<<"$out" 2>/dev/null)" = amd64 ]
}
clients() {  # label tag
        check "curl trusts goodrain.me:5000 through the system store ($1)" \
                in_store curl -sSf --max-time 5 -o /dev/null --resolve "goodrain.me:5000:$addr" \
                https://goodrain.me:5000/v2/
        check "openssl s_client verifies goodrain.me through the system store ($1)" s_client_ok
        check "skopeo pushes and inspects through the system store ($1)" skopeo_ok "$2"
}
make_oci_archive "$_tmp/img.tar" || not_ok "make_oci_archive"
clients "after the step" 1
check "the host's own store still refuses the registry (curl; the CA went into the root only)" bash -c \
        "! ip netns exec $(hn_ns 1) curl -sS --max-time 5 -o /dev/null https://$addr:5000/v2/ 2>/dev/null"
out=$(hn_exec 1 openssl s_client -connect "$addr:5000" -servername goodrain.me \
        -verify_hostname goodrain.me -verify_return_error </dev/null 2>&1)
check "the host's own store still refuses the registry (openssl s_client)" \
        bash -c "! grep -q 'Verify return code: 0 (ok)' <<<'$(tr -d "'" <<<"$out")'"

# A later update-ca-certificates (a package upgrade) keeps the CA: it is in the local
# directory and the link is the one update-ca-certificates makes itself.
in_store env TMPDIR="$_tmp" update-ca-certificates --hooksdir "$_tmp/hooks" >"$_tmp/uca.log" 2>&1
check "update-ca-certificates on the store succeeds" [ $? -eq 0 ]
check "after update-ca-certificates the bundle holds the CA exactly once" [ "$(count_ca)" = 1 ]
clients "after update-ca-certificates" 2
: >"$_tmp/apply.log"
apply --recheck
check "the step reruns cleanly (--recheck: its check runs)" [ $? -eq 0 ]
check "and finds the trust in place" grep -q "Step pki: already in place" "$_tmp/apply.log"
check "the bundle still holds the CA exactly once" [ "$(count_ca)" = 1 ]
