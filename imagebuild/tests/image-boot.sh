#!/bin/bash
# Boot test of built images (make image-test): boots the qcow2 (BIOS and UEFI) and the ISO
# (BIOS) under QEMU with TCG, inside a network namespace of the test's own, and passes
# when firstboot's inventory appears on the serial console. TAP output.
# Usage: image-boot.sh OUT_DIR IMAGE_NAME
# Needs root (ip netns). Each boot is bounded by BOOT_TIMEOUT seconds (default 420).
set -u
out=$(cd "${1:?output dir of imagebuild build}" && pwd)
name=${2:?image name}
timeout_s=${BOOT_TIMEOUT:-420}
FIRSTBOOT=${FIRSTBOOT:-unused}
. "$(dirname "$0")/../../firstboot/tests/lib.sh"

# make image-test must fail when any check does: count them (lib.sh only prints).
fails=0
not_ok() { _n=$((_n + 1)); fails=$((fails + 1)); echo "not ok $_n - $*"; }

need_root "network namespaces"
command -v qemu-system-x86_64 >/dev/null || { not_ok "qemu-system-x86_64 is not installed"; exit 1; }
ns=rb-img-$$
mknetns "$ns"
ip -n "$ns" link set lo up

# boot LABEL EXPECT QEMU_ARGS...: starts QEMU in the namespace, waits until the serial log
# shows EXPECT (a grep -E pattern) or the timeout passes, then stops that QEMU only.
# With UNTIL_EXIT=1 it waits for QEMU to exit by itself (the guest reboots; -no-reboot).
boot() {
        local label=$1 expect=$2 log="$_tmp/$1.serial" pid start
        shift 2
        : > "$log"
        # -nic user: slirp lives inside the empty namespace; DHCP answers, nothing leaves.
        ip netns exec "$ns" qemu-system-x86_64 -accel tcg -m 1536 -smp 2 -display none \
                -monitor none -serial "file:$log" -no-reboot \
                -nic user,model=virtio-net-pci "$@" >"$_tmp/$label.qemu" 2>&1 &
        pid=$!
        on_exit "kill $pid"
        start=$SECONDS
        while [ $((SECONDS - start)) -lt "$timeout_s" ] && kill -0 "$pid" 2>/dev/null; do
                [ "${UNTIL_EXIT:-0}" = 1 ] || ! grep -aqE "$expect" "$log" || break
                sleep 2
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        if grep -aqE "$expect" "$log"; then
                ok "$label: ${DESC:-serial console shows '$expect'} after $((SECONDS - start)) s"
        else
                not_ok "$label: ${DESC:-'$expect'} not seen within $timeout_s s; last serial lines:"
                tail -n 15 "$log" | sed 's/^/#   /'
                sed 's/^/#   qemu: /' "$_tmp/$label.qemu"
        fi
}

inventory='^NICs:|firstboot\[[0-9]+\]: NICs:'
export DESC="firstboot reported its inventory on the serial console"
if [ -f "$out/$name.qcow2" ]; then
        # A larger overlay disk: the root partition must grow to fill it.
        qemu-img create -q -f qcow2 -b "$out/$name.qcow2" -F qcow2 "$_tmp/bios.qcow2" 6G
        boot qcow2-bios "$inventory" -drive "file=$_tmp/bios.qcow2,if=virtio"
        check "qcow2-bios: the root filesystem grew to fill the 6G disk" \
                grep -aq "EXT4-fs (vda3): resized filesystem to" "$_tmp/qcow2-bios.serial"
        if [ -f /usr/share/OVMF/OVMF_CODE.fd ]; then
                qemu-img create -q -f qcow2 -b "$out/$name.qcow2" -F qcow2 "$_tmp/uefi.qcow2"
                cp /usr/share/OVMF/OVMF_VARS.fd "$_tmp/vars.fd"
                boot qcow2-uefi "$inventory" \
                        -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
                        -drive "if=pflash,format=raw,file=$_tmp/vars.fd" \
                        -drive "file=$_tmp/uefi.qcow2,if=virtio"
        else
                not_ok "qcow2-uefi: OVMF is not installed (apt-get install ovmf)"
        fi
else
        not_ok "no $out/$name.qcow2"
fi
if [ -f "$out/$name.iso" ]; then
        iso=$out/$name.iso
        boot iso-bios "$inventory" -cdrom "$iso"

        # The installer entry, with the kernel started directly: the same command line as
        # GRUB's "install rainboot to disk" entry, without driving the menu.
        xorriso -osirrox on -indev "$iso" -extract /live/vmlinuz "$_tmp/vmlinuz" \
                -extract /live/initrd.img "$_tmp/initrd.img" >/dev/null 2>&1
        install_boot() {  # LABEL EXPECT DISK (UNTIL_EXIT from the caller)
                boot "$1" "$2" -cdrom "$iso" -kernel "$_tmp/vmlinuz" \
                        -initrd "$_tmp/initrd.img" \
                        -append "boot=live components rainboot.install console=ttyS0,115200" \
                        -drive "file=$3,if=virtio,format=raw"
        }

        # A disk that holds a filesystem: refused, with the reason, and left alone.
        truncate -s 4G "$_tmp/used.raw"
        mkfs.ext4 -q -L userdata "$_tmp/used.raw"
        used_sum=$(head -c 64M "$_tmp/used.raw" | md5sum)
        DESC="the installer refused, saying nothing was changed" install_boot iso-install-refuses 'no disk may be written \(reasons above\); nothing was changed' \
                "$_tmp/used.raw"
        check "iso-install-refuses: says why: /dev/vda holds ext4" \
                grep -aq "not /dev/vda: holds data (ext4 (label userdata))" \
                "$_tmp/iso-install-refuses.serial"
        check "iso-install-refuses: the disk with data is unchanged" \
                [ "$(head -c 64M "$_tmp/used.raw" | md5sum)" = "$used_sum" ]

        # A blank disk: installed, rebooted, and the installed system boots on its own.
        truncate -s 4G "$_tmp/blank.raw"
        UNTIL_EXIT=1 DESC="the installer wrote the disk" install_boot iso-install 'install: done' "$_tmp/blank.raw"
        check "iso-install: then rebooted" grep -aq "reboot: Restarting system" "$_tmp/iso-install.serial"
        boot installed-disk "$inventory" -drive "file=$_tmp/blank.raw,if=virtio,format=raw"
else
        not_ok "no $out/$name.iso"
fi
exit $((fails > 0))
