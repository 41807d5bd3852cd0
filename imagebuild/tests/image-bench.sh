#!/bin/bash
# make image-bench: imagebuild timings and sizes as a table. Root; about 15 minutes.
#   cold build (empty cache), warm build, rebuild after changing only firstboot,
#   ISO and qcow2 sizes, byte-identity of two builds with SOURCE_DATE_EPOCH, and
#   boot-to-firstboot time of the qcow2 under QEMU TCG (in a private namespace).
# Usage: image-bench.sh BUILD_DIR [SPEC]
set -u
build=$(cd "${1:?build dir}" && pwd)
spec=${2:-configs/image.yaml}
ib=$build/imagebuild fb=$build/firstboot
work=$(mktemp -d /tmp/rainboot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
name=$(sed -n 's/^name: *//p' "$spec"); name=${name:-rainboot}

secs() { local t0=$SECONDS; "$@" >"$work/last.log" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$work/last.log" >&2; exit 1; }; echo $((SECONDS - t0)); }
mib() { echo $(( $(stat -c %s "$1") / 1048576 )); }

cold=$(secs "$ib" -q build "$spec" -o "$work/a" --cache "$work/cache" --firstboot "$fb")
warm=$(secs "$ib" -q build "$spec" -o "$work/a" --cache "$work/cache" --firstboot "$fb")
cp "$fb" "$work/firstboot"; printf '\n# bench %s\n' "$RANDOM" >> "$work/firstboot"
touched=$(secs "$ib" -q build "$spec" -o "$work/a" --cache "$work/cache" --firstboot "$work/firstboot")
iso=$(mib "$work/a/$name.iso") qcow=$(mib "$work/a/$name.qcow2")

export SOURCE_DATE_EPOCH=1700000000
secs "$ib" -q build "$spec" -o "$work/r1" --cache "$work/cache-r" --firstboot "$fb" >/dev/null
secs "$ib" -q build "$spec" -o "$work/r2" --cache "$work/cache-r" --firstboot "$fb" >/dev/null
same() { cmp -s "$work/r1/$1" "$work/r2/$1" && echo identical || echo "differs ($(cmp -l "$work/r1/$1" "$work/r2/$1" | wc -l) bytes)"; }
iso_same=$(same "$name.iso") qcow_same=$(same "$name.qcow2")
unset SOURCE_DATE_EPOCH

ns=rb-bench-$$
ip netns add "$ns" && ip -n "$ns" link set lo up
qemu-img create -q -f qcow2 -b "$work/a/$name.qcow2" -F qcow2 "$work/boot.qcow2"
: > "$work/serial"
t0=$SECONDS
ip netns exec "$ns" qemu-system-x86_64 -accel tcg -m 1536 -smp 2 -display none -monitor none \
        -serial "file:$work/serial" -no-reboot -nic user,model=virtio-net-pci \
        -drive "file=$work/boot.qcow2,if=virtio" >/dev/null 2>&1 &
pid=$!
while [ $((SECONDS - t0)) -lt 600 ] && kill -0 "$pid" 2>/dev/null; do
        grep -aqE 'firstboot\[[0-9]+\]: NICs:' "$work/serial" && break
        sleep 1
done
grep -aqE 'firstboot\[[0-9]+\]: NICs:' "$work/serial" && boot="$((SECONDS - t0)) s" || boot="no report in 600 s"
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
ip netns delete "$ns"

printf '%-44s %s\n' "imagebuild ($spec)" "value" \
        "cold build (no rootfs cache)" "$cold s" \
        "warm build (rootfs cached)" "$warm s" \
        "rebuild after changing only firstboot" "$touched s" \
        "ISO size (no user bundle)" "$iso MiB" \
        "qcow2 size (no user bundle)" "$qcow MiB" \
        "ISO, 2 builds, SOURCE_DATE_EPOCH, same rootfs" "$iso_same" \
        "qcow2, 2 builds, SOURCE_DATE_EPOCH, same rootfs" "$qcow_same" \
        "boot to firstboot inventory (qcow2, TCG)" "$boot" \
        "live-build anchor (DESIGN.md, not run here)" "~300 s cold, ~240 s warm, 402 MiB ISO"
