#!/bin/sh
# Per-VM provisioning that needs no network and no kernel command line: QEMU passes files
# with `-fw_cfg name=opt/rainboot/NAME,file=PATH`; each one present replaces the image's
# default. Absent entries leave the image as built (bare metal has no fw_cfg at all).
#   hostname         this node's hostname
#   cluster.yaml     /etc/rainboot/cluster.yaml (e.g. expected_nodes, VIP, token)
#   token            /etc/rainboot/token (0600)
#   authorized_keys  /root/.ssh/authorized_keys
set -eu
modprobe qemu_fw_cfg 2>/dev/null || true
d=/sys/firmware/qemu_fw_cfg/by_name/opt/rainboot
[ -d "$d" ] || exit 0
has() { [ -r "$d/$1/raw" ]; }
umask 022
mkdir -p /etc/rainboot
if has hostname; then
        h=$(tr -cd 'a-z0-9-' < "$d/hostname/raw")
        [ -n "$h" ] && echo "$h" > /etc/hostname && hostname "$h"
fi
has cluster.yaml && cat "$d/cluster.yaml/raw" > /etc/rainboot/cluster.yaml
if has token; then
        (umask 077 && cat "$d/token/raw" > /etc/rainboot/token)
fi
if has authorized_keys; then
        mkdir -p -m 0700 /root/.ssh
        (umask 077 && cat "$d/authorized_keys/raw" > /root/.ssh/authorized_keys)
fi
echo "rainboot: provisioned from fw_cfg: $(ls "$d" | tr '\n' ' ')"
