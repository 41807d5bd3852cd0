# Shared helpers for system tests (*.test.sh). Source it; it prints TAP.
# Every resource a test creates is registered for cleanup, which runs on any exit.
set -u
_n=0
_cleanups=()
_tmp=$(mktemp -d /tmp/rainboot-test.XXXXXX)

ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() { _n=$((_n + 1)); echo "not ok $_n - $*"; }
# check "description" command...: ok when the command succeeds
check() {
        local d=$1; shift
        if "$@"; then ok "$d"; else not_ok "$d"; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
need_root() { [ "$(id -u)" -eq 0 ] || { not_ok "needs root: $*"; exit 1; }; }

on_exit() { _cleanups+=("$*"); }
_run_cleanups() {
        local i dev
        for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
                eval "${_cleanups[$i]}" >/dev/null 2>&1 || true
        done
        # Loops are recorded in a file, not with on_exit: mkloop usually runs in a
        # $(...) subshell, whose on_exit registrations would be lost.
        if [ -f "$_tmp/.loops" ]; then
                while read -r dev; do losetup -d "$dev" 2>/dev/null; done < "$_tmp/.loops"
        fi
        rm -rf "$_tmp"
        echo "1..$_n"
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

# mkloop SIZE: sparse file + loop device with partition scanning; echoes /dev/loopN.
mkloop() {
        local f dev
        f=$(mktemp "$_tmp/disk.XXXXXX.img")
        truncate -s "$1" "$f"
        dev=$(losetup --find --show --partscan "$f") || return 1
        echo "$dev" >> "$_tmp/.loops"
        echo "$dev"
}

# The kernel here may lack the md driver, so mdadm cannot create arrays. This is the
# 1.2 superblock mdadm would write (array rbtest:0, raid1 of 2, member 0, valid
# checksum; `mdadm --examine` accepts it), for tests that need a RAID member.
MD_SB='/E4rqQEAAAAAAAAAAAAAAFJidGVzdE1EUmFpZDEyqwFyYnRlc3Q6MAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAKAHJmkAAAAAAQAAAAAAAAAA8AEAAAAAAAAAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAADwAQAAAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAARGV2MHV1aWSqVapVqlWqVQAAAAAAAAAAoAcmaQAAAAABAAAAAAAAAP//////////iRU2YQIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQA='
write_md_superblock() {  # DEV
        base64 -d <<<"$MD_SB" | dd of="$1" bs=4096 seek=1 conv=notrunc status=none
}
have_md() { { [ -e /proc/mdstat ] || modprobe -q md_mod 2>/dev/null; } && [ -e /proc/mdstat ]; }

# mknetns NAME: a network namespace of the test's own, removed on exit.
mknetns() {
        ip netns add "$1" && on_exit "ip netns delete $1"
}

FIRSTBOOT=${FIRSTBOOT:?set by run-tests.sh}

# make_oci_archive OUT [CMD...]: a small OCI image built here from busybox-static with
# umoci (nothing pulled from a network), packed by skopeo into the oci-archive OUT; its
# command is CMD (default: busybox true), so different CMDs give different images.
make_oci_archive() {
        local out=$1 d a cmd=()
        shift
        [ $# -gt 0 ] || set -- /bin/busybox true
        for a in "$@"; do cmd+=(--config.cmd "$a"); done
        d=$(mktemp -d "$_tmp/oci.XXXXXX")
        (
                cd "$d" &&
                umoci init --layout img &&
                umoci new --image img:t &&
                umoci unpack --rootless --image img:t root &&
                mkdir -p root/rootfs/bin && cp /bin/busybox root/rootfs/bin/ &&
                umoci repack --image img:t root &&
                umoci config --image img:t "${cmd[@]}" &&
                skopeo copy -q oci:img:t "oci-archive:$out"
        ) >"$d.log" 2>&1 || { sed 's/^/# /' "$d.log"; return 1; }
}

# wait_until SECONDS CMD...: run CMD (quietly) every 0.5 s until it succeeds or SECONDS
# pass; 0 when it succeeded.
wait_until() {
        local deadline=$((SECONDS + $1))
        shift
        while ((SECONDS < deadline)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.5
        done
        return 1
}
