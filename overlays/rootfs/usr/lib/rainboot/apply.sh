#!/bin/sh
# Data disks first (never a disk with data: see `firstboot disks plan`), then wait for
# discovery to commit a plan and hand this node the cluster secrets, then bring up the
# services (journaled: a restart resumes). The wait is bounded; systemd restarts us.
state=/var/lib/rainboot
if [ ! -e "$state/disks.done" ]; then
        if /usr/sbin/firstboot disks apply; then
                mkdir -p "$state" && touch "$state/disks.done"
        else
                echo "rainboot: disks apply failed; services keep their data on the system disk"
        fi
fi
n=0
until [ -s "$state/plan.json" ] && [ -s "$state/secrets/cluster.env" ]; do
        n=$((n + 1))
        if [ "$n" -gt 3600 ]; then
                echo "rainboot: no committed plan after an hour: see 'firstboot status'" >&2
                exit 1
        fi
        sleep 1
done
exec /usr/sbin/firstboot apply
