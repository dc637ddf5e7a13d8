#!/bin/sh
# Runs inside the debootstrapped root (chroot) once, before `podman import`.
set -eu
echo seal-node > /etc/hostname
# sshd: root by key or password (Clusterfiles carry either), no DNS lookups.
mkdir -p /etc/ssh/sshd_config.d /root/.ssh
chmod 700 /root/.ssh
cat > /etc/ssh/sshd_config.d/10-fleet.conf <<'CONF'
PermitRootLogin yes
PasswordAuthentication yes
UseDNS no
CONF
# Host keys are made per container at first boot (see fleet-hostkeys.service).
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/fleet-hostkeys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys for this fleet node
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh.service fleet-hostkeys.service
# Units that make no sense in a container and slow boot down.
for u in getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
         e2scrub_reap.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-pcrphase.service \
         systemd-pcrphase-sysinit.service; do
  systemctl mask "$u" >/dev/null 2>&1 || true
done
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
: > /etc/machine-id
