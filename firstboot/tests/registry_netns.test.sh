#!/bin/bash
# The image registry brought up by `firstboot apply --supervisor direct` (network
# namespaces on a bridge, qemu-tests/netns/harness.sh): the real pki step makes the TLS
# certificate, docker-registry serves it on the registry node's address:5000, haproxy on
# the VIP holder forwards VIP:5000, and the "images" step pushes the offline bundle's OCI
# archives (built here from busybox-static with umoci) with skopeo. From a client
# namespace, curl trusting only the cluster CA fetches a manifest from
# https://goodrain.me:5000 (resolved to the VIP) with the credentials, and gets 401
# without. A tampered archive stops the step naming the file and its hashes, with nothing
# pushed; fixed, the rerun pushes; a later run pushes only what is new. Needs root; every
# process it starts is killed by PID on exit.
. ./lib.sh
need_root "network namespaces"
for t in docker-registry skopeo umoci curl openssl haproxy keepalived jq; do
        command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done
[ -x /bin/busybox ] || skip_all "busybox-static is not installed (make deps)"
IMAGEBUILD=$(dirname "$FIRSTBOOT")/imagebuild
[ -x "$IMAGEBUILD" ] || skip_all "no imagebuild next to $FIRSTBOOT (make imagebuild)"

HN_ID=rbr$$
HN_DIR=$_tmp/netns
mkdir -p "$HN_DIR"
. ../../qemu-tests/netns/harness.sh
on_exit hn_teardown

VIP=$HN_SUBNET.100
PW='Reg1stry-Pw-0123456789abcdefghij'
hn_init || { not_ok "harness namespaces"; exit 1; }
for i in 1 2 3 4; do hn_add_node "$i"; done

view=$_tmp/view.json
hn_write_view "$view" 3
seed=$(openssl rand -hex 32)
# config NODE [PINS]: external MySQL (this test is about the registry: the cluster's MariaDB
# would only slow it down), RKE2 (no etcd step), the VIP on eth0.
config() {
        hn_config "$1" 3 netns-test-token-0123456789 "external:
  mysql: {host: db.example.org, username: rainbond, password: \"netns-db-password\"}
${2:-}"
}
plan() {  # NODE
        "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$1/cluster.yaml" plan --explain --json \
                --view "$view" >"$(hn_state "$1")/plan.json"
}
config 1 && plan 1
# The bootstrap node would create the external MySQL databases (mysql-external), which do
# not exist here: the registry goes on another node, and the bootstrap node is not brought
# up. Every node is a gateway in a 3-node cluster.
boot=$(jq -r '.nodes[] | select(.roles | index("bootstrap")) | .hostname' "$(hn_state 1)/plan.json")
nodes=()
for i in 1 2 3; do [ "node$i" != "$boot" ] && nodes+=("$i"); done
reg=${nodes[0]}
for i in 1 2 3; do
        config "$i" "roles:
  pins: [{match: {hostname: node$reg}, roles: [registry]}]"
        cp "$view" "$(hn_state "$i")/view.json"
        plan "$i"
        mkdir -m 0700 -p "$(hn_state "$i")/secrets"
        printf 'join_token=abcdef.0123456789abcdef\nregistry_password=%s\nca_seed=%s\n' "$PW" "$seed" \
                >"$(hn_state "$i")/secrets/cluster.env"
        chmod 0600 "$(hn_state "$i")/secrets/cluster.env"
done
check "node$reg is the registry node and not the bootstrap node ($boot)" \
        [ "$(jq -r '.nodes[] | select(.roles | index("registry")) | .hostname' "$(hn_state 1)/plan.json")" = "node$reg" ]

# The offline bundle as imagebuild installs it into an image: bundle.json and bundle/.
b=$_tmp/bundle
mkdir -p "$b/images"
make_oci_archive "$b/images/test.tar" /bin/busybox true
make_oci_archive "$b/images/other.tar" /bin/busybox false
make_oci_archive "$b/images/third.tar" /bin/busybox echo third
check "three OCI archives built locally" [ -s "$b/images/test.tar" -a -s "$b/images/other.tar" -a -s "$b/images/third.tar" ]
"$IMAGEBUILD" -q bundle add "$b" "$b/images/test.tar" --kind oci-archive --name rainbond/rbd-test:v1 &&
        "$IMAGEBUILD" -q bundle add "$b" "$b/images/other.tar" --kind oci-archive \
                --name docker.io/rainbond/rbd-other:v2
check "imagebuild records them under image names" [ $? -eq 0 ]
install_bundle() {  # NODE: the bundle as it is now, into the node's root
        local r=$HN_DIR/node$1/root/usr/share/rainboot
        rm -rf "$r" && mkdir -p "$r/bundle" && cp "$b/manifest.json" "$r/bundle.json" &&
                cp -r "$b/images" "$r/bundle/"
}
for i in "${nodes[@]}"; do install_bundle "$i"; done
# One byte changed in the registry node's copy of the second archive.
bad=$HN_DIR/node$reg/root/usr/share/rainboot/bundle/images/other.tar
printf 'X' | dd of="$bad" bs=1 seek=700 conv=notrunc status=none

apply() {  # NODE ARGS...
        local i=$1
        shift
        hn_exec "$i" "$FIRSTBOOT" --cmdline "" -c "$HN_DIR/node$i/cluster.yaml" apply \
                --state-dir "$(hn_state "$i")" --root "$HN_DIR/node$i/root" --supervisor direct \
                --machine-id-file "$HN_DIR/node$i/machine-id" --backoff-ms 200 "$@" \
                >>"$HN_DIR/node$i/apply.log" 2>&1
}
step_state() { jq -r --arg s "$2" '.steps[] | select(.name == $s) | .state' "$(hn_state "$1")/journal.json" 2>/dev/null; }
ca=$HN_DIR/node$reg/root/etc/rainboot/pki/ca.crt
# api NODE PATH [CURL ARGS...]: the registry's HTTP API at https://goodrain.me:5000 through
# the VIP, trusting the cluster CA only; prints the body, then the status code.
api() {
        local i=$1 path=$2
        shift 2
        hn_exec "$i" curl -sS --max-time 10 --cacert "$ca" \
                --resolve "goodrain.me:5000:$VIP" -w '\n%{http_code}' "$@" "https://goodrain.me:5000$path"
}
wait_api() {  # bounded: until the VIP answers with the registry
        local n
        for ((n = 0; n < 100; n++)); do
                [ "$(api 4 /v2/ | tail -1)" = 401 ] && return 0
                sleep 0.2
        done
        return 1
}
manifest_puts() { grep 'msg="response completed"' "$(hn_state "$reg")/log/docker-registry.log" 2>/dev/null | grep -c 'method=PUT.*/manifests/'; }

# The registry node first: the tampered archive stops the images step.
apply "$reg" --attempts 1
check "apply on node$reg fails with the tampered archive" [ $? -ne 0 ]
for s in pki registry registry-trust; do
        st=$(step_state "$reg" "$s")
        check "node$reg: step $s done (state: ${st:-none})" [ "$st" = done ]
done
[ "$(step_state "$reg" registry)" = done ] || { sed 's/^/# /' "$HN_DIR/node$reg/apply.log"; tail -20 "$(hn_state "$reg")/log/docker-registry.log" | sed 's/^/# /'; exit 1; }
check "node$reg: step images failed" [ "$(step_state "$reg" images)" = failed ]
want=$(jq -r '.artifacts[] | select(.file == "images/other.tar") | .sha256' "$b/manifest.json")
have=$(sha256sum <"$bad" | cut -d' ' -f1)
check "the error names the file, the artifact, the expected and the actual hash" \
        grep -q "$bad: sha256 mismatch (artifact 'docker.io/rainbond/rbd-other:v2'): expected $want .* actual $have" "$HN_DIR/node$reg/apply.log"
check "the journal keeps the failure (sha256sum of the file)" \
        eval 'jq -e --arg f "$bad" ".steps[] | select(.name == \"images\") | .failure.command | contains(\$f)" "$(hn_state "$reg")/journal.json" >/dev/null'

for i in "${nodes[@]}"; do
        [ "$i" = "$reg" ] && continue
        apply "$i" --attempts 1
        check "node$i: apply exits 0 (not the registry node: images skipped)" [ $? -eq 0 ]
        check "node$i: registry-trust done, registry and images skipped" \
                [ "$(step_state "$i" registry-trust),$(step_state "$i" registry),$(step_state "$i" images)" = "done,skipped,skipped" ]
done
check "the VIP answers with the registry (401 without credentials)" wait_api
out=$(api 4 /v2/_catalog -u "admin:$PW")
check "the catalog is empty: nothing was pushed ($(head -1 <<<"$out"))" \
        [ "$(tail -1 <<<"$out")" = 200 -a "$(head -1 <<<"$out" | jq -c .repositories)" = "[]" ]

# Fixed: the rerun verifies again and pushes both.
cp "$b/images/other.tar" "$bad"
apply "$reg"
check "after restoring the archive, apply on node$reg exits 0" [ $? -eq 0 ]
check "node$reg: step images done" [ "$(step_state "$reg" images)" = done ]
out=$(api 4 /v2/_catalog -u "admin:$PW")
check "the catalog lists both images ($(head -1 <<<"$out"))" \
        [ "$(head -1 <<<"$out" | jq -c .repositories)" = '["rainbond/rbd-other","rainbond/rbd-test"]' ]
digest=$(hn_exec 4 skopeo inspect --format '{{.Digest}}' "oci-archive:$b/images/test.tar" 2>/dev/null)
out=$(api 4 /v2/rainbond/rbd-test/manifests/v1 -u "admin:$PW" -D "$_tmp/headers" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json')
check "client: curl trusting only the cluster CA gets goodrain.me:5000/rainbond/rbd-test:v1 (status $(tail -1 <<<"$out"))" \
        [ "$(tail -1 <<<"$out")" = 200 ]
check "its digest is the archive's manifest digest ($digest)" \
        grep -qi "^docker-content-digest: $digest" "$_tmp/headers"
out=$(api 4 /v2/rainbond/rbd-test/manifests/v1)
check "without credentials: 401" [ "$(tail -1 <<<"$out")" = 401 ]
out=$(api 4 /v2/rainbond/rbd-test/manifests/v1 -u "admin:wrong-password")
check "with a wrong password: 401" [ "$(tail -1 <<<"$out")" = 401 ]
check "skopeo with the rendered cert dir and auth file inspects the image by name" \
        eval 'hn_exec "$reg" skopeo inspect --cert-dir "$HN_DIR/node$reg/root/etc/containers/certs.d/goodrain.me:5000" \
                --authfile "$(hn_state "$reg")/secrets/registry-auth.json" \
                "docker://$HN_SUBNET.$((10 + reg)):5000/rainbond/rbd-other:v2" >/dev/null 2>&1'

for i in "${nodes[@]}"; do
        check "node$i: /etc/hosts resolves goodrain.me to the VIP, one line" \
                [ "$(grep -c goodrain.me "$HN_DIR/node$i/root/etc/hosts")" = 1 -a \
                  "$(awk '/goodrain.me/ {print $1}' "$HN_DIR/node$i/root/etc/hosts")" = "$VIP" ]
        check "node$i: containerd hosts.toml trusts the cluster CA" \
                grep -qx "  ca = \"$HN_DIR/node$i/root/etc/rainboot/pki/ca.crt\"" \
                "$HN_DIR/node$i/root/etc/containerd/certs.d/goodrain.me:5000/hosts.toml"
        check "node$i: containers certs.d holds the cluster CA" \
                cmp -s "$HN_DIR/node$i/root/etc/rainboot/pki/ca.crt" \
                "$HN_DIR/node$i/root/etc/containers/certs.d/goodrain.me:5000/ca.crt"
done

# A new image in the bundle: the rerun pushes it alone.
puts=$(manifest_puts)
"$IMAGEBUILD" -q bundle add "$b" "$b/images/third.tar" --kind oci-archive --name rainbond/rbd-third
install_bundle "$reg"
: >"$HN_DIR/node$reg/apply.log"
apply "$reg"
check "with a third image, apply on node$reg exits 0" [ $? -eq 0 ]
check "the two images already there are not pushed again" \
        [ "$(grep -c 'already in the registry' "$HN_DIR/node$reg/apply.log")" = 2 ]
n=$(manifest_puts)
check "exactly one manifest was pushed ($puts before, $n after)" [ "$n" = $((puts + 1)) ]
[ "$n" = $((puts + 1)) ] ||
        grep 'method=PUT' "$(hn_state "$reg")/log/docker-registry.log" | sed 's/^/# /'
out=$(api 4 /v2/rainbond/rbd-third/tags/list -u "admin:$PW")
check "the third image is there as rbd-third:latest ($(head -1 <<<"$out"))" \
        [ "$(head -1 <<<"$out" | jq -c .tags)" = '["latest"]' ]
