#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_kubeconfig
short_description: Keep a cluster's admin kubeconfig on the controller
version_added: 0.1.0
description:
  - Meant to run on the controller (C(delegate_to=localhost)). Writes O(content), the admin kubeconfig
    a server wrote (k3s's C(/etc/rancher/k3s/k3s.yaml), read with M(ansible.builtin.slurp)), to O(dest)
    with its loopback server URL (C(https://127.0.0.1:<port>)) replaced by O(server), mode 0600,
    atomically. Nothing is written when O(dest) already holds that content with mode 0600.
  - The content holds the cluster's admin client key; run the task with C(no_log=true). The result
    and the diff show only the server URLs and the content's SHA-256, never the content.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.CONTROLLER_IN_PROCESS
options:
  dest:
    description: The kubeconfig's path on the controller, e.g. C(~/.seal/<cluster>/kubeconfig); its directory must exist.
    type: path
    required: true
  content:
    description: The kubeconfig as the server wrote it.
    type: str
    required: true
  server:
    description: The API's URL for clients outside the server, e.g. C(https://10.0.0.2:6443).
    type: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the server URLs, the mode and the content's SHA-256, not the content.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Read the admin kubeconfig
  ansible.builtin.slurp:
    src: /etc/rancher/k3s/k3s.yaml
  register: admin
  no_log: true

- name: Keep it on the controller
  delegate_to: localhost
  seal.cluster.cluster_kubeconfig:
    dest: ~/.seal/demo/kubeconfig
    content: "{{ admin.content | b64decode }}"
    server: https://10.0.0.2:6443
  no_log: true
"""

RETURN = r"""
server:
  description: The server URLs the written kubeconfig names.
  returned: always
  type: list
  elements: str
sha256:
  description: SHA-256 of the kubeconfig O(dest) holds after the run (would hold, in check mode).
  returned: always
  type: str
"""

import hashlib
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _files as files
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure, exit_module

LOOPBACK = re.compile(r"https://127\.0\.0\.1:[0-9]+")
SERVER_LINE = re.compile(r"^\s*server:\s*(\S+)\s*$", re.M)
MODE = 0o600


def summary(text, mode):
    """What a diff may show of a kubeconfig: its server URLs, mode and digest."""
    if text is None:
        return ""
    return "server: %s\nmode: %s\nsha256: %s\n" % (", ".join(SERVER_LINE.findall(text)), "%04o" % mode if mode is not None else "?",
                                                   hashlib.sha256(text.encode()).hexdigest())


MODULE_ARGS = dict(
    argument_spec=dict(
        dest=dict(type="path", required=True),
        content=dict(type="str", required=True, no_log=True),
        server=dict(type="str", required=True),
    ),
    supports_check_mode=True,
)


def run_module(module):
    """The module's result for module (AnsibleModule, or plugin_utils.controller_module's in-process
    stand-in for it); ModuleFailure on failure."""
    p = module.params
    if not re.match(r"^https://\S+$", p["server"]):
        raise ModuleFailure("server must be an https:// URL, got %r" % p["server"])
    wanted = LOOPBACK.sub(lambda _m: p["server"], p["content"])
    if not SERVER_LINE.search(wanted):
        raise ModuleFailure("content is not a kubeconfig: it names no server")
    before, mode = files.read_text(p["dest"]), files.file_mode(p["dest"])
    changed = before != wanted or mode != MODE
    if changed and not module.check_mode:
        try:
            files.write_atomic(p["dest"], wanted, MODE)
        except OSError as exc:
            raise ModuleFailure("cannot write %s: %s" % (p["dest"], exc)) from exc
    result = dict(changed=changed, server=SERVER_LINE.findall(wanted), sha256=hashlib.sha256(wanted.encode()).hexdigest())
    if module._diff:
        result["diff"] = dict(before_header=p["dest"], after_header=p["dest"], before=summary(before, mode), after=summary(wanted, MODE))
    return result


def main():
    exit_module(AnsibleModule(**MODULE_ARGS), run_module)


if __name__ == "__main__":
    main()
