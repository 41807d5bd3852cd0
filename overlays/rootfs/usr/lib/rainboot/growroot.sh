#!/bin/sh
# The qcow2 is small; the disk it is written to or resized into is larger. growpart
# exits 1 with NOCHANGE when there is nothing to grow, which is not a failure.
set -eu
part=$(findmnt -no SOURCE /)
disk=/dev/$(lsblk -no PKNAME "$part")
num=$(cat "/sys/class/block/$(basename "$part")/partition")
out=$(growpart "$disk" "$num" 2>&1) || case $out in NOCHANGE*) ;; *) echo "$out" >&2; exit 1 ;; esac
resize2fs "$part"
mkdir -p /var/lib/rainboot
touch /var/lib/rainboot/growroot.done
