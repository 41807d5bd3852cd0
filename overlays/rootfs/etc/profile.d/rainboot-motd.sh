# Shown at interactive login shells.
[ -x /usr/lib/rainboot/motd.sh ] && case $- in *i*) /usr/lib/rainboot/motd.sh ;; esac
