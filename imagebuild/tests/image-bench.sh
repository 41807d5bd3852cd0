#!/bin/bash
# make bench-image: imagebuild timings and sizes as a table, with Debian's live-build
# building an ISO of the same package set from the same (host's) apt sources in the same
# run, as the anchor. Root; 20-30 minutes on 2 CPUs. Not part of make check.
#   imagebuild: cold build (empty cache), warm build, rebuild after changing only
#   firstboot, ISO and qcow2 sizes, byte-identity of builds with SOURCE_DATE_EPOCH (and
#   where they differ), boot-to-firstboot time of the qcow2 under QEMU TCG (private netns).
#   live-build: cold build, warm build (its bootstrap and package caches), ISO size.
# Usage: image-bench.sh BUILD_DIR [SPEC]
# Every build runs with SOURCE_DATE_EPOCH, so the warm build doubles as the second build of
# the byte-identity check (same inputs, same rootfs cache). BENCH_REPRO_COLD=1 adds a
# build from an empty cache (mmdebstrap again) to compare with; BENCH_LIVE_BUILD=0 skips
# live-build, BENCH_BOOT=0 the boot.
set -u
build=$(cd "${1:?build dir}" && pwd)
spec=$(realpath "${2:-configs/image.yaml}")
ib=$build/imagebuild fb=$build/firstboot
# Under /var/tmp: root trees and loop files do not belong on a tmpfs.
work=$(mktemp -d /var/tmp/rainboot-bench.XXXXXX)
mkdir -p "$work/scratch-cache" "$work/scratch-cache-r3"
ns=""
cleanup() {
        [ -n "$ns" ] && ip netns delete "$ns" 2>/dev/null
        [ -d "$work/lb/chroot/proc" ] && (cd "$work/lb" && lb clean --purge >/dev/null 2>&1)
        rm -rf --one-file-system "$work"
}
trap cleanup EXIT
name=$(sed -n 's/^name: *//p' "$spec"); name=${name:-rainboot}

log() { echo "# $*" >&2; }
secs() {  # secs CMD...: runs it, prints the wall time in seconds
        local t0 t1
        t0=$(date +%s.%N)
        "$@" >"$work/last.log" 2>&1 || { echo "FAILED: $*" >&2; tail -20 "$work/last.log" >&2; exit 1; }
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", b - a }'
}
mib() { echo $(( $(stat -c %s "$1") / 1048576 )); }
stage_times() { sed -n 's/^==== done in .*(\(.*\))$/\1/p' "$1/build.log"; }
# Scratch space (and so the unpacked base) under $work too: the cold build unpacks it.
ibuild() { "$ib" -q build "$spec" --firstboot "${FB:-$fb}" -o "$work/$1" --cache "$work/$2" \
        --work "$work/scratch-$2"; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
log "imagebuild: cold build"
cold=$(secs ibuild a cache); cold_st=$(stage_times "$work/a")
log "imagebuild: warm build"
warm=$(secs ibuild r2 cache); warm_st=$(stage_times "$work/r2")
mkdir -p "$work/r1" && cp "$work/a/$name.iso" "$work/a/$name.qcow2" "$work/r1/"
cp "$fb" "$work/firstboot"; printf '\n# bench %s\n' "$RANDOM" >> "$work/firstboot"
log "imagebuild: rebuild after changing only firstboot"
touched=$(FB=$work/firstboot secs ibuild a cache); touched_st=$(stage_times "$work/a")
iso=$(mib "$work/a/$name.iso") qcow=$(mib "$work/a/$name.qcow2")

# Byte-identity: r1 (the cold build) and r2 (the warm one) share the rootfs cache
# (identical inputs including the mmdebstrap output); r3 runs mmdebstrap again.
if [ "${BENCH_REPRO_COLD:-0}" = 1 ]; then
        log "imagebuild: second cold build for reproducibility from scratch"
        secs ibuild r3 cache-r3 >/dev/null
fi
unset SOURCE_DATE_EPOCH
same() {  # same DIR1 DIR2 FILE
        if cmp -s "$1/$3" "$2/$3"; then
                echo "identical (sha256 $(sha256sum < "$1/$3" | cut -c1-16)…)"
        else
                echo "differs in $(cmp -l "$1/$3" "$2/$3" 2>/dev/null | wc -l) bytes"
        fi
}
# Where two builds differ: the ISO's files, and the qcow2's partitions.
explain() {  # explain DIR1 DIR2
        local d f n
        for d in "$1" "$2"; do
                mkdir -p "$d/x"
                xorriso -osirrox on -indev "$d/$name.iso" -extract / "$d/x/iso" >/dev/null 2>&1
                chmod -R u+w "$d/x/iso" 2>/dev/null
                qemu-img convert -O raw "$d/$name.qcow2" "$d/x/disk.raw"
        done
        for f in $(cd "$1/x/iso" && find . -type f | sort); do
                cmp -s "$1/x/iso/$f" "$2/x/iso/$f" && continue
                n=$(cmp -l "$1/x/iso/$f" "$2/x/iso/$f" 2>/dev/null | wc -l)
                echo "#   ISO file $f: $n bytes differ"
        done
        # GPT + BIOS boot (0-2 MiB), ESP (2-130 MiB), root (130 MiB-end).
        cmp -l "$1/x/disk.raw" "$2/x/disk.raw" 2>/dev/null | awk '
                { o = $1 - 1; if (o < 2097152) g++; else if (o < 136314880) e++; else r++ }
                END { printf "#   qcow2 as raw: GPT+BIOS boot %d, ESP %d, root %d bytes differ\n", g, e, r }'
        rm -rf "$1/x" "$2/x"
}
iso_same=$(same "$work/r1" "$work/r2" "$name.iso") qcow_same=$(same "$work/r1" "$work/r2" "$name.qcow2")
why12=$(cmp -s "$work/r1/$name.iso" "$work/r2/$name.iso" && cmp -s "$work/r1/$name.qcow2" "$work/r2/$name.qcow2" || explain "$work/r1" "$work/r2")
iso_same3="not run" qcow_same3="not run" why13=""
if [ -d "$work/r3" ]; then
        iso_same3=$(same "$work/r1" "$work/r3" "$name.iso") qcow_same3=$(same "$work/r1" "$work/r3" "$name.qcow2")
        why13=$(cmp -s "$work/r1/$name.iso" "$work/r3/$name.iso" && cmp -s "$work/r1/$name.qcow2" "$work/r3/$name.qcow2" || explain "$work/r1" "$work/r3")
fi
rm -rf "$work/r1" "$work/r2" "$work/r3" "$work/cache-r3"

boot="not run"
if [ "${BENCH_BOOT:-1}" = 1 ]; then
log "boot the qcow2 under QEMU TCG in a private network namespace"
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
ip netns delete "$ns"; ns=""
fi
rm -rf "$work/a" "$work/cache" "$work/boot.qcow2"

# live-build, same package set, same apt sources: the host's own (the first deb822 or
# one-line source whose suite is the spec's; security and updates likewise).
suite=$(sed -n 's/^suite: *//p' "$spec"); suite=${suite:-bookworm}
host_uri() {  # host_uri SUITE: the URI of the host's apt source for SUITE
        local f
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] && awk -v s="$1" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
                        if ($2 ~ /^\[/) i++; if ($(i + 1) == s) { print $i; exit } }' "$f"
        done
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] && awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" }
                        { uri = ""; ok = 0
                          for (k = 1; k <= NF; k++) {
                                if ($k ~ /^URIs:/) { split($k, a, " "); uri = a[2] }
                                if ($k ~ /^Suites:/) { n = split($k, a, " "); for (j = 2; j <= n; j++) if (a[j] == s) ok = 1 }
                          }
                          if (ok && uri != "") { print uri; exit } }' "$f"
        done | head -n 1
}
lb_cold="not run" lb_warm="not run" lb_iso="not run"
if [ "${BENCH_LIVE_BUILD:-1}" = 1 ] && command -v lb >/dev/null; then
        mirror=$(host_uri "$suite") sec=$(host_uri "$suite-security") upd=$(host_uri "$suite-updates")
        if [ -z "$mirror" ]; then
                lb_cold="skipped: the host's apt sources do not list $suite"
        else
                log "live-build: cold build from $mirror"
                mkdir -p "$work/lb/config/package-lists"
                (cd "$work/lb" && lb config --distribution "$suite" --archive-areas main \
                        --mirror-bootstrap "$mirror" --mirror-chroot "$mirror" --mirror-binary "$mirror" \
                        --parent-mirror-bootstrap "$mirror" --parent-mirror-chroot "$mirror" \
                        --parent-mirror-binary "$mirror" \
                        ${sec:+--mirror-chroot-security "$sec" --mirror-binary-security "$sec" \
                          --parent-mirror-chroot-security "$sec" --parent-mirror-binary-security "$sec"} \
                        --security "$([ -n "$sec" ] && echo true || echo false)" \
                        --updates "$([ -n "$upd" ] && echo true || echo false)" \
                        --apt-options "--yes -o Acquire::Check-Valid-Until=false" \
                        --apt-indices false --debian-installer none --memtest none \
                        --firmware-binary false --firmware-chroot false \
                        --binary-images iso-hybrid --bootloaders "grub-efi,syslinux" \
                        >"$work/lb-config.log" 2>&1) || { lb_cold="lb config failed"; tail -5 "$work/lb-config.log" >&2; }
                "$ib" packages "$spec" > "$work/lb/config/package-lists/rainboot.list.chroot"
                if [ "$lb_cold" = "not run" ]; then
                        lbb() { (cd "$work/lb" && lb build); }
                        lb_cold="$(secs lbb) s"
                        lb_iso=$(mib "$(ls "$work"/lb/*.iso | head -n 1)")
                        # lb clean drops the config stage too: configure again (same
                        # options, in config/), keeping cache/.
                        (cd "$work/lb" && lb clean >/dev/null 2>&1 && lb config >/dev/null 2>&1)
                        log "live-build: warm build (its caches kept)"
                        lb_warm="$(secs lbb) s"
                fi
        fi
fi

num() { echo "${1%% *}"; }
verdict() {  # verdict OK_CONDITION
        if eval "$1" 2>/dev/null; then echo met; else echo "NOT met"; fi
}
printf '%-52s %s\n' "imagebuild ($spec)" "value" \
        "cold build (no rootfs cache)" "$cold s" \
        "warm build (rootfs and base squashfs cached)" "$warm s" \
        "rebuild after changing only firstboot" "$touched s" \
        "ISO size (no user bundle)" "$iso MiB" \
        "qcow2 size (no user bundle)" "$qcow MiB" \
        "ISO, 2 builds, SOURCE_DATE_EPOCH, same rootfs" "$iso_same" \
        "qcow2, 2 builds, SOURCE_DATE_EPOCH, same rootfs" "$qcow_same" \
        "ISO, 2 builds, SOURCE_DATE_EPOCH, from scratch" "$iso_same3" \
        "qcow2, 2 builds, SOURCE_DATE_EPOCH, from scratch" "$qcow_same3" \
        "(all builds above with SOURCE_DATE_EPOCH=1700000000)" "" \
        "boot to firstboot inventory (qcow2, TCG)" "$boot" \
        "live-build: cold build (same packages, host's sources)" "$lb_cold" \
        "live-build: warm build (its caches)" "$lb_warm" \
        "live-build: ISO size" "$lb_iso MiB"
echo
echo "# load average (1/5/15 min) at the start: $load0, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# stage times: cold:    $cold_st"
echo "# stage times: warm:    $warm_st"
echo "# stage times: rebuild: $touched_st"
[ -n "$why12" ] && { echo "# same rootfs, where the builds differ:"; echo "$why12"; }
[ -n "$why13" ] && { echo "# from scratch, where the builds differ:"; echo "$why13"; }
if [[ $lb_cold =~ ^[0-9]+\ s$ ]]; then
        lbc=$(num "$lb_cold")
        echo "# target cold build <= half of live-build's ($cold s vs $lbc s / 2): $(verdict "[ $((cold * 2)) -le $lbc ]")"
        echo "# target ISO <= live-build's ($iso MiB vs $lb_iso MiB): $(verdict "[ $iso -le $lb_iso ]")"
fi
echo "# target rebuild after a firstboot-only change < 30 s ($touched s): $(verdict "[ $touched -lt 30 ]")"
