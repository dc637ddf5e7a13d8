#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_plugin
short_description: Run one sealer Plugin (SHELL or HOSTNAME) on a host in one phase
version_added: 0.2.0
description:
  - O(type=SHELL) runs O(data) with C(/bin/sh -c) in the rootfs (O(chdir)), with O(env) exported
    (sealer pkg/plugin/shell_plugin.go runs C(cd <rootfs> && <env> <data>)). The plugin's output
    is returned (C(stdout_lines), C(stderr_lines)); a non-zero exit fails the task with the
    plugin's name, where it came from, the phase, the host and the exit code.
  - O(type=HOSTNAME) sets the host's name to O(hostname) (sealer pkg/plugin/hostname_plugin.go)
    unless it already has it.
  - The playbooks decide which plugins run where and when (filter C(seal.cluster.plugin_runs));
    LABEL and TAINT plugins become Node labels and taints in role C(finish), not here.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  name:
    description: The plugin's C(metadata.name).
    type: str
    required: true
  source:
    description: Where the plugin comes from (the Clusterfile, or the image by digest and file), for the log.
    type: str
    required: true
  phase:
    description: The phase it runs in (C(PreInit), C(PostInstall), ...), for the log.
    type: str
    required: true
  host:
    description: The inventory name of the host, for the log.
    type: str
    required: true
  type:
    description: The plugin's type.
    type: str
    choices: [SHELL, HOSTNAME]
    required: true
  data:
    description: SHELL - the shell text.
    type: str
    default: ""
  hostname:
    description: HOSTNAME - the name this host gets.
    type: str
  chdir:
    description: SHELL - the directory it runs in (the rootfs); in PreClean and PostClean C(/) when it is gone.
    type: path
  env:
    description: SHELL - variables exported to it (a list value is joined with spaces).
    type: dict
    default: {}
attributes:
  check_mode:
    support: partial
    details: A SHELL plugin does not run in check mode (reported as a change); HOSTNAME reports whether the name would change.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: A SHELL plugin runs (and reports a change) every time it is called; the playbooks call it only in the phases of an install, a join or a clean.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: A SHELL plugin
  seal.cluster.cluster_plugin:
    name: install-iscsi
    source: Clusterfile
    phase: PreInit
    host: "{{ inventory_hostname }}"
    type: SHELL
    data: apt-get -y install open-iscsi
    chdir: /var/lib/seal/my-cluster/rootfs
    env: {DATADISK: /data}
"""

RETURN = r"""
rc:
  description: SHELL - the exit code.
  returned: when a SHELL plugin ran
  type: int
stdout_lines:
  description: SHELL - its output.
  returned: when a SHELL plugin ran
  type: list
  elements: str
stderr_lines:
  description: SHELL - its error output.
  returned: when a SHELL plugin ran
  type: list
  elements: str
"""

import os
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import write_atomic, write_in_place

HOSTNAME_FILE = "/etc/hostname"


CLEAN_PHASES = ("PreClean", "PostClean")


class PluginRunner:
    def __init__(self, module):
        self.module = module
        self.p = module.params

    def what(self):
        return "plugin %s (%s, %s) on host %s" % (self.p["name"], self.p["source"], self.p["phase"], self.p["host"])

    def run(self):
        return self.shell() if self.p["type"] == "SHELL" else self.hostname()

    def shell(self):
        env = {}
        for key, value in self.p["env"].items():
            names.check_env_key(key)
            env[key] = " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        chdir = self.p["chdir"] or "/"
        if not os.path.isdir(chdir) and self.p["phase"] in CLEAN_PHASES:
            chdir = "/"  # sealer: CdIfExistAndExecCmd for the clean phases (pkg/cluster-runtime/hook.go)
        if not os.path.isdir(chdir):
            raise ModuleFailure("%s: the rootfs %s is not on the host" % (self.what(), chdir))
        if self.module.check_mode:
            return {"changed": True, "msg": "%s would run" % self.what()}
        rc, out, err = self.module.run_command(["/bin/sh", "-c", self.p["data"]], cwd=chdir, environ_update=env)
        result = {"changed": True, "rc": rc, "stdout_lines": out.splitlines(), "stderr_lines": err.splitlines()}
        if rc != 0:
            raise ModuleFailure("%s failed with exit code %d" % (self.what(), rc), **result)
        return result

    def hostname(self):
        """The running name and /etc/hostname (what the next boot uses) both become the name."""
        wanted = names.check_node_name(self.p["hostname"] or "")
        if socket.gethostname() == wanted and _static_hostname() == wanted:
            return {"changed": False}
        if not self.module.check_mode:
            tool = self.module.get_bin_path("hostnamectl")
            rc, _out, err = self.module.run_command([tool, "set-hostname", wanted]) if tool else (1, "", "")
            if rc != 0 or _static_hostname() != wanted:
                try:
                    if os.path.exists(HOSTNAME_FILE):
                        write_in_place(HOSTNAME_FILE, wanted + "\n")  # a bind mount (a container's) cannot be renamed over
                    else:
                        write_atomic(HOSTNAME_FILE, wanted + "\n", 0o644)
                except OSError as exc:
                    raise ModuleFailure("%s: could not write %s: %s" % (self.what(), HOSTNAME_FILE, exc)) from exc
                rc, _out, err = self.module.run_command([self.module.get_bin_path("hostname", required=True), wanted])
                if rc != 0:
                    raise ModuleFailure("%s: could not set the host name to %s: %s" % (self.what(), wanted, err.strip()))
        return {"changed": True}


def _static_hostname():
    try:
        with open(HOSTNAME_FILE, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            source=dict(type="str", required=True),
            phase=dict(type="str", required=True),
            host=dict(type="str", required=True),
            type=dict(type="str", required=True, choices=["SHELL", "HOSTNAME"]),
            data=dict(type="str", default=""),
            hostname=dict(type="str"),
            chdir=dict(type="path"),
            env=dict(type="dict", default={}),
        ),
        required_if=[("type", "HOSTNAME", ("hostname",))],
        supports_check_mode=True,
    )
    try:
        result = PluginRunner(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
