#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_prepare
short_description: Prepare a host for k3s in one call (directories, files, kernel modules, sysctls, hosts entries)
version_added: 0.1.0
description:
  - Creates the data directories a cluster needs, loads and persists the kernel modules and
    sysctls k3s expects, and keeps a marked block of entries in C(/etc/hosts) that belongs to
    one cluster, so that a reset can remove exactly that block.
  - Kernel modules and sysctls are applied where the host allows it. A host that cannot load a
    module or write a sysctl (a container, a locked-down kernel) gets a warning naming it, not a
    failure, unless O(strict=true).
  - Does all of this in a single task so that a no-op run on a large fleet stays cheap.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  cluster:
    description:
      - Name of the cluster that owns the C(/etc/hosts) block and the persisted settings; a
        DNS-1123 label.
    type: str
    required: true
  state:
    description:
      - V(present) prepares the host.
      - V(absent) removes the hosts block, the modules-load and sysctl files this module
        wrote and the O(files) named. It leaves directories and the running kernel alone.
    type: str
    choices: [present, absent]
    default: present
  directories:
    description:
      - Directories to create (parents too). Existing directories get the mode set.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      mode:
        description: The directory's octal mode, as a string.
        type: str
        default: "0755"
  files:
    description:
      - Small files the host needs, such as the cluster registry's CA certificate; parent
        directories are created. Not for secrets (the content is shown in diffs).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: Text content; required with O(state=present).
        type: str
      mode:
        description: The file's octal mode, as a string.
        type: str
        default: "0644"
  kernel_modules:
    description: Kernel modules to load now and at boot.
    type: list
    elements: str
    default: [overlay, br_netfilter, nf_conntrack]
  sysctls:
    description: Kernel parameters to set now and at boot.
    type: dict
    default:
      net.ipv4.ip_forward: "1"
      net.ipv6.conf.all.forwarding: "1"
      net.bridge.bridge-nf-call-iptables: "1"
      net.bridge.bridge-nf-call-ip6tables: "1"
  hosts:
    description:
      - Entries for the cluster's block in O(hosts_path), in order.
    type: list
    elements: dict
    default: []
    suboptions:
      ip:
        description: Address (IPv4 or IPv6; written in canonical form).
        type: str
        required: true
      hostnames:
        description: Names for the address (RFC 1123 host names).
        type: list
        elements: str
        required: true
  strict:
    description: Fail when a kernel module cannot be loaded or a sysctl cannot be set.
    type: bool
    default: false
  hosts_path:
    description: The hosts file.
    type: path
    default: /etc/hosts
  modules_load_path:
    description: Where the modules to load at boot are persisted.
    type: path
    default: /etc/modules-load.d/seal-k3s.conf
  sysctl_path:
    description: Where the sysctls are persisted.
    type: path
    default: /etc/sysctl.d/90-seal-k3s.conf
  report:
    description:
      - Read what the host holds in the same call, so that a no-op run costs one module call
        per host (docs/distribution.md); returned as RV(reports). Reading changes nothing.
    type: dict
    suboptions:
      rootfs:
        description: The cluster image's rootfs to report on, as M(seal.cluster.rootfs_info) does.
        type: dict
        suboptions:
          dest:
            description: The rootfs directory.
            type: path
            required: true
          role:
            description: The paths this host's role gets.
            type: str
            choices: [agent, server, registry]
          storage:
            description: The registry storage whose blobs are reported (the seed).
            type: path
      record:
        description:
          - The converged record a runtime module left (for k3s, M(seal.cluster.k3s_runtime)'s
            O(seal.cluster.k3s_runtime#module:record)).
        type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Directories show as their mode; O(files), the hosts block, the modules-load and sysctl files as their text.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Prepare the host for k3s
  seal.cluster.node_prepare:
    cluster: my-cluster
    directories:
      - path: /var/lib/seal/my-cluster
        mode: "0700"
    hosts:
      - ip: 192.168.0.2
        hostnames: [sea.hub]

- name: Remove what node_prepare added (reset)
  seal.cluster.node_prepare:
    cluster: my-cluster
    state: absent
"""

RETURN = r"""
directories_created:
  description: Directories that were created or had their mode changed.
  returned: always
  type: list
  elements: str
modules_loaded:
  description: Kernel modules loaded by this run.
  returned: always
  type: list
  elements: str
modules_unavailable:
  description: Kernel modules that are neither loaded nor loadable on this host.
  returned: always
  type: list
  elements: str
sysctls_set:
  description: Kernel parameters whose running value was changed, with the new value.
  returned: always
  type: dict
sysctls_unavailable:
  description: Kernel parameters that do not exist or cannot be written on this host.
  returned: always
  type: list
  elements: str
files_changed:
  description: Files (hosts, modules-load, sysctl, O(files)) whose content or mode changed.
  returned: always
  type: list
  elements: str
reports:
  description:
    - What O(report) asked for. V(rootfs) is M(seal.cluster.rootfs_info)'s result; V(record) has
      V(inputs) (the digest the runtime module recorded, or null), V(intact) (no owned path changed
      since) and V(active) (its service is active and enabled).
  returned: when O(report) is given
  type: dict
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils._converged import record_report
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import (
    FileState,
    read_text,
    write_in_place,
)
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.module_utils._marked_block import (
    hosts_lines,
    replace_block,
)
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_report import rootfs_report
from ansible_collections.seal.cluster.plugins.module_utils._systemd import Runner, Systemd

# The kernel's views of loaded modules and of its parameters (under Layout(root) in tests).
SYS_MODULE = "/sys/module"
PROC_SYS = "/proc/sys"
# Built-in modules without parameters have no /sys/module entry; the sysctl tree they
# provide shows that they are there.
MODULE_PROOF = {"br_netfilter": PROC_SYS + "/net/bridge"}
# What modprobe takes as a module name (never an option, never a path).
KERNEL_MODULE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def sysctl_path(key):
    """/proc/sys/<key with dots as slashes>; a key with an empty part (so no '..') is refused."""
    parts = key.replace(".", "/").split("/")
    if "" in parts or names.CONTROL.search(key):
        raise ModuleFailure("sysctls: %r is not a kernel parameter name" % key)
    return PROC_SYS + "/" + "/".join(parts)


def checked_hosts(cluster, entries):
    """The hosts block's entries from validated values only (canonical IPs, RFC 1123 names), so
    that no value can add a line or forge the block's end marker."""
    names.check_cluster_name(cluster, "cluster")
    out = []
    for i, entry in enumerate(entries):
        ip = names.check_ip(entry["ip"], "hosts[%d].ip" % i)
        if not entry["hostnames"]:
            raise names.InvalidName("hosts[%d].hostnames" % i, entry["hostnames"], "must name at least one host")
        hostnames = [names.check_hostname(h, "hosts[%d].hostnames[%d]" % (i, j)) for j, h in enumerate(entry["hostnames"])]
        out.append({"ip": ip, "hostnames": hostnames})
    return out


class NodePrepare:
    def __init__(self, module, host=None):
        self.module = module
        self.host = host or Layout()
        self.params = module.params
        self.check = module.check_mode
        self.result = {
            "changed": False,
            "directories_created": [],
            "modules_loaded": [],
            "modules_unavailable": [],
            "sysctls_set": {},
            "sysctls_unavailable": [],
            "files_changed": [],
        }
        self.diffs = []

    def validate(self):
        """Bad items are refused before anything on the host changes."""
        for item in self.params["directories"]:
            self._mode(item["mode"], item["path"], "directories")
        for item in self.params["files"]:
            self._mode(item["mode"], item["path"], "files")
            if item["content"] is None and self.params["state"] == "present":
                raise ModuleFailure("files: %s has no content" % item["path"])
        for key in self.params["sysctls"]:
            sysctl_path(key)
        for name in self.params["kernel_modules"]:
            if not KERNEL_MODULE.fullmatch(name):
                raise ModuleFailure("kernel_modules: %r is not a kernel module name" % name)

    def run(self):
        self.validate()
        if self.params["state"] == "present":
            self.directories()
            self.files()
            self.kernel_modules()
            self.sysctls()
            self.persisted_files()
        else:
            self.remove_persisted_files()
        self.hosts_block()
        if self.params.get("report"):
            self.result["reports"] = self.reports(self.params["report"])
        if self.module._diff:
            self.result["diff"] = self.diffs
        self.result["changed"] = bool(
            self.result["directories_created"] or self.result["modules_loaded"]
            or self.result["sysctls_set"] or self.result["files_changed"]
        )
        return self.result

    def reports(self, wanted):
        out = {}
        if wanted.get("rootfs"):
            spec = wanted["rootfs"]
            out["rootfs"] = rootfs_report(spec["dest"], spec.get("role"), spec.get("storage"))
        if wanted.get("record"):
            out["record"] = record_report(wanted["record"], Systemd(Runner(self.module)))
        return out

    def directories(self):
        for item in self.params["directories"]:
            path = item["path"]
            mode = self._mode(item["mode"], path, "directories")
            current = os.stat(path).st_mode & 0o7777 if os.path.isdir(path) else None
            if current == mode:
                continue
            self.result["directories_created"].append(path)
            self.diffs.append({"before_header": path, "after_header": path,
                               "before": "absent\n" if current is None else "mode %s\n" % oct(current),
                               "after": "directory, mode %s\n" % oct(mode)})
            if not self.check:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, mode)

    def files(self):
        for item in self.params["files"]:
            state = FileState(item["path"], item["content"], self._mode(item["mode"], item["path"], "files"))
            if state.changed:
                self.result["files_changed"].append(item["path"])
                self.diffs.append(state.diff())
                if not self.check:
                    state.apply()

    def _mode(self, text, path, option):
        try:
            return int(text, 8)
        except ValueError as exc:
            raise ModuleFailure("%s: mode %r of %s is not an octal mode" % (option, text, path)) from exc

    def kernel_modules(self):
        for name in self.params["kernel_modules"]:
            proof = MODULE_PROOF.get(name)
            if os.path.isdir(self.host.path(SYS_MODULE + "/" + name)) or (proof and os.path.isdir(self.host.path(proof))):
                continue
            modprobe = self.module.get_bin_path("modprobe")
            argv = [modprobe, "-n", name] if self.check else [modprobe, name]
            rc, _out, err = self.module.run_command(argv) if modprobe else (1, "", "modprobe not found")
            if rc == 0:
                self.result["modules_loaded"].append(name)
            else:
                self.unavailable("modules_unavailable", name, "kernel module %s cannot be loaded: %s" % (name, err.strip()))

    def sysctls(self):
        for key, value in sorted(self.params["sysctls"].items()):
            value = str(value)
            path = self.host.path(sysctl_path(key))
            current = read_text(path)
            if current is None:
                self.unavailable("sysctls_unavailable", key, "sysctl %s does not exist on this host" % key)
                continue
            if current.split() == value.split():
                continue
            if not self.check:
                try:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(value)
                except OSError as exc:
                    self.unavailable("sysctls_unavailable", key, "sysctl %s cannot be set: %s" % (key, exc))
                    continue
            self.result["sysctls_set"][key] = value

    def unavailable(self, bucket, name, message):
        if self.params["strict"]:
            raise ModuleFailure(message, **self.result)
        self.result[bucket].append(name)
        self.module.warn(message)

    def persisted(self):
        header = "# Managed by seal.cluster (cluster %s); removed by reset.\n" % self.params["cluster"]
        modules = header + "".join(m + "\n" for m in self.params["kernel_modules"])
        sysctls = header + "".join("%s = %s\n" % (k, v) for k, v in sorted(self.params["sysctls"].items()))
        return [(self.params["modules_load_path"], modules), (self.params["sysctl_path"], sysctls)]

    def persisted_files(self):
        for path, content in self.persisted():
            state = FileState(path, content, 0o644)
            if state.changed:
                self.result["files_changed"].append(path)
                self.diffs.append(state.diff())
                if not self.check:
                    state.apply()

    def remove_persisted_files(self):
        for path in [p for p, _content in self.persisted()] + [f["path"] for f in self.params["files"]]:
            before = read_text(path)
            if before is None:
                continue
            self.result["files_changed"].append(path)
            self.diffs.append({"before_header": path, "after_header": path, "before": before, "after": ""})
            if not self.check:
                os.unlink(path)

    def hosts_block(self):
        path = self.params["hosts_path"]
        before = read_text(path) or ""
        lines = hosts_lines(self.params["hosts"]) if self.params["state"] == "present" else None
        try:
            after = replace_block(before, self.params["cluster"], lines)
        except ValueError as exc:
            raise ModuleFailure("%s: %s" % (path, exc), **self.result) from exc
        if after == before:
            return
        self.result["files_changed"].append(path)
        self.diffs.append({"before_header": path, "after_header": path, "before": before, "after": after})
        if not self.check:
            if os.path.exists(path):
                write_in_place(path, after)
            else:
                FileState(path, after, 0o644).apply()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            directories=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                mode=dict(type="str", default="0755"),
            )),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str"),
                mode=dict(type="str", default="0644"),
            )),
            kernel_modules=dict(type="list", elements="str", default=["overlay", "br_netfilter", "nf_conntrack"]),
            sysctls=dict(type="dict", default={
                "net.ipv4.ip_forward": "1",
                "net.ipv6.conf.all.forwarding": "1",
                "net.bridge.bridge-nf-call-iptables": "1",
                "net.bridge.bridge-nf-call-ip6tables": "1",
            }),
            hosts=dict(type="list", elements="dict", default=[], options=dict(
                ip=dict(type="str", required=True),
                hostnames=dict(type="list", elements="str", required=True),
            )),
            strict=dict(type="bool", default=False),
            hosts_path=dict(type="path", default="/etc/hosts"),
            modules_load_path=dict(type="path", default="/etc/modules-load.d/seal-k3s.conf"),
            sysctl_path=dict(type="path", default="/etc/sysctl.d/90-seal-k3s.conf"),
            report=dict(type="dict", options=dict(
                rootfs=dict(type="dict", options=dict(
                    dest=dict(type="path", required=True),
                    role=dict(type="str", choices=["agent", "server", "registry"]),
                    storage=dict(type="path"),
                )),
                record=dict(type="path"),
            )),
        ),
        supports_check_mode=True,
    )
    try:
        module.params["hosts"] = checked_hosts(module.params["cluster"], module.params["hosts"])
        result = NodePrepare(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
