#!/bin/bash
# Boot time of ONE cluster VM, by stage: powers on node1 exactly as `make cluster` does
# (cluster-lib.sh: same QEMU machine, disks, NICs, fw_cfg, status port; N=1), stamps every
# serial console line with the host's clock, waits until discovery runs, then prints
#   firmware+GRUB   power-on until the kernel starts (kernel time 0, from the stamps)
#   kernel          until /init of the initramfs runs
#   initramfs       until systemd starts
#   systemd         until rainboot-fwcfg provisioned the node, firstboot's inventory
#                   printed, the status port spoke, discovery started
# and `systemd-analyze`, `blame` and `critical-chain rainboot-discover.service` from the
# VM over SSH. Root; one VM, in a namespace of its own (rbboot-PID), removed on exit.
#
# Environment: CL_QCOW2 (image, default build/cluster/image-out/rainboot-cluster.qcow2),
# BENCH_DIR (default build/cluster/bench-boot), BOOT_TIMEOUT (s, default 900),
# BENCH_KEEP=1 keeps the run directory, ACCEL, CL_MEM as for cluster.sh.
set -u
cd "$(dirname "$0")/.." || exit 1
. qemu-tests/cluster-lib.sh

CL_DIR=${BENCH_DIR:-build/cluster/bench-boot}
CL_NS=rbboot-$$
CL_INSTALL=qcow2
CL_QCOW2=${CL_QCOW2:-build/cluster/image-out/rainboot-cluster.qcow2}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
stamper=""

[ "$(id -u)" = 0 ] || { echo "bench-boot: needs root" >&2; exit 2; }
[ -r "$CL_QCOW2" ] || { echo "bench-boot: no image at $CL_QCOW2" >&2; exit 1; }
cleanup() {
        [ -n "$stamper" ] && kill -TERM "$stamper" 2>/dev/null
        cl_down
        [ -n "${BENCH_KEEP:-}" ] || rm -f "$CL_DIR"/*.qcow2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$CL_DIR"
mkdir -p "$CL_DIR"
CL_DIR=$(realpath "$CL_DIR")
: > "$CL_DIR/node1.console"
# Host time of every console line (the kernel's own stamps only start with the kernel).
perl -MTime::HiRes=time,sleep -e '
        open(my $in, "<", $ARGV[0]) or die "$ARGV[0]: $!";
        $| = 1;
        my $buf = "";
        while (1) {
                my $n = sysread($in, my $chunk, 65536);
                if (!$n) { sleep 0.05; next; }
                $buf .= $chunk;
                while ($buf =~ s/^([^\n]*\n)//) { printf "%.3f %s", time, $1; }
        }' "$CL_DIR/node1.console" > "$CL_DIR/node1.console.ts" &
stamper=$!
cl_up 1 || exit 1
on=$(cat "$CL_DIR/node1.poweron")

# Bounded: discovery running (the status port says so) or the timeout.
ok=""
hz=$(getconf CLK_TCK)
# host time and QEMU's CPU time (user + system), for the CPU column
sample() {
        awk -v hz="$hz" -v t="$(date +%s.%N)" '{ printf "%s %.2f\n", t, ($14 + $15) / hz }' \
                "/proc/$(cl_pid 1)/stat" >> "$CL_DIR/cpu" 2>/dev/null
}
for ((k = 0; k < BOOT_TIMEOUT; k++)); do
        case $(jq -r '.phase // ""' <<<"$(cl_status 1)") in
        discovering | agreeing | formed | bringing-up | ready | failed) ok=yes; break ;;
        esac
        cl_running 1 || break
        sample
        sleep 1
done
disc=$(date +%s.%N)
[ -n "$ok" ] || echo "bench-boot: discovery not running after ${BOOT_TIMEOUT}s" >&2

# sshd may still be starting (host keys are made on first boot): bounded wait for port 22.
ssh_up=""
for ((k = 0; k < 180 && ${#ok}; k += 2)); do
        cl_client timeout 3 bash -c "</dev/tcp/$(cl_ip 1)/22" 2>/dev/null && { ssh_up=$(date +%s.%N); break; }
        sample
        sleep 2
done
sample
if [ -n "$ok" ]; then
        cl_ssh 1 'timeout 240 systemctl is-system-running --wait >/dev/null; systemd-analyze; echo; systemd-analyze critical-chain rainboot-discover.service; echo; systemd-analyze blame | head -n 30; echo; echo modules: $(lsmod | awk "NR > 1 { print \$1 }" | sort)' \
                > "$CL_DIR/analyze" 2>&1
        cl_ssh 1 'journalctl -b -o short-monotonic --no-pager' > "$CL_DIR/node1.journal" 2>&1
fi

# host time of the first console line matching an ERE (empty if none)
at() { grep -m1 -aE "$1" "$CL_DIR/node1.console.ts" | cut -d' ' -f1; }
# the VM's monotonic time (kernel time 0 = 0) of the first journal line matching an ERE
mono() { grep -m1 -aE "$1" "$CL_DIR/node1.journal" 2>/dev/null | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }
# Kernel time 0 on the host clock, from a line both on the console (host-stamped) and in
# the journal (monotonic): the console may be quiet, the journal has everything.
anchor=""
h=$(at 'provisioned from fw_cfg') k=$(mono 'provisioned from fw_cfg')
[ -n "$h" ] && [ -n "$k" ] && anchor=$(echo "$h - $k" | bc)
# seconds since power-on, and QEMU's CPU seconds by then (the last sample before it): the
# work, which the host's load does not stretch as it stretches the wall clock
rel() {
        [ -n "$1" ] || { printf '%6s %6s' - -; return; }
        printf '%6.1f %6s' "$(echo "$1 - $on" | bc)" \
                "$(awk -v t="$1" '$1 <= t { c = $2 } END { print c == "" ? "-" : c }' "$CL_DIR/cpu")"
}
kabs() { [ -n "$anchor" ] && [ -n "$1" ] && echo "$anchor + $1" | bc; }

{
echo "rainboot boot of one cluster VM, $CL_ACCEL, ${CL_MEM} MiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "                           wall    CPU  (seconds since power-on; QEMU's CPU seconds)"
echo "  GRUB menu              $(rel "$(at 'GNU GRUB')")"
echo "  GRUB boots kernel      $(rel "$(at 'Booting .rainboot')")"
echo "  kernel starts          $(rel "$anchor")"
echo "  initramfs /init        $(rel "$(kabs "$(mono 'Run /init as init process')")")"
echo "  systemd starts         $(rel "$(kabs "$(mono 'systemd\[1\]: systemd [0-9]')")")"
echo "  fw_cfg provisioned     $(rel "$h")"
echo "  udev coldplug done     $(rel "$(kabs "$(mono 'Finished systemd-udev-trigger')")")"
echo "  network online         $(rel "$(kabs "$(mono 'Reached target network-online')")")"
echo "  firstboot inventory    $(rel "$(kabs "$(mono 'firstboot\[[0-9]+\]: Host: ')")")"
echo "  discovery started      $(rel "$(kabs "$(mono 'Started rainboot-discover')")")"
echo "  status: discovering    $(rel "$disc")   (host polls every 1 s)"
echo "  serial login prompt    $(rel "$(at ' login: ')")"
echo "  sshd answers           $(rel "$ssh_up")"
echo "  sshd started           $(rel "$(kabs "$(mono 'Started ssh.service')")")"
echo
cat "$CL_DIR/analyze" 2>/dev/null
} | tee "$CL_DIR/summary"
[ -n "$ok" ]
