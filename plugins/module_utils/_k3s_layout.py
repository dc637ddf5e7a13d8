# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where k3s's files live on a host and what they contain, as install.sh writes them
(K3S-REFERENCE §7), so the collection replaces install.sh without running it.

The constants are the paths as k3s and the unit see them. `Layout(root)` places the same files
under another root (as DESTDIR does), so that unit tests point a module at a temporary
directory; file contents (the unit's ExecStart, config.yaml's token-file) keep the real paths."""

from __future__ import annotations

import os

from ansible_collections.seal.cluster.plugins.module_utils._systemd import UNIT_DIR, Runner

BIN_DIR = "/usr/local/bin"
K3S_BIN = BIN_DIR + "/k3s"
LINKS = ("kubectl", "crictl", "ctr")
CONFIG_DIR = "/etc/rancher/k3s"
CONFIG = CONFIG_DIR + "/config.yaml"
REGISTRIES = CONFIG_DIR + "/registries.yaml"
KUBECONFIG = CONFIG_DIR + "/k3s.yaml"
TOKEN_FILE = CONFIG_DIR + "/token"
AGENT_TOKEN_FILE = CONFIG_DIR + "/agent-token"
DATA_DIR = "/var/lib/rancher/k3s"
# What k3s-killall.sh and k3s-uninstall.sh remove besides the above (K3S-REFERENCE §7)
HOST_DIRS = ("/etc/rancher", "/run/k3s", "/run/flannel", "/var/lib/kubelet", "/var/lib/cni")
SCRIPTS = ("k3s-killall.sh", "k3s-uninstall.sh", "k3s-agent-uninstall.sh")

SERVICE = {"server": "k3s", "agent": "k3s-agent"}


class Layout:
    """k3s's host paths under root ("/" on a host)."""

    def __init__(self, root="/"):
        self.root = root
        self.bin_dir, self.k3s_bin, self.config, self.registries, self.kubeconfig, self.unit_dir = (
            self.path(p) for p in (BIN_DIR, K3S_BIN, CONFIG, REGISTRIES, KUBECONFIG, UNIT_DIR))

    def path(self, path):
        """A host path (absolute, as k3s sees it) under this root."""
        return path if self.root in ("", "/") else os.path.join(self.root, path.lstrip("/"))

    def unit_path(self, role):
        return self.path(unit_path(role))

    def env_path(self, role):
        return self.path(env_path(role))


class HostManager:
    """A module's work on this host's k3s; `host` and `runner` let tests point it at a temporary root."""

    def __init__(self, module, host=None, runner=None):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.host = host or Layout()
        self.runner = runner or Runner(module)


def service_name(role):
    return SERVICE[role]


def unit_path(role):
    return "%s/%s.service" % (UNIT_DIR, SERVICE[role])


def env_path(role):
    return unit_path(role) + ".env"


def unit_text(role, exec_args=()):
    """The systemd unit install.sh writes today (Type=notify for server and agent)."""
    name = SERVICE[role]
    command = ["server" if role == "server" else "agent"] + list(exec_args)
    exec_lines = "".join(" \\\n\t'%s'" % arg.replace("'", "'\\''") for arg in command)
    return (
        "[Unit]\n"
        "Description=Lightweight Kubernetes\n"
        "Documentation=https://k3s.io\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
        "\n"
        "[Service]\n"
        "Type=notify\n"
        "EnvironmentFile=-/etc/default/%%N\n"
        "EnvironmentFile=-/etc/sysconfig/%%N\n"
        "EnvironmentFile=-%s/%s.service.env\n"
        "KillMode=process\n"
        "Delegate=yes\n"
        "User=root\n"
        "# Having non-zero Limit*s causes performance problems due to accounting overhead\n"
        "# in the kernel. We recommend using cgroups to do container-local accounting.\n"
        "LimitNOFILE=1048576\n"
        "LimitNPROC=infinity\n"
        "LimitCORE=infinity\n"
        "TasksMax=infinity\n"
        "TimeoutStartSec=0\n"
        "Restart=always\n"
        "RestartSec=5s\n"
        "ExecStartPre=-/sbin/modprobe br_netfilter\n"
        "ExecStartPre=-/sbin/modprobe overlay\n"
        "ExecStart=%s%s\n"
    ) % (UNIT_DIR, name, K3S_BIN, exec_lines)


def env_text(env):
    """Env file lines in install.sh's form (K='value'), sorted for stable output."""
    return "".join("%s='%s'\n" % (k, str(v).replace("'", "'\\''")) for k, v in sorted(env.items()))
