#!/bin/bash
# firstboot install on loop devices made by this test: the disk planner's safety rules
# choose the target; a disk holding a filesystem is refused with the reason and left
# byte-for-byte alone unless named with --force; a blank disk receives the image exactly.
# Root: uses losetup and mkfs. Every command names the test's own loop devices with --disk.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"

sum() { md5sum < "$1" | cut -d' ' -f1; }
backing() { losetup -n -O BACK-FILE "$1" | sed 's/ *$//'; }
fb() { "$FIRSTBOOT" --cmdline "" install --include-virtual "$@"; }

img=$_tmp/system.img
head -c 48M /dev/urandom > "$img"
printf 'RAINBOOT-TEST-IMAGE' | dd of="$img" conv=notrunc status=none
img_sum=$(sum "$img")

BLANK=$(mkloop 1100M) FULL=$(mkloop 1100M) SMALL=$(mkloop 1100M) ZBLANK=$(mkloop 1100M)
mkfs.ext4 -q -L olddata "$FULL"
full_sum=$(sum "$(backing "$FULL")")

out=$(fb --image "$img" --disk "$FULL" 2>&1); rc=$?
check "refuses the disk holding ext4 (exit 1)" [ "$rc" -eq 1 ]
check "says why: holds data, ext4" grep -q "not $FULL: holds data (ext4 (label olddata))" <<<"$out"
check "says how to override" grep -q "install --force --disk" <<<"$out"
check "says nothing was changed" grep -q "nothing was changed" <<<"$out"
check "the refused disk is untouched" [ "$(sum "$(backing "$FULL")")" = "$full_sum" ]
[ "$rc" -eq 1 ] || echo "# $out"

out=$(fb --image "$img" --disk "$FULL" --disk "$BLANK" --dry-run 2>&1)
check "dry run picks the blank disk" grep -q "to $BLANK .*dry run" <<<"$out"
check "dry run writes nothing" [ "$(head -c 19 "$(backing "$BLANK")" | tr -d '\0')" = "" ]

out=$(fb --image "$img" --disk "$FULL" --disk "$BLANK" 2>&1); rc=$?
check "installs to the blank disk" [ "$rc" -eq 0 ]
check "the blank disk now holds the image" \
        [ "$(head -c 48M "$(backing "$BLANK")" | md5sum | cut -d' ' -f1)" = "$img_sum" ]
check "the disk with data is still untouched" [ "$(sum "$(backing "$FULL")")" = "$full_sum" ]
[ "$rc" -eq 0 ] || echo "# $out"

out=$(fb --image "$img" --disk "$FULL" --force 2>&1); rc=$?
check "--force --disk overwrites the named disk" [ "$rc" -eq 0 ]
check "which now holds the image" \
        [ "$(head -c 48M "$(backing "$FULL")" | md5sum | cut -d' ' -f1)" = "$img_sum" ]

out=$(fb --image "$img" --force 2>&1); rc=$?
check "--force without --disk is a usage error (exit 2)" [ "$rc" -eq 2 ]

qemu=$_tmp/system.qcow2
printf 'QFI\xfb\0\0\0\3' > "$qemu"; head -c 4096 /dev/zero >> "$qemu"
out=$(fb --image "$qemu" --disk "$SMALL" 2>&1); rc=$?
check "refuses a qcow2 image and says how to convert it" \
        eval '[ "$rc" -eq 1 ] && grep -q "qemu-img convert -O raw" <<<"$out"'

big=$_tmp/big.img
truncate -s 2G "$big"
out=$(fb --image "$big" --disk "$SMALL" 2>&1); rc=$?
check "refuses a disk smaller than the image" \
        eval '[ "$rc" -eq 1 ] && grep -q "not $SMALL: .* is smaller than the image" <<<"$out"'

# The ISO carries the image zstd-compressed; the size comes from the frame header.
zst=$_tmp/system.img.zst
zstd -q -3 "$img" -o "$zst"
out=$(fb --image "$zst" --disk "$ZBLANK" 2>&1); rc=$?
check "installs a .zst image" [ "$rc" -eq 0 ]
check "which is written decompressed, byte for byte" \
        [ "$(head -c 48M "$(backing "$ZBLANK")" | md5sum | cut -d' ' -f1)" = "$img_sum" ]
[ "$rc" -eq 0 ] || echo "# $out"
zstd -q -c < "$img" > "$_tmp/nosize.img.zst"
out=$(fb --image "$_tmp/nosize.img.zst" --disk "$SMALL" 2>&1); rc=$?
check "refuses a zstd stream that does not record its size, and says so" \
        eval '[ "$rc" -eq 1 ] && grep -q "does not record the image size" <<<"$out"'

# The ISO's installer: a boot-area image (GPT with a partition named "root") plus the live
# root tree, made into that partition's ext4 with the UUID GRUB looks for.
boot=$_tmp/boot.img tree=$_tmp/tree
truncate -s 64M "$boot"
parted -s "$boot" mklabel gpt mkpart esp 1MiB 2MiB mkpart root ext4 2MiB 63MiB
mkdir -p "$tree/etc" && echo rainboot-root-tree > "$tree/etc/marker"
uuid=0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8
out=$(fb --image "$boot" --disk "$SMALL" --root "$tree" --root-uuid "$uuid" 2>&1); rc=$?
check "installs a boot image plus a root tree" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || echo "# $out"
check "the root partition holds ext4 with the given UUID" \
        eval '[ "$(blkid -p -o value -s UUID -O $((2 * 1048576)) "$SMALL")" = "$uuid" ]'
check "and the tree's files" \
        eval 'debugfs -R "cat /etc/marker" "$(backing "$SMALL")?offset=$((2 * 1048576))" 2>/dev/null | grep -q rainboot-root-tree'
out=$(fb --image "$boot" --disk "$ZBLANK" --root "$tree" 2>&1); rc=$?
check "--root without --root-uuid is a usage error (exit 2)" [ "$rc" -eq 2 ]
