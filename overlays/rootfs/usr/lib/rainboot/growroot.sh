#!/bin/sh
# The qcow2 is small; the disk it is written to or resized into is larger. growpart
# exits 1 with NOCHANGE when there is nothing to grow, which is not a failure.
set -eu
part=$(findmnt -no SOURCE /)
disk=/dev/$(lsblk -no PKNAME "$part")
num=$(cat "/sys/class/block/$(basename "$part")/partition")
# growpart waits for udev to settle, i.e. for the whole coldplug (minutes under TCG),
# even when the partition already ends at the disk's end (a VM's copy-on-write overlay
# of the image): ask sysfs first. 34 sectors: the backup GPT; 2048: alignment slack.
b=/sys/class/block
if [ "$(( $(cat "$b/${part#/dev/}/start") + $(cat "$b/${part#/dev/}/size") + 34 + 2048 ))" -lt \
     "$(cat "$b/${disk#/dev/}/size")" ]; then
        out=$(growpart "$disk" "$num" 2>&1) || case $out in NOCHANGE*) ;; *) echo "$out" >&2; exit 1 ;; esac
fi
resize2fs "$part"
mkdir -p /var/lib/rainboot
touch /var/lib/rainboot/growroot.done
