#!/bin/bash
# The offline bundle of the cluster test image: one small real OCI image (busybox-static
# root, built here with umoci and packed with skopeo; nothing is pulled from a network).
# Usage: make-bundle.sh IMAGEBUILD DIR
set -eu
ib=$1 dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dir/images"
(
        cd "$tmp"
        umoci init --layout img
        umoci new --image img:bb
        umoci unpack --rootless --image img:bb root
        mkdir -p root/rootfs/bin
        cp /bin/busybox root/rootfs/bin/
        umoci repack --image img:bb root
        umoci config --image img:bb --config.cmd /bin/busybox --config.cmd httpd --config.cmd -f
        skopeo copy -q oci:img:bb "oci-archive:$tmp/busybox.tar"
) >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
mv "$tmp/busybox.tar" "$dir/images/busybox.tar"
"$ib" -q bundle add "$dir" "$dir/images/busybox.tar" --kind oci-archive --name busybox
