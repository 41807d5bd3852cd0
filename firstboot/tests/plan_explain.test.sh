#!/bin/bash
# `firstboot plan --explain` on fixture views: text and JSON output, the default view under
# --state-dir, pins from the YAML config, and clear errors. Needs no root; writes only
# under the test's own temporary directory.
. ./lib.sh

views=data/views
cfg=$_tmp/cluster.yaml
cat >"$cfg" <<'EOF'
cluster:
  name: plan-test
  token: plan-test-token-0123456789
  expected_nodes: 3
vip:
  address: 192.0.2.100/24
roles:
  masters: 3
  gateways: 2
  builders: 1
EOF

plan() { "$FIRSTBOOT" --cmdline "" -c "$cfg" plan "$@"; }
jqt() { jq -e "$@" >/dev/null; }

# Text: every node, its roles and their reasons.
out=$(plan --explain --view "$views/three-nodes.json" 2>&1)
check "plan --explain exits 0" [ $? -eq 0 ]
check "every node is listed" bash -c '[ "$(grep -c "^node-[123] (" <<<"$1")" -eq 3 ]' _ "$out"
check "the SSD node is rbd-chaos, with the reason" grep -q "rbd-chaos: has an SSD (200 GiB)" <<<"$out"
check "bootstrap is explained" grep -q "bootstrap: master with the lowest node id" <<<"$out"
check "addresses are shown" grep -q "^node-2 (205eed000000) 192.0.2.12$" <<<"$out"

# JSON: one bootstrap, one MySQL primary on a master, a 64-digit digest.
json=$_tmp/plan.json
plan --explain --json --view "$views/five-nodes.json" >"$json"
check "plan --json exits 0" [ $? -eq 0 ]
check "five nodes in the JSON plan" [ "$(jq '.nodes | length' "$json")" -eq 5 ]
check "exactly one bootstrap, a master" \
        [ "$(jq '[.nodes[] | select(.roles | index("bootstrap")) | select(.roles | index("master"))] | length' "$json")" -eq 1 ]
check "exactly one mysql-primary, a master" \
        [ "$(jq '[.nodes[] | select(.roles | index("mysql-primary")) | select(.roles | index("master"))] | length' "$json")" -eq 1 ]
check "the digest is 64 hex digits" jqt '.digest | test("^[0-9a-f]{64}$")' "$json"

# The same nodes in another order give the same plan.
jq '.nodes |= reverse' "$views/five-nodes.json" >"$_tmp/reversed.json"
plan --explain --json --view "$_tmp/reversed.json" >"$_tmp/reversed-plan.json"
check "node order does not change the digest" \
        [ "$(jq -r .digest "$json")" = "$(jq -r .digest "$_tmp/reversed-plan.json")" ]

# Default view: STATE-DIR/view.json.
mkdir -p "$_tmp/state"
cp "$views/five-nodes.json" "$_tmp/state/view.json"
plan --explain --json --state-dir "$_tmp/state" >"$_tmp/state-plan.json"
check "--state-dir reads view.json there" cmp -s "$json" "$_tmp/state-plan.json"
err=$(plan --explain --state-dir "$_tmp/nowhere" 2>&1)
check "no committed view: exit 1" [ $? -eq 1 ]
check "no committed view: says so and how to go on" grep -q "has not formed a cluster yet.*--view" <<<"$err"

# A pin in the YAML config: the weakest node (node-4, 16 GiB) becomes a master.
cat >>"$cfg" <<'EOF'
  pins:
    - match: { mac: "52:54:00:00:00:08" }
      roles: [master]
EOF
plan --explain --json --view "$views/five-nodes.json" >"$_tmp/pinned.json"
check "pinned by MAC: node-4 is a master" \
        jqt '.nodes[] | select(.hostname == "node-4") | .roles | index("master")' "$_tmp/pinned.json"
check "the pin is the reason" \
        jqt '[.nodes[] | select(.hostname == "node-4") | .reasons[] | select(.role == "master") | .text | test("pinned by config")] | any' "$_tmp/pinned.json"
check "a different config gives a different digest" \
        [ "$(jq -r .digest "$json")" != "$(jq -r .digest "$_tmp/pinned.json")" ]

# Errors.
printf '{"nodes": [{"id": "00112233445566778899aabbccddeeff", "hostname": "x", "cpus": 1, "memory_bytes": -1}]}' \
        >"$_tmp/bad.json"
err=$(plan --explain --view "$_tmp/bad.json" 2>&1)
check "bad view: exit 1" [ $? -eq 1 ]
check "bad view: names the node and field" grep -q "bad.json: nodes\[0\].memory_bytes: expected an integer >= 0" <<<"$err"
plan --view "$views/three-nodes.json" >/dev/null 2>&1
check "plan without --explain is a usage error (2)" [ $? -eq 2 ]
