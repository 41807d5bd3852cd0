#!/bin/bash
# imagebuild's offline bundle with a real OCI image, built here from a busybox-static root
# with umoci and packed with skopeo (nothing is pulled from a network): `bundle add`
# records it, `bundle verify` and `imagebuild check SPEC` accept it, and after one byte
# of the archive changes both refuse, naming the file.
. "$(dirname "$0")/lib.sh"
IMAGEBUILD=$(dirname "$FIRSTBOOT")/imagebuild
for t in umoci skopeo; do
        command -v $t >/dev/null || { not_ok "$t is installed (make deps)"; exit 1; }
done
[ -x /bin/busybox ] || { not_ok "busybox-static is installed (make deps)"; exit 1; }

b=$_tmp/bundle
mkdir -p "$b/images"
make_oci_archive "$b/images/busybox.tar" /bin/busybox true
check "a busybox OCI archive is built locally" \
        eval 'skopeo inspect "oci-archive:$b/images/busybox.tar" 2>/dev/null | grep -q "\"Os\": \"linux\""'

check "bundle add records it" "$IMAGEBUILD" -q bundle add "$b" "$b/images/busybox.tar" --kind oci-archive --name busybox
check "the manifest names it with its kind and sha256" \
        eval 'jq -e --arg h "$(sha256sum < "$b/images/busybox.tar" | cut -d" " -f1)" \
                ".artifacts[0] | .name == \"busybox\" and .kind == \"oci-archive\" and .sha256 == \$h and .file == \"images/busybox.tar\"" \
                "$b/manifest.json" >/dev/null'
check "bundle verify accepts it" "$IMAGEBUILD" -q bundle verify "$b"

cat > "$_tmp/spec.yaml" <<YAML
name: t
bundle: $b
outputs: [qcow2]
YAML
check "imagebuild check accepts a spec with the bundle" "$IMAGEBUILD" -q check "$_tmp/spec.yaml"

printf 'X' | dd of="$b/images/busybox.tar" bs=1 seek=600 conv=notrunc status=none
out=$("$IMAGEBUILD" bundle verify "$b" 2>&1); rc=$?
check "bundle verify refuses the changed archive (exit 1)" [ "$rc" -eq 1 ]
check "and names the file and the hash mismatch" \
        grep -q "$b/images/busybox.tar: sha256 mismatch (artifact 'busybox')" <<<"$out"
out=$("$IMAGEBUILD" check "$_tmp/spec.yaml" 2>&1); rc=$?
check "imagebuild check refuses the spec, naming the file" \
        eval '[ "$rc" -eq 1 ] && grep -q "busybox.tar: sha256 mismatch" <<<"$out"'
