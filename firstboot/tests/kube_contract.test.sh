#!/bin/bash
# Kubernetes and Rainbond, contract-tested: rke2, kubeadm, kubelet, kubectl and helm are
# not in Debian 12, so the offline bundle of this test lists recording doubles
# (doubles/) in their place, and systemctl is a recording double too (the host's units are
# never touched). `firstboot apply --only kubernetes|rainbond` runs for each node kind in
# a temporary root; the test asserts the EXACT sequence of recorded commands, that the
# bundle's binaries were installed, that a rerun runs nothing again (journal) and that
# kubeadm never inits or joins twice even without the journal; and that a bundle without
# the binary skips the step with its reason in `firstboot status`. No network, no root.
. ./lib.sh

DOUBLES=$(cd doubles && pwd)
export KUBE_DOUBLES_DIR=$DOUBLES
export PATH="$DOUBLES:$PATH"
VIEW=data/views/five-nodes.json
# five-nodes.json elects node-1 bootstrap master, node-2 and node-3 masters, node-4 and
# node-5 workers.
ID1=105eed00000000000000000000000001
ID2=205eed00000000000000000000000002
ID4=405eed00000000000000000000000004
TOKEN=abcdef.0123456789abcdef

# setup NAME DISTRIBUTION BUNDLE-ITEMS...: a node directory with config, state (plan,
# view, secrets), machine id and an offline bundle of "kind:name:file" items whose files
# are the doubles. Echoes the directory.
setup() {
        local nd=$_tmp/$1 dist=$2 item kind name file first=1
        shift 2
        mkdir -p "$nd/state/secrets" "$nd/root/usr/share/rainboot/bundle"
        cat >"$nd/cluster.yaml" <<YAML
cluster:
  name: contract
  token: "contract-test-token-0123456789"
  expected_nodes: 5
vip:
  address: 192.0.2.100/24
  router_id: 61
kubernetes:
  distribution: $dist
YAML
        cp "$VIEW" "$nd/state/view.json"
        "$FIRSTBOOT" --cmdline "" -c "$nd/cluster.yaml" plan --explain --json --view "$VIEW" \
                >"$nd/state/plan.json" || return 1
        printf 'join_token=%s\ncert_key=%064d\nregistry_password=reg-pw\nmysql_rainbond_password=db-pw\nca_seed=%s\n' \
                "$TOKEN" 7 a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0 \
                >"$nd/state/secrets/cluster.env"
        chmod 0600 "$nd/state/secrets/cluster.env"
        {
                echo '{ "version": 1, "artifacts": ['
                for item in "$@"; do
                        IFS=: read -r kind name file <<<"$item"
                        mkdir -p "$(dirname "$nd/root/usr/share/rainboot/bundle/$file")"
                        if [ -e "$DOUBLES/$name" ]; then
                                cp "$DOUBLES/$name" "$nd/root/usr/share/rainboot/bundle/$file"
                        else
                                echo "$name" >"$nd/root/usr/share/rainboot/bundle/$file"
                        fi
                        [ $first = 1 ] || echo ,
                        first=0
                        printf '{ "name": "%s", "kind": "%s", "file": "%s", "size": 1, "sha256": "%064d" }\n' \
                                "$name" "$kind" "$file" 0
                done
                echo '] }'
        } >"$nd/root/usr/share/rainboot/bundle.json"
        echo "$nd"
}

# apply DIR MACHINE-ID STEP: firstboot apply of one step; the doubles log to DIR/calls.
apply() {
        KUBE_DOUBLES_LOG=$1/calls "$FIRSTBOOT" --cmdline "" -c "$1/cluster.yaml" apply \
                --state-dir "$1/state" --root "$1/root" --supervisor systemd \
                --machine-id-file "$1/machine-id" --attempts 1 --backoff-ms 0 --only "$3" \
                >>"$1/apply.log" 2>&1
}
node() {  # NAME DIST ID BUNDLE...: setup + machine id; echoes the directory
        local nd
        nd=$(setup "$1" "$2" "${@:4}") || return 1
        echo "$3" >"$nd/machine-id"
        echo "$nd"
}
# The recorded calls, the node's root shown as ROOT.
calls() { sed "s|$1/root|ROOT|g" "$1/calls" 2>/dev/null; }
# expect_calls DIR DESCRIPTION <<< exact expected calls
expect_calls() {
        local want got
        want=$(cat)
        got=$(calls "$1")
        if [ "$got" = "$want" ]; then
                ok "$2"
        else
                not_ok "$2"
                diff <(echo "$want") <(echo "$got") | sed 's/^/# /'
                sed 's/^/# log: /' "$1/apply.log" | tail -20
        fi
}
step_state() {  # DIR STEP
        jq -r --arg s "$2" '.steps[] | select(.name == $s) | .state' "$1/state/journal.json" 2>/dev/null
}
installed() {  # DIR BINARY: the bundle's double, installed executable
        [ -x "$1/root/usr/local/bin/$2" ] && cmp -s "$1/root/usr/local/bin/$2" "$DOUBLES/$2"
}

RKE2_BUNDLE=(binary:rke2:bin/rke2 binary:kubectl:bin/kubectl binary:helm:bin/helm
        chart:rainbond:charts/rainbond-6.0.0.tgz
        oci-archive:rke2-images.linux-amd64:images/rke2-images.linux-amd64.tar.zst)
KUBEADM_BUNDLE=(binary:kubeadm:bin/kubeadm-v1.31.4 binary:kubelet:bin/kubelet
        binary:kubectl:bin/kubectl binary:helm:bin/helm chart:rainbond:charts/rainbond-6.0.0.tgz)

# ---- RKE2 ----
for kind in bootstrap:$ID1:server master:$ID2:server agent:$ID4:agent; do
        IFS=: read -r what id mode <<<"$kind"
        nd=$(node "rke2-$what" rke2 "$id" "${RKE2_BUNDLE[@]}") || { not_ok "rke2 $what: setup"; exit 1; }
        apply "$nd" x kubernetes
        check "rke2 $what: the kubernetes step is done (journal: $(step_state "$nd" kubernetes))" \
                [ "$(step_state "$nd" kubernetes)" = done ]
        check "rke2 $what: --only ran that step alone (journal: $(jq -c '[.steps[].name]' "$nd/state/journal.json"))" \
                [ "$(jq -c '[.steps[].name]' "$nd/state/journal.json")" = '["kubernetes"]' ]
        ready=
        [ "$mode" = server ] && ready="
kubectl --kubeconfig ROOT/etc/rancher/rke2/rke2.yaml get --raw /readyz"
        # Files first, so the unit exists for daemon-reload; the service manager finds the
        # unit stopped (reload, then start, each ask) and starts it; servers wait for the
        # API; the engine's check after apply sees the unit active.
        expect_calls "$nd" "rke2 $what: exact command sequence (rke2 $mode)" <<EOF
systemctl daemon-reload
systemctl is-active --quiet rke2-$mode.service
systemctl is-active --quiet rke2-$mode.service
systemctl is-enabled --quiet rke2-$mode.service
systemctl enable --now rke2-$mode.service$ready
systemctl is-active --quiet rke2-$mode.service
EOF
        check "rke2 $what: rke2 and kubectl installed from the bundle" \
                eval 'installed "$nd" rke2 && installed "$nd" kubectl'
        check "rke2 $what: the airgap images are in RKE2's images directory" \
                [ -f "$nd/root/var/lib/rancher/rke2/agent/images/rke2-images.linux-amd64.tar.zst" ]
        check "rke2 $what: config.yaml and registries.yaml are 0600 (token, registry password)" \
                [ "$(stat -c %a "$nd/root/etc/rancher/rke2/config.yaml" "$nd/root/etc/rancher/rke2/registries.yaml")" = "600
600" ]
        if [ "$what" = bootstrap ]; then
                check "rke2 bootstrap: no server: line (it starts the cluster)" \
                        eval '! grep -q "^server:" "$nd/root/etc/rancher/rke2/config.yaml"'
        else
                check "rke2 $what: registers at the VIP" \
                        grep -qx "server: 'https://192.0.2.100:19345'" "$nd/root/etc/rancher/rke2/config.yaml"
        fi
        check "rke2 $what: the unit runs the installed binary" \
                grep -qx "ExecStart=$nd/root/usr/local/bin/rke2 $mode" \
                "$nd/root/etc/systemd/system/rke2-$mode.service"

        n=$(calls "$nd" | wc -l)
        apply "$nd" x kubernetes
        check "rke2 $what: a rerun runs nothing again (journal)" [ "$(calls "$nd" | wc -l)" -eq "$n" ]
done

# Rainbond from the RKE2 bootstrap master.
nd=$_tmp/rke2-bootstrap
apply "$nd" x rainbond
check "rke2 bootstrap: the rainbond step is done (journal: $(step_state "$nd" rainbond))" \
        [ "$(step_state "$nd" rainbond)" = done ]
expect_calls "$nd" "rke2 bootstrap: helm installs Rainbond after Kubernetes, with RKE2's kubeconfig" <<'EOF'
systemctl daemon-reload
systemctl is-active --quiet rke2-server.service
systemctl is-active --quiet rke2-server.service
systemctl is-enabled --quiet rke2-server.service
systemctl enable --now rke2-server.service
kubectl --kubeconfig ROOT/etc/rancher/rke2/rke2.yaml get --raw /readyz
systemctl is-active --quiet rke2-server.service
helm upgrade --install rainbond ROOT/usr/share/rainboot/bundle/charts/rainbond-6.0.0.tgz --namespace rbd-system --create-namespace --kubeconfig ROOT/etc/rancher/rke2/rke2.yaml --values ROOT/etc/rainboot/rainbond/values.yaml
EOF
check "rke2 bootstrap: values.yaml is 0600 (passwords)" \
        [ "$(stat -c %a "$nd/root/etc/rainboot/rainbond/values.yaml")" = 600 ]
check "rke2 bootstrap: helm installed from the bundle" installed "$nd" helm
n=$(calls "$nd" | wc -l)
apply "$nd" x rainbond
check "rke2 bootstrap: a rerun of rainbond runs helm no more (journal)" [ "$(calls "$nd" | wc -l)" -eq "$n" ]
nd=$_tmp/rke2-master
apply "$nd" x rainbond
check "rke2 master: rainbond is skipped off the bootstrap master" [ "$(step_state "$nd" rainbond)" = skipped ]

# ---- kubeadm ----
for kind in bootstrap:$ID1:init master:$ID2:join agent:$ID4:join; do
        IFS=: read -r what id verb <<<"$kind"
        nd=$(node "kubeadm-$what" kubeadm "$id" "${KUBEADM_BUNDLE[@]}") || { not_ok "kubeadm $what: setup"; exit 1; }
        apply "$nd" x kubernetes
        check "kubeadm $what: the kubernetes step is done (journal: $(step_state "$nd" kubernetes))" \
                [ "$(step_state "$nd" kubernetes)" = done ]
        extra=
        [ "$verb" = init ] && extra=" --upload-certs"
        ready=
        [ "$what" != agent ] && ready="
kubectl --kubeconfig ROOT/etc/kubernetes/admin.conf get --raw /readyz"
        # The kubelet is enabled before kubeadm, which starts it (not the double: so the
        # service manager starts it here).
        expect_calls "$nd" "kubeadm $what: exact command sequence (kubeadm $verb)" <<EOF
systemctl daemon-reload
systemctl restart containerd.service
systemctl enable kubelet.service
kubeadm $verb --config ROOT/etc/rainboot/kubeadm.yaml$extra
systemctl is-active --quiet kubelet.service
systemctl is-active --quiet kubelet.service
systemctl is-enabled --quiet kubelet.service
systemctl start kubelet.service$ready
systemctl is-active --quiet kubelet.service
EOF
        check "kubeadm $what: kubeadm, kubelet and kubectl installed from the bundle" \
                eval 'installed "$nd" kubeadm && installed "$nd" kubelet && installed "$nd" kubectl'
        check "kubeadm $what: the kubeadm config is 0600 (token, certificate key)" \
                [ "$(stat -c %a "$nd/root/etc/rainboot/kubeadm.yaml")" = 600 ]
        if [ "$what" = bootstrap ]; then
                check "kubeadm bootstrap: kubeadm gets its CA (key 0600) before init" \
                        [ "$(stat -c %a "$nd/root/etc/kubernetes/pki/ca.key")" = 600 ]
                # What every joiner pins, computed by openssl from the CA the bootstrap wrote.
                pin=sha256:$(openssl x509 -in "$nd/root/etc/kubernetes/pki/ca.crt" -pubkey -noout |
                        openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
        else
                check "kubeadm $what: joins through the VIP pinning the bootstrap's CA" \
                        eval 'grep -qx "    apiServerEndpoint: '\''192.0.2.100:16443'\''" "$nd/root/etc/rainboot/kubeadm.yaml" &&
                              grep -qx "      - '\''$pin'\''" "$nd/root/etc/rainboot/kubeadm.yaml"'
                check "kubeadm $what: never skips the CA check" \
                        eval '! grep -q unsafeSkipCAVerification "$nd/root/etc/rainboot/kubeadm.yaml"'
        fi

        n=$(calls "$nd" | wc -l)
        apply "$nd" x kubernetes
        check "kubeadm $what: a rerun runs nothing again (journal)" [ "$(calls "$nd" | wc -l)" -eq "$n" ]
        # kubeadm wrote kubelet.conf when it joined (the double does not): with the journal
        # lost, the step runs again but never inits or joins twice.
        mkdir -p "$nd/root/etc/kubernetes"
        touch "$nd/root/etc/kubernetes/kubelet.conf"
        rm -f "$nd/state/journal.json" "$nd/calls.units"
        : >"$nd/calls"
        apply "$nd" x kubernetes
        check "kubeadm $what: without the journal, the step is done again (journal: $(step_state "$nd" kubernetes))" \
                [ "$(step_state "$nd" kubernetes)" = done ]
        check "kubeadm $what: ... and kubeadm $verb did not run twice, the kubelet was started" \
                eval '! grep -q "^kubeadm" "$nd/calls" && grep -qx "systemctl start kubelet.service" "$nd/calls"'
done

nd=$_tmp/kubeadm-bootstrap
: >"$nd/calls"
apply "$nd" x rainbond
expect_calls "$nd" "kubeadm bootstrap: helm installs Rainbond with kubeadm's admin kubeconfig" <<'EOF'
helm upgrade --install rainbond ROOT/usr/share/rainboot/bundle/charts/rainbond-6.0.0.tgz --namespace rbd-system --create-namespace --kubeconfig ROOT/etc/kubernetes/admin.conf --values ROOT/etc/rainboot/rainbond/values.yaml
EOF

# ---- a bundle without the binaries ----
nd=$(node rke2-missing rke2 "$ID4" binary:helm:bin/helm) || { not_ok "missing: setup"; exit 1; }
apply "$nd" x kubernetes
check "no rke2 in the bundle: apply succeeds, the step is skipped" \
        [ "$(step_state "$nd" kubernetes)" = skipped ]
reason="no rke2 binary in the offline bundle (/usr/share/rainboot/bundle.json)"
st=$("$FIRSTBOOT" --cmdline "" -c "$nd/cluster.yaml" status --state-dir "$nd/state" \
        --machine-id-file "$nd/machine-id" 2>&1)
check "no rke2 in the bundle: \`firstboot status\` names the reason" grep -qF "$reason" <<<"$st"
check "no rke2 in the bundle: nothing was run" [ ! -s "$nd/calls" ]
nd=$(node kubeadm-missing kubeadm "$ID1" binary:kubeadm:bin/kubeadm-v1.31.4 binary:helm:bin/helm \
        chart:rainbond:charts/rainbond-6.0.0.tgz) || { not_ok "missing: setup"; exit 1; }
apply "$nd" x kubernetes
apply "$nd" x rainbond
st=$("$FIRSTBOOT" --cmdline "" -c "$nd/cluster.yaml" status --json --state-dir "$nd/state" \
        --machine-id-file "$nd/machine-id" 2>&1)
check "no kubelet in the bundle: status --json has the step skipped with its reason" \
        eval 'jq -e ".. | objects | select(.name? == \"kubernetes\") | select(.state == \"skipped\" and .note == \"no kubelet binary in the offline bundle (/usr/share/rainboot/bundle.json)\")" <<<"$st" >/dev/null'
check "no kubelet in the bundle: Rainbond's values are still written, helm is not run" \
        eval '[ -f "$nd/root/etc/rainboot/rainbond/values.yaml" ] && [ ! -s "$nd/calls" ] &&
              grep -q "helm: no Kubernetes here" "$nd/root/etc/rainboot/rainbond/values.yaml"'
