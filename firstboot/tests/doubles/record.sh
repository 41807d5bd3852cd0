# Sourced by the recording doubles: append this call's argv, one line, to
# $KUBE_DOUBLES_LOG ("<name> <args...>"), so a test asserts the exact command sequence.
# kubeadm, kubelet, rke2, kubectl and helm are not in Debian 12; systemctl would touch
# the host. Nothing else is faked.
: "${KUBE_DOUBLES_LOG:?the test sets KUBE_DOUBLES_LOG}"
printf '%s\n' "$(basename "$0")${*:+ $*}" >>"$KUBE_DOUBLES_LOG"
