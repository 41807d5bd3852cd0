#!/bin/bash
# disks plan/apply on loop devices made from sparse files by this test: what may be
# written is written (GPT, aligned partition, ext4, fstab by UUID), what holds data is
# left byte-for-byte alone, and a second run reuses instead of formatting again.
# Root: uses losetup, mdadm, mkfs. Never touches a host disk: every command names the
# test's own loop devices with --disk, and --root keeps fstab inside a temp directory.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"

cfg=$_tmp/cluster.yaml
write_cfg() {  # wipe, devices (yaml list), force_members
        cat > "$cfg" <<YAML
cluster:
  name: disktest
  token: "0123456789abcdef0123"
  expected_nodes: 1
disks:
  data_mount: /opt/rainbond
  wipe: $1
  devices: $2
  force_members: $3
YAML
}
fb() { "$FIRSTBOOT" --cmdline "" -c "$cfg" "$@"; }
sum() { md5sum < "$1" | cut -d' ' -f1; }
backing() { losetup -n -O BACK-FILE "$1" | sed 's/ *$//'; }
verdict() {  # json, path -> "verdict target"
        jq -r --arg p "$2" '.disks[] | select(.path == $p) | "\(.verdict) \(.target)"' <<<"$1"
}

A=$(mkloop 1100M) B=$(mkloop 1100M) C=$(mkloop 1100M) E=$(mkloop 1100M)
echo 0 > "/sys/block/${B#/dev/}/queue/rotational" 2>/dev/null
mkfs.ext4 -q -L olddata "$C"
parted -s "$E" mklabel gpt mkpart keep 1MiB 100%
C_sum=$(sum "$(backing "$C")") E_sum=$(sum "$(backing "$E")")
A_sum=$(sum "$(backing "$A")")
disks=(--include-virtual --disk "$A" --disk "$B" --disk "$C" --disk "$E")

write_cfg empty-only "[]" false
plan=$(fb disks plan --json "${disks[@]}")
check "plan: blank HDD becomes data" [ "$(verdict "$plan" "$A")" = "format data" ]
if [ "$(cat "/sys/block/${B#/dev/}/queue/rotational")" = 0 ]; then
        check "plan: blank SSD becomes build cache" [ "$(verdict "$plan" "$B")" = "format cache" ]
else
        ok "# SKIP kernel refused queue/rotational=0; SSD choice covered by test_diskplan"
fi
check "plan: disk with ext4 refused" [ "$(verdict "$plan" "$C")" = "refused null" ]
check "plan: refusal says why" grep -q "holds data (ext4 (label olddata))" <<<"$plan"
check "plan: disk with a GPT refused" [ "$(verdict "$plan" "$E")" = "refused null" ]
text=$(fb disks plan "${disks[@]}")
check "plan text names every disk" bash -c 'for d in "$@"; do grep -q "^  $d " <<<"$0" || exit 1; done' "$text" "$A" "$B" "$C" "$E"
check "plan wrote nothing" [ "$(sum "$(backing "$A")")" = "$A_sum" ]

root=$_tmp/root
mkdir -p "$root/etc"
echo "proc /proc proc defaults 0 0" > "$root/etc/fstab"
out=$(fb disks apply --root "$root" "${disks[@]}" 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
check "apply exits 0" [ $rc -eq 0 ]
check "A has a GPT" [ "$(blkid -p -o value -s PTTYPE "$A")" = gpt ]
check "A1 named rainboot-data" [ "$(blkid -p -o value -s PART_ENTRY_NAME "${A}p1")" = rainboot-data ]
check "A1 is ext4 labelled rb-data" [ "$(blkid -p -o value -s LABEL "${A}p1")" = rb-data ]
start=$(cat "/sys/block/${A#/dev/}/${A#/dev/}p1/start")
check "A1 starts 1 MiB aligned (sector $start)" [ $((start % 2048)) -eq 0 ]
uuidA=$(blkid -p -o value -s UUID "${A}p1")
check "fstab mounts A1 by UUID at /opt/rainbond" grep -q "^UUID=$uuidA /opt/rainbond ext4 .*x-rainboot.target=data" "$root/etc/fstab"
check "fstab keeps the existing line" grep -q "^proc /proc proc defaults 0 0$" "$root/etc/fstab"
check "mount point created under --root" [ -d "$root/opt/rainbond" ]
if [ "$(cat "/sys/block/${B#/dev/}/queue/rotational")" = 0 ]; then
        uuidB=$(blkid -p -o value -s UUID "${B}p1")
        check "fstab mounts the SSD at the cache mount" grep -q "^UUID=$uuidB /opt/rainbond/cache ext4" "$root/etc/fstab"
        check "services bind-mounted from the SSD" grep -q "^/opt/rainbond/cache/.rainboot/services /var/lib/rainboot/data none bind" "$root/etc/fstab"
fi
check "disk with ext4 untouched (byte for byte)" [ "$(sum "$(backing "$C")")" = "$C_sum" ]
check "disk with GPT untouched (byte for byte)" [ "$(sum "$(backing "$E")")" = "$E_sum" ]
check "no temp files left in etc" [ "$(ls "$root/etc")" = fstab ]

# Second run: everything reused, nothing formatted, fstab unchanged.
fstab1=$(cat "$root/etc/fstab")
plan=$(fb disks plan --json "${disks[@]}")
check "re-plan: A reused" [ "$(verdict "$plan" "$A")" = "reuse data" ]
fb disks apply --root "$root" "${disks[@]}" >/dev/null 2>&1
check "re-apply keeps A's filesystem (same UUID)" [ "$(blkid -p -o value -s UUID "${A}p1")" = "$uuidA" ]
check "re-apply leaves fstab identical" [ "$(cat "$root/etc/fstab")" = "$fstab1" ]

# force-listed: the listed disk with data is overwritten; the unlisted one is not.
write_cfg force-listed "[ $C ]" false
plan=$(fb disks plan --json "${disks[@]}")
check "force-listed: listed C will be formatted" [ "$(verdict "$plan" "$C" | cut -d' ' -f1)" = format ]
check "force-listed: unlisted E refused" grep -q "not listed in disks.devices" <<<"$(jq -r --arg p "$E" '.disks[]|select(.path==$p).reason' <<<"$plan")"
check "force-listed: warning names C" grep -q "$C will be overwritten" <<<"$plan"
fb disks apply --root "$_tmp/root2" --include-virtual --disk "$C" >/dev/null 2>&1
check "force-listed: C now has rainboot's ext4" [ "$(blkid -p -o value -s LABEL "${C}p1")" = rb-data ]
check "force-listed: the old label is gone" bash -c "! blkid -p $C ${C}p1 | grep -q olddata"

# Half-prepared: rainboot's partition without a filesystem is formatted again.
H=$(mkloop 1100M)
parted -s "$H" mklabel gpt mkpart rainboot-data 1MiB 100%
write_cfg empty-only "[]" false
plan=$(fb disks plan --json --include-virtual --disk "$H")
check "half-prepared disk is formatted again" [ "$(verdict "$plan" "$H")" = "format data" ]

# RAID members: refused even when listed and force-listed, unless force_members.
R1=$(mkloop 1100M) R2=$(mkloop 1100M)
md=/dev/md$((100 + $$ % 100))
if have_md && mdadm --create "$md" --run --quiet --level=1 --raid-devices=2 --metadata=1.2 "$R1" "$R2" </dev/null >/dev/null 2>&1; then
        on_exit "mdadm --stop $md"
        plan=$(fb disks plan --json --include-virtual --disk "$R1")
        check "running array member refused as in use" [ "$(verdict "$plan" "$R1")" = "refused null" ]
        mdadm --stop "$md" >/dev/null 2>&1
else
        # No md driver in this kernel: the member carries the superblock mdadm writes.
        write_md_superblock "$R1"
        ok "running array member refused as in use # SKIP kernel has no md driver"
fi
R1_sum=$(sum "$(backing "$R1")")
write_cfg force-listed "[ $R1 ]" false
plan=$(fb disks plan --json --include-virtual --disk "$R1")
check "RAID member, force-listed: still refused" [ "$(verdict "$plan" "$R1")" = "refused null" ]
check "refusal asks for force_members" grep -q force_members <<<"$plan"
fb disks apply --root "$_tmp/root3" --include-virtual --disk "$R1" >/dev/null 2>&1
check "refused member untouched by apply" [ "$(sum "$(backing "$R1")")" = "$R1_sum" ]
write_cfg force-listed "[ $R1 ]" true
fb disks apply --root "$_tmp/root3" --include-virtual --disk "$R1" >/dev/null 2>&1
check "force_members: member formatted" [ "$(blkid -p -o value -s LABEL "${R1}p1")" = rb-data ]
check "force_members: no raid superblock left on disk or partition" \
        bash -c "! blkid -p $R1 ${R1}p1 2>/dev/null | grep -q linux_raid_member && ! mdadm --examine $R1 ${R1}p1 >/dev/null 2>&1"

# The host's own disks: plan only (never apply here). The disk backing / is refused.
rootdisk=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)" 2>/dev/null | head -1)
[ -z "$rootdisk" ] && rootdisk=$(basename "$(findmnt -no SOURCE /)")
plan=$(fb disks plan --json)
check "system disk /dev/$rootdisk refused" [ "$(jq -r --arg p "/dev/$rootdisk" '.disks[]|select(.path==$p).reason' <<<"$plan")" = "holds the running system" ]

# Bad command lines.
fb disks frobnicate >/dev/null 2>&1
check "unknown action exits 2" [ $? -eq 2 ]
fb disks plan --root /tmp >/dev/null 2>&1
check "plan --root rejected" [ $? -eq 2 ]
