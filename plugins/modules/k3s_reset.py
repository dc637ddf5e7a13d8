#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_reset
short_description: Remove everything a k3s install made on a host
version_added: 0.1.0
description:
  - Does what k3s's C(k3s-killall.sh) and C(k3s-uninstall.sh) do, without needing them on the
    host, and also removes what seal.cluster added. It stops and disables the k3s services, kills
    the processes k3s left (containerd shims with the containers below them, etcd), unmounts and
    removes what lies under C(/run/k3s), the kubelet's directories and C(/run/netns/cni-*), deletes the network interfaces and iptables rules k3s and flannel
    made, and removes the units, env files, binary and links, C(/etc/rancher), the data
    directory, C(/var/lib/kubelet), C(/var/lib/cni) and the cluster's seal data directory.
  - Idempotent, and safe after a half-finished install; every step skips what is not there.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  data_dir:
    description: k3s data directory.
    type: path
    default: /var/lib/rancher/k3s
  cluster:
    description:
      - The seal.cluster cluster whose files go too - C(<data_root>/<cluster>) and
        C(/etc/seal/<cluster>). A DNS-1123 label; checked before anything is removed.
    type: str
  data_root:
    description: Root of seal.cluster's data on the host (sealer's C(dataRoot)); absolute and normalised.
    type: path
    default: /var/lib/seal
  registry_host:
    description:
      - The cluster registry's name as clients spell it (C(<domain>) or C(<domain>:<port>)); its CA
        directory C(/etc/containers/certs.d/<registry_host>) goes too. Checked before anything is removed.
    type: str
  extra_paths:
    description: More paths to remove; each must be absolute and normalised (no C(.), C(..) or C(//)).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Reset the host
  seal.cluster.k3s_reset:
    cluster: my-cluster
    registry_host: sea.hub:5000
"""

RETURN = r"""
removed:
  description: What was stopped, killed, unmounted, deleted or removed.
  returned: always
  type: list
  elements: str
"""

import glob
import os
import re
import shutil
import signal
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import list_dir, remove_path
from ansible_collections.seal.cluster.plugins.module_utils._registry_view import CA_DIR
from ansible_collections.seal.cluster.plugins.module_utils._systemd import Runner, Systemd

INTERFACES = ("cni0", "flannel.1", "flannel-v6.1", "kube-ipvs0", "flannel-wg", "flannel-wg-v6")
MOUNT_ROOTS = ("/run/k3s", "/var/lib/kubelet/pods", "/var/lib/kubelet/plugins", "/run/netns/cni-")
IPTABLES_MATCH = re.compile(r"KUBE-|CNI-|flannel", re.IGNORECASE)
SEAL_CONFIG_DIR = "/etc/seal"


def cluster_paths(params, host=None):
    """The paths of one cluster that reset removes, from validated names only: a cluster of '..'
    or a registry domain of '..' must never name /var/lib, /etc or /etc/containers."""
    host = host or layout.Layout()
    paths = []
    if params.get("cluster") is not None:
        cluster = names.check_cluster_name(params["cluster"], "cluster")
        data_root = names.check_absolute_path(params["data_root"], "data_root")
        paths += [os.path.join(data_root, cluster), host.path(os.path.join(SEAL_CONFIG_DIR, cluster))]
    if params.get("registry_host"):
        paths.append(host.path(os.path.join(CA_DIR, names.check_registry_host(params["registry_host"], "registry_host"))))
    for i, path in enumerate(params.get("extra_paths") or []):
        paths.append(names.check_absolute_path(path, "extra_paths[%d]" % i))
    return paths


class Resetter:
    """What a k3s install left on the host, found under host (a Layout: "/" on a host) and
    removed through runner (the host's programs)."""

    def __init__(self, module, seal_paths, host=None, runner=None):
        self.module = module
        self.check = module.check_mode
        self.removed = []
        self.seal_paths = seal_paths
        self.host = host or layout.Layout()
        self.runner = runner or Runner(module)
        self.systemd = Systemd(self.runner)

    def cmd(self, *argv, data=None):
        return self.runner.cmd(*argv, data=data, binary_data=True)

    def services(self):
        units = sorted(glob.glob(os.path.join(self.host.unit_dir, "k3s*.service")))
        for unit in units:
            name = os.path.basename(unit)
            rc, out = self.systemd.systemctl("is-active", name, check=False)
            if out in ("active", "activating", "reloading") or rc == 0:
                self.removed.append("service %s stopped" % name)
                if not self.check:
                    self.systemd.systemctl("stop", name, check=False)
            if not self.check:
                self.systemd.systemctl("disable", name, check=False)
                self.systemd.systemctl("reset-failed", name, check=False)
        return units

    def processes(self):
        data = os.path.realpath(self.module.params["data_dir"])
        proc = self.host.path("/proc")
        victims = []
        for pid in filter(str.isdigit, list_dir(proc)):
            try:
                exe = os.readlink(os.path.join(proc, pid, "exe"))
                with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if int(pid) in (os.getpid(), os.getppid()):
                continue
            first = argv[0].decode(errors="replace") if argv else ""
            k3s_daemon = any(a.endswith(b"/k3s") or a == b"k3s" for a in argv[:2]) and (b"server" in argv or b"agent" in argv)
            if exe.startswith(data + "/") or first.startswith(data + "/") or k3s_daemon:
                victims.append(int(pid))
        victims = self._with_descendants(proc, victims)
        for pid in victims:
            self.removed.append("process %d killed" % pid)
            if not self.check:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if victims and not self.check:
            time.sleep(0.5)

    @staticmethod
    def _with_descendants(proc, roots):
        """roots and every process below them (k3s-killall.sh's killtree): a shim's containers
        are its children and do not die with it."""
        children = {}
        for pid in filter(str.isdigit, list_dir(proc)):
            try:
                with open(os.path.join(proc, pid, "stat"), encoding="utf-8", errors="replace") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(pid))
        found, stack = [], list(roots)
        while stack:
            pid = stack.pop(0)
            if pid not in found and pid not in (os.getpid(), os.getppid()):
                found.append(pid)
                stack.extend(sorted(children.get(pid, [])))
        return found

    def mounts(self):
        try:
            with open(self.host.path("/proc/self/mounts"), encoding="utf-8") as f:
                points = [line.split()[1].replace("\\040", " ") for line in f if line.strip()]
        except FileNotFoundError:
            points = []
        data = self.module.params["data_dir"]
        for point in sorted(points, key=len, reverse=True):
            if point.startswith(MOUNT_ROOTS) or point.startswith(data + "/"):
                self.removed.append("unmounted %s" % point)
                if not self.check:
                    self.cmd("umount", "-f", "-l", point)
                    if point.startswith(MOUNT_ROOTS):  # k3s-killall.sh do_unmount_and_remove: umount, then rm -rf
                        try:
                            remove_path(self.host.path(point))
                        except OSError:
                            pass  # still busy: files() removes the trees that hold it

    def interfaces(self):
        net = self.host.path("/sys/class/net")
        for name in sorted(list_dir(net)):
            master = os.path.join(net, name, "master")
            enslaved = os.path.islink(master) and os.path.basename(os.readlink(master)) == "cni0"
            if name in INTERFACES or enslaved:
                self.removed.append("interface %s deleted" % name)
                if not self.check:
                    self.cmd("ip", "link", "delete", name)

    def iptables(self):
        for save, restore in (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore")):
            rc, out, _err = self.cmd(save)
            if rc != 0:
                continue
            text = out.decode() if isinstance(out, bytes) else out
            kept = [line for line in text.splitlines() if not IPTABLES_MATCH.search(line)]
            if len(kept) == len(text.splitlines()):
                continue
            self.removed.append("%s rules of KUBE-/CNI-/flannel removed" % save.split("-", maxsplit=1)[0])
            if not self.check:
                self.cmd(restore, data="\n".join(kept) + "\n")

    def files(self, units):
        bin_dir = self.host.bin_dir
        paths = list(units) + [u + ".env" for u in units]
        paths += [os.path.join(bin_dir, n) for n in layout.LINKS if os.path.islink(os.path.join(bin_dir, n))]
        paths += [self.host.k3s_bin] + [os.path.join(bin_dir, n) for n in layout.SCRIPTS]
        paths += [self.host.path(p) for p in layout.HOST_DIRS] + [self.module.params["data_dir"]] + list(self.seal_paths)
        for path in paths:
            if not os.path.lexists(path):
                continue
            self.removed.append("removed %s" % path)
            if self.check:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
                if os.path.exists(path):  # a busy mount point: unmount below it and retry
                    self.mounts()
            remove_path(path)
        if units and not self.check:
            self.systemd.systemctl("daemon-reload", check=False)

    def run(self):
        units = self.services()
        self.processes()
        self.mounts()
        self.interfaces()
        self.iptables()
        self.files(units)
        return {"changed": bool(self.removed), "removed": self.removed}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_dir=dict(type="path", default=layout.DATA_DIR),
            cluster=dict(type="str"),
            data_root=dict(type="path", default="/var/lib/seal"),
            registry_host=dict(type="str"),
            extra_paths=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        seal_paths = cluster_paths(module.params)
        names.check_absolute_path(module.params["data_dir"], "data_dir")
        result = Resetter(module, seal_paths).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
