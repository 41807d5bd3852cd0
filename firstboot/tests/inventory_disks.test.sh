#!/bin/bash
# Disk inventory against loop devices this test creates (needs root). Every probe but
# the host-wide read-only one names the test's own loop devices with --disk.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
for tool in losetup parted mkfs.ext4 jq pvcreate lsblk findmnt base64; do
        command -v "$tool" >/dev/null || { not_ok "missing tool $tool (make deps)"; exit 1; }
done

exec </dev/null

# wait_node PATH: the kernel creates partition nodes asynchronously after a re-read.
wait_node() {
        local i
        for ((i = 0; i < 100; i++)); do
                [ -b "$1" ] && return 0
                sleep 0.1
        done
        return 1
}
# newloop SIZE: like $(mkloop SIZE) into $LOOP, but in this shell, so that the detach
# mkloop registers with on_exit is not lost in a command-substitution subshell.
LOOP=
newloop() {
        mkloop "$1" >"$_tmp/loopdev" || return 1
        LOOP=$(<"$_tmp/loopdev")
        [ -b "$LOOP" ]
}
# inv ARGS...: JSON inventory into $J, stderr into $E, exit status into $rc.
J= E= rc=
inv() {
        J=$("$FIRSTBOOT" inventory --json "$@" 2>"$_tmp/stderr")
        rc=$?
        E=$(cat "$_tmp/stderr")
}
# jqj FILTER [jq args...]: FILTER holds for the whole of $J.
jqj() {
        local f=$1
        shift
        jq -e "$@" "$f" <<<"$J" >/dev/null
}
# jqd FILTER [jq args...]: FILTER holds for the single disk in $J.
jqd() {
        local f=$1
        shift
        jq -e "$@" "(.disks | length) == 1 and (.disks[0] | $f)" <<<"$J" >/dev/null
}

# (1) blank disk
newloop 64M && L=$LOOP || { not_ok "create loop device"; exit 1; }
n=$(basename "$L")
inv --disk "$L"
check "blank: inventory --disk succeeds" [ "$rc" -eq 0 ]
check "blank: one disk, right path and name" jqd '.path == $p and .name == $n' --arg p "$L" --arg n "$n"
check "blank: size is 64 MiB" jqd '.size_bytes == 67108864'
check "blank: no partition table, no partitions, no signatures" \
        jqd '.pttype == null and .partitions == [] and .signatures == []'
check "blank: sector sizes 512" jqd '.logical_sector_size == 512 and .physical_sector_size == 512'
check "blank: transport loop, devnum matches sysfs" \
        jqd '.transport == "loop" and .devnum == $d' --arg d "$(cat /sys/block/"$n"/dev)"
check "blank: not system, not boot medium, not in use" \
        jqd '.holds_system == false and .boot_medium == false and .in_use == null'

# (2) MBR with one partition
parted -s "$L" mklabel msdos mkpart primary 1MiB 20MiB
inv --disk "$L"
check "dos: pttype dos, recorded as a ptable signature" \
        jqd '.pttype == "dos" and any(.signatures[]; .type == "dos" and .usage == "ptable" and .where == "disk")'
check "dos: one partition, number 1, node ${n}p1, 19 MiB" \
        jqd '.partitions | length == 1 and .[0].number == 1 and .[0].name == $p and .[0].path == "/dev/" + $p and .[0].size_bytes == 19922944 and .[0].partlabel == null' \
        --arg p "${n}p1"

# (9) wrong --disk arguments
inv --disk "${L}p1"
check "partition: --disk ${L}p1 exits 1" [ "$rc" -eq 1 ]
check "partition: error names it and points to the disk" \
        grep -q "${L}p1.*partition.*$L" <<<"$E"
inv --disk /dev/rbtest-no-such-disk
check "missing: --disk on a non-existent path exits 1" [ "$rc" -eq 1 ]
check "missing: error names the path and says what to pass" \
        grep -q "/dev/rbtest-no-such-disk.*No such file.*whole-disk block device" <<<"$E"
inv --disk "$_tmp/stderr"
check "regular file: --disk exits 1 with 'not a block device'" \
        eval '[ "$rc" -eq 1 ] && grep -q "not a block device" <<<"$E"'

# (3) GPT with a named partition
parted -s "$L" mklabel gpt mkpart rbdata ext4 1MiB 40MiB
inv --disk "$L"
check "gpt: pttype gpt" jqd '.pttype == "gpt"'
check "gpt: partition 1 carries partlabel rbdata" \
        jqd '.partitions | length == 1 and .[0].number == 1 and .[0].partlabel == "rbdata"'

# (4b) ext4 inside the GPT partition, then mounted
wait_node "${L}p1" || not_ok "partition node ${L}p1 appeared"
mkfs.ext4 -q -L rbpart "${L}p1"
inv --disk "$L"
check "gpt+ext4: ext4 signature found on ${n}p1 with its label" \
        jqd 'any(.signatures[]; .type == "ext4" and .usage == "filesystem" and .where == $p and .label == "rbpart")' \
        --arg p "${n}p1"
check "gpt+ext4: no ext4 signature claimed for the whole disk" \
        jqd 'all(.signatures[]; .type != "ext4" or .where != "disk")'
mkdir "$_tmp/mnt"
if mount -o ro "${L}p1" "$_tmp/mnt"; then
        on_exit "umount $_tmp/mnt"
        inv --disk "$L"
        check "mounted partition: in_use says where" \
                jqd '.in_use != null and (.in_use | contains("mounted at " + $m)) and .holds_system == false' \
                --arg m "$_tmp/mnt"
        umount "$_tmp/mnt"
else
        not_ok "mount ${L}p1 read-only"
fi

# (4a) whole-disk ext4
newloop 64M && L4=$LOOP || { not_ok "create loop device"; exit 1; }
mkfs.ext4 -q -L rbtest "$L4"
inv --disk "$L4"
check "whole-disk ext4: signature ext4/filesystem on disk, label rbtest, uuid" \
        jqd '.pttype == null and .signatures == [.signatures[] | select(.type == "ext4" and .usage == "filesystem" and .where == "disk" and .label == "rbtest" and (.uuid | length) > 0)] and (.signatures | length) == 1'

# (7) SSD from queue/rotational; (10) text output
n4=$(basename "$L4")
if echo 0 2>/dev/null >"/sys/block/$n4/queue/rotational"; then
        on_exit "echo 1 > /sys/block/$n4/queue/rotational"
        inv --disk "$L4"
        check "rotational=0: ssd true" jqd '.ssd == true and .rotational == false'
        txt=$("$FIRSTBOOT" inventory --disk "$L4")
        check "text: names the disk, SSD, the signature and its label" \
                eval 'grep -q "$L4.*64 MiB.*SSD" <<<"$txt" && grep -q "ext4 (filesystem) on disk label \"rbtest\"" <<<"$txt"'
        echo 1 >"/sys/block/$n4/queue/rotational"
        inv --disk "$L4"
        check "rotational=1: ssd false" jqd '.ssd == false and .rotational == true'
        txt=$("$FIRSTBOOT" inventory --disk "$L4")
        check "text: HDD when rotational" grep -q "$L4.*HDD" <<<"$txt"
else
        ok "ssd detection # SKIP kernel refused writing /sys/block/$n4/queue/rotational; only the sysfs read path is covered"
fi

# (5) mdraid members, over an old filesystem on the first one
newloop 64M && M1=$LOOP && newloop 64M && M2=$LOOP || { not_ok "create loop devices"; exit 1; }
mkfs.ext4 -q -L oldfs "$M1"
md=/dev/md/rbtest$$
if have_md; then
        on_exit "mdadm --stop $md"
        if timeout 60 mdadm --create "$md" --run --assume-clean --level=1 --raid-devices=2 \
                --metadata=1.2 "$M1" "$M2" >/dev/null 2>&1; then
                mdname=$(basename "$(readlink -f "$md")")
                inv --disk "$M1"
                check "md running: in_use names the holder $mdname" \
                        jqd '.in_use != null and (.in_use | contains("member of " + $m))' --arg m "$mdname"
                timeout 60 mdadm --stop "$md" >/dev/null 2>&1
                check "md stopped" [ ! -e "/sys/block/$mdname/md" ]
        else
                not_ok "mdadm --create on $M1 $M2"
        fi
else
        # No md driver in this kernel: write the superblock mdadm would have written,
        # and let mdadm --examine vouch for it.
        for m in "$M1" "$M2"; do write_md_superblock "$m"; done
        check "md superblock written is valid for mdadm" \
                eval 'mdadm --examine "$M1" 2>/dev/null | grep -q "Checksum.*correct"'
        ok "md holder in in_use # SKIP kernel has no md driver (no /proc/mdstat, no md_mod)"
fi
inv --disk "$M1" --disk "$M2"
check "md members: both loops listed" jqj '.disks | length == 2'
check "md members: both show linux_raid_member, usage raid" \
        jqj 'all(.disks[]; any(.signatures[]; .type == "linux_raid_member" and .usage == "raid" and .where == "disk"))'
check "md over old fs: the first also shows the old ext4 (ambivalent probe)" \
        jqj '.disks[] | select(.path == $p) | any(.signatures[]; .type == "ext4" and .label == "oldfs")' --arg p "$M1"
inv --disk "$M1" --disk "$M1"
check "same disk twice: listed once" jqj '.disks | length == 1'

# (6) LVM physical volume; --devices keeps LVM away from every other device
newloop 64M && P=$LOOP || { not_ok "create loop device"; exit 1; }
export LVM_SUPPRESS_FD_WARNINGS=1
if timeout 60 pvcreate -q --devices "$P" "$P" >/dev/null 2>&1; then
        on_exit "pvremove -q -y -ff --devices $P $P"
        inv --disk "$P"
        check "lvm: LVM2_member with usage lvm" \
                jqd 'any(.signatures[]; .type == "LVM2_member" and .usage == "lvm" and .where == "disk")'
else
        not_ok "pvcreate on $P"
fi

# Partitions the kernel did not scan (no --partscan, no /dev node): probed through the
# disk at the partition's offset.
img="$_tmp/noscan.img"
truncate -s 64M "$img"
parted -s "$img" mklabel gpt mkpart rbnoscan ext4 1MiB 33MiB
mkfs.ext4 -q -F -L rbnoscan -E offset=1048576 "$img" 32M
if NS=$(losetup --find --show "$img"); then
        on_exit "losetup -d $NS"
        inv --disk "$NS"
        check "no partscan: partition listed without a kernel node" \
                eval '[ ! -e "${NS}p1" ] && jqd ".partitions | length == 1 and .[0].partlabel == \"rbnoscan\""'
        check "no partscan: ext4 found at the partition offset" \
                jqd 'any(.signatures[]; .type == "ext4" and .label == "rbnoscan" and .where == $p)' \
                --arg p "$(basename "$NS")p1"
else
        not_ok "attach $img without partition scanning"
fi

# A disk carrying rainboot's ISO label is the boot medium even when nothing mounts it.
newloop 16M && I=$LOOP || { not_ok "create loop device"; exit 1; }
{ printf '\001CD001\001\000'; printf '%-32s' LINUX; printf '%-32s' RAINBOOT_1_0; } |
        dd of="$I" bs=2048 seek=16 conv=notrunc status=none
printf '\377CD001\001' | dd of="$I" bs=2048 seek=17 conv=notrunc status=none
inv --disk "$I"
check "iso labelled RAINBOOT_1_0: boot_medium true, not system" \
        jqd '.boot_medium == true and .holds_system == false and any(.signatures[]; .type == "iso9660" and .label == "RAINBOOT_1_0")'

# Mounts that mean "system" and "boot medium", made in a private mount namespace so the
# host's own /boot and /run are untouched: the ext4 partition of $L at /boot, the
# whole-disk ext4 $L4 at /run/live/medium.
J=$(unshare --mount --propagation private bash -c '
        mount -o ro "$1" /boot && mount -t tmpfs rbtest /run && mkdir -p /run/live/medium &&
                mount -o ro "$2" /run/live/medium && exec "$FIRSTBOOT" inventory --json --disk "$3" --disk "$2"
' rbns "${L}p1" "$L4" "$L" 2>"$_tmp/stderr")
rc=$?
check "mount namespace: inventory succeeds" [ "$rc" -eq 0 ]
check "partition mounted at /boot: holds_system, not in use" \
        jqj '.disks[] | select(.path == $p) | .holds_system == true and .boot_medium == false and .in_use == null' --arg p "$L"
check "disk mounted at /run/live/medium: boot_medium, not system" \
        jqj '.disks[] | select(.path == $p) | .boot_medium == true and .holds_system == false' --arg p "$L4"

# (8) the whole host, read-only: the disk behind / holds the system; loops are virtual
root_src=$(findmnt -no SOURCE /)
root_disk=
if [ -b "$root_src" ]; then
        root_disk=$(lsblk -nrso NAME,TYPE "$root_src" | awk '$2 == "disk" { print $1; exit }')
fi
inv
check "host: inventory without --disk succeeds" [ "$rc" -eq 0 ]
if [ -n "$root_disk" ]; then
        check "host: /dev/$root_disk (behind /) has holds_system true" \
                jqj 'any(.disks[]; .name == $d and .holds_system == true)' --arg d "$root_disk"
else
        ok "host root disk # SKIP / is not on a block device ($root_src)"
fi
check "host: loop devices are skipped by default" \
        jqj 'all(.disks[]; .name | startswith("loop") | not)'
inv --include-virtual
check "host: --include-virtual lists our loop $n4" \
        jqj 'any(.disks[]; .path == $p and .transport == "loop")' --arg p "$L4"
